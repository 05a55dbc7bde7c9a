"""Stage 3's model zoo: shapes, parameter counts, what the shortcuts do, and the He option."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.zoo import LeNet5, ResidualMLP, architecture_candidates, deep_plain_mlp


def test_lenet5_has_the_papers_parameter_count_and_shape() -> None:
    model = LeNet5(1, 10, 28, 28)
    assert sum(p.numel() for p in model.parameters()) == 61_706
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert LeNet5(3, 5, 32, 32)(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="16x16"):
        LeNet5(1, 10, 8, 8)


def test_residual_mlp_with_silent_blocks_is_the_stem_and_head_alone() -> None:
    torch.manual_seed(0)
    model = ResidualMLP(4, 8, skip=True, in_features=12, num_classes=3)
    for block in model.blocks:
        nn.init.zeros_(block[1].weight)
        nn.init.zeros_(block[1].bias)
    x = torch.randn(5, 12)
    expected = model.head(model.stem(x))
    torch.testing.assert_close(model(x), expected)
    plain = ResidualMLP(4, 8, skip=False, in_features=12, num_classes=3)
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain(x), plain.head(torch.zeros(5, 8)))


def test_candidates_come_most_modern_first_and_lenet_needs_large_enough_images() -> None:
    assert list(architecture_candidates(10, 1, 28, 28)) == ["ResNet-18", "ResNetSmall", "LeNet-5"]
    assert "LeNet-5" not in architecture_candidates(10, 1, 8, 8)
    assert architecture_candidates(10, 1, 28, 28)["LeNet-5"]()(torch.randn(1, 1, 28, 28)).shape == (
        1,
        10,
    )


def test_deep_plain_mlp_he_option_gives_variance_two_over_fan_in() -> None:
    torch.manual_seed(0)
    default = deep_plain_mlp(3, 512, "relu", 512, 10)
    he = deep_plain_mlp(3, 512, "relu", 512, 10, he=True)
    layer = [m for m in he.modules() if isinstance(m, nn.Linear)][1]
    assert float(layer.weight.detach().var()) == pytest.approx(2 / 512, rel=0.05)
    assert float(layer.bias.abs().max()) == 0.0
    default_layer = [m for m in default.modules() if isinstance(m, nn.Linear)][1]
    assert float(default_layer.weight.detach().var()) == pytest.approx(1 / (3 * 512), rel=0.05)
