"""Check for stage 03's ``group_norm(x, num_groups, weight, bias, eps=1e-5)`` against
``course_utils.layers`` (value and gradient), with the classic buggy variants named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils import layers as ref_layers
from course_utils.checks._guards import (
    one_cpu_thread,
)
from course_utils.checks._module_cases import (
    DETACHED_HINT,
    _diagnose,
    _expect_meta_tensor,
    _generator,
    _guard,
    _known_errors,
    _matches,
    _meta_run,
    _no_reference_case,
)
from course_utils.checks._report import CheckResult, Report

__all__ = ["check_group_norm"]

GROUP_NORM_BANNED = [
    "torch.nn.functional.group_norm",
    "torch.group_norm",
    "torch.nn.GroupNorm",
    "torch.nn.functional.layer_norm",
    "torch.layer_norm",
    "torch.nn.LayerNorm",
    "torch.nn.functional.instance_norm",
    "torch.instance_norm",
    "torch.nn.functional.batch_norm",  # on a (1, N*G, L) view it is group norm without the affine
    "torch.batch_norm",
    "course_utils.layers.group_norm",
    "course_utils.layers.GroupNorm",
    "course_utils.group_norm_cpu.fused_group_norm",
]


VIEW_HINT = (
    "x.view(...) fails on a non-contiguous input (here channels-last memory); use x.reshape(...)"
)


GROUP_NORM_HINTS = {
    "batch_norm": "statistics over the batch axis, per channel (batch norm); group norm normalises "
    "each sample on its own, over the C/G channels and the positions of a group",
    "batch_group": "statistics taken over the batch axis too; reduce over (C/G, *spatial) of each "
    "sample, never over N",
    "layer_norm": "num_groups ignored: statistics over all channels of a sample (layer norm); "
    "split C into G groups of C/G channels first",
    "instance_norm": "num_groups ignored: statistics per channel (instance norm); a group holds "
    "C/G channels",
    "interleaved": "channels grouped with a stride (channel c in group c % G); a group is C/G "
    "consecutive channels: x.reshape(N, G, C // G, ...)",
    "unbiased": "unbiased variance (divides by n - 1); group norm uses the biased variance, "
    "x.var(..., unbiased=False) or correction=0",
    "eps_outside": "eps added outside the square root; use (x - mean) / sqrt(var + eps)",
    "no_eps": "eps missing; use (x - mean) / sqrt(var + eps)",
    "eps_fixed": "the eps argument ignored (a hard-coded 1e-5); use the eps you are given",
    "per_group_affine": "per-group affine (one weight for a whole group); weight and bias have "
    "one value per channel, shape (C,)",
    "no_affine": "weight and bias not applied: y = x_hat * weight[c] + bias[c], with weight "
    "reshaped to (1, C, 1, ...) to broadcast",
}


def _normalise(
    t: torch.Tensor,
    dims: tuple[int, ...],
    eps: float,
    *,
    correction: int = 0,
    eps_mode: str = "inside",
) -> torch.Tensor:
    var, mean = torch.var_mean(t, dim=dims, correction=correction, keepdim=True)
    if eps_mode == "inside":
        return (t - mean) / torch.sqrt(var + eps)
    if eps_mode == "outside":
        return (t - mean) / (torch.sqrt(var) + eps)
    return (t - mean) / torch.sqrt(var)


def _group_norm_variants(
    x: torch.Tensor, groups: int, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> dict[str, torch.Tensor]:
    x64, w64, b64 = x.double(), weight.double(), bias.double()
    n, c = x.shape[:2]
    shape = x.shape
    per_channel = (1, c) + (1,) * (x.ndim - 2)

    def affine(x_hat: torch.Tensor) -> torch.Tensor:
        return x_hat * w64.view(per_channel) + b64.view(per_channel)

    grouped = x64.reshape(n, groups, -1)

    def by_group(**kwargs: Any) -> torch.Tensor:
        return _normalise(grouped, (2,), eps, **kwargs).reshape(shape)

    spatial = tuple(range(2, x.ndim))
    group_weight = w64[:groups].repeat_interleave(c // groups).view(per_channel)
    group_bias = b64[:groups].repeat_interleave(c // groups).view(per_channel)
    with torch.no_grad():
        return {
            "batch_norm": affine(_normalise(x64, (0, *spatial), eps)),
            "batch_group": affine(_normalise(grouped, (0, 2), eps).reshape(shape)),
            "layer_norm": affine(_normalise(x64.reshape(n, -1), (1,), eps).reshape(shape)),
            "instance_norm": affine(_normalise(x64.reshape(n, c, -1), (2,), eps).reshape(shape)),
            "interleaved": affine(
                _normalise(x64.reshape(n, c // groups, groups, -1), (1, 3), eps).reshape(shape)
            ),
            "unbiased": affine(by_group(correction=1)),
            "eps_outside": affine(by_group(eps_mode="outside")),
            "no_eps": affine(by_group(eps_mode="none")),
            "eps_fixed": affine(_normalise(grouped, (2,), 1e-5).reshape(shape)),
            "per_group_affine": by_group() * group_weight + group_bias,
            "no_affine": by_group(),
        }


def _random_group_norm_shape(gen: torch.Generator) -> tuple[tuple[int, ...], int]:
    channels = [4, 6, 8, 12][int(torch.randint(4, (1,), generator=gen))]
    divisors = [d for d in range(1, channels + 1) if channels % d == 0]
    groups = divisors[int(torch.randint(len(divisors), (1,), generator=gen))]
    ndim = int(torch.randint(2, 5, (1,), generator=gen))
    batch = int(torch.randint(2, 5, (1,), generator=gen))
    spatial = [int(v) for v in torch.randint(1, 6, (ndim - 2,), generator=gen)]
    return (batch, channels, *spatial), groups


@one_cpu_thread
def check_group_norm(learner_fn: Callable[..., Any], *, hidden: bool = False) -> CheckResult:
    """Grade ``group_norm(x, num_groups, weight, bias, eps=1e-5)`` against
    ``course_utils.layers.group_norm``.

    Tries 2-D, 3-D and 4-D inputs, G = 1, G = C and random shapes, tiny activations (where eps
    matters), an explicit eps, float64, gradients, not modifying x, and meta tensors. Names the
    classic bugs: batch-axis statistics, G ignored (layer/instance norm), interleaved groups,
    unbiased variance, eps outside the square root or missing, per-group affine. ``hidden=True``
    adds 1x1 maps with G = C, 5-D and non-contiguous inputs, a batch of one, and bans
    ``F.group_norm``, ``nn.GroupNorm``, layer/instance norm and the course's own version.
    """
    report = Report("group_norm")
    gen = _generator(20180322)

    def run_case(
        description: str,
        shape: tuple[int, ...],
        groups: int,
        *,
        scale: float = 1.5,
        eps: float | None = None,
        dtype: torch.dtype = torch.float32,
        make_x: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        x = make_x() if make_x else torch.randn(shape, generator=gen, dtype=dtype) * scale + 0.3
        c = x.shape[1]
        weight = torch.rand(c, generator=gen, dtype=x.dtype) + 0.5
        bias = torch.randn(c, generator=gen, dtype=x.dtype)
        eps_used = 1e-5 if eps is None else eps
        with report.case(f"{description}: x {tuple(x.shape)}, num_groups={groups}"):
            # The composed reference: a check cell never waits for the fused kernel to compile.
            expected = ref_layers.group_norm(
                x.double(), groups, weight.double(), bias.double(), eps_used, fused=False
            )
            x_before = x.clone()
            with _guard(hidden, GROUP_NORM_BANNED), _known_errors(report, {"view size": VIEW_HINT}):
                if eps is None:
                    got = learner_fn(x, groups, weight, bias)
                else:
                    got = learner_fn(x, groups, weight, bias, eps=eps)
            report.expect(
                torch.equal(x, x_before),
                "your function changed x in place; return a new tensor instead",
            )
            if isinstance(got, torch.Tensor) and got.dtype != x.dtype:
                report.fail(f"output dtype is {got.dtype}, expected the input's {x.dtype}")
            hint = None
            if not _matches(got, expected):
                variants = _group_norm_variants(x, groups, weight, bias, eps_used)
                hint = _diagnose(got, variants, GROUP_NORM_HINTS)
                if hint is None and isinstance(got, torch.Tensor) and torch.isnan(got).any():
                    hint = (
                        "NaN in the output: a group with zero variance divided by 0 (eps missing)"
                    )
            tol = 1e-10 if dtype == torch.float64 else 1e-4
            report.expect_close(got, expected, hint=hint, rtol=tol, atol=tol / 10)

    run_case("2-D input (N, C)", (6, 8), 4)
    run_case("3-D input (N, C, L)", (4, 6, 10), 3)
    run_case("4-D input (N, C, H, W)", (3, 8, 5, 5), 2)
    run_case("G = 1 (layer-norm statistics)", (2, 6, 4, 4), 1)
    run_case("G = C (instance-norm statistics)", (2, 6, 4, 4), 6)
    for index in range(2):
        shape, groups = _random_group_norm_shape(gen)
        run_case(f"random input {index + 1}", shape, groups)
    run_case("tiny activations (std 0.01), where eps matters", (4, 8, 3, 3), 4, scale=0.01)
    run_case("eps=0.05 passed explicitly", (3, 6, 4, 4), 3, scale=0.1, eps=0.05)
    run_case("float64 input", (3, 4, 5), 2, dtype=torch.float64)

    with report.case("gradients match the reference (x, weight and bias)"):
        x = torch.randn(4, 6, 3, 3, generator=gen, dtype=torch.float64).requires_grad_()
        weight = (torch.rand(6, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
        bias = torch.randn(6, generator=gen, dtype=torch.float64).requires_grad_()
        upstream = torch.randn(4, 6, 3, 3, generator=gen, dtype=torch.float64)
        expected = torch.autograd.grad(
            ref_layers.group_norm(x, 3, weight, bias, fused=False), (x, weight, bias), upstream
        )
        with _guard(hidden, GROUP_NORM_BANNED):
            out = learner_fn(x, 3, weight, bias)
        report.expect(isinstance(out, torch.Tensor) and out.requires_grad, DETACHED_HINT)
        grads = torch.autograd.grad(out, (x, weight, bias), upstream, allow_unused=True)
        for name, got_grad, want in zip(("x", "weight", "bias"), grads, expected, strict=True):
            report.expect(got_grad is not None, f"no gradient reaches {name}: {DETACHED_HINT}")
            report.expect_close(got_grad, want, what=f"gradient of {name}", rtol=1e-6, atol=1e-8)

    with report.case("runs on the meta device (no tensors created on the CPU)"), _meta_run(report):
        x = torch.empty(2, 8, 4, 4, device="meta")
        weight, bias = torch.empty(8, device="meta"), torch.empty(8, device="meta")
        with _guard(hidden, GROUP_NORM_BANNED):
            got = learner_fn(x, 4, weight, bias)
        _expect_meta_tensor(report, got, (2, 8, 4, 4))

    if hidden:
        run_case("1x1 maps with G = C: every group holds one value, output = bias", (3, 4, 1, 1), 4)
        run_case("5-D input (N, C, D, H, W)", (2, 4, 3, 3, 3), 2)
        run_case("a batch of one sample", (1, 6, 4, 4), 2)
        run_case(
            "non-contiguous (channels-last) input",
            (3, 8, 5, 5),
            4,
            make_x=lambda: torch.randn(3, 5, 5, 8, generator=gen).permute(0, 3, 1, 2),
        )
        _no_reference_case(report, learner_fn, GROUP_NORM_BANNED, "group norm")
    return report.finish(
        "matches course_utils.layers.group_norm on 2-D to 4-D inputs, G = 1 and G = C, small "
        "variances, explicit eps, float64, gradients and meta tensors"
    )
