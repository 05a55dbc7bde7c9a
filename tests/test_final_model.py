"""The anchor, the final model, their training recipes and the benchmark's report."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import final_model as fm
from course_utils import final_model_report as fmr
from course_utils.data import Split, load_data
from course_utils.evidence import compare_paired


def _tiny(n: int = 64, classes: int = 3, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(
        torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, classes, (n,), generator=g)
    )


def test_anchor_is_the_pytorch_example() -> None:
    model = fm.AnchorNet((1, 28, 28), 10)
    # main.py of pytorch/examples/mnist: 1,199,882 parameters
    assert sum(p.numel() for p in model.parameters()) == 1_199_882
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.25, 0.5]


def test_final_net_shapes_and_batch_norm() -> None:
    model = fm.FinalNet((3, 32, 32), 7, width=8)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 5
    with pytest.raises(ValueError, match="kind"):
        fm.build_model(fm.Recipe("other"), (1, 28, 28), 10)


def test_per_image_affine_draws_per_image_and_fills_with_the_background() -> None:
    torch.manual_seed(0)
    image = torch.zeros(1, 28, 28)
    image[:, 10:18, 12:16] = 1.0
    out = fm.PerImageAffine(degrees=20, translate=0.1, fill=-0.5)(torch.stack([image] * 4))
    assert out.shape == (4, 1, 28, 28)
    assert not torch.allclose(out[0], out[1])  # a fresh draw per image
    flat = fm.PerImageAffine(degrees=20, translate=0.1, fill=-0.5)(torch.full((2, 1, 28, 28), -0.5))
    assert torch.allclose(flat, torch.full_like(flat, -0.5))
    same = fm.PerImageAffine(degrees=0, translate=0, scale=(1, 1))(torch.stack([image] * 2))
    assert torch.allclose(same, torch.stack([image] * 2))


@pytest.mark.parametrize("kind", ["anchor", "final"])
def test_run_recipe_trains_scores_and_times(kind: str) -> None:
    recipe = replace(fm.ANCHOR if kind == "anchor" else fm.FINAL, epochs=1, width=4)
    train, test = _tiny(64), _tiny(32, seed=1)
    result = fm.run_recipe(recipe, train, test, 3, seed=0)
    assert len(result.correct) == 32 and set(result.correct) <= {0, 1}
    assert result.accuracy == pytest.approx(np.mean(result.correct))
    assert result.cpu_seconds > 0 and result.threads == torch.get_num_threads() == 1
    again = fm.run_recipe(recipe, train, test, 3, seed=0)
    assert again.correct == result.correct  # same seed, same run


def test_course_splits_join_train_and_val() -> None:
    data = load_data(allow_download=False)
    train, test, classes = fm.course_splits(data)
    assert len(train) == len(data.train) + len(data.val) and len(test) == len(data.test)
    assert classes == data.num_classes
    assert abs(float(train.images[: len(data.train)].mean())) < 1e-3  # train statistics


def _report(anchor: list[float], final: list[float], cpu: tuple[float, float]) -> dict:
    runs = []
    for label, accs, seconds in (("a", anchor, cpu[0]), ("f", final, cpu[1])):
        for seed, acc in enumerate(accs):
            correct = [1] * round(100 * acc) + [0] * (100 - round(100 * acc))
            runs.append(
                {
                    "recipe": label,
                    "seed": seed,
                    "accuracy": acc,
                    "cpu_seconds": seconds,
                    "correct": correct,
                }
            )
    return {
        "date": "2026-01-01T00:00",
        "machine": "test",
        "parallel_runs": 1,
        "load_average_at_start": [0, 0, 0],
        "load_average_at_end": [0, 0, 0],
        "recipes": {"a": {"kind": "anchor"}, "f": {"kind": "final"}},
        "runs": runs,
    }


def test_report_compares_paired_by_seed_and_checks_the_goal() -> None:
    report = _report([0.96, 0.97, 0.97], [0.99, 0.99, 0.99], (100.0, 150.0))
    cmp = fmr.comparison(report)
    oracle = compare_paired([0.99, 0.99, 0.99], [0.96, 0.97, 0.97], min_effect=fmr.MIN_EFFECT)
    assert cmp == oracle
    summary = fmr.summarise(report)
    assert summary["cpu_ratio"] == pytest.approx(1.5)
    assert summary["goal_met"] is True
    assert summary["recipes"]["f"]["mean_accuracy"] == pytest.approx(0.99)
    slow = fmr.summarise(_report([0.96] * 3, [0.99] * 3, (100.0, 250.0)))
    assert slow["goal_met"] is False  # accurate but more than 2x the CPU
    assert fmr.mean_correct(report, "final").shape == (100,)
    row = fmr.anchor_ledger_row(report)
    assert row["verdict"] == cmp.verdict and "95% interval" in row["effect"]
    assert "CPU ratio 1.50x" in row["measured"]
    page = fmr.to_markdown({**report, "summary": summary})
    assert "| f | 99.0%, 99.0%, 99.0% |" in page and "met" in page


def test_load_report_and_its_path(tmp_path: Path, repo_root: Path) -> None:
    assert fmr.load_report(tmp_path / "missing.json") is None
    (tmp_path / "r.json").write_text(json.dumps({"runs": []}))
    assert fmr.load_report(tmp_path / "r.json") == {"runs": []}
    (tmp_path / "d.json").write_text(json.dumps({"dataset": "mnist_5k"}))
    assert fmr.load_report(tmp_path / "d.json", "mnist_5k") is not None
    assert fmr.load_report(tmp_path / "d.json", "cifar10") is None
    assert fmr.load_report(None) is None
    assert fmr.report_path(repo_root) == repo_root / "benchmarks" / "results" / "final_model.json"


@pytest.mark.slow
def test_benchmark_script_runs_on_a_tiny_budget(tmp_path: Path, repo_root: Path) -> None:
    sys.path.insert(0, str(repo_root / "benchmarks"))
    import bench_final_model

    out = tmp_path / "final.json"
    bench_final_model.main(
        [
            "--seeds",
            "2",
            "--jobs",
            "1",
            "--only",
            "final",
            "--final-epochs",
            "1",
            "--final-width",
            "4",
        ]
        + ["--json", str(out), "--md", str(tmp_path / "final.md")]
    )
    report = json.loads(out.read_text())
    assert [r["seed"] for r in report["runs"]] == [0, 1]
    assert report["threads_per_run"] == 1 and "course final model" in report["summary"]["recipes"]
