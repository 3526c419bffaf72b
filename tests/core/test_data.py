"""Tests of course_utils.data, the Omniglot loader.

Real-data tests use the offline copy in ``$COURSE_DATA_DIR`` (default ``<repo>/../shared/data/omniglot``)
and are skipped where it is absent. Everything else runs on tiny zips built here in ``tmp_path``,
with ``file://`` URLs or a monkeypatched ``urlopen``: no network is ever used.
"""
from __future__ import annotations

import ast
import hashlib
import http.client
import io
import math
import multiprocessing
import os
import re
import signal
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import data as D
from course_utils.data import download as DL
from course_utils.data import load as L
from course_utils.data import (
    DATA_ENV_VAR,
    OFFICIAL_FILES,
    DamagedFileError,
    DamagedFileWarning,
    Omniglot,
    SyntheticDataWarning,
    download_file,
    load_omniglot,
    read_zip_characters,
    synthetic_omniglot,
)
from tests.conftest import missing_data, require_data

REPO = Path(__file__).resolve().parents[2]
REAL_DIR = Path(os.environ.get(DATA_ENV_VAR) or REPO.parent / "shared" / "data" / "omniglot")
HAVE_NPZ = (REAL_DIR / "omniglot28.npz").is_file()
# COURSE_REQUIRE_DATA=1 (CI): the real-data tests run, and fail, when the data are missing.
needs_real = pytest.mark.skipif(
    not HAVE_NPZ and not require_data(), reason=f"offline Omniglot copy not found: no omniglot28.npz in {REAL_DIR} "
                         f"(set {DATA_ENV_VAR} to the folder holding it)")
SMALL_ZIPS = ("images_background_small1.zip", "images_background_small2.zip")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the real user cache, or sees the caller's COURSE_DATA_DIR."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    return tmp_path / "xdg-cache" / "learning-to-learn" / "omniglot"


@pytest.fixture(scope="module")
def real() -> Omniglot:
    if not HAVE_NPZ:
        missing_data(f"no omniglot28.npz in {REAL_DIR}")
    return load_omniglot(REAL_DIR, download=False)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------------------------
# Tiny fake zips in the official layout
# --------------------------------------------------------------------------------------------
def drawing(c: int, d: int, size: int = 28) -> bytes:
    """PNG, paper = 255, with one ink pixel at (c, d): encodes character and drawer."""
    a = np.full((size, size), 255, dtype=np.uint8)
    a[c % size, d] = 0
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_zip(path: Path, top: str, chars: list[tuple[str, int]], *, n_drawings: int = 20,
             content: dict[str, int] | None = None) -> Path:
    """chars: [("Alphabet/characterNN", official number)], written in the given order.

    Drawing d of a character has its ink pixel at (c, d), c = ``content[name]`` (default: its position).
    """
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/", b"")
        for k, (name, number) in enumerate(chars):
            c = content[name] if content else k
            for d in range(n_drawings):
                zf.writestr(f"{top}/{name}/{number:04d}_{d + 1:02d}.png", drawing(c, d))
    return path


# Real names (so the shipped Vinyals list applies), plus one unknown alphabet. The background
# characters are written out of order on purpose: they must come back sorted by official number.
BACKGROUND = [("Arcadian/character02", 2), ("Hebrew/character01", 480), ("Arcadian/character01", 1)]
EVALUATION = [("Angelic/character01", 965), ("Zzfake_alphabet/character01", 1700)]


def expected_names() -> list[str]:
    return [n for n, _ in sorted(BACKGROUND, key=lambda x: x[1])] + [n for n, _ in EVALUATION]


@pytest.fixture
def fake_official(tmp_path, monkeypatch):
    """A data folder with fake images_background/evaluation.zip; OFFICIAL_FILES patched to match.

    Character row c (in the expected order) has its ink pixels at (c, drawer).
    """
    folder = tmp_path / "data"
    folder.mkdir()
    row = {name: c for c, name in enumerate(expected_names())}
    make_zip(folder / "images_background.zip", "images_background", BACKGROUND, content=row)
    make_zip(folder / "images_evaluation.zip", "images_evaluation", EVALUATION, content=row)
    for name in D.FULL_ZIPS:
        p = folder / name
        monkeypatch.setitem(OFFICIAL_FILES, name, (p.as_uri(), md5_of(p), p.stat().st_size))
    return folder


