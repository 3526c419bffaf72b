"""The test harness that drives notebooks: one execution per chapter per ``make test``.

- :mod:`tests.harness.store`: the executed copies in ``_build/executed/`` (reused by the site,
  the slides and their tests) and the execution log that counts every notebook run.
- :mod:`tests.harness.kernel`: run a notebook in a fresh kernel from a child process (the
  determinism check, and ``make site`` for a chapter with no current executed copy).
- :mod:`tests.harness.hidden`: find each exercise's hidden solution and check it inside the
  kernel that is already executing the chapter.
- :mod:`tests.harness.plugin`: the pytest plugin (loaded by the root ``conftest.py``) that puts
  those checks into nbval's run, saves its outputs, orders the work for two workers and prints
  the count of executions.

Nothing here imports ``book``; ``book`` imports :mod:`tests.harness.store` and
:mod:`tests.harness.kernel` for ``make site`` and ``make slides``.
"""
