"""The log of changes Karpathy asks for: one row per change, its metric before and after, kept or not.

"Complexify one thing at a time" only pays off if each change is written down with what it did. A row
holds the change, the metric, the value before and after, and whether the change stays. When the
change was measured through ``course_utils.evidence`` (paired seeds or images), pass the
``Comparison``: the change is kept when its verdict is "holds", and the row carries the effect with its
95% interval. Without one, the row falls back to the plain comparison of the two numbers (kept if
``after`` is better), which is all a single run can say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from course_utils.evidence import HOLDS, Comparison


@dataclass
class ChangeLog:
    """Rows of ``{"change", "metric", "before", "after", "kept", "effect"}``, in the order added."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        change: str,
        metric: str,
        before: float,
        after: float,
        higher_is_better: bool,
        comparison: Comparison | None = None,
    ) -> dict[str, Any]:
        """Record one change; kept if the comparison's verdict is "holds" (or, with no comparison,
        if ``after`` beats ``before``). Returns the row."""
        if comparison is not None:
            kept, effect = comparison.verdict == HOLDS, comparison.text(digits=3)
        else:
            kept = after > before if higher_is_better else after < before
            effect = "one run (no interval)"
        row = {
            "change": change,
            "metric": metric,
            "before": float(before),
            "after": float(after),
            "kept": kept,
            "effect": effect,
        }
        self.rows.append(row)
        return row

    def markdown(self) -> str:
        """The log as a Markdown table: # | one change | metric | before | after | effect | kept?"""
        lines = [
            "| # | one change | metric | before | after | effect (95% interval) | kept? |",
            "|---|---|---|---|---|---|---|",
        ]
        for k, row in enumerate(self.rows, 1):
            lines.append(
                f"| {k} | {row['change']} | {row['metric']} | {row['before']:.4g} | "
                f"{row['after']:.4g} | {row['effect']} | {'yes' if row['kept'] else 'no'} |"
            )
        return "\n".join(lines)

    def show(self) -> None:
        """Display the table in a notebook (plain text elsewhere)."""
        from IPython.display import Markdown, display

        display(Markdown(self.markdown()))
