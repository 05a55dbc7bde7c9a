"""The set-up files agree with each other and with the README: pip, CPU-only and conda routes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch", "playwright": "playwright-python"}

# Every conda-forge name environment.yml uses, and where it was seen to exist under that spelling
# (checked 2026-12-03; this machine cannot reach conda's servers, so the check is recorded here
# rather than run). "feedstock" is conda-forge's recipe repository github.com/conda-forge/<x>-feedstock.
CONDA_FORGE = {
    "pytorch": "output of conda-forge/pytorch-cpu-feedstock (CPU build unless CUDA is detected)",
    "torchvision": "conda-forge/torchvision-feedstock",
    "numpy": "conda-forge/numpy-feedstock",
    "matplotlib": "conda-forge/matplotlib-feedstock",
    "scikit-learn": "conda-forge/scikit-learn-feedstock",
    "tqdm": "conda-forge/tqdm-feedstock",
    "jupyterlab": "conda-forge/jupyterlab-feedstock",
    "nbgrader": "conda-forge/nbgrader-feedstock",
    "nbclient": "conda-forge/nbclient-feedstock",
    "nbformat": "conda-forge/nbformat-feedstock",
    "ipykernel": "conda-forge/ipykernel-feedstock",
    "ipywidgets": "conda-forge/ipywidgets-feedstock",
    "optuna": "conda-forge/optuna-feedstock",
    "numba": "conda-forge/numba-feedstock",
    "cloudpickle": "anaconda.org/conda-forge/cloudpickle (noarch 3.1.x)",
    "bleach": "anaconda.org/conda-forge/bleach (noarch 6.x)",
    "tinycss2": "anaconda.org/conda-forge/tinycss2 (noarch 1.5.x)",
    "distributed": "anaconda.org/conda-forge/distributed (noarch 2025.12)",
    "psycopg": "anaconda.org/conda-forge/psycopg (3.x, linux-64)",
    "pytest": "conda-forge/pytest-feedstock",
    "pytest-xdist": "conda-forge/pytest-xdist-feedstock",
    "hypothesis": "conda-forge/hypothesis-feedstock",
    "ruff": "conda-forge/ruff-feedstock",
    "playwright-python": "anaconda.org/conda-forge/playwright-python (noarch; `playwright` there "
    "is not the Python bindings)",
}


def _requirement_names(specs: list[str]) -> dict[str, str]:
    found = {}
    for spec in specs:
        name = re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0].lower()
        found[CONDA_NAMES.get(name, name)] = spec[len(name) :].strip()
    return found


def _conda_env(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "environment.yml").read_text())


def _conda_packages(env: dict) -> dict[str, str]:
    conda = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str):
            match = re.match(r"([A-Za-z0-9_.-]+)(.*)$", entry)
            conda[match.group(1).lower()] = match.group(2).strip()
    return conda


def test_environment_yml_lists_the_same_dependencies_as_pyproject(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = _requirement_names(project["dependencies"] + project["optional-dependencies"]["test"])
    conda = _conda_packages(_conda_env(repo_root))
    python = conda.pop("python")
    conda.pop("pip")
    assert conda == wanted
    assert python == project["requires-python"]  # the same Pythons on both routes


def test_every_conda_name_is_a_conda_forge_package(repo_root: Path) -> None:
    env = _conda_env(repo_root)
    assert env["channels"] == ["conda-forge"]
    names = set(_conda_packages(env)) - {"python", "pip"}
    assert names <= set(CONDA_FORGE), (
        f"record where these exist on conda-forge: {names - set(CONDA_FORGE)}"
    )


def test_the_conda_route_installs_the_course_command(repo_root: Path) -> None:
    env = _conda_env(repo_root)
    pip = next(entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict))
    assert pip == ["-e ."]  # the package (and so `course` on PATH); conda has the dependencies


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


def _make_n(repo_root: Path, tmp_path: Path, *args: str) -> list[str]:
    """The commands `make -n ARGS` would run, for a checkout without .venv (nothing is run)."""
    result = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            "-C",
            str(repo_root),
            f"VENV={tmp_path / 'venv'}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_torch_cpu_installs_the_cpu_build_first_for_lab_and_test(
    repo_root: Path, tmp_path: Path
) -> None:
    for target in ("lab", "test"):
        commands = _make_n(repo_root, tmp_path, target, "TORCH=cpu")
        index = [i for i, c in enumerate(commands) if "download.pytorch.org/whl/cpu" in c]
        assert len(index) == 1, commands
        cpu = commands[index[0]]
        assert "--index-url https://download.pytorch.org/whl/cpu" in cpu
        assert '"torch>=2.4"' in cpu and '"torchvision>=0.19"' in cpu
        course = next(i for i, c in enumerate(commands) if 'install --quiet -e ".[test]"' in c)
        assert index[0] < course  # then pyproject's requirement is already met: no CUDA build


def test_the_default_route_needs_only_pypi(repo_root: Path, tmp_path: Path) -> None:
    commands = _make_n(repo_root, tmp_path, "lab")
    assert not any("download.pytorch.org" in c for c in commands)
    assert (
        commands[-1].strip().endswith("bin/course lab --port=8888")
    )  # conda runs `course lab` too


def test_make_does_not_echo_its_comments(repo_root: Path, tmp_path: Path) -> None:
    for target in ("lab", "test", "ci-tools"):
        assert not any(c.lstrip().startswith("#") for c in _make_n(repo_root, tmp_path, target))
