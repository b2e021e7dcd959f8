"""The study's verdicts: one row per paper claim, computed from what the notebooks wrote.

Inputs, per notebook, under <results>/<profile>/<notebook>/: summary.json, the CSV tables, and the
run records of that notebook's latest execution (run.json names it). Each claim has a rule, stated
in its row, that turns our numbers into one of VERDICTS. The papers give point claims without a
tolerance, so the thresholds are ours: "reproduced" allows 20% less than the claimed effect, and
"comparable accuracy" is an equivalence test at a stated margin (repro.stats). A claim whose
notebook has not run at this profile is "not measured", and the row says which notebook to run.

The rules live in repro.rules with their history: a claim is judged by the version in force before
the earliest record its verdict rests on, and where a rule changed after data of its notebooks were
first recorded, the verdict under each version is shown beside it (`verdicts_by_version`).

The `smoke` profile gives no verdicts: its tiny models and few steps check that the pipeline runs,
they measure nothing, so every claim's verdict there is SMOKE_VERDICT. The rules still run: what
they would say is kept in the column `rule_verdict` (at other profiles, the verdict itself).

Savings are written as "12.3% less time" or "4.5% more time", never as a negative "less".
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import rules, stats
from .floors import LEARNED_RULE, baseline_learned, blind_floor, zero_shot_floor
from .metrics import main_metric
from .rules import COUNTED_METRIC, grade, task_tests, task_verdict
from .results import fewer_flops, format_pm, from_jsonable, load_runs, load_runs_raw, mean_hw, read_json, results_root, saving

RULE_VERDICTS = ("reproduced", "partly", "not reproduced", "not measured")  # what a rule may say
SMOKE_VERDICT = "smoke: not a measurement"  # every verdict at the smoke profile
PARTIAL_VERDICT = "partial"  # some of the claim's runs are still to run: no final verdict yet
# made by code that is no longer the package's (stale runs, or outputs from before run-level
# resume, when code was not tracked): shown, never given a verdict until the notebook re-runs
OUTDATED_VERDICT = "outdated"
VERDICTS = RULE_VERDICTS + (PARTIAL_VERDICT, OUTDATED_VERDICT, SMOKE_VERDICT)
NO_VERDICT_PROFILES = ("smoke",)


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

    def outdated(self, notebook: str) -> str | None:
        """Why the notebook's outputs are not what the package computes now, or None: stale runs
        (code_state), or outputs made before run-level resume by a notebook whose source changed
        since (the runner's run.json keeps the source's hash)."""
        import hashlib

        from .runner import NOTEBOOKS_DIR
        summary = self.summary(notebook)
        if "run_ids" in summary:
            state = code_state(summary, self.codes)
            return None if state == "current" else state
        made = read_json(self.finished(notebook) / "run.json").get("request", {}).get("source_sha256")
        source = NOTEBOOKS_DIR / f"{notebook}.py"
        if made and source.exists() and made != hashlib.sha256(source.read_bytes()).hexdigest():
            return "made before run-level resume by an earlier version of the notebook"
        return None

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


# ----------------------------------------------------------------------------- PLD

# PLD Fig. 1 read as a rule on bottom/top ratios (mean, 95% half-width over seeds): PostLN's
# bottom blocks get clearly less gradient than its top ones, PreLN's about the same
SHRUNK, BALANCED = 0.8, (0.8, 1.25)


def imbalance_shown(post: tuple[float, float], pre: tuple[float, float]) -> bool:
    """Does one measure show the paper's picture? PostLN's ratio < SHRUNK with its whole interval
    below 1, and PreLN's ratio within BALANCED (0.8-1.25: as unbalanced either way on a log scale)."""
    (p, p_hw), (q, _) = post, pre
    top = p + (p_hw if math.isfinite(p_hw) else 0.0)
    return p < SHRUNK and top < 1 and BALANCED[0] <= q <= BALANCED[1]


def _gradient_norms(s: Store) -> dict:
    """PLD Fig. 1 by analysis.imbalance_shown, per measure (parameter / input gradients): at
    initialisation at every depth >= 12 layers, over seeds; shallower models and the trained pair
    are shown beside it (the trained pair, one seed, can make the verdict "partly" at most)."""
    g = s.summary("gradient_norms")
    st = pd.DataFrame(g.get("stats", []))
    if st.empty:
        raise Missing("the gradient_norms notebook has no measurement yet (python -m repro run gradient_norms)")
    cell = {(r.shape, r.stage, r.variant, r.metric): (r.mean, r.hw) for r in st.itertuples()}
    nan = (math.nan, math.nan)

    def text(shape, stage):
        return ", ".join(f"{m} PostLN {pm_ratio(*cell.get((shape, stage, 'PostLN', m), nan))} / PreLN "
                         f"{pm_ratio(*cell.get((shape, stage, 'PreLN', m), nan))}" for m in ("input", "param"))

    def shows(shape, stage, m):
        post, pre = cell.get((shape, stage, "PostLN", m)), cell.get((shape, stage, "PreLN", m))
        return bool(post and pre and imbalance_shown(post, pre))
    init = st[st["stage"] == "init"]
    shapes = sorted({(r.layers, r.shape) for r in init.itertuples()})
    deep = [sh for L, sh in shapes if L >= 12]
    shallow = "; ".join(f"{sh}: {text(sh, 'init')}" for L, sh in shapes if L < 12)
    trained = sorted({(r.shape, r.stage) for r in st[st["stage"] != "init"].itertuples()})
    after = "; ".join(f"{sh} {stage} (1 seed): {text(sh, stage)}" for sh, stage in trained)
    after_shows = any(shows(sh, stage, m) for sh, stage in trained for m in ("param", "input"))
    facts = {"deep": bool(deep), "per": [shows(sh, "init", m) for sh in deep for m in ("param", "input")],
             "trained_shows": after_shows, "trained_per": [shows(*trained[0], m) for m in ("input", "param")] if trained else []}
    if not deep:
        return {"ours": f"only shallow models measured ({shallow})", "n": "", "scale": "", "facts": facts}
    ours = "bottom/top ratio at init: " + "; ".join(f"{sh}: {text(sh, 'init')}" for sh in deep)
    return {"ours": ours + (f" (shallower: {shallow})" if shallow else "") + (f"; after training: {after}" if after else ""),
            "n": f"{int(init['n'].max())} seeds", "value": cell.get((deep[0], "init", "PostLN", "input"), nan)[0],
            "hw": cell.get((deep[0], "init", "PostLN", "input"), nan)[1], "unit": "PostLN bottom/top",
            "scale": f"from scratch, {', '.join(deep)} (layers x width), at initialisation", "facts": facts}


