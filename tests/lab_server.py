"""Start the course's JupyterLab on a free localhost port for tests, and stop it.

It runs `course lab` (what `make lab` runs once .venv exists, see tests/test_environment.py) with this
Python, so a test uses the checkout under test and never builds or changes a virtual env.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

LAB_ARGS = [
    "--no-browser",
    "--ServerApp.ip=127.0.0.1",
    "--IdentityProvider.token=",
    "--ServerApp.password=",
    "--ServerApp.disable_check_xsrf=True",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # localhost only
        return response.status, response.read().decode()


@contextlib.contextmanager
def lab_server(
    repo: Path, runtime_dir: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `course lab` and yield its base URL once /lab answers; stop its process group after."""
    port = free_port()
    env = {
        **os.environ,
        **(env or {}),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "course_utils.cli", "--root", str(repo), "lab"]
    server = subprocess.Popen(
        [*command, f"--port={port}", *LAB_ARGS],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                get(f"{base}/lab")
                break
            except OSError as error:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    raise RuntimeError(f"JupyterLab did not start:\n{output[-3000:]}") from error
                time.sleep(1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
