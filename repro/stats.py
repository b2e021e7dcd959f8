"""Equivalence and superiority from paired differences, stated once.

Every comparison the report makes between two methods reads paired differences (one value per
seed, or per task and seed: method a's score minus method b's on the same split, seed and
budget) and their 95% Student-t interval, mean ± t_{n-1, 0.975} · sd / sqrt(n).

- `comparable(diffs, margin)`: is a as good as b, to within `margin` points? "comparable" when the
  whole interval lies above −margin (the lower bound > −margin), "worse" when the whole interval
  lies below it (the upper bound < −margin), else "inconclusive". This is an equivalence test
  (non-inferiority at the margin): a noisier sample has a wider interval, so noise can only move a
  verdict towards "inconclusive", never towards "comparable". (The rule it replaces, "the
  interval reaches 0", did the opposite: the noisier the runs, the more often it held.)
- `better(diffs)`: is a better than b? "better" when the lower bound > 0, "not better" when the
  upper bound <= 0, else "inconclusive".

An inconclusive result says how many seeds would decide it at the spread observed: the smallest n
with t_{n-1} · sd / sqrt(n) < |mean − boundary| (the interval then clears the boundary, if the
mean and sd stayed as they are), or None where the mean sits on the boundary (no n decides it) or
there is no spread to go by (fewer than 2 values).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

CONFIDENCE = 0.95
MAX_SEEDS = 100_000  # seeds_needed is None beyond this: "no practical number of seeds"


@dataclass(frozen=True)
class Test:
    """One comparison's outcome: verdict, the mean difference, the interval's half-width (nan
    with fewer than 2 values), n, and where inconclusive the seeds that would decide it."""
    verdict: str  # comparable | worse | better | not better | inconclusive | no data
    mean: float
    hw: float
    n: int
    seeds_needed: int | None = None
    boundary: float = 0.0  # the value the interval is held against: −margin, or 0 for `better`

    @property
    def lower(self) -> float:
        return self.mean - self.hw

    @property
    def upper(self) -> float:
        return self.mean + self.hw

    def text(self, digits: int = 1) -> str:
        """"-0.4 ± 0.5: comparable (interval above -1)"; inconclusive says what would decide it."""
        from .results import format_pm

        if self.verdict == "no data":
            return "no pairs"
        b = f"{self.boundary:g}"
        shown = format_pm(self.mean, self.hw, digits, signed=True)
        where = {"comparable": f"interval above {b}", "worse": f"interval below {b}", "better": "interval above 0",
                 "not better": "interval at or below 0"}.get(self.verdict)
        if where:
            return f"{shown}: {self.verdict} ({where})"
        if self.n < 2:
            return f"{shown}: inconclusive (1 seed: no interval)"
        if self.seeds_needed is None:
            return f"{shown}: inconclusive (interval straddles {b}; the mean sits on it, no number of seeds decides)"
        many = f"about {self.seeds_needed}" if self.seeds_needed <= 1000 else "more than 1000"
        return f"{shown}: inconclusive (interval straddles {b}; {many} seeds would decide at this spread)"


def _finite(values) -> list[float]:
    return [float(x) for x in values if x is not None and math.isfinite(float(x))]


def mean_sd_hw(values, confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """Mean, sample sd, t-interval half-width and n of the finite values (sd, hw nan for n < 2)."""
    from scipy import stats

    v = _finite(values)
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(v) / n
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    return mean, sd, float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n), n


def seeds_needed(sd: float, distance: float, confidence: float = CONFIDENCE) -> int | None:
    """The smallest n >= 2 with t_{n-1} · sd / sqrt(n) < distance (the mean's distance from the
    boundary), or None where distance is 0 (or not finite), sd is not known, or n would pass MAX_SEEDS."""
    from scipy import stats

    if not (math.isfinite(sd) and math.isfinite(distance)) or distance <= 0 or math.isclose(distance, 0, abs_tol=1e-12):
        return None
    if sd == 0:
        return 2
    q = (1 + confidence) / 2

    def fits(n):
        return float(stats.t.ppf(q, n - 1)) * sd / math.sqrt(n) < distance

    hi = 2
    while not fits(hi):  # doubling, then bisection: the half-width falls monotonically with n
        hi *= 2
        if hi > MAX_SEEDS:
            return None
    lo = max(2, hi // 2)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def _test(values, boundary: float, above: str, below: str, below_inclusive: bool,
          confidence: float) -> Test:
    mean, sd, hw, n = mean_sd_hw(values, confidence)
    if n == 0:
        return Test("no data", mean, hw, 0, None, boundary)
    if n >= 2:
        if mean - hw > boundary:
            return Test(above, mean, hw, n, None, boundary)
        if mean + hw < boundary or (below_inclusive and mean + hw <= boundary):
            return Test(below, mean, hw, n, None, boundary)
    return Test("inconclusive", mean, hw, n, seeds_needed(sd, abs(mean - boundary), confidence), boundary)


def comparable(diffs, margin: float, confidence: float = CONFIDENCE) -> Test:
    """Is a (the diffs are a − b) as good as b to within `margin` points? comparable when the
    interval's lower bound > −margin, worse when its upper bound < −margin, else inconclusive
    (one value, or an interval that straddles −margin)."""
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return _test(diffs, -float(margin), "comparable", "worse", False, confidence)


def better(diffs, confidence: float = CONFIDENCE) -> Test:
    """Is a better than b? better when the interval's lower bound > 0, not better when its upper
    bound <= 0, else inconclusive."""
    return _test(diffs, 0.0, "better", "not better", True, confidence)
