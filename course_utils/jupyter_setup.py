"""How the course starts JupyterLab, and whether its extensions are on, without starting Jupyter.

``lab_command(root)`` is the one command line behind ``make lab`` and ``course lab`` (pip and conda
routes alike): the course folder as the server's root, the stage notebooks as the start page, the
course's Validate (``course_utils.lab_validate``) enabled, and the project's JupyterLab defaults
(``.jupyter/lab-settings/overrides.json``: no news toast, widget state saved with the notebook).

``lab_extension_state`` and ``server_extension_state`` read Jupyter's own files (the data and config
paths) instead of running ``jupyter labextension list`` / ``jupyter server extension list``, which
take several seconds each.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SETTINGS = Path(".jupyter") / "lab-settings"
"""The project's JupyterLab settings folder (``overrides.json``), relative to the course root."""

VALIDATE_EXTENSION = "course_utils.lab_validate"


def lab_command(root: Path, port: int | None = None, extra: list[str] | None = None) -> list[str]:
    """The ``jupyter lab`` command line for the course at ``root``."""
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        f"--ServerApp.root_dir={root}",
        "--LabApp.default_url=/lab/tree/notebooks",
        f"--LabApp.app_settings_dir={root / SETTINGS}",
        f"--ServerApp.jpserver_extensions={VALIDATE_EXTENSION}=True",
    ]
    if port is not None:
        command.append(f"--port={port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI often run as root; Jupyter refuses then
    return command + list(extra or [])


def lab_environment() -> dict[str, str]:
    """The environment for ``lab_command``: this Python's ``bin`` first on PATH (nbgrader runs
    ``alembic`` from PATH when it creates a gradebook)."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def lab_extension_state(name: str) -> str:
    """ "enabled", "disabled (...)" or "NOT installed" for the prebuilt lab extension ``name``."""
    from jupyter_core.paths import jupyter_config_path, jupyter_path

    found = [Path(d) / name for d in jupyter_path("labextensions") if (Path(d) / name).is_dir()]
    if not found:
        return "NOT installed"
    for folder in jupyter_config_path():
        page = _read_json(Path(folder) / "labconfig" / "page_config.json")
        disabled = page.get("disabledExtensions", {})
        if (isinstance(disabled, dict) and disabled.get(name)) or (
            isinstance(disabled, list) and name in disabled
        ):
            return f"disabled (in {folder}/labconfig/page_config.json)"
    return "enabled"


def server_extension_state(module: str) -> str:
    """ "enabled" or "NOT enabled" for the jupyter server extension ``module`` (config files only)."""
    from jupyter_core.paths import jupyter_config_path

    state = None
    for folder in reversed(jupyter_config_path()):  # later folders in the list have lower priority
        files = sorted((Path(folder) / "jupyter_server_config.d").glob("*.json"))
        for path in [*files, Path(folder) / "jupyter_server_config.json"]:
            extensions = _read_json(path).get("ServerApp", {}).get("jpserver_extensions", {})
            if module in extensions:
                state = bool(extensions[module])
    return "enabled" if state else "NOT enabled"
