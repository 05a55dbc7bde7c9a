"""A memory and a pids cgroup per grading job, so the sandbox's limits count everything it holds.

``RLIMIT_DATA`` (``memory.py``) stops ``bytearray`` and ``torch.ones``, but not a shared ``mmap``,
a ``memfd`` or files written to the sandbox's tmpfs folders (``/tmp``, ``/dev/shm``,
``/submission``): those are shared memory, charged to no process's data. A memory cgroup charges
all of them to the job: beyond its limit the kernel's out-of-memory killer stops a process *of that
job* (the student's kernel), never another student's or the grader. A pids cgroup caps the tasks
(processes and threads) the job may hold, so a fork bomb stops there.

Layout: ``<controller>/<the grader's own cgroup>/course-grade/<grader pid>-<job>``, on cgroup v1
(one hierarchy per controller, ``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/pids``) or v2 (one
``/sys/fs/cgroup`` tree, used only where the grader's own cgroup can hand memory and pids to a
child; untested here: the machines this was written on have v1). Nested under the grader's own
cgroup, so a limit an administrator put on the grader still covers its kernels.

A process enters the job's cgroup by writing its pid into each ``cgroup.procs`` (the sandbox's
start command does, ``sandbox.py``), before it execs bubblewrap, so everything the student starts
is inside from the first instruction. :meth:`JobCgroup.remove` kills whatever is left in the job and
removes it; :func:`remove_stale` removes those of grader processes that died (``kill -9`` of
``course grade``), at the start of the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "course-grade"
_V1_CONTROLLERS = ("memory", "pids")
_JOB = re.compile(r"^(\d+)-")


def _own_path(controller: str | None) -> str | None:
    """This process's cgroup path in ``controller``'s v1 hierarchy (None: the v2 one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller is None and names == "":
            return path
        if controller is not None and controller in names.split(","):
            return path
    return None


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def _parents() -> tuple[int, dict[str, Path]] | None:
    """(cgroup version, {controller: parent folder of the jobs}), or None where neither works."""
    v1 = {c: CGROUP_ROOT / c for c in _V1_CONTROLLERS}
    if all((p / "cgroup.procs").exists() for p in v1.values()):
        found = {}
        for controller, mount in v1.items():
            own = _own_path(controller)
            if own is None or not _writable(mount / own.lstrip("/")):
                return None
            found[controller] = mount / own.lstrip("/") / PARENT
        return 1, found
    own = _own_path(None)
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if own is not None and controllers.exists():
        base = CGROUP_ROOT / own.lstrip("/")
        if set(_V1_CONTROLLERS) <= set(controllers.read_text().split()) and _writable(base):
            return 2, {"v2": base / PARENT}
    return None


@dataclass
class JobCgroup:
    """One grading job's cgroups: put processes in with :meth:`procs_files`, read :meth:`notes`,
    end with :meth:`remove`."""

    version: int
    dirs: dict[str, Path]  # v1: {"memory": ..., "pids": ...}; v2: {"v2": ...}
    memory: int | None
    pids: int | None

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid into to join the job."""
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def _read(self, controller: str, name: str) -> str:
        folder = self.dirs.get("v2") or self.dirs[controller]
        try:
            return (folder / name).read_text()
        except OSError:
            return ""

    def peak_memory(self) -> int:
        """The most memory the job held at once, in bytes (0: nothing ran in it)."""
        if self.version == 1:
            return _int(self._read("memory", "memory.max_usage_in_bytes"))
        return _int(self._read("memory", "memory.peak"))

    def events(self) -> dict[str, int]:
        """How often each limit was hit: ``oom_kill`` (processes killed for memory), ``memory_max``
        (allocations that hit the limit) and ``pids_max`` (forks refused)."""
        found = {"oom_kill": 0, "memory_max": 0, "pids_max": 0}
        if self.version == 1:
            found["oom_kill"] = _field(self._read("memory", "memory.oom_control"), "oom_kill")
            found["memory_max"] = _int(self._read("memory", "memory.failcnt"))
            found["pids_max"] = _field(self._read("pids", "pids.events"), "max")
        else:
            memory = self._read("memory", "memory.events")
            found["oom_kill"] = _field(memory, "oom_kill")
            found["memory_max"] = _field(memory, "max")
            found["pids_max"] = _field(self._read("pids", "pids.events"), "max")
        return found

    def notes(self) -> list[str]:
        """One line per limit the job hit, for the submission's notes."""
        from course_utils.grading.memory import describe

        hit = self.events()
        notes = []
        if hit["oom_kill"] and self.memory:
            notes.append(
                f"the sandbox ran out of memory (the limit is {describe(self.memory)}, counting "
                "shared memory and files in /tmp, /dev/shm and /submission): "
                f"{hit['oom_kill']} process(es) of this notebook were killed"
            )
        if hit["pids_max"] and self.pids:
            notes.append(
                f"the sandbox refused {hit['pids_max']} new process(es) or thread(s) "
                f"(the limit is {self.pids} per notebook)"
            )
        return notes

    def pids_inside(self) -> list[int]:
        pids: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
        return sorted(pids)

    def remove(self, timeout: float = 10.0) -> None:
        """Kill every process still in the job, then remove its cgroups (quietly if gone)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids_inside()
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for folder in self.dirs.values():
            _rmdir(folder, deadline)


def _rmdir(folder: Path, deadline: float) -> None:
    """rmdir, retried while the last killed tasks are still being reaped (EBUSY)."""
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)


def _int(text: str) -> int:
    try:
        return int(text.strip() or 0)
    except ValueError:
        return 0


def _field(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return _int(value)
    return 0


def unavailable_reason() -> str | None:
    """None when per-job memory and pids cgroups can be made here, else why not."""
    if _parents() is None:
        return (
            "no writable memory and pids cgroups (cgroup v1 /sys/fs/cgroup/{memory,pids}, or a v2 "
            "cgroup that can delegate both; run the grader as root or in a delegated cgroup)"
        )
    return None


def create(job: str, memory: int | None, pids: int | None) -> JobCgroup | None:
    """The job's cgroups with these limits (None: no limit of that kind), or None where cgroups
    cannot be made here (see :func:`unavailable_reason`). ``job`` is unique among running jobs."""
    found = _parents()
    if found is None:
        return None
    version, parents = found
    name = f"{os.getpid()}-{re.sub(r'[^A-Za-z0-9_.@+-]', '_', job)}"
    dirs = {key: parent / name for key, parent in parents.items()}
    try:
        for key, folder in dirs.items():
            if version == 2:  # both levels must hand memory and pids down
                parent = folder.parent
                with contextlib.suppress(OSError):  # already on, or refused: the next line says
                    (parent.parent / "cgroup.subtree_control").write_text("+memory +pids")
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+memory +pids")
            else:
                folder.parent.mkdir(exist_ok=True)
            if folder.exists():  # a job of the same name that was not removed: start clean
                JobCgroup(version, {key: folder}, None, None).remove()
            folder.mkdir()
        cgroup = JobCgroup(version, dirs, memory, pids)
        _set_limits(cgroup)
    except OSError:
        JobCgroup(version, dirs, None, None).remove(timeout=1)
        return None
    return cgroup


def _set_limits(cgroup: JobCgroup) -> None:
    if cgroup.version == 1:
        memory, pid_dir = cgroup.dirs["memory"], cgroup.dirs["pids"]
        if cgroup.memory is not None:
            (memory / "memory.limit_in_bytes").write_text(str(cgroup.memory))
            swap = memory / "memory.memsw.limit_in_bytes"  # with swap: no escaping to it
            if swap.exists():
                with contextlib.suppress(OSError):
                    swap.write_text(str(cgroup.memory))
        if cgroup.pids is not None:
            (pid_dir / "pids.max").write_text(str(cgroup.pids))
        return
    folder = cgroup.dirs["v2"]
    if cgroup.memory is not None:
        (folder / "memory.max").write_text(str(cgroup.memory))
        with contextlib.suppress(OSError):
            (folder / "memory.swap.max").write_text("0")
    if cgroup.pids is not None:
        (folder / "pids.max").write_text(str(cgroup.pids))


def remove_stale() -> int:
    """Remove the job cgroups of grader processes that are gone (killed mid-run), killing what is
    still inside; returns how many were removed."""
    found = _parents()
    if found is None:
        return 0
    version, parents = found
    removed = 0
    for key, parent in parents.items():
        if not parent.is_dir():
            continue
        for folder in parent.iterdir():
            match = _JOB.match(folder.name)
            if not folder.is_dir() or match is None or _alive(int(match.group(1))):
                continue
            JobCgroup(version, {key: folder}, None, None).remove()
            removed += not folder.exists()
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
