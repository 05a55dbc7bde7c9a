"""A tiny real course (one stage, two exercises) and a class of hostile submissions for grading tests.

``make_grading_course(target)`` writes a course root with ``nbgrader_config.py``, the ``course_utils``
marker folder and ``solutions/00_tiny/00_tiny.ipynb``: a locked setup cell, two exercises in the exact
style of the course (answer cell + locked test cell whose hidden block imports the check fresh), worth
1 and 2 points. Grading it costs one kernel start (torch import) and well under a second of checks.

``VARIANTS`` maps a student id to a :class:`Variant`: how to build that student's notebook from the
solution, and what grading must give it. Hostile variants bake absolute paths (course root, repository,
submissions folder, home) into their sources, so builders take a :class:`Places`.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
STAGE = "00_tiny"
NOTEBOOK = f"{STAGE}.ipynb"
EX1 = "expected_initial_loss"
EX2 = "sample_log_uniform"
EX1_TEST = f"{EX1}_test"
EX2_TEST = f"{EX2}_test"
POINTS = {EX1_TEST: 1.0, EX2_TEST: 2.0}
FULL = dict(POINTS)
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"  # nbgrader_config.py's ClearSolutions stub
# Printed by the reading variant for each secret it could read. Its source builds the marker by
# concatenation, so it only appears in a notebook or its feedback if the cell really printed it (the
# writing variant prints "WROTE:<path>" the same way; inside the sandbox that may be its own tmpfs).
LEAKED = "LEAKED:"


# --------------------------------------------------------------------------------------------------
# The solution notebook
# --------------------------------------------------------------------------------------------------


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None):
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return {"nbgrader": dict(sorted(meta.items()))}


def _read_only(grade_id: str) -> dict:
    return _meta(grade_id, grade=False, solution=False, locked=True)


def _answer_meta(grade_id: str) -> dict:
    return _meta(grade_id, grade=False, solution=True, locked=False)


def _test_meta(grade_id: str, points: float) -> dict:
    return _meta(grade_id, grade=True, solution=False, locked=True, points=points)


SETUP = """\
import math

import numpy as np
import torch

from course_utils.checks import check_expected_initial_loss, check_log_uniform"""


EX1_HEAD = (
    "def expected_initial_loss(num_classes: int) -> float:\n"
    '    """The cross-entropy (in nats) of a classifier that predicts the uniform distribution."""'
)
EX2_HEAD = (
    "def sample_log_uniform(low: float, high: float, n: int, rng: np.random.Generator) -> np.ndarray:\n"
    '    """n samples with log(x) ~ U(ln low, ln high)."""'
)


def _function(head: str, body: str, markers: bool) -> str:
    """``head`` (signature and docstring) then ``body`` (unindented lines), indented as its body."""
    lines = [f"    {line}" if line else "" for line in body.splitlines()]
    if markers:
        lines = ["    ### BEGIN SOLUTION", *lines, "    ### END SOLUTION"]
    return "\n".join([head, *lines])


def ex1_answer(body: str, *, markers: bool = False) -> str:
    """Source of exercise 1's answer cell with ``body`` (one or more lines, unindented)."""
    return _function(EX1_HEAD, body, markers)


def ex2_answer(body: str, *, markers: bool = False) -> str:
    """Source of exercise 2's answer cell with ``body`` (one or more lines, unindented)."""
    return _function(EX2_HEAD, body, markers)


EX1_RIGHT = "return math.log(num_classes)"
EX1_WRONG = "return math.log10(num_classes)"  # a classic slip: 1 point lost
EX2_RIGHT = "return np.exp(rng.uniform(np.log(low), np.log(high), n))"


def _test_source(check: str, fn: str) -> str:
    return (
        f"{check}({fn}).require()\n"
        "### BEGIN HIDDEN TESTS\n"
        "import course_utils.checks as _checks\n\n"
        f"_checks.{check}({fn}, hidden=True).require()\n"
        "### END HIDDEN TESTS"
    )


