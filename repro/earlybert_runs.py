"""EarlyBERT's experiments as study units (`repro.study`), and the arithmetic of their tables.

`repro.earlybert` is the paper's algorithm; this module runs it as the official code does and
measures it against dense training (`earlybert_glue`, `earlybert_squad`, `earlybert_pretraining`,
`ticket_mask_distance` call it):

    s = Setting("MRPC", P)                                    # or Setting("SQuAD", P)
    dense = dense_unit(study, s, seed, tok)                   # GLUE: glue_finetune's own unit
    search = search_unit(study, s, seed, tok, R)              # all weights + coefficients, L1, detector
    ticket = ticket_unit(study, s, seed, tok, search, "detector", R)  # draw, prune, rewind, train

- One search unit per task and seed trains all weights and the coefficients (official GLUE: lr
  2e-5, at most one epoch), the coefficients recorded every step and the early-bird detector
  running. Its artifacts: the rewind point (the weights before the search) and the coefficient
  trajectory. Every ticket is drawn from it: when the detector fired ("detector"), at the official
  fixed point, 20% of the epoch ("fixed"), at the end of the epoch ("end"), or at random with the
  per-layer sizes of the ticket it stands in for ("random"). A ticket is a unit that needs the
  search; it is trained from the rewound weights (official: lr 4e-5, 2 epochs, no warm-up) and
  charged the search only up to its draw: a search stopped there is the prefix of the whole one
  (same schedule, data, coefficients), so the whole one's clock at that step is its cost.
- Time is `train.train_seconds` (wall-clock minus evaluation; the L1 term, the recording and the
  detector included). EarlyBERT's saving against dense, both ways: "equal epochs" (the ticket's
  training seconds per step times dense's steps, i.e. trained as long as dense: the report's rule)
  and "as run" (the official accounting: dense 3 epochs, the ticket 2).
- Pre-training (never released by the authors; the paper's text): `pretrain_*_unit`.
"""
from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd
import torch

from .data import load_tokenizer
from .earlybert import (PAPER_TIME_SAVING, Slimming, kept_counts, mask_distance, prune, random_masks, search_plan,
                        snapshot)
from .metrics import main_metric
from .model import Bert, flops_per_step
from .profiles import Profile
from .results import fewer_flops, format_pm, mean_hw, save_figure, save_table, saving
from .study import Study
from .tasks import (corpus_data, finetune_glue, finetune_squad, glue_data, glue_model, pretrain_mlm, scratch_model,
                    squad_data, squad_model, steps_for)
from .train import Hook, train_seconds
from .units import glue_config, glue_unit

SQUAD = "SQuAD"
TICKETS = ("detector", "fixed", "end", "random")  # where a ticket is drawn from the search
DENSE_NOTEBOOK = "glue_finetune"  # GLUE's dense runs are that notebook's units: trained once
PRE_NOTEBOOK = "earlybert_pretraining"
SEARCH_EVAL = 8  # a search's own score is never used: its final evaluation sees 8 examples
SQUAD_DENSE_F1 = 50.0  # earlybert_squad trains the comparison once dense seed 0 reaches this F1
# SQuAD: only dev-v1.1.json is offline, split by article into training and evaluation halves, the
# same split for every run (so all of them score the same questions)
SQUAD_SPLIT = {"by": "article", "seed": 0, "eval_fraction": 0.5}


# ----------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class Search:
    """The searching stage's L1 term, the ticket's size and the early-bird detector (official values)."""
    lambda_head: float = 1e-4
    lambda_ffn: float = 1e-4
    head_ratio: float = 1 / 3  # 4 of 12 heads in every layer
    ffn_ratio: float = 0.4  # of the FFN neurons, ranked over all layers
    draw_every: float = 0.02  # a detector draw every 2% of the search
    window: int = 5
    epsilon: float = 0.1

    def slimming_kw(self, steps: int) -> dict:
        return {"lambda_head": self.lambda_head, "lambda_ffn": self.lambda_ffn, "head_ratio": self.head_ratio,
                "ffn_ratio": self.ffn_ratio, "draw_every": max(1, round(self.draw_every * steps)),
                "window": self.window, "epsilon": self.epsilon, "record_every": 1}

    def search_config(self) -> dict:
        """What decides the search's numbers (not how its tickets are trained)."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("ticket_")}


@dataclass(frozen=True)
class Recipe(Search):
    """EarlyBERT fine-tuning as the official GLUE scripts run it; None: the dense run's value."""
    search_lr: float | None = 2e-5
    search_epochs: float = 1.0  # the search's schedule and its longest run
    fixed_fraction: float = 0.2  # the official drawing point: 20% of the first epoch
    ticket_lr: float | None = 4e-5
    ticket_epochs: float | None = 2.0
    ticket_warmup: float = 0.0  # the official retraining has none


@dataclass(frozen=True)
class PretrainRecipe(Search):
    """EarlyBERT in pre-training (the paper's text): the ticket is drawn by `search_fraction` of the
    run at the latest; the search unit records up to `observe_fraction` (for the mask-distance
    figure: where the criterion fires), and only the steps up to the draw are charged."""
    search_fraction: float = 0.2
    observe_fraction: float = 0.5


GLUE_RECIPE = Recipe()
# SQuAD (official: search and training at lr 3e-5, 3 epochs): the dense run's rate and epochs
SQUAD_RECIPE = Recipe(search_lr=None, ticket_lr=None, ticket_epochs=None, ticket_warmup=0.1)