def check_fake(om: Omniglot, image_size: int = 28):
    n = len(BACKGROUND) + len(EVALUATION)
    assert om.images.shape == (n, 20, image_size, image_size) and om.images.dtype == np.uint8
    assert list(om.character) == expected_names()
    assert om.split.tolist() == [0, 0, 0, 1, 1]
    assert om.alphabet_names == ("Arcadian", "Hebrew", "Angelic", "Zzfake_alphabet")
    assert om.alphabet.tolist() == [0, 0, 1, 2, 3]
    # Vinyals split from the shipped list: Arcadian train, Hebrew val, Angelic train, unknown 255
    assert om.vinyals_split.tolist() == [0, 0, 1, 0, 255]
    if image_size == 28:  # no resize: exactly one ink pixel at (c, d), ink = 255
        for c in range(n):
            for d in range(20):
                assert om.images[c, d, c, d] == 255 and int(om.images[c, d].sum()) == 255


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------
@needs_real
def test_real_npz_counts_splits_and_ink(real):
    assert isinstance(real, Omniglot)
    assert real.images.shape == (1623, 20, 28, 28) and real.images.dtype == np.uint8
    assert real.n_characters == 1623 and real.image_size == 28
    assert (int((real.split == 0).sum()), int((real.split == 1).sum())) == (964, 659)
    assert [int((real.vinyals_split == k).sum()) for k in range(3)] == [1028, 172, 423]
    assert len(real.alphabet_names) == 50 and real.alphabet.max() == 49
    assert len(set(real.alphabet[real.split == 0].tolist())) == 30
    assert len(set(real.character)) == 1623 and real.character[0] == "Arcadian/character01"
    # ink = 255, paper = 0: most pixels are paper
    assert real.images.mean() < 40 and (real.images == 0).mean() > 0.6 and real.images.max() == 255
    assert "sha256 verified" in real.source and not real.is_synthetic
    # Braille character01: drawers 03 and 19 are the same drawing (a quirk of the original data)
    braille = real.character.index("Braille/character01")
    assert np.array_equal(real.images[braille, 2], real.images[braille, 18])


