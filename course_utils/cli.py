"""The ``course`` command.

course doctor [--full]        versions, torch build, device, datasets, extensions, grading sandbox
course lab [--port N]         open the course in JupyterLab (what `make lab` runs)
course release [STAGE ...]    regenerate notebooks/ from solutions/
course check NN [PATH]        run a notebook's graded cells, one PASS/FAIL line per exercise
course grade SUBMISSIONS      autograde a class (sandboxed, memory-capped, --jobs N, resumable;
                              --cluster ADDRESS for a dask cluster, --db URL for the gradebook)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from course_utils.grading.collect import DEFAULT_MAX_NOTEBOOK_SIZE
from course_utils.grading.memory import (
    DEFAULT_MEMORY_LIMIT,
    describe,
    enforced,
    parse_bytes,
    parse_size,
)


def _doctor(args: argparse.Namespace) -> int:
    """A few seconds of facts about this set-up; ``--full`` adds the slow probes."""
    import torch

    from course_utils.data import DATASETS, TORCHVISION_SETS, data_dir, dataset_name
    from course_utils.runtime import available_devices, pick_device

    print(f"python       {platform.python_version()} ({sys.executable})")
    print(f"torch        {torch.__version__}, {torch_build()} (threads: {torch.get_num_threads()})")
    print(f"torchvision  {_version('torchvision')}")
    print(f"group norm   {_group_norm_path() if args.full else _numba_state()}")
    print(f"devices      {', '.join(available_devices())}; the course uses {pick_device()}")
    print(f"dataset      {dataset_name()} (set COURSE_DATASET to one of: {', '.join(DATASETS)})")
    cache = data_dir()
    for name in TORCHVISION_SETS:
        folder = {
            "mnist": "MNIST",
            "fashion_mnist": "FashionMNIST",
            "cifar10": "cifar-10-batches-py",
        }
        present = (cache / folder[name]).exists()
        where = f"cached in {cache}" if present else "not cached (needs internet once)"
        print(f"  {name:13s} {where}")
    print("  mnist_5k      embedded (default)\n  digits        embedded")
    from course_utils import jupyter_setup

    print(f"nbgrader lab extension {jupyter_setup.lab_extension_state('@jupyter/nbgrader')}")
    state = jupyter_setup.server_extension_state("nbgrader.server_extensions.validate_assignment")
    print(f"nbgrader server ext.   {state}")
    print("course Validate        one line per exercise, when started by `course lab` / `make lab`")
    if args.full:
        for label, command in (
            ("lab extension", ["labextension", "list"]),
            ("server ext.  ", ["server", "extension", "list"]),
        ):
            exe = Path(sys.executable).with_name("jupyter")
            out = subprocess.run([str(exe), *command], capture_output=True, text=True)
            text = out.stdout + out.stderr
            ok = any("nbgrader" in line and ("enabled" in line) for line in text.splitlines())
            print(
                f"nbgrader {label} {'enabled' if ok else 'NOT enabled'} (`jupyter {' '.join(command)}`)"
            )
    _doctor_grading()
    if not args.full:
        print(
            "(`course doctor --full` also compiles the group-norm kernel and asks `jupyter` itself)"
        )
    return 0


# ---- grading: the sandbox and the memory cap -------------------------------------------------
def _doctor_grading() -> None:
    """The doctor's grading section (sandbox state, its protections, the memory cap)."""
    from course_utils.grading import sandbox

    state = "bubblewrap, working" if sandbox.available() else sandbox.unavailable_reason()
    print(f"grading sandbox {state}")
    for name, active, detail in sandbox.protections():
        print(f"  {'yes' if active else 'NO ':3s} {name}: {detail}")
    cap = describe(DEFAULT_MEMORY_LIMIT)
    state = f"enforced, {cap} per notebook by default" if enforced() else "not enforced here"
    print(f"grading memory cap (--memory-limit) {state}")


