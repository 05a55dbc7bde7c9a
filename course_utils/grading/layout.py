"""Where the course's pieces live: stages, the solutions, the release.

A *stage* is one nbgrader assignment: ``solutions/<stage>/<stage>.ipynb`` (source, with solutions and
hidden tests) and ``notebooks/<stage>/<stage>.ipynb`` (the student release). Stage names start with their
two-digit number, so ``"01"`` and ``"01_data"`` name the same stage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from course_utils.results import course_root


def find_root(root: str | Path | None = None) -> Path:
    """The course checkout: ``root`` if given, else found from the working directory upwards."""
    if root is not None:
        return Path(root).resolve()
    found = course_root()
    if found is None:
        raise FileNotFoundError(
            "not inside the course: no folder with nbgrader_config.py and course_utils/ found from "
            f"{Path.cwd()} upwards; run the command from the course checkout or pass --root"
        )
    return found


def stages(root: Path) -> list[str]:
    """The stage names, from the folders of ``solutions/`` (sorted)."""
    return sorted(
        p.name for p in (root / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
    )


def resolve_stage(root: Path, name: str) -> str:
    """Full stage name from ``name`` ("01", "1" or "01_data"); ValueError listing the stages if none."""
    known = stages(root)
    if name in known:
        return name
    prefix = name.zfill(2) if name.isdigit() else name
    matches = [s for s in known if s.split("_", 1)[0] == prefix]
    if len(matches) != 1:
        raise ValueError(f"unknown stage {name!r}; the stages are: {', '.join(known)}")
    return matches[0]


def graded_cells(notebook_path: Path) -> list[dict]:
    """The autograded test cells of a notebook: ``{"grade_id", "points", "index"}`` in order."""
    nb = nbformat.read(notebook_path, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cells.append(
                {"grade_id": meta["grade_id"], "points": meta.get("points", 0), "index": index}
            )
    return cells


def nbgrader(
    root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in the course ``root`` with a private Jupyter config dir.

    A private ``JUPYTER_CONFIG_DIR`` keeps a user's own nbgrader config from changing results.
    """
    (root / "_grading").mkdir(exist_ok=True)  # the gradebook lives there
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("JUPYTER_CONFIG_DIR", str(root / "_grading" / ".jupyter"))
    full_env.pop("NBGRADER_EXECUTION", None)
    # nbgrader shells out to `alembic` and kernels: the venv's bin must come first on PATH.
    bin_dir = str(Path(sys.executable).parent)
    full_env["PATH"] = os.pathsep.join([bin_dir, full_env.get("PATH", "")])
    command = [sys.executable, "-m", "nbgrader", *args]
    result = subprocess.run(command, cwd=root, env=full_env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed with exit code {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result
