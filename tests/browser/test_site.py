"""The built website in Debian's Chromium, served from 127.0.0.1 only (issue 13, item 3).

A chapter page shows its figures (every image loaded, naturalWidth > 0) and MathJax (served by the
site itself) rendered its formulas; the search page finds "SSIM". The site is ``$LOWLIGHT_BOOK``
or build/book/ (``make book PROFILE=smoke``). Screenshots: build/screenshots/test_site_*/.
"""
import os
import time
from pathlib import Path

import pytest

import _browser

CHAPTER = "02_ssim_from_scratch"  # the chapter with display formulas and figures


def _book() -> Path:
    book = Path(os.environ.get("LOWLIGHT_BOOK") or _browser.ROOT / "build" / "book").resolve()  # the server runs elsewhere
    if not (book / "index.html").is_file():
        _browser.unavailable(f"no built website at {book} (no index.html): run `make book PROFILE=smoke` "
                             "first, or set LOWLIGHT_BOOK to a built site")
    return book


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    """``python -m http.server`` on 127.0.0.1:<free port> serving the book; yields (base URL, book dir)."""
    book = _book()
    _browser.chromium_path()
    tmp = tmp_path_factory.mktemp("site")
    port = _browser.free_port()
    srv = _browser.start_server(request, [_browser.python(), "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                          "--directory", str(book)],
                                env=_browser.isolated_env(tmp), cwd=tmp, log=tmp / "http.log", name="http.server")
    base = f"http://127.0.0.1:{port}"
    _browser.wait_http(f"{base}/index.html", srv, timeout=30)
    return base, book


def _page_of(book: Path, stem: str) -> str:
    found = sorted(book.rglob(f"{stem}.html"))
    assert found, f"the website has no page {stem}.html (pages: {sorted(p.name for p in book.rglob('*.html'))[:30]})"
    return found[0].relative_to(book).as_posix()


def test_site_chapter_figures_and_formulas(site, guarded, shots):
    base, book = site
    ctx, guard = guarded
    page = ctx.new_page()
    page.goto(f"{base}/{_page_of(book, CHAPTER)}", wait_until="load")
    imgs = page.locator("article img, main img")
    assert imgs.count() > 0, "the chapter page shows no figures"
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=30_000)
    broken = page.evaluate("() => Array.from(document.querySelectorAll('article img, main img'))"
                           ".filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 80))")
    assert broken == [], f"figures that did not load: {broken}"
    n_img = imgs.count()

    page.wait_for_selector("mjx-container", timeout=30_000)
    math = page.evaluate("""() => {
        const m = Array.from(document.querySelectorAll('.math'));
        return {math: m.length, unrendered: m.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
                containers: document.querySelectorAll('mjx-container').length,
                errors: document.querySelectorAll('mjx-merror').length};
    }""")
    assert math["containers"] > 0, "MathJax rendered no formula on the chapter page"
    assert math["unrendered"] == [], f"formulas MathJax did not render: {math['unrendered'][:5]}"
    assert math["errors"] == 0, f"{math['errors']} formulas rendered as MathJax errors"
    page.locator("mjx-container").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"{CHAPTER}_formulas.png"))
    imgs.first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"{CHAPTER}_figure.png"))
    print(f"{CHAPTER}: {n_img} figures loaded, {math['containers']} formulas rendered")
    guard.check()


def test_site_search_finds_ssim(site, guarded, shots):
    base, book = site
    ctx, guard = guarded
    page = ctx.new_page()
    page.goto(f"{base}/search.html?q=SSIM", wait_until="load")
    results = page.locator("#search-results li")
    t0 = time.monotonic()
    try:
        results.first.wait_for(timeout=30_000)
    except Exception:
        page.screenshot(path=str(shots / "search_none.png"))
        pytest.fail(f"the search page listed no result for 'SSIM' within {time.monotonic() - t0:.0f} s",
                    pytrace=False)
    links = page.evaluate("() => Array.from(document.querySelectorAll('#search-results li a'))"
                          ".map(a => a.getAttribute('href'))")
    assert any(CHAPTER in (h or "") for h in links), f"search for SSIM does not list {CHAPTER}: {links[:10]}"
    page.screenshot(path=str(shots / "search_ssim.png"))
    guard.check()
