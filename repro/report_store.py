"""What every claim's measure reads and shares: the store of one profile's results (`Store`,
from repro.store), `Missing` (an output a claim needs is not there: the row says "not measured"), the `Claim` record,
the report's number formats, and which tasks a baseline learned (repro.floors' rule) against the
floors the notebooks recorded (`Floors`; the report loads no model).

The claims themselves are measured in repro.claims_pld and repro.claims_earlybert, and judged in
repro.report, which adds to `Store` whether a notebook's outputs are still current.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import rules
from .floors import ZERO_SHOT_TASKS, baseline_learned, blind_floor
from .metrics import main_metric
from .results import format_pm, mean_hw
from .store import Missing, Store  # noqa: F401 (re-exported: the claims and the report read them here)


def pm(mean: float, hw: float, unit: str = "", digits: int = 1) -> str:
    """A signed difference with its interval: +1.2 ± 0.4 points."""
    return format_pm(mean, hw, digits, unit, signed=True)


def count(n: int, noun: str) -> str:
    """"1 task", "3 tasks": the report's n column."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Claim:
    name: str
    claim: str
    paper: str  # the paper's number, or why there is none
    notebooks: tuple[str, ...]
    figure: tuple[str, str] | None  # (notebook, figure name) that shows it
    # -> {"ours", "n", "scale", "facts" (what the rules judge), or "verdict" where no rule can judge}
    measure: Callable[[Store], dict]

    @property
    def rule(self) -> str:
        """The latest version of the claim's rule (repro.rules)."""
        return rules.RULES[self.name][-1].text


@dataclass(frozen=True)
class Floors:
    """The floors a baseline's tasks are held to, as the notebooks recorded them (the report
    measures nothing): `blind` {(task, metric): the input-blind score}, `zero_shot` {task: the
    checkpoint's zero-shot score}, `random_init` {task: scores over seeds of fine-tuning the same
    architecture from random initialisation}, None where no such record exists (not measured);
    `source` says where they were read."""
    blind: dict
    zero_shot: dict
    random_init: dict | None = None
    source: str = ""
    data_dir: str | None = None  # the GLUE data a floor not recorded is computed from (the Store's)


def recorded_floors(s: Store, checkpoint=None, n_eval=None) -> Floors:
    """glue_finetune's recorded floors (its summary: per task the input-blind score in the task's
    main metric, and the checkpoint's zero-shot score where defined), for runs evaluated on the same
    dev subset (n_eval) and, for the zero-shot score, from the same checkpoint. Empty when
    glue_finetune has not run, or ran on another subset."""
    try:
        g = s.summary("glue_finetune")
    except Missing:
        return Floors({}, {}, source="glue_finetune has not run", data_dir=s.data_dir)
    if g.get("n_eval") != n_eval:
        return Floors({}, {}, source=f"glue_finetune evaluated on another dev subset ({g.get('n_eval')} vs {n_eval})",
                      data_dir=s.data_dir)
    tasks = g.get("tasks") or {}
    same = checkpoint is not None and g.get("checkpoint") == checkpoint
    return Floors({(t, h["metric"]): h["blind"] for t, h in tasks.items() if h.get("blind") is not None},
                  {t: h["zero_shot"] for t, h in tasks.items() if same and h.get("zero_shot") is not None},
                  source="glue_finetune's summary", data_dir=s.data_dir)


def _blind(task: str, metric: str, floors: Floors, max_eval=None) -> tuple[float | None, str]:
    """The input-blind floor in `metric`: recorded, else computed from the GLUE labels here (the
    text says so: a floor the notebooks should record); (None, why) without local GLUE data."""
    if (x := floors.blind.get((task, metric))) is not None:
        return float(x), ""
    try:
        x = (blind_floor(task, floors.data_dir, max_eval_examples=max_eval) if metric == main_metric(task)
             else _blind_in(task, metric, max_eval, floors.data_dir))
    except (OSError, ValueError):
        return None, "no recorded input-blind floor, and no GLUE data here"
    return x, "input-blind not recorded: computed from the GLUE labels"


def clears_blind_average(scores: dict, floors: Floors | None = None, max_eval=None) -> bool:
    """The floor of the rules set on 2026-11-25 (pld_glue, earlybert_glue v2): the baseline's
    average over all tasks >= the input-blind average + 5 (True where a floor is not known)."""
    values = [v for vs in scores.values() for v in vs]
    blind = [_blind(t, main_metric(t), floors or Floors({}, {}), max_eval)[0] for t in scores]
    if any(b is None for b in blind):
        return True
    return bool(values) and float(np.mean(values)) >= float(np.mean(blind)) + 5


def learned_tasks(scores: dict, floors: Floors | None = None, max_eval=None,
                  metrics: dict | None = None) -> tuple[list[str], str]:
    """The tasks the baseline learned by repro.floors.baseline_learned (LEARNED_RULE): its scores
    (one per seed) against the recorded floors (`floors`: the input-blind score and, where defined
    (STS-B), the checkpoint's zero-shot score; the random-init score where given). `metrics`:
    {task: metric} where the scores are not in the task's main metric (MRPC counted by accuracy):
    its floor is then in that metric, and it has no zero-shot floor. A floor not recorded is said
    so: the input-blind one is then computed from the GLUE labels (without GLUE data here the task
    counts, and the text says so); a zero-shot one not recorded is left out. Returns (those tasks,
    one clause per task)."""
    floors = floors or Floors({}, {})
    learned, parts = [], []
    for task, values in scores.items():
        if not values:  # a partial study: nothing to compare yet
            parts.append(f"{task}: no baseline run recorded yet")
            continue
        mean, hw, _ = mean_hw(values)
        metric = (metrics or {}).get(task, main_metric(task))
        main = metric == main_metric(task)
        blind, note = _blind(task, metric, floors, max_eval)
        if blind is None:  # nothing to hold it to: it counts, and the text says so
            learned.append(task)
            parts.append(f"{task} {mean:.1f} ({note})")
            continue
        zero = floors.zero_shot.get(task) if main else None
        if main and zero is None and task in ZERO_SHOT_TASKS:
            note = "; ".join(filter(None, [note, "zero-shot not recorded"]))
        rand = (floors.random_init or {}).get(task) if main else None
        verdict = baseline_learned(task if main else f"{task} {metric}", mean, blind, zero, hw=hw,
                                   random_init=mean_hw(rand)[0] if rand else None)
        learned += [task] if verdict else []
        parts.append(verdict.text + (f" ({note})" if note else ""))
    return learned, "; ".join(parts)


@functools.cache
def _blind_in(task: str, metric: str, max_eval=None, data_dir=None) -> float:
    """The input-blind floor (repro.floors.blind_floor: the training majority label, predicted for
    every dev example) in another metric than the task's main one (MRPC's accuracy)."""
    from collections import Counter

    from .data import load_glue
    from .metrics import glue_metrics

    majority = Counter(r["label"] for r in load_glue(task, "train", data_dir)).most_common(1)[0][0]
    labels = [r["label"] for r in load_glue(task, "dev", data_dir, limit=max_eval, seed=0)]
    return float(glue_metrics(task, [majority] * len(labels), labels)[metric])
