"""The `course` command: doctor (fast by default), lab, check, and their errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.cli import main


def test_doctor_reports_versions_device_and_datasets(capsys) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for word in (
        "torch",
        "torchvision",
        "group norm   fused CPU kernel (numba ",
        "devices",
        "mnist_5k",
        "nbgrader lab extension",
        "grading sandbox",
        "network namespace",
        "grading memory cap",
    ):
        assert word in out
    assert "build" in out.splitlines()[1]  # "CPU-only build" or "CUDA 12.4 build..."


def test_doctor_names_the_torch_build(monkeypatch) -> None:
    import torch

    from course_utils import cli

    monkeypatch.setattr(torch.version, "cuda", None)
    assert cli.torch_build() == "CPU-only build"
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "TORCH=cpu" in cli.torch_build()  # a CUDA build without a GPU says how to save the space


def test_lab_starts_jupyterlab_with_the_course_settings(capsys, repo_root: Path) -> None:
    assert main(["--root", str(repo_root), "lab", "--print", "--port", "9999", "--no-browser"]) == 0
    command = capsys.readouterr().out
    for part in (
        f"--ServerApp.root_dir={repo_root}",
        "--LabApp.default_url=/lab/tree/notebooks",
        f"--LabApp.app_settings_dir={repo_root / '.jupyter' / 'lab-settings'}",
        "--ServerApp.jpserver_extensions=course_utils.lab_validate=True",
        "--port=9999",
        "--no-browser",
    ):
        assert part in command
    assert (repo_root / ".jupyter" / "lab-settings" / "overrides.json").is_file()


def test_the_project_settings_turn_off_the_news_and_save_widget_state(repo_root: Path) -> None:
    import json

    settings = json.loads((repo_root / ".jupyter" / "lab-settings" / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert settings["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True


def test_other_commands_refuse_unknown_options(repo_root: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--root", str(repo_root), "check", "01", "--no-browser"])


@pytest.mark.slow
def test_check_names_each_exercise_as_the_notebook_does(capsys, repo_root: Path) -> None:
    assert main(["--root", str(repo_root), "check", "01"]) == 1  # the release: nothing answered
    out = capsys.readouterr().out
    assert "testing Exercise 2: find near-duplicates..." in out  # progress while it runs
    for title in ("Exercise 1: find exact duplicates", "Exercise 2: find near-duplicates"):
        assert f"FAIL {title} (0/2): not implemented yet" in out
    assert "_test" not in out and "without encryption" not in out
    assert "01_data: 0/3 exercises pass" in out


def test_doctor_says_when_group_norm_has_only_the_composed_ops(monkeypatch) -> None:
    from course_utils import cli, layers

    monkeypatch.setattr(layers, "fused_kernel_unavailable_reason", lambda: "numba is missing")
    assert cli._group_norm_path() == "composed ops only: numba is missing"


def test_unknown_stage_lists_the_stages(capsys, repo_root: Path) -> None:
    assert main(["--root", str(repo_root), "check", "99"]) == 2
    assert "unknown stage '99'; the stages are: 01_data" in capsys.readouterr().out


def test_outside_the_course_says_where_to_run(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["release"]) == 2
    assert "not inside the course" in capsys.readouterr().out


def test_course_command_is_installed() -> None:
    exe = Path(sys.executable).with_name("course")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "check" in result.stdout
