"""Shared harness of the real-browser suites (tests/browser/, tests/hub/).

- Debian's ``chromium`` (``shutil.which("chromium")``) driven by Playwright as ``executable_path``
  (Playwright's own browser download cannot work offline).
- Missing Chromium, Playwright or node: ``pytest.skip`` with that exact reason, except under
  ``LOWLIGHT_BROWSER=1`` (CI, ``make browser-test`` / ``make hub-test``), where it fails instead.
- Every page runs behind :class:`OfflineGuard`: any request to a host other than 127.0.0.1 /
  localhost is aborted and recorded, and the test fails if one was made.
- Servers are started in their own process group and killed (whole group) by a finalizer, also
  when the test fails; every wait has a timeout.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Chromium's own background traffic (updates, safe browsing, metrics) is switched off, so the only
# requests left are the pages'.
CHROMIUM_ARGS = [
    "--no-sandbox",                 # CI runs as root; Chromium refuses to start sandboxed as root
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
]


def strict() -> bool:
    """True under ``LOWLIGHT_BROWSER=1``: a missing tool fails the test instead of skipping it."""
    return os.environ.get("LOWLIGHT_BROWSER", "") == "1"


def unavailable(reason: str):
    """Skip with ``reason``, or fail with it under ``LOWLIGHT_BROWSER=1``."""
    if strict():
        pytest.fail(f"{reason} (LOWLIGHT_BROWSER=1 is set, so this fails instead of skipping)",
                    pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's Chromium and Playwright for Python, or skip/fail naming which is missing and how to add it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("Playwright for Python is not installed: "
                    ".venv/bin/pip install -c constraints/tested.txt -e '.[browser]' (or make browser-test)")
    path = os.environ.get("LOWLIGHT_CHROMIUM") or shutil.which("chromium")
    if not path:
        unavailable("Debian's chromium is not installed: apt-get install -y chromium "
                    "(as root; or make browser-test), or set LOWLIGHT_CHROMIUM to a Chromium binary")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(base: Path, **extra) -> dict:
    """Environment with its own HOME, Jupyter and IPython dirs, XDG dirs and TMPDIR under ``base``."""
    base = Path(base)
    env = dict(os.environ)
    dirs = {
        "HOME": base / "home",
        "JUPYTER_CONFIG_DIR": base / "jupyter" / "config",
        "JUPYTER_DATA_DIR": base / "jupyter" / "data",
        "JUPYTER_RUNTIME_DIR": base / "jupyter" / "runtime",
        "IPYTHONDIR": base / "ipython",
        "XDG_CONFIG_HOME": base / "xdg" / "config",
        "XDG_CACHE_HOME": base / "xdg" / "cache",
        "XDG_DATA_HOME": base / "xdg" / "data",
        "MPLCONFIGDIR": base / "mpl",
        "TMPDIR": base / "tmp",
    }
    for k, v in dirs.items():
        v.mkdir(parents=True, exist_ok=True)
        env[k] = str(v)
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTERHUB_API_TOKEN", None)
    # Kernels in JupyterLab draw figures with the inline backend, as a learner's do; the suite's
    # MPLBACKEND=Agg (tests/conftest.py) would leave "<Figure size ...>" text instead of images.
    env.pop("MPLBACKEND", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def write_lab_settings(config_dir: Path) -> None:
    """JupyterLab user settings for tests: no news fetch or update check, every cell rendered.

    ``windowingMode: "none"``: Lab otherwise virtualises long notebooks and cells off screen are
    not in the DOM.
    """
    us = Path(config_dir) / "lab" / "user-settings" / "@jupyterlab"
    settings = {
        "apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                "checkForUpdates": False},
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, value in settings.items():
        p = us / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))


class Server:
    """A process started in its own session (process group), with its output in ``log``."""

    def __init__(self, cmd, *, env, cwd, log: Path, name: str):
        self.name, self.log = name, Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen([str(c) for c in cmd], env=env, cwd=str(cwd), stdout=self._fh,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the whole group, SIGKILL what is left after ``grace`` seconds."""
        try:
            pgid = os.getpgid(self.proc.pid)
        except ProcessLookupError:
            pgid = None
        if pgid is not None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    continue
                # the leader is gone; children of the group may not be
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self._fh.close()


