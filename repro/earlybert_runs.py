"""EarlyBERT's experiments as study units (`repro.study`); their tables and figures are in
`repro.earlybert_tables`.

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
import torch

from .data import load_tokenizer
from .earlybert import Slimming, kept_counts, mask_distance, prune, random_masks, search_plan, snapshot
from .metrics import main_metric
from .model import Bert, flops_per_step
from .profiles import Profile
from .study import Study
from .tasks import (corpus_data, finetune_glue, finetune_squad, glue_data, glue_model, pretrain_mlm, scratch_model,
                    squad_data, squad_model, steps_for)
from .train import Hook, train_seconds
from .units import glue_config, glue_unit, matmul_cost

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
    """EarlyBERT fine-tuning; None: the dense run's value (lr, epochs) or the earlier recipe's.

    The fields after `ticket_warmup` came with the official recipe (notes/official-code.md has
    each value's file and line in VITA-Group/EarlyBERT); left None they give the earlier recipe
    (the search's schedule one epoch long after a 10% warm-up, weight decay 0.01, Adam eps 1e-6,
    units ranked by |c|), whose recorded units keep their identity (None is not hashed)."""
    search_lr: float | None = 2e-5
    search_epochs: float = 1.0  # the search's longest run
    fixed_fraction: float = 0.2  # the official drawing point: 20% of the first epoch
    ticket_lr: float | None = 4e-5
    ticket_epochs: float | None = 2.0
    ticket_warmup: float = 0.0  # the official retraining has none
    schedule_epochs: float | None = None  # the search's lr schedule spans this many epochs (None: search_epochs)
    search_warmup: float | None = None  # None: the dense run's warm-up (10%)
    weight_decay: float | None = None  # search and ticket; None: TrainConfig's 0.01
    adam_eps: float | None = None  # search and ticket; None: TrainConfig's 1e-6
    rank: str | None = None  # "raw": keep the units whose coefficient is above the quantile; None: by |c|
    ticket_label: str | None = None  # a variant's tickets are recorded as "<ticket>@<label>" (controls)

    def optimizer_kw(self) -> dict:
        """TrainConfig overrides of the search and the ticket (weight decay, Adam eps)."""
        return {k: v for k, v in (("weight_decay", self.weight_decay), ("adam_eps", self.adam_eps)) if v is not None}

    def draw_kw(self) -> dict:
        """draw_masks arguments: the ticket's size and how units are ranked."""
        return {"head_ratio": self.head_ratio, "ffn_ratio": self.ffn_ratio,
                **({"magnitude": False} if self.rank == "raw" else {})}

    def search_steps(self, per_epoch: int) -> tuple[int, int]:
        """(schedule steps, steps run): the official search runs the first epoch of a 3-epoch
        schedule (`--num_train_epochs 3.0 --max_epochs 1`)."""
        run = max(1, math.ceil(self.search_epochs * per_epoch))
        return max(run, math.ceil((self.schedule_epochs or self.search_epochs) * per_epoch)), run


@dataclass(frozen=True)
class PretrainRecipe(Search):
    """EarlyBERT in pre-training (the paper's text): the ticket is drawn by `search_fraction` of the
    run at the latest; the search unit records up to `observe_fraction` (for the mask-distance
    figure: where the criterion fires), and only the steps up to the draw are charged."""
    search_fraction: float = 0.2
    observe_fraction: float = 0.5


# The official recipes (notes/official-code.md): GLUE launch_earlybert_glue.sh (search lr 2e-5 in a
# 3-epoch schedule stopped after one epoch; ticket 4e-5, 2 epochs) and the repository's own
# trainer's defaults (no warm-up, no weight decay, eps 1e-8); SQuAD launch_earlybert_squad.sh
# (search 3e-5 in its 2-epoch schedule; ticket 3e-5, 3 epochs, no warm-up). Both rank raw c.
OFFICIAL = {"search_warmup": 0.0, "weight_decay": 0.0, "adam_eps": 1e-8, "rank": "raw"}
GLUE_RECIPE = Recipe(schedule_epochs=3.0, **OFFICIAL)
SQUAD_RECIPE = Recipe(search_lr=3e-5, schedule_epochs=2.0, ticket_lr=3e-5, ticket_epochs=3.0, **OFFICIAL)
# what the study ran before it followed the official code (kept as a sensitivity row)
EARLIER_GLUE_RECIPE = Recipe()
EARLIER_SQUAD_RECIPE = Recipe(search_lr=None, ticket_lr=None, ticket_epochs=None, ticket_warmup=0.1)


RECIPES = {"recipe": GLUE_RECIPE, "pretrain_recipe": PretrainRecipe()}  # the notebooks' override parameters


def recipe(base, overrides: dict | None):
    """`base` with a notebook's overrides (repro.checks checks each value by its rule first); an
    unknown name is one clear error listing the fields; draw_every is a fraction of the search."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"expected a dict of recipe fields, e.g. {{'epsilon': 0.05}}, got {overrides!r}")
    names = {f.name for f in fields(base)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"unknown recipe field(s) {bad}: valid fields are {', '.join(sorted(names))}")
    for key, value in overrides.items():
        if key == "draw_every" and not (isinstance(value, (int, float)) and 0 < value <= 1):
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
        """What decides the data, the model and the dense run (besides the seed). Its "kind"
        ("glue", "squad") overrides the "kind" the search, ticket and timing units put before it:
        a slip kept because mending it would re-key every recorded EarlyBERT unit. Their method and
        their "search" key tell them from the dense run (study.LENGTH_KEYS)."""
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

    def evaluate(self, model, data) -> dict:
        """The dev metrics of `model` as it stands (the training loop's own evaluation)."""
        from .tasks import glue_eval_fn, squad_eval_fn
        _, dev, collate = data
        fn = squad_eval_fn(dev, collate) if self.squad else glue_eval_fn(self.task, dev, collate)
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model)
        finally:
            model.train(was)

    def flops_per_step(self, config) -> float:
        return flops_per_step(config, self.seq_len, self.P.finetune_batch)

    def dense_steps(self) -> int:
        """The dense run's steps, counted without tokenising (plan estimates only): SQuAD counts
        questions, a few % fewer than its windows (a long context gives more than one)."""
        from . import data as D
        from .tasks import glue_task
        if self.squad:
            train_json, _ = D.squad_article_split(D.load_squad(data_dir=self.data_dir),
                                                  eval_fraction=SQUAD_SPLIT["eval_fraction"], seed=SQUAD_SPLIT["seed"])
            n = len(D.squad_examples(train_json))
            n = min(n, self.P.squad_train_questions or n)
        else:
            n = len(D.load_glue(self.task, "train", data_dir=self.data_dir, limit=self.P.max_train(glue_task(self.task).name)))
        return steps_for(n, self.P.finetune_batch, self.config()["epochs"])

    def like_dense(self, epochs: float | None, cost: float = 1.0) -> tuple:
        """Study.unit's `like`: the plan estimates a unit waiting for the search (or SQuAD's gate)
        as the dense run x its epochs over the dense run's x `cost` per step."""
        dense = self.config()["epochs"]
        return (self.notebook if self.squad else DENSE_NOTEBOOK, "dense", self.task, (epochs or dense) / dense * cost)


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
                needs=(), label: str | None = None) -> dict | None:
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
        schedule, steps = R.search_steps(per_epoch)
        steps, fixed, hook = search_plan(per_epoch, stop, R.search_epochs, R.fixed_fraction,
                                         **{**R.slimming_kw(steps), **R.draw_kw()})
        schedule = max(schedule, steps)  # a clipped profile caps both alike
        kw = {"warmup": R.search_warmup} if R.search_warmup is not None else {}
        if schedule > steps:  # the run is the first `steps` of the longer schedule
            kw["stop_at"] = min(steps, s.P.max_steps or steps)
        r = s.finetune(model, seed, (train_ex, dev, collate), tokenizer, steps=schedule, lr=R.search_lr or s.config()["lr"],
                       hooks=[hook], log_every=1, **kw, **R.optimizer_kw(), **u.train_kwargs())["result"]
        folder = u.cache / "search"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(start, folder / "rewind.pt")
        torch.save(hook.state_dict(), folder / "trajectory.pt")
        heads, ffn = hook.coefficients_at(len(hook.steps) - 1)  # the official draw ranks raw c: count c < 0
        negative = {"heads": int(sum((c < 0).sum() for c in heads)), "ffn": int(sum((c < 0).sum() for c in ffn))}
        at = {"detector": hook.found_step or r.steps, "fixed": min(fixed, r.steps), "end": r.steps}
        covered = ("detector", "fixed", "end") if stop is None else (stop,)
        return {"metrics": {"steps": r.steps, "found": hook.found_step is not None}, "times": r.times,
                "status": _status(r), "steps_per_epoch": per_epoch, "max_steps": steps,
                "tickets": ticket_draws(hook, r, {k: at[k] for k in covered}, per_epoch),
                "fired": hook.fired_steps(), "draws": hook.draws, "draw_every": hook.draw_every,
                "units": _units(hook), "negative_coefficients": negative, "loadavg": _loadavg()}
    return study.unit(task=s.task, method=f"search@{label}" if label else "search", seed=seed, config=config, run=run,
                      needs=needs, artifact="search", notebook=s.notebook, like=s.like_dense(R.search_epochs))


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
    if ticket not in (*TICKETS, "full"):
        raise ValueError(f"ticket must be one of {(*TICKETS, 'full')}, got {ticket!r}")
    source = like if ticket in ("random", "full") else ticket
    ok = search if search is not None and search["status"] == "ok" else None
    config = {"kind": "earlybert_ticket", **s.config(), "search": search["unit"] if search else "waiting",
              "ticket": ticket, "like": like if ticket == "random" else None,
              "train": {"lr": R.ticket_lr, "epochs": R.ticket_epochs, "warmup": R.ticket_warmup, **R.optimizer_kw()},
              "draw": R.draw_kw() if R.rank else None}

    def run(u):
        folder = study.cache_dir(search["unit"]) / "search"
        data = s.data(tokenizer, seed)
        model = s.model(seed, slimming=True)
        model.load_state_dict(torch.load(folder / "rewind.pt"))
        hook = trajectory(study, search, R.draw_kw())
        drawn = search["tickets"][source]
        t0 = time.perf_counter()
        if ticket == "full":  # the control: every unit kept, through the same rewind -> prune -> train path
            pruned, masks = prune(model, *full_masks(model)), full_masks(model)
        else:
            pruned, masks = draw_ticket(model, hook, drawn["step"], seed if ticket == "random" else None)
        t_draw = time.perf_counter() - t0
        coefs = sum(c.numel() for cs in model.coefficients() for c in cs)
        dense = {"params": model.num_params() - coefs, "flops_per_step": s.flops_per_step(model.config)}
        del model
        before = s.evaluate(pruned, data)  # what pruning alone costs, before any retraining
        out = s.finetune(pruned, seed, data, tokenizer, lr=R.ticket_lr or s.config()["lr"],
                         epochs=R.ticket_epochs or s.config()["epochs"], warmup=R.ticket_warmup, **R.optimizer_kw(),
                         **u.train_kwargs())
        r = out["result"]
        charged = (0, 0.0) if ticket in ("random", "full") else (drawn["step"], drawn["seconds"])
        return {"metrics": out["metrics"] | {"train_loss": r.history[-1]["loss"]} | {f"pruned_{k}": v for k, v in before.items()},
                "status": _status(r),
                "times": {**r.times, "search": charged[1], "draw": t_draw, "train": train_seconds(r)},
                "steps": {"search": charged[0], "train": r.steps}, "draw_step": drawn["step"],
                "found": drawn["found"], "draw_fraction": drawn["fraction"], "params": pruned.num_params(),
                "flops_per_step": s.flops_per_step(pruned.config), "dense": dense, **kept_counts(masks),
                "history": r.history, "n_train": out["n_train"], "n_eval": out["n_eval"], "loadavg": _loadavg()}
    method = f"{ticket}@{R.ticket_label}" if R.ticket_label else ticket
    return study.unit(task=s.task, method=method, seed=seed, config=config, run=run, needs=[ok, *needs],
                      notebook=s.notebook, like=s.like_dense(config["train"]["epochs"], nominal_cost(R)))


