"""Real-browser test: open chapters 3-5 in JupyterLab (Chromium), run them down to their λ
slider, and drag it.

For each notebook: open it, select the cell below the λ widget's cell and choose *Run → Run All
Above Selected Cell* from the real menu bar (as a lecturer who wants the slider does), wait until
exactly the cells down to the widget have run, find the λ slider (CSS class ``l2l-lambda``, or a
slider whose label starts with "λ"), drag its handle with the mouse, and assert that the printed
readout and the plot image of that interactive widget both changed. A screenshot per notebook
goes to ``artifacts/browser/``.

Only the cells above the slider run: nbval has already executed every chapter in full in the same
``make test`` (with the same ipykernel), so a second full run here would test nothing new. Each
partial run is counted in the execution log (``tests.harness.store``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.harness.store import record_execution

from .conftest import REPO, _api

pytestmark = pytest.mark.browser

# notebook -> the call in the cell that shows its λ widget
NOTEBOOKS = {"03_transfer_learning.ipynb": "ch03.transfer_explorer(",
             "04_meta_classification.ipynb": "ch04.gaussian_widget(",
             "05_meta_regression.ipynb": "ch05.meta_regression_explorer("}
RUN_TIMEOUT_S = 240        # a chapter runs in < 90 s under nbval; the browser adds rendering
UPDATE_TIMEOUT_S = 60      # one slider move re-runs a callback (≈ 0.2 s) and redraws
KERNEL_START_S = 180     # the first kernel of a run starts cold (torch + TF imports); slower on a loaded machine

# JavaScript that marks the λ slider and its interactive widget with data attributes, so the
# test can address them whatever notebook it is in.
FIND_SLIDER_JS = r"""
() => {
  const isLambda = (el) => {
    const label = el.querySelector('.widget-label');
    return label && label.textContent.trim().startsWith('λ');
  };
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  let slider = panel.querySelector('.l2l-lambda');
  if (!slider) {
    slider = Array.from(panel.querySelectorAll('.widget-interact .widget-slider')).find(isLambda) || null;
  }
  if (!slider) return false;
  const box = slider.closest('.widget-interact');
  if (!box) return false;
  document.querySelectorAll('[data-l2l-test]').forEach((el) => el.removeAttribute('data-l2l-test'));
  slider.setAttribute('data-l2l-test', 'slider');
  box.setAttribute('data-l2l-test', 'interact');
  return true;
}
"""

PROMPTS_JS = r"""
() => Array.from(document.querySelectorAll(
          '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell .jp-InputPrompt'))
          .map((el) => el.textContent.trim())
"""


def _widget_cell(path: Path, call: str) -> tuple[int, int, int]:
    """``(cell index, code cells up to and including it, code cells in all)`` of the widget's cell."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code_seen = 0
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            code_seen += 1
            if call in "".join(cell["source"]):
                return index, code_seen, sum(c["cell_type"] == "code" for c in nb["cells"])
    raise AssertionError(f"{path.name} has no cell calling {call}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wait_for_run_all(page, timeout_s: float) -> list[str]:
    """Poll the input prompts until no cell is running or queued and the kernel is idle."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    started, idle_polls = False, 0
    while time.monotonic() < deadline:
        _accept_kernel_dialog(page)
        prompts = page.evaluate(PROMPTS_JS)
        busy = any("*" in p for p in prompts)
        started = started or busy or any(any(c.isdigit() for c in p) for p in prompts)
        status = page.evaluate(
            "() => (document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator') || {}).dataset?.status || ''")  # noqa: E501
        idle_polls = idle_polls + 1 if (started and not busy and status in ("idle", "")) else 0
        if idle_polls >= 3:
            return prompts
        if not started and time.monotonic() - t0 > KERNEL_START_S:
            raise AssertionError(f"no cell started within {KERNEL_START_S} s of Run All; prompts: {prompts}")
        time.sleep(1.0)
    raise AssertionError(f"Run All did not finish within {timeout_s} s; prompts: {page.evaluate(PROMPTS_JS)}")


def _accept_kernel_dialog(page) -> None:
    """Accept JupyterLab's "Select Kernel" dialog (the notebook's python3 kernel) if it is open."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and "Kernel" in dialog.first.inner_text():
        dialog.first.locator(".jp-mod-accept").first.click()


