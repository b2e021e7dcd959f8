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

from .control import Probe, TimeUp, deadline, probe_steps


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


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(name)


def distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun/accelerate."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _mean_over_ranks(x: float, world: int, device: torch.device) -> float:
    if world == 1:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=device)  # nccl needs a CUDA tensor
    dist.all_reduce(t)
    return t.item() / world


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np
        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def keyed_seed(*keys: int) -> int:
    """A 63-bit seed that depends only on the integer keys (seed, stream, step, ...), the same in
    every process and Python version (numpy's SeedSequence mixes them; `hash` is CPython's)."""
    import numpy as np

    return int(np.random.SeedSequence([int(k) % 2**32 for k in keys]).generate_state(2, np.uint32)
               .astype(np.uint64) @ np.array([1, 2**32], dtype=np.uint64)) % 2**63


# Streams of _generator's keys after the seed: (seed, epoch) the epoch's permutation, 1 the
# collator (step, micro-batch), 2 predict, 3 mlm_loss, 4 PLD's gates (repro.pld), 5 model init and
# 6 dropout (repro.tasks, and _DROPOUT_STREAM here), 7 length grouping.
_DROPOUT_STREAM = 6
GROUP_STREAM = 7
GROUP_MEGABATCH = 50  # batches per megabatch, as transformers' LengthGroupedSampler


def length_grouped_order(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                         megabatch: int = GROUP_MEGABATCH) -> list[int]:
    """One epoch's order of the indices of `lengths`, cut into consecutive batches of
    `batch_size` whose members have similar lengths.

    A random permutation is cut into megabatches of `megabatch` batches (fewer when the data
    holds less than 4 such megabatches, so that an epoch keeps some randomness); each megabatch
    is sorted by length (longest first; ties stay in random order) and cut into batches; the
    batches of the epoch are shuffled, the one holding the longest example goes first (a run that
    would run out of memory does so at once), and a short remainder batch, if any, goes last so
    that every other batch is full. Every index appears exactly once; the same generator state
    gives the same order.
    """
    n = len(lengths)
    if n == 0:
        return []
    mult = max(1, min(megabatch, n // (4 * batch_size)))
    size = mult * batch_size
    perm = torch.randperm(n, generator=generator).tolist()
    batches = []
    for start in range(0, n, size):
        chunk = sorted(perm[start:start + size], key=lambda i: -lengths[i])  # stable
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rest = batches.pop() if len(batches[-1]) < batch_size else None  # only the last can be short
    batches = [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]
    if batches:  # each batch is sorted, so its first member is its longest
        top = max(range(len(batches)), key=lambda k: lengths[batches[k][0]])
        batches[0], batches[top] = batches[top], batches[0]
    if rest:
        batches.append(rest)
    return [i for b in batches for i in b]


def _generator(*keys: int) -> torch.Generator:
    # a generator whose stream depends only on the keys (seed, epoch, step, ...)
    g = torch.Generator()
    g.manual_seed(keyed_seed(*keys))
    return g


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
        first, probe, t_probe = self.step, probe_steps(), None
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
            time_up = self.world == 1 and time.time() >= deadline()
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


@torch.no_grad()
def predict(model, examples: Sequence[dict], collate, batch_size: int = 64, device=None,
            keys: Sequence[str] = ("logits",), **model_kwargs) -> dict[str, list[torch.Tensor]]:
    """Run the model in eval mode over `examples` in order; returns, per output key, a list of
    per-batch CPU tensors (padding differs between batches, so they are not concatenated)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = {k: [] for k in keys}
    for i in range(0, len(examples), batch_size):
        batch = collate(list(examples[i:i + batch_size]), generator=_generator(0, 2, i))
        out = model(**{k: v.to(device) for k, v in batch.items()}, **model_kwargs)
        for k in keys:
            outs[k].append(out[k].float().cpu())
    model.train(was_training)
    return outs


def _eval_mlm_batches(examples: Sequence[dict], collate, batch_size: int = 64):
    """The validation batches, with masks fixed by position: every evaluation (and every model,
    and the unigram baseline) sees the same masked tokens."""
    for i in range(0, len(examples), batch_size):
        yield collate(list(examples[i:i + batch_size]), generator=_generator(0, 3, i))


@torch.no_grad()
def mlm_loss(model, examples: Sequence[dict], collate, batch_size: int = 64) -> float:
    """Mean masked-LM loss (nats per masked token) over `examples` (fixed masks)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in _eval_mlm_batches(examples, collate, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        n = out["labels"].numel()
        total += out["loss"].float().item() * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def unigram_mlm_loss(train_examples: Sequence[dict], valid_examples: Sequence[dict], collate,
                     batch_size: int = 64) -> float:
    """The MLM loss of predicting token frequencies: the plateau a model reaches before it uses
    any context. The predictor ignores its input and always outputs q(v), the frequency of token
    v among the maskable tokens (not special) of the training blocks, which is what BERT's
    masking draws targets from; its loss is the cross-entropy -mean log q(label) over the very
    masked tokens `mlm_loss` scores (same validation blocks, same fixed masks). Add-one smoothing
    keeps a word unseen in training finite."""
    import numpy as np

    vocab = collate.vocab_size  # a data.Collator: its vocabulary and special tokens
    ids = np.concatenate([np.asarray(ex["input_ids"], dtype=np.int64) for ex in train_examples])
    counts = np.bincount(ids, minlength=vocab).astype(np.float64)
    counts[list(collate.special_ids)] = 0  # never a masking target
    log_q = torch.from_numpy(np.log(counts + 1) - np.log(counts.sum() + vocab))
    total, count = 0.0, 0
    for batch in _eval_mlm_batches(valid_examples, collate, batch_size):
        labels = batch["labels"][batch["labels"] != -100]
        total -= float(log_q[labels].sum())
        count += labels.numel()
    return total / max(count, 1)
