"""EarlyBERT in pre-training (never released by the authors; the paper's text) as study units:
dense MLM pre-training from scratch, the search as the start of a pre-training run (the ticket
drawn when the early-bird criterion fires, or at the fixed fraction of the run), and the ticket or
a random one of its per-layer sizes pre-trained for the rest of the run, charged the search up
to its draw. `earlybert_pretraining` and `ticket_mask_distance` call these.
"""
from __future__ import annotations

import functools
import math
import time

import torch

from .earlybert import Slimming
from .earlybert_runs import _loadavg, _status, _units, draw_ticket, ticket_draws, trajectory
from .earlybert_settings import PRE_NOTEBOOK, PretrainRecipe, nominal_cost
from .flops import flops_per_step
from .model import Bert
from .profiles import Profile
from .sources import load_tokenizer
from .study import Study
from .tasks import corpus_data, pretrain_mlm, scratch_model
from .train import Hook, train_seconds


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
