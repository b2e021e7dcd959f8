"""EarlyBERT (Chen et al., ACL 2021): structured early-bird lottery tickets for BERT.

- Coefficients live in the model (`BertConfig(slimming=True)`): one per attention head, one per FFN
  neuron, initialised to 1; `enable_slimming` adds them to a model built without.
- Searching: task loss + lambda_head * sum|c_head| + lambda_ffn * sum|c_ffn| (sums over all layers);
  the `Slimming` hook adds that term, records the coefficients and runs the early-bird detectors.
- Drawing (`draw_masks`): heads per layer (1/3 with the smallest |c|), FFN neurons globally (40%).
  The official code ranks the raw value (`c > quantile`); `magnitude=False` gives that variant.
- Early-bird detection (`EarlyBird`, You et al. 2020): FIFO of the last `window` masks; the ticket
  has emerged when the newest mask is within normalised Hamming distance `epsilon` of every older
  one. Three detectors run side by side: heads, FFN neurons, and both concatenated ("joint");
  `stop_on="both"` (default) declares the ticket found when the heads AND the FFN detectors hold
  at the same draw, so the drawn ticket is stable in both kinds.
- When to draw (`search_plan`): when the detector fires, or at the official code's fixed point
  (20% of the first epoch, `fixed_step`), within a search of at most one epoch.
- Pruning (`prune`) is model surgery: pruned heads' Q/K/V rows and attention-output columns, pruned
  neurons' fc1 rows and fc2 columns are sliced out, and the config records per-layer sizes. The
  result is a smaller dense model, not a masked one.
- Rewind (as the official code): the ticket is trained from the weights before the search
  (`snapshot`: pretrained encoder + the task head as initialised), with the L1 term off.

The experiments built on these (recipes, search, tickets, dense and random baselines as study units,
time accounting, tables) are `repro.earlybert_settings`, `_runs`, `_pretrain`, `_controls`, `_tables`.
"""
from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import replace

import torch
import torch.nn as nn

from .model import Bert
from .train import Hook

SCOPES = ("layer", "global")
PAPER_TIME_SAVING = (35.0, 45.0)  # % less training time than BERT, search included (the abstract)


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

    def masks_at(self, step: int, **draw_kw) -> tuple:
        """The ticket drawn from the coefficients recorded at optimizer step `step` (default: this
        hook's draw settings); with record_every=1 any step of the search can be drawn again."""
        if step not in self.steps:
            raise ValueError(f"no coefficients recorded at step {step} (recorded every {self.record_every} steps, "
                             f"up to {self.steps[-1] if self.steps else 0}): record with record_every=1")
        return draw_masks(self.coefficients_at(self.steps.index(step)), **{**self.draw_kw, **draw_kw})

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


# -- the searching stage's length and the tickets it yields ---------------------------------
def snapshot(model: nn.Module) -> dict:
    """A CPU copy of the weights (the rewind point: the ticket is trained from the weights the
    search started from)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def fixed_step(steps_per_epoch: int, fraction: float = 0.2) -> int:
    """The official code's drawing point: `fraction` (20%) of the first epoch, at least step 1."""
    return max(1, round(fraction * steps_per_epoch))


DRAWS = ("detector", "fixed", None)


def search_plan(steps_per_epoch: int, draw: str | None = "detector", search_epochs: float = 1.0,
                fixed_fraction: float = 0.2, draw_every: int | None = None, **slimming_kw):
    """(search max_steps, the fixed drawing step, Slimming hook) for a way of drawing the ticket.

    draw="detector": search at most `search_epochs` epochs, stop when the early-bird criterion
      fires (the ticket is the one drawn then; if it never fires, the one at the end).
    draw="fixed": the official code's point, `fixed_step` (20% of the first epoch); the
      detectors still run, for the record.
    draw=None: run the whole search, stopping for neither: every ticket (detector, fixed point,
      end) can then be drawn from the recorded coefficients (`Slimming.masks_at`).
    In all three the learning-rate schedule is that of the whole `search_epochs` search, so a
    search stopped early is the prefix of a whole one.
    `draw_every` None: a draw every 2% of the search (at least every step).
    """
    if draw not in DRAWS:
        raise ValueError(f"draw must be 'detector', 'fixed' or None (the whole search), got {draw!r}")
    steps = max(1, math.ceil(search_epochs * steps_per_epoch))
    fixed = min(steps, fixed_step(steps_per_epoch, fixed_fraction))
    draw_every = draw_every or max(1, round(0.02 * steps))
    hook = Slimming(draw_every=draw_every, stop_when_found=draw == "detector",
                    stop_at=fixed if draw == "fixed" else None, **slimming_kw)
    return steps, fixed, hook


def kept_counts(masks) -> dict:
    """Heads and neurons kept per layer (for tables)."""
    return {"heads_per_layer": [int(m.sum()) for m in masks[0]],
            "ffn_per_layer": [int(m.sum()) for m in masks[1]]}
