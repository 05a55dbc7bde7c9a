"""One check per graded exercise: ``check_<exercise>(learner_fn, *, hidden=False) -> CheckResult``.

Each runs the learner's code against the reference on fresh random inputs and edge cases and prints one
``PASS`` line, or ``FAIL`` lines naming the input, expected vs got and the classic bug it looks like.
See ``_report.py`` for the shared interface. The checks live in modules by topic:

- ``data``: duplicate finder, near-duplicate finder, label-error ranking (stage 01)
- ``training``: expected initial loss, batch independence, overfit one batch, early stopping,
  log-uniform sampling, random search, cosine restarts, ensemble averaging (stages 02, 04, 05, 06)
- ``layers``: final-bias init, group norm, residual block, LSTM forget bias, dropout (stages 02-04)
- ``losses``: focal loss, label smoothing, flooding, distillation (stages 03, 04, 06)

All are importable from here: ``from course_utils.checks import check_focal_loss``.
"""

from __future__ import annotations

import importlib
from typing import Any

from course_utils.checks._report import CheckResult, Report

_TOPICS = ("data", "training", "layers", "losses")

__all__ = ["CheckResult", "Report", "all_checks"]


def all_checks() -> dict[str, Any]:
    """Every ``check_*`` function, by name."""
    found: dict[str, Any] = {}
    for topic in _TOPICS:
        module = importlib.import_module(f"course_utils.checks.{topic}")
        found.update({k: v for k, v in vars(module).items() if k.startswith("check_")})
    return found


def __getattr__(name: str) -> Any:
    if name.startswith("check_"):
        for topic in _TOPICS:
            try:
                module = importlib.import_module(f"course_utils.checks.{topic}")
            except ModuleNotFoundError as error:
                if error.name != f"course_utils.checks.{topic}":
                    raise
                continue
            if hasattr(module, name):
                return getattr(module, name)
    raise AttributeError(f"module 'course_utils.checks' has no attribute {name!r}")
