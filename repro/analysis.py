"""Per-layer measurements of a BERT (PLD paper, Fig. 1 and the input/output similarity plot),
and small helpers to compare training curves.

- `layer_grad_norms`: per block, the L2 norm of the gradient of the loss w.r.t. all the block's
  parameters (one norm over all of them) and w.r.t. the block's input hidden states.
- `block_io_similarity`: per block, how much it changes its input: L2 distance, relative
  distance and cosine similarity between the block's input and output, per token, averaged.
- `bottom_top`: a per-layer quantity's lowest quarter of blocks over its highest quarter.
- `steps_to_reach`: where a (decreasing) curve first reaches a target, linearly interpolated.
- `paired_by_seed`: two methods' recorded runs on a task, their metric and speed paired by seed.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .results import mean_hw


def _capture_block_io(model, with_output: bool):
    """Forward hooks on every block collecting its input (and output) hidden states."""
    ins, outs, handles = [], [], []
    for b in model.blocks:
        handles.append(b.register_forward_pre_hook(lambda m, args: ins.append(args[0])))
        if with_output:
            handles.append(b.register_forward_hook(lambda m, args, out: outs.append(out)))
    return ins, outs, handles


def _to_model(model, batch: dict) -> dict:
    """The batch on the model's device (a trained model may sit on a GPU, a collated batch on the CPU)."""
    device = next(model.parameters()).device
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def layer_grad_norms(model, batch: dict, train_mode: bool = False) -> dict:
    """Gradient norms per block (bottom first) for one batch with MLM/task labels.

    Returns {"loss", "param": [||dL/dtheta_block||_2], "input": [||dL/dx_block||_2]} where
    theta_block are all the block's parameters (attention, FFN, its LayerNorms) and x_block the
    block's input hidden states [batch, seq, hidden]. The model's own .grad fields are not
    touched. `train_mode=False` turns dropout off so that two models see the same computation.
    """
    was = model.training
    batch = _to_model(model, batch)
    model.train(train_mode)
    ins, _, handles = _capture_block_io(model, with_output=False)
    try:
        loss = model(**batch)["loss"]
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    params = [[p for p in b.parameters() if p.requires_grad] for b in model.blocks]
    flat = [p for ps in params for p in ps]
    grads = torch.autograd.grad(loss, ins + flat, allow_unused=True)
    g_in, g_par = grads[:len(ins)], list(grads[len(ins):])
    param_norms = []
    for ps in params:
        gs = [g_par.pop(0) for _ in ps]
        param_norms.append(math.sqrt(sum(float(g.double().pow(2).sum()) for g in gs if g is not None)))
    return {"loss": loss.item(), "param": param_norms, "input": [float(g.double().norm()) for g in g_in]}


