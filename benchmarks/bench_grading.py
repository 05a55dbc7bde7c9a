"""Time ``course grade`` on a synthetic class: --jobs 1 against --jobs N, and the per-submission cost.

The class: ``--students`` submissions of one real stage (default ``01_data``), a third each of the
solution, the untouched release and the solution with the stage's planted bug (tests/planted_bugs.py),
so the grades differ. The same class is graded from scratch with ``jobs=1`` and with ``jobs=N``; the
script fails if any grade differs. It also times what every submission pays before the first line
of student code runs:

* starting Python inside the bubblewrap sandbox against starting it outside;
* the setup cell's imports (torch, course_utils) inside the sandbox;
* nbgrader's own cost: autograde + feedback of a notebook with one empty cell.

Writes ``benchmarks/grading.md``. Run it alone on the machine: ``python benchmarks/bench_grading.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course_utils.grading import sandbox  # noqa: E402
from course_utils.grading.autograde import grade  # noqa: E402
from tests.course_dir import make_course, with_bug  # noqa: E402


def make_class(stage: str, students: int, folder: Path) -> None:
    solution_path = REPO / "solutions" / stage / f"{stage}.ipynb"
    versions = {
        "solution": nbformat.read(solution_path, as_version=4),
        "untouched": nbformat.read(REPO / "notebooks" / stage / f"{stage}.ipynb", as_version=4),
        "bug": with_bug(solution_path, stage),
    }
    kinds = list(versions)
    for i in range(students):
        kind = kinds[i % len(kinds)]
        target = folder / f"s{i:02d}_{kind}"
        target.mkdir(parents=True)
        nbformat.write(versions[kind], target / f"{stage}.ipynb")


def time_class(stage: str, students: int, jobs: int, tmp: Path) -> tuple[float, dict, list[float]]:
    base = tmp / f"jobs{jobs}"
    course = make_course(REPO, base / "course")
    make_class(stage, students, base / "subs")
    start = time.perf_counter()
    report = grade(course, base / "subs", jobs=jobs)
    seconds = time.perf_counter() - start
    grades = {(g.student, g.stage): (g.score, g.cells, g.status) for g in report.grades}
    per_submission = [
        r["seconds"]
        for r in (
            __import__("json").loads(p.read_text())
            for p in (course / "_grading" / "results").glob("*/*.json")
        )
    ]
    return seconds, grades, per_submission


def python_start(sandboxed: bool, code: str, tmp: Path, repeats: int = 5) -> float:
    work, runtime = tmp / "work", tmp / "runtime"
    work.mkdir(exist_ok=True)
    runtime.mkdir(exist_ok=True)
    if sandboxed:
        argv = sandbox.kernel_argv(work, runtime)
        argv = argv[: argv.index("-m")] + ["-c", code]
    else:
        argv = [sys.executable, "-c", code]
    times = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env, cwd=work)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def empty_notebook_cost(tmp: Path) -> float:
    """Seconds to grade (autograde + feedback) a one-cell notebook: nbgrader and kernel start."""
    course = tmp / "empty" / "course"
    (course / "solutions" / "00_empty").mkdir(parents=True)
    shutil.copy2(REPO / "nbgrader_config.py", course)
    (course / "course_utils").mkdir()
    cell = nbformat.v4.new_code_cell(
        "x = 1",
        metadata={
            "nbgrader": {
                "grade": True,
                "grade_id": "t",
                "locked": True,
                "points": 1,
                "schema_version": 3,
                "solution": False,
                "task": False,
            }
        },
    )
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, course / "solutions" / "00_empty" / "00_empty.ipynb")
    subs = tmp / "empty" / "subs"
    for i in range(3):
        (subs / f"e{i}").mkdir(parents=True)
        nbformat.write(nb, subs / f"e{i}" / "00_empty.ipynb")
    grade(course, subs, jobs=1)
    import json

    results = [
        json.loads(p.read_text()) for p in (course / "_grading" / "results").glob("*/*.json")
    ]
    return statistics.median(r["seconds"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="01_data")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        serial, grades1, each1 = time_class(args.stage, args.students, 1, tmp)
        rows.append(("1", serial, statistics.mean(each1)))
        parallel, gradesn, eachn = time_class(args.stage, args.students, args.jobs, tmp)
        rows.append((str(args.jobs), parallel, statistics.mean(eachn)))
        same = grades1 == gradesn
        plain = python_start(False, "pass", tmp)
        boxed = python_start(True, "pass", tmp) if sandbox.available() else float("nan")
        imports = "import torch, course_utils.checks, course_utils.data"
        boxed_imports = python_start(True, imports, tmp) if sandbox.available() else float("nan")
        empty = empty_notebook_cost(tmp)

    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs"
    lines = [
        "# Grading a class: `course grade --jobs N`",
        "",
        "Written by `python benchmarks/bench_grading.py` (run alone). A synthetic class of "
        f"{args.students} submissions of `{args.stage}` (a third each: the solution, the untouched "
        "release, the planted bug), graded from scratch, each kernel in the bubblewrap sandbox "
        f"({'on' if sandbox.available() else 'NOT available here'}), one CPU thread per worker.",
        "",
        f"Machine: {machine}; {time.strftime('%Y-%m-%d')}.",
        "",
        "| jobs | wall-clock s | s per submission (class) | mean s per notebook (worker) | speed-up |",
        "|---:|---:|---:|---:|---:|",
    ]
    for jobs, seconds, each in rows:
        lines.append(
            f"| {jobs} | {seconds:.1f} | {seconds / args.students:.2f} | {each:.1f} | "
            f"{serial / seconds:.2f}x |"
        )
    lines += [
        "",
        f"Same grades with --jobs 1 and --jobs {args.jobs}: **{'yes' if same else 'NO'}** "
        f"({len(grades1)} submissions compared, score and every test cell).",
        "",
        "One grading keeps two processes busy at once: the sandboxed kernel runs the notebook while "
        "the trusted scorer and its answer process score the answers, so `--jobs 1` already uses "
        "more than one core, and on a machine with few cores `--jobs N` gains less than N times.",
        "",
        "What every submission pays before student code runs (medians):",
        "",
        "| step | s |",
        "|---|---:|",
        f"| start Python, no sandbox | {plain:.2f} |",
        f"| start Python in the bubblewrap sandbox | {boxed:.2f} |",
        f"| sandbox + the setup cell's imports (torch, course_utils) | {boxed_imports:.2f} |",
        f"| nbgrader autograde + feedback of a one-cell notebook (processes, kernel) | {empty:.2f} |",
        "",
    ]
    out = REPO / "benchmarks" / "grading.md"
    old, cluster = out.read_text() if out.exists() else "", "<!-- bench:cluster -->"
    kept = "\n" + old[old.index(cluster) :] if cluster in old else ""  # bench_cluster.py's
    out.write_text("\n".join(lines) + kept)
    print("\n".join(lines))
    if not same:
        raise SystemExit("grades differ between --jobs 1 and --jobs N")


if __name__ == "__main__":
    main()
