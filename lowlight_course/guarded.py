"""Run untrusted code (a learner's function, a loss under audit) with a time limit, and report.

:func:`run_guarded` calls ``fn(*args, **kwargs)`` and always comes back, within about the time limit,
with a :class:`GuardedResult`: the value, or what went wrong, in words meant for the person who wrote
``fn``. It knows nothing about exercises or losses; :mod:`lowlight_course.checks` and the loss
auditor build their verdicts on it.

What it survives:

- an exception (``result.kind == "raised"``);
- ``sys.exit()``, ``exit()``, ``quit()`` and ``os._exit()`` (``"exit"``): ``exit``/``quit`` and
  ``os._exit`` are replaced for the duration of the call, so IPython's ``exit()`` cannot ask the
  kernel to shut down and ``os._exit`` cannot kill the process;
- ``KeyboardInterrupt``, ``GeneratorExit`` and other ``BaseException``\\ s raised by the code
  (``"base_exception"``). A real Ctrl-C / Jupyter "interrupt" while the call runs is *not*
  swallowed: it is re-raised after clean-up;
- an endless loop, or a call that runs for minutes, ``time.sleep(600)`` included (``"timeout"``);
- thousands of printed lines: ``sys.stdout`` and ``sys.stderr`` are captured, counted, and only the
  first few lines are kept (:attr:`GuardedResult.output_head`); ``input()`` fails instead of waiting;
- changes made in place to its arguments (tensors, lists, dicts, and those one level inside a list,
  tuple or dict): named in :attr:`GuardedResult.modified`, and undone, so the caller's data is intact.

How the time limit works (measured, chosen, documented). In the main thread on POSIX (Jupyter's and
pytest's case) ``fn`` runs in the calling thread under a ``SIGALRM`` interval timer whose handler raises
:class:`GuardTimeout` (a ``BaseException``, so ``except Exception`` in ``fn`` cannot swallow it; the
timer re-fires every 50 ms in case a bare ``except:`` does). This stops pure-Python loops *and*
``time.sleep``, keeps torch's thread-local state (grad mode) and autograd graphs as they are. A guarded
call costs about 0.5 ms more than a plain one with two (1, 3, 48, 48) tensor arguments, mostly for
copying and comparing them (measured at load 5.4 on 2 cores; starting and joining a thread alone
costs about 0.13 ms there). Elsewhere (another thread, Windows) ``fn`` runs in a daemon thread that
is joined with the limit; on time-out ``PyThreadState_SetAsyncExc`` injects :class:`GuardTimeout`
into it. That stops pure-Python loops but not a blocking C call such as ``time.sleep``: the verdict
still comes back on time and says the call may still be running in the background. A forked
subprocess was rejected: forking after torch has started its thread pools can deadlock, and results
with autograd graphs cannot cross a process boundary. Neither mode can interrupt one long C
operation (a huge matrix product) before it returns.

Example:
    >>> r = run_guarded(lambda x: x + 1, 41, timeout=1.0)
    >>> r.ok, r.value
    (True, 42)
    >>> r = run_guarded(lambda: [print(i) for i in range(10_000)], timeout=5.0)
    >>> r.printed_lines, r.output_head[:2]
    (10000, ('0', '1'))
    >>> def spin():
    ...     while True:
    ...         pass
    >>> r = run_guarded(spin, timeout=0.2)
    >>> r.kind, r.ok
    ('timeout', False)
"""
from __future__ import annotations

import builtins
import contextlib
import ctypes
import inspect
import io
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["run_guarded", "GuardedResult", "GuardTimeout", "GuardedExit"]

#: lines of captured output kept (the rest is only counted), and characters kept per line.
KEEP_LINES, KEEP_CHARS = 20, 300
_REFIRE_S = 0.05


class GuardTimeout(BaseException):
    """Raised inside the guarded call when its time limit is over (never escapes :func:`run_guarded`)."""


class GuardedExit(SystemExit):
    """What ``exit()``, ``quit()`` and ``os._exit()`` raise while a guarded call runs."""