RECIPES = {"recipe": GLUE_RECIPE, "pretrain_recipe": PretrainRecipe()}  # the notebooks' override parameters


def recipe(base, overrides: dict | None):
    """`base` with a notebook's overrides, each checked by its rule in repro.checks (draw_every:
    a fraction of the search); an unknown name is one clear error listing the fields."""
    from .checks import check_parameter

    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"expected a dict of recipe fields, e.g. {{'epsilon': 0.05}}, got {overrides!r}")
    names = {f.name for f in fields(base)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"unknown recipe field(s) {bad}: valid fields are {', '.join(sorted(names))}")
    for key, value in overrides.items():
        if key != "draw_every":
            check_parameter(key, value)
        elif not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise ValueError(f"draw_every (a fraction of the search between draws) must be in (0, 1], got {value!r}")
    return replace(base, **overrides)


# ----------------------------------------------------------------------------- fine-tuning targets

@dataclass(frozen=True)
class Setting:
    """Where a fine-tuning comparison runs: a GLUE task or "SQuAD", with the profile's sizes."""
    task: str
    P: Profile
    data_dir: str | None = None

    @property
    def squad(self) -> bool:
        return self.task == SQUAD

    @property
    def metric(self) -> str:
        return "f1" if self.squad else main_metric(self.task)

    @property
    def notebook(self) -> str:  # the notebook its search and tickets belong to, whoever asks
        return "earlybert_squad" if self.squad else "earlybert_glue"

    @property
    def seq_len(self) -> int:
        return self.P.squad_seq_len if self.squad else self.P.finetune_seq_len

    def config(self) -> dict:
        """What decides the data, the model and the dense run (besides the seed)."""
        if not self.squad:  # as glue_unit records it (finetune_glue's default batching)
            return glue_config(self.task, self.P, group_by_length=True)
        P = self.P
        return {"kind": "squad", "checkpoint": P.checkpoint, "seq_len": P.squad_seq_len, "stride": P.squad_stride,
                "batch": P.finetune_batch, "lr": P.squad_lr or P.finetune_lr, "epochs": P.squad_epochs,
                "train_questions": P.squad_train_questions, "eval_questions": P.squad_eval_questions,
                "group_by_length": True, "split": SQUAD_SPLIT}

    def data(self, tokenizer, seed: int, eval_limit: int | None = None):
        if self.squad:
            return squad_data(self.P, tokenizer, self.data_dir, seed, eval_limit=eval_limit,
                              eval_fraction=SQUAD_SPLIT["eval_fraction"], split_seed=SQUAD_SPLIT["seed"])
        train_ex, dev, collate = glue_data(self.task, self.P, tokenizer, self.data_dir, seed)
        return train_ex, dev[:eval_limit] if eval_limit else dev, collate

    def model(self, seed: int, **kw) -> Bert:
        if self.squad:
            return squad_model(self.P.checkpoint, seed=seed, **kw)
        return glue_model(self.P.checkpoint, self.task, seed=seed, pooling=self.config()["pooling"], **kw)

    def finetune(self, model, seed: int, data, tokenizer, **kw) -> dict:
        if self.squad:
            return finetune_squad(model, self.P, seed, tokenizer=tokenizer, data=data, progress=False, **kw)
        return finetune_glue(model, self.task, self.P, seed, tokenizer=tokenizer, data=data, progress=False, **kw)

    def flops_per_step(self, config) -> float:
        return flops_per_step(config, self.seq_len, self.P.finetune_batch)


def _status(r) -> str:
    return "diverged" if r.status == "diverged" else "ok"  # a hook's stop is a finished run


def _loadavg() -> float:
    return os.getloadavg()[0]  # other work on the machine skews timings: keep a trace


def dense_unit(study: Study, s: Setting, seed: int, tokenizer, needs=()) -> dict | None:
    """Dense fine-tuning. GLUE: glue_finetune's unit itself (same identity, trained once)."""
    if not s.squad:
        return glue_unit(study, s.task, s.P, seed, tokenizer=tokenizer, data_dir=s.data_dir, notebook=DENSE_NOTEBOOK,
                         needs=needs)

    def run(u):
        out = s.finetune(s.model(seed), seed, s.data(tokenizer, seed), tokenizer, **u.train_kwargs())
        r = out["result"]
        return {"metrics": out["metrics"] | {"train_loss": r.history[-1]["loss"]}, "times": r.times,
                "status": _status(r), "history": r.history, "n_train": out["n_train"], "n_eval": out["n_eval"],
                "loadavg": _loadavg()}
    return study.unit(task=s.task, method="dense", seed=seed, config=s.config(), run=run, needs=needs,
                      notebook=s.notebook)


