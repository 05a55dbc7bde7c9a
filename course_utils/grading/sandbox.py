"""Run each grading kernel in a bubblewrap sandbox.

nbgrader starts the kernel that runs a student's notebook with the grader's own permissions. Here the
kernel is started through ``bwrap`` (Debian package ``bubblewrap``) instead (:func:`sandbox_argv` has
the full list of walls), so that it runs:

* as uid 1000 in a user namespace of its own with no capabilities (``open_by_handle_at``, raising
  its own limits and new namespaces are refused), in a network namespace of its own (only its own
  loopback: nbgrader talks to it over IPC sockets in a folder private to the job,
  :func:`write_ipc_config`), and in its own pid, IPC, UTS and cgroup namespaces;
* on a filesystem made only of the system (``/usr``, ``/etc`` without password hashes, ``/proc``,
  ``/dev``, ``/sys``), the Python installation, the virtual environment and ``course_utils``, all
  read-only, and three private tmpfs folders of ``disk_limit`` bytes each: ``/submission`` (the
  current directory), ``/tmp`` (also ``$HOME``) and ``/dev/shm``, thrown away when the kernel ends.
  Nothing it writes ever reaches a folder nbgrader reads or copies afterwards;
* inside the job's memory and pids cgroups (``cgroups.py``: the memory limit counts shared memory and
  the tmpfs folders) with a CPU-time limit per process.

Everything else (the course's ``solutions/``, the gradebook, other students' submissions and
results, home folders) does not exist inside. :func:`protections` measures which of these walls
this machine provides (``course doctor`` prints it). Not protected: what the system folders show
everyone (read-only), the share of the machine's cores a job gets, and the kernel's own memory while
the hidden tests run in it (see ``audit.py`` for the static check that covers tampering).
"""

from __future__ import annotations

import functools
import json
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import course_utils
from course_utils.grading import cgroups

BWRAP = "bwrap"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")


@functools.cache
def available() -> bool:
    """True when ``bwrap`` is installed and can build the full sandbox (:func:`sandbox_argv`:
    user and network namespaces included) on this machine."""
    if shutil.which(BWRAP) is None:
        return False
    with tempfile.TemporaryDirectory(prefix="course-sandbox-probe-") as tmp:
        probe = sandbox_argv(Path(tmp), Path(tmp), ["true"])
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
SANDBOX_UID = 1000  # the kernel's uid inside its user namespace (it maps to the grader's outside)
DEFAULT_DISK_LIMIT = 2**30  # bytes each writable folder (/submission, /tmp, /dev/shm) may hold
DEFAULT_PIDS_LIMIT = 256  # tasks (processes and threads) per job; an honest kernel uses ~20
# Where the sandboxed command starts from: it enters the job's cgroups and sets its CPU-time limit
# while still outside, then execs bwrap, so nothing inside ever runs unlimited. "$1" is the CPU
# limit in seconds ("-": none), then the cgroup.procs files, then "--" and the command.
_ENTER = (
    'set -e; if [ "$1" != - ]; then ulimit -t "$1"; fi; shift; '
    'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"'
)


def kernel_argv(
    workdir: Path,
    runtime_dir: Path,
    python: str = sys.executable,
    *,
    cgroup: cgroups.JobCgroup | None = None,
    cpu_seconds: int | None = None,
    disk_limit: int = DEFAULT_DISK_LIMIT,
) -> list[str]:
    """The command that starts an IPython kernel in the sandbox (see :func:`sandbox_argv`).

    ``{connection_file}`` is left for jupyter_client to fill in; it must live in ``runtime_dir``
    (keep it outside the course, e.g. a temporary folder). The kernel binds its IPC sockets in
    ``runtime_dir/ipc``, the one folder it may write outside its tmpfs (:func:`write_ipc_config`).
    """
    # ipykernel exits when its parent pid looks gone; inside the pid namespace it always does.
    # --die-with-parent takes that job instead.
    command = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return sandbox_argv(
        workdir,
        runtime_dir,
        command,
        unset=("JPY_PARENT_PID",),
        sockets=runtime_dir / "ipc",
        cgroup=cgroup,
        cpu_seconds=cpu_seconds,
        disk_limit=disk_limit,
    )


