"""Tests for lowlight_course.guarded.run_guarded: whatever the guarded function does (exit, raise a
BaseException, loop or sleep forever, print thousands of lines, change its arguments), a result comes
back within about the time limit, the process and the caller's data survive, and the report says
what happened."""
import os
import signal
import sys
import threading
import time

import pytest
import torch

from lowlight_course.guarded import KEEP_CHARS, KEEP_LINES, GuardedResult, run_guarded


def in_thread(fn, *args, **kwargs):
    """Run run_guarded from a worker thread (the daemon-thread mode), in the caller's grad mode."""
    box, grad = {}, torch.is_grad_enabled()

    def target():
        with torch.set_grad_enabled(grad):
            box["r"] = run_guarded(fn, *args, **kwargs)

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    assert not t.is_alive(), "run_guarded did not come back from the worker thread"
    return box["r"]


MODES = {"main thread (SIGALRM)": run_guarded, "worker thread (async exception)": in_thread}


def spin():
    while True:
        pass


def spin_catching_exceptions():
    while True:
        try:
            sum(range(100))
        except Exception:  # noqa: BLE001 - a learner's over-broad except must not defeat the limit
            pass


def busy_torch():
    x = torch.ones(8, 8)
    while True:
        x = (x @ x).clamp(0, 1)


# --------------------------------------------------------------------------- normal calls
@pytest.mark.parametrize("mode", MODES)
def test_returns_value_and_passes_arguments(mode):
    r = MODES[mode](lambda a, b=0, *, c=1: a + b + c, 1, b=2, c=3, timeout=2.0)
    assert r.ok and r.kind == "returned" and r.value == 6 and r.exception is None
    assert r.problem() is None and r.output_note() == "" and not r.modified


@pytest.mark.parametrize("mode", MODES)
def test_keeps_the_autograd_graph_and_grad_mode(mode):
    x = torch.rand(4, requires_grad=True)
    r = MODES[mode](lambda t: (t ** 2).sum(), x, timeout=2.0)
    assert r.ok and r.value.grad_fn is not None
    (g,) = torch.autograd.grad(r.value, x)
    assert torch.allclose(g, 2 * x.detach())
    with torch.no_grad():
        assert MODES[mode](torch.is_grad_enabled, timeout=2.0).value is False
    assert MODES[mode](torch.is_grad_enabled, timeout=2.0).value is True


def test_exception_is_reported_not_raised():
    r = run_guarded(lambda: {}["missing"], timeout=1.0)
    assert r.kind == "raised" and isinstance(r.exception, KeyError) and not r.ok
    assert r.problem("f") == "f raised KeyError: 'missing'"
    assert r.exception.__traceback__ is None
    r = run_guarded(lambda: (_ for _ in ()).throw(NotImplementedError("todo")), timeout=1.0)
    assert r.kind == "raised" and isinstance(r.exception, NotImplementedError)


def test_long_exception_message_is_cut():
    r = run_guarded(lambda: (_ for _ in ()).throw(ValueError("x" * 5000)), timeout=1.0)
    assert len(r.problem()) < 400


