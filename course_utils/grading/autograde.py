"""``course grade SUBMISSIONS``: grade a class's submissions, safely, in parallel, resumably.

SUBMISSIONS holds one folder (or ``.zip``) per student, named by student id, with stage notebooks
anywhere inside (``<student>/01_data/01_data.ipynb`` or ``<student>/01_data.ipynb``). For each one:

1. ``collect.py`` copies it to ``_grading/submitted/<student>/<stage>/`` (a notebook named like no
   stage, e.g. ``01_data-Copy1.ipynb``, is reported with the name to give it, never silently 0);
2. if its bytes and the stage's source are unchanged since the last run, the earlier result is kept;
3. otherwise ``audit.py`` reads it for code that tampers with the grader (flagged: scored 0, not
   run), and ``worker.py`` autogrades it with nbgrader in a workspace of its own, the kernel inside
   the bubblewrap sandbox (``sandbox.py``), one worker per ``jobs``, one CPU thread each; the points
   come from trusted scoring (``scoring/``): the hidden tests' checks run in the grading job's own
   process against the student's answers, held by a separate sandboxed process, never in the
   kernel;
4. ``store.py`` archives everything, updates ``_grading/results/`` and merges the scores into the
   course gradebook, one submission at a time.

Then ``_grading/grades.csv`` (every result, including students not in this batch) and
``_grading/summary.md`` (who got what, and what went wrong for whom) are rewritten.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import course_utils
from course_utils.grading import database, lock, sandbox
from course_utils.grading.collect import DEFAULT_MAX_NOTEBOOK_SIZE, Submission, collect
from course_utils.grading.layout import nbgrader, stages
from course_utils.grading.memory import DEFAULT_MEMORY_LIMIT
from course_utils.grading.names import csv_cell, markdown, one_line
from course_utils.grading.store import all_results, load_result, record
from course_utils.grading.worker import (
    Job,
    Outcome,
    build_template,
    finish,
    max_points,
    prepare,
    run,
    stage_digest,
    stop_all,
)

ISOLATION_MODES = ("auto", "require", "off")
RETRIED = {"error", "timed out"}  # may be the machine's fault: graded again on the next run


@dataclass
class StageGrade:
    """One student's result for one stage."""

    student: str
    stage: str
    score: float
    max_score: float
    cells: dict[str, float] = field(default_factory=dict)
    status: str = "graded"
    notes: list[str] = field(default_factory=list)
    resumed: bool = False  # kept from an earlier run: the submission had not changed

    @classmethod
    def from_result(cls, result: dict[str, Any], resumed: bool = False) -> StageGrade:
        return cls(
            result["student"],
            result["stage"],
            result["score"],
            result["max_score"],
            dict(result["cells"]),
            result["status"],
            list(result["notes"]),
            resumed,
        )


@dataclass
class GradeReport:
    """The grades of one ``course grade`` run and the problems met on the way."""

    grades: list[StageGrade] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    csv: Path | None = None
    summary: Path | None = None
    isolated: bool = False

    def grade(self, student: str, stage: str) -> StageGrade:
        for grade in self.grades:
            if grade.student == student and grade.stage == stage:
                return grade
        raise KeyError(f"no grade for {student}/{stage} in this run")

    def score(self, student: str, stage: str) -> float:
        return self.grade(student, stage).score


