"""Layers the course implements itself: group norm, inverted dropout from a keep probability, the
residual block.

Every op here takes and returns tensors of any float dtype on any device (cpu, cuda, mps, meta);
new tensors are made from the input (``new_empty``); no op reads a tensor value back to the host.
On the CPU, group norm runs a fused kernel (``course_utils.group_norm_cpu``, compiled by numba);
everywhere else, and with ``fused=False``, it runs the composed PyTorch ops below.
Each functional op has a module twin that holds its parameters and honours ``self.training``; each
is tested against its PyTorch/torchvision twin (``F.group_norm``, ``F.dropout``, ``F.dropout2d``,
``torchvision.models.resnet.BasicBlock``).

Sources: Wu & He, *Group Normalization* (2018); Srivastava et al., *Dropout* (JMLR 2014), whose
``p`` is the probability of KEEPING a unit (0.8 for inputs, 0.5 for hidden units), whereas PyTorch's
``p`` is the probability of dropping it; He et al., *Deep Residual Learning* (2016).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

NORM_KINDS = ("batch", "group", "none")


# --------------------------------------------------------------------------------------------------
# Group normalization
# --------------------------------------------------------------------------------------------------


def _check_group_norm_args(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
) -> None:
    if x.ndim < 2:
        raise ValueError(
            f"x must have shape (N, C, *) with at least 2 dims, got shape {tuple(x.shape)}"
        )
    channels = x.shape[1]
    if not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int, got {num_groups!r}")
    if channels % num_groups != 0:
        raise ValueError(
            f"the number of channels must be divisible by num_groups, got C={channels} and "
            f"num_groups={num_groups}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != (channels,):
            raise ValueError(
                f"{name} must have shape (C,) = ({channels},) (one value per channel), "
                f"got {tuple(param.shape)}"
            )


class _GroupNormFunction(torch.autograd.Function):
    """Group norm on x viewed as (N, C, S), with a hand-written backward.

    Autograd through the forward's small ops would allocate and sweep the full-size tensor about
    ten times (and ``torch.var_mean`` alone is slow on the CPU); this version allocates one
    full-size tensor in each direction and reuses it in place: five sweeps of the tensor forward
    and six backward, against two each way for PyTorch's fused kernel, which keeps a group in cache
    (``benchmarks/group_norm_routes.md`` times both; ``course_utils.group_norm_cpu`` is the fused
    twin used on the CPU). With x̂ = (x - μ) r, r = 1/sqrt(σ² + eps) and
    L = (C/G)·S values per group, the gradients are

        dβ_c = Σ_n Σ_s dy,     dγ_c = Σ_n r (Σ_s dy·x - μ Σ_s dy)
        dx = r γ_c dy + b·x + k,  b = r³ (μ Σ_g γ dy - Σ_g γ dy·x) / L,  k = -b μ - r Σ_g γ dy / L

    where Σ_g sums over the L values of the group. Each elementwise op takes at most one broadcast
    operand (a per-group or per-channel coefficient): PyTorch's CPU kernels vectorise only that
    case, so ``addcmul(k, dy, r γ)``, with two, is slower than ``mul`` then ``add_``. First
    derivatives only (``once_differentiable``).
    """

    @staticmethod
    def forward(ctx, x3, num_groups, weight, bias, eps):
        n, c, s = x3.shape
        per_group = c // num_groups
        x3 = x3.contiguous()
        grouped = x3.view(n, num_groups, per_group * s)
        mean = grouped.mean(-1, keepdim=True)  # (N, G, 1)
        out = grouped - mean  # two-pass variance: stable when |mean| >> std
        sum_sq = torch.linalg.vector_norm(out, dim=-1, keepdim=True).square()
        inv_std = torch.rsqrt(sum_sq / (per_group * s) + eps)  # (N, G, 1)
        out = out.view(n, num_groups, per_group, s)
        scale = inv_std.unsqueeze(-1)  # (N, G, 1, 1)
        if weight is not None:
            scale = scale * weight.view(1, num_groups, per_group, 1)
        out.mul_(scale)
        if bias is not None:
            out.add_(bias.view(1, num_groups, per_group, 1))
        ctx.save_for_backward(x3, weight, mean, inv_std)
        ctx.num_groups = num_groups
        ctx.has_bias = bias is not None
        return out.view(n, c, s)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x3, weight, mean, inv_std = ctx.saved_tensors
        groups = ctx.num_groups
        n, c, s = x3.shape
        per_group = c // groups
        size = per_group * s
        mean, inv_std = mean.view(n, groups, 1), inv_std.view(n, groups, 1)
        dy = dy.reshape(n, c, s)
        buffer = torch.mul(dy, x3)  # the only full-size allocation; holds grad_x at the end
        sum_dy_x = buffer.sum(-1).view(n, groups, per_group)  # Σ_s dy·x per (n, c)
        sum_dy = dy.sum(-1).view(n, groups, per_group)  # Σ_s dy per (n, c)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            gamma = None if weight is None else weight.view(1, groups, per_group)
            g_dy = sum_dy if gamma is None else sum_dy * gamma
            g_dy_x = sum_dy_x if gamma is None else sum_dy_x * gamma
            g_dy, g_dy_x = g_dy.sum(-1, keepdim=True), g_dy_x.sum(-1, keepdim=True)  # (N, G, 1)
            coef_x = (g_dy * mean - g_dy_x) * inv_std.pow(3) / size  # b
            const = -coef_x * mean - g_dy * inv_std / size  # k
            coef_dy = inv_std if gamma is None else inv_std * gamma  # r γ_c, (N, G, C/G)
            grad_x = buffer.view(n, groups, per_group, s)
            torch.mul(dy.reshape(n, groups, per_group, s), coef_dy.unsqueeze(-1), out=grad_x)
            grad_x.addcmul_(x3.view(n, groups, per_group, s), coef_x.unsqueeze(-1))
            grad_x.add_(const.unsqueeze(-1))
            grad_x = grad_x.view(n, c, s)
        if weight is not None and ctx.needs_input_grad[2]:
            grad_weight = ((sum_dy_x - mean * sum_dy) * inv_std).sum(0).view(c)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = sum_dy.sum(0).view(c)
        return grad_x, None, grad_weight, grad_bias, None


def group_norm(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    *,
    fused: bool | None = None,
) -> torch.Tensor:
    """Group normalization: y = γ_c (x - μ_{n,g}) / sqrt(σ²_{n,g} + eps) + β_c.

    For each sample n the C channels are split into ``num_groups`` groups of C/G consecutive
    channels; μ and σ² (the biased variance: divide by the count) are taken over the C/G channels
    and all spatial positions of a group. The affine parameters are per *channel*. G = 1 gives layer
    norm statistics, G = C instance norm statistics. Train and eval behave the same (no running
    statistics).

    Equivalently (Wu & He write it as reshape + moments), it is training-mode batch norm without
    affine on x viewed as (1, N·G, L), or layer norm on (N·G, L) rows, L = (C/G)·prod(*), followed
    by the per-channel affine. We compute the moments ourselves because PyTorch's CPU batch- and
    layer-norm kernels are slow on that view (3-4x ``F.group_norm`` forward + backward here).

    Two implementations, tested against ``F.group_norm`` alike: the composed ops of
    ``_GroupNormFunction`` (any device; about 2x ``F.group_norm`` on the CPU, where every op sweeps
    main memory) and, on the CPU, the fused kernel of ``course_utils.group_norm_cpu``, which visits
    one group at a time while it sits in cache, as ATen does (about 1x;
    ``benchmarks/group_norm_routes.md``). Its first call per dtype compiles for 1-2 s (then cached).

    Args:
        x: input of shape (N, C, *) with any number (>= 0) of trailing spatial dims.
        num_groups: G, a divisor of C.
        weight: γ of shape (C,), or None for 1.
        bias: β of shape (C,), or None for 0.
        eps: added to the variance inside the square root.
        fused: None (default) picks the fused kernel for CPU tensors when numba is installed, the
            composed ops otherwise; True insists on the kernel, False on the composed ops.

    Returns:
        Tensor of x's shape and dtype; float16/bfloat16 inputs are normalised in float32 and cast
        back.

    Raises:
        ValueError: x has fewer than 2 dims, C % G != 0, weight/bias are not of shape (C,), or
            fused=True for a tensor that is not on the CPU.
        RuntimeError: fused=True and numba cannot be imported.
    """
    _check_group_norm_args(x, num_groups, weight, bias)
    low_precision = x.dtype in (torch.float16, torch.bfloat16)
    work = x.float() if low_precision else x
    if weight is not None and weight.dtype != work.dtype:
        weight = weight.to(work.dtype)
    if bias is not None and bias.dtype != work.dtype:
        bias = bias.to(work.dtype)
    if _use_fused_kernel(work, fused):
        from course_utils.group_norm_cpu import fused_group_norm  # imports numba when first used

        out = fused_group_norm(work, num_groups, weight, bias, eps)
    else:
        n, c = x.shape[:2]
        size = math.prod(x.shape[2:])  # not -1: a batch of 0 samples makes it ambiguous
        out = _GroupNormFunction.apply(work.reshape(n, c, size), num_groups, weight, bias, eps)
        out = out.view(x.shape)
    return out.to(x.dtype) if low_precision else out


@functools.cache
def fused_kernel_unavailable_reason() -> str | None:
    """None when ``course_utils.group_norm_cpu`` imports (numba is installed), else why not."""
    try:
        import course_utils.group_norm_cpu  # noqa: F401  (imports numba)
    except ImportError as error:
        return f"numba could not be imported ({error}); pip install numba"
    return None


def _use_fused_kernel(x: torch.Tensor, fused: bool | None) -> bool:
    if fused is not None and not isinstance(fused, bool):
        raise ValueError(f"fused must be None, True or False, got {fused!r}")
    if fused is False:
        return False
    on_cpu = x.is_cpu and x.dtype in (torch.float32, torch.float64)
    if fused is None:
        return (
            on_cpu
            and x.numel() > 0
            and not torch.compiler.is_compiling()
            and fused_kernel_unavailable_reason() is None
        )
    if not on_cpu:
        raise ValueError(
            f"fused=True runs on float CPU tensors only, got a {x.dtype} tensor on {x.device}; "
            "leave fused=None to use the composed ops there"
        )
    reason = fused_kernel_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"fused=True needs the fused CPU kernel, but {reason}")
    return True


class GroupNorm(nn.Module):
    """Group normalization layer with per-channel affine parameters γ (ones) and β (zeros).

    ``GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`` mirrors ``torch.nn.GroupNorm``:
    input (N, C, *) with C == num_channels, output of the same shape; identical in train and eval.
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels must be divisible by a positive num_groups, got "
                f"num_channels={num_channels} and num_groups={num_groups}"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(num_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"expected input of shape (N, {self.num_channels}, *), got {tuple(x.shape)}"
            )
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


