from __future__ import annotations

import pytest
import torch

from course_utils import runtime


def test_pick_device_defaults_to_best_available() -> None:
    assert runtime.pick_device().type == runtime.available_devices()[0]


def test_pick_device_honours_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")


def test_pick_device_rejects_unknown_and_unavailable_devices() -> None:
    with pytest.raises(ValueError, match="one of"):
        runtime.pick_device("tpu")
    if "cuda" not in runtime.available_devices():
        with pytest.raises(ValueError, match="not available"):
            runtime.pick_device("cuda")


def test_seed_everything_makes_runs_identical() -> None:
    runtime.seed_everything(3)
    a = torch.randn(5)
    runtime.seed_everything(3)
    assert torch.equal(a, torch.randn(5))


def test_budget_shrinks_only_under_nbgrader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert runtime.budget(10, 1) == 10 and not runtime.grading()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.budget(10, 1) == 1 and runtime.grading()
