"""The :class:`Omniglot` container and the shape constants shared by the data package."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course_utils.validation import check_choice, check_int

N_DRAWERS = 20  # drawings per character
ORIGINAL_SIZE = 105  # side of the official PNGs
IMAGE_SIZE_RANGE = (8, ORIGINAL_SIZE)
SUBSETS = ("background", "evaluation", "train", "val", "test", "trainval", "all")
VINYALS_NAMES = ("train", "val", "test")
UNKNOWN = 255  # vinyals_split value of a character that is in none of the Vinyals lists


def check_image_size(image_size) -> int:
    """``image_size`` as an int in :data:`IMAGE_SIZE_RANGE`; the message gives the range."""
    low, high = IMAGE_SIZE_RANGE
    try:
        return check_int(image_size, "image_size", low, high)
    except ValueError:
        raise ValueError(f"image_size must be an int in [{low}, {high}], got {image_size!r}") from None


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
            raise ValueError(f"alphabet must index into alphabet_names (0..{len(self.alphabet_names) - 1}), "
                             f"got values in [{self.alphabet.min()}, {self.alphabet.max()}]")
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
        """True for the random-stroke stand-in of :func:`~course_utils.data.synthetic_omniglot`."""
        return self.source.startswith("SYNTHETIC")

    def mask(self, which: str) -> np.ndarray:
        """Boolean ``(n_characters,)`` mask of the characters in subset ``which`` (see :meth:`subset`)."""
        check_choice(which, "which", SUBSETS)
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