@needs_real
def test_real_npz_is_fast_and_found_through_env_var(monkeypatch):
    before = tree(REAL_DIR)
    monkeypatch.setenv(DATA_ENV_VAR, str(REAL_DIR))
    assert D.data_dir() == REAL_DIR
    start = time.perf_counter()
    om = load_omniglot(download=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.5, f"loading omniglot28.npz took {elapsed:.2f} s"
    assert om.images.shape == (1623, 20, 28, 28)
    assert tree(REAL_DIR) == before  # nothing written into the shared folder


@needs_real
def test_real_npz_agrees_with_characters_csv_and_split_files(real):
    import csv
    with open(REAL_DIR / "characters.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(real.character) == [f"{r['alphabet']}/{r['character']}" for r in rows]
    splits = REAL_DIR / "splits" / "vinyals-protonets"
    if splits.is_dir():
        for k, which in enumerate(("train", "val", "test")):
            lines = (splits / f"{which}.txt").read_text().split()
            chars = {line.rsplit("/", 1)[0] for line in lines}
            assert chars == {c for c, v in zip(real.character, real.vinyals_split) if v == k}


@needs_real
def test_subsets(real):
    sizes = {w: real.subset(w).shape[0] for w in D.SUBSETS}
    assert sizes == {"background": 964, "evaluation": 659, "train": 1028, "val": 172, "test": 423,
                     "trainval": 1200, "all": 1623}
    train = real.subset("train")
    assert train.shape[1:] == (20, 28, 28) and train.dtype == np.uint8
    assert np.array_equal(train, real.images[real.vinyals_split == 0])
    assert train.flags.writeable and not np.shares_memory(train, real.images)  # a new array
    assert not real.images.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        real.images[0, 0, 0, 0] = 1


@needs_real
@pytest.mark.parametrize("zip_name", SMALL_ZIPS)
def test_read_real_small_zip(real, zip_name):
    path = REAL_DIR / zip_name
    if not path.is_file():
        missing_data(f"{path} not found")
    assert md5_of(path) == OFFICIAL_FILES[zip_name][1]
    assert path.stat().st_size == OFFICIAL_FILES[zip_name][2]
    with zipfile.ZipFile(path) as zf:
        listing = zf.namelist()
    folders = {m.group(1) for n in listing if (m := re.fullmatch(r"[^/]+/([^/]+/character\d+)/[^/]+\.png", n))}
    images, names = read_zip_characters(path)
    assert images.shape == (len(folders), 20, 28, 28) and images.dtype == np.uint8
    assert set(names) == folders and len(names) == len(folders) > 100
    rows = [real.character.index(n) for n in names]
    assert rows == sorted(rows) and set(real.split[rows].tolist()) == {0}
    # The npz was made with the same Pillow LANCZOS resize: measured max |diff| = 0 with Pillow 12.
    diff = np.abs(images.astype(np.int16) - real.images[rows])
    assert diff.max() <= 2 and diff.mean() < 0.01


@needs_real
def test_zip_route_on_real_small_zips(real, tmp_path, monkeypatch):
    """load_omniglot's zip route on real PNGs: small1/small2 stand in for background/evaluation."""
    folder = tmp_path / "data"
    folder.mkdir()
    for small, name in zip(SMALL_ZIPS, D.FULL_ZIPS):
        if not (REAL_DIR / small).is_file():
            missing_data(f"{REAL_DIR / small} not found")
        (folder / name).write_bytes((REAL_DIR / small).read_bytes())
        p = folder / name
        monkeypatch.setitem(OFFICIAL_FILES, name, (p.as_uri(), md5_of(p), p.stat().st_size))
    om = load_omniglot(folder, download=False)
    assert om.images.shape == (136 + 156, 20, 28, 28)
    assert om.split.tolist() == [0] * 136 + [1] * 156
    rows = [real.character.index(n) for n in om.character]
    assert np.abs(om.images.astype(np.int16) - real.images[rows]).max() <= 2
    assert np.array_equal(om.vinyals_split, real.vinyals_split[rows])
    assert [om.alphabet_names[a] for a in om.alphabet] == [real.alphabet_names[a] for a in real.alphabet[rows]]
    cached = load_omniglot(folder, download=False)
    assert "cache" in cached.source and np.array_equal(cached.images, om.images)
    assert cached.character == om.character


@needs_real
def test_read_real_small_zip_full_size():
    path = REAL_DIR / SMALL_ZIPS[0]
    if not path.is_file():
        missing_data(f"{path} not found")
    images, names = read_zip_characters(path, image_size=105)
    assert images.shape == (len(names), 20, 105, 105)
    assert set(np.unique(images[:5]).tolist()) == {0, 255}  # binary originals, ink = 255
    assert (images[:5] == 0).mean() > 0.8


# --------------------------------------------------------------------------------------------
# download_file
# --------------------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path):
    """A small zip in a 'server' folder, with its file:// URL, MD5 and size."""
    server = tmp_path / "server"
    server.mkdir()
    path = make_zip(server / "images_background.zip", "images_background", BACKGROUND[:1])
    return path.as_uri(), md5_of(path), path.stat().st_size, path.read_bytes()


def test_download_file_success(tmp_path, served, monkeypatch):
    url, md5, size, content = served
    dest = tmp_path / "dl" / "images_background.zip"
    assert download_file(url, dest, md5=md5, size=size) == dest
    assert dest.read_bytes() == content and md5_of(dest) == md5
    assert tree(dest.parent) == ["images_background.zip"]  # renamed into place, no .part left

    def offline(*args, **kwargs):
        raise AssertionError("should not download a file that is already there")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert download_file(url, dest, md5=md5.upper(), size=size) == dest


def test_download_file_wrong_checksum_leaves_nothing(tmp_path, served):
    url, md5, size, _ = served
    folder = tmp_path / "dl"
    bad = "0" * 32
    with pytest.raises(RuntimeError) as err:
        download_file(url, folder / "images_background.zip", md5=bad, size=size)
    msg = str(err.value)
    assert "MD5 mismatch" in msg and bad in msg and md5 in msg
    assert url in msg and DATA_ENV_VAR in msg and "Retry" in msg
    assert tree(folder) == []


def test_download_file_truncated_leaves_nothing(tmp_path, served):
    url, md5, size, _ = served
    folder = tmp_path / "dl"
    with pytest.raises(RuntimeError, match=rf"got {size:,} bytes, expected {size + 100:,}"):
        download_file(url, folder / "x.zip", md5=md5, size=size + 100)
    assert tree(folder) == []
    with pytest.raises(RuntimeError, match="more than the expected"):
        download_file(url, folder / "x.zip", md5=md5, size=size - 100)
    assert tree(folder) == []


def test_download_file_connection_dropped_keeps_old_file(tmp_path, served, monkeypatch):
    url, md5, size, content = served

    class Dropping(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 10:
                raise http.client.IncompleteRead(b"", 123)
            return super().read(min(n, 11) if n and n > 0 else 11)

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Dropping(content))
    dest = tmp_path / "dl" / "images_background.zip"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="IncompleteRead"):
        download_file(url, dest, md5=md5, size=size)
    assert tree(dest.parent) == ["images_background.zip"] and dest.read_bytes() == b"old"


def test_download_file_no_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    url, md5, size = OFFICIAL_FILES["images_background.zip"]
    folder = tmp_path / "dl"
    with pytest.raises(RuntimeError) as err:
        download_file(url, folder / "images_background.zip", md5=md5, size=size)
    msg = str(err.value)
    assert "name resolution" in msg and url in msg and DATA_ENV_VAR in msg and str(folder) in msg
    assert tree(folder) == []


# --------------------------------------------------------------------------------------------
# read_zip_characters and load_omniglot on fake official zips
# --------------------------------------------------------------------------------------------
def test_read_zip_characters_order_and_content(fake_official):
    images, names = read_zip_characters(fake_official / "images_background.zip")
    assert names == ["Arcadian/character01", "Arcadian/character02", "Hebrew/character01"]
    assert images.shape == (3, 20, 28, 28)
    for c in range(3):
        for d in range(20):
            assert images[c, d, c, d] == 255 and int(images[c, d].sum()) == 255
    small, _ = read_zip_characters(fake_official / "images_background.zip", image_size=14)
    assert small.shape == (3, 20, 14, 14)


def test_read_zip_characters_wrong_drawing_count(tmp_path):
    z = make_zip(tmp_path / "z.zip", "top", [("Alpha/character07", 1)], n_drawings=19)
    with pytest.raises(ValueError, match="Alpha/character07 has 19 drawings"):
        read_zip_characters(z)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", b"hi")
    with pytest.raises(ValueError, match="no"):
        read_zip_characters(empty)


def test_load_from_fake_zips_writes_cache_then_uses_it(fake_official, monkeypatch, isolated_env):
    om = load_omniglot(fake_official, download=False)
    check_fake(om)
    assert "official zips, MD5 verified" in om.source
    cache = fake_official / "omniglot28.npz"
    assert cache.is_file() and not list(fake_official.glob("*.part"))
    assert not isolated_env.exists()  # the data folder was writable: nothing in the user cache
    with np.load(cache, allow_pickle=False) as npz:  # same layout as the prepared file
        assert npz["images"].shape == (5 * 20, 28, 28) and npz["images"].max() == 255

    def must_not_read(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(L, "read_zip_characters", must_not_read)
    again = load_omniglot(fake_official, download=False)
    check_fake(again)
    assert "cache" in again.source and str(cache) in again.source
    assert np.array_equal(again.images, om.images)


def test_load_other_image_size(fake_official):
    om = load_omniglot(fake_official, download=False, image_size=32)
    check_fake(om, image_size=32)
    assert (fake_official / "omniglot32.npz").is_file()
    assert not (fake_official / "omniglot28.npz").exists()


def test_read_only_folder_caches_in_user_cache(fake_official, monkeypatch, isolated_env):
    before = tree(fake_official)
    fake_official.chmod(0o555)
    try:
        check_fake(load_omniglot(fake_official, download=False))
        assert tree(fake_official) == before
        assert (isolated_env / "omniglot28.npz").is_file()
        monkeypatch.setattr(L, "read_zip_characters", lambda *a, **k: pytest.fail("cache not used"))
        again = load_omniglot(fake_official, download=False)
        check_fake(again)
        assert str(isolated_env) in again.source
    finally:
        fake_official.chmod(stat.S_IRWXU)


def test_load_downloads_missing_zips(fake_official, tmp_path, monkeypatch, capsys):
    # OFFICIAL_FILES points at file:// URLs of the fake zips; use an empty folder via the env var.
    empty = tmp_path / "fresh"
    monkeypatch.setenv(DATA_ENV_VAR, str(empty))
    check_fake(load_omniglot())
    assert sorted(p.name for p in empty.iterdir()) == ["images_background.zip", "images_evaluation.zip",
                                                       "omniglot28.npz"]
    assert "Downloading" in capsys.readouterr().out


def test_damaged_zip_is_reported(fake_official):
    with open(fake_official / "images_evaluation.zip", "ab") as f:
        f.write(b"junk")
    with pytest.raises(FileNotFoundError, match="images_evaluation.zip has the wrong MD5"):
        load_omniglot(fake_official, download=False)


def test_damaged_npz_is_reported(tmp_path):
    (tmp_path / "omniglot28.npz").write_bytes(b"not a zip at all")
    with pytest.raises(RuntimeError, match="damaged"):
        load_omniglot(tmp_path, download=False)


def test_offline_without_data_says_what_is_needed(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("download=False must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(FileNotFoundError) as err:
        load_omniglot(tmp_path / "nothing", download=False)
    msg = str(err.value)
    for needed in ("images_background.zip", "images_evaluation.zip", "omniglot28.npz", DATA_ENV_VAR,
                   OFFICIAL_FILES["images_background.zip"][0], OFFICIAL_FILES["images_evaluation.zip"][0],
                   str(tmp_path / "nothing")):
        assert needed in msg


def test_no_network_download_error(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    with pytest.raises(RuntimeError) as err:
        load_omniglot(tmp_path / "d", download=True)
    assert DATA_ENV_VAR in str(err.value) and OFFICIAL_FILES["images_background.zip"][0] in str(err.value)
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]


# --------------------------------------------------------------------------------------------
# Synthetic stand-in
# --------------------------------------------------------------------------------------------
def test_synthetic_fallback_announces_itself(tmp_path):
    with pytest.warns(SyntheticDataWarning, match="SYNTHETIC"):
        om = load_omniglot(tmp_path / "nothing", download=False, synthetic=True)
    assert om.is_synthetic and om.source.startswith("SYNTHETIC")
    assert om.images.shape == (100, 20, 28, 28) and om.images.dtype == np.uint8
    assert om.images.mean() < 60 and (om.images == 0).mean() > 0.5 and om.images.max() > 200
    assert sum(om.subset(w).shape[0] for w in ("train", "val", "test")) == 100
    assert sum(om.subset(w).shape[0] for w in ("background", "evaluation")) == 100


def test_synthetic_prefers_real_data(fake_official, recwarn):
    om = load_omniglot(fake_official, download=False, synthetic=True)
    check_fake(om)
    assert not [w for w in recwarn if issubclass(w.category, SyntheticDataWarning)]


def test_synthetic_omniglot_is_deterministic():
    with pytest.warns(SyntheticDataWarning):
        a = synthetic_omniglot(7, seed=3, image_size=20)
    with pytest.warns(SyntheticDataWarning):
        b = synthetic_omniglot(7, seed=3, image_size=20)
    with pytest.warns(SyntheticDataWarning):
        c = synthetic_omniglot(7, seed=4, image_size=20)
    assert a.images.shape == (7, 20, 20, 20)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert len(set(a.character)) == 7
    # drawings of one character are closer to each other than to other characters
    x = a.images.astype(np.float32).reshape(7, 20, -1)
    within = np.mean([np.abs(x[i, :10].mean(0) - x[i, 10:].mean(0)).mean() for i in range(7)])
    between = np.mean([np.abs(x[i].mean(0) - x[j].mean(0)).mean() for i in range(7) for j in range(7) if i != j])
    assert within < between


# --------------------------------------------------------------------------------------------
# Argument checks and data_dir
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: load_omniglot(image_size=7), "image_size"),
    (lambda: load_omniglot(image_size=106), "image_size"),
    (lambda: load_omniglot(image_size=28.0), "image_size"),
    (lambda: load_omniglot(image_size=True), "image_size"),
    (lambda: load_omniglot(download="yes"), "download"),
    (lambda: load_omniglot(synthetic=1), "synthetic"),
    (lambda: load_omniglot(data_dir=123), "data_dir"),
    (lambda: load_omniglot(data_dir=""), "data_dir"),
    (lambda: synthetic_omniglot(0), "n_chars"),
    (lambda: synthetic_omniglot(5, seed=-1), "seed"),
    (lambda: synthetic_omniglot(5, image_size=200), "image_size"),
    (lambda: read_zip_characters("x.zip", image_size=4), "image_size"),
    (lambda: download_file("file:///x", Path("x"), md5="xyz"), "md5"),
    (lambda: download_file("file:///x", Path("x"), md5="0" * 32, size=-1), "size"),
    (lambda: download_file("file:///x", Path("x"), md5="0" * 32, timeout=0), "timeout"),
    (lambda: download_file("", Path("x"), md5="0" * 32), "url"),
    (lambda: download_file("file:///x", Path("x"), md5="0" * 32, deadline=0), "deadline"),
    (lambda: load_omniglot(timeout=-1), "timeout"),
    (lambda: load_omniglot(deadline=math.inf), "deadline"),
])
def test_bad_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_image_size_message_gives_range():
    with pytest.raises(ValueError, match=r"image_size must be an int in \[8, 105\]"):
        load_omniglot(image_size=3)


def test_subset_rejects_unknown_names():
    with pytest.warns(SyntheticDataWarning):
        om = synthetic_omniglot(6)
    with pytest.raises(ValueError) as err:
        om.subset("training")
    msg = str(err.value)
    assert "which" in msg and "'training'" in msg
    assert all(repr(w) in msg for w in D.SUBSETS)


def test_subset_without_vinyals_split(fake_official):
    om = load_omniglot(fake_official, download=False)
    unknown = Omniglot(images=om.images[4:], alphabet=np.zeros(1, dtype=np.int64), alphabet_names=("X",),
                       character=("X/character01",), split=np.ones(1, np.uint8),
                       vinyals_split=np.full(1, 255, np.uint8), source="test")
    assert unknown.subset("evaluation").shape == (1, 20, 28, 28)
    with pytest.raises(ValueError, match="Vinyals split"):
        unknown.subset("train")


def test_data_dir_resolution(tmp_path, monkeypatch, isolated_env):
    assert D.data_dir() == isolated_env
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "mine"))
    assert D.data_dir() == tmp_path / "mine"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv(DATA_ENV_VAR)
    assert D.data_dir() == Path.home() / ".cache" / "learning-to-learn" / "omniglot"


