"""Downloading and writing files safely: size and MD5 checks, temp-file-then-rename writes.

Every file the loader writes (downloaded zips, the npz cache) is first written to a
``<name>.<random>.part`` file beside its destination, created with the user's normal permissions
(``0o666`` minus the umask) and locked with :func:`fcntl.flock` while it is written, then renamed
onto the destination with :func:`os.replace`. Partial files left behind by a killed process are
removed by later runs once they are stale (unlocked and untouched for :data:`PART_STALE_SECONDS`).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import http.client
import os
import re
import secrets
import time
import urllib.request
from pathlib import Path

from course_utils.validation import check_int, check_lr, check_path

from .locate import DATA_ENV_VAR

try:
    import fcntl
except ImportError:  # Windows: a file that is open cannot be deleted, which protects it instead
    fcntl = None

#: Raw-file URL prefix of the brendenlake/omniglot repository (the one torchvision uses).
OFFICIAL_URL_PREFIX = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"

#: name -> (url, md5, size in bytes) of the official files.
OFFICIAL_FILES: dict[str, tuple[str, str, int]] = {
    "images_background.zip": (
        OFFICIAL_URL_PREFIX + "images_background.zip", "68d2efa1b9178cc56df9314c21c6e718", 9_464_212),
    "images_evaluation.zip": (
        OFFICIAL_URL_PREFIX + "images_evaluation.zip", "6b91aef0f799c5bb55b94e3f2daec811", 6_462_886),
    "images_background_small1.zip": (
        OFFICIAL_URL_PREFIX + "images_background_small1.zip", "e704a628b5459e08445c13499850abc4", 1_319_022),
    "images_background_small2.zip": (
        OFFICIAL_URL_PREFIX + "images_background_small2.zip", "b75a71a51d3b13f821f212756fe481fd", 1_580_917),
}

#: The two official zips that together hold the whole data set: background (split 0) first.
FULL_ZIPS = ("images_background.zip", "images_evaluation.zip")

#: Default seconds without any data from the server before a download is abandoned.
DOWNLOAD_TIMEOUT = 60.0
#: Default seconds one file's download may take in all (a server drip-feeding bytes is cut off).
DOWNLOAD_DEADLINE = 1800.0
#: A ``*.part`` file untouched for this long, and not locked by a live writer, is stale.
PART_STALE_SECONDS = 600.0

_BLOCK = 1 << 20


def check_seconds(value, name: str) -> float:
    """A finite number of seconds ``> 0`` (bools rejected), as a float."""
    if not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            return check_lr(value, name)  # validation.py's "finite number > 0" check
    raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest (``"md5"``, ``"sha256"``, ...) of the file at ``path``."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Partial files
# --------------------------------------------------------------------------------------------
def _part_pattern(name: str) -> str:
    return glob.escape(name) + ".*.part"


def clean_stale_parts(folder: Path, name: str, *, older_than: float = PART_STALE_SECONDS) -> list[Path]:
    """Delete the stale partial files ``<name>.*.part`` in ``folder``, left by killed writers.

    A partial file is stale when no live process holds its lock (where :mod:`fcntl` exists) and it
    has not been written to for ``older_than`` seconds; a file being written by another process
    is never touched. Errors (a read-only folder, a file that vanished) are ignored.

    Returns:
        The files deleted.
    """
    removed: list[Path] = []
    for part in Path(folder).glob(_part_pattern(name)):
        try:
            if fcntl is None:  # Windows refuses to delete a file some process still has open
                if time.time() - part.stat().st_mtime >= older_than:
                    part.unlink()
                    removed.append(part)
                continue
            fd = os.open(part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            except OSError:
                pass  # no locking on this file system: the age alone decides
            st = os.fstat(fd)
            if time.time() - st.st_mtime >= older_than and os.stat(part).st_ino == st.st_ino:
                part.unlink()
                removed.append(part)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_write(dest: Path):
    """Context manager yielding a binary file that becomes ``dest`` only if the block succeeds.

    The file is ``<dest name>.<random>.part`` beside ``dest``, created with mode ``0o666`` filtered
    by the umask (e.g. ``0o644`` under umask 022) and locked while open; on success it is renamed
    onto ``dest`` (:func:`os.replace`, atomic), on any exception it is deleted. Stale partial
    files of ``dest`` are cleaned first (:func:`clean_stale_parts`).

    Raises:
        OSError: the folder cannot be created or written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_parts(dest.parent, dest.name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = dest.with_name(f"{dest.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask, as for any new file
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"cannot create a partial file for {dest}")
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            yield f
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------
def download_file(url: str, dest: str | os.PathLike, *, md5: str, size: int | None = None,
                  timeout: float = DOWNLOAD_TIMEOUT, deadline: float = DOWNLOAD_DEADLINE) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its size and MD5.

    The file is streamed into a partial file beside ``dest`` (see :func:`atomic_write`), checked,
    and only then renamed onto ``dest``; on any failure the partial file is deleted, so ``dest``
    is never half-written. If ``dest`` already exists with the right MD5 nothing is downloaded.

    Args:
        url: ``http(s)://`` or ``file://`` URL (read with :mod:`urllib.request`).
        dest: where the file goes; its folder is created if needed.
        md5: expected MD5, 32 hex digits.
        size: expected size in bytes (an int >= 0), or None to skip that check.
        timeout: seconds to wait for the connection or for the next bytes (> 0).
        deadline: seconds the whole download may take (> 0), checked between reads: a server
            that drip-feeds bytes is cut off after at most ``deadline + timeout`` seconds.

    Returns:
        ``dest`` as a Path.

    Raises:
        ValueError: a bad argument (the message names it, the allowed values and what was given).
        RuntimeError: network error, timeout, deadline passed, truncated download or checksum
            mismatch; the message says what went wrong and how to get the file by hand.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty str, got {url!r}")
    dest = check_path(dest, "dest")
    if not isinstance(md5, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
        raise ValueError(f"md5 must be a str of 32 hex digits, got {md5!r}")
    md5 = md5.lower()
    if size is not None:
        size = check_int(size, "size", 0)
    timeout = check_seconds(timeout, "timeout")
    deadline = check_seconds(deadline, "deadline")

    if dest.parent.is_dir():
        clean_stale_parts(dest.parent, dest.name)
    if dest.is_file() and (size is None or dest.stat().st_size == size) and file_digest(dest, "md5") == md5:
        return dest

    def fail(problem: str, hint: str = "Retry") -> RuntimeError:
        expected = f"MD5 {md5}" + (f", {size:,} bytes" if size is not None else "")
        return RuntimeError(
            f"Downloading {url} failed: {problem}. Nothing was written to {dest}. "
            f"{hint}, or download the file by hand from {url} into {dest.parent} "
            f"(expected {expected}), or set {DATA_ENV_VAR} to a folder that already holds "
            f"{dest.name}.")

    slow = ("Retry (a slow connection may need a larger timeout=, e.g. load_omniglot(timeout=300), "
            "or a larger deadline=)")
    try:
        with atomic_write(dest) as out:
            h = hashlib.md5()
            got = 0
            start = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response:
                    # HTTPResponse.read(n) waits for all n bytes; read1 returns what has arrived,
                    # so the deadline is checked even when the server sends a byte at a time.
                    read = response.read1 if isinstance(response, http.client.HTTPResponse) else response.read
                    while True:
                        if time.monotonic() - start > deadline:
                            of = f" of {size:,}" if size is not None else ""
                            raise fail(f"it took longer than deadline={deadline:g} s ({got:,}{of} bytes "
                                       "received): the server is too slow or stalled", slow)
                        block = read(_BLOCK)
                        if not block:
                            break
                        got += len(block)
                        if size is not None and got > size:
                            raise fail(f"the server sent more than the expected {size:,} bytes")
                        h.update(block)
                        out.write(block)
            except RuntimeError:
                raise
            except Exception as e:  # URLError, HTTPError, timeouts, IncompleteRead, disk full, ...
                reason = getattr(e, "reason", None) or e
                if isinstance(e, TimeoutError) or isinstance(reason, TimeoutError):
                    raise fail(f"no data from the server for timeout={timeout:g} s "
                               f"({type(reason).__name__}: {reason})", slow) from e
                raise fail(f"{type(e).__name__}: {reason}") from e
            if size is not None and got != size:
                raise fail(f"got {got:,} bytes, expected {size:,} (truncated or wrong file)")
            digest = h.hexdigest()
            if digest != md5:
                raise fail(f"MD5 mismatch: expected {md5}, got {digest} (corrupted or wrong file)")
    except OSError as e:  # creating, writing or renaming the partial file
        raise fail(f"cannot write into {dest.parent} ({e})") from e
    return dest
