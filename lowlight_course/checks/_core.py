"""The machinery shared by every exercise check: verdicts, the case runner, comparisons, fixtures."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

__all__ = ["CheckResult", "use_or_reference"]

PASS, FAIL = "[ok]  ", "[FAIL]"


# ---------------------------------------------------------------------------------------------
# Machinery
# ---------------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """What a check found. ``bool(result)`` is ``result.passed``.

    Attributes:
        name: the check, e.g. ``"check_mse"``.
        passed: True when every case passed.
        message: the verdict as printed (one line per case, hints for the failures).
        implemented: False when the function is still a ``NotImplementedError`` stub.
        cases: ``(case, passed, detail)`` for every case that ran.
    """

    name: str
    passed: bool
    message: str
    implemented: bool = True
    cases: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        state = "passed" if self.passed else ("not implemented yet" if not self.implemented else "failed")
        return f"CheckResult({self.name}: {state})"


class _Fail(Exception):
    """A case failed; the message is for the learner."""


class _NotImplemented(Exception):
    """The learner's function is still a stub."""


def _call(fn: Callable, *args, what: str = "your function", **kwargs):
    """Call the learner's ``fn``; turn its exceptions into :class:`_Fail` / :class:`_NotImplemented`."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise _NotImplemented(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any learner error becomes a message
        raise _Fail(f"{what} raised {type(exc).__name__}: {exc}") from None


def _run(name: str, fn, cases, verbose: bool) -> CheckResult:
    """Run ``cases`` (``(description, function, hint)``); build, print and return the verdict."""
    if not callable(fn):
        msg = f"{name}: expected a function, got {type(fn).__name__}. Pass the function itself, without ()."
        if verbose:
            print(msg)
        return CheckResult(name, False, msg)
    rows, lines = [], []
    for desc, case, hint in cases:
        try:
            case()
        except _NotImplemented as exc:
            detail = str(exc).strip()
            msg = (f"{name}: not implemented yet" + (f" ({detail})" if detail else "") + ".\n"
                   f"  Replace the `raise NotImplementedError(...)` line with your code, then run this cell again.")
            if verbose:
                print(msg)
            return CheckResult(name, False, msg, implemented=False, cases=rows)
        except _Fail as exc:
            rows.append((desc, False, str(exc)))
            lines.append(f"  {FAIL} {desc}: {exc}" + (f"\n         hint: {hint}" if hint else ""))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be compared
            rows.append((desc, False, f"{type(exc).__name__}: {exc}"))
            lines.append(f"  {FAIL} {desc}: the result could not be checked ({type(exc).__name__}: {exc})"
                         + (f"\n         hint: {hint}" if hint else ""))
            continue
        rows.append((desc, True, ""))
        lines.append(f"  {PASS} {desc}")
    failed = sum(not ok for _, ok, _ in rows)
    head = (f"{name}: all {len(rows)} cases passed. Well done!" if not failed
            else f"{name}: {failed} of {len(rows)} cases failed.")
    msg = head + "\n" + "\n".join(lines)
    if verbose:
        print(msg)
    return CheckResult(name, failed == 0, msg, cases=rows)


def _tensor(out, what="your function") -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor(float(out))
    raise _Fail(f"{what} returned {type(out).__name__}, expected a torch.Tensor.")


def _scalar(out, what="your function") -> float:
    t = _tensor(out, what)
    if t.numel() != 1:
        raise _Fail(f"{what} returned shape {tuple(t.shape)}, expected a single number (a scalar). "
                    f"Average over every dimension (batch, channels, pixels).")
    return float(t.detach().reshape(()))


def _close(got: float, want: float, *, rtol: float = 0.0, atol: float = 0.0, what: str = "value"):
    if math.isnan(want) and math.isnan(got):
        return
    if not math.isfinite(got) and got != want:
        raise _Fail(f"{what} is {got}, expected {want:.6g}.")
    if abs(got - want) > atol + rtol * abs(want):
        raise _Fail(f"{what} is {got:.6g}, expected {want:.6g}.")


@functools.lru_cache(maxsize=None)
def _photo_pair_cached(name: str, size: int, domain: str, seed: int):
    from ..data import load_image, simulate_low_light

    clean = load_image(name, size)[None]
    low = simulate_low_light(clean, domain, seed=seed)
    return low, clean


def _photo_pair(name="coffee", size=48, domain="indoor_tungsten", seed=0):
    """(low, clean) of a bundled photograph under simulated low light, both (1, 3, size, size)."""
    low, clean = _photo_pair_cached(name, size, domain, seed)
    return low.clone(), clean.clone()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def use_or_reference(learner_fn: Callable, reference_fn: Callable, name: str = "your function",
                     result: CheckResult | None = None) -> Callable:
    """Your function where it works, the package's reference where it is still a stub.

    Returns a function with the same arguments. While ``learner_fn`` raises ``NotImplementedError``
    (the exercise stub), the reference is used instead, with a one-time note, so the cells below
    run either way. With ``result`` (the :class:`CheckResult` of your function's check), a function
    that has not passed its check is not used at all: the reference is, with a note saying so.

    Example:
        >>> from lowlight_course.losses import mse
        >>> def my_mse(pred, target):
        ...     raise NotImplementedError
        >>> f = use_or_reference(my_mse, mse, "mse")
        >>> import torch; x = torch.zeros(1, 1, 2, 2)
        >>> float(f(x, x + 0.5))
        Note: your mse is not implemented yet; using the reference lowlight_course.losses.pixel.mse instead.
        0.25
    """
    ref_name = f"{getattr(reference_fn, '__module__', '')}.{getattr(reference_fn, '__name__', 'reference')}"
    ref_name = ref_name.lstrip(".")
    if result is not None and not result.passed:
        why = "is not implemented yet" if not result.implemented else "did not pass its check yet"
        print(f"Note: your {name} {why}; using the reference {ref_name} below.")
        return reference_fn
    noted = []

    @functools.wraps(learner_fn)
    def wrapper(*args, **kwargs):
        try:
            return learner_fn(*args, **kwargs)
        except NotImplementedError:
            if not noted:
                noted.append(True)
                print(f"Note: your {name} is not implemented yet; using the reference {ref_name} instead.")
            return reference_fn(*args, **kwargs)

    return wrapper