# --------------------------------------------------------------------------------------------------
# Inverted dropout, parametrised by the KEEP probability
# --------------------------------------------------------------------------------------------------


def _check_keep_prob(keep_prob: float) -> None:
    if isinstance(keep_prob, bool) or not isinstance(keep_prob, (int, float)):
        raise ValueError(f"keep_prob must be a number in (0, 1], got {keep_prob!r}")
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")


def _apply_mask(x: torch.Tensor, mask_shape: tuple[int, ...], keep_prob: float) -> torch.Tensor:
    # Same draws as ATen's CPU dropout: bernoulli_(keep) then div_(keep), so a shared seed gives the
    # same mask as F.dropout(p=1 - keep_prob).
    mask = x.new_empty(mask_shape).bernoulli_(keep_prob).div_(keep_prob)
    return x * mask


def dropout(x: torch.Tensor, keep_prob: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: y = x * m / keep_prob with m ~ Bernoulli(keep_prob) drawn per element.

    Each element is kept with probability ``keep_prob`` and scaled by 1/keep_prob, so E[y] = x and
    evaluation needs no rescaling. Equivalent to ``F.dropout(x, p=1 - keep_prob)`` (same random
    stream under the same seed on the CPU).

    Args:
        x: input of any shape.
        keep_prob: probability of keeping a unit, in (0, 1]; the paper uses 0.8 for inputs and 0.5
            for hidden units.
        training: when False, or when keep_prob == 1, x is returned unchanged (the same object).

    Returns:
        Tensor of x's shape, dtype and device (a new tensor in training mode).
    """
    _check_keep_prob(keep_prob)
    if not training or keep_prob == 1:
        return x
    return _apply_mask(x, tuple(x.shape), keep_prob)


def dropout2d(x: torch.Tensor, keep_prob: float, training: bool = True) -> torch.Tensor:
    """Channel dropout: zero whole feature maps x[n, c] with probability 1 - keep_prob.

    y[n, c] = x[n, c] * m[n, c] / keep_prob with m[n, c] ~ Bernoulli(keep_prob), one draw per
    (sample, channel) shared by all H x W positions (Tompson et al., 2015): neighbouring pixels are
    correlated, so per-pixel dropout hardly regularises a conv net.

    Args:
        x: (N, C, H, W), or (C, H, W) read as one unbatched sample. (``F.dropout2d`` still reads a
            3-D input as (N, C, L) and warns that this will change; for (N, C, L) features use
            ``dropout`` on per-channel masks or ``nn.Dropout1d``.)
        keep_prob: probability of keeping a channel, in (0, 1].
        training: when False, or when keep_prob == 1, x is returned unchanged.

    Returns:
        Tensor of x's shape, dtype and device.
    """
    _check_keep_prob(keep_prob)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"dropout2d expects (N, C, H, W) or unbatched (C, H, W) input, got shape "
            f"{tuple(x.shape)}"
        )
    if not training or keep_prob == 1:
        return x
    channel_dims = 2 if x.ndim == 4 else 1
    mask_shape = tuple(x.shape[:channel_dims]) + (1,) * (x.ndim - channel_dims)
    return _apply_mask(x, mask_shape, keep_prob)


class Dropout(nn.Module):
    """Inverted dropout layer that keeps each unit with probability ``keep_prob`` while training.

    ``Dropout(0.8)`` on inputs and ``Dropout(0.5)`` on hidden units is the paper's recipe; it equals
    ``nn.Dropout(p=0.2)`` / ``nn.Dropout(p=0.5)``. Identity in eval mode.
    """

    def __init__(self, keep_prob: float = 0.5) -> None:
        super().__init__()
        _check_keep_prob(keep_prob)
        self.keep_prob = keep_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.keep_prob, self.training)

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"


class Dropout2d(nn.Module):
    """Channel dropout layer (see ``dropout2d``): (N, C, H, W) or (C, H, W); eval: identity."""

    def __init__(self, keep_prob: float = 0.5) -> None:
        super().__init__()
        _check_keep_prob(keep_prob)
        self.keep_prob = keep_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout2d(x, self.keep_prob, self.training)

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"


# --------------------------------------------------------------------------------------------------
# Residual block
# --------------------------------------------------------------------------------------------------


def make_norm(kind: str, channels: int, groups: int = 8) -> nn.Module:
    """A 2-D normalization layer: ``"batch"`` -> BatchNorm2d, ``"group"`` -> GroupNorm(groups,
    channels), ``"none"`` -> Identity. The models use PyTorch's ``nn.GroupNorm``, which computes the
    same function as ``GroupNorm`` above with a compiled kernel on every device and no Python cost
    per call (ours matches it on large CPU tensors only; ``benchmarks/group_norm_routes.md``)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        if channels % groups != 0:
            raise ValueError(
                f"group norm needs channels divisible by groups, got channels={channels} and "
                f"groups={groups}"
            )
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORM_KINDS}, got {kind!r}")


