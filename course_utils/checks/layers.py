"""Checks for the layer and initialisation exercises: group norm, the residual block, inverted
dropout, the LSTM forget-gate bias and the final-layer bias from class priors.

Every check has the interface of ``course_utils.checks._report``::

    result = check_group_norm(group_norm)            # prints one PASS line, or FAIL lines
    result = check_group_norm(group_norm, hidden=True)  # + edge cases, and no calling the reference

It runs the learner's code on fresh inputs from a seeded ``torch.Generator`` (the same numbers
on every call), compares with the reference in ``course_utils.layers`` / ``course_utils.init``,
and when an output is wrong recomputes the classic buggy variants on the same input to name the
bug. Random draws made by the learner's own code (dropout masks, LSTM init) run under a forked,
seeded CPU generator, so checks are deterministic and leave the notebook's RNG untouched.
Statistical tolerances sit at 10 standard deviations or more: a correct answer cannot fail by bad
luck. Checks run with one intra-op thread (restored afterwards): their tensors are small.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import init as ref_init
from course_utils import layers as ref_layers
from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    banned_names_in_source,
    one_cpu_thread,
    tripwires,
)
from course_utils.checks._report import CaseFailed, CheckResult, Report, describe

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
RESIDUAL_BLOCK_BANNED = [
    "torchvision.models.resnet.BasicBlock",
    "course_utils.layers.ResidualBlock",
]
DROPOUT_BANNED = [
    "torch.nn.functional.dropout",
    "torch.dropout",
    "torch.nn.Dropout",
    "course_utils.layers.dropout",
    "course_utils.layers.Dropout",
]
FORGET_BIAS_BANNED = ["course_utils.init.set_lstm_forget_bias"]
FINAL_BIAS_BANNED = ["course_utils.init.init_final_bias_from_priors"]

VIEW_HINT = (
    "x.view(...) fails on a non-contiguous input (here channels-last memory); use x.reshape(...)"
)
NO_GRAD_HINT = (
    "parameters are leaf tensors that require grad, so change them inside "
    "`with torch.no_grad():` (e.g. `with torch.no_grad(): lstm.bias_ih_l0[H:2*H].fill_(1.0)`)"
)
DETACHED_HINT = (
    "the output is cut off from autograd (.detach(), .data, .numpy(), torch.no_grad() or "
    "torch.tensor(...) on the result); build it from x with tensor operations"
)


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _guard(hidden: bool, banned: list[str]) -> contextlib.AbstractContextManager[None]:
    return tripwires(banned) if hidden else contextlib.nullcontext()


@contextlib.contextmanager
def _seeded_rng(seed: int) -> Iterator[None]:
    """Seed the global CPU RNG for the learner's own random draws; restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # CPU only: GPU generators untouched
        yield


@contextlib.contextmanager
def _known_errors(report: Report, hints: dict[str, str]) -> Iterator[None]:
    """Turn an exception whose message contains a key of ``hints`` into a FAIL with that hint."""
    try:
        yield
    except Exception as error:
        text = str(error)
        for needle, hint in hints.items():
            if needle in text:
                first_line = text.strip().splitlines()[0] if text.strip() else ""
                report.fail(f"raised {type(error).__name__}: {first_line}. Looks like: {hint}")
        raise


HOST_SYNC_HINT = (
    "your function reads tensor values on the host (.item(), float(t), .numpy(), .tolist() or "
    "`if t > 0:`), which breaks on the meta device and stalls a GPU; keep it in tensor ops"
)


@contextlib.contextmanager
def _meta_run(report: Report) -> Iterator[None]:
    """Run learner code on meta tensors: a device mismatch fails with ``WRONG_DEVICE_HINT``, a host
    read with ``HOST_SYNC_HINT``; a torch op without a meta kernel is not the learner's fault, so
    the case ends there and passes."""
    try:
        yield
    except CaseFailed:
        raise
    except NotImplementedError as error:
        if "meta" in str(error).lower():
            return
        raise
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        said = f" (it raised {type(error).__name__}: {message})"
        lowered = message.lower()
        if any(key in lowered for key in ("item()", "ambiguous", "numpy", "data-dependent")):
            report.fail(HOST_SYNC_HINT + said)
        if any(key in lowered for key in ("meta", "same device", "incompatible tensor type")):
            report.fail(WRONG_DEVICE_HINT + said)
        raise


def _expect_meta_tensor(report: Report, got: object, shape: tuple[int, ...]) -> None:
    report.expect(isinstance(got, torch.Tensor), f"should return a tensor, got {describe(got)}")
    assert isinstance(got, torch.Tensor)
    if got.device.type != "meta":
        report.fail(
            f"returned a tensor on {got.device.type}, not on the input's device (meta): "
            f"{WRONG_DEVICE_HINT}"
        )
    report.expect(
        tuple(got.shape) == shape, f"output has shape {tuple(got.shape)}, expected {shape}"
    )


def _no_reference_case(report: Report, obj: Any, banned: list[str], what: str) -> None:
    with report.case("implements it without calling a library version"):
        found = banned_names_in_source(obj, banned)
        report.expect(
            not found,
            f"your answer calls {', '.join(found)}; the exercise is to write {what} yourself from "
            "basic tensor operations",
        )


