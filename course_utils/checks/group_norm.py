"""Check for stage 03's ``group_norm(x, num_groups, weight=None, bias=None, eps=1e-5)`` against
``course_utils.layers`` (value and gradient), with the classic buggy variants named.

Coverage:

- value: 2-D to 5-D inputs, G = 1, G = C, random shapes, float64, tiny variances, against the float64
  reference; a wrong value names the index and size of the largest error;
- gradient: d<y, u>/d(x, weight, bias) for a random upstream u, in float64, with and without the affine;
  finite differences along random directions on a small input, as ``torch.autograd.gradcheck``
  does (a hand-written backward is checked too);
- input untouched: x, weight and bias keep their values and ``._version`` counters;
- every argument: weight and bias left at None, one of them None, eps at its default and explicit;
  inputs of more than 512 rows;
- contract: output dtype and shape of the input, meta tensors (no CPU tensors created), no library
  group norm (hidden);
- hints: a classic variant is named only when no other variant gives the same values on that input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils import layers as ref_layers
from course_utils.checks._differences import expect_close_at, unambiguous, where_it_differs
from course_utils.checks._guards import (
    one_cpu_thread,
)
from course_utils.checks._inputs_untouched import expect_untouched, keep
from course_utils.checks._module_cases import (
    DETACHED_HINT,
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


NONE_AFFINE_HINT = (
    "weight=None or bias=None not handled: both are optional (the defaults are None); apply "
    "weight only `if weight is not None`, and bias likewise"
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


def _diagnose_named(got: object, variants: list[tuple[str, torch.Tensor]]) -> str | None:
    for hint, candidate in variants:
        if _matches(got, candidate):
            return hint
    return None


def _affine_hint(
    got: object,
    x: torch.Tensor,
    groups: int,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float,
    affine: str,
) -> str | None:
    """Name an affine applied although None was passed, or a None treated as a value."""
    plain = ref_layers.group_norm(x.double(), groups, None, None, eps, fused=False)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if affine == "both" and _matches(got, plain * weight.double().reshape(shape)):
        return "bias not added: y = x_hat * weight[c] + bias[c]"
    if affine == "both" and _matches(got, plain + bias.double().reshape(shape)):
        return "weight not applied: y = x_hat * weight[c] + bias[c]"
    if affine == "bias" and _matches(got, plain):
        return "bias ignored when weight is None; weight and bias are optional independently"
    if affine == "weight" and _matches(got, plain):
        return "weight ignored when bias is None; weight and bias are optional independently"
    return None


def _random_group_norm_shape(gen: torch.Generator) -> tuple[tuple[int, ...], int]:
    channels = [4, 6, 8, 12][int(torch.randint(4, (1,), generator=gen))]
    divisors = [d for d in range(1, channels + 1) if channels % d == 0]
    groups = divisors[int(torch.randint(len(divisors), (1,), generator=gen))]
    ndim = int(torch.randint(2, 5, (1,), generator=gen))
    batch = int(torch.randint(2, 5, (1,), generator=gen))
    spatial = [int(v) for v in torch.randint(1, 6, (ndim - 2,), generator=gen)]
    return (batch, channels, *spatial), groups


def _expect_gradient_close(
    report: Report, got: torch.Tensor, want: torch.Tensor, name: str
) -> None:
    if not torch.allclose(got.detach().double(), want, rtol=1e-6, atol=1e-8):
        report.fail(
            f"the values are right but the gradient is not: gradient of {name} "
            f"{where_it_differs(got.detach().double(), want, 1e-6, 1e-8)}. A mean, variance or "
            "normaliser computed under torch.no_grad() or from a .detach()ed tensor, or a "
            "hand-written backward that misses a term"
        )


@one_cpu_thread
def check_group_norm(learner_fn: Callable[..., Any], *, hidden: bool = False) -> CheckResult:
    """Grade ``group_norm(x, num_groups, weight, bias, eps=1e-5)`` against
    ``course_utils.layers.group_norm``.

    Tries 2-D, 3-D and 4-D inputs, G = 1, G = C and random shapes, tiny activations (where eps
    matters), an explicit eps, weight and/or bias None, more than 512 rows, float64, gradients
    (float64 vector-Jacobian products and finite differences), inputs untouched, and meta tensors. Names the
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
        affine: str = "both",
    ) -> None:
        x = make_x() if make_x else torch.randn(shape, generator=gen, dtype=dtype) * scale + 0.3
        c = x.shape[1]
        weight = torch.rand(c, generator=gen, dtype=x.dtype) + 0.5
        bias = torch.randn(c, generator=gen, dtype=x.dtype)
        eps_used = 1e-5 if eps is None else eps
        given_w = None if affine in ("none", "bias") else weight
        given_b = None if affine in ("none", "weight") else bias
        with report.case(f"{description}: x {tuple(x.shape)}, num_groups={groups}"):
            # The composed reference: a check cell never waits for the fused kernel to compile.
            expected = ref_layers.group_norm(
                x.double(),
                groups,
                None if given_w is None else weight.double(),
                None if given_b is None else bias.double(),
                eps_used,
                fused=False,
            )
            kept = keep(x=x, weight=weight, bias=bias)
            known = {"view size": VIEW_HINT}
            if affine != "both":
                known["NoneType"] = NONE_AFFINE_HINT
            with _guard(hidden, GROUP_NORM_BANNED), _known_errors(report, known):
                if affine == "none" and eps is None:
                    got = learner_fn(x, groups)  # weight, bias and eps at their defaults
                elif eps is None:
                    got = learner_fn(x, groups, given_w, given_b)
                else:
                    got = learner_fn(x, groups, given_w, given_b, eps=eps)
            expect_untouched(report, kept)
            if isinstance(got, torch.Tensor) and got.dtype != x.dtype:
                report.fail(f"output dtype is {got.dtype}, expected the input's {x.dtype}")
            hint = None
            if not _matches(got, expected):
                hint = _affine_hint(got, x, groups, weight, bias, eps_used, affine)
                if hint is None:
                    w_used = weight if given_w is not None else torch.ones_like(weight)
                    b_used = bias if given_b is not None else torch.zeros_like(bias)
                    variants = _group_norm_variants(x, groups, w_used, b_used, eps_used)
                    named = [(GROUP_NORM_HINTS[k], v) for k, v in variants.items()]
                    hint = _diagnose_named(got, unambiguous(named))
                if hint is None and isinstance(got, torch.Tensor) and torch.isnan(got).any():
                    hint = (
                        "NaN in the output: a group with zero variance divided by 0 (eps missing)"
                    )
            tol = 1e-10 if dtype == torch.float64 else 1e-4
            expect_close_at(report, got, expected, hint=hint, rtol=tol, atol=tol / 10)

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
    run_case(
        "weight, bias and eps left at their defaults (None, None, 1e-5)",
        (3, 6, 4),
        3,
        affine="none",
    )
    run_case("weight given, bias=None", (3, 6, 4), 2, affine="weight")
    run_case("weight=None, bias given", (3, 6, 4), 2, affine="bias")
    run_case("more than 512 rows: x (1030, 6)", (1030, 6), 3)
    run_case("more than 512 samples: x (600, 4, 3, 3)", (600, 4, 3, 3), 2)

    def gradient_case(description: str, affine: bool) -> None:
        with report.case(description):
            x = torch.randn(4, 6, 3, 3, generator=gen, dtype=torch.float64).requires_grad_()
            weight = (torch.rand(6, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
            bias = torch.randn(6, generator=gen, dtype=torch.float64).requires_grad_()
            upstream = torch.randn(4, 6, 3, 3, generator=gen, dtype=torch.float64)
            inputs = (x, weight, bias) if affine else (x,)
            w, b = (weight, bias) if affine else (None, None)
            reference = ref_layers.group_norm(x, 3, w, b, fused=False)
            expected = torch.autograd.grad(reference, inputs, upstream)
            with _guard(hidden, GROUP_NORM_BANNED):
                out = learner_fn(x, 3, w, b)
            report.expect(isinstance(out, torch.Tensor) and out.requires_grad, DETACHED_HINT)
            report.expect(
                _matches(out, reference.detach(), rtol=1e-8, atol=1e-10),
                "the output differs from the reference (see the value cases above)",
            )
            grads = torch.autograd.grad(out, inputs, upstream, allow_unused=True)
            for name, got_grad, want in zip(("x", "weight", "bias"), grads, expected, strict=False):
                report.expect(got_grad is not None, f"no gradient reaches {name}: {DETACHED_HINT}")
                _expect_gradient_close(report, got_grad, want, name)

    gradient_case("gradients match the reference (x, weight and bias), float64", affine=True)
    gradient_case("gradient of x without weight and bias, float64", affine=False)

    with report.case("gradient against finite differences of your own output, x (2, 4, 3), G=2"):
        # gradcheck's idea along random directions v: <J^T u, v> (autograd) must equal
        # <u, (f(p + h v) - f(p - h v)) / 2h> (central differences, float64). One backward per
        # forward, so it also runs through the grading channel.
        x = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)
        weight = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
        bias = torch.randn(4, generator=gen, dtype=torch.float64)
        upstream = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)

        def answer(*params: torch.Tensor) -> Any:
            with _guard(hidden, GROUP_NORM_BANNED):
                return learner_fn(params[0], 2, params[1], params[2])

        params = [t.clone().requires_grad_() for t in (x, weight, bias)]
        out = answer(*params)
        report.expect(isinstance(out, torch.Tensor) and out.requires_grad, DETACHED_HINT)
        grads = torch.autograd.grad(out, params, upstream, allow_unused=True)
        grads = [
            torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)
        ]
        step = 1e-6
        for _ in range(3):
            directions = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in params]
            with torch.no_grad():
                up = answer(*(p + step * v for p, v in zip(params, directions, strict=True)))
                down = answer(*(p - step * v for p, v in zip(params, directions, strict=True)))
            numeric = float(((up - down) / (2 * step) * upstream).sum())
            analytic = float(sum((g * v).sum() for g, v in zip(grads, directions, strict=True)))
            if abs(numeric - analytic) > 1e-5 * (1 + abs(numeric)):
                report.fail(
                    "the gradient does not match finite differences of your own output (along a "
                    f"random direction: autograd {analytic:.8g}, central differences "
                    f"{numeric:.8g}); a .detach(), torch.no_grad() or a hand-written backward "
                    "that misses a term"
                )

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
