"""EarlyBERT (Chen et al., ACL 2021): structured early-bird lottery tickets for BERT.

    steps, slim = search_plan(steps_per_epoch, draw="detector")  # L1 term + early-bird detector
    out = run_pipeline(model, search_fn, train_fn, slim)  # search -> draw -> prune -> rewind -> train
    runs = compare(make_model, search_fn, train_fn, ...)  # dense vs random ticket vs EarlyBERT

- Time accounting: a pipeline's time is search + drawing/pruning + efficient training, each
  excluding evaluation, so "time saved" compares the whole pipeline with dense training of the
  same length (the paper's 35-45% counts the search too).

- Coefficients live in the model (`BertConfig(slimming=True)`): one per attention head, one per FFN
  neuron, initialised to 1; `enable_slimming` adds them to a model built without.
- Searching: task loss + lambda_head * sum|c_head| + lambda_ffn * sum|c_ffn| (sums over all layers),
  the `Slimming` hook adds that term, records the coefficients and runs the early-bird detectors.
- Drawing (`draw_masks`): heads per layer (1/3 with the smallest |c|), FFN neurons globally (40%).
  The official code ranks the raw value (`c > quantile`); `magnitude=False` gives that variant.
- Early-bird detection (`EarlyBird`, You et al. 2020): FIFO of the last `window` masks; the ticket
  has emerged when the newest mask is within normalised Hamming distance `epsilon` of every older
  one. Three detectors run side by side: heads, FFN neurons, and both concatenated ("joint");
  `stop_on="both"` (default) declares the ticket found when the heads AND the FFN detectors hold
  at the same draw, so the drawn ticket is stable in both kinds.
- Pruning (`prune`) is model surgery: pruned heads' Q/K/V rows and attention-output columns, pruned
  neurons' fc1 rows and fc2 columns are sliced out, and the config records per-layer sizes. The
  result is a smaller dense model, not a masked one.
- Rewind (`run_pipeline(rewind=True)`, as the official code): the ticket is trained from the weights
  before the search (pretrained encoder + the task head as initialised), with the L1 term off.
"""
from __future__ import annotations

import copy
import functools
import math
import os
import time
from collections import deque
from dataclasses import replace

import torch
import torch.nn as nn

from .model import Bert, flops_per_token
from .train import Hook, train_seconds

SCOPES = ("layer", "global")


# -- coefficients and the L1 term ------------------------------------------------------------
def enable_slimming(model: Bert) -> Bert:
    """Give every head and FFN neuron a coefficient (1.0) if the model has none. In place.
    Call before building the optimizer, or the coefficients are not trained."""
    for b in model.blocks:
        p = next(b.parameters())
        if b.attn.head_coef is None:
            b.attn.head_coef = nn.Parameter(torch.ones(b.attn.n_heads, device=p.device, dtype=p.dtype))
        if b.ffn.coef is None:
            b.ffn.coef = nn.Parameter(torch.ones(b.ffn.fc1.out_features, device=p.device, dtype=p.dtype))
    model.config.slimming = True
    return model


def l1_penalty(model: Bert, lambda_head: float = 1e-4, lambda_ffn: float = 1e-4) -> torch.Tensor:
    """lambda_head * sum|c_head| + lambda_ffn * sum|c_ffn|, summed (not averaged) over all layers."""
    heads, ffn = model.coefficients()
    return (lambda_head * sum(c.abs().sum() for c in heads)
            + lambda_ffn * sum(c.abs().sum() for c in ffn))


# -- drawing masks ---------------------------------------------------------------------------
def _check_ratio(ratio: float, scope: str, what: str) -> None:
    if not 0 <= ratio < 1:
        raise ValueError(f"{what}_ratio must be in [0, 1) (a fraction to prune), got {ratio}")
    if scope not in SCOPES:
        raise ValueError(f"{what}_scope must be one of {SCOPES}, got {scope!r}")