def _matches(got: object, candidate: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    if not isinstance(got, torch.Tensor) or got.device.type == "meta":
        return False
    if tuple(got.shape) != tuple(candidate.shape):
        return False
    g = got.detach().to("cpu", torch.float64)
    return bool(torch.allclose(g, candidate.to(torch.float64), rtol=rtol, atol=atol))


def _diagnose(got: object, variants: dict[str, torch.Tensor], hints: dict[str, str]) -> str | None:
    for name, candidate in variants.items():
        if _matches(got, candidate):
            return hints[name]
    return None


# --------------------------------------------------------------------------------------------------
# Group norm
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Residual block
# --------------------------------------------------------------------------------------------------

SHORTCUT_SHAPE_HINT = (
    "the shortcut x has a different shape from the branch output, so they cannot be added: when "
    "stride != 1 or in_channels != out_channels the shortcut needs a projection, a 1x1 conv with "
    "the same stride followed by BatchNorm2d"
)
BLOCK_HINTS = {
    "no_skip": "no skip connection: the block returns relu(F(x)) without adding x (or its "
    "projection)",
    "relu_then_add": "the shortcut is added after the final ReLU; add first, then apply ReLU: "
    "out = relu(bn2(conv2(...)) + shortcut(x))",
    "no_final_relu": "no ReLU after the addition: out = relu(F(x) + shortcut(x))",
    "no_inner_relu": "no ReLU between the two convs: conv -> BN -> ReLU -> conv -> BN",
}


def _block_roles(block: nn.Module, x: torch.Tensor) -> dict[str, nn.Module]:
    """Find conv1, bn1, conv2, bn2, proj_conv, proj_bn in a learner's block by tracing a forward
    pass: which conv reads x, which BatchNorm reads which conv's output."""
    records: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
            records.append((module, inputs[0], output))

    handles = [
        m.register_forward_hook(hook)
        for m in block.modules()
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
    ]
    try:
        with torch.no_grad():
            block(x)
    finally:
        for handle in handles:
            handle.remove()
    roles: dict[str, nn.Module] = {}
    conv_outputs: list[tuple[str, torch.Tensor]] = []
    for module, inp, out in records:
        if isinstance(module, nn.Conv2d):
            reads_x = inp is x
            role = (
                "proj_conv" if module.kernel_size == (1, 1) else ("conv1" if reads_x else "conv2")
            )
            roles.setdefault(role, module)
            conv_outputs.append((role, out))
    for module, inp, _ in records:
        if isinstance(module, nn.BatchNorm2d):
            for role, out in conv_outputs:
                if inp is out:
                    roles.setdefault(
                        {"conv1": "bn1", "conv2": "bn2", "proj_conv": "proj_bn"}[role], module
                    )
    return roles


def _reference_with_weights(
    roles: dict[str, nn.Module], in_channels: int, out_channels: int, stride: int
) -> tuple[ref_layers.ResidualBlock | None, str]:
    """The course's block carrying the learner's weights, or None and what is missing."""
    ref = ref_layers.ResidualBlock(in_channels, out_channels, stride)
    pairs = {"conv1": ref.conv1, "bn1": ref.bn1, "conv2": ref.conv2, "bn2": ref.bn2}
    if ref.downsample is not None:
        pairs.update({"proj_conv": ref.downsample[0], "proj_bn": ref.downsample[1]})
    missing = [role for role in pairs if role not in roles]
    if missing:
        return None, ", ".join(missing)
    with torch.no_grad():
        for role, target in pairs.items():
            source = roles[role]
            for name, tensor in target.state_dict().items():
                value = source.state_dict().get(name)
                if value is None or value.shape != tensor.shape:
                    return None, f"{role}.{name} (shape {tuple(tensor.shape)})"
                tensor.copy_(value)
    return ref, ""


def _block_variants(ref: ref_layers.ResidualBlock, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        inner = ref.bn1(ref.conv1(x))
        branch = ref.bn2(ref.conv2(F.relu(inner)))
        shortcut = x if ref.downsample is None else ref.downsample(x)
        return {
            "no_skip": F.relu(branch),
            "relu_then_add": F.relu(branch) + shortcut,
            "no_final_relu": branch + shortcut,
            "no_inner_relu": F.relu(ref.bn2(ref.conv2(inner)) + shortcut),
        }


def _fail_if_no_skip(
    report: Report,
    block: nn.Module,
    roles: dict[str, nn.Module],
    x: torch.Tensor,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor],
) -> None:
    """When the projection is missing from the forward pass, say so if the output is the branch
    alone (the shortcut was never added)."""
    if not all(role in roles for role in ("conv1", "bn1", "conv2", "bn2")):
        return
    with torch.no_grad():
        got = forward(block, x)
        inner = F.relu(roles["bn1"](roles["conv1"](x)))
        branch_only = F.relu(roles["bn2"](roles["conv2"](inner)))
    if _matches(got, branch_only):
        report.fail(f"the output is relu(F(x)) alone. Looks like: {BLOCK_HINTS['no_skip']}")


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _param_count_hint(got: int, in_c: int, out_c: int, stride: int) -> str | None:
    ref = ref_layers.ResidualBlock(in_c, out_c, stride)
    want = _param_count(ref)
    conv_biases = 2 * out_c + (out_c if ref.downsample is not None else 0)
    if ref.downsample is not None:
        projection = _param_count(ref.downsample)
        if got == want - projection:
            return "no projection on the shortcut (1x1 conv + BatchNorm when the shape changes)"
        if got == want - 2 * out_c:
            return "the projection has no BatchNorm after its 1x1 conv"
        if got == want + 8 * in_c * out_c:
            return "the projection conv is 3x3; use a 1x1 conv with the block's stride"
    elif got == want + in_c * out_c + 2 * out_c:
        return "a projection on a shortcut whose shape does not change; use the identity there"
    if got in (want + conv_biases, want + 2 * out_c):
        return (
            "convs with bias=True; a conv followed by BatchNorm needs no bias (BN's beta adds one)"
        )
    return None


def _randomise_batchnorms(block: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d) and module.affine:
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.5)


