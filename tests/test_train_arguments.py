"""Arguments that would silently train wrong are rejected, with an error whose suggested fix works.

One table: each row is a change to a good ``fit`` call, the exception it must raise and the words
its message must hold. Where the message suggests code (``use e.g. clip_grad=1.0``, ``model.float()``,
a ``lambda`` wrapper, a stacking expression), the test runs that code and checks ``fit`` then trains.
"""
import math
import re

import pytest
import torch
from torch import nn

from lowlight_course.losses import SSIMLoss, mse as package_mse
from lowlight_course.models import UNet, seed_everything
from lowlight_course.train import fit

STEPS = 2


def my_loss(pred, target):
    return ((pred - target) ** 2).mean()


def good_loss(pred, target, low):
    return ((pred - target) ** 2).mean()


class DictPairs(torch.utils.data.Dataset):
    def __init__(self, low, high):
        self.low, self.high = low, high

    def __len__(self):
        return len(self.low)

    def __getitem__(self, i):
        return {"low": self.low[i], "high": self.high[i]}


class ItemPairs(torch.utils.data.Dataset):
    def __init__(self, low, high, fn):
        self.low, self.high, self.fn = low, high, fn

    def __len__(self):
        return len(self.low)

    def __getitem__(self, i):
        return self.fn(self.low[i], self.high[i])


def call(tiny_pairs, **change):
    """fit on a tiny problem, with ``change`` applied (``model``, ``loss_fn``, ``train`` or keywords)."""
    seed_everything(0)
    model = change.pop("model", None) or UNet(base=4, depth=1)
    loss_fn = change.pop("loss_fn", good_loss)
    train = change.pop("train", tiny_pairs)
    kw = dict(steps=STEPS, batch_size=4, progress=False, grad_norm_every=1)
    kw.update(change)
    return fit(model, loss_fn, train, **kw)


def _unet(dtype):
    seed_everything(0)
    return UNet(base=4, depth=1).to(dtype)


def _frozen():
    net = UNet(base=4, depth=1)
    net.requires_grad_(False)
    return net


NAN = float("nan")
CUDA = torch.cuda.is_available()
MPS = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()