# ---------------------------------------------------------------------------------------------
def _version(distribution: str) -> str:
    """The installed version of ``distribution`` without importing it (torchvision takes seconds)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def torch_build() -> str:
    """Which PyTorch build is installed: CPU-only, or CUDA (with its GB of nvidia libraries)."""
    import torch

    cuda = getattr(torch.version, "cuda", None)
    if cuda:
        hint = (
            "" if torch.cuda.is_available() else "; no GPU here: `make lab TORCH=cpu` saves ~4 GB"
        )
        return f"CUDA {cuda} build{hint}"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip} build"
    return "CPU-only build"


def _group_norm_path() -> str:
    """Which implementation ``course_utils.layers.group_norm`` runs on the CPU here."""
    from course_utils.layers import fused_kernel_unavailable_reason

    reason = fused_kernel_unavailable_reason()
    if reason is not None:
        return f"composed ops only: {reason}"
    import numba

    return f"fused CPU kernel (numba {numba.__version__})"


def _numba_state() -> str:
    """The group-norm line without compiling anything: is numba there for the fused kernel?"""
    version = _version("numba")
    if version == "not installed":
        return "composed ops only: numba is not installed; pip install numba"
    return f"fused CPU kernel (numba {version}; compiled on first use)"


def _release(args: argparse.Namespace) -> int:
    from course_utils.grading.layout import find_root, resolve_stage
    from course_utils.grading.release import release

    root = find_root(args.root)
    only = [resolve_stage(root, s) for s in args.stages] or None
    for path in release(root, only):
        print(f"released {path.relative_to(root)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from course_utils.grading.layout import find_root, resolve_stage
    from course_utils.notebook_check import run_exercises

    root = find_root(args.root)
    stage = resolve_stage(root, args.stage)
    path = Path(args.path) if args.path else root / "notebooks" / stage / f"{stage}.ipynb"
    if not path.is_file():
        print(f"FAIL {stage}: no notebook at {path}")
        return 2
    what = "every cell" if args.full else "the cells its tests need"
    print(f"checking {path}: {what}, training shrunk as under grading", flush=True)
    run = run_exercises(
        path.resolve(), full=args.full, on_status=lambda m: print(f"  {m}...", flush=True)
    )
    width = max(60, min(shutil.get_terminal_size().columns, 120))
    for verdict in run.verdicts:
        print(
            textwrap.fill(
                verdict.line(), width=width, subsequent_indent="    ", break_long_words=False
            )
        )
    earned = sum(v.points for v in run.verdicts)
    total = sum(v.exercise.points for v in run.verdicts)
    print(
        f"{stage}: {sum(v.passed for v in run.verdicts)}/{len(run.verdicts)} exercises pass, "
        f"{earned:g}/{total:g} points ({run.cells_run} of {run.code_cells} cells run, "
        f"{run.seconds:.0f} s)"
    )
    return 0 if all(v.passed for v in run.verdicts) else 1


def _lab(args: argparse.Namespace) -> int:
    from course_utils import jupyter_setup
    from course_utils.grading.layout import find_root

    root = find_root(args.root)
    (root / "_grading").mkdir(exist_ok=True)  # nbgrader's formgrader keeps its gradebook there
    command = jupyter_setup.lab_command(root, args.port, args.jupyter_args)
    if args.print:
        print(shlex.join(command))
        return 0
    os.chdir(root)  # nbgrader's Validate and formgrader read nbgrader_config.py from the cwd
    os.execve(command[0], command, jupyter_setup.lab_environment())
    return 0  # not reached


def _memory_size(text: str) -> int | None:
    try:
        return parse_size(text)
    except ValueError as error:  # argparse prints ArgumentTypeError's message as the usage error
        raise argparse.ArgumentTypeError(str(error)) from None


def _notebook_size(text: str) -> int:
    try:
        size = parse_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if size < 2**16:
        raise argparse.ArgumentTypeError(f"a notebook needs more than 64K, got {text!r}")
    return size


def _grade(args: argparse.Namespace) -> int:
    from course_utils.grading.autograde import grade
    from course_utils.grading.layout import find_root

    root = find_root(args.root)
    report = grade(
        root,
        Path(args.submissions).resolve(),
        jobs=args.jobs,
        cell_timeout=args.cell_timeout,
        notebook_timeout=args.notebook_timeout,
        memory_limit=args.memory_limit,
        force=args.force,
        isolation=args.isolation,
        progress=True,
        max_notebook_size=args.max_notebook_size,
        cluster=args.cluster,
        db=args.db,
    )
    for g in report.grades:
        kept = " (unchanged, kept)" if g.resumed else ""
        status = "" if g.status == "graded" else f"  [{g.status}]"
        print(f"{g.student:20s} {g.stage:16s} {g.score:g}/{g.max_score:g}{status}{kept}")
    for problem in report.problems:
        print(f"note: {problem}")
    print(f"grades: {report.csv}")
    print(f"summary: {report.summary}")
    print(f"feedback: {root / '_grading' / 'feedback'}")
    if args.json:
        print(json.dumps([g.__dict__ for g in report.grades]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="the course checkout (default: found from the cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="versions, torch build, device, datasets, nbgrader, sandbox")
    p.add_argument("--full", action="store_true", help="also the slow probes (numba, jupyter)")
    p.set_defaults(run=_doctor)
    p = sub.add_parser("lab", help="open the course in JupyterLab (what `make lab` runs)")
    p.add_argument("--port", type=int, help="the server's port (default: Jupyter's, 8888)")
    p.add_argument("--print", action="store_true", help="print the command instead of running it")
    p.set_defaults(run=_lab)  # any other option is passed on to `jupyter lab`
    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("stages", nargs="*", help="stage names or numbers (default: all)")
    p.set_defaults(run=_release)
    p = sub.add_parser("check", help="run a notebook and report each graded exercise")
    p.add_argument("stage", help="stage number or name, e.g. 01")
    p.add_argument("path", nargs="?", help="notebook to check (default: notebooks/<stage>/...)")
    p.add_argument("--full", action="store_true", help="run every cell, not only what tests need")
    p.set_defaults(run=_check)
    p = sub.add_parser("grade", help="autograde a folder of submissions")
    p.add_argument("submissions", help="folder with one folder or zip per student")
    p.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded at once")
    p.add_argument(
        "--cell-timeout", type=int, help="seconds per cell (default: nbgrader_config.py)"
    )
    p.add_argument(
        "--notebook-timeout", type=float, default=1800, help="seconds per notebook (default 1800)"
    )
    p.add_argument(
        "--memory-limit",
        type=_memory_size,
        default=DEFAULT_MEMORY_LIMIT,
        help="memory per notebook, e.g. 4G (default), 8G, or none; beyond it allocations fail",
    )
    p.add_argument(
        "--max-notebook-size",
        type=_notebook_size,
        default=DEFAULT_MAX_NOTEBOOK_SIZE,
        help="largest notebook read, in a zip once inflated, e.g. 50M (default), 200M",
    )
    p.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    p.add_argument(
        "--isolation",
        choices=("auto", "require", "off"),
        default="auto",
        help="bubblewrap sandbox: auto (when it works), require, off",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="grade on a dask.distributed scheduler (tcp://host:8786) or local:N worker processes",
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="gradebook to merge into (default sqlite:///_grading/gradebook.db; postgresql://...)",
    )
    p.add_argument("--json", action="store_true", help="also print the grades as JSON")
    p.set_defaults(run=_grade)
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.jupyter_args = unknown
    if args.command not in ("doctor", "lab") and importlib.util.find_spec("nbgrader") is None:
        print("nbgrader is not installed; run `make lab` or `pip install -e .`")
        return 2
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