def full_masks(model: Bert) -> tuple:
    """Keep-masks that keep every head and FFN neuron (the full-ticket control)."""
    c = model.config
    return ([torch.ones(n, dtype=torch.bool) for n in c.heads_per_layer],
            [torch.ones(n, dtype=torch.bool) for n in c.ffn_per_layer])


def step_times_unit(study: Study, s: Setting, seed: int, tokenizer, search: dict | None, R: Recipe = GLUE_RECIPE,
                    needs=(), tickets=TICKETS) -> dict | None:
    """The costs a task and seed's runs are charged per step, measured side by side: one training
    step of the dense model, of the search (coefficients, L1 term, recording and detector) and of
    each ticket the search drew, taken in turn for s.P.eb_timing_rounds rounds
    (analysis.rotated_step_times). Their loops share the seed, so every round gives them all the
    same batch, and the rounds walk the epoch's batches of varied lengths. A run's whole-run
    wall-clock mixes in whatever else the machine did while it trained (runs of one comparison
    train hours apart); per-round ratios do not. A random ticket keeps the per-layer sizes of
    the one it stands in for: its cost. Record "timing": seconds and ratio to dense per model."""
    from .analysis import rotated_step_times
    from .study import Probe, probe_steps
    from .tasks import train_config
    from .train import Loop

    rounds = s.P.eb_timing_rounds
    ok = search if search is not None and search["status"] == "ok" else None
    config = {"kind": "earlybert_step_times", **s.config(), "search": search["unit"] if search else "waiting",
              "rounds": rounds}

    def run(u):
        train_ex, _, collate = s.data(tokenizer, seed, eval_limit=SEARCH_EVAL)
        rewound = s.model(seed, slimming=True)
        rewound.load_state_dict(torch.load(study.cache_dir(search["unit"]) / "search" / "rewind.pt"))
        drawn = trajectory(study, search, R.draw_kw())
        per_epoch = steps_for(len(train_ex), s.P.finetune_batch, 1.0)  # the search's own hook, as search_unit builds it
        n = max(1, math.ceil(R.search_epochs * per_epoch))
        _, _, hook = search_plan(per_epoch, None, R.search_epochs, R.fixed_fraction, **{**R.slimming_kw(n), **R.draw_kw()})
        models = {"dense": (s.model(seed), ()), "search": (s.model(seed, slimming=True), (hook,)),
                  **{t: (draw_ticket(rewound, drawn, d["step"])[0], ()) for t, d in search["tickets"].items()}}
        del rewound
        cfg = train_config(s.P, steps=10 ** 6, seed=seed, lr=R.ticket_lr or s.config()["lr"], batch=s.P.finetune_batch)
        loops = {k: Loop(m, train_ex, collate, cfg, hooks=h) for k, (m, h) in models.items()}

        def one_step(loop):  # Loop.run's step without its logging, evaluation and checkpoints
            def step():
                loop.loss = loop.train_step()
                loop.step += 1
                for h in loop.hooks:
                    h.on_step_end(loop)
            return step
        for loop in loops.values():
            loop.model.train()
        steps = {k: one_step(loop) for k, loop in loops.items()}
        device = next(iter(loops.values())).device
        t0 = time.perf_counter()
        if probe_steps():  # plan mode: one round stands for all of them
            rotated_step_times(steps, device, rounds=1, warmup=0)
            raise Probe((time.perf_counter() - t0) / len(steps), len(steps) * (rounds + 1))
        res = rotated_step_times(steps, device, rounds=rounds)
        return {"metrics": {f"{k}_ratio": v for k, v in res["ratio"].items()},
                "times": {"total": time.perf_counter() - t0, "eval": 0.0}, "timing": res,
                "kept": {t: kept_counts(drawn.masks_at(d["step"])) for t, d in search["tickets"].items()},
                "loadavg": _loadavg()}
    like = None
    if ok is None or any(n is None for n in needs):  # waiting: the plan counts its steps in dense steps
        timed = (rounds + 1) * (2 + len(tickets) * nominal_cost(R))  # a warm-up round, then `rounds`
        like = s.like_dense(None, timed / s.dense_steps())
    return study.unit(task=s.task, method="step_times", seed=seed, config=config, run=run, needs=[ok, *needs],
                      notebook=s.notebook, like=like)