def _draw(coefs: list[torch.Tensor], ratio: float, scope: str, magnitude: bool) -> list[torch.Tensor]:
    """Keep-masks (True = keep) pruning `ratio` of the units with the smallest score.
    Ties go by index (lower index pruned first) so a draw is deterministic."""
    scores = [(c.detach().abs() if magnitude else c.detach()).float().cpu().flatten() for c in coefs]
    if scope == "layer":
        masks = []
        for s in scores:
            k = min(round(ratio * len(s)), len(s) - 1)  # every layer keeps at least one unit
            keep = torch.ones(len(s), dtype=torch.bool)
            keep[torch.sort(s, stable=True).indices[:k]] = False
            masks.append(keep)
        return masks
    # global: rank all units together; each layer's best unit is protected, so a layer never
    # empties and the pruned count stays exact (this equals walking the global order and skipping
    # a layer's last survivor)
    sizes = [len(s) for s in scores]
    flat = torch.cat(scores)
    k = min(round(ratio * len(flat)), len(flat) - len(scores))
    protected = torch.zeros(len(flat), dtype=torch.bool)
    start = 0
    for n, s in zip(sizes, scores):
        protected[start + torch.sort(s, stable=True, descending=True).indices[0]] = True
        start += n
    order = torch.sort(flat.masked_fill(protected, float("inf")), stable=True).indices
    keep = torch.ones(len(flat), dtype=torch.bool)
    keep[order[:k]] = False
    return list(keep.split(sizes))


def draw_masks(source, head_ratio: float = 1 / 3, ffn_ratio: float = 0.4, head_scope: str = "layer",
               ffn_scope: str = "global", magnitude: bool = True):
    """(head_masks, ffn_masks): one bool tensor per layer, True = keep.

    `source`: a model with slimming coefficients, or a (head_coefs, ffn_coefs) pair of per-layer
    lists. Defaults are the paper's: 1/3 of the heads in every layer, 40% of FFN neurons ranked
    across all layers, by |c|. The number pruned is `round(ratio * units)`, capped so that every
    layer keeps at least one head and one neuron.
    """
    _check_ratio(head_ratio, head_scope, "head")
    _check_ratio(ffn_ratio, ffn_scope, "ffn")
    heads, ffn = source.coefficients() if isinstance(source, Bert) else source
    return (_draw(heads, head_ratio, head_scope, magnitude), _draw(ffn, ffn_ratio, ffn_scope, magnitude))


def random_masks(head_mask, ffn_mask, seed: int = 0):
    """The random-ticket control: as many kept heads and neurons in each layer as the given masks,
    at positions drawn uniformly at random. (The official code instead thresholds random
    coefficients like real ones, so with the global FFN ranking its per-layer counts are random
    too; keeping the ticket's counts isolates where the units are from how many.)"""
    g = torch.Generator().manual_seed(seed)

    def like(masks):
        out = []
        for m in masks:
            keep = torch.zeros(len(m), dtype=torch.bool)
            keep[torch.randperm(len(m), generator=g)[:int(m.sum())]] = True
            out.append(keep)
        return out
    return like(head_mask), like(ffn_mask)


# -- distances and the early-bird detector --------------------------------------------------
def flat_mask(mask) -> torch.Tensor:
    """One bool vector from a tensor, a per-layer list, or a (heads, ffn) pair of lists."""
    if isinstance(mask, torch.Tensor):
        return mask.flatten().bool().cpu()
    return torch.cat([flat_mask(m) for m in mask]) if len(mask) else torch.zeros(0, dtype=torch.bool)


def mask_distance(a, b) -> float:
    """Normalised Hamming distance: the fraction of units whose keep/prune bit differs."""
    a, b = flat_mask(a), flat_mask(b)
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"masks must be non-empty and the same size, got {a.numel()} and {b.numel()} units")
    return (a != b).float().mean().item()


def distance_matrix(masks) -> torch.Tensor:
    """Pairwise normalised Hamming distances of a list of masks -> [n, n] float tensor."""
    m = torch.stack([flat_mask(x) for x in masks]).float()
    return (m @ (1 - m).T + (1 - m) @ m.T) / m.shape[1]


