"""One training loop for MLM pre-training and fine-tuning.

    result = train(model, examples, collate, TrainConfig(max_steps=...), eval_fn=..., hooks=[...])

- Data order: one permutation per epoch from a generator seeded by (seed, epoch), or with
  `group_by_length` batches of similar lengths (`length_grouped_order`, seeded by (seed, stream,
  epoch)); the collator's randomness (MLM masking) comes from a generator seeded by (seed, step,
  micro-batch). So data and masks depend only on the step, which is what makes resume exact.
- AdamW (no decay on biases, LayerNorms and EarlyBERT coefficients), warm-up then linear decay, or
  PLD's warm-up then exponential decay; gradient clipping; gradient accumulation.
- fp32 on CPU, bf16 autocast on CUDA.
- Time: compute (forward, backward, optimizer) separate from data (batching, collation, copies)
  and from evaluation; CUDA is synchronised before each clock read. A run's *training time* is
  `train_seconds`: wall-clock minus evaluation (what a hook does counts: it is part of the method).
- Checkpoints (model, optimizer, schedule, RNG, loop and hook state) every `checkpoint_every`
  steps and/or `checkpoint_minutes`; a run started with the same checkpoint_dir resumes from the
  last one. With a checkpoint_dir, the study's deadline (`repro.study`) saves one and raises
  TimeUp, and plan mode times a few steps and raises Probe.
- A non-finite loss ends the run with status "diverged" instead of crashing.
- Hooks let PLD (per-micro-batch gates) and EarlyBERT (L1 term, coefficient record, early stop)
  plug in without the loop knowing about either.
- Data parallel: under `torchrun` (or `accelerate launch`, which sets the same variables) the
  loop wraps the model in DistributedDataParallel. Every rank collates the same global batch and
  keeps its rows [rank::world], so data, masks and PLD gates (seeded by step) are identical to a
  single-process run with the same global batch; only rank 0 writes checkpoints and records.
- The device, the ranks and the keyed random streams are `repro.runtime`; evaluation outside the
  loop (`predict`, `mlm_loss`, the unigram plateau) is `repro.evaluation`.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from .control import Probe, TimeUp
from .runtime import (GROUP_STREAM, _DROPOUT_STREAM, _generator, _mean_over_ranks, distributed, keyed_seed,
                      length_grouped_order, pick_device, seed_everything)


@dataclass
class TrainConfig:
    max_steps: int  # optimizer steps
    batch_size: int = 32  # per micro-batch
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    warmup: float = 0.1  # < 1: a fraction of max_steps; >= 1: a number of steps
    schedule: str = "linear"  # "linear" | "exp" (PLD recipe) | "constant" (after warm-up)
    exp_decay: float = 0.99  # "exp": lr * exp_decay ** ((step - warmup) / exp_every)
    exp_every: int = 1000
    grad_clip: float = 1.0  # 0 = off
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    precision: str = "auto"  # "auto" (fp32 on CPU, bf16 on CUDA) | "fp32" | "bf16"
    eval_every: int = 0  # 0: evaluate only at the end
    log_every: int = 10
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0  # steps; 0: only by time (checkpoint_minutes) or never
    checkpoint_minutes: float = 0.0  # also checkpoint when this much time passed since the last (one process)
    stop_at: int = 0  # > 0: end (status ok) after this many steps of the max_steps schedule: a pilot of a longer run
    deadline: float = math.inf  # the study's (epoch seconds): with a checkpoint_dir, save one and raise TimeUp
    probe_steps: int = 0  # plan mode: time this many steps after an untimed one, then raise Probe
    progress: bool = True
    # DDP must be told that PLD leaves dropped blocks without gradients
    find_unused_parameters: bool = True
    # batches of similar lengths (less padding), shuffled between batches: the study's default
    # for fine-tuning (repro.tasks); pre-training's fixed-length blocks gain nothing from it
    group_by_length: bool = False

    def __post_init__(self):
        if self.schedule not in ("linear", "exp", "constant"):
            raise ValueError(f"schedule must be linear, exp or constant, got {self.schedule!r}")
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("max_steps, batch_size and grad_accum must be positive")
        if not 0 <= self.stop_at <= self.max_steps:
            raise ValueError(f"stop_at must be in 0..max_steps ({self.max_steps}), got {self.stop_at}")

    @property
    def end(self) -> int:
        """The step the run ends at: stop_at when set, else max_steps."""
        return self.stop_at or self.max_steps

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup * self.max_steps) if self.warmup < 1 else int(self.warmup)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    w = cfg.warmup_steps
    if step < w:
        return (step + 1) / w
    if cfg.schedule == "linear":
        return max(0.0, (cfg.max_steps - step) / max(1, cfg.max_steps - w))
    if cfg.schedule == "exp":
        return cfg.exp_decay ** ((step - w) / cfg.exp_every)
    return 1.0


class Hook:
    """Override what you need. `loop` is the running Loop (step, model, config, state)."""

    def forward_kwargs(self, loop: "Loop") -> dict:  # extra model kwargs, per micro-batch
        return {}

    def extra_loss(self, loop: "Loop") -> torch.Tensor | None:  # added to the task loss
        return None

    def on_step_end(self, loop: "Loop") -> None:  # may set loop.stop = "reason"
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class TrainResult:
    status: str  # "ok" | "diverged" | "stopped" (a hook asked to stop)
    steps: int
    history: list[dict]  # one row per logged step: step, loss, lr, elapsed times
    evals: list[dict]  # one row per evaluation: step + eval_fn's metrics
    times: dict  # seconds: compute, data, eval, total (wall-clock of this and earlier sessions)
    samples: int
    tokens: int
    stop_reason: str | None = None

    @property
    def final_eval(self) -> dict:
        return {k: v for k, v in self.evals[-1].items() if k != "step"} if self.evals else {}

    def to_dict(self) -> dict:
        return asdict(self)


def train_seconds(run) -> float:
    """The study's one training time: wall-clock minus evaluation, in seconds. `run`: a
    TrainResult, a tasks.* dict holding one ("result"), or a times dict (a record's "times", or a
    history row: the time up to that step). Everything else a step costs counts, a hook's own
    work included (drawing PLD's gates, EarlyBERT's L1 term): it is part of what the method costs."""
    if isinstance(run, dict) and "result" in run:
        run = run["result"]
    times = run.times if isinstance(run, TrainResult) else run
    return times["total"] - times["eval"]


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # biases, LayerNorm gains and EarlyBERT coefficients are not weight-decayed
        (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # the fused kernel (CPU and CUDA) is several times faster than the per-op update, which
    # otherwise dominates small models' steps (a 30k x H embedding is updated every step)
    try:
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps, fused=True)
    except (RuntimeError, TypeError):  # a device or torch without the fused kernel
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps, foreach=True)


class Loop:
    def __init__(self, model, examples: Sequence[dict], collate: Callable, cfg: TrainConfig,
                 eval_fn: Callable | None = None, hooks: Sequence[Hook] = ()):
        if len(examples) == 0:
            raise ValueError("no training examples")
        self.cfg, self.examples, self.collate = cfg, examples, collate
        self.eval_fn, self.hooks = eval_fn, list(hooks)
        self.rank, self.world = distributed()
        if cfg.batch_size % self.world:
            raise ValueError(f"batch_size {cfg.batch_size} (the global batch) is not divisible by "
                             f"the {self.world} data-parallel processes")
        self.device = pick_device(cfg.device)
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and self.device.type == "cuda")
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)
        self.model = model.to(self.device)  # hooks see the plain model, never the wrapper
        self.forward = self.model
        if self.world > 1:
            self.forward = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                               find_unused_parameters=cfg.find_unused_parameters)
        self.opt = build_optimizer(self.model, cfg, self.device)
        self.step, self.epoch, self.pos, self.micro = 0, 0, 0, 0
        self.history, self.evals = [], []
        self.times = {"compute": 0.0, "data": 0.0, "eval": 0.0, "total": 0.0}
        self.samples = self.tokens = 0
        self.stop: str | None = None
        self.loss: float = float("nan")
        self._perm = None
        self._lengths: list[int] | None = None

    # -- data ------------------------------------------------------------------------------
    def _epoch_order(self) -> list[int]:
        """The order of this epoch's examples; consecutive slices of batch_size are the (global)
        batches. Depends only on (seed, epoch), so every rank builds the same one."""
        cfg, n = self.cfg, len(self.examples)
        if not cfg.group_by_length:
            return torch.randperm(n, generator=_generator(cfg.seed, self.epoch)).tolist()
        if self._lengths is None:  # once per run: tokens per example
            self._lengths = [len(ex["input_ids"]) for ex in self.examples]
        return length_grouped_order(self._lengths, cfg.batch_size,
                                    _generator(cfg.seed, GROUP_STREAM, self.epoch))

    def _next_batch(self) -> dict:
        n, bs = len(self.examples), self.cfg.batch_size
        if self._perm is None or self.pos >= n:
            if self._perm is not None:
                self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._epoch_order()
        idx = self._perm[self.pos:self.pos + bs]
        self.pos += bs
        batch = self.collate([self.examples[i] for i in idx],
                             generator=_generator(self.cfg.seed, 1, self.step, self.micro))
        if self.world > 1:  # this rank's share of the global batch, collated as one
            batch = {k: v[self.rank::self.world] for k, v in batch.items()}
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    # -- one optimizer step ----------------------------------------------------------------
    def train_step(self) -> float:
        cfg, model = self.cfg, self.model
        last = cfg.grad_accum - 1
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * lr_factor(self.step, cfg)
        total = 0.0
        for self.micro in range(cfg.grad_accum):
            t0 = self._clock()
            batch = self._next_batch()
            t1 = self._clock()
            self.times["data"] += t1 - t0
            kwargs = {}
            for h in self.hooks:
                kwargs.update(h.forward_kwargs(self))
            # DDP averages gradients once per optimizer step, not per micro-batch
            sync = self.micro == last or self.world == 1
            with self.autocast, (contextlib.nullcontext() if sync else self.forward.no_sync()):
                loss = self.forward(**batch, **kwargs)["loss"]
                for h in self.hooks:
                    extra = h.extra_loss(self)
                    if extra is not None:
                        loss = loss + extra
                (loss / cfg.grad_accum).backward()
            total += loss.item() / cfg.grad_accum
            self.samples += batch["input_ids"].shape[0] * self.world
            self.tokens += int(batch["attention_mask"].sum()) * self.world
            self.times["compute"] += self._clock() - t1
        t1 = self._clock()
        if math.isfinite(total):
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.times["compute"] += self._clock() - t1
        return _mean_over_ranks(total, self.world, self.device)  # the same (global) loss on every rank

    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def evaluate(self) -> dict:
        if self.eval_fn is None:
            return {}
        t0 = self._clock()
        self.model.eval()
        with torch.no_grad(), self.autocast:
            metrics = dict(self.eval_fn(self.model))
        self.model.train()
        self.times["eval"] += self._clock() - t0
        row = {"step": self.step, **metrics}
        self.evals.append(row)
        return row

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        # dropout draws from the global generator: seed it from the run's seed, so the same seed
        # gives the same numbers whatever ran before in the process (a checkpoint restores its state)
        seed_everything(keyed_seed(cfg.seed, _DROPOUT_STREAM))
        if cfg.checkpoint_dir:
            self.load_checkpoint()
        self.model.train()
        status = "ok"
        start = time.perf_counter() - self.times["total"]
        bar = tqdm(total=cfg.end, initial=self.step, disable=not cfg.progress or self.rank > 0,
                   mininterval=2.0, desc="train")
        first, probe, t_probe = self.step, cfg.probe_steps, None
        last_save = time.perf_counter()
        while self.step < cfg.end:
            if probe and self.step == first + 1:  # plan mode: time a few steps after an untimed one
                t_probe = time.perf_counter()
            self.loss = self.train_step()
            self.step += 1
            bar.update(1)
            if probe and self.step == first + 1 + probe:
                bar.close()
                raise Probe((time.perf_counter() - t_probe) / probe, cfg.end)
            if not math.isfinite(self.loss):
                status, self.stop = "diverged", f"non-finite loss at step {self.step}"
            if self.step % cfg.log_every == 0 or self.step == cfg.end or self.stop:
                self.times["total"] = time.perf_counter() - start
                self.history.append({"step": self.step, "loss": self.loss,
                                     "lr": self.opt.param_groups[0]["lr"], **self.times})
                bar.set_postfix(loss=f"{self.loss:.4f}")
            if status == "diverged":
                break
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.end:
                self.evaluate()
            for h in self.hooks:
                h.on_step_end(self)
            if self.stop:
                status = "stopped"
                if not self.history or self.history[-1]["step"] != self.step:  # a hook stopped it: log this step
                    self.times["total"] = time.perf_counter() - start
                    self.history.append({"step": self.step, "loss": self.loss,
                                         "lr": self.opt.param_groups[0]["lr"], **self.times})
                break
            if not cfg.checkpoint_dir:
                continue
            by_steps = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
            # by time and at the study's deadline: one process only (ranks' clocks would disagree)
            by_time = self.world == 1 and cfg.checkpoint_minutes and \
                time.perf_counter() - last_save >= 60 * cfg.checkpoint_minutes
            time_up = self.world == 1 and time.time() >= cfg.deadline
            if by_steps or by_time or time_up:
                self.times["total"] = time.perf_counter() - start
                if self.rank == 0:
                    self.save_checkpoint()
                last_save = time.perf_counter()
                if self.world > 1:
                    dist.barrier()  # nobody runs ahead of a checkpoint it may have to resume from
            if time_up:
                bar.close()
                raise TimeUp(f"deadline passed at step {self.step} of {cfg.end}")
        bar.close()
        if probe:  # a run shorter than the probe: its own steps are the estimate
            raise Probe((time.perf_counter() - start) / max(1, self.step - first), cfg.end)
        if status != "diverged":
            self.evaluate()
        self.times["total"] = time.perf_counter() - start
        return TrainResult(status, self.step, self.history, self.evals, dict(self.times),
                           self.samples, self.tokens, self.stop)

    # -- checkpoints -----------------------------------------------------------------------
    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "loop": {k: getattr(self, k) for k in
                         ("step", "epoch", "pos", "history", "evals", "times", "samples", "tokens")},
                "perm": self._perm, "hooks": [h.state_dict() for h in self.hooks],
                "rng": {"torch": torch.get_rng_state(), "random": random.getstate(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                "config": asdict(self.cfg)}

    def save_checkpoint(self) -> Path:
        path = Path(self.cfg.checkpoint_dir) / "last.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self._state(), tmp)
        os.replace(tmp, path)  # atomic: a run killed mid-write keeps the previous checkpoint
        return path

    def load_checkpoint(self) -> bool:
        path = Path(self.cfg.checkpoint_dir) / "last.pt"
        if not path.exists():
            return False
        st = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        for k, v in st["loop"].items():
            setattr(self, k, v)
        self._perm = st["perm"]
        for h, s in zip(self.hooks, st["hooks"]):
            h.load_state_dict(s)
        torch.set_rng_state(st["rng"]["torch"])
        random.setstate(st["rng"]["random"])
        if st["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["rng"]["cuda"])
        return True


def train(model, examples, collate, cfg: TrainConfig, eval_fn=None, hooks=()) -> TrainResult:
    """Train `model` on `examples` (a sequence of dicts the collator turns into batches)."""
    return Loop(model, examples, collate, cfg, eval_fn, hooks).run()
