"""Build tools for the course's rendered forms: the static site, lecture slides and the Colab cell.

Nothing here is part of the course's API (``course_utils``): these modules turn the stored,
output-free notebooks into an executed site (``make site``), reveal.js slides (``make slides``)
and keep the per-notebook Colab cell, the slide metadata and the README's badges in step with one
configured repository URL (``python -m book.build sync``). See ``book/build.py``.
"""