@pytest.mark.parametrize("call, message", [
    (lambda: synthetic_omniglot(0), "n_chars must be in [1, 10000], got 0"),
    (lambda: synthetic_omniglot(5, seed=-1), "seed must be >= 0, got -1"),
    (lambda: load_omniglot(image_size=200), "image_size must be an int in [8, 105], got 200"),
    (lambda: load_omniglot(timeout=0), "timeout must be a finite number of seconds > 0, got 0"),
    (lambda: load_omniglot(timeout=True), "timeout must be a finite number of seconds > 0, got True"),
    (lambda: load_omniglot(timeout="60"), "timeout must be a finite number of seconds > 0, got '60'"),
    (lambda: load_omniglot(deadline=math.nan), "deadline must be a finite number of seconds > 0, got nan"),
    (lambda: download_file("file:///x", Path("x"), md5="0" * 32, size=-1), "size must be >= 0, got -1"),
    (lambda: load_omniglot(download="yes"), "download must be True or False, got 'yes'"),
])
def test_argument_messages_name_argument_range_and_value(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_data_package_imports_no_framework():
    package = Path(D.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert {m.stem for m in modules} >= {"__init__", "locate", "download", "read", "synthetic"}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] in ("torch", "tensorflow")], module.name


def test_split_file_ships_with_the_package():
    from course_utils.data import read as R
    assert R.SPLIT_FILE.parent == Path(D.__file__).parent and R.SPLIT_FILE.is_file()
    vinyals = R.vinyals_for(["Arcadian/character01", "Hebrew/character01", "Nope/character01"])
    assert vinyals.tolist() == [0, 1, 255]


