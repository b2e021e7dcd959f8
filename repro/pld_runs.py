"""PLD's experiments, on the paper's equations (`repro.pld`): the pre-training comparison's runs
(architectures, which pilot rate each full run trains at) and the pilot's choice of rate; the tables
and sentences pld_pretraining, pld_schedule and pld_glue show, and the report reads. The units that
train them are in `repro.units`.
"""
from __future__ import annotations

import math

import pandas as pd

from .analysis import steps_to_reach
from .metrics import main_metric
from .pld import (PAPER_GLUE, PAPER_GLUE_COLUMNS, PAPER_GLUE_METRICS, PAPER_TIME_SAVING, VARIANTS, branch_scales,
                  expected_compute_fraction, keep_probs, paper_glue_value)
from .results import fewer_flops, format_pm, mean_hw, saving, summarize

# -- the pre-training comparison (pld_pretraining, pld_glue, repro.launch) ---------------------
# The paper compares a PostLN baseline at its usual rate with PreLN + PLD at a rate PostLN cannot
# use. We find each block's rates in a pilot, then run:
ARCHS = {"postln": ("post", False), "preln": ("pre", False), "preln_pld": ("pre", True)}  # block, PLD?
RUNS = {  # full run -> (arch, the arch whose best pilot rate it trains at)
    "postln": ("postln", "postln"),  # the baseline
    "preln": ("preln", "preln"),
    "preln_pld": ("preln_pld", "postln"),  # PLD at the baseline's rate
    "preln_pld_best": ("preln_pld", "preln_pld"),  # PLD at its own best rate: the paper's comparison
}
BASELINE = "postln"
REBOUND = 0.1  # nats: a pilot whose validation loss ends this far above its lowest has started to diverge
LEARNED_NATS = 1.0  # a model uses context when its loss is this far below the unigram plateau (e^1 = 2.7x perplexity)


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return arch


def pilot_table(records) -> pd.DataFrame:
    """One row per pilot run (arch, lr): its losses and whether it was stable. Stable = it never
    went non-finite, its final validation loss is below its starting (first logged) training loss,
    and no more than REBOUND above the lowest validation loss it reached (no rebound)."""
    rows = []
    for r in records:
        vals = [c["val_loss"] for c in r["curve"]]
        final, start = r["metrics"]["val_loss"], r["metrics"]["start_loss"]
        ok = r["status"] == "ok" and all(math.isfinite(v) for v in vals) and math.isfinite(final)
        rows.append({"arch": r["config"]["arch"], "lr": r["config"]["lr"], "status": r["status"],
                     "start_loss": start, "final_val_loss": final, "lowest_val_loss": min(vals, default=math.nan),
                     "stable": bool(ok and final < start and final <= min(vals) + REBOUND)})
    return pd.DataFrame(rows, columns=["arch", "lr", "status", "start_loss", "final_val_loss", "lowest_val_loss", "stable"])


def choose_rates(pilot: pd.DataFrame) -> dict:
    """Per arch: the best rate (lowest final pilot validation loss among the stable runs), the
    largest stable rate, and whether the best sits at an end of the grid (the grid may not bracket it)."""
    out = {}
    for arch, g in pilot.groupby("arch", sort=False):
        stable = g[g["stable"]]
        best = float(stable.loc[stable["final_val_loss"].idxmin(), "lr"]) if len(stable) else None
        out[arch] = {"best": best, "max_stable": float(stable["lr"].max()) if len(stable) else None,
                     "at_edge": None if best is None else bool(len(g) > 1 and best in (g["lr"].min(), g["lr"].max()))}
    return out


def pretraining_tokens(P) -> int:
    """Tokens one full pre-training run of a (pld_profile) Profile sees."""
    return P.pretrain_steps * P.pretrain_batch * P.grad_accum * P.seq_len


