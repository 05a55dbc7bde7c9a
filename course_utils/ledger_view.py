"""The course's results ledger, assembled in stage 6 from every stage's saved results.

``assemble`` joins the rows other stages saved (``course_utils.results.load_ledger``) with the rows
of the stage running now (which are not saved yet); ``overview`` says which stages are missing and
how the verdicts (from ``course_utils.evidence``) split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from course_utils.results import load_ledger

STAGES = ("01_data", "02_baselines", "03_overfit", "04_regularize", "05_tune", "06_squeeze")


def assemble(dataset: str, stage: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Saved rows of every other stage, then ``rows`` (this stage's, unsaved) tagged with ``stage``."""
    saved = [row for row in load_ledger(dataset) if row["stage"] != stage]
    return saved + [{"stage": stage, **row} for row in rows]


def overview(rows: Sequence[dict[str, Any]], dataset: str, stages: Sequence[str] = STAGES) -> str:
    """Lines saying how many rules from which stages, what is missing, and the verdict counts."""
    present = sorted({row["stage"] for row in rows})
    missing = [s for s in stages if s not in present]
    lines = [f"{len(rows)} rules from {len(present)} stages: {', '.join(present)}"]
    if missing:
        lines.append(
            f"not run yet on {dataset}: {', '.join(missing)} (run those notebooks to fill the ledger)"
        )
    counts = Counter(str(row.get("verdict", "-")).split(" (")[0] for row in rows)
    lines.append("verdicts: " + ", ".join(f"{v}: {n}" for v, n in counts.most_common()))
    return "\n".join(lines)
