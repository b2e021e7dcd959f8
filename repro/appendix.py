"""REPORT.md's appendix, read from the records and the rules: the hyper-parameters each arm was
trained with (from its records' configs, never typed), the per-seed numbers of every compared arm
(written as per_seed.csv beside REPORT.md), and per claim one computed sentence on what would
change its verdict (from the facts the rule judged and repro.stats.seeds_needed).

It reads and judges; it measures nothing.
"""
from __future__ import annotations

import math

import pandas as pd

from . import rules, stats
from .claims_earlybert import in_counted_metric
from .earlybert_tables import TICKETS
from .judges import with_adopted
from .machines import cpu, notebook_records, saving_machines
from .metrics import main_metric
from .results import mean_hw
from .rules import COUNTED_METRIC
from .store import Missing, Store

# records that measure rather than train (a timing, a floor, a loss of token frequencies): no hyper-parameters
NOT_TRAINING = ("step_times", "paired_step_times", "unigram_mlm_loss", "zero_shot", "earlybert_step_times")


# ----------------------------------------------------------------------------- hyper-parameters

def _hyper(rec: dict) -> dict:
    """What one record's config says it trained with: learning rate, length (epochs or steps),
    warm-up, weight decay, batch, sequence length, the search's length and the pruning ratios.
    A ticket's `train` settings override the notebook's (None: the dense recipe's); a search's own
    settings are its `search` block's. Empty cells: not in the config (the code's default)."""
    c = rec.get("config") or {}
    train = c.get("train") if isinstance(c.get("train"), dict) else {}
    search = c.get("search") if isinstance(c.get("search"), dict) else {}
    draw = c.get("draw") if isinstance(c.get("draw"), dict) else {}
    if search:  # a search unit: its own schedule
        lr, length = search.get("search_lr") or c.get("lr"), search.get("search_epochs")
        length = f"{length:g} epoch(s)" if length is not None else (
            f"{search.get('search_fraction', 0):g} of {c.get('steps')} steps" if c.get("steps") else None)
        warm, wd = search.get("search_warmup"), search.get("weight_decay")
    else:
        lr = train.get("lr") if train.get("lr") is not None else c.get("lr")
        epochs = train.get("epochs") if train.get("epochs") is not None else c.get("epochs")
        length = f"{epochs:g} epoch(s)" if epochs is not None else f"{c['steps']} steps" if c.get("steps") else None
        warm, wd = train.get("warmup", c.get("warmup")), train.get("weight_decay", c.get("weight_decay"))
    if c.get("stop_at") and length:  # a pilot: the schedule's length, cut short
        length += f", stopped at {c['stop_at']}"
    ratios = search or draw
    return {"lr": lr, "length": length, "warm-up": warm, "weight decay": wd, "batch": c.get("batch"),
            "seq len": c.get("seq_len"), "search": f"stop: {c.get('stop') or 'none'}" if search else "",
            "heads / FFN pruned": (f"{ratios['head_ratio']:.2f} / {ratios['ffn_ratio']:.2f}"
                                   if "head_ratio" in ratios else ""),
            "L1 (heads, FFN)": f"{search['lambda_head']:g}, {search['lambda_ffn']:g}" if "lambda_head" in search else ""}


def _cell(values) -> str:
    """One table cell for the values an arm's records hold: the one value, or each distinct one."""
    seen = list(dict.fromkeys("" if v is None or (isinstance(v, float) and math.isnan(v)) else
                              (f"{v:g}" if isinstance(v, float) else str(v)) for v in values))
    return " | ".join(x for x in seen if x) if any(seen) else ""


