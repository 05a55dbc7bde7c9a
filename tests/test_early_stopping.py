"""Early stopping: hand-worked histories; the class and the function agree; best weights kept."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils.early_stopping import EarlyStopping, should_stop


def run(values, **kwargs):
    stopper = EarlyStopping(**kwargs)
    return stopper, [stopper.step(v) for v in values]


def test_stops_after_patience_epochs_without_improvement():
    stopper, decisions = run([1.0, 0.8, 0.85, 0.9, 0.95], patience=2)
    assert decisions == [False, False, False, True, True]
    assert stopper.best == 0.8 and stopper.best_epoch == 1 and stopper.epoch == 4
    assert stopper.epochs_without_improvement == 3 and stopper.should_stop


def test_an_improvement_resets_the_count():
    _, decisions = run([1.0, 1.1, 0.9, 1.0, 1.0, 1.0], patience=3)
    assert decisions == [False, False, False, False, False, True]


def test_equal_values_do_not_improve():
    _, decisions = run([1.0, 1.0, 1.0], patience=2)
    assert decisions == [False, False, True]


def test_min_delta_requires_a_large_enough_improvement():
    stopper, decisions = run([1.0, 0.95, 0.92, 0.85], patience=3, min_delta=0.1)
    assert decisions == [False, False, False, False]
    assert stopper.best == 0.85 and stopper.best_epoch == 3
    _, decisions = run([1.0, 0.95, 0.92, 0.91], patience=3, min_delta=0.1)
    assert decisions[-1]


def test_max_mode_treats_higher_values_as_better():
    stopper, decisions = run([0.5, 0.7, 0.6, 0.65], patience=2, mode="max")
    assert decisions == [False, False, False, True]
    assert stopper.best == 0.7 and stopper.best_epoch == 1


def test_nan_never_improves():
    stopper, decisions = run([1.0, math.nan, math.nan], patience=2)
    assert decisions == [False, False, True] and stopper.best == 1.0


def test_keeps_and_restores_the_best_weights():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    snapshots = []
    for value in [1.0, 0.5, 0.7, 0.8]:
        with torch.no_grad():
            model.weight.add_(1.0)
        snapshots.append(model.weight.detach().clone())
        stopper.step(value, model)
    assert torch.equal(stopper.best_state["weight"], snapshots[1])
    assert not torch.equal(model.weight, snapshots[1])
    assert stopper.restore(model) is model
    assert torch.equal(model.weight, snapshots[1])
    # the saved state is a copy: restoring did not tie it to the model
    with torch.no_grad():
        model.weight.add_(1.0)
    assert torch.equal(stopper.best_state["weight"], snapshots[1])


def test_restore_without_a_saved_state_raises():
    stopper = EarlyStopping()
    stopper.step(1.0)
    with pytest.raises(RuntimeError, match="pass the model to step"):
        stopper.restore(nn.Linear(1, 1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"patience": 2.5}, "patience must be an integer >= 1"),
        ({"min_delta": -0.1}, "min_delta must be >= 0"),
        ({"mode": "lowest"}, "mode must be 'min' or 'max'"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)


def test_should_stop_rejects_bad_arguments():
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        should_stop([1.0], 0)
    with pytest.raises(ValueError, match="min_delta must be >= 0"):
        should_stop([1.0], 1, -0.5)


def test_should_stop_examples():
    assert should_stop([1.0, 0.8, 0.85, 0.9], patience=2)
    assert not should_stop([1.0, 0.8, 0.85], patience=2)
    assert not should_stop([], patience=1)
    assert should_stop([1.0, 0.95, 0.92], patience=2, min_delta=0.1)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(0, 2, allow_nan=False), max_size=30),
    patience=st.integers(1, 5),
    min_delta=st.sampled_from([0.0, 0.01, 0.1]),
)
def test_should_stop_equals_the_class_on_every_prefix(values, patience, min_delta):
    stopper = EarlyStopping(patience, min_delta)
    for end, value in enumerate(values, start=1):
        assert stopper.step(value) == should_stop(values[:end], patience, min_delta)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=30))
def test_with_zero_min_delta_stop_means_patience_epochs_since_the_minimum(values):
    for patience in (1, 2, 4):
        best_epoch = values.index(min(values))  # ties do not improve: the first minimum counts
        assert should_stop(values, patience) == (len(values) - 1 - best_epoch >= patience)
