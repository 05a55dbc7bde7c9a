"""Every route to group norm we tried, timed against ``F.group_norm`` (CPU, forward + backward).

    python benchmarks/bench_group_norm_routes.py [--out benchmarks/group_norm_routes.md] [--no-compile]

Group norm is memory-bound, so how often a route sweeps main memory decides its speed. Composed of
PyTorch ops (``course_utils.layers.group_norm(fused=False)``, the path off the CPU) it is about 2x
PyTorch's fused kernel, against a 1.5x budget; the course's CPU path is a fused numba kernel
(``course_utils/group_norm_cpu.py``). This script measures them and the alternatives, so the choice
rests on numbers: autograd through the plain formula, the layer- and batch-norm views, the composed
formulas cut into cache-sized blocks, and ``torch.compile`` (which needs a C++ compiler and compiles
per shape; its compile time is reported). One thread, process CPU time, the fastest of alternating
rounds, as in ``bench_ops.py``; every route is first checked against ``F.group_norm`` in float64.
A second table times the two shipped paths at several shapes, including the small batches of stage
03, where the fixed cost of a Python autograd function weighs most; the numba kernel's compile time
is measured in fresh processes.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_ops import (  # noqa: E402
    BUDGET,
    _fwd_bwd,
    fastest_of_rounds,
    machine_line,
    steady_allocator,
)
from course_utils.layers import group_norm  # noqa: E402

SHAPE, GROUPS = (64, 64, 28, 28), 8
# Stage 03's GN-vs-BN nets (batch 2-32, 16 and 32 channels), a ResNet-ish late layer, the benchmark.
SWEEP_SHAPES = [
    (2, 16, 28, 28),
    (2, 32, 14, 14),
    (32, 16, 28, 28),
    (32, 32, 14, 14),
    (128, 256, 7, 7),
    (64, 64, 28, 28),
]
BLOCK_BYTES = 2 << 20  # the blocked route's working block: about one core's L2 and L3 share

GroupNorm = Callable[..., torch.Tensor]


def plain_formula(x, groups, weight, bias, eps=1e-5):
    """Group norm as written in the paper; autograd derives the backward."""
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mean = grouped.mean(-1, keepdim=True)
    var = (grouped - mean).square().mean(-1, keepdim=True)
    normed = ((grouped - mean) * torch.rsqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return normed * weight.view(shape) + bias.view(shape)


def layer_norm_view(x, groups, weight, bias, eps=1e-5):
    """Layer norm over each group's (C/G)*H*W values, then the per-channel affine."""
    n, c = x.shape[:2]
    grouped = x.reshape(n * groups, -1)
    normed = F.layer_norm(grouped, grouped.shape[-1:], eps=eps).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return normed * weight.view(shape) + bias.view(shape)


def batch_norm_view(x, groups, weight, bias, eps=1e-5):
    """Training-mode batch norm on x viewed as (1, N*G, L), then the per-channel affine."""
    n, c = x.shape[:2]
    grouped = x.reshape(1, n * groups, -1)
    normed = F.batch_norm(grouped, None, None, training=True, eps=eps).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return normed * weight.view(shape) + bias.view(shape)


