"""The rendered forms of the course (book/): Colab cell, slide metadata, slide export, site pages.

Off Colab the Colab cell must do nothing; on a simulated Colab it must clone the configured
repository, install the course and only the pins Colab lacks, and point the loader at a cache.
Every chapter carries slide metadata whose slides stay within ``MAX_LINES`` lines of code and text
(a References list may scroll), and exports as a reveal.js show with that many slides.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from book import build, colab, slides
from book.config import chapters, launch
from book.site import WIDGET_MIME, chapter_rows, front_page, static_page

REPO = Path(__file__).resolve().parents[2]
CHAPTERS = chapters()
_FIND_SPEC = importlib.util.find_spec


def test_sources_are_in_sync_with_the_configuration():
    """Colab cells, slide metadata and README badges are what `make sync` writes."""
    assert build.sync(write=False) == [], "run `make sync` (python -m book.build sync)"


def test_launch_links_come_from_one_url():
    where = launch()
    assert where.repository.startswith("https://github.com/") and where.branch
    assert where.colab("06_maml.ipynb") == (f"https://colab.research.google.com/github/{where.github_path}/blob/"
                                            f"{where.branch}/notebooks/06_maml.ipynb")
    readme = (REPO / "README.md").read_text()
    assert readme.count(where.colab("")) == len(CHAPTERS)        # one Colab badge per chapter
    assert where.binder() in readme, "the README has a Binder badge"
    assert len(chapter_rows()) == len(CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_is_the_colab_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code[0].source == colab.cell_source() and nb.cells[1] is code[0]
    assert sum(cell.source.startswith(colab.MARKER) for cell in code) == 1


def _run_cell(monkeypatch, tmp_path, *, on_colab: bool, missing=("course_utils",)):
    """Execute the Colab cell with subprocess, chdir and find_spec recorded/faked."""
    calls, moves = [], []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(os, "chdir", lambda where: moves.append(where))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else _FIND_SPEC(name, *a))
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(colab.cell_source(), "colab-cell", "exec"), {})
    return calls, moves, os.environ.get("COURSE_DATA_DIR")


def test_colab_cell_does_nothing_off_colab(monkeypatch, tmp_path):
    env_before = dict(os.environ)
    calls, moves, data = _run_cell(monkeypatch, tmp_path, on_colab=False, missing=("course_utils", "tensorflow"))
    assert calls == [] and moves == [] and data is None
    assert {k: v for k, v in os.environ.items() if k != "COURSE_DATA_DIR"} == {
        k: v for k, v in env_before.items() if k != "COURSE_DATA_DIR"}


def test_colab_cell_on_colab_installs_the_course_and_only_what_is_lacking(monkeypatch, tmp_path):
    calls, moves, data = _run_cell(monkeypatch, tmp_path, on_colab=True, missing=("course_utils", "psutil"))
    where = launch()
    clone, install, extra = calls
    assert clone[:2] == ["git", "clone"] and where.repository in clone and where.branch in clone
    assert install[-2:] == ["--no-deps", colab.CHECKOUT]
    assert extra == [sys.executable, "-m", "pip", "install", "-q", colab.pins()["psutil"]], "only what is lacking"
    assert moves == [os.path.join(colab.CHECKOUT, "notebooks")] and data == colab.DATA_CACHE
    # installed already (a second run of the cell): nothing happens
    calls, moves, _ = _run_cell(monkeypatch, tmp_path, on_colab=True, missing=())
    assert calls == [] and moves == []


def test_colab_pins_follow_requirements():
    req = (REPO / "requirements.txt").read_text()
    for pin in colab.pins().values():
        assert re.search(rf"^{re.escape(pin)}$", req, re.M), pin


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_slides_fit(path):
    nb = nbformat.read(path, as_version=4)
    kinds = [slides.slide_type(cell) for cell in nb.cells]
    assert all(slides.SLIDE_KEY in cell.metadata for cell in nb.cells), "every cell has slide metadata"
    assert kinds[0] == "slide" and set(kinds) <= {"slide", "subslide", "fragment", "-", "skip"}
    groups = slides.slides_of(nb)
    assert 8 <= len(groups) <= 80, f"{len(groups)} slides"
    for group in groups:
        lines = sum(slides.cell_lines(cell) for cell in group)
        assert lines <= slides.MAX_LINES or slides.is_references(group), (
            f"a slide of {lines} lines starts with {group[0].source[:60]!r}")


def test_slide_assignment_splits_long_slides_and_skips_the_colab_cell():
    md = nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(cells=[md("# 1. T"), nbformat.v4.new_code_cell(colab.MARKER + "\npass"),
                                         md("## A"), nbformat.v4.new_code_cell("x = 1"),
                                         md("\n".join(["line"] * 30)), md("\n".join(["more"] * 30)),
                                         md("### B")])
    kinds = [slides.slide_type(c) for c in slides.assign(nb).cells]
    assert kinds == ["slide", "skip", "slide", "fragment", "-", "subslide", "subslide"]


def test_static_page_turns_widgets_into_their_last_output():
    cell = nbformat.v4.new_code_cell("display(w)")
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    widget = nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "x"},
                                                          "text/plain": "interactive(children=(IntSlider(value=1),))"})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 1. T"), cell])
    cell.outputs = [png, widget]
    page = static_page(nb)
    outs = page.cells[1].outputs
    assert outs[0] == png and WIDGET_MIME not in outs[1].data and "live" in outs[1].data["text/html"]
    assert cell.outputs[1] == widget, "the input notebook is not changed"


def test_front_page_has_the_course_map():
    text = front_page()
    for _, title, file, _ in chapter_rows():
        assert f"[{title}]({file})" in text and launch().colab(file) in text
    assert "instructor_guide" in text and "references" in text


def test_instructor_guide_covers_every_chapter():
    guide = (REPO / "book" / "instructor_guide.md").read_text()
    numbers = [int(n) for n in re.findall(r"^## Chapter (\d+)\b", guide, re.M)]
    assert numbers == list(range(len(CHAPTERS)))
    for section in re.split(r"^## Chapter \d+", guide, flags=re.M)[1:]:
        assert re.search(r"\b(50|90)[- ]minute", section), "a 50- or 90-minute plan"
        assert "?" in section, "discussion questions"
        assert "check_" in section or "exercise" in section.lower(), "exercises to assign"


@pytest.mark.slow
@pytest.mark.after_notebooks
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_exports_as_slides(path, tmp_path):
    """Each chapter exports (reveal.js via nbconvert, executed outputs) with its slide count."""
    from book.execute import executed

    nb = static_page(executed(path))
    html = slides.export(nb, tmp_path / "slides.html").read_text()
    sections = html.count("<section")
    expected = len(slides.slides_of(nb))
    top = sum(slides.slide_type(c) == "slide" for c in nb.cells)
    assert sections == expected + top, (sections, expected, top)   # a slide is a <section> around its sub-slides
    assert "Reveal.initialize" in html and "<img" in html


def test_rise_is_installed_in_jupyterlab():
    """RISE ("Render as slides") is a JupyterLab extension of the course's environment."""
    jupyter = Path(sys.executable).with_name("jupyter")
    listing = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in (listing.stdout + listing.stderr).splitlines() if "jupyterlab-rise" in ln]
    assert lines and "enabled" in lines[0] and "OK" in lines[0], lines


def test_static_page_notes_sliders_and_drops_progress_bars():
    """Only a control gets the "moves in a live kernel" note; a tqdm bar (a widget too) is dropped."""
    def widget(text):
        return nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "x", "version_major": 2},
                                                            "text/plain": text})

    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [widget("interactive(children=(SelectionSlider(continuous_update=False, description='λ'), "
                           "IntSlider(value=5), Output()), _dom_classes=('widget-interact',))"),
                    widget("MAML seed 0:   0%|          | 0/150 [00:00<?, ?it/s]"),
                    widget("HBox(children=(HTML(value=''), FloatProgress(value=0.0, max=300.0), HTML(value='')))"),
                    nbformat.v4.new_output("stream", name="stdout", text="done\n")]
    page = static_page(nbformat.v4.new_notebook(cells=[cell]))
    kinds = [out.get("data", {}).get("text/html", out.get("text")) for out in page.cells[0].outputs]
    assert len(kinds) == 2 and "live kernel" in kinds[0] and kinds[1] == "done\n"
