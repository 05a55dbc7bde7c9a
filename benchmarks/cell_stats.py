"""Code-cell lengths of every solutions notebook against the course's readability goal.

    python benchmarks/cell_stats.py

Goal (DESIGN.md, "Style to follow"; d2l's cells: median 4 lines, 90% at most 12): median <= 8 lines,
90% of cells <= 20, at most one cell in twenty over 40. Exercise and helper cells count. A line is a
line of the cell's source (blank lines included). Writes ``benchmarks/cells.md`` and prints it.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIAN_GOAL, P90_GOAL, LONG, LONG_SHARE = 8, 20, 40, 1 / 20


def code_cell_lengths(path: Path) -> list[int]:
    """Lines of each code cell of the notebook at ``path``, in order."""
    cells = json.loads(path.read_text())["cells"]
    return [len("".join(c["source"]).splitlines()) for c in cells if c["cell_type"] == "code"]


def cell_stats(lengths: list[int]) -> dict[str, float]:
    """Median, 90th percentile (nearest rank), longest, and the share of cells over LONG lines."""
    ordered = sorted(lengths)
    p90 = ordered[max(0, -(-9 * len(ordered) // 10) - 1)]
    return {
        "cells": len(ordered),
        "median": statistics.median(ordered),
        "p90": p90,
        "longest": ordered[-1],
        "over_long": sum(n > LONG for n in ordered) / len(ordered),
    }


def meets_goal(stats: dict[str, float]) -> bool:
    return (
        stats["median"] <= MEDIAN_GOAL
        and stats["p90"] <= P90_GOAL
        and stats["over_long"] <= LONG_SHARE
    )


def table() -> str:
    lines = [
        f"# Code-cell lengths of solutions/ (goal: median <= {MEDIAN_GOAL}, 90% <= {P90_GOAL}, "
        f"at most 1 in 20 over {LONG} lines)",
        "",
        "Written by `python benchmarks/cell_stats.py` (`make bench`).",
        "",
        "| stage | code cells | median | 90% at most | longest | over 40 lines | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        s = cell_stats(code_cell_lengths(path))
        lines.append(
            f"| {path.stem} | {s['cells']} | {s['median']:g} | {s['p90']} | {s['longest']} | "
            f"{100 * s['over_long']:.0f}% | {'met' if meets_goal(s) else 'not met'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    text = table()
    (REPO / "benchmarks" / "cells.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
