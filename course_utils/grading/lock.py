"""One ``course grade`` at a time per course, and the leftovers of a run that died.

Two runs grading one course at once share its workspaces, templates and gradebook, and break each
other's grading (honest students end up "error, 0"). So ``autograde.grade`` holds an exclusive
``flock`` on ``_grading/grade.lock`` for the whole run (:func:`hold`) and writes who holds it (pid,
host, start time, command) into the file. A second run reads that and stops with :class:`GradingLocked`
naming the holder (``course grade`` exits 2).

The kernel releases a ``flock`` when its holder dies, however it dies (SIGKILL included), so a lock
left by a dead run is never mistaken for a live one: the next run takes it at once. It finds the
dead run's details still in the file (a run that ends normally empties it) and then removes what
that run left: its job workspaces under ``_grading/work/jobs/`` and its kernels' connection files
(the ``course-grade-<course>-*`` folders in the temporary directory, see :func:`runtime_prefix`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_NAME = "grade.lock"


class GradingLocked(RuntimeError):
    """Another ``course grade`` holds the course's lock."""


def runtime_prefix(root: Path) -> str:
    """The name prefix of this course's kernel runtime folders (connection files) in the temporary
    directory: they live outside the course (the sandbox shows them at their real path), and a
    later run must still know which ones are this course's."""
    tag = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return f"course-grade-{tag}-"


def _holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode(errors="replace").strip()
    if not text:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "started": "?", "command": text[:200]}
    return holder if isinstance(holder, dict) else None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "an unknown process (the lock file is empty)"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
        f"{holder.get('started', '?')}"
    )


@contextlib.contextmanager
def hold(root: Path) -> Iterator[dict[str, Any] | None]:
    """Hold the course's grading lock; yields the details a dead run left in it (None if the last
    run ended normally). Raises :class:`GradingLocked` at once if a live run holds it."""
    grading = Path(root) / "_grading"
    grading.mkdir(parents=True, exist_ok=True)
    path = grading / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GradingLocked(
                f"another `course grade` is grading this course: {describe_holder(_read(fd))} "
                f"({path}); wait for it to finish or stop it, then run again"
            ) from None
        dead = _read(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode() + b"\n", 0)
        os.fsync(fd)
        try:
            yield dead
        finally:
            os.ftruncate(fd, 0)  # never unlinked: a waiting run may have the file open
    finally:
        os.close(fd)  # releases the flock


def clear_leftovers(root: Path, dead: dict[str, Any] | None) -> list[str]:
    """Remove what earlier runs left behind; one line per thing removed.

    Always: this course's kernel runtime folders (no live run of this course exists while the lock
    is held). After a dead run (``dead``, from :func:`hold`): its job workspaces too (a run that
    ends normally keeps the workspaces of failed jobs for inspection).
    """
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(runtime_prefix(root) + "*"):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    jobs = Path(root) / "_grading" / "work" / "jobs"
    if dead is not None and jobs.exists():
        shutil.rmtree(jobs, ignore_errors=True)
        removed.append(str(jobs))
    return removed


def takeover_line(dead: dict[str, Any], removed: list[str]) -> str:
    """The problem line that says a dead run's lock was taken over."""
    return (
        f"an earlier `course grade` ({describe_holder(dead)}) died while grading; took over its "
        f"lock and removed {len(removed)} of its leftovers"
    )
