from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