def models_to_finetune(runs: dict) -> tuple[dict, list]:
    """The pre-trained models pld_glue fine-tunes: the baseline and PLD at the baseline's rate and
    at its own best (one model when those rates are equal), name -> record (None: not trained
    yet); and the names of those that diverged, which are not fine-tuned."""
    pre = {n: runs[n] for n in (BASELINE, "preln_pld", "preln_pld_best")}
    if pre["preln_pld_best"] is not None and pre["preln_pld_best"] is pre["preln_pld"]:
        pre.pop("preln_pld_best")
    diverged = [n for n, r in pre.items() if r is not None and r["status"] == "diverged"]
    return {n: r for n, r in pre.items() if n not in diverged}, diverged


def speedup_table(runs: dict, paired_ratio: float | None = None) -> pd.DataFrame:
    """One row per full run (name -> record, None when missing): its final validation loss, time
    per sample, and the steps and training seconds it takes to reach the baseline's final
    validation loss (interpolated between evaluations, first crossing; None if it never does),
    with the speed-ups (the baseline's own steps or seconds to it / the run's: the baseline is 1
    by definition, even when its noisy curve touched its final loss early). `speedup_paired` =
    the step speed-up x the per-step cost ratio timed in adjacent pairs (dense / PLD gates; a
    dense PreLN step costs what a PostLN one does): not skewed by load that differs between the
    sessions the runs ran in."""
    base = runs.get(BASELINE)
    base_ok = base is not None and base["status"] == "ok"

    def reach(rec, x, target):
        c = rec["curve"]
        return steps_to_reach([p[x] for p in c], [p["val_loss"] for p in c], target)

    rows = []
    for name, rec in runs.items():
        arch = RUNS[name][0]
        row = {"run": name, "arch": arch, "lr": rec["config"]["lr"] if rec else None,
               "status": rec["status"] if rec else "missing"}
        if rec is not None:
            m = rec["metrics"]
            row |= {"final_val_loss": m["val_loss"], "steps": rec["steps_done"], "train_seconds": m["train_seconds"],
                    "time_per_sample_ms": 1e3 * m["time_per_sample"]}
        if rec is not None and base_ok:
            target = base["metrics"]["val_loss"]
            s, t = reach(rec, "step", target), reach(rec, "seconds", target)
            s0, t0 = reach(base, "step", target), reach(base, "seconds", target)
            cost = paired_ratio if ARCHS[arch][1] else 1.0
            row |= {"steps_to_target": s, "seconds_to_target": t,
                    "speedup_steps": s0 / s if s else None, "speedup_time": t0 / t if t else None,
                    "speedup_paired": s0 / s / cost if s and cost else None,
                    "time_per_sample_saving": 1 - m["time_per_sample"] / base["metrics"]["time_per_sample"]}
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def speedup_text(row: dict | None) -> str:
    """One speedup_table row in words (the notebook's conclusion and the report's row)."""
    if row is None or row["status"] != "ok":
        return "not run" if row is None else row["status"]
    num = lambda k: None if row.get(k) is None or not math.isfinite(row[k]) else row[k]  # noqa: E731
    if num("speedup_steps") is None:
        return f"never reached the target (final validation loss {row['final_val_loss']:.3f})"
    speeds = [f"{num(k):.2f}x {label}" for k, label in (("speedup_paired", "with paired step costs"),
              ("speedup_time", "whole-run wall-clock"), ("speedup_steps", "in steps")) if num(k) is not None]
    return (f"reached the target in {row['steps_to_target']:.0f} steps: " + ", ".join(speeds)
            + (f"; {100 * num('time_per_sample_saving'):.0f}% less time per sample" if num("time_per_sample_saving") is not None else ""))


def uses_context(loss: float | None, unigram: float | None) -> bool | None:
    """Has a model with this validation loss learned more than token frequencies: at least
    LEARNED_NATS below the unigram plateau? None when either number is missing."""
    if loss is None or unigram is None or not math.isfinite(loss):
        return None
    return unigram - loss >= LEARNED_NATS