# --------------------------------------------------------------------------- exits and BaseExceptions
def _exit_fns():
    return {"sys.exit()": lambda: sys.exit(), "sys.exit(3)": lambda: sys.exit(3), "exit()": lambda: exit(),
            "quit()": lambda: quit(), "os._exit(1)": lambda: os._exit(1), "raise SystemExit": lambda: (_ for _ in ()).throw(SystemExit)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", list(_exit_fns()))
def test_exit_is_a_verdict(mode, how):
    r = MODES[mode](_exit_fns()[how], timeout=2.0)
    assert r.kind == "exit" and not r.ok
    assert "stop the program" in r.problem() and "return" in r.problem()
    assert os._exit.__module__ == "posix" or os._exit.__module__ == "nt"  # restored


def test_ipython_style_exit_in_the_functions_globals_is_never_called():
    """IPython puts an `exit` object in the notebook's namespace that asks the kernel to shut down."""
    asked = []

    class KernelExiter:
        def __call__(self, *a):
            asked.append(True)

    ns = {"exit": KernelExiter(), "quit": KernelExiter()}
    exec("def learner():\n    exit()\n    return 1\n", ns)
    r = run_guarded(ns["learner"], timeout=2.0)
    assert r.kind == "exit" and not asked
    assert isinstance(ns["exit"], KernelExiter) and isinstance(ns["quit"], KernelExiter)  # put back
    assert "input" not in ns  # nothing left behind in the namespace


class MyBase(BaseException):
    pass


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("exc", [KeyboardInterrupt, GeneratorExit, MyBase])
def test_base_exceptions_are_a_verdict(mode, exc):
    def raiser():
        raise exc("learner's own")

    r = MODES[mode](raiser, timeout=2.0)
    assert r.kind == "base_exception" and isinstance(r.exception, exc)
    assert exc.__name__ in r.problem() and "BaseException" in r.problem()


def test_a_real_user_interrupt_is_not_swallowed():
    """With Python's own Ctrl-C handler in place (a Jupyter kernel, a terminal), a real SIGINT during a
    guarded call still stops the caller. (pytest-xdist workers ignore SIGINT, so install it here.)"""
    def interrupted():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)
        return "not reached"

    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_guarded(interrupted, timeout=5.0)
        assert time.monotonic() - t0 < 1.5
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the guard put the handler back"
    finally:
        signal.signal(signal.SIGINT, outer)


# --------------------------------------------------------------------------- time limits
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", [spin, spin_catching_exceptions, busy_torch], ids=lambda f: f.__name__)
def test_endless_loops_are_stopped(mode, fn):
    t0 = time.monotonic()
    r = MODES[mode](fn, timeout=0.3)
    took = time.monotonic() - t0
    assert r.kind == "timeout" and not r.ok and r.value is None
    assert took < 1.5, took
    assert "0.3 s" in r.problem() and "time limit per call" in r.problem()


def test_a_ten_minute_sleep_is_stopped_in_the_main_thread():
    t0 = time.monotonic()
    r = run_guarded(time.sleep, 600, timeout=0.3)
    assert r.kind == "timeout" and time.monotonic() - t0 < 1.0 and not r.still_running


def test_a_ten_minute_sleep_in_thread_mode_returns_on_time_and_says_so():
    t0 = time.monotonic()
    r = in_thread(time.sleep, 600, timeout=0.3)
    assert r.kind == "timeout" and time.monotonic() - t0 < 2.0
    assert r.still_running and "background" in r.problem()


def test_no_limit_and_a_fast_call():
    assert run_guarded(lambda: 5, timeout=None).value == 5


def test_timer_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGALRM)
    run_guarded(spin, timeout=0.1)
    run_guarded(lambda: 1, timeout=1.0)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_nested_guards_respect_the_outer_deadline():
    inner = []

    def outer():
        inner.append(run_guarded(spin, timeout=30.0))
        return "after inner"

    t0 = time.monotonic()
    r = run_guarded(outer, timeout=0.3)
    assert time.monotonic() - t0 < 1.5
    assert inner and inner[0].kind == "timeout"
    assert r.kind in ("timeout", "returned")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_enclosing_timer_keeps_running():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda s, f: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.4)
        assert run_guarded(lambda: 7, timeout=5.0).value == 7
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 0.4
        time.sleep(0.6)
        assert fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- output
def test_ten_thousand_lines_are_counted_and_only_a_few_kept(capsys):
    def chatty():
        for i in range(10_000):
            print("line", i)
        print("to stderr", file=sys.stderr)
        return "done"

    r = run_guarded(chatty, timeout=5.0)
    assert r.ok and r.value == "done"
    assert r.printed_lines == 10_001
    assert len(r.output_head) == KEEP_LINES and r.output_head[:2] == ("line 0", "line 1")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    note = r.output_note("f")
    assert "10001 lines" in note and "line 0" in note and "line 2" in note and "line 3" not in note


