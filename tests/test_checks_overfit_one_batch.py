"""Tests of ``check_overfit_one_batch`` (course_utils/checks/overfit_one_batch.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils import sanity
from course_utils.checks import overfit_one_batch as checks
from tests.check_helpers import assert_fails, assert_passes, not_implemented


def overfit_reference(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps)


def overfit_sgd(model, x, y, steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def overfit_without_zero_grad(model, x, y, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def overfit_keeps_tensors(model, x, y, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss)
    return losses


def overfit_without_step(model, x, y, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
    return losses


def overfit_lr_too_low(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps, lr=1e-5)


def overfit_short_history(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps)[:-1]


def overfit_calls_reference(model, x, y, steps):
    return sanity.overfit_one_batch(model, x, y, steps=steps)


@pytest.mark.parametrize("hidden", [False, True])
def test_overfit_one_batch_passes_correct_answers(capsys, hidden):
    assert_passes(capsys, checks.check_overfit_one_batch, overfit_sgd, hidden)


def test_overfit_one_batch_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_overfit_one_batch, overfit_reference)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (overfit_without_zero_grad, "call optimizer.zero_grad()"),
        (overfit_keeps_tensors, "still attached to the graph"),
        (overfit_without_step, "did not train"),
        (overfit_lr_too_low, "learning rate is too low"),
        (overfit_short_history, "expected 200 losses"),
    ],
)
def test_overfit_one_batch_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_overfit_one_batch, answer, fragment)


def test_overfit_one_batch_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_overfit_one_batch, not_implemented, "not implemented yet")


def test_overfit_one_batch_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_overfit_one_batch,
        overfit_calls_reference,
        "does not call the reference",
        hidden=True,
    )


# --- contracts, the steps argument, hints from evidence (issue 17, classes 2, 4, 5, 7) ---


def _train(model, x, y, steps, make_optimizer, *, fresh=False, record_after=False):
    optimizer = make_optimizer(model)
    losses = []
    for _ in range(steps):
        if fresh:
            optimizer = make_optimizer(model)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if record_after:
            with torch.no_grad():
                loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
    return losses


def _adam(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)


def overfit_new_optimizer_every_step(model, x, y, steps):
    return _train(model, x, y, steps, _adam, fresh=True)


def overfit_records_after_the_step(model, x, y, steps):
    return _train(model, x, y, steps, _adam, record_after=True)


def overfit_misses_the_first_layer(model, x, y, steps):
    return _train(model, x, y, steps, lambda m: torch.optim.Adam(m[2].parameters(), lr=3e-2))


def overfit_constant_steps(model, x, y, steps):
    return _train(model, x, y, 200, _adam)


def overfit_standardises_x_in_place(model, x, y, steps):
    x.sub_(x.mean(0)).div_(x.std(0) + 1e-8)
    return _train(model, x, y, steps, _adam)


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (overfit_new_optimizer_every_step, ["a new Adam built at every step"]),
        (overfit_records_after_the_step, ["recorded after optimizer.step()"]),
        (overfit_misses_the_first_layer, ["0.weight, 0.bias", "missing from the optimizer"]),
        (overfit_constant_steps, ["steps=7", "expected 7 losses"]),
        (overfit_standardises_x_in_place, ["changes its input in place (x or y)"]),
    ],
)
def test_overfit_one_batch_fails_contract_bugs_with_their_hint(capsys, answer, fragments):
    out = assert_fails(capsys, checks.check_overfit_one_batch, answer, *fragments)
    if answer is overfit_misses_the_first_layer:
        assert (
            "zero_grad" not in out
        )  # the .grad that grows is the frozen layer's, not a missed reset


def overfit_adamw(model, x, y, steps):
    # torch.optim.AdamW(...) with its default weight decay: another valid optimiser
    return _train(model, x, y, steps, lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3))


def overfit_float64_copy_of_the_batch(model, x, y, steps):
    model.double()
    losses = _train(model, x.double(), y, steps, _adam)
    model.float()
    return losses


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [overfit_adamw, overfit_float64_copy_of_the_batch])
def test_overfit_one_batch_passes_unusual_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_overfit_one_batch, answer, hidden)


# --- a new optimizer at every step, whatever the optimizer (issue 17, class 5) ---


def _sgd_momentum(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _rmsprop(model):
    return torch.optim.RMSprop(model.parameters(), lr=3e-3)


def overfit_new_sgd_momentum_every_step(model, x, y, steps):
    return _train(model, x, y, steps, _sgd_momentum, fresh=True)


def overfit_new_rmsprop_every_step(model, x, y, steps):
    return _train(model, x, y, steps, _rmsprop, fresh=True)


def overfit_new_adagrad_every_step(model, x, y, steps):
    return _train(
        model, x, y, steps, lambda m: torch.optim.Adagrad(m.parameters(), lr=0.05), fresh=True
    )


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (
            overfit_new_sgd_momentum_every_step,
            ["a new SGD(momentum=0.9) built at every step", "momentum buffer restarts from zero"],
        ),
        (
            overfit_new_rmsprop_every_step,
            ["a new RMSprop built at every step", "squared gradients restarts"],
        ),
        (overfit_new_adagrad_every_step, ["a new Adagrad built at every step"]),
    ],
)
def test_overfit_one_batch_names_a_new_stateful_optimizer_every_step(capsys, answer, fragments):
    out = assert_fails(capsys, checks.check_overfit_one_batch, answer, *fragments)
    assert "learning rate is too low" not in out  # the cause is named, not a symptom


def overfit_sgd_momentum(model, x, y, steps):
    return _train(model, x, y, steps, _sgd_momentum)


def overfit_rmsprop(model, x, y, steps):
    return _train(model, x, y, steps, _rmsprop)


def overfit_new_plain_sgd_every_step(model, x, y, steps):
    # plain SGD keeps no state: building it again each step changes nothing
    return _train(model, x, y, steps, lambda m: torch.optim.SGD(m.parameters(), lr=0.5), fresh=True)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer", [overfit_sgd_momentum, overfit_rmsprop, overfit_new_plain_sgd_every_step]
)
def test_overfit_one_batch_passes_other_optimizers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_overfit_one_batch, answer, hidden)


# --- side effects are told also when the history is wrong (issue 17, class 2) ---


def overfit_constant_steps_standardising_x_in_place(model, x, y, steps):
    x.sub_(x.mean(0)).div_(x.std(0) + 1e-8)
    return _train(model, x, y, 200, _adam)


def test_overfit_one_batch_wrong_and_mutating_is_told_both(capsys):
    assert_fails(
        capsys,
        checks.check_overfit_one_batch,
        overfit_constant_steps_standardising_x_in_place,
        "changes its input in place (x or y)",
        "expected 7 losses",
    )
