"""What the sandbox attacks of ``tests/attacks_sandbox.py`` did in the shared hostile batch.

Points, status and the problem line of each are checked by ``tests/test_grading_hostile.py`` for
every registered variant; here: that each attack really ran (it printed what it tried), that it got
nothing (no connection, nothing followed, nothing changed outside, every limit held), and that the
batch left no kernel or cgroup behind.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import cgroups
from tests.attacks_sandbox import CANARY_SECRET, digests_before, listener
from tests.grading_course import NOTEBOOK, STAGE, tree_digest
from tests.hostile_batch import ISOLATED, Batch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ISOLATED, reason="the bubblewrap sandbox is not usable here"),
]


def _printed(batch: Batch, student: str) -> str:
    notebook = batch.root / "_grading" / "autograded" / student / STAGE / NOTEBOOK
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(
        str(output.get("text", "")) + str(output.get("evalue", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def _kept(batch: Batch, student: str) -> list[Path]:
    grading = batch.root / "_grading"
    return [
        p
        for p in grading.rglob("*")
        if any(part == student or part.startswith(f"{student}--") for part in p.parts)
    ]


def test_the_graders_localhost_got_no_connection(hostile_batch: Batch) -> None:
    printed = _printed(hostile_batch, "sb01_localhost")
    assert "refused: 127.0.0.1" in printed and "refused: localhost" in printed, printed
    assert "CONNECTED" not in printed, printed
    assert "open ports: [" in printed, printed
    # Every port it found is its own kernel's: no other kernel's, no grader's, not the listener's.
    assert "open ports not the kernel's own: []" in printed, printed
    assert listener().accepted == [], listener().accepted


def test_symlinks_and_fifos_left_in_the_folder_are_never_followed(hostile_batch: Batch) -> None:
    printed = _printed(hostile_batch, "sb02_links_in_folder")
    assert "made in /submission: ['00_tiny.ipynb', 'secret.txt', 'course'" in printed, printed
    before = digests_before()
    folder = hostile_batch.root.parent / "canary-outside-the-course"
    assert tree_digest(folder) == before["canary digest"]
    assert (folder / "secret.txt").stat().st_mode == before["canary mode"]  # not chmodded
    assert tree_digest(hostile_batch.root / "nbgrader_config.py") == before["config digest"]
    for student in ("sb02_links_in_folder", "sb03_inbox_links"):
        kept = _kept(hostile_batch, student)
        assert kept, f"nothing kept for {student}"
        for path in kept:
            mode = path.lstat().st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{path} is not a file"
            if stat.S_ISREG(mode):
                assert CANARY_SECRET.encode() not in path.read_bytes(), path


def test_inbox_links_are_named_and_the_solution_is_not_graded_as_the_students(
    hostile_batch: Batch,
) -> None:
    lines = [p for p in hostile_batch.report.problems if p.startswith("sb03_inbox_links:")]
    assert any(re.search(r"pipe\.ipynb is not a regular file \(a FIFO\)", line) for line in lines)
    assert hostile_batch.report.score("sb03_inbox_links", STAGE) == 0
    submitted = hostile_batch.root / "_grading" / "submitted" / "sb03_inbox_links" / STAGE
    assert [p.name for p in submitted.iterdir()] == [NOTEBOOK]
    linked = [g for g in hostile_batch.report.grades if g.student == "sb04_inbox_folder_link"]
    assert linked == [], "a symlinked inbox folder was graded"


def test_tmp_submission_and_dev_shm_hold_at_most_the_disk_limit(hostile_batch: Batch) -> None:
    printed = _printed(hostile_batch, "sb05_fill_disk")
    took = {m[0]: int(m[1]) for m in re.findall(r"(/\S+/fill) took (\d+) MiB", printed)}
    assert set(took) == {"/tmp/fill", "/submission/fill", "/dev/shm/fill"}, printed
    assert all(mib <= 1024 for mib in took.values()), took
    assert "No space left on device" in printed


def test_shared_memory_counts_toward_the_memory_limit(hostile_batch: Batch) -> None:
    printed = _printed(hostile_batch, "sb06_shared_memory")
    assert "HOARDED" not in printed, printed


def test_forks_stop_at_the_pids_limit(hostile_batch: Batch) -> None:
    for student in ("sb07_fork_many", "sb08_blank_forker"):
        printed = _printed(hostile_batch, student)
        found = re.search(r"fork refused after (\d+)", printed)
        assert found and int(found.group(1)) < 256, printed


def test_no_kernel_or_cgroup_outlives_the_batch(hostile_batch: Batch) -> None:
    cgroup = cgroups.create("attacks-probe", memory=None, pids=None)
    if cgroup is None:
        pytest.skip(cgroups.unavailable_reason() or "no cgroups")
    try:
        parents = {d.parent for d in cgroup.dirs.values()}
    finally:
        cgroup.remove()
    mine = f"{os.getpid()}-"  # grade() ran in this process: its jobs' cgroups are named so
    left = [p for parent in parents for p in parent.iterdir() if p.name.startswith(mine)]
    assert left == [], f"job cgroups left behind: {left}"