def bottom_top(values: Sequence[float]) -> float:
    """Bottom/top ratio of a per-layer quantity: the mean over the lowest quarter of the blocks
    (at least one) over the mean over the highest quarter. < 1: smaller next to the input."""
    k = max(1, len(values) // 4)
    return (sum(values[:k]) / k) / (sum(values[-k:]) / k)


@torch.no_grad()
def block_io_similarity(model, batch: dict) -> dict:
    """Per block (bottom first), averaged over the real (non-padding) tokens of the batch:
    "l2" = ||y - x||_2, "rel_l2" = ||y - x|| / ||x||, "cosine" = cos(x, y), where x is the
    block's input and y its output hidden state of one token. Evaluation mode (no dropout)."""
    was = model.training
    batch = _to_model(model, batch)
    model.eval()
    ins, outs, handles = _capture_block_io(model, with_output=True)
    try:
        model.encode(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    mask = batch.get("attention_mask")
    real = mask.bool() if mask is not None else torch.ones_like(batch["input_ids"], dtype=torch.bool)
    res = {"l2": [], "rel_l2": [], "cosine": []}
    for x, y in zip(ins, outs):
        x, y = x[real].double(), y[real].double()  # [tokens, hidden]
        d = (y - x).norm(dim=-1)
        res["l2"].append(d.mean().item())
        res["rel_l2"].append((d / x.norm(dim=-1)).mean().item())
        res["cosine"].append(F.cosine_similarity(x, y, dim=-1).mean().item())
    return res


def steps_to_reach(xs: Sequence[float], ys: Sequence[float], target: float) -> float | None:
    """The x at which the curve (xs, ys) first gets down to `target`, linearly interpolated
    between the two measurements around the crossing; None if it never does."""
    prev = None
    for x, y in zip(xs, ys):
        if y is not None and math.isfinite(y) and y <= target:
            if prev is None:
                return float(x)
            (x0, y0) = prev
            return float(x0 + (x - x0) * (y0 - target) / (y0 - y)) if y0 != y else float(x)
        prev = (x, y) if y is not None and math.isfinite(y) else prev
    return None


def timed(device, fn, times: int = 1) -> float:
    """Seconds that `times` calls of `fn` take, the device's queued work finished before and after
    (CUDA runs asynchronously): the study's one step timer (paired_step_times, the benchmark)."""
    import time

    sync = torch.cuda.synchronize if device.type == "cuda" else lambda _: None
    sync(device)
    t0 = time.perf_counter()
    for _ in range(times):
        fn()
    sync(device)
    return time.perf_counter() - t0


def paired_step_times(model, batch: dict, gate_rows: Sequence, pairs: int = 20, warmup: int = 2,
                      clip: bool = False) -> dict:
    """Seconds per training step (forward, backward, AdamW) of `model` on one fixed `batch`:
    dense (gates=None) vs gated (the rows of `gate_rows` replayed in turn, e.g. a PLD run's
    realized gates). Steps are timed in adjacent pairs, one dense and one gated, their order
    alternating, so that load changes of a shared machine (slower than one step) hit both alike;
    returns the medians of the dense and gated times and of the per-pair ratio gated / dense.
    The model's weights are updated (use a model you no longer need, or a copy). `clip`: the
    study's --clip (its Control, from the unit's context)."""
    import statistics

    from .train import TrainConfig, build_optimizer

    if clip:  # one timed pair (two steps), no warm-up
        pairs, warmup = min(pairs, 1), 0
    batch = _to_model(model, batch)
    device = next(model.parameters()).device
    # the training loop's precision (TrainConfig precision "auto"): bf16 autocast on CUDA
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    opt = build_optimizer(model, TrainConfig(max_steps=1, lr=1e-6), device)
    was = model.training
    model.train()

    def step(gates) -> float:
        def one():
            with amp:
                loss = model(**batch, gates=gates)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return timed(device, one)

    dense, gated = [], []
    for i in range(warmup + pairs):
        g = gate_rows[i % len(gate_rows)]
        if i % 2:  # alternate which of the two goes first
            tg, td = step(g), step(None)
        else:
            td, tg = step(None), step(g)
        if i >= warmup:
            dense.append(td)
            gated.append(tg)
    model.train(was)
    med = statistics.median
    return {"dense_s": med(dense), "gated_s": med(gated), "ratio": med(g / d for g, d in zip(gated, dense)),
            "times": {"dense": dense, "gated": gated}}


def rotated_step_times(steps: dict, device, rounds: int = 20, warmup: int = 1, clip: bool = False) -> dict:
    """Seconds per call of each of `steps` (name -> a function doing one whole training step of
    its own model), timed in rounds: every round calls each once, starting one further along each
    time, so that load changes of a shared machine (slower than a round) hit all alike. The first
    name is the reference. Returns {"seconds": {name: median}, "ratio": {name: median over rounds
    of its time / the reference's}, "times": {name: [per round]}}: paired_step_times for more
    than two models (EarlyBERT's dense model, its search and its tickets). `clip`: as
    paired_step_times'."""
    import statistics

    if clip:  # one round, no warm-up
        rounds, warmup = min(rounds, 1), 0
    names = list(steps)
    times = {k: [] for k in names}
    for i in range(warmup + rounds):
        for j in range(len(names)):
            k = names[(i + j) % len(names)]
            t = timed(device, steps[k])
            if i >= warmup:
                times[k].append(t)
    med, ref = statistics.median, times[names[0]]
    return {"seconds": {k: med(v) for k, v in times.items()},
            "ratio": {k: med(a / b for a, b in zip(v, ref)) for k, v in times.items()}, "times": times}


def lr_sweep(runs: pd.DataFrame, task: str, seed, methods) -> dict | None:
    """A learning-rate sweep's outcome (glue_finetune): the task's dev metric on `seed` for each
    of `methods` (the profile's recipe, "dense", and the sweep's), by rate and length; None when
    none of them ran."""
    from .metrics import main_metric

    metric = main_metric(task)
    got = runs[(runs["task"] == task) & (runs["seed"] == seed) & runs["method"].isin(methods)]
    if got.empty:
        return None
    return {"task": task, "seed": int(seed), "metric": metric, "runs": sorted(
        ({"lr": float(r["config.lr"]), "epochs": float(r["config.epochs"]), "value": float(r[f"metric.{metric}"])}
         for _, r in got.iterrows()), key=lambda x: (x["epochs"], x["lr"]))}


def paired_by_seed(runs: pd.DataFrame, task: str, a: str, b: str, metric: str) -> dict | None:
    """Method `a` against `b` on `task`, paired by seed: the metric's difference a - b (mean, 95%
    half-width, n) and the ratio of training examples per second a / b (the same examples and steps,
    so the inverse ratio of training seconds: wall-clock minus evaluation, train.train_seconds).
    None when no seed has both."""
    from .train import train_seconds

    rows = runs[runs["task"] == task].set_index(["method", "seed"])
    seeds = sorted(set(rows.loc[a].index) & set(rows.loc[b].index)) if {a, b} <= set(rows.index.get_level_values(0)) else []
    if not seeds:
        return None
    secs = {m: [train_seconds({k: rows.loc[(m, s), f"time.{k}"] for k in ("total", "eval")}) for s in seeds]
            for m in (a, b)}
    diff = mean_hw([rows.loc[(a, s), f"metric.{metric}"] - rows.loc[(b, s), f"metric.{metric}"] for s in seeds])
    speed = mean_hw([tb / ta for ta, tb in zip(secs[a], secs[b])])
    return {"task": task, "a": a, "b": b, "metric": metric, "seeds": [int(s) for s in seeds],
            "a_mean": float(np.mean([rows.loc[(a, s), f"metric.{metric}"] for s in seeds])),
            "b_mean": float(np.mean([rows.loc[(b, s), f"metric.{metric}"] for s in seeds])),
            "diff": diff[0], "diff_hw": diff[1], "speedup": speed[0], "speedup_hw": speed[1],
            "a_train_s": float(np.mean(secs[a])), "b_train_s": float(np.mean(secs[b]))}
