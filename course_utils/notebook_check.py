"""Run a learner's stage notebook the quick way and give one verdict per graded exercise.

Used by ``course check NN`` and by the lab's Validate button. The run is what nbgrader's validate does
(a fresh kernel, ``NBGRADER_EXECUTION=validate`` so training shrinks, errors do not stop the run) but
only on the cells the tests need (``exercises.needed_cells``): a stage's demonstrations, which are
most of its run time, are skipped. If a test then fails with a ``NameError`` (it needed a skipped
cell after all), the whole notebook is run again, so a skipped cell can cost time but never points.

The kernel talks over local IPC sockets in a private temporary folder rather than TCP: nothing else
on the machine can connect to it, and ipykernel has no "running over TCP without encryption" warning
to print into the output.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

from course_utils.exercises import Exercise, Verdict, exercises, needed_cells, verdict

CELL_TIMEOUT = 120  # seconds, as nbgrader_config.py's Execute.timeout


@dataclass
class Run:
    """Verdicts of one notebook run, the executed notebook and what it cost."""

    verdicts: list[Verdict]
    executed: nbformat.NotebookNode
    cells_run: int
    code_cells: int
    seconds: float
    full: bool


@contextlib.contextmanager
def _grading_env() -> Iterator[None]:
    """nbgrader's validate variables, seen by the kernel started inside the block."""
    names = {"NBGRADER_EXECUTION": "validate", "NBGRADER_VALIDATING": "1"}
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _execute(
    nb: nbformat.NotebookNode,
    indices: list[int],
    folder: Path,
    on_cell: Callable[[int], None],
    timeout: int,
) -> nbformat.NotebookNode:
    """Execute the cells ``indices`` of ``nb`` (in order, in ``folder``) and return ``nb`` with
    their outputs; the other cells are left without outputs."""
    executed = copy.deepcopy(nb)
    for cell in executed.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    part = copy.deepcopy(executed)
    part.cells = [executed.cells[i] for i in indices]  # the same objects: outputs land in place
    with tempfile.TemporaryDirectory(prefix="course-kernel-") as sockets, _grading_env():
        ipc = {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}
        client = NotebookClient(
            part,
            config=Config({"KernelManager": ipc}),
            kernel_name="python3",
            timeout=timeout,
            allow_errors=True,
            interrupt_on_timeout=True,
            resources={"metadata": {"path": str(folder)}},
        )
        client.on_cell_start = lambda cell, cell_index: on_cell(indices[cell_index])
        client.execute()
    return executed


def run_exercises(
    path: Path,
    *,
    full: bool = False,
    on_status: Callable[[str], None] | None = None,
    timeout: int = CELL_TIMEOUT,
) -> Run:
    """Run the notebook at ``path`` (only what its tests need unless ``full``) and judge each exercise.

    ``on_status`` is told what is happening: which exercise is being tested, and a re-run.
    """
    say = on_status or (lambda message: None)
    nb = nbformat.read(path, as_version=4)
    graded = exercises(nb)
    by_index: dict[int, Exercise] = {e.index: e for e in graded}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]

    def on_cell(index: int) -> None:
        if index in by_index:
            say(f"testing {by_index[index].title}")

    start = time.perf_counter()
    indices = code if full else needed_cells(nb)
    executed = _execute(nb, indices, path.parent, on_cell, timeout)
    verdicts = [verdict(e, executed.cells[e.index]) for e in graded]
    if not full and any(v.reason.startswith("NameError") for v in verdicts):
        say("a test needs a cell the quick run skipped: running the whole notebook")
        indices = code
        executed = _execute(nb, indices, path.parent, on_cell, timeout)
        verdicts = [verdict(e, executed.cells[e.index]) for e in graded]
        full = True
    seconds = time.perf_counter() - start
    return Run(verdicts, executed, len(indices), len(code), seconds, full or indices == code)
