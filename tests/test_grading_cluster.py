"""``course grade --cluster``: a real dask cluster on loopback grades a class exactly like the pool.

The test starts ``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` as subprocesses,
grades a small class of the tiny stage on them (a solution, a classic slip, a blank release:
three tasks on two workers, so one worker grades twice), and SIGKILLs one worker process while it is grading. Every grade must still arrive
exactly once (one result, one archive entry, one gradebook submission per student) and equal what
the local pool (``jobs=2``) gives for the same inbox.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from course_utils.grading.autograde import GradeReport, grade
from tests.grading_course import (
    EX1_TEST,
    EX2_TEST,
    FULL,
    NOTEBOOK,
    REPO,
    STAGE,
    make_grading_course,
    release_like,
    slip_notebook,
    solution_notebook,
)

pytest.importorskip("distributed", reason="the cluster extra (dask.distributed) is not installed")
pytestmark = pytest.mark.slow
DASK = Path(sys.executable).with_name("dask")
HANG_GUARD = 1800  # seconds; a hang guard only, never a claim about speed


CLASS = {
    "cl_right": (solution_notebook, FULL),
    "cl_slip": (slip_notebook, {EX1_TEST: 0.0, EX2_TEST: FULL[EX2_TEST]}),
    "cl_blank": (lambda: release_like(solution_notebook()), dict.fromkeys(FULL, 0.0)),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """End a process group this test started: politely, then for sure."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def dask_cluster(folder: Path) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` on 127.0.0.1."""
    (folder / "tmp").mkdir(parents=True)
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        # the workers must import this checkout's course_utils (the task checks it is the same)
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "COURSE_BUNDLE_DIR": str(folder / "bundles"),
        "TMPDIR": str(folder / "tmp"),  # the tasks' workspaces, so the test can find them
    }
    port = address.rsplit(":", 1)[1]
    commands = {
        "scheduler": [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
        "worker": [
            *(DASK, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"),
            *("--host", "127.0.0.1", "--local-directory", str(folder / "dask")),
        ],
    }
    started = []
    try:
        for name, argv in commands.items():
            log = (folder / f"{name}.log").open("w")
            started.append(
                subprocess.Popen(
                    [str(a) for a in argv],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield address
    finally:
        for process in reversed(started):
            _stop(process)


def _processes_in(folder: Path) -> dict[int, int]:
    """{pid: parent pid} of every process whose working directory is inside ``folder``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found[int(entry.name)] = int(status.split("\nPPid:\t", 1)[1].split()[0])
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found


def _kill_a_grading_worker(address: str, tmp: Path, stop: threading.Event, killed: dict) -> None:
    """SIGKILL the first worker process seen running a grading process (its child, working in a
    task workspace under the workers' ``tmp``), while that grading runs."""
    from distributed import Client

    with Client(address, timeout="60s") as client:
        pids = {pid: worker for worker, pid in client.run(os.getpid).items()}
        while not stop.is_set():
            parents = set(_processes_in(tmp).values()) & set(pids)
            if parents:
                pid = parents.pop()
                keys = [str(k) for k in client.processing().get(pids[pid], ())]
                os.kill(pid, signal.SIGKILL)
                killed.update(worker=pids[pid], pid=pid, keys=keys)
                return
            time.sleep(0.2)


def _inbox(folder: Path) -> Path:
    for student, (build, _) in CLASS.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(build(), folder / student / NOTEBOOK)
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    from distributed import Client

    base = tmp_path_factory.mktemp("cluster")
    inbox = _inbox(base / "inbox")
    pool_course = make_grading_course(base / "pool")
    cluster_course = make_grading_course(base / "cluster")
    pool = grade(pool_course, inbox, jobs=2)
    with dask_cluster(base / "dask") as address:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=300)
        killed: dict = {}
        stop = threading.Event()
        args = (address, base / "dask" / "tmp", stop, killed)
        killer = threading.Thread(target=_kill_a_grading_worker, args=args, daemon=True)
        killer.start()
        result: dict = {}

        def run() -> None:
            try:
                result["report"] = grade(cluster_course, inbox, cluster=address)
            except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
                result["error"] = error

        grading = threading.Thread(target=run, daemon=True)
        try:
            grading.start()
            grading.join(HANG_GUARD)
        finally:
            stop.set()
        killer.join(120)
        assert not grading.is_alive(), f"cluster grading still running after {HANG_GUARD} s"
        deadline = time.monotonic() + 60  # the orphan guard polls its parent once a second
        while _processes_in(base / "dask" / "tmp") and time.monotonic() < deadline:
            time.sleep(0.5)
        result["left running"] = _processes_in(base / "dask" / "tmp")
    if "error" in result:
        raise result["error"]
    killed["left running"] = result["left running"]
    return pool_course, pool, cluster_course, result["report"], killed


def _by_student(report: GradeReport) -> dict:
    return {g.student: (g.score, g.cells, g.status, g.notes) for g in report.grades}


def test_a_worker_process_was_killed_while_grading(graded) -> None:
    *_, killed = graded
    assert killed.get("pid"), "no worker was seen grading, so none was killed"
    assert killed["keys"], "the killed worker held no grading task"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)


def test_the_killed_workers_grading_did_not_run_on_as_an_orphan(graded) -> None:
    *_, killed = graded
    assert killed["left running"] == {}  # every task's processes ended, the killed one's too


def test_every_grade_arrives_exactly_once(graded) -> None:
    _, _, course, report, _ = graded
    counts = collections.Counter((g.student, g.stage) for g in report.grades)
    assert counts == {(student, STAGE): 1 for student in CLASS}
    for student in CLASS:
        result = json.loads(
            (course / "_grading" / "results" / student / f"{STAGE}.json").read_text()
        )
        assert result["history"] == []
        assert len(list((course / "_grading" / "archive" / student / STAGE).iterdir())) == 1
        assert (course / "_grading" / "feedback" / student / STAGE / f"{STAGE}.html").exists()
        assert (course / "_grading" / "autograded" / student / STAGE / NOTEBOOK).exists()


def test_the_killed_workers_submissions_were_graded_elsewhere(graded) -> None:
    _, _, _, report, killed = graded
    students = {k.removeprefix("course-grade-").split(f"-{STAGE}-")[0] for k in killed["keys"]}
    assert students <= set(CLASS)
    for student in students:
        assert report.grade(student, STAGE).status == "graded"


def test_cluster_grades_are_the_local_pools(graded) -> None:
    _, pool, _, report, _ = graded
    assert _by_student(report) == _by_student(pool)


def test_solutions_full_blank_zero_the_slip_loses_exactly_its_points(graded) -> None:
    _, _, _, report, _ = graded
    for student, (_, cells) in CLASS.items():
        assert report.grade(student, STAGE).cells == cells, student
        assert report.score(student, STAGE) == sum(cells.values())


def test_the_course_gradebook_holds_the_cluster_scores(graded) -> None:
    from nbgrader.api import Gradebook

    _, _, course, _, _ = graded
    url = f"sqlite:///{course / '_grading' / 'gradebook.db'}"
    with warnings.catch_warnings(), Gradebook(url) as gradebook:
        warnings.simplefilter("ignore")
        for student, (_, cells) in CLASS.items():
            assert gradebook.find_submission(STAGE, student).score == sum(cells.values())
    leftovers = list((course / "_grading" / "work" / "jobs").glob("*"))
    assert leftovers == []  # each client-side workspace went once its result was recorded
