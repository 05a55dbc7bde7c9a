"""Train the anchor (the PyTorch MNIST example) and the course's final model side by side.

    python benchmarks/bench_final_model.py [--seeds 3] [--jobs 3] [--final-epochs 20] [--final-lr 4e-3]

Both recipes (``course_utils.final_model``) train on the course's train+val images and are scored on
its test split, seeds 0..n-1 each. Every run is one process with ONE torch thread, so its CPU
seconds (``time.process_time`` over the training) do not depend on how many other processes share the
machine; ``--jobs`` runs that many at once. The comparison goes through ``course_utils.evidence``,
paired by seed. Writes ``benchmarks/results/final_model.json`` (the numbers the stage-6 notebook
loads) and ``benchmarks/final_model.md``. Long: about 3 x (100 + 200) CPU seconds on one core.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course_utils import final_model  # noqa: E402
from course_utils.final_model_report import summarise, to_markdown  # noqa: E402

OUT_JSON = REPO / "benchmarks" / "results" / "final_model.json"
OUT_MD = REPO / "benchmarks" / "final_model.md"


def one_run(recipe: final_model.Recipe, seed: int, dataset: str | None) -> dict:
    """Train and score one (recipe, seed) in this process with one thread."""
    import torch

    torch.set_num_threads(1)
    from course_utils.data import load_data

    train, test, classes = final_model.course_splits(load_data(dataset))
    load = os.getloadavg()[0]
    run = asdict(final_model.run_recipe(recipe, train, test, classes, seed))
    run["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3, help="runs at once (one thread each)")
    parser.add_argument("--final-epochs", type=int, default=final_model.FINAL.epochs)
    parser.add_argument("--final-lr", type=float, default=final_model.FINAL.lr)
    parser.add_argument("--final-width", type=int, default=final_model.FINAL.width)
    parser.add_argument("--only", choices=["anchor", "final"], default=None)
    parser.add_argument("--dataset", default=None, help="default: COURSE_DATASET or mnist_5k")
    parser.add_argument("--json", type=Path, default=OUT_JSON)
    parser.add_argument("--md", type=Path, default=OUT_MD)
    parser.add_argument(
        "--rewrite",
        action="store_true",
        help="train nothing: recompute the summary of --json and rewrite it and --md",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="keep the runs of the recipes not run now from this earlier report (with --only)",
    )
    args = parser.parse_args(argv)

    from course_utils.data import dataset_name

    dataset = dataset_name(args.dataset)
    if args.rewrite:
        report = json.loads(args.json.read_text())
        report.setdefault("dataset", dataset)
        write(report, args.json, args.md)
        return
    final = replace(
        final_model.FINAL, epochs=args.final_epochs, lr=args.final_lr, width=args.final_width
    )
    recipes = [r for r in (final_model.ANCHOR, final) if args.only in (None, r.kind)]
    jobs = [(r, s) for s in range(args.seeds) for r in recipes]
    load = os.getloadavg()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(one_run, r, s, dataset) for r, s in jobs]
        runs = []
        for (recipe, seed), future in zip(jobs, futures, strict=True):
            run = future.result()
            print(
                f"{recipe.label} seed {seed}: {run['accuracy']:.2%}, {run['cpu_seconds']:.0f} CPU s"
            )
            runs.append(run)
    report = {
        "dataset": dataset,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "threads_per_run": 1,
        "parallel_runs": args.jobs,
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "recipes": {r.label: asdict(r) for r in recipes},
        "runs": runs,
    }
    if args.merge is not None:
        earlier = json.loads(args.merge.read_text())
        for label, recipe in earlier["recipes"].items():
            if label not in report["recipes"]:
                report["recipes"][label] = recipe
                report["runs"] += [r for r in earlier["runs"] if r["recipe"] == label]
                report["merged_from"] = f"{label}: run {earlier['date']} ({args.merge.name})"
    write(report, args.json, args.md)


def write(report: dict, json_path: Path, md_path: Path) -> None:
    """Summarise ``report`` and write it as JSON and as the Markdown page (printed too)."""
    report["summary"] = summarise(report)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
