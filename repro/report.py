"""The study's verdicts: one row per paper claim, computed from what the notebooks wrote.

Inputs, per notebook, under <results>/<profile>/<notebook>/: summary.json, the CSV tables, and the
run records of that notebook's latest execution (run.json names it). Each claim has a rule, stated
in its row, that turns our number into one of VERDICTS. The papers give point claims without a
tolerance, so the thresholds are ours: "reproduced" allows 20% less than the claimed effect (or a
stated number of points for "comparable accuracy"). A claim whose notebook has not run at this
profile is "not measured", and the row says which notebook to run.

The `smoke` profile gives no verdicts: its tiny models and few steps check that the pipeline runs,
they measure nothing, so every claim's verdict there is SMOKE_VERDICT. The rules still run: what
they would say is kept in the column `rule_verdict` (at other profiles, the verdict itself).

Savings are written as "12.3% less time" or "4.5% more time", never as a negative "less".
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .metrics import main_metric
from .results import format_pm, from_jsonable, load_runs, load_runs_raw, mean_hw, read_json, results_root

RULE_VERDICTS = ("reproduced", "partly", "not reproduced", "not measured")  # what a rule may say
SMOKE_VERDICT = "smoke: not a measurement"  # every verdict at the smoke profile
PARTIAL_VERDICT = "partial"  # some of the claim's runs are still to run: no final verdict yet
VERDICTS = RULE_VERDICTS + (PARTIAL_VERDICT, SMOKE_VERDICT)
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


def saving(pct: float, hw: float = math.nan, noun: str = "time", less: str = "less", more: str = "more") -> str:
    """A saving in words: 12.3 -> "12.3% less time", -75.9 -> "75.9% more time" (the sign is in
    the word, never a negative "less")."""
    if pct is None or not math.isfinite(pct):
        return "–"
    amount = f"{abs(pct):.1f}" + (f" ± {hw:.1f}" if hw is not None and math.isfinite(hw) else "") + "%"
    return f"{amount} {less if pct >= 0 else more} {noun}"


def fewer_flops(pct: float) -> str:
    return saving(pct, noun="FLOPs", less="fewer")


def grade(full: bool, part: bool) -> str:
    return "reproduced" if full else "partly" if part else "not reproduced"


@dataclass(frozen=True)
class Claim:
    name: str
    claim: str
    paper: str  # the paper's number, or why there is none
    rule: str
    notebooks: tuple[str, ...]
    figure: tuple[str, str] | None  # (notebook, figure name) that shows it
    measure: Callable[[Store], dict]  # -> {"ours", "n", "scale", "verdict"}


# ----------------------------------------------------------------------------- PLD

def _gradient_norms(s: Store) -> dict:
    """At initialisation, at every depth >= 12 layers: does PostLN's bottom/top gradient ratio sit
    clearly below 1 (mean < 0.8 and the interval's top < 1) while PreLN's stays in 0.8-1.25?"""
    g = s.summary("gradient_norms")
    st = pd.DataFrame(g.get("stats", []))
    if st.empty:
        raise Missing("the gradient_norms notebook has no measurement yet (python -m repro run gradient_norms)")
    init = st[st["stage"] == "init"]
    cell = {(r.shape, r.variant, r.metric): (r.mean, r.hw, r.n) for r in init.itertuples()}
    deep = sorted({(r.layers, r.shape) for r in init.itertuples() if r.layers >= 12})
    text = lambda shape, m: ", ".join(f"{v} {pm_ratio(*cell.get((shape, v, m), (math.nan, math.nan, 0))[:2])}"  # noqa: E731
                                      for v in ("PostLN", "PreLN"))
    shallow = "; ".join(f"{sh}: param {text(sh, 'param')}" for L, sh in sorted({(r.layers, r.shape) for r in init.itertuples()})
                        if L < 12)
    if not deep:
        return {"ours": f"only shallow models measured ({shallow})", "n": "", "scale": "", "verdict": "not measured"}

    def shows(shape, m):
        post, pre = cell.get((shape, "PostLN", m)), cell.get((shape, "PreLN", m))
        if not post or not pre:
            return False
        top = post[0] + (post[1] if math.isfinite(post[1]) else 0.0)
        return post[0] < 0.8 and top < 1 and 0.8 <= pre[0] <= 1.25
    per = {(sh, m): shows(sh, m) for _, sh in deep for m in ("param", "input")}
    n = max(int(r.n) for r in init.itertuples())
    ours = "; ".join(f"{sh}: parameter grads {text(sh, 'param')}, input grads {text(sh, 'input')}" for _, sh in deep)
    trained = st[st["stage"] != "init"]
    extra = "; ".join(f"{r.shape} {r.stage} {r.variant} {r.metric} {r.mean:.2f}" for r in trained.itertuples())
    return {"ours": f"bottom/top ratio at init: {ours}" + (f" (shallow: {shallow})" if shallow else "")
            + (f"; {extra}" if extra else ""), "n": f"{n} seeds",
            "value": cell.get((deep[-1][1], "PostLN", "input"), (math.nan,))[0], "unit": "PostLN bottom/top",
            "scale": f"from scratch, {', '.join(sh for _, sh in deep)} (layers x width), at initialisation",
            "verdict": grade(all(per.values()), any(per.values()))}


def pm_ratio(mean: float, hw: float) -> str:
    return format_pm(mean, hw, 2)


def _pld_time(s: Store) -> dict:
    found, parts, layers = [], [], None
    try:
        p = s.summary("pld_pretraining")
        if p.get("pld_time_per_sample_saving_paired") is not None:
            layers = p.get("layers")  # the primary number's model
            found.append(100 * p["pld_time_per_sample_saving_paired"])
            parts.append(f"pld_pretraining paired steps: {saving(found[-1])}")
            parts.append(f"whole runs: {saving(100 * p['pld_time_per_sample_saving_vs_preln'])}")
            parts.append(f"share of block compute skipped {100 * (1 - p['pld_compute_fraction']['realized']):.1f}%")
    except Missing:
        pass
    try:
        r = s.summary("pld_schedule")["run"]
        found.append(100 * (1 - r["paired_time_ratio"]))
        parts.append(f"pld_schedule paired steps: {saving(found[-1])} (ideal: {fewer_flops(100 * (1 - r['flop_fraction']))})")
        layers = layers or r["layers"]
    except Missing:
        pass
    if not found:
        raise Missing("run the pld_pretraining or pld_schedule notebook")
    saved = found[0]  # the pre-training run's paired timing when there is one
    return {"ours": f"{saving(saved, noun='time per sample')} ({'; '.join(parts)})", "n": f"{len(found)} timing(s), 1 seed",
            "value": saved, "unit": "% time saved",
            "scale": f"{layers or '?'} layers, theta_bar 0.5", "verdict": grade(saved >= 0.8 * 24, saved >= 10)}


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _pld_speedup(s: Store) -> dict:
    from .pld import LEARNED_NATS, speedup_text, uses_context

    p = s.summary("pld_pretraining")
    runs, target, unigram = p["runs"], _num(p.get("target_val_loss")), _num(p.get("unigram_loss"))
    scale = (f"{p['layers']} layers × {p['hidden']}, {p['steps']} MLM steps of {p['batch']} × {p['seq_len']} tokens; "
             "target: the PostLN baseline's final validation loss"
             + (f" {target:.3f}" if target else "") + (f", unigram plateau {unigram:.3f}" if unigram else ""))
    if target is None:
        return {"ours": "the PostLN baseline has no final loss (not run, or diverged)", "n": "1 seed", "scale": scale,
                "verdict": "not measured"}
    row, base = runs.get("preln_pld_best") or {}, runs.get(p["baseline"], {})
    same = (runs.get("preln_pld") or {}).get("lr") == row.get("lr")  # PLD's best rate is the baseline's: one run
    others = "" if same else f"; PLD at the baseline's rate: {speedup_text(runs.get('preln_pld'))}"
    if row.get("status") != "ok":
        status = row.get("status", "not run")
        return {"ours": f"PLD at its best pilot rate: {status}{others}", "n": "1 seed", "scale": scale,
                "verdict": "not reproduced" if status == "diverged" else "not measured"}
    speed = _num(row.get("speedup_paired")) or _num(row.get("speedup_time"))
    ours = f"PLD at lr {row['lr']:g} vs PostLN at lr {base.get('lr', float('nan')):g}: {speedup_text(row)}{others}"
    if not uses_context(target, unigram) and unigram is not None:
        return {"ours": f"{ours}: the baseline learned nothing beyond token frequencies (less than {LEARNED_NATS:g} nat "
                        "below the unigram plateau), so a speed-up to its loss says nothing", "n": "1 seed",
                "scale": scale, "verdict": "not measured"}
    return {"ours": ours, "n": "1 seed", "scale": scale, "value": speed, "unit": "x faster",
            "verdict": "not reproduced" if speed is None else grade(speed >= 0.8 * 2.5, speed >= 1.2)}


def _pld_glue(s: Store) -> dict:
    summ = s.summary("pld_glue")
    base, tasks = summ["baseline"], summ["tasks"]
    runs = s.runs("pld_glue")
    runs = runs[(runs["notebook"] == "pld_glue") & runs["task"].isin(tasks)]  # not the pre-training units it asked for
    method = "preln_pld_best" if "preln_pld_best" in summ["methods"] else "preln_pld"
    # per seed: the main metric of each task, PLD minus baseline, averaged over the tasks
    score = {(row["task"], row["method"], int(row["seed"])): row[f"metric.{main_metric(row['task'])}"]
             for _, row in runs.iterrows()}
    deltas = [np.mean([score[t, method, seed] - score[t, base, seed] for t in tasks])
              for seed in summ["seeds"] if all((t, mm, seed) in score for t in tasks for mm in (method, base))]
    d, hw, n = mean_hw(deltas)
    base_avg = np.mean([score[k] for k in score if k[1] == base])
    blind = _blind_average(tasks)
    learned = blind is None or base_avg >= blind + 5
    ours = (f"{method} − {base}: {pm(d, hw, ' points')} (task average; {base} scores {base_avg:.1f}"
            + (f", an input-blind predictor {blind:.1f}" if blind is not None else "") + ")"
            + ("" if learned else ": the baseline learned nothing at this scale, so the difference says nothing"
               + _pretraining_size(summ.get("pretraining"))))
    return {"ours": ours, "n": f"{len(tasks)} tasks × {n} seeds", "value": d, "hw": hw, "unit": "points vs baseline",
            "scale": f"fine-tuning the pre-trained models on {', '.join(tasks)}",
            "verdict": grade(d >= -1, d >= -3 or (math.isfinite(hw) and d + hw >= -1)) if learned else "not measured"}


def _pretraining_size(pt: dict | None) -> str:
    if not pt:
        return ""
    return (f"; its pre-training saw {pt['tokens']:.2g} tokens (the paper's {pt['paper_tokens'] / pt['tokens']:.0f}x more)"
            + (f" and ended at MLM loss {pt['baseline_val_loss']:.2f}, unigram plateau {pt['unigram_loss']:.2f}"
               if _num(pt.get("baseline_val_loss")) and _num(pt.get("unigram_loss")) else ""))


@functools.cache  # reads the task's whole training split; several claims ask for the same tasks
def chance_score(task: str, data_dir=None) -> float:
    """The dev score of a predictor that ignores its input: the training set's most frequent
    label (regression: a constant, whose correlation is 0). A model at this level learned nothing."""
    from collections import Counter

    from .data import GLUE_TASKS, load_glue
    from .metrics import glue_metrics, glue_task_name

    task = glue_task_name(task)
    if GLUE_TASKS[task].is_regression:
        return 0.0
    majority = Counter(r["label"] for r in load_glue(task, "train", data_dir)).most_common(1)[0][0]
    labels = [r["label"] for r in load_glue(task, "dev", data_dir)]
    return float(glue_metrics(task, [majority] * len(labels), labels)[main_metric(task)])


def _blind_average(tasks) -> float | None:
    try:
        return float(np.mean([chance_score(t) for t in tasks]))
    except (OSError, ValueError):  # no local GLUE data: the report says nothing about chance
        return None


# ----------------------------------------------------------------------------- EarlyBERT

def _early_bird(s: Store) -> dict:
    t = s.summary("ticket_mask_distance")
    settings = [k for k in ("fine-tuning", "pre-training") if k in t]
    fired = {k: t[k]["fired_step"].get("found") for k in settings}
    parts = []
    for k, step in fired.items():
        if step is None:
            parts.append(f"{k}: never met in {t[k]['search_steps']} steps")
            continue
        # did the ticket stay put? its distance to the search's last mask, per kind
        drift = ", ".join(f"{kind} {_drift(s, k, kind, step):.2f}" for kind in ("heads", "ffn"))
        parts.append(f"{k}: met at step {step} of {t[k]['search_steps']} ({100 * step / t[k]['search_steps']:.0f}%); "
                     f"that ticket's distance to the last mask: {drift}")
    frac = {k: v / t[k]["search_steps"] for k, v in fired.items() if v is not None}
    return {"ours": "; ".join(parts), "n": "1 search per setting",
            "value": 100 * max(frac.values()) if frac else None, "unit": "% of search",
            "scale": f"epsilon {t['epsilon']}, window {t['window']}",
            "verdict": grade(len(frac) == len(fired) and max(frac.values()) <= 0.3, bool(frac))}


def _drift(s: Store, setting: str, kind: str, step: int) -> float:
    """Distance from the mask recorded at or before `step` to the search's last recorded mask."""
    d = s.table("ticket_mask_distance", f"distance_{setting}_{kind}")
    d = d.set_index(d.columns[0])
    at = d.index[d.index <= step].max() if (d.index <= step).any() else d.index.min()
    return float(d.loc[at].iloc[-1])


def _paired(df: pd.DataFrame, keys, col: str, a: str, b: str) -> list[float]:
    wide = df.pivot_table(index=list(keys), columns="method", values=col)
    return list((wide[a] - wide[b]).dropna())


def _eb_glue(s: Store) -> dict:
    df = s.table("earlybert_glue", "runs")
    d, hwd, n = mean_hw(_paired(df, ("task", "seed"), "value", "earlybert", "dense"))
    r, hwr, _ = mean_hw(_paired(df, ("task", "seed"), "value", "earlybert", "random"))
    tasks = sorted(df["task"].unique())
    dense, blind = df[df["method"] == "dense"]["value"].mean(), _blind_average(tasks)
    learned = blind is None or dense >= blind + 5
    ours = (f"EarlyBERT − dense {pm(d, hwd)} points, EarlyBERT − random ticket {pm(r, hwr)} points "
            f"(dense scores {dense:.1f}" + (f", an input-blind predictor {blind:.1f}" if blind is not None else "") + ")"
            + ("" if learned else ": dense learned nothing at this scale, so the differences say nothing"))
    return {"ours": ours, "n": f"{len(tasks)} tasks × {n // max(1, len(tasks))} seeds", "value": d, "hw": hwd,
            "unit": "points vs dense", "scale": f"{', '.join(tasks)}; {_subset(df)} training examples",
            "verdict": grade(d >= -1.5 and r > 0, d >= -1.5 or r > 0) if learned else "not measured"}


def _subset(df: pd.DataFrame) -> str:
    return str(df["n_train"].iloc[0]) if "n_train" in df and pd.notna(df["n_train"].iloc[0]) else "all"


def _eb_time(s: Store) -> dict:
    parts, primary, primary_hw = [], None, None
    for nb in ("earlybert_glue", "earlybert_squad"):
        try:
            df = s.table(nb, "runs")
        except Missing:
            continue
        eb = df[df["method"] == "earlybert"]
        t, hw, n = mean_hw(eb["time_saving_pct"])
        f, _, _ = mean_hw(eb["flops_saving_pct"])
        parts.append(f"{nb.removeprefix('earlybert_')}: {saving(t, hw)} ({fewer_flops(f)}, n={n})")
        primary, primary_hw = (t, hw) if primary is None else (primary, primary_hw)
    try:
        e = s.summary("earlybert_pretraining")["methods"]["earlybert"]
        parts.append(f"pre-training: {saving(e['time_saving_pct'])} ({fewer_flops(e['flops_saving_pct'])}, n=1)")
    except Missing:
        pass
    if primary is None:
        raise Missing("run the earlybert_glue or earlybert_squad notebook")
    return {"ours": "wall-clock time against dense, search included: " + "; ".join(parts), "n": "per setting",
            "value": primary, "hw": primary_hw, "unit": "% time saved",
            "scale": "MiniLM-L6 fine-tuning; small BERT pre-training", "verdict": grade(primary >= 30, primary >= 15)}


def _eb_squad(s: Store) -> dict:
    df = s.table("earlybert_squad", "runs")
    d, hw, n = mean_hw(_paired(df, ("seed",), "f1", "earlybert", "dense"))
    r, hwr, _ = mean_hw(_paired(df, ("seed",), "f1", "earlybert", "random"))
    dense = df[df["method"] == "dense"]["f1"].mean()
    learned = dense >= SQUAD_LEARNED_F1
    ours = (f"EarlyBERT − dense {pm(d, hw)} F1 (dense {dense:.1f}); EarlyBERT − random {pm(r, hwr)} F1"
            + ("" if learned else f": dense learned nothing at this scale (F1 < {SQUAD_LEARNED_F1:g}), so the differences say nothing"))
    return {"ours": ours, "n": f"{n} seeds", "value": d, "hw": hw, "unit": "F1 vs dense",
            "scale": f"SQuAD v1.1, {s.summary('earlybert_squad').get('train_questions') or 'all'} training questions",
            "verdict": grade(d >= -1.5, d >= -4) if learned else "not measured"}


SQUAD_LEARNED_F1 = 20.0  # below this the dense model has not learned to extract answers


CLAIMS: list[Claim] = [
    Claim("postln_gradients", "PostLN gradients shrink towards the input layers; PreLN's are balanced",
          "PLD Fig. 1 (a figure; no single number)",
          "at initialisation, at every depth >= 12 layers, per measure (parameter / input gradients): PostLN bottom/top "
          "(lowest over highest quarter of blocks) < 0.8 with its interval below 1, PreLN in 0.8-1.25; reproduced if "
          "every depth and measure shows it, partly if some do; no verdict from shallow models alone",
          ("gradient_norms",), ("gradient_norms", "grad_norms"), _gradient_norms),
    Claim("pld_time", "PLD saves ~24% time per sample at theta_bar 0.5", "24% (BERT-base, 12 layers)",
          "reproduced if the saving >= 19.2% (0.8 x 24%), partly if >= 10%",
          ("pld_pretraining", "pld_schedule"), ("pld_schedule", "realized_keep"), _pld_time),
    Claim("pld_speedup", "PLD (with its larger learning rate) reaches the baseline 2.5x faster", "2.5x",
          "PreLN + PLD at its best pilot rate vs the PostLN baseline at its best: time to the baseline's final validation "
          "loss (steps x the per-step costs timed in adjacent pairs; whole-run wall-clock when there is no pairing): "
          "reproduced if >= 2.0x (0.8 x 2.5), partly if >= 1.2x; not measured if the baseline ends less than 1 nat below "
          "the unigram plateau (the loss of predicting token frequencies)",
          ("pld_pretraining",), ("pld_pretraining", "val_loss"), _pld_speedup),
    Claim("pld_glue", "PLD's downstream GLUE is comparable to the baseline's",
          "+0.8 GLUE (82.9 vs 82.1, reimplemented baseline)",
          "task-averaged difference: reproduced if >= -1 point, partly if >= -3 or its interval reaches -1; "
          "not measured if the baseline is within 5 points of an input-blind predictor (majority label)",
          ("pld_glue",), ("pld_glue", "glue_scores"), _pld_glue),
    Claim("early_bird", "Early-bird tickets emerge early: mask distance < 0.1 within a small fraction of training",
          "official draw at 20% of the first fine-tuning epoch",
          "criterion (epsilon 0.1 over the last 5 masks): reproduced if met within 30% of every search, partly if met in some",
          ("ticket_mask_distance",), ("ticket_mask_distance", "mask_distance"), _early_bird),
    Claim("earlybert_glue", "EarlyBERT ≈ dense BERT on GLUE, and better than a random ticket",
          "'comparable' (abstract; the table could not be retrieved offline)",
          "paired by task and seed: reproduced if EarlyBERT − dense >= -1.5 points and EarlyBERT − random > 0, partly if one "
          "holds; not measured if dense is within 5 points of an input-blind predictor",
          ("earlybert_glue",), ("earlybert_glue", "earlybert_glue"), _eb_glue),
    Claim("earlybert_time", "EarlyBERT saves 35-45% training time, search included", "35-45%",
          "GLUE fine-tuning (else SQuAD) mean saving: reproduced if >= 30% (35% less 5 points), partly if >= 15%",
          ("earlybert_glue", "earlybert_squad", "earlybert_pretraining"), ("earlybert_glue", "earlybert_glue"), _eb_time),
    Claim("earlybert_squad", "EarlyBERT ≈ dense BERT on SQuAD v1.1",
          "'comparable' (abstract; the table could not be retrieved offline)",
          "paired by seed: reproduced if EarlyBERT − dense >= -1.5 F1, partly if >= -4 F1; not measured if dense F1 < 20",
          ("earlybert_squad",), ("earlybert_squad", "earlybert_squad"), _eb_squad),
]


def assess(profile: str, root: Path | str | None = None) -> pd.DataFrame:
    """One row per claim: claim, paper, ours (text), n, scale, verdict, rule, notebooks, figure,
    value / hw / unit (our primary number and its interval half-width, for plots), and
    rule_verdict: what the rule says, which is the verdict except at the smoke profile, where
    every verdict is SMOKE_VERDICT."""
    store = Store(profile, Path(root or results_root()))
    rows = []
    for c in CLAIMS:
        try:
            got = c.measure(store)
        except Missing as e:
            got = {"ours": f"not measured: {e}", "n": "", "scale": "", "verdict": "not measured", "unit": ""}
        assert got["verdict"] in RULE_VERDICTS, got
        got["rule_verdict"] = got["verdict"]
        partial = [(nb, p) for nb in c.notebooks if (store.dir(nb) / "summary.json").exists()
                   and (p := store.progress(nb))]
        if partial:  # numbers from some of the runs: shown, never given a final verdict
            runs = "; ".join(f"{nb} {k} of {n} runs" for nb, (k, n) in partial)
            got = {**got, "verdict": PARTIAL_VERDICT, "ours": f"partial ({runs}): {got['ours']}"}
        if profile in NO_VERDICT_PROFILES:
            got["verdict"] = SMOKE_VERDICT
        rows.append({"claim": c.claim, "paper": c.paper, "value": None, "hw": None, **got, "rule": c.rule,
                     "notebooks": ", ".join(c.notebooks), "figure": c.figure and store.figure(*c.figure)})
    return pd.DataFrame(rows, index=pd.Index([c.name for c in CLAIMS], name="key"))


# ----------------------------------------------------------------------------- REPORT.md

SHOWN = ["claim", "paper", "ours", "n", "scale", "verdict"]


def provenance(profile: str, root: Path | str | None = None, notebooks=None) -> pd.DataFrame:
    """Where and when each notebook's outputs were made: one row per notebook that has run."""
    from .runner import ORDER

    store, rows = Store(profile, Path(root or results_root())), []
    codes = {r["run_id"]: r.get("code") for r in load_runs_raw(profile, root=store.root)}
    for nb in notebooks or [n for n in ORDER if n != "report"]:
        d = store.dir(nb)
        if not (d / "run.json").exists() or not (d / "summary.json").exists():
            continue
        run, summary = read_json(d / "run.json"), read_json(d / "summary.json")
        prov = summary.get("provenance", {})
        code = code_state(summary, codes)
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


def markdown(claims: pd.DataFrame, prov: pd.DataFrame, profile: str, header: str = "") -> str:
    """REPORT.md: the claims table, the rules, the figures, and where the numbers were made."""
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
        tally = "Verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in RULE_VERDICTS + (PARTIAL_VERDICT,)) + ".\n"
    # at smoke, "no verdicts" comes first, before any text about verdicts
    first = [tally, header] if profile in NO_VERDICT_PROFILES else [header, tally]
    parts = [f"# Reproduction report, `{profile}` profile\n", *first,
             "## Claims\n", markdown_table(claims[SHOWN].map(cell)),
             "\nIntervals are 95% Student-t over seeds (paired differences where the claim compares two methods). "
             "Timings are wall-clock on the machine below; see each notebook for its timing conditions.\n",
             "## Rules\n", markdown_table(claims[["claim", "rule", "notebooks"]].map(cell)),
             "\n## Figures\n"]
    for key, row in claims.iterrows():
        if isinstance(row["figure"], str):
            parts.append(f"**{row['claim']}** ({row['verdict']})\n\n![{key}]({row['figure']})\n")
    parts += ["## Where the numbers were made\n", markdown_table(prov.map(cell)) if len(prov) else "No notebook has run.\n"]
    return "\n".join(parts)
