"""repro.stats on constructed paired differences: equivalence at a margin, superiority, and the
seeds that would decide an inconclusive comparison."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from repro import stats


def sample(mean, sd, n=5):
    """n values with exactly this mean and sample sd."""
    z = np.linspace(-1, 1, n)
    z = (z - z.mean()) / z.std(ddof=1)
    return list(mean + sd * z)


def hw(sd, n):
    return sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)


def test_interval_matches_student_t():
    t = stats.comparable(sample(-0.2, 0.5), margin=1)
    assert t.mean == pytest.approx(-0.2) and t.n == 5 and t.hw == pytest.approx(hw(0.5, 5))


def test_an_interval_above_the_margin_is_comparable():
    t = stats.comparable(sample(-0.2, 0.3), margin=1)  # -0.2 ± 0.37: lower bound -0.57 > -1
    assert t.verdict == "comparable" and t.seeds_needed is None and "comparable (interval above -1)" in t.text()


def test_an_interval_that_straddles_the_margin_is_inconclusive_and_says_what_would_decide_it():
    t = stats.comparable(sample(-0.6, 0.6), margin=1)  # -0.6 ± 0.75: from -1.35 to 0.15
    assert t.verdict == "inconclusive" and t.lower < -1 < t.upper
    n = t.seeds_needed  # the smallest n whose interval would clear -1 at this spread
    assert n > 5 and hw(0.6, n) < 0.4 <= hw(0.6, n - 1)
    assert f"about {n} seeds would decide" in t.text()


def test_an_interval_below_the_margin_is_worse():
    t = stats.comparable(sample(-3.0, 0.5), margin=1)  # upper bound -2.4 < -1
    assert t.verdict == "worse" and "worse (interval below -1)" in t.text()


def test_more_noise_never_makes_comparable_easier():
    """The same mean: a tight sample is comparable, a noisier one straddles the margin and is
    inconclusive (the old rule, 'comparable if the interval reaches 0', said the opposite)."""
    tight, noisy = stats.comparable(sample(-0.5, 0.2), 1), stats.comparable(sample(-0.5, 2.0), 1)
    assert tight.verdict == "comparable" and noisy.verdict == "inconclusive"
    assert noisy.upper >= 0  # the old rule would have accepted the noisy one for reaching 0
    order = {"comparable": 2, "inconclusive": 1, "worse": 0}
    for mean in (-2.0, -1.2, -0.8, -0.3, 0.5):
        ranks = [order[stats.comparable(sample(mean, sd), 1).verdict] for sd in (0.05, 0.3, 1, 3, 10)]
        if mean > -1:  # above the margin: noise can only take "comparable" away
            assert ranks == sorted(ranks, reverse=True), (mean, ranks)
        assert 2 not in ranks or mean > -1  # never comparable with the mean below the margin


def test_a_single_seed_or_a_mean_on_the_margin_decides_nothing():
    one = stats.comparable([0.5], 1)
    assert one.verdict == "inconclusive" and math.isnan(one.hw) and one.seeds_needed is None
    on = stats.comparable(sample(-1.0, 0.4), 1)
    assert on.verdict == "inconclusive" and on.seeds_needed is None and "no number of seeds" in on.text()
    exact = stats.comparable([-1.0, -1.0, -1.0], 1)  # no spread, mean on the margin: neither side
    assert exact.verdict == "inconclusive" and exact.seeds_needed is None
    assert stats.comparable([], 1).verdict == "no data" and stats.comparable([math.nan], 1).n == 0
    with pytest.raises(ValueError):
        stats.comparable([0.0, 1.0], -1)


def test_better_than():
    assert stats.better(sample(2.0, 0.5)).verdict == "better"
    assert stats.better(sample(-1.0, 0.5)).verdict == "not better"
    assert stats.better([0.0, 0.0, 0.0]).verdict == "not better"  # upper bound 0: not better
    t = stats.better(sample(0.3, 1.0))
    assert t.verdict == "inconclusive" and t.seeds_needed > 5 and hw(1.0, t.seeds_needed) < 0.3
    assert stats.better(sample(0.0, 1.0)).seeds_needed is None


def test_seeds_needed_is_monotone_in_the_spread():
    ns = [stats.seeds_needed(sd, 0.5) for sd in (0.1, 0.5, 1.0, 2.0)]
    assert ns == sorted(ns) and ns[0] >= 2
    assert stats.seeds_needed(1e6, 1e-6) is None  # beyond any practical number
