"""Time the course's reference ops against their native PyTorch/torchvision twins.

    python benchmarks/bench_ops.py [--out benchmarks/ops.md] [--runs 2:wall,1:cpu] [--rounds 5]

Each row times forward + backward (``torch.autograd.grad`` with a fixed random upstream gradient, so
no gradient accumulation) of our op and of its twin on the same CPU inputs, with
``torch.utils.benchmark.Timer``.
The two are measured in alternating rounds and each keeps its fastest round, so a busy machine slows
both alike; the ratio ours / native should stay within 1.5x (DESIGN.md, speed budget). By default
two configurations are measured: 2 threads by wall clock, and 1 thread by process CPU time (steady
on a shared machine). The tables go to ``--out`` with a line naming the machine and torch version;
the exit status is 1 if any ratio is above 1.5.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course_utils.layers import dropout, group_norm  # noqa: E402

BUDGET = 1.5


@dataclass
class Case:
    op: str
    shape: str
    ours: Callable[[], object]
    native: Callable[[], object]
    why_slower: str = ""  # printed under the table when the ratio is above the budget


def _fwd_bwd(call: Callable[[], torch.Tensor], wrt: list[torch.Tensor]) -> Callable[[], object]:
    """A thunk running ``call()`` and its backward pass to ``wrt``, with a fixed random upstream
    gradient as in training (a scalar loss gets 1)."""
    out = call()
    gen = torch.Generator().manual_seed(1)
    upstream = torch.randn(out.shape, generator=gen) if out.ndim else torch.ones(())

    def run() -> object:
        return torch.autograd.grad(call(), wrt, upstream)

    return run


def _seeded(call: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    # The same random stream for ours and native dropout, so both draw identical masks.
    def run() -> torch.Tensor:
        torch.manual_seed(0)
        return call()

    return run


def build_cases() -> tuple[list[Case], list[str]]:
    gen = torch.Generator().manual_seed(0)
    cases: list[Case] = []
    notes: list[str] = []

    x = torch.randn(64, 64, 28, 28, generator=gen, requires_grad=True)
    weight = torch.randn(64, generator=gen, requires_grad=True)
    bias = torch.randn(64, generator=gen, requires_grad=True)
    cases.append(
        Case(
            "group_norm (fused CPU kernel) vs F.group_norm (G=8, affine)",
            "(64, 64, 28, 28)",
            _fwd_bwd(lambda: group_norm(x, 8, weight, bias), [x, weight, bias]),
            _fwd_bwd(lambda: F.group_norm(x, 8, weight, bias), [x, weight, bias]),
            why_slower=(
                "group_norm: the numba kernel (course_utils/group_norm_cpu.py) lost to ATen's here; "
                "benchmarks/group_norm_routes.md times it, the composed ops and other routes at "
                "several shapes."
            ),
        )
    )
    cases.append(
        Case(
            "dropout(keep=0.8) vs F.dropout(p=0.2)",
            "(64, 64, 28, 28)",
            _fwd_bwd(_seeded(lambda: dropout(x, 0.8)), [x]),
            _fwd_bwd(_seeded(lambda: F.dropout(x, 0.2)), [x]),
        )
    )
    try:
        import torchvision.ops

        from course_utils.losses import label_smoothing_cross_entropy, sigmoid_focal_loss
    except ImportError as error:
        notes.append(f"focal loss and label smoothing not timed: {error}")
        return cases, notes

    logits = torch.randn(32768, 80, generator=gen, requires_grad=True)
    targets = (torch.rand(32768, 80, generator=gen) < 0.02).float()
    cases.append(
        Case(
            "sigmoid_focal_loss vs torchvision.ops.sigmoid_focal_loss (mean)",
            "(32768, 80)",
            _fwd_bwd(lambda: sigmoid_focal_loss(logits, targets, reduction="mean"), [logits]),
            _fwd_bwd(
                lambda: torchvision.ops.sigmoid_focal_loss(logits, targets, reduction="mean"),
                [logits],
            ),
        )
    )
    scores = torch.randn(4096, 1000, generator=gen, requires_grad=True)
    labels = torch.randint(1000, (4096,), generator=gen)
    cases.append(
        Case(
            "label_smoothing_cross_entropy vs F.cross_entropy(label_smoothing=0.1)",
            "(4096, 1000)",
            _fwd_bwd(lambda: label_smoothing_cross_entropy(scores, labels, eps=0.1), [scores]),
            _fwd_bwd(lambda: F.cross_entropy(scores, labels, label_smoothing=0.1), [scores]),
        )
    )
    return cases, notes


TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclass
class Run:
    """One measured configuration: intra-op threads and the clock."""

    threads: int
    timer: str

    @property
    def label(self) -> str:
        clock = "wall-clock" if self.timer == "wall" else "process CPU time"
        return f"torch.set_num_threads({self.threads}), {clock}"


def parse_runs(text: str) -> list[Run]:
    """``"2:wall,1:cpu"`` -> [Run(2, "wall"), Run(1, "cpu")]."""
    runs = []
    for item in text.split(","):
        threads, _, timer = item.strip().partition(":")
        if timer not in TIMERS or not threads.isdigit() or int(threads) < 1:
            raise argparse.ArgumentTypeError(
                f"each run is THREADS:wall or THREADS:cpu (e.g. 2:wall,1:cpu), got {item!r}"
            )
        runs.append(Run(int(threads), timer))
    return runs


def best_time(thunk: Callable[[], object], min_run_time: float, timer: str) -> float:
    """Median seconds per call of one ``blocked_autorange`` measurement."""
    return (
        Timer("thunk()", globals={"thunk": thunk}, timer=TIMERS[timer])
        .blocked_autorange(min_run_time=min_run_time)
        .median
    )


def fastest_of_rounds(
    thunks: dict[str, Callable[[], object]], rounds: int, min_run_time: float, timer: str
) -> dict[str, float]:
    """Each thunk's fastest time (seconds) over ``rounds`` rounds that take the thunks in turn, so
    a busy machine slows them alike. Each thunk is called once first (allocators, lazy set-up)."""
    for thunk in thunks.values():
        thunk()
    times: dict[str, list[float]] = {name: [] for name in thunks}
    for _ in range(rounds):
        for name, thunk in thunks.items():
            times[name].append(best_time(thunk, min_run_time, timer))
    return {name: min(values) for name, values in times.items()}


def measure(case: Case, rounds: int, min_run_time: float, timer: str) -> tuple[float, float]:
    """Fastest ours and native times (seconds) over ``rounds`` alternating measurements."""
    best = fastest_of_rounds(
        {"ours": case.ours, "native": case.native}, rounds, min_run_time, timer
    )
    return best["ours"], best["native"]


def steady_allocator() -> str:
    """Keep freed memory in the process, so a timed call does not page-fault its tensors in anew.

    glibc hands large freed blocks back to the kernel, depending on its history of frees; the next
    call then page-faults ~3,000 fresh pages per 12.8 MB tensor, which on this VM costs more than
    the op itself (F.group_norm forward + backward measured 3.4 ms without faults and up to 14.8 ms
    with them, in the same process). Which of the two states a round lands in is luck; with
    mmap and trimming off for blocks up to 32 MiB (glibc's ceiling), every round times the ops
    alone. A sentence for the table's header; elsewhere (not glibc) nothing is changed.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 2**31 - 1)
    except (OSError, AttributeError):
        ok = False
    if ok:
        return "glibc keeps freed blocks up to 32 MiB (no page faults inside timed calls)."
    return "allocator left as is (not glibc): page faults may add noise to large tensors."


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"Machine: {platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} logical "
        f"CPUs, load average {os.getloadavg()[0]:.1f} at the start; torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}."
    )