def search_unit(study: Study, s: Setting, seed: int, tokenizer, R: Recipe = GLUE_RECIPE, *, stop: str | None = None,
                needs=()) -> dict | None:
    """The searching stage. stop=None: the whole search (at most R.search_epochs), so that every
    ticket can be drawn from it; "detector" / "fixed": end it at that ticket (cheaper, one ticket).
    Record: per ticket its draw step, the search seconds up to it, the fraction of the epoch and its
    distance to the end-of-search ticket; each detector's firing step; the detector log.
    Artifacts (folder "search"): rewind.pt (the weights before the search), trajectory.pt (the
    Slimming hook's state: coefficients at every step)."""
    config = {"kind": "earlybert_search", **s.config(), "search": R.search_config(), "stop": stop}

    def run(u):
        train_ex, dev, collate = s.data(tokenizer, seed, eval_limit=SEARCH_EVAL)
        model = s.model(seed, slimming=True)
        start = snapshot(model)  # the rewind point
        per_epoch = steps_for(len(train_ex), s.P.finetune_batch, 1.0)
        steps = max(1, math.ceil(R.search_epochs * per_epoch))
        steps, fixed, hook = search_plan(per_epoch, stop, R.search_epochs, R.fixed_fraction, **R.slimming_kw(steps))
        r = s.finetune(model, seed, (train_ex, dev, collate), tokenizer, steps=steps, lr=R.search_lr or s.config()["lr"],
                       hooks=[hook], log_every=1, **u.train_kwargs())["result"]
        folder = u.cache / "search"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(start, folder / "rewind.pt")
        torch.save(hook.state_dict(), folder / "trajectory.pt")
        at = {"detector": hook.found_step or r.steps, "fixed": min(fixed, r.steps), "end": r.steps}
        covered = ("detector", "fixed", "end") if stop is None else (stop,)
        return {"metrics": {"steps": r.steps, "found": hook.found_step is not None}, "times": r.times,
                "status": _status(r), "steps_per_epoch": per_epoch, "max_steps": steps,
                "tickets": ticket_draws(hook, r, {k: at[k] for k in covered}, per_epoch),
                "fired": hook.fired_steps(), "draws": hook.draws, "draw_every": hook.draw_every,
                "units": _units(hook), "loadavg": _loadavg()}
    return study.unit(task=s.task, method="search", seed=seed, config=config, run=run, needs=needs, artifact="search",
                      notebook=s.notebook)


def ticket_draws(hook: Slimming, r, at: dict, reference: int) -> dict:
    """Per ticket: draw step, the search's seconds up to it, fraction of `reference` steps,
    heads/neurons kept per layer, and its distance to the last recorded ticket. Seconds: the whole
    run's training time for a ticket drawn where the search ended, else the clock when its step
    was logged (every step; the hook's own work at that one step comes after it, a few ms)."""
    seconds = {h["step"]: train_seconds(h) for h in r.history} | {r.steps: train_seconds(r)}
    last = hook.masks_at(hook.steps[-1])
    out = {}
    for name, step in at.items():
        masks = hook.masks_at(step)
        out[name] = {"step": step, "seconds": seconds[step], "fraction": step / reference,
                     "found": name != "detector" or hook.found_step == step, **kept_counts(masks),
                     "distance_to_last": {"heads": mask_distance(masks[0], last[0]), "ffn": mask_distance(masks[1], last[1])}}
    return out


def _units(hook: Slimming) -> dict:
    return {"heads": sum(hook.sizes[0]), "ffn": sum(hook.sizes[1])}


def draw_ticket(rewound: Bert, hook: Slimming, step: int, random_seed: int | None = None) -> tuple[Bert, tuple]:
    """(pruned model, masks): the ticket drawn from the search's coefficients at `step`, sliced
    out of `rewound` (the weights before the search); with `random_seed`, a random ticket with
    that ticket's per-layer sizes instead."""
    masks = hook.masks_at(step)
    if random_seed is not None:
        masks = random_masks(*masks, seed=random_seed)
    return prune(rewound, *masks), masks


def trajectory(study: Study, search: dict, draw_kw: dict | None = None) -> Slimming:
    """The search's Slimming hook as it ended (coefficients of every step), from its artifact."""
    hook = Slimming(**(draw_kw or {}))
    hook.load_state_dict(torch.load(study.cache_dir(search["unit"]) / "search" / "trajectory.pt", weights_only=False))
    hook.record_every = 1
    return hook


def ticket_unit(study: Study, s: Setting, seed: int, tokenizer, search: dict | None, ticket: str,
                R: Recipe = GLUE_RECIPE, like: str = "detector", needs=()) -> dict | None:
    """One ticket of a search, pruned out of the rewound weights and trained with the L1 term off.
    ticket "random": as many heads / neurons per layer as the `like` ticket, at random positions,
    charged no search. Record: metrics, times {search, draw, train}, steps, FLOPs per step and
    parameters of the ticket and of the dense model, heads and neurons kept per layer."""
    if ticket not in TICKETS:
        raise ValueError(f"ticket must be one of {TICKETS}, got {ticket!r}")
    source = like if ticket == "random" else ticket
    ok = search if search is not None and search["status"] == "ok" else None
    config = {"kind": "earlybert_ticket", **s.config(), "search": search["unit"] if search else "waiting",
              "ticket": ticket, "like": like if ticket == "random" else None,
              "train": {"lr": R.ticket_lr, "epochs": R.ticket_epochs, "warmup": R.ticket_warmup}}

    def run(u):
        folder = study.cache_dir(search["unit"]) / "search"
        data = s.data(tokenizer, seed)
        model = s.model(seed, slimming=True)
        model.load_state_dict(torch.load(folder / "rewind.pt"))
        hook = trajectory(study, search, {"head_ratio": R.head_ratio, "ffn_ratio": R.ffn_ratio})
        drawn = search["tickets"][source]
        t0 = time.perf_counter()
        pruned, masks = draw_ticket(model, hook, drawn["step"], seed if ticket == "random" else None)
        t_draw = time.perf_counter() - t0
        coefs = sum(c.numel() for cs in model.coefficients() for c in cs)
        dense = {"params": model.num_params() - coefs, "flops_per_step": s.flops_per_step(model.config)}
        del model
        out = s.finetune(pruned, seed, data, tokenizer, lr=R.ticket_lr or s.config()["lr"],
                         epochs=R.ticket_epochs or s.config()["epochs"], warmup=R.ticket_warmup, **u.train_kwargs())
        r = out["result"]
        charged = (0, 0.0) if ticket == "random" else (drawn["step"], drawn["seconds"])
        return {"metrics": out["metrics"] | {"train_loss": r.history[-1]["loss"]}, "status": _status(r),
                "times": {**r.times, "search": charged[1], "draw": t_draw, "train": train_seconds(r)},
                "steps": {"search": charged[0], "train": r.steps}, "draw_step": drawn["step"],
                "found": drawn["found"], "draw_fraction": drawn["fraction"], "params": pruned.num_params(),
                "flops_per_step": s.flops_per_step(pruned.config), "dense": dense, **kept_counts(masks),
                "history": r.history, "n_train": out["n_train"], "n_eval": out["n_eval"], "loadavg": _loadavg()}
    return study.unit(task=s.task, method=ticket, seed=seed, config=config, run=run, needs=[ok, *needs],
                      notebook=s.notebook)


