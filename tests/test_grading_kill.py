"""``course grade`` SIGKILLed while notebooks run: nothing of that run survives it (no nbgrader job,
no bwrap, no kernel), and the next run takes over its lock, removes its leftovers and completes the
batch with the right scores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from course_utils.grading.autograde import grade
from course_utils.grading.lock import LOCK_NAME, runtime_prefix
from tests.grading_course import (
    FULL,
    REPO,
    STAGE,
    Places,
    _between,
    build,
    make_grading_course,
    solution_notebook,
    write_submission,
)

pytestmark = [
    pytest.mark.slow,  # two gradings of two tiny notebooks
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)"),
]


def _processes_of(root: Path) -> dict[int, str]:
    """Every process of a grading of ``root``: nbgrader jobs (their working folder is a workspace
    of the course) and sandboxes and kernels (their command line names the course's runtime
    folder, where the connection file is)."""
    prefix, found = runtime_prefix(root), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone, or not ours to read
            continue
        if prefix in cmdline or Path(cwd).is_relative_to(root):
            found[int(entry.name)] = cmdline.strip()[:200]
    return found


def _kernels(processes: dict[int, str]) -> list[int]:
    return [pid for pid, cmd in processes.items() if "ipykernel_launcher" in cmd]


def _sleeper() -> object:
    """The solution with a cell that sleeps long enough to be killed in."""
    return _between(solution_notebook(), "import time\n\ntime.sleep(8)")


def test_sigkill_leaves_no_process_and_the_rerun_completes(tmp_path: Path) -> None:
    root = make_grading_course(tmp_path / "course").resolve()
    subs = tmp_path / "submissions"
    places = Places(root=root, repo=REPO, submissions=subs, home=Path.home())
    write_submission(subs, "k1_solution", build("s01_solution", places))
    write_submission(subs, "k2_sleeper", _sleeper())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "course_utils.cli", "--root", str(root), "grade", str(subs)]
    grader = subprocess.Popen(
        [*command, "--jobs=2", "--cell-timeout=60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not _kernels(_processes_of(root)):
            assert grader.poll() is None, "course grade ended before any kernel started"
            assert time.monotonic() < deadline, "no grading kernel started in 300 s"
            time.sleep(0.2)
        time.sleep(1)  # the kernel is running the notebook
        running = _processes_of(root)
        assert any("nbgrader_job" in cmd for cmd in running.values()), running
        grader.send_signal(signal.SIGKILL)
        grader.wait(timeout=30)

        deadline = time.monotonic() + 15  # the grace period: PDEATHSIG is immediate
        while _processes_of(root) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_of(root) == {}, f"left running after SIGKILL: {_processes_of(root)}"
        assert (root / "_grading" / LOCK_NAME).read_text().strip(), "the dead run's lock is empty"
        leftovers = list(Path(tempfile.gettempdir()).glob(runtime_prefix(root) + "*"))
    finally:
        for pid in _processes_of(root):  # only if the test failed: what this test started
            os.kill(pid, signal.SIGKILL)
        if grader.poll() is None:
            grader.kill()
            grader.wait()

    report = grade(root, subs, jobs=2, cell_timeout=60)
    assert report.problems[0].startswith("an earlier `course grade` (pid ")
    assert (
        f"pid {grader.pid} on " in report.problems[0] and "took over its lock" in report.problems[0]
    )
    for student in ("k1_solution", "k2_sleeper"):
        result = report.grade(student, STAGE)
        assert (result.cells, result.status) == (FULL, "graded"), (student, result.notes)
    assert report.problems[1:] == []
    assert "took over its lock" in (root / "_grading" / "summary.md").read_text()
    assert leftovers, "the killed run had no connection-file folder to leave behind"
    assert not any(path.exists() for path in leftovers)
    assert not list(Path(tempfile.gettempdir()).glob(runtime_prefix(root) + "*"))
    assert (root / "_grading" / LOCK_NAME).read_text() == ""  # released at the end of the run
    assert _processes_of(root) == {}
