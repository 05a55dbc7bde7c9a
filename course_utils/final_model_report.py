"""Summaries of the final-model benchmark (``benchmarks/bench_final_model.py``) for its table and
the stage-6 notebook.

A report is a dict with ``runs`` (one per recipe and seed: ``recipe``, ``seed``, ``accuracy``,
``cpu_seconds``, ``correct``) and, once summarised, ``summary``. The comparison of the final model
with the anchor goes through ``course_utils.evidence.compare_paired``, paired by seed, with the
minimal effect ``MIN_EFFECT`` (half a point of test accuracy) stated here, before any run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from course_utils.evidence import Comparison, compare_paired

MIN_EFFECT = 0.005  # half a point of test accuracy
GOAL_ACCURACY = 0.988  # mean over seeds
GOAL_CPU_RATIO = 2.0  # final model's CPU seconds / the anchor's
ANCHOR_KIND, FINAL_KIND = "anchor", "final"


def _by_recipe(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in report["runs"]:
        groups.setdefault(run["recipe"], []).append(run)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in groups.items()}


def _label(report: dict[str, Any], kind: str) -> str:
    return next(label for label, r in report["recipes"].items() if r["kind"] == kind)


def comparison(report: dict[str, Any]) -> Comparison:
    """Final minus anchor test accuracy, paired by seed (seeds both recipes ran)."""
    groups = _by_recipe(report)
    anchor = {r["seed"]: r["accuracy"] for r in groups[_label(report, ANCHOR_KIND)]}
    final = {r["seed"]: r["accuracy"] for r in groups[_label(report, FINAL_KIND)]}
    seeds = sorted(anchor.keys() & final.keys())
    return compare_paired(
        [final[s] for s in seeds], [anchor[s] for s in seeds], min_effect=MIN_EFFECT
    )


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Per recipe: accuracies by seed, mean, mean CPU seconds; and, when both recipes ran, the paired
    comparison, the CPU ratio and whether the goal (mean >= 98.8% within 2x the CPU) is met."""
    summary: dict[str, Any] = {"recipes": {}}
    for label, runs in _by_recipe(report).items():
        summary["recipes"][label] = {
            "seeds": [r["seed"] for r in runs],
            "accuracy": [r["accuracy"] for r in runs],
            "mean_accuracy": float(np.mean([r["accuracy"] for r in runs])),
            "cpu_seconds": [r["cpu_seconds"] for r in runs],
            "mean_cpu_seconds": float(np.mean([r["cpu_seconds"] for r in runs])),
        }
    kinds = {r["kind"] for r in report["recipes"].values()}
    if {ANCHOR_KIND, FINAL_KIND} <= kinds:
        anchor = summary["recipes"][_label(report, ANCHOR_KIND)]
        final = summary["recipes"][_label(report, FINAL_KIND)]
        cmp = comparison(report)
        ratio = final["mean_cpu_seconds"] / anchor["mean_cpu_seconds"]
        summary["comparison"] = {
            "effect": cmp.effect,
            "low": cmp.low,
            "high": cmp.high,
            "verdict": cmp.verdict,
            "text": cmp.summary(scale=100, unit=" points"),
        }
        summary["cpu_ratio"] = ratio
        summary["goal_met"] = bool(
            final["mean_accuracy"] >= GOAL_ACCURACY and ratio <= GOAL_CPU_RATIO
        )
    return summary


def load_report(path: str | Path | None, dataset: str | None = None) -> dict[str, Any] | None:
    """The saved benchmark report, or None if it has not been run (or not shipped), or if it was
    made on another ``dataset`` than the one given."""
    if path is None or not Path(path).is_file():
        return None
    report = json.loads(Path(path).read_text())
    if dataset is not None and report.get("dataset", dataset) != dataset:
        return None
    return report


