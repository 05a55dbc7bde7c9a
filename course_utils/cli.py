"""The ``course`` command.

course doctor                 versions, device, datasets available, nbgrader extension state
course release [STAGE ...]    regenerate notebooks/ from solutions/
course check NN [PATH]        run a notebook, one PASS/FAIL line per graded exercise
course grade SUBMISSIONS      autograde a class (sandboxed, memory-capped, --jobs N, resumable;
                              --cluster ADDRESS for a dask cluster, --db URL for the gradebook)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

from course_utils.grading.memory import DEFAULT_MEMORY_LIMIT, describe, enforced, parse_size


def _doctor(args: argparse.Namespace) -> int:
    import torch
    import torchvision

    from course_utils.data import DATASETS, TORCHVISION_SETS, data_dir, dataset_name
    from course_utils.runtime import available_devices, pick_device

    print(f"python       {platform.python_version()} ({sys.executable})")
    print(f"torch        {torch.__version__} (threads: {torch.get_num_threads()})")
    print(f"torchvision  {torchvision.__version__}")
    print(f"group norm   {_group_norm_path()}")
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
    for label, command in (
        ("lab extension", ["jupyter", "labextension", "list"]),
        ("server ext.  ", ["jupyter", "server", "extension", "list"]),
    ):
        exe = Path(sys.executable).with_name("jupyter")
        out = subprocess.run([str(exe), *command[1:]], capture_output=True, text=True)
        text = out.stdout + out.stderr
        ok = any("nbgrader" in line and ("enabled" in line) for line in text.splitlines())
        print(f"nbgrader {label} {'enabled' if ok else 'NOT enabled'}")
    from course_utils.grading import sandbox

    state = "bubblewrap, working" if sandbox.available() else sandbox.unavailable_reason()
    print(f"grading sandbox {state}")
    cap = describe(DEFAULT_MEMORY_LIMIT)
    state = f"enforced, {cap} per notebook by default" if enforced() else "not enforced here"
    print(f"grading memory cap (--memory-limit) {state}")
    return 0


def _group_norm_path() -> str:
    """Which implementation ``course_utils.layers.group_norm`` runs on the CPU here."""
    from course_utils.layers import fused_kernel_unavailable_reason

    reason = fused_kernel_unavailable_reason()
    if reason is not None:
        return f"composed ops only: {reason}"
    import numba

    return f"fused CPU kernel (numba {numba.__version__})"


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
    from course_utils.grading.selfcheck import check_notebook

    root = find_root(args.root)
    stage = resolve_stage(root, args.stage)
    path = Path(args.path) if args.path else root / "notebooks" / stage / f"{stage}.ipynb"
    if not path.is_file():
        print(f"FAIL {stage}: no notebook at {path}")
        return 2
    print(f"checking {path} (running it top to bottom, training shrunk)...", flush=True)
    results = check_notebook(path.resolve())
    for verdict in results:
        print(verdict.line())
    earned = sum(v.points for v in results if v.passed)
    total = sum(v.points for v in results)
    print(
        f"{stage}: {sum(v.passed for v in results)}/{len(results)} exercises pass, "
        f"{earned:g}/{total:g} points"
    )
    return 0 if all(v.passed for v in results) else 1


def _memory_size(text: str) -> int | None:
    try:
        return parse_size(text)
    except ValueError as error:  # argparse prints ArgumentTypeError's message as the usage error
        raise argparse.ArgumentTypeError(str(error)) from None


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
    sub.add_parser("doctor", help="versions, device, datasets, nbgrader").set_defaults(run=_doctor)
    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("stages", nargs="*", help="stage names or numbers (default: all)")
    p.set_defaults(run=_release)
    p = sub.add_parser("check", help="run a notebook and report each graded exercise")
    p.add_argument("stage", help="stage number or name, e.g. 01")
    p.add_argument("path", nargs="?", help="notebook to check (default: notebooks/<stage>/...)")
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
    args = parser.parse_args(argv)
    if args.command != "doctor" and importlib.util.find_spec("nbgrader") is None:
        print("nbgrader is not installed; run `make lab` or `pip install -e .`")
        return 2
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