class _BlockedGroupNorm(torch.autograd.Function):
    """The shipped formulas, applied block by block so each block's passes hit the CPU cache.

    Forward per block: mean, centre, norm, scale, shift. Backward per block, in one visit:
    Σ dy and Σ dy·x per channel, the per-group coefficients, then dx = rγ dy + b x + k.
    """

    @staticmethod
    def forward(ctx, x, groups, weight, bias, eps):
        n, c = x.shape[:2]
        per_group = c // groups
        rows = x.contiguous().view(n * groups, per_group, -1)
        out = torch.empty_like(rows)
        mean = rows.new_empty(n * groups, 1, 1)
        inv_std = torch.empty_like(mean)
        gamma = weight.view(1, groups, per_group, 1).expand(n, -1, -1, -1).reshape(-1, per_group, 1)
        beta = bias.view(1, groups, per_group, 1).expand(n, -1, -1, -1).reshape(-1, per_group, 1)
        size = rows[0].numel()
        for block in _blocks(rows):
            m = torch.mean(rows[block], (1, 2), keepdim=True, out=mean[block])
            centred = torch.sub(rows[block], m, out=out[block])
            r = torch.linalg.vector_norm(centred, dim=(1, 2), keepdim=True, out=inv_std[block])
            r.square_().div_(size).add_(eps).rsqrt_()
            centred.mul_(r * gamma[block]).add_(beta[block])
        ctx.save_for_backward(rows, weight, mean, inv_std)
        ctx.groups = groups
        return out.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        rows, weight, mean, inv_std = ctx.saved_tensors
        n_rows, per_group, _ = rows.shape
        n = n_rows // ctx.groups
        size = rows[0].numel()
        shape = dy.shape
        dy = dy.contiguous().view(rows.shape)
        gamma = weight.view(1, ctx.groups, per_group).expand(n, -1, -1).reshape(-1, per_group)
        sum_dy, sum_dy_x = rows.new_empty(n_rows, per_group), rows.new_empty(n_rows, per_group)
        grad = torch.empty_like(rows)
        for block in _blocks(rows):
            g, m, r = grad[block], mean[block].view(-1, 1), inv_std[block].view(-1, 1)
            s_dy = torch.sum(dy[block], -1, out=sum_dy[block])
            s_dy_x = torch.sum(torch.mul(dy[block], rows[block], out=g), -1, out=sum_dy_x[block])
            g_dy = torch.linalg.vecdot(s_dy, gamma[block]).unsqueeze(-1)
            g_dy_x = torch.linalg.vecdot(s_dy_x, gamma[block]).unsqueeze(-1)
            coef_x = (g_dy * m - g_dy_x).mul_(r.pow(3)).div_(size)
            const = (coef_x * m).add_(g_dy * r / size).neg_()
            torch.mul(dy[block], (r * gamma[block]).unsqueeze(-1), out=g)
            g.addcmul_(rows[block], coef_x.unsqueeze(-1)).add_(const.unsqueeze(-1))
        mean, inv_std = mean.view(-1, 1), inv_std.view(-1, 1)
        grad_weight = ((sum_dy_x - mean * sum_dy) * inv_std).view(n, -1).sum(0)
        grad_bias = sum_dy.view(n, -1).sum(0)
        return grad.view(shape), None, grad_weight, grad_bias, None