# (id, change: dict or tiny_pairs -> dict, exception, words the message must contain)
ROWS = [
    ("clip_grad=0", {"clip_grad": 0}, ValueError, ["clip_grad", "positive", "clip_grad=1.0"]),
    ("clip_grad<0", {"clip_grad": -1.0}, ValueError, ["clip_grad", "positive"]),
    ("clip_grad=nan", {"clip_grad": NAN}, ValueError, ["clip_grad", "finite"]),
    ("clip_grad=inf", {"clip_grad": math.inf}, ValueError, ["clip_grad", "finite"]),
    ("clip_grad=True", {"clip_grad": True}, TypeError, ["clip_grad", "bool"]),
    ("warmup<0", {"warmup_steps": -1}, ValueError, ["warmup_steps", ">= 0"]),
    ("warmup>steps", {"warmup_steps": 5}, ValueError, ["warmup_steps=5", "never reach lr", "steps=2"]),
    ("warmup float", {"warmup_steps": 1.5}, TypeError, ["warmup_steps", "integer"]),
    ("lr=True", {"lr": True}, TypeError, ["lr", "bool", "lr=1e-3"]),
    ("lr=0", {"lr": 0}, ValueError, ["lr", "positive"]),
    ("lr<0", {"lr": -1e-3}, ValueError, ["lr", "positive"]),
    ("lr=nan", {"lr": NAN}, ValueError, ["lr", "finite"]),
    ("lr str", {"lr": "1e-3"}, TypeError, ["lr", "str"]),
    ("lr tensor", {"lr": torch.tensor(1e-3)}, TypeError, ["lr", "float(x)"]),
    ("loss_lr=0", {"loss_lr": 0.0}, ValueError, ["loss_lr", "positive"]),
    ("loss_lr=True", {"loss_lr": True}, TypeError, ["loss_lr", "bool"]),
    ("steps=True", {"steps": True}, TypeError, ["steps", "bool", "steps=200"]),
    ("steps float", {"steps": 2.0}, TypeError, ["steps", "integer"]),
    ("steps=0", {"steps": 0}, ValueError, ["steps", ">= 1"]),
    ("batch_size=True", {"batch_size": True}, TypeError, ["batch_size", "bool", "batch_size=16"]),
    ("batch_size=0", {"batch_size": 0}, ValueError, ["batch_size", ">= 1"]),
    ("log_every<0", {"log_every": -1}, ValueError, ["log_every", ">= 1"]),
    ("log_every=0", {"log_every": 0}, ValueError, ["log_every", ">= 1"]),
    ("log_every float", {"log_every": 1.5}, TypeError, ["log_every", "integer"]),
    ("log_every=True", {"log_every": True}, TypeError, ["log_every", "bool"]),
    ("grad_norm_every<0", {"grad_norm_every": -1}, ValueError, ["grad_norm_every", ">= 0", "0 switches it off"]),
    ("grad_norm_every float", {"grad_norm_every": 2.5}, TypeError, ["grad_norm_every", "integer"]),
    ("grad_norm_every=True", {"grad_norm_every": True}, TypeError, ["grad_norm_every", "bool"]),
    ("val_every=0", lambda tp: {"val": tp, "val_every": 0}, ValueError, ["val_every", ">= 1"]),
    ("val_every without val", {"val_every": 3}, ValueError, ["val_every=3", "without val", "val=("]),
    ("amp str", {"amp": "bf16"}, TypeError, ["amp", "True or False"]),
    ("progress int", {"progress": 1}, TypeError, ["progress", "True or False"]),
    ("on_interrupt unknown", {"on_interrupt": "ignore"}, ValueError, ["on_interrupt", "'return'", "'raise'"]),
    ("desc int", {"desc": 3}, TypeError, ["desc", "string"]),
    ("seed None", {"seed": None}, TypeError, ["seed", "integer", "seed=0"]),
    ("seed float", {"seed": 0.5}, TypeError, ["seed", "integer"]),
    ("device gpu", {"device": "gpu"}, ValueError, ["'gpu'", "device='cuda'", "auto"]),
    ("device GPU:1", {"device": "GPU:1"}, ValueError, ["device='cuda:1'"]),
    ("device tpu", {"device": "tpu"}, ValueError, ["'tpu'", "'auto'", "'cuda'"]),
    ("device bool", {"device": True}, TypeError, ["device", "string"]),
    ("model float64", {"model": lambda: _unet(torch.float64)}, TypeError, ["float64", "model.float()", "float32"]),
    ("model float16", {"model": lambda: _unet(torch.float16)}, TypeError, ["float16", "model.float()"]),
    ("model bfloat16", {"model": lambda: _unet(torch.bfloat16)}, TypeError, ["bfloat16", "model.float()"]),
    ("model class", {"model": lambda: UNet}, TypeError, ["class UNet", "instance", "UNet()"]),
    ("model function", {"model": lambda: (lambda x: x)}, TypeError, ["torch.nn.Module"]),
    ("model frozen", {"model": _frozen}, ValueError, ["no trainable parameters"]),
    ("two-argument loss", {"loss_fn": my_loss}, TypeError,
     ["2 positional", "loss_fn(pred, target, low)", "lambda pred, target, low: my_loss(pred, target)"]),
    ("package mse (reduction third)", {"loss_fn": package_mse}, TypeError,
     ["'reduction'", "low-light batch", "lambda pred, target, low: mse(pred, target)"]),
    ("two-argument module", {"loss_fn": SSIMLoss()}, TypeError,
     ["2 positional", "lambda pred, target, low: loss(pred, target)"]),
    ("loss class", {"loss_fn": SSIMLoss}, TypeError, ["class SSIMLoss", "SSIMLoss()"]),
    ("loss keyword-only", {"loss_fn": lambda p, t, l, *, w: p.mean()}, TypeError, ["w", "functools.partial"]),
    ("loss four required", {"loss_fn": lambda p, t, l, m: p.mean()}, TypeError, ["4 positional", "three"]),
    ("loss not callable", {"loss_fn": 3.0}, TypeError, ["callable"]),
    ("dataset of dicts", lambda tp: {"train": DictPairs(*tp)}, TypeError, ["dicts", "'low'", "'high'", "torch.stack"]),
    ("dataset of uint8", lambda tp: {"train": ItemPairs(*tp, lambda a, b: ((a * 255).byte(), (b * 255).byte()))},
     TypeError, ["uint8", "/ 255"]),
    ("dataset of triples", lambda tp: {"train": ItemPairs(*tp, lambda a, b: (a, b, a))}, TypeError,
     ["3-tuple", "(low, high) pair"]),
    ("dataset of batches", lambda tp: {"train": ItemPairs(*tp, lambda a, b: (a[None], b[None]))}, ValueError,
     ["(1, 3, 32, 32)", "(C, H, W)"]),
    ("dataset pair shapes", lambda tp: {"train": ItemPairs(*tp, lambda a, b: (a, b[:, :16]))}, ValueError,
     ["differ in shape"]),
    ("dataset of strings", lambda tp: {"train": ItemPairs(*tp, lambda a, b: ("a.png", "b.png"))}, TypeError,
     ["str", "to_tensor"]),
    ("val dataset of dicts", lambda tp: {"val": DictPairs(*tp)}, TypeError, ["val is a Dataset", "dicts"]),
    ("train with NaN", lambda tp: {"train": (tp[0].clone().index_fill_(0, torch.tensor([3]), NAN), tp[1])},
     ValueError, ["NaN", "image 3", "nan_to_num"]),
    ("train shape mismatch", lambda tp: {"train": (tp[0], tp[1][..., :16, :16])}, ValueError, ["differ in shape"]),
    ("train dict", lambda tp: {"train": {"low": tp[0], "high": tp[1]}}, TypeError, ["tuple (low, high)"]),
    ("optimizer instance", {"optimizer": torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)}, TypeError,
     ["already built", "optimizer=torch.optim.RMSprop", "lambda params"]),
    ("optimizer factory returns junk", {"optimizer": lambda params: "adam"}, TypeError, ["str", "torch.optim.Optimizer"]),
    ("optimizer ignores params", {"optimizer": lambda params: torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)},
     ValueError, ["does not hold the model's parameters", "never train"]),
    ("optimizer unknown name", {"optimizer": "lbfgs2"}, ValueError, ["'lbfgs2'", "'adam'"]),
    ("model returns dict", {"model": lambda: type("D", (nn.Module,), {
        "__init__": lambda self: (nn.Module.__init__(self), setattr(self, "w", nn.Parameter(torch.ones(()))))[0],
        "forward": lambda self, x: {"out": x * self.w}})()}, TypeError, ["returned a dict", "tensor"]),
    ("loss returns tuple", {"loss_fn": lambda p, t, l: (good_loss(p, t, l), {})}, TypeError, ["tuple", "terms dict"]),
]
if not CUDA:
    ROWS.append(("cuda unavailable", {"device": "cuda"}, RuntimeError, ["CUDA is not available", "device='auto'"]))