def hyperparameters(s: Store, notebooks) -> pd.DataFrame:
    """One row per notebook, recipe and arm: the settings its records' configs hold. A notebook's
    records it only read (Study.reading(): the earlier recipe, a sensitivity row) are their own
    recipe; the others are "judged" (for earlybert_glue, the official recipe)."""
    rows = []
    for nb in notebooks:
        try:
            groups = (("judged", s.used_records(nb)), ("earlier recipe (not judged)", s.used_records(nb, read_only=True)))
        except Missing:
            continue
        for recipe, recs in groups:
            recs = [r for r in recs if (r.get("config") or {}).get("kind") not in NOT_TRAINING
                    and r.get("method") not in NOT_TRAINING]
            by: dict[str, list[dict]] = {}
            for r in recs:  # another notebook's units it reuses (dense from glue_finetune, pre-training) say whose
                by.setdefault(str(r.get("method")) + ("" if r.get("notebook") == nb else f" ({r.get('notebook')}'s)"), []).append(r)
            for arm, rs in by.items():
                hs = [_hyper(r) for r in rs]
                row = {"notebook": nb, "recipe": recipe, "arm": arm, "runs": len(rs),
                       "tasks": _cell(sorted({str(r.get("task")) for r in rs if r.get("task")}))}
                rows.append(row | {k: _cell(h[k] for h in hs) for k in hs[0]})
    df = pd.DataFrame(rows)
    return df.loc[:, [c for c in df.columns if df[c].astype(str).str.len().gt(0).any()]] if len(df) else df


# ----------------------------------------------------------------------------- per seed

def _record_rows(recs, notebook, claims, metric_of, arms=None, task_of=None) -> list[dict]:
    rows = []
    for r in recs:
        if (arms is not None and r.get("method") not in arms) or r.get("seed") is None or r.get("status", "ok") != "ok":
            continue
        task = task_of(r) if task_of else r.get("task")
        for m in metric_of(r):
            if (v := (r.get("metrics") or {}).get(m)) is not None:
                rows.append({"notebook": notebook, "claims": claims, "task": task, "arm": r["method"],
                             "seed": int(r["seed"]), "metric": m, "value": float(v), "machine": cpu(r)})
    return rows


def _counted(r) -> list[str]:
    return [COUNTED_METRIC.get(r.get("task"), main_metric(r["task"]))] if r.get("task") else []


def per_seed(s: Store) -> pd.DataFrame:
    """Every compared arm's number per seed (and task): notebook, claims, task, arm, seed, metric,
    value, machine (the CPU model it was made on; for a time saving, the one it was timed on)."""
    rows = []
    for nb, claims, tasks in (("earlybert_glue", "early_ticket, earlybert_glue", True),
                              ("earlybert_squad", "earlybert_squad", False)):
        try:
            df, e = s.table(nb, "runs"), s.summary(nb).get("earlybert", "earlybert")
        except Missing:
            continue
        df = in_counted_metric(s, df) if tasks else df.assign(counted_by="f1", value=df["f1"])
        df = df[df["method"].isin(["dense", *TICKETS])]
        where = {(r.get("task"), r.get("seed"), r.get("method")): cpu(r) for r in notebook_records(s, nb)}
        for r in df.itertuples():
            rows.append({"notebook": nb, "claims": claims, "task": getattr(r, "task", "SQuAD"), "arm": r.method,
                         "seed": int(r.seed), "metric": r.counted_by, "value": float(r.value),
                         "machine": where.get((getattr(r, "task", "SQuAD"), int(r.seed), r.method), "?")})
        eb = df[df["method"] == e]
        if "time_saving_pct" in eb and len(eb):
            for r, m in zip(eb.itertuples(), saving_machines(s, nb, eb)):
                rows.append({"notebook": nb, "claims": "earlybert_time", "task": getattr(r, "task", "SQuAD"), "arm": e,
                             "seed": int(r.seed), "metric": "time saved % (equal epochs)", "value": float(r.time_saving_pct),
                             "machine": m})
    try:
        earlier = s.used_records("earlybert_glue", read_only=True)
        rows += [r | {"notebook": "earlybert_glue (earlier recipe)", "claims": "shown, not judged"}
                 for r in _record_rows(earlier, "", "", _counted)]
    except Missing:
        pass
    for nb, claims, metric_of, arms in (
            ("pld_glue", "pld_glue", lambda r: [main_metric(r["task"])] if r.get("task") else [], None),
            ("glue_finetune", "dense baselines", _counted, {"dense"}),
            ("gradient_norms", "postln_gradients", lambda r: [k for k in r.get("metrics", {}) if k.endswith("_ratio_init")],
             {"postln", "preln"}),
            ("gradient_norms", "postln_gradients_training",  # the input-gradient ratio at each step of training
             lambda r: [k for k in r.get("metrics", {}) if k.startswith("input_bottom_top_s")], {"postln_curve", "preln_curve"})):
        try:
            summ, recs = s.summary(nb), s.used_records(nb)
        except Missing:
            continue
        if nb == "pld_glue":
            arms = set(summ.get("methods", []))
        recs = [r for r in recs if r.get("notebook") == nb]
        rows += _record_rows(recs, nb, claims, metric_of, arms,
                             (lambda r: f"{r['config'].get('layers')} x {r['config'].get('hidden')}") if nb == "gradient_norms" else None)
    return pd.DataFrame(rows, columns=["notebook", "claims", "task", "arm", "seed", "metric", "value", "machine"])


