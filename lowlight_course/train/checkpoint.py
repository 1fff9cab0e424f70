"""Checkpoints: a run that survives a dead kernel.

``fit(..., checkpoint="run.pt", checkpoint_every=N)`` saves, every ``N`` steps and after the last
one, everything the next step depends on: the model's, the optimiser's and the loss module's state,
the mixed-precision scaler, the batch order, the random number generators (torch, CUDA, Python,
NumPy), the step and the :class:`~.history.History`. Each save is atomic: written to a temporary
file beside the target, flushed to disk, then renamed over it, so a kernel killed mid-save leaves the
previous checkpoint intact.

``fit(..., checkpoint="run.pt", resume=True)`` (or ``resume="run.pt"``) loads it and continues
from the saved step with the saved history; on one machine and thread count the result equals an
uninterrupted run (same final parameters and history; ``tests/test_train_checkpoint.py`` kills a
training process to check). ``resume=True`` with no file yet starts from step 0, so the same cell
works before and after a crash. A checkpoint of a finished run just restores the trained model.

A checkpoint from another model, another loss, other training settings or a damaged file is refused
with a :class:`CheckpointError` that says what differs and what to do.
"""
from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .history import History

__all__ = ["CheckpointError", "Checkpointing", "checkpointing", "save_checkpoint", "load_checkpoint"]

FORMAT = 1
_SETTINGS = ("batch_size", "lr", "loss_lr", "seed", "log_every", "grad_norm_every", "clip_grad",
             "warmup_steps", "optimizer", "data")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (missing, damaged, or from another run); the text says why
    and what to do."""


def _path(value, name: str) -> Path:
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path such as {name}=\"run.pt\", got {type(value).__name__}.")
    path = Path(value).expanduser()
    if str(value).strip() == "" or path.is_dir():
        raise ValueError(f"{name}={str(value)!r} is a folder (or empty); name a file in it, "
                         f"e.g. {name}=\"{Path(value) / 'run.pt'}\".")
    return path


def _code_fingerprint(code) -> list:
    """A stable summary of a function's code (bytecode, names, simple constants), nested functions included."""
    consts = []
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            consts.append(_code_fingerprint(c))
        elif c is None or isinstance(c, (bool, int, float, complex, str, bytes)):
            consts.append(repr(c))
        elif isinstance(c, (tuple, frozenset)):
            consts.append(repr(sorted(map(repr, c))))
    return [code.co_code.hex(), list(code.co_names), consts]


def _loss_identity(loss_fn) -> dict:
    """What names a loss across kernels: its class (modules, with their state's names and shapes) or its
    qualified name and a hash of its code (functions, lambdas included)."""
    if isinstance(loss_fn, nn.Module):
        return {"kind": "module", "name": type(loss_fn).__qualname__,
                "state": [[k, list(v.shape)] for k, v in loss_fn.state_dict().items()]}
    fn = getattr(loss_fn, "func", loss_fn)  # functools.partial: the wrapped function
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
    digest = hashlib.sha256(repr(_code_fingerprint(code)).encode()).hexdigest()[:16] if code else ""
    extra = repr(getattr(loss_fn, "args", ())) + repr(sorted(getattr(loss_fn, "keywords", {}).items()))
    return {"kind": "function", "name": getattr(fn, "__qualname__", type(fn).__qualname__),
            "code": digest, "bound": extra if hasattr(loss_fn, "func") else ""}


def _model_shape(model: nn.Module) -> list:
    return [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()]


