"""softmax_mse against its formula, and the saturation it is taught for: a dying gradient."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.output_saturation import logit_gradient_norms, softmax_mse


def test_softmax_mse_is_the_summed_squared_error_of_the_probabilities() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    p = logits.softmax(dim=1)
    by_hand = ((p[0] - torch.tensor([1.0, 0, 0])) ** 2).sum() + (
        (p[1] - torch.tensor([0, 0, 1.0])) ** 2
    ).sum()
    assert float(softmax_mse(logits, labels)) == pytest.approx(float(by_hand) / 2, rel=1e-6)


def test_softmax_mse_is_zero_for_a_confident_right_answer_and_two_for_a_confident_wrong_one() -> (
    None
):
    right = softmax_mse(torch.tensor([[50.0, 0.0, 0.0]]), torch.tensor([0]))
    wrong = softmax_mse(torch.tensor([[50.0, 0.0, 0.0]]), torch.tensor([1]))
    assert float(right) == pytest.approx(0.0, abs=1e-12)
    assert float(wrong) == pytest.approx(2.0, abs=1e-6)


def test_the_mse_gradient_vanishes_when_confidently_wrong_while_cross_entropys_does_not() -> None:
    margins = [0.0, 5.0, 10.0, 20.0]
    ce = logit_gradient_norms(F.cross_entropy, margins)
    mse = logit_gradient_norms(softmax_mse, margins)
    assert ce[-1] == pytest.approx(math.sqrt(2), rel=1e-6)  # p - t -> (-1, +1, 0, ...)
    assert mse[-1] < 1e-6 < ce[-1]
    assert all(a > b for a, b in zip(mse, mse[1:], strict=False))  # dies as confidence grows
    assert all(a < b for a, b in zip(ce, ce[1:], strict=False))  # grows towards sqrt 2


def test_softmax_mse_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="logits"):
        softmax_mse(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="two classes"):
        logit_gradient_norms(F.cross_entropy, [1.0], num_classes=1)


def test_softmax_mse_runs_on_the_meta_device() -> None:
    out = softmax_mse(
        torch.zeros(4, 3, device="meta"), torch.zeros(4, dtype=torch.long, device="meta")
    )
    assert out.device.type == "meta" and out.shape == ()
