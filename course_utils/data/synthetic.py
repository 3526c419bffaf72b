"""The opt-in random-stroke stand-in for Omniglot, always announced with a warning."""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageDraw

from course_utils.validation import check_int

from .dataset import N_DRAWERS, ORIGINAL_SIZE, Omniglot, check_image_size
from .read import character_name


class SyntheticDataWarning(UserWarning):
    """Issued whenever synthetic stand-in data is handed out instead of real Omniglot."""


def announce_synthetic(reason: str, stacklevel: int = 3) -> None:
    """Warn (:class:`SyntheticDataWarning`) that synthetic data is used instead of Omniglot."""
    warnings.warn(f"{reason} Using SYNTHETIC random-stroke characters, NOT real Omniglot: "
                  "results will not match the course text.", SyntheticDataWarning, stacklevel=stacklevel)


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


def make_synthetic(n_chars: int, seed: int, image_size: int) -> Omniglot:
    """The stand-in data of :func:`synthetic_omniglot`, without checks or warning."""
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
    names = tuple(character_name(alphabet_names[a], i % per_alphabet + 1) for i, a in enumerate(alphabet))
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
        :class:`~course_utils.data.Omniglot` with ``images`` uint8
        ``(n_chars, 20, image_size, image_size)``, ink = 255.

    Raises:
        ValueError: a bad argument (the message names it, the allowed range and what was given).
    """
    n_chars = check_int(n_chars, "n_chars", 1, 10_000)
    seed = check_int(seed, "seed", 0)
    image_size = check_image_size(image_size)
    warnings.warn(f"synthetic_omniglot(n_chars={n_chars}, seed={seed}): SYNTHETIC random-stroke characters, "
                  "NOT real Omniglot.", SyntheticDataWarning, stacklevel=2)
    return make_synthetic(n_chars, seed, image_size)