def pm_ratio(mean: float, hw: float) -> str:
    return format_pm(mean, hw, 2)


def _pld_time(s: Store) -> dict:
    """PLD's saving of time per sample. The verdict's number: pld_schedule's paired steps at the
    paper's depth for the variant it leads with (the paper's keep-probability formula unless asked
    otherwise), mean over the pairs with its interval; the other variant and pld_pretraining's
    paired timing are shown beside it (the latter is the verdict's number only without pld_schedule)."""
    from .pld import saving_text

    parts, primary = [], None
    try:
        sched = s.summary("pld_schedule")
        timing, lead = sched.get("timing") or {}, sched.get("default_variant", "paper")
        for v in sorted(timing, key=lambda v: v != lead):
            r = timing[v]
            parts.append(f"{v} formula{' (the verdict)' if v == lead else ''}, {r['shape']}: {saving_text(r)}")
        if lead in timing:
            r = timing[lead]
            primary = (100 * r["time_saving"], 100 * r["hw"], f"{r['shape']} (layers x width), {lead} formula",
                       f"{r['pairs']} step pairs, 1 run per formula", "pld_schedule")
    except Missing:
        pass
    try:
        p = s.summary("pld_pretraining")
        if p.get("pld_time_per_sample_saving_paired") is not None:
            paired = 100 * p["pld_time_per_sample_saving_paired"]
            parts.append(f"pld_pretraining ({p.get('layers', '?')} layers): paired steps {saving(paired)}, whole runs "
                         f"{saving(100 * p['pld_time_per_sample_saving_vs_preln'])}, share of block compute skipped "
                         f"{100 * (1 - p['pld_compute_fraction']['realized']):.1f}%")
            primary = primary or (paired, math.nan, f"{p.get('layers', '?')} layers, pld_pretraining", "1 timing, 1 seed",
                                  "pld_pretraining")
    except Missing:
        pass
    if primary is None:
        raise Missing("run the pld_schedule notebook (or pld_pretraining)")
    saved, hw, scale, n, source = primary
    return {"ours": "; ".join(parts), "n": n, "value": saved, "hw": hw, "unit": "% time saved",
            "scale": f"{scale}, theta_bar 0.5", "facts": {"saving": saved},
            "used": (source,)}  # the verdict's notebook: the other's number, shown beside, does not hold it back


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _pilot_text(p: dict) -> str:
    """The learning-rate pilot's finding beside the speed-up: each method's best and largest stable
    rate, and whether PostLN could train at PLD's best rate (the paper's premise: it cannot)."""
    chosen, lrs = p.get("chosen") or {}, p.get("pilot_lrs") or []
    if not chosen or not lrs:
        return ""
    parts = [f"{arch} best {c['best']:g}, stable up to {c['max_stable']:g}" if c.get("best") else f"{arch} no stable rate"
             for arch, c in chosen.items()]
    text = f"Pilot ({p.get('pilot_steps')} steps at {', '.join(f'{x:g}' for x in lrs)}): {'; '.join(parts)}"
    base, pld = chosen.get("postln") or {}, chosen.get("preln_pld") or {}
    if base.get("max_stable") and pld.get("best") and base["max_stable"] >= pld["best"]:
        everywhere = " (and at every rate tried)" if base["max_stable"] >= max(lrs) else ""
        text += (f". PostLN trains stably at PLD's best rate{everywhere}: the paper's premise, a rate PostLN "
                 "cannot use, does not show at this size")
    return text


def _pld_speedup(s: Store) -> dict:
    p = s.summary("pld_pretraining")  # read once: the rule and the pilot's finding share it
    out, pilot = _pld_speedup_rule(p), _pilot_text(p)
    return out | {"ours": f"{out['ours']}. {pilot}" if pilot else out["ours"]}


def _pld_speedup_rule(p: dict) -> dict:
    from .pld import LEARNED_NATS, speedup_text, uses_context

    runs, target, unigram = p["runs"], _num(p.get("target_val_loss")), _num(p.get("unigram_loss"))
    scale = (f"{p['layers']} layers × {p['hidden']}, {p['steps']} MLM steps of {p['batch']} × {p['seq_len']} tokens; "
             "target: the PostLN baseline's final validation loss"
             + (f" {target:.3f}" if target else "") + (f", unigram plateau {unigram:.3f}" if unigram else ""))
    row, base = runs.get("preln_pld_best") or {}, runs.get(p["baseline"], {})
    facts = {"target": target is not None, "status": row.get("status", "not run"),
             "speed": _num(row.get("speedup_paired")) or _num(row.get("speedup_time")),
             "speed_time": _num(row.get("speedup_time")), "context": None in (target, unigram) or uses_context(target, unigram)}
    if target is None:
        return {"ours": "the PostLN baseline has no final loss (not run, or diverged)", "n": "1 seed", "scale": scale,
                "facts": facts}
    same = (runs.get("preln_pld") or {}).get("lr") == row.get("lr")  # PLD's best rate is the baseline's: one run
    others = "" if same else f"; PLD at the baseline's rate: {speedup_text(runs.get('preln_pld'))}"
    if row.get("status") != "ok":
        return {"ours": f"PLD at its best pilot rate: {facts['status']}{others}", "n": "1 seed", "scale": scale,
                "facts": facts}
    ours = f"PLD at lr {row['lr']:g} vs PostLN at lr {base.get('lr', float('nan')):g}: {speedup_text(row)}{others}"
    if not facts["context"]:
        return {"ours": f"{ours}: the baseline ended only {unigram - target:.2f} nats below the unigram plateau (the rule "
                        f"needs {LEARNED_NATS:g}): it has learned little beyond token frequencies, and its final loss lies "
                        "where its curve is nearly flat, so steps to that loss say nothing. It would take a baseline "
                        f">= {LEARNED_NATS:g} nat below: many times these tokens, or a wider model (the gpu profile's "
                        "12 x 768, 10k steps of 128 x 128 tokens)", "n": "1 seed", "scale": scale, "facts": facts}
    return {"ours": ours, "n": "1 seed", "scale": scale, "value": facts["speed"], "unit": "x faster", "facts": facts}