def sandbox_argv(
    workdir: Path,
    runtime_dir: Path,
    command: list[str],
    *,
    unset: tuple[str, ...] = (),
    sockets: Path | None = None,
    cgroup: cgroups.JobCgroup | None = None,
    cpu_seconds: int | None = None,
    disk_limit: int = DEFAULT_DISK_LIMIT,
) -> list[str]:
    """``command`` run inside the sandbox (the kernel and the trusted scorer's answer process both
    start through here, so they get the same walls):

    * a new user namespace (uid 1000) with no capabilities, its own network namespace (only its
      own loopback), and its own pid, IPC, UTS and cgroup namespaces;
    * ``/submission`` (the current directory), ``/tmp`` (also ``$HOME``) and ``/dev/shm``: private
      tmpfs folders of ``disk_limit`` bytes each, gone when the command ends. The regular files and
      folders in ``workdir`` when this is called appear in ``/submission`` read-only; nothing
      written inside ever reaches ``workdir`` (so nothing the student makes, a symlink, a FIFO, a
      2 GiB file, is ever seen by the grader outside);
    * ``runtime_dir`` read-only at its real path, ``sockets`` (if given) read-write there;
    * with ``cgroup``: it joins the job's memory and pids cgroups (``cgroups.py``) before bwrap
      starts; with ``cpu_seconds``: ``RLIMIT_CPU`` (soft = hard: killed at the limit);
    * ``unset`` removed from the environment.
    """
    runtime_dir = runtime_dir.resolve()
    argv = [shutil.which(BWRAP) or BWRAP, "--die-with-parent", "--new-session"]
    argv += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    argv += ["--cap-drop", "ALL", "--disable-userns", "--unshare-net"]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += _system_binds()
    argv += ["--ro-bind", "/etc", "/etc"]
    for secret in _HIDDEN_FILES:
        if Path(secret).exists():
            argv += ["--ro-bind", "/dev/null", secret]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    argv += ["--ro-bind-try", "/sys", "/sys"]
    for folder in ("/dev/shm", "/tmp", WORKDIR_INSIDE):
        argv += ["--size", str(disk_limit), "--tmpfs", folder]
    for path in _python_dirs():
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--ro-bind", str(runtime_dir), str(runtime_dir)]
    if sockets is not None:
        sockets = sockets.resolve()
        sockets.mkdir(parents=True, exist_ok=True)
        argv += ["--bind", str(sockets), str(sockets)]
    argv += _workdir_binds(workdir)
    argv += ["--remount-ro", "/", "--chdir", WORKDIR_INSIDE]
    for name, value in {
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "USER": "student",  # getpass.getuser() without a passwd entry for uid 1000
        "LOGNAME": "student",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "IPYTHONDIR": "/tmp/.ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime",
    }.items():
        argv += ["--setenv", name, value]
    for name in unset:
        argv += ["--unsetenv", name]
    argv += list(command)
    if cgroup is None and cpu_seconds is None:
        return argv
    procs = [str(p) for p in cgroup.procs_files()] if cgroup else []
    cpu = str(cpu_seconds) if cpu_seconds else "-"
    return ["/bin/sh", "-c", _ENTER, "sandbox-enter", cpu, *procs, "--", *argv]


def _workdir_binds(workdir: Path) -> list[str]:
    """``--ro-bind`` of each regular file and folder in ``workdir`` into ``/submission``."""
    args: list[str] = []
    if not workdir.is_dir():
        return args
    for entry in sorted(workdir.resolve().iterdir()):
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            args += ["--ro-bind", str(entry), f"{WORKDIR_INSIDE}/{entry.name}"]
    return args


def write_kernelspec(
    jupyter_path: Path,
    workdir: Path,
    runtime_dir: Path,
    *,
    cgroup: cgroups.JobCgroup | None = None,
    cpu_seconds: int | None = None,
) -> Path:
    """Install a ``python3`` kernelspec under ``jupyter_path/kernels`` that runs sandboxed.

    Put ``jupyter_path`` first on ``JUPYTER_PATH`` of the grading process: jupyter_client then picks
    this spec over the default ``python3``. Interrupts go over the control channel ("message"
    mode) because the kernel is not a direct child of the grader.
    """
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": kernel_argv(workdir, runtime_dir, cgroup=cgroup, cpu_seconds=cpu_seconds),
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir


def write_ipc_config(config_dir: Path, runtime_dir: Path) -> Path:
    """``config_dir/nbgrader_config.py`` making nbgrader talk to its kernel over IPC sockets in
    ``runtime_dir/ipc``: the kernel has no network to share, and no other kernel sees that folder.

    ``config_dir`` is the job's ``JUPYTER_CONFIG_DIR``; nbgrader reads it before the course's own
    ``nbgrader_config.py``, which sets nothing about the transport.
    """
    sockets = (runtime_dir / "ipc").resolve()
    sockets.mkdir(parents=True, exist_ok=True)
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "nbgrader_config.py"
    path.write_text(
        "# Written by course_utils.grading.sandbox: the sandboxed kernel has no network.\n"
        "c = get_config()  # noqa: F821\n"
        'c.KernelManager.transport = "ipc"\n'
        f"c.KernelManager.ip = {str(sockets / 'kernel')!r}\n"
    )
    return path


