"""Find the stage notebooks in a folder of submissions (one folder or ``.zip`` per student)."""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one stage, copied to ``_grading/submitted/<student>/<stage>/``."""

    student: str
    stage: str
    notebook: Path
    sha256: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _target(link: Path) -> str:
    try:
        return f"to {link.readlink()}"
    except OSError:
        return "unreadable"


def _not_a_file(path: Path) -> str | None:
    """None for a regular file; else what it is. A symlink could make the grader copy the course's
    solutions as a submission, a FIFO would block the batch forever: neither is followed."""
    try:
        mode = path.lstat().st_mode
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link ({_target(path)}), not a file"
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
    return f"not a regular file ({kind})"


def _student_folders(submissions: Path, unpack_to: Path) -> tuple[dict[str, Path], list[str]]:
    folders: dict[str, Path] = {}
    problems: list[str] = []
    for entry in sorted(submissions.iterdir()):
        student = entry.stem if entry.suffix == ".zip" else entry.name
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            problems.append(
                f"{entry.name}: a symbolic link ({_target(entry)}): skipped, not followed"
            )
            continue
        if not (entry.is_dir() or entry.suffix == ".zip"):
            problems.append(f"{entry.name}: not a folder or .zip, skipped")
            continue
        if not _STUDENT_ID.match(student):
            problems.append(
                f"{entry.name}: not usable as a student id (letters, digits and _.@+- only), skipped"
            )
            continue
        if entry.is_dir():
            folders[student] = entry
            continue
        target = unpack_to / student
        try:
            with zipfile.ZipFile(entry) as archive:
                for member in archive.infolist():  # no absolute paths or .. in a student's zip
                    if (
                        member.filename.endswith(".ipynb")
                        and ".." not in Path(member.filename).parts
                    ):
                        archive.extract(member, target)
        except zipfile.BadZipFile:
            problems.append(f"{student}: {entry.name} is not a readable zip file")
            continue
        folders[student] = target
    return folders, problems


def collect(
    root: Path, submissions: Path, known_stages: list[str]
) -> tuple[list[Submission], list[str]]:
    """Copy every stage notebook under ``submissions`` into ``root/_grading/submitted``.

    Returns the submissions and one problem line per thing that could not be used: a notebook named
    like no stage (``01_data-Copy1.ipynb``: the line says what to rename it to), two notebooks for
    one stage, a student folder without any stage notebook, an unreadable zip.
    """
    if not submissions.is_dir():
        raise FileNotFoundError(
            f"{submissions}: expected a folder with one folder or .zip per student"
        )
    if submissions.resolve().is_relative_to((root / "_grading").resolve()):
        raise ValueError(
            f"{submissions} is inside _grading/, which course grade rewrites; pass the folder the "
            "submissions were downloaded to (with nbgrader's exchange: `nbgrader collect STAGE "
            "--CourseDirectory.submitted_directory=inbox`, then `course grade inbox`)"
        )
    found: list[Submission] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folders, problems = _student_folders(submissions, Path(tmp))
        for student, folder in folders.items():
            by_stage: dict[str, list[Path]] = {}
            for notebook in sorted(folder.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in notebook.parts:
                    continue
                unusable = _not_a_file(notebook)
                if unusable:
                    rel = notebook.relative_to(folder)
                    problems.append(f"{student}: {rel} is {unusable}: skipped, never opened")
                    continue
                if notebook.stem in known_stages:
                    by_stage.setdefault(notebook.stem, []).append(notebook)
                    continue
                guess = [s for s in known_stages if notebook.stem.startswith(s)]
                hint = f"; rename it to {guess[0]}.ipynb" if guess else ""
                problems.append(f"{student}: {notebook.name} is not a stage notebook{hint}")
            if not by_stage:
                problems.append(
                    f"{student}: no stage notebook found (expected e.g. {known_stages[0]}.ipynb)"
                )
            for stage, notebooks in by_stage.items():
                if len(notebooks) > 1:
                    rel = ", ".join(str(n.relative_to(folder)) for n in notebooks)
                    problems.append(
                        f"{student}/{stage}: {len(notebooks)} copies ({rel}); graded the first"
                    )
                target = root / "_grading" / "submitted" / student / stage
                if target.exists():
                    shutil.rmtree(target)
                target.mkdir(parents=True)
                copy = target / f"{stage}.ipynb"
                shutil.copyfile(notebooks[0], copy)
                found.append(Submission(student, stage, copy, _sha256(copy)))
    return found, problems
