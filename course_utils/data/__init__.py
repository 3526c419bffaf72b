"""Omniglot for the course: find it, download it if needed, verify it, load it as NumPy.

Omniglot (Lake, Salakhutdinov & Tenenbaum, *Science* 2015; MIT licence) has 1,623 handwritten
characters from 50 alphabets, each drawn once by 20 people. :func:`load_omniglot` returns them
as one uint8 array of shape ``(n_characters, 20, 28, 28)`` with **ink = 255 and paper = 0**,
plus the alphabet of each character, the official background/evaluation split and the
Vinyals et al. (2016) train/val/test split.

Where the data comes from, in order (see :func:`load_omniglot`):

1. a prepared ``omniglot28.npz`` in the data folder (the course's offline copy),
2. the official ``images_background.zip`` + ``images_evaluation.zip`` (MD5-checked, read
   straight from the zips, resized 105 -> 28 with Pillow LANCZOS, then cached as an ``.npz``),
3. a download of those two zips (``download=True``),
4. only if asked for (``synthetic=True``): a clearly labelled random-stroke stand-in.

The data folder is the ``data_dir`` argument, else ``$COURSE_DATA_DIR``, else
``~/.cache/learning-to-learn/omniglot`` (``$XDG_CACHE_HOME`` is honoured).

NumPy, Pillow and the standard library only; no deep-learning framework is imported.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "DATA_ENV_VAR",
    "OFFICIAL_FILES",
    "OFFICIAL_URL_PREFIX",
    "Omniglot",
    "SyntheticDataWarning",
    "data_dir",
    "load_omniglot",
    "download_file",
    "read_zip_characters",
    "safe_extract",
    "synthetic_omniglot",
]

DATA_ENV_VAR = "COURSE_DATA_DIR"

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

#: The course's prepared 28x28 file (see the data folder's README) and its checksum.
PREPARED_NPZ = "omniglot28.npz"
PREPARED_NPZ_SHA256 = "01e55085b86d7422e31a0947a063aa0fc6be1833bf290e7eea8562a20bc39d3b"
PREPARED_NPZ_SIZE = 7_311_438

N_DRAWERS = 20
ORIGINAL_SIZE = 105
IMAGE_SIZE_RANGE = (8, ORIGINAL_SIZE)
SUBSETS = ("background", "evaluation", "train", "val", "test", "trainval", "all")
VINYALS_NAMES = ("train", "val", "test")
UNKNOWN = 255  # vinyals_split value of a character that is in none of the Vinyals lists

_SPLIT_FILE = Path(__file__).with_name("omniglot_vinyals_split.txt")
_CACHE_FORMAT = "course_utils.data omniglot cache v1"


class SyntheticDataWarning(UserWarning):
    """Issued whenever synthetic stand-in data is handed out instead of real Omniglot."""


# --------------------------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Omniglot:
    """Omniglot characters, grouped by character, with ink = 255 and paper = 0.

    Attributes:
        images: uint8 ``(n_characters, 20, S, S)`` (S = 28 by default): drawing ``j`` of
            character ``i`` is ``images[i, j]``. Ink = 255, paper = 0. Read-only.
        alphabet: int ``(n_characters,)``, index of each character's alphabet in ``alphabet_names``.
        alphabet_names: the alphabet names, e.g. ``"Angelic"``.
        character: ``"Alphabet/characterNN"`` for each character (row), e.g. ``"Angelic/character01"``.
        split: uint8 ``(n_characters,)``: 0 = background (964 characters), 1 = evaluation (659).
        vinyals_split: uint8 ``(n_characters,)``: 0 = train (1028), 1 = val (172), 2 = test (423),
            255 = unknown (character not in the Vinyals lists).
        source: where the data came from, in words (starts with ``"SYNTHETIC"`` for stand-in data).
    """

    images: np.ndarray
    alphabet: np.ndarray
    alphabet_names: tuple[str, ...]
    character: tuple[str, ...]
    split: np.ndarray
    vinyals_split: np.ndarray
    source: str

    def __post_init__(self):
        images = self.images
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4
                and images.shape[1] == N_DRAWERS and images.shape[2] == images.shape[3]):
            raise ValueError("images must be a uint8 array (n_characters, 20, S, S), got "
                             f"{getattr(images, 'dtype', type(images))} {getattr(images, 'shape', '')}")
        n = images.shape[0]
        for name in ("alphabet", "split", "vinyals_split"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != (n,):
                raise ValueError(f"{name} must be an array of shape ({n},), got "
                                 f"{getattr(value, 'shape', type(value))}")
        if len(self.character) != n:
            raise ValueError(f"character must have {n} names, got {len(self.character)}")
        if n and (self.alphabet.min() < 0 or self.alphabet.max() >= len(self.alphabet_names)):
            raise ValueError("alphabet must index into alphabet_names")
        for name in ("images", "alphabet", "split", "vinyals_split"):
            view = getattr(self, name).view()  # read-only view; the caller's array stays writable
            view.flags.writeable = False
            object.__setattr__(self, name, view)
        object.__setattr__(self, "alphabet_names", tuple(self.alphabet_names))
        object.__setattr__(self, "character", tuple(self.character))

    @property
    def n_characters(self) -> int:
        """Number of characters (rows of ``images``)."""
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        """Side length S of each (S, S) drawing."""
        return int(self.images.shape[-1])

    @property
    def is_synthetic(self) -> bool:
        """True for the random-stroke stand-in of :func:`synthetic_omniglot`."""
        return self.source.startswith("SYNTHETIC")

    def mask(self, which: str) -> np.ndarray:
        """Boolean ``(n_characters,)`` mask of the characters in subset ``which`` (see :meth:`subset`)."""
        if not isinstance(which, str) or which not in SUBSETS:
            raise ValueError(f"which must be one of {', '.join(repr(s) for s in SUBSETS)}; got {which!r}")
        if which == "all":
            return np.ones(self.n_characters, dtype=bool)
        if which in ("background", "evaluation"):
            return self.split == (0 if which == "background" else 1)
        if self.n_characters and np.all(self.vinyals_split == UNKNOWN):
            raise ValueError(f"which={which!r} needs the Vinyals split, which is unknown for this data "
                             f"({self.source}); use 'background', 'evaluation' or 'all'")
        if which == "trainval":
            return (self.vinyals_split == 0) | (self.vinyals_split == 1)
        return self.vinyals_split == VINYALS_NAMES.index(which)

    def subset(self, which: str) -> np.ndarray:
        """Images of one subset of characters, as a new array.

        Args:
            which: ``"background"`` / ``"evaluation"`` (official split), ``"train"`` / ``"val"`` /
                ``"test"`` / ``"trainval"`` (Vinyals split) or ``"all"``.

        Returns:
            uint8 ``(C, 20, S, S)``, ink = 255, in the order of ``images``.

        Raises:
            ValueError: ``which`` is not one of the values above (or the Vinyals split is unknown).
        """
        return self.images[self.mask(which)]

    def __repr__(self) -> str:
        return (f"Omniglot(n_characters={self.n_characters}, image_size={self.image_size}, "
                f"n_alphabets={len(self.alphabet_names)}, source={self.source!r})")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _check_image_size(image_size) -> int:
    low, high = IMAGE_SIZE_RANGE
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or not low <= image_size <= high:
        raise ValueError(f"image_size must be an int in [{low}, {high}], got {image_size!r}")
    return int(image_size)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_path(value, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name} must be a non-empty str or os.PathLike, got {value!r}")
    return Path(value).expanduser()


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "learning-to-learn" / "omniglot"


def _default_data_dir() -> Path:
    env = os.environ.get(DATA_ENV_VAR, "").strip()
    return Path(env).expanduser() if env else _user_cache_dir()


def data_dir() -> Path:
    """The default data folder: ``$COURSE_DATA_DIR`` if set, else the user cache folder.

    Returns:
        ``Path($COURSE_DATA_DIR)``, or ``~/.cache/learning-to-learn/omniglot``
        (``$XDG_CACHE_HOME/learning-to-learn/omniglot`` when that variable is set).
        The folder is not created.
    """
    return _default_data_dir()


def _writable(folder: Path) -> bool:
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


def _dedupe(paths) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if all(os.path.abspath(p) != os.path.abspath(q) for q in out):
            out.append(p)
    return out


def _announce_synthetic(reason: str) -> None:
    warnings.warn(f"{reason} Using SYNTHETIC random-stroke characters, NOT real Omniglot: "
                  "results will not match the course text.", SyntheticDataWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# Downloading and zips
# --------------------------------------------------------------------------------------------
def download_file(url: str, dest: str | os.PathLike, *, md5: str, size: int | None = None,
                  timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its size and MD5.

    The file is streamed into a temporary ``*.part`` file beside ``dest``, checked, and only then
    renamed onto ``dest`` with :func:`os.replace`; on any failure the temporary file is deleted,
    so ``dest`` is never half-written. If ``dest`` already exists with the right MD5 nothing is
    downloaded.

    Args:
        url: ``http(s)://`` or ``file://`` URL (read with :mod:`urllib.request`).
        dest: where the file goes; its folder is created if needed.
        md5: expected MD5, 32 hex digits.
        size: expected size in bytes, or None to skip that check.
        timeout: socket timeout in seconds (> 0).

    Returns:
        ``dest`` as a Path.

    Raises:
        ValueError: a bad argument.
        RuntimeError: network error, truncated download or checksum mismatch; the message says
            what went wrong and how to get the file by hand.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty str, got {url!r}")
    dest = _check_path(dest, "dest")
    if not isinstance(md5, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
        raise ValueError(f"md5 must be a str of 32 hex digits, got {md5!r}")
    md5 = md5.lower()
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0):
        raise ValueError(f"size must be None or an int >= 0, got {size!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number > 0 (seconds), got {timeout!r}")

    if dest.is_file() and (size is None or dest.stat().st_size == size) and _file_digest(dest, "md5") == md5:
        return dest

    def fail(problem: str) -> RuntimeError:
        expected = f"MD5 {md5}" + (f", {size:,} bytes" if size is not None else "")
        return RuntimeError(
            f"Downloading {url} failed: {problem}. Nothing was written to {dest}. "
            f"Retry, or download the file by hand from {url} into {dest.parent} "
            f"(expected {expected}), or set {DATA_ENV_VAR} to a folder that already holds "
            f"{dest.name}.")

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise fail(f"cannot write into {dest.parent} ({e})") from e
    tmp = Path(tmp_name)
    done = False
    try:
        h = hashlib.md5()
        got = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                while True:
                    block = response.read(1 << 20)
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
            raise fail(f"{type(e).__name__}: {reason}") from e
        if size is not None and got != size:
            raise fail(f"got {got:,} bytes, expected {size:,} (truncated or wrong file)")
        digest = h.hexdigest()
        if digest != md5:
            raise fail(f"MD5 mismatch: expected {md5}, got {digest} (corrupted or wrong file)")
        os.replace(tmp, dest)
        done = True
        return dest
    finally:
        if not done:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


def _check_member(name: str) -> None:
    parts = re.split(r"[\\/]", name)
    if (name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts
            or "\x00" in name):
        raise ValueError(f"refusing zip member {name!r}: its path is absolute or escapes the target folder")


def safe_extract(zip_path: str | os.PathLike, target_dir: str | os.PathLike) -> None:
    """Extract a zip into ``target_dir``, refusing members that would land outside it.

    Every member is checked before anything is written: absolute paths (``/etc/x``, ``C:\\x``),
    ``..`` components and paths that resolve outside ``target_dir`` (e.g. through a symlink
    already in it) make the whole extraction fail.

    Args:
        zip_path: the zip file.
        target_dir: destination folder (created if missing).

    Raises:
        ValueError: a member's path escapes ``target_dir``; the message names the member.
    """
    zip_path = _check_path(zip_path, "zip_path")
    target = _check_path(target_dir, "target_dir")
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        for info in members:
            _check_member(info.filename)
            resolved = (root / info.filename).resolve()
            if resolved != root and not resolved.is_relative_to(root):
                raise ValueError(f"refusing zip member {info.filename!r}: it would be written to "
                                 f"{resolved}, outside {root}")
        for info in members:
            out = root / info.filename
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _png_to_ink(data: bytes, image_size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("L")  # the official PNGs are mode "1"; LANCZOS on "L" matches omniglot28.npz
        if im.size != (image_size, image_size):
            im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
        arr = np.asarray(im, dtype=np.uint8)
    return 255 - arr  # the PNGs have paper = 255 (white); we use ink = 255


def read_zip_characters(zip_path: str | os.PathLike, *, image_size: int = 28) -> tuple[np.ndarray, list[str]]:
    """Read every character of an official Omniglot zip, without extracting it.

    Handles the layout ``<top>/<Alphabet>/characterNN/XXXX_YY.png`` of the official zips
    (``images_background``, ``images_evaluation``, ``images_background_small1/2``). Characters
    come in the official order (by their number ``XXXX``), drawings sorted by file name.

    Args:
        zip_path: the zip file.
        image_size: side of the output images, an int in [8, 105]; 105 keeps the originals,
            anything else is resized with Pillow LANCZOS.

    Returns:
        ``(images, names)``: uint8 ``(C, 20, image_size, image_size)`` with ink = 255 and
        paper = 0, and the C names ``"Alphabet/characterNN"``.

    Raises:
        ValueError: bad ``image_size``, no characters, or a character without exactly 20 drawings.
    """
    image_size = _check_image_size(image_size)
    zip_path = _check_path(zip_path, "zip_path")
    with zipfile.ZipFile(zip_path) as zf:
        groups: dict[str, list[zipfile.ZipInfo]] = {}
        for info in zf.infolist():
            path = PurePosixPath(info.filename)
            if info.is_dir() or path.suffix.lower() != ".png" or len(path.parts) < 3 \
                    or path.parts[0] == "__MACOSX" or path.name.startswith("._"):
                continue
            alphabet, character = path.parts[-3], path.parts[-2]
            groups.setdefault(f"{alphabet}/{character}", []).append(info)
        if not groups:
            raise ValueError(f"{zip_path} holds no <Alphabet>/<character>/*.png images")

        def order(item):
            name, infos = item
            numbers = [int(m.group(1)) for i in infos
                       if (m := re.match(r"(\d+)_\d+\.png$", PurePosixPath(i.filename).name, re.I))]
            return (min(numbers) if numbers else float("inf"), name)

        items = sorted(groups.items(), key=order)
        images = np.empty((len(items), N_DRAWERS, image_size, image_size), dtype=np.uint8)
        for c, (name, infos) in enumerate(items):
            if len(infos) != N_DRAWERS:
                raise ValueError(f"{zip_path}: character {name} has {len(infos)} drawings, "
                                 f"expected {N_DRAWERS}")
            for d, info in enumerate(sorted(infos, key=lambda i: i.filename)):
                images[c, d] = _png_to_ink(zf.read(info), image_size)
    return images, [name for name, _ in items]


# --------------------------------------------------------------------------------------------
# Vinyals split and the .npz files
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _shipped_vinyals() -> dict[str, int]:
    """``"Alphabet/characterNN" -> 0/1/2`` from the split list shipped with the package."""
    table: dict[str, int] = {}
    try:
        text = _SPLIT_FILE.read_text(encoding="utf-8")
    except OSError:
        return table
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            split, name = line.split(maxsplit=1)
            table[name] = VINYALS_NAMES.index(split)
    return table


def _vinyals_for(names) -> np.ndarray:
    table = _shipped_vinyals()
    return np.array([table.get(n, UNKNOWN) for n in names], dtype=np.uint8)


def _per_character(column: np.ndarray, name: str, n_chars: int) -> np.ndarray:
    grouped = column.reshape(n_chars, N_DRAWERS)
    if not np.all(grouped == grouped[:, :1]):
        raise ValueError(f"{name} differs between the drawings of one character")
    return grouped[:, 0]


def _read_characters_csv(path: Path, n_chars: int, alphabet_names, alphabet) -> tuple[list[str], np.ndarray] | None:
    """Names and Vinyals split from ``characters.csv``, or None if it does not match the npz."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != n_chars:
            return None
        rows.sort(key=lambda r: int(r["char_id"]))
        if [int(r["char_id"]) for r in rows] != list(range(n_chars)):
            return None
        if any(r["alphabet"] != alphabet_names[a] for r, a in zip(rows, alphabet)):
            return None
        names = [f"{r['alphabet']}/{r['character']}" for r in rows]
        vinyals = np.array([VINYALS_NAMES.index(r["vinyals_split"]) if r.get("vinyals_split") in VINYALS_NAMES
                            else UNKNOWN for r in rows], dtype=np.uint8)
        return names, vinyals
    except (OSError, KeyError, ValueError):
        return None