def time_savings(table: pd.DataFrame, runs: dict, timing: dict | None) -> dict:
    """PLD's time-per-sample saving against PreLN (the paper's 24%): from the paired step timing
    (1 - gated / dense) and from the two whole runs (PLD at the baseline's rate vs PreLN), with
    the share of blocks the PLD run computed. Empty when a part is missing."""
    if not timing or any(runs.get(n) is None for n in ("preln", "preln_pld")):
        return {}
    tps = table["time_per_sample_ms"]
    return {"pld_time_per_sample_saving_paired": 1 - timing["ratio"],
            "pld_time_per_sample_saving_vs_preln": 1 - tps["preln_pld"] / tps["preln"],
            "pld_compute_fraction": runs["preln_pld"]["pld_compute"],
            "paired_step_s": {"dense": timing["dense_s"], "pld": timing["gated_s"]}}


# -- the schedule at the paper's depth (pld_schedule) -------------------------------------------
def variant_table(num_layers: int, thetas=(0.5, 0.7, 1.0)) -> pd.DataFrame:
    """Paper vs official-code keep probabilities at a few theta: expected blocks computed, the
    share of blocks skipped, the bottom and top p_i, and E[gate x scale] of the top block (1 =
    its residual branches are unbiased in expectation; the code's off-by-one makes it > 1)."""
    rows = []
    for var in VARIANTS:
        for th in thetas:
            p, s = keep_probs(th, num_layers, var), branch_scales(th, num_layers, var)
            rows.append({"variant": var, "theta": th, "expected_layers": sum(p), "blocks_skipped": 1 - sum(p) / num_layers,
                         "p_bottom": p[0], "p_top": p[-1], "mean_gate_x_scale_top": p[-1] * s[-1]})
    return pd.DataFrame(rows)


def keep_table(recs: dict) -> pd.DataFrame:
    """Per variant (recs: variant -> pld_schedule record) and layer: the realized keep frequency,
    its expectation, the binomial sd and z = (realized - expected) / sd."""
    rows = [{"variant": v, "layer": i + 1, "realized": k["realized"][i], "expected": k["expected"][i], "binomial_sd": k["std"][i]}
            for v, r in recs.items() for k in [r["keep"]] for i in range(len(k["realized"]))]
    df = pd.DataFrame(rows, columns=["variant", "layer", "realized", "expected", "binomial_sd"])
    df["z"] = (df["realized"] - df["expected"]) / df["binomial_sd"].where(df["binomial_sd"] > 0)
    return df


def schedule_timing(rec: dict) -> dict:
    """PLD's time saving in one pld_schedule unit (a scheduled run of one variant; its record
    holds the paired step times of the run's gates against dense steps, and their FLOPs):
    time_saving = mean over the pairs of 1 - gated / dense, with its Student-t half-width (hw);
    median_saving = 1 - the median pair ratio (analysis.paired_step_times); flop_saving = the
    ideal saving, 1 - the timed gates' training FLOPs over dense (embeddings, MLM head and
    optimizer are never dropped); efficiency = time_saving / flop_saving; vs_paper =
    time_saving - the paper's 24%; blocks skipped, realized over the run and expected at
    theta_bar; the realized keep frequencies' largest deviation from p_i, in binomial sd."""
    t, c, k = rec["timing"], rec["config"], rec["keep"]
    saving, hw, n = mean_hw([1 - g / d for g, d in zip(t["gated"], t["dense"])])
    flop_saving = 1 - rec["flops"]["timed_fraction"]
    z = keep_table({c["variant"]: rec})["z"].abs()
    return {"variant": c["variant"], "shape": f"{c['layers']} x {c['hidden']}", "layers": c["layers"],
            "time_saving": saving, "hw": hw, "pairs": n, "median_saving": 1 - t["ratio"],
            "flop_saving": flop_saving, "efficiency": saving / flop_saving if flop_saving > 0 else math.nan,
            "vs_paper": saving - PAPER_TIME_SAVING, "micro_batches": k["n"],
            "blocks_skipped": 1 - k["compute_realized"],
            "blocks_skipped_expected": 1 - expected_compute_fraction(c["theta_bar"], c["layers"], c["variant"]),
            "max_abs_z": float(z.max()) if z.notna().any() else 0.0}