def nominal_cost(R: Search) -> float:
    """A ticket's cost per step relative to the dense model's, for plan estimates only: the share
    of a block's weight multiply-adds (units.matmul_cost, BERT's 4x FFN) it keeps. The measured
    ratio is the ticket's record."""
    return matmul_cost(1, 1, 4 * (1 - R.ffn_ratio), heads_kept=1 - R.head_ratio) / matmul_cost(1, 1, 4)


def value_tiers(tasks, profile: str) -> dict[str, int]:
    """How much `tasks`' EarlyBERT runs are worth the core-hours, 0 the most: 0 those whose dense
    baseline learned (glue_finetune's summary, by the floors rule), 1 those not judged yet, 2 those
    that did not learn (the report counts only learned tasks; they may still learn with more
    seeds), 3 those whose dense score is below the checkpoint's own zero-shot score (more seeds
    will not lift them past it)."""
    from .report import Missing, Store
    from .results import results_root

    try:
        judged = Store(profile, results_root()).summary("glue_finetune")["tasks"]
    except Missing:
        return {t: 1 for t in tasks}

    def tier(task) -> int:
        h = judged.get(task) or {}
        if h.get("learned") is None:
            return 1
        below = h.get("zero_shot") is not None and h.get("mean") is not None and h["mean"] < h["zero_shot"]
        return 0 if h["learned"] else 3 if below else 2
    return {t: tier(t) for t in tasks}


