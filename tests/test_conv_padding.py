"""conv_stack's sizes under both paddings, the random-feature probe, and rank concordance."""

from __future__ import annotations

import pytest
import torch

from course_utils.conv_padding import (
    concordance,
    conv_stack,
    frozen_features,
    random_feature_probe,
    spatial_sizes,
)
from course_utils.data import Split


def test_valid_padding_shrinks_every_layer_by_kernel_minus_one_and_same_keeps_the_size() -> None:
    valid = conv_stack("valid", 4, side=14, kernel=3)
    same = conv_stack("same", 4, side=14, kernel=3)
    assert spatial_sizes(valid, (1, 14, 14)) == [12, 10, 8, 6]
    assert spatial_sizes(same, (1, 14, 14)) == [14, 14, 14, 14]
    assert spatial_sizes(conv_stack("valid", 2, side=28, kernel=5), (1, 28, 28)) == [24, 20]
    x = torch.randn(2, 1, 14, 14)
    assert valid(x).shape == same(x).shape == (2, 10)
    assert valid[-1].in_features == 8 * 6 * 6 and same[-1].in_features == 8 * 14 * 14


def test_spatial_sizes_leaves_the_model_where_it_was() -> None:
    model = conv_stack("same", 2, side=14)
    spatial_sizes(model, (1, 14, 14))
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


def test_too_many_valid_layers_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 6"):
        conv_stack("valid", 7, side=14, kernel=3)
    conv_stack("same", 20, side=14, kernel=3)  # same padding has no depth limit
    with pytest.raises(ValueError, match="padding"):
        conv_stack("full", 2)
    with pytest.raises(ValueError, match="odd"):
        conv_stack("same", 2, kernel=4)


def blobs(n: int, seed: int) -> Split:
    """Two classes of 8x8 images: a bright square top-left or bottom-right, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    images[labels == 0, :, :4, :4] += 1.0
    images[labels == 1, :, 4:, 4:] += 1.0
    return Split(images, labels)


def test_the_random_feature_probe_learns_an_easy_task_without_touching_the_model() -> None:
    torch.manual_seed(0)
    model = conv_stack("same", 2, side=8, num_classes=2)
    before = [p.detach().clone() for p in model.parameters()]
    accuracy = random_feature_probe(model, blobs(200, 0), blobs(200, 1), 2)
    assert accuracy > 0.95
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert frozen_features(model, blobs(5, 2).images).shape == (5, 8 * 8 * 8)


def test_concordance_counts_pairs_ordered_alike() -> None:
    first = {"a": 0.9, "b": 0.8, "c": 0.7}
    assert concordance(first, {"a": 0.5, "b": 0.4, "c": 0.1}) == [1.0, 1.0, 1.0]
    assert concordance(first, {"a": 0.1, "b": 0.4, "c": 0.5}) == [0.0, 0.0, 0.0]
    assert concordance(first, {"a": 0.5, "b": 0.5, "c": 0.6}) == [0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="same items"):
        concordance(first, {"a": 1.0})
