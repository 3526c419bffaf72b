"""Reading Omniglot files without pickle or extraction: the official zips and the 28x28 npz.

Also here: the one naming rule for characters (``"Alphabet/characterNN"``), the Vinyals split
shipped with the package, and writing the npz cache in the layout of the prepared file.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from course_utils.validation import check_path

from .dataset import N_DRAWERS, UNKNOWN, VINYALS_NAMES, Omniglot, check_image_size
from .download import OFFICIAL_FILES, atomic_write, file_digest
from .locate import DATA_ENV_VAR, writable

#: The course's prepared 28x28 file (see the offline data folder's README) and its checksum.
PREPARED_NPZ = "omniglot28.npz"
PREPARED_NPZ_SHA256 = "01e55085b86d7422e31a0947a063aa0fc6be1833bf290e7eea8562a20bc39d3b"
PREPARED_NPZ_SIZE = 7_311_438

SPLIT_FILE = Path(__file__).with_name("omniglot_vinyals_split.txt")
CACHE_FORMAT = "course_utils.data omniglot cache v2"

# What a damaged zip member or PNG can raise while it is read and decoded.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error, zipfile.BadZipFile,
                  Image.DecompressionBombError)
_CHARACTER = re.compile(r"character(\d+)")


class DamagedFileError(RuntimeError):
    """A data file exists but cannot be read: truncated, corrupted, or not an Omniglot file.

    Attributes:
        path: the file.
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: Path, problem: str, advice: str):
        super().__init__(f"{path} is damaged or not an Omniglot file ({problem}). {advice}")
        self.path = Path(path)
        self.problem = problem
        self.advice = advice

    def __reduce__(self):  # picklable, e.g. across multiprocessing
        return type(self), (self.path, self.problem, self.advice)


# --------------------------------------------------------------------------------------------
# Character names and the Vinyals split
# --------------------------------------------------------------------------------------------
def character_name(alphabet: str, number: int) -> str:
    """The name of character ``number`` (1-based) of ``alphabet``: ``"Alphabet/characterNN"``."""
    return f"{alphabet}/character{int(number):02d}"


def parse_character_name(name: str) -> tuple[str, int]:
    """``"Alphabet/characterNN"`` -> ``("Alphabet", NN)``, the inverse of :func:`character_name`."""
    alphabet, _, character = name.rpartition("/")
    m = _CHARACTER.fullmatch(character)
    if not alphabet or m is None:
        raise ValueError(f"character name must look like 'Alphabet/characterNN', got {name!r}")
    return alphabet, int(m.group(1))


@lru_cache(maxsize=1)
def _shipped_vinyals() -> dict[str, int]:
    """``"Alphabet/characterNN" -> 0/1/2`` from the split list shipped with the package."""
    table: dict[str, int] = {}
    try:
        text = SPLIT_FILE.read_text(encoding="utf-8")
    except OSError:
        return table
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            split, name = line.split(maxsplit=1)
            table[name] = VINYALS_NAMES.index(split)
    return table