def squad_gate(dense0: dict | None, bar: float) -> str:
    """Is the SQuAD comparison worth its hours? "passed" when dense seed 0 reached F1 `bar`,
    "failed" when it did not, "waiting" while it has not run, "off" when bar <= 0 (no gate)."""
    if bar <= 0:
        return "off"
    if dense0 is None:
        return "waiting"
    return "passed" if dense0["metrics"]["f1"] >= bar else "failed"


def comparison_units(study: Study, s: Setting, seed: int, tokenizer, R: Recipe, tickets, *, draw: str = "detector",
                     with_dense: bool = True, needs=()) -> list[dict | None]:
    """A task and seed's units: dense (unless the caller asked for it already), the search (the
    whole one when a ticket other than `draw` and random is wanted, else stopped at `draw`) and the
    tickets."""
    stop = None if set(tickets) - {draw, "random"} else draw
    rows = [dense_unit(study, s, seed, tokenizer, needs=needs)] if with_dense else []
    search = search_unit(study, s, seed, tokenizer, R, stop=stop, needs=needs)
    rows += [ticket_unit(study, s, seed, tokenizer, search, t, R, like=draw, needs=needs) for t in tickets]
    return rows + [search]


# ----------------------------------------------------------------------------- tables

def comparison(records: list[dict]) -> pd.DataFrame:
    """One row per (task, seed, method) of the dense and ticket units: the main metric ("value"),
    the time parts (search, draw, train; time_s their sum), steps, FLOPs, parameters, and each
    ticket's saving against the dense run of its task and seed, both ways:
    time_saving_pct (equal epochs: the ticket trained as many steps as dense, from its measured
    seconds per step) and time_saving_official_pct (as run: dense its epochs, the ticket its own);
    the same for FLOPs (the search's steps at the dense cost)."""
    rows = []
    for r in records:
        if r["method"] not in ("dense", *TICKETS):
            continue
        t, m = r["times"], "f1" if r["task"] == SQUAD else main_metric(r["task"])
        dense = r["method"] == "dense"
        rows.append({"task": r["task"], "seed": r["seed"], "method": r["method"], "metric": m,
                     "value": r["metrics"].get(m), **{k: r["metrics"].get(k) for k in ("exact_match", "f1") if k in r["metrics"]},
                     "search_s": 0.0 if dense else t["search"], "draw_s": 0.0 if dense else t["draw"],
                     "train_s": train_seconds(t) if dense else t["train"],
                     "search_steps": 0 if dense else r["steps"]["search"],
                     "train_steps": r["history"][-1]["step"] if dense else r["steps"]["train"],
                     "flops_per_step": None if dense else r["flops_per_step"], "params": None if dense else r["params"],
                     "dense_flops_per_step": None if dense else r["dense"]["flops_per_step"],
                     "dense_params": None if dense else r["dense"]["params"],
                     "draw_step": None if dense else r["draw_step"], "draw_fraction": None if dense else r["draw_fraction"],
                     "found": None if dense else r["found"], "n_train": r.get("n_train"), "loadavg": r.get("loadavg")})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["time_s"] = df["search_s"] + df["draw_s"] + df["train_s"]
    # the dense run's size comes with its tickets (they built the unpruned model)
    size = df.dropna(subset=["dense_params"]).groupby(["task", "seed"])[["dense_params", "dense_flops_per_step"]].first()
    d = df[df.method == "dense"].set_index(["task", "seed"])[["time_s", "train_steps"]].join(size)
    d.columns = ["d_time", "d_steps", "d_params", "d_fps"]
    df = df.join(d, on=["task", "seed"])
    is_dense = df.method == "dense"
    df.loc[is_dense, "params"], df.loc[is_dense, "flops_per_step"] = df["d_params"], df["d_fps"]
    equal_s = df["search_s"] + df["draw_s"] + df["train_s"] / df["train_steps"] * df["d_steps"]
    dense_flops = df["d_steps"] * df["d_fps"]
    df["flops_total"] = df["search_steps"] * df["d_fps"] + df["train_steps"] * df["flops_per_step"]
    df["time_saving_pct"] = 100 * (1 - equal_s / df["d_time"])
    df["time_saving_official_pct"] = 100 * (1 - df["time_s"] / df["d_time"])
    df["flops_saving_pct"] = 100 * (1 - (df["search_steps"] * df["d_fps"] + df["d_steps"] * df["flops_per_step"]) / dense_flops)
    df["flops_saving_official_pct"] = 100 * (1 - df["flops_total"] / dense_flops)
    return df.drop(columns=["d_time", "d_steps", "d_params", "d_fps", "dense_params", "dense_flops_per_step"])


