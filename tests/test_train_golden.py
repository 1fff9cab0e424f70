"""fit's histories are pinned: the same arguments give bit-identical History values after any refactor.

The notebooks assert numbers from ``fit`` runs, so a change to ``lowlight_course.train`` that moves a
single bit of a history is a behaviour change. ``tests/data/fit_golden.json`` was recorded with the
single-file ``train.py`` (before it was split into a package) by running this module as a script::

    OMP_NUM_THREADS=1 .venv/bin/python tests/test_train_golden.py --write

Bit-identity only holds for one set of CPU kernels (the fixture stores torch's version and the CPU
capability it ran with, and every run uses one thread). Under other kernels (``ATEN_CPU_CAPABILITY``,
another torch) the values are compared to a relative 1e-4 instead and the weight checksum is skipped.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from lowlight_course.losses import WeightedLoss, l1, mse  # noqa: E402
from lowlight_course.models import CurveNet, UNet, seed_everything  # noqa: E402
from lowlight_course.train import TrainingDivergedError, fit  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "fit_golden.json"


def _pairs(n, seed, size=24):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 4, 4, generator=g)
    high = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
    low = (0.2 * high + 0.01 * torch.rand(high.shape, generator=g)).clamp(0, 1)
    return low, high


def _dict_loss(pred, target, low):
    return {"mse": ((pred - target) ** 2).mean(), "l1": 0.5 * (pred - target).abs().mean(),
            "dead": torch.tensor(0.3)}


def _scalar_loss(pred, target, low):
    return ((pred - target) ** 2).mean() + 0.1 * (pred.mean() - 0.5) ** 2


def _weights_sha(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _hist(h) -> dict:
    d = h.as_dict()
    d["extra"] = {k: v for k, v in d["extra"].items() if k != "seconds"}
    return d


def _case_dict_val_clip_warmup():
    seed_everything(0)
    net = UNet(base=4)
    h = fit(net, _dict_loss, _pairs(16, 0), steps=12, batch_size=4, lr=2e-3, seed=3, device="cpu",
            progress=False, log_every=1, grad_norm_every=3, val=_pairs(6, 1), val_every=4,
            desc="golden", clip_grad=0.05, warmup_steps=5, amp=True)
    return {"history": _hist(h), "weights": _weights_sha(net)}


def _case_uncertainty_dataset_sgd():
    seed_everything(1)
    net = UNet(base=4, depth=1)
    crit = WeightedLoss({"mse": (mse, 1.0), "l1": (l1, 0.5)}, balance="uncertainty")
    ds = torch.utils.data.TensorDataset(*_pairs(16, 2))
    h = fit(net, crit, ds, steps=10, batch_size=5, lr=1e-2, optimizer="sgd", seed=4, device="cpu",
            progress=False, log_every=3, grad_norm_every=4, warmup_steps=2)
    return {"history": _hist(h), "weights": _weights_sha(net),
            "log_vars": [float(v) for v in crit.log_vars.detach()]}


def _case_curvenet_adamw_no_grad_norms():
    seed_everything(2)
    net = CurveNet(channels=4, iterations=2)
    h = fit(net, _scalar_loss, _pairs(8, 3), steps=7, batch_size=3, lr=3e-3, optimizer="adamw",
            seed=5, device="cpu", progress=False, grad_norm_every=0, val=_pairs(4, 4))
    return {"history": _hist(h), "weights": _weights_sha(net)}


def _case_optimizer_class():
    seed_everything(3)
    net = UNet(base=4, depth=1)
    h = fit(net, _dict_loss, _pairs(8, 5), steps=5, batch_size=4, lr=1e-3,
            optimizer=torch.optim.RMSprop, seed=0, device="cpu", progress=False, grad_norm_every=2)
    h.extra["optimizer"] = "RMSprop"  # the class's repr is not part of what is pinned
    return {"history": _hist(h), "weights": _weights_sha(net)}


def _case_diverges_at_step_6():
    seed_everything(4)
    net = UNet(base=4, depth=1)

    def loss(pred, target, low):
        out = {"mse": ((pred - target) ** 2).mean()}
        if loss.calls >= 6:
            out["log"] = torch.log(pred - pred - 1).mean()
        loss.calls += 1
        return out
    loss.calls = 0
    try:
        fit(net, loss, _pairs(8, 6), steps=20, batch_size=4, seed=1, device="cpu", progress=False,
            grad_norm_every=2)
    except TrainingDivergedError as err:
        return {"step": err.step, "terms": err.terms, "history": _hist(err.history),
                "weights": _weights_sha(net)}
    raise AssertionError("did not diverge")


CASES = {
    "dict_val_clip_warmup": _case_dict_val_clip_warmup,
    "uncertainty_dataset_sgd": _case_uncertainty_dataset_sgd,
    "curvenet_adamw_no_grad_norms": _case_curvenet_adamw_no_grad_norms,
    "optimizer_class": _case_optimizer_class,
    "diverges_at_step_6": _case_diverges_at_step_6,
}


def _kernels() -> dict:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _run(name):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return CASES[name]()
    finally:
        torch.set_num_threads(threads)


def _compare(got, want, path, exact):
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        missing = set(want) - set(got)
        assert not missing, f"{path}: keys {sorted(missing)} disappeared"
        for k in want:
            _compare(got[k], want[k], f"{path}.{k}", exact)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{path}[{i}]", exact)
    elif isinstance(want, float) and not exact:
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-7), f"{path}: {got!r} != {want!r}"
    else:
        assert got == want and type(got) is type(want), f"{path}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def golden():
    return json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_history_is_bit_identical_to_the_recorded_one(name, golden):
    exact = golden["kernels"] == _kernels()
    want = dict(golden["cases"][name])
    got = _run(name)
    if not exact:
        for d in (want, got):
            d.pop("weights", None)
    _compare(got, want, name, exact)


def test_the_comparison_would_catch_a_one_ulp_change(golden):
    want = golden["cases"]["dict_val_clip_warmup"]["history"]
    changed = json.loads(json.dumps(want))
    changed["loss"][3] = math.nextafter(changed["loss"][3], math.inf)
    with pytest.raises(AssertionError, match=r"loss\[3\]"):
        _compare(changed, want, "h", exact=True)


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/test_train_golden.py --write  (records tests/data/fit_golden.json)")
    out = {"kernels": _kernels(), "cases": {name: _run(name) for name in CASES}}
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {FIXTURE}")
