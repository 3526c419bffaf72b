"""Real-browser test of the static course site: every chapter page in Chromium.

The site is built from the notebooks executed once by the nbval run of the same ``make test``
(``_build/executed/``; these tests are ordered after the notebooks), so no chapter runs twice; run
alone, the fixture executes each chapter once. For every chapter page: it loads, every figure of
the executed notebook is on the page and has decoded, no error output or traceback shows, the
maths has been typeset by MathJax (served by the site itself), and the Binder and Colab launch
links point at this chapter in the configured repository. Full-page screenshots go to
``artifacts/site/``.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading

import pytest

from book.config import SITE_HTML, chapters, launch

from .conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.after_notebooks]
SHOTS = REPO / "artifacts" / "site"
CHAPTERS = [path.name for path in chapters()]


@pytest.fixture(scope="module")
def executed_chapters():
    from book.execute import executed

    return {name: executed(REPO / "notebooks" / name) for name in CHAPTERS}


@pytest.fixture(scope="module")
def site_url(executed_chapters):
    from book.site import build

    build(executed_chapters)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE_HTML))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page(playwright_browser, site_url):
    """A page with the network blocked: only the local site answers, as for a copy opened offline
    (``page.course_blocked`` lists every request that tried to leave)."""
    context = playwright_browser.new_context(viewport={"width": 1280, "height": 900})
    blocked = []

    def offline(route):
        if route.request.url.startswith(site_url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", offline)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.course_errors = errors
    page.course_blocked = blocked
    yield page
    context.close()


def _figures(nb) -> int:
    """Figures the executed notebook shows (PNG outputs of the cells the site keeps)."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def _controls(nb) -> int:
    """Widget outputs a learner moves (sliders), not progress bars: each gets the live-kernel note."""
    from book.site import WIDGET_MIME, is_control

    return sum(WIDGET_MIME in out.get("data", {}) and is_control(out) for cell in nb.cells
               if cell.cell_type == "code" for out in cell.get("outputs", []))


def _has_math(nb) -> bool:
    """Whether the chapter's markdown has inline or display maths (``$...$``)."""
    return any(re.search(r"\$[^$\n]+\$", cell.source) for cell in nb.cells if cell.cell_type == "markdown")


PAGE_STATE_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const main = document.querySelector('main') || document.body;
  const imgs = Array.from(main.querySelectorAll('.cell_output img, .output img'));
  return {
    title: document.title,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
    brokenAnywhere: Array.from(document.querySelectorAll('img'))
      .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
    widgetNotes: main.querySelectorAll('.course-widget-note').length,
    mathSpans: main.querySelectorAll('.math').length,
    allMath: document.querySelectorAll('.math').length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    rawMath: Array.from(document.querySelectorAll('.math')).filter(m => !m.querySelector('mjx-container'))
      .map(m => m.innerText.slice(0, 60)),
    tracebacks: main.querySelectorAll('.output.traceback, .output.error, .cell_output .traceback').length,
    text: main.innerText,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  };
}
"""


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_page_renders(name, site_url, page, executed_chapters):
    response = page.goto(f"{site_url}/{name.replace('.ipynb', '.html')}", wait_until="load")
    assert response is not None and response.ok, f"{name}: HTTP {response and response.status}"
    page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.document)", timeout=30000)
    state = page.evaluate(PAGE_STATE_JS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name.replace(".ipynb", ".png")), full_page=True)

    nb = executed_chapters[name]
    title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    assert title.split(":")[0] in state["title"].replace("\u2019", "'"), (state["title"], title)  # smart quotes
    assert state["images"] >= _figures(nb) > 0 or state["images"] == _figures(nb) == 0, (
        f"{name}: {state['images']} figures on the page, {_figures(nb)} in the executed notebook")
    assert not state["broken"], f"{name}: figures that did not render: {state['broken']}"
    assert not state["brokenAnywhere"], (f"{name}: broken images offline: {state['brokenAnywhere']} "
                                         f"(requests blocked: {page.course_blocked[-5:]})")
    assert state["widgetNotes"] == _controls(nb), f"{name}: {state['widgetNotes']} widget notes"
    assert state["tracebacks"] == 0 and "Traceback (most recent call last)" not in state["text"], name
    # every formula on the page (the chapter's and the sidebar's chapter titles) is typeset
    assert state["allMath"] > 0 and not state["rawMath"] and state["mathErrors"] == 0, (name, state["rawMath"])
    assert (state["mathSpans"] > 0) == _has_math(nb), f"{name}: {state['mathSpans']} formulas in the chapter text"
    where = launch()
    assert where.colab(name) in state["links"] or any(
        link.startswith("https://colab.research.google.com/github/" + where.github_path) and link.endswith(name)
        for link in state["links"]), f"{name}: no Colab launch link"
    assert any(link.startswith("https://mybinder.org/v2/gh/" + where.github_path) and name in link
               for link in state["links"]), f"{name}: no Binder launch link"
    assert not page.course_errors, f"{name}: JavaScript errors {page.course_errors}"


def test_front_page_guide_and_bibliography(site_url, page):
    """The course map, guide and bibliography, offline: every launch badge is the site's own image."""
    page.goto(f"{site_url}/index.html", wait_until="load")
    links = page.evaluate("() => Array.from(document.querySelectorAll('main table a[href]')).map(a => a.href)")
    for name in CHAPTERS:
        assert any(link.endswith(name.replace(".ipynb", ".html")) for link in links), f"course map lacks {name}"
        assert launch().colab(name) in links, f"course map lacks the Colab badge of {name}"
    badges = page.evaluate("""() => Array.from(document.querySelectorAll('main img'))
        .filter(i => /badges\\/|_images\\/(colab|binder)/.test(i.src) || /Colab|Binder/.test(i.alt))
        .map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))""")
    assert len(badges) == 2 * len(CHAPTERS) + 1, badges                 # Colab + Binder per chapter, one Binder
    assert all(b["ok"] and b["src"].startswith(site_url) for b in badges), [b for b in badges if not b["ok"]][:3]
    page.screenshot(path=str(SHOTS / "index.png"), full_page=True)
    page.goto(f"{site_url}/references.html", wait_until="load")
    entries = page.evaluate("() => document.querySelectorAll('main ol > li').length")
    assert entries >= 39, f"the bibliography page lists {entries} entries"
    page.goto(f"{site_url}/instructor_guide.html", wait_until="load")
    headings = page.evaluate("() => Array.from(document.querySelectorAll('main h2')).map(h => h.innerText)")
    assert sum(h.startswith("Chapter") for h in headings) == len(CHAPTERS), headings
