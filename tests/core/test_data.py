"""Tests of course_utils.data, the Omniglot loader.

Real-data tests use the offline copy in ``$COURSE_DATA_DIR`` (default ``<repo>/../shared/data/omniglot``)
and are skipped where it is absent. Everything else runs on tiny zips built here in ``tmp_path``,
with ``file://`` URLs or a monkeypatched ``urlopen``: no network is ever used.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from course_utils import data as D
from course_utils.data import (
    DATA_ENV_VAR,
    OFFICIAL_FILES,
    Omniglot,
    SyntheticDataWarning,
    download_file,
    load_omniglot,
    read_zip_characters,
    safe_extract,
    synthetic_omniglot,
)

REPO = Path(__file__).resolve().parents[1]
REAL_DIR = Path(os.environ.get(DATA_ENV_VAR) or REPO.parent / "shared" / "data" / "omniglot")
HAVE_NPZ = (REAL_DIR / "omniglot28.npz").is_file()
needs_real = pytest.mark.skipif(
    not HAVE_NPZ, reason=f"offline Omniglot copy not found: no omniglot28.npz in {REAL_DIR} "
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
        pytest.skip(f"no omniglot28.npz in {REAL_DIR}")
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
        pytest.skip(f"{path} not found")
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
            pytest.skip(f"{REAL_DIR / small} not found")
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
        pytest.skip(f"{path} not found")
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
# safe_extract
# --------------------------------------------------------------------------------------------
def test_safe_extract_ok(tmp_path):
    z = make_zip(tmp_path / "ok.zip", "top", BACKGROUND[:1], n_drawings=2)
    safe_extract(z, tmp_path / "out")
    assert tree(tmp_path / "out") == ["top", "top/Arcadian", "top/Arcadian/character02",
                                      "top/Arcadian/character02/0002_01.png",
                                      "top/Arcadian/character02/0002_02.png"]


@pytest.mark.parametrize("member", ["../../evil.png", "top/../../evil.png", "..\\..\\evil.png", "ABSOLUTE"])
def test_safe_extract_refuses_escaping_members(tmp_path, member):
    target = tmp_path / "a" / "b" / "target"
    if member == "ABSOLUTE":
        member = str(tmp_path / "abs_evil.png")
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("fine.png", b"fine")  # written first: must not be extracted either
        zf.writestr(zipfile.ZipInfo(member), b"evil")
    before = tree(tmp_path)
    with pytest.raises(ValueError) as err:
        safe_extract(z, target)
    assert repr(member) in str(err.value)
    assert not list(tmp_path.rglob("*evil.png"))
    assert [p for p in tree(tmp_path) if p not in before] in ([], ["a", "a/b", "a/b/target"])
    assert tree(target) == []


def test_safe_extract_refuses_symlink_escape(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("link/evil.png", b"evil")
    with pytest.raises(ValueError, match="link/evil.png"):
        safe_extract(z, target)
    assert not (tmp_path / "outside").exists()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "c.png"]), min_size=1, max_size=5), st.booleans())
def test_safe_extract_never_writes_outside(parts, absolute):
    name = ("/" if absolute else "") + "/".join(parts)
    if name.endswith("/") or parts[-1] in ("..", "."):
        name += "/f.png"
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        z = base / "t.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr(zipfile.ZipInfo(name), b"x")
        target = base / "x" / "target"
        try:
            safe_extract(z, target)
        except ValueError:
            assert ".." in parts or absolute
            assert not [p for p in base.rglob("*") if p.is_file() and p != z]
        else:
            written = [p for p in base.rglob("*") if p.is_file() and p != z]
            assert written and all(p.resolve().is_relative_to(target.resolve()) for p in written)


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

    monkeypatch.setattr(D, "read_zip_characters", must_not_read)
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
        monkeypatch.setattr(D, "read_zip_characters", lambda *a, **k: pytest.fail("cache not used"))
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
