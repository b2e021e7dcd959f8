"""EarlyBERT's fine-tuning experiments as study units (`repro.study`), on the recipes and settings
of `repro.earlybert_settings`; pre-training's units are `repro.earlybert_pretrain`, the controls
and the trend over ticket size `repro.earlybert_controls`, the tables and figures
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
- Pre-training (never released by the authors; the paper's text): `repro.earlybert_pretrain`.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from .earlybert import Slimming, kept_counts, mask_distance, prune, random_masks, search_plan, snapshot
from .earlybert_settings import DENSE_NOTEBOOK, GLUE_RECIPE, SEARCH_EVAL, TICKETS, Recipe, Setting, nominal_cost
from .model import Bert
from .study import Study
from .tasks import steps_for
from .train import train_seconds
from .units import glue_unit


# ----------------------------------------------------------------------------- fine-tuning units

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
    from .study import Probe
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
        if u.probe_steps:  # plan mode: one round stands for all of them
            rotated_step_times(steps, device, rounds=1, warmup=0)
            raise Probe((time.perf_counter() - t0) / len(steps), len(steps) * (rounds + 1))
        res = rotated_step_times(steps, device, rounds=rounds, clip=u.control.clip)
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


def value_tiers(tasks, profile: str, root=None) -> dict[str, int]:
    """How much `tasks`' EarlyBERT runs are worth the core-hours, 0 the most: 0 those whose dense
    baseline learned (glue_finetune's summary, by the floors rule, at the profile's recipe or at the
    one its recipe check adopted), 1 those not judged yet, 2 those that did not learn (the report
    counts only learned tasks; they may still learn with more seeds), 3 those whose dense score is
    below the checkpoint's own zero-shot score (more seeds will not lift them past it). `root`: the
    results root (the notebook's Study.root; None: <repo>/results)."""
    from .store import Missing, Store
    from .results import results_root

    try:
        summary = Store(profile, results_root(root)).summary("glue_finetune")
    except Missing:
        return {t: 1 for t in tasks}
    judged = summary["tasks"]
    adopted = {a["task"] for a in summary.get("adoptions") or [] if a.get("learned")}  # counted from earlybert_glue v5

    def tier(task) -> int:
        h = judged.get(task) or {}
        if task in adopted:
            return 0
        if h.get("learned") is None:
            return 1
        below = h.get("zero_shot") is not None and h.get("mean") is not None and h["mean"] < h["zero_shot"]
        return 0 if h["learned"] else 3 if below else 2
    return {t: tier(t) for t in tasks}


def by_value(tasks, profile: str, root=None) -> list[str]:
    """`tasks` by value_tiers (a stable sort: the profile's order within a tier). Only the order
    changes: every task still runs."""
    tiers = value_tiers(tasks, profile, root)
    return sorted(tasks, key=tiers.get)


def run_order(task_seeds: dict, profile: str, root=None) -> list[tuple[int, str]]:
    """(seed, task) in the order the EarlyBERT notebooks run them: every task's first seed (by
    value), so that a stopped run has seen each task once; then the further seeds tier by tier
    (value_tiers), seed-major within a tier: the seeds of the tasks the report counts come before
    those of the tasks it cannot (yet). `root`: as value_tiers'."""
    tiers = value_tiers(task_seeds, profile, root)
    order = sorted(task_seeds, key=tiers.get)  # by_value's order, without reading the summary again

    def key(st):
        seed, task = st
        i = task_seeds[task].index(seed)
        return (i > 0, tiers[task] if i > 0 else 0, i, order.index(task))
    return sorted(((s, t) for t in task_seeds for s in task_seeds[t]), key=key)


def in_task_order(records: list, tasks) -> list:
    """`records` (None where a unit did not run) by `tasks`' order, then seed: the order the tables show
    them in. Runs go in run_order, which reads glue_finetune's summary; the tables must not: an
    executed notebook re-executed from the same records has to show the same rows whatever
    glue_finetune has recorded since."""
    pos = {t: i for i, t in enumerate(tasks)}
    done = [r for r in records if r is not None]
    return sorted(done, key=lambda r: (pos.get(r["task"], len(pos)), r["seed"]))  # stable: a unit's own rows keep their order


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