def vinyals_for(names) -> np.ndarray:
    """uint8 Vinyals split (0 train, 1 val, 2 test, 255 unknown) of each character name."""
    table = _shipped_vinyals()
    return np.array([table.get(n, UNKNOWN) for n in names], dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# The official zips, read in place
# --------------------------------------------------------------------------------------------
def _zip_advice(zip_path: Path) -> str:
    official = OFFICIAL_FILES.get(zip_path.name)
    where = (f"download it again by hand from {official[0]} (MD5 {official[1]})" if official
             else "replace it with a good copy")
    return (f"Delete {zip_path} and load again with load_omniglot(download=True) to download it again, "
            f"or {where}.")


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
        ValueError: bad ``image_size``, no characters, a character folder not named
            ``characterNN``, or a character without exactly 20 drawings.
        DamagedFileError: (a RuntimeError) the file is not a zip, or a member cannot be read or
            decoded; the message names the zip and the member and says what to do.
    """
    image_size = check_image_size(image_size)
    zip_path = check_path(zip_path, "zip_path")
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise DamagedFileError(zip_path, f"not a zip file: {e}", _zip_advice(zip_path)) from e
    with zf:
        groups: dict[str, list[zipfile.ZipInfo]] = {}
        for info in zf.infolist():
            path = PurePosixPath(info.filename)
            if info.is_dir() or path.suffix.lower() != ".png" or len(path.parts) < 3 \
                    or path.parts[0] == "__MACOSX" or path.name.startswith("._"):
                continue
            alphabet, character = path.parts[-3], path.parts[-2]
            m = _CHARACTER.fullmatch(character)
            if m is None:
                raise ValueError(f"{zip_path}: member {info.filename!r} is not in the official layout "
                                 "<top>/<Alphabet>/characterNN/XXXX_YY.png")
            groups.setdefault(character_name(alphabet, int(m.group(1))), []).append(info)
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
                try:
                    images[c, d] = _png_to_ink(zf.read(info), image_size)
                except _DECODE_ERRORS as e:
                    raise DamagedFileError(zip_path, f"cannot read or decode the image {info.filename!r}: "
                                           f"{type(e).__name__}: {e}", _zip_advice(zip_path)) from e
    return images, [name for name, _ in items]


# --------------------------------------------------------------------------------------------
# The npz: the prepared omniglot28.npz, or a cache written by write_npz_cache
# --------------------------------------------------------------------------------------------
def _per_character(column: np.ndarray, name: str, n_chars: int) -> np.ndarray:
    grouped = column.reshape(n_chars, N_DRAWERS)
    if not np.all(grouped == grouped[:, :1]):
        raise ValueError(f"{name} differs between the drawings of one character")
    return grouped[:, 0]


def _number_in_alphabet(alphabet: np.ndarray) -> np.ndarray:
    """0-based position of each character within its alphabet, in row order."""
    out = np.zeros(len(alphabet), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, a in enumerate(alphabet.tolist()):
        out[i] = seen.get(a, 0)
        seen[a] = out[i] + 1
    return out


def load_npz(path: Path, image_size: int, *, official_md5: tuple[str, ...] | None = None) -> Omniglot | None:
    """Load a prepared or cached npz (row = char_id * 20 + drawer, paper = 255), without pickle.

    Names come from ``alphabet_names[alphabet]`` and ``char_in_alphabet`` (:func:`character_name`),
    the Vinyals split from ``vinyals_split`` or else the shipped list.

    Args:
        path: the npz file.
        image_size: the side its images must have.
        official_md5: for a cache found outside the data folder: return None unless the file is a
            cache built from zips with exactly these MD5s.

    Raises:
        DamagedFileError: (a RuntimeError) the file is damaged or not laid out as expected.
    """
    def damaged(problem: str) -> DamagedFileError:
        return DamagedFileError(path, problem, "Delete it and load again (it is rebuilt from, or replaced by, "
                                f"the official zips), or set {DATA_ENV_VAR} to a folder with a good copy.")

    verified = ""
    if path.name == PREPARED_NPZ and official_md5 is None and path.stat().st_size == PREPARED_NPZ_SIZE:
        digest = file_digest(path, "sha256")
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
            number = (_per_character(npz["char_in_alphabet"], "char_in_alphabet", n_chars).astype(np.int64)
                      if "char_in_alphabet" in keys else _number_in_alphabet(alphabet))
            is_cache = "source_md5" in keys
            if n_chars and (alphabet.min() < 0 or alphabet.max() >= len(alphabet_names)
                            or number.min() < 0 or split.max() > 1):
                raise damaged("inconsistent metadata")
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise damaged(f"{type(e).__name__}: {e}") from e

    names = [character_name(alphabet_names[a], k + 1) for a, k in zip(alphabet.tolist(), number.tolist())]
    if vinyals is None:
        vinyals = vinyals_for(names)
    images = images.reshape(n_chars, N_DRAWERS, image_size, image_size)
    np.subtract(255, images, out=images)  # stored paper = 255; we hand out ink = 255, in place
    kind = "cache built from the official zips" if is_cache else "prepared file"
    source = f"{path} ({kind}" + (f", {verified})" if verified else ")")
    return Omniglot(images=images, alphabet=alphabet, alphabet_names=alphabet_names, character=tuple(names),
                    split=split, vinyals_split=vinyals, source=source)


def write_npz_cache(path: Path, data: Omniglot, source_md5: tuple[str, ...]) -> bool:
    """Save ``data`` in the omniglot28.npz layout (no pickle), atomically.

    Returns:
        True if written, False if ``path``'s folder is read-only or the write failed.
    """
    n, s = data.n_characters, data.image_size
    number = np.array([parse_character_name(name)[1] - 1 for name in data.character], dtype=np.int16)
    arrays = {
        "images": (255 - data.images).reshape(n * N_DRAWERS, s, s),
        "char_id": np.repeat(np.arange(n, dtype=np.int16), N_DRAWERS),
        "alphabet": np.repeat(data.alphabet.astype(np.int16), N_DRAWERS),
        "char_in_alphabet": np.repeat(number, N_DRAWERS),
        "drawer": np.tile(np.arange(N_DRAWERS, dtype=np.int8), n),
        "split": np.repeat(data.split, N_DRAWERS),
        "vinyals_split": np.repeat(data.vinyals_split, N_DRAWERS),
        "alphabet_names": np.array(data.alphabet_names, dtype=str),
        "source_md5": np.array(source_md5, dtype=str),
        "format": np.array(CACHE_FORMAT),
    }
    if not writable(path.parent):
        return False
    try:
        with atomic_write(path) as f:
            np.savez_compressed(f, **arrays)
    except OSError:
        return False
    return True
