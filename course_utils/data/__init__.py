"""Omniglot for the course: find it, download it if needed, verify it, load it as NumPy.

Omniglot (Lake, Salakhutdinov & Tenenbaum, *Science* 2015; MIT licence) has 1,623 handwritten
characters from 50 alphabets, each drawn once by 20 people. :func:`load_omniglot` returns them
as one uint8 array of shape ``(n_characters, 20, 28, 28)`` with **ink = 255 and paper = 0**,
plus the alphabet of each character, the official background/evaluation split and the
Vinyals et al. (2016) train/val/test split.

Modules: :mod:`~course_utils.data.locate` (the data folder), :mod:`~course_utils.data.download`
(checked, atomic downloads), :mod:`~course_utils.data.read` (zips and npz, no pickle),
:mod:`~course_utils.data.load` (:func:`load_omniglot`), :mod:`~course_utils.data.synthetic`
(the opt-in stand-in) and :mod:`~course_utils.data.dataset` (:class:`Omniglot`).
NumPy, Pillow and the standard library only; no deep-learning framework is imported.
"""
from .dataset import IMAGE_SIZE_RANGE, N_DRAWERS, ORIGINAL_SIZE, SUBSETS, UNKNOWN, VINYALS_NAMES, Omniglot
from .download import FULL_ZIPS, OFFICIAL_FILES, OFFICIAL_URL_PREFIX, download_file
from .load import DamagedFileWarning, load_omniglot
from .locate import DATA_ENV_VAR, data_dir
from .read import PREPARED_NPZ, DamagedFileError, read_zip_characters
from .synthetic import SyntheticDataWarning, synthetic_omniglot

__all__ = [
    # loading
    "load_omniglot",
    "Omniglot",
    "data_dir",
    "download_file",
    "read_zip_characters",
    "synthetic_omniglot",
    # warnings and errors
    "DamagedFileError",
    "DamagedFileWarning",
    "SyntheticDataWarning",
    # constants
    "DATA_ENV_VAR",
    "FULL_ZIPS",
    "IMAGE_SIZE_RANGE",
    "N_DRAWERS",
    "OFFICIAL_FILES",
    "OFFICIAL_URL_PREFIX",
    "ORIGINAL_SIZE",
    "PREPARED_NPZ",
    "SUBSETS",
    "UNKNOWN",
    "VINYALS_NAMES",
]
