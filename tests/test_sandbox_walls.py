"""Attacks on the sandbox's walls, without nbgrader: small scripts run through ``sandbox_argv``.

Every script runs with exactly the walls a grading kernel gets (``sandbox.sandbox_argv``), plus the
job's cgroups and CPU limit where a test needs them, with small limits (512 MiB of memory, 32 tasks,
1 s of CPU) so each attack stays cheap. Each test starts what it attacks itself (a TCP listener,
another sandbox, a canary file) and asserts the attack failed, and how.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from course_utils.grading import cgroups, sandbox
from course_utils.grading.collect import collect

pytestmark = pytest.mark.skipif(
    not sandbox.available(),
    reason=f"bubblewrap sandbox unusable here: {sandbox.unavailable_reason()}",
)
needs_cgroups = pytest.mark.skipif(
    cgroups.unavailable_reason() is not None, reason=f"{cgroups.unavailable_reason()}"
)
MiB = 2**20
GUARD = 120  # seconds: a hang guard, not a time assertion


def _run(
    tmp_path: Path,
    script: str,
    *,
    cgroup: cgroups.JobCgroup | None = None,
    cpu_seconds: int | None = None,
    disk_limit: int = sandbox.DEFAULT_DISK_LIMIT,
    name: str = "job",
) -> subprocess.CompletedProcess:
    workdir, runtime = tmp_path / f"{name}-work", tmp_path / f"{name}-runtime"
    workdir.mkdir(exist_ok=True)
    runtime.mkdir(exist_ok=True)
    argv = sandbox.sandbox_argv(
        workdir,
        runtime,
        [sys.executable, "-c", textwrap.dedent(script)],
        sockets=runtime / "ipc",
        cgroup=cgroup,
        cpu_seconds=cpu_seconds,
        disk_limit=disk_limit,
    )
    return subprocess.run(argv, capture_output=True, text=True, timeout=GUARD)


@pytest.fixture
def job_cgroup(request):
    """A job cgroup with the limits of ``@pytest.mark.parametrize``-free markers: 512 MiB, 32 tasks."""
    cgroup = cgroups.create(f"walls-{request.node.name}", memory=512 * MiB, pids=32)
    assert cgroup is not None, cgroups.unavailable_reason()
    yield cgroup
    cgroup.remove()
    assert all(not d.exists() for d in cgroup.dirs.values()), "the job's cgroup was left behind"


# --- privileges --------------------------------------------------------------------------------


def test_no_capabilities_and_open_by_handle_at_is_refused(tmp_path: Path) -> None:
    """The issue's escape: open_by_handle_at on the root file system's root inode (the "shocker"
    attack) needs CAP_DAC_READ_SEARCH in the machine's user namespace; the kernel has none."""
    result = _run(
        tmp_path,
        """
        import ctypes, ctypes.util, json, os, struct
        caps = {l.split(":")[0]: l.split()[1] for l in open("/proc/self/status") if l.startswith("Cap")}
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        # struct file_handle for an ext4/xfs root inode: handle_bytes=8, type 1 (FILEID_INO32_GEN),
        # inode 2, generation 0; then the one name_to_handle_at returns for "/" itself.
        handles = [struct.pack("=Ii", 8, 1) + struct.pack("=II", 2, 0)]
        buf = ctypes.create_string_buffer(8 + 128)
        struct.pack_into("=I", buf, 0, 128)
        mount_id = ctypes.c_int()
        if libc.name_to_handle_at(-100, b"/", buf, ctypes.byref(mount_id), 0) == 0:
            handles.append(buf.raw)
        results = []
        fd = os.open("/", os.O_RDONLY)
        for raw in handles:
            handle = ctypes.create_string_buffer(raw, len(raw))
            got = libc.open_by_handle_at(fd, handle, os.O_RDONLY)
            results.append(got if got < 0 else "OPENED")
            results.append(os.strerror(ctypes.get_errno()))
        print(json.dumps({"caps": caps, "uid": os.getuid(), "open_by_handle_at": results}))
        """,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["caps"]["CapEff"] == "0000000000000000", found
    assert found["caps"]["CapPrm"] == "0000000000000000", found
    assert found["caps"]["CapBnd"] == "0000000000000000", found
    assert found["uid"] == sandbox.SANDBOX_UID
    assert "OPENED" not in found["open_by_handle_at"], found
    assert "Operation not permitted" in found["open_by_handle_at"], found


def test_no_new_user_namespace_and_no_raising_limits(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        """
        import ctypes, ctypes.util, resource
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        CLONE_NEWUSER = 0x10000000
        if libc.unshare(CLONE_NEWUSER) == 0:
            print("UNSHARED")
        else:
            print("unshare refused", ctypes.get_errno())
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY,) * 2)
            print("RAISED")
        except (ValueError, OSError):
            print("raise refused")
        """,
        cpu_seconds=30,
    )
    assert "unshare refused" in result.stdout, (result.stdout, result.stderr)
    assert "raise refused" in result.stdout, (result.stdout, result.stderr)


# --- network -----------------------------------------------------------------------------------


class _Listener:
    """A TCP listener on 127.0.0.1 outside the sandbox that records every connection."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, address = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted.append(address)
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.socket.close()


def test_a_listener_on_the_graders_localhost_receives_nothing(tmp_path: Path) -> None:
    listener = _Listener()
    try:
        result = _run(
            tmp_path,
            f"""
            import socket
            for host in ("127.0.0.1", "localhost", "::1"):
                try:
                    socket.create_connection((host, {listener.port}), timeout=2).close()
                    print("CONNECTED", host)
                except OSError as error:
                    print("refused", host, type(error).__name__)
            print("interfaces", sorted(l.split(":")[0].strip() for l in open("/proc/net/dev")
                                       if ":" in l))
            """,
        )
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    assert "CONNECTED" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 3, result.stdout
    assert "interfaces ['lo']" in result.stdout, result.stdout
    assert listener.accepted == [], listener.accepted


def test_a_second_sandbox_cannot_reach_the_first_ones_ipc_sockets(tmp_path: Path) -> None:
    """A's kernel-style socket in its own socket folder, and an abstract one; B sees neither."""
    first_ipc = tmp_path / "a-runtime" / "ipc"
    ready = tmp_path / "a-runtime" / "ipc" / "ready"
    workdir_a, runtime_a = tmp_path / "a-work", tmp_path / "a-runtime"
    workdir_a.mkdir()
    runtime_a.mkdir()
    server = textwrap.dedent(
        f"""
        import socket, time
        named = socket.socket(socket.AF_UNIX)
        named.bind({str(first_ipc / "kernel-1")!r})
        named.listen()
        abstract = socket.socket(socket.AF_UNIX)
        abstract.bind("\\0course-grade-test")
        abstract.listen()
        open({str(ready)!r}, "w").close()
        time.sleep(20)
        """
    )
    argv = sandbox.sandbox_argv(
        workdir_a, runtime_a, [sys.executable, "-c", server], sockets=first_ipc
    )
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + GUARD
        while not ready.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        probe = socket.socket(socket.AF_UNIX)  # from outside, the socket works: it is real
        probe.connect(str(first_ipc / "kernel-1"))
        probe.close()
        result = _run(
            tmp_path,
            f"""
            import os, socket
            for address in ({str(first_ipc / "kernel-1")!r}, "\\0course-grade-test"):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(address)
                    print("CONNECTED", repr(address))
                except OSError as error:
                    print("refused", repr(address), type(error).__name__)
            print("sees", os.path.exists({str(first_ipc)!r}))
            """,
            name="b",
        )
    finally:
        first.kill()
        first.communicate()
    assert result.returncode == 0, result.stderr
    assert "CONNECTED" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 2, result.stdout
    assert "sees False" in result.stdout, result.stdout


# --- memory, disk, processes, CPU --------------------------------------------------------------

FILL = """
import mmap, os, sys
MiB = 2**20
chunk = b"x" * MiB
kind = {kind!r}
done = 0
if kind == "shared mmap":
    area = mmap.mmap(-1, {size} * MiB, flags=mmap.MAP_SHARED)
    for i in range({size}):
        area[i * MiB:(i + 1) * MiB] = chunk
        done += 1
elif kind == "memfd":
    fd = os.memfd_create("hoard")
    for i in range({size}):
        os.write(fd, chunk)
        done += 1
else:
    with open({path!r}, "wb") as handle:
        for i in range({size}):
            handle.write(chunk)
            handle.flush()
            done += 1
print("DONE", done, flush=True)
"""


@needs_cgroups
@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("shared mmap", ""),
        ("memfd", ""),
        ("/dev/shm", "/dev/shm/hoard"),
        ("/tmp", "/tmp/hoard"),
        ("/submission", "/submission/hoard"),
    ],
)
def test_shared_memory_and_tmpfs_count_toward_the_memory_limit(
    tmp_path: Path, job_cgroup: cgroups.JobCgroup, kind: str, path: str
) -> None:
    """1 GiB of shared memory or files against a 512 MiB job: the job's process is killed (the
    tmpfs folders are made larger than the memory limit here, so the cgroup is what stops it)."""
    result = _run(
        tmp_path,
        FILL.format(kind=kind, size=1024, path=path),
        cgroup=job_cgroup,
        disk_limit=2 * 1024 * MiB,
    )
    assert "DONE" not in result.stdout, (result.returncode, result.stdout, result.stderr)
    assert result.returncode != 0
    events = job_cgroup.events()
    assert events["oom_kill"] >= 1, events
    assert any("ran out of memory" in n for n in job_cgroup.notes()), job_cgroup.notes()


