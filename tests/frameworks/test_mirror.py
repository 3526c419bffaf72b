"""The two framework halves mirror each other: the same public names, and for every callable the
same parameters (names, kinds, defaults) in the same order. Annotations may differ (a
``torch.Tensor`` is a ``tf.Tensor`` on the other side); a default that is itself a function
(``forward=mlp_forward``) must be the same-named function of that half.
"""
from __future__ import annotations

import inspect

import pytest

import course_utils.tensorflow as cf
import course_utils.torch as ct

CONSTANTS_THAT_DIFFER = {"FRAMEWORK"}  # "torch" / "tensorflow", by design


def _default(value):
    if callable(value) and hasattr(value, "__name__"):
        return ("function", value.__name__)
    return ("value", repr(value))


def _signature(obj) -> list[tuple]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(target)
    return [(p.name, p.kind, None if p.default is inspect.Parameter.empty else _default(p.default))
            for p in sig.parameters.values()]


def test_same_public_names():
    assert ct.__all__ == cf.__all__, set(ct.__all__) ^ set(cf.__all__)
    assert len(set(ct.__all__)) == len(ct.__all__), "a name is exported twice"


@pytest.mark.parametrize("name", ct.__all__)
def test_same_signature(name):
    a, b = getattr(ct, name), getattr(cf, name)
    if name in CONSTANTS_THAT_DIFFER:
        assert type(a) is type(b)
        return
    if not callable(a):
        if hasattr(a, "names"):  # the method registries
            assert a.names() == b.names()
        else:
            assert type(a) is type(b) and repr(a) == repr(b), name
        return
    assert callable(b), name
    assert _signature(a) == _signature(b), f"{name}: {inspect.signature(a)} vs {inspect.signature(b)}"


def test_the_check_sees_a_difference():
    """The comparison is not vacuous: two functions that differ only in a default are told apart."""
    def f(x, *, lr: float = 0.1):
        return x

    def g(x, *, lr: float = 0.2):
        return x

    assert _signature(f) != _signature(g)
    assert _signature(f) == _signature(lambda x, *, lr=0.1: x)