def _pld_glue(s: Store) -> dict:
    summ = s.summary("pld_glue")
    base, tasks = summ["baseline"], summ["tasks"]
    runs = s.runs("pld_glue")
    # its fine-tuning runs: not the pre-training units it asked for, nor the models' zero-shot floors
    runs = runs[(runs["notebook"] == "pld_glue") & runs["task"].isin(tasks) & runs["method"].isin(summ["methods"])]
    method = "preln_pld_best" if "preln_pld_best" in summ["methods"] else "preln_pld"
    # per seed: the main metric of each task, PLD minus baseline, averaged over the tasks
    score = {(row["task"], row["method"], int(row["seed"])): row[f"metric.{main_metric(row['task'])}"]
             for _, row in runs.iterrows()}
    # the average counts the tasks the baseline learned (all of them, for the record, when none);
    # floors (repro.floors): input-blind, and the baseline model's zero-shot score as the notebook
    # recorded it (a scratch checkpoint lives in the study's cache, not here)
    all_tasks = tasks
    learned, floor_text = _learned_tasks({t: [v for (tt, mm, _), v in score.items() if tt == t and mm == base]
                                          for t in all_tasks}, zero_shot=(summ.get("zero_shot") or {}).get(base))
    tasks = learned or all_tasks

    def deltas(over):  # per seed, PLD − baseline averaged over the tasks
        return [np.mean([score[t, method, seed] - score[t, base, seed] for t in over])
                for seed in summ["seeds"] if all((t, mm, seed) in score for t in over for mm in (method, base))]
    d, hw, n = mean_hw(deltas(tasks))
    facts = {"deltas": {"all": deltas(all_tasks), "learned": deltas(tasks)}, "learned": bool(learned),
             "blind5": _clears_blind_average({t: [v for (tt, mm, _), v in score.items() if tt == t and mm == base]
                                              for t in all_tasks})}
    ours = (f"{method} − {base}: {pm(d, hw, ' points')} (average over {', '.join(tasks)}; "
            f"{base} against the floors: {floor_text})"
            + ("" if learned or not any(m == base for _, m, _ in score)  # no baseline run yet: nothing to say
               else ": the baseline learned nothing at this scale, so the difference says nothing"
               + _pretraining_size(summ.get("pretraining"))))
    return {"ours": ours, "n": f"{count(len(tasks), 'task')} × {count(n, 'seed')}", "value": d, "hw": hw, "unit": "points vs baseline",
            "scale": f"fine-tuning the pre-trained models on {', '.join(all_tasks)}", "facts": facts}


def _clears_blind_average(scores: dict, max_eval=None) -> bool:
    """The floor of the rules set on 2026-11-25 (pld_glue, earlybert_glue v2): the baseline's
    average over all tasks >= the input-blind average + 5 (True without local GLUE data)."""
    values = [v for vs in scores.values() for v in vs]
    try:
        blind = np.mean([blind_floor(t, max_eval_examples=max_eval) for t in scores])
    except (OSError, ValueError):
        return True
    return bool(values) and float(np.mean(values)) >= blind + 5


def _pretraining_size(pt: dict | None) -> str:
    if not pt:
        return ""
    return (f"; its pre-training saw {pt['tokens']:.2g} tokens (the paper's {pt['paper_tokens'] / pt['tokens']:.0f}x more)"
            + (f" and ended at MLM loss {pt['baseline_val_loss']:.2f}, unigram plateau {pt['unigram_loss']:.2f}"
               if _num(pt.get("baseline_val_loss")) and _num(pt.get("unigram_loss")) else ""))


chance_score = blind_floor  # the input-blind floor (repro.floors): the training majority label's score; STS-B 0