Rows = list[tuple[Case, float, float]]


def markdown(tables: list[tuple[Run, Rows]], notes: list[str], machine: str) -> str:
    lines = [
        "# Reference ops vs native twins (CPU, forward + backward)",
        "",
        "Written by `python benchmarks/bench_ops.py`. Each time is the fastest of alternating",
        "`torch.utils.benchmark` rounds (ours, native, ours, ...); budget: ours within 1.5x of",
        "native. On a shared machine wall-clock times swing with the other processes; process CPU",
        "time with one thread counts only the work this process did, so it is the steadier ratio.",
        "",
        machine,
    ]
    for run, rows in tables:
        lines += [
            "",
            f"## {run.label}",
            "",
            "| op | shape | ours ms | native ms | ratio | within 1.5x? |",
            "|---|---|---:|---:|---:|:---:|",
        ]
        for case, ours, native in rows:
            ratio = ours / native
            verdict = "yes" if ratio <= BUDGET else "**no**"
            lines.append(
                f"| {case.op} | {case.shape} | {ours * 1e3:.2f} | {native * 1e3:.2f} | "
                f"{ratio:.2f}x | {verdict} |"
            )
    slow = {
        case.op: case.why_slower
        for _, rows in tables
        for case, ours, native in rows
        if ours / native > BUDGET and case.why_slower
    }
    lines += [""] + [f"Note: {note}" for note in [*slow.values(), *notes]]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "ops.md")
    parser.add_argument(
        "--runs",
        type=parse_runs,
        default=parse_runs("2:wall,1:cpu"),
        help="comma-separated THREADS:wall|cpu configurations (default 2:wall,1:cpu)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per op")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per round")
    args = parser.parse_args(argv)

    machine = f"{machine_line()} {steady_allocator()}"
    cases, notes = build_cases()
    tables = []
    threads_before = torch.get_num_threads()
    for run in args.runs:
        torch.set_num_threads(run.threads)
        rows = []
        for case in cases:
            ours, native = measure(case, args.rounds, args.min_run_time, run.timer)
            rows.append((case, ours, native))
            print(
                f"[{run.label}] {case.op}: ours {ours * 1e3:.2f} ms, native {native * 1e3:.2f} "
                f"ms, ratio {ours / native:.2f}x",
                flush=True,
            )
        tables.append((run, rows))
    torch.set_num_threads(threads_before)
    args.out.write_text(markdown(tables, notes, machine))
    print(f"wrote {args.out}")
    within = all(ours / native <= BUDGET for _, rows in tables for _, ours, native in rows)
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