@dataclass
class GuardedResult:
    """What happened when :func:`run_guarded` called a function.

    Attributes:
        kind: ``"returned"``, ``"raised"`` (an ``Exception``), ``"exit"`` (``SystemExit``: ``sys.exit``,
            ``exit()``, ``quit()``, ``os._exit``), ``"base_exception"`` (another ``BaseException``, e.g.
            ``KeyboardInterrupt``) or ``"timeout"``.
        value: the return value (``None`` unless ``kind == "returned"``).
        exception: the exception raised, if any.
        elapsed: seconds the call took (up to the limit).
        timeout: the limit in seconds (``None``: no limit).
        printed_lines: lines written to ``sys.stdout`` / ``sys.stderr`` during the call.
        output_head: the first :data:`KEEP_LINES` of them (each cut at :data:`KEEP_CHARS` characters).
        modified: the arguments changed in place, e.g. ``("argument 'pred'",)`` (then undone).
        still_running: thread mode only: the timed-out call could not be stopped and runs on.
    """

    kind: str = "returned"
    value: Any = None
    exception: BaseException | None = None
    elapsed: float = 0.0
    timeout: float | None = None
    printed_lines: int = 0
    output_head: tuple = ()
    modified: tuple = ()
    still_running: bool = False

    @property
    def ok(self) -> bool:
        """True when the call returned and changed none of its arguments."""
        return self.kind == "returned" and not self.modified

    def problem(self, what: str = "your function") -> str | None:
        """One learner-facing sentence (or two) saying what went wrong, or ``None`` when :attr:`ok`."""
        exc = self.exception
        if self.kind == "raised":
            return f"{what} raised {type(exc).__name__}: {_one_line(exc)}"
        if self.kind == "exit":
            return (f"{what} tried to stop the program (sys.exit(), exit(), quit() or os._exit()). A function "
                    f"must hand back its result with return; remove the exit call.")
        if self.kind == "base_exception":
            return (f"{what} raised {type(exc).__name__}, which is not an ordinary error (it derives from "
                    f"BaseException, not Exception) and would stop whatever calls it. Raise an ordinary "
                    f"exception such as ValueError, or return a value.")
        if self.kind == "timeout":
            extra = (" It could not be stopped and may still be running in the background."
                     if self.still_running else "")
            return (f"{what} did not finish within {self.timeout:g} s (the time limit per call) and was "
                    f"stopped. Look for a loop whose condition never becomes false, or for work that grows "
                    f"far faster than needed (a Python loop over every pixel).{extra}")
        if self.modified:
            return (f"{what} changed {', '.join(self.modified)} in place. A function must leave its "
                    f"inputs as they were: compute new tensors (out-of-place operations) instead of "
                    f"writing into, clamping or adding to the ones it was given.")
        return None

    def output_note(self, what: str = "your function", max_lines: int = 3) -> str:
        """``""``, or a short note with the number of printed lines and the first ``max_lines`` of them."""
        if not self.printed_lines:
            return ""
        shown = "\n".join(f"    | {line}" for line in self.output_head[:max_lines])
        more = f" (the first {min(max_lines, len(self.output_head))} shown)" if self.printed_lines > max_lines else ""
        return f"{what} printed {self.printed_lines} line{'s' * (self.printed_lines != 1)}{more}:\n{shown}"