def _blocks(rows: torch.Tensor) -> list[slice]:
    step = max(1, BLOCK_BYTES // (rows[0].numel() * rows.element_size()))
    return [slice(a, min(a + step, len(rows))) for a in range(0, len(rows), step)]


def blocked(x, groups, weight, bias, eps=1e-5):
    n, c = x.shape[:2]
    out = _BlockedGroupNorm.apply(x.reshape(n, c, -1), groups, weight, bias, eps)
    return out.view(x.shape)


def check(route: GroupNorm) -> float:
    """Largest relative error of output and gradients against F.group_norm in float64."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 16, 5, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(16, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(16, generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    errors = []
    for fn in (route, F.group_norm):
        out = fn(x, 4, weight, bias)
        grads = torch.autograd.grad(out, (x, weight, bias), upstream)
        errors.append([out.detach(), *grads])
    return max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(*errors, strict=True))


def sweep_table(paths: dict[str, GroupNorm], rounds: int, min_run_time: float) -> list[str]:
    """Markdown lines: native time and each path's ratio at every shape of SWEEP_SHAPES."""
    names = list(paths)
    lines = [
        "",
        f"## The shipped paths at other shapes (G={GROUPS}, affine; same clock)",
        "",
        "| shape | values | native µs | "
        + " | ".join(f"{name} vs native" for name in names)
        + " |",
        "|---|---:|---:|" + "---:|" * len(names),
    ]
    gen = torch.Generator().manual_seed(1)
    for shape in SWEEP_SHAPES:
        x = torch.randn(shape, generator=gen, requires_grad=True)
        weight = torch.randn(shape[1], generator=gen, requires_grad=True)
        bias = torch.randn(shape[1], generator=gen, requires_grad=True)
        args = (x, GROUPS, weight, bias)
        thunks = {
            name: _fwd_bwd(functools.partial(route, *args), [x, weight, bias])
            for name, route in {"native": F.group_norm, **paths}.items()
        }
        best = fastest_of_rounds(thunks, rounds, min_run_time, "cpu")
        ratios = [best[name] / best["native"] for name in names]
        print(f"{shape}: native {best['native'] * 1e6:.0f} us, ratios {ratios}", flush=True)
        lines.append(
            f"| {shape} | {x.numel():,} | {best['native'] * 1e6:.0f} | "
            + " | ".join(f"{ratio:.2f}x" for ratio in ratios)
            + " |"
        )
    return lines


_FIRST_CALL = """
import time
import torch
from course_utils.layers import group_norm
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
x = torch.randn(8, 16, 10, 10, requires_grad=True)
group_norm(x, 4, fused=True).square().sum().backward()
t2 = time.perf_counter()
group_norm(x, 4, fused=True).square().sum().backward()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def compile_times() -> str:
    """The fused kernel's first forward + backward in a new process, with an empty numba cache
    (it compiles) and again with the cache that run wrote (it loads)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
        runs = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                return f"fused kernel's first call not timed: {done.stderr.strip()[-300:]}"
            runs.append([float(v) for v in done.stdout.split()])
    (numba_import, cold, second), (_, warm, _) = runs
    return (
        f"fused kernel: importing numba (on first use, not with course_utils) takes "
        f"{numba_import:.2f} s; then the first float32 forward + backward in a new process takes "
        f"{cold:.2f} s with an empty numba cache (compiling both kernels), {warm:.2f} s with the "
        f"cache that run wrote, and {second * 1e3:.1f} ms once loaded. Each dtype compiles once."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "group_norm_routes.md")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile route")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.5)
    args = parser.parse_args(argv)

    allocator = steady_allocator()
    torch.set_num_threads(1)
    fused = functools.partial(group_norm, fused=True)
    composed = functools.partial(group_norm, fused=False)
    routes: dict[str, GroupNorm] = {
        "F.group_norm (native, fused C++ kernel)": F.group_norm,
        "course_utils.layers.group_norm on the CPU (shipped: fused numba kernel)": fused,
        "course_utils.layers.group_norm(fused=False) (shipped for other devices: composed ops, "
        "hand-written backward)": composed,
        "plain formula, autograd backward": plain_formula,
        "F.layer_norm on (N*G, L) rows + affine, autograd": layer_norm_view,
        "F.batch_norm on the (1, N*G, L) view + affine, autograd": batch_norm_view,
        f"composed formulas in {BLOCK_BYTES >> 20} MiB blocks (cache-resident passes)": blocked,
    }
    notes = []
    if not args.no_compile:
        from torch._inductor import config as inductor_config

        inductor_config.force_disable_caches = True  # time a cold compile, as a learner's first
        compiled = torch.compile(plain_formula, dynamic=False)  # one static kernel per shape
        start = time.perf_counter()
        try:
            check(compiled)
            x = torch.randn(SHAPE, requires_grad=True)
            w, b = (
                torch.ones(SHAPE[1], requires_grad=True),
                torch.zeros(SHAPE[1], requires_grad=True),
            )
            torch.autograd.grad(compiled(x, GROUPS, w, b).sum(), (x, w, b))
            routes["torch.compile(plain formula)"] = compiled
            notes.append(
                f"torch.compile: {time.perf_counter() - start:.1f} s to compile (caches off) for the "
                "two shapes used here (the check's and the benchmark's), before the first step"
            )
        except Exception as error:  # noqa: BLE001 - no C++ compiler, unsupported platform...
            notes.append(f"torch.compile not timed: {type(error).__name__}: {error}"[:300])
    for name, route in routes.items():
        error = check(route)
        if error > 1e-9:
            raise SystemExit(f"{name} disagrees with F.group_norm: relative error {error:.2e}")

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=gen, requires_grad=True)
    weight = torch.randn(SHAPE[1], generator=gen, requires_grad=True)
    bias = torch.randn(SHAPE[1], generator=gen, requires_grad=True)
    thunks = {
        name: _fwd_bwd(lambda r=route: r(x, GROUPS, weight, bias), [x, weight, bias])
        for name, route in routes.items()
    }
    best = fastest_of_rounds(thunks, args.rounds, args.min_run_time, "cpu")
    native = next(iter(best.values()))
    lines = [
        "# Routes to group norm, forward + backward (CPU, 1 thread, process CPU time)",
        "",
        "Written by `python benchmarks/bench_group_norm_routes.py`. Input "
        f"{SHAPE}, G={GROUPS}, affine; each time is the fastest of {args.rounds} alternating "
        f"rounds; budget {BUDGET}x of native. Every route matches F.group_norm in float64.",
        "",
        f"{machine_line()} {allocator}",
        "",
        "| route | ms | vs native |",
        "|---|---:|---:|",
    ]
    for name, seconds in best.items():
        lines.append(f"| {name} | {seconds * 1e3:.2f} | {seconds / native:.2f}x |")
        print(f"{name}: {seconds * 1e3:.2f} ms, {seconds / native:.2f}x", flush=True)
    lines += sweep_table(
        {"fused kernel": fused, "composed ops": composed}, args.rounds, args.min_run_time
    )
    notes.append(compile_times())
    lines += [""] + [f"Note: {note}" for note in notes]
    args.out.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
