"""``course release``: regenerate ``notebooks/`` from ``solutions/`` with nbgrader.

nbgrader's output is deterministic, so a clean ``git diff notebooks/`` after a release means the committed
student notebooks match their source.
"""

from __future__ import annotations

from pathlib import Path

from course_utils.grading.layout import nbgrader, stages


def release(
    root: Path, only: list[str] | None = None, release_dir: Path | None = None
) -> list[Path]:
    """Generate the student version of each stage (or of ``only``); returns the written notebooks.

    ``release_dir``: write there instead of ``notebooks/`` (used by tests to compare without touching
    the checkout).
    """
    written = []
    for stage in only or stages(root):
        args = ["generate_assignment", stage, "--force"]
        if release_dir is not None:
            args.append(f"--CourseDirectory.release_directory={release_dir}")
        nbgrader(root, *args)
        written.append((release_dir or root / "notebooks") / stage / f"{stage}.ipynb")
    return written
