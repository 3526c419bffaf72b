"""Lecture slides: slide metadata for every chapter (RISE and nbconvert read the same keys) and
the reveal.js export of the executed notebooks.

A chapter's ``##`` sections start slides and its ``###`` subsections start sub-slides; a cell that
would push a slide past ``MAX_LINES`` lines of code and text starts a sub-slide of its own; a code
cell that follows its explanation on the same slide appears as a fragment; the Colab cell is
skipped. Lines are the code and text a slide shows: markdown wrapped at ``WRAP`` characters, and
code lines (printed output and figures are left to reveal.js, which scrolls a tall slide). The
metadata depends on the stored notebook alone, so ``python -m book.build sync`` needs no execution.
A References list is the one slide allowed to run longer (it scrolls).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat

from book.colab import MARKER

MAX_LINES = 40
WRAP = 100
SLIDE_KEY = "slideshow"


def cell_lines(cell: nbformat.NotebookNode) -> int:
    """Lines of code or text the cell puts on a slide."""
    if cell.cell_type == "markdown":
        return sum(max(1, math.ceil(len(line) / WRAP)) for line in cell.source.splitlines())
    return len(cell.source.splitlines())


def is_references(cells: list[nbformat.NotebookNode]) -> bool:
    """A slide that is just a chapter's References list."""
    return len(cells) == 1 and cells[0].cell_type == "markdown" and cells[0].source.startswith("## References")


def slide_type(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get(SLIDE_KEY, {}).get("slide_type", "-")


def assign(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Write slide metadata into every cell of ``nb`` (in place; returned)."""
    used = 0
    previous = None
    for cell in nb.cells:
        lines = cell_lines(cell)
        head = cell.source.lstrip() if cell.cell_type == "markdown" else ""
        if cell.cell_type == "code" and cell.source.startswith(MARKER):
            kind = "skip"
        elif previous is None or re.match(r"#{1,2} ", head):
            kind, used = "slide", 0
        elif re.match(r"#{3,} ", head) or used + lines > MAX_LINES:
            kind, used = "subslide", 0
        elif cell.cell_type == "code" and previous == "markdown":
            kind = "fragment"
        else:
            kind = "-"
        if kind != "skip":
            used += lines
            previous = cell.cell_type
        cell.metadata[SLIDE_KEY] = {"slide_type": kind}
    return nb


def slides_of(nb: nbformat.NotebookNode) -> list[list[nbformat.NotebookNode]]:
    """The notebook's cells grouped as slides (a sub-slide is a slide of its own; skips dropped)."""
    groups: list[list[nbformat.NotebookNode]] = []
    for cell in nb.cells:
        kind = slide_type(cell)
        if kind in ("skip", "notes"):
            continue
        if kind in ("slide", "subslide") or not groups:
            groups.append([])
        groups[-1].append(cell)
    return groups


def export(nb: nbformat.NotebookNode, dst: Path) -> Path:
    """Write ``nb`` (executed, static) as a reveal.js slide show to ``dst`` (nbconvert)."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter()
    exporter.reveal_scroll = True          # a tall figure scrolls instead of being cut off
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(body, encoding="utf-8")
    return dst
