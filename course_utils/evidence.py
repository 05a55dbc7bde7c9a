"""One verdict rule for every experiment of the course.

A rule of thumb predicts an effect ("with X, the metric gets better"). An experiment measures it on
**paired** runs, the same seeds for both arms or the same test images, so that what the two arms share
(the initialisation, the hard images) cancels in the differences::

    d_i      = treatment_i - control_i                      one difference per pair, i = 1..n
    effect   = mean(d)                                      in the metric's own units
    interval = effect -/+ t_{0.975, n-1} * sd(d) / sqrt(n)  (compare_paired: Student t, for seeds)
             or the 2.5% and 97.5% quantiles of the effect   (compare_bootstrap: for a metric that is
                over test sets resampled with replacement     not a mean over examples, such as AP)

The verdict compares the 95% interval [lo, hi], oriented so that positive means "the way the rule
predicts" (``better="higher"`` or ``"lower"``), with a minimal effect ``m > 0`` stated before the run:

=====================================  ==================================================
"no effect at this scale"              -m < lo and hi < m: whatever it is, it is smaller than m
"holds"                                lo > 0 (and not inside (-m, m))
"reversed"                             hi < 0 (and not inside (-m, m))
"inconclusive: interval spans both"    lo <= 0 <= hi, and the interval reaches past -m or m
=====================================  ==================================================

Some rules predict *no* difference ("the loss at init equals ln C", "overfit one batch to zero loss"):
with ``better="equal"`` the same interval is read as an equivalence test (two one-sided tests at 2.5%
each, i.e. the 95% interval inside the margin):

=====================================  ==================================================
"holds"                                -m < lo and hi < m: the gap is smaller than m
"does not hold"                        lo >= m or hi <= -m: the gap is at least m
"inconclusive: interval spans both"    otherwise (the interval straddles -m or m)
=====================================  ==================================================

With no true effect, "holds" or "reversed" comes out about 5% of the time (2.5% each way), fewer when
the interval is narrow enough to fall inside (-m, m); ``tests/test_evidence.py`` measures both rates.
A measurement with no sampling noise (a count, a deterministic computation) goes through
``deterministic``: its interval is the point itself, and the same table decides.

Every stage's comparisons, and the ledger's ``effect (95% interval)`` and ``verdict`` columns, come from
here; prose quotes ``Comparison.text()`` rather than typing numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

HOLDS = "holds"
NO_EFFECT = "no effect at this scale"
REVERSED = "reversed"
INCONCLUSIVE = "inconclusive: interval spans both"
DOES_NOT_HOLD = "does not hold"
VERDICTS = (HOLDS, NO_EFFECT, REVERSED, INCONCLUSIVE, DOES_NOT_HOLD)
ORIENTATIONS = ("higher", "lower", "equal")
CONFIDENCE = 0.95


def verdict(low: float, high: float, min_effect: float, better: str = "higher") -> str:
    """The verdict for an effect interval ``[low, high]`` (treatment - control, metric units).

    ``better`` says which direction the rule predicts (``"higher"``, ``"lower"``, or ``"equal"`` for a
    rule that predicts no difference); ``min_effect`` (> 0, same units) is the smallest effect that would
    matter, stated before the run. See the module docstring for the tables.
    """
    _check_orientation(better)
    if not min_effect > 0:
        raise ValueError(
            f"min_effect must be a positive number in the metric's units, got {min_effect!r}"
        )
    if not low <= high:
        raise ValueError(f"the interval must have low <= high, got [{low}, {high}]")
    if better == "equal":
        if -min_effect < low and high < min_effect:
            return HOLDS
        if low >= min_effect or high <= -min_effect:
            return DOES_NOT_HOLD
        return INCONCLUSIVE
    if better == "lower":
        low, high = -high, -low
    if -min_effect < low and high < min_effect:
        return NO_EFFECT
    if low > 0:
        return HOLDS
    if high < 0:
        return REVERSED
    return INCONCLUSIVE


@dataclass(frozen=True)
class Comparison:
    """A measured effect with its 95% interval and verdict (all in the metric's own units).

    ``effect``, ``low``, ``high``: treatment - control and its interval; ``n``: pairs (seeds, images);
    ``method``: how the interval was made; ``min_effect`` and ``better``: the rule's stated threshold and
    direction; ``verdict``: one of ``VERDICTS``.
    """

    effect: float
    low: float
    high: float
    n: int
    method: str
    min_effect: float
    better: str
    verdict: str

    def text(self, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
        """``"+1.9 points (95% interval +0.6 to +3.2)"`` with values multiplied by ``scale``."""
        effect, low, high = (scale * v for v in (self.effect, self.low, self.high))
        if self.n == 1:
            return f"{effect:+.{digits}f}{unit} (exact: no sampling noise)"
        return f"{effect:+.{digits}f}{unit} (95% interval {low:+.{digits}f} to {high:+.{digits}f})"

    def summary(self, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
        """One line for a notebook: the effect, the interval, the threshold and the verdict."""
        threshold = f"{scale * self.min_effect:.{digits}g}{unit}"
        if self.better == "equal":
            rule = f"the rule predicts a gap under {threshold}"
        else:
            rule = f"minimal effect {threshold}, {self.better} is better"
        return f"{self.text(scale, unit, digits)}, n = {self.n} ({self.method}); {rule}: {self.verdict}"

    def ledger(
        self,
        rule: str,
        experiment: str,
        measured: str,
        *,
        scale: float = 1.0,
        unit: str = "",
        digits: int = 2,
        note: str = "",
    ) -> dict[str, str]:
        """A ledger row: the effect column and the verdict come from this comparison."""
        return {
            "rule": rule,
            "experiment": experiment,
            "measured": measured,
            "effect": self.text(scale, unit, digits),
            "verdict": self.verdict + (f" ({note})" if note else ""),
        }


def compare_paired(
    treatment: Sequence[float] | np.ndarray,
    control: Sequence[float] | np.ndarray,
    *,
    min_effect: float,
    better: str = "higher",
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Paired comparison by Student's t on the differences ``treatment[i] - control[i]``.

    ``treatment`` and ``control``: the metric of each arm, one value per pair (the same seed, the same
    image), shape (n,) with n >= 2. Use it for a few seeds (the t quantile widens the interval honestly
    when n is small) and for per-image outcomes (0/1 correctness: the interval is then McNemar's Wald
    interval on the discordant pairs).

    When every difference is the same (sd = 0: four seeds that all diverge in one arm and none in the
    other), the t interval collapses to a point that no test supports. The interval is then the
    distribution-free one for the median: the point itself when n is large enough for the sign test
    (all n differences on one side has probability ``2 ** (1 - n) <= 1 - confidence``: n >= 6 at 95%),
    otherwise unbounded (``-inf`` to ``inf``: too few pairs to say anything).
    """
    t, c = _paired_arrays(treatment, control)
    d = t - c
    n = d.size
    effect = float(d.mean())
    if np.all(d == d[0]):
        enough = d[0] == 0 or 2.0 ** (1 - n) <= 1 - confidence
        low, high = (effect, effect) if enough else (-math.inf, math.inf)
        method = f"sign test over {n} identical pairs"
    else:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
        low, high = effect - half, effect + half
        method = f"paired t over {n} pairs"
    return Comparison(
        effect, low, high, n, method, min_effect, better, verdict(low, high, min_effect, better)
    )


def compare_one_sample(
    values: Sequence[float] | np.ndarray,
    reference: float,
    *,
    min_effect: float,
    better: str = "higher",
    confidence: float = CONFIDENCE,
) -> Comparison:
    """``values`` (one per seed) against a fixed ``reference`` (a formula's value): t on values - ref."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return compare_paired(
        values,
        np.full_like(values, reference),
        min_effect=min_effect,
        better=better,
        confidence=confidence,
    )


def compare_bootstrap(
    metric: Callable[[np.ndarray], float],
    treatment: np.ndarray,
    control: np.ndarray,
    *,
    min_effect: float,
    better: str = "higher",
    labels: np.ndarray | None = None,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Paired bootstrap of ``metric(labels, treatment) - metric(labels, control)`` over test examples.

    ``treatment``, ``control``: per-example scores of the two arms on the same examples, shape (n, ...);
    ``labels``: per-example targets, shape (n, ...), or None for ``metric(scores)``. Each resample draws
    the same n example indices for both arms (with replacement), so the arms stay paired; the interval is
    the percentile interval of ``resamples`` effects, drawn with ``seed`` (the same call gives the same
    interval). A resample where ``metric`` is undefined (raises or returns NaN) is drawn again.
    """
    treatment, control = np.asarray(treatment), np.asarray(control)
    if treatment.shape != control.shape or treatment.shape[0] < 2:
        raise ValueError(
            f"treatment and control must hold the same examples (same shape, n >= 2), got shapes "
            f"{treatment.shape} and {control.shape}"
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape[0] != treatment.shape[0]:
            raise ValueError(
                f"labels has {labels.shape[0]} examples, the scores {treatment.shape[0]}"
            )

    def effect_on(index: np.ndarray | slice) -> float:
        if labels is None:
            return float(metric(treatment[index])) - float(metric(control[index]))
        return float(metric(labels[index], treatment[index])) - float(
            metric(labels[index], control[index])
        )

    n = treatment.shape[0]
    effect = effect_on(slice(None))
    rng = np.random.default_rng(seed)
    effects: list[float] = []
    attempts = 0
    while len(effects) < resamples:
        attempts += 1
        if attempts > 10 * resamples:
            raise ValueError(
                "the metric was undefined on most resamples (e.g. AP with no positives)"
            )
        try:
            value = effect_on(rng.integers(0, n, n))
        except ValueError:
            continue
        if math.isfinite(value):
            effects.append(value)
    alpha = 1 - confidence
    low, high = (float(q) for q in np.quantile(effects, [alpha / 2, 1 - alpha / 2]))
    method = f"paired bootstrap over {n} examples, {resamples} resamples"
    return Comparison(
        effect, low, high, n, method, min_effect, better, verdict(low, high, min_effect, better)
    )


def deterministic(
    effect: float, *, min_effect: float, better: str = "higher", method: str = "deterministic"
) -> Comparison:
    """An effect with no sampling noise (a count, an exact computation): the interval is the point."""
    effect = float(effect)
    return Comparison(
        effect,
        effect,
        effect,
        1,
        method,
        min_effect,
        better,
        verdict(effect, effect, min_effect, better),
    )


def _paired_arrays(treatment, control) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(treatment, dtype=np.float64).ravel()
    c = np.asarray(control, dtype=np.float64).ravel()
    if t.shape != c.shape:
        raise ValueError(
            f"a paired comparison needs one control value per treatment value, got {t.size} and {c.size}"
        )
    if t.size < 2:
        raise ValueError(
            f"a paired comparison needs at least 2 pairs (seeds, images), got {t.size}"
        )
    if not (np.isfinite(t).all() and np.isfinite(c).all()):
        raise ValueError("the measurements contain NaN or infinity (did a run diverge?)")
    return t, c


def _check_orientation(better: str) -> None:
    if better not in ORIENTATIONS:
        raise ValueError(f'better must be "higher", "lower" or "equal", got {better!r}')
