"""benchmarks/cell_stats.py: the readability figures the notebooks are held to."""

from __future__ import annotations

import json

from benchmarks.cell_stats import cell_stats, code_cell_lengths, meets_goal


def test_stats_of_known_lengths():
    stats = cell_stats([1, 2, 3, 4, 5, 6, 7, 8, 9, 50])
    assert stats["median"] == 5.5 and stats["p90"] == 9 and stats["longest"] == 50
    assert stats["over_long"] == 0.1 and not meets_goal(stats)  # 1 in 10 over 40: too many
    assert meets_goal(cell_stats([4] * 19 + [41]))


def test_only_code_cells_count_and_blank_lines_do(tmp_path):
    cells = [
        {"cell_type": "markdown", "source": ["# title\n", "text"]},
        {"cell_type": "code", "source": ["a = 1\n", "\n", "b = 2"]},
        {"cell_type": "code", "source": []},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert code_cell_lengths(path) == [3, 0]
