"""course_utils.paired_images: per-image outcomes of two models, paired by image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import Split
from course_utils.evidence import compare_paired
from course_utils.paired_images import compare_models, per_image_correct, per_image_loss


class Fixed(nn.Module):
    """A 'model' that returns stored logits for the stored images (by position)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x[:, 0, 0, 0].long()]


def _split(n: int = 40) -> Split:
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    return Split(images, torch.arange(n) % 3)


def test_correct_and_loss_are_per_image() -> None:
    split = _split()
    logits = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    model = Fixed(logits)
    np.testing.assert_array_equal(
        per_image_correct(model, split), (logits.argmax(1) == split.labels).double().numpy()
    )
    loss = per_image_loss(model, split)
    assert loss.shape == (40,)
    assert loss.mean() == pytest.approx(float(F.cross_entropy(logits.double(), split.labels)))


def test_compare_models_is_compare_paired_on_the_images() -> None:
    split = _split()
    g = torch.Generator().manual_seed(1)
    a, b = Fixed(torch.randn(40, 3, generator=g)), Fixed(torch.randn(40, 3, generator=g))
    got = compare_models(b, a, split, min_effect=0.01)
    want = compare_paired(per_image_correct(b, split), per_image_correct(a, split), min_effect=0.01)
    assert got == want
    lower = compare_models(b, a, split, min_effect=0.05, metric="loss", better="lower")
    assert lower.effect == pytest.approx(
        per_image_loss(b, split).mean() - per_image_loss(a, split).mean()
    )
    with pytest.raises(ValueError):
        compare_models(b, a, split, min_effect=0.01, metric="auc")


def test_a_model_that_is_always_right_holds_against_one_that_is_always_wrong() -> None:
    split = _split(30)
    right = torch.nn.functional.one_hot(split.labels, 3).float() * 5
    wrong = torch.nn.functional.one_hot((split.labels + 1) % 3, 3).float() * 5
    cmp = compare_models(Fixed(right), Fixed(wrong), split, min_effect=0.01)
    assert cmp.effect == 1.0 and cmp.verdict == "holds"
