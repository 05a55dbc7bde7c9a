"""course_utils.subsets: stratified subsets are balanced, seeded and shuffled."""

from __future__ import annotations

import pytest
import torch

from course_utils.data import Split
from course_utils.subsets import class_range, joined, stratified, stratified_index


def _sorted_split() -> Split:
    labels = torch.arange(5).repeat_interleave(20)  # sorted by class, as stored
    return Split(torch.arange(100.0).view(100, 1, 1, 1), labels)


def test_stratified_is_balanced_seeded_and_mixed() -> None:
    split = _sorted_split()
    index = stratified_index(split, 4, seed=0)
    assert torch.bincount(split.labels[index], minlength=5).tolist() == [4] * 5
    assert len(set(index.tolist())) == 20
    assert torch.equal(index, stratified_index(split, 4, seed=0))
    assert not torch.equal(index, stratified_index(split, 4, seed=1))
    assert not torch.equal(split.labels[index], split.labels[index].sort().values)
    assert len(stratified(split, 50)) == 100  # a class with fewer gives all of it
    with pytest.raises(ValueError):
        stratified_index(split, 0)


def test_class_range_relabels_and_joined_concatenates() -> None:
    split = _sorted_split()
    upper = class_range(split, 2, 5)
    assert len(upper) == 60 and upper.labels.min() == 0 and upper.labels.max() == 2
    both = joined(upper, class_range(split, 0, 1))
    assert len(both) == 80 and torch.equal(both.images[:60], upper.images)