class ResidualBlock(nn.Module):
    """The ResNet basic block (torchvision ``BasicBlock`` semantics).

    out = ReLU(norm2(conv2(ReLU(norm1(conv1(x))))) + shortcut(x)), where conv1 is 3x3 with
    ``stride``, conv2 is 3x3 with stride 1, and shortcut is the identity when the shape is kept, or
    a 1x1 conv with ``stride`` followed by a norm (the projection W_s x) when ``stride != 1`` or the
    channel count changes. Convs have no bias when a norm follows them (its β plays that role).

    Args:
        in_channels, out_channels: channels of x and of the output.
        stride: stride of the first conv and of the projection; 2 halves H and W.
        norm: ``"batch"``, ``"group"`` (GroupNorm with ``groups`` groups) or ``"none"``.
        groups: number of groups for ``norm="group"``.
        skip: False drops the shortcut (and the projection) entirely: the "plain" block of the
            skip-connection experiment.

    Input (N, in_channels, H, W); output (N, out_channels, ceil(H/stride), ceil(W/stride)).
    Attribute names (conv1, bn1, conv2, bn2, downsample) match torchvision's, so state dicts load
    into ``BasicBlock`` and back.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        norm: str = "batch",
        groups: int = 8,
        skip: bool = True,
    ) -> None:
        super().__init__()
        if norm not in NORM_KINDS:
            raise ValueError(f"norm must be one of {NORM_KINDS}, got {norm!r}")
        if stride < 1:
            raise ValueError(f"stride must be a positive int, got {stride}")
        conv_bias = norm == "none"
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=conv_bias)
        self.bn1 = make_norm(norm, out_channels, groups)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=conv_bias)
        self.bn2 = make_norm(norm, out_channels, groups)
        self.skip = skip
        self.downsample: nn.Module | None = None
        if skip and (stride != 1 or in_channels != out_channels):
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=conv_bias),
                make_norm(norm, out_channels, groups),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)
