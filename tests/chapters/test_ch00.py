"""Chapter 0's slider callback, driven headlessly."""
from course_utils.chapters.ch00 import show_sinusoid_family
from course_utils.widgets import int_slider, make_interactive, set_values


def test_start_here_slider():
    w = make_interactive(show_sinusoid_family, n_tasks=int_slider("tasks", value=4, min=1, max=8),
                         k_shot=int_slider("K", value=5, min=1, max=20),
                         seed=int_slider("seed", value=0, min=0, max=20))
    assert len(w.result["amplitudes"]) == 4 and w.result["n_points"] == 4 * 10
    res = set_values(w, n_tasks=1, k_shot=1)
    assert len(res["amplitudes"]) == 1 and res["n_points"] == 2
    first = set_values(w, seed=1)["amplitudes"]
    assert set_values(w, seed=2)["amplitudes"] != first
    assert set_values(w, seed=1)["amplitudes"] == first
    assert all(0.1 <= a <= 5 for a in set_values(w, n_tasks=8)["amplitudes"])
