"""The judges: a rule version's `judge` names one of JUDGES, which turns the facts a claim's measure
recorded (repro.claims_*) into a verdict under the version's params. Each judge is the text of the
rules that name it (repro.rules.RULES), in code; a judge is added beside the old ones, never changed
under a rule that already uses it (a changed rule is a new version, and may need a new judge).
"""
from __future__ import annotations

import math

from . import stats


def grade(full: bool, part: bool) -> str:
    return "reproduced" if full else "partly" if part else "not reproduced"


def _avg(d: list[float], full: float, part: float, interval_part: bool = False) -> str:
    """The pooled-mean rules before issue #35: reproduced if mean >= full, partly if >= part (or,
    with interval_part, if the interval reaches `full`)."""
    from .results import mean_hw

    m, hw, n = mean_hw(d)
    if n == 0:
        return "not measured"
    return grade(m >= full, m >= part or (interval_part and math.isfinite(hw) and m + hw >= full))


def _gradients(f, p):
    if p.get("trained_pair_only"):
        shows = f.get("trained_per") or []
        return grade(all(shows), any(shows)) if shows else "not measured"
    if not f.get("deep"):
        return "not measured"
    per = f["per"]
    return grade(all(per), any(per) or (p.get("trained_partly", False) and f.get("trained_shows", False)))


def _threshold(f, p):
    x = f.get(p["number"])
    return "not measured" if x is None or not math.isfinite(x) else grade(x >= p["reproduced"], x >= p["partly"])


def _speedup(f, p):
    if not f.get("target"):
        return "not measured"
    if f.get("status") != "ok":
        return "not reproduced" if f.get("status") == "diverged" else "not measured"
    if p.get("needs_context") and not f.get("context", True):
        return "not measured"
    x = f.get(p["number"])
    return "not reproduced" if x is None else grade(x >= p["reproduced"], x >= p["partly"])


def _glue_avg(f, p):
    """pld_glue before issue #35: the per-seed task average, over all tasks (v1), all tasks when
    the baseline's average clears the input-blind average by 5 (v2), the learned tasks (v3)."""
    if p["tasks"] == "learned" and not f.get("learned"):
        return "not measured"
    if p["tasks"] == "blind5" and not f.get("blind5", True):
        return "not measured"
    return _avg(f["deltas"]["learned" if p["tasks"] == "learned" else "all"], -1, -3, interval_part=True)


def _early_bird(f, p):
    s = f["settings"]
    fired = any(v["fired"] for v in s.values())
    every = all(v["fired"] == v["searches"] for v in s.values())
    if p["every"] == "search":  # v1: every search met the criterion within 30%
        early = all(x <= p["within"] for v in s.values() for x in v["fractions"])
    else:  # v2: every search met it, each setting's median within 30%
        early = all(_median(v["fractions"]) <= p["within"] for v in s.values() if v["fractions"])
    return grade(fired and every and early, fired)


def _median(x):
    x, k = sorted(x), len(x) // 2
    return x[k] if len(x) % 2 else (x[k - 1] + x[k]) / 2


def _pooled(f, tasks: list[str], pair: str, metric: str = "main") -> list[float]:
    return [d for t in tasks for d in f[metric].get(t, {}).get(pair, [])]


def _eb_pooled(f, p):
    """earlybert_glue before issue #35: pooled over tasks, EarlyBERT − dense >= -1.5 and − random > 0."""
    from .results import mean_hw

    tasks = {"all": f["tasks"], "blind5": f["tasks"] if f.get("blind5", True) else [],
             "learned": f["learned_main"]}[p["tasks"]]
    if not tasks:
        return "not measured"
    (d, _, n), (r, _, _) = mean_hw(_pooled(f, tasks, "dense")), mean_hw(_pooled(f, tasks, "random"))
    if n == 0:
        return "not measured"
    return grade(d >= -1.5 and r > 0, d >= -1.5 or r > 0)


def _early_pooled(f, p):
    """early_ticket v1: pooled over the learned tasks (main metric); 'as well as' if mean >= -1 or
    the interval reaches 0, 'better than random' if the mean > 0."""
    from .earlybert_tables import early_tickets_hold
    from .results import mean_hw

    tasks = f["learned_main"]
    if not tasks:
        return "not measured"
    holds = []
    for pair in ("detector-end", "detector-random", "fixed-end", "fixed-random"):
        d, hw, _ = mean_hw(_pooled(f, tasks, pair))
        holds.append(early_tickets_hold(d, hw, pair.split("-")[1]))
    return grade(all(holds), any(holds))


