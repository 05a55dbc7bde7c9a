"""The pieces of ``course grade --cluster`` and ``--db`` that need no grading: fast.

Addresses and database URLs are checked with clear errors; the course bundle is deterministic,
refuses bytes that do not match its name and unpacks once however many workers race; a task's
request and outcome survive their trip as bytes; a worker with another course_utils or without the
bundle refuses to grade (so dask retries elsewhere) instead of grading with the wrong checks.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from course_utils.grading import bundle, database, task
from course_utils.grading.autograde import _package_digest
from course_utils.grading.cluster import check_address
from course_utils.grading.worker import Outcome
from tests.grading_course import NOTEBOOK, REPO, STAGE, make_grading_course


@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786", "tls://sched.lab:8786", "local:4"])
def test_scheduler_addresses_and_local_clusters_are_accepted(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["10.0.0.5:8786", "local:0", "local", "http://x:8786", ""])
def test_a_bad_address_says_what_was_expected(address: str) -> None:
    with pytest.raises(ValueError, match="tcp://host:8786.*local:N"):
        check_address(address)


def test_postgres_urls_get_the_installed_driver() -> None:
    pytest.importorskip("psycopg")
    url = database.resolve("postgresql://grader@db.lab:5432/gradebook")
    assert url == "postgresql+psycopg://grader@db.lab:5432/gradebook"
    assert database.resolve("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    kept = "postgresql+psycopg2://u@h/db"
    assert database.resolve(kept) == kept


def test_sqlite_urls_become_absolute_and_files(tmp_path: Path) -> None:
    assert database.resolve(None) is None
    assert database.resolve("sqlite:///gb.db", cwd=tmp_path) == f"sqlite:///{tmp_path / 'gb.db'}"
    with pytest.raises(ValueError, match="must be a file"):
        database.resolve("sqlite://")
    with pytest.raises(ValueError, match="not a database URL"):
        database.resolve("gradebook.db")


def test_the_default_gradebook_keeps_its_marker_name() -> None:
    assert database.marker_name("01_data", None) == "01_data.sha256"
    other = database.marker_name("01_data", "postgresql+psycopg://u@h/db")
    assert other.startswith("01_data-") and other != "01_data.sha256"


def test_a_missing_gradebook_knows_no_assignment_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    assert not database.knows_assignment(f"sqlite:///{path}", "01_data")
    assert not path.exists()


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    root = make_grading_course(tmp_path / "course")
    (root / "solutions" / STAGE / ".ipynb_checkpoints").mkdir()
    (root / "solutions" / STAGE / ".ipynb_checkpoints" / "old.ipynb").write_text("{}")
    template = tmp_path / "template"
    (template / "_grading").mkdir(parents=True)
    (template / "_grading" / "gradebook.db").write_bytes(b"not really sqlite")
    (template / "release" / STAGE).mkdir(parents=True)
    (template / "release" / STAGE / NOTEBOOK).write_text("{}")
    return root, {STAGE: template}


def test_the_bundle_is_content_addressed_and_holds_only_what_a_job_needs(course) -> None:
    root, templates = course
    first, second = bundle.build(root, templates), bundle.build(root, templates)
    assert first == second  # same files, same bytes, same name: no clock or owner inside
    with tarfile.open(fileobj=io.BytesIO(first.data)) as archive:
        names = sorted(archive.getnames())
    assert names == [
        "course/nbgrader_config.py",
        f"course/solutions/{STAGE}/{NOTEBOOK}",
        f"templates/{STAGE}/_grading/gradebook.db",
        f"templates/{STAGE}/release/{STAGE}/{NOTEBOOK}",
    ]
    (root / "nbgrader_config.py").write_text((root / "nbgrader_config.py").read_text() + "\n")
    assert bundle.build(root, templates).sha256 != first.sha256


def test_a_bundle_whose_bytes_do_not_match_its_name_is_refused(course, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_BUNDLE_DIR", str(tmp_path / "cache"))
    real = bundle.build(*course)
    forged = bundle.Bundle(bundle.build(*course).data + b"\0", real.sha256)
    with pytest.raises(ValueError, match="do not match"):
        bundle.unpack(forged)
    with pytest.raises(FileNotFoundError, match="not on this worker"):
        bundle.location(real.sha256)


def test_workers_racing_to_unpack_one_bundle_all_get_it(course, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_BUNDLE_DIR", str(tmp_path / "cache"))
    packed = bundle.build(*course)
    folders: list[Path] = []
    threads = [
        threading.Thread(target=lambda: folders.append(bundle.unpack(packed))) for _ in "1234"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert folders == [bundle.location(packed.sha256)] * 4
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [packed.sha256]


def _request(packed: bundle.Bundle, notebook: bytes, **changes) -> task.Request:
    fields = dict(
        student="u1",
        stage=STAGE,
        notebook=notebook,
        bundle=packed.sha256,
        package=_package_digest(),
        memory_limit=None,
        isolate=False,
    )
    return task.Request(**{**fields, **changes})


def test_a_request_survives_its_trip_as_bytes(course) -> None:
    request = _request(bundle.build(*course), bytes(range(256)), cell_timeout=7)
    assert task.Request.from_bytes(request.to_bytes()) == request


def test_a_task_grades_in_a_private_workspace_and_returns_bytes(course, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_BUNDLE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # gettempdir() caches it
    (tmp_path / "tmp").mkdir()
    seen = []
    real_prepare = task.worker.prepare
    monkeypatch.setattr(
        task.worker, "prepare", lambda *a, **k: seen.append(a[3]) or real_prepare(*a, **k)
    )
    packed = bundle.build(*course)
    bundle.unpack(packed)
    data = task.grade_request(_request(packed, b"not a notebook").to_bytes())
    outcome = task.unpack(data, tmp_path / "client" / "u1")
    assert outcome.status == "error" and outcome.score == 0 and outcome.max_score == 3
    assert "could not be read as a notebook" in outcome.notes[0]
    assert seen[0].is_relative_to(tmp_path / "tmp")  # a private workspace of its own...
    assert list((tmp_path / "tmp").iterdir()) == []  # ...gone with the task


def test_a_worker_with_other_checks_no_bundle_or_no_sandbox_refuses(
    course, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("COURSE_BUNDLE_DIR", str(tmp_path / "cache"))
    packed = bundle.build(*course)
    with pytest.raises(FileNotFoundError, match="not on this worker"):
        task.grade_request(_request(packed, b"{}").to_bytes())
    bundle.unpack(packed)
    with pytest.raises(RuntimeError, match="course_utils differs"):
        task.grade_request(_request(packed, b"{}", package="0" * 64).to_bytes())
    monkeypatch.setattr(task.sandbox, "available", lambda: False)
    with pytest.raises(RuntimeError, match="cannot sandbox"):  # never graded unsandboxed
        task.grade_request(_request(packed, b"{}", isolate=True).to_bytes())


def test_an_outcome_and_its_files_survive_the_trip(tmp_path: Path) -> None:
    notebook, feedback = tmp_path / "a.ipynb", tmp_path / "a.html"
    notebook.write_bytes(b"{nb}")
    feedback.write_bytes(b"<html>")
    sent = Outcome(
        "u1", STAGE, 2.0, 3.0, {"t": 2.0}, "flagged", ["n"], 1.5, None, notebook, feedback, "log"
    )
    got = task.unpack(task.pack(sent), tmp_path / "client")
    assert (got.student, got.score, got.cells, got.status, got.notes, got.log) == (
        "u1",
        2.0,
        {"t": 2.0},
        "flagged",
        ["n"],
        "log",
    )
    assert got.autograded.name == f"{STAGE}.ipynb" and got.autograded.read_bytes() == b"{nb}"
    assert got.feedback.name == f"{STAGE}.html" and got.feedback.read_bytes() == b"<html>"


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for init to reap it counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_the_orphan_guard_passes_exit_codes_through(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv in (["timeit", "-n", "1", "pass"], ["py_compile", str(tmp_path / "missing.py")]):
        direct = subprocess.run([sys.executable, "-m", *argv], capture_output=True, env=env)
        guarded = subprocess.run(
            [sys.executable, "-m", "course_utils.grading.orphan_guard", *argv],
            capture_output=True,
            env=env,
        )
        assert guarded.returncode == direct.returncode


def test_a_guarded_grading_dies_with_the_worker_that_started_it() -> None:
    """SIGKILL the parent (a stand-in for a dask worker): its guarded child, in a session of its
    own like every grading process, must not run on as an orphan."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-m', 'course_utils.grading.orphan_guard', "
        "'timeit', '-n', '1', 'import time; time.sleep(300)'], start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True, env=env
    )
    child = int(parent.stdout.readline())
    try:
        time.sleep(1)
        assert not _gone(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 60  # a hang guard; the guard polls once a second
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(child), "the guarded process outlived the process that started it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
