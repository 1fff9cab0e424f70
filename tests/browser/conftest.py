"""Fixtures of the real-browser tests: one Chromium per session, a guarded context per test.

See tests/_browser.py for the rules (offline guard, skip/fail, process groups).
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _browser  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Debian's Chromium through Playwright")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """A started Playwright + Chromium (skips or fails, per LOWLIGHT_BROWSER, where missing)."""
    _browser.chromium_path()
    b = _browser.Browser(tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


@pytest.fixture
def guarded(chromium):
    """``(context, guard)``: a fresh browser context; the test fails on any non-local request."""
    ctx, guard = chromium.context()
    yield ctx, guard
    ctx.close()
    guard.check()


@pytest.fixture
def shots(request):
    """Screenshot folder build/screenshots/<test>/."""
    return _browser.screenshot_dir(request)
