"""Hostile submissions against the sandbox's walls, graded in the shared hostile batch.

Registered in ``tests/hostile_batch.py``; the assertions beyond points, status and problem line are
in ``tests/test_attacks_sandbox.py``. Each attack bakes its targets (a TCP listener this module
starts on the grader's 127.0.0.1, a canary folder outside the course, course files) into the
notebook's source when the batch builds it, and prints what it tried, so a test can tell an attack
that was stopped from one that never ran.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from nbformat import NotebookNode

from tests.grading_course import (
    DIED,
    FULL,
    NOTEBOOK,
    STAGE,
    Places,
    Variant,
    _between,
    release_like,
    tree_digest,
)

CANARY_SECRET = "canary: nothing of the grader's outside the course may change"


class Listener:
    """A TCP listener on the grader's 127.0.0.1 recording every connection (started on first use)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, address = self.socket.accept()
            except OSError:
                return
            self.accepted.append(address)
            conn.close()


_STATE: dict[str, object] = {}


def listener() -> Listener:
    if "listener" not in _STATE:
        _STATE["listener"] = Listener()
    return _STATE["listener"]  # type: ignore[return-value]


def canary(places: Places) -> Path:
    """A folder outside the course (next to it) with a secret; its digest is taken once, before
    the batch is graded, in :data:`CANARY_DIGEST`."""
    folder = places.root.parent / "canary-outside-the-course"
    if not folder.exists():
        folder.mkdir()
        (folder / "secret.txt").write_text(CANARY_SECRET)
        os.chmod(folder / "secret.txt", 0o600)
        _STATE["canary digest"] = tree_digest(folder)
        _STATE["canary mode"] = (folder / "secret.txt").stat().st_mode
        _STATE["config digest"] = tree_digest(places.root / "nbgrader_config.py")
    return folder


def digests_before() -> dict[str, object]:
    return dict(_STATE)


LOCALHOST = """\
import glob, os, socket

for host in ("127.0.0.1", "localhost"):
    try:
        socket.create_connection((host, PORT), timeout=2).close()
        print("CONNECTED to the grader's listener via", host)
    except OSError as error:
        print("refused:", host, type(error).__name__)
open_ports = []
for port in range(1, 65536):  # every other kernel's and the grader's ports, if they were here
    probe = socket.socket()
    # (a TCP self-connect, source port == destination port, is no listener)
    if probe.connect_ex(("127.0.0.1", port)) == 0 and probe.getsockname()[1] != port:
        open_ports.append(port)
    probe.close()
# Which of them are the kernel's own (ipykernel listens on a few loopback ports of its own)?
mine = set()
for fd in os.listdir("/proc/self/fd"):
    try:
        mine.add(os.readlink("/proc/self/fd/" + fd))
    except OSError:  # the fd listdir itself used
        pass
listening = {}
for line in open("/proc/net/tcp").readlines()[1:] + open("/proc/net/tcp6").readlines()[1:]:
    fields = line.split()
    if fields[3] == "0A":  # LISTEN
        listening[int(fields[1].rsplit(":", 1)[1], 16)] = "socket:[" + fields[9] + "]"
print("open ports:", open_ports)
print("open ports not the kernel's own:", [p for p in open_ports if listening.get(p) not in mine])
server = socket.create_server(("127.0.0.1", 0))
print("listening on", server.getsockname(), "(nobody else can reach it)")
print("sockets visible:", glob.glob("/tmp/**/*", recursive=True)[:20])"""


def _localhost(nb: NotebookNode, places: Places) -> NotebookNode:
    return _between(nb, LOCALHOST.replace("PORT", str(listener().port)))


def _links_in_folder(nb: NotebookNode, places: Places) -> NotebookNode:
    """Symlinks (named like the notebook nbgrader writes back, and like files it copies to the
    feedback) to course files and the canary, a FIFO: left in /submission for nbgrader."""
    secret = canary(places) / "secret.txt"
    config = places.root / "nbgrader_config.py"
    return _between(
        nb,
        f"""\
import os

made = []
for name, target in [
    ({NOTEBOOK!r}, {str(config)!r}),
    ("secret.txt", {str(secret)!r}),
    ("course", {str(places.root)!r}),
    ("solutions.ipynb", {str(places.root / "solutions" / STAGE / NOTEBOOK)!r}),
]:
    try:
        if os.path.lexists(name):
            os.remove(name)
        os.symlink(target, name)
        made.append(name)
    except OSError as error:
        print("blocked:", name, type(error).__name__)
os.mkfifo("pipe.txt")
made.append("pipe.txt")
print("made in /submission:", made, sorted(os.listdir(".")))""",
    )


def _inbox_links(folder: Path, places: Places) -> None:
    """Inbox entries that point at the course: a symlinked stage notebook, a symlinked folder, a
    FIFO named like a notebook (reading it would block the batch)."""
    solution = places.root / "solutions" / STAGE / NOTEBOOK
    (folder / "work").mkdir()  # the real (blank) notebook sorts after answers/: without the
    (folder / NOTEBOOK).rename(folder / "work" / NOTEBOOK)  # check, the link would be graded
    (folder / "answers").mkdir()
    (folder / "answers" / NOTEBOOK).symlink_to(solution)
    (folder / "course").symlink_to(places.root, target_is_directory=True)
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "secret.txt").symlink_to(canary(places) / "secret.txt")


