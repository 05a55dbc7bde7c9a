"""Hostile inbox entries and notebooks for the shared hostile batch (``tests/hostile_batch.py``).

Feedback that would run script (markdown and outputs with every kind of payload), grading metadata
edited every way, and inbox entries that are not a plain folder: a symlinked student folder, a
symlinked notebook, a zip with a symlink entry and forged file names, a zip next to a folder of the
same student, a zip bomb. Assertions beyond status and problem lines: ``tests/test_attacks_inbox.py``.

Every payload, if it ran, would leave a trace the browser test looks for: it sets
``document.title`` to :data:`TITLE`, adds an element with id :data:`NODE`, logs :data:`TITLE`,
opens an ``alert`` and requests ``http://127.0.0.1:BEACON_PORT/...``, where the test listens.
"""

from __future__ import annotations

import shutil
import socket
import zipfile
from pathlib import Path

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell

from tests.grading_course import (
    EX1,
    EX1_RIGHT,
    EX1_TEST,
    EX1_WRONG,
    EX2_TEST,
    FULL,
    NOTEBOOK,
    STAGE,
    ZERO_EX1,
    Places,
    Variant,
    _between,
    _set,
    _solution,
    cell_index,
    ex1_answer,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BEACON_PORT = _free_port()  # the browser test listens here; no request may arrive
TITLE = "PWNED-by-in01"
NODE = "pwned-node"
BEACON = f"http://127.0.0.1:{BEACON_PORT}"


def payload(tag: str) -> str:
    """JavaScript (single quotes only, so it fits in a double-quoted attribute) that leaves every
    trace the browser test checks."""
    return (
        f"document.title='{TITLE}';var d=document.createElement('div');d.id='{NODE}';"
        f"document.documentElement.appendChild(d);console.log('{TITLE}');"
        f"fetch('{BEACON}/fetch-{tag}');alert('{tag}')"
    )


MARKDOWN_PAYLOADS = [
    f'<img src=x onerror="{payload("img-onerror")}">',
    f'<svg onload="{payload("svg-onload")}"><script>{payload("svg-script")}</script></svg>',
    f"<script>{payload('md-script')}</script>",
    "[a markdown link](javascript:document.title='PWNED-by-in01')",
    f'<a href="javascript:{payload("a-href")}">an html link</a>',
    f'<iframe srcdoc="<script>{payload("srcdoc")}</script>"></iframe>',
    f'<details open ontoggle="{payload("ontoggle")}"><summary>s</summary>x</details>',
    f'<meta http-equiv="refresh" content="0;url={BEACON}/refresh">',
    f'<object data="{BEACON}/object"></object><embed src="{BEACON}/embed">',
    f'<form action="{BEACON}/form"><button>go</button></form>',
    f"<style>@import url({BEACON}/css-import);</style>",
    f'<img src="{BEACON}/img-src">',
    f'<div style="background-image:url({BEACON}/css-url)">styled</div>',
]
OUTPUT_HTML = (
    f"<script>{payload('html-script')}</script>"
    f'<img src=x onerror="{payload("html-onerror")}"><b onmouseover="{payload("hover")}">hi</b>'
)
OUTPUT_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
    f'onload="{payload("svg-out-onload")}"><script>{payload("svg-out-script")}</script></svg>'
)


def _xss(nb: NotebookNode, places: Places) -> NotebookNode:
    """The solution, plus a markdown cell and a code cell whose outputs carry every payload."""
    nb.cells.insert(1, new_markdown_cell("\n\n".join(MARKDOWN_PAYLOADS), id="in01-markdown"))
    source = "\n".join(
        [
            "from IPython.display import HTML, SVG, Javascript, Markdown, display",
            f"display(HTML({OUTPUT_HTML!r}))",
            f"display(Javascript({payload('javascript-output')!r}))",
            f"display(SVG({OUTPUT_SVG!r}))",
            "display(Markdown(\"[md output](javascript:document.title='PWNED-by-in01')\"))",
        ]
    )
    return _between(nb, source)


def _edited_metadata(nb: NotebookNode, places: Places) -> NotebookNode:
    """Wrong exercise 1 whose test cell claims to be a student answer (``solution``, so nbgrader
    would keep its new source ``pass``), and exercise 2's test raised to 100 points."""
    _set(nb, EX1, ex1_answer(EX1_WRONG))
    test = nb.cells[cell_index(nb, EX1_TEST)]
    test.metadata.nbgrader["solution"] = True
    test.source = "pass"
    nb.cells[cell_index(nb, EX2_TEST)].metadata.nbgrader["points"] = 100
    return nb


def _new_grade_cell(nb: NotebookNode, places: Places) -> NotebookNode:
    """The solution plus a graded cell of its own (unknown grade id, 10 points), an R kernelspec
    and a lexer pygments does not know."""
    bonus = new_code_cell("print('bonus')", id="in03-bonus")
    bonus.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "bonus",
        "locked": True,
        "points": 10,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    nb.cells.append(bonus)
    nb.metadata["kernelspec"] = {"display_name": "R", "language": "R", "name": "ir"}
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "no-such-lexer"}
    return nb