@pytest.mark.parametrize("folder", ["/submission", "/tmp", "/dev/shm"])
def test_each_writable_folder_holds_at_most_the_disk_limit(tmp_path: Path, folder: str) -> None:
    """Without cgroups too: the tmpfs folders are sized, a write beyond fails with ENOSPC."""
    result = _run(
        tmp_path,
        FILL.format(kind="file", size=64, path=f"{folder}/hoard"),
        disk_limit=16 * MiB,
    )
    assert "DONE" not in result.stdout, result.stdout
    assert "No space left on device" in result.stderr, result.stderr


@needs_cgroups
def test_a_fork_bomb_stops_at_the_pids_limit(tmp_path: Path, job_cgroup: cgroups.JobCgroup) -> None:
    result = _run(
        tmp_path,
        """
        import os, signal, time
        kids = []
        try:
            while len(kids) < 1000:
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                kids.append(pid)
        except OSError as error:
            print("refused after", len(kids), type(error).__name__, flush=True)
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        """,
        cgroup=job_cgroup,
    )
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[:2] == ["refused", "after"], result.stdout
    assert int(words[2]) < 32, result.stdout
    assert job_cgroup.events()["pids_max"] >= 1
    assert any("refused" in n and "32" in n for n in job_cgroup.notes()), job_cgroup.notes()