@one_cpu_thread
def check_residual_block(
    learner_cls: Callable[..., nn.Module], *, hidden: bool = False
) -> CheckResult:
    """Grade a ``ResidualBlock(in_channels, out_channels, stride=1)`` module (BatchNorm version)
    against torchvision's ``BasicBlock`` semantics (``course_utils.layers.ResidualBlock``).

    Checks output shapes (same shape, stride 2, channel change), parameter counts, that the skip
    exists (zeroing the branch's BatchNorms leaves relu(x)), the wiring against the reference
    loaded with the learner's own weights (found by tracing which conv reads x and which
    BatchNorm follows which conv), gradient flow, not modifying x and meta tensors. Names: missing
    skip, addition after the final ReLU, no final ReLU, missing projection (shape error), conv
    biases, stride on the wrong conv. ``hidden=True`` adds odd sizes, a channel decrease, eval mode,
    and bans torchvision's ``BasicBlock`` and the course's own block.
    """
    report = Report("residual_block")
    gen = _generator(1512)

    def build(*args: int) -> nn.Module:
        with _seeded_rng(len(args) + sum(args)), _guard(hidden, RESIDUAL_BLOCK_BANNED):
            block = learner_cls(*args)
        if not isinstance(block, nn.Module):
            report.fail(f"ResidualBlock{args} should be an nn.Module, got {type(block).__name__}")
        return block

    def forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with (
            _guard(hidden, RESIDUAL_BLOCK_BANNED),
            _known_errors(
                report,
                dict.fromkeys(
                    ("must match the size", "size of tensor", "broadcast a dimension"),
                    SHORTCUT_SHAPE_HINT,
                ),
            ),
        ):
            return block(x)

    configs = [
        ("same shape", (16, 16, 1), (4, 16, 8, 8), (4, 16, 8, 8)),
        ("stride 2 and more channels", (16, 32, 2), (4, 16, 8, 8), (4, 32, 4, 4)),
        ("stride 2 alone", (16, 16, 2), (4, 16, 8, 8), (4, 16, 4, 4)),
        ("more channels alone", (8, 16, 1), (4, 8, 8, 8), (4, 16, 8, 8)),
    ]
    if hidden:
        configs += [
            ("odd 7x9 input with stride 2", (8, 8, 2), (2, 8, 7, 9), (2, 8, 4, 5)),
            ("fewer channels", (32, 16, 1), (2, 32, 6, 6), (2, 16, 6, 6)),
        ]
    for description, args, in_shape, out_shape in configs:
        in_c, out_c, stride = args
        with report.case(f"ResidualBlock{args}, {description}: output shape {out_shape}"):
            block = build(*args)
            x = torch.randn(in_shape, generator=gen)
            x_before = x.clone()
            got = forward(block, x)
            report.expect(
                isinstance(got, torch.Tensor),
                f"forward should return a tensor, got {describe(got)}",
            )
            report.expect(
                torch.equal(x, x_before),
                "forward changed x in place (an in-place "
                "ReLU or += on x?); keep x intact for the shortcut",
            )
            report.expect(
                tuple(got.shape) == out_shape,
                f"output has shape {tuple(got.shape)}, expected {out_shape}",
            )
        with report.case(f"ResidualBlock{args} has as many parameters as the reference"):
            block = build(*args)
            got_count, want = _param_count(block), _param_count(ref_layers.ResidualBlock(*args))
            if got_count != want:
                hint = _param_count_hint(got_count, in_c, out_c, stride)
                report.fail(
                    f"{got_count} parameters, expected {want} (conv3x3 -> BN -> ReLU -> "
                    f"conv3x3 -> BN, plus 1x1 conv + BN on the shortcut when the shape "
                    f"changes)" + (f". Looks like: {hint}" if hint else "")
                )
        with report.case(
            f"ResidualBlock{args} computes relu(F(x) + shortcut(x)) with your weights"
        ):
            block = build(*args)
            block.train()
            _randomise_batchnorms(block, gen)
            x = torch.randn(in_shape, generator=gen)
            with _guard(hidden, RESIDUAL_BLOCK_BANNED):
                roles = _block_roles(block, x)
            ref, missing = _reference_with_weights(roles, in_c, out_c, stride)
            if ref is None:
                _fail_if_no_skip(report, block, roles, x, forward)
                report.fail(
                    f"could not find {missing} in your block's forward pass; expected conv3x3 "
                    "(stride) -> BatchNorm2d -> ReLU -> conv3x3 -> BatchNorm2d on the branch, and "
                    "a 1x1 conv (stride) -> BatchNorm2d on the shortcut when the shape changes"
                )
            assert ref is not None
            with torch.no_grad():
                got = forward(block, x)
                expected = ref(x)
            hint = None
            if not _matches(got, expected):
                hint = _diagnose(got, _block_variants(ref, x), BLOCK_HINTS)
                conv1, conv2 = roles["conv1"], roles["conv2"]
                if hint is None and stride != 1 and conv2.stride != (1, 1):
                    hint = "the stride is on the second conv; put it on the first 3x3 conv"
                if hint is None and conv1.bias is not None:
                    hint = "conv1/conv2 with bias=True; a conv followed by BatchNorm needs no bias"
            report.expect_close(got, expected, hint=hint)

    with report.case(
        "skip connection: with every BatchNorm weight and bias zeroed, "
        "ResidualBlock(16, 16) returns relu(x)"
    ):
        block = build(16, 16, 1)
        block.train()
        with torch.no_grad():
            for module in block.modules():
                if isinstance(module, nn.BatchNorm2d) and module.affine:
                    module.weight.zero_()
                    module.bias.zero_()
        x = torch.randn(3, 16, 6, 6, generator=gen)
        with torch.no_grad():
            got = forward(block, x)
        hint = None
        if _matches(got, torch.zeros_like(x)):
            hint = "no skip connection: with the branch silenced the block outputs 0, not relu(x)"
        elif _matches(got, x):
            hint = "no ReLU after the addition (the output equals x, negatives included)"
        report.expect_close(got, F.relu(x), hint=hint)

    with report.case("gradients reach the input and every parameter"):
        block = build(16, 32, 2)
        x = torch.randn(2, 16, 8, 8, generator=gen, requires_grad=True)
        out = forward(block, x)
        report.expect(isinstance(out, torch.Tensor) and out.requires_grad, DETACHED_HINT)
        out.square().sum().backward()
        report.expect(
            x.grad is not None and bool(x.grad.abs().sum() > 0),
            "no gradient reaches x: " + DETACHED_HINT,
        )
        silent = [
            name for name, p in block.named_parameters() if p.requires_grad and p.grad is None
        ]
        report.expect(not silent, f"parameters that got no gradient (unused in forward?): {silent}")

    with report.case("runs on the meta device"), _meta_run(report):
        block = build(8, 16, 2).to("meta")
        x = torch.empty(2, 8, 8, 8, device="meta")
        got = forward(block, x)
        _expect_meta_tensor(report, got, (2, 16, 4, 4))

    if hidden:
        with report.case("eval mode uses the running statistics like the reference"):
            block = build(16, 32, 2)
            block.train()
            _randomise_batchnorms(block, gen)
            with torch.no_grad(), _guard(hidden, RESIDUAL_BLOCK_BANNED):
                for _ in range(3):
                    block(torch.randn(4, 16, 8, 8, generator=gen) * 2 + 1)
            x = torch.randn(4, 16, 8, 8, generator=gen)
            with _guard(hidden, RESIDUAL_BLOCK_BANNED):
                roles = _block_roles(block, x)
            ref, missing = _reference_with_weights(roles, 16, 32, 2)
            report.expect(ref is not None, f"could not find {missing} in your block")
            assert ref is not None
            block.eval()
            ref.eval()
            with torch.no_grad():
                got = forward(block, x)
                expected = ref(x)
            report.expect_close(got, expected)
        with report.case("implements the block itself (no BasicBlock inside)"):
            reference_types = _reference_block_types()
            if isinstance(learner_cls, type) and issubclass(learner_cls, reference_types):
                report.fail("your class inherits from a library residual block; write it yourself")
            block = build(16, 16, 1)
            inner = [type(m).__name__ for m in block.modules() if isinstance(m, reference_types)]
            report.expect(not inner, f"your block contains {inner}; write it yourself")
        _no_reference_case(report, learner_cls, RESIDUAL_BLOCK_BANNED, "the residual block")
    return report.finish(
        "shapes, parameter counts, skip connection, ReLU after the addition and projections match "
        "torchvision's BasicBlock; gradients flow; runs on meta tensors"
    )


