"""Where the Omniglot files live: ``$COURSE_DATA_DIR``, else the user cache folder."""
from __future__ import annotations

import os
import stat
from pathlib import Path

DATA_ENV_VAR = "COURSE_DATA_DIR"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/learning-to-learn/omniglot`` (default ``~/.cache/...``); not created."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "learning-to-learn" / "omniglot"


def data_dir() -> Path:
    """The default data folder: ``$COURSE_DATA_DIR`` if set, else the user cache folder.

    Returns:
        ``Path($COURSE_DATA_DIR)``, or ``~/.cache/learning-to-learn/omniglot``
        (``$XDG_CACHE_HOME/learning-to-learn/omniglot`` when that variable is set).
        The folder is not created.
    """
    env = os.environ.get(DATA_ENV_VAR, "").strip()
    return Path(env).expanduser() if env else user_cache_dir()


def writable(folder: Path) -> bool:
    """Whether we may write into ``folder`` (created if missing).

    A folder whose permission bits forbid writing counts as read-only even for root, so a shared
    read-only data folder is never written to.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK | os.X_OK)