def _rng_state(device: torch.device) -> dict:
    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()),
             "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(gauss)]}
    state["python"][1] = list(state["python"][1])
    if device.type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _history_from(d: dict) -> History:
    return History(**{k: v for k, v in d.items() if k in History.__dataclass_fields__})


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`CheckpointError` if damaged."""
    fresh = f"delete {path} and train from step 0 (fit without resume=)"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: check the name, or pass resume=True (starts from "
                              f"step 0 when the file does not exist yet).") from None
    except Exception as err:  # noqa: BLE001 - pickle, zip and torch errors all mean "damaged"
        raise CheckpointError(f"{path} is not a readable fit checkpoint ({type(err).__name__}: "
                              f"{str(err)[:120]}); it may be damaged or another kind of file: {fresh}.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "model" not in payload:
        raise CheckpointError(f"{path} is not a fit checkpoint of this version (format "
                              f"{payload.get('format') if isinstance(payload, dict) else '?'}, expected "
                              f"{FORMAT}): {fresh}.")
    return payload


@dataclass
class Checkpointing:
    """Where and how often one run saves, and what it resumes from (built by :func:`checkpointing`)."""

    path: Path | None
    every: int
    resume: Path | None
    resume_optional: bool

    # -- resuming -------------------------------------------------------------------------------
    def restore(self, run, batches, hist: History, args, optimizer) -> int:
        """Load the checkpoint into ``run``/``batches``/``hist``; return the step to continue from
        (0 when there is nothing to resume)."""
        if self.resume is None:
            return 0
        if self.resume_optional and not self.resume.exists():
            return 0
        ck = load_checkpoint(self.resume)
        where = str(self.resume)
        fresh = f"or train from step 0: delete {where} or drop resume="
        saved_model, model_now = ck["model_shape"], _model_shape(run.model)
        if saved_model != model_now:
            diff = next((f"{a[0]} {a[1]} saved, {b[0]} {b[1]} now" for a, b in zip(saved_model, model_now) if a != b),
                        f"{len(saved_model)} tensors saved, {len(model_now)} now")
            raise CheckpointError(f"{where} holds another model ({ck['model_name']}, {diff}): resume with the "
                                  f"model it was saved from ({ck['model_name']}, same constructor arguments), {fresh}.")
        loss_now = _loss_identity(run.loss_fn)
        if ck["loss"] != loss_now:
            raise CheckpointError(f"{where} was saved with another loss ({ck['loss']['name']}, now "
                                  f"{loss_now['name']}{' with other code or settings' if ck['loss']['name'] == loss_now['name'] else ''}): "
                                  f"resume with the same loss_fn, {fresh}.")
        now = self.settings(args, optimizer, run)
        changed = [f"{k}={ck['settings'].get(k)!r} saved, {now[k]!r} now" for k in _SETTINGS
                   if ck["settings"].get(k) != now[k]]
        if changed:
            raise CheckpointError(f"{where} was saved with other training settings ({'; '.join(changed)}): "
                                  f"call fit with the saved settings to continue, {fresh}.")
        if ck["step"] > args.steps:
            raise CheckpointError(f"{where} has already trained {ck['step']} steps, more than steps={args.steps}: "
                                  f"pass steps={ck['saved_steps']} (or more), {fresh}.")
        run.model.load_state_dict(ck["model"])
        if isinstance(run.loss_fn, nn.Module) and ck.get("loss_state") is not None:
            run.loss_fn.load_state_dict(ck["loss_state"])
        run.optimizer.load_state_dict(ck["optimizer"])
        if run.scaler is not None and ck.get("scaler"):
            run.scaler.load_state_dict(ck["scaler"])
        batches.gen.set_state(ck["batches"]["gen"])
        batches.order, batches.pos = ck["batches"]["order"].clone(), ck["batches"]["pos"]
        _set_rng_state(ck["rng"])
        saved = _history_from(ck["history"])
        for name in History.__dataclass_fields__:
            if name != "extra":
                setattr(hist, name, getattr(saved, name))
        hist.interrupted = False
        hist.extra["resumed_at_step"] = ck["step"]
        hist.extra["resumed_from"] = where
        return ck["step"]

    # -- saving ---------------------------------------------------------------------------------
    @staticmethod
    def settings(args, optimizer, run) -> dict:
        return {"batch_size": run.batch_size, "lr": args.lr, "loss_lr": args.loss_lr, "seed": args.seed,
                "log_every": args.log_every, "grad_norm_every": args.grad_norm_every,
                "clip_grad": args.clip_grad, "warmup_steps": args.warmup_steps,
                "optimizer": optimizer if isinstance(optimizer, str) else getattr(optimizer, "__qualname__",
                                                                                   type(optimizer).__qualname__),
                "data": [run.data.n, list(run.data.low.shape[1:]) if run.data.dataset is None else None]}

    def after_step(self, step: int, run, batches, hist: History, args, optimizer) -> None:
        """Save after ``step`` (0-based) when it ends a block of ``every`` steps or the run."""
        if self.path is None:
            return
        done = step + 1
        if done % self.every and done != args.steps:
            return
        payload = {
            "format": FORMAT, "step": done, "saved_steps": args.steps,
            "model_name": type(run.model).__qualname__, "model_shape": _model_shape(run.model),
            "model": run.model.state_dict(),
            "loss": _loss_identity(run.loss_fn),
            "loss_state": run.loss_fn.state_dict() if isinstance(run.loss_fn, nn.Module) else None,
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "batches": {"gen": batches.gen.get_state(), "order": batches.order.clone(), "pos": batches.pos},
            "rng": _rng_state(run.device),
            "settings": self.settings(args, optimizer, run),
            "history": {k: v for k, v in hist.as_dict().items() if k != "extra"}
                       | {"extra": {k: v for k, v in hist.extra.items() if isinstance(v, (int, float, str, bool, type(None)))}},
        }
        save_checkpoint(self.path, payload)


def checkpointing(checkpoint, checkpoint_every, resume, steps: int) -> Checkpointing | None:
    """Check fit's ``checkpoint`` / ``checkpoint_every`` / ``resume`` arguments; None when unused.

    ``checkpoint_every`` defaults to a tenth of the run (at least 1 step); ``resume=True`` needs
    ``checkpoint`` and starts from step 0 while that file does not exist yet; ``resume="path"``
    needs the file."""
    if checkpoint is None and checkpoint_every is None and resume in (None, False):
        return None
    path = _path(checkpoint, "checkpoint") if checkpoint is not None else None
    if path is not None and not path.parent.exists():
        raise ValueError(f"checkpoint={str(checkpoint)!r}: the folder {path.parent} does not exist; create it "
                         f"(os.makedirs({str(path.parent)!r}, exist_ok=True)) or name a file in an existing folder.")
    if checkpoint_every is not None:
        if path is None:
            raise ValueError(f"checkpoint_every={checkpoint_every!r} was given without checkpoint: name the file, "
                             f"e.g. checkpoint=\"run.pt\", checkpoint_every={checkpoint_every!r}.")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a whole number of steps >= 1, e.g. "
                             f"checkpoint_every={max(1, steps // 10)}, got {checkpoint_every!r}.")
    every = checkpoint_every if checkpoint_every is not None else max(1, steps // 10)
    if resume is True:
        if path is None:
            raise ValueError("resume=True resumes from the checkpoint file, but none was named: pass "
                             "checkpoint=\"run.pt\" too (or resume=\"run.pt\").")
        return Checkpointing(path, every, path, resume_optional=True)
    if resume in (None, False):
        return Checkpointing(path, every, None, resume_optional=False)
    rpath = _path(resume, "resume")
    if not rpath.exists():
        raise CheckpointError(f"resume={str(resume)!r}: no such file. Check the name, or pass checkpoint="
                              f"{str(resume)!r}, resume=True to start from step 0 until a checkpoint exists.")
    return Checkpointing(path, every, rpath, resume_optional=False)
