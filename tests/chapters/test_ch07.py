"""Chapter 7's framework-free helpers and challenge checkers (accept the solutions, reject wrong answers)."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils.chapters import ch07
from course_utils.nets import head_keys, init_convnet, init_mlp
from course_utils.tasks import sample_sinusoid_tasks


def test_seed_summary_and_separated():
    assert ch07.seed_summary([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert ch07.separated([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    assert not ch07.separated([1.0, 1.5, 0.5], [1.4, 1.6, 1.2])
    with pytest.raises(ValueError, match="values"):
        ch07.seed_summary([1.0])


def test_taylor_coefficients_match_nichol_et_al():
    assert ch07.taylor_coefficients("maml", 2) == (1.0, -2.0)
    assert ch07.taylor_coefficients("fomaml", 2) == (1.0, -1.0)
    assert ch07.taylor_coefficients("reptile", 2) == (2.0, -1.0)
    assert ch07.taylor_coefficients("reptile", 3) == (3.0, -3.0)
    assert ch07.taylor_coefficients("reptile", 1) == (1.0, 0.0)
    with pytest.raises(ValueError, match="method"):
        ch07.taylor_coefficients("anil", 2)


def test_check_hessian_term(capsys):
    assert ch07.check_hessian_term("I - alpha H") and ch07.check_hessian_term("(I - α H)")
    assert not ch07.check_hessian_term("I + alpha H") and not ch07.check_hessian_term(None)


@pytest.fixture(scope="module")
def reptile_setup():
    import course_utils.torch as ct

    tasks = sample_sinusoid_tasks(3, 5, 5, rng=1)
    x = np.concatenate([tasks.x_support, tasks.x_query], 1)
    y = np.concatenate([tasks.y_support, tasks.y_query], 1)
    return ct, init_mlp((1, 8, 1), rng=0), x, y


def test_check_reptile_two_steps(reptile_setup):
    ct, theta, x, y = reptile_setup

    def grad(params, i):
        return ct.maml_meta_gradient(params, x[i:i + 1], y[i:i + 1], x[i:i + 1], y[i:i + 1], steps=0)[1]

    adapted = []
    for i in range(len(x)):
        phi = dict(theta)
        for _ in range(2):
            g = grad(phi, i)
            phi = {k: phi[k] - 0.02 * g[k] for k in phi}
        adapted.append(phi)
    answer = {k: theta[k] + 0.5 * (np.mean([p[k] for p in adapted], 0) - theta[k]) for k in theta}
    kw = dict(fw=ct, params=theta, x=x, y=y)
    assert ch07.check_reptile_two_steps(answer, **kw)
    one = ct.reptile_update(theta, x, y, epsilon=0.5, inner_lr=0.02, inner_steps=1)
    assert not ch07.check_reptile_two_steps(one, **kw)                       # the k = 1 answer
    assert not ch07.check_reptile_two_steps({k: v + 1 for k, v in answer.items()}, **kw)
    assert not ch07.check_reptile_two_steps({"w0": answer["w0"]}, **kw)
    assert not ch07.check_reptile_two_steps(None, **kw)


def test_check_anil_share():
    net = init_convnet(0, n_way=20, hidden=64)
    share = sum(net[k].size for k in head_keys(net)) / sum(v.size for v in net.values())
    assert 0.005 < share < 0.02
    assert ch07.check_anil_share(share)
    assert not ch07.check_anil_share(100 * share) and not ch07.check_anil_share(share + 1)
    small = init_convnet(0, n_way=5, hidden=32)
    assert not ch07.check_anil_share(sum(small[k].size for k in head_keys(small)) / sum(v.size for v in small.values()))
    assert not ch07.check_anil_share(None) and not ch07.check_anil_share("w2")


def test_check_reptile_taylor_is_the_exact_quadratic_correction():
    t = ch07.TAYLOR_TOY
    grads = [lambda th, a=a, c=c: a * (th - c) for a, c in zip(t["a"], t["c"])]

    def reptile_g(first, second, th=t["theta"], alpha=t["inner_lr"]):
        g1 = first(th)
        return g1 + second(th - alpha * g1)

    joint = grads[0](t["theta"]) + grads[1](t["theta"])
    answer = (reptile_g(*grads) + reptile_g(*grads[::-1])) / 2 - joint
    # −(α/2)·d/dθ(ḡ_A ḡ_B), the Taylor term of Nichol et al., exact for quadratics
    d_inner = t["a"][0] * grads[1](t["theta"]) + t["a"][1] * grads[0](t["theta"])
    assert np.isclose(answer, -t["inner_lr"] / 2 * d_inner)
    assert ch07.check_reptile_taylor(answer)
    assert not ch07.check_reptile_taylor(-answer) and not ch07.check_reptile_taylor(2 * answer)
    assert not ch07.check_reptile_taylor("increase") and not ch07.check_reptile_taylor(None)