def by_value(tasks, profile: str) -> list[str]:
    """`tasks` by value_tiers (a stable sort: the profile's order within a tier). Only the order
    changes: every task still runs."""
    tiers = value_tiers(tasks, profile)
    return sorted(tasks, key=tiers.get)


def run_order(task_seeds: dict, profile: str) -> list[tuple[int, str]]:
    """(seed, task) in the order the EarlyBERT notebooks run them: every task's first seed (by
    value), so that a stopped run has seen each task once; then the further seeds tier by tier
    (value_tiers), seed-major within a tier: the seeds of the tasks the report counts come before
    those of the tasks it cannot (yet)."""
    tiers = value_tiers(task_seeds, profile)
    order = sorted(task_seeds, key=tiers.get)  # by_value's order, without reading the summary again

    def key(st):
        seed, task = st
        i = task_seeds[task].index(seed)
        return (i > 0, tiers[task] if i > 0 else 0, i, order.index(task))
    return sorted(((s, t) for t in task_seeds for s in task_seeds[t]), key=key)


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
    whole one when a ticket other than `draw` and random is wanted, else stopped at `draw`), the
    tickets, and their costs per step timed side by side (step_times_unit)."""
    stop = None if set(tickets) - {draw, "random"} else draw
    rows = [dense_unit(study, s, seed, tokenizer, needs=needs)] if with_dense else []
    search = search_unit(study, s, seed, tokenizer, R, stop=stop, needs=needs)
    rows += [ticket_unit(study, s, seed, tokenizer, search, t, R, like=draw, needs=needs) for t in tickets]
    return rows + [search, step_times_unit(study, s, seed, tokenizer, search, R, needs=needs, tickets=tickets)]


# the controls that tell a pipeline defect from a finding (control_units), and the ticket sizes of
# the trend (size_units): (head_ratio, ffn_ratio); the paper's is the middle one
CONTROLS = ("full@dense recipe", "full", "detector@dense recipe", "detector@lr 1e-4", "search@null")
SIZES = ((1 / 6, 0.2), (1 / 3, 0.4), (1 / 2, 0.6))


def dense_recipe(R: Recipe) -> Recipe:
    """R's tickets trained as the dense baseline is (its lr, epochs, 10% warm-up, weight decay
    0.01, eps 1e-6), to tell "the ticket cannot learn" from "the ticket was trained otherwise"."""
    return replace(R, ticket_lr=None, ticket_epochs=None, ticket_warmup=0.1, weight_decay=None, adam_eps=None,
                   ticket_label="dense recipe")


def control_units(study: Study, s: Setting, seed: int, tokenizer, R: Recipe, search: dict | None,
                  needs=()) -> list[dict | None]:
    """A task and seed's controls on `search` (its whole search under R):
    - "full@dense recipe" / "full": every head and neuron kept, through the same rewind -> prune ->
      train path, on dense's recipe (must match dense within seed noise) and on the ticket's;
    - "detector@dense recipe", "detector@lr 1e-4": the detector ticket on dense's recipe and at a
      higher rate (every ticket also records its score right after pruning, `pruned_<metric>`);
    - "search@null": the search with lambda = 0 (no L1 term): does the detector still fire?"""
    D = dense_recipe(R)
    return [ticket_unit(study, s, seed, tokenizer, search, "full", D, needs=needs),
            ticket_unit(study, s, seed, tokenizer, search, "full", R, needs=needs),
            ticket_unit(study, s, seed, tokenizer, search, "detector", D, needs=needs),
            ticket_unit(study, s, seed, tokenizer, search, "detector", replace(R, ticket_lr=1e-4, ticket_label="lr 1e-4"),
                        needs=needs),
            search_unit(study, s, seed, tokenizer, replace(R, lambda_head=0.0, lambda_ffn=0.0), needs=needs, label="null")]


def size_label(head_ratio: float, ffn_ratio: float) -> str:
    return f"heads {head_ratio:.2f}, ffn {ffn_ratio:.2f}"


def size_units(study: Study, s: Setting, seed: int, tokenizer, R: Recipe, head_ratio: float, ffn_ratio: float,
               draw: str = "detector", needs=()) -> list[dict | None]:
    """One point of the trend over ticket size: a search that prunes `head_ratio` of the heads and
    `ffn_ratio` of the neurons (its detector draws tickets of that size), its `draw` ticket and a
    random ticket of the same per-layer sizes, methods "<ticket>@heads h, ffn f"."""
    label = size_label(head_ratio, ffn_ratio)
    Q = replace(R, head_ratio=head_ratio, ffn_ratio=ffn_ratio, ticket_label=label)
    search = search_unit(study, s, seed, tokenizer, Q, stop=draw, needs=needs, label=label)
    return [search, *(ticket_unit(study, s, seed, tokenizer, search, t, Q, like=draw, needs=needs) for t in (draw, "random"))]


# ----------------------------------------------------------------------------- when tickets emerge
def distance_matrices(study: Study, search: dict, n: int = 60, **draw_kw) -> tuple[list[int], dict]:
    """(steps, {"heads": D, "ffn": D}): pairwise mask distances of the tickets drawn at about `n`
    evenly spread steps of the search (from its coefficient trajectory)."""
    from .earlybert import distance_matrix

    hook = trajectory(study, search, draw_kw)
    idx = np.unique(np.linspace(0, len(hook.steps) - 1, min(n, len(hook.steps))).round().astype(int))
    steps = [hook.steps[i] for i in idx]
    masks = [hook.masks_at(st) for st in steps]
    return steps, {"heads": distance_matrix([m[0] for m in masks]), "ffn": distance_matrix([m[1] for m in masks])}


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
                      notebook=PRE_NOTEBOOK, like=(PRE_NOTEBOOK, "dense", "MLM", (1 - R.search_fraction) * nominal_cost(R)))