def _load_npz(path: Path, image_size: int, *, official_md5: tuple[str, ...] | None = None) -> Omniglot | None:
    """Load a prepared or cached npz (row = char_id * 20 + drawer, paper = 255).

    With ``official_md5`` given (a cache found outside the data folder), return None unless the
    file is a cache built from zips with exactly those MD5s.

    Raises:
        RuntimeError: the file is damaged or not laid out as expected.
    """
    def damaged(problem: str) -> RuntimeError:
        return RuntimeError(f"{path} is damaged or not an Omniglot file ({problem}). Delete it and "
                            f"load again (it is rebuilt from, or replaced by, the official zips), or set "
                            f"{DATA_ENV_VAR} to a folder with a good copy.")

    verified = ""
    if path.name == PREPARED_NPZ and official_md5 is None:
        size = path.stat().st_size
        if size == PREPARED_NPZ_SIZE:
            digest = _file_digest(path, "sha256")
            if digest != PREPARED_NPZ_SHA256:
                raise damaged(f"sha256 {digest}, expected {PREPARED_NPZ_SHA256}")
            verified = "sha256 verified"
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if official_md5 is not None:
                if "source_md5" not in keys or tuple(npz["source_md5"].tolist()) != tuple(official_md5):
                    return None
            missing = {"images", "alphabet", "alphabet_names", "split"} - keys
            if missing:
                raise damaged(f"missing arrays {sorted(missing)}")
            images = npz["images"]
            if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (image_size, image_size) \
                    or images.shape[0] % N_DRAWERS:
                raise damaged(f"images is {images.dtype} {images.shape}, expected uint8 "
                              f"(n_characters * 20, {image_size}, {image_size})")
            n_chars = images.shape[0] // N_DRAWERS
            if "char_id" in keys and not np.array_equal(npz["char_id"], np.repeat(np.arange(n_chars), N_DRAWERS)):
                raise damaged("rows are not ordered as char_id * 20 + drawer")
            if "drawer" in keys and not np.array_equal(npz["drawer"], np.tile(np.arange(N_DRAWERS), n_chars)):
                raise damaged("rows are not ordered as char_id * 20 + drawer")
            alphabet_names = tuple(str(a) for a in npz["alphabet_names"].tolist())
            alphabet = _per_character(npz["alphabet"], "alphabet", n_chars).astype(np.int64)
            split = _per_character(npz["split"], "split", n_chars).astype(np.uint8)
            vinyals = (_per_character(npz["vinyals_split"], "vinyals_split", n_chars).astype(np.uint8)
                       if "vinyals_split" in keys else None)
            if "character_names" in keys:
                names = [str(n) for n in npz["character_names"].tolist()]
            elif "char_in_alphabet" in keys:
                cia = _per_character(npz["char_in_alphabet"], "char_in_alphabet", n_chars)
                names = [f"{alphabet_names[a]}/character{int(k) + 1:02d}" for a, k in zip(alphabet, cia)]
            else:
                names = [f"{alphabet_names[a]}/character{i + 1:04d}" for i, a in enumerate(alphabet)]
            is_cache = "source_md5" in keys
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError) as e:
        raise damaged(f"{type(e).__name__}: {e}") from e
    if len(names) != n_chars or (n_chars and alphabet.max() >= len(alphabet_names)) or np.any(split > 1):
        raise damaged("inconsistent metadata")

    csv_path = path.with_name("characters.csv")
    from_csv = _read_characters_csv(csv_path, n_chars, alphabet_names, alphabet) if csv_path.is_file() else None
    if from_csv is not None:
        names, vinyals = from_csv
    elif vinyals is None:
        vinyals = _vinyals_for(names)

    images = images.reshape(n_chars, N_DRAWERS, image_size, image_size)
    np.subtract(255, images, out=images)  # stored paper = 255; we hand out ink = 255, in place
    kind = "cache built from the official zips" if is_cache else "prepared file"
    source = f"{path} ({kind}" + (f", {verified})" if verified else ")")
    return Omniglot(images=images, alphabet=alphabet, alphabet_names=alphabet_names, character=tuple(names),
                    split=split, vinyals_split=vinyals, source=source)