def test_a_busy_loop_stops_at_the_cpu_time_limit(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        """
        import signal
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)  # ignoring the warning does not help
        while True:
            pass
        """,
        cpu_seconds=1,
    )
    assert result.returncode != 0, (result.stdout, result.stderr)


# --- what the sandbox leaves behind ------------------------------------------------------------


def test_nothing_made_inside_reaches_the_workdir(tmp_path: Path) -> None:
    """Symlinks to a canary outside, a FIFO, a device, a file: none appear in the host's workdir
    (what nbgrader copies out), the canary is unchanged, the workdir's own file is read-only."""
    canary = tmp_path / "canary"
    canary.write_text("secret")
    workdir = tmp_path / "job-work"
    workdir.mkdir()
    (workdir / "given.txt").write_text("from the grader")
    result = _run(
        tmp_path,
        f"""
        import os
        os.symlink({str(canary)!r}, "/submission/link")
        os.symlink("/", "/submission/root")
        os.mkfifo("/submission/fifo")
        try:
            os.mknod("/submission/dev", 0o600 | 0o20000, os.makedev(1, 3))
        except OSError as error:
            print("mknod refused", type(error).__name__)
        open("/submission/made.txt", "w").write("x")
        print("given", open("/submission/given.txt").read())
        try:
            open("/submission/given.txt", "w").write("changed")
            print("CHANGED")
        except OSError as error:
            print("given is read-only", type(error).__name__)
        print(sorted(os.listdir("/submission")))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "given from the grader" in result.stdout
    assert "given is read-only" in result.stdout
    assert sorted(p.name for p in workdir.iterdir()) == ["given.txt"]
    assert (workdir / "given.txt").read_text() == "from the grader"
    assert canary.read_text() == "secret"


def test_collect_skips_symlinks_and_fifos_in_the_inbox_without_opening_them(tmp_path: Path) -> None:
    secret = tmp_path / "course" / "solutions" / "00_tiny" / "00_tiny.ipynb"
    secret.parent.mkdir(parents=True)
    secret.write_text('{"the": "solutions"}')
    root = tmp_path / "course"
    inbox = tmp_path / "inbox"
    (inbox / "linker").mkdir(parents=True)
    (inbox / "linker" / "00_tiny.ipynb").symlink_to(secret)
    (inbox / "linker" / "sub").symlink_to(secret.parent, target_is_directory=True)
    (inbox / "piper").mkdir()
    os.mkfifo(inbox / "piper" / "00_tiny.ipynb")  # opening it would block the batch forever
    (inbox / "folder_link").symlink_to(secret.parent, target_is_directory=True)
    found, problems = collect(root, inbox, ["00_tiny"])
    assert found == []
    text = "\n".join(problems)
    assert "linker: 00_tiny.ipynb is a symbolic link" in text, problems
    assert "piper: 00_tiny.ipynb is not a regular file" in text, problems
    assert "folder_link: a symbolic link" in text, problems
    assert not (root / "_grading" / "submitted" / "linker").exists()


# --- cleaning up -------------------------------------------------------------------------------


@needs_cgroups
def test_removing_a_job_kills_what_is_left_in_it(tmp_path: Path) -> None:
    cgroup = cgroups.create("walls-leftover", memory=512 * MiB, pids=32)
    assert cgroup is not None
    workdir, runtime = tmp_path / "w", tmp_path / "r"
    workdir.mkdir()
    runtime.mkdir()
    argv = sandbox.sandbox_argv(workdir, runtime, ["sleep", "300"], cgroup=cgroup)
    sleeper = subprocess.Popen(argv)
    deadline = time.monotonic() + GUARD
    while len(cgroup.pids_inside()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cgroup.remove()
    assert sleeper.wait(timeout=GUARD) != 0
    assert all(not d.exists() for d in cgroup.dirs.values())


@needs_cgroups
def test_sigkill_of_the_grader_leaves_no_sandbox_and_a_rerun_removes_its_cgroup(
    tmp_path: Path,
) -> None:
    """A stand-in grader makes a job cgroup, starts a sandboxed sleeper, and is killed with -9:
    bwrap (--die-with-parent) takes the sleeper down, and remove_stale() removes the cgroup."""
    grader = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from pathlib import Path
        from course_utils.grading import cgroups, sandbox
        cgroup = cgroups.create("walls-killed", memory=512 * 2**20, pids=32)
        argv = sandbox.sandbox_argv(Path({str(tmp_path)!r}), Path({str(tmp_path)!r}),
                                    ["sleep", "300"], cgroup=cgroup)
        subprocess.Popen(argv)
        print(*[str(d) for d in cgroup.dirs.values()], flush=True)
        time.sleep(300)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-c", grader], stdout=subprocess.PIPE, text=True, env=env
    )
    dirs = [Path(d) for d in process.stdout.readline().split()]
    assert dirs, "the stand-in grader made no cgroup"
    procs = dirs[0] / "cgroup.procs"
    deadline = time.monotonic() + GUARD
    while len(procs.read_text().split()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=GUARD)
    while procs.read_text().split():  # bwrap --die-with-parent ends the sleeper
        assert time.monotonic() < deadline, procs.read_text()
        time.sleep(0.05)
    assert all(d.exists() for d in dirs)  # left by the dead run, until the next one
    cgroups.remove_stale()
    assert not any(d.exists() for d in dirs)


# --- what course doctor reports ----------------------------------------------------------------


def test_protections_report_every_wall_as_measured(monkeypatch) -> None:
    found = {name: (active, detail) for name, active, detail in sandbox.protections()}
    assert set(found) == {
        "user namespace",
        "network namespace",
        "memory and pids cgroup per job",
        "workspace size cap",
        "CPU-time limit",
    }
    assert found["user namespace"][0] and "0000000000000000" in found["user namespace"][1]
    assert found["network namespace"] == (True, "interfaces inside: ['lo']")
    assert found["workspace size cap"][0]
    if cgroups.unavailable_reason() is None:
        assert found["memory and pids cgroup per job"][0]
    monkeypatch.setattr(cgroups, "_parents", lambda: None)  # a machine without usable cgroups
    without = {name: (active, detail) for name, active, detail in sandbox.protections()}
    active, detail = without["memory and pids cgroup per job"]
    assert not active and "fallback" in detail and "not capped" in detail, detail
