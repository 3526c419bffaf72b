"""Build the course's rendered forms.  Run from the repository root:

    python -m book.build site      # executed chapters -> _build/site/index.html   (make site)
    python -m book.build slides    # executed chapters -> _build/slides/*.slides.html (make slides)
    python -m book.build sync      # Colab cell, slide metadata and README badges into the sources
    python -m book.build check     # fail if `sync` would change anything (tests run this logic)

``site`` and ``slides`` reuse ``_build/executed/`` (written by the nbval run of ``make test``) and
execute only the chapters that have no current executed copy, once.
"""
from __future__ import annotations

import argparse
import re
import sys

import nbformat

from book import colab, slides
from book.config import REPO, SITE_HTML, SLIDES, chapters, launch
from book.execute import executed


def all_executed() -> dict[str, nbformat.NotebookNode]:
    out = {}
    for path in chapters():
        print(f"  {path.name}", flush=True)
        out[path.name] = executed(path)
    return out


def synced(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the current Colab cell as its first code cell (just below the title) and slide metadata."""
    nb = nbformat.from_dict(nb)
    source = colab.cell_source()
    cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.startswith(colab.MARKER))]
    old = next((c for c in nb.cells if c.cell_type == "code" and c.source.startswith(colab.MARKER)), None)
    cell = old if old is not None else nbformat.v4.new_code_cell(id="colab-setup")
    cell.source = source
    cells.insert(1, cell)
    nb.cells = cells
    return slides.assign(nb)


def readme_synced(text: str) -> str:
    """README with every chapter row's Colab badge built from the configured repository."""
    from book.site import CHAPTER_ROW, colab_badge

    def row(m: re.Match) -> str:
        return f"| {m['n']} | [{m['title']}](notebooks/{m['file']}) | {m['what']} | {colab_badge(m['file'])} |"

    text = text.replace("| # | notebook | what you learn |\n|---|---|---|\n",
                        "| # | notebook | what you learn | run it |\n|---|---|---|---|\n")
    text = re.sub(r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/[\w.-]+", launch().binder(), text)
    return CHAPTER_ROW.sub(row, text)


def sync(write: bool) -> list[str]:
    """Bring the notebooks and README in line with the configuration; return what differs."""
    stale = []
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        new = synced(nb)
        if nbformat.writes(new) != nbformat.writes(nb):
            stale.append(path.name)
            if write:
                nbformat.write(new, path)
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    if readme_synced(text) != text:
        stale.append("README.md")
        if write:
            readme.write_text(readme_synced(text), encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["site", "slides", "sync", "check"])
    args = parser.parse_args(argv)
    if args.what in ("sync", "check"):
        stale = sync(write=args.what == "sync")
        print(("updated: " if args.what == "sync" else "out of date (run python -m book.build sync): ")
              + (", ".join(stale) or "nothing"))
        return 1 if stale and args.what == "check" else 0
    print("executed chapters (reused from _build/executed/ where current):")
    books = all_executed()
    if args.what == "site":
        from book.site import build

        build(books)
        print(f"site: {SITE_HTML / 'index.html'}")
    else:
        from book.site import static_page

        for name, nb in books.items():
            slides.export(static_page(nb), SLIDES / name.replace(".ipynb", ".slides.html"))
        print(f"slides: {SLIDES}/*.slides.html (open one in a browser; press ? for keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
