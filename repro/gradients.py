"""Per-layer gradients along MLM training, PostLN vs PreLN (PLD paper, Figure 1), as a study unit.

The PLD paper's claim: PostLN's gradients shrink towards the input-side layers, PreLN's are
balanced. With BERT's N(0, 0.02) init PostLN shows no shrinkage at initialisation; it appears
within tens of Adam steps. So a run is measured at initialisation and at `steps` of its training
(a hook, no extra training), each time on the same fixed held-out batches, dropout off:

- per block, the norm of the MLM loss's gradient w.r.t. the block's parameters ("param"), its
  input hidden states ("input") and its FFN output weight ("ffn_out", Xiong et al. 2020);
- the loss on those batches, beside the unigram plateau (the loss of predicting token frequencies).

Statistics that cannot hide a dip in the middle layers: `log_slope` (the least-squares slope of
log norm against the layer index, per layer) and `min_lower_over_top` (the smallest norm in the
lower half over the top block's); `bottom_top` (quarter means) is kept for comparison.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch

from .analysis import bottom_top, layer_grad_norms
from .evaluation import unigram_mlm_loss
from .profiles import Profile
from .sources import load_tokenizer
from .study import Study
from .tasks import pretrain_mlm
from .train import Hook
from .units import PRELN_INIT, fixed_batches, fresh_model, init_of

MEASURES = ("param", "input", "ffn_out")


def log_slope(values) -> float:
    """Slope of log(value) against the layer index (0 = next to the embeddings), per layer:
    < 0 when the norms grow towards the input, > 0 when they shrink towards it."""
    y = np.log(np.asarray(values, dtype=float))
    return float(np.polyfit(np.arange(len(y)), y, 1)[0])


def min_lower_over_top(values) -> float:
    """The smallest norm in the lower half of the blocks over the top block's norm."""
    return float(min(values[:max(1, len(values) // 2)]) / values[-1])


def ffn_out_grad_norms(model, batch: dict) -> list[float]:
    """Per block, ||dL/dW|| of the FFN output projection (Xiong et al.'s measure), dropout off;
    the model's own .grad fields are not touched."""
    from .analysis import _to_model

    was = model.training
    model.eval()
    try:
        loss = model(**_to_model(model, batch))["loss"]
        grads = torch.autograd.grad(loss, [b.ffn.fc2.weight for b in model.blocks])
    finally:
        model.train(was)
    return [float(g.double().norm()) for g in grads]


def measure(model, batches) -> dict:
    """Per-layer norms averaged over `batches`, their statistics per batch, and the loss."""
    per = [{**layer_grad_norms(model, b), "ffn_out": ffn_out_grad_norms(model, b)} for b in batches]
    layers = len(per[0]["param"])
    out = {k: [sum(p[k][i] for p in per) / len(per) for i in range(layers)] for k in MEASURES}
    out["stats"] = {k: {"bottom_top": [bottom_top(p[k]) for p in per], "log_slope": [log_slope(p[k]) for p in per],
                        "min_lower_over_top": [min_lower_over_top(p[k]) for p in per]} for k in MEASURES}
    out["loss"] = sum(p["loss"] for p in per) / len(per)
    return out


class _MeasureAt(Hook):
    """Measures the model at the given optimizer steps of its training run."""

    def __init__(self, steps, batches, into: dict):
        self.steps, self.batches, self.into = set(steps), batches, into

    def on_step_end(self, loop):
        if loop.step in self.steps:
            self.into[loop.step] = measure(loop.model, self.batches)


def grad_curve_unit(study: Study, P: Profile, layers: int, hidden: int, ln: str, seed: int, steps, *,
                    preln_init: str = PRELN_INIT, data_dir=None) -> dict | None:
    """One MLM run from scratch (`layers` x `hidden`, hidden/64 heads, FFN 4 x hidden) for
    max(steps) steps at the profile's pre-training rate and batch with PLD's recipe schedule (2%
    warm-up, exponential decay), measured at init and at each of `steps` on P.grad_batches fixed
    batches of P.grad_batch held-out blocks. Record: "stages" {step: measure()}, the unigram loss,
    and metrics "<measure>_<statistic>_s<step>" (means over the batches)."""
    from .pld import recipe_schedule

    steps = sorted(set(int(s) for s in steps))
    shape = {"layers": layers, "hidden": hidden, "heads": max(1, hidden // 64), "intermediate": 4 * hidden}
    config = {"kind": "grad_curve", **shape, "ln": ln, "init": init_of(ln, preln_init), "seq_len": P.seq_len,
              "batch": P.grad_batch, "n_batches": P.grad_batches, "steps": steps, "lr": P.pretrain_lr,
              "train_batch": P.pretrain_batch, "corpus_chars": P.pld_corpus_chars, "tokenizer": "minilm"}
    n = P.grad_batch * P.grad_batches  # held-out blocks measured

    def run(u):
        t0 = time.perf_counter()
        Q = replace(P, **shape)
        tok = load_tokenizer("minilm")
        train_ex, valid_ex, collate, batches = fixed_batches(P, Q, tok, data_dir, P.pld_corpus_chars)
        model = fresh_model(Q, tok, ln, seed, config["init"])
        stages = {0: measure(model, batches)}
        r = pretrain_mlm(model, Q, seed, data=(train_ex, valid_ex, collate), steps=steps[-1], eval_every=0,
                         hooks=[_MeasureAt(steps, batches, stages)], valid_examples=n, progress=False,
                         **recipe_schedule(steps[-1]), **u.train_kwargs())["result"]
        unigram = unigram_mlm_loss(train_ex, valid_ex[:n], collate)
        metrics = {f"{k}_{stat}_s{s}": float(np.mean(st["stats"][k][stat])) for s, st in stages.items()
                   for k in MEASURES for stat in ("bottom_top", "log_slope", "min_lower_over_top")}
        metrics |= {f"loss_s{s}": st["loss"] for s, st in stages.items()} | {"unigram_loss": unigram}
        diverged = not all(math.isfinite(st["loss"]) for st in stages.values())
        return {"metrics": metrics, "stages": {str(s): st for s, st in stages.items()},
                "times": {**r.times, "total": time.perf_counter() - t0},
                "status": "diverged" if diverged or r.status == "diverged" else "ok"}
    return study.unit(task=f"{layers}x{hidden}", method=f"{ln}ln_curve" + ("" if config["init"] or ln == "post" else "_plain"),
                      seed=seed, config=config, run=run)


# ----------------------------------------------------------------------------- tables, rule, figure
ARMS = {"postln_curve": "PostLN", "preln_curve": "PreLN (official init)", "preln_curve_plain": "PreLN (plain 0.02)"}
# the relative rule, set before these runs (2026-12-06): at a step, PostLN's shrinkage shows when its
# input-gradient bottom/top ratio's 95% interval lies below SHRUNK_BELOW, and PreLN is balanced
# beside it when its |log ratio| is at most BALANCED_FRACTION of PostLN's at the same step
SHRUNK_BELOW = 0.8
BALANCED_FRACTION = 0.25


def curve_table(records: list[dict]) -> "pd.DataFrame":
    """Per arm, step and measure: each statistic's mean and 95% t-interval over seeds, the loss on
    the fixed batches and the unigram plateau."""
    import pandas as pd

    from .results import mean_hw

    rows = []
    for r in records:
        for step, st in r["stages"].items():
            for k in MEASURES:
                rows.append({"arm": ARMS.get(r["method"], r["method"]), "step": int(step), "measure": k, "seed": r["seed"],
                             "loss": st["loss"], "unigram": r["metrics"]["unigram_loss"],
                             **{stat: float(np.mean(v)) for stat, v in st["stats"][k].items()}})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    out = []
    for (arm, step, k), g in df.groupby(["arm", "step", "measure"], sort=True):
        row = {"arm": arm, "step": step, "measure": k, "n": len(g), "loss": g["loss"].mean(), "unigram": g["unigram"].mean()}
        for stat in ("bottom_top", "log_slope", "min_lower_over_top"):
            row[stat], row[f"{stat}_hw"], _ = mean_hw(g[stat])
        out.append(row)
    return pd.DataFrame(out)


def curve_rule(table, measure: str = "input") -> list[dict]:
    """The relative rule (SHRUNK_BELOW, BALANCED_FRACTION) per step where both arms have >= 2 seeds."""
    out = []
    post = table[(table.arm == ARMS["postln_curve"]) & (table.measure == measure)].set_index("step")
    pre = table[(table.arm == ARMS["preln_curve"]) & (table.measure == measure)].set_index("step")
    for step in sorted(set(post.index) & set(pre.index)):
        a, b = post.loc[step], pre.loc[step]
        if min(a["n"], b["n"]) < 2:
            continue
        shrunk = a["bottom_top"] + a["bottom_top_hw"] < SHRUNK_BELOW
        balanced = abs(math.log(b["bottom_top"])) <= BALANCED_FRACTION * abs(math.log(a["bottom_top"]))
        out.append({"step": int(step), "postln": (a["bottom_top"], a["bottom_top_hw"]), "preln": (b["bottom_top"], b["bottom_top_hw"]),
                    "postln_shrunk": bool(shrunk), "preln_balanced": bool(balanced), "shown": bool(shrunk and balanced)})
    return out


def plot_curves(records: list[dict], title: str):
    """Per-layer norms on log axes, mean over seeds with a min-max band, one column per step,
    one row per measure, the arms in colour."""
    import matplotlib.pyplot as plt

    steps = sorted({int(s) for r in records for s in r["stages"]})
    fig, axes = plt.subplots(len(MEASURES), max(1, len(steps)), figsize=(3.2 * max(1, len(steps)), 2.6 * len(MEASURES)),
                             squeeze=False, sharey="row")
    for j, step in enumerate(steps):
        for i, k in enumerate(MEASURES):
            ax = axes[i, j]
            for c, (method, name) in enumerate(ARMS.items()):
                got = np.array([r["stages"][str(step)][k] for r in records if r["method"] == method and str(step) in r["stages"]])
                if not len(got):
                    continue
                x = np.arange(1, got.shape[1] + 1)
                ax.plot(x, got.mean(0), color=f"C{c}", marker="o", ms=2, label=f"{name} ({len(got)})")
                ax.fill_between(x, got.min(0), got.max(0), color=f"C{c}", alpha=0.2)
            ax.set_yscale("log")
            ax.set(title=f"step {step}: {k}" if i == 0 else k, xlabel="layer" if i == len(MEASURES) - 1 else None)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
