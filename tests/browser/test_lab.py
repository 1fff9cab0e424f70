"""Chapter 04 in JupyterLab in Debian's Chromium: Run All under smoke, no errors, and the weight
sweep's explorer responds to its slider (issue 13, item 3).

The server runs on 127.0.0.1 with a token, from a temporary copy of the notebook (notebooks/ is
never touched), with its own HOME and Jupyter dirs. Screenshots: build/screenshots/test_chapter_04_explorer/.
"""
import os
import secrets
import shutil
import time

import pytest

import _browser
import _lab

NOTEBOOK = "04_weight_imbalance.ipynb"
RUN_TIMEOUT = float(os.environ.get("LOWLIGHT_BROWSER_RUN_TIMEOUT", "600"))  # smoke: ~40 s on 2 quiet cores

# The readout's own text must fit its box, and the box must lie inside every ancestor (up to the
# output area) that clips its content.
_CLIPPED_JS = """
el => {
  const r = el.getBoundingClientRect(), problems = [];
  if (el.scrollWidth > el.clientWidth + 1)
    problems.push(`its text needs ${el.scrollWidth}px but the label is ${el.clientWidth}px wide`);
  for (let p = el.parentElement; p && !p.classList.contains('jp-OutputArea'); p = p.parentElement) {
    const s = getComputedStyle(p);
    if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
    const q = p.getBoundingClientRect();
    if (r.left < q.left - 1 || r.right > q.right + 1 || r.top < q.top - 1 || r.bottom > q.bottom + 1)
      problems.push(`box [${r.left|0},${r.right|0}]x[${r.top|0},${r.bottom|0}] outside ${p.className} ` +
                    `[${q.left|0},${q.right|0}]x[${q.top|0},${q.bottom|0}] (overflow ${s.overflowX}/${s.overflowY})`);
  }
  return {text: el.textContent, width: r.width, problems};
}
"""


@pytest.fixture
def lab(request, tmp_path):
    """JupyterLab on 127.0.0.1:<free port> with a token, serving a temp copy of chapter 04."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(_browser.ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    env = _browser.isolated_env(tmp_path / "lab", LOWLIGHT_PROFILE="smoke")
    _browser.write_lab_settings(env["JUPYTER_CONFIG_DIR"])
    port, token = _browser.free_port(), secrets.token_hex(16)
    cmd = [_browser.python(), "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}", "--LabApp.news_url=", "--ServerApp.allow_remote_access=False"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    srv = _browser.start_server(request, cmd, env=env, cwd=work, log=tmp_path / "lab.log", name="JupyterLab")
    base = f"http://127.0.0.1:{port}"
    _browser.wait_http(f"{base}/api/status?token={token}", srv, timeout=90)
    return {"base": base, "token": token, "work": work, "server": srv}


def test_chapter_04_explorer(lab, guarded, shots):
    ctx, guard = guarded
    page = ctx.new_page()
    t0 = time.monotonic()
    _lab.open_notebook(page, f"{lab['base']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
    cells = _lab.run_all(page, timeout=RUN_TIMEOUT)
    run_s = time.monotonic() - t0
    assert cells, "no code cells found in the notebook as JupyterLab shows it"
    saved = _lab.save(page, lab["work"] / NOTEBOOK)
    assert _lab.error_outputs(saved) == [], "error outputs in the saved notebook"
    print(f"chapter 04, Run All under smoke in Chromium: {run_s:.1f} s, {len(cells)} code cells")

    # the explorer: a VBox whose title is the sweep's
    explorer = page.locator(".widget-vbox", has=page.locator(".widget-html", has_text="Weight sweep")).first
    try:
        explorer.wait_for(state="visible", timeout=60_000)
    except Exception:
        shots_path = shots / "page_no_explorer.png"
        page.screenshot(path=str(shots_path), full_page=True)
        pytest.fail(f"the weight-sweep explorer did not render as a widget (screenshot {shots_path})",
                    pytrace=False)
    explorer.scroll_into_view_if_needed()
    slider = explorer.locator(".widget-slider").first
    # the value label: viz's own (class lowlight-slider-value, beside the slider) where it hides
    # ipywidgets' readout, else the readout
    custom = explorer.locator(".lowlight-slider-value")
    readout = (custom.locator(".widget-html-content") if custom.count() else slider.locator(".widget-readout")).first
    assert readout.is_visible(), "the slider's value label is not shown"
    handle = slider.locator(".noUi-handle").first
    out = explorer.locator(".widget-output").first
    img = out.locator("img").first
    img.wait_for(state="visible", timeout=60_000)
    metrics = out.locator(".jp-OutputArea-output", has_text="PSNR").first

    def state():
        return {"src": img.get_attribute("src"), "metrics": metrics.inner_text().strip(),
                "value": readout.inner_text().strip(), "figures": out.locator("img").count()}

    before = state()
    assert before["src"] and before["src"].startswith("data:image/"), f"explorer image src: {before['src']!r:.80}"
    assert img.evaluate("e => e.naturalWidth") > 0, "the explorer's image did not load"
    explorer.screenshot(path=str(shots / "explorer_before.png"))

    clip_before = readout.evaluate(_CLIPPED_JS)

    handle.focus()
    page.keyboard.press("ArrowRight")
    deadline = time.monotonic() + 60
    after = state()
    # until the panel is redrawn: a new image and as many figures as before (the metric curves too)
    while (after["src"] == before["src"] or after["figures"] < before["figures"]) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        after = state()
    explorer.screenshot(path=str(shots / "explorer_after.png"))
    assert after["value"] != before["value"], f"the slider's value did not change: {after['value']!r}"
    assert after["src"] != before["src"], "the shown image did not change when the slider moved"
    assert after["metrics"] != before["metrics"], f"the metrics did not change: {after['metrics']!r}"
    for clip in (clip_before, readout.evaluate(_CLIPPED_JS)):
        assert clip["problems"] == [], f"the slider's value label {clip['text']!r} is clipped: {clip['problems']}"
    guard.check()
