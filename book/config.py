"""Paths and the one configured repository URL from which every launch link is built."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tests.harness.store import BUILD, EXECUTED  # noqa: F401 - one definition: the test harness writes them

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SITE_SRC = BUILD / "site-src"
SITE_HTML = BUILD / "site"
SLIDES = BUILD / "slides"


@dataclass(frozen=True)
class Launch:
    """Where the course lives online: every Binder and Colab link is built from these two values."""

    repository: str     # https://github.com/<owner>/<name>
    branch: str

    @property
    def github_path(self) -> str:
        """``<owner>/<name>`` of the repository."""
        return self.repository.removeprefix("https://github.com/").strip("/")

    def colab(self, notebook: str) -> str:
        """Open ``notebooks/<notebook>`` of the repository in Colab."""
        return f"https://colab.research.google.com/github/{self.github_path}/blob/{self.branch}/notebooks/{notebook}"

    def binder(self, notebook: str | None = None) -> str:
        """Launch the repository on mybinder.org in JupyterLab, at ``notebook`` if given."""
        base = f"https://mybinder.org/v2/gh/{self.github_path}/{self.branch}"
        return base + (f"?urlpath=lab/tree/notebooks/{notebook}" if notebook else "")


@lru_cache(maxsize=1)
def launch() -> Launch:
    """The repository URL and branch configured in ``pyproject.toml`` (``[tool.course]``)."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    conf = data["tool"]["course"]
    repository = conf["repository"].rstrip("/")
    if not repository.startswith("https://github.com/") or repository.count("/") != 4:
        raise ValueError(f"[tool.course] repository must be https://github.com/<owner>/<name>, got {repository!r}")
    return Launch(repository=repository, branch=conf.get("branch", "main"))


def chapters() -> list[Path]:
    """Every chapter notebook, 00 to the last, in course order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
