"""course_utils.models: shapes on MNIST- and CIFAR-sized input, parameter counts, a training step,
meta-device construction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.init import effective_forget_bias
from course_utils.layers import Dropout, Dropout2d, ResidualBlock
from course_utils.models import (
    MLP,
    PlainNetSmall,
    ResNetSmall,
    SequenceLSTM,
    SmallCNN,
    deep_mlp,
    make_activation,
    resnet18_for_small_images,
)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _images(channels: int, size: int, n: int = 4) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(0))


IMAGE_MODELS = {
    "MLP": lambda c, s: MLP(in_features=c * s * s),
    "SmallCNN": lambda c, s: SmallCNN(in_channels=c),
    "SmallCNN-group": lambda c, s: SmallCNN(in_channels=c, norm="group", keep_prob=0.8),
    "ResNetSmall": lambda c, s: ResNetSmall(in_channels=c),
    "PlainNetSmall": lambda c, s: PlainNetSmall(in_channels=c),
    "deep_mlp": lambda c, s: deep_mlp(5, 32, "tanh", in_features=c * s * s),
}


@pytest.mark.parametrize("name", list(IMAGE_MODELS))
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_image_models_give_one_logit_per_class(name, channels, size):
    model = IMAGE_MODELS[name](channels, size)
    assert model(_images(channels, size)).shape == (4, 10)


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_resnet18_for_small_images_keeps_resolution_in_the_stem(channels, size):
    model = resnet18_for_small_images(num_classes=7, in_channels=channels).eval()
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    with torch.no_grad():
        assert model(_images(channels, size, n=2)).shape == (2, 7)


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (MLP, 203_530),
        (SmallCNN, 29_178),
        (lambda: SmallCNN(norm="group"), 29_178),
        (lambda: SmallCNN(norm="none"), 29_066),
        (lambda: SmallCNN(in_channels=3), 29_466),
        (lambda: SmallCNN(pool_size=1), 24_058),
        (ResNetSmall, 77_754),
        (lambda: ResNetSmall(in_channels=3), 78_042),
        (lambda: ResNetSmall(blocks_per_stage=2), 174_970),
        (PlainNetSmall, 75_002),
        (lambda: deep_mlp(10, 64), 88_330),
        (lambda: resnet18_for_small_images(), 11_172_810),
        (lambda: resnet18_for_small_images(in_channels=3), 11_173_962),
        (lambda: SequenceLSTM(28, 64, 1, 10), 24_714),
    ],
)
def test_parameter_counts_match_the_docstrings(make, count):
    assert _count(make()) == count


def test_deep_mlp_formula_for_its_parameter_count():
    depth, width = 7, 48
    expected = 784 * width + width + (depth - 1) * (width * width + width) + 10 * width + 10
    assert _count(deep_mlp(depth, width)) == expected
    assert sum(isinstance(m, nn.Linear) for m in deep_mlp(depth, width).modules()) == depth + 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLP(hidden=(64,), dropout_keep=(0.8, 0.5)),
        lambda: SmallCNN(width=8),
        lambda: ResNetSmall(widths=(8, 16), norm="group", groups=4),
        lambda: PlainNetSmall(widths=(8, 16)),
        lambda: deep_mlp(3, 32, "leaky_relu"),
    ],
)
def test_a_few_training_steps_reduce_the_loss_on_one_batch(make):
    torch.manual_seed(0)
    model = make()
    x, y = _images(1, 28, n=8), torch.arange(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: MLP(dropout_keep=0.5), (2, 1, 28, 28)),
        (lambda: SmallCNN(norm="group", keep_prob=0.8), (2, 1, 28, 28)),
        (lambda: ResNetSmall(in_channels=3), (2, 3, 32, 32)),
        (lambda: PlainNetSmall(), (2, 1, 28, 28)),
        (lambda: deep_mlp(4, 16), (2, 1, 28, 28)),
        (lambda: resnet18_for_small_images(), (2, 1, 28, 28)),
        (lambda: SequenceLSTM(28, 16, 2, 10, forget_bias=1.0), (2, 1, 28, 28)),
    ],
)
def test_models_build_and_run_on_the_meta_device(make, shape):
    with torch.device("meta"):
        model = make()
    assert all(p.device.type == "meta" for p in model.parameters())
    out = model(torch.empty(shape, device="meta"))
    assert out.device.type == "meta" and out.shape[0] == 2


def test_small_cnn_runs_under_bfloat16_autocast():
    model = SmallCNN().eval()
    x = _images(1, 28)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x)
    with torch.no_grad():
        full = model(x)
    torch.testing.assert_close(low.float(), full, rtol=0.1, atol=0.1)


def test_mlp_dropout_uses_keep_probabilities():
    model = MLP(hidden=(32, 16), dropout_keep=(0.8, 0.5))
    keeps = [m.keep_prob for m in model.modules() if isinstance(m, Dropout)]
    assert keeps == [0.8, 0.5, 0.5]
    assert [m.keep_prob for m in MLP(dropout_keep=0.5).modules() if isinstance(m, Dropout)] == [0.5]
    assert not any(isinstance(m, Dropout) for m in MLP().modules())
    model.eval()
    x = _images(1, 28)
    torch.testing.assert_close(model(x), model(x))


def test_small_cnn_options():
    model = SmallCNN(keep_prob=0.7, norm="group")
    assert sum(isinstance(m, Dropout2d) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.GroupNorm) for m in model.modules()) == 3
    assert SmallCNN(norm="none").features[0].bias is not None
    with pytest.raises(ValueError, match="norm must be one of"):
        SmallCNN(norm="layer")


def test_resnet_small_structure_and_zero_init():
    model = ResNetSmall(widths=(8, 16, 32), blocks_per_stage=2, zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 6
    assert [b.conv1.stride[0] for b in blocks] == [1, 1, 2, 1, 2, 1]
    assert all(bool((b.bn2.weight == 0).all()) for b in blocks)
    x = _images(1, 28)
    with torch.no_grad():  # every block starts as the identity, up to the final ReLU
        stem = model.stem(x)
        torch.testing.assert_close(blocks[0](stem), F.relu(stem))
    with pytest.raises(ValueError, match="at least one stage"):
        ResNetSmall(widths=())


def test_plain_net_has_the_same_layers_without_shortcuts():
    plain, residual = PlainNetSmall(), ResNetSmall()
    plain_blocks = [m for m in plain.modules() if isinstance(m, ResidualBlock)]
    assert all(not b.skip and b.downsample is None for b in plain_blocks)
    projections = sum(
        _count(b.downsample)
        for b in residual.modules()
        if isinstance(b, ResidualBlock) and b.downsample is not None
    )
    assert _count(residual) - _count(plain) == projections


def test_sequence_lstm_reads_sequences_and_images_row_by_row():
    model = SequenceLSTM(28, 16, num_layers=2, output_size=10)
    images = _images(1, 28, n=3)
    torch.testing.assert_close(model(images), model(images[:, 0]))
    adding = SequenceLSTM(2, 8)
    assert adding(torch.randn(5, 50, 2)).shape == (5, 1)
    with pytest.raises(ValueError, match="expected \\(N, T, input_size\\)"):
        adding(torch.randn(5, 2))


def test_sequence_lstm_forget_bias_option():
    model = SequenceLSTM(3, 8, num_layers=2, forget_bias=1.0)
    for value in effective_forget_bias(model.lstm).values():
        torch.testing.assert_close(value, torch.ones(8))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "gelu"])
def test_activations_by_name(name):
    assert isinstance(make_activation(name), nn.Module)
    assert deep_mlp(2, 8, name)(_images(1, 28)).shape == (4, 10)


def test_bad_activation_and_depth_raise():
    with pytest.raises(ValueError, match="activation must be one of .*got 'swish'"):
        make_activation("swish")
    with pytest.raises(ValueError, match="depth and width must be >= 1, got depth=0"):
        deep_mlp(0, 8)