class EarlyBird:
    """The early-bird criterion: keep the last `window` masks; the ticket has emerged when the
    newest is within `epsilon` (strictly, as in the Early-Bird code) of every older one.

    `update(mask, step)` returns whether the criterion holds now; `fired_step` is the first step
    at which it held (None until then)."""

    def __init__(self, window: int = 5, epsilon: float = 0.1):
        if window < 2:
            raise ValueError("window must hold at least two masks")
        self.window, self.epsilon = window, epsilon
        self.masks: deque = deque(maxlen=window)
        self.fired_step: int | None = None
        self.last_distances: list[float] = []

    def update(self, mask, step: int) -> bool:
        new = flat_mask(mask)
        self.masks.append(new)
        self.last_distances = [mask_distance(new, m) for m in list(self.masks)[:-1]]
        holds = len(self.masks) == self.window and max(self.last_distances) < self.epsilon
        if holds and self.fired_step is None:
            self.fired_step = step
        return holds

    def state_dict(self) -> dict:
        return {"masks": [m.clone() for m in self.masks], "fired_step": self.fired_step,
                "last_distances": list(self.last_distances)}

    def load_state_dict(self, state: dict) -> None:
        self.masks = deque(state["masks"], maxlen=self.window)
        self.fired_step, self.last_distances = state["fired_step"], list(state["last_distances"])


# -- the searching-stage hook ---------------------------------------------------------------
STOP_ON = ("both", "heads", "ffn", "joint")


