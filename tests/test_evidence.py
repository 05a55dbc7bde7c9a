"""course_utils.evidence: the verdict table, and the intervals' error rates on synthetic data with
known effects (no effect: "holds" or "reversed" about 5% of the time; a real effect: covered 95%)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from course_utils import evidence
from course_utils.evidence import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, NO_EFFECT, REVERSED

REPEATS = 2000
# With REPEATS draws of a rate near 5%, the binomial standard error is 0.5 points: 3%-7% is 4 SE.
FALSE_ALARM_BAND = (0.03, 0.07)


@pytest.mark.parametrize(
    ("low", "high", "better", "expected"),
    [
        (0.5, 2.0, "higher", HOLDS),
        (-2.0, -0.5, "higher", REVERSED),
        (-0.5, 0.5, "higher", NO_EFFECT),
        (0.2, 0.8, "higher", NO_EFFECT),  # real, but smaller than the minimal effect
        (-0.5, 2.0, "higher", INCONCLUSIVE),
        (-2.0, 0.5, "higher", INCONCLUSIVE),
        (-2.0, -0.5, "lower", HOLDS),
        (0.5, 2.0, "lower", REVERSED),
        (1.0, 1.0, "higher", HOLDS),  # a deterministic effect at the threshold matters
        (-0.5, 0.5, "equal", HOLDS),  # a rule that predicts no gap: the gap is under m
        (0.2, 0.8, "equal", HOLDS),
        (1.0, 2.0, "equal", DOES_NOT_HOLD),
        (-3.0, -1.0, "equal", DOES_NOT_HOLD),
        (0.5, 1.5, "equal", INCONCLUSIVE),
        (-2.0, 2.0, "equal", INCONCLUSIVE),
        (0.0, 0.0, "equal", HOLDS),
    ],
)
def test_verdict_table(low, high, better, expected):
    assert evidence.verdict(low, high, min_effect=1.0, better=better) == expected


@given(
    low=st.floats(-10, 10),
    width=st.floats(0, 10),
    m=st.floats(0.01, 5),
)
def test_verdict_for_lower_is_the_mirror_of_higher(low, width, m):
    high = low + width
    assert evidence.verdict(low, high, m, "higher") == evidence.verdict(-high, -low, m, "lower")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low": 0, "high": 1, "min_effect": 0}, "min_effect must be a positive"),
        ({"low": 1, "high": 0, "min_effect": 1}, "low <= high"),
        (
            {"low": 0, "high": 1, "min_effect": 1, "better": "up"},
            'better must be "higher", "lower" or "equal"',
        ),
    ],
)
def test_verdict_rejects_bad_input_with_the_expected_form(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evidence.verdict(**kwargs)


def test_compare_paired_matches_a_hand_computed_t_interval():
    treatment = np.array([0.91, 0.93, 0.90, 0.94, 0.92])
    control = np.array([0.89, 0.90, 0.90, 0.91, 0.88])
    d = treatment - control  # 0.02, 0.03, 0.00, 0.03, 0.04
    result = evidence.compare_paired(treatment, control, min_effect=0.005)
    half = 2.7764451051977987 * d.std(ddof=1) / np.sqrt(5)  # t_{0.975, 4}
    assert result.effect == pytest.approx(d.mean())
    assert (result.low, result.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert result.n == 5 and result.verdict == HOLDS


def test_pairing_removes_what_the_arms_share():
    """Seeds that move both arms by a lot hide a small effect from an unpaired view, not a paired one."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.05, 6)
    control = 0.90 + seed_effect
    treatment = control + 0.01 + rng.normal(0, 0.002, 6)
    assert evidence.compare_paired(treatment, control, min_effect=0.005).verdict == HOLDS
    unpaired_se = np.sqrt(treatment.var(ddof=1) / 6 + control.var(ddof=1) / 6)
    assert 2 * unpaired_se > 0.01  # what an unpaired 2-SE test would have called noise