def start_server(request, cmd, *, env, cwd, log, name) -> Server:
    """Start ``cmd`` and register a finalizer on ``request`` that kills its process group."""
    srv = Server(cmd, env=env, cwd=cwd, log=log, name=name)
    request.addfinalizer(srv.stop)
    return srv


def wait_http(url: str, server: Server | None = None, *, timeout: float = 60.0, ok=(200,),
              headers=None) -> float:
    """Poll ``url`` until it answers one of ``ok``; fail with the server's log tail otherwise.

    Returns the seconds it took.
    """
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        if server is not None and not server.alive():
            pytest.fail(f"{server.name} exited with {server.proc.returncode} before {url} answered; "
                        f"its log ({server.log}):\n{server.tail()}", pytrace=False)
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status in ok:
                    return time.monotonic() - t0
                last = r.status
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return time.monotonic() - t0
            last = e.code
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer {ok} within {timeout:.0f} s (last: {last!r})"
                + (f"; {server.name}'s log ({server.log}):\n{server.tail()}" if server else ""),
                pytrace=False)


class OfflineGuard:
    """Aborts and records every request of a browser context that does not go to 127.0.0.1."""

    def __init__(self):
        self.blocked: list[str] = []

    @staticmethod
    def is_local(url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about", "chrome", "chrome-extension", "devtools"):
            return True
        return (parts.hostname or "") in LOCAL_HOSTS

    def attach(self, context) -> None:
        def handle(route):
            url = route.request.url
            if self.is_local(url):
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort("blockedbyclient")

        context.route("**/*", handle)

        def on_ws(ws):  # websockets are not routed; record a non-local one
            if not self.is_local(ws.url):
                self.blocked.append(ws.url)

        context.on("page", lambda page: page.on("websocket", on_ws))

    def check(self) -> None:
        if self.blocked:
            pytest.fail(f"{len(self.blocked)} request(s) to hosts other than 127.0.0.1 were made "
                        f"(aborted): {sorted(set(self.blocked))[:20]}", pytrace=False)


class Browser:
    """Playwright + Debian Chromium with its temporary profile and HOME under ``base``."""

    def __init__(self, base: Path):
        from playwright.sync_api import sync_playwright

        self.base = Path(base)
        env = isolated_env(self.base / "chromium")
        # Playwright's driver puts the Chromium profile under its TMPDIR: keep it in our temp dir.
        saved = {k: os.environ.get(k) for k in ("TMPDIR", "HOME")}
        os.environ["TMPDIR"], os.environ["HOME"] = env["TMPDIR"], env["HOME"]
        try:
            self._pw = sync_playwright().start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            self.browser = self._pw.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, env=env, timeout=60_000)
        except Exception as e:
            self._pw.stop()
            pytest.fail(f"Chromium did not start under Playwright: {e}", pytrace=False)
        self.guards: list[OfflineGuard] = []

    def context(self, **kw):
        """A new browser context behind an :class:`OfflineGuard`; returns ``(context, guard)``."""
        ctx = self.browser.new_context(viewport=kw.pop("viewport", {"width": 1400, "height": 1000}),
                                       service_workers="block", **kw)
        ctx.set_default_timeout(30_000)
        ctx.set_default_navigation_timeout(60_000)
        guard = OfflineGuard()
        guard.attach(ctx)
        self.guards.append(guard)
        return ctx, guard

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


def screenshot_dir(request) -> Path:
    """``build/screenshots/<test name>/`` (emptied first)."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
    d = SCREENSHOTS / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def python() -> str:
    """The interpreter running the tests (the venv's), for servers started from it."""
    return sys.executable