def saving_text(row: dict) -> str:
    """One schedule_timing row in words (the notebook's conclusion and the report's row); a
    negative saving is "more time", never a negative "less"."""
    return (f"{saving(100 * row['time_saving'], 100 * row['hw'])} per step ({row['pairs']} pairs; median pair "
            f"{saving(100 * row['median_saving'])}) vs an ideal {fewer_flops(100 * row['flop_saving'])} (time/FLOP "
            f"saving {row['efficiency']:.2f}); {100 * row['blocks_skipped']:.1f}% of the blocks skipped "
            f"({100 * row['blocks_skipped_expected']:.1f}% expected at theta_bar)")


# -- GLUE after pre-training (pld_glue) ---------------------------------------------------------
def glue_table(runs: pd.DataFrame, methods, tasks, label: str, chance: dict | None = None) -> pd.DataFrame:
    """Our GLUE dev scores (mean ± 95% t-interval over seeds) in the paper's column layout, one
    row per method ("ours (label): method"), the paper's rows verbatim, and `chance` (task -> the
    score of an input-blind predictor) as a last row."""
    summ = summarize(runs, by=("task", "method"))
    cell = {(t, m, k): (mean, hw) for t, m, k, mean, hw in summ[["task", "method", "metric", "mean", "hw"]].itertuples(index=False)}
    table = {}
    for m in methods:
        row = {}
        for col in PAPER_GLUE_COLUMNS:
            task = next((t for t in tasks if PAPER_GLUE_METRICS.get(t, ("",))[0] == col), None)
            keys = PAPER_GLUE_METRICS[task][1] if task else ()
            row[col] = "/".join(format_pm(*cell.get((task, m, k), (math.nan, math.nan))) for k in keys) or "–"
        mains = [cell[t, m, main_metric(t)][0] for t in tasks if (t, m, main_metric(t)) in cell]
        row["avg of tasks run"] = f"{sum(mains) / len(mains):.1f}" if mains else "–"
        table[f"ours ({label}): {m}"] = row
    for name, values in PAPER_GLUE.items():
        table[f"paper: {name}"] = dict(zip(PAPER_GLUE_COLUMNS, values)) | {"avg of tasks run": ""}
    if chance:
        table["input-blind predictor"] = {PAPER_GLUE_METRICS[t][0]: f"{v:.1f}" for t, v in chance.items() if t in PAPER_GLUE_METRICS}
    return pd.DataFrame(table).T.fillna("")


def glue_deltas(runs: pd.DataFrame, baseline: str, methods, tasks) -> pd.DataFrame:
    """Per method (not the baseline), task and metric: the mean difference method - baseline over
    the seeds both ran (paired: the same training subset and order), its 95% t half-width, and
    the paper's PLD - BERT-base (reimpl.) on that metric."""
    rows = []
    for m in methods:
        for t in tasks if m != baseline else ():
            g = runs[runs["task"] == t]
            for k in PAPER_GLUE_METRICS.get(t, ("", (main_metric(t),)))[1]:
                col = f"metric.{k}"  # absent while no run of the task is recorded (a partial study)
                wide = g.pivot_table(index="seed", columns="method", values=col) if col in g else pd.DataFrame()
                d = (wide[m] - wide[baseline]).dropna() if {m, baseline} <= set(wide.columns) else []
                mean, hw, n = mean_hw(list(d))
                pld, base = paper_glue_value("PLD", t, k), paper_glue_value("BERT-base (reimpl.)", t, k)
                rows.append({"method": m, "task": t, "metric": k, "main": k == main_metric(t), "delta": mean, "hw": hw,
                             "n_seeds": n, "paper_delta": None if pld is None else round(pld - base, 1)})
    return pd.DataFrame(rows, columns=["method", "task", "metric", "main", "delta", "hw", "n_seeds", "paper_delta"])