def _ink_in_lower_half(png: Path) -> float:
    """Share of non-white pixels in the lower half of a PNG.

    A figure that pyplot closed or redrew while the inline backend was rendering it (seen with
    pyplot inside slider callbacks under ipykernel 7) comes out with its axes, lines and labels
    missing below some row: a few tick labels on white, ~0.2 % ink, where a whole plot has ~5 %.
    """
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        w, h = rgb.size
        pixels = list(rgb.crop((0, h // 2, w, h)).getdata())
    return sum(1 for p in pixels if sum(p) < 720) / max(1, len(pixels))


def _interact_state(page) -> tuple[str, str | None]:
    box = page.locator('[data-l2l-test="interact"]')
    text = box.locator(".widget-output").first.inner_text()
    img = box.locator(".widget-output img")
    src = img.first.get_attribute("src") if img.count() else None
    return text.strip(), src


def _error_text(page) -> str:
    return page.evaluate(r"""
      () => Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output'))
              .map((el) => el.innerText).filter((t) => /Traceback|Error/.test(t)).join('\n---\n').slice(-3000)
    """)


@pytest.mark.parametrize("notebook", list(NOTEBOOKS))
def test_run_to_the_slider_and_drag_lambda(lab_server, playwright_browser, artifacts_dir, notebook):
    path = REPO / "notebooks" / notebook
    widget_index, n_run, n_code = _widget_cell(path, NOTEBOOKS[notebook])
    before = _digest(path)
    base, token = lab_server
    context = playwright_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    t_start = time.monotonic()
    try:
        page.goto(f"{base}/lab/tree/{notebook}?reset&token={token}", wait_until="domcontentloaded", timeout=120_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
        time.sleep(2.0)
        _accept_kernel_dialog(page)
        page.wait_for_function(
            "() => (document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator') || {}).dataset?.status === 'idle'",  # noqa: E501
            timeout=120_000)

        # Select the cell below the widget's, then Run → Run All Above Selected Cell, through the real menu bar.
        below = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(widget_index + 1)
        below.scroll_into_view_if_needed()
        below.locator(".jp-InputPrompt").first.click()
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.get_by_role("menuitem", name="Run All Above Selected Cell", exact=True).click()
        record_execution(path, by="lab", cells=f"1-{n_run} of {n_code} code cells")
        prompts = _wait_for_run_all(page, RUN_TIMEOUT_S)
        assert len(prompts) == n_code, f"{len(prompts)} code cells on the page, {n_code} in the notebook"
        unrun = [i for i, p in enumerate(prompts[:n_run]) if not any(c.isdigit() for c in p)]
        assert not unrun, f"code cells {unrun} above the slider did not run; errors:\n{_error_text(page)}"
        ran_below = [i for i, p in enumerate(prompts[n_run:], n_run) if any(c.isdigit() for c in p)]
        assert not ran_below, f"code cells {ran_below} below the slider ran too"
        t_run = time.monotonic() - t_start

        assert page.evaluate(FIND_SLIDER_JS), "no λ slider inside an interactive widget"
        slider = page.locator('[data-l2l-test="slider"]')
        slider.scroll_into_view_if_needed()
        page.locator('[data-l2l-test="interact"] .widget-output img').first.wait_for(timeout=30_000)
        text_before, img_before = _interact_state(page)
        assert text_before and img_before, "the interactive widget shows no readout or no plot"
        readout = slider.locator(".widget-readout").first
        value_before = readout.inner_text() if readout.count() else None

        # A real drag: press on the handle, move right, release.
        handle = slider.locator(".noUi-handle").first
        box = handle.bounding_box()
        assert box is not None, "the slider handle is not visible"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 30, y, steps=6)
        page.mouse.move(x + 60, y, steps=6)
        page.mouse.up()

        deadline = time.monotonic() + UPDATE_TIMEOUT_S
        text_after, img_after = text_before, img_before
        while time.monotonic() < deadline:
            text_after, img_after = _interact_state(page)
            if text_after and img_after and text_after != text_before and img_after != img_before:
                break
            time.sleep(0.5)
        value_after = readout.inner_text() if readout.count() else None
        new_img = page.locator('[data-l2l-test="interact"] .widget-output img').first
        new_img.scroll_into_view_if_needed()
        new_img.evaluate("el => (el.decode ? el.decode() : Promise.resolve()).then(() => el.naturalWidth)")
        slider.scroll_into_view_if_needed()
        # Software rendering on a busy machine paints large images tile by tile: the element
        # screenshot waits for a stable frame, and the page screenshot comes after it.
        if img_after and img_after.startswith("data:image/png;base64,"):   # the plot itself, as drawn
            png = artifacts_dir / f"{path.stem}-plot.png"
            png.write_bytes(base64.b64decode(img_after.split(",", 1)[1]))
            assert _ink_in_lower_half(png) > 0.004, f"the redrawn plot is only partly drawn, see {png}"
        page.locator('[data-l2l-test="interact"]').screenshot(path=str(artifacts_dir / f"{path.stem}-widget.png"))
        time.sleep(1.0)
        page.screenshot(path=str(artifacts_dir / f"{path.stem}.png"))
        assert value_after != value_before, f"the slider did not move (readout {value_before!r})"
        assert text_after != text_before, f"the printed readout did not change: {text_before!r}"
        assert img_after and img_after != img_before, "the plot image did not change"
        print(f"{notebook}: {n_run} of {n_code} code cells in {t_run:.0f} s, slider {value_before} → {value_after}; "
              f"readout now {text_after[:120]!r}")
    finally:
        try:
            page.screenshot(path=str(artifacts_dir / f"{path.stem}-final.png"))
        except Exception:  # noqa: BLE001 - a screenshot must not hide the real failure
            pass
        context.close()
        for session in _api(base, token, "/api/sessions") or []:   # free the kernel's memory
            _api(base, token, f"/api/sessions/{session['id']}", method="DELETE")
        assert _digest(path) == before, f"{notebook} was modified on disk by the browser test"
