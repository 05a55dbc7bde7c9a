"""Time every solutions notebook, and grading one complete submission; write the tables.

    python benchmarks/bench_notebooks.py [--stages 01 02] [--no-grading] [--timings-only]

For each stage: the wall time of running ``solutions/<stage>/<stage>.ipynb`` top to bottom in a fresh
kernel (nbclient, the course's default dataset), and the time ``course grade`` spends on that same
notebook submitted by one student (sandboxed kernel, trusted scoring, feedback; training shrinks
under NBGRADER_EXECUTION, so grading must cost at most 1.3x a run). Budgets: 120 s per notebook, 600 s for the course.

Results go to ``benchmarks/notebooks.md``; the notebooks' saved numbers go to ``benchmarks/results/``
and the ledger assembled from them to ``benchmarks/ledger.md``. The README quotes both tables between
the ``<!-- bench:notebooks -->`` and ``<!-- ledger -->`` markers, which this script rewrites.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course_utils.grading.layout import stages  # noqa: E402
from course_utils.results import ledger_markdown, load_ledger  # noqa: E402

NOTEBOOK_BUDGET_S = 120.0
COURSE_BUDGET_S = 600.0
GRADING_RATIO = 1.3
RESULTS = REPO / "benchmarks" / "results"


def run_notebook(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return time.perf_counter() - start


def grade_one(stage: str) -> float:
    """Seconds ``course grade`` spends on one student's complete submission of ``stage``: the
    submission's own work (prepare, the sandboxed notebook run, trusted scoring, feedback), not the
    course-level set-up every run pays once (the stage's gradebook entry and template)."""
    from course_utils.grading.autograde import grade

    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        shutil.copy2(REPO / "nbgrader_config.py", course)
        shutil.copytree(REPO / "solutions" / stage, course / "solutions" / stage)
        (course / "course_utils").mkdir()
        submission = Path(tmp) / "subs" / "student" / stage
        submission.mkdir(parents=True)
        shutil.copy2(REPO / "solutions" / stage / f"{stage}.ipynb", submission)
        report = grade(course, submission.parent.parent)
        result = report.grade("student", stage)
        if result.status != "graded" or result.score != result.max_score:
            raise RuntimeError(f"{stage}: the solution graded {result.score}/{result.max_score}")
        import json

        saved = json.loads(
            (course / "_grading" / "results" / "student" / f"{stage}.json").read_text()
        )
        return float(saved["seconds"])


def replace_block(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker} -->\n).*?(<!-- /{marker} -->)", re.S)
    if not pattern.search(text):
        return text
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="*", help="stage prefixes (default: all)")
    parser.add_argument("--no-grading", action="store_true", help="skip the autograde timing")
    parser.add_argument(
        "--timings-only",
        action="store_true",
        help="keep benchmarks/results/ and the ledger as they are (the notebooks save elsewhere)",
    )
    args = parser.parse_args()
    os.environ["COURSE_RESULTS_DIR"] = (
        tempfile.mkdtemp(prefix="bench-results-") if args.timings_only else str(RESULTS)
    )
    os.environ.pop("NBGRADER_EXECUTION", None)
    chosen = [s for s in stages(REPO) if not args.stages or s.split("_")[0] in args.stages]
    rows = []
    for stage in chosen:
        run_s = run_notebook(REPO / "solutions" / stage / f"{stage}.ipynb")
        grade_s = None if args.no_grading else grade_one(stage)
        rows.append((stage, run_s, grade_s))
        print(
            f"{stage}: run {run_s:.1f} s" + (f", grade {grade_s:.1f} s" if grade_s else ""),
            flush=True,
        )
    total = sum(r[1] for r in rows)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, dataset mnist_5k.",
        "",
        "| stage | run top to bottom (s) | budget | autograde one submission (s) | grade / run |",
        "|---|---|---|---|---|",
    ]
    for stage, run_s, grade_s in rows:
        ok = "ok" if run_s <= NOTEBOOK_BUDGET_S else "OVER"
        if grade_s is None:
            lines.append(f"| {stage} | {run_s:.1f} | {ok} (120 s) | - | - |")
        else:
            ratio = grade_s / run_s
            verdict = "ok" if ratio <= GRADING_RATIO else "OVER 1.3x"
            lines.append(
                f"| {stage} | {run_s:.1f} | {ok} (120 s) | {grade_s:.1f} | {ratio:.2f}x {verdict} |"
            )
    ok = "ok" if total <= COURSE_BUDGET_S else "OVER"
    lines.append(f"| **course** | **{total:.1f}** | {ok} (600 s) | | |")
    table = "\n".join(lines) + "\n"
    (REPO / "benchmarks" / "notebooks.md").write_text("# Notebook timings\n\n" + table)
    readme = REPO / "README.md"
    text = replace_block(readme.read_text(), "bench:notebooks", table)
    if not args.timings_only:
        ledger = ledger_markdown(load_ledger("mnist_5k", RESULTS)) + "\n"
        (REPO / "benchmarks" / "ledger.md").write_text("# Results ledger (mnist_5k)\n\n" + ledger)
        text = replace_block(text, "ledger", ledger)
    readme.write_text(text)
    print(table)


if __name__ == "__main__":
    main()
