"""Tests of course_utils.confident_learning against a plain-Python reading of the paper's definition."""

from __future__ import annotations

import pytest
import torch

from course_utils.confident_learning import class_thresholds, label_issues


def _reference(p: list[list[float]], y: list[int]) -> list[bool]:
    k = len(p[0])
    t = [
        sum(row[j] for row, label in zip(p, y, strict=True) if label == j)
        / sum(label == j for label in y)
        for j in range(k)
    ]
    issues = []
    for row, label in zip(p, y, strict=True):
        above = [j for j in range(k) if row[j] >= t[j]]
        guess = max(above, key=lambda j: row[j]) if above else None
        issues.append(guess is not None and guess != label)
    return issues


def test_thresholds_are_mean_self_confidence_per_class():
    p = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]])
    torch.testing.assert_close(
        class_thresholds(p, torch.tensor([0, 0, 1])), torch.tensor([0.8, 0.8])
    )


@pytest.mark.parametrize("seed", range(5))
def test_label_issues_match_the_definition(seed):
    gen = torch.Generator().manual_seed(seed)
    p = torch.softmax(3 * torch.randn(60, 4, generator=gen), dim=1)
    y = torch.arange(60) % 4
    assert label_issues(p, y).tolist() == _reference(p.tolist(), y.tolist())


def test_a_confidently_other_example_is_an_issue_and_an_unsure_one_is_not():
    p = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.1, 0.9], [0.97, 0.03], [0.5, 0.5]])
    y = torch.tensor([0, 0, 1, 1, 1])  # example 3 looks like a 0; example 4 is unsure
    assert label_issues(p, y).tolist() == [False, False, False, True, False]


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="labels"):
        label_issues(torch.rand(4, 3), torch.zeros(3, dtype=torch.long))