def _write_cache(path: Path, data: Omniglot, source_md5: tuple[str, ...]) -> bool:
    """Save ``data`` in the omniglot28.npz layout (no pickle), atomically. False if not possible."""
    n, s = data.n_characters, data.image_size
    char_in_alphabet = np.zeros(n, dtype=np.int16)
    seen: dict[int, int] = {}
    for i, a in enumerate(data.alphabet.tolist()):
        char_in_alphabet[i] = seen.get(a, 0)
        seen[a] = char_in_alphabet[i] + 1
    arrays = {
        "images": (255 - data.images).reshape(n * N_DRAWERS, s, s),
        "char_id": np.repeat(np.arange(n, dtype=np.int16), N_DRAWERS),
        "alphabet": np.repeat(data.alphabet.astype(np.int16), N_DRAWERS),
        "char_in_alphabet": np.repeat(char_in_alphabet, N_DRAWERS),
        "drawer": np.tile(np.arange(N_DRAWERS, dtype=np.int8), n),
        "split": np.repeat(data.split, N_DRAWERS),
        "vinyals_split": np.repeat(data.vinyals_split, N_DRAWERS),
        "alphabet_names": np.array(data.alphabet_names, dtype=str),
        "character_names": np.array(data.character, dtype=str),
        "source_md5": np.array(source_md5, dtype=str),
        "format": np.array(_CACHE_FORMAT),
    }
    if not _writable(path.parent):
        return False
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError:
        return False
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
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
                  synthetic: bool = False, image_size: int = 28) -> Omniglot:
    """Load Omniglot: all 1,623 characters x 20 drawings, ink = 255, grouped by character.

    The data folder is ``data_dir``, else ``$COURSE_DATA_DIR``, else the user cache folder
    (see :func:`data_dir`). In it, in order:

    1. ``omniglot{image_size}.npz`` (the prepared ``omniglot28.npz``, or a cache this function
       wrote): loaded without pickle, sha256- or shape-checked, names and Vinyals split from a
       ``characters.csv`` beside it when present. A cache this function wrote into the user
       cache folder (because the data folder was read-only) is also used.
    2. the official ``images_background.zip`` + ``images_evaluation.zip`` (MD5-checked, read
       straight from the zips, resized with LANCZOS); the result is cached as
       ``omniglot{image_size}.npz`` in the data folder, or in the user cache folder if the data
       folder is read-only, or not at all if neither can be written.
    3. if ``download``: those zips are downloaded (into the data folder, or the user cache folder
       if the data folder is read-only) and step 2 runs.

    Args:
        data_dir: folder to use instead of ``$COURSE_DATA_DIR`` / the user cache folder.
        download: allow downloading the official zips (about 16 MB) when nothing is found.
        synthetic: if the real data cannot be found or downloaded, return the random-stroke
            stand-in ``synthetic_omniglot(100, seed=0)`` (with a :class:`SyntheticDataWarning`)
            instead of raising. Real data is always preferred.
        image_size: side S of the images, an int in [8, 105] (28 is the standard; other sizes
            need the official zips).

    Returns:
        :class:`Omniglot` with ``images`` uint8 ``(1623, 20, S, S)``.

    Raises:
        ValueError: a bad argument.
        FileNotFoundError: nothing found and ``download=False`` (the message lists the files,
            their URLs and ``COURSE_DATA_DIR``).
        RuntimeError: a download failed or a file is damaged (message says what to do).
    """
    image_size = _check_image_size(image_size)
    download = _check_bool(download, "download")
    synthetic = _check_bool(synthetic, "synthetic")
    folder = _default_data_dir() if data_dir is None else _check_path(data_dir, "data_dir")
    try:
        return _load_real(folder, download=download, image_size=image_size)
    except (FileNotFoundError, RuntimeError) as e:
        if not synthetic:
            raise
        _announce_synthetic(f"Real Omniglot unavailable ({str(e).splitlines()[0]}).")
        return _synthetic(100, 0, image_size)