def test_character_names_one_rule():
    from course_utils.data.read import character_name, parse_character_name
    assert character_name("Angelic", 1) == "Angelic/character01"
    assert parse_character_name("Angelic/character20") == ("Angelic", 20)
    with pytest.raises(ValueError, match="character name"):
        parse_character_name("Angelic/char20")


# --------------------------------------------------------------------------------------------
# B1. Files the loader creates get the user's normal permissions (the umask), not 0600
# --------------------------------------------------------------------------------------------
@pytest.fixture
def set_umask():
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_downloads_and_cache_respect_umask(fake_official, tmp_path, monkeypatch, set_umask, umask):
    set_umask(umask)
    fresh = tmp_path / "fresh"
    monkeypatch.setenv(DATA_ENV_VAR, str(fresh))
    check_fake(load_omniglot())
    files = sorted(fresh.iterdir())
    assert [p.name for p in files] == ["images_background.zip", "images_evaluation.zip", "omniglot28.npz"]
    assert {p.name: mode_of(p) for p in files} == {p.name: 0o666 & ~umask for p in files}


def test_download_file_and_user_cache_respect_umask(fake_official, tmp_path, served, set_umask, isolated_env):
    set_umask(0o022)
    url, md5, size, _ = served
    dest = download_file(url, tmp_path / "dl" / "x.zip", md5=md5, size=size)
    assert mode_of(dest) == 0o644
    fake_official.chmod(0o555)  # read-only data folder: the cache goes to the user cache folder
    try:
        check_fake(load_omniglot(fake_official, download=False))
    finally:
        fake_official.chmod(stat.S_IRWXU)
    assert mode_of(isolated_env / "omniglot28.npz") == 0o644


