"""The Recipe's companion package: reference implementations, checks and tools for the course.

Modules, one concept each: ``runtime`` (device, seeding), ``data`` (datasets, derived tasks,
exploration tools), ``train`` (fit/evaluate), ``plots``, ``results`` (saved numbers, ledger),
``losses``, ``layers``, ``models``, ``init``, ``schedules``, ``sanity``, ``tuning``, ``ensemble``,
``early_stopping``, ``checks`` (one per graded exercise), ``grading`` and ``cli`` (the ``course`` command).
"""

from course_utils._version import __version__

__all__ = ["__version__"]