def per_seed_table(df: pd.DataFrame) -> pd.DataFrame:
    """The short table: per notebook, task, metric and arm, the values seed by seed and their mean ± 95% interval."""
    rows = []
    for (nb, task, metric, arm), g in df.groupby(["notebook", "task", "metric", "arm"], sort=False):
        g = g.sort_values("seed")
        m, hw, n = mean_hw(g["value"])
        rows.append({"notebook": nb, "task": task, "metric": metric, "arm": arm, "seeds": n,
                     "per seed": " / ".join(f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}" for v in g["value"]),
                     "mean ± 95%": f"{m:.2f}" + (f" ± {hw:.2f}" if math.isfinite(hw) else "")})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- what would change a verdict

def _decide(x: stats.Test, what: str) -> str:
    if x.verdict == "no data":
        return f"{what}: no pairs yet"
    if x.verdict not in ("inconclusive",):
        return ""
    if x.n < 2:
        return f"{what}: a second seed, for an interval"
    if x.seeds_needed is None:
        return f"{what}: the mean sits on {x.boundary:g}, no number of seeds decides it"
    return f"{what}: about {x.seeds_needed} seeds at the observed spread would decide it (now {x.n})"


def _per_task(f: dict, p: dict) -> str:
    tests = rules.task_tests(f, p["parts"], p["margin"])
    said = [f"{t} {d}" for t, tt in tests.items() for pair, x in tt.items() if (d := _decide(x, pair))]
    left = [t for t in f["tasks"] if t not in f["learned"]]
    floors = f"a dense baseline that clears its floor on {', '.join(left)} would add it to the count" if left else ""
    if not f["learned"]:
        return f"not measured until dense learns a task: {floors}"
    decided = "" if said else "every counted comparison is decided: more seeds only narrow the intervals"
    return "; ".join(x for x in (*said, decided, floors) if x)


def _threshold(f: dict, p: dict, verdict: str) -> str:
    x, full, part = f.get(p["number"]), p["reproduced"], p["partly"]
    if x is None or not math.isfinite(x):
        return "a measurement of the number the rule reads"
    hw = f.get(f"{p['number']}_hw")
    spread = (f"; its interval ({x:.1f} ± {hw:.1f}) spans a threshold, so more runs would tell which side"
              if hw is not None and math.isfinite(hw) and any(x - hw <= t <= x + hw for t in (full, part)) else "")
    if verdict == "reproduced":
        return f"reproduced while the number stays >= {full:g} (it is {x:.1f}, {x - full:.1f} above){spread}"
    if verdict == "partly":
        return f"{full - x:.1f} more ({full:g}) would reproduce it, {x - part:.1f} less ({part:g}) would not{spread}"
    return f"{part - x:.1f} more ({part:g}) would make it partly, {full - x:.1f} more ({full:g}) reproduced{spread}"