def solution_notebook() -> NotebookNode:
    """The source notebook of stage 00_tiny (with solutions and hidden tests)."""
    cells = [
        new_markdown_cell(
            "# Stage 0: a tiny stage for grading tests\n\n"
            "Two exercises from the course, worth 1 and 2 points.",
            id="intro",
        ),
        new_code_cell(SETUP, metadata=_read_only("setup"), id="setup"),
        new_markdown_cell(
            "### Exercise 1 (1 point): `expected_initial_loss(num_classes) -> float`\n\n"
            "The cross-entropy (in nats) of a uniform guess over `num_classes` classes.",
            id="ex1-text",
        ),
        new_code_cell(ex1_answer(EX1_RIGHT, markers=True), metadata=_answer_meta(EX1), id="ex1"),
        new_code_cell(
            _test_source("check_expected_initial_loss", EX1),
            metadata=_test_meta(EX1_TEST, 1),
            id="ex1-test",
        ),
        new_markdown_cell(
            "### Exercise 2 (2 points): `sample_log_uniform(low, high, n, rng) -> np.ndarray`\n\n"
            "`n` samples whose natural log is uniform on [ln low, ln high], drawn from `rng`.",
            id="ex2-text",
        ),
        new_code_cell(ex2_answer(EX2_RIGHT, markers=True), metadata=_answer_meta(EX2), id="ex2"),
        new_code_cell(
            _test_source("check_log_uniform", EX2),
            metadata=_test_meta(EX2_TEST, 2),
            id="ex2-test",
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def make_grading_course(target: Path) -> Path:
    """A course root at ``target`` with the repo's nbgrader config and the one stage ``00_tiny``."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "nbgrader_config.py", target / "nbgrader_config.py")
    (target / "course_utils").mkdir(exist_ok=True)  # marks the folder as a course root
    folder = target / "solutions" / STAGE
    folder.mkdir(parents=True, exist_ok=True)
    nb = solution_notebook()
    nbformat.validate(nb)
    nbformat.write(nb, folder / NOTEBOOK)
    return target


# --------------------------------------------------------------------------------------------------
# Submissions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Places:
    """Absolute paths the hostile notebooks aim at (baked into their sources)."""

    root: Path  # the course root being graded
    repo: Path  # the course repository (its solutions/ must stay unreadable too)
    submissions: Path  # the folder of all submissions
    home: Path  # the grader's home directory

    def write_targets(self) -> list[Path]:
        """Files the write-outside variant tries to create; none may exist after grading."""
        return [
            self.root / "HACKED",
            self.root / "solutions" / STAGE / "HACKED.py",
            self.submissions / "s01_solution" / "HACKED",
            self.repo / "HACKED",
            self.home / "HACKED",
        ]

    def read_targets(self) -> list[Path]:
        return [
            self.root / "solutions" / STAGE / NOTEBOOK,
            self.root / "_grading" / "gradebook.db",
            self.repo / "solutions",
        ]


Builder = Callable[[NotebookNode, Places], NotebookNode]


@dataclass(frozen=True)
class Variant:
    """One student's submission and what grading must report for it.

    ``cells`` are the expected points per test cell (None: no graded notebook is expected, e.g. the
    renamed file); ``status`` is the expected ``StageGrade.status``; ``problem`` a regex that some
    problem line of this student must match (None: no such requirement). ``sandbox`` variants do
    hostile I/O and are only graded where the sandbox works.
    """

    build: Builder
    cells: dict[str, float] | None
    status: str | None
    note: str
    problem: str | None = None
    filename: str = NOTEBOOK
    sandbox: bool = False
    clean: bool = False  # no problem line at all for this student
    # Called with the student's inbox folder and the places after the notebook is written there:
    # makes inbox entries that are not notebooks (symlinks, FIFOs) or replaces the folder.
    inbox: Callable[[Path, Places], None] | None = None

    @property
    def score(self) -> float | None:
        return None if self.cells is None else sum(self.cells.values())


def cell_index(nb: NotebookNode, grade_id: str) -> int:
    hits = [
        i
        for i, c in enumerate(nb.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    ]
    assert len(hits) == 1, f"{len(hits)} cells with grade_id {grade_id!r}"
    return hits[0]


def _set(nb: NotebookNode, grade_id: str, source: str) -> NotebookNode:
    nb.cells[cell_index(nb, grade_id)].source = source
    return nb


def _insert_after(nb: NotebookNode, grade_id: str, *sources: str) -> NotebookNode:
    """Plain code cells (no nbgrader metadata, as a learner adds them) right after ``grade_id``."""
    at = cell_index(nb, grade_id) + 1
    for k, source in enumerate(sources):
        nb.cells.insert(at + k, new_code_cell(source, id=f"learner-{grade_id}-{k}"))
    return nb


def _between(nb: NotebookNode, *sources: str) -> NotebookNode:
    """Extra cells between exercise 1's test cell and exercise 2's answer."""
    return _insert_after(nb, EX1_TEST, *sources)


def slip_notebook() -> NotebookNode:
    """The solution with exercise 1's classic slip (``math.log10``): it loses exactly 1 point."""
    nb = solution_notebook()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == EX1:
            cell.source = ex1_answer(EX1_WRONG)
    return nb


def release_like(nb: NotebookNode) -> NotebookNode:
    """What ``generate_assignment`` releases: solutions replaced by the stub, hidden tests removed."""
    region = re.compile(
        r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S
    )
    hidden = re.compile(
        r"\n?^[ \t]*### BEGIN HIDDEN TESTS\n.*?^[ \t]*### END HIDDEN TESTS", re.M | re.S
    )
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = region.sub(
                lambda m: "\n".join(m.group(1) + line for line in STUB.splitlines()), cell.source
            )
        if meta.get("grade") and not meta.get("solution"):
            cell.source = hidden.sub("", cell.source)
    return nb


FAKE_RESULT = """\
class _AlwaysPass:
    passed = True

    def require(self):
        return None"""


def _solution(nb: NotebookNode, places: Places) -> NotebookNode:
    return nb


def _untouched(nb: NotebookNode, places: Places) -> NotebookNode:
    return release_like(nb)


def _infinite_loop(nb: NotebookNode, places: Places) -> NotebookNode:
    return _set(nb, EX1, ex1_answer("while True:\n    pass"))


def _sys_exit(nb: NotebookNode, places: Places) -> NotebookNode:
    return _between(nb, "import sys\n\nsys.exit()")


def _os_exit(nb: NotebookNode, places: Places) -> NotebookNode:
    return _between(nb, "import os\n\nos._exit(1)")


def _sigkill(nb: NotebookNode, places: Places) -> NotebookNode:
    return _between(nb, "import os\nimport signal\n\nos.kill(os.getpid(), signal.SIGKILL)")


def _segfault(nb: NotebookNode, places: Places) -> NotebookNode:
    return _between(nb, "import ctypes\n\nctypes.string_at(0)")


MEMORY_LIMIT = 2 * 2**30  # the hostile batch's --memory-limit; the setup cell needs about 1 GiB


def _memory_hog(nb: NotebookNode, places: Places) -> NotebookNode:
    # 3 GiB at once: beyond the batch's 2 GiB cap the allocation fails inside the notebook (without
    # the cap it would succeed, and the missing note fails the test; the machine copes with 3 GiB).
    return _between(nb, "import torch\n\nhoard = torch.ones(3 * 2**28)  # 3 GiB of float32")


def _huge_output(nb: NotebookNode, places: Places) -> NotebookNode:
    return _between(nb, 'print("x" * 5_000_000)\nfor i in range(200_000):\n    print("line", i)')


WARN = """\
warnings.warn("this will change", FutureWarning)
warnings.warn("just so you know", UserWarning)
warnings.warn("old style", DeprecationWarning)"""


def _warnings(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, "import warnings\n\n" + ex1_answer(WARN + "\n" + EX1_RIGHT))
    _set(nb, EX2, "import warnings\n\n" + ex2_answer(WARN + "\n" + EX2_RIGHT))
    # Called once at top level too, outside any check: the warnings reach the cell's stderr.
    return _insert_after(
        nb,
        EX2,
        "expected_initial_loss(10), sample_log_uniform(1e-3, 1e-1, 3, np.random.default_rng(0));",
    )


def _edited_test(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, ex1_answer(EX1_WRONG))
    return _set(nb, EX1_TEST, 'print("PASS")')


def _deleted_test_right(nb: NotebookNode, places: Places) -> NotebookNode:
    del nb.cells[cell_index(nb, EX1_TEST)]
    return nb


def _deleted_test_wrong(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, ex1_answer(EX1_WRONG))
    del nb.cells[cell_index(nb, EX1_TEST)]
    return nb


def _duplicate_answer(nb: NotebookNode, places: Places) -> NotebookNode:
    """Exercise 1's answer cell copied (same grade_id twice): the first copy wrong, the last right.

    nbgrader's DeduplicateIds keeps the metadata of the LAST cell with a grade_id and strips it from
    the earlier ones (which still run as plain cells): the kept cell is the right answer, and it is
    also the definition in force when the test runs, so exercise 1 earns its point.
    """
    at = cell_index(nb, EX1)
    first = copy.deepcopy(nb.cells[at])
    first.id = "ex1-copy"
    first.source = ex1_answer(EX1_WRONG)
    nb.cells.insert(at, first)
    return nb


def _monkeypatch(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, ex1_answer(EX1_WRONG))
    return _insert_after(
        nb,
        EX1,
        FAKE_RESULT
        + "\n\n\nimport course_utils.checks as c\n\n"
        + "check_expected_initial_loss = c.check_expected_initial_loss = lambda *a, **k: _AlwaysPass()",
    )


def _redefined_check(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, ex1_answer(EX1_WRONG))
    return _insert_after(
        nb,
        EX1,
        FAKE_RESULT + "\n\n\ndef check_expected_initial_loss(*a, **k):\n    return _AlwaysPass()",
    )


def _calls_reference(nb: NotebookNode, places: Places) -> NotebookNode:
    # The hidden test bans course_utils.sanity.expected_initial_loss (a tripwire catches the call).
    return _set(
        nb,
        EX1,
        "from course_utils import sanity\n\n"
        + ex1_answer("return sanity.expected_initial_loss(num_classes)"),
    )


def _read_secrets(nb: NotebookNode, places: Places) -> NotebookNode:
    files = [str(p) for p in places.read_targets()]
    source = f"""\
import os

LEAK = "LEAK" + "ED:"
for path in {files!r}:
    try:
        if os.path.isdir(path):
            print(LEAK + path, sorted(os.listdir(path))[:5])
        else:
            with open(path, "rb") as handle:
                print(LEAK + path, handle.read(80))
    except OSError as error:
        print("blocked:" + path, type(error).__name__)
try:
    print(LEAK + {str(places.root)!r}, sorted(os.listdir({str(places.root)!r})))
except OSError as error:
    print("blocked:" + {str(places.root)!r}, type(error).__name__)"""
    return _between(nb, source)


def _write_outside(nb: NotebookNode, places: Places) -> NotebookNode:
    files = [str(p) for p in places.write_targets()]
    source = f"""\
for path in {files!r}:
    try:
        with open(path, "w") as handle:
            handle.write("student code wrote here")
        print("WRO" + "TE:" + path)
    except OSError as error:
        print("blocked:" + path, type(error).__name__)"""
    return _between(nb, source)


ZERO_EX1 = {EX1_TEST: 0.0, EX2_TEST: 2.0}
# A kernel that dies after exercise 1's test stops the notebook, not the scoring: the answers run
# in their own process (trusted scoring), so both exercises keep their points.
DIED = dict(FULL)
KERNEL = r"(?i)kernel"

VARIANTS: dict[str, Variant] = {
    "s01_solution": Variant(_solution, FULL, "graded", "the solution", clean=True),
    "s02_untouched": Variant(
        _untouched, {EX1_TEST: 0.0, EX2_TEST: 0.0}, "graded", "the release, stubs untouched"
    ),
    "s03_infinite_loop": Variant(
        _infinite_loop,
        ZERO_EX1,
        "graded",  # a cell timeout scores like an error; "timed out" is the whole notebook's limit
        "exercise 1 loops forever when called: its test times out, the rest still runs",
        problem=r"(?i)time",
    ),
    "s04_sys_exit": Variant(_sys_exit, FULL, "graded", "sys.exit() in an extra cell"),
    "s05_os_exit": Variant(
        _os_exit, DIED, "kernel died", "os._exit(1) after exercise 1's test", problem=KERNEL
    ),
    "s06_sigkill": Variant(
        _sigkill, DIED, "kernel died", "SIGKILL to itself after exercise 1's test", problem=KERNEL
    ),
    "s07_segfault": Variant(
        _segfault,
        DIED,
        "kernel died",
        "ctypes.string_at(0) after exercise 1's test",
        problem=KERNEL,
    ),
    "s08_huge_output": Variant(
        _huge_output, FULL, "graded", "5 MB line and 200,000 printed lines in an extra cell"
    ),
    "s09_warnings": Variant(
        _warnings, FULL, "graded", "right answers that warn (Future/User/Deprecation) on every call"
    ),
    "s10_edited_test": Variant(
        _edited_test,
        ZERO_EX1,
        "graded",
        'wrong exercise 1, its test cell replaced by print("PASS") (restored from the source)',
    ),
    "s11_deleted_test_right": Variant(
        _deleted_test_right, FULL, "graded", "exercise 1's test cell deleted, right answer"
    ),
    "s12_deleted_test_wrong": Variant(
        _deleted_test_wrong, ZERO_EX1, "graded", "exercise 1's test cell deleted, wrong answer"
    ),
    "s13_duplicate_answer": Variant(
        _duplicate_answer,
        FULL,
        "graded",
        "exercise 1's answer cell twice (same grade_id): wrong copy first, right copy last (kept)",
        problem=r"is a copy of cell \d+ \('expected_initial_loss'\): graded the last copy",
    ),
    "s14_renamed": Variant(
        _solution,
        None,
        None,
        "the solution saved as 00_tiny-Copy1.ipynb",
        problem=r"00_tiny-Copy1\.ipynb.*rename it to 00_tiny\.ipynb",
        filename=f"{STAGE}-Copy1.ipynb",
    ),
    "s15_monkeypatch": Variant(
        _monkeypatch,
        {EX1_TEST: 0.0, EX2_TEST: 0.0},
        "tampered",
        "wrong exercise 1 plus course_utils.checks.check_expected_initial_loss replaced",
        problem=r"course_utils|check_expected_initial_loss",
    ),
    "s16_redefined_check": Variant(
        _redefined_check,
        ZERO_EX1,
        "graded",
        "wrong exercise 1 plus its own def check_expected_initial_loss (hidden test imports fresh)",
    ),
    "s17_calls_reference": Variant(
        _calls_reference,
        ZERO_EX1,
        "graded",
        "exercise 1 returns course_utils.sanity.expected_initial_loss(...) (banned reference)",
    ),
    "s18_read_secrets": Variant(
        _read_secrets,
        FULL,
        "graded",
        "reads the course's solutions, gradebook, the repo's solutions/ and lists the course root",
        sandbox=True,
    ),
    "s19_write_outside": Variant(
        _write_outside,
        FULL,
        "graded",
        "writes into the course root, its solutions, another student's submission, the repo, ~",
        sandbox=True,
    ),
    "s20_memory_hog": Variant(
        _memory_hog,
        FULL,
        "graded",
        "allocates 3 GiB in an extra cell, over the batch's 2 GiB memory limit",
        problem=r"cell \d+ ran out of memory \(the limit is 2 GiB\)",
    ),
}


def build(student: str, places: Places, variants: dict[str, Variant] | None = None) -> NotebookNode:
    """The notebook of ``student`` (a key of ``variants``, default VARIANTS), built from a fresh
    solution notebook."""
    nb = (variants or VARIANTS)[student].build(solution_notebook(), places)
    for cell in nb.cells:  # nothing is committed with outputs; submissions may be, but need not
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def write_submission(folder: Path, student: str, nb: NotebookNode, name: str = NOTEBOOK) -> Path:
    """Write ``nb`` as ``folder/<student>/<name>`` (the layout `course grade` reads)."""
    target = folder / student / name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def write_class(
    folder: Path,
    places: Places,
    students: Iterable[str],
    variants: dict[str, Variant] | None = None,
) -> None:
    variants = variants or VARIANTS
    for student in students:
        nb = build(student, places, variants)
        write_submission(folder, student, nb, variants[student].filename)
        if variants[student].inbox is not None:
            variants[student].inbox(folder / student, places)


def tree_digest(path: Path, exclude: Iterable[str] = ()) -> str:
    """sha256 over the relative paths and bytes of every file under ``path`` ("" if missing).

    ``exclude`` holds glob patterns matched against each relative path and each of its parts.
    """
    path = Path(path)
    if not path.exists():
        return ""
    patterns = list(exclude)
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path)
        if any(
            fnmatch(str(rel), p) or any(fnmatch(part, p) for part in rel.parts) for p in patterns
        ):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        if item.is_file() and not item.is_symlink():
            digest.update(hashlib.sha256(item.read_bytes()).digest())
        elif item.is_symlink():
            digest.update(b"->" + str(item.readlink()).encode())
        digest.update(b"\n")
    return digest.hexdigest()
