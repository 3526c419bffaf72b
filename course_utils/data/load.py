""":func:`load_omniglot`: find the data (prepared npz, cache, official zips), download it if allowed."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from course_utils.validation import check_bool, check_path

from .dataset import Omniglot, check_image_size
from .download import (DOWNLOAD_DEADLINE, DOWNLOAD_TIMEOUT, FULL_ZIPS, OFFICIAL_FILES, check_seconds,
                       clean_stale_parts, download_file, file_digest)
from .locate import DATA_ENV_VAR, data_dir as default_data_dir, user_cache_dir, writable
from .read import (DamagedFileError, load_npz, parse_character_name, read_zip_characters, vinyals_for,
                   write_npz_cache)
from .synthetic import announce_synthetic, make_synthetic


class DamagedFileWarning(UserWarning):
    """A damaged npz (prepared file or cache) was found and is being replaced or worked around."""


def _dedupe(paths) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if all(os.path.abspath(p) != os.path.abspath(q) for q in out):
            out.append(p)
    return out


def _missing_message(folder: Path, image_size: int, problems: list[str]) -> str:
    lines = [f"Omniglot not found in {folder} (download=False)."]
    lines += [f"  - {p}" for p in problems]
    lines.append("Needed there: either the prepared omniglot28.npz (image_size=28 only) or the official zips")
    for name in FULL_ZIPS:
        url, md5, size = OFFICIAL_FILES[name]
        lines.append(f"  {name}  from {url}  (MD5 {md5}, {size:,} bytes)")
    lines.append(f"Fixes: call load_omniglot(download=True); or download those two files into {folder}; "
                 f"or set the environment variable {DATA_ENV_VAR} to a folder that holds them "
                 f"(or pass data_dir=...); or pass synthetic=True for a clearly labelled random-stroke stand-in.")
    if image_size != 28:
        lines.append(f"(image_size={image_size}: the prepared omniglot28.npz only serves image_size=28.)")
    return "\n".join(lines)


def load_omniglot(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                  synthetic: bool = False, image_size: int = 28, timeout: float = DOWNLOAD_TIMEOUT,
                  deadline: float = DOWNLOAD_DEADLINE) -> Omniglot:
    """Load Omniglot: all 1,623 characters x 20 drawings, ink = 255, grouped by character.

    The data folder is ``data_dir``, else ``$COURSE_DATA_DIR``, else the user cache folder
    (see :func:`~course_utils.data.data_dir`). In it, in order:

    1. ``omniglot{image_size}.npz`` (the prepared ``omniglot28.npz``, or a cache this function
       wrote): loaded without pickle, sha256- or shape-checked. A cache this function wrote into
       the user cache folder (because the data folder was read-only) is also used. A damaged
       npz is skipped with a :class:`DamagedFileWarning` and rebuilt by the next steps.
    2. the official ``images_background.zip`` + ``images_evaluation.zip`` (MD5-checked, read
       straight from the zips, resized with LANCZOS); the result is cached as
       ``omniglot{image_size}.npz`` in the data folder, or in the user cache folder if the data
       folder is read-only, or not at all if neither can be written.
    3. if ``download``: those zips are downloaded (into the data folder, or the user cache folder
       if the data folder is read-only) and step 2 runs.

    Files are written atomically with the user's normal permissions; stale partial downloads
    (``*.part``) left by a killed run are removed.

    Args:
        data_dir: folder to use instead of ``$COURSE_DATA_DIR`` / the user cache folder.
        download: allow downloading the official zips (about 16 MB) when nothing is found.
        synthetic: if the real data cannot be found or downloaded, return the random-stroke
            stand-in ``synthetic_omniglot(100, seed=0)`` (with a ``SyntheticDataWarning``)
            instead of raising. Real data is always preferred.
        image_size: side S of the images, an int in [8, 105] (28 is the standard; other sizes
            need the official zips).
        timeout: seconds a download waits for the connection or for more bytes (> 0).
        deadline: seconds one file's download may take in all (> 0), so a server that sends
            bytes very slowly cannot stall the loader forever.

    Returns:
        :class:`~course_utils.data.Omniglot` with ``images`` uint8 ``(1623, 20, S, S)``.

    Raises:
        ValueError: a bad argument.
        FileNotFoundError: nothing found and ``download=False`` (the message lists the files,
            their URLs and ``COURSE_DATA_DIR``).
        RuntimeError: a download failed, timed out or passed its deadline, or a file is damaged
            and cannot be rebuilt (the message says what to do).
    """
    image_size = check_image_size(image_size)
    download = check_bool(download, "download")
    synthetic = check_bool(synthetic, "synthetic")
    timeout = check_seconds(timeout, "timeout")
    deadline = check_seconds(deadline, "deadline")
    folder = default_data_dir() if data_dir is None else check_path(data_dir, "data_dir")
    try:
        return _load_real(folder, download=download, image_size=image_size, timeout=timeout, deadline=deadline)
    except (FileNotFoundError, RuntimeError) as e:
        if not synthetic:
            raise
        announce_synthetic(f"Real Omniglot unavailable ({str(e).splitlines()[0]}).")
        return make_synthetic(100, 0, image_size)


def _warn_damaged(damaged: list[DamagedFileError], action: str) -> None:
    for e in damaged:
        warnings.warn(f"{e.path} is damaged ({e.problem}); {action}.", DamagedFileWarning, stacklevel=4)


def _load_real(folder: Path, *, download: bool, image_size: int, timeout: float, deadline: float) -> Omniglot:
    npz_name = f"omniglot{image_size}.npz"
    user_cache = user_cache_dir()
    folders = _dedupe([folder, user_cache])
    for where in folders:  # partial files left by killed runs (only stale ones: see clean_stale_parts)
        if where.is_dir():
            for name in (*OFFICIAL_FILES, npz_name):
                clean_stale_parts(where, name)

    # 1. prepared file or our cache in the data folder ...
    damaged: list[DamagedFileError] = []
    if (folder / npz_name).is_file():
        try:
            return load_npz(folder / npz_name, image_size)
        except DamagedFileError as e:
            damaged.append(e)
    # ... or a cache built from the official zips in the user cache folder.
    official_md5 = tuple(OFFICIAL_FILES[name][1] for name in FULL_ZIPS)
    for other in folders[1:]:
        if (other / npz_name).is_file():
            try:
                found = load_npz(other / npz_name, image_size, official_md5=official_md5)
            except DamagedFileError as e:
                damaged.append(e)
                found = None
            if found is not None:
                _warn_damaged(damaged, f"using the cache {other / npz_name} instead")
                return found

    # 2. the official zips (in the data folder or the user cache folder), MD5-checked.
    zips: dict[str, Path] = {}
    problems: list[str] = []
    for name in FULL_ZIPS:
        _, md5, _ = OFFICIAL_FILES[name]
        for where in folders:
            candidate = where / name
            if candidate.is_file():
                if file_digest(candidate, "md5") == md5:
                    zips[name] = candidate
                    break
                problems.append(f"{candidate} has the wrong MD5 (expected {md5}): damaged or not the official file")
        else:
            if not any(name in p for p in problems):
                problems.append(f"{name} is missing")

    # 3. download what is missing or damaged.
    missing = [name for name in FULL_ZIPS if name not in zips]
    if missing:
        if not download:
            if damaged:
                raise damaged[0]
            raise FileNotFoundError(_missing_message(folder, image_size, problems))
        target = next((f for f in folders if writable(f)), None)
        if target is None:
            raise RuntimeError(f"Cannot download Omniglot: neither {folder} nor {user_cache} is writable. "
                               f"Set {DATA_ENV_VAR} to a writable folder, or put the official zips there.")
        _warn_damaged(damaged, "downloading the official zips to rebuild it")
        for name in missing:
            url, md5, size = OFFICIAL_FILES[name]
            print(f"Downloading {url} ({size / 1e6:.1f} MB) into {target} ...", flush=True)
            zips[name] = download_file(url, target / name, md5=md5, size=size, timeout=timeout,
                                       deadline=deadline)
    else:
        _warn_damaged(damaged, "rebuilding it from the official zips")

    parts = [read_zip_characters(zips[name], image_size=image_size) for name in FULL_ZIPS]
    n_background = len(parts[0][1])
    names = parts[0][1] + parts[1][1]
    images = np.concatenate([parts[0][0], parts[1][0]])
    del parts
    of_alphabet = [parse_character_name(n)[0] for n in names]
    alphabet_names = tuple(dict.fromkeys(of_alphabet))
    index = {a: i for i, a in enumerate(alphabet_names)}
    alphabet = np.array([index[a] for a in of_alphabet], dtype=np.int64)
    split = np.zeros(len(names), dtype=np.uint8)
    split[n_background:] = 1  # background zip first, then evaluation
    data = Omniglot(images=images, alphabet=alphabet, alphabet_names=alphabet_names, character=tuple(names),
                    split=split, vinyals_split=vinyals_for(names),
                    source=" + ".join(str(zips[n]) for n in FULL_ZIPS) + " (official zips, MD5 verified)")
    for where in folders:
        if write_npz_cache(where / npz_name, data, official_md5):
            break
    return data
