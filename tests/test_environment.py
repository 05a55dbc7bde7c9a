"""The set-up files agree with each other and with the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

CONDA_NAMES = {"torch": "pytorch"}


def _requirement_names(specs: list[str]) -> dict[str, str]:
    found = {}
    for spec in specs:
        name = re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0].lower()
        found[CONDA_NAMES.get(name, name)] = spec[len(name) :].strip()
    return found


def test_environment_yml_lists_the_same_dependencies_as_pyproject(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = _requirement_names(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    conda = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str) and not entry.startswith(("python", "pip")):
            match = re.match(r"([A-Za-z0-9_.-]+)(.*)$", entry)
            conda[match.group(1).lower()] = match.group(2).strip()
    assert conda == wanted


def test_no_exact_pins_on_torch(repo_root: Path) -> None:
    text = (repo_root / "pyproject.toml").read_text()
    assert not re.search(r'"torch(vision)?==', text)


def test_ci_runs_the_readme_test_command(repo_root: Path) -> None:
    ci = (repo_root / ".ci" / "run").read_text()
    readme = (repo_root / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make lab" in readme


def test_makefile_builds_the_venv_for_both_commands(repo_root: Path) -> None:
    makefile = (repo_root / "Makefile").read_text()
    assert re.search(r"^lab: \$\(STAMP\)", makefile, re.M)
    assert re.search(r"^test: \$\(STAMP\)", makefile, re.M)
    assert "-m venv" in makefile
