"""Sphinx configuration of the course site (``make site``; sources assembled by ``book/site.py``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from book.config import launch  # noqa: E402

where = launch()
project = "Learning to Learn"
author = "The Learning to Learn authors"
copyright = "2026, " + author
# sphinx-mathjax-offline (its module name has hyphens) serves MathJax 3 from _static: no CDN needed
extensions = ["myst_nb", "sphinx-mathjax-offline"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"          # the pages show the stored outputs of one execution
nb_output_stderr = "remove"        # progress bars (tqdm) write to stderr; errors are error outputs
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
html_theme = "sphinx_book_theme"
html_title = "Learning to Learn"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {
    "repository_url": where.repository,
    "repository_branch": where.branch,
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
}


def setup(app):
    """Load MathJax on every page: the sidebar's chapter titles carry maths even where a page has none."""
    app.set_html_assets_policy("always")
