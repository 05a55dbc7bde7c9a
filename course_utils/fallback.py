"""Keep a notebook running while a learner works on an exercise.

``yours_if_it_passes(check, yours, reference, name)`` runs the exercise's check quietly and returns the
learner's function if it passes, else the course's reference, saying which one the cells after the
exercise use. The graded test cells, not this, grade the learner's code.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def yours_if_it_passes(check: Callable[[F], Any], yours: F, reference: F, name: str) -> F:
    """``yours`` if ``bool(check(yours))`` (its printout hidden; an exception counts as a fail), else
    ``reference``; prints which one is used."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            passed = bool(check(yours))
    except Exception:  # noqa: BLE001 - a crashing answer is a failing one
        passed = False
    print(
        f"using {'your' if passed else 'the reference'} {name}"
        + ("" if passed else " (yours does not pass its check yet)")
    )
    return yours if passed else reference