@pytest.mark.parametrize("n", [3, 5, 20])
def test_false_alarm_rate_with_no_effect_is_near_five_percent(n):
    rng = np.random.default_rng(n)
    alarms = 0
    for _ in range(REPEATS):
        control = rng.normal(0.9, 0.03, n)
        treatment = control + rng.normal(0, 0.01, n)  # no effect: pure pair noise
        result = evidence.compare_paired(treatment, control, min_effect=1e-9)
        alarms += result.verdict in (HOLDS, REVERSED)
    assert FALSE_ALARM_BAND[0] < alarms / REPEATS < FALSE_ALARM_BAND[1]


def test_a_stated_minimal_effect_only_lowers_false_alarms():
    rng = np.random.default_rng(1)
    alarms = {1e-9: 0, 0.01: 0}
    for _ in range(REPEATS):
        d = rng.normal(0, 0.01, 5)
        for m in alarms:
            alarms[m] += evidence.compare_paired(d, np.zeros(5), min_effect=m).verdict == HOLDS
    assert alarms[0.01] <= alarms[1e-9] < 0.04 * REPEATS


def test_interval_covers_a_known_effect_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(REPEATS):
        d = 0.02 + rng.normal(0, 0.01, 4)
        result = evidence.compare_paired(d, np.zeros(4), min_effect=0.005)
        covered += result.low <= 0.02 <= result.high
    assert 0.93 < covered / REPEATS < 0.97


def test_a_large_effect_with_enough_pairs_holds():
    rng = np.random.default_rng(3)
    d = 0.05 + rng.normal(0, 0.01, 8)
    assert evidence.compare_paired(d, np.zeros(8), min_effect=0.01).verdict == HOLDS
    assert evidence.compare_paired(-d, np.zeros(8), min_effect=0.01).verdict == REVERSED
    assert (
        evidence.compare_paired(-d, np.zeros(8), min_effect=0.01, better="lower").verdict == HOLDS
    )


def test_per_image_correctness_gives_mcnemar_style_false_alarms():
    """Two equally good classifiers on the same 500 images: paired 0/1 outcomes, ~5% alarms."""
    rng = np.random.default_rng(4)
    alarms = 0
    for _ in range(REPEATS):
        hard = rng.random(500) < 0.1  # images both get wrong more often: shared difficulty
        p = np.where(hard, 0.4, 0.95)
        a, b = rng.random(500) < p, rng.random(500) < p
        alarms += evidence.compare_paired(a, b, min_effect=1e-9).verdict in (HOLDS, REVERSED)
    assert FALSE_ALARM_BAND[0] < alarms / REPEATS < FALSE_ALARM_BAND[1]


def fast_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP = mean over positives of the precision at their rank (no ties): sklearn's, 50x faster."""
    hits = labels[np.argsort(-scores, kind="stable")]
    if not hits.any():
        raise ValueError("no positives")
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision[hits].mean())


def test_fast_average_precision_is_sklearns():
    rng = np.random.default_rng(8)
    labels, scores = rng.random(500) < 0.1, rng.normal(size=500)
    assert fast_average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores)
    )


def test_bootstrap_false_alarm_rate_for_average_precision():
    rng = np.random.default_rng(5)
    repeats, alarms = 200, 0
    for _ in range(repeats):
        labels = rng.random(300) < 0.1
        signal = labels * 1.0
        a = signal + rng.normal(0, 1.0, 300)
        b = signal + rng.normal(0, 1.0, 300)
        result = evidence.compare_bootstrap(
            fast_average_precision, a, b, labels=labels, min_effect=1e-9, resamples=300, seed=1
        )
        alarms += result.verdict in (HOLDS, REVERSED)
    # 200 repeats: SE of a 5% rate is 1.5 points; the percentile bootstrap runs a little liberal.
    assert alarms / repeats < 0.12


def test_bootstrap_finds_a_better_ranking_and_is_repeatable():
    rng = np.random.default_rng(6)
    labels = rng.random(2000) < 0.05
    good = labels * 2.0 + rng.normal(0, 1, 2000)
    poor = labels * 0.5 + rng.normal(0, 1, 2000)
    first = evidence.compare_bootstrap(
        fast_average_precision, good, poor, labels=labels, min_effect=0.02, resamples=300
    )
    again = evidence.compare_bootstrap(
        fast_average_precision, good, poor, labels=labels, min_effect=0.02, resamples=300
    )
    assert first == again and first.verdict == HOLDS
    assert first.low < first.effect < first.high