@dataclass
class JobSandbox:
    """What :func:`start_job` set up for one grading job; :meth:`end` takes it down."""

    cgroup: cgroups.JobCgroup | None
    notebook: Path  # the autograded notebook nbgrader writes (read for out-of-space errors)
    disk_limit: int = DEFAULT_DISK_LIMIT
    ended: bool = field(default=False, repr=False)

    def end(self) -> list[str]:
        """Kill anything of the job still running, remove its cgroups; the notes on the limits
        the job hit (memory, processes, disk space). Safe to call twice."""
        if self.ended:
            return []
        self.ended = True
        notes: list[str] = []
        if self.cgroup is not None:
            notes += self.cgroup.notes()
            self.cgroup.remove()
        return notes + _out_of_space_notes(self.notebook, self.disk_limit)


def start_job(
    workspace: Path,
    workdir: Path,
    runtime_dir: Path,
    *,
    memory_limit: int | None,
    cpu_seconds: int | None,
    pids_limit: int | None = DEFAULT_PIDS_LIMIT,
) -> JobSandbox:
    """Everything one sandboxed grading job needs before nbgrader starts, in ``workspace`` (the
    job's folder, with ``jupyter/`` on ``JUPYTER_PATH`` and ``.jupyter/`` as config dir): its
    cgroups (after removing those of dead runs), the kernelspec and the IPC config."""
    cgroups.remove_stale()
    cgroup = cgroups.create(workspace.name, memory=memory_limit, pids=pids_limit)
    write_kernelspec(
        workspace / "jupyter", workdir, runtime_dir, cgroup=cgroup, cpu_seconds=cpu_seconds
    )
    write_ipc_config(workspace / ".jupyter", runtime_dir)
    return JobSandbox(cgroup, workdir / f"{workdir.name}.ipynb")


_NO_SPACE = "No space left on device"


def _out_of_space_notes(notebook: Path, disk_limit: int) -> list[str]:
    from course_utils.grading.memory import describe

    try:
        nb = json.loads(notebook.read_text())
    except (OSError, ValueError):
        return []
    notes = []
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "error" and _NO_SPACE in str(output.get("evalue")):
                notes.append(
                    f"cell {index} ran out of disk space (/submission, /tmp and /dev/shm hold at "
                    f"most {describe(disk_limit)} each)"
                )
                break
    return notes


_PROBE = """
import json, os
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")]
nets = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev") if ":" in l)
st = os.statvfs("/submission")
print(json.dumps({"caps": caps[0], "uid": os.getuid(), "nets": nets,
                  "disk": st.f_blocks * st.f_frsize}))
"""


def protections() -> list[tuple[str, bool, str]]:
    """(protection, active, detail) for each wall of the grading sandbox, measured on this machine
    by starting one sandbox with a job cgroup (about 0.1 s): what ``course doctor`` reports."""
    from course_utils.grading.memory import describe

    if not available():
        return [("bubblewrap sandbox", False, unavailable_reason())]
    cgroup = cgroups.create("doctor-probe", memory=2**30, pids=DEFAULT_PIDS_LIMIT)
    try:
        with tempfile.TemporaryDirectory(prefix="course-sandbox-probe-") as tmp:
            argv = sandbox_argv(
                Path(tmp), Path(tmp), [sys.executable, "-c", _PROBE], cgroup=cgroup, cpu_seconds=60
            )
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        found = json.loads(done.stdout)
        inside = cgroup is not None and cgroup.peak_memory() > 0  # the probe ran in it
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        return [("bubblewrap sandbox", False, f"the probe sandbox failed: {error}")]
    finally:
        if cgroup is not None:
            cgroup.remove()
    no_caps = found["caps"] == "0000000000000000"
    no_cgroup = cgroups.unavailable_reason() or "could not create one"
    tmpfs = f"/submission, /tmp, /dev/shm hold {describe(DEFAULT_DISK_LIMIT)} each"
    return [
        (
            "user namespace",
            no_caps and found["uid"] == SANDBOX_UID,
            f"uid {found['uid']} inside, effective capabilities {found['caps']}",
        ),
        ("network namespace", found["nets"] == ["lo"], f"interfaces inside: {found['nets']}"),
        (
            "memory and pids cgroup per job",
            inside,
            f"cgroup v{cgroup.version}: memory (counts shared memory and tmpfs), "
            f"{DEFAULT_PIDS_LIMIT} tasks"
            if cgroup
            else f"{no_cgroup}; fallback: {tmpfs}, shared memory and processes not capped",
        ),
        ("workspace size cap", found["disk"] == DEFAULT_DISK_LIMIT, tmpfs),
        ("CPU-time limit", True, "RLIMIT_CPU = the notebook timeout, per process"),
    ]
