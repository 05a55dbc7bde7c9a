"""Your function while it works, the course's reference while it does not.

A notebook's demonstration cells call the learner's exercise answers (``expected_initial_loss``,
``init_final_bias``...). While an answer is unfinished (it raises), those cells should still run, so
``yours_or_reference(yours, reference)`` returns a function that calls ``yours`` and, if that
raises, says so once and returns ``reference(*args, **kwargs)`` instead. Grading does not go through
here: the check cells call the learner's function directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def yours_or_reference(
    yours: Callable[..., Any], reference: Callable[..., Any]
) -> Callable[..., Any]:
    """``yours`` if it runs, else ``reference`` (one printed line the first time ``yours`` raises)."""
    told: list[bool] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return yours(*args, **kwargs)
        except Exception as error:
            if not told:  # once per wrapper (per cell), not once per call
                detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                print(
                    f"(your {getattr(yours, '__name__', 'function')} raised {detail}; "
                    "the course's reference stands in for it here)"
                )
                told.append(True)
            return reference(*args, **kwargs)

    return call