def test_bootstrap_redraws_resamples_where_the_metric_is_undefined():
    labels = np.zeros(40, dtype=bool)
    labels[0] = True  # most resamples miss the only positive
    scores = np.linspace(1, 0, 40)

    def strict_ap(y, s):
        if not y.any():
            raise ValueError("no positives")
        return average_precision_score(y, s)

    result = evidence.compare_bootstrap(
        strict_ap, scores, scores[::-1].copy(), labels=labels, min_effect=0.1, resamples=50
    )
    assert result.verdict in evidence.VERDICTS


def test_one_sample_against_a_formula():
    rng = np.random.default_rng(7)
    losses = np.log(10) + rng.normal(0, 0.005, 5)
    result = evidence.compare_one_sample(losses, np.log(10), min_effect=0.05)
    assert result.verdict == NO_EFFECT and result.n == 5


def test_deterministic_effect_has_a_point_interval():
    result = evidence.deterministic(3.0, min_effect=1.0)
    assert (result.low, result.high, result.verdict) == (3.0, 3.0, HOLDS)
    assert "exact" in result.text()


def test_text_and_ledger_row_format_the_computed_values():
    result = evidence.Comparison(
        0.019, 0.006, 0.032, 5, "paired t over 5 pairs", 0.005, "higher", HOLDS
    )
    assert (
        result.text(scale=100, unit=" points", digits=1)
        == "+1.9 points (95% interval +0.6 to +3.2)"
    )
    row = result.ledger("rule", "experiment", "measured", scale=100, unit=" points", digits=1)
    assert row["effect"] == result.text(scale=100, unit=" points", digits=1)
    assert row["verdict"] == HOLDS
    assert "minimal effect 0.5 points" in result.summary(scale=100, unit=" points", digits=1)


@pytest.mark.parametrize(
    ("treatment", "control", "message"),
    [
        ([1.0, 2.0], [1.0], "one control value per treatment value"),
        ([1.0], [1.0], "at least 2 pairs"),
        ([1.0, float("nan")], [1.0, 2.0], "NaN or infinity"),
    ],
)
def test_compare_paired_rejects_bad_input(treatment, control, message):
    with pytest.raises(ValueError, match=message):
        evidence.compare_paired(treatment, control, min_effect=1.0)


def test_equivalence_claims_holds_rarely_when_the_gap_sits_at_the_margin():
    """better="equal" is two one-sided tests at 2.5% each: a true gap of exactly m is called "holds"
    at most ~2.5% of the time, and a true gap of 0 measured precisely is called "holds" nearly always."""
    rng = np.random.default_rng(3)
    m = 0.5
    at_margin = [
        evidence.compare_one_sample(m + rng.normal(0, 1, 10), 0.0, min_effect=m, better="equal")
        for _ in range(REPEATS)
    ]
    rate = np.mean([c.verdict == HOLDS for c in at_margin])
    assert rate < 0.04, rate
    precise = [
        evidence.compare_one_sample(rng.normal(0, 0.1, 20), 0.0, min_effect=m, better="equal")
        for _ in range(200)
    ]
    assert np.mean([c.verdict == HOLDS for c in precise]) > 0.99
    assert "the rule predicts a gap under 0.5" in precise[0].summary()


def test_identical_differences_need_enough_pairs_for_a_sign_test():
    """Four seeds that all diverge in one arm and none in the other: the t interval would be a point;
    a sign test cannot reach 95% with four pairs (2 ** -3 = 0.125), with six it can (2 ** -5)."""
    four = evidence.compare_paired([0, 0, 0, 0], [1, 1, 1, 1], min_effect=0.25, better="lower")
    assert (four.low, four.high) == (-np.inf, np.inf) and four.verdict == INCONCLUSIVE
    assert "sign test over 4 identical pairs" in four.summary()
    six = evidence.compare_paired([0] * 6, [1] * 6, min_effect=0.25, better="lower")
    assert (six.low, six.high) == (-1.0, -1.0) and six.verdict == HOLDS
    same = evidence.compare_paired([0.5, 0.5], [0.5, 0.5], min_effect=0.1)
    assert (same.low, same.high) == (0.0, 0.0) and same.verdict == NO_EFFECT
