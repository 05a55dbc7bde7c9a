"""Find the stage notebooks in a folder of submissions (one folder or ``.zip`` per student).

The inbox is student-made, so it is read defensively:

* symbolic links are never followed: not as a student's entry (a link to ``solutions/`` or to
  another student's folder), not inside a student's folder, not as an entry of a zip;
* only regular files are read (a FIFO named like a notebook would block the grader);
* every notebook is size-checked before it is read (``max_notebook_size``, 50 MiB by default), in a
  zip by its declared size, the zip's stage notebooks together too, and then read with the same
  cap, so a zip bomb is never inflated; a zip is not unpacked anywhere: the notebook to grade is
  read from it once, straight into ``_grading/submitted/``;
* a student id submitted both as a folder and as a zip is graded neither way (which one is right is
  the student's to say);
* every name is checked or quoted (``names.py``) before it reaches a problem line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from course_utils.grading.memory import describe
from course_utils.grading.names import is_student_id, one_line, shown

DEFAULT_MAX_NOTEBOOK_SIZE = 50 * 2**20  # bytes; `course grade --max-notebook-size`
MAX_ZIP_ENTRIES = 10_000
_LIMIT_HINT = "over the limit of {limit} per notebook (course grade --max-notebook-size)"


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one stage, copied to ``_grading/submitted/<student>/<stage>/``."""

    student: str
    stage: str
    notebook: Path
    sha256: str


@dataclass(frozen=True)
class _Notebook:
    """A notebook found in a student's folder or zip, not read yet."""

    path: str  # relative to the folder or zip, for problem lines
    size: int  # bytes (a zip entry's declared size)
    read: Callable[[int], bytes]  # the bytes, at most the given number + 1

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem


class _TooBig(Exception):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _student_entries(submissions: Path) -> tuple[dict[str, Path], list[str]]:
    """``{student: folder or zip}`` of the inbox, and a problem line per entry not used."""
    seen: dict[str, list[Path]] = {}
    problems: list[str] = []
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith("."):
            continue
        is_zip = entry.suffix == ".zip"
        student = entry.stem if is_zip else entry.name
        who = student if is_student_id(student) else shown(entry.name)
        if entry.is_symlink():
            what = f"{shown(entry.name)} is a symbolic link" if is_zip else "a symbolic link"
            problems.append(
                f"{who}: {what} (to {shown(os.readlink(entry))}): skipped, not followed "
                "(submit the folder or zip itself)"
            )
            continue
        mode = entry.lstat().st_mode
        if not (stat.S_ISDIR(mode) or (is_zip and stat.S_ISREG(mode))):
            problems.append(f"{who}: {shown(entry.name)} is not a folder or .zip, skipped")
            continue
        if not is_student_id(student):
            problems.append(
                f"{who}: not usable as a student id (letters, digits and _.@+- only, starting "
                "with a letter or digit), skipped"
            )
            continue
        seen.setdefault(student, []).append(entry)
    entries: dict[str, Path] = {}
    for student, paths in seen.items():
        if len(paths) > 1:
            names = " and ".join(shown(p.name) + ("" if p.suffix == ".zip" else "/") for p in paths)
            problems.append(
                f"{student}: submitted twice, as {names}; graded neither: keep only one of them"
            )
        else:
            entries[student] = paths[0]
    return entries, problems


def _read_capped(open_file: Callable[[], object], limit: int) -> bytes:
    with open_file() as handle:  # type: ignore[attr-defined]
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _TooBig
    return data


def _folder_notebooks(student: str, folder: Path) -> tuple[list[_Notebook], list[str]]:
    """The ``.ipynb`` regular files under ``folder``; symbolic links and special files are named in
    the problems, not followed or read."""
    found: list[_Notebook] = []
    problems: list[str] = []
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if d != ".ipynb_checkpoints")
        for name in sorted(subdirs) + sorted(files):
            path = here / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                problems.append(
                    f"{student}: {shown(rel)} is a symbolic link (to {shown(os.readlink(path))}): "
                    "skipped, never opened"
                )
                continue
            if name in subdirs or not name.endswith(".ipynb"):
                continue
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
                problems.append(
                    f"{student}: {shown(rel)} is not a regular file ({kind}): skipped, never opened"
                )
                continue

            def read(limit: int, path: Path = path) -> bytes:
                flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                return _read_capped(lambda: os.fdopen(os.open(path, flags), "rb"), limit)

            found.append(_Notebook(rel, info.st_size, read))
    return found, problems