def _reference_block_types() -> tuple[type, ...]:
    from torchvision.models.resnet import BasicBlock

    return (BasicBlock, ref_layers.ResidualBlock)


# --------------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------------


def _kept_fraction_tolerance(keep_prob: float, count: int) -> float:
    # 10 standard deviations of the binomial fraction, and never below 0.004.
    return max(10 * math.sqrt(keep_prob * (1 - keep_prob) / count), 0.004)


def _check_dropout_sample(
    report: Report, x: torch.Tensor, got: object, keep_prob: float
) -> torch.Tensor:
    """Statistical checks of one training-mode output; returns the boolean mask of kept units."""
    report.expect(isinstance(got, torch.Tensor), f"should return a tensor, got {describe(got)}")
    assert isinstance(got, torch.Tensor)
    report.expect(
        tuple(got.shape) == tuple(x.shape),
        f"output has shape {tuple(got.shape)}, expected {tuple(x.shape)}",
    )
    report.expect(
        got.dtype == x.dtype,
        f"output dtype is {got.dtype}, expected the input's "
        f"{x.dtype} (make the mask like x: torch.rand_like(x) or torch.empty_like(x))",
    )
    got = got.detach()
    kept = got != 0
    fraction = float(kept.double().mean())
    tolerance = _kept_fraction_tolerance(keep_prob, x.numel())
    if fraction == 1.0:
        if torch.allclose(got, x):
            report.fail("returned x unchanged with training=True: no unit was dropped")
        report.fail(f"no unit was dropped (expected a fraction {1 - keep_prob:.2f} of zeros)")
    confusable = abs(keep_prob - (1 - keep_prob)) > 2 * tolerance
    if confusable and abs(fraction - (1 - keep_prob)) < tolerance:
        report.fail(
            f"kept a fraction {fraction:.3f} of the units, expected ≈ keep_prob = {keep_prob}. Looks "
            f"like: keep_prob used as the drop probability (PyTorch's p is the DROP probability; "
            f"here a unit survives with probability keep_prob: mask = rand < keep_prob)"
        )
    report.expect(
        abs(fraction - keep_prob) <= tolerance,
        f"kept a fraction {fraction:.3f} of the units, expected {keep_prob} ± {tolerance:.3f}",
    )
    ratio = (got[kept] / x[kept]).double()
    inverse = 1 / keep_prob

    def all_near(value: float) -> bool:
        return bool(torch.allclose(ratio, torch.full_like(ratio, value), rtol=1e-4, atol=0))

    if not all_near(inverse):
        low, high = float(ratio.min()), float(ratio.max())
        message = (
            f"kept units are x times {low:.4g}..{high:.4g}, expected x / keep_prob = "
            f"x * {inverse:.4g}"
        )
        if all_near(1.0):
            message += (
                ". Looks like: missing 1/keep_prob scaling (non-inverted dropout); scale "
                "the kept units by 1/keep_prob so the expected output equals x"
            )
        elif all_near(1 / (1 - keep_prob)):
            message += ". Looks like: scaled by 1/(1 - keep_prob); divide by keep_prob"
        elif all_near(keep_prob):
            message += ". Looks like: multiplied by keep_prob; divide by it instead"
        report.fail(message)
    mean_in, mean_out = float(x.double().mean()), float(got.double().mean())
    report.expect(
        abs(mean_out - mean_in) <= 0.02 * abs(mean_in),
        f"the mean changed from {mean_in:.4f} to {mean_out:.4f}; inverted dropout preserves it",
    )
    return kept


