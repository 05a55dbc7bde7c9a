from __future__ import annotations

from pathlib import Path

import pytest

from course_utils import results


def test_saved_stages_come_back_as_a_ledger(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    row = {
        "rule": "loss at init is ln C",
        "experiment": "x",
        "measured": "2.30",
        "verdict": "holds",
    }
    results.save_results("02_baselines", "mnist_5k", {"accuracy": 0.9, "ledger": [row]})
    results.save_results("01_data", "mnist_5k", {"ledger": []})
    assert list(results.load_results("mnist_5k")) == ["01_data", "02_baselines"]
    rows = results.load_ledger("mnist_5k")
    assert rows == [{"stage": "02_baselines", **row}]
    assert "| 02_baselines | loss at init is ln C |" in results.ledger_markdown(rows)


def test_nothing_is_saved_under_grading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert results.save_results("01_data", "mnist_5k", {}) is None
    assert not any(tmp_path.iterdir())


def test_results_default_to_the_checkout(repo_root: Path, monkeypatch) -> None:
    monkeypatch.delenv("COURSE_RESULTS_DIR", raising=False)
    monkeypatch.chdir(repo_root / "course_utils")
    assert results.results_dir() == repo_root / "results"