def method_table(runs: pd.DataFrame, methods) -> pd.DataFrame:
    """Per task and method: the metric (mean ± 95% t-interval over seeds), time, savings both ways
    (mean ± interval), FLOPs per step and parameters."""
    rows = []
    for (task, method), g in runs[runs.method.isin(methods)].groupby(["task", "method"], sort=False):
        row = {"task": task, "method": method, "metric": g["metric"].iloc[0], "n": len(g)}
        for col in ("value", "exact_match", "time_s", "search_s", "time_saving_pct", "time_saving_official_pct",
                    "flops_saving_pct"):
            if col not in g:
                continue
            mean, hw, _ = mean_hw(g[col])
            row[col], row[f"{col}_hw"] = mean, hw
        row |= {"flops_per_step": g["flops_per_step"].mean(), "params": g["params"].mean()}
        rows.append(row)
    table = pd.DataFrame(rows)
    table["method"] = pd.Categorical(table["method"], categories=list(methods), ordered=True)
    return table.sort_values(["task", "method"]).set_index(["task", "method"])


PAIRS = (("detector", "end"), ("fixed", "end"), ("detector", "random"), ("fixed", "random"))


def paired(runs: pd.DataFrame, a: str, b: str, col: str = "value", keys=("task", "seed")) -> list[float]:
    """a − b per task and seed (the pairs where both ran)."""
    wide = runs.pivot_table(index=list(keys), columns="method", values=col)
    return list((wide[a] - wide[b]).dropna()) if a in wide and b in wide else []


def early_bird_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The early-bird test: per task and over all tasks, each ticket's metric and the paired
    differences early − late (end of the epoch) and early − random, mean ± 95% t-interval."""
    rows = []
    for task, g in [*runs.groupby("task"), ("all tasks", runs)]:
        row = {"task": task}
        for t in TICKETS:
            row[t], row[f"{t}_hw"], _ = mean_hw(g.loc[g.method == t, "value"])
        for a, b in PAIRS:
            row[f"{a}-{b}"], row[f"{a}-{b}_hw"], row["n"] = mean_hw(paired(g, a, b))
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


def early_tickets_hold(d: float, hw: float, vs: str) -> bool:
    """The early-bird rule: an early ticket scores "as well as" the late one when its mean paired
    difference is at least −1 point or its 95% interval reaches 0; "better than random" when the
    mean difference is positive."""
    if not math.isfinite(d):
        return False
    if vs == "end":
        return d >= -1.0 or (math.isfinite(hw) and d + hw >= 0)
    return d > 0


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table's "x" / "x_hw" column pairs as "mean ± hw" strings (differences signed)."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        if col.endswith("_hw"):
            continue
        if f"{col}_hw" in table:
            signed = "-" in col or "saving" in col
            out[col] = [format_pm(m, h, signed=signed) for m, h in zip(table[col], table[f"{col}_hw"])]
        else:
            out[col] = table[col]
    return out


# ----------------------------------------------------------------------------- figure and text

COLORS = {"dense": "tab:gray", "random": "tab:orange", "detector": "tab:blue", "fixed": "tab:cyan",
          "end": "tab:purple", "earlybert": "tab:blue"}
PARTS = (("search_s", "search", "/"), ("draw_s", "draw + prune", "x"), ("train_s", "training", ""))


def plot_comparison(runs: pd.DataFrame, methods, title: str):
    """Left: the dev metric per task and method (bars: mean over seeds, dots: seeds). Right: the
    time per run (mean over seeds) stacked as search, drawing and training."""
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(runs["task"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 2.5 * len(tasks) + 5), 3.8))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        g = runs[runs.method == m]
        x0 = {t: tasks.index(t) + (i - (len(methods) - 1) / 2) * width for t in tasks}
        means = g.groupby("task")["value"].mean().reindex(tasks)
        axes[0].bar([x0[t] for t in tasks], means.values, width, color=COLORS.get(m), label=m)
        axes[0].scatter([x0[t] for t in g.task], g.value, color="k", s=8, zorder=3)
        parts = g.groupby("task")[[p[0] for p in PARTS]].mean().reindex(tasks).fillna(0)
        bottom = np.zeros(len(tasks))
        for col, name, hatch in PARTS:
            if parts[col].sum() > 0:
                axes[1].bar([x0[t] for t in tasks], parts[col].values, width, bottom=bottom, color=COLORS.get(m),
                            hatch=hatch, edgecolor="white", label=f"{m}: {name}")
                bottom += parts[col].values
    metrics = runs.groupby("task")["metric"].first()
    axes[0].set_xticks(range(len(tasks)), [f"{t}\n({metrics[t]})" for t in tasks])
    axes[0].set(ylabel="dev metric (0-100)", title="Task metric (bars: mean over seeds; dots: seeds)")
    axes[0].legend(fontsize=8)
    axes[1].set_xticks(range(len(tasks)), tasks)
    axes[1].set(ylabel="training wall-clock time (s)", title="Time per run, search included (mean over seeds)")
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def timing_note(runs: pd.DataFrame, profile: str) -> str:
    """The machine's load while the runs trained (1-minute load average) and whether it was busy;
    at the smoke profile, that the numbers measure nothing."""
    load = pd.to_numeric(runs["loadavg"], errors="coerce").dropna() if "loadavg" in runs else pd.Series(dtype=float)
    note = "" if profile != "smoke" else "At smoke scale these numbers only show that the pipeline runs end to end."
    if load.empty:
        return note
    busy = load.max() > os.cpu_count() + 0.5
    return (f"Timing conditions: 1-minute load average {load.mean():.1f} on {os.cpu_count()} cores"
            + (" (other work competed for the CPU, so wall-clock times are noisy). " if busy else " (no heavy competing load). ")
            + note)


def save_comparison(runs: pd.DataFrame, earlybert: str, out, name: str, title: str) -> pd.DataFrame | None:
    """Write a comparison notebook's outputs: runs.csv, the table of dense, the `earlybert` ticket
    and the random one (`name`.csv, mean ± hw) and the figure `name`; returns the table
    (method_table), None while no run has finished."""
    if not len(runs):
        return None
    methods = ["dense", earlybert, "random"]
    save_table(runs, out, "runs")
    table = method_table(runs, methods)
    save_table(shown(table), out, name)
    save_figure(plot_comparison(runs[runs.method.isin(methods)], methods, title), out, name)
    return table


def comparison_text(table: pd.DataFrame | None, earlybert: str, accounting: str) -> list[str]:
    """The computed conclusion of a dense / EarlyBERT / random table (method_table): per task the
    metrics and the time saved both ways, in words; then the paper's claim."""
    lines = []
    for task, g in (table.groupby(level="task") if table is not None else []):
        g = g.droplevel("task")
        if "dense" not in g.index or earlybert not in g.index:
            continue
        e, d = g.loc[earlybert], g.loc["dense"]
        r = g.loc["random"] if "random" in g.index else None
        lines.append(f"- **{task}** ({e['metric']}): EarlyBERT {format_pm(e['value'], e['value_hw'])}, dense "
                     f"{format_pm(d['value'], d['value_hw'])}" + (f", random ticket {format_pm(r['value'], r['value_hw'])}" if r is not None else "")
                     + f"; against dense {saving(e['time_saving_pct'], e['time_saving_pct_hw'])} with equal epochs, "
                     f"{saving(e['time_saving_official_pct'], e['time_saving_official_pct_hw'])} {accounting} "
                     f"({fewer_flops(e['flops_saving_pct'])}); the search took {e['search_s']:.0f} s of {e['time_s']:.0f} s.")
    if lines:
        lines.append(f"- Paper: {PAPER_TIME_SAVING[0]:.0f}-{PAPER_TIME_SAVING[1]:.0f}% less time, search included; "
                     "accuracy comparable to BERT.")
    return lines


