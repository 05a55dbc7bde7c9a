"""`make lab` serves the course in JupyterLab with the nbgrader extension."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # localhost only
        return response.status, response.read().decode()


@pytest.mark.slow
def test_make_lab_serves_the_student_notebooks(repo_root: Path, tmp_path: Path) -> None:
    port = _free_port()
    args = (
        "--no-browser --ServerApp.ip=127.0.0.1 --IdentityProvider.token= "
        "--ServerApp.password= --ServerApp.disable_check_xsrf=True"
    )
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    server = subprocess.Popen(
        ["make", "-s", "lab", f"PORT={port}", f"LAB_ARGS={args}"],
        cwd=repo_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, page = _get(f"{base}/lab")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"JupyterLab did not start:\n{output[-3000:]}")
                time.sleep(1)
        assert status == 200 and "JupyterLab" in page
        _, listing = _get(f"{base}/api/contents/notebooks")
        names = {item["name"] for item in json.loads(listing)["content"]}
        assert "01_data" in names
        assert "@jupyter/nbgrader" in page  # the lab page's federated extensions
        status, _ = _get(f"{base}/formgrader/api/assignments")
        assert status == 200  # nbgrader's server extension answers
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
