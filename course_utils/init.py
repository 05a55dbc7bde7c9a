"""Initialisation the recipe asks for: a final bias that predicts the data, the LSTM forget gate,
He init.

Every function mutates the module it is given in place (under ``torch.no_grad()``, so parameters
stay leaf ``nn.Parameter``s on their device and dtype) and returns it, so calls can be chained.
Values are written with ``fill_``/``copy_`` from tensors made on the parameter's device, so the same
code works on cuda, mps and meta.

Sources: Karpathy, *A Recipe for Training Neural Networks* (2019), "init well"; Lin et al., *Focal
Loss* (2017) §4.1, the prior-probability bias; Jozefowicz et al. (2015) and Gers et al. (2000),
forget bias 1; He et al., *Delving Deep into Rectifiers* (2015).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

LSTM_GATES = ("input", "forget", "cell", "output")  # row order of PyTorch's LSTM weights and biases
_KAIMING_MODES = ("fan_in", "fan_out")
_KAIMING_NONLINEARITIES = ("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu")
_INIT_TARGETS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

PriorsLike = torch.Tensor | Sequence[float] | float


def _require_bias(layer: nn.Module) -> torch.Tensor:
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"layer must be an nn.Linear, got {type(layer).__name__}")
    if layer.bias is None:
        raise ValueError("layer has no bias (built with bias=False); nothing to initialise")
    return layer.bias


def _scale_weight(layer: nn.Linear, weight_scale: float | None) -> None:
    if weight_scale is not None:
        if weight_scale < 0:
            raise ValueError(f"weight_scale must be >= 0 or None, got {weight_scale}")
        layer.weight.mul_(weight_scale)


def init_final_bias_from_priors(
    layer: nn.Linear, priors: PriorsLike, weight_scale: float | None = None
) -> nn.Linear:
    """Set the output layer's bias so that, before training, it predicts the class priors.

    Multi-class (``layer.out_features == C > 1``, softmax): b_c = ln(p_c) with
    p = priors / Σ priors, so softmax(b) = p. Binary with a single logit (``out_features == 1``,
    sigmoid): priors is the positive rate π and b = ln(π / (1 - π)), so σ(b) = π (π = 0.01 gives
    RetinaNet's b = -4.595). Either way, once the weights are small the initial loss is the entropy
    of the prior, -Σ p_c ln p_c (0.325 nats for π = 0.1 instead of ln 2 = 0.693), not ln C.

    Args:
        layer: the final ``nn.Linear``; modified in place.
        priors: multi-class: C positive class frequencies or counts (tensor or sequence; normalised
            here). Binary: a float π in (0, 1) (or a one-element tensor/sequence).
        weight_scale: if given, the weights are multiplied by it (e.g. 0.01, or 0 to zero them), so
            that W·h is small next to the bias and the initial predictions really are the priors.

    Returns:
        ``layer``.

    Raises:
        ValueError: no bias, wrong number of priors, non-positive priors, π outside (0, 1).
    """
    bias = _require_bias(layer)
    p = torch.as_tensor(priors, dtype=bias.dtype, device=bias.device).flatten()
    check_values = p.device.type != "meta"
    if layer.out_features == 1:
        if p.numel() != 1:
            raise ValueError(
                f"a single-logit (binary) layer needs one prior, the positive rate π, got "
                f"{p.numel()} values"
            )
        if check_values and not bool(((p > 0) & (p < 1)).all()):
            raise ValueError(f"the positive rate π must be in (0, 1), got {float(p[0])}")
        value = torch.log(p / (1 - p))
    else:
        if p.numel() != layer.out_features:
            raise ValueError(
                f"priors must have one value per output ({layer.out_features}), got {p.numel()}"
            )
        if check_values and not bool((p > 0).all()):
            raise ValueError(
                f"priors must all be > 0 (a class with prior 0 has bias -inf), got {p}"
            )
        value = torch.log(p / p.sum())
    with torch.no_grad():
        bias.copy_(value)
        _scale_weight(layer, weight_scale)
    return layer


def init_final_bias_for_regression(
    layer: nn.Linear,
    target_mean: float | Sequence[float] | torch.Tensor,
    weight_scale: float | None = None,
) -> nn.Linear:
    """Set a regression head's bias to the target mean ("mean of 50 ... initialize the final bias
    to 50"), so the initial MSE is about Var(y) instead of mean² + Var(y).

    Args:
        layer: the final ``nn.Linear``; modified in place.
        target_mean: a scalar (every output), or one value per output (shape (out_features,)).
        weight_scale: if given, the weights are multiplied by it (as in
            ``init_final_bias_from_priors``).

    Returns:
        ``layer``.
    """
    bias = _require_bias(layer)
    value = torch.as_tensor(target_mean, dtype=bias.dtype, device=bias.device)
    if value.numel() not in (1, layer.out_features):
        raise ValueError(
            f"target_mean must be a scalar or have one value per output ({layer.out_features}), "
            f"got shape {tuple(value.shape)}"
        )
    with torch.no_grad():
        bias.copy_(value.reshape(-1).expand(layer.out_features))
        _scale_weight(layer, weight_scale)
    return layer


def _lstm_bias_pairs(lstm: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{suffix: (bias_ih, bias_hh)} for every layer and direction: "l0", "l0_reverse", ... for
    ``nn.LSTM``, "cell" for ``nn.LSTMCell``."""
    if not isinstance(lstm, (nn.LSTM, nn.LSTMCell)):
        raise ValueError(f"expected an nn.LSTM or nn.LSTMCell, got {type(lstm).__name__}")
    if not lstm.bias:
        raise ValueError(
            "this LSTM was built with bias=False, so it has no forget-gate bias to set; build it "
            "with bias=True"
        )
    params = dict(lstm.named_parameters())
    pairs = {}
    for name, bias_ih in params.items():
        if name.startswith("bias_ih"):
            suffix = name[len("bias_ih") :]
            pairs[suffix.lstrip("_") or "cell"] = (bias_ih, params["bias_hh" + suffix])
    return pairs


def effective_gate_biases(lstm: nn.LSTM | nn.LSTMCell) -> dict[str, torch.Tensor]:
    """The biases each gate actually sees, b_ih + b_hh, as a (4, H) tensor (rows i, f, g, o) per
    layer and direction: keys "l0", "l0_reverse", "l1", ... (``nn.LSTM``) or "cell"
    (``nn.LSTMCell``)."""
    hidden = lstm.hidden_size
    return {
        key: (b_ih + b_hh).detach().view(4, hidden)
        for key, (b_ih, b_hh) in _lstm_bias_pairs(lstm).items()
    }


def effective_forget_bias(lstm: nn.LSTM | nn.LSTMCell) -> dict[str, torch.Tensor]:
    """b_if + b_hf (shape (H,)) per layer and direction, keyed as in ``effective_gate_biases``."""
    return {key: gates[1] for key, gates in effective_gate_biases(lstm).items()}


def set_lstm_forget_bias(lstm: nn.LSTM | nn.LSTMCell, value: float = 1.0) -> nn.LSTM | nn.LSTMCell:
    """Make the effective forget-gate bias b_if + b_hf equal ``value`` in every layer and direction.

    PyTorch's LSTM computes f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf) with two bias vectors
    per layer; the gate rows are ordered i, f, g, o, so the forget slice is [H:2H]. This sets
    bias_ih[H:2H] = value and bias_hh[H:2H] = 0 (for ``_reverse`` parameters too) and leaves the
    other gates' biases as they were. Filling both vectors with 1 (a popular snippet) gives
    2, not 1.

    Args:
        lstm: ``nn.LSTM`` (any num_layers, bidirectional, proj_size) or ``nn.LSTMCell``; modified in
            place.
        value: the effective forget bias; 1 (Gers et al., Jozefowicz et al.) or 2.

    Returns:
        ``lstm``.

    Raises:
        ValueError: not an LSTM, or built with bias=False.
    """
    hidden = lstm.hidden_size if isinstance(lstm, (nn.LSTM, nn.LSTMCell)) else 0
    forget = slice(hidden, 2 * hidden)
    with torch.no_grad():
        for b_ih, b_hh in _lstm_bias_pairs(lstm).values():
            b_ih[forget].fill_(value)
            b_hh[forget].zero_()
    return lstm


def he_init_(
    module: nn.Module,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    distribution: str = "normal",
) -> nn.Module:
    """He (Kaiming) initialisation of every Linear and Conv1d/2d/3d inside ``module``; biases to 0.

    std = gain / sqrt(fan), gain = sqrt(2) for ReLU, so Var(W) = 2 / fan_in keeps activation
    variance constant through ReLU layers (``mode="fan_out"`` keeps gradient variance instead, as
    torchvision's ResNets do). PyTorch's default init is U(±1/sqrt(fan_in)), which is not He.

    Args:
        module: a layer or a whole model; modified in place.
        mode: ``"fan_in"`` or ``"fan_out"``.
        nonlinearity: the activation that follows, for the gain: relu, leaky_relu, linear, tanh,
            sigmoid or selu.
        distribution: ``"normal"`` (``nn.init.kaiming_normal_``) or ``"uniform"``.

    Returns:
        ``module``.
    """
    if mode not in _KAIMING_MODES:
        raise ValueError(f"mode must be one of {_KAIMING_MODES}, got {mode!r}")
    if nonlinearity not in _KAIMING_NONLINEARITIES:
        raise ValueError(
            f"nonlinearity must be one of {_KAIMING_NONLINEARITIES}, got {nonlinearity!r}"
        )
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
    init = nn.init.kaiming_normal_ if distribution == "normal" else nn.init.kaiming_uniform_
    for layer in module.modules():
        if isinstance(layer, _INIT_TARGETS):
            init(layer.weight, a=0.0, mode=mode, nonlinearity=nonlinearity)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
