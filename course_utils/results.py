"""Each stage's headline numbers, saved as JSON, and the ledger assembled from them.

``save_results(stage, numbers)`` writes ``<results_dir>/<dataset>/<stage>.json``. The folder is
``$COURSE_RESULTS_DIR`` if set, else ``results/`` in the course checkout (the folder holding
``nbgrader_config.py``, found from the working directory upwards), else ``~/.cache/the-recipe/results``.
Under nbgrader (``NBGRADER_EXECUTION``) training is shrunk, so nothing is saved.

A ledger row is a dict with ``rule``, ``experiment``, ``measured``, ``effect`` and ``verdict``, the last two
made by ``course_utils.evidence`` (``Comparison.ledger``); stages put them in the ``"ledger"`` list of
their numbers and ``load_ledger`` gathers them in stage order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS_ENV = "COURSE_RESULTS_DIR"


def course_root(start: Path | None = None) -> Path | None:
    """The course checkout containing ``start`` (default: cwd), i.e. the folder with nbgrader_config.py."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "course_utils").is_dir():
            return folder
    return None


def results_dir() -> Path:
    """Where results are written and read (see the module docstring)."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    root = course_root()
    if root is not None:
        return root / "results"
    return Path.home() / ".cache" / "the-recipe" / "results"


def save_results(stage: str, dataset: str, numbers: dict[str, Any]) -> Path | None:
    """Write ``numbers`` as ``<results_dir>/<dataset>/<stage>.json``; returns the path (None if grading)."""
    from course_utils.runtime import grading  # here: finding the course root needs no torch

    if grading():
        return None
    path = results_dir() / dataset / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(numbers, indent=2, sort_keys=True, default=float) + "\n")
    return path


def load_results(dataset: str, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every saved stage for ``dataset``, by stage name, in stage order."""
    base = (folder or results_dir()) / dataset
    if not base.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(base.glob("*.json"))}


def load_ledger(dataset: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """The ledger rows of every saved stage, each with its ``stage`` added."""
    rows = []
    for stage, numbers in load_results(dataset, folder).items():
        for row in numbers.get("ledger", []):
            rows.append({"stage": stage, **row})
    return rows


def ledger_markdown(rows: list[dict[str, Any]]) -> str:
    """The ledger as a Markdown table: stage | rule | experiment | measured | effect (95% interval) |
    verdict. A row without an ``effect`` (not yet measured through ``course_utils.evidence``) shows "-"."""
    lines = [
        "| stage | rule | experiment | measured | effect (95% interval) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            str(row.get(k) or "-").replace("|", "/")
            for k in ("stage", "rule", "experiment", "measured", "effect", "verdict")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
