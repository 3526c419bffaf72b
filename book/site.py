"""The static course site: the executed chapters as pages (Sphinx + MyST-NB + sphinx-book-theme).

Why this stack and not Jupyter Book 2: Jupyter Book 2 (mystmd) downloads its page theme from
api.mystmd.org / GitHub at build time, which a machine limited to package registries (this
course's CI) cannot reach, and no built theme is published on npm. Sphinx with MyST-NB and
sphinx-book-theme is the Executable Books stack that Jupyter Book 1 wrapped, all maintained and
all on PyPI; it renders stored outputs without executing (``nb_execution_mode = "off"``), has
Binder and Colab launch buttons, and with sphinx-mathjax-offline serves MathJax itself.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import nbformat

from book.colab import MARKER
from book.config import NOTEBOOKS, REPO, SITE_HTML, SITE_SRC, chapters, launch

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# A widget the learner moves (the course's factories return ipywidgets.interactive over sliders):
# its plain-text repr names a control. tqdm's progress bars are widgets too, but not controls.
CONTROL = re.compile(r"\b(\w*Slider|Dropdown|Checkbox|ToggleButtons?|RadioButtons|Select(Multiple)?|"
                     r"\w*Text|Textarea|Button|Play|ColorPicker|DatePicker)\(")
WIDGET_NOTE = ('<p class="course-widget-note"><strong>Interactive:</strong> this widget moves in a live '
               'kernel (JupyterLab, Binder or Colab: the launch buttons above). Here it shows its last '
               'output.</p>')
BADGE_COLAB = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_BINDER = "https://mybinder.org/badge_logo.svg"
# The site ships its own copies (book/badges/): a page opened offline shows them too.
BADGES = REPO / "book" / "badges"
LOCAL_BADGE = {BADGE_COLAB: "badges/colab.svg", BADGE_BINDER: "badges/binder.svg"}
# A row of the README's chapter table, with or without its Colab badge column.
CHAPTER_ROW = re.compile(r"^\| (?P<n>\d+) \| \[(?P<title>[^\]]+)\]\(notebooks/(?P<file>[^)]+\.ipynb)\) \| "
                         r"(?P<what>.+?) \|(?: \[!\[Open in Colab\].*\|)?$", re.M)


def static_page(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An executed notebook as a static page: each control widget becomes a note beside its last drawn
    output (its figures and prints, captured when the cell ran), a progress bar (which only showed
    its first state when it was captured) is dropped, and the Colab cell is hidden."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(MARKER):
            cell.metadata.setdefault("tags", []).append("remove-cell")
        outputs = []
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                if not is_control(out):
                    continue
                out = nbformat.v4.new_output("display_data", data={"text/html": WIDGET_NOTE})
            outputs.append(out)
        cell.outputs = outputs
    return nb


def is_control(output) -> bool:
    """Whether a widget output is something a learner moves (a slider, a box of controls), not a bar."""
    text = output.get("data", {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return bool(CONTROL.search(text)) and "Progress(" not in text


def chapter_rows() -> list[tuple[str, str, str, str]]:
    """``(number, title, notebook file, what you learn)`` of every chapter, from the README's table."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return [(m["n"], m["title"], m["file"], m["what"]) for m in CHAPTER_ROW.finditer(readme)]


def colab_badge(notebook: str, *, local: bool = False) -> str:
    """The "Open in Colab" badge linking ``notebook``: the remote image (README), or the site's copy."""
    image = LOCAL_BADGE[BADGE_COLAB] if local else BADGE_COLAB
    return f"[![Open in Colab]({image})]({launch().colab(notebook)})"


def binder_badge(notebook: str | None = None, *, local: bool = False) -> str:
    """The "launch binder" badge (at ``notebook`` if given): the remote image, or the site's copy."""
    image = LOCAL_BADGE[BADGE_BINDER] if local else BADGE_BINDER
    return f"[![Launch Binder]({image})]({launch().binder(notebook)})"


def front_page() -> str:
    """The site's front page: what the course is, how to use the site, and the course map."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    intro = readme.split("\n\n")[1]
    table = ["| # | chapter | what you learn | run it |", "|---|---|---|---|"]
    for n, title, file, what in chapter_rows():
        table.append(f"| {n} | [{title}]({file}) | {what} | {colab_badge(file, local=True)} "
                     f"{binder_badge(file, local=True)} |")
    toc = "\n".join(f for _, _, f, _ in chapter_rows())
    return f"""# Learning to Learn

{intro}

These pages show every chapter **executed**: its figures, tables and printed numbers, as they came
out of one run of the course's tests. Sliders show their last output here; they move in a live
kernel. Each chapter page has launch buttons (Binder, Colab) at the top; locally, `make lab` opens
the same notebooks in JupyterLab. Lecturers: see the [instructor guide](instructor_guide.md) and
`make slides`. Every `[n]` in a chapter refers to the [course bibliography](references.md).
{binder_badge(local=True)}

## The course map

{chr(10).join(table)}

```{{toctree}}
:hidden:
:maxdepth: 1
:caption: Chapters

{toc}
```

```{{toctree}}
:hidden:
:maxdepth: 1
:caption: For teaching and reference

instructor_guide
references
```
"""


def assemble(executed: dict[str, nbformat.NotebookNode]) -> None:
    """Write the site's sources to ``_build/site-src``: pages, front page, guide, bibliography."""
    if SITE_SRC.exists():
        shutil.rmtree(SITE_SRC)
    SITE_SRC.mkdir(parents=True)
    for path in chapters():
        nbformat.write(static_page(executed[path.name]), SITE_SRC / path.name)
    (SITE_SRC / "index.md").write_text(front_page(), encoding="utf-8")
    shutil.copy(REPO / "book" / "instructor_guide.md", SITE_SRC / "instructor_guide.md")
    shutil.copy(NOTEBOOKS / "references.md", SITE_SRC / "references.md")
    shutil.copytree(BADGES, SITE_SRC / "badges")


def build(executed: dict[str, nbformat.NotebookNode]) -> None:
    """Assemble and render the site into ``_build/site`` (warnings are reported, not fatal)."""
    assemble(executed)
    if SITE_HTML.exists():
        shutil.rmtree(SITE_HTML)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(REPO / "book"), str(SITE_SRC), str(SITE_HTML)]
    subprocess.run(cmd, check=True, cwd=REPO)
