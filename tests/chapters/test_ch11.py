"""Chapter 11's failure demonstrations and checkers."""
from __future__ import annotations

import numpy as np

from course_utils.chapters import ch11
from course_utils.tasks import feature_map


def test_article_failures_are_real():
    f = ch11.article_failures()
    assert [x.outcome.split(":")[0] for x in f] == ["NameError"] * 3 + ["runs, with UserWarning"]
    assert "'F'" in f[0].outcome and "meta_learner" in f[1].outcome and "data_loader" in f[2].outcome


def test_checkers():
    t = ch11.BROADCAST_TOY
    assert ch11.check_broadcast_loss(((t["outputs"] - t["labels"]) ** 2).mean())
    assert not ch11.check_broadcast_loss(((t["outputs"][:, :1] - t["labels"]) ** 2).mean())
    assert not ch11.check_broadcast_loss(None)
    p = ch11.POOLED_TOY
    assert ch11.check_pooled_optimum(float(feature_map(p["x"]) @ p["mu"]))
    assert not ch11.check_pooled_optimum(0.0) and not ch11.check_pooled_optimum(None)
    assert ch11.check_adapted_counts({"anil": 121, "maml": 341})
    assert not ch11.check_adapted_counts({"anil": 341, "maml": 121})
    assert not ch11.check_adapted_counts({"anil": "x", "maml": 1}) and not ch11.check_adapted_counts(None)
    assert np.isfinite(float(feature_map(p["x"]) @ p["mu"]))