def _glue_average(f: dict, p: dict, verdict: str) -> str:
    """pld_glue's task-averaged rules (v1-v3 `glue_average`, v4 `glue_capped`)."""
    key = "learned_ri" if p.get("min_pretraining_runs") else "learned" if p.get("tasks", "learned") == "learned" else "all"
    if key != "all" and not f.get(key, f.get("learned")):
        return "a baseline that clears its floors on some task (it learned none at this scale)"
    m, sd, hw, n = stats.mean_sd_hw(f["deltas"].get(key) or f["deltas"]["learned"])
    margin = p.get("margin", 1.0)
    if not n:
        return "paired runs of both arms"
    parts = [f"the mean difference {m:+.1f} " + (f"stays >= -{margin:g}" if m >= -margin else f"is {-margin - m:.1f} short of -{margin:g}")]
    if math.isfinite(hw):
        parts.append(f"its interval ({m:+.1f} ± {hw:.1f}) " + ("reaches -3, where partly ends" if m - hw < -3 else "lies above -3"))
        if m < -margin and (k := stats.seeds_needed(sd, abs(m + margin))):
            parts.append(f"about {k} seeds at this spread would bring its interval above -{margin:g}")
    if p.get("min_pretraining_runs") and f.get("pretraining_runs", 1) < p["min_pretraining_runs"]:
        parts.append(f"reproduced needs {p['min_pretraining_runs']} pre-training runs per arm (now {f.get('pretraining_runs', 1)})")
    return "; ".join(parts)


def _pooled(f: dict, p: dict, judge: str) -> str:
    """The pooled rules before issue #35 (earlybert_glue v1-v3, early_ticket v1)."""
    from .earlybert_tables import early_tickets_hold

    tasks = f["learned_main"] if judge == "early_pooled" else {
        "all": f["tasks"], "blind5": f["tasks"] if f.get("blind5", True) else [], "learned": f["learned_main"]}[p["tasks"]]
    if not tasks:
        return "a dense baseline that clears its floors on some task"
    since = "; the per-task rule set since reads each task's own interval instead (shown beside)"
    if judge == "eb_pooled":
        (d, _, _), (r, _, _) = (mean_hw(rules._pooled(f, tasks, pair)) for pair in ("dense", "random"))
        return (f"pooled over {', '.join(tasks)}: EarlyBERT − dense {d:+.1f} against >= -1.5 "
                f"({'holds' if d >= -1.5 else f'{-1.5 - d:.1f} short'}), − random {r:+.1f} against > 0 "
                f"({'holds' if r > 0 else f'{-r:.1f} short'})" + since)
    said = []
    for pair in ("detector-end", "fixed-end", "detector-random", "fixed-random"):
        d, hw, _ = mean_hw(rules._pooled(f, tasks, pair))
        ok = early_tickets_hold(d, hw, pair.split("-")[1])
        said.append(f"{pair} {d:+.1f}" + (f" ± {hw:.1f}" if math.isfinite(hw) else "") + f" ({'holds' if ok else 'fails'})")
    return f"pooled over {', '.join(tasks)}: " + ", ".join(said) + since