# --------------------------------------------------------------------------------------------
# B2. A damaged npz cache is rebuilt (from the zips, or by downloading them), with a warning
# --------------------------------------------------------------------------------------------
def damage(path: Path, how: str) -> None:
    content = path.read_bytes()
    if how == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif how == "junk":
        path.write_bytes(b"not an npz at all")
    elif how == "flipped":  # same size, damaged compressed data in the middle
        middle = len(content) // 2
        path.write_bytes(content[:middle] + bytes(b ^ 0xFF for b in content[middle:middle + 64])
                         + content[middle + 64:])
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "junk", "flipped", "empty"])
def test_damaged_cache_is_rebuilt_from_zips(fake_official, monkeypatch, recwarn, how):
    first = load_omniglot(fake_official, download=False)
    cache = fake_official / "omniglot28.npz"
    damage(cache, how)
    with pytest.warns(DamagedFileWarning, match=r"omniglot28\.npz is damaged .*rebuilding it from the official zips"):
        rebuilt = load_omniglot(fake_official, download=False)
    check_fake(rebuilt)
    assert "official zips" in rebuilt.source and np.array_equal(rebuilt.images, first.images)
    recwarn.clear()
    monkeypatch.setattr(L, "read_zip_characters", lambda *a, **k: pytest.fail("the rebuilt cache was not used"))
    again = load_omniglot(fake_official, download=False)
    check_fake(again)
    assert "cache" in again.source and not [w for w in recwarn if issubclass(w.category, DamagedFileWarning)]


def test_damaged_cache_is_redownloaded(fake_official, tmp_path, monkeypatch, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "omniglot28.npz").write_bytes(b"junk left by a crash")
    with pytest.warns(DamagedFileWarning, match="downloading the official zips to rebuild it"):
        check_fake(load_omniglot(fresh, download=True))
    assert "Downloading" in capsys.readouterr().out
    assert sorted(p.name for p in fresh.iterdir()) == ["images_background.zip", "images_evaluation.zip",
                                                       "omniglot28.npz"]
    check_fake(load_omniglot(fresh, download=False))  # the cache is good again


def test_damaged_cache_offline_without_zips_says_what_to_do(tmp_path, recwarn):
    (tmp_path / "omniglot28.npz").write_bytes(b"junk")
    with pytest.raises(DamagedFileError) as err:
        load_omniglot(tmp_path, download=False)
    assert isinstance(err.value, RuntimeError)
    msg = str(err.value)
    assert str(tmp_path / "omniglot28.npz") in msg and "damaged" in msg and "Delete it" in msg
    assert not [w for w in recwarn if issubclass(w.category, DamagedFileWarning)]


def test_damaged_user_cache_is_rebuilt(fake_official, isolated_env):
    fake_official.chmod(0o555)
    try:
        check_fake(load_omniglot(fake_official, download=False))
        damage(isolated_env / "omniglot28.npz", "truncated")
        with pytest.warns(DamagedFileWarning, match="rebuilding"):
            check_fake(load_omniglot(fake_official, download=False))
        again = load_omniglot(fake_official, download=False)
        check_fake(again)
        assert str(isolated_env) in again.source
    finally:
        fake_official.chmod(stat.S_IRWXU)