def grading_key(
    root: Path,
    submission: Submission,
    cell_timeout: int | None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> str:
    """Changes when anything that decides the grade does: the submission, the stage's source (its
    hidden tests), nbgrader_config.py, the course_utils code (the checks), the cell timeout or the
    memory limit."""
    source = root / "solutions" / submission.stage / f"{submission.stage}.ipynb"
    digest = hashlib.sha256()
    digest.update(submission.sha256.encode())
    digest.update(source.read_bytes())
    digest.update((root / "nbgrader_config.py").read_bytes())
    digest.update(_package_digest().encode())
    digest.update(repr((cell_timeout, memory_limit)).encode())
    return digest.hexdigest()


@functools.cache
def _package_digest() -> str:
    package = Path(course_utils.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + path.read_bytes())
    return digest.hexdigest()


def _isolation(mode: str) -> tuple[bool, str | None]:
    if mode not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {mode!r}")
    if mode == "off":
        return False, "isolation is off: student code ran with your permissions"
    if sandbox.available():
        return True, None
    if mode == "require":
        raise RuntimeError(f"isolation required but not available: {sandbox.unavailable_reason()}")
    return False, f"student code was not isolated: {sandbox.unavailable_reason()}"


def _one_run_at_a_time(grade_: Callable[..., GradeReport]) -> Callable[..., GradeReport]:
    """``grade(root, ...)`` holding the course's lock (``lock.py``): a second run raises
    ``GradingLocked`` naming the holder; after a dead run, its leftovers are removed first and the
    first problem line says so."""

    @functools.wraps(grade_)
    def locked(root: Path, *args: Any, **kwargs: Any) -> GradeReport:
        root = Path(root).resolve()
        with lock.hold(root) as dead:
            removed = lock.clear_leftovers(root, dead)
            report = grade_(root, *args, **kwargs)
            if dead is not None:
                report.problems.insert(0, lock.takeover_line(dead, removed))
                report.summary = write_summary(root, report)
            return report

    return locked


@_one_run_at_a_time
def grade(
    root: Path,
    submissions: Path,
    *,
    jobs: int = 1,
    cell_timeout: int | None = None,
    notebook_timeout: float = 1800,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    force: bool = False,
    isolation: str = "auto",
    progress: bool = False,
    max_notebook_size: int = DEFAULT_MAX_NOTEBOOK_SIZE,
    cluster: str | None = None,
    db: str | None = None,
) -> GradeReport:
    """Grade every submission in ``submissions`` against the course at ``root`` (see module doc).

    ``jobs``: submissions graded at once (each a process with one CPU thread); ``cell_timeout``:
    seconds per cell (default: ``Execute.timeout`` of nbgrader_config.py); ``notebook_timeout``:
    seconds for a whole notebook before it is stopped and scored 0; ``memory_limit``: bytes of data
    each grading process and its kernel may allocate (None: no cap; see ``memory.py``); an
    allocation beyond it fails inside the notebook; ``force``: regrade unchanged
    submissions too; ``isolation``: "auto" (sandbox when bubblewrap works, else say so in the
    problems), "require" (error without it) or "off"; ``max_notebook_size``: bytes a notebook may
    have (in a zip: once inflated), larger ones are not read (``collect.py``); ``cluster``: a
    dask.distributed scheduler address (``tcp://host:8786``) or ``local:N`` to grade on instead of
    the local pool (``cluster.py``); ``db``: the gradebook URL to merge into (``database.py``;
    default ``_grading/gradebook.db``).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if memory_limit is not None and memory_limit < 2**28:
        raise ValueError(
            f"memory_limit is in bytes and importing torch needs about 1 GiB, got {memory_limit}"
        )
    if cluster is not None:
        from course_utils.grading.cluster import check_address

        check_address(cluster)
    root = Path(root).resolve()
    db_url = database.resolve(db)
    isolate, warning = _isolation(isolation)
    found, problems = collect(
        root, Path(submissions).resolve(), stages(root), max_notebook_size=max_notebook_size
    )
    report = GradeReport(problems=problems, isolated=isolate)
    if warning:
        report.problems.insert(0, warning)

    todo: list[tuple[Submission, str]] = []
    for submission in found:
        key = grading_key(root, submission, cell_timeout, memory_limit)
        previous = load_result(root, submission.student, submission.stage)
        unchanged = previous is not None and previous["key"] == key
        if unchanged and previous["status"] not in RETRIED and not force:
            report.grades.append(StageGrade.from_result(previous, resumed=True))
        else:
            todo.append((submission, key))

    work = root / "_grading" / "work"
    templates = _prepare_stages(root, sorted({s.stage for s, _ in todo}), work, jobs, db_url)
    bar = tqdm(total=len(todo), desc="grading", unit="notebook", disable=not progress)
    if cluster is not None:  # the same jobs on a dask.distributed cluster; nothing left to pool
        from course_utils.grading.cluster import grade_on_cluster

        def merge(submission: Submission, key: str, outcome: Outcome) -> None:
            _finish(root, report, submission, key, outcome, db_url)
            bar.update()

        options = dict(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout)
        options.update(memory_limit=memory_limit, isolate=isolate)
        grade_on_cluster(cluster, root, todo, templates, work / "jobs", merge, **options)
        todo = []
    # Only the nbgrader subprocesses run in worker threads: everything that parses or compiles
    # Python (audit, nbformat, SQLAlchemy) stays in this thread (see worker.prepare).
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {}
        for submission, key in todo:
            prepared = _guarded(
                root,
                submission,
                prepare,
                root,
                submission,
                templates[submission.stage],
                work / "jobs" / f"{submission.student}--{submission.stage}",
                cell_timeout=cell_timeout,
                notebook_timeout=notebook_timeout,
                memory_limit=memory_limit,
                isolate=isolate,
            )
            if isinstance(prepared, Outcome):
                _finish(root, report, submission, key, prepared, db_url)
                bar.update()
            else:
                futures[pool.submit(run, prepared)] = (submission, key)
        for future in as_completed(futures):
            submission, key = futures[future]
            try:
                outcome = _guarded(root, submission, finish, future.result())
            except Exception as error:  # noqa: BLE001 - one submission never stops the batch
                outcome = _failed(root, submission, error)
            _finish(root, report, submission, key, outcome, db_url)
            bar.update()
    except KeyboardInterrupt:  # what was recorded stays; the next run grades the rest
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        raise
    finally:
        pool.shutdown(wait=True)
    bar.close()

    for grade_ in report.grades:
        if grade_.status != "graded" or grade_.notes:
            for note in grade_.notes or [grade_.status]:
                line = f"{grade_.student}/{grade_.stage}: {grade_.status}: {note}"
                report.problems.append(one_line(line))
    report.grades.sort(key=lambda g: (g.stage, g.student))
    report.csv = write_csv(root)
    report.summary = write_summary(root, report)
    export = f"--to={root / '_grading' / 'gradebook_export.csv'}"
    nbgrader(root, "export", export, *database.nbgrader_args(db_url), check=False)
    return report


def _guarded(root: Path, submission: Submission, step, *args, **kwargs) -> Outcome | Job:
    """``step(*args, **kwargs)``, or an "error" outcome if it raises."""
    try:
        return step(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - one submission must never stop the batch
        return _failed(root, submission, error)


def _failed(root: Path, submission: Submission, error: Exception) -> Outcome:
    outcome = Outcome(submission.student, submission.stage)
    with contextlib.suppress(Exception):  # the source may be what failed
        stage = submission.stage
        points = max_points(root / "solutions" / stage / f"{stage}.ipynb")
        outcome.cells, outcome.max_score = dict.fromkeys(points, 0.0), sum(points.values())
    outcome.status = "error"
    outcome.notes.append(f"the grader failed on this submission: {error!r}; scored 0")
    return outcome


def _finish(
    root: Path,
    report: GradeReport,
    submission: Submission,
    key: str,
    outcome: Outcome,
    db_url: str | None = None,
) -> None:
    result = record(root, submission, outcome, key, db_url)
    report.grades.append(StageGrade.from_result(result))
    if outcome.workspace is not None and outcome.status not in RETRIED:
        shutil.rmtree(outcome.workspace, ignore_errors=True)


def _prepare_stages(
    root: Path, needed: list[str], work: Path, jobs: int, db_url: str | None = None
) -> dict[str, Path]:
    """Each needed stage in the course gradebook (``db_url``), and a template workspace per stage.

    Both are rebuilt only when the stage's source or nbgrader_config.py changed since the last run
    (a marker file holds their digest), so a re-run with little to grade starts at once.
    """
    markers = work / "assignments"
    markers.mkdir(parents=True, exist_ok=True)
    for stage in needed:  # the course gradebook: one writer at a time
        marker = markers / database.marker_name(stage, db_url)
        digest = stage_digest(root, stage)
        known = database.knows_assignment(database.course_url(root, db_url), stage)
        if known and marker.exists() and marker.read_text() == digest:
            continue
        nbgrader(
            root,
            "generate_assignment",
            stage,
            "--force",
            f"--CourseDirectory.release_directory={root / '_grading' / 'release'}",
            *database.nbgrader_args(db_url),
        )
        marker.write_text(digest)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        built = pool.map(
            lambda s: build_template(root, s, work / "templates" / s, stage_digest(root, s)), needed
        )
        return dict(zip(needed, built, strict=True))


CSV_COLUMNS = (
    "assignment",
    "student_id",
    "score",
    "max_score",
    "status",
    "graded_at",
    "submission_sha256",
    "notes",
)


def write_csv(root: Path) -> Path:
    """``_grading/grades.csv``: one row per latest result, every student ever graded.

    One line per row whatever the notes say (``names.csv_cell``); the notes of a row are joined by
    `` | ``, a ``|`` inside a note is written ``\\|``.
    """
    path = root / "_grading" / "grades.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in all_results(root):
            notes = " | ".join(n.replace("\\", "\\\\").replace("|", "\\|") for n in r["notes"])
            writer.writerow(
                [
                    csv_cell(r["stage"]),
                    csv_cell(r["student"]),
                    f"{r['score']:g}",
                    f"{r['max_score']:g}",
                    csv_cell(r["status"]),
                    r["graded_at"],
                    r["sha256"],
                    csv_cell(notes),
                ]
            )
    return path


def write_summary(root: Path, report: GradeReport) -> Path:
    """``_grading/summary.md``: this run's grades per student and stage, then its problems.

    Every name and problem is escaped (``names.markdown``): no line or table cell of its own.
    """
    students = sorted({g.student for g in report.grades})
    stage_names = sorted({g.stage for g in report.grades})
    cells = {(g.student, g.stage): g for g in report.grades}
    lines = [
        "# Grading summary",
        "",
        f"Isolation: {'bubblewrap sandbox' if report.isolated else '**none**'}. "
        f"{sum(not g.resumed for g in report.grades)} graded, "
        f"{sum(g.resumed for g in report.grades)} unchanged since the last run (kept).",
        "",
        "| student | " + " | ".join(map(markdown, stage_names)) + " |",
        "|---|" + "---:|" * len(stage_names),
    ]
    for student in students:
        row = []
        for stage in stage_names:
            g = cells.get((student, stage))
            mark = "" if g is None or g.status == "graded" else f" ({g.status})"
            row.append("" if g is None else markdown(f"{g.score:g}/{g.max_score:g}{mark}"))
        lines.append(f"| {markdown(student)} | " + " | ".join(row) + " |")
    lines += ["", "## Problems", ""] + [f"- {markdown(p)}" for p in report.problems or ["none"]]
    path = root / "_grading" / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