@one_cpu_thread
def check_dropout(learner_fn: Callable[..., Any], *, hidden: bool = False) -> CheckResult:
    """Grade ``dropout(x, keep_prob, training)``: inverted dropout from a KEEP probability.

    On 10^6-element inputs: fraction kept ≈ keep_prob (tolerance 10 standard deviations), kept
    values exactly x / keep_prob, mean preserved; a fresh mask per element, per sample and per call;
    identity in eval mode and for keep_prob = 1; gradient = mask / keep_prob; dtype kept; meta
    tensors. Names: drop probability used as keep probability, missing 1/keep scaling, dropout
    active in eval, scaling at eval (non-inverted), one mask for every sample or every call.
    ``hidden=True`` adds keep_prob = 0.05, an int keep_prob, float16 input, and bans ``F.dropout``,
    ``torch.dropout``, ``nn.Dropout`` and the course's own version.
    """
    report = Report("dropout")
    gen = _generator(2014)

    def call(x: torch.Tensor, keep_prob: float, training: bool, seed: int) -> Any:
        with _seeded_rng(seed), _guard(hidden, DROPOUT_BANNED):
            return learner_fn(x, keep_prob, training)

    def uniform(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(shape, generator=gen, dtype=dtype) + 0.5  # no zeros: kept = nonzero

    for keep_prob in (0.8, 0.3):
        with report.case(f"training, keep_prob={keep_prob}, x of shape (1000, 1000)"):
            x = uniform(1000, 1000)
            x_before = x.clone()
            got = call(x, keep_prob, True, seed=int(keep_prob * 100))
            report.expect(
                torch.equal(x, x_before),
                "your function changed x in place; return a new tensor (x * mask / keep_prob)",
            )
            _check_dropout_sample(report, x, got, keep_prob)

    with report.case("every sample gets its own mask, per element (x of shape (512, 256))"):
        x = torch.ones(512, 256)
        got = call(x, 0.5, True, seed=7)
        kept = _check_dropout_sample(report, x, got, 0.5)
        report.expect(
            not bool((kept == kept[0]).all()),
            "every row (sample) got the same mask; "
            "draw one value per element of x: torch.rand_like(x) < keep_prob",
        )
        report.expect(
            not bool((kept == kept[:, :1]).all()),
            "whole rows are kept or dropped; dropout decides for every element separately",
        )

    with report.case("a new mask on every call"):
        x = torch.ones(200, 300)
        with _seeded_rng(11), _guard(hidden, DROPOUT_BANNED):
            first = learner_fn(x, 0.5, True)
            second = learner_fn(x, 0.5, True)
        report.expect(
            isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor),
            "should return a tensor",
        )
        same = float(((first != 0) == (second != 0)).double().mean())
        report.expect(
            same < 0.9,
            "two calls dropped the same units; draw a fresh mask every call "
            "(no torch.manual_seed and no cached mask inside dropout)",
        )

    with report.case("training=False returns x unchanged"):
        x = uniform(300, 200)
        got = call(x, 0.8, False, seed=3)
        hint = None
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(x.shape):
            if bool((got == 0).any()):
                hint = "dropout is still active in eval mode; with training=False return x"
            elif _matches(got, x.double() * 0.8):
                hint = (
                    "scaled by keep_prob at eval time: that is the paper's non-inverted "
                    "recipe; inverted dropout already divided by keep_prob during training, "
                    "so eval is the identity"
                )
            elif _matches(got, x.double() / 0.8):
                hint = "scaled by 1/keep_prob in eval mode; scale only while training"
        report.expect_close(got, x, hint=hint, rtol=1e-6, atol=0)

    with report.case("keep_prob=1 returns x unchanged while training"):
        x = uniform(40, 25)
        got = call(x, 1.0, True, seed=5)
        report.expect_close(got, x, rtol=1e-6, atol=0)

    with report.case("float64 input (4-D, (8, 4, 16, 16))"):
        x = uniform(8, 4, 16, 16, dtype=torch.float64)
        got = call(x, 0.6, True, seed=13)
        _check_dropout_sample(report, x, got, 0.6)

    with report.case("gradient is mask / keep_prob"):
        x = uniform(200, 300).requires_grad_()
        got = call(x, 0.7, True, seed=17)
        report.expect(isinstance(got, torch.Tensor) and got.requires_grad, DETACHED_HINT)
        (grad,) = torch.autograd.grad(got.sum(), x)
        expected = (got.detach() != 0).to(x.dtype) / 0.7
        report.expect_close(grad, expected, what="gradient of x", rtol=1e-5, atol=1e-6)

    with report.case("runs on the meta device"), _meta_run(report):
        x = torch.empty(4, 5, device="meta")
        got = call(x, 0.8, True, seed=19)
        _expect_meta_tensor(report, got, (4, 5))

    if hidden:
        with report.case("small keep_prob=0.05 (x of shape (1000, 1000))"):
            x = uniform(1000, 1000)
            got = call(x, 0.05, True, seed=23)
            _check_dropout_sample(report, x, got, 0.05)
        with report.case("keep_prob given as the int 1"):
            x = uniform(30, 30)
            got = call(x, 1, True, seed=29)
            report.expect_close(got, x, rtol=1e-6, atol=0)
        with report.case("float16 input keeps its dtype"):
            x = uniform(300, 300).half()
            got = call(x, 0.5, True, seed=31)
            report.expect(
                isinstance(got, torch.Tensor) and got.dtype == torch.float16,
                f"output is {describe(got)}, expected float16 like the input (make the "
                f"mask with torch.rand_like(x) or x.new_empty(...))",
            )
        _no_reference_case(report, learner_fn, DROPOUT_BANNED, "dropout")
    return report.finish(
        "keeps ≈ keep_prob of the units with a fresh per-element mask, scales them by 1/keep_prob, "
        "preserves the mean, is the identity in eval and for keep_prob = 1, runs on meta tensors"
    )