FORGED_NAME = "x\n- s02_untouched: 3 of 3 | forged | <b>.ipynb"

# The inbox hooks get the student's folder, with the notebook already written in it.


def _as_zip(folder: Path) -> Path:
    """Replace the student's folder by ``<student>.zip`` holding its notebook; the zip's path."""
    data = (folder / NOTEBOOK).read_bytes()
    shutil.rmtree(folder)
    zip_path = folder.with_name(f"{folder.name}.zip")
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(f"{folder.name}/{NOTEBOOK}", data)
    return zip_path


def _zip_with_link_and_forged_name(folder: Path, places: Places) -> None:
    with zipfile.ZipFile(_as_zip(folder), "a") as archive:
        link = zipfile.ZipInfo(f"{folder.name}/other.ipynb")
        link.external_attr = 0o120777 << 16  # a symbolic link entry, as `zip --symlinks` stores it
        archive.writestr(link, str(places.root / "solutions" / STAGE / NOTEBOOK))
        archive.writestr(f"{folder.name}/{FORGED_NAME}", "{}")


def _symlinked_folder(folder: Path, places: Places) -> None:
    # The source notebook there has every solution: followed, it would grade 3/3.
    shutil.rmtree(folder)
    folder.symlink_to(places.root / "solutions" / STAGE, target_is_directory=True)


def _symlinked_notebook(folder: Path, places: Places) -> None:
    (folder / NOTEBOOK).unlink()
    (folder / NOTEBOOK).symlink_to(places.submissions / "s01_solution" / NOTEBOOK)


def _zip_and_folder(folder: Path, places: Places) -> None:
    wrong = (folder / NOTEBOOK).read_text().replace(EX1_RIGHT, EX1_WRONG)
    with zipfile.ZipFile(folder.with_name(f"{folder.name}.zip"), "w") as archive:
        archive.writestr(NOTEBOOK, wrong)


ZIP_BOMB_BYTES = 60 * 2**20  # over the default 50 MiB per notebook; ~60 KiB compressed


def _zip_bomb(folder: Path, places: Places) -> None:
    shutil.rmtree(folder)
    with (
        zipfile.ZipFile(folder.with_name(f"{folder.name}.zip"), "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(NOTEBOOK, "w", force_zip64=True) as handle,
    ):
        for _ in range(ZIP_BOMB_BYTES // 2**20):
            handle.write(b" " * 2**20)


NEVER_OPENED = r"is a symbolic link \(to .*\): skipped, never opened"

VARIANTS_INBOX: dict[str, Variant] = {
    "in01_xss": Variant(
        _xss,
        FULL,
        "graded",
        "the solution with script payloads in a markdown cell and in HTML/JS/SVG outputs",
        clean=True,
    ),
    "in02_edited_metadata": Variant(
        _edited_metadata,
        ZERO_EX1,
        "graded",
        "wrong exercise 1 whose test cell is marked a solution (source `pass`); test 2 worth 100",
        problem=r"\(expected_initial_loss_test\): its grading metadata was edited \(solution\); "
        "restored from the release",
    ),
    "in03_new_grade_cell": Variant(
        _new_grade_cell,
        FULL,
        "graded",
        "the solution plus a graded cell of its own (10 points), an R kernelspec, a bogus lexer",
        problem=r"grading metadata the release does not have \(grade id bonus\): removed",
    ),
    "in04_zip_link_forged_name": Variant(
        _solution,
        FULL,
        "graded",
        "a zip with the solution, a symlink entry to the source and a file name forging a line",
        problem=r"^in04_zip_link_forged_name: in04_zip_link_forged_name/other\.ipynb in "
        r"in04_zip_link_forged_name\.zip is a symbolic link: skipped, never opened$",
        inbox=_zip_with_link_and_forged_name,
    ),
    "in05_symlinked_folder": Variant(
        _solution,
        None,
        None,
        "the student's inbox entry is a symlink to the course's solutions/00_tiny",
        problem=r"^in05_symlinked_folder: a symbolic link \(to .*\): skipped, not followed",
        inbox=_symlinked_folder,
    ),
    "in06_symlinked_notebook": Variant(
        _solution,
        None,
        None,
        "a folder whose 00_tiny.ipynb is a symlink to s01_solution's notebook",
        problem=r"^in06_symlinked_notebook: 00_tiny\.ipynb " + NEVER_OPENED,
        inbox=_symlinked_notebook,
    ),
    "in07_zip_and_folder": Variant(
        _solution,
        None,
        None,
        "in07_zip_and_folder/ (right) and in07_zip_and_folder.zip (wrong) both submitted",
        problem=r"submitted twice, as in07_zip_and_folder/ and in07_zip_and_folder\.zip; "
        "graded neither",
        inbox=_zip_and_folder,
    ),
    "in08_zip_bomb": Variant(
        _solution,
        None,
        None,
        "a zip of 60 KiB whose notebook inflates to 60 MiB",
        problem=r"^in08_zip_bomb/00_tiny: 00_tiny\.ipynb \(60 MiB\) is over the limit of 50 MiB "
        r"per notebook \(course grade --max-notebook-size\)$",
        inbox=_zip_bomb,
    ),
}