# ----------------------------------------------------------------------------- when tickets emerge

# the detectors a search runs; "found" is the stopping rule (heads and FFN at the same draw),
# the criterion the tickets, the report and the figure's bold marker use
CRITERIA = {"heads": "heads", "ffn": "FFN", "joint": "joint", "found": "both"}  # short names
CRITERIA_LONG = {"heads": "heads alone", "ffn": "FFN neurons alone", "joint": "heads + FFN as one mask",
                 "found": "heads and FFN at the same draw: the stopping rule, the report's"}


def criterion_table(searches: list[dict], setting: str) -> pd.DataFrame:
    """Per search: where each criterion fired, as a fraction of the reference length (fine-tuning:
    the epoch; pre-training: the whole run), the official fixed point, and how far the detector's
    ticket is from the last ticket of the search (heads, FFN)."""
    rows = []
    for r in searches:
        ref = r.get("reference_steps") or r["steps_per_epoch"]
        det = r["tickets"]["detector"]
        rows.append({"setting": setting, "task": r["task"], "seed": r["seed"], "search_steps": r["metrics"]["steps"],
                     "reference_steps": ref, **{f"fired_{k}": None if v is None else v / ref for k, v in r["fired"].items()},
                     "fixed": r["tickets"]["fixed"]["fraction"] if "fixed" in r["tickets"] else None,
                     "detector_ticket": det["fraction"], "detector_found": det["found"],
                     **{f"units_{k}": v for k, v in r["units"].items()},
                     **{f"distance_to_last_{k}": v for k, v in det["distance_to_last"].items()}})
    return pd.DataFrame(rows)


def distance_matrices(study: Study, search: dict, n: int = 60, **draw_kw) -> tuple[list[int], dict]:
    """(steps, {"heads": D, "ffn": D}): pairwise mask distances of the tickets drawn at about `n`
    evenly spread steps of the search (from its coefficient trajectory)."""
    from .earlybert import distance_matrix

    hook = trajectory(study, search, draw_kw)
    idx = np.unique(np.linspace(0, len(hook.steps) - 1, min(n, len(hook.steps))).round().astype(int))
    steps = [hook.steps[i] for i in idx]
    masks = [hook.masks_at(st) for st in steps]
    return steps, {"heads": distance_matrix([m[0] for m in masks]), "ffn": distance_matrix([m[1] for m in masks])}


MARKERS = {"heads": ("tab:red", ":"), "ffn": ("tab:orange", "--"), "joint": ("tab:pink", "-."), "found": ("red", "-")}


