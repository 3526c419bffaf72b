"""Per-chapter pure functions: slider callbacks and challenge checkers (``chNN.py``)."""