def table_rows(report: dict[str, Any]) -> list[str]:
    """Markdown table lines: one row per recipe (accuracy by seed, mean, CPU seconds)."""
    lines = [
        "| recipe | test accuracy by seed | mean | CPU s per run (1 thread) |",
        "|---|---|---|---|",
    ]
    for label, s in summarise(report)["recipes"].items():
        accs = ", ".join(f"{100 * a:.1f}%" for a in s["accuracy"])
        cpu = ", ".join(f"{c:.0f}" for c in s["cpu_seconds"])
        lines.append(
            f"| {label} | {accs} | {100 * s['mean_accuracy']:.2f}% | "
            f"{cpu} (mean {s['mean_cpu_seconds']:.0f}) |"
        )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """The benchmark's page: how it was run, the table, the paired comparison and the goal."""
    summary = report.get("summary") or summarise(report)
    lines = [
        "# Final model vs the anchor (PyTorch MNIST example)",
        "",
        "Made by `python benchmarks/bench_final_model.py` (`make bench-final`): both recipes of "
        "`course_utils/final_model.py` trained on the course's train+val images and scored on its "
        "test split, one process and one torch thread per run, CPU seconds by `time.process_time` "
        "over the training.",
        "",
        f"- date {report['date']}; {report['machine']}; {report['parallel_runs']} runs at once",
        f"- load average at start {report['load_average_at_start']}, at end "
        f"{report['load_average_at_end']} (the machine was shared: CPU seconds of a one-thread "
        "process barely move with load, wall time does)",
        "",
        *table_rows(report),
        "",
    ]
    if "comparison" in summary:
        lines += [
            f"Final model - anchor, paired by seed: {summary['comparison']['text']}.",
            "",
            f"CPU ratio final / anchor: {summary['cpu_ratio']:.2f}x. Goal (mean >= "
            f"{100 * GOAL_ACCURACY:.1f}% within {GOAL_CPU_RATIO:g}x the anchor's CPU time): "
            f"{'met' if summary['goal_met'] else 'not met'}.",
            "",
        ]
    return "\n".join(lines)


def report_path(root: Path | None = None) -> Path | None:
    """``benchmarks/results/final_model.json`` of the course checkout (None outside a checkout)."""
    from course_utils.results import course_root

    root = root or course_root()
    return None if root is None else root / "benchmarks" / "results" / "final_model.json"


def recipe_summary(report: dict[str, Any], kind: str) -> dict[str, Any]:
    """The summary of the recipe of ``kind`` ("anchor" or "final"): accuracies, means, CPU seconds."""
    return summarise(report)["recipes"][_label(report, kind)]


def mean_correct(report: dict[str, Any], kind: str) -> np.ndarray:
    """Per test image, the share of the recipe's seeds that got it right, shape (N,)."""
    runs = _by_recipe(report)[_label(report, kind)]
    return np.mean([r["correct"] for r in runs], axis=0)


def plot_report(report: dict[str, Any]):  # noqa: ANN201
    """Test accuracy against CPU seconds, one point per run, one colour per recipe."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, runs in _by_recipe(report).items():
        ax.plot(
            [r["cpu_seconds"] for r in runs],
            [100 * r["accuracy"] for r in runs],
            "o",
            label=label,
        )
    ax.axhline(100 * GOAL_ACCURACY, color="gray", ls=":", label="goal (mean over seeds)")
    ax.set(xlabel="CPU seconds of training (1 thread)", ylabel="test accuracy (%)")
    ax.set_title("final model vs anchor, one point per seed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def anchor_ledger_row(report: dict[str, Any]) -> dict[str, str]:
    """The ledger row "final model vs the anchor": the anchor's measured mean and CPU time, the final
    model's, and the effect and verdict from ``comparison`` (paired by seed)."""
    anchor, final = recipe_summary(report, ANCHOR_KIND), recipe_summary(report, FINAL_KIND)
    n = len(final["seeds"])
    ratio = final["mean_cpu_seconds"] / anchor["mean_cpu_seconds"]
    measured = (
        f"test accuracy {100 * final['mean_accuracy']:.2f}% (final, mean of {n} seeds, "
        f"{final['mean_cpu_seconds']:.0f} CPU s) vs {100 * anchor['mean_accuracy']:.2f}% (anchor, "
        f"{anchor['mean_cpu_seconds']:.0f} CPU s); CPU ratio {ratio:.2f}x"
    )
    return comparison(report).ledger(
        "the final model beats what a user would pick instead (PyTorch's MNIST example)",
        f"benchmarks/bench_final_model.py: both trained on train+val, {n} seeds each, 1 thread",
        measured,
        scale=100,
        unit=" points",
    )
