"""Grade one submission in a workspace of its own.

Each submission is graded by its own ``nbgrader autograde`` process in ``_grading/work/<job>/``,
a copy of the course layout with its own gradebook (copied from a per-stage template) and its own
Jupyter paths. Workers therefore never share a SQLite file, so any number can run at once; the
results are merged into the course gradebook afterwards, one at a time (``store.py``). The kernel
runs in the bubblewrap sandbox (``sandbox.py``) when it is available.

Three steps per submission: :func:`prepare` (main thread: read, audit, set up the workspace),
:func:`run` (any thread: the nbgrader subprocess, ``nbgrader_job.py``, which also does the trusted
scoring) and :func:`finish` (main thread: read the scores from the job's ``trusted_scores.json``,
never from what the kernel printed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_utils.grading import sandbox
from course_utils.grading.audit import audit_notebook
from course_utils.grading.collect import Submission
from course_utils.grading.layout import graded_cells
from course_utils.grading.lifetime import die_with_parent
from course_utils.grading.lock import runtime_prefix
from course_utils.grading.memory import DEFAULT_MEMORY_LIMIT, describe, is_out_of_memory
from course_utils.grading.metadata import restore_from_release
from course_utils.grading.preprocessors import KERNEL_DIED
from course_utils.grading.scoring.job import ANSWER_SANDBOX, SHEET
from course_utils.grading.scoring.score import ScoreSheet

COURSE_ID = "the-recipe"


@dataclass
class Outcome:
    """What grading one submission produced (scores, status, notes and where the files are)."""

    student: str
    stage: str
    score: float = 0.0
    max_score: float = 0.0
    cells: dict[str, float] = field(default_factory=dict)
    status: str = "graded"  # graded | flagged | kernel died | tampered | timed out | error
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workspace: Path | None = None
    autograded: Path | None = None
    feedback: Path | None = None
    log: str = ""


def _env(workspace: Path, threads: int, runtime: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    env["JUPYTER_CONFIG_DIR"] = str(workspace / ".jupyter")
    env["JUPYTER_DATA_DIR"] = str(workspace / "jupyter-data")
    env["JUPYTER_RUNTIME_DIR"] = str(workspace / "runtime")
    env["JUPYTER_PATH"] = str(workspace / "jupyter")
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    # jupyter_client writes the kernel's connection file with tempfile: it must land in the one
    # folder the sandbox shows the kernel (read-only), not in the /tmp the sandbox replaces.
    env["TMPDIR"] = str(runtime or workspace / "runtime")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # nbgrader shells out to `alembic` and kernels: the venv's bin comes first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_nbgrader(
    workdir: Path, *args: str, env: dict[str, str], timeout: float | None = None
) -> tuple[int | None, str]:
    """``nbgrader ARGS`` in ``workdir``; see :func:`run_python`."""
    return run_python(workdir, "-m", "nbgrader", *args, env=env, timeout=timeout)


def run_python(
    workdir: Path, *args: str, env: dict[str, str], timeout: float | None = None
) -> tuple[int | None, str]:
    """``python ARGS`` in ``workdir``; (exit code or None on timeout, combined output).

    It runs in a session of its own, so on timeout the whole group (nbgrader, the sandbox and the
    kernel) is killed, not only nbgrader. :func:`stop_all` kills every one still running.
    """
    with subprocess.Popen(
        [sys.executable, *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=die_with_parent(),  # lifetime.py: a SIGKILLed grader leaves no job behind
    ) as process:
        with _LIVE_LOCK:
            _LIVE.add(process)
        try:
            output, _ = process.communicate(timeout=timeout)
            return process.returncode, output
        except subprocess.TimeoutExpired:
            _kill_group(process)
            output, _ = process.communicate()
            return None, output
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(process)


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)


def stop_all() -> None:
    """Kill every grading process still running (on Ctrl-C: they run in sessions of their own,
    so the terminal's SIGINT does not reach them)."""
    with _LIVE_LOCK:
        running = list(_LIVE)
    for process in running:
        _kill_group(process)


def stage_digest(root: Path, stage: str) -> str:
    """SHA-256 of what nbgrader builds a stage's gradebook entry from: its source and the config."""
    digest = hashlib.sha256()
    for path in (root / "solutions" / stage / f"{stage}.ipynb", root / "nbgrader_config.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_template(root: Path, stage: str, template: Path, digest: str, threads: int = 1) -> Path:
    """A workspace whose gradebook knows ``stage``: the one every job of that stage copies.

    Kept from an earlier run when its ``.stage.sha256`` marker equals ``digest``.
    """
    marker = template / ".stage.sha256"
    built = (template / "_grading" / "gradebook.db").exists() and marker.exists()
    if built and marker.read_text() == digest:
        return template
    if template.exists():
        shutil.rmtree(template)
    template.mkdir(parents=True)
    _course_skeleton(root, template)
    code, log = run_nbgrader(
        template,
        "generate_assignment",
        stage,
        "--force",
        f"--CourseDirectory.release_directory={template / 'release'}",
        env=_env(template, threads),
        timeout=600,
    )
    if code != 0:
        raise RuntimeError(f"nbgrader generate_assignment {stage} failed:\n{log[-3000:]}")
    marker.write_text(digest)
    return template


def _course_skeleton(root: Path, workspace: Path) -> None:
    shutil.copyfile(root / "nbgrader_config.py", workspace / "nbgrader_config.py")
    (workspace / "solutions").symlink_to(root / "solutions", target_is_directory=True)
    (workspace / "_grading").mkdir(exist_ok=True)
    (workspace / "runtime").mkdir(exist_ok=True)


def max_points(source: Path) -> dict[str, float]:
    """``{grade_id: points}`` of the autograded test cells of a source notebook."""
    return {cell["grade_id"]: float(cell["points"]) for cell in graded_cells(source)}


@dataclass
class Job:
    """A submission ready to be autograded: its workspace, environment and command."""

    submission: Submission
    outcome: Outcome
    points: dict[str, float]
    autograded: Path
    runtime: Path
    env: dict[str, str]
    args: list[str]
    prepare_seconds: float
    notebook_timeout: float
    memory_limit: int | None = None
    jail: sandbox.JobSandbox | None = None  # sandbox hook: the job's cgroups, ended in finish()
    code: int | None = None
    log: str = ""
    run_seconds: float = 0.0


def prepare(
    root: Path,
    submission: Submission,
    template: Path,
    workspace: Path,
    *,
    cell_timeout: int | None = None,
    notebook_timeout: float = 1800,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    isolate: bool = True,
) -> Job | Outcome:
    """Read and audit one submission and set up its workspace: a :class:`Job` to :func:`run`, or
    the final :class:`Outcome` when there is nothing to run (unreadable, tampered).

    Call from the main thread, like :func:`finish`: both parse and compile Python (the audit,
    nbformat's schema validation, SQLAlchemy), which CPython 3.11 cannot do from several threads
    at once ("AST constructor recursion depth mismatch"). Only :func:`run` belongs in a worker.
    """
    start = time.perf_counter()
    student, stage = submission.student, submission.stage
    outcome = Outcome(student, stage, workspace=workspace)
    points = max_points(root / "solutions" / stage / f"{stage}.ipynb")
    outcome.max_score = sum(points.values())
    outcome.cells = dict.fromkeys(points, 0.0)

    try:
        nb = nbformat.read(submission.notebook, as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the student's problem
        outcome.status = "error"
        outcome.notes.append(f"the notebook could not be read as a notebook: {error}")
        outcome.seconds = time.perf_counter() - start
        return outcome
    findings = audit_notebook(nb)
    if findings:
        outcome.status = "tampered"
        outcome.notes.append(
            "not run: code that changes the grader or the interpreter ("
            + "; ".join(str(f) for f in findings)
            + "); scored 0 and flagged for manual review"
        )
        outcome.seconds = time.perf_counter() - start
        return outcome

    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    _course_skeleton(root, workspace)
    shutil.copyfile(template / "_grading" / "gradebook.db", workspace / "_grading" / "gradebook.db")
    submitted = workspace / "_grading" / "submitted" / student / stage
    submitted.mkdir(parents=True)
    outcome.notes += _keep_last_of_duplicated_cells(nb)
    # metadata.py: grading metadata the student edited is put back as the release has it
    outcome.notes += restore_from_release(nb, template / "release" / stage / f"{stage}.ipynb")
    nbformat.write(nb, submitted / f"{stage}.ipynb")
    autograded = workspace / "_grading" / "autograded" / student / stage
    # The kernel's connection file goes to a folder outside the course: the sandbox shows it.
    runtime = Path(tempfile.mkdtemp(prefix=runtime_prefix(root)))  # lock.py clears a dead run's
    jail = None
    if isolate:  # sandbox hook: cgroups, kernelspec and IPC config of this job (sandbox.py)
        jail = sandbox.start_job(
            workspace,
            autograded,
            runtime,
            memory_limit=memory_limit,
            cpu_seconds=int(notebook_timeout),
        )
        # The answer process of trusted scoring gets the same walls and joins the same cgroups.
        answers_dir = workspace / "answers"
        answers_dir.mkdir(exist_ok=True)
        prefix = sandbox.sandbox_argv(
            answers_dir,
            runtime,
            [],
            cgroup=jail.cgroup,
            cpu_seconds=int(notebook_timeout),
        )
        (workspace / ANSWER_SANDBOX).write_text(json.dumps(prefix))
    args = ["-m", "course_utils.grading.nbgrader_job", stage, student]
    if cell_timeout:
        args.append(f"--cell-timeout={cell_timeout}")
    if memory_limit:
        args.append(f"--memory-limit={memory_limit}")
    if isolate:
        args.append("--isolate")
    env = _env(workspace, threads=1, runtime=runtime)
    prepared = time.perf_counter() - start
    return Job(
        submission,
        outcome,
        points,
        autograded,
        runtime,
        env,
        args,
        prepared,
        notebook_timeout,
        memory_limit,
        jail,
    )


def run(job: Job) -> Job:
    """Autograde and write feedback (``nbgrader_job``) in the job's workspace; thread-safe."""
    workspace = job.outcome.workspace
    assert workspace is not None
    start = time.perf_counter()
    job.code, job.log = run_python(workspace, *job.args, env=job.env, timeout=job.notebook_timeout)
    job.run_seconds = time.perf_counter() - start
    return job


def finish(job: Job) -> Outcome:
    """Read the job's scores from its gradebook and notebook into its :class:`Outcome`.

    ``Outcome.seconds`` counts this submission's own work (prepare, run, finish), not its time
    waiting for a free worker.
    """
    start = time.perf_counter()
    limits_hit = job.jail.end() if job.jail else []  # sandbox hook: nothing of the job outlives it
    shutil.rmtree(job.runtime, ignore_errors=True)
    try:
        outcome = _read_scores(job)
        outcome.notes += limits_hit
        return outcome
    finally:
        job.outcome.seconds = job.prepare_seconds + job.run_seconds + time.perf_counter() - start


def _read_scores(job: Job) -> Outcome:
    outcome, points = job.outcome, job.points
    student, stage = outcome.student, outcome.stage
    workspace = outcome.workspace
    assert workspace is not None
    outcome.log = job.log
    if job.code is None:
        outcome.status = "timed out"
        outcome.notes.append(
            f"grading took longer than {job.notebook_timeout:g} s and was stopped; scored 0"
        )
        return outcome

    # The points come from the trusted scorer's sheet (scoring/job.py), never from what the
    # student's kernel printed; without a sheet there is no score.
    sheet_path = workspace / SHEET
    graded = False
    if sheet_path.exists():
        sheet = ScoreSheet.from_json(sheet_path.read_text())
        for test in sheet.tests:
            if test.grade_id in outcome.cells:
                outcome.cells[test.grade_id] = min(float(test.score), points[test.grade_id])
        graded = {t.grade_id for t in sheet.tests} >= set(points)
        outcome.notes += sheet.notes
        if sheet.flagged:
            outcome.status = "flagged"
    outcome.score = sum(outcome.cells.values())
    notebook_path = job.autograded / f"{stage}.ipynb"
    if not graded or not notebook_path.exists():
        outcome.status = "error"
        outcome.score = 0.0
        outcome.cells = dict.fromkeys(points, 0.0)
        outcome.notes.append(
            f"nbgrader could not grade this notebook; scored 0 ({_first_error(job.log)})"
        )
        return outcome
    outcome.autograded = notebook_path
    notes, died = _execution_notes(notebook_path, job.memory_limit)
    outcome.notes += notes
    if died:
        outcome.status = "kernel died"
    feedback = workspace / "_grading" / "feedback" / student / stage / f"{stage}.html"
    outcome.feedback = feedback if feedback.exists() else None
    return outcome


def _keep_last_of_duplicated_cells(nb: nbformat.NotebookNode) -> list[str]:
    """Strip nbgrader metadata from all but the last cell of each repeated grade id.

    A copied cell repeats its grade id. nbgrader's ``DeduplicateIds`` keeps the last copy too, but
    leaves an empty ``nbgrader`` dict on the others, on which ``OverwriteCells`` then fails and the
    whole notebook scores 0. Without the key the earlier copies are plain cells; they still run.
    """
    last: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            last[grade_id] = index
    notes = []
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id and last[grade_id] != index:
            del cell.metadata["nbgrader"]
            notes.append(
                f"cell {index} is a copy of cell {last[grade_id]} ({grade_id!r}): graded the last copy"
            )
    return notes


def _execution_notes(autograded: Path, memory_limit: int | None) -> tuple[list[str], bool]:
    """(one note per cell that killed the kernel, timed out or ran out of memory, whether the
    kernel died)."""
    nb = nbformat.read(autograded, as_version=4)
    notes, died = [], False
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == KERNEL_DIED:
                died = True
                notes.append(
                    f"the kernel died in cell {index}; the cells after it did not run (the "
                    "answers were still scored, in their own process)"
                )
            elif output.get("ename") == "CellTimeoutError":
                notes.append(f"cell {index} ran out of time and was interrupted")
            elif is_out_of_memory(output.get("ename", ""), output.get("evalue", "")):
                limit = f" (the limit is {describe(memory_limit)})" if memory_limit else ""
                notes.append(f"cell {index} ran out of memory{limit}")
    return notes, died


_BOILERPLATE = ("There was an error processing", "Please see the", "Traceback")


def _first_error(log: str) -> str:
    """The first informative ERROR line of an nbgrader log (the rest is its generic wrapping)."""
    for line in log.splitlines():
        if "| ERROR]" in line and not any(b in line for b in _BOILERPLATE):
            return line.split("| ERROR]", 1)[1].strip()[:500]
    return "see nbgrader.log in the archive"
