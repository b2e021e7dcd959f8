"""What every claim's measure reads and shares: the store of one profile's results (`Store`),
`Missing` (an output a claim needs is not there: the row says "not measured"), the `Claim` record,
the report's number formats, and which tasks a baseline learned (repro.floors' rule).

The claims themselves are measured in repro.claims_pld and repro.claims_earlybert, and judged in
repro.report, which adds to `Store` whether a notebook's outputs are still current.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import rules
from .floors import baseline_learned, blind_floor, zero_shot_floor
from .metrics import main_metric
from .results import format_pm, from_jsonable, load_runs, load_runs_raw, mean_hw, read_json


class Missing(Exception):
    """An output a claim needs is not there (its notebook has not run at this profile)."""


@dataclass
class Store:
    """Read-only view of one profile's results."""
    profile: str
    root: Path

    def dir(self, notebook: str) -> Path:
        return self.root / self.profile / notebook

    @functools.cached_property
    def records(self) -> list[dict]:
        """The profile's run records as stored, read once per report."""
        return load_runs_raw(self.profile, root=self.root)

    @functools.cached_property
    def codes(self) -> dict:
        """run id -> the code fingerprint of its record."""
        return {r["run_id"]: r.get("code") for r in self.records}

    def judged_from(self, notebooks) -> str | None:
        """The earliest timestamp of the records the notebooks' outputs were made from (their
        summaries' run_ids); None when no such record is known."""
        stamps = {r["run_id"]: r.get("timestamp") for r in self.records}
        found = [stamps[i] for nb in notebooks if (self.dir(nb) / "summary.json").exists()
                 for i in self.summary(nb).get("run_ids", []) if stamps.get(i)]
        return min(found, key=rules.parse_time) if found else None

    def first_recorded(self, notebooks) -> str | None:
        """The earliest record any of the notebooks wrote at this profile (any execution, also
        ones whose outputs were since remade): when data of the claim were first seen."""
        found = [r["timestamp"] for r in self.records if r.get("notebook") in notebooks and r.get("timestamp")]
        return min(found, key=rules.parse_time) if found else None

    def finished(self, notebook: str) -> Path:
        """The notebook's output folder, or Missing when it holds no finished run."""
        d = self.dir(notebook)
        if not (d / "summary.json").exists():
            raise Missing(f"run the {notebook} notebook (python -m repro run {notebook} --profile {self.profile})")
        return d

    def summary(self, notebook: str) -> dict:
        return from_jsonable(read_json(self.finished(notebook) / "summary.json"))

    def table(self, notebook: str, name: str) -> pd.DataFrame:
        return pd.read_csv(self.finished(notebook) / f"{name}.csv")

    def runs(self, notebook: str) -> pd.DataFrame:
        """The run records the notebook's outputs were made from: the units its summary.json
        lists (reused from earlier executions or trained in this one); for outputs made before
        run-level resume, the records of the execution run.json names."""
        summary = self.summary(notebook)
        df = load_runs(self.profile, root=self.root)
        if "run_ids" in summary:
            return df[df["run_id"].isin(summary["run_ids"])]
        execution = read_json(self.finished(notebook) / "run.json").get("execution")
        df = df[df["notebook"] == notebook]
        return df[df["execution"] == execution] if execution else df

    def progress(self, notebook: str) -> tuple[int, int] | None:
        """(done, planned) units when the notebook's outputs are partial; None when complete."""
        summary = self.summary(notebook)
        return None if summary.get("complete", True) else (summary.get("done", 0), summary.get("planned", 0))

    def figure(self, notebook: str, name: str) -> str | None:
        """The figure's path relative to <results>/<profile>/, where REPORT.md is."""
        return f"{notebook}/{name}.png" if (self.dir(notebook) / f"{name}.png").exists() else None


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


def clears_blind_average(scores: dict, max_eval=None) -> bool:
    """The floor of the rules set on 2026-11-25 (pld_glue, earlybert_glue v2): the baseline's
    average over all tasks >= the input-blind average + 5 (True without local GLUE data)."""
    values = [v for vs in scores.values() for v in vs]
    try:
        blind = np.mean([blind_floor(t, max_eval_examples=max_eval) for t in scores])
    except (OSError, ValueError):
        return True
    return bool(values) and float(np.mean(values)) >= blind + 5


def learned_tasks(scores: dict, checkpoint=None, tokenizer=None, max_eval=None,
                  zero_shot: dict | None = None, metrics: dict | None = None) -> tuple[list[str], str]:
    """The tasks the baseline learned by repro.floors.baseline_learned (LEARNED_RULE): its scores
    (one per seed) against the input-blind floor and, where defined (STS-B), the checkpoint's
    zero-shot score: recorded ({task: score} in `zero_shot`), else computed from `checkpoint` when
    given. `metrics`: {task: metric} where the scores are not in the task's main metric (MRPC
    counted by accuracy): its floor is then in that metric, and it has no zero-shot floor. Returns
    (those tasks, one clause per task). Without local GLUE data there are no floors: every task
    counts, and the text says so."""
    learned, parts = [], []
    for task, values in scores.items():
        if not values:  # a partial study: nothing to compare yet
            parts.append(f"{task}: no baseline run recorded yet")
            continue
        mean, hw, _ = mean_hw(values)
        metric = (metrics or {}).get(task, main_metric(task))
        main = metric == main_metric(task)
        try:
            blind = blind_floor(task, max_eval_examples=max_eval) if main else _blind_in(task, metric, max_eval)
        except (OSError, ValueError):  # no local GLUE data: the report says nothing about floors
            learned.append(task)
            parts.append(f"{task} {mean:.1f} (no GLUE data here for its floors)")
            continue
        zero = (zero_shot or {}).get(task) if main else None
        if zero is None and checkpoint is not None and main:
            try:
                zero = zero_shot_floor(task, str(checkpoint), tokenizer, max_eval_examples=max_eval)
            except (OSError, ValueError, ImportError):  # the checkpoint is not here: the blind floor alone
                zero = None
        verdict = baseline_learned(task if main else f"{task} {metric}", mean, blind, zero, hw=hw)
        learned += [task] if verdict else []
        parts.append(verdict.text)
    return learned, "; ".join(parts)


@functools.cache
def _blind_in(task: str, metric: str, max_eval=None) -> float:
    """The input-blind floor (repro.floors.blind_floor: the training majority label, predicted for
    every dev example) in another metric than the task's main one (MRPC's accuracy)."""
    from collections import Counter

    from .data import load_glue
    from .metrics import glue_metrics

    majority = Counter(r["label"] for r in load_glue(task, "train")).most_common(1)[0][0]
    labels = [r["label"] for r in load_glue(task, "dev", limit=max_eval, seed=0)]
    return float(glue_metrics(task, [majority] * len(labels), labels)[metric])
