"""The course's shared argument validators: one place that says what is wrong with an argument.

Every public function of :mod:`course_utils`, :mod:`course_utils.torch` and
:mod:`course_utils.tensorflow` checks its arguments through these, so both halves raise the same
``ValueError`` with the same message, naming the argument, its allowed range and what was given.
The bottom of the package: NumPy only, and it imports nothing else from :mod:`course_utils`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- scalar validators
def check_int(value, name: str, low: int, high: int | None = None) -> int:
    """An integer (bools rejected) in ``[low, high]`` (or ``>= low``), as a Python ``int``."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """A real boolean (``True``/``False`` or a NumPy bool); the string ``'False'`` is rejected."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_path(value, name: str) -> Path:
    """A non-empty ``str`` or ``os.PathLike``, as an expanded :class:`~pathlib.Path`."""
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name} must be a non-empty str or os.PathLike, got {value!r}")
    return Path(value).expanduser()


def check_positive_int(value, name: str, low: int = 1) -> int:
    """An integer ``>= low`` (bools rejected), as a Python ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_steps(steps) -> None:
    """A number of inner steps ``>= 0`` (no type check, as the reference loops have always done)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")


def check_lr(value, name: str) -> float:
    """A finite step size ``> 0``, as a Python ``float``."""
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, (int, float, np.integer, np.floating))
                                                    and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_float(value, name: str, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (bools rejected) in the given range, as a Python ``float``.

    ``low``/``high`` bound it (``None``: unbounded); ``low_open``/``high_open`` exclude the bound.
    """
    lo_b, hi_b = ("(" if low_open else "["), (")" if high_open else "]")
    allowed = (f"in {lo_b}{low}, {high}{hi_b}" if low is not None and high is not None
               else f"{'>' if low_open else '>='} {low}" if low is not None
               else f"{'<' if high_open else '<='} {high}" if high is not None else "finite")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    v = float(value)
    bad = (not np.isfinite(v)
           or (low is not None and (v < low or (low_open and v == low)))
           or (high is not None and (v > high or (high_open and v == high))))
    if bad:
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return v


def check_choice(value, name: str, allowed):
    """``value`` itself when it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_nonnegative(value, name: str) -> None:
    """Every entry of ``value`` (a number, array or framework tensor) is finite and ``>= 0``."""
    arr = value
    if hasattr(arr, "detach"):  # a PyTorch tensor: drop its graph before reading it
        arr = arr.detach()
    if hasattr(arr, "numpy"):  # a PyTorch or TensorFlow tensor
        arr = arr.numpy()
    arr = np.asarray(arr, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def check_temperature(temperature) -> None:
    """A distillation temperature: finite and ``> 0``."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")


def check_epsilon(epsilon) -> None:
    """Reptile's outer step size ε in (0, 1]."""
    if not (np.isfinite(epsilon) and 0 < epsilon <= 1):
        raise ValueError(f"epsilon must be in (0, 1], got {epsilon!r}")


def check_epochs_batch_size(epochs, batch_size) -> None:
    """Minibatch training's ``epochs >= 1`` and ``batch_size >= 1``."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")


def check_maml_args(inner_lr, steps, chunk_size=None) -> None:
    """The MAML inner loop's ``inner_lr >= 0``, ``steps >= 0`` and optional ``chunk_size >= 1``."""
    if not (isinstance(inner_lr, (int, float, np.floating)) and np.isfinite(inner_lr) and inner_lr >= 0):
        raise ValueError(f"inner_lr must be a finite number >= 0, got {inner_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or an integer >= 1, got {chunk_size!r}")


def check_task_batch(inner_lr, x_support, y_support, x_query, y_query) -> list[np.ndarray]:
    """``inner_lr >= 0`` and four task arrays (float32) sharing a leading tasks axis."""
    if not inner_lr >= 0:
        raise ValueError(f"inner_lr must be >= 0, got {inner_lr}")
    arrays = [np.asarray(a, dtype=np.float32) for a in (x_support, y_support, x_query, y_query)]
    if any(a.ndim < 2 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError("x_support, y_support, x_query, y_query must share a leading tasks axis, "
                         f"got shapes {[a.shape for a in arrays]}")
    return arrays


# --------------------------------------------------------------------------- parameter dicts
def check_same_keys(params: dict, vector: dict, name: str = "vector") -> None:
    """``vector`` (called ``name`` in messages) has exactly the keys of ``params``, each with the same shape."""
    if not isinstance(vector, dict):
        raise ValueError(f"{name} must be a dict with the keys of params {sorted(params)}, got {type(vector).__name__}")
    if set(params) != set(vector):
        raise ValueError(f"{name} must have the keys of params {sorted(params)}, got {sorted(vector)}")
    for k in params:
        if tuple(params[k].shape) != tuple(np.shape(vector[k])):
            raise ValueError(f"{name}[{k!r}] must have shape {tuple(params[k].shape)} (that of params[{k!r}]), "
                             f"got {tuple(np.shape(vector[k]))}")


def check_trainable(params: dict, trainable) -> list[str]:
    """The names to train: all of ``params`` when ``trainable`` is None, else those (all known)."""
    trainable = list(params) if trainable is None else list(trainable)
    unknown = set(trainable) - set(params)
    if unknown:
        raise ValueError(f"trainable must name parameters among {sorted(params)}, got {sorted(unknown)}")
    return trainable


def check_lam_per_model(lam, m: int) -> np.ndarray:
    """λ as an (m,) float32 array: a scalar is repeated; every entry finite and ``>= 0``."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim == 0:
        lam = np.full(m, float(lam))
    if lam.shape != (m,):
        raise ValueError(f"lam must be a scalar or have shape ({m},) (one λ per model), got {lam.shape}")
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam}")
    return lam.astype(np.float32)


# --------------------------------------------------------------------------- names, callables, types
def check_names(value, name: str, allowed) -> tuple[str, ...]:
    """A collection of names (not a bare string), every one among ``allowed``; returned as a tuple.

    E.g. the weights that ``lwf_finetune`` keeps ``frozen`` must be keys of its ``params``.
    """
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a collection of names among {sorted(allowed)}, got {value!r}")
    names = tuple(value)
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"{name} must name entries among {sorted(allowed)}, got unknown {unknown}")
    return names


def check_callable(value, name: str):
    """``value`` itself when it can be called (a forward pass, a loss function, ...)."""
    if not callable(value):
        raise ValueError(f"{name} must be callable, got {value!r}")
    return value


def check_instance(value, name: str, types, what: str):
    """``value`` itself when it is an instance of ``types``; ``what`` describes them in the message."""
    if not isinstance(value, types):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_images_labels(images, labels) -> tuple[np.ndarray, np.ndarray]:
    """A labelled image set: images flattened to (n, D) and integer labels of shape (n,).

    Returns ``(flat_images, labels)`` as NumPy arrays (the images keep their dtype).
    """
    flat = np.asarray(images)
    if flat.ndim < 2 or len(flat) == 0:
        raise ValueError(f"images must be a non-empty array (n, ...) of n images, got shape {flat.shape}")
    flat = flat.reshape(len(flat), -1)
    labels = np.asarray(labels)
    if labels.shape != (len(flat),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({len(flat)},) (one per image of images), "
                         f"got {labels.dtype} of shape {labels.shape}")
    return flat, labels


def check_interval(value, name: str) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite numbers with ``low <= high``, as Python floats."""
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of finite numbers, got {value!r}") from None
    low = check_float(low, f"{name}[0]")
    high = check_float(high, f"{name}[1]", low)
    return low, high


# --------------------------------------------------------------------------- arrays, tensors, parameter dicts
def _shape(value) -> tuple:
    """The shape of an array, tensor (eager, traced or vmapped) or nested list, without copying a tensor."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return np.shape(value)
    try:
        return tuple(shape)
    except TypeError:  # a TensorFlow shape of unknown rank
        return ()


def _dtype_kind(value) -> str:
    """``"f"`` float, ``"i"`` signed integer, ``"u"`` unsigned (uint8 images), ``"b"`` bool, else ``"?"``."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or isinstance(value, (list, tuple)):
        try:
            return np.asarray(value).dtype.kind
        except (TypeError, ValueError):
            return "?"
    if isinstance(dtype, np.dtype):
        return dtype.kind
    text = str(getattr(dtype, "name", dtype)).lower()
    for key, kind in (("float", "f"), ("bfloat", "f"), ("half", "f"), ("double", "f"), ("uint", "u"),
                      ("int", "i"), ("bool", "b")):
        if key in text:
            return kind
    return "?"


_KINDS = {"number": "fiub", "real": "fiu", "int": "iu", "label": "iu", "image": "fu"}
_KIND_WORDS = {"number": "numbers", "real": "real numbers", "int": "integers", "label": "integer labels",
               "image": "images (uint8 or float)"}


def check_array(value, name: str, *, ndim=None, min_ndim: int | None = None, last: int | None = None,
                dtype: str = "number", nonempty: bool = True, shape: tuple | None = None):
    """An array or tensor of numbers with the given rank, trailing axis and dtype; returned unchanged.

    ``ndim``: the rank (an int or a tuple of allowed ranks); ``min_ndim``: the smallest rank;
    ``last``: the size of the trailing axis; ``shape``: the exact shape (``None`` entries free);
    ``dtype``: ``"number"`` (any numbers, bools too), ``"real"`` (no bools), ``"int"``/``"label"`` (integers) or
    ``"image"`` (uint8 or float). ``nonempty``: every axis has at least one entry. Works on NumPy
    arrays, PyTorch and TensorFlow tensors (also inside ``vmap``/``tf.function``: only shapes and
    dtypes are read). Float64 is allowed; callers cast it.
    """
    if value is None or isinstance(value, (str, bytes, dict)):
        raise ValueError(f"{name} must be an array of {_KIND_WORDS[dtype]}, got {type(value).__name__}")
    kind = _dtype_kind(value)
    if kind not in _KINDS[dtype]:
        got = getattr(value, "dtype", None) or np.asarray(value).dtype
        raise ValueError(f"{name} must be an array of {_KIND_WORDS[dtype]}, got dtype {got}")
    shp = _shape(value)
    rank = len(shp)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and rank not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {want} axes, got shape {tuple(shp)}")
    if min_ndim is not None and rank < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {tuple(shp)}")
    if shape is not None and (rank != len(shape) or any(s is not None and d is not None and s != d
                                                        for s, d in zip(shape, shp))):
        want = "(" + ", ".join("·" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(shp)}")
    if last is not None and (rank == 0 or shp[-1] not in (last, None)):  # None: unknown while tracing
        raise ValueError(f"{name} must have a trailing axis of size {last}, got shape {tuple(shp)}")
    if nonempty and any(d == 0 for d in shp):
        raise ValueError(f"{name} must not be empty (every axis >= 1 entry), got shape {tuple(shp)}")
    return value


def check_tensor_float32(value, name: str):
    """A framework tensor of floats must be float32 (the course's precision; NumPy float64 is cast instead)."""
    if not isinstance(value, (np.ndarray, list, tuple)) and hasattr(value, "dtype") and _dtype_kind(value) == "f":
        text = str(getattr(value.dtype, "name", value.dtype))
        if "32" not in text:
            raise ValueError(f"{name} must be a float32 tensor (convert with to_tensor), got dtype {text}")
    return value


def _float_tensor_dtype(value) -> str | None:
    """The dtype name of a framework tensor of floats; None for NumPy arrays (they are cast), lists and the rest."""
    if isinstance(value, (np.ndarray, np.generic, list, tuple)) or not hasattr(value, "dtype") \
            or _dtype_kind(value) != "f":
        return None
    return str(getattr(value.dtype, "name", value.dtype)).replace("torch.", "")


def _first_float(params) -> object:
    """The first float tensor of a parameter dict (its dtype is the model's), or None."""
    for v in params.values() if isinstance(params, dict) else ():
        if _float_tensor_dtype(v) is not None:
            return v
    return None


def check_same_float_dtype(**values) -> None:
    """Framework tensors of floats that meet in one computation share a dtype (float32, or float64 for
    precision checks); NumPy arrays are left out (the course casts them). A float64 input to float32
    weights would otherwise fail deep inside a matmul."""
    dts = {k: _float_tensor_dtype(v) for k, v in values.items()}
    dts = {k: d for k, d in dts.items() if d is not None}
    if len(set(dts.values())) > 1:
        listing = ", ".join(f"{k} {d}" for k, d in dts.items())
        raise ValueError(f"{' and '.join(dts)} must be tensors of one float dtype (convert with to_tensor), "
                         f"got {listing}")


def check_same_length(arrays: dict, axis: int = 0, what: str = "leading axis") -> int:
    """Arrays ``{name: array}`` that must agree on ``axis`` (e.g. the tasks axis); returns its size."""
    sizes = {k: _shape(v)[axis] for k, v in arrays.items()
             if len(_shape(v)) > (axis if axis >= 0 else -axis - 1) and _shape(v)[axis] is not None}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k} {tuple(_shape(arrays[k]))}" for k in arrays)
        raise ValueError(f"{' and '.join(arrays)} must agree on their {what} (same size), got {listing}")
    return next(iter(sizes.values())) if sizes else 0


def check_labels(labels, name: str, n_classes: int | None = None):
    """Integer labels (array or tensor) in ``[0, n_classes)``; a fractional or out-of-range label is rejected.

    Range checks need concrete values: a traced/vmapped tensor only has its dtype checked.
    """
    check_array(labels, name, dtype="label")
    arr = labels
    try:
        if hasattr(arr, "detach"):
            arr = arr.detach()
        if hasattr(arr, "numpy"):
            arr = arr.numpy()
        arr = np.asarray(arr)
    except Exception:  # noqa: BLE001 - a symbolic tensor: its values are not known here
        return labels
    if arr.size and (arr.min() < 0 or (n_classes is not None and arr.max() >= n_classes)):
        allowed = f"[0, {n_classes - 1}]" if n_classes is not None else ">= 0"
        raise ValueError(f"{name} must be class labels in {allowed}, got values from {arr.min()} to {arr.max()}")
    return labels


def as_float32(value):
    """A NumPy array as float32 (float64 is cast; integer and uint8 arrays are left alone); tensors unchanged."""
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        return arr.astype(np.float32) if arr.dtype.kind == "f" and arr.dtype != np.float32 else arr
    return value


def check_params(params, name: str = "params", *, mlp: bool = False, keys=None) -> dict:
    """A non-empty dict of arrays/tensors; with ``mlp`` the layout ``w0, b0, ..., w{n-1}, b{n-1}``
    of :mod:`course_utils.nets` with chained shapes (a leading model axis is allowed); with
    ``keys`` those names must all be present. Returns ``params``."""
    if not isinstance(params, dict) or not params:
        raise ValueError(f"{name} must be a non-empty dict of weight arrays, got {type(params).__name__}")
    bad = [k for k, v in params.items() if not hasattr(v, "shape") or _dtype_kind(v) not in "fiu"]
    if bad:
        raise ValueError(f"{name} must map names to numeric arrays or tensors; {bad[0]!r} is "
                         f"{type(params[bad[0]]).__name__}")
    if keys is not None:
        missing = [k for k in keys if k not in params]
        if missing:
            raise ValueError(f"{name} must have the keys {list(keys)}, missing {missing} (got {sorted(params)})")
    if mlp:
        n = sum(1 for k in params if isinstance(k, str) and k.startswith("w"))
        want = {f"{p}{i}" for i in range(n) for p in "wb"}
        if n < 1 or set(params) != want:
            raise ValueError(f"{name} must have the keys w0, b0, ..., w{{n-1}}, b{{n-1}} of an MLP, "
                             f"got {sorted(params)}")
        prev = None
        for i in range(n):
            w, b = _shape(params[f"w{i}"]), _shape(params[f"b{i}"])
            if len(w) < 2 or len(b) < 1 or b[-1] != w[-1] or (prev is not None and w[-2] != prev):
                after = "" if prev is None else f" after a layer of width {prev}"
                raise ValueError(f"{name} must be a chain of layers w{i} (in, out), b{i} (out,) with in = the "
                                 f"previous out; got w{i} {w}, b{i} {b}{after}")
            prev = w[-1]
    return params


def mlp_dims(params) -> tuple[int, int]:
    """``(input width, output width)`` of an MLP dict already checked by :func:`check_params`."""
    n = sum(1 for k in params if k.startswith("w"))
    return _shape(params["w0"])[-2], _shape(params[f"w{n - 1}"])[-1]


def check_inner_loop(inner_lr, steps, first_order=False, forward=..., loss_fn=..., *,
                     steps_name: str = "steps") -> tuple[float, int, bool]:
    """An inner loop's ``inner_lr`` (finite, >= 0), ``steps`` (int >= 0), ``first_order`` (bool) and,
    when passed, callable ``forward``/``loss_fn``; returns ``(inner_lr, steps, first_order)``."""
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    steps = check_int(steps, steps_name, 0)
    first_order = check_bool(first_order, "first_order")
    if forward is not ...:
        check_callable(forward, "forward")
    if loss_fn is not ...:
        check_callable(loss_fn, "loss_fn")
    return inner_lr, steps, first_order


def check_str(value, name: str, *, allow_none: bool = False):
    """A ``str`` (or None where ``allow_none``); returned unchanged."""
    if not (isinstance(value, str) or (allow_none and value is None)):
        allowed = "a str or None" if allow_none else "a str"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_mapping(value, name: str, what: str = "a dict"):
    """A dict (``what`` describes its entries in the message); returned unchanged."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_task_arrays(arrays: dict, *, tasks_axis: bool = True, x_dim: int | None = None,
                      y_dim: int | None = None) -> list:
    """Support/query arrays ``{"x_support": ..., "y_support": ..., ...}`` (NumPy or tensors).

    Every ``x_*`` is (tasks, k, ...) and every ``y_*`` (tasks, k, ...) (without ``tasks_axis``:
    one task, (k, ...)); all share the tasks axis; each x and its y share k; none is empty.
    ``x_dim``: the trailing size of every x (an MLP's input width); ``y_dim``: for float targets,
    their trailing size (the MLP's output width), so a (k,) target cannot broadcast against (k, 1)
    predictions. Returns the arrays in order, NumPy float64 cast to float32.
    """
    lead = 1 if tasks_axis else 0
    for k, v in arrays.items():
        x = k.startswith("x")
        check_array(v, k, dtype="image" if x else "number")
        if len(_shape(v)) < lead + (2 if x else 1):
            layout = ("(tasks, " if tasks_axis else "(") + ("points, features)" if x else "points, ...)")
            raise ValueError(f"{k} must be {layout}, got shape {tuple(_shape(v))}")
        if x and x_dim is not None:
            check_array(v, k, last=x_dim)
    check_same_float_dtype(**arrays)
    if tasks_axis:
        check_same_length(arrays, 0, "tasks axis (leading)")
    for k in arrays:
        if k.startswith("x") and "y" + k[1:] in arrays:
            pair = {k: arrays[k], "y" + k[1:]: arrays["y" + k[1:]]}
            check_same_length(pair, lead, "points axis (k)")
            y = pair["y" + k[1:]]
            if y_dim is not None and _dtype_kind(y) == "f":
                if len(_shape(y)) != len(_shape(arrays[k])) or _shape(y)[-1] not in (y_dim, None):
                    raise ValueError(f"{'y' + k[1:]} must have shape {tuple(_shape(arrays[k])[:-1]) + (y_dim,)} "
                                     f"(one target of size {y_dim} per point of {k}), got {tuple(_shape(y))}")
    return [as_float32(v) for v in arrays.values()]


def check_meta_call(params, arrays: dict, *, inner_lr, steps, first_order=False, forward, loss_fn,
                    mlp_forward, mse_loss, tasks_axis: bool = True, steps_name: str = "steps") -> tuple:
    """The arguments of a MAML-family reference (FOMAML, ANIL, Reptile, the by-hand meta-gradient).

    ``params`` a parameter dict (an MLP's layout when ``forward`` is the framework's ``mlp_forward``,
    then x's trailing axis must be its input width and, with ``mse_loss``, y's its output width);
    ``arrays`` the task arrays (see :func:`check_task_arrays`); the inner loop's scalars (see
    :func:`check_inner_loop`). Returns ``(inner_lr, steps, first_order, *arrays)`` with float64
    arrays cast to float32.
    """
    is_mlp = forward is mlp_forward
    check_params(params, mlp=is_mlp)
    inner_lr, steps, first_order = check_inner_loop(inner_lr, steps, first_order, forward, loss_fn,
                                                    steps_name=steps_name)
    x_dim = y_dim = None
    if is_mlp:
        x_dim, out = mlp_dims(params)
        y_dim = out if loss_fn is mse_loss else None
    out_arrays = check_task_arrays(arrays, tasks_axis=tasks_axis, x_dim=x_dim, y_dim=y_dim)
    check_same_float_dtype(params=_first_float(params), **arrays)
    return (inner_lr, steps, first_order, *out_arrays)


def check_optional_int(value, name: str, low: int = 1):
    """None, or an integer ``>= low`` (bools rejected)."""
    return None if value is None else check_int(value, name, low)


def check_lam(lam, name: str = "lam", m: int | None = None):
    """A regularisation weight: a finite number >= 0, or (with ``m``) an (m,) array/tensor of them.

    Strings and bools are rejected (``np.asarray("0.1", float)`` would silently accept one).
    Returns ``lam`` unchanged.
    """
    if lam is None or isinstance(lam, (str, bytes, bool, np.bool_, dict)):
        raise ValueError(f"{name} must be a finite number >= 0 or an array of them, got {lam!r}")
    if isinstance(lam, (int, float, np.integer, np.floating)):
        check_float(lam, name, 0.0)
        return lam
    arr = lam.detach() if hasattr(lam, "detach") else lam
    arr = arr.numpy() if hasattr(arr, "numpy") else arr
    try:
        arr = np.asarray(arr)
    except Exception:  # noqa: BLE001
        raise ValueError(f"{name} must be a finite number >= 0 or an array of them, got {type(lam).__name__}") from None
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a finite number >= 0 or an array of them, got dtype {arr.dtype}")
    if arr.ndim > 1 or (arr.ndim == 1 and m is not None and arr.shape != (m,)) or arr.size == 0:
        want = "a number" + (f" or shape ({m},) (one per model)" if m is not None else " or a 1-D array")
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {arr}")
    return lam


def check_optional_arrays(**arrays) -> None:
    """Optional array arguments (e.g. ``x_grid=None, f_prior=None``): each None or an array of real numbers."""
    for name, value in arrays.items():
        if value is not None:
            check_array(value, name, ndim=(1, 2), dtype="real")


# --------------------------------------------------------------------------- chapter 4's models
_LWF_LAYERS = (("w0", "b0"), ("w1", "b1"), ("w_old", "b_old"))


def check_lwf_params(params, name: str = "params", *, new_head: bool | None = None) -> tuple[int, int, int | None]:
    """The LwF network ``w0, b0, w1, b1, w_old, b_old`` (+ ``w_new, b_new``), optionally batched.

    ``new_head``: True requires the new head, False forbids nothing, None accepts either.
    Returns ``(D input width, C_old old classes, N new classes or None)``.
    """
    check_params(params, name, keys=[k for pair in _LWF_LAYERS for k in pair]
                 + (["w_new", "b_new"] if new_head else []))
    layers = list(_LWF_LAYERS) + ([("w_new", "b_new")] if "w_new" in params or "b_new" in params else [])
    feeds = {"w0": None, "w1": "w0", "w_old": "w1", "w_new": "w1"}  # the layer whose output each one reads
    for w_key, b_key in layers:
        if b_key not in params or w_key not in params:
            raise ValueError(f"{name} must hold both {w_key} and {b_key}, got {sorted(params)}")
        w, b = _shape(params[w_key]), _shape(params[b_key])
        src = feeds[w_key]
        expected_in = None if src is None else _shape(params[src])[-1]
        if len(w) < 2 or len(b) < 1 or b[-1] != w[-1] or (expected_in is not None and w[-2] != expected_in):
            want = "(in, out)" if expected_in is None else f"({expected_in}, out)"
            raise ValueError(f"{name}[{w_key!r}] must be {want} and {b_key} (out,); "
                             f"got {w_key} {w} and {b_key} {b}")
    d = _shape(params["w0"])[-2]
    c_old = _shape(params["w_old"])[-1]
    n_new = _shape(params["w_new"])[-1] if "w_new" in params else None
    return d, c_old, n_new


def check_probabilities(value, name: str):
    """Probabilities (array/tensor, rows over the last axis): finite and >= 0 where values are known."""
    check_array(value, name, min_ndim=1, dtype="real")
    try:
        arr = value.detach() if hasattr(value, "detach") else value
        arr = np.asarray(arr.numpy() if hasattr(arr, "numpy") else arr, dtype=np.float64)
    except Exception:  # noqa: BLE001 - a symbolic tensor: its values are not known here
        return value
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be probabilities (finite, >= 0), got values from {arr.min()} to {arr.max()}")
    return value


def check_same_shape(**arrays) -> None:
    """Arrays/tensors that must have exactly the same shape."""
    shapes = {k: tuple(_shape(v)) for k, v in arrays.items()}
    first = next(iter(shapes.values()))
    agree = all(len(s) == len(first) and all(a is None or b is None or a == b for a, b in zip(s, first))
                for s in shapes.values())  # None: an axis unknown while tracing
    if not agree:
        listing = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ValueError(f"{' and '.join(arrays)} must have the same shape, got {listing}")


def check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam) -> None:
    """Chapter 4's KL-regularised softmax regression: ``params = {w0 (d, C), b0 (C,)}``,
    ``x_labelled`` (n, d), ``y_labelled`` (n,) in [0, C), ``x_unlabelled`` (m, d), ``p_star`` (m, C), λ >= 0."""
    check_params(params, mlp=True, keys=("w0", "b0"))
    d, c = _shape(params["w0"])[-2:]
    check_array(x_labelled, "x_labelled", ndim=2, last=d, dtype="real")
    check_array(y_labelled, "y_labelled", ndim=1)
    check_labels(y_labelled, "y_labelled", c)
    check_same_length({"x_labelled": x_labelled, "y_labelled": y_labelled})
    check_array(x_unlabelled, "x_unlabelled", ndim=2, last=d, dtype="real")
    check_probabilities(p_star, "p_star")
    check_array(p_star, "p_star", ndim=2, last=c)
    check_same_length({"x_unlabelled": x_unlabelled, "p_star": p_star})
    check_lam(lam, "lam")


def check_rows(**arrays) -> None:
    """Arrays (..., n, C) that must agree on their last two axes (leading batch axes may broadcast)."""
    for k, v in arrays.items():
        check_array(v, k, min_ndim=2, dtype="real")
    tails = {k: tuple(_shape(v))[-2:] for k, v in arrays.items()}
    if len(set(tails.values())) > 1:
        listing = ", ".join(f"{k} {tuple(_shape(v))}" for k, v in arrays.items())
        raise ValueError(f"{' and '.join(arrays)} must agree on their last two axes (n, C), got {listing}")


def check_lwf_call(params, x, y=..., teacher_old_logits=..., *, lam=0.0, temperature=2.0,
                   x_name: str = "x_support") -> None:
    """Learning without Forgetting's arguments: the network (see :func:`check_lwf_params`), images
    ``x`` (n, D) or (B, n, D), labels ``y`` (…, n) in [0, N), the teacher's logits (…, n, C_old),
    λ >= 0 (a number or one per copy (B,)) and the temperature T > 0. ``...``: not an argument."""
    d, c_old, n_new = check_lwf_params(params, new_head=y is not ...)
    check_array(x, x_name, ndim=(2, 3), last=d, dtype="image")
    lead = tuple(_shape(x))[:-1]
    if y is not ...:
        check_array(y, "y_support", dtype="label")
        check_same_length({x_name: x, "y_support": y}, len(lead) - 1, "points axis (n)")
        check_array(y, "y_support", shape=lead, dtype="label")
        check_labels(y, "y_support", n_new)
    if teacher_old_logits is not ...:
        check_array(teacher_old_logits, "teacher_old_logits", shape=lead + (c_old,), dtype="real")
    check_lam(lam, "lam", lead[0] if len(lead) == 2 else None)
    check_float(temperature, "temperature", 0.0, low_open=True)


# --------------------------------------------------------------------------- the chapter 6 conv net
def check_convnet(params, x=..., *, name: str = "params", head: bool = True, x_name: str = "x") -> int | None:
    """The conv net's parameters (layout of :func:`course_utils.nets.init_convnet`) and images.

    ``params``: ``conv{i}_w`` (out, in, 3, 3), ``bn{i}_gamma``/``bn{i}_beta`` (out,), ``head_w``
    (hidden, n_way), ``head_b`` (n_way,), each layer reading the previous one's channels. ``x``:
    images (n, H, W) or (n, H, W, C) with C = ``conv0_w``'s input channels, uint8 or float, none
    empty. Checked before any convolution runs (a wrong rank can abort TensorFlow's C++ kernels).
    Only shapes are read, so it works on traced and vmapped tensors. Returns n_way.
    """
    check_params(params, name, keys=("conv0_w", "bn0_gamma", "bn0_beta") + (("head_w", "head_b") if head else ()))
    i, c_in = 0, None
    while f"conv{i}_w" in params:
        w = tuple(_shape(params[f"conv{i}_w"]))
        if len(w) < 4 or w[-2:] != (3, 3) or (c_in is not None and w[-3] != c_in):
            want = f"(out, {'in' if c_in is None else c_in}, 3, 3)"
            raise ValueError(f"{name}['conv{i}_w'] must have shape {want}, got {w}")
        for part in ("gamma", "beta"):
            key = f"bn{i}_{part}"
            if key not in params or tuple(_shape(params[key]))[-1:] != (w[-4],):
                got = tuple(_shape(params[key])) if key in params else "missing"
                raise ValueError(f"{name}[{key!r}] must have shape ({w[-4]},) (one per filter of conv{i}_w), got {got}")
        c_in = w[-4]
        i += 1
    hw = None
    if head:  # head=False: the embedding only (the head may be absent)
        hw, hb = tuple(_shape(params["head_w"])), tuple(_shape(params["head_b"]))
        if len(hw) < 2 or hw[-2] != c_in or hb[-1:] != hw[-1:]:
            raise ValueError(f"{name}['head_w'] must be ({c_in}, n_way) and head_b (n_way,), got {hw} and {hb}")
    if x is not ...:  # ``...``: check the parameters only
        check_array(x, x_name, ndim=(3, 4), dtype="image")
        shp = tuple(_shape(x))
        channels = shp[3] if len(shp) == 4 else 1
        c0 = tuple(_shape(params["conv0_w"]))[-3]
        if channels not in (c0, None):
            raise ValueError(f"{x_name} must have {c0} channel(s) (images (n, H, W) or (n, H, W, {c0})), "
                             f"got shape {shp}")
    return None if hw is None else hw[-1]


# --------------------------------------------------------------------------- plots and widgets
def check_pair(value, name: str, low: float | None = None, *, low_open: bool = False) -> tuple[float, float]:
    """A pair of finite numbers, each in the range ``check_float`` gives (e.g. a figure size > 0)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair of two numbers, got {value!r}")
    return (check_float(value[0], f"{name}[0]", low, low_open=low_open),
            check_float(value[1], f"{name}[1]", low, low_open=low_open))


def check_curves(curves, name: str, length: int | None = None) -> dict:
    """A dict ``{label: sequence of numbers}`` (each of ``length`` entries when given), as NumPy float arrays."""
    if not isinstance(curves, dict):
        raise ValueError(f"{name} must be a dict {{label: sequence of numbers}}, got {type(curves).__name__}")
    out = {}
    for label, values in curves.items():
        try:
            arr = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{label!r}] must be a sequence of numbers, got {values!r}") from None
        if length is not None and arr.size != length:
            raise ValueError(f"{name}[{label!r}] must have {length} values (one per point), got {arr.size}")
        out[label] = arr
    return out


def check_sequence(value, name: str, *, low: float | None = None, length: int | None = None) -> np.ndarray:
    """A non-empty 1-D sequence of finite numbers (each ``>= low`` when given), as a float64 array."""
    if value is None or isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}") from None
    if arr.ndim != 1 or arr.size == 0 or (length is not None and arr.size != length):
        want = f"{length} numbers" if length is not None else "a non-empty 1-D sequence"
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or (low is not None and np.any(arr < low)):
        allowed = "finite" + (f" and >= {low}" if low is not None else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return arr


def check_regression_call(params, x_support, y_support, *, tasks_axis: bool = True, x_grid=None,
                          f_prior=None) -> list:
    """Fine-tuning an MLP on regression data (chapters 3 and 5): the MLP ``params``, ``x_support``
    (M, K, in) and ``y_support`` (M, K, out) (without ``tasks_axis``: (K, in), (K, out)), and the
    optional prior grid ``x_grid``/``f_prior``. Returns ``[x_support, y_support]`` (float64 cast)."""
    check_params(params, mlp=True)
    check_optional_arrays(x_grid=x_grid, f_prior=f_prior)
    d_in, d_out = mlp_dims(params)
    return check_task_arrays({"x_support": x_support, "y_support": y_support}, tasks_axis=tasks_axis,
                             x_dim=d_in, y_dim=d_out)


# --------------------------------------------------------------------------- records, loops, lists
def check_numbers(value, name: str, *, integer: bool = False, low: float | None = None,
                  nonempty: bool = False) -> list:
    """A list/tuple/1-D array of finite numbers (integers when ``integer``; bools rejected), each
    ``>= low`` when given; returned as a list of Python numbers."""
    what = "integers" if integer else "finite numbers"
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise ValueError(f"{name} must be a list of {what}, got {type(value).__name__}")
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of {what}, got shape {value.shape}")
    out = [check_int(v, f"{name}[{i}]", int(low) if low is not None else -(2**63)) if integer
           else check_float(v, f"{name}[{i}]", low) for i, v in enumerate(value)]
    if nonempty and not out:
        raise ValueError(f"{name} must hold at least one number, got an empty list")
    return out


def check_generator(value, name: str = "rng") -> np.random.Generator:
    """A ``np.random.Generator`` itself (where a seed would not do: the caller shares its stream)."""
    if not isinstance(value, np.random.Generator):
        raise ValueError(f"{name} must be a np.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(value).__name__}")
    return value


def check_optional_callable(value, name: str):
    """None, or something callable."""
    return None if value is None else check_callable(value, name)


def check_arrays_list(value, name: str, *, nonempty: bool = True) -> list[np.ndarray]:
    """A list/tuple of arrays of numbers (e.g. per-batch losses); returned as NumPy arrays."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of arrays of numbers, got {type(value).__name__}")
    if nonempty and not value:
        raise ValueError(f"{name} must hold at least one array, got an empty list")
    return [np.asarray(check_array(v, f"{name}[{i}]", dtype="real", nonempty=False)) for i, v in enumerate(value)]


def check_record(value, name: str, attrs, what: str):
    """An object with the attributes ``attrs`` (an ``Episode``, a ``SinusoidTasks``, a task...); returned."""
    missing = [a for a in attrs if not hasattr(value, a)]
    if value is None or missing:
        raise ValueError(f"{name} must be {what} (with {', '.join(attrs)}), got {type(value).__name__}")
    return value


def check_points(value, name: str) -> np.ndarray:
    """One task's 1-D points: real numbers of shape (k,) or (k, 1), none empty; as a float64 (k,) array."""
    check_array(value, name, ndim=(1, 2), dtype="real")
    if np.ndim(value) == 2:
        check_array(value, name, last=1)
    return np.asarray(value, dtype=np.float64).ravel()


def check_kl_data(x_labelled, y_labelled, x_unlabelled, p_star, *, d: int | None = None, c: int | None = None,
                  batched: bool = False) -> tuple[int, int]:
    """Chapter 4's KL-regularised data: ``x_labelled`` (..., n, d), integer ``y_labelled`` (..., n) in
    [0, C), ``x_unlabelled`` (..., m, d), probabilities ``p_star`` (..., m, C); leading axes ``...``
    only when ``batched`` (shared by all four). ``d``/``c``: the model's sizes when known.
    Returns ``(d, C)``."""
    check_array(x_labelled, "x_labelled", ndim=None if batched else 2, min_ndim=2, dtype="real")
    xl = tuple(_shape(x_labelled))
    d = xl[-1] if d is None else d
    check_array(x_labelled, "x_labelled", last=d)
    check_array(x_unlabelled, "x_unlabelled", min_ndim=2, dtype="real")
    xu = tuple(_shape(x_unlabelled))
    if len(xu) != len(xl) or xu[:-2] != xl[:-2] or xu[-1] != d:
        raise ValueError(f"x_unlabelled must be (..., m, {d}) with the leading axes of x_labelled {xl}, got {xu}")
    check_probabilities(p_star, "p_star")
    c = tuple(_shape(p_star))[-1] if c is None else c
    if tuple(_shape(p_star)) != xu[:-1] + (c,):
        raise ValueError(f"p_star must have shape {xu[:-1] + (c,)} (a distribution over {c} classes per point of "
                         f"x_unlabelled {xu}), got {tuple(_shape(p_star))}")
    check_array(y_labelled, "y_labelled", dtype="label", nonempty=False)
    if tuple(_shape(y_labelled)) != xl[:-1]:
        raise ValueError(f"y_labelled must have shape {xl[:-1]} (one label per point of x_labelled {xl}), "
                         f"got {tuple(_shape(y_labelled))}")
    check_labels(y_labelled, "y_labelled", c)
    return d, c


def check_values(value, name: str, min_size: int = 1) -> np.ndarray:
    """Results to summarise (any shape; e.g. per-task errors or per-seed scores): at least ``min_size``
    finite real numbers, as a flat float64 array."""
    v = np.asarray(check_array(value, name, dtype="real", nonempty=False), dtype=np.float64).ravel()
    if v.size < min_size:
        raise ValueError(f"{name} must hold at least {min_size} number(s), got {v.size}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite numbers, got {v}")
    return v


def check_framework(fw, *attrs: str, name: str = "fw"):
    """A framework half (``course_utils.torch`` or ``course_utils.tensorflow``) with the functions ``attrs``."""
    return check_record(fw, name, attrs, "a framework module (course_utils.torch or course_utils.tensorflow)")


# --------------------------------------------------------------------------- the framework cores
TO_TENSOR_DTYPES = (None, "float32", "int64")


def check_to_tensor(a, name: str = "a", dtype=None):
    """What ``to_tensor`` converts: an array (or nested list) of floats, integers, bools or uint8 images,
    and ``dtype`` one of :data:`TO_TENSOR_DTYPES`. Returns ``a``."""
    check_choice(dtype, "dtype", TO_TENSOR_DTYPES)
    if a is None or isinstance(a, (str, bytes, dict)) or _dtype_kind(a) not in "fiub":
        got = type(a).__name__ if a is None or isinstance(a, (str, bytes, dict)) else f"dtype {np.asarray(a).dtype}"
        raise ValueError(f"{name} must be an array of floats, integers or uint8 images, got {got}")
    return a


def check_mlp_input(params, x, name: str = "x") -> None:
    """An MLP ``params`` dict and its input ``x`` (..., in) of real numbers (a float32 tensor or an array)."""
    check_params(params, mlp=True)
    check_array(x, name, min_ndim=1, last=mlp_dims(params)[0], dtype="real")
    check_same_float_dtype(params=_first_float(params), **{name: x})


def check_regression_loss(pred, y) -> None:
    """``mse_loss``'s predictions and targets: real numbers of exactly the same shape (no broadcasting:
    a (5,) target against (5, 1) predictions is an error, not a (5, 5) difference)."""
    check_array(pred, "pred", dtype="real")
    check_array(y, "y", dtype="real")
    check_same_float_dtype(pred=pred, y=y)
    check_same_shape(pred=pred, y=y)


def check_classification(logits, y) -> None:
    """Logits (..., n, C) of real numbers and integer labels y (..., n) in [0, C) (one per row of logits)."""
    check_array(logits, "logits", min_ndim=2, dtype="real")
    check_array(y, "y", dtype="label", nonempty=False)
    rows, ys = tuple(_shape(logits))[:-1], tuple(_shape(y))
    if len(rows) != len(ys) or any(a is not None and b is not None and a != b for a, b in zip(rows, ys)):
        raise ValueError(f"y must have shape {rows} (one label per row of logits {tuple(_shape(logits))}), got {ys}")
    check_labels(y, "y", _shape(logits)[-1])


def check_adam(params, grads, state, *, lr, beta1, beta2, eps) -> None:
    """Adam's arguments: a parameter dict, gradients for some of its keys (same shapes), the state of
    ``adam_init`` (``t``, ``m``, ``v``), lr > 0, β₁ and β₂ in [0, 1), ε >= 0."""
    check_params(params)
    check_params(grads, "grads")
    unknown = sorted(set(grads) - set(params))
    if unknown:
        raise ValueError(f"grads must have keys of params {sorted(params)}, got unknown {unknown}")
    check_same_keys({k: params[k] for k in grads}, grads, "grads")
    check_mapping(state, "state", "the dict of adam_init(params)")
    if not {"t", "m", "v"} <= set(state) or not set(grads) <= set(state["m"]) & set(state["v"]):
        raise ValueError(f"state must be adam_init(params) (keys t, m, v with an entry per key of grads), "
                         f"got keys {sorted(state)}")
    check_float(lr, "lr", 0.0, low_open=True)
    check_float(beta1, "beta1", 0.0, 1.0, high_open=True)
    check_float(beta2, "beta2", 0.0, 1.0, high_open=True)
    check_float(eps, "eps", 0.0)


TASK_ARRAYS = ("x_support", "y_support", "x_query", "y_query")


def check_task_tuple(tasks, name: str = "tasks") -> dict:
    """A batch of tasks: an object with ``x_support, y_support, x_query, y_query`` (``SinusoidTasks``,
    ``Episode``) or a tuple of those four arrays; returned as ``{name: array}``."""
    if hasattr(tasks, "x_support"):
        check_record(tasks, name, TASK_ARRAYS, "tasks with x_support, y_support, x_query, y_query")
        return {k: getattr(tasks, k) for k in TASK_ARRAYS}
    if isinstance(tasks, (tuple, list)) and len(tasks) >= 4:
        return dict(zip(TASK_ARRAYS, tasks))
    raise ValueError(f"{name} must be a SinusoidTasks/Episode or a tuple (x_support, y_support, x_query, y_query), "
                     f"got {type(tasks).__name__}")


def check_tasks_forward(params_batched, x, forward, mlp_forward) -> None:
    """Per-task parameters ``{name: (tasks, ...)}`` and per-task inputs x (tasks, n, ...) with the same
    number of tasks (an MLP's layout, and x's trailing axis its input width, when ``forward`` is the MLP)."""
    check_callable(forward, "forward")
    is_mlp = forward is mlp_forward
    check_params(params_batched, "params_batched", mlp=is_mlp)
    check_array(x, "x", min_ndim=2, dtype="image")
    check_same_float_dtype(params_batched=_first_float(params_batched), x=x)
    if is_mlp:
        check_array(x, "x", last=_shape(params_batched["w0"])[-2])
    n = _shape(x)[0]
    for k, v in params_batched.items():
        if len(_shape(v)) < 1 or _shape(v)[0] not in (n, None):
            raise ValueError(f"params_batched[{k!r}] must have a leading tasks axis of {n} (the tasks of x "
                             f"{tuple(_shape(x))}), got shape {tuple(_shape(v))}")


def check_meta_train(params, sample_batch, *, inner_lr, steps, first_order, forward, loss_fn,
                     epsilon_start, epsilon_end) -> None:
    """``meta_train``'s arguments that every method shares: the initial weights (a parameter dict),
    ``sample_batch`` (callable), the inner loop (see :func:`check_inner_loop`) and Reptile's ε
    schedule (ε_start in (0, 1], ε_end in [0, ε_start]; checked for every method)."""
    check_params(params)
    check_callable(sample_batch, "sample_batch")
    check_inner_loop(inner_lr, steps, first_order, forward, loss_fn)
    check_float(epsilon_start, "epsilon_start", 0.0, 1.0, low_open=True)
    check_float(epsilon_end, "epsilon_end", 0.0, float(epsilon_start))


# --------------------------------------------------------------------------- chapter 8's metric halves
def _agree(a: tuple, b: tuple) -> bool:
    """Two shapes agree, an axis unknown while tracing (None) agreeing with any size."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def check_n_way(n_way, name: str = "n_way"):
    """A number of classes: an int >= 1, or a 0-d integer tensor (computed inside a compiled graph)."""
    if not isinstance(n_way, (np.ndarray, np.generic, int)) and hasattr(n_way, "dtype") \
            and len(_shape(n_way)) == 0 and _dtype_kind(n_way) in "iu":
        return n_way
    return check_int(n_way, name, 1)


def check_support_set(z_support, y_support, n_way, z_query=...):
    """One episode's support embeddings (n_s, D), labels (n_s,) in [0, n_way) and (optionally)
    query embeddings (n_q, D); tensors or arrays. Returns ``n_way``."""
    check_array(z_support, "z_support", ndim=2, dtype="real")
    n_way = check_n_way(n_way)
    check_array(y_support, "y_support", dtype="label", nonempty=False)
    zs = tuple(_shape(z_support))
    if not _agree(tuple(_shape(y_support)), zs[:1]):
        raise ValueError(f"y_support must have shape ({zs[0]},) (one label per embedding of z_support {zs}), "
                         f"got {tuple(_shape(y_support))}")
    check_labels(y_support, "y_support", n_way if isinstance(n_way, int) else None)
    if z_query is not ...:
        check_embedding_pair(z_query, z_support, ("z_query", "z_support"))
    return n_way


def check_embedding_pair(a, b, names: tuple[str, str]) -> None:
    """Two sets of embeddings (n, D) and (m, D) of real numbers with the same D."""
    for v, k in ((a, names[0]), (b, names[1])):
        check_array(v, k, ndim=2, dtype="real")
    check_same_float_dtype(**{names[0]: a, names[1]: b})
    if not _agree(tuple(_shape(a))[-1:], tuple(_shape(b))[-1:]):
        raise ValueError(f"{names[0]} and {names[1]} must have the same embedding size D, got "
                         f"{tuple(_shape(a))} and {tuple(_shape(b))}")


def check_bn_stats(params, bn_stats) -> None:
    """None, or the batch-norm statistics of ``bn_statistics(params, ...)``: ``bn{i}_mean`` and
    ``bn{i}_var`` of shape (filters of conv{i}_w,) for every block."""
    if bn_stats is None:
        return
    check_mapping(bn_stats, "bn_stats", "the dict of bn_statistics(params, images) or None")
    i = 0
    while f"conv{i}_w" in params:
        c = tuple(_shape(params[f"conv{i}_w"]))[-4]
        for part in ("mean", "var"):
            key = f"bn{i}_{part}"
            got = tuple(np.shape(bn_stats[key])) if key in bn_stats else "missing"
            if got != (c,):
                raise ValueError(f"bn_stats[{key!r}] must have shape ({c},) (one per filter of conv{i}_w), got {got}")
        i += 1


def check_linear_head(params, z=...) -> None:
    """A linear head ``{"head_w": (D, n_way), "head_b": (n_way,)}`` and (optionally) embeddings z (n, D)."""
    check_params(params, keys=("head_w", "head_b"))
    hw, hb = tuple(_shape(params["head_w"])), tuple(_shape(params["head_b"]))
    if len(hw) != 2 or not _agree(hb, hw[1:]):
        raise ValueError(f"params must be a head {{'head_w': (D, n_way), 'head_b': (n_way,)}}, got {hw} and {hb}")
    if z is not ...:
        check_array(z, "z", ndim=2, last=hw[0], dtype="real")
        check_same_float_dtype(params=params["head_w"], z=z)


def check_metric_episode(method, params, x_support, y_support, x_query, y_query, *, forward, n_way, scale,
                         inner_lr, steps, first_order, allowed) -> None:
    """``metric_episode_loss``'s arguments: ``method`` among ``allowed``, a parameter dict and
    the embedding ``forward``, one episode's images (n_s, ...) and (n_q, ...) with integer labels
    (n_s,) and (n_q,) in [0, n_way) (``n_way`` None: the largest label + 1), the cosine ``scale`` > 0
    and ProtoMAML's inner loop (see :func:`check_inner_loop`)."""
    check_choice(method, "method", allowed)
    check_params(params)
    check_callable(forward, "forward")
    shapes = {}
    for k, v in (("x_support", x_support), ("x_query", x_query)):
        check_array(v, k, min_ndim=2, dtype="image")
        shapes[k] = tuple(_shape(v))
    for k, v in (("y_support", y_support), ("y_query", y_query)):
        check_array(v, k, ndim=1, dtype="label", nonempty=False)
        shapes[k] = tuple(_shape(v))
    xs, ys, xq, yq = shapes["x_support"], shapes["y_support"], shapes["x_query"], shapes["y_query"]
    if not (_agree(xs[1:], xq[1:]) and _agree(ys, xs[:1]) and _agree(yq, xq[:1])):
        raise ValueError("x_support, y_support, x_query, y_query must be (n_s, ...), (n_s,), (n_q, ...), (n_q,) "
                         f"with the same example shape, got {xs}, {ys}, {xq}, {yq}")
    if n_way is not None:
        n_way = check_n_way(n_way)
    classes = n_way if isinstance(n_way, int) else None
    check_labels(y_support, "y_support", classes)
    check_labels(y_query, "y_query", classes)
    check_float(scale, "scale", 0.0, low_open=True)
    check_inner_loop(inner_lr, steps, first_order)


# --------------------------------------------------------------------------- chapter 10's learned rules
def check_learned_call(params, x_support, y_support, steps, forward, loss_fn, mlp_forward, *,
                       x_query=None, y_query=None) -> int:
    """``meta_sgd_adapt`` / ``meta_lstm_adapt`` / ``learned_curve``'s shared arguments: a parameter
    dict (for the course's MLP, its learner part ``w0, b0, ...`` must chain and the task arrays must
    be (tasks, n, in) and (tasks, n, out)), task arrays with one number of tasks (the query arrays
    only when given), ``steps`` >= 0 and callable ``forward``/``loss_fn``. Returns ``steps``."""
    check_params(params)
    steps = check_int(steps, "steps", 0)
    check_callable(forward, "forward")
    check_callable(loss_fn, "loss_fn")
    arrays = {"x_support": x_support, "y_support": y_support}
    if x_query is not None or y_query is not None:
        arrays.update(x_query=x_query, y_query=y_query)
    for name, a in arrays.items():
        check_array(a, name, min_ndim=2, dtype="image" if name.startswith("x") else "number")
    if forward is mlp_forward:
        theta = {k: v for k, v in params.items() if not k.startswith(("lr_", "opt_"))}
        check_params(theta, "params (the learner's weights)", mlp=True)
        d_in, d_out = mlp_dims(theta)
        for name, a in arrays.items():
            check_array(a, name, ndim=3, last=d_in if name.startswith("x") else d_out, dtype="real")
        check_same_float_dtype(params=_first_float(theta), **arrays)
        if "x_query" in arrays:
            check_same_length({"y_query": y_query, "x_query": x_query}, axis=1, what="query axis")
    check_same_length({"x_support": x_support, "y_support": y_support}, axis=1, what="support axis")
    check_same_length(arrays, what="tasks axis")
    return steps


# --------------------------------------------------------------------------- chapter 11's article models
_ARTICLE_SHAPES = {"body_w0": (10, 10), "body_b0": (10,), "body_w1": (10, 10), "body_b1": (10,),
                   "head_w0": (10, 10), "head_b0": (10,), "head_w1": (10, 1), "head_b1": (1,)}


def check_article_params(params, x=...) -> dict:
    """The article's two models in one dict (:func:`course_utils.article.init_article_nets`'s keys and
    shapes) and, when given, an input x (..., 10) of the same float dtype. Returns ``params``."""
    check_params(params, keys=tuple(_ARTICLE_SHAPES))
    for k, shape in _ARTICLE_SHAPES.items():
        if tuple(_shape(params[k])) != shape:
            raise ValueError(f"params[{k!r}] must have shape {shape} (the article's 10-unit layers), "
                             f"got {tuple(_shape(params[k]))}")
    if x is not ...:
        check_array(x, "x", min_ndim=1, last=10, dtype="real")
        check_same_float_dtype(params=_first_float(params), x=x)
    return params


# --------------------------------------------------------------------------- chapter 5's implicit MAML
def check_imaml_call(params, x_support, y_support, *, lam, inner_lr, steps, forward, loss_fn, mlp_forward,
                     x_query=None, y_query=None, cg_steps=...) -> tuple[float, float, int, int | None]:
    """``imaml_adapt`` / ``imaml_meta_gradient``'s arguments: the task arrays and model as
    :func:`check_learned_call`, the proximal weight ``lam`` (finite, > 0), the inner step size
    ``inner_lr`` (finite, > 0), ``steps`` >= 0 and, when passed, ``cg_steps`` >= 1 (None is rejected).
    Returns ``(lam, inner_lr, steps, cg_steps)`` (``cg_steps`` None when not passed)."""
    steps = check_learned_call(params, x_support, y_support, steps, forward, loss_fn, mlp_forward,
                               x_query=x_query, y_query=y_query)
    return (*check_imaml_options(lam, inner_lr, cg_steps), steps, None if cg_steps is ... else int(cg_steps))


def check_imaml_options(lam, inner_lr, cg_steps=...) -> tuple[float, float]:
    """iMAML's ``lam`` (finite, > 0), ``inner_lr`` (finite, > 0) and, when passed, ``cg_steps`` (an
    integer >= 1); returns ``(lam, inner_lr)``."""
    lam = check_float(lam, "lam", 0.0, low_open=True)
    inner_lr = check_lr(inner_lr, "inner_lr")
    if cg_steps is not ...:
        check_positive_int(cg_steps, "cg_steps")
    return lam, inner_lr


def check_cg_call(matvec, b, steps, tol, batch_dims) -> tuple[int, float, int]:
    """``conjugate_gradient``'s arguments: a callable ``matvec``, a non-empty dict ``b`` of tensors
    (each with at least ``batch_dims`` axes), ``steps`` >= 1, ``tol`` >= 0 and ``batch_dims`` 0 or 1."""
    check_callable(matvec, "matvec")
    check_params(b, "b")
    steps = check_positive_int(steps, "steps")
    tol = check_float(tol, "tol", 0.0)
    batch_dims = check_int(batch_dims, "batch_dims", 0, 1)
    if batch_dims:
        lead = {k: _shape(v)[:1] for k, v in b.items()}
        if any(len(s) < 1 for s in lead.values()) or len(set(lead.values())) != 1:
            raise ValueError(f"b's tensors must share their leading (batch) axis when batch_dims=1, got {lead}")
    return steps, tol, batch_dims
