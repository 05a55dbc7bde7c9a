"""The small reference models the stages train.

Every image model takes (N, in_channels, H, W) images and returns (N, num_classes) logits (no
softmax: pair them with ``F.cross_entropy``). Defaults fit 28x28 single-channel images (MNIST,
Fashion-MNIST); ``in_channels=3`` fits 32x32 CIFAR, because every conv model ends in an adaptive
average pool and so does not depend on the image size (``MLP`` takes ``in_features=3 * 32 * 32``).
Parameter counts in the docstrings are measured with the defaults (``tests/test_models.py`` checks
them). Everything is built from ``torch.nn`` and ``course_utils.layers``, so models can be made
on any device, including ``with torch.device("meta"):``.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from course_utils.init import set_lstm_forget_bias
from course_utils.layers import NORM_KINDS, Dropout, Dropout2d, ResidualBlock, make_norm

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")


def make_activation(name: str) -> nn.Module:
    """The activation layer ``name``: relu, leaky_relu (slope 0.01), tanh, sigmoid or gelu."""
    layers = {
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
    }
    if name not in layers:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return layers[name]()


def _check_norm(norm: str) -> None:
    if norm not in NORM_KINDS:
        raise ValueError(f"norm must be one of {NORM_KINDS}, got {norm!r}")


class MLP(nn.Sequential):
    """Flatten -> [Linear -> activation (-> Dropout)] per hidden layer -> Linear.

    Args:
        in_features: size of the flattened input (784 for 28x28x1, 3072 for 32x32x3).
        hidden: widths of the hidden layers; ``()`` gives logistic regression.
        num_classes: number of logits.
        activation: see ``make_activation``.
        dropout_keep: None (no dropout), a keep probability for the hidden layers, or a pair
            ``(input_keep, hidden_keep)``, e.g. the paper's ``(0.8, 0.5)``.

    Parameters with the defaults (784 -> 256 -> 10): 203,530.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: tuple[int, ...] | list[int] = (256,),
        num_classes: int = 10,
        activation: str = "relu",
        dropout_keep: float | tuple[float, float] | None = None,
    ) -> None:
        if isinstance(dropout_keep, (tuple, list)):
            input_keep, hidden_keep = dropout_keep
        else:
            input_keep, hidden_keep = None, dropout_keep
        layers: list[nn.Module] = [nn.Flatten()]
        if input_keep is not None:
            layers.append(Dropout(input_keep))
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), make_activation(activation)]
            if hidden_keep is not None:
                layers.append(Dropout(hidden_keep))
            width = size
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


def _conv_block(in_channels: int, out_channels: int, norm: str, groups: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm == "none"),
        make_norm(norm, out_channels, groups),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """Three conv blocks, a small average pool, one linear layer.

    conv3x3(w) -> norm -> ReLU -> maxpool2 -> conv3x3(2w) -> norm -> ReLU -> maxpool2 ->
    conv3x3(4w) -> norm -> ReLU -> adaptive average pool to pool_size x pool_size ->
    Linear(4w·pool_size², num_classes). With ``keep_prob`` set, channel dropout (``Dropout2d``)
    follows each max-pool. The adaptive pool makes the model independent of the image size.

    Args:
        in_channels: 1 for MNIST-like images, 3 for CIFAR.
        num_classes: number of logits.
        width: channels of the first block (the others use 2x and 4x).
        norm: ``"batch"``, ``"group"`` (``groups`` groups) or ``"none"`` (convs then get a bias).
        keep_prob: None, or the keep probability of the channel dropout.
        groups: groups of the group norm; must divide ``width``.
        pool_size: side of the final average pool; 1 is global average pooling. The default 3
            keeps coarse positions: on 3,500 MNIST images (Adam 3e-3, batch 32) it reached
            96-97% validation accuracy in 3-8 epochs, where global pooling plateaued near 94%.
            One epoch costs about 2 CPU-seconds with one thread.

    Parameters with the defaults: 29,178 (batch or group norm), 29,066 with ``norm="none"``,
    29,466 with ``in_channels=3``; 24,058 with ``pool_size=1``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 16,
        norm: str = "batch",
        keep_prob: float | None = None,
        groups: int = 8,
        pool_size: int = 3,
    ) -> None:
        super().__init__()
        _check_norm(norm)

        def drop() -> list[nn.Module]:
            return [] if keep_prob is None else [Dropout2d(keep_prob)]

        self.features = nn.Sequential(
            *_conv_block(in_channels, width, norm, groups),
            nn.MaxPool2d(2),
            *drop(),
            *_conv_block(width, 2 * width, norm, groups),
            nn.MaxPool2d(2),
            *drop(),
            *_conv_block(2 * width, 4 * width, norm, groups),
            nn.AdaptiveAvgPool2d(pool_size),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width * pool_size**2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _init_resnet_(model: nn.Module) -> None:
    # torchvision's ResNet init: He (fan_out) for convs, norms at gamma = 1, beta = 0.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class ResNetSmall(nn.Module):
    """A small ResNet: stem conv3x3 -> stages of ``ResidualBlock``s -> average pool -> Linear.

    Stage i has ``blocks_per_stage`` blocks of ``widths[i]`` channels; every stage after the first
    starts with a stride-2 block (so 28x28 -> 28, 14, 7). ``skip=False`` gives the same network
    without shortcuts (see ``PlainNetSmall``).

    Args:
        in_channels, num_classes: image channels and number of logits.
        widths: channels per stage.
        blocks_per_stage: residual blocks in each stage (each block holds two 3x3 convs).
        norm: ``"batch"``, ``"group"`` or ``"none"``.
        groups: groups of the group norm.
        zero_init_residual: start each block's last norm at gamma = 0, so every block starts as the
            identity (Goyal et al., 2017).
        skip: keep the shortcuts (True) or drop them (False).

    Parameters with the defaults: 77,754 (78,042 with ``in_channels=3``; ``blocks_per_stage=2``
    gives 174,970). Without shortcuts (``PlainNetSmall``): 75,002.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        norm: str = "batch",
        groups: int = 8,
        zero_init_residual: bool = False,
        skip: bool = True,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if not widths or blocks_per_stage < 1:
            raise ValueError(
                f"need at least one stage and one block per stage, got widths={widths} and "
                f"blocks_per_stage={blocks_per_stage}"
            )
        self.stem = nn.Sequential(*_conv_block(in_channels, widths[0], norm, groups))
        blocks: list[nn.Module] = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(ResidualBlock(channels, width, stride, norm, groups, skip=skip))
                channels = width
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)
        _init_resnet_(self)
        if zero_init_residual and norm != "none":
            for block in self.stages:
                nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))