else:
    ROWS.append(("cuda index too high", {"device": f"cuda:{torch.cuda.device_count()}"}, ValueError,
                 ["numbered from 0", "device='cuda'"]))
if not MPS:
    ROWS.append(("mps unavailable", {"device": "mps"}, RuntimeError, ["MPS is not available", "device='auto'"]))


def _change(row_change, tiny_pairs):
    change = row_change(tiny_pairs) if callable(row_change) else dict(row_change)
    if callable(change.get("model")):
        change["model"] = change["model"]()
    return change


@pytest.mark.parametrize("change,exc,words", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_argument_is_rejected_with_a_clear_error(tiny_pairs, change, exc, words):
    with pytest.raises(exc) as err:
        call(tiny_pairs, **_change(change, tiny_pairs))
    msg = str(err.value)
    for w in words:
        assert w in msg, f"{w!r} not in: {msg}"


_SUGGESTED = re.compile(r"use e\.g\. (\w+)=([^\s,;:()]+)")


def test_every_suggested_keyword_fix_trains(tiny_pairs):
    """Wherever a message says ``use e.g. name=value``, fit with that value trains."""
    checked = []
    for row_id, row_change, exc, _ in ROWS:
        if exc not in (TypeError, ValueError):
            continue
        change = _change(row_change, tiny_pairs)
        with pytest.raises(exc) as err:
            call(tiny_pairs, **dict(change))
        msg = str(err.value)
        found = _SUGGESTED.search(msg)
        if not found:
            continue
        name, value = found.groups()
        if value == "lambda":  # a factory: take the expression up to the sentence's end
            value = re.search(rf"{name}=(lambda .*?\))\.", msg).group(1)
        change[name] = eval(value.rstrip("."), {"steps": change.get("steps", STEPS), "torch": torch})
        if name == "val_every":
            change.setdefault("val", tiny_pairs)
        assert len(call(tiny_pairs, **change)) == change.get("steps", STEPS), row_id
        checked.append(row_id)
    assert len(checked) >= 25, checked


def test_fix_model_float_works(tiny_pairs):
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        model = _unet(dtype)
        with pytest.raises(TypeError, match=r"model\.float\(\)"):
            call(tiny_pairs, model=model)
        assert len(call(tiny_pairs, model=model.float())) == STEPS


@pytest.mark.parametrize("loss", [my_loss, package_mse, SSIMLoss()], ids=["my_loss", "mse", "SSIMLoss"])
def test_fix_for_a_two_argument_loss_works(tiny_pairs, loss):
    with pytest.raises(TypeError) as err:
        call(tiny_pairs, loss_fn=loss)
    code = re.search(r"lambda pred, target, low: \w+\(pred, target\)", str(err.value)).group(0)
    name = re.search(r": (\w+)\(", code).group(1)
    wrapped = eval(code, {name: loss})
    assert len(call(tiny_pairs, loss_fn=wrapped)) == STEPS


def test_fix_for_a_dataset_of_dicts_works(tiny_pairs):
    ds = DictPairs(*tiny_pairs)
    with pytest.raises(TypeError) as err:
        call(tiny_pairs, train=ds)
    code = str(err.value).split("train = ", 1)[1]
    train = eval(code, {"torch": torch, "ds": ds})
    assert len(call(tiny_pairs, train=train)) == STEPS
    assert torch.equal(train[0], tiny_pairs[0]) and torch.equal(train[1], tiny_pairs[1])


def test_fix_for_device_gpu_works(tiny_pairs):
    with pytest.raises(ValueError) as err:
        call(tiny_pairs, device="gpu")
    suggested = re.search(r"device='(\w+)'", str(err.value)).group(1)
    if CUDA:
        assert len(call(tiny_pairs, device=suggested)) == STEPS
    assert len(call(tiny_pairs, device="auto")) == STEPS  # the other fix the message names


def test_fix_for_an_optimizer_instance_works(tiny_pairs):
    for opt in (torch.optim.RMSprop, lambda params: torch.optim.SGD(params, lr=0.01)):
        assert len(call(tiny_pairs, optimizer=opt)) == STEPS


def test_fit_under_no_grad_says_so(tiny_pairs):
    with torch.no_grad(), pytest.raises(RuntimeError, match="no_grad"):
        call(tiny_pairs)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        call(tiny_pairs)


@pytest.mark.parametrize("change", [
    {"grad_norm_every": None}, {"grad_norm_every": 0}, {"warmup_steps": None}, {"warmup_steps": STEPS},
    {"lr": 1}, {"steps": torch.tensor(2).item()}, {"clip_grad": 1e-6}, {"seed": -3}, {"device": "AUTO"},
    {"loss_fn": lambda pred, target, low=None: ((pred - target) ** 2).mean()},
    {"loss_fn": lambda *args: ((args[0] - args[1]) ** 2).mean()},
    {"loss_fn": lambda pred, target, low, weight=2.0: weight * ((pred - target) ** 2).mean()},
    {"loss_lr": 0.1},  # ignored: the loss has no parameters
], ids=["grad_norm_every=None", "grad_norm_every=0", "warmup_steps=None", "warmup_steps=steps", "lr=1 (int)",
        "steps from .item()", "clip_grad=1e-6", "seed=-3", "device=AUTO", "loss with optional low",
        "loss with *args", "loss with an extra keyword", "loss_lr without loss parameters"])
def test_good_edge_values_are_accepted(tiny_pairs, change):
    h = call(tiny_pairs, **change)
    assert len(h) == STEPS and h.loss_lr == []


def test_data_that_requires_grad_is_not_pulled_into_the_graph(tiny_pairs):
    low, high = (t.clone().requires_grad_(True) for t in tiny_pairs)
    assert len(call(tiny_pairs, train=(low, high))) == STEPS
    assert low.grad is None and high.grad is None


def test_numpy_numbers_are_accepted():
    np = pytest.importorskip("numpy")
    low = torch.rand(4, 3, 16, 16) * 0.2
    h = fit(UNet(base=4, depth=1), good_loss, (low, low * 4), steps=np.int64(2), batch_size=np.int32(2),
            lr=np.float32(1e-3), progress=False)
    assert len(h) == 2 and type(h.lr[0]) is float