def _inbox_folder_link(folder: Path, places: Places) -> None:
    """The student's whole inbox folder is a symlink to the course's solutions of the stage."""
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
    folder.symlink_to(places.root / "solutions" / STAGE, target_is_directory=True)


def _fill_disk(nb: NotebookNode, places: Places) -> NotebookNode:
    """4.5 GiB into /tmp, then 2 GiB into /submission and /dev/shm (each emptied again before the
    next, so the memory limit is not what stops it); the last refusal is left uncaught."""
    return _between(
        nb,
        """\
import os

chunk = b"x" * 2**20
last = None
for path, mib in (("/tmp/fill", 4608), ("/submission/fill", 2048), ("/dev/shm/fill", 2048)):
    written = 0
    try:
        with open(path, "wb") as handle:
            for _ in range(mib):
                handle.write(chunk)
                written += 1
            handle.flush()
    except OSError as error:
        last = error
    print(path, "took", written, "MiB")
    os.remove(path)
if last is not None:
    raise last""",
    )


def _shared_memory(nb: NotebookNode, places: Places) -> NotebookNode:
    """4.5 GiB of shared anonymous mmap (RLIMIT_DATA does not count it) touched page by page."""
    return _between(
        nb,
        """\
import mmap

hoard = mmap.mmap(-1, 4608 * 2**20, flags=mmap.MAP_SHARED)
for offset in range(0, len(hoard), 4096):
    hoard[offset] = 1
print("HOARDED 4.5 GiB of shared memory")""",
    )


def _fork_many(nb: NotebookNode, places: Places) -> NotebookNode:
    """Up to 5000 sleeping processes (spawned, not forked: a fork copies the kernel's page tables
    and takes seconds per hundred on a busy machine), then kills them."""
    return _between(
        nb,
        """\
import os, signal

kids = []
try:
    while len(kids) < 5000:
        kids.append(os.posix_spawn("/bin/sleep", ["sleep", "120"], os.environ))
    print("SPAWNED", len(kids))
except OSError as error:
    print("fork refused after", len(kids), type(error).__name__)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)""",
    )


def _blank(nb: NotebookNode, places: Places) -> NotebookNode:
    return release_like(nb)


def _blank_forker(nb: NotebookNode, places: Places) -> NotebookNode:
    return _fork_many(release_like(nb), places)


BLANK = {key: 0.0 for key in FULL}
LIMIT_NOTE = r"ran out of memory \(the limit is 2 GiB, counting shared memory"

VARIANTS_SANDBOX: dict[str, Variant] = {
    "sb01_localhost": Variant(
        _localhost,
        FULL,
        "graded",
        "connects to a listener on the grader's 127.0.0.1, scans every local port, listens itself",
        sandbox=True,
    ),
    "sb02_links_in_folder": Variant(
        _links_in_folder,
        FULL,
        "graded",
        "leaves symlinks (named like the autograded notebook) to course files and the canary, a FIFO",
        sandbox=True,
    ),
    "sb03_inbox_links": Variant(
        _blank,
        BLANK,
        "graded",
        "the release, plus inbox symlinks to the solution notebook, the course, the canary; a FIFO",
        problem=r"answers/00_tiny\.ipynb is a symbolic link .*skipped, never opened",
        sandbox=True,
        inbox=_inbox_links,
    ),
    "sb04_inbox_folder_link": Variant(
        _blank,
        None,
        None,
        "the student's inbox folder is a symlink to the course's solutions/00_tiny",
        problem=r"sb04_inbox_folder_link: a symbolic link .*skipped, not followed",
        sandbox=True,
        inbox=_inbox_folder_link,
    ),
    "sb05_fill_disk": Variant(
        _fill_disk,
        FULL,
        "graded",
        "writes 4.5 GiB to /tmp, 2 GiB to /submission and to /dev/shm",
        problem=r"ran out of disk space \(/submission, /tmp and /dev/shm hold at most 1 GiB each\)",
        sandbox=True,
    ),
    "sb06_shared_memory": Variant(
        _shared_memory,
        DIED,
        "kernel died",
        "touches 4.5 GiB of shared mmap after exercise 1's test (the cgroup counts it)",
        problem=LIMIT_NOTE,
        sandbox=True,
    ),
    "sb07_fork_many": Variant(
        _fork_many,
        FULL,
        "graded",
        "starts up to 5000 sleeping processes, then kills them",
        problem=r"the sandbox refused \d+ new process",
        sandbox=True,
    ),
    "sb08_blank_forker": Variant(
        _blank_forker,
        BLANK,
        "graded",
        "the release (stubs) plus the fork loop",
        problem=r"the sandbox refused \d+ new process",
        sandbox=True,
    ),
}
