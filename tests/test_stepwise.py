"""course_utils.stepwise: the per-step training loop and its whole-split probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import Split
from course_utils.stepwise import train_steps, whole_split_loss


def _blobs(n: int = 96, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randn(n, 1, 2, 2, generator=g) * 0.3 + labels.view(-1, 1, 1, 1).float()
    return Split(images, labels)


def _model(outputs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, outputs))


def test_one_loss_per_step_and_a_probe_every_k_steps_before_the_update() -> None:
    split, model = _blobs(), _model()
    untrained = whole_split_loss(split)(model)
    losses, probes = train_steps(model, split, 10, probe=whole_split_loss(split), every=3)
    assert len(losses) == 10 and all(isinstance(v, float) for v in losses)
    assert len(probes) == 4  # steps 0, 3, 6, 9
    assert probes[0] == pytest.approx(untrained)  # taken before the first update


def test_the_loss_goes_down_on_separable_data() -> None:
    split = _blobs()
    losses, probes = train_steps(
        _model(), split, 60, lr=1e-2, batch_size=32, probe=whole_split_loss(split), every=59
    )
    assert probes[-1] < 0.5 * probes[0]


def test_the_same_seed_gives_the_same_run_and_another_seed_another_order() -> None:
    split = _blobs()
    a, _ = train_steps(_model(), split, 8, seed=1, batch_size=16)
    b, _ = train_steps(_model(), split, 8, seed=1, batch_size=16)
    c, _ = train_steps(_model(), split, 8, seed=2, batch_size=16)
    assert a == b and a != c


def test_probe_matches_the_loss_over_the_whole_split_in_eval_mode() -> None:
    split, model = _blobs(), _model()
    model.train()
    with torch.no_grad():
        expected = float(F.cross_entropy(model(split.images), split.labels))
    assert whole_split_loss(split)(model) == pytest.approx(expected, rel=1e-6)
    assert model.training  # the mode is restored


def test_single_output_models_are_squeezed_for_regression() -> None:
    split = _blobs()
    regression = Split(split.images, split.labels.float())
    losses, probes = train_steps(
        _model(1), regression, 5, loss_fn=F.mse_loss, probe=whole_split_loss(regression, F.mse_loss)
    )
    assert len(losses) == 5 and len(probes) == 5


@pytest.mark.parametrize(
    "kwargs", [{"steps": -1}, {"steps": 2, "batch_size": 0}, {"steps": 2, "every": 0}]
)
def test_bad_arguments_are_refused(kwargs) -> None:
    steps = kwargs.pop("steps")
    with pytest.raises(ValueError):
        train_steps(_model(), _blobs(), steps, **kwargs)
