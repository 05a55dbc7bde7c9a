"""Time what a learner waits for: `course doctor`, `course check NN` and the lab's Validate, per stage.

    python benchmarks/bench_learner.py [--stages 01 03] [--no-before]

Each stage is measured on the learner's worst case: the released notebook with every exercise
answered (the solutions' answers), so every check runs in full. "now" is what the commands do today:
`course check NN` and the course's Validate (`python -m course_utils.lab_validate --no-checksums`,
the subprocess the lab's Validate button runs) execute only the cells the tests need. "before" is what they did until issue 16:
`course check` ran the whole notebook (``grading.selfcheck.check_notebook``) and Validate was
nbgrader's own (``nbgrader validate``, the same Validator the stock button runs, whole notebook).
`course doctor` is timed as it answers by default and with ``--full`` (the slow probes it used to
run every time). Each number is one cold run in a fresh process, wall time. Budgets: 30 s per stage
for check and Validate, 10 s for the doctor.

Writes ``benchmarks/learner.md``. Not a test: no test asserts these times.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course_utils.grading.layout import stages  # noqa: E402

STAGE_BUDGET_S = 30.0
DOCTOR_BUDGET_S = 10.0
BIN = Path(sys.executable).parent


def answered(stage: str, folder: Path) -> Path:
    """The released notebook of ``stage`` with the solutions' answers, in ``folder/stage/``."""
    released = nbformat.read(REPO / "notebooks" / stage / f"{stage}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / stage / f"{stage}.ipynb", as_version=4)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in released.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    target = folder / stage
    shutil.copytree(REPO / "notebooks" / stage, target)
    path = target / f"{stage}.ipynb"
    nbformat.write(released, path)
    return path


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
    }
    env.pop("NBGRADER_EXECUTION", None)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, result.stdout + result.stderr


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


OLD_CHECK = (
    "import sys; from pathlib import Path; "
    "from course_utils.grading.selfcheck import check_notebook; "
    "v = check_notebook(Path(sys.argv[1])); print(sum(x.passed for x in v), len(v))"
)


def measure_stage(stage: str, before: bool, tmp: Path) -> dict[str, float | str]:
    path = answered(stage, tmp)
    row: dict[str, float | str] = {"stage": stage, "load": os.getloadavg()[0]}
    seconds, out = timed(python("-m", "course_utils.cli", "check", stage, str(path)), REPO)
    row["check"] = seconds
    row["check_result"] = out.strip().splitlines()[-1]
    # What the Validate handler runs once it has checked the checksums (in the server, where
    # nbgrader is already imported).
    command = python("-m", "course_utils.lab_validate", "--no-checksums", str(path))
    seconds, out = timed(command, path.parent)
    row["validate"] = seconds
    row["validate_ok"] = "ok" if out.strip().endswith("{}") else "FAILED: " + out[-300:]
    if before:
        row["check_before"], _ = timed(python("-c", OLD_CHECK, str(path)), REPO)
        row["validate_before"], _ = timed([str(BIN / "nbgrader"), "validate", str(path)], REPO)
    return row


def verdict(seconds: float, budget: float) -> str:
    return "ok" if seconds <= budget else f"over {budget:g} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="*", help="stage numbers (default: all)")
    parser.add_argument("--no-before", action="store_true", help="skip the old commands")
    args = parser.parse_args()
    chosen = [s for s in stages(REPO) if not args.stages or s[:2] in args.stages]
    before = not args.no_before

    load = os.getloadavg()[0]
    doctor, _ = timed(python("-m", "course_utils.cli", "doctor"), REPO)
    doctor_full, _ = timed(python("-m", "course_utils.cli", "doctor", "--full"), REPO)
    print(f"course doctor {doctor:.1f} s, --full {doctor_full:.1f} s", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-learner-") as tmp:
        for stage in chosen:
            rows.append(measure_stage(stage, before, Path(tmp)))
            print(rows[-1], flush=True)

    lines = [
        "# What a learner waits for",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), "
        f"torch {torch.__version__}, by `benchmarks/bench_learner.py` (one cold run each, wall time, "
        "'load' is the 1-minute load average when the row started, other work included; above the "
        "core count every number stretches). Notebook: the release with every exercise "
        "answered.",
        "",
        f"`course doctor`: **{doctor:.1f} s** ({verdict(doctor, DOCTOR_BUDGET_S)}, load {load:.1f}); "
        f"with `--full` (numba kernel, `jupyter ... list` subprocesses): {doctor_full:.1f} s.",
        "",
        "| stage | load | `course check NN` (s) | Validate (s) | budget | check before (s) | "
        "Validate before (s) | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        worst = max(float(row["check"]), float(row["validate"]))
        old = (
            f"{row['check_before']:.1f} | {row['validate_before']:.1f}"
            if before
            else "not measured | not measured"
        )
        lines.append(
            f"| {row['stage']} | {row['load']:.1f} | {row['check']:.1f} | {row['validate']:.1f} | "
            f"{verdict(worst, STAGE_BUDGET_S)} ({STAGE_BUDGET_S:g} s) | {old} | "
            f"{row['check_result']}; Validate {row['validate_ok']} |"
        )
    lines += [
        "",
        '"before": `course check` ran every cell (`grading.selfcheck.check_notebook`); Validate was '
        "nbgrader's (`nbgrader validate`, whole notebook, about 2 s of it nbgrader's own start-up).",
        "",
    ]
    (REPO / "benchmarks" / "learner.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
