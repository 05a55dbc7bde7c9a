"""Run each grading kernel in a bubblewrap sandbox.

nbgrader starts the kernel that runs a student's notebook with the grader's own permissions. Here the
kernel is started through ``bwrap`` (Debian package ``bubblewrap``) instead, with a filesystem made
only of:

* the system (``/usr``, ``/etc`` without password hashes, ``/proc``, ``/dev``, ``/sys``), read-only;
* the Python installation, the virtual environment and the ``course_utils`` package, read-only;
* the kernel's connection file, read-only;
* the submission's own working folder, read-write, as ``/submission``, the current directory;
* a private, empty ``/tmp`` (also ``$HOME``), thrown away when the kernel ends.

Everything else (the course's ``solutions/``, the gradebook, other students' submissions and
results, home folders) does not exist inside. The kernel also gets its own process, IPC and
hostname namespaces, so it cannot see or signal the grader or other kernels. Not protected: the
network (the kernel talks to the grader over localhost TCP), CPU use (a per-cell timeout and a
per-notebook wall-clock limit apply; memory is capped separately, see ``memory.py``), and the
kernel's own memory while the hidden tests run in it (see ``audit.py`` for the static check that
covers tampering).
"""

from __future__ import annotations

import functools
import json
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import course_utils

BWRAP = "bwrap"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")


@functools.cache
def available() -> bool:
    """True when ``bwrap`` is installed and can create namespaces on this machine."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return False
    probe = [exe, *_system_binds(), "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unavailable_reason() -> str:
    """Why :func:`available` is False, phrased as what to do about it."""
    if shutil.which(BWRAP) is None:
        return (
            "bubblewrap is not installed: `apt-get install bubblewrap` (Debian/Ubuntu) or "
            "`dnf install bubblewrap`; without it student code runs with your permissions"
        )
    return (
        "bwrap is installed but cannot create namespaces here (unprivileged user namespaces may be "
        "disabled, e.g. `sysctl kernel.unprivileged_userns_clone=1`, or run the grader as root)"
    )


def _system_binds() -> list[str]:
    args: list[str] = []
    for name in _SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    return args


def _python_dirs() -> list[Path]:
    """Read-only folders the kernel's Python needs: installation, venv, site-packages, course_utils."""
    candidates = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        *sysconfig.get_paths().values(),
        *site.getsitepackages(),
        str(Path(course_utils.__file__).resolve().parent),
        str(Path(sys.executable).resolve().parent),
    }
    dirs = sorted({Path(p).resolve() for p in candidates if p and Path(p).is_dir()})
    kept: list[Path] = []
    for path in dirs:  # sorted, so a parent comes before its children
        if any(path.is_relative_to(k) for k in kept) or str(path).startswith("/usr/"):
            continue
        kept.append(path)
    return kept


WORKDIR_INSIDE = "/submission"


def kernel_argv(workdir: Path, runtime_dir: Path, python: str = sys.executable) -> list[str]:
    """The command that starts an IPython kernel confined to ``workdir`` (see the module docstring).

    Inside, ``workdir`` is ``/submission`` (its real path would show where the course lives).
    ``{connection_file}`` is left for jupyter_client to fill in; it must live in ``runtime_dir``,
    which appears read-only at its real path (keep it outside the course, e.g. a temporary folder).
    """
    # ipykernel exits when its parent pid looks gone; inside the pid namespace it always does.
    # --die-with-parent takes that job instead.
    command = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return sandbox_argv(workdir, runtime_dir, command, unset=("JPY_PARENT_PID",))


def sandbox_argv(
    workdir: Path, runtime_dir: Path, command: list[str], *, unset: tuple[str, ...] = ()
) -> list[str]:
    """``command`` run inside the sandbox: ``workdir`` as ``/submission`` (read-write, the current
    directory), ``runtime_dir`` read-only at its real path, ``unset`` removed from the environment.

    The kernel and the trusted scorer's answer process (``answers.py``) both start through here,
    so they get the same walls.
    """
    workdir, runtime_dir = workdir.resolve(), runtime_dir.resolve()
    argv = [shutil.which(BWRAP) or BWRAP, "--die-with-parent", "--new-session"]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += _system_binds()
    argv += ["--ro-bind", "/etc", "/etc"]
    for secret in _HIDDEN_FILES:
        if Path(secret).exists():
            argv += ["--ro-bind", "/dev/null", secret]
    argv += ["--proc", "/proc", "--dev", "/dev", "--ro-bind-try", "/sys", "/sys"]
    argv += ["--tmpfs", "/tmp"]
    for path in _python_dirs():
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--ro-bind", str(runtime_dir), str(runtime_dir)]
    argv += ["--bind", str(workdir), WORKDIR_INSIDE]
    argv += ["--remount-ro", "/", "--chdir", WORKDIR_INSIDE]
    for name, value in {
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "IPYTHONDIR": "/tmp/.ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime",
    }.items():
        argv += ["--setenv", name, value]
    for name in unset:
        argv += ["--unsetenv", name]
    return argv + list(command)


def write_kernelspec(jupyter_path: Path, workdir: Path, runtime_dir: Path) -> Path:
    """Install a ``python3`` kernelspec under ``jupyter_path/kernels`` that runs sandboxed.

    Put ``jupyter_path`` first on ``JUPYTER_PATH`` of the grading process: jupyter_client then picks
    this spec over the default ``python3``. Interrupts go over the control channel ("message"
    mode) because the kernel is not a direct child of the grader.
    """
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": kernel_argv(workdir, runtime_dir),
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir
