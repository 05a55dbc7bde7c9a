"""course_utils.easy_negatives: off-centre crops, the dense one-vs-rest set, where the loss comes from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.data.registry import Split
from course_utils.easy_negatives import (
    cumulative_loss_share,
    dense_one_vs_rest,
    easy_negative_share,
    off_centre_shifts,
    per_example_loss,
    shifted_crops,
)
from course_utils.losses import sigmoid_focal_loss


def test_shifted_crops_match_torch_roll_with_zero_fill() -> None:
    images = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5) + 1
    out = shifted_crops(images, torch.tensor([[1, -2], [0, 0]]))
    expected = torch.roll(images[0], shifts=(1, -2), dims=(1, 2))
    expected[:, 0, :] = 0  # rows that came from above the image
    expected[:, :, -2:] = 0  # columns that came from the right of it
    torch.testing.assert_close(out[0], expected)
    torch.testing.assert_close(out[1], images[1])
    assert (shifted_crops(images, torch.tensor([[4, 0], [0, -5]])) == 0).all()  # shifted out


def test_off_centre_shifts_respect_the_minimum() -> None:
    shifts = off_centre_shifts(2000, 28, 28, 0.5, torch.Generator().manual_seed(0))
    assert shifts.shape == (2000, 2)
    far = (shifts[:, 0].abs() >= 14) | (shifts[:, 1].abs() >= 14)
    assert far.all() and shifts.abs().max() <= 28


def test_dense_one_vs_rest_labels_only_centred_positives() -> None:
    images = torch.rand(30, 1, 8, 8)
    labels = torch.arange(30) % 3
    dense = dense_one_vs_rest(Split(images, labels), positive=1, crops_per_image=4)
    assert len(dense) == 30 * 5
    torch.testing.assert_close(dense.images[:30], images)
    torch.testing.assert_close(dense.labels[:30], (labels == 1).float())
    assert dense.labels[30:].sum() == 0
    assert len(dense_one_vs_rest(Split(images, labels), 1, crops_per_image=2, max_images=10)) == 30
    with pytest.raises(ValueError):
        dense_one_vs_rest(Split(images, labels), 1, min_shift=0)


def test_per_example_loss_is_bce_at_gamma_zero_and_focal_otherwise() -> None:
    logits, targets = torch.randn(50), (torch.rand(50) < 0.3).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(per_example_loss(logits, targets, 0.0), bce)
    torch.testing.assert_close(
        per_example_loss(logits, targets, 2.0),
        sigmoid_focal_loss(logits, targets, reduction="none"),
    )


def test_focal_loss_takes_the_share_of_easy_negatives_away() -> None:
    # 1,000 easy negatives at p = 0.01 and 10 positives at p = 0.5: BCE is dominated by the negatives.
    logits = torch.cat([torch.full((1000,), -4.595), torch.zeros(10)])
    targets = torch.cat([torch.zeros(1000), torch.ones(10)])
    bce_share = easy_negative_share(logits, targets, gamma=0.0)
    expected = 1000 * 0.01005 / (1000 * 0.01005 + 10 * np.log(2))
    assert bce_share == pytest.approx(expected, rel=1e-3)
    assert easy_negative_share(logits, targets, gamma=2.0) < 0.01 < 0.5 < bce_share


def test_cumulative_loss_share_runs_from_easiest_to_one() -> None:
    logits = torch.tensor([-5.0, -1.0, 0.0, 2.0, 3.0])
    targets = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    fraction, share = cumulative_loss_share(logits, targets, gamma=0.0)
    np.testing.assert_allclose(fraction, [0.25, 0.5, 0.75, 1.0])
    assert share[-1] == pytest.approx(1.0) and (np.diff(share) >= 0).all()
    _, focal = cumulative_loss_share(logits, targets, gamma=2.0)
    assert focal[1] < share[1]  # focal loss moves the loss towards the hardest negatives


def test_plot_cumulative_loss_draws_one_curve_per_gamma() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils.easy_negatives import plot_cumulative_loss

    fig, ax = plt.subplots()
    plot_cumulative_loss(torch.randn(40), (torch.rand(40) < 0.2).float(), (0.0, 1.0, 2.0), ax=ax)
    assert len(ax.lines) == 3 and ax.lines[0].get_ydata()[-1] == pytest.approx(1.0)
    plt.close(fig)


def test_per_positive_divides_the_sum_by_the_positives() -> None:
    from course_utils.easy_negatives import per_positive

    logits, targets = torch.randn(20), torch.zeros(20)
    targets[:4] = 1
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    loss = per_positive(bce)(logits, targets)
    torch.testing.assert_close(loss, bce(logits, targets, reduction="sum") / 4)
    no_positive = per_positive(bce)(logits, torch.zeros(20))  # divided by 1, not 0
    torch.testing.assert_close(no_positive, bce(logits, torch.zeros(20), reduction="sum"))