def task_tests(f: dict, parts: dict[str, str], margin: float) -> dict[str, dict[str, stats.Test]]:
    """Per counted task (the learned ones, counted metric): {pair: Test}, a pair judged by
    stats.comparable at `margin` ("comparable") or stats.better ("better")."""
    return {t: {pair: stats.comparable(f["counted"].get(t, {}).get(pair, []), margin) if kind == "comparable"
                else stats.better(f["counted"].get(t, {}).get(pair, [])) for pair, kind in parts.items()}
            for t in f["learned"] if any(f["counted"].get(t, {}).get(pair) for pair in parts)}


def holds(test: stats.Test) -> bool:
    return test.verdict in ("comparable", "better")


def task_verdict(tests: dict[str, stats.Test]) -> str:
    ok = [holds(t) for t in tests.values()]
    return grade(all(ok), any(ok))


def _per_task(f, p):
    """Issue #35: each counted task alone; reproduced if every task is, partly if some task is
    reproduced or partly, not reproduced if none."""
    if not f["learned"]:
        return "not measured"
    per = [task_verdict(t) for t in task_tests(f, p["parts"], p["margin"]).values()]
    if not per:
        return "not measured"
    return grade(all(v == "reproduced" for v in per), any(v != "not reproduced" for v in per))


def _squad(f, p):
    if p.get("min_dense_f1") is not None and not f["dense"] >= p["min_dense_f1"]:
        return "not measured"
    if not f["diffs"]:
        return "not measured"
    if "margin" in p:
        return "reproduced" if stats.comparable(f["diffs"], p["margin"]).verdict == "comparable" else "not reproduced"
    return _avg(f["diffs"], -1.5, -4)


JUDGES = {"gradients": _gradients, "threshold": _threshold, "speedup": _speedup, "glue_average": _glue_avg,
          "early_bird": _early_bird, "eb_pooled": _eb_pooled, "early_pooled": _early_pooled, "per_task": _per_task,
          "squad": _squad}


def _glue_capped(f, p):
    """pld_glue v4: the learned-task average (v3), the random-init floor counted where recorded, at
    margin p["margin"]; with fewer than p["min_pretraining_runs"] pre-training runs per arm, partly at most."""
    if not f.get("learned_ri", f.get("learned")):
        return "not measured"
    v = _avg(f["deltas"].get("learned_ri", f["deltas"]["learned"]), -p["margin"], -3, interval_part=True)
    return "partly" if v == "reproduced" and f.get("pretraining_runs", 1) < p["min_pretraining_runs"] else v


JUDGES["glue_capped"] = _glue_capped  # added with pld_glue v4 (2026-12-07)


def _per_task_capped(f, p):
    """pld_glue v5: per counted task (_per_task, the tasks the baseline learned in their counted
    metric, the random-init floor counted where recorded); with fewer than p["min_pretraining_runs"]
    pre-training runs per arm, partly at most."""
    v = _per_task({**f, "learned": f.get("learned_counted", [])}, p)
    return "partly" if v == "reproduced" and f.get("pretraining_runs", 1) < p["min_pretraining_runs"] else v


def _curves(f, p):
    """postln_gradients_training: gradients.curve_rule's verdict per step (>= 2 seeds per arm)."""
    shown = [x["shown"] for x in f.get("steps", [])]
    return grade(all(shown), any(shown)) if shown else "not measured"


def _premise(f, p):
    """pld_premise: the premise search (premise.verdicts per configuration and rate). Reproduced if
    it holds at some cell; not reproduced once every planned pilot ran and it held at none; until
    then not measured (a cell not yet run could still show it)."""
    if f.get("held"):
        return "reproduced"
    return "not reproduced" if f.get("complete") and f.get("cells") else "not measured"


JUDGES["premise"] = _premise  # added with pld_premise (2026-12-07)
JUDGES["curves"] = _curves  # added with postln_gradients_training (2026-12-07)
JUDGES["per_task_capped"] = _per_task_capped  # added with pld_glue v5 (2026-12-07)


def with_adopted(f: dict) -> dict:
    """earlybert_glue's facts as v5 counts them: the tasks dense learned at the profile's recipe and
    those a recipe check found a recipe for (claims_earlybert._adopted: f["adopted"]), each against its dense."""
    a = f.get("adopted") or {}
    return {**f, "learned": a.get("learned", f["learned"]), "counted": a.get("counted", f["counted"])}


def _per_task_adopted(f, p):
    """earlybert_glue v5: _per_task over with_adopted(f)."""
    return _per_task(with_adopted(f), p)


JUDGES["per_task_adopted"] = _per_task_adopted  # added with earlybert_glue v5 (2026-12-07)