def _zip_notebooks(
    student: str, zip_path: Path, limit: int, total_limit: int, stack: contextlib.ExitStack
) -> tuple[list[_Notebook] | None, list[str]]:
    """The ``.ipynb`` entries of a student's zip, checked for size before anything is inflated
    (None: the zip is not usable at all). The zip stays open until ``stack`` closes."""
    problems: list[str] = []
    try:
        archive = stack.enter_context(zipfile.ZipFile(zip_path))
        members = archive.infolist()
    except Exception as error:  # noqa: BLE001 - any broken zip is the student's problem
        reason = one_line(str(error))[:200]
        return None, [f"{student}: {shown(zip_path.name)} is not a readable zip file ({reason})"]
    if len(members) > MAX_ZIP_ENTRIES:
        return None, [
            f"{student}: {shown(zip_path.name)} has {len(members)} entries (at most "
            f"{MAX_ZIP_ENTRIES}); not extracted"
        ]
    found: list[_Notebook] = []
    for member in members:
        name = member.filename
        if stat.S_ISLNK(member.external_attr >> 16):
            problems.append(
                f"{student}: {shown(name)} in {shown(zip_path.name)} is a symbolic link: "
                "skipped, never opened"
            )
            continue
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if member.is_dir() or not name.endswith(".ipynb") or ".ipynb_checkpoints" in parts:
            continue
        if ".." in parts or name.startswith(("/", "\\")):
            problems.append(f"{student}: {shown(name)} in {shown(zip_path.name)}: unsafe path")
            continue

        def read(cap: int, member: zipfile.ZipInfo = member) -> bytes:
            return _read_capped(lambda: archive.open(member), cap)

        found.append(_Notebook(name, member.file_size, read))
    total = sum(n.size for n in found if n.size <= limit)  # larger ones are refused alone
    if total > total_limit:
        return None, problems + [
            f"{student}: the notebooks in {shown(zip_path.name)} inflate to {describe(total)}, "
            f"over the limit of {describe(total_limit)} for the whole zip; not extracted"
        ]
    return found, problems


def collect(
    root: Path,
    submissions: Path,
    known_stages: list[str],
    *,
    max_notebook_size: int = DEFAULT_MAX_NOTEBOOK_SIZE,
) -> tuple[list[Submission], list[str]]:
    """Copy every stage notebook under ``submissions`` into ``root/_grading/submitted``.

    Returns the submissions and one problem line per thing that could not be used: a notebook named
    like no stage (``01_data-Copy1.ipynb``: the line says what to rename it to), two notebooks for
    one stage, a student folder without any stage notebook, an unreadable zip, a symbolic link, a
    notebook over ``max_notebook_size`` bytes, a student id submitted twice (module docstring).
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
    entries, problems = _student_entries(submissions)
    limit = max_notebook_size
    for student, entry in entries.items():
        with contextlib.ExitStack() as stack:
            found += _collect_student(root, student, entry, known_stages, limit, problems, stack)
    return found, problems


def _collect_student(
    root: Path,
    student: str,
    entry: Path,
    known_stages: list[str],
    limit: int,
    problems: list[str],
    stack: contextlib.ExitStack,
) -> list[Submission]:
    """One student's stage notebooks copied to ``_grading/submitted``; problems appended."""
    found: list[Submission] = []
    over = _LIMIT_HINT.format(limit=describe(limit))
    if entry.suffix == ".zip":
        total_limit = limit * max(len(known_stages), 1)
        notebooks, more = _zip_notebooks(student, entry, limit, total_limit, stack)
    else:
        notebooks, more = _folder_notebooks(student, entry)
    problems += more
    if notebooks is None:
        return found
    by_stage: dict[str, list[_Notebook]] = {}
    for notebook in sorted(notebooks, key=lambda n: n.path):
        if notebook.stem in known_stages:
            by_stage.setdefault(notebook.stem, []).append(notebook)
            continue
        guess = [s for s in known_stages if notebook.stem.startswith(s)]
        hint = f"; rename it to {guess[0]}.ipynb" if guess else ""
        name = shown(PurePosixPath(notebook.path).name)
        problems.append(f"{student}: {name} is not a stage notebook{hint}")
    if not by_stage:
        problems.append(
            f"{student}: no stage notebook found (expected e.g. {known_stages[0]}.ipynb)"
        )
    for stage, copies in by_stage.items():
        if len(copies) > 1:
            rel = ", ".join(shown(n.path) for n in copies)
            problems.append(f"{student}/{stage}: {len(copies)} copies ({rel}); graded the first")
        chosen = copies[0]
        try:
            if chosen.size > limit:
                raise _TooBig
            data = chosen.read(limit)
        except _TooBig:
            size = f" ({describe(chosen.size)})" if chosen.size > limit else ""
            problems.append(f"{student}/{stage}: {shown(chosen.path)}{size} is {over}")
            continue
        except Exception as error:  # noqa: BLE001 - corrupt, encrypted, unknown compression...
            reason = one_line(str(error))[:200]
            problems.append(f"{student}/{stage}: {shown(chosen.path)} is unreadable ({reason})")
            continue
        target = root / "_grading" / "submitted" / student / stage
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        copy = target / f"{stage}.ipynb"
        copy.write_bytes(data)
        found.append(Submission(student, stage, copy, _sha256(copy)))
    return found