def _load_real(folder: Path, *, download: bool, image_size: int) -> Omniglot:
    npz_name = f"omniglot{image_size}.npz"
    user_cache = _user_cache_dir()
    folders = _dedupe([folder, user_cache])

    # 1. prepared file or our cache in the data folder.
    if (folder / npz_name).is_file():
        return _load_npz(folder / npz_name, image_size)
    # ... or a cache built from the official zips in the user cache folder.
    official_md5 = tuple(OFFICIAL_FILES[name][1] for name in FULL_ZIPS)
    for other in folders[1:]:
        if (other / npz_name).is_file():
            try:
                found = _load_npz(other / npz_name, image_size, official_md5=official_md5)
            except RuntimeError:
                found = None  # a damaged cache is simply rebuilt
            if found is not None:
                return found

    # 2. the official zips (in the data folder or the user cache folder), MD5-checked.
    zips: dict[str, Path] = {}
    problems: list[str] = []
    for name in FULL_ZIPS:
        _, md5, _ = OFFICIAL_FILES[name]
        for where in folders:
            candidate = where / name
            if candidate.is_file():
                if _file_digest(candidate, "md5") == md5:
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
            raise FileNotFoundError(_missing_message(folder, image_size, problems))
        target = next((f for f in folders if _writable(f)), None)
        if target is None:
            raise RuntimeError(f"Cannot download Omniglot: neither {folder} nor {user_cache} is writable. "
                               f"Set {DATA_ENV_VAR} to a writable folder, or put the official zips there.")
        for name in missing:
            url, md5, size = OFFICIAL_FILES[name]
            print(f"Downloading {url} ({size / 1e6:.1f} MB) into {target} ...", flush=True)
            zips[name] = download_file(url, target / name, md5=md5, size=size)

    parts = [read_zip_characters(zips[name], image_size=image_size) for name in FULL_ZIPS]
    n_background = len(parts[0][1])
    names = parts[0][1] + parts[1][1]
    images = np.concatenate([parts[0][0], parts[1][0]])
    del parts
    alphabet_names = tuple(dict.fromkeys(n.split("/")[0] for n in names))
    index = {a: i for i, a in enumerate(alphabet_names)}
    alphabet = np.array([index[n.split("/")[0]] for n in names], dtype=np.int64)
    split = np.zeros(len(names), dtype=np.uint8)
    split[n_background:] = 1  # background zip first, then evaluation
    data = Omniglot(images=images, alphabet=alphabet, alphabet_names=alphabet_names, character=tuple(names),
                    split=split, vinyals_split=_vinyals_for(names),
                    source=" + ".join(str(zips[n]) for n in FULL_ZIPS) + " (official zips, MD5 verified)")
    for where in folders:
        if _write_cache(where / npz_name, data, official_md5):
            break
    return data


