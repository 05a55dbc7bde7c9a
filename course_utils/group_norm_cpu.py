"""Group norm on the CPU as one fused loop per direction, compiled by numba.

Why a kernel: group norm is memory-bound. Composed of PyTorch ops (``layers._GroupNormFunction``)
it sweeps the whole tensor about five times forward and six backward, and on a tensor larger than
the cache every sweep goes to main memory: about 2x ``F.group_norm``. ATen's kernel, like the loops
below, visits one group at a time: a group holds (C/G)·S values (tens of KB), so its second and third
passes hit the cache and main memory is read about twice each way (``benchmarks/ops.md``: about 1x;
``benchmarks/group_norm_routes.md`` times both paths at several shapes).

Layout: x (N, C, S) is viewed as rows (R, C/G, S), R = N·G; row r is group r % G of sample r // G,
and L = (C/G)·S values are normalised together.

Forward, per row (two passes over x while the row is in cache, then the output):

    μ = Σ x / L,   σ² = Σ (x - μ)² / L,   r = 1 / sqrt(σ² + eps)
    y_c = x_c · a_c + b_c,   a_c = γ_c r,   b_c = β_c - μ a_c

The variance uses the centred second pass, so it stays exact when |μ| >> σ (E[x²] - μ² would not).

Backward, per row: with Σ_s summing a channel's S values and Σ_g the group's L values,

    Σdy_c = Σ_s dy,   Σdyx_c = Σ_s dy·x                        (one pass over dy and x)
    dx = r γ_c dy + b·x + k,   b = r³ (μ Σ_g γ dy - Σ_g γ dy·x) / L,   k = -b μ - r Σ_g γ dy / L
    dγ_c = Σ_n r (Σdyx_c - μ Σdy_c),   dβ_c = Σ_n Σdy_c

Each row writes its sample's share of dγ_c and dβ_c; one torch sum over the samples finishes them.

Sums are kept in float64 whatever the input dtype; ``fastmath={"reassoc"}`` lets LLVM vectorise
them (it only permits reordering the additions). Threads: the kernels are serial and release the GIL;
rows are split into ``torch.get_num_threads()`` chunks run on a per-process thread pool. numba's own
``parallel=True`` layers were avoided: ``omp`` (GNU libgomp, numba's choice on Linux) breaks in a
forked child such as a DataLoader worker, and ``workqueue`` aborts when two threads call in at once.

The first call for a dtype compiles both kernels (1-2 s); numba caches the machine code next to this
file (or in ``NUMBA_CACHE_DIR`` / its user cache) when it can write there, and a later process loads
it instead. ``course_utils`` imports this module (and numba) only when the kernel is first used.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from torch.autograd.function import once_differentiable

# Below this many values a chunk is cheaper to run than to hand to another thread.
MIN_VALUES_PER_THREAD = 1 << 15


def _forward_rows(first_row, x, out, stats, gamma, beta, eps):  # pragma: no cover - compiled
    """x, out: (R, C/G, S); stats: (R, 2) receives (μ, r) per row; gamma, beta: (C,).
    Row r of this chunk is group (first_row + r) % G."""
    rows, per_group, size = x.shape
    groups = gamma.shape[0] // per_group
    count = per_group * size
    for row in range(rows):
        g = (first_row + row) % groups
        total = 0.0
        for j in range(per_group):
            for s in range(size):
                total += x[row, j, s]
        mu = total / count
        sum_sq = 0.0
        for j in range(per_group):
            for s in range(size):
                centred = x[row, j, s] - mu
                sum_sq += centred * centred
        r = 1.0 / math.sqrt(sum_sq / count + eps)
        stats[row, 0] = mu
        stats[row, 1] = r
        for j in range(per_group):
            a = gamma[g * per_group + j] * r
            b = beta[g * per_group + j] - mu * a
            for s in range(size):
                out[row, j, s] = x[row, j, s] * a + b


def _backward_rows(first_row, dy, x, stats, dx, param_grads, gamma, want_dx):  # pragma: no cover
    """dy, x, dx: (R, C/G, S); stats: (R, 2) from the forward; gamma: (C,).

    param_grads (R, C/G, 2) receives each row's share of dγ_c, r (Σdyx_c - μ Σdy_c), and of dβ_c,
    Σdy_c; summing it over the samples gives the parameter gradients. dx is written only if want_dx.
    """
    rows, per_group, size = x.shape
    groups = gamma.shape[0] // per_group
    count = per_group * size
    for row in range(rows):
        g = (first_row + row) % groups
        mu = stats[row, 0]
        r = stats[row, 1]
        g_dy = 0.0
        g_dy_x = 0.0
        for j in range(per_group):
            s_dy = 0.0
            s_dy_x = 0.0
            for s in range(size):
                s_dy += dy[row, j, s]
                s_dy_x += dy[row, j, s] * x[row, j, s]
            param_grads[row, j, 0] = (s_dy_x - mu * s_dy) * r
            param_grads[row, j, 1] = s_dy
            g_dy += gamma[g * per_group + j] * s_dy
            g_dy_x += gamma[g * per_group + j] * s_dy_x
        if not want_dx:
            continue
        b = (g_dy * mu - g_dy_x) * r * r * r / count
        k = -b * mu - g_dy * r / count
        for j in range(per_group):
            a = r * gamma[g * per_group + j]
            for s in range(size):
                dx[row, j, s] = a * dy[row, j, s] + b * x[row, j, s] + k


def _compile(fn):
    options = dict(nogil=True, fastmath={"reassoc"}, error_model="numpy")
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:
        # No writable cache location (a read-only install, a sandbox): compile once per process.
        return numba.njit(**options)(fn)


_forward_kernel = _compile(_forward_rows)
_backward_kernel = _compile(_backward_rows)

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # One pool per process id: a forked child inherits the parent's pool object but not its threads.
    with _pools_lock:
        pid = os.getpid()
        if pid not in _pools:
            _pools.clear()
            _pools[pid] = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        return _pools[pid]


def _run_by_rows(kernel, per_row: list[np.ndarray], shared: tuple) -> None:
    """``kernel(first_row, *per_row, *shared)`` on consecutive row ranges, one range per thread
    torch would use (``torch.get_num_threads()``), the first range in the calling thread.

    Every array in ``per_row`` has the row axis first. Rows are independent, so the result does not
    depend on the number of threads.
    """
    n_rows = len(per_row[0])
    threads = min(torch.get_num_threads(), n_rows, per_row[0].size // MIN_VALUES_PER_THREAD)
    if threads <= 1:
        if n_rows:
            kernel(0, *per_row, *shared)
        return
    step = -(-n_rows // threads)
    futures = [
        _pool().submit(kernel, start, *[a[start : start + step] for a in per_row], *shared)
        for start in range(step, n_rows, step)
    ]
    kernel(0, *[a[:step] for a in per_row], *shared)
    for future in futures:
        future.result()


class FusedGroupNormFunction(torch.autograd.Function):
    """Autograd wrapper of the two kernels for x (N, C, *), float32 or float64, on the CPU.

    Kept lean: on small inputs the Python around the kernels costs more than the kernels do, so
    shapes are changed on the NumPy side (a NumPy reshape is several times cheaper than a
    ``Tensor.view``).
    """

    @staticmethod
    def forward(ctx, x, num_groups, weight, bias, eps):
        x = x.detach().contiguous()
        n, c = x.shape[:2]
        row_shape = (n * num_groups, c // num_groups, math.prod(x.shape[2:]))
        gamma = _per_channel(weight, c, x, 1.0)
        out = torch.empty_like(x)
        stats = x.new_empty(row_shape[0], 2)  # (μ, r) per row
        per_row = [x.numpy().reshape(row_shape), out.numpy().reshape(row_shape), stats.numpy()]
        shared = (gamma.numpy(), _per_channel(bias, c, x, 0.0).numpy(), eps)
        _run_by_rows(_forward_kernel, per_row, shared)
        ctx.save_for_backward(x, gamma, stats)
        ctx.row_shape = row_shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, gamma, stats = ctx.saved_tensors
        row_shape = n_rows, per_group, _ = ctx.row_shape
        want_dx = ctx.needs_input_grad[0]
        dx = torch.empty_like(x) if want_dx else None
        # Without want_dx the kernel never writes dx; a (R, 1, 1) stand-in keeps the row axis.
        dx_rows = (
            dx.numpy().reshape(row_shape) if want_dx else np.empty((n_rows, 1, 1), x.numpy().dtype)
        )
        param_grads = x.new_empty(x.shape[0], len(gamma), 2)
        per_row = [dy.contiguous().numpy().reshape(row_shape), x.numpy().reshape(row_shape)]
        per_row += [stats.numpy(), dx_rows, param_grads.numpy().reshape(n_rows, per_group, 2)]
        _run_by_rows(_backward_kernel, per_row, (gamma.numpy(), want_dx))
        grad_weight, grad_bias = param_grads.sum(0).unbind(1)
        needs = ctx.needs_input_grad  # a None weight or bias must get None back
        return (
            dx,
            None,
            grad_weight if needs[2] else None,
            grad_bias if needs[3] else None,
            None,
        )


def _per_channel(param: torch.Tensor | None, channels: int, like, fill) -> torch.Tensor:
    """γ or β as a contiguous (C,) tensor; None becomes ``fill`` (γ = 1, β = 0)."""
    if param is None:
        return like.new_full((channels,), fill)
    return param.detach().contiguous()


def fused_group_norm(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """Group norm of x (N, C, *) with the fused kernels; the caller has validated the arguments
    and cast them to one of float32/float64 on the CPU (see ``layers.group_norm``)."""
    return FusedGroupNormFunction.apply(x, num_groups, weight, bias, float(eps))