class PlainNetSmall(ResNetSmall):
    """``ResNetSmall`` with every shortcut removed: the same convs and norms (minus the 1x1
    projections), for the skip-connection experiment. Parameters with the defaults: 75,002."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        norm: str = "batch",
        groups: int = 8,
    ) -> None:
        super().__init__(
            in_channels, num_classes, widths, blocks_per_stage, norm, groups, skip=False
        )


def deep_mlp(
    depth: int,
    width: int = 64,
    activation: str = "sigmoid",
    in_features: int = 784,
    num_classes: int = 10,
) -> nn.Sequential:
    """A plain deep MLP for the vanishing-gradient experiment: Flatten, ``depth`` hidden layers of
    ``width`` units each followed by ``activation``, then Linear(width, num_classes).

    Weights keep PyTorch's default init U(±1/sqrt(fan_in)), so with sigmoid or tanh the gradient
    of the first layers shrinks with depth; compare relu/leaky_relu, or apply ``init.he_init_``.
    Parameters: 784·w + w + (depth - 1)(w² + w) + 10w + 10 (depth 10, width 64: 88,330).
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be >= 1, got depth={depth} and width={width}")
    layers: list[nn.Module] = [nn.Flatten()]
    size = in_features
    for _ in range(depth):
        layers += [nn.Linear(size, width), make_activation(activation)]
        size = width
    layers.append(nn.Linear(size, num_classes))
    return nn.Sequential(*layers)


def resnet18_for_small_images(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """torchvision's ResNet-18 (random init) adapted to 28x28/32x32 images: conv1 becomes a 3x3,
    stride-1 conv over ``in_channels`` and the first max-pool is removed, so the 4 stages see
    28/14/7/4 pixels instead of 7/4/2/1 ("don't be a hero": copy a proven architecture).

    Parameters: 11,172,810 for 1 channel and 10 classes (11,173,962 for 3 channels). Slow on a CPU:
    about 0.5 GFLOP per 28x28 image.
    """
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


class SequenceLSTM(nn.Module):
    """An LSTM reading a sequence, with a linear layer on the last time step.

    Input (N, T, input_size) (batch first). A 4-D image batch (N, C, H, W) is read row by row: T = H
    steps of C·W features (for 28x28x1 MNIST, input_size = 28). Output (N, output_size): logits for
    classification or values for regression (the adding problem, output_size=1).

    Args:
        input_size: features per time step.
        hidden_size: LSTM state size H.
        num_layers: stacked LSTM layers.
        output_size: outputs of the final linear layer.
        forget_bias: if not None, the effective forget-gate bias of every layer
            (``init.set_lstm_forget_bias``); None keeps PyTorch's random init.

    Parameters for (28, 64, 1, 10): 24,714.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        output_size: int = 1,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)
        if forget_bias is not None:
            set_lstm_forget_bias(self.lstm, forget_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            n, c, h, w = x.shape
            x = x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        if x.ndim != 3:
            raise ValueError(
                f"expected (N, T, input_size) sequences or (N, C, H, W) images, got shape "
                f"{tuple(x.shape)}"
            )
        out, _ = self.lstm(x)
        return self.head(out[:, -1])
