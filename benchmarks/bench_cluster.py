"""Time ``course grade --cluster local:N`` for N = 1, 2, 4 and project a 1,000 x 6 class on 64 cores.

The class: ``--students`` submissions of one real stage (default ``01_data``; a third each of the
solution, the untouched release and the planted bug, as in ``bench_grading.py``), graded from
scratch on a ``LocalCluster`` of N single-threaded worker processes. The script fails if any run's
grades differ from the 1-worker run's. It also times the client's serial part: merging each result
into the gradebook (``autograde._finish``), which no number of workers speeds up.

The projection: ``students x stages`` gradings of the measured CPU seconds each (the 1-worker run's
busy CPU seconds of the whole machine during the run, per submission: every process of a grading,
and the run's own set-up, so an upper bound; scaled to the six stages' mean by the one-submission autograde times of
``benchmarks/notebooks.md``), spread over ``cores`` cores, against the
serial merge floor (``gradings x`` the measured merge seconds). Neither counts data transfer (a
submission is ~100 kB) nor stragglers.

Writes its section of ``benchmarks/grading.md`` (between ``<!-- bench:cluster -->`` markers).
Run it by hand, alone on the machine: ``python benchmarks/bench_cluster.py``. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_grading import make_class  # noqa: E402
from course_utils.grading import autograde, sandbox  # noqa: E402
from tests.course_dir import make_course  # noqa: E402

BEGIN, END = "<!-- bench:cluster -->", "<!-- /bench:cluster -->"
IDLE_WINDOW = 5.0  # seconds of /proc/stat before the runs: is anything else using the cores?


def time_cluster(stage: str, students: int, workers: int, tmp: Path) -> dict:
    """Grade the class on ``local:workers``; wall-clock, grades, worker and merge seconds."""
    base = tmp / f"workers{workers}"
    course = make_course(REPO, base / "course")
    make_class(stage, students, base / "subs")
    merges: list[float] = []
    finish = autograde._finish

    def timed_finish(*args, **kwargs) -> None:
        start = time.perf_counter()
        finish(*args, **kwargs)
        merges.append(time.perf_counter() - start)

    autograde._finish = timed_finish
    try:
        start, busy_start = time.perf_counter(), machine_busy_seconds()
        report = autograde.grade(course, base / "subs", cluster=f"local:{workers}")
        seconds = time.perf_counter() - start
        busy = machine_busy_seconds() - busy_start
    finally:
        autograde._finish = finish
    results = [json.loads(p.read_text()) for p in (course / "_grading" / "results").glob("*/*")]
    return {
        "seconds": seconds,
        "grades": {(g.student, g.stage): (g.score, g.cells, g.status) for g in report.grades},
        "each": statistics.mean(r["seconds"] for r in results),
        "cpu": busy / students,
        "merge": statistics.mean(merges),
    }


def machine_busy_seconds() -> float:
    """CPU seconds this machine has spent not idle since boot, all cores (Linux ``/proc/stat``).

    The difference over a run counts every process of the grading (job, sandboxed kernel, scorer,
    answer process, dask worker and client), which per-process accounting cannot: the kernel runs
    in a PID namespace of its own, whose CPU time never reaches the job's ``RUSAGE_CHILDREN``.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def stage_scale(stage: str) -> tuple[float, str]:
    """(six stages' mean one-submission autograde time / ``stage``'s, where it came from)."""
    table = (REPO / "benchmarks" / "notebooks.md").read_text()
    rows = re.findall(r"^\| (\d\d_\w+) \| [\d.]+ \| [^|]+\| ([\d.]+) \|", table, re.M)
    times = {name: float(value) for name, value in rows}
    if stage not in times or len(times) < 2:
        return 1.0, f"not found in benchmarks/notebooks.md: every stage costs as much as {stage}"
    mean = statistics.mean(times.values())
    source = (
        f"benchmarks/notebooks.md: one submission autogrades in {mean:.1f} s on average over "
        f"{len(times)} stages, {times[stage]:.1f} s for {stage}"
    )
    return mean / times[stage], source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="01_data")
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--class-size", type=int, default=1000)
    parser.add_argument("--stages", type=int, default=6)
    parser.add_argument("--cores", type=int, default=64)
    args = parser.parse_args()
    runs = {}
    before = machine_busy_seconds()
    time.sleep(IDLE_WINDOW)
    cores_busy = (machine_busy_seconds() - before) / IDLE_WINDOW  # other work, before we start
    with tempfile.TemporaryDirectory() as tmp_name:
        for workers in args.workers:
            runs[workers] = time_cluster(args.stage, args.students, workers, Path(tmp_name))
            print(f"local:{workers}: {runs[workers]['seconds']:.1f} s", flush=True)
    first = runs[args.workers[0]]
    same = all(run["grades"] == first["grades"] for run in runs.values())

    scale, source = stage_scale(args.stage)
    core_seconds = first["cpu"] * scale
    gradings = args.class_size * args.stages
    compute = gradings * core_seconds / args.cores
    merge = gradings * statistics.mean(run["merge"] for run in runs.values())
    busy = cores_busy > 0.25
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs"
    lines = [
        BEGIN,
        "## On a dask cluster: `course grade --cluster local:N`",
        "",
        "Written by `python benchmarks/bench_cluster.py` (by hand, not in CI). The same kind of "
        f"class ({args.students} submissions of `{args.stage}`: solution, untouched release, "
        "planted bug), graded from scratch on a `LocalCluster` of N worker processes with one "
        "thread each, kernels in the bubblewrap sandbox "
        f"({'on' if sandbox.available() else 'NOT available here'}). Wall-clock includes starting "
        "the cluster, the stage's gradebook entries and the bundle upload.",
        "",
        f"Machine: {machine}; {time.strftime('%Y-%m-%d %H:%M')}; {cores_busy:.2f} cores busy in the "
        f"{IDLE_WINDOW:g} s before the first run"
        + (
            " (other work shared these cores, so treat the times as upper bounds)."
            if busy
            else " (nothing else ran). One grading keeps two processes busy at once (the kernel "
            "and the trusted scorer with its answer process), so one worker already uses more "
            "than one core, and more workers than cores only queue."
        ),
        "",
        "| workers | wall-clock s | s per submission (class) | mean s per notebook (worker) "
        "| merge s per result (client) | speed-up |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for workers, run in runs.items():
        lines.append(
            f"| {workers} | {run['seconds']:.1f} | {run['seconds'] / args.students:.2f} | "
            f"{run['each']:.1f} | {run['merge']:.3f} | {first['seconds'] / run['seconds']:.2f}x |"
        )
    lines += [
        "",
        f"Same grades on every cluster size: **{'yes' if same else 'NO'}** "
        f"({len(first['grades'])} submissions compared, score, every test cell and status).",
        "",
        f"**Projection: {args.class_size:,} students x {args.stages} stages on {args.cores} cores.** "
        f"{gradings:,} gradings of {core_seconds:.1f} core-seconds each (the 1-worker run's "
        f"{first['cpu']:.1f} busy CPU seconds of the machine per submission, set-up included, x "
        f"{scale:.2f}; {source}) "
        f"on {args.cores} cores: **{compute / 3600:.2f} h** of grading. The client merges "
        f"results one at a time at the measured {merge / gradings:.3f} s each, {merge / 3600:.2f} h "
        f"in all, while the workers grade, so the class takes about "
        f"**{max(compute, merge) / 3600:.2f} h** (the larger of the two), against "
        f"{gradings * core_seconds / 2 / 3600:.1f} h on this machine's 2 cores.",
        END,
    ]
    section = "\n".join(lines) + "\n"
    out = REPO / "benchmarks" / "grading.md"
    text = out.read_text() if out.exists() else ""
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)
    print(section)
    if not same:
        raise SystemExit("grades differ between cluster sizes")


if __name__ == "__main__":
    main()