def plot_mask_distance(panels: list[dict]):
    """One row per panel {"title", "steps", "matrices", "fired", "fixed"}: the heads' and the FFN
    neurons' distance matrices, with a line where each criterion fired (legend: which) and the
    official fixed point (white, dashed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 4.4 * len(panels)), squeeze=False)
    for row, p in zip(axes, panels):
        st = p["steps"]
        half = (st[-1] - st[0]) / max(1, len(st) - 1) / 2  # each cell spans one interval between tickets
        for ax, (kind, label) in zip(row, (("heads", "attention heads"), ("ffn", "FFN neurons"))):
            im = ax.imshow(p["matrices"][kind].numpy(), vmin=0, vmax=1, cmap="viridis", origin="lower",
                           extent=(st[0] - half, st[-1] + half, st[0] - half, st[-1] + half))
            for crit, (color, style) in MARKERS.items():
                step = p["fired"].get(crit)
                if step is not None and step <= st[-1]:
                    ax.axvline(step, color=color, ls=style, lw=2.5 if crit == "found" else 1.2,
                               label=f"{CRITERIA[crit]} ({CRITERIA_LONG[crit]}): step {step}")
                    ax.axhline(step, color=color, ls=style, lw=2.5 if crit == "found" else 1.2)
            if p.get("fixed"):
                ax.axvline(p["fixed"], color="white", ls="--", lw=1.5, label=f"official fixed point (step {p['fixed']})")
            missing = [CRITERIA[c] for c in MARKERS if p["fired"].get(c) is None]
            ax.set(xlabel="training step of ticket A", ylabel="training step of ticket B",
                   title=f"{p['title']}: {label}" + (f"\ncriteria not fired: {', '.join(missing)}" if missing else ""))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6.5, loc="upper left", title="criterion fired", title_fontsize=7)
            fig.colorbar(im, ax=ax, label="normalised Hamming distance")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- pre-training

def pretrain_steps(P: Profile) -> int:
    return P.eb_pretrain_steps or P.pretrain_steps


def mlm_config(P: Profile, ln: str) -> dict:
    """What decides an EarlyBERT pre-training run (besides the seed and the method)."""
    return {"kind": "earlybert_mlm", "layers": P.layers, "hidden": P.hidden, "heads": P.heads,
            "intermediate": P.intermediate, "seq_len": P.seq_len, "batch": P.pretrain_batch, "lr": P.pretrain_lr,
            "steps": pretrain_steps(P), "ln": ln, "tokenizer": P.checkpoint}


@functools.lru_cache(maxsize=2)
def _corpus(P: Profile, data_dir):
    # one pass over the text (~5 characters per token), tokenised once per process
    chars = pretrain_steps(P) * P.pretrain_batch * P.seq_len * 5
    return corpus_data(P, load_tokenizer(P.checkpoint), data_dir, max_chars=chars, valid_chars=200 * P.seq_len * 5)


def _pretrain(model, P: Profile, seed: int, steps: int, data_dir, hooks=(), **kw) -> dict:
    every = max(1, pretrain_steps(P) // 10)  # 10 validation points over a whole run
    kw.setdefault("log_every", min(10, every))  # a clock reading at every validation point
    return pretrain_mlm(model, P, seed, data=_corpus(P, data_dir), steps=steps, hooks=hooks, eval_every=every,
                        progress=False, **kw)


def _curve(r) -> list[dict]:
    seconds = {h["step"]: train_seconds(h) for h in r.history}
    return [{"step": e["step"], "val_loss": e["val_loss"], "seconds": seconds.get(e["step"])} for e in r.evals]


def _mlm_flops(config, P: Profile) -> float:
    return flops_per_step(config, P.seq_len, P.pretrain_batch, head_tokens=0.15)  # logits at masked tokens only


def _mlm_record(r, model, P: Profile, times: dict, steps: dict) -> dict:
    c = model.config
    return {"metrics": {"val_loss": r.final_eval.get("val_loss", math.nan)}, "status": _status(r), "times": times,
            "steps": steps, "params": model.num_params(), "flops_per_step": _mlm_flops(c, P),
            "heads_per_layer": list(c.heads_per_layer), "ffn_per_layer": list(c.ffn_per_layer), "curve": _curve(r),
            "loadavg": _loadavg()}


def pretrain_dense_unit(study: Study, P: Profile, seed: int, *, ln: str = "pre", data_dir=None) -> dict | None:
    """Dense MLM pre-training from scratch; its final model is the artifact ("model")."""
    def run(u):
        model = scratch_model(P, load_tokenizer(P.checkpoint), ln=ln, seed=seed)
        r = _pretrain(model, P, seed, pretrain_steps(P), data_dir, **u.train_kwargs())["result"]
        model.save_pretrained(u.cache / "model")
        times = {**r.times, "search": 0.0, "draw": 0.0, "train": train_seconds(r)}
        return _mlm_record(r, model, P, times, {"search": 0, "train": r.steps})
    return study.unit(task="MLM", method="dense", seed=seed, config=mlm_config(P, ln), run=run, artifact="model",
                      notebook=PRE_NOTEBOOK)


class _SaveAt(Hook):
    """Saves the searched model where a ticket may be drawn: when the detector fires (if by `cap`)
    and at `cap`. A hook after Slimming; its saves are not part of the method's cost, but are cheap."""

    def __init__(self, hook: Slimming, folder, cap: int):
        self.hook, self.folder, self.cap = hook, folder, cap

    def on_step_end(self, loop):
        if self.hook.found_step == loop.step and loop.step <= self.cap:
            loop.model.save_pretrained(self.folder / "at_detector")
        if loop.step == self.cap:
            loop.model.save_pretrained(self.folder / "at_fixed")


