"""One check per graded exercise: ``check_<exercise>(learner_fn, *, hidden=False) -> CheckResult``.

Each runs the learner's code against the reference on fresh random inputs and edge cases and prints one
``PASS`` line, or ``FAIL`` lines naming the input, expected vs got and the classic bug it looks like.
See ``_report.py`` for the shared interface. Each check lives in a module named after its exercise; its
docstring lists what the check verifies:

=====  ================================  ==============================  ================================
stage  exercise (learner's function)     check                           module
=====  ================================  ==============================  ================================
01     find_exact_duplicates             check_find_exact_duplicates     ``find_exact_duplicates``
01     find_near_duplicates              check_find_near_duplicates      ``find_near_duplicates``
01     rank_label_errors                 check_rank_label_errors         ``rank_label_errors``
02     expected_initial_loss             check_expected_initial_loss     ``expected_initial_loss``
02     init_final_bias                   check_final_bias_init           ``final_bias_init``
02     batch_dependence                  check_batch_independence        ``batch_independence``
02     overfit_one_batch                 check_overfit_one_batch         ``overfit_one_batch``
03     focal_loss                        check_focal_loss                ``focal_loss``
03     group_norm                        check_group_norm                ``group_norm``
03     ResidualBlock                     check_residual_block            ``residual_block``
03     set_forget_bias                   check_lstm_forget_bias          ``lstm_forget_bias``
04     dropout                           check_dropout                   ``dropout``
04     should_stop                       check_early_stopping            ``early_stopping``
04     smoothed_cross_entropy            check_label_smoothing           ``label_smoothing``
04     flood                             check_flooding                  ``flooding``
05     sample_log_uniform                check_log_uniform               ``log_uniform``
05     random_search                     check_random_search             ``random_search``
05     cosine_restart_lr                 check_cosine_restarts           ``cosine_restarts``
06     distillation_loss                 check_distillation_loss         ``distillation_loss``
06     ensemble_average                  check_ensemble_average          ``ensemble_average``
=====  ================================  ==============================  ================================

Helpers shared by several checks sit next to ``_report.py`` (results, FAIL lines) and ``_guards.py``
(banned calls, tripwires, one thread): ``_pairs`` and ``_stage01`` (stage 01), ``_library_calls``,
``_meta`` and ``_values`` (stages 02, 04-06), ``_optimizers`` (the optimizer steps an answer takes), ``_module_cases`` (layers and inits), ``_loss_cases``
(losses). All checks are importable from here: ``from course_utils.checks import check_focal_loss``.
"""

from __future__ import annotations

import importlib
from typing import Any

from course_utils.checks._report import CheckResult, Report

# check name -> module (in this package) that defines it
MODULES = {
    "check_find_exact_duplicates": "find_exact_duplicates",
    "check_find_near_duplicates": "find_near_duplicates",
    "check_rank_label_errors": "rank_label_errors",
    "check_expected_initial_loss": "expected_initial_loss",
    "check_final_bias_init": "final_bias_init",
    "check_batch_independence": "batch_independence",
    "check_overfit_one_batch": "overfit_one_batch",
    "check_focal_loss": "focal_loss",
    "check_group_norm": "group_norm",
    "check_residual_block": "residual_block",
    "check_lstm_forget_bias": "lstm_forget_bias",
    "check_dropout": "dropout",
    "check_early_stopping": "early_stopping",
    "check_label_smoothing": "label_smoothing",
    "check_flooding": "flooding",
    "check_log_uniform": "log_uniform",
    "check_random_search": "random_search",
    "check_cosine_restarts": "cosine_restarts",
    "check_distillation_loss": "distillation_loss",
    "check_ensemble_average": "ensemble_average",
}

__all__ = ["MODULES", "CheckResult", "Report", "all_checks"]


def all_checks() -> dict[str, Any]:
    """Every ``check_*`` function, by name."""
    return {name: getattr(_module(name), name) for name in MODULES}


def _module(name: str) -> Any:
    return importlib.import_module(f"course_utils.checks.{MODULES[name]}")


def __getattr__(name: str) -> Any:
    if name in MODULES:
        return getattr(_module(name), name)
    raise AttributeError(f"module 'course_utils.checks' has no attribute {name!r}")