# --------------------------------------------------------------------------------------------------
# LSTM forget-gate bias
# --------------------------------------------------------------------------------------------------


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _forget_bias_hint(
    before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], value: float
) -> str | None:
    """Name the classic bug from per-(layer, direction) gate biases of shape (4, H)."""

    def near(t: torch.Tensor, v: float | torch.Tensor) -> bool:
        return bool(torch.allclose(t, torch.as_tensor(v, dtype=t.dtype).expand_as(t), atol=1e-5))

    keys = list(after)
    right = [k for k in keys if near(after[k][1], value)]
    untouched = [k for k in keys if near(after[k][1], before[k][1])]
    if all(near(after[k][1], 2 * value) for k in keys):
        return (
            f"both bias_ih and bias_hh were filled: the effective forget bias is b_if + b_hf = "
            f"{2 * value:g}, not {value:g}; set bias_ih[H:2H] = value and bias_hh[H:2H] = 0"
        )
    if value != 1 and all(near(after[k][1], 1.0) for k in keys):
        return "the value argument was ignored (forget bias 1 everywhere)"
    for gate, name in ((0, "input"), (2, "cell (g)"), (3, "output")):
        if untouched and all(
            near(after[k][gate], value) or near(after[k][gate], 2 * value) for k in untouched
        ):
            return (
                f"wrote into the {name} gate's slice [{gate}H:{gate + 1}H]; the gate order is "
                f"i, f, g, o, so the forget gate is rows [H:2H]"
            )
    if right and untouched and set(right) | set(untouched) == set(keys):
        if all(k.startswith("l0") for k in right) and any(not k.startswith("l0") for k in keys):
            return (
                "only the first layer was set; loop over every layer's parameters "
                "(bias_ih_l0, bias_ih_l1, ...), e.g. with lstm.named_parameters()"
            )
        if all("reverse" not in k for k in right) and any("reverse" in k for k in keys):
            return (
                "only the forward direction was set; a bidirectional LSTM has its own "
                "bias_ih_lK_reverse / bias_hh_lK_reverse parameters"
            )
    return None


REPLACED_PARAMETER_HINT = (
    "{names} replaced by new tensors: an optimizer built before the call still holds the old ones "
    "and would train parameters the model no longer uses; change the values in place "
    "(with torch.no_grad(): p.copy_(...) or p[...].fill_(...))"
)


def _expect_same_parameters(
    report: Report, module: nn.Module, before: dict[str, torch.Tensor]
) -> None:
    """Fail if any parameter object of ``module`` is not the one it had (``before``: name -> param)."""
    now = dict(module.named_parameters())
    replaced = [name for name, param in before.items() if now.get(name) is not param]
    if replaced:
        report.fail(REPLACED_PARAMETER_HINT.format(names=", ".join(replaced)))


def _expect_returns_module(report: Report, returned: object, module: nn.Module, what: str) -> None:
    report.expect(
        returned is module,
        f"{what} should return the module it was given (so calls chain), got {describe(returned)}",
    )


def _check_lstm_after(
    report: Report,
    lstm: nn.Module,
    before_raw: dict[str, torch.Tensor],
    before: dict[str, torch.Tensor],
    value: float,
) -> None:
    for name, param in lstm.named_parameters():
        report.expect(
            isinstance(param, nn.Parameter) and param.requires_grad and param.is_leaf,
            f"{name} is no longer a trainable nn.Parameter; change values in place",
        )
        report.expect(param.device == before_raw[name].device, f"{name} moved to {param.device}")
        if "weight" in name:
            report.expect(
                torch.equal(param.detach(), before_raw[name]),
                f"{name} changed; only the biases should",
            )
    after = ref_init.effective_gate_biases(lstm)
    hint = _forget_bias_hint(before, after, value)
    for key in after:
        got = after[key][1]
        expected = torch.full_like(got, value)
        if not torch.allclose(got, expected, atol=1e-5):
            report.fail(
                f"effective forget bias b_if + b_hf of {key} is {describe(got)}, expected "
                f"{value:g} everywhere" + (f". Looks like: {hint}" if hint else "")
            )
    for key in after:
        for gate, name in ((0, "input"), (2, "cell (g)"), (3, "output")):
            if not torch.allclose(after[key][gate], before[key][gate], atol=1e-5):
                zeroed = bool((after[key][gate] == 0).all())
                report.fail(
                    f"the {name} gate's effective bias of {key} changed"
                    + (" (zeroed)" if zeroed else "")
                    + "; set only the forget gate's slice [H:2H] and leave the other gates as "
                    "they were"
                )