def pretrain_search_unit(study: Study, P: Profile, seed: int, R: PretrainRecipe = PretrainRecipe(), *, ln: str = "pre",
                         data_dir=None) -> dict | None:
    """The search as the start of a pre-training run (the schedule of the whole run), recorded
    every step up to R.observe_fraction of it. Tickets: "detector" (when the criterion fired, by
    R.search_fraction at the latest) and "fixed" (at R.search_fraction); the searched model is
    saved at both (folder "search": at_detector/, at_fixed/, trajectory.pt)."""
    total = pretrain_steps(P)
    cap = max(1, round(R.search_fraction * total))
    observe = min(total, max(cap, round(R.observe_fraction * total)), P.max_steps or total)  # clip: its step cap
    config = {**mlm_config(P, ln), "kind": "earlybert_mlm_search", "search": R.search_config()}

    def run(u):
        model = scratch_model(P, load_tokenizer(P.checkpoint), ln=ln, seed=seed, slimming=True)
        folder = u.cache / "search"
        hook = Slimming(**R.slimming_kw(cap))
        r = _pretrain(model, P, seed, total, data_dir, hooks=[hook, _SaveAt(hook, folder, cap)], stop_at=observe,
                      log_every=1, **u.train_kwargs())["result"]
        torch.save(hook.state_dict(), folder / "trajectory.pt")
        found = hook.found_step if hook.found_step is not None and hook.found_step <= cap else None
        tickets = ticket_draws(hook, r, {"detector": found or cap, "fixed": cap}, total)
        tickets["detector"]["found"] = found is not None
        if found is None and not (folder / "at_detector").exists():  # not fired by the cap: the ticket at the cap
            (folder / "at_detector").symlink_to("at_fixed")
        return {"metrics": {"val_loss": r.final_eval.get("val_loss", math.nan), "steps": r.steps}, "times": r.times,
                "status": _status(r), "tickets": tickets, "fired": hook.fired_steps(), "draws": hook.draws,
                "draw_every": hook.draw_every, "units": _units(hook), "max_steps": observe, "reference_steps": total,
                "curve": _curve(r),
                "flops_per_step": _mlm_flops(model.config, P), "loadavg": _loadavg()}
    return study.unit(task="MLM", method="search", seed=seed, config=config, run=run, artifact="search",
                      notebook=PRE_NOTEBOOK)


def pretrain_ticket_unit(study: Study, P: Profile, seed: int, search: dict | None, method: str, R: PretrainRecipe,
                         *, draw: str = "detector", ln: str = "pre", data_dir=None) -> dict | None:
    """The `draw` ticket ("earlybert") or a random one with its per-layer sizes ("random"), pruned
    from the searched weights at the draw step (the search's steps are pre-training too) and
    pre-trained for the rest of the run. Both are charged the search up to the draw."""
    if method not in ("earlybert", "random"):
        raise ValueError(f"method must be 'earlybert' or 'random', got {method!r}")
    ok = search if search is not None and search["status"] == "ok" else None
    config = {**mlm_config(P, ln), "search": search["unit"] if search else "waiting", "draw": draw}

    def run(u):
        folder = study.cache_dir(search["unit"]) / "search"
        drawn = search["tickets"][draw]
        model = Bert.from_pretrained(str(folder / f"at_{draw}"))
        hook = trajectory(study, search, {"head_ratio": R.head_ratio, "ffn_ratio": R.ffn_ratio})
        t0 = time.perf_counter()
        pruned, _ = draw_ticket(model, hook, drawn["step"], seed if method == "random" else None)
        t_draw = time.perf_counter() - t0
        del model
        r = _pretrain(pruned, P, seed, pretrain_steps(P) - drawn["step"], data_dir, **u.train_kwargs())["result"]
        pruned.save_pretrained(u.cache / "model")
        times = {**r.times, "search": drawn["seconds"], "draw": t_draw, "train": train_seconds(r)}
        return {**_mlm_record(r, pruned, P, times, {"search": drawn["step"], "train": r.steps}),
                "draw_step": drawn["step"], "found": drawn["found"]}
    return study.unit(task="MLM", method=method, seed=seed, config=config, run=run, needs=[ok], artifact="model",
                      notebook=PRE_NOTEBOOK)


def pretraining_table(pre: dict, fine: pd.DataFrame | None = None, metric: str | None = None) -> pd.DataFrame:
    """Per pre-training method: validation loss, time (search included), steps, FLOPs, parameters
    and the saving against dense (the same number of steps for all three); with the fine-tuning
    runs `fine` (results.to_frame), their `metric` column as "finetune" mean ± 95% t-interval."""
    rows = {}
    for m, r in pre.items():
        if r is None:
            continue
        t = r["times"]
        rows[m] = {"val_loss": r["metrics"]["val_loss"], "search_s": t["search"], "draw_s": t["draw"], "train_s": t["train"],
                   "time_s": t["search"] + t["draw"] + t["train"], "search_steps": r["steps"]["search"],
                   "train_steps": r["steps"]["train"], "flops_per_step": r["flops_per_step"], "params": r["params"]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if "dense" in rows:
        d = rows["dense"]
        table["flops_total"] = table["search_steps"] * d["flops_per_step"] + table["train_steps"] * table["flops_per_step"]
        table["time_saving_pct"] = 100 * (1 - table["time_s"] / d["time_s"])
        table["flops_saving_pct"] = 100 * (1 - table["flops_total"] / (d["train_steps"] * d["flops_per_step"]))
    if fine is not None and len(fine) and len(table):
        scores = {m: mean_hw(g[metric]) for m, g in fine.groupby("method")}
        table["finetune"], table["finetune_hw"], table["finetune_n"] = zip(
            *[scores.get(m, (math.nan, math.nan, 0)) for m in table.index])
    return table