def _one_line(exc: BaseException | None, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) if exc is not None else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Output capture
# ---------------------------------------------------------------------------------------------
class _Capture(io.TextIOBase):
    """A text stream that counts lines and keeps only the first few (memory stays bounded)."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.partial = ""
        self.newlines_seen = 0

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self):  # some code inspects sys.stdout.encoding
        return "utf-8"

    def write(self, s) -> int:
        s = str(s)
        self.newlines_seen += s.count("\n")
        if len(self.lines) < KEEP_LINES:
            parts = (self.partial + s).split("\n")
            self.partial = parts.pop()[:KEEP_CHARS]
            self.lines.extend(p[:KEEP_CHARS] for p in parts[: KEEP_LINES - len(self.lines)])
        elif "\n" in s:  # past the kept lines: only remember whether a line is left open
            self.partial = s.rsplit("\n", 1)[1][:1]
        elif s:
            self.partial = self.partial or s[:1]
        return len(s)

    def result(self) -> tuple[int, tuple]:
        count = self.newlines_seen + (1 if self.partial else 0)
        head = list(self.lines)
        if self.partial and len(head) < KEEP_LINES:
            head.append(self.partial)
        return count, tuple(head[:KEEP_LINES])


def _no_input(*_args, **_kwargs):
    raise RuntimeError("input() is not available here: the function is being run by a check, with no keyboard. "
                       "Pass values as arguments instead.")


def _exit(*args, **_kwargs):
    raise GuardedExit(*args[:1])


@contextlib.contextmanager
def _sandbox(fn):
    """Capture output; replace input(), exit(), quit(), os._exit() (also in ``fn``'s globals)."""
    cap = _Capture()
    namespaces = [vars(builtins)]
    g = getattr(inspect.unwrap(fn), "__globals__", None) if callable(fn) else None
    if isinstance(g, dict) and g is not namespaces[0]:
        namespaces.append(g)
    saved = []
    for ns in namespaces:
        for name, repl in (("exit", _exit), ("quit", _exit), ("input", _no_input)):
            if name in ns or ns is namespaces[0]:
                saved.append((ns, name, ns.get(name, _MISSING)))
                ns[name] = repl
    saved_os_exit = os._exit
    os._exit = _exit
    try:
        with contextlib.redirect_stdout(cap), contextlib.redirect_stderr(cap):
            yield cap
    finally:
        os._exit = saved_os_exit
        for ns, name, old in reversed(saved):
            if old is _MISSING:
                ns.pop(name, None)
            else:
                ns[name] = old


_MISSING = object()


# ---------------------------------------------------------------------------------------------
# In-place modification
# ---------------------------------------------------------------------------------------------
def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _labels(fn, args, kwargs) -> list[tuple[str, Any]]:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        items = list(bound.arguments.items())
        out = []
        for name, value in items:
            kind = inspect.signature(fn).parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                out += [(f"argument {name}[{i}]", v) for i, v in enumerate(value)]
            elif kind is inspect.Parameter.VAR_KEYWORD:
                out += [(f"argument {k!r}", v) for k, v in value.items()]
            else:
                out.append((f"argument {name!r}", value))
        return out
    except (TypeError, ValueError):
        return [(f"argument {i + 1}", a) for i, a in enumerate(args)] + [(f"argument {k!r}", v)
                                                                          for k, v in kwargs.items()]


class _Snapshot:
    """Copies of the mutable arguments, to detect and undo in-place changes."""

    def __init__(self, fn, args, kwargs):
        self.items = []
        for label, value in _labels(fn, args, kwargs):
            self._add(label, value, depth=0)

    def _add(self, label, value, depth):
        if _is_tensor(value):
            self.items.append(("tensor", label, value, value.detach().clone(), value._version))
        elif isinstance(value, list):
            self.items.append(("list", label, value, list(value), None))
        elif isinstance(value, dict):
            self.items.append(("dict", label, value, dict(value), None))
        if depth == 0 and isinstance(value, (list, tuple, dict)):
            inner = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in list(inner)[:1000]:
                self._add(f"{label}[{k!r}]", v, depth=1)

    @staticmethod
    def _tensor_changed(t, copy) -> bool:
        torch = sys.modules["torch"]
        if t.shape != copy.shape or t.dtype != copy.dtype:
            return True
        now = t.detach()
        if now.is_floating_point() or now.is_complex():
            same = (now == copy) | (torch.isnan(now) & torch.isnan(copy))
            return not bool(same.all())
        return not torch.equal(now, copy)

    def changed_and_restore(self, restore: bool = True) -> tuple:
        changed = []
        for kind, label, obj, copy, _version in self.items:
            if kind == "tensor":
                if self._tensor_changed(obj, copy):
                    changed.append(label)
                    if restore:
                        torch = sys.modules["torch"]
                        with torch.no_grad():
                            if obj.shape == copy.shape and obj.dtype == copy.dtype:
                                obj.detach().copy_(copy)
                            else:
                                obj.data = copy
            elif kind == "list":
                if len(obj) != len(copy) or any(a is not b for a, b in zip(obj, copy)):
                    changed.append(label)
                    if restore:
                        obj[:] = copy
            elif kind == "dict":
                if obj.keys() != copy.keys() or any(obj[k] is not copy[k] for k in copy):
                    changed.append(label)
                    if restore:
                        obj.clear()
                        obj.update(copy)
        return tuple(dict.fromkeys(changed))


# ---------------------------------------------------------------------------------------------
# The time limit
# ---------------------------------------------------------------------------------------------
def _alarm_available() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _call_with_alarm(call, timeout):
    """Run ``call()`` in this (main) thread under SIGALRM. Returns (box, fired, user_interrupted)."""
    box, state = {}, {"armed": True, "fired": False, "sigint": False}

    def on_alarm(signum, frame):
        if state["armed"]:
            state["fired"] = True
            raise GuardTimeout()

    prev_alarm = signal.getsignal(signal.SIGALRM)
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    limit = timeout if timeout is not None else 0.0
    if outer_delay > 0:  # an enclosing guard: never outlive its deadline
        limit = min(limit, outer_delay) if limit else outer_delay
    prev_int = signal.getsignal(signal.SIGINT)
    wrapped_int = None
    if callable(prev_int):
        def wrapped_int(signum, frame):
            state["sigint"] = True
            prev_int(signum, frame)
    start = time.monotonic()
    signal.signal(signal.SIGALRM, on_alarm)
    if wrapped_int is not None:
        signal.signal(signal.SIGINT, wrapped_int)
    try:
        try:
            if limit:
                signal.setitimer(signal.ITIMER_REAL, limit, _REFIRE_S)
            try:
                box["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - reported, never propagated
                box["exc"] = exc
        finally:
            state["armed"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except GuardTimeout:  # fired between the call's end and disarming
        state["fired"] = True
    finally:
        signal.signal(signal.SIGALRM, prev_alarm)
        if wrapped_int is not None:
            signal.signal(signal.SIGINT, prev_int)
        if outer_delay > 0:
            left = outer_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-4), outer_interval)
    if isinstance(box.get("exc"), GuardTimeout):
        state["fired"] = True
    return box, state["fired"], state["sigint"]


def _call_in_thread(call, timeout):
    """Run ``call()`` in a daemon thread; on time-out inject GuardTimeout. Returns (box, fired, alive)."""
    box = {}
    torch = sys.modules.get("torch")
    grad = torch.is_grad_enabled() if torch is not None else None

    def target():
        try:
            if torch is not None:
                with torch.set_grad_enabled(grad):
                    box["value"] = call()
            else:
                box["value"] = call()
        except BaseException as exc:  # noqa: BLE001
            box["exc"] = exc

    worker = threading.Thread(target=target, name="run_guarded", daemon=True)
    worker.start()
    worker.join(timeout)
    if not worker.is_alive():
        return box, isinstance(box.get("exc"), GuardTimeout), False
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(GuardTimeout))
    worker.join(0.5)
    return {}, True, worker.is_alive()


