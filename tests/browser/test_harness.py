"""The harness itself: the offline guard blocks and records a non-local request; a missing tool
skips, or fails under LOWLIGHT_BROWSER=1; a started server's whole process group is killed."""
import subprocess
import sys
import time

import pytest

import _browser


def test_guard_blocks_and_records_external_requests(chromium):
    ctx, guard = chromium.context()
    page = ctx.new_page()
    page.set_content('<img src="http://example.org/tracker.png"><script src="https://cdn.example.com/x.js"></script>')
    page.wait_for_timeout(500)
    ctx.close()
    assert sorted(guard.blocked) == ["http://example.org/tracker.png", "https://cdn.example.com/x.js"]
    with pytest.raises(pytest.fail.Exception, match="2 request"):
        guard.check()


@pytest.mark.parametrize("url, local", [("http://127.0.0.1:8888/lab", True), ("http://localhost/x", True),
                                        ("data:image/png;base64,AAAA", True), ("http://127.0.0.1.evil.org/", False),
                                        ("https://cdn.jsdelivr.net/npm/mathjax@3", False), ("ws://10.0.0.1/k", False)])
def test_is_local(url, local):
    assert _browser.OfflineGuard.is_local(url) is local


def test_missing_tool_skips_or_fails(monkeypatch):
    monkeypatch.delenv("LOWLIGHT_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        _browser.unavailable("chromium is not installed")
    monkeypatch.setenv("LOWLIGHT_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="LOWLIGHT_BROWSER=1"):
        _browser.unavailable("chromium is not installed")


def test_server_stop_kills_the_whole_group(tmp_path):
    # a parent that starts a child and ignores SIGTERM: stop() must leave neither behind
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            "print(c.pid, flush=True); time.sleep(600)")
    srv = _browser.Server([sys.executable, "-c", code], env=None, cwd=tmp_path, log=tmp_path / "log", name="t")
    deadline = time.monotonic() + 20
    while not srv.log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(srv.log.read_text().split()[0])
    srv.stop(grace=1.0)
    assert srv.proc.poll() is not None
    r = subprocess.run(["ps", "-o", "stat=", "-p", str(child)], capture_output=True, text=True)
    assert r.stdout.strip() in ("", "Z"), f"the child {child} survived stop(): {r.stdout!r}"
