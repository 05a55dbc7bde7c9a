"""Check for stage 03's ``ResidualBlock(in_channels, out_channels, stride=1)`` (BatchNorm version): output,
gradient, parameter count and the shortcut, against ``course_utils.layers.ResidualBlock``.

Coverage:

- value: the output of the learner's block equals the reference block loaded with the learner's own
  weights (found by tracing the forward pass), in train mode and, hidden, in eval mode;
- gradient: for a random upstream gradient, d/dx and d/d(every conv and BatchNorm weight and bias)
  equal the reference's (a detached shortcut or branch fails even where the values agree); every
  parameter gets a gradient;
- input untouched: x keeps its values and ``._version`` counter (no in-place ReLU or += on x);
- every argument: stride left at its default 1 and 2, more and fewer (hidden) channels;
- contract: an ``nn.Module``, the output shape, the parameter count, meta tensors, no library block
  inside (hidden).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import layers as ref_layers
from course_utils.checks._differences import where_it_differs
from course_utils.checks._guards import (
    one_cpu_thread,
)
from course_utils.checks._inputs_untouched import changed_inputs, keep
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
    _seeded_rng,
)
from course_utils.checks._report import CheckResult, Report, describe

__all__ = ["check_residual_block"]

RESIDUAL_BLOCK_BANNED = [
    "torchvision.models.resnet.BasicBlock",
    "course_utils.layers.ResidualBlock",
]


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


def _expect_same_gradients(
    report: Report,
    block: nn.Module,
    roles: dict[str, nn.Module],
    ref: ref_layers.ResidualBlock,
    x: torch.Tensor,
    gen: torch.Generator,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor],
) -> None:
    """d<out, u>/d(x, parameters) of the learner's block equals the reference's (same weights)."""
    pairs = {"conv1": ref.conv1, "bn1": ref.bn1, "conv2": ref.conv2, "bn2": ref.bn2}
    if ref.downsample is not None:
        pairs.update({"proj_conv": ref.downsample[0], "proj_bn": ref.downsample[1]})
    x_learner = x.clone().requires_grad_()
    x_ref = x.clone().requires_grad_()
    mine = [(f"{role}.{n}", p) for role in pairs for n, p in roles[role].named_parameters()]
    theirs = [p for role in pairs for _, p in pairs[role].named_parameters()]
    out = forward(block, x_learner)
    report.expect(isinstance(out, torch.Tensor) and out.requires_grad, DETACHED_HINT)
    upstream = torch.randn(tuple(out.shape), generator=gen)
    got = torch.autograd.grad(out, [x_learner] + [p for _, p in mine], upstream, allow_unused=True)
    want = torch.autograd.grad(ref(x_ref), [x_ref] + theirs, upstream, allow_unused=True)
    names = ["x"] + [name for name, _ in mine]
    for name, g, w in zip(names, got, want, strict=True):
        if w is None:
            continue
        g64 = torch.zeros_like(w, dtype=torch.float64) if g is None else g.double()
        if not torch.allclose(g64, w.double(), rtol=1e-3, atol=1e-5):
            report.fail(
                f"the values are right but the gradient is not: gradient of {name} "
                f"{where_it_differs(g64, w.double(), 1e-3, 1e-5)}"
                + (
                    ". Looks like: the shortcut or the branch is cut off from autograd "
                    "(.detach(), .data or torch.no_grad() inside forward)"
                    if g is None or name == "x"
                    else ""
                )
            )


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
            kept = keep(x=x)
            got = forward(block, x)
            report.expect(
                isinstance(got, torch.Tensor),
                f"forward should return a tensor, got {describe(got)}",
            )
            report.expect(
                not changed_inputs(kept),
                "forward changes its input in place (x): an in-place ReLU or += on x? keep x "
                "intact for the shortcut",
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
            _expect_same_gradients(report, block, roles, ref, x, gen, forward)

    with report.case("ResidualBlock(8, 8) with stride left at its default 1: same shape"):
        with _seeded_rng(99), _guard(hidden, RESIDUAL_BLOCK_BANNED):
            block = learner_cls(8, 8)
        x = torch.randn(2, 8, 6, 6, generator=gen)
        got = forward(block, x)
        report.expect(
            isinstance(got, torch.Tensor) and tuple(got.shape) == (2, 8, 6, 6),
            f"ResidualBlock(8, 8) gave {describe(got)}, expected shape (2, 8, 6, 6): the default "
            "stride is 1",
        )

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