@one_cpu_thread
def check_lstm_forget_bias(learner_fn: Callable[..., Any], *, hidden: bool = False) -> CheckResult:
    """Grade ``set_forget_bias(lstm, value=1.0)``, which must make b_if + b_hf = value in place.

    Tries nn.LSTM with one layer (default value), three bidirectional layers, two layers with
    value=2, and nn.LSTMCell; checks the effective forget bias of every layer and direction, that
    the other gates' effective biases and all weights are unchanged, that parameters stay trainable
    leaves on their device, and meta modules. Names: both bias vectors filled (effective 2), wrong
    gate slice, first layer only, forward direction only, value ignored, other gates changed,
    in-place change outside ``torch.no_grad()``. ``hidden=True`` adds proj_size, float64, value=0,
    and bans the course's ``set_lstm_forget_bias``.
    """
    report = Report("lstm_forget_bias")
    cases: list[tuple[str, Callable[[], nn.Module], float | None]] = [
        ("nn.LSTM(4, 6), value left at its default 1.0", lambda: nn.LSTM(4, 6), None),
        (
            "nn.LSTM(3, 5, num_layers=3, bidirectional=True), value=1.0",
            lambda: nn.LSTM(3, 5, num_layers=3, bidirectional=True),
            1.0,
        ),
        ("nn.LSTM(4, 6, num_layers=2), value=2.0", lambda: nn.LSTM(4, 6, num_layers=2), 2.0),
        ("nn.LSTMCell(5, 4), value=1.0", lambda: nn.LSTMCell(5, 4), 1.0),
    ]
    if hidden:
        cases += [
            (
                "nn.LSTM(4, 8, num_layers=2, proj_size=3), value=1.0",
                lambda: nn.LSTM(4, 8, num_layers=2, proj_size=3),
                1.0,
            ),
            (
                "float64 nn.LSTM(3, 4, bidirectional=True), value=1.5",
                lambda: nn.LSTM(3, 4, bidirectional=True, dtype=torch.float64),
                1.5,
            ),
            ("nn.LSTMCell(3, 2), value=0.0", lambda: nn.LSTMCell(3, 2), 0.0),
        ]
    for index, (description, make, value) in enumerate(cases):
        with report.case(description):
            with _seeded_rng(100 + index):
                lstm = make()
            before_raw = _snapshot(lstm)
            before = ref_init.effective_gate_biases(lstm)
            params = dict(lstm.named_parameters())
            with (
                _guard(hidden, FORGET_BIAS_BANNED),
                _seeded_rng(200 + index),
                _known_errors(report, {"leaf Variable": NO_GRAD_HINT}),
            ):
                returned = learner_fn(lstm) if value is None else learner_fn(lstm, value)
            _check_lstm_after(report, lstm, before_raw, before, 1.0 if value is None else value)
            _expect_same_parameters(report, lstm, params)
            _expect_returns_module(report, returned, lstm, "set_forget_bias")

    with report.case("runs on a meta-device nn.LSTM(4, 6, num_layers=2, bidirectional=True)"):
        lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, device="meta")
        with (
            _meta_run(report),
            _guard(hidden, FORGET_BIAS_BANNED),
            _known_errors(report, {"leaf Variable": NO_GRAD_HINT}),
        ):
            learner_fn(lstm, 1.0)
        moved = [name for name, p in lstm.named_parameters() if p.device.type != "meta"]
        report.expect(not moved, f"parameters {moved} left the meta device: {WRONG_DEVICE_HINT}")

    if hidden:
        _no_reference_case(report, learner_fn, FORGET_BIAS_BANNED, "the forget-bias init")
    return report.finish(
        "b_if + b_hf = value in every layer and direction of nn.LSTM and nn.LSTMCell, other gates "
        "and weights untouched, parameters still trainable, runs on meta modules"
    )


# --------------------------------------------------------------------------------------------------
# Final-layer bias from class priors
# --------------------------------------------------------------------------------------------------

FINAL_BIAS_HINTS = {
    "log10": "log10 instead of the natural log; softmax uses e^b, so b_c = ln p_c (torch.log)",
    "logit": "the binary logit ln(p/(1-p)) used for a softmax layer; with softmax, b_c = ln p_c",
    "unnormalised": "the priors were not normalised: b_c = ln(count_c) is ln p_c plus a constant. "
    "The softmax is the same, but the exercise asks for ln of priors that sum to 1 "
    "(p = priors / priors.sum())",
    "no_log": "the priors themselves used as the bias; take the log: b_c = ln p_c",
    "negated": "sign flipped: b_c = ln p_c (negative numbers, largest for the most common class)",
    "centred": "ln p shifted to mean 0; the softmax is the same, but the exercise asks for "
    "b_c = ln p_c exactly",
    "untouched": "the bias did not change; write into it in place: "
    "`with torch.no_grad(): layer.bias.copy_(...)`",
    "binary_log": "ln π used for a single sigmoid logit; a sigmoid needs σ(b) = π, so b = ln(π/(1-π))",
    "binary_log10": "log10 instead of the natural log: b = ln(π/(1-π))",
    "binary_negated": "sign flipped: b = ln(π/(1-π)) (negative when π < 0.5)",
    "binary_no_log": "π itself used as the bias; b = ln(π/(1-π))",
}


def _final_bias_variants(layer_before: nn.Linear, priors: torch.Tensor) -> dict[str, torch.Tensor]:
    p = priors.double()
    old = layer_before.bias.detach().double()
    if layer_before.out_features == 1:
        return {
            "untouched": old,
            "binary_log": torch.log(p).reshape(1),
            "binary_log10": torch.log10(p / (1 - p)).reshape(1),
            "binary_negated": torch.log((1 - p) / p).reshape(1),
            "binary_no_log": p.reshape(1),
        }
    q = p / p.sum()
    return {
        "untouched": old,
        "log10": torch.log10(q),
        "logit": torch.log(q / (1 - q)),
        "unnormalised": torch.log(p),
        "no_log": q,
        "negated": -torch.log(q),
        "centred": torch.log(q) - torch.log(q).mean(),
    }


def _expected_initial_loss(layer: nn.Linear, priors: torch.Tensor, features: torch.Tensor) -> float:
    """Cross-entropy averaged over inputs, with labels distributed as the priors (exact
    expectation, no sampling)."""
    with torch.no_grad():
        logits = layer(features.to(layer.weight.dtype)).double()
        if layer.out_features == 1:
            pi = float(priors.reshape(-1)[0])
            z = logits.reshape(-1)
            return float((pi * F.softplus(-z) + (1 - pi) * F.softplus(z)).mean())
        p = (priors / priors.sum()).double()
        return float(-(F.log_softmax(logits, dim=1) * p).sum(1).mean())


