"""Slider factories. The maths lives in pure functions; widgets only wire sliders to them.

Every factory returns ``ipywidgets.interactive``: tests set ``w.children[i].value`` (or use
:func:`set_values`) and read ``w.result``, the callback's return value, without a browser.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from course_utils.validation import check_bool, check_callable, check_float, check_instance, check_int, check_str

__all__ = ["lambda_slider", "int_slider", "float_slider", "make_interactive", "set_values",
           "lambda_grid"]


def lambda_grid(min_exp: int = -4, max_exp: int = 1, per_decade: int = 4,
                include_zero: bool = True) -> np.ndarray:
    """λ values log-spaced from 10**min_exp to 10**max_exp, with 0 first if ``include_zero``."""
    min_exp = check_int(min_exp, "min_exp", -30, 30)
    max_exp = check_int(max_exp, "max_exp", -30, 30)
    if min_exp >= max_exp:
        raise ValueError(f"min_exp must be < max_exp, got {min_exp} >= {max_exp}")
    per_decade = check_int(per_decade, "per_decade", 1, 100)
    include_zero = check_bool(include_zero, "include_zero")
    grid = np.logspace(min_exp, max_exp, (max_exp - min_exp) * per_decade + 1)
    return np.concatenate([[0.0], grid]) if include_zero else grid


def lambda_slider(description: str = "λ", *, value: float = 0.0, min_exp: int = -4,
                  max_exp: int = 1, per_decade: int = 4, include_zero: bool = True):
    """A log-scale slider for a regularisation weight λ on which λ = 0 is reachable.

    An ``ipywidgets.SelectionSlider`` over :func:`lambda_grid`; its ``value`` is the float λ,
    set to the grid point nearest ``value``.
    """
    import ipywidgets as widgets

    check_str(description, "description")
    value = check_float(value, "value", 0.0)
    grid = lambda_grid(min_exp, max_exp, per_decade, include_zero)
    options = [(("0" if v == 0 else f"{v:.3g}"), float(v)) for v in grid]
    nearest = float(grid[np.argmin(np.abs(grid - value))])
    return widgets.SelectionSlider(options=options, value=nearest, description=description,
                                   continuous_update=False,
                                   style={"description_width": "initial"})


def int_slider(description: str, *, value: int, min: int, max: int, step: int = 1):  # noqa: A002
    """An integer slider that only updates on release (cheap for learners on 1-2 cores)."""
    import ipywidgets as widgets

    check_str(description, "description")
    min = check_int(min, "min", -(2**31))  # noqa: A001
    max = check_int(max, "max", min)  # noqa: A001
    value = check_int(value, "value", min, max)
    step = check_int(step, "step", 1)

    return widgets.IntSlider(value=value, min=min, max=max, step=step, description=description,
                             continuous_update=False, style={"description_width": "initial"})


def float_slider(description: str, *, value: float, min: float, max: float,  # noqa: A002
                 step: float = 0.1):
    """A float slider that only updates on release."""
    import ipywidgets as widgets

    check_str(description, "description")
    min = check_float(min, "min")  # noqa: A001
    max = check_float(max, "max", min)  # noqa: A001
    value = check_float(value, "value", min, max)
    step = check_float(step, "step", 0.0, low_open=True)

    return widgets.FloatSlider(value=value, min=min, max=max, step=step, description=description,
                               continuous_update=False, readout_format=".3g",
                               style={"description_width": "initial"})


def make_interactive(fn: Callable, **controls):
    """``ipywidgets.interactive`` over exactly the given controls, run once, result in ``.result``.

    ``fn`` is a pure function of the control values that may draw a matplotlib figure and
    returns the numbers it shows (a dict), which tests read from ``.result``.

    Only the keywords given here become controls. ``ipywidgets.interactive`` itself also turns every
    other parameter of ``fn`` into a control: from its default, and on ipywidgets 7 (Colab's) from
    its *annotation*, so that under ``from __future__ import annotations`` a parameter annotated
    ``bool`` became a text box holding the string ``'bool'``. ``fn`` is therefore wrapped in a
    function whose signature lists the controls alone, and its other parameters keep their defaults.

    Args:
        fn: the callback; every name in ``controls`` must be one of its parameters (or it takes
            ``**kwargs``).
        **controls: ``name=widget`` (or any abbreviation ``ipywidgets.interactive`` accepts).

    Returns:
        The ``ipywidgets.interactive``, already run once with the controls' initial values.
    """
    import functools
    import inspect

    import ipywidgets as widgets

    check_callable(fn, "fn")
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(controls) - set(params))
        if unknown:
            raise ValueError(f"controls must name parameters of fn {sorted(params)}, got unknown {unknown}")
    if not controls:
        raise ValueError("controls must name at least one control, got none")

    @functools.wraps(fn)
    def bound(**values):
        return fn(**values)

    bound.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in controls])
    bound.__annotations__ = {}
    w = widgets.interactive(bound, **controls)
    w.update()  # run once so .result is filled before anyone touches a slider
    return w


def set_values(w, **values) -> object:
    """Set controls of an ``interactive`` by keyword (``set_values(w, lam=0.1)``) and return ``w.result``.

    Raises ``ValueError`` naming an unknown control.
    """
    import ipywidgets as widgets

    check_instance(w, "w", widgets.interactive, "an ipywidgets.interactive (from make_interactive)")
    by_name = {c._kwarg: c for c in w.kwargs_widgets}  # set by ipywidgets.interactive
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(f"unknown control {unknown[0]!r}; this widget has {sorted(by_name)}")
    changed = False
    for name, value in values.items():
        changed |= by_name[name].value != value
        by_name[name].value = value  # a changed value re-runs the callback by itself
    if not changed:
        w.update()
    return w.result