def _learned_tasks(scores: dict, checkpoint=None, tokenizer=None, max_eval=None,
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


# ----------------------------------------------------------------------------- EarlyBERT

def _early_bird(s: Store) -> dict:
    t = s.summary("ticket_mask_distance")
    settings = t.get("settings") or {}
    if not settings:
        raise Missing("run the ticket_mask_distance notebook (its searches have not run)")
    parts = []
    for k, v in settings.items():
        f, where = v["fired_fraction"], "epoch" if k == "fine-tuning" else "pre-training run"
        if not f:
            parts.append(f"{k}: never met in {v['searches']} search(es)")
            continue
        drift = ", ".join(f"{kind} {np.mean(d):.2f}" for kind, d in v["distance_to_last"].items())
        parts.append(f"{k}: met in {v['fired']} of {v['searches']} searches, median {100 * float(np.median(f)):.0f}% of "
                     f"the {where} (range {100 * min(f):.0f}-{100 * max(f):.0f}%, {sum(x > 0.3 for x in f)} after 30%); "
                     f"the detector's ticket differs from the search's last by {drift}")
    fine = settings.get("fine-tuning", {}).get("fired_fraction") or []
    return {"ours": "; ".join(parts), "n": ", ".join(f"{v['searches']} {k} searches" for k, v in settings.items()),
            "value": 100 * float(np.median(fine)) if fine else None, "unit": "% of the epoch",
            "scale": f"epsilon {t['epsilon']}, window {t['window']}, tasks {', '.join(t.get('tasks', []))}",
            "facts": {"settings": {k: {"fired": v["fired"], "searches": v["searches"], "fractions": list(v["fired_fraction"])}
                                   for k, v in settings.items()}}}


def _eb_runs(s: Store, notebook: str) -> tuple[pd.DataFrame, str]:
    """A comparison notebook's runs table and the method its summary calls EarlyBERT."""
    return s.table(notebook, "runs"), s.summary(notebook).get("earlybert", "earlybert")


def _counted(s: Store, df: pd.DataFrame, notebook: str = "earlybert_glue") -> pd.DataFrame:
    """The runs table with `value` in each task's counted metric (rules.COUNTED_METRIC: MRPC by
    accuracy) and `counted_by` naming it. The metric comes
    from the table's column of that name, else from the runs' records; a task keeps its main metric
    where some of its runs lack it."""
    out = df.assign(counted_by=[main_metric(t) for t in df["task"]])
    for task, metric in COUNTED_METRIC.items():
        rows = out["task"] == task
        if not rows.any():
            continue
        if metric in out:
            got = out.loc[rows, metric]
        else:
            try:
                recs = s.runs(notebook)
                recs = recs[recs["task"] == task].dropna(subset=["seed"])
                by = {(m, int(sd)): v for m, sd, v in zip(recs["method"], recs["seed"], recs[f"metric.{metric}"])}
            except KeyError:  # no records, or none with this metric
                continue
            got = pd.Series([by.get((m, int(sd))) for m, sd in zip(out.loc[rows, "method"], out.loc[rows, "seed"])],
                            index=out.index[rows], dtype=float)
        if got.notna().all():
            out.loc[rows, "value"], out.loc[rows, "counted_by"] = got.astype(float), metric
    return out


def _dense_learned(s: Store, df: pd.DataFrame) -> tuple[list[str], list[str], str]:
    """earlybert_glue's tasks where dense learned (LEARNED_RULE, repro.floors, in each task's metric
    in `counted_by` when the table has it), the tasks a comparison counts (those, or all of them for
    the record when none) and dense against the floors."""
    summ = s.summary("earlybert_glue")
    metrics = dict(zip(df["task"], df["counted_by"])) if "counted_by" in df else None
    learned, text = _learned_tasks({t: list(g["value"]) for t, g in df[df["method"] == "dense"].groupby("task")},
                                   checkpoint=summ.get("checkpoint"), max_eval=summ.get("n_eval"), metrics=metrics)
    return learned, learned or sorted(df["task"].unique()), text


def _paired_seeds(df: pd.DataFrame, a: str, b: str) -> dict:
    """task -> how many seeds have both a and b (the tasks a paired difference is over)."""
    ran = df[df["method"].isin([a, b])].groupby(["task", "seed"])["method"].nunique()
    return {t: int(n) for t, n in (ran == 2).groupby(level="task").sum().items() if n}


def _eb_facts(s: Store, df: pd.DataFrame, pairs: dict[str, tuple[str, str]]) -> tuple[dict, pd.DataFrame, str]:
    """What the EarlyBERT GLUE rules judge: per task and pair, the paired differences in the main
    metric and in the counted one; the tasks dense learned in each; whether dense's average clears
    the input-blind average by 5 (the 2026-11-25 rule). Returns (facts, counted table, floors text)."""
    from .earlybert_tables import paired

    dfc = _counted(s, df)
    learned, _, floor_text = _dense_learned(s, dfc)
    learned_main, _, _ = _dense_learned(s, df)
    dense = df[df["method"] == "dense"]
    diffs = {which: {t: {k: paired(g, a, b) for k, (a, b) in pairs.items()} for t, g in table.groupby("task")}
             for which, table in (("main", df), ("counted", dfc))}
    return ({**diffs, "tasks": sorted(df["task"].unique()), "learned": learned, "learned_main": learned_main,
             "metric": dict(zip(dfc["task"], dfc["counted_by"])),
             "blind5": _clears_blind_average({t: list(g["value"]) for t, g in dense.groupby("task")},
                                             s.summary("earlybert_glue").get("n_eval"))}, dfc, floor_text)


def _per_task_text(facts: dict, parts: dict[str, str], margin: float, tasks: list[str], names: dict) -> tuple[str, dict]:
    """One clause per task, each comparison's stats verdict and the task's; MRPC's F1 beside its
    accuracy. Returns (text, {task: {pair: Test}})."""
    tests = task_tests({**facts, "learned": tasks}, parts, margin)
    clauses = []
    for t, tt in tests.items():
        metric = facts["metric"].get(t, main_metric(t))
        side = ""
        if metric != main_metric(t):
            f1 = [f"{names[p]} {pm(*mean_hw(facts['main'][t][p])[:2])}" for p in parts if facts["main"].get(t, {}).get(p)]
            side = f" ({main_metric(t)} beside: {', '.join(f1)})"
        clauses.append(f"{t} {metric}: " + ", ".join(f"{names[p]} {x.text()}" for p, x in tt.items())
                       + f"{side} → {task_verdict(tt)}")
    return "; ".join(clauses), tests


def _weakest(tests: dict, pair: str) -> tuple[float | None, float | None, str]:
    """The counted task whose `pair` interval reaches lowest: its mean, half-width and name."""
    got = [(x.mean - (x.hw if math.isfinite(x.hw) else 0), x.mean, x.hw, t) for t, tt in tests.items()
           if (x := tt.get(pair)) and x.n]
    if not got:
        return None, None, ""
    _, m, hw, t = min(got)
    return m, hw, t


def _eb_glue(s: Store) -> dict:
    df, e = _eb_runs(s, "earlybert_glue")
    facts, dfc, floor_text = _eb_facts(s, df, {"dense": (e, "dense"), "random": (e, "random")})
    learned = facts["learned"]
    counted = dfc[dfc["task"].isin(learned or facts["tasks"])]
    seeds = _paired_seeds(counted, e, "dense")
    n = sum(seeds.values())
    if n == 0:
        raise Missing("earlybert_glue has no EarlyBERT ticket with its dense run yet")
    p = rules.RULES["earlybert_glue"][-1].params
    text, tests = _per_task_text(facts, p["parts"], p["margin"], learned or facts["tasks"],
                                 {"dense": "− dense", "random": "− random"})
    d, hw, task = _weakest(tests, "dense")
    ours = (f"EarlyBERT ({e} ticket), per task, paired by seed: {text} (over {', '.join(seeds)}; dense against the "
            f"floors: {floor_text})" + ("" if learned else ": dense learned nothing at this scale, so the differences say nothing"))
    per = set(seeds.values())
    return {"ours": ours, "n": f"{count(len(seeds), 'task')} × {count(per.pop(), 'seed')}" if len(per) == 1 else
            f"{n} task-seed pairs over {len(seeds)} tasks", "value": d, "hw": hw,
            "unit": f"points vs dense ({task}, the counted task reaching lowest)",
            "scale": f"{', '.join(facts['tasks'])}; {_subset(df)} training examples", "facts": facts}


TICKET_PAIRS = {"detector-end": ("detector", "end"), "fixed-end": ("fixed", "end"),
                "detector-random": ("detector", "random"), "fixed-random": ("fixed", "random")}


def _early_ticket(s: Store) -> dict:
    from .earlybert_tables import paired

    df = s.table("earlybert_glue", "runs")
    facts, dfc, floor_text = _eb_facts(s, df, TICKET_PAIRS)
    learned = facts["learned"]
    counted = dfc[dfc["task"].isin(learned or facts["tasks"])]
    n = max(len(paired(counted, a, b)) for a, b in TICKET_PAIRS.values())
    if n == 0:
        raise Missing("run earlybert_glue with all four tickets (detector, fixed, end, random)")
    p = rules.RULES["early_ticket"][-1].params
    text, tests = _per_task_text(facts, p["parts"], p["margin"], learned or facts["tasks"],
                                 {k: k.replace("-", " − ") for k in TICKET_PAIRS})
    d, hw, task = _weakest(tests, "detector-end")
    ours = (f"per task, paired by seed: {text} (over {', '.join(_paired_seeds(counted, 'detector', 'end'))}; dense "
            f"against the floors: {floor_text})" + ("" if learned else ": dense learned nothing at this scale, so the "
                                                    "differences say nothing"))
    return {"ours": ours, "n": f"{n} task-seed pairs", "value": d, "hw": hw,
            "unit": f"points, detector − end-of-epoch ticket ({task}, the counted task reaching lowest)",
            "scale": f"{', '.join(facts['tasks'])}; tickets trained alike from the rewound weights", "facts": facts}


def _subset(df: pd.DataFrame) -> str:
    return str(df["n_train"].iloc[0]) if "n_train" in df and pd.notna(df["n_train"].iloc[0]) else "all"


def _eb_time(s: Store) -> dict:
    parts, primary, primary_hw, as_run = [], None, None, None
    for nb in ("earlybert_glue", "earlybert_squad"):
        try:
            df, e = _eb_runs(s, nb)
        except Missing:
            continue
        eb = df[df["method"] == e]
        if eb.empty or "time_saving_official_pct" not in eb:  # not run yet, or outputs from before both accountings
            continue
        t, hw, n = mean_hw(eb["time_saving_pct"])  # equal epochs: the rule's
        o, hwo, _ = mean_hw(eb["time_saving_official_pct"])  # as run: the official accounting
        f, _, _ = mean_hw(eb["flops_saving_pct"])
        k = int((eb["timing"] == "paired").sum()) if "timing" in eb else 0
        how = ("per-step costs timed side by side" if k == n else
               "whole-run wall-clock, the runs timed under different loads" if k == 0 else
               f"per-step costs timed side by side for {k}, whole-run wall-clock for {n - k}")
        parts.append(f"{nb.removeprefix('earlybert_')}: {saving(t, hw)} with equal epochs, {saving(o, hwo)} as run "
                     f"({fewer_flops(f)}, n={n}; {how})")
        primary, primary_hw, as_run = (t, hw, o) if primary is None else (primary, primary_hw, as_run)
    try:
        e = s.summary("earlybert_pretraining")["methods"]["earlybert"]
        parts.append(f"pre-training: {saving(e['time_saving_pct'])} ({fewer_flops(e['flops_saving_pct'])}, n=1)")
    except (Missing, KeyError):
        pass
    if primary is None:
        raise Missing("run the earlybert_glue or earlybert_squad notebook")
    return {"ours": "time against dense, search included: " + "; ".join(parts), "n": "per setting",
            "value": primary, "hw": primary_hw, "unit": "% time saved, equal epochs",
            "scale": "MiniLM-L6 fine-tuning; small BERT pre-training", "facts": {"equal": primary, "as_run": as_run}}


def _eb_squad(s: Store) -> dict:
    from .earlybert_tables import paired

    summ = s.summary("earlybert_squad")
    scale = (f"SQuAD v1.1 split by article, {summ.get('n_train_windows') or '?'} training windows, "
             f"{summ.get('n_eval_questions') or '?'} evaluation questions")
    if summ.get("gate") == "failed":
        try:
            dense = s.table("earlybert_squad", "runs").query("method == 'dense'")["f1"]
            reached = f"F1 {dense.iloc[0]:.1f}, "
        except (Missing, KeyError, IndexError):
            reached = ""
        return {"ours": f"not run: dense seed 0 reached {reached}below the bar of {summ['dense_f1_bar']:g} that the "
                        "comparison waits for (dense learned too little for a ticket to be compared with it). It would take "
                        "more training questions than the offline dev half (SQuAD's own training set has 88k) or a "
                        "stronger checkpoint (the gpu profile's bert-base-uncased)", "n": "1 seed", "scale": scale,
                "verdict": "not measured"}
    df, e = _eb_runs(s, "earlybert_squad")
    diffs = paired(df, e, "dense", "f1", keys=("seed",))
    d, hw, n = mean_hw(diffs)
    r, hwr, _ = mean_hw(paired(df, e, "random", "f1", keys=("seed",)))
    if n == 0:
        raise Missing("earlybert_squad has no EarlyBERT ticket with its dense run yet")
    dense = df[df["method"] == "dense"]["f1"].mean()
    learned = dense >= SQUAD_LEARNED_F1
    test = stats.comparable(diffs, rules.SQUAD_MARGIN)
    ours = (f"EarlyBERT − dense {test.text()} F1 (dense {dense:.1f}); EarlyBERT − random {pm(r, hwr)} F1"
            + ("" if learned else f": dense learned nothing at this scale (F1 < {SQUAD_LEARNED_F1:g}), so the differences say nothing"))
    return {"ours": ours, "n": f"{n} seed{'s' * (n != 1)}", "value": d, "hw": hw, "unit": "F1 vs dense", "scale": scale,
            "facts": {"diffs": diffs, "dense": float(dense)}}


# below this the dense model has not learned to extract answers (the rule's, repro.rules)
SQUAD_LEARNED_F1 = rules.RULES["earlybert_squad"][-1].params["min_dense_f1"]


def _paper_saving() -> str:
    from .earlybert import PAPER_TIME_SAVING
    return f"{PAPER_TIME_SAVING[0]:.0f}-{PAPER_TIME_SAVING[1]:.0f}%"


CLAIMS: list[Claim] = [  # each claim's rule: repro.rules.RULES[name]
    Claim("postln_gradients", "PostLN gradients shrink towards the input layers; PreLN's are balanced",
          "PLD Fig. 1 (a figure; no single number)",
          ("gradient_norms",), ("gradient_norms", "grad_norms"), _gradient_norms),
    Claim("pld_time", "PLD saves ~24% time per sample at theta_bar 0.5", "24% (BERT-base, 12 layers)",
          ("pld_schedule", "pld_pretraining"), ("pld_schedule", "time_saving"), _pld_time),
    Claim("pld_speedup", "PLD (with its larger learning rate) reaches the baseline 2.5x faster", "2.5x",
          ("pld_pretraining",), ("pld_pretraining", "val_loss"), _pld_speedup),
    Claim("pld_glue", "PLD's downstream GLUE is comparable to the baseline's",
          "+0.8 GLUE (82.9 vs 82.1, reimplemented baseline)",
          ("pld_glue",), ("pld_glue", "glue_scores"), _pld_glue),
    Claim("early_bird", "Early-bird tickets emerge early: mask distance < 0.1 within a small fraction of training",
          "official draw at 20% of the first fine-tuning epoch",
          ("ticket_mask_distance",), ("ticket_mask_distance", "mask_distance"), _early_bird),
    Claim("early_ticket", "An early-bird ticket trains as well as the late ticket, and better than a random one",
          "EarlyBERT trains the ticket drawn early (official: at 20% of the first epoch)",
          ("earlybert_glue",), ("earlybert_glue", "earlybert_glue"), _early_ticket),
    Claim("earlybert_glue", "EarlyBERT ≈ dense BERT on GLUE, and better than a random ticket",
          "'comparable' (abstract; the table could not be retrieved offline)",
          ("earlybert_glue",), ("earlybert_glue", "earlybert_glue"), _eb_glue),
    Claim("earlybert_time", "EarlyBERT saves 35-45% training time, search included", _paper_saving(),
          ("earlybert_glue", "earlybert_squad", "earlybert_pretraining"), ("earlybert_glue", "earlybert_glue"), _eb_time),
    Claim("earlybert_squad", "EarlyBERT ≈ dense BERT on SQuAD v1.1",
          "'comparable' (abstract; the table could not be retrieved offline)",
          ("earlybert_squad",), ("earlybert_squad", "earlybert_squad"), _eb_squad),
]


def judge(key: str, got: dict, judged_at=None, first_seen=None) -> tuple[int, dict[int, str]]:
    """The rule versions for one claim: (the index of the version that judges, {index: its verdict}
    for it and every version shown beside it). A measure that gave a verdict itself (no rule can
    judge: "not measured") gives it under every version, and nothing is shown beside it."""
    g, facts = rules.governing(key, judged_at), got.get("facts")
    if facts is None:  # the same under every version: nothing to show beside it
        return g, {g: got["verdict"]}
    return g, {i: rules.verdict(key, i, facts) for i in sorted(set(rules.shown(key, judged_at, first_seen)) | {g})}


def versions_text(key: str, g: int, verdicts: dict[int, str], after) -> str:
    """"v1 (2026-11-25): partly; v2 (2026-11-29) [judges] [set after the first data]: reproduced",
    oldest first; empty where one version is all there is to show."""
    if len(verdicts) < 2:
        return ""
    return "; ".join(f"{rules.label(key, i)}{' [judges]' if i == g else ''}"
                     f"{' [set after the first data]' if after is not None and rules.RULES[key][i].when > rules.parse_time(after) else ''}"
                     f": {v}" for i, v in verdicts.items())


def assess(profile: str, root: Path | str | None = None) -> pd.DataFrame:
    """One row per claim: claim, paper, ours (text), n, scale, verdict, rule, notebooks, figure,
    value / hw / unit (our primary number and its interval half-width, for plots), and
    rule_verdict: what the rule says, which is the verdict except at the smoke profile, where
    every verdict is SMOKE_VERDICT. The rule is the version of repro.rules in force before the
    earliest record the verdict rests on (data_from; rule_version names it); verdicts_by_version
    gives the verdict under each version since data of the claim's notebooks were first recorded
    at this profile, where there is more than one."""
    store = Store(profile, Path(root or results_root()))
    rows = []
    for c in CLAIMS:
        try:
            got = c.measure(store)
        except Missing as e:
            got = {"ours": f"not measured: {e}", "n": "", "scale": "", "verdict": "not measured", "unit": ""}
        used = got.pop("used", c.notebooks)  # the notebooks whose numbers the verdict rests on
        judged_at = store.judged_from(used)
        first = store.first_recorded(c.notebooks)
        first = min([t for t in (first, judged_at) if t], key=rules.parse_time, default=None)
        g, verdicts = judge(c.name, got, judged_at, first)
        got.pop("facts", None)
        got["verdict"] = got["rule_verdict"] = verdicts[g]
        assert got["verdict"] in RULE_VERDICTS, got
        partial = [(nb, p) for nb in used if (store.dir(nb) / "summary.json").exists()
                   and (p := store.progress(nb))]
        if partial:  # numbers from some of the runs: shown, never given a final verdict
            runs = "; ".join(f"{nb} {k} of {n} runs" for nb, (k, n) in partial)
            got = {**got, "verdict": PARTIAL_VERDICT, "ours": f"partial ({runs}): {got['ours']}"}
        old = [(nb, why) for nb in used if got["verdict"] != "not measured"
               and (store.dir(nb) / "summary.json").exists() and (why := store.outdated(nb))]
        if old:  # numbers the package's code no longer computes: shown, no verdict
            why = "; ".join(f"{nb}: {state}" for nb, state in old)
            got = {**got, "verdict": OUTDATED_VERDICT,
                   "ours": f"outdated ({why}; re-run {', '.join(nb for nb, _ in old)}): {got['ours']}"}
        if profile in NO_VERDICT_PROFILES:
            got["verdict"] = SMOKE_VERDICT
        rows.append({"claim": c.claim, "paper": c.paper, "value": None, "hw": None, **got,
                     "rule": rules.RULES[c.name][g].text, "rule_version": rules.label(c.name, g),
                     "verdicts_by_version": versions_text(c.name, g, verdicts, first),
                     "data_from": judged_at and str(judged_at)[:16],
                     "notebooks": ", ".join(c.notebooks), "figure": c.figure and store.figure(*c.figure)})
    return pd.DataFrame(rows, index=pd.Index([c.name for c in CLAIMS], name="key"))


# ----------------------------------------------------------------------------- REPORT.md

VERSION_ENTRY = re.compile(r"^v(\d+) \(([^)]*)\)((?: \[[^\]]+\])*): (.*)$")


def rule_versions(claims: pd.DataFrame, cell=str) -> list[str]:
    """REPORT.md's "Rule versions": for each claim whose rule changed since data of its notebooks
    were first recorded, the verdict under every version since, oldest first, and why each was set."""
    from .results import markdown_table

    rows = []
    for key, text in claims.get("verdicts_by_version", pd.Series(dtype=object)).items():
        for entry in (text.split("; ") if isinstance(text, str) and text else []):
            if m := VERSION_ENTRY.match(entry):
                v = rules.RULES[key][int(m[1]) - 1]
                rows.append({"claim": key, "version": f"v{m[1]}", "set": v.set[:16].replace("T", " "),
                             "verdict": m[4], "note": m[3].strip().replace("[", "").replace("]", ";").rstrip(";"),
                             "why it was set": v.why})
    if not rows:
        return []
    return ["\n## Rule versions\n",
            "Each claim is judged by the latest version of its rule set before the earliest record its verdict rests "
            "on (`judges`). Where a rule changed after data of the claim's notebooks were first recorded at this "
            "profile (even data since re-run), the verdict under every version from the one then in force is shown, "
            "oldest first, on the same numbers; `set after the first data` marks versions whoever set them may have "
            "set with data in view.\n", markdown_table(pd.DataFrame(rows).map(cell))]

SHOWN = ["claim", "paper", "ours", "n", "scale", "verdict"]


def provenance(profile: str, root: Path | str | None = None, notebooks=None) -> pd.DataFrame:
    """Where and when each notebook's outputs were made: one row per notebook that has run."""
    from .runner import ORDER

    store, rows = Store(profile, Path(root or results_root())), []
    for nb in notebooks or [n for n in ORDER if n != "report"]:
        d = store.dir(nb)
        if not (d / "run.json").exists() or not (d / "summary.json").exists():
            continue
        run, summary = read_json(d / "run.json"), read_json(d / "summary.json")
        prov = summary.get("provenance", {})
        code = code_state(summary, store.codes)
        rows.append({"notebook": nb, "runs": f"{summary.get('done', '?')} of {summary.get('planned', '?')}",
                     "code": code, "minutes": round(run["seconds"] / 60, 1), "finished (UTC)": run["finished"][:16],
                     "git": (run["git_rev"] or "?")[:7] + ("+dirty" if run.get("git_dirty") else ""),
                     "device": prov.get("gpu") or prov.get("device"), "cpu": prov.get("cpu"),
                     "threads": prov.get("torch_threads"), "torch": prov.get("torch")})
    return pd.DataFrame(rows)


def code_state(summary: dict, codes: dict) -> str:
    """"current", or which runs are stale: the repro modules that computed them changed since."""
    from .study import changed_modules

    if "run_ids" not in summary:
        return "recorded before run-level resume (code not tracked)"
    changed = [changed_modules(codes.get(i)) for i in summary["run_ids"]]
    stale = [c for c in changed if c]
    if not stale:
        return "current"
    return f"stale: {len(stale)} of {len(changed)} runs made before {', '.join(sorted({m for c in stale for m in c}))} changed"


def baselines(profile: str, root: Path | str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The dense GLUE baselines every EarlyBERT comparison stands on (glue_finetune's summary):
    per task its score against the floors and whether it learned, and the recipe checks in words
    (learning rate and length, length-grouped batches). Empty when glue_finetune has not run."""
    s = Store(profile, Path(root or results_root()))
    try:
        summary = s.summary("glue_finetune")
    except Missing:
        return pd.DataFrame(), []
    rows = [{"task": t, "metric": h["metric"], "dense": round(h["mean"], 1), "seeds": h["n_seeds"],
             "input-blind": round(h["blind"], 1),
             "zero-shot": None if h.get("zero_shot") is None else round(h["zero_shot"], 1),
             "learned": "yes" if h["learned"] else "no", "why": h["floors"]} for t, h in summary["tasks"].items()]
    notes = []
    c = summary.get("recipe_check")
    if c:
        notes.append(f"Recipe check, {c['task']} seed {c['seed']}: {c['metric']} "
                     + ", ".join(f"{x['value']:.1f} (lr {x['lr']:g}, {x['epochs']:g} epochs)" for x in c["runs"]) + ".")
    b = summary.get("batching_check")
    if b:
        notes.append(f"Length-grouped vs random batches, {b.get('task', 'MRPC')} seeds {b['seeds']}: {b['metric']} "
                     f"{b['a_mean']:.1f} vs {b['b_mean']:.1f} (difference {format_pm(b['diff'], b['diff_hw'])}); "
                     f"{b['speedup']:.2f}x the training examples per second.")
    if not summary.get("complete", True):
        notes.append(f"Partial: {summary.get('done')} of {summary.get('planned')} runs.")
    return pd.DataFrame(rows), notes


def tickets(profile: str, root: Path | str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The early-bird test behind the early_ticket claim (earlybert_glue's runs): per task, each
    ticket's score (mean ± 95% interval over seeds) and the paired differences early − late
    (end-of-epoch ticket) and early − random; then the same over the tasks the claim counts (those
    dense learned). Empty until two kinds of ticket have trained."""
    from .earlybert_tables import TICKETS, early_bird_table, shown
    s = Store(profile, Path(root or results_root()))
    try:
        df = _counted(s, s.table("earlybert_glue", "runs"))  # MRPC by accuracy, as the claim counts it
    except Missing:
        return pd.DataFrame(), []
    tk = df[df["method"].isin(TICKETS)]
    if tk["method"].nunique() < 2:
        return pd.DataFrame(), []
    learned, counted, _ = _dense_learned(s, df)
    per_task = early_bird_table(tk).drop(index="all tasks")
    over = early_bird_table(tk[tk["task"].isin(counted)]).loc[["all tasks"]]
    table = shown(pd.concat([per_task, over.rename(index={"all tasks": f"counted: {', '.join(counted)}"})]))
    table.insert(0, "dense learned", [("yes" if t in learned else "no") if t in per_task.index else "" for t in table.index])
    table = table.rename(columns={"n": "detector-end pairs"})
    notes = [] if learned else ["Dense learned none of these tasks, so the differences say nothing about the claim."]
    if (p := s.progress("earlybert_glue")):
        notes.append(f"Partial: {p[0]} of {p[1]} runs.")
    return table.reset_index(), notes


def sections(profile: str, root: Path | str | None = None) -> list[tuple[str, str, pd.DataFrame, list[str]]]:
    """REPORT.md's sections after the claims: (title, what it is, table, notes), those with a table."""
    made = [("Dense baselines (glue_finetune)", "What EarlyBERT's GLUE comparisons stand on: a task counts only "
             f"where dense fine-tuning learned it. The rule: {LEARNED_RULE}.", *baselines(profile, root)),
            ("Early, late and random tickets (earlybert_glue)", "The early_ticket claim's numbers: every ticket "
             "trained alike from the rewound weights for the same epochs; detector = drawn when the stopping rule "
             "fires, fixed = at 20% of the search epoch (the official code), end = at the end of the epoch, "
             "random = heads and neurons drawn at random in the EarlyBERT ticket's per-layer numbers. Differences are paired by task and seed, "
             f"in each task's counted metric ({', '.join(f'{t} {m}' for t, m in COUNTED_METRIC.items())}; else its main metric).",
             *tickets(profile, root))]
    return [m for m in made if len(m[2])]


def markdown(claims: pd.DataFrame, prov: pd.DataFrame, profile: str, header: str = "",
             extra: list[tuple[str, str, pd.DataFrame, list[str]]] = ()) -> str:
    """REPORT.md: the claims table, the extra sections (`sections`: the dense baselines, the
    tickets), the rules, the figures, and where the numbers were made."""
    from .results import markdown_table

    def cell(x):  # a table cell: no pipes or newlines
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x).replace("|", "/").replace("\n", " ")

    counts = claims["verdict"].value_counts()
    if profile in NO_VERDICT_PROFILES:
        tally = (f"**No verdicts at the `{profile}` profile.** It is a plumbing check: tiny models trained for a "
                 "few steps on a few dozen examples show that every notebook runs and writes what the report "
                 "reads, not what the methods do. Every verdict below is therefore "
                 f"\"{SMOKE_VERDICT}\", and the numbers are the pipeline's output, not findings. "
                 "Run the `cpu` profile or larger for verdicts.\n")
    else:
        tally = "Verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS if v != SMOKE_VERDICT) + ".\n"
    # at smoke, "no verdicts" comes first, before any text about verdicts
    first = [tally, header] if profile in NO_VERDICT_PROFILES else [header, tally]
    parts = [f"# Reproduction report, `{profile}` profile\n", *first,
             "## Claims\n", markdown_table(claims[SHOWN].map(cell)),
             "\nIntervals are 95% Student-t over seeds (paired differences where the claim compares two methods). "
             "Timings come from the machine below; each claim's text says how they were taken (steps timed side by side, or whole-run wall-clock) and each notebook its timing conditions.\n"]
    for title, intro, table, notes in extra:
        parts += [f"## {title}\n", f"{intro}\n", markdown_table(table.map(cell)), *[f"\n{n}" for n in notes], ""]
    parts += ["## Rules\n", markdown_table(claims[[c for c in ("claim", "rule_version", "rule", "notebooks")
                                                   if c in claims]].map(cell)), *rule_versions(claims, cell),
              "\n## Figures\n"]
    for key, row in claims.iterrows():
        if isinstance(row["figure"], str):
            parts.append(f"**{row['claim']}** ({row['verdict']})\n\n![{key}]({row['figure']})\n")
    parts += ["## Where the numbers were made\n", markdown_table(prov.map(cell)) if len(prov) else "No notebook has run.\n"]
    return "\n".join(parts)