def _entropy(priors: torch.Tensor, binary: bool) -> float:
    p = priors.double().reshape(-1)
    if binary:
        p = torch.cat([p, 1 - p])
    p = p / p.sum()
    return float(-(p * torch.log(p)).sum())


@one_cpu_thread
def check_final_bias_init(
    learner_fn: Callable[..., Any], *, hidden: bool = False, binary: bool = False
) -> CheckResult:
    """Grade ``init_final_bias(layer, priors)``: set an ``nn.Linear`` output layer so the untrained
    model predicts the class priors.

    Spec: priors are C positive class frequencies or counts (tensor or list); afterwards
    ``layer.bias == ln(priors / priors.sum())`` and the weights are small enough (scaled down, or
    zeroed) that the expected initial cross-entropy on random unit-variance features is the entropy
    H of the prior within 0.01 H + 0.001 nats (weights x0.1 pass, default-scale weights fail).
    With ``binary=True`` the exercise also covers a single-logit layer (out_features == 1) given
    the positive rate π as a float: b = ln(π/(1-π)), initial BCE = H(π). Names: log10, the logit used for softmax, unnormalised priors, missing log, sign flip,
    unchanged bias, weights left at their default scale. ``hidden=True`` adds two classes, very
    skewed priors, integer counts and a float64 layer, and bans the course's own function.
    """
    report = Report("final_bias_init")
    gen = _generator(2019)

    def run_case(
        description: str,
        in_features: int,
        out_features: int,
        priors: Any,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        with report.case(description):
            with _seeded_rng(in_features * 31 + out_features):
                layer = nn.Linear(in_features, out_features, dtype=dtype)
            before = copy.deepcopy(layer)
            reference = ref_init.init_final_bias_from_priors(copy.deepcopy(layer), priors)
            priors_t = torch.as_tensor(priors, dtype=torch.float64)
            bias_param = layer.bias
            params = dict(layer.named_parameters())
            with (
                _guard(hidden, FINAL_BIAS_BANNED),
                _known_errors(report, {"leaf Variable": NO_GRAD_HINT}),
            ):
                returned = learner_fn(layer, priors)
            report.expect(
                isinstance(layer.bias, nn.Parameter) and layer.bias.requires_grad,
                "layer.bias is no longer a trainable nn.Parameter; change it in place",
            )
            report.expect(
                layer.bias.dtype == bias_param.dtype and layer.bias.shape == bias_param.shape,
                f"layer.bias became {describe(layer.bias)}, expected "
                f"dtype {bias_param.dtype} and shape {tuple(bias_param.shape)}",
            )
            got, expected = layer.bias.detach(), reference.bias.detach()
            hint = None
            if not _matches(got, expected):
                hint = _diagnose(got, _final_bias_variants(before, priors_t), FINAL_BIAS_HINTS)
            report.expect_close(got, expected, what="layer.bias", hint=hint)
            features = torch.randn(512, in_features, generator=gen)
            loss = _expected_initial_loss(layer, priors_t, features)
            entropy = _entropy(priors_t, out_features == 1)
            if abs(loss - entropy) > 0.01 * entropy + 0.001:
                with torch.no_grad():
                    spread = float((features.to(dtype) @ layer.weight.T).std())
                report.fail(
                    f"expected initial loss {loss:.3f} nats, but the prior's entropy is "
                    f"{entropy:.3f}: the weights still add noise of std {spread:.2f} to the logits. "
                    "Looks like: weights left at their default scale; scale them down (e.g. "
                    "layer.weight.mul_(0.01)) or zero them so the bias sets the first predictions"
                )
            _expect_same_parameters(report, layer, params)
            _expect_returns_module(report, returned, layer, "init_final_bias")

    run_case(
        "4 classes, priors tensor([0.1, 0.2, 0.3, 0.4])", 32, 4, torch.tensor([0.1, 0.2, 0.3, 0.4])
    )
    run_case(
        "10 classes, priors given as class counts (not normalised)",
        64,
        10,
        torch.tensor([500.0, 50, 120, 300, 30, 80, 200, 400, 250, 70]),
    )
    run_case("3 classes, priors as a Python list", 16, 3, [0.7, 0.2, 0.1])
    if binary:
        run_case("binary single logit, π = 0.1 (1:9 imbalance)", 32, 1, 0.1)
        run_case("binary single logit, π = 0.01 (RetinaNet)", 16, 1, 0.01)

    with report.case("runs on a meta-device nn.Linear(8, 3)"):
        layer = nn.Linear(8, 3, device="meta")
        with _meta_run(report), _guard(hidden, FINAL_BIAS_BANNED):
            learner_fn(layer, [0.2, 0.3, 0.5])
        moved = [name for name, p in layer.named_parameters() if p.device.type != "meta"]
        report.expect(not moved, f"parameters {moved} left the meta device: {WRONG_DEVICE_HINT}")

    if hidden:
        run_case("2 classes through a softmax layer", 8, 2, torch.tensor([0.9, 0.1]))
        run_case(
            "very skewed priors (0.998 / 0.001 / 0.001)", 16, 3, torch.tensor([0.998, 0.001, 0.001])
        )
        run_case("integer class counts (int64 tensor)", 16, 4, torch.tensor([30, 10, 50, 10]))
        run_case(
            "float64 layer", 16, 5, torch.tensor([0.3, 0.3, 0.2, 0.1, 0.1]), dtype=torch.float64
        )
        _no_reference_case(report, learner_fn, FINAL_BIAS_BANNED, "the bias initialisation")
    return report.finish(
        "bias = ln of the normalised priors"
        + (" (ln(π/(1-π)) for a single logit)" if binary else "")
        + ", weights small enough that the initial loss equals the prior's entropy"
    )