class Slimming(Hook):
    """EarlyBERT's searching stage as a training-loop hook.

    - adds the L1 term on the coefficients to the loss;
    - every `record_every` optimizer steps stores a CPU copy of all coefficients (`steps`,
      `head_record`, `ffn_record`: one flat tensor per record; `coefficients_at(i)` splits it);
    - every `draw_every` steps draws a ticket with `draw_kw` (draw_masks arguments) and feeds the
      heads / FFN / joint `EarlyBird` detectors; the ticket is found at the first draw where
      `stop_on` holds ("both" = the heads and the FFN detectors at the same draw). Then
      `found_step` and `ticket` are set and, with `stop_when_found`, the run stops;
    - `stop_at`: end the run after that many steps instead (the official fixed draw point), so
      the learning-rate schedule is still the one of the whole nominal search.
    """

    def __init__(self, lambda_head: float = 1e-4, lambda_ffn: float = 1e-4, record_every: int = 1,
                 draw_every: int = 1, window: int = 5, epsilon: float = 0.1,
                 stop_when_found: bool = False, stop_on: str = "both", stop_at: int | None = None,
                 **draw_kw):
        if stop_on not in STOP_ON:
            raise ValueError(f"stop_on must be one of {STOP_ON}, got {stop_on!r}")
        if record_every < 1 or draw_every < 1:
            raise ValueError("record_every and draw_every must be positive")
        draw_masks(([torch.ones(3)], [torch.ones(3)]), **draw_kw)  # fail now on bad ratios/scopes
        self.lambda_head, self.lambda_ffn = lambda_head, lambda_ffn
        self.record_every, self.draw_every = record_every, draw_every
        self.stop_when_found, self.stop_on, self.draw_kw = stop_when_found, stop_on, draw_kw
        self.stop_at = stop_at
        self.detectors = {k: EarlyBird(window, epsilon) for k in ("heads", "ffn", "joint")}
        self.steps: list[int] = []
        self.head_record: list[torch.Tensor] = []
        self.ffn_record: list[torch.Tensor] = []
        self.sizes: tuple[list[int], list[int]] | None = None
        self.draws: list[dict] = []  # one row per draw: step, which detectors hold, max distances
        self.found_step: int | None = None
        self.ticket = None  # (head_masks, ffn_masks) drawn at found_step

    def extra_loss(self, loop):
        return l1_penalty(loop.model, self.lambda_head, self.lambda_ffn)

    def on_step_end(self, loop):
        step = loop.step  # optimizer steps done
        if self.stop_at is not None and step >= self.stop_at:
            loop.stop = f"fixed draw step {self.stop_at}"
        record, draw = step % self.record_every == 0, step % self.draw_every == 0
        if not (record or draw):
            return
        heads, ffn = loop.model.coefficients()
        if record:
            if self.sizes is None:
                self.sizes = ([len(c) for c in heads], [len(c) for c in ffn])
            self.steps.append(step)
            self.head_record.append(torch.cat([c.detach().float().cpu() for c in heads]))
            self.ffn_record.append(torch.cat([c.detach().float().cpu() for c in ffn]))
        if draw:
            masks = draw_masks((heads, ffn), **self.draw_kw)
            holds = {"heads": self.detectors["heads"].update(masks[0], step),
                     "ffn": self.detectors["ffn"].update(masks[1], step),
                     "joint": self.detectors["joint"].update(masks, step)}
            self.draws.append({"step": step, **holds, **{
                f"max_dist_{k}": max(d.last_distances) if d.last_distances else None
                for k, d in self.detectors.items()}})
            found = (holds["heads"] and holds["ffn"]) if self.stop_on == "both" else holds[self.stop_on]
            if found and self.found_step is None:
                self.found_step, self.ticket = step, masks
            if self.found_step is not None and self.stop_when_found:
                loop.stop = f"early-bird ticket found at step {self.found_step}"

    # -- reading the record ------------------------------------------------------------------
    def coefficients_at(self, i: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The i-th recorded (head_coefs, ffn_coefs), split back into per-layer lists."""
        return list(self.head_record[i].split(self.sizes[0])), list(self.ffn_record[i].split(self.sizes[1]))

    def recorded_masks(self, **draw_kw) -> list[tuple]:
        """A ticket drawn from every recorded checkpoint (default: this hook's draw settings)."""
        kw = {**self.draw_kw, **draw_kw}
        return [draw_masks(self.coefficients_at(i), **kw) for i in range(len(self.steps))]

    def fired_steps(self) -> dict:
        return {**{k: d.fired_step for k, d in self.detectors.items()}, "found": self.found_step}

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "head_record": list(self.head_record),
                "ffn_record": list(self.ffn_record), "sizes": self.sizes, "draws": list(self.draws),
                "found_step": self.found_step, "ticket": self.ticket,
                "detectors": {k: d.state_dict() for k, d in self.detectors.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.sizes = list(state["steps"]), state["sizes"]
        self.head_record, self.ffn_record = list(state["head_record"]), list(state["ffn_record"])
        self.draws, self.found_step, self.ticket = list(state["draws"]), state["found_step"], state["ticket"]
        for k, d in self.detectors.items():
            d.load_state_dict(state["detectors"][k])


# -- physical pruning ------------------------------------------------------------------------
def _linear(weight: torch.Tensor, bias: torch.Tensor | None, like: nn.Linear) -> nn.Linear:
    # built on the meta device (no wasted init), then given the sliced tensors
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    lin.weight = nn.Parameter(weight.detach().clone(), requires_grad=like.weight.requires_grad)
    if bias is not None:
        lin.bias = nn.Parameter(bias.detach().clone(), requires_grad=like.bias.requires_grad)
    return lin


def _param(p: nn.Parameter | None, keep: torch.Tensor):
    return None if p is None else nn.Parameter(p.detach()[keep].clone(), requires_grad=p.requires_grad)


@torch.no_grad()
def prune(model: Bert, head_mask, ffn_mask) -> Bert:
    """A NEW, smaller model without the pruned heads and FFN neurons (the original is untouched).

    head_mask / ffn_mask: per-layer bool tensors over the model's current heads / neurons,
    True = keep. Pruned heads lose their Q, K and V rows (qkv rows are [q heads | k heads |
    v heads], head_dim rows each) and their attention-output columns; pruned neurons lose their
    fc1 row and bias and their fc2 column. Surviving coefficients are kept.
    """
    L = len(model.blocks)
    if len(head_mask) != L or len(ffn_mask) != L:
        raise ValueError(f"need one head mask and one FFN mask per layer ({L})")
    new = copy.deepcopy(model)
    d = model.config.head_dim
    for i, (b, hm, fm) in enumerate(zip(new.blocks, head_mask, ffn_mask)):
        a, f = b.attn, b.ffn
        hm = torch.as_tensor(hm, dtype=torch.bool, device="cpu").flatten()
        fm = torch.as_tensor(fm, dtype=torch.bool, device="cpu").flatten()
        if len(hm) != a.n_heads or len(fm) != f.fc1.out_features:
            raise ValueError(f"layer {i}: masks of {len(hm)} heads / {len(fm)} neurons for a layer "
                             f"with {a.n_heads} / {f.fc1.out_features}")
        if not hm.any() or not fm.any():
            raise ValueError(f"layer {i}: every layer must keep at least one head and one neuron")
        H, n, dev = a.qkv.in_features, a.n_heads, a.qkv.weight.device
        hk, fk = hm.to(dev), fm.to(dev)
        qkv_w = a.qkv.weight.view(3, n, d, H)[:, hk].reshape(-1, H)
        qkv_b = a.qkv.bias.view(3, n, d)[:, hk].reshape(-1)
        out_w = a.out.weight.view(H, n, d)[:, hk].reshape(H, -1)
        a.qkv, a.out = _linear(qkv_w, qkv_b, a.qkv), _linear(out_w, a.out.bias, a.out)
        a.n_heads = int(hm.sum())
        if a.head_coef is not None:
            a.head_coef = _param(a.head_coef, hk)
        f.fc1 = _linear(f.fc1.weight[fk], f.fc1.bias[fk], f.fc1)
        f.fc2 = _linear(f.fc2.weight[:, fk], f.fc2.bias, f.fc2)
        if f.coef is not None:
            f.coef = _param(f.coef, fk)
    new.config = replace(model.config, heads_per_layer=[b.attn.n_heads for b in new.blocks],
                         ffn_per_layer=[b.ffn.fc1.out_features for b in new.blocks])
    return new


def masked_copy(model: Bert, head_mask, ffn_mask) -> Bert:
    """The unpruned model with the pruned units' coefficients set to 0: the test oracle prune()
    must match. Never used for training (it does all the dense work)."""
    m = enable_slimming(copy.deepcopy(model))
    with torch.no_grad():
        for b, hm, fm in zip(m.blocks, head_mask, ffn_mask):
            b.attn.head_coef[~torch.as_tensor(hm, device=b.attn.head_coef.device)] = 0
            b.ffn.coef[~torch.as_tensor(fm, device=b.ffn.coef.device)] = 0
    return m


def flops_per_step(config, seq_len: int, batch_size: int, head_tokens: float = 1.0) -> float:
    """Training FLOPs of one optimizer step of `batch_size` sequences: forward (analytic, pruned
    parts count zero) x 3 for forward + backward."""
    return 3 * flops_per_token(config, seq_len, head_tokens=head_tokens)["total"] * seq_len * batch_size


# -- the pipeline ----------------------------------------------------------------------------
def snapshot(model: nn.Module) -> dict:
    """A CPU copy of the weights (the rewind point)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def run_pipeline(model: Bert, search_fn, train_fn, slimming: Slimming | None = None,
                 rewind: bool = True, keep_searched: bool = False) -> dict:
    """EarlyBERT end to end: search -> draw -> prune -> (rewind) -> efficient training.

    model: the model to search on (slimming coefficients are added if missing), as it is before
      the search; with `rewind` its weights now are what the ticket is trained from.
    search_fn(model, hooks) -> a TrainResult or a dict with "result": the searching stage; it must
      pass `hooks` to the training loop (it sets its own length; with `stop_when_found` the
      search ends at the early-bird step).
    train_fn(pruned_model) -> a dict with "metrics" and "result" (e.g. tasks.finetune_glue):
      efficient training (L1 off: the hook is not passed).
    The ticket is the one drawn when the detector fired (with `stop_when_found`), else the one
    drawn from the coefficients where the search ended (fixed point, or detector never fired).
    keep_searched: also return a CPU copy of the searched weights (before rewind), e.g. to train
    a random ticket from the same point.

    Returns {"metrics", "masks", "model" (pruned, trained), "search" (the Slimming hook),
    "draw_step" (= "search_steps"), "found" (the detector fired), "search_result",
    "searched_state", "train_out", "times": {search, draw, train, total} in seconds (search and
    train exclude evaluation)}.
    """
    slimming = slimming or Slimming()
    enable_slimming(model)
    start = snapshot(model) if rewind else None
    search_out = search_fn(model, [slimming])
    search_result = search_out["result"] if isinstance(search_out, dict) else search_out
    searched = snapshot(model) if keep_searched else None
    t0 = time.perf_counter()
    use_detector = slimming.stop_when_found and slimming.ticket is not None
    masks = slimming.ticket if use_detector else draw_masks(model, **slimming.draw_kw)
    if rewind:
        model.load_state_dict(start)
    pruned = prune(model, *masks)
    t_draw = time.perf_counter() - t0
    train_out = train_fn(pruned)
    times = {"search": train_seconds(search_result), "draw": t_draw, "train": train_seconds(train_out)}
    times["total"] = sum(times.values())
    return {"metrics": train_out["metrics"], "masks": masks, "model": pruned, "search": slimming,
            "found": slimming.found_step is not None, "draw_step": search_result.steps,
            "search_steps": search_result.steps, "search_result": search_result,
            "searched_state": searched, "train_out": train_out, "times": times}


def search_plan(steps_per_epoch: int, draw: str = "detector", search_epochs: float = 1.0,
                fixed_fraction: float = 0.2, draw_every: int | None = None, **slimming_kw):
    """(search max_steps, Slimming hook) for either way of drawing the ticket.

    draw="detector": search at most `search_epochs` epochs, stop when the early-bird criterion
      fires (the ticket is the one drawn then; if it never fires, the one at the end).
    draw="fixed": the official code's point, round(fixed_fraction * steps per epoch) steps
      (20% of the first epoch); the detectors still run, for the record.
    In both the learning-rate schedule is that of the whole `search_epochs` search.
    `draw_every` None: a draw every 2% of the search (at least every step).
    """
    if draw not in ("detector", "fixed"):
        raise ValueError(f"draw must be 'detector' or 'fixed', got {draw!r}")
    steps = max(1, math.ceil(search_epochs * steps_per_epoch))
    fixed = min(steps, max(1, round(fixed_fraction * steps_per_epoch)))
    draw_every = draw_every or max(1, round(0.02 * steps))
    hook = Slimming(draw_every=draw_every, stop_when_found=draw == "detector",
                    stop_at=fixed if draw == "fixed" else None, **slimming_kw)
    return steps, hook


def kept_counts(masks) -> dict:
    """Heads and neurons kept per layer (for tables)."""
    return {"heads_per_layer": [int(m.sum()) for m in masks[0]],
            "ffn_per_layer": [int(m.sum()) for m in masks[1]]}


def _row(model, out, times, search_steps=0, dense_step_flops=0.0, *, seq_len, batch_size, head_tokens=1.0):
    # one method's numbers; FLOPs: search steps at the dense cost, then training at the model's
    r = out["result"]
    per_step = flops_per_step(model.config, seq_len, batch_size, head_tokens)
    return {"metrics": dict(out["metrics"]), "times": times, "params": model.num_params(),
            "heads_per_layer": list(model.config.heads_per_layer),
            "ffn_per_layer": list(model.config.ffn_per_layer),
            "steps": {"search": search_steps, "train": r.steps}, "status": r.status,
            "flops": {"per_step": per_step, "total": search_steps * dense_step_flops + r.steps * per_step},
            "history": r.history, "evals": r.evals,
            "loadavg": os.getloadavg()[0]}  # other work on the machine skews timings: keep a trace


_WARM: set = set()


def _warm_up(model: Bert, step_fn) -> None:
    """One untimed training step per model shape and process: the first run pays one-off costs
    (memory touched for the first time, lazy imports) that would otherwise bias the timing of
    whichever method runs first."""
    c = model.config
    key = (c.layers, c.hidden, c.intermediate, c.vocab_size, c.head)
    if key not in _WARM:
        step_fn(model)
        _WARM.add(key)


def compare(make_model, search_fn, train_fn, *, steps_per_epoch: int, seed: int, seq_len: int,
            batch_size: int, rewind: bool = True, plan: dict | None = None, warmup: bool = True) -> dict:
    """Dense training vs the EarlyBERT pipeline vs a random ticket, from the same start.

    make_model(slimming: bool) -> a fresh model (called after torch.manual_seed(seed), so the
      three start from the same weights and task head).
    search_fn(model, hooks, steps) -> searching stage; train_fn(model) -> a dict with "metrics"
      and "result" (dense training and the efficient training of both tickets: same steps).
    plan: search_plan arguments (draw, search_epochs, fixed_fraction, draw_every, Slimming's).
    The random ticket keeps as many heads / neurons per layer as the EarlyBERT ticket, drawn at
    random, and is trained from the same start with no search (its time has no search part).

    Returns {method: {"metrics", "times" {search, draw, train, total}, "params",
    "heads_per_layer", "ffn_per_layer", "steps" {search, train}, "flops" {per_step, total},
    "history", ...}} for "dense", "earlybert", "random"; "earlybert" also has "found",
    "draw_step", "fired" (each detector's first firing step) and "draws" (the detector log).
    """
    row = functools.partial(_row, seq_len=seq_len, batch_size=batch_size)
    if warmup:
        _warm_up(make_model(False), lambda m: search_fn(m, [], 1))
    rows = {}
    torch.manual_seed(seed)
    dense = make_model(False)
    dense_flops = flops_per_step(dense.config, seq_len, batch_size)
    out = train_fn(dense)
    t = train_seconds(out)
    rows["dense"] = row(dense, out, {"search": 0.0, "draw": 0.0, "train": t, "total": t})
    del dense, out

    torch.manual_seed(seed)
    steps, hook = search_plan(steps_per_epoch, **(plan or {}))
    pipe = run_pipeline(make_model(True), lambda m, hooks: search_fn(m, hooks, steps), train_fn,
                        hook, rewind=rewind)
    rows["earlybert"] = {**row(pipe["model"], pipe["train_out"], pipe["times"], pipe["search_steps"], dense_flops),
                         "found": pipe["found"], "draw_step": pipe["draw_step"],
                         "fired": hook.fired_steps(), "draws": hook.draws, "max_search_steps": steps}
    masks = pipe["masks"]
    del pipe

    torch.manual_seed(seed)
    model = enable_slimming(make_model(True))
    t0 = time.perf_counter()
    pruned = prune(model, *random_masks(*masks, seed=seed))
    t_draw = time.perf_counter() - t0
    del model
    out = train_fn(pruned)
    t = train_seconds(out)
    rows["random"] = row(pruned, out, {"search": 0.0, "draw": t_draw, "train": t, "total": t_draw + t})
    return rows


def record_comparison(runs: dict, *, notebook: str, profile: str, task: str, seed: int, config: dict) -> list[dict]:
    """One results.record per method of a `compare` result; returns flat rows (one per method)
    with every metric, the time breakdown, FLOPs, parameters and the ticket's draw step."""
    from . import results
    rows = []
    for method, r in runs.items():
        extra = {k: r[k] for k in ("found", "draw_step", "fired", "max_search_steps") if k in r}
        results.record(notebook=notebook, profile=profile, task=task, method=method, seed=seed,
                       metrics=r["metrics"], times=r["times"],
                       status="diverged" if r["status"] == "diverged" else "ok", config=config,
                       params=r["params"], flops=r["flops"], steps=r["steps"], loadavg=r["loadavg"],
                       heads_per_layer=r["heads_per_layer"], ffn_per_layer=r["ffn_per_layer"], **extra)
        rows.append({"task": task, "seed": seed, "method": method, **r["metrics"],
                     **{f"time_{k}": v for k, v in r["times"].items()},
                     "flops_per_step": r["flops"]["per_step"], "flops_total": r["flops"]["total"],
                     "params": r["params"], "search_steps": r["steps"]["search"], "train_steps": r["steps"]["train"],
                     "found": r.get("found"), "draw_step": r.get("draw_step"), "loadavg": r["loadavg"]})
    return rows


def add_savings(df, keys=("task", "seed")):
    """Columns time_saving_pct and flops_saving_pct: % less than the dense run with the same keys."""
    dense = df[df.method == "dense"].set_index(list(keys))
    ref = dense.loc[[tuple(r) if len(keys) > 1 else r[0] for r in df[list(keys)].itertuples(index=False)]]
    df = df.copy()
    df["time_saving_pct"] = 100 * (1 - df["time_total"].to_numpy() / ref["time_total"].to_numpy())
    df["flops_saving_pct"] = 100 * (1 - df["flops_total"].to_numpy() / ref["flops_total"].to_numpy())
    return df


def compare_pretraining(make_model, pretrain_fn, *, total_steps: int, seed: int, seq_len: int, batch_size: int,
                        search_fraction: float = 0.2, draw: str = "detector", draw_every: int | None = None,
                        rewind: bool = False, head_tokens: float = 0.15, warmup: bool = True,
                        **slimming_kw) -> dict:
    """EarlyBERT in pre-training (never released by the authors; this follows the paper's text):
    dense pre-training vs search + ticket vs a random ticket, all `total_steps` long.

    make_model(slimming: bool) -> a fresh model (after torch.manual_seed(seed)).
    pretrain_fn(model, steps, hooks) -> a dict with "metrics" and "result": one pre-training run
      of `steps` steps with its own learning-rate schedule.
    - dense: pretrain_fn(model, total_steps).
    - earlybert: the search is the start of a `total_steps` run (so its schedule is the whole
      pre-training's), ended when the detector fires (draw="detector", at most
      search_fraction x total_steps) or at that point (draw="fixed"); the ticket is pruned and
      pre-trained for the remaining steps, from the searched weights (rewind=False, default: the
      search's steps are pre-training too) or from the initial ones (rewind=True).
    - random: as many heads / neurons per layer as the ticket, at random positions, from the
      same weights as the ticket and for as many steps; its time includes the shared search.
    Returns {method: row} like `compare`, each row also holding the trained "model"; "earlybert"
    also has the search's "search_history" and "search_evals".
    """
    search_steps = max(1, round(search_fraction * total_steps))
    hook = Slimming(draw_every=draw_every or max(1, round(0.02 * search_steps)),
                    stop_when_found=draw == "detector", stop_at=search_steps, **slimming_kw)
    row = functools.partial(_row, seq_len=seq_len, batch_size=batch_size, head_tokens=head_tokens)
    rows, left = {}, {}
    if warmup:
        _warm_up(make_model(False), lambda m: pretrain_fn(m, 1, []))

    torch.manual_seed(seed)
    model = make_model(False)
    dense_flops = flops_per_step(model.config, seq_len, batch_size, head_tokens)
    out = pretrain_fn(model, total_steps, [])
    t = train_seconds(out)
    rows["dense"] = {**row(model, out, {"search": 0.0, "draw": 0.0, "train": t, "total": t}), "model": model}

    def search_fn(m, hooks):
        out = pretrain_fn(m, total_steps, hooks)
        left["steps"] = total_steps - out["result"].steps  # what the ticket trains for
        return out

    torch.manual_seed(seed)
    model = make_model(True)
    start = snapshot(enable_slimming(model)) if rewind else None
    pipe = run_pipeline(model, search_fn, lambda m: pretrain_fn(m, left["steps"], []), hook, rewind=rewind,
                        keep_searched=not rewind)
    rows["earlybert"] = {**row(pipe["model"], pipe["train_out"], pipe["times"], pipe["search_steps"], dense_flops),
                         "model": pipe["model"], "found": pipe["found"], "draw_step": pipe["draw_step"],
                         "fired": hook.fired_steps(), "draws": hook.draws, "max_search_steps": search_steps,
                         "search_history": pipe["search_result"].history, "search_evals": pipe["search_result"].evals}

    model.load_state_dict(start if rewind else pipe["searched_state"])
    t0 = time.perf_counter()
    pruned = prune(model, *random_masks(*pipe["masks"], seed=seed))
    t_draw = time.perf_counter() - t0
    del model
    out = pretrain_fn(pruned, left["steps"], [])
    times = {"search": pipe["times"]["search"], "draw": t_draw, "train": train_seconds(out)}
    times["total"] = sum(times.values())
    rows["random"] = {**row(pruned, out, times, pipe["search_steps"], dense_flops), "model": pruned}
    return rows
