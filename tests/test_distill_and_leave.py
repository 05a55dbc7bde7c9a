"""Stage 6's distillation arms, the watched long run, the ledger view and the exercise fallback."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import distill, results
from course_utils.data import Split
from course_utils.fallback import yours_if_it_passes
from course_utils.leave_training import plot_watched_run, watched_run
from course_utils.ledger_view import assemble, overview
from course_utils.losses import distillation_loss


def _tiny(n: int = 64, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 3))


def _soft(s: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    return distillation_loss(s, t, temperature=temperature)


def test_a_student_with_only_soft_targets_learns_the_teachers_labels() -> None:
    split = _tiny(24)
    teacher = 8 * torch.nn.functional.one_hot((split.labels + 1) % 3, 3).float()  # a wrong teacher
    student = distill.train_student(
        _mlp, split, epochs=60, teacher_logits=teacher, soft_loss=_soft, soft_weight=1.0, lr=1e-2
    )
    agree = (student(split.images).argmax(1) == teacher.argmax(1)).float().mean()
    assert agree > 0.9  # it follows the soft targets, not the labels
    with pytest.raises(ValueError, match="soft_loss"):
        distill.train_student(_mlp, split, epochs=1, teacher_logits=teacher)


def test_student_arms_are_paired_by_seed() -> None:
    split, held_out = _tiny(), _tiny(20, seed=1)
    teacher = torch.randn(len(split), 3)
    arms = distill.student_arms(
        _mlp, split, teacher, held_out, seeds=[0, 1], soft_loss=_soft, epochs=2
    )
    assert arms["hard"].shape == arms["distilled"].shape == (2, 20)
    again = distill.student_arms(
        _mlp, split, teacher, held_out, seeds=[0, 1], soft_loss=_soft, epochs=2
    )
    assert np.array_equal(arms["hard"], again["hard"])


def test_watched_run_keeps_the_lowest_loss_epoch_and_every_epochs_correctness() -> None:
    split, val = _tiny(64), _tiny(32, seed=1)
    torch.manual_seed(0)
    run = watched_run(_mlp(), split, val, epochs=8, lr=1e-1, patience=2)
    assert run.correct.shape == (8, 32) and len(run.history.val_loss) == 8
    last = run.stop_epoch if run.stop_epoch is not None else 7
    assert run.kept_epoch == int(np.argmin(run.history.val_loss[: last + 1]))
    assert run.correct[-1].mean() == pytest.approx(run.history.val_accuracy[-1])
    fig = plot_watched_run(run)
    assert len(fig.axes) == 2


def test_ledger_assembles_saved_stages_and_this_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    row = {"rule": "r", "experiment": "e", "measured": "m", "effect": "+1", "verdict": "holds"}
    results.save_results("02_baselines", "d", {"ledger": [row]})
    results.save_results("06_squeeze", "d", {"ledger": [{**row, "rule": "stale"}]})
    rows = assemble("d", "06_squeeze", [{**row, "verdict": "reversed (note)"}])
    assert [r["stage"] for r in rows] == ["02_baselines", "06_squeeze"]
    text = overview(rows, "d")
    assert "2 rules from 2 stages" in text and "01_data" in text
    assert "holds: 1" in text and "reversed: 1" in text


def test_yours_if_it_passes(capsys) -> None:
    def mine() -> int:
        return 1

    def ref() -> int:
        return 2

    def boom(f):  # noqa: ANN001, ANN202
        raise RuntimeError

    assert yours_if_it_passes(lambda f: True, mine, ref, "f") is mine
    assert yours_if_it_passes(lambda f: print("noise") or False, mine, ref, "f") is ref
    assert yours_if_it_passes(boom, mine, ref, "f") is ref
    out = capsys.readouterr().out
    assert "using your f" in out and "noise" not in out and "the reference f" in out