def test_huge_lines_and_partial_lines_stay_bounded():
    r = run_guarded(lambda: sys.stdout.write("y" * 10_000_000), timeout=5.0)
    assert r.printed_lines == 1 and len(r.output_head[0]) == KEEP_CHARS
    r = run_guarded(lambda: [sys.stdout.write(c) for c in "ab\ncd"], timeout=5.0)
    assert r.printed_lines == 2 and r.output_head == ("ab", "cd")
    r = run_guarded(lambda: print("\n" * (KEEP_LINES + 5) + "tail", end=""), timeout=5.0)
    assert r.printed_lines == KEEP_LINES + 6 and len(r.output_head) == KEEP_LINES


def test_input_fails_instead_of_waiting():
    r = run_guarded(lambda: input("your name? "), timeout=2.0)
    assert r.kind == "raised" and "input()" in r.problem()
    assert input.__module__ == "builtins" and input is __builtins__["input"] if isinstance(__builtins__, dict) else True


# --------------------------------------------------------------------------- in-place changes
def test_in_place_change_of_a_tensor_is_named_and_undone():
    x = torch.rand(2, 3)
    keep = x.clone()

    def clamps(pred, target):
        pred.mul_(2).clamp_(0, 1)
        return ((pred - target) ** 2).mean()

    r = run_guarded(clamps, x, torch.zeros(2, 3), timeout=2.0)
    assert r.kind == "returned" and not r.ok and r.modified == ("argument 'pred'",)
    assert "changed argument 'pred' in place" in r.problem()
    assert torch.equal(x, keep)


def test_writes_that_bypass_the_version_counter_are_seen():
    x = torch.rand(5)
    r = run_guarded(lambda t: t.numpy().__setitem__(0, 42.0), x, timeout=2.0)
    assert r.modified == ("argument 't'",) and float(x[0]) != 42.0
    r = run_guarded(lambda t: t.data.zero_(), x, timeout=2.0)
    assert r.modified == ("argument 't'",) and float(x.abs().sum()) > 0


def test_harmless_in_place_ops_and_nan_inputs_are_not_blamed():
    x = torch.rand(4)
    assert run_guarded(lambda t: t.clamp_(0, 1), x, timeout=2.0).modified == ()
    y = torch.tensor([float("nan"), 1.0])
    assert run_guarded(lambda t: t + 1, y, timeout=2.0).ok


def test_containers_and_tensors_inside_them():
    terms = {"a": torch.ones(3), "b": torch.zeros(3)}
    items = [torch.ones(2)]
    a = terms["a"]

    def meddles(d, lst, *rest, scale=1.0):
        d.pop("b")
        d["a"].add_(1)
        lst.append(0)
        return 0

    r = run_guarded(meddles, terms, items, 3, scale=2.0, timeout=2.0)
    assert set(r.modified) == {"argument 'd'", "argument 'd'['a']", "argument 'lst'"}
    assert list(terms) == ["a", "b"] and terms["a"] is a and torch.equal(a, torch.ones(3)) and len(items) == 1


def test_resize_in_place_is_undone():
    x = torch.arange(6.0)
    r = run_guarded(lambda t: t.resize_(2), x, timeout=2.0)
    assert r.modified and x.shape == (6,) and torch.equal(x, torch.arange(6.0))


def test_leaf_requiring_grad_modified_raises_in_the_function_not_here():
    x = torch.rand(3, requires_grad=True)
    r = run_guarded(lambda t: t.add_(1), x, timeout=2.0)
    assert r.kind == "raised" and isinstance(r.exception, RuntimeError)


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("timeout", [0, -1, "3", float("nan"), True])
def test_bad_timeout_is_rejected(timeout):
    with pytest.raises(ValueError, match="positive number"):
        run_guarded(lambda: 1, timeout=timeout)


def test_non_callable_is_rejected():
    with pytest.raises(TypeError, match="without calling it"):
        run_guarded(42)


def test_result_type():
    assert isinstance(run_guarded(lambda: 1), GuardedResult)