def would_change(key: str, version: int, facts: dict | None, verdict: str) -> str:
    """One sentence on what would change the verdict the judging version gave, from its facts."""
    if facts is None:
        return "the measurement the row says is missing"
    v = rules.RULES[key][version]
    p, f = v.params, facts
    if v.judge in ("per_task",):
        return _per_task(f, p)
    if v.judge == "per_task_adopted":  # earlybert_glue v5: also the tasks counted at their adopted recipe
        return _per_task(with_adopted(f), p)
    if v.judge == "per_task_capped":  # pld_glue v5: its counted tasks, then the pre-training cap
        cap = (f"; reproduced needs {p['min_pretraining_runs']} pre-training runs per arm (now {f.get('pretraining_runs', 1)})"
               if f.get("pretraining_runs", 1) < p["min_pretraining_runs"] else "")
        return _per_task({**f, "tasks": list(f.get("counted", {})), "learned": f.get("learned_counted", [])}, p) + cap
    if v.judge == "threshold":
        return _threshold(f, p, verdict)
    if v.judge in ("glue_average", "glue_capped"):
        return _glue_average(f, p, verdict)
    if v.judge == "squad":
        if p.get("min_dense_f1") is not None and not f["dense"] >= p["min_dense_f1"]:
            return f"a dense model above F1 {p['min_dense_f1']:g} (it has {f['dense']:.1f})"
        x = stats.comparable(f["diffs"], p.get("margin", 1.5))
        return _decide(x, "EarlyBERT − dense") or f"decided ({x.verdict}): more seeds only narrow the interval"
    if v.judge == "speedup":
        if not f.get("target"):
            return "a PostLN baseline run that ends with a final loss"
        if p.get("needs_context") and not f.get("context", True):
            return "a baseline that ends >= 1 nat below the unigram plateau (more tokens, or a wider model)"
        x = f.get(p["number"])
        return (f"a speed-up of {p['reproduced']:g}x (it is {x:.2f}x)" if x else
                "PLD reaching the baseline's loss within its run")
    if v.judge == "gradients":
        per = f.get("trained_per") if p.get("trained_pair_only") else f.get("per")
        return (f"{sum(per)} of {len(per)} depth-measure cells show the paper's picture; every one would reproduce it"
                if per else "a model of >= 12 layers measured at initialisation")
    if v.judge == "curves":
        failed = [x["step"] for x in f.get("steps", []) if not x["shown"]]
        if not f.get("steps"):
            return "a second seed per arm at the measured steps (the per-step test needs 2)"
        return (f"the steps where it does not show ({', '.join(map(str, failed))}) turning, or more seeds narrowing "
                "PostLN's interval below 0.8 there" if failed else "a measured step where it does not show")
    if v.judge == "premise":
        if f.get("held"):
            return "a rerun of the cells where it holds in which PostLN trains (one pilot run per cell)"
        return ("a cell where PostLN fails at a rate PreLN + PLD trains (the search is complete)" if f.get("complete") else
                "the pilots left (python -m repro run pld_premise): a cell where it holds reproduces it, none: not reproduced")
    if v.judge == "early_bird":
        return ", ".join(f"{k}: fired in {x['fired']} of {x['searches']}, median "
                         f"{100 * rules._median(x['fractions']):.0f}% (needs every search, median <= {100 * p['within']:.0f}%)"
                         if x["fractions"] else f"{k}: never fired" for k, x in f["settings"].items())
    if v.judge in ("eb_pooled", "early_pooled"):
        return _pooled(f, p, v.judge)
    return ""


# ----------------------------------------------------------------------------- the sections

PER_SEED_CSV = "per_seed.csv"  # beside REPORT.md


def sections(s: Store, claims: pd.DataFrame, notebooks, seeds: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame, list[str]]]:
    """REPORT.md's appendix: (title, what it is, table, notes) for the compute spent, the
    hyper-parameters per arm, the per-seed numbers (`seeds`: per_seed(s)) and what would change
    each verdict; those with a table."""
    from .machines import compute_spent

    change = claims.reset_index()[["key", "verdict", "would_change"]] if "would_change" in claims else pd.DataFrame()
    made = [("A. Compute spent", "Core-hours are each record's own seconds (times.total) times the threads it ran "
             "with, as recorded, under the notebook that wrote it: of every record at this profile, and of those "
             "some notebook's outputs show (earlier-recipe rows included); the difference went to runs since "
             "superseded, stale or abandoned.", compute_spent(s, notebooks), []),
            ("B. Hyper-parameters per arm", "Read from each record's config, never typed: a ticket's own training "
             "settings where it has them (blank: the notebook's dense recipe), a search's its search block's; "
             "several values in a cell are the distinct ones its records hold (per task or per run). Blank: not "
             "in the config (the code's default). `judged`: the records the verdicts rest on (for earlybert_glue, "
             "the official recipe); `earlier recipe (not judged)`: the EarlyBERT records the notebook only reads "
             "(Study.reading()), its sensitivity row. An arm another notebook trained says whose.", hyperparameters(s, notebooks), []),
            ("C. Per-seed numbers", f"Every compared arm's number per seed, all of them in [{PER_SEED_CSV}]"
             f"({PER_SEED_CSV}) (with the machine each was made or timed on).", per_seed_table(seeds), []),
            ("D. What would change each verdict", "Computed from the facts the judging rule version read: for an "
             "inconclusive comparison, the seeds that would decide it at the observed spread (repro.stats."
             "seeds_needed); for a threshold, the distance to it; for a baseline that learned nothing, the floor it "
             "must clear.", change, [])]
    return [m for m in made if len(m[2])]


def table_md(df: pd.DataFrame) -> str:
    """A markdown table by pandas' to_markdown (tabulate), else repro.results.markdown_table."""
    from .results import markdown_table

    try:
        return df.to_markdown(index=False) + "\n"
    except ImportError:
        return markdown_table(df)
