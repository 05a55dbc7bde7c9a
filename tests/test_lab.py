"""`make lab` serves the course in JupyterLab with the nbgrader extension."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab_server import get, lab_server


@pytest.mark.slow
def test_make_lab_serves_the_student_notebooks(repo_root: Path, tmp_path: Path) -> None:
    with lab_server(repo_root, tmp_path) as base:
        status, page = get(f"{base}/lab")
        assert status == 200 and "JupyterLab" in page
        _, listing = get(f"{base}/api/contents/notebooks")
        names = {item["name"] for item in json.loads(listing)["content"]}
        assert "01_data" in names
        assert "@jupyter/nbgrader" in page  # the lab page's federated extensions
        # The first formgrader request creates the gradebook (nbgrader runs alembic): 5.5 s on a
        # slow 2-core CI box, past the 5 s that suits every other request.
        status, _ = get(f"{base}/formgrader/api/assignments", timeout=60)
        assert status == 200  # nbgrader's server extension answers