# --------------------------------------------------------------------------------------------
# Synthetic stand-in
# --------------------------------------------------------------------------------------------
def _stroke_controls(rng: np.random.Generator) -> np.ndarray:
    """A character prototype: 1-4 quadratic Bezier strokes, control points (n_strokes, 3, 2) in [0, 1]."""
    strokes = []
    for _ in range(int(rng.integers(1, 5))):
        while True:
            p = rng.uniform(0.12, 0.88, size=(3, 2))
            if np.linalg.norm(p[2] - p[0]) > 0.35:  # no dots or tiny ticks
                strokes.append(p)
                break
    return np.stack(strokes)


def _synthetic(n_chars: int, seed: int, image_size: int) -> Omniglot:
    rng = np.random.default_rng(seed)
    canvas = ORIGINAL_SIZE  # draw at the original 105 px, then resize like the real data
    t = np.linspace(0.0, 1.0, 24)[:, None]
    images = np.empty((n_chars, N_DRAWERS, image_size, image_size), dtype=np.uint8)
    for c in range(n_chars):
        prototype = _stroke_controls(rng)
        width = int(rng.integers(5, 9))
        for d in range(N_DRAWERS):
            angle = rng.normal(0.0, 0.1)
            scale = rng.uniform(0.85, 1.05)
            shear = rng.normal(0.0, 0.08)
            a = scale * np.array([[np.cos(angle), -np.sin(angle) + shear], [np.sin(angle), np.cos(angle)]])
            shift = rng.normal(0.0, 0.03, size=2)
            controls = (prototype - 0.5) @ a.T + 0.5 + shift + rng.normal(0.0, 0.025, size=prototype.shape)
            im = Image.new("L", (canvas, canvas), 0)
            draw = ImageDraw.Draw(im)
            for p0, p1, p2 in controls:
                pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
                pts = np.clip(pts, 0.03, 0.97) * (canvas - 1)
                draw.line([tuple(q) for q in pts.tolist()], fill=255, width=width, joint="curve")
            if image_size != canvas:
                im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
            images[c, d] = np.asarray(im, dtype=np.uint8)
    per_alphabet = 20
    n_alphabets = -(-n_chars // per_alphabet)
    alphabet_names = tuple(f"Synthetic{k + 1:02d}" for k in range(n_alphabets))
    alphabet = np.arange(n_chars) // per_alphabet
    names = tuple(f"{alphabet_names[a]}/character{i % per_alphabet + 1:02d}" for i, a in enumerate(alphabet))
    # Same proportions as the real splits: 964/1623 background; Vinyals 1028/172/423.
    split = (np.arange(n_chars) >= round(n_chars * 964 / 1623)).astype(np.uint8)
    n_train, n_val = round(n_chars * 1028 / 1623), round(n_chars * 172 / 1623)
    if n_chars >= 3:
        n_val = max(n_val, 1)
        n_train = min(max(n_train, 1), n_chars - n_val - 1)
    vinyals = np.full(n_chars, 2, dtype=np.uint8)
    vinyals[:n_train] = 0
    vinyals[n_train:n_train + n_val] = 1
    return Omniglot(images=images, alphabet=alphabet, alphabet_names=alphabet_names, character=names,
                    split=split, vinyals_split=vinyals,
                    source=f"SYNTHETIC random strokes (synthetic_omniglot(n_chars={n_chars}, seed={seed})), "
                           "NOT real Omniglot")


def synthetic_omniglot(n_chars: int = 100, *, seed: int = 0, image_size: int = 28) -> Omniglot:
    """A random-stroke stand-in for Omniglot, for use without the real data (opt-in).

    Each character is 1-4 random Bezier strokes; its 20 "drawings" are jittered copies (small
    rotation, scale, shear, shift and point noise), drawn at 105 px and LANCZOS-resized like the
    real data. Always announced with a :class:`SyntheticDataWarning`; ``source`` starts with
    ``"SYNTHETIC"``. Splits follow the real proportions (background/evaluation, train/val/test).

    Args:
        n_chars: number of characters, an int in [1, 10000].
        seed: seed of the generator (an int >= 0); same seed, same data.
        image_size: side of the images, an int in [8, 105].

    Returns:
        :class:`Omniglot` with ``images`` uint8 ``(n_chars, 20, image_size, image_size)``, ink = 255.
    """
    if isinstance(n_chars, bool) or not isinstance(n_chars, (int, np.integer)) or not 1 <= n_chars <= 10_000:
        raise ValueError(f"n_chars must be an int in [1, 10000], got {n_chars!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    image_size = _check_image_size(image_size)
    warnings.warn(f"synthetic_omniglot(n_chars={n_chars}, seed={seed}): SYNTHETIC random-stroke characters, "
                  "NOT real Omniglot.", SyntheticDataWarning, stacklevel=2)
    return _synthetic(int(n_chars), int(seed), image_size)
