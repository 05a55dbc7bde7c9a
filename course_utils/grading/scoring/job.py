"""Trusted scoring inside one grading job (``nbgrader_job.py``): start, score, record.

The job calls :func:`start` before nbgrader runs the notebook: it starts the *scorer*, a process of
its own (``python -m course_utils.grading.scoring.job``, trusted: outside the sandbox) that starts
the answer process, loads the student's answers into it and runs the checks, while the kernel runs
the notebook on the other core. Scoring needs nothing the kernel produces, so it finishes in the
kernel's shadow, and the job process itself never imports torch or the checks. After autograde,
:func:`finish` waits for the scorer's sheet, writes the points into the workspace's gradebook,
replaces each test cell's outputs in the autograded notebook by the trusted verdict, and saves the
sheet as ``trusted_scores.json`` for the worker. Feedback is generated afterwards, so it shows
these scores and lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from course_utils.grading.lifetime import die_with_parent
from course_utils.grading.scoring.sheet import HEADER, ScoreSheet
from course_utils.grading.startup import skip_slow_optional_imports

SHEET = "trusted_scores.json"
ANSWER_SANDBOX = "answer_sandbox.json"  # the sandbox command prefix the worker chose (a JSON list)
SCORED = "scorer_sheet.json"  # what the scorer hands the job (workspace root: not in the sandbox)


class ScoringFailed(RuntimeError):
    """The scorer ended without a sheet (it crashed, or was asked for what it cannot do)."""


class Scorer:
    """The scorer process of one job: started by :func:`start`, read by :func:`finish`."""

    def __init__(self, workspace: Path, process: subprocess.Popen) -> None:
        self.workspace = workspace
        self.process = process

    def wait(self) -> ScoreSheet:
        """The scorer's sheet; raises :class:`ScoringFailed` when it ended without one. No timeout
        here: the scorer's calls have their own, and the worker's notebook limit kills the job's
        whole process group, the scorer with it."""
        output, _ = self.process.communicate()
        sheet = self.workspace / SCORED
        if self.process.returncode != 0 or not sheet.exists():
            tail = (output or "").strip().splitlines()[-5:]
            raise ScoringFailed(
                f"the scorer exited with code {self.process.returncode}: " + " | ".join(tail)
            )
        return ScoreSheet.from_json(sheet.read_text())

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.communicate(timeout=10)


def start(
    workspace: Path, stage: str, student: str, *, isolate: bool, cell_timeout: float
) -> Scorer:
    """Start the scorer for ``student``'s ``stage``; its answer process is sandboxed when
    ``isolate``, by the command prefix the worker wrote to ``ANSWER_SANDBOX`` (the kernel's walls
    and cgroups). Call from a thread that outlives the scorer (it dies with that thread)."""
    command = [sys.executable, "-m", "course_utils.grading.scoring.job", str(workspace), stage]
    command += [student, f"--cell-timeout={cell_timeout:g}"] + (["--isolate"] if isolate else [])
    (workspace / SCORED).unlink(missing_ok=True)
    process = subprocess.Popen(
        command,
        cwd=workspace,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        preexec_fn=die_with_parent(),  # lifetime.py: it goes when the job goes
    )
    return Scorer(workspace, process)


def finish(workspace: Path, stage: str, student: str, scorer: Scorer, course_id: str) -> ScoreSheet:
    """Wait for the scorer; record in the gradebook and the autograded notebook, save the sheet."""
    sheet = scorer.wait()
    _record_in_gradebook(workspace, stage, student, sheet, course_id)
    autograded = workspace / "_grading" / "autograded" / student / stage / f"{stage}.ipynb"
    if autograded.exists():
        _rewrite_test_outputs(autograded, sheet)
    (workspace / SHEET).write_text(sheet.to_json())
    return sheet


def score(workspace: Path, stage: str, student: str, *, isolate: bool, cell_timeout: float) -> None:
    """The scorer's work (this module run as a program): score, write ``SCORED``."""
    from course_utils.grading.scoring.score import answer_process, score_submission

    source = workspace / "solutions" / stage / f"{stage}.ipynb"
    submitted = workspace / "_grading" / "submitted" / student / stage / f"{stage}.ipynb"
    scratch = workspace / "answers"
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg")
    prefix: list[str] = []
    if isolate:
        written = workspace / ANSWER_SANDBOX
        if not written.exists():
            raise RuntimeError(f"isolation asked for, but {written} is missing")
        prefix = [str(a) for a in json.loads(written.read_text())]
    process = answer_process(
        source,
        submitted,
        argv_prefix=prefix,
        env=env,
        cwd=str(scratch),
        cell_timeout=cell_timeout,
        call_timeout=cell_timeout,
    )
    try:
        sheet = score_submission(source, submitted, process=process)
    finally:
        process.close()
    draft = workspace / f"{SCORED}.part"
    draft.write_text(sheet.to_json())
    draft.replace(workspace / SCORED)


def _record_in_gradebook(
    workspace: Path, stage: str, student: str, sheet: ScoreSheet, course_id: str
) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    db_url = f"sqlite:///{workspace / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, course_id=course_id) as gradebook:
        for test in sheet.tests:
            try:
                grade = gradebook.find_grade(test.grade_id, stage, stage, student)
            except MissingEntry:
                continue
            grade.auto_score = test.score
            gradebook.db.commit()


def _rewrite_test_outputs(autograded: Path, sheet: ScoreSheet) -> None:
    """Each test cell's outputs become the trusted verdict (what the kernel printed is dropped)."""
    import nbformat
    from nbformat.v4 import new_output

    nb = nbformat.read(autograded, as_version=4)
    by_id = {t.grade_id: t for t in sheet.tests}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        test = by_id.get(grade_id)
        if cell.cell_type != "code" or test is None:
            continue
        text = "\n".join([HEADER, *test.lines]) + "\n"
        cell.outputs = [new_output("stream", name="stdout", text=text)]
        if test.score < test.points:
            cell.outputs.append(
                new_output(
                    "error",
                    ename="TestFailed",
                    evalue=f"{test.score:g} of {test.points:g} points",
                    traceback=[f"TestFailed: {test.score:g} of {test.points:g} points"],
                )
            )
    nbformat.write(nb, autograded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the trusted scorer of one grading job")
    parser.add_argument("workspace", type=Path)
    parser.add_argument("stage")
    parser.add_argument("student")
    parser.add_argument("--cell-timeout", type=float, default=120.0)
    parser.add_argument("--isolate", action="store_true")
    args = parser.parse_args(argv)
    skip_slow_optional_imports()
    score(
        args.workspace,
        args.stage,
        args.student,
        isolate=args.isolate,
        cell_timeout=args.cell_timeout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
