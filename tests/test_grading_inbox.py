"""Inbox hygiene, report escaping, the grading lock, inert feedback and restored metadata: attacks
that need no nbgrader run (``collect``, ``names``, ``lock``, ``feedback``, ``metadata``), plus the
second ``course grade`` refused through the real CLI."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import lock
from course_utils.grading.autograde import GradeReport, StageGrade, write_csv, write_summary
from course_utils.grading.collect import collect
from course_utils.grading.feedback import CSP, inert_html
from course_utils.grading.metadata import restore_from_release
from course_utils.grading.names import csv_cell, is_student_id, markdown, one_line, shown
from tests.grading_course import EX1_TEST, EX2_TEST, release_like, solution_notebook

REPO = Path(__file__).resolve().parents[1]
STAGES = ["01_data", "02_baselines"]
NB = nbformat.writes(nbformat.v4.new_notebook())


def _course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    (root / "_grading").mkdir(parents=True, exist_ok=True)
    return root


def _inbox(tmp_path: Path) -> Path:
    subs = tmp_path / "inbox"
    subs.mkdir()
    return subs


def _collect(tmp_path: Path, subs: Path, **kwargs) -> tuple[dict, str]:
    found, problems = collect(_course(tmp_path), subs, STAGES, **kwargs)
    return {(s.student, s.stage): s for s in found}, "\n".join(problems)


def _notebook(folder: Path, name: str = "01_data.ipynb", text: str = NB) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


# symbolic links --------------------------------------------------------------------------------


def test_a_symlinked_student_folder_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "solutions"
    _notebook(secret, text="SOLUTION")
    subs = _inbox(tmp_path)
    _notebook(subs / "ann")
    (subs / "eve").symlink_to(secret, target_is_directory=True)
    (subs / "mallory").symlink_to(subs / "ann", target_is_directory=True)
    found, text = _collect(tmp_path, subs)
    assert list(found) == [("ann", "01_data")]
    assert "eve: a symbolic link (to " in text and "): skipped, not followed" in text
    assert "mallory: a symbolic link (to " in text
    assert all(b"SOLUTION" not in s.notebook.read_bytes() for s in found.values())


def test_a_symlinked_zip_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.zip"
    with zipfile.ZipFile(elsewhere, "w") as archive:
        archive.writestr("01_data.ipynb", NB)
    subs = _inbox(tmp_path)
    (subs / "eve.zip").symlink_to(elsewhere)
    found, text = _collect(tmp_path, subs)
    assert found == {} and "eve: eve.zip is a symbolic link (to " in text


def test_symlinks_inside_a_student_folder_are_not_followed(tmp_path: Path) -> None:
    secret = _notebook(tmp_path / "solutions", text="SOLUTION")
    subs = _inbox(tmp_path)
    (subs / "eve").mkdir()
    (subs / "eve" / "01_data.ipynb").symlink_to(secret)
    (subs / "eve" / "deep").symlink_to(secret.parent, target_is_directory=True)
    found, text = _collect(tmp_path, subs)
    assert found == {}
    assert "eve: 01_data.ipynb is a symbolic link (to " in text and "skipped, never opened" in text
    assert "eve: deep is a symbolic link (to " in text


def test_a_zip_entry_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    with zipfile.ZipFile(subs / "eve.zip", "w") as archive:
        link = zipfile.ZipInfo("01_data.ipynb")
        link.external_attr = (0o120777 << 16) | 0x10  # a symlink, as `zip --symlinks` stores it
        archive.writestr(link, "../../solutions/01_data/01_data.ipynb")
    found, text = _collect(tmp_path, subs)
    assert found == {}
    assert "eve: 01_data.ipynb in eve.zip is a symbolic link: skipped, never opened" in text


def test_a_fifo_named_like_a_notebook_is_not_read(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    (subs / "eve").mkdir()
    os.mkfifo(subs / "eve" / "01_data.ipynb")  # reading it would block the grader forever
    found, text = _collect(tmp_path, subs)
    assert (
        found == {}
        and "eve: 01_data.ipynb is not a regular file (a FIFO): skipped, never opened" in text
    )


# sizes -----------------------------------------------------------------------------------------


def _bomb(path: Path, entries: dict[str, int]) -> None:
    """A zip whose entries inflate to the given sizes (zeros compress about 1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, size in entries.items():
            with archive.open(name, "w", force_zip64=True) as handle:
                block = b"0" * 2**20
                for _ in range(size // 2**20):
                    handle.write(block)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path, monkeypatch) -> None:
    private_tmp = tmp_path / "tmp"  # only this test's temporary files are counted below
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    subs = _inbox(tmp_path)
    _bomb(subs / "eve.zip", {"01_data.ipynb": 300 * 2**20})
    assert (subs / "eve.zip").stat().st_size < 2 * 2**20
    found, text = _collect(tmp_path, subs)
    assert found == {}
    assert "eve/01_data: 01_data.ipynb (300 MiB) is over the limit of 50 MiB per notebook" in text
    assert "--max-notebook-size" in text
    leftovers = [p for p in (tmp_path / "course").rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
    temporary = sum(p.stat().st_size for p in private_tmp.rglob("*.ipynb"))
    assert temporary < 2**20


def test_the_whole_zip_is_checked_too(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    _bomb(subs / "eve.zip", {f"{s}.ipynb": 3 * 2**20 for s in STAGES} | {"x.ipynb": 3 * 2**20})
    found, text = _collect(tmp_path, subs, max_notebook_size=4 * 2**20)
    assert found == {}
    assert "eve: the notebooks in eve.zip inflate to 9 MiB, over the limit of 8 MiB" in text


def test_a_zip_that_lies_about_its_size_is_stopped_at_the_declared_size(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    _bomb(subs / "eve.zip", {"01_data.ipynb": 8 * 2**20})
    raw = bytearray((subs / "eve.zip").read_bytes())
    # Declare 1 KiB in the central directory (its uncompressed-size field): the data says 8 MiB.
    with zipfile.ZipFile(subs / "eve.zip") as archive:
        info = archive.infolist()[0]
    central = raw.rfind(b"PK\x01\x02")
    assert info.file_size == 8 * 2**20 and central > 0
    raw[central + 24 : central + 28] = (1024).to_bytes(4, "little")
    (subs / "eve.zip").write_bytes(bytes(raw))
    found, text = _collect(tmp_path, subs)
    assert found == {} and "eve/01_data: 01_data.ipynb is unreadable" in text


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [(8, 1, "encrypted"), (10, 99, "compression method")],  # central header: flags, method
)
def test_an_encrypted_or_strangely_compressed_entry_is_unreadable_not_a_crash(
    tmp_path: Path, offset: int, value: int, reason: str
) -> None:
    subs = _inbox(tmp_path)
    with zipfile.ZipFile(subs / "eve.zip", "w") as archive:
        archive.writestr("01_data.ipynb", NB)
    raw = bytearray((subs / "eve.zip").read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + offset : central + offset + 2] = value.to_bytes(2, "little")
    (subs / "eve.zip").write_bytes(bytes(raw))
    found, text = _collect(tmp_path, subs)
    assert found == {} and "eve/01_data: 01_data.ipynb is unreadable (" in text
    assert reason in text


def test_the_notebook_size_limit_is_configurable_and_applies_to_folders(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    _notebook(subs / "ann", text=NB + " " * 300_000)
    found, text = _collect(tmp_path, subs, max_notebook_size=200_000)
    assert found == {} and "ann/01_data: 01_data.ipynb (" in text and "over the limit" in text
    found, _ = _collect(tmp_path, subs, max_notebook_size=2**20)
    assert list(found) == [("ann", "01_data")]


def test_a_zip_is_read_once_straight_into_submitted(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    with zipfile.ZipFile(subs / "ann.zip", "w") as archive:
        archive.writestr("ann/01_data.ipynb", NB)
        archive.writestr("ann/big.bin", b"x" * 10)
    before = set(Path(tempfile.gettempdir()).iterdir())
    found, text = _collect(tmp_path, subs)
    assert list(found) == [("ann", "01_data")] and text == ""
    assert found["ann", "01_data"].notebook.read_text() == NB
    assert set(Path(tempfile.gettempdir()).iterdir()) <= before  # nothing unpacked there
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["course/_grading/submitted/ann/01_data/01_data.ipynb", "inbox/ann.zip"]


def test_the_cli_takes_a_max_notebook_size() -> None:
    from course_utils.cli import _notebook_size

    assert _notebook_size("200M") == 200 * 2**20
    with pytest.raises(Exception, match="50M"):
        _notebook_size("lots")


# a student submitted twice ---------------------------------------------------------------------


def test_a_zip_and_a_folder_of_one_student_grade_neither(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    _notebook(subs / "ada")
    with zipfile.ZipFile(subs / "ada.zip", "w") as archive:
        archive.writestr("01_data.ipynb", NB)
    _notebook(subs / "bob")
    found, text = _collect(tmp_path, subs)
    assert list(found) == [("bob", "01_data")]
    assert "ada: submitted twice, as ada/ and ada.zip; graded neither" in text
    assert not (tmp_path / "course" / "_grading" / "submitted" / "ada").exists()


# names in reports ------------------------------------------------------------------------------


def test_student_ids_are_whole_matches() -> None:
    assert is_student_id("ann.lee+1@uni")
    for bad in ("ada\n", "ada\n- bob: 3/3", "a|b", "<img>", ".hidden", "", "x" * 101, "a b"):
        assert not is_student_id(bad), bad


def test_a_folder_named_with_a_newline_is_not_a_student(tmp_path: Path) -> None:
    subs = _inbox(tmp_path)
    _notebook(subs / "ada\n- bob: 3 of 3 (forged)")
    found, problems = collect(_course(tmp_path), subs, STAGES)
    assert found == []
    assert problems == [
        "'ada\\n- bob: 3 of 3 (forged)': not usable as a student id (letters, digits and _.@+- "
        "only, starting with a letter or digit), skipped"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "x\n- zed: graded 10 of 10.ipynb",
        "x | 10 of 10 | forged |.ipynb",
        "[click](javascript:alert(1)).ipynb",
        "<img src=x onerror=alert(1)>.ipynb",
        "x\u2028y\x1b[31m\u202e.ipynb",
    ],
)
def test_file_names_cannot_forge_a_report_line_or_cell(tmp_path: Path, name: str) -> None:
    subs = _inbox(tmp_path)
    _notebook(subs / "ann")
    _notebook(subs / "ann", name)
    root = _course(tmp_path)
    found, problems = collect(root, subs, STAGES)
    assert [s.student for s in found] == ["ann"]
    assert len(problems) == 1 and problems[0].startswith("ann: ")
    assert problems[0].isprintable(), problems[0]
    grade = StageGrade("ann", "01_data", 1, 3, notes=[problems[0], "a | b"])
    report = GradeReport(grades=[grade], problems=problems)
    summary = write_summary(root, report).read_text()
    table = [line for line in summary.splitlines() if line.startswith("|")]
    assert table[2] == "| ann | 1/3 |"
    problem_lines = summary.split("## Problems\n\n", 1)[1].splitlines()
    assert len(problem_lines) == 1 and problem_lines[0].startswith("- ann: ")
    unescaped = re.findall(r"(?<!\\)[<>|\[\]`*]", problem_lines[0])
    assert unescaped == [], problem_lines[0]
    _result(root, grade)
    rows = list(csv.reader(write_csv(root).read_text().splitlines()))
    assert len(rows) == 2 and len(rows[1]) == 8
    assert rows[1][-1].count(" | ") == 1  # two notes, one separator: "a \| b" stays one note


def _result(root: Path, grade: StageGrade) -> None:
    folder = root / "_grading" / "results" / grade.student
    folder.mkdir(parents=True, exist_ok=True)
    result = {**grade.__dict__, "graded_at": "now", "sha256": "0" * 64}
    (folder / f"{grade.stage}.json").write_text(json.dumps(result))


def test_text_helpers() -> None:
    assert one_line("a\nb\tc\x1b") == "a\\nb\\tc\\x1b"
    assert shown("01_data (1).ipynb") == "01_data (1).ipynb"
    assert shown("a\nb") == "'a\\nb'"
    assert markdown("s01_solution: *x* [a](b) <i> a|b `c`") == (
        "s01_solution: \\*x\\* \\[a\\](b) \\<i\\> a\\|b \\`c\\`"
    )
    assert markdown("_x_") == "\\_x\\_"
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"


# the lock --------------------------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_lock_left_by_a_dead_run_is_taken_over_and_its_leftovers_removed(
    tmp_path: Path,
) -> None:
    root = _course(tmp_path)
    dead = {"pid": _dead_pid(), "host": "here", "started": "2026-01-01T00:00:00+00:00"}
    (root / "_grading" / lock.LOCK_NAME).write_text(json.dumps(dead))
    stale_job = root / "_grading" / "work" / "jobs" / "ann--01_data"
    stale_job.mkdir(parents=True)
    runtime = Path(tempfile.mkdtemp(prefix=lock.runtime_prefix(root)))
    (runtime / "kernel-1.json").write_text("{}")
    other_course = Path(tempfile.mkdtemp(prefix=lock.runtime_prefix(tmp_path / "other")))
    try:
        with lock.hold(root) as found:
            assert found is not None and found["pid"] == dead["pid"]
            removed = lock.clear_leftovers(root, found)
            assert not runtime.exists() and not stale_job.exists()
            assert other_course.exists(), "another course's runtime folder was removed"
            assert len(removed) == 2
            holder = json.loads((root / "_grading" / lock.LOCK_NAME).read_text())
            assert holder["pid"] == os.getpid()
        assert (root / "_grading" / lock.LOCK_NAME).read_text() == ""
        with lock.hold(root) as found:  # a run that ended normally leaves nothing to take over
            assert found is None
    finally:
        os.rmdir(other_course)


def test_a_live_lock_is_not_taken(tmp_path: Path) -> None:
    root = _course(tmp_path)
    with lock.hold(root):
        second = lock.hold(root)
        with pytest.raises(lock.GradingLocked, match=rf"pid {os.getpid()} on "):
            second.__enter__()


def test_a_second_course_grade_exits_2_naming_the_holder(tmp_path: Path) -> None:
    """A real holder in another process (it holds the lock and sleeps), then the real CLI."""
    root = tmp_path / "course"
    (root / "solutions" / "01_data").mkdir(parents=True)
    (root / "course_utils").mkdir()
    (root / "nbgrader_config.py").write_text("")
    subs = _inbox(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom course_utils.grading.lock import hold\n"
            f"with hold({str(root)!r}):\n    print('held', flush=True)\n    time.sleep(120)",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.time()
        second = subprocess.run(
            [sys.executable, "-m", "course_utils.cli", "--root", str(root), "grade", str(subs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"pid {holder.pid} on " in second.stdout and "started 20" in second.stdout
        assert "another `course grade` is grading this course" in second.stdout
        assert time.time() - started < 110  # it did not wait for the holder
    finally:
        holder.kill()
        holder.wait()


# inert feedback --------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"/><title>00_tiny</title>
<style type="text/css">body { color: #111 } td > p { margin: 0 }</style>
<script src="https://cdn.example/mathjax.js"></script>
</head>
<body><div class="panel"><h4>00_tiny (Score: 3.0 / 3.0)</h4>
<body><main><div class="cell">STUDENT</div></main></body></div></body></html>
"""

ATTACKS = [
    "<script>document.title='PWNED'</script>",
    '<img src=x onerror="document.title=1">',
    '<svg onload="alert(1)"><script>alert(2)</script></svg>',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a><animate onbegin="alert(1)"/></svg>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="  JaVa&#x09;ScRiPt:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<form action="http://127.0.0.1:1/"><input name=a><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="http://127.0.0.1:1/">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<div style="background:url(javascript:alert(1))" onclick="alert(1)">x</div>',
    '<link rel="stylesheet" href="http://127.0.0.1:1/x.css">',
    "<!--<script>alert(1)</script>-->",
    '<details open ontoggle="alert(1)">x</details>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
]


class _Tags(HTMLParser):
    """Every real tag of a page with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


RUNS = {"script", "iframe", "frame", "object", "embed", "form", "svg", "math", "base", "link"}


def _running_parts(page: str) -> list[str]:
    parser = _Tags()
    parser.feed(page)
    found = []
    for tag, attrs in parser.tags:
        if tag in RUNS or (tag == "meta" and "refresh" in attrs.get("http-equiv", "").lower()):
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            url = "".join(value.split()).lower()
            if name.startswith("on") or name in ("srcdoc", "formaction"):
                found.append(f"<{tag} {name}>")
            if url.startswith(("javascript:", "vbscript:", "data:text", "data:image/svg")):
                found.append(f"<{tag} {name}={value[:40]}>")
    return found


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_sanitiser_leaves_nothing_that_runs(attack: str) -> None:
    assert _running_parts(PAGE.replace("STUDENT", attack))  # the attack is real
    page = inert_html(PAGE.replace("STUDENT", attack))
    assert _running_parts(page) == [], page


def test_the_sanitised_page_keeps_the_layout_the_css_and_the_policy() -> None:
    page = inert_html(PAGE.replace("STUDENT", "<b>bold</b> <img src='data:image/png;base64,AAAA'>"))
    head = page.split("</head>", 1)[0]
    assert head.index("Content-Security-Policy") < head.index("<title>")
    assert CSP in head and "script-src" not in CSP and "default-src 'none'" in CSP
    assert "td > p { margin: 0 }" in head  # the template's CSS is kept as it was
    assert "mathjax" not in page
    assert '<div class="panel"><h4>00_tiny (Score: 3.0 / 3.0)</h4>' in page
    assert "<b>bold</b>" in page and 'src="data:image/png;base64,AAAA"' in page
    assert page.lower().count("<body") == 1


# metadata --------------------------------------------------------------------------------------


def _release() -> nbformat.NotebookNode:
    nb = release_like(solution_notebook())
    for cell in nb.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader["checksum"] = "c0ffee"
            cell.metadata.nbgrader["cell_type"] = cell.cell_type
    return nb


def _cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_an_honest_notebook_is_left_exactly_as_it_is() -> None:
    for nb in (solution_notebook(), _release()):
        before = copy.deepcopy(nb)
        nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
        nb.metadata["kernelspec"]["name"] = "my-conda-env"
        before.metadata = copy.deepcopy(nb.metadata)
        assert restore_from_release(nb, _release()) == []
        assert nb == before


@pytest.mark.parametrize(
    ("edit", "note"),
    [
        (lambda nb: _cell(nb, EX1_TEST).metadata.nbgrader.update(points=100), r"\(points\)"),
        (lambda nb: _cell(nb, EX1_TEST).metadata.nbgrader.update(grade=False), r"\(grade\)"),
        (lambda nb: _cell(nb, EX1_TEST).metadata.nbgrader.update(solution=True), r"\(solution\)"),
        (lambda nb: _cell(nb, EX1_TEST).metadata.nbgrader.update(locked=False), r"\(locked\)"),
        (lambda nb: _cell(nb, EX1_TEST).metadata.nbgrader.update(checksum="0"), r"\(checksum\)"),
        (lambda nb: _cell(nb, EX1_TEST).metadata.nbgrader.pop("points"), r"\(points\)"),
        (lambda nb: _cell(nb, EX2_TEST).metadata.nbgrader.pop("grade"), r"\(grade\)"),
    ],
)
def test_edited_grading_metadata_is_restored_and_named(edit, note: str) -> None:
    nb, release = _release(), _release()
    edit(nb)
    notes = restore_from_release(nb, release)
    assert len(notes) == 1 and re.search(note, notes[0]), notes
    assert "restored from the release" in notes[0]
    assert nb.cells == release.cells


def test_a_new_grade_cell_loses_its_grading_metadata() -> None:
    nb, release = _release(), _release()
    extra = nbformat.v4.new_code_cell("assert True", id="extra")
    extra.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "bonus\n- forged line",
        "locked": True,
        "points": 1000,
        "solution": False,
        "schema_version": 3,
    }
    broken = nbformat.v4.new_code_cell("x = 1", id="broken")
    broken.metadata["nbgrader"] = "not a dict"
    nb.cells += [extra, broken]
    notes = restore_from_release(nb, release)
    assert len(notes) == 2 and all(n.isprintable() for n in notes)
    assert "grade id 'bonus\\n- forged line'" in notes[0] and "plain cell" in notes[0]
    assert "nbgrader" not in extra.metadata and "nbgrader" not in broken.metadata
    assert extra.source == "assert True"  # the cell still runs


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kernelspec", {"name": "ir", "language": "R", "display_name": "R"}),
        ("kernelspec", "python3"),
        ("language_info", {"name": "javascript"}),
    ],
)
def test_an_edited_kernelspec_or_language_is_restored(key: str, value) -> None:
    nb, release = _release(), _release()
    nb.metadata[key] = value
    notes = restore_from_release(nb, release)
    assert notes == [f"the notebook's {key} was edited; restored from the release"]
    assert nb.metadata[key] == release.metadata[key]


def test_an_unknown_lexer_is_removed() -> None:
    nb = _release()
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "no-such-lexer"}
    notes = restore_from_release(nb, _release())
    assert notes == ["the notebook's language_info names a lexer pygments does not know; removed"]
    assert "pygments_lexer" not in nb.metadata["language_info"]
