"""Grading metadata a student edited, put back as the release has it before nbgrader sees it.

nbgrader trusts a submission's cell metadata in places: a test cell whose ``points`` were raised
or whose ``grade``/``solution`` flags were flipped, a new cell with grading metadata under a grade
id the gradebook does not know (nbgrader then fails the whole notebook: "error, see nbgrader.log",
0 points for a correct notebook), an edited checksum, a kernelspec or ``language_info`` naming
another language or lexer. :func:`restore_from_release` compares every cell's ``nbgrader`` metadata
with the release notebook's (the student version nbgrader generated) and puts the release's back,
drops grading metadata under unknown grade ids (the cell stays, as a plain cell), restores the
kernelspec and language_info, and returns one note per thing it changed, so the student and the
instructor see what was edited.

Metadata the release adds and a submission merely lacks (a ``checksum`` in a notebook saved from the
source) is no edit and left alone: honest notebooks come out byte-identical.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from course_utils.grading.names import shown

_REQUIRED = ("grade", "grade_id", "locked", "solution")  # what nbgrader reads from every cell


def _grade_ids(release: NotebookNode) -> dict[str, dict[str, Any]]:
    released = {}
    for cell in release.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            released[meta["grade_id"]] = meta
    return released


def _edited_keys(meta: dict[str, Any], origin: dict[str, Any]) -> list[str]:
    """The keys of ``meta`` that differ from ``origin``, and the required ones it lacks."""
    keys = {k for k in meta if k in origin and meta[k] != origin[k]}
    keys |= {k for k in _REQUIRED if k not in meta}
    if origin.get("grade") and "points" not in meta:
        keys.add("points")
    return sorted(keys)


def _label(value: Any) -> str:
    return shown(str(value)[:60])


def _restore_cells(nb: NotebookNode, released: dict[str, dict[str, Any]]) -> list[str]:
    notes = []
    for index, cell in enumerate(nb.cells):
        metadata = cell.get("metadata")
        if not isinstance(metadata, dict) or "nbgrader" not in metadata:
            continue
        meta = metadata["nbgrader"]
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        origin = released.get(grade_id) if isinstance(grade_id, str) else None
        if origin is None:
            del metadata["nbgrader"]
            notes.append(
                f"cell {index} has grading metadata the release does not have (grade id "
                f"{_label(grade_id)}): removed, the cell ran as a plain cell"
            )
            continue
        edited = _edited_keys(meta, origin)
        if edited:
            metadata["nbgrader"] = copy.deepcopy(origin)
            notes.append(
                f"cell {index} ({_label(grade_id)}): its grading metadata was edited "
                f"({', '.join(edited)}); restored from the release"
            )
    return notes


def _known_lexer(name: Any) -> bool:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        get_lexer_by_name(str(name))
    except ClassNotFound:
        return False
    return True


def _restore_notebook(nb: NotebookNode, release: NotebookNode) -> list[str]:
    """The kernelspec's language and language_info's name as the release has them, and a lexer
    pygments knows. Another kernel *name* is left: it is common (a conda env's kernel) and the
    grader runs ``Execute.kernel_name`` whatever the notebook says."""
    notes = []
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        ours = release.metadata.get(key)
        theirs = nb.metadata.get(key)
        if not isinstance(ours, dict) or theirs is None:
            continue
        if not isinstance(theirs, dict) or theirs.get(field, ours.get(field)) != ours.get(field):
            nb.metadata[key] = copy.deepcopy(ours)
            notes.append(f"the notebook's {key} was edited; restored from the release")
    info = nb.metadata.get("language_info")
    if (
        isinstance(info, dict)
        and "pygments_lexer" in info
        and not _known_lexer(info["pygments_lexer"])
    ):
        del info["pygments_lexer"]
        notes.append("the notebook's language_info names a lexer pygments does not know; removed")
    return notes


def restore_from_release(nb: NotebookNode, release: NotebookNode | Path) -> list[str]:
    """Put back in ``nb`` (in place) the grading metadata of ``release`` (a notebook or its path);
    one note per edit found (see the module docstring)."""
    if not isinstance(release, NotebookNode):
        release = nbformat.read(release, as_version=4)
    return _restore_cells(nb, _grade_ids(release)) + _restore_notebook(nb, release)
