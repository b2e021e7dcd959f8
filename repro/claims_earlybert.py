"""The EarlyBERT claims' measures: when early-bird tickets emerge, whether an early ticket trains as
well as the late one, EarlyBERT against dense BERT on GLUE and SQuAD, and the training time it
saves. Each measure reads a Store and returns what repro.report shows and repro.rules judges
(`Claim.measure`).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

from . import rules, stats
from .machines import saving_machines
from .metrics import main_metric
from .report_store import Claim, Missing, Store, clears_blind_average, count, learned_tasks, pm, recorded_floors
from .results import fewer_flops, mean_hw, saving
from .rules import COUNTED_METRIC, task_tests, task_verdict

def _level(s: Store, notebook: str) -> str:
    """The pruning level a notebook's comparison was judged at (issue #37): the head and FFN ratios of
    the searches it used (method "search"; the ticket-size trend's points are searches of their own,
    judged by no rule), read from the records. "" where none is recorded yet."""
    got = sorted({(c["head_ratio"], c["ffn_ratio"]) for r in s.used_records(notebook) if r.get("method") == "search"
                  and isinstance(c := r["config"].get("search"), dict) and "head_ratio" in c})
    paper = " (the paper's level)"
    return "; ".join(f"tickets prune {Fraction(h).limit_denominator(12)} of the heads and {100 * f:.0f}% of the FFN "
                     f"neurons{paper if math.isclose(h, 1 / 3) and math.isclose(f, 0.4) else ''}" for h, f in got)


def _with_level(scale: str, s: Store, notebook: str) -> str:
    level = _level(s, notebook)
    return f"{scale}; {level}" if level else scale


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


def in_counted_metric(s: Store, df: pd.DataFrame, notebook: str = "earlybert_glue") -> pd.DataFrame:
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


def dense_learned(s: Store, df: pd.DataFrame) -> tuple[list[str], list[str], str]:
    """earlybert_glue's tasks where dense learned (LEARNED_RULE, repro.floors, in each task's metric
    in `counted_by` when the table has it), the tasks a comparison counts (those, or all of them for
    the record when none) and dense against the floors."""
    summ = s.summary("earlybert_glue")
    metrics = dict(zip(df["task"], df["counted_by"])) if "counted_by" in df else None
    learned, text = learned_tasks({t: list(g["value"]) for t, g in df[df["method"] == "dense"].groupby("task")},
                                  recorded_floors(s, summ.get("checkpoint"), summ.get("n_eval")),
                                  max_eval=summ.get("n_eval"), metrics=metrics)
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

    dfc = in_counted_metric(s, df)
    learned, _, floor_text = dense_learned(s, dfc)
    learned_main, _, _ = dense_learned(s, df)
    dense, summ = df[df["method"] == "dense"], s.summary("earlybert_glue")
    diffs = {which: {t: {k: paired(g, a, b) for k, (a, b) in pairs.items()} for t, g in table.groupby("task")}
             for which, table in (("main", df), ("counted", dfc))}
    return ({**diffs, "tasks": sorted(df["task"].unique()), "learned": learned, "learned_main": learned_main,
             "metric": dict(zip(dfc["task"], dfc["counted_by"])), **({"adopted": _adopted(s, dfc, pairs, learned, diffs)}
                                                                     if "dense" in pairs else {}),
             "blind5": clears_blind_average({t: list(g["value"]) for t, g in dense.groupby("task")},
                                            recorded_floors(s, summ.get("checkpoint"), summ.get("n_eval")),
                                            summ.get("n_eval"))}, dfc, floor_text)


def _adopted(s: Store, dfc: pd.DataFrame, pairs: dict[str, tuple[str, str]], learned: list[str], diffs: dict) -> dict:
    """earlybert_glue v5's facts: v4's, plus each task dense did not learn at the profile's recipe whose
    recipe check (floors.ADOPTION_RULE, glue_finetune's summary) adopted a recipe that learned it. Such
    a task is counted against dense at the adopted recipe, in its counted metric, paired by seed over the
    seeds that chose nothing: the choosing seed's run is the grid's best on that seed, biased upward.
    {"learned": the counted tasks, "counted": v4's differences with the added tasks', "baselines": {task: text},
    "added": the tasks added}."""
    from .earlybert_tables import paired

    tasks = set(dfc["task"])
    try:
        adoptions = [a for a in s.summary("glue_finetune").get("adoptions") or [] if a.get("learned") and a.get("method")
                     and a["task"] not in learned and a["task"] in tasks]
        runs = s.runs("glue_finetune") if adoptions else None  # the records are read only when a task is added
    except (Missing, KeyError):
        adoptions = []
    counted, baselines = dict(diffs["counted"]), {}
    for a in adoptions:
        t = a["task"]
        metric = dfc.loc[dfc["task"] == t, "counted_by"].iloc[0]
        got = runs[(runs["task"] == t) & (runs["method"] == a["method"]) & (runs["seed"] != a["chosen_on"])]
        dense = pd.DataFrame({"task": t, "seed": got["seed"].astype(int), "method": "dense", "value": got[f"metric.{metric}"]})
        g = pd.concat([dfc[(dfc["task"] == t) & (dfc["method"] != "dense")], dense])
        counted[t] = {k: paired(g, x, y) for k, (x, y) in pairs.items()}
        baselines[t] = (f"{t} against dense at its adopted recipe (lr {a['adopted'][0]:g}, {a['adopted'][1]:g} epochs; "
                        f"seeds {', '.join(str(x) for x in sorted(dense['seed']))}, seed {a['chosen_on']} chose it: not paired)")
    return {"learned": [*learned, *baselines], "counted": counted, "baselines": baselines, "added": list(baselines)}


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
    ours = (f"EarlyBERT ({e} ticket), per task, paired by seed: {text} (over {', '.join(seeds)}; dense against the "
            f"floors: {floor_text})" + ("" if learned else ": dense learned nothing at this scale, so the differences say nothing"))
    a = facts.get("adopted") or {}
    if a.get("added"):  # v5's further tasks, each against dense at its adopted recipe (the latest rule's view)
        more, added = _per_task_text({**facts, "counted": a["counted"]}, p["parts"], p["margin"], a["added"],
                                     {"dense": "− dense", "random": "− random"})
        ours, tests = ours + f"; v5 adds {'; '.join(a['baselines'].values())}: {more}", {**tests, **added}
    d, hw, task = _weakest(tests, "dense")
    per = set(seeds.values())
    return {"ours": ours, "n": f"{count(len(seeds), 'task')} × {count(per.pop(), 'seed')}" if len(per) == 1 else
            f"{n} task-seed pairs over {len(seeds)} tasks", "value": d, "hw": hw,
            "unit": f"points vs dense ({task}, the counted task reaching lowest)",
            "scale": _with_level(f"{', '.join(facts['tasks'])}; {_subset(df)} training examples", s, "earlybert_glue"),
            "facts": facts}


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
            "scale": _with_level(f"{', '.join(facts['tasks'])}; tickets trained alike from the rewound weights", s,
                                 "earlybert_glue"), "facts": facts}


def _subset(df: pd.DataFrame) -> str:
    return str(df["n_train"].iloc[0]) if "n_train" in df and pd.notna(df["n_train"].iloc[0]) else "all"


def _by_machine(eb: pd.DataFrame, machines: list[str]) -> tuple[str, dict[str, tuple[float, float, int]]]:
    """The equal-epoch saving per machine the runs were timed on ({machine: (mean, hw, n)}, most
    runs first) and the machine with the most runs (ties: by name), whose mean the v3 rule reads."""
    per = {m: mean_hw(eb.loc[[x == m for x in machines], "time_saving_pct"]) for m in sorted(set(machines))}
    per = dict(sorted(per.items(), key=lambda kv: (-kv[1][2], kv[0])))
    return next(iter(per)), per


def _eb_time(s: Store) -> dict:
    parts, facts = [], {}
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
        first, per = _by_machine(eb, saving_machines(s, nb, eb))
        where = ("machine not recorded" if list(per) == ["?"] else f"timed on {first}" if len(per) == 1 else "timed on " + ", ".join(
            f"{m}: {saving(*x[:2])} (n={x[2]})" for m, x in per.items()) + f"; the v3 rule reads {first}")
        parts.append(f"{nb.removeprefix('earlybert_')}: {saving(t, hw)} with equal epochs, {saving(o, hwo)} as run "
                     f"({fewer_flops(f)}, n={n}; {how}; {where})")
        if not facts:  # GLUE's, else SQuAD's: the setting the rule reads
            facts = {"equal": t, "equal_hw": hw, "as_run": o, "one_machine": per[first][0], "one_machine_hw": per[first][1],
                     "machine": first}
    try:
        e = s.summary("earlybert_pretraining")["methods"]["earlybert"]
        parts.append(f"pre-training: {saving(e['time_saving_pct'])} ({fewer_flops(e['flops_saving_pct'])}, n=1)")
    except (Missing, KeyError):
        pass
    if not facts:
        raise Missing("run the earlybert_glue or earlybert_squad notebook")
    return {"ours": "time against dense, search included: " + "; ".join(parts), "n": "per setting",
            "value": facts["equal"], "hw": facts["equal_hw"], "unit": "% time saved, equal epochs",
            "scale": _with_level("MiniLM-L6 fine-tuning; small BERT pre-training", s, "earlybert_glue"), "facts": facts}


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
    return {"ours": ours, "n": f"{n} seed{'s' * (n != 1)}", "value": d, "hw": hw, "unit": "F1 vs dense",
            "scale": _with_level(scale, s, "earlybert_squad"),
            "facts": {"diffs": diffs, "dense": float(dense)}}


# below this the dense model has not learned to extract answers (the rule's, repro.rules)
SQUAD_LEARNED_F1 = rules.RULES["earlybert_squad"][-1].params["min_dense_f1"]


def _paper_saving() -> str:
    from .earlybert import PAPER_TIME_SAVING
    return f"{PAPER_TIME_SAVING[0]:.0f}-{PAPER_TIME_SAVING[1]:.0f}%"


CLAIMS: list[Claim] = [  # each claim's rule: repro.rules.RULES[name]
    Claim("early_bird", "Early-bird tickets emerge early: mask distance < 0.1 within a small fraction of training",
          "official draw at 20% of the first fine-tuning epoch",
          ("ticket_mask_distance",), ("ticket_mask_distance", "mask_distance"), _early_bird),
    Claim("early_ticket", "An early-bird ticket trains as well as the late ticket, and better than a random one",
          "EarlyBERT trains the ticket drawn early (official: at 20% of the first epoch)",
          ("earlybert_glue",), ("report", "early_ticket"), _early_ticket),  # report_figures.early_ticket
    Claim("earlybert_glue", "EarlyBERT ≈ dense BERT on GLUE, and better than a random ticket",
          "'comparable' (abstract; the table could not be retrieved offline)",
          ("earlybert_glue",), ("earlybert_glue", "earlybert_glue"), _eb_glue),
    Claim("earlybert_time", "EarlyBERT saves 35-45% training time, search included", _paper_saving(),
          ("earlybert_glue", "earlybert_squad", "earlybert_pretraining"), ("report", "earlybert_time"), _eb_time),
    Claim("earlybert_squad", "EarlyBERT ≈ dense BERT on SQuAD v1.1",
          "'comparable' (abstract; the table could not be retrieved offline)",
          ("earlybert_squad",), ("earlybert_squad", "earlybert_squad"), _eb_squad),
]