@needs_real
def test_damaged_prepared_file_is_reported(tmp_path):
    content = bytearray((REAL_DIR / "omniglot28.npz").read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size: the sha256 check catches it
    (tmp_path / "omniglot28.npz").write_bytes(bytes(content))
    with pytest.raises(DamagedFileError, match="sha256"):
        load_omniglot(tmp_path, download=False)


# --------------------------------------------------------------------------------------------
# B3. Stale partial files left by killed downloads are cleaned by later runs, live ones are not
# --------------------------------------------------------------------------------------------
def make_part(path: Path, age_s: float = 0) -> Path:
    path.write_bytes(b"partial")
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def test_stale_partial_files_are_cleaned_by_later_runs(fake_official):
    hour = 3600
    stale = [make_part(fake_official / "images_background.zip.ab12cd34.part", hour),
             make_part(fake_official / "images_evaluation.zip.k2_9xq0z.part", hour),  # tempfile.mkstemp style
             make_part(fake_official / "omniglot28.npz.0f0f0f0f.part", hour)]
    kept = [make_part(fake_official / "images_background.zip.fresh001.part"),  # maybe another process's
            make_part(fake_official / "notes.part", hour),  # not ours
            make_part(fake_official / "other.zip.ab12cd34.part", hour)]
    check_fake(load_omniglot(fake_official, download=False))
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    # a later run that finds the cache also cleans up
    late = make_part(fake_official / "images_evaluation.zip.late0001.part", hour)
    assert "cache" in load_omniglot(fake_official, download=False).source
    assert not late.exists() and all(p.exists() for p in kept)


def test_download_file_cleans_its_stale_partial_files(tmp_path, served):
    url, md5, size, _ = served
    folder = tmp_path / "dl"
    folder.mkdir()
    old = make_part(folder / "images_background.zip.deadbeef.part", 3600)
    young = make_part(folder / "images_background.zip.cafecafe.part", 60)
    download_file(url, folder / "images_background.zip", md5=md5, size=size)
    assert not old.exists() and young.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["images_background.zip", young.name]


@pytest.mark.skipif(DL.fcntl is None, reason="needs fcntl.flock")
def test_locked_partial_file_is_never_removed(tmp_path):
    import fcntl
    part = make_part(tmp_path / "images_background.zip.locked00.part", 3600)
    with open(part, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # as a live writer holds it
        assert DL.clean_stale_parts(tmp_path, "images_background.zip", older_than=0) == []
        assert part.exists()
    assert DL.clean_stale_parts(tmp_path, "images_background.zip", older_than=0) == [part]
    assert not part.exists()


def _fork_context():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    return multiprocessing.get_context("fork")


def _hanging_download(url, dest, md5, size, started):
    class Hanging(io.BytesIO):
        def read(self, n=-1):
            started.set()
            time.sleep(120)  # killed long before this returns
            return b""

    urllib.request.urlopen = lambda *a, **k: Hanging()  # in the child process only
    download_file(url, dest, md5=md5, size=size)


@pytest.mark.skipif(DL.fcntl is None, reason="needs fcntl.flock")
def test_partial_file_of_a_killed_download_is_cleaned(tmp_path, served):
    url, md5, size, _ = served
    folder = tmp_path / "dl"
    dest = folder / "images_background.zip"
    ctx = _fork_context()
    started = ctx.Event()
    child = ctx.Process(target=_hanging_download, args=(url, dest, md5, size, started))
    child.start()
    try:
        assert started.wait(20), "the child download did not start"
        (part,) = folder.glob("images_background.zip.*.part")
        # while the download is alive its partial file is locked: never removed, even if old
        assert DL.clean_stale_parts(folder, dest.name, older_than=0) == [] and part.exists()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(20)
    assert child.exitcode == -signal.SIGKILL and part.exists()
    assert DL.clean_stale_parts(folder, dest.name) == []  # dead, but too fresh to be called stale
    t = time.time() - DL.PART_STALE_SECONDS - 1
    os.utime(part, (t, t))
    assert download_file(url, dest, md5=md5, size=size) == dest  # a later run cleans up
    assert sorted(p.name for p in folder.iterdir()) == [dest.name]


def _concurrent_load(barrier, results):
    barrier.wait(20)
    om = load_omniglot()
    results.put((hashlib.md5(om.images.tobytes()).hexdigest(), om.character, om.source))


def test_concurrent_loads_into_one_empty_folder(fake_official, tmp_path, monkeypatch):
    ctx = _fork_context()
    fresh = tmp_path / "fresh"
    monkeypatch.setenv(DATA_ENV_VAR, str(fresh))  # OFFICIAL_FILES (patched) and the env go with fork
    n = 3
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_concurrent_load, args=(barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * n
    assert len({(digest, names) for digest, names, _ in got}) == 1
    assert sorted(p.name for p in fresh.iterdir()) == ["images_background.zip", "images_evaluation.zip",
                                                       "omniglot28.npz"]
    om = load_omniglot()
    check_fake(om)
    assert hashlib.md5(om.images.tobytes()).hexdigest() == got[0][0]


# --------------------------------------------------------------------------------------------
# B4. Undecodable images are reported with the zip and the member, and what to do
# --------------------------------------------------------------------------------------------
def zip_with_bad_member(path: Path, top: str, bad: bytes | None, *, corrupt_crc: bool = False) -> str:
    """One character whose drawing 05 is ``bad`` (or a good PNG with a broken CRC); returns its member name."""
    member = f"{top}/Angelic/character01/0965_05.png"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for d in range(20):
            name = f"{top}/Angelic/character01/0965_{d + 1:02d}.png"
            zf.writestr(name, bad if (name == member and bad is not None) else drawing(0, d))
    if corrupt_crc:
        content = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(member)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        content[start + info.file_size // 2] ^= 0xFF
        path.write_bytes(bytes(content))
    return member


@pytest.mark.parametrize("kind", ["junk", "truncated", "crc"])
def test_undecodable_image_names_zip_and_member(tmp_path, kind):
    bad = {"junk": b"this is not a PNG", "truncated": drawing(0, 4)[:60], "crc": None}[kind]
    z = tmp_path / "images_evaluation.zip"
    member = zip_with_bad_member(z, "images_evaluation", bad, corrupt_crc=kind == "crc")
    with pytest.raises(DamagedFileError) as err:
        read_zip_characters(z)
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert str(z) in msg and repr(member) in msg
    assert f"Delete {z}" in msg and "download=True" in msg and OFFICIAL_FILES[z.name][0] in msg


def test_not_a_zip_is_reported(tmp_path):
    z = tmp_path / "images_background.zip"
    z.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(DamagedFileError, match=r"not a zip file.*Delete"):
        read_zip_characters(z)


def test_load_reports_undecodable_image(fake_official, monkeypatch):
    z = fake_official / "images_evaluation.zip"
    member = zip_with_bad_member(z, "images_evaluation", b"GIF89a not a png")
    monkeypatch.setitem(OFFICIAL_FILES, z.name, (z.as_uri(), md5_of(z), z.stat().st_size))
    with pytest.raises(RuntimeError) as err:
        load_omniglot(fake_official, download=False)
    msg = str(err.value)
    assert str(z) in msg and member in msg and "Delete" in msg and "download=True" in msg
    assert not (fake_official / "omniglot28.npz").exists()


# --------------------------------------------------------------------------------------------
# B5. Download timeout and overall deadline
# --------------------------------------------------------------------------------------------
class DripFeed(io.BytesIO):
    """A response that hands out one byte per read, slowly."""

    def read(self, n=-1):
        time.sleep(0.01)
        return super().read(1)


def test_deadline_cuts_off_a_drip_feeding_server(tmp_path, served, monkeypatch):
    url, md5, size, content = served
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: DripFeed(content))
    folder = tmp_path / "dl"
    start = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        download_file(url, folder / "x.zip", md5=md5, size=size, deadline=0.3)
    assert time.monotonic() - start < 3
    msg = str(err.value)
    assert "longer than deadline=0.3 s" in msg and "too slow or stalled" in msg and f"of {size:,} bytes" in msg
    assert "Retry" in msg and "deadline=" in msg and url in msg
    assert tree(folder) == []


class FakeHTTPServer:
    """A real http.client.HTTPResponse over a socket pair; a thread plays the server."""

    def __init__(self, body: bytes, *, send_first: int, then_every: float | None):
        self.client, self.server = socket.socketpair()
        self.stop = threading.Event()
        self.body, self.send_first, self.then_every = body, send_first, then_every
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.body)
                                + self.body[:self.send_first])
            for i in range(self.send_first, len(self.body)):
                if self.then_every is None or self.stop.wait(self.then_every):
                    break  # silent server: send nothing more
                self.server.sendall(self.body[i:i + 1])
            self.stop.wait(30)
        except OSError:
            pass

    def urlopen(self, url, timeout=None, **kwargs):
        self.timeout = timeout
        self.client.settimeout(timeout)  # what urlopen does with its timeout
        response = http.client.HTTPResponse(self.client, method="GET")
        response.begin()
        return response

    def close(self):
        self.stop.set()
        self.client.close()
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def http_server(monkeypatch):
    servers = []

    def make(body, **kwargs):
        server = FakeHTTPServer(body, **kwargs)
        servers.append(server)
        monkeypatch.setattr(urllib.request, "urlopen", server.urlopen)
        return server

    yield make
    for server in servers:
        server.close()


def test_deadline_with_a_real_http_response(tmp_path, served, http_server):
    url, md5, size, content = served
    http_server(content, send_first=100, then_every=0.02)  # ~size * 0.02 s in all, far above the deadline
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"longer than deadline=0\.5 s"):
        download_file("https://example.invalid/x.zip", tmp_path / "dl" / "x.zip", md5=md5, size=size,
                      timeout=5, deadline=0.5)
    assert time.monotonic() - start < 3
    assert tree(tmp_path / "dl") == []


