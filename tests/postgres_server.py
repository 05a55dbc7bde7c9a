"""A private PostgreSQL server for one test: its own data folder, a free loopback port, no password.

PostgreSQL refuses to run as root, so as root (CI here) ``initdb`` and ``pg_ctl`` run as the
unprivileged ``nobody`` through ``runuser``, in a folder owned by it; as any other user, directly.
The server listens on 127.0.0.1 only, trusts local connections, and is stopped (``-m immediate``)
and deleted when the context ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "grader"  # the database superuser initdb creates
RUN_AS = "nobody"


def missing_reason() -> str | None:
    """Why no private server can be started here (None: it can)."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if shutil.which(tool) is None:
            return f"no PostgreSQL server binary `{tool}` on PATH (install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without `runuser`: PostgreSQL refuses to run as root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(argv: list[str]) -> None:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", RUN_AS, "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


@contextlib.contextmanager
def private_postgres(database: str = "gradebook") -> Iterator[str]:
    """Start a server with an empty ``database``; yields its URL (``postgresql://``, no driver)."""
    folder = Path(tempfile.mkdtemp(prefix="course-pg-"))
    folder.chmod(0o755)  # the unprivileged server user must reach its data folder
    if os.geteuid() == 0:
        shutil.chown(folder, RUN_AS)
    data, port = folder / "data", _free_port()
    try:
        _run(["initdb", "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(
            [
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(folder / "server.log"),
                "-w",
                "-o",
                options,
                "start",
            ]
        )
        try:
            import psycopg

            admin = f"postgresql://{USER}@127.0.0.1:{port}/postgres"
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{database}"')
            yield f"postgresql://{USER}@127.0.0.1:{port}/{database}"
        finally:
            _run(["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