def run_guarded(fn: Callable, *args, timeout: float | None = 10.0, restore: bool = True, **kwargs) -> GuardedResult:
    """Call ``fn(*args, **kwargs)`` safely and report what happened (see the module docstring).

    Args:
        fn: any callable.
        *args, **kwargs: passed to ``fn`` unchanged (the keyword names ``timeout`` and ``restore`` are
            this function's own).
        timeout: the limit in seconds for this one call (``None``: no limit). Must be > 0.
        restore: undo in-place changes to the arguments after reporting them (default True).

    Returns:
        :class:`GuardedResult`. Never raises because of ``fn``; re-raises ``KeyboardInterrupt`` only
        when the *user* interrupted (Ctrl-C, Jupyter's stop button) while ``fn`` ran.

    Raises:
        TypeError: ``fn`` is not callable. ValueError: ``timeout`` is not a positive number.
    """
    if not callable(fn):
        raise TypeError(f"run_guarded needs a function, got {type(fn).__name__}; pass the function itself, "
                        f"without calling it (no parentheses).")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0 or timeout != timeout):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}.")
    snapshot = _Snapshot(fn, args, kwargs)
    still_running, user_interrupt = False, False
    start = time.monotonic()
    with _sandbox(fn) as cap:
        if _alarm_available():
            box, fired, user_interrupt = _call_with_alarm(lambda: fn(*args, **kwargs), timeout)
        else:
            box, fired, still_running = _call_in_thread(lambda: fn(*args, **kwargs), timeout)
    elapsed = time.monotonic() - start
    modified = () if still_running else snapshot.changed_and_restore(restore)
    lines, head = cap.result()
    if user_interrupt:
        raise KeyboardInterrupt
    exc = box.get("exc")
    if fired:
        kind, exc = "timeout", None
    elif exc is None:
        kind = "returned"
    elif isinstance(exc, SystemExit):
        kind = "exit"
    elif isinstance(exc, Exception):
        kind = "raised"
    else:
        kind = "base_exception"
    if exc is not None:
        exc.__traceback__ = None  # nobody shows it; drop the frames it keeps alive
    return GuardedResult(kind=kind, value=box.get("value") if kind == "returned" else None, exception=exc,
                         elapsed=elapsed, timeout=timeout,
                         printed_lines=lines, output_head=head, modified=modified, still_running=still_running)