def test_timeout_when_the_server_goes_silent(tmp_path, served, http_server):
    url, md5, size, content = served
    server = http_server(content, send_first=100, then_every=None)
    start = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        download_file("https://example.invalid/x.zip", tmp_path / "dl" / "x.zip", md5=md5, size=size,
                      timeout=0.3)
    assert time.monotonic() - start < 3 and server.timeout == 0.3
    msg = str(err.value)
    assert "no data from the server for timeout=0.3 s" in msg and "larger timeout=" in msg and "Retry" in msg
    assert tree(tmp_path / "dl") == []


def test_real_http_response_downloads_normally(tmp_path, served, http_server):
    url, md5, size, content = served
    http_server(content, send_first=len(content), then_every=None)
    dest = download_file("https://example.invalid/x.zip", tmp_path / "x.zip", md5=md5, size=size, timeout=5)
    assert dest.read_bytes() == content


def test_load_omniglot_passes_timeout_and_deadline(tmp_path, monkeypatch):
    seen = []

    def no_network(url, timeout=None, **kwargs):
        seen.append(timeout)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(RuntimeError):
        load_omniglot(tmp_path / "d", timeout=7, deadline=100)
    with pytest.raises(RuntimeError):
        load_omniglot(tmp_path / "d", timeout=50, deadline=2)
    assert seen == [7, 2]  # the connection may not outlast the deadline either


def test_damaged_file_error_pickles(tmp_path):
    import pickle
    e = DamagedFileError(tmp_path / "x.npz", "truncated", "Delete it.")
    back = pickle.loads(pickle.dumps(e))
    assert str(back) == str(e) and back.path == e.path and back.problem == "truncated"


def test_loader_reads_zips_in_place_without_extracting(fake_official, tmp_path, monkeypatch):
    """No extraction helper is left (``safe_extract`` was removed): the loader reads the zips in
    place, so nothing is ever unpacked to disk, and a zip member cannot escape the data folder."""
    import importlib

    for name in ("", ".dataset", ".download", ".load", ".locate", ".read", ".synthetic"):
        mod = importlib.import_module("course_utils.data" + name)
        assert not hasattr(mod, "safe_extract"), mod.__name__
    called = []
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda self, *a, **k: called.append(a))
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda self, *a, **k: called.append(a))
    before = sorted(p.name for p in Path(fake_official).iterdir())
    load_omniglot(fake_official, download=False)
    assert not called
    after = sorted(p.name for p in Path(fake_official).iterdir())
    assert set(after) - set(before) <= {D.PREPARED_NPZ}  # only the npz cache is written, no folders
