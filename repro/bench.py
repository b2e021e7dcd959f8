"""Are the savings real? Training steps timed side by side in one process.

    python -m repro bench --profile cpu --out results/cpu/bench

Cases (forward + backward + AdamW step, the same global batch):
  dense_pre / dense_post   our PreLN / PostLN MLM step
  hf_mlm                   transformers.BertForMaskedLM (SDPA) at the same config and batch
  pld                      our PreLN with PLD gates sampled at theta = 0.5 (paper's p_i)
  ticket_mlm / dense_cls / ticket_cls
                           an EarlyBERT-sized ticket (1/3 of heads per layer, 40% of FFN neurons
                           globally, physically pruned) vs dense, MLM and classification steps

  finetune                 MRPC fine-tuning of MiniLM-L6 (the packaged checkpoint), whole epochs:
                           our Loop with length-grouped batches (the study's default), our Loop
                           with random batches, and transformers.Trainer (DataCollatorWithPadding,
                           random batches, its defaults), same examples, batch, lr, fp32

`--cases steps finetune` (the default: both) picks which run.

Method: the cases take turns (round-robin, every other round in reverse, compared cases next to
each other) so slow drifts of the machine hit them all alike; warm-up steps first, and one
untimed step at the start of every turn; the table gives the median over repetitions of each
case's step time. The ratios pair the cases within a repetition (they ran back to back) and take
the median of the per-repetition ratios; `spread` gives their range over repetitions, a measure
of the noise. PLD's gates are a fixed sequence drawn once, the same in every repetition, and its
ideal saving is computed from exactly those gates. FLOPs are counted analytically
(repro.model.flops_per_step: the analytic forward x3 for forward + backward); skipped or sliced work counts zero.

Ratios (top level of the JSON):
  pld_efficiency    = realized step-time saving of PLD / its FLOP saving        (target >= 0.95)
  ticket_efficiency = realized step-time saving of the ticket / its FLOP saving (target >= 0.9)
  hf_speedup        = BertForMaskedLM step time / our PostLN step time          (target >= 1.5)
  mfu               = model FLOPs/s of our dense PreLN step / the device's bf16 dense peak
                      (spec sheet; GPU only, target >= 0.40; --peak-tflops for other devices)
  matmul_mfu        = the same step against the best large matmul measured in this run, a
                      peak this device and precision really reach (also defined on a CPU)
  finetune_speedup  = examples/s of our fine-tuning (Loop, length-grouped) / transformers.Trainer's
                      over the same epoch of examples                             (target >= 1.3)
  finetune_grouping_speedup = ours grouped / ours with random batches (what grouping alone gives)
  finetune_loop_speedup     = ours with random batches / the Trainer (the loop alone)

Fine-tuning timing: one round = one epoch of the same examples for every case. Ours: N calls of
Loop.train_step() (batching, collation, forward, backward, clipping, AdamW), the study's own
code. The Trainer: one `trainer.train()` over all rounds; a TrainerCallback times each epoch from
on_epoch_begin to on_epoch_end (its sampler, DataLoader, collator, training_step, clipping,
optimizer and scheduler steps, callbacks; not train()'s one-off setup), and runs our cases
between its epochs, so the cases alternate as above. Every turn starts with one untimed step on
the batch of the longest examples (outside the data order: every round stays one exact epoch).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .analysis import timed
from .earlybert import draw_masks, prune, random_masks
from .model import Bert, flops_per_step
from .pld import PLD
from .train import Loop, TrainConfig, build_optimizer, pick_device


@dataclass(frozen=True)
class BenchSize:
    layers: int
    hidden: int
    heads: int
    intermediate: int
    seq_len: int
    batch: int
    steps: int  # timed steps per repetition
    reps: int
    warmup: int
    vocab: int = 30522


SIZES = {
    "smoke": BenchSize(2, 64, 4, 256, 32, 4, steps=2, reps=2, warmup=1, vocab=1000),
    "cpu": BenchSize(4, 256, 4, 1024, 128, 16, steps=8, reps=7, warmup=2),
    "gpu": BenchSize(12, 768, 12, 3072, 128, 64, steps=10, reps=7, warmup=5),
    # BERT-base shapes on a CPU (a few minutes): do the ratios move towards the ideal when the
    # matrix products dominate the fixed costs (embeddings, LayerNorm, dropout, optimizer)?
    "cpu_base": BenchSize(12, 768, 12, 3072, 128, 8, steps=2, reps=6, warmup=1),
}
MLM_FRACTION = 0.15


@dataclass(frozen=True)
class FinetuneSize:
    examples: int | None  # MRPC training examples (a seeded subset, as the profiles take); None: all
    batch: int
    reps: int  # rounds; every case trains one whole epoch per round
    warmup: int  # untimed steps per case before the first round
    task: str = "MRPC"
    seq_len: int = 128
    lr: float = 5e-5


FINETUNE_SIZES = {
    "smoke": FinetuneSize(32, 8, reps=2, warmup=1, seq_len=64),
    "cpu": FinetuneSize(1000, 32, reps=5, warmup=2),  # a seeded 1000-example subset (an epoch per round), the study's batch
    "gpu": FinetuneSize(None, 32, reps=5, warmup=5),
    "cpu_base": FinetuneSize(1000, 32, reps=5, warmup=2),
}
CASE_GROUPS = ("steps", "finetune")
# dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from NVIDIA's spec sheets; the first
# name found in torch.cuda.get_device_name wins, so the specific variants come first
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "GH200": 989.0, "H100": 989.0, "H200": 989.0,
                    "B200": 2250.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def spec_peak_tflops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)


def matmul_peak_tflops(device, amp: bool, reps: int = 5) -> float:
    """The best of a few square matmuls (8192 in bf16 on CUDA, 2048 in fp32 otherwise): what
    this device and precision really reach on the kernel that dominates BERT."""
    n, dtype = (8192, torch.bfloat16) if amp else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    best = min(timed(device, lambda: a @ b) for _ in range(reps + 1))  # the first warms up
    return 2 * n ** 3 / best / 1e12


def _batch(size: BenchSize, device, cls: bool = False, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000 if size.vocab > 2000 else 5, size.vocab, (size.batch, size.seq_len), generator=g)
    b = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if cls:
        b["labels"] = torch.randint(0, 2, (size.batch,), generator=g)
    else:
        chosen = torch.rand(ids.shape, generator=g) < MLM_FRACTION
        b["labels"] = torch.where(chosen, ids, torch.full_like(ids, -100))
    return {k: v.to(device) for k, v in b.items()}


class Case:
    """One training step, repeatable: model, optimizer, a fixed batch, optional gate sequence."""

    def __init__(self, name, model, batch, device, flops, gates=None, amp=False):
        self.name, self.model, self.batch, self.flops, self.gates = name, model.to(device), batch, flops, gates
        self.opt = build_optimizer(self.model, TrainConfig(max_steps=1, lr=1e-5), device)
        self.device, self.times, self.i = device, [], 0
        self.amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def step(self):
        kw = {}
        if self.gates is not None:
            kw["gates"] = self.gates[self.i % len(self.gates)]
            self.i += 1
        with self.amp:
            out = self.model(**self.batch, **kw)
            loss = out["loss"] if isinstance(out, dict) else out.loss
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def run(self, steps: int) -> float:
        # One untimed step first: the case before this one freed its memory and the allocator
        # gave it back to the OS, so this case's first step pays page faults that a training loop,
        # step after step of one model, never does (measured: up to +15% on a BERT-base step after
        # a ticket step on CPU, which inflated every saving measured against the slower case).
        self.step()
        self.i = 0  # every repetition replays the same gates
        return timed(self.device, self.step, steps)


def _ours(size: BenchSize, ln: str, head: str = "mlm", **kw) -> Bert:
    torch.manual_seed(0)
    return Bert.from_config(layers=size.layers, hidden=size.hidden, heads=size.heads,
                            intermediate=size.intermediate, vocab_size=size.vocab, ln=ln, head=head, **kw)


def _hf(size: BenchSize):
    from transformers import BertConfig as HFConfig, BertForMaskedLM
    torch.manual_seed(0)
    return BertForMaskedLM(HFConfig(vocab_size=size.vocab, hidden_size=size.hidden, num_hidden_layers=size.layers,
                                    num_attention_heads=size.heads, intermediate_size=size.intermediate,
                                    attn_implementation="sdpa"))


def _step_flops(model: Bert, size: BenchSize, gates=None, head_tokens: float | None = None) -> float:
    head = head_tokens if head_tokens is not None else MLM_FRACTION if model.config.head == "mlm" else 1.0
    return flops_per_step(model.config, size.seq_len, size.batch, gates, head)


def build_cases(size: BenchSize, device, amp: bool, theta: float = 0.5, seed: int = 0) -> dict[str, Case]:
    mlm, cls = _batch(size, device), _batch(size, device, cls=True)
    cases = {}

    def add(name, model, batch, gates=None, flops=None):
        cases[name] = Case(name, model, batch, device, flops, gates, amp)

    # the order is the round's order: each case sits next to the one it is compared with
    pre = _ours(size, "pre")
    add("dense_pre", pre, mlm, flops=_step_flops(pre, size))
    # PLD at theta: the gates PLD.gates draws (the paper's keep probabilities, 1/p_i scales) once
    # theta has decayed to theta_bar = theta; with gamma = 100, exp(-100 t) vanishes from step 1
    hook = PLD(theta_bar=theta, gamma=100.0, seed=seed)
    gates = [hook.gates(1 + i, 0, size.layers) for i in range(size.steps)]
    pld = _ours(size, "pre")
    add("pld", pld, mlm, gates=gates,
        flops=statistics.fmean(_step_flops(pld, size, gt) for gt in gates))
    # an EarlyBERT-sized ticket: 1/3 of the heads and 40% of the neurons of every layer, at
    # random positions (speed only needs sizes). Layerwise, because a global ranking of the
    # untrained coefficients (all 1.0, ties by index) would empty the first layers.
    dense_slim = _ours(size, "pre", slimming=True)
    heads, ffn = random_masks(*draw_masks(dense_slim, ffn_scope="layer"), seed=seed)
    ticket = prune(dense_slim, heads, ffn)
    add("ticket_mlm", ticket, mlm, flops=_step_flops(ticket, size))
    post = _ours(size, "post")
    add("dense_post", post, mlm, flops=_step_flops(post, size))
    # BertForMaskedLM computes logits at every position, so its head costs 1/0.15 of ours
    add("hf_mlm", _hf(size), mlm, flops=_step_flops(post, size, head_tokens=1.0))
    dense_cls = _ours(size, "pre", head="cls")
    add("dense_cls", dense_cls, cls, flops=_step_flops(dense_cls, size))
    ticket_cls = prune(_ours(size, "pre", head="cls", slimming=True), heads, ffn)
    add("ticket_cls", ticket_cls, cls, flops=_step_flops(ticket_cls, size))
    return cases


# -- fine-tuning: our Loop against transformers.Trainer -------------------------------------
def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Counting:
    """Wraps a collator; counts the tokens of the batches it builds, padding included or not."""

    def __init__(self, collate):
        self.collate, self.padded, self.real = collate, 0, 0

    def __call__(self, *args, **kwargs):
        batch = self.collate(*args, **kwargs)
        self.padded += batch["input_ids"].numel()
        self.real += int(batch["attention_mask"].sum())
        return batch


def _untimed_step(model, opt, batch) -> None:
    out = model(**batch)
    (out["loss"] if isinstance(out, dict) else out.loss).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


class _Timings:
    """Per-round epoch times and token counts of one fine-tuning case."""

    def __init__(self, name: str):
        self.name, self.times, self.padded, self.real = name, [], [], []

    def add(self, seconds: float, count: _Counting, before: tuple[int, int]) -> None:
        self.times.append(seconds)
        self.padded.append(count.padded - before[0])
        self.real.append(count.real - before[1])


class LoopCase(_Timings):
    """Fine-tuning through repro.train.Loop: one turn = one untimed step, then one timed epoch
    of Loop.train_step() calls (the study's data order, collation, step, clipping, AdamW)."""

    def __init__(self, name, model, examples, collate, fs: FinetuneSize, device, group: bool,
                 warm_batch: dict, steps: int):
        super().__init__(name)
        self.count, self.steps, self.device = _Counting(collate), steps, device
        cfg = TrainConfig(max_steps=steps * (fs.reps + 1), batch_size=fs.batch, lr=fs.lr, seed=0,
                          device=str(device), precision="fp32", progress=False, group_by_length=group)
        self.loop = Loop(model, examples, self.count, cfg)
        self.warm_batch = {k: v.to(self.loop.device) for k, v in warm_batch.items()}

    def warm(self, steps: int = 1) -> None:  # outside the data order: the rounds stay whole epochs
        for _ in range(steps):
            _untimed_step(self.loop.forward, self.loop.opt, self.warm_batch)

    def _epoch(self) -> None:
        for _ in range(self.steps):
            self.loop.train_step()
            self.loop.step += 1  # as Loop.run: the learning-rate schedule moves on

    def turn(self) -> None:
        self.warm()
        before = (self.count.padded, self.count.real)
        self.add(timed(self.device, self._epoch), self.count, before)


def _trainer_rounds(ours: list[LoopCase], warmup: int, warm_batch: dict, device):
    """A TrainerCallback that times the Trainer's epochs and runs our cases between them:
    rounds alternate ours-then-Trainer and Trainer-then-ours (reversed), as run_steps does."""
    from transformers import TrainerCallback

    class Rounds(TrainerCallback, _Timings):
        def __init__(self):
            _Timings.__init__(self, "trainer")
            self.round, self.count, self.t0, self.before = 0, None, 0.0, (0, 0)

        def on_epoch_begin(self, args, state, control, model=None, optimizer=None, **kw):
            if self.round % 2 == 0:
                for c in ours:
                    c.turn()
            for _ in range(warmup if self.round == 0 else 1):
                _untimed_step(model, optimizer, warm_batch)
            self.before = (self.count.padded, self.count.real)
            _sync(device)
            self.t0 = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kw):
            _sync(device)
            self.add(time.perf_counter() - self.t0, self.count, self.before)
            if self.round % 2 == 1:
                for c in reversed(ours):
                    c.turn()
            self.round += 1
            print(f"finetune round {self.round}/{args.num_train_epochs:g}: epoch s "  # a long case: show progress
                  + ", ".join(f"{c.name} {c.times[-1]:.1f}" for c in (*ours, self)), file=sys.stderr, flush=True)
    return Rounds()


def run_finetune(fs: FinetuneSize, dev, data_dir=None) -> dict:
    """MRPC fine-tuning of MiniLM-L6: ours (length-grouped and random batches) vs the Trainer."""
    import tempfile

    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

    from .data import Collator, encode_glue, load_glue, load_tokenizer, minilm_path
    from .profiles import MINILM
    from .tasks import glue_model, glue_task

    tok = load_tokenizer(MINILM)
    examples = encode_glue(load_glue(fs.task, "train", data_dir=data_dir, limit=fs.examples, seed=0), tok, fs.seq_len)
    n, steps = len(examples), -(-len(examples) // fs.batch)
    ours_collate, hf_collate = Collator.for_tokenizer(tok), DataCollatorWithPadding(tok)
    # the untimed step of every turn: the batch of the longest examples (the most memory)
    longest = sorted(examples, key=lambda e: -len(e["input_ids"]))[:fs.batch]
    cases = []
    for name, group in (("ours_random", False), ("ours_grouped", True)):  # ours_grouped next to the Trainer
        cases.append(LoopCase(name, glue_model(MINILM, fs.task, seed=0), examples, ours_collate, fs, dev, group,
                              ours_collate(longest), steps))
    for c in cases:
        c.warm(fs.warmup)
    torch.manual_seed(0)
    info = glue_task(fs.task)
    hf = AutoModelForSequenceClassification.from_pretrained(
        minilm_path(), num_labels=1 if info.is_regression else info.num_labels)
    hf_warm = {k: v.to(cases[0].loop.device) for k, v in hf_collate([dict(e) for e in longest]).items()}
    rounds = _trainer_rounds(cases, fs.warmup, hf_warm, cases[0].loop.device)
    rounds.count = _Counting(hf_collate)
    with tempfile.TemporaryDirectory() as tmp:
        # its defaults, but for what the comparison fixes (batch, lr, epochs, seed, device) and
        # what would write files or print (checkpoints, logs, progress bars)
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=fs.batch, learning_rate=fs.lr,
                                 num_train_epochs=fs.reps, seed=0, use_cpu=dev.type == "cpu",
                                 save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True)
        trainer = Trainer(model=hf, args=args, train_dataset=examples, data_collator=rounds.count,
                          callbacks=[rounds])
        trainer.train()
    by = {c.name: c for c in (*cases, rounds)}

    def ratio(a, b):  # b's epoch time / a's, per round (the same examples): a's examples/s over b's
        r = [tb / ta for ta, tb in zip(by[a].times, by[b].times)]
        return statistics.median(r), [min(r), max(r)]
    rows = {}
    for name, c in by.items():
        t = statistics.median(c.times)
        rows[f"finetune_{name}"] = {
            "epoch_s": t, "step_s": t / steps, "examples_per_s": n / t,
            "padded_tokens_per_epoch": statistics.fmean(c.padded), "real_tokens_per_epoch": statistics.fmean(c.real),
            "padding": 1 - statistics.fmean(c.real) / statistics.fmean(c.padded), "times_s": c.times}
        if isinstance(c, LoopCase):
            rows[f"finetune_{name}"]["data_fraction"] = c.loop.times["data"] / (c.loop.times["data"] + c.loop.times["compute"])
    speed, speed_spread = ratio("ours_grouped", "trainer")
    grouping, grouping_spread = ratio("ours_grouped", "ours_random")
    loop_, loop_spread = ratio("ours_random", "trainer")
    return {
        "finetune_speedup": speed, "finetune_grouping_speedup": grouping, "finetune_loop_speedup": loop_,
        "spread": {"finetune_speedup": speed_spread, "finetune_grouping_speedup": grouping_spread,
                   "finetune_loop_speedup": loop_spread},
        "targets": {"finetune_speedup": 1.3},
        "cases": rows,
        "finetune": {**asdict(fs), "examples": n, "steps_per_epoch": steps, "checkpoint": "minilm (MiniLM-L6)",
                     "precision": "fp32", "rounds": len(rounds.times),
                     "timing": "one epoch of the same examples per case and round; ours: Loop.train_step() x "
                               "steps; Trainer: trainer.train(), on_epoch_begin to on_epoch_end"},
    }


def run_bench(profile: str = "cpu", device: str = "auto", theta: float = 0.5, compile: bool = False,
              peak_tflops: float | None = None, cases=CASE_GROUPS, data_dir=None) -> dict:
    """The chosen case groups ("steps", "finetune"), one result dict (see the module's doc)."""
    if profile not in SIZES:
        raise ValueError(f"unknown bench profile {profile!r}: choose one of {', '.join(SIZES)}")
    if peak_tflops is not None and not peak_tflops > 0:
        raise ValueError(f"--peak-tflops must be a positive number of TFLOP/s, got {peak_tflops}")
    bad = [c for c in cases if c not in CASE_GROUPS]
    if bad or not cases:
        raise ValueError(f"unknown bench case group(s) {bad}: choose from {', '.join(CASE_GROUPS)}")
    dev = pick_device(device)
    res = {"profile": profile, "case_groups": [c for c in CASE_GROUPS if c in cases], "cases": {},
           "spread": {}, "targets": {}}
    if "steps" in cases:
        part = run_steps(SIZES[profile], dev, theta, compile, peak_tflops)
        for key in ("cases", "spread", "targets"):
            res[key].update(part.pop(key))
        res.update(part)
    if "finetune" in cases:
        part = run_finetune(FINETUNE_SIZES[profile], dev, data_dir)
        for key in ("cases", "spread", "targets"):
            res[key].update(part.pop(key))
        res.update(part)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    return {**res, "device": name, "torch": torch.__version__, "threads": torch.get_num_threads()}


def run_steps(size: BenchSize, dev, theta: float = 0.5, compile: bool = False,
              peak_tflops: float | None = None) -> dict:
    """The seven step cases on synthetic batches (the module's doc)."""
    amp = dev.type == "cuda"
    cases = build_cases(size, dev, amp, theta)
    if compile:
        for c in cases.values():
            c.model = torch.compile(c.model)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for c in cases.values():  # warm-up (and, on CUDA, each case's peak memory)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        c.run(size.warmup)
        c.peak_mem = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
    order = list(cases.values())
    for r in range(size.reps):  # round-robin, every other round backwards: a drift cancels out
        for c in order if r % 2 == 0 else order[::-1]:
            c.times.append(c.run(size.steps) / size.steps)
    rows = {}
    for name, c in cases.items():
        t = statistics.median(c.times)
        rows[name] = {"step_s": t, "tokens_per_s": size.batch * size.seq_len / t,
                      "train_flops_per_step": c.flops, "achieved_tflops": c.flops / t / 1e12,
                      "peak_mem_bytes": c.peak_mem, "params": sum(p.numel() for p in c.model.parameters()),
                      "times_s": c.times}

    def flop_saving(a, b):
        return 1 - cases[a].flops / cases[b].flops

    def time_saving(a, b):  # per repetition, then the median: the pair ran back to back
        return statistics.median(1 - ta / tb for ta, tb in zip(cases[a].times, cases[b].times))

    def spread(a, b):  # the efficiency's range over repetitions: how much to trust one run
        f = flop_saving(a, b)
        r = [(1 - ta / tb) / f for ta, tb in zip(cases[a].times, cases[b].times)]
        return [min(r), max(r)]
    pld_time, pld_flops = time_saving("pld", "dense_pre"), flop_saving("pld", "dense_pre")
    t_time, t_flops = time_saving("ticket_mlm", "dense_pre"), flop_saving("ticket_mlm", "dense_pre")
    c_time, c_flops = time_saving("ticket_cls", "dense_cls"), flop_saving("ticket_cls", "dense_cls")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    peak = peak_tflops or (spec_peak_tflops(name) if amp else None)
    mm_peak = matmul_peak_tflops(dev, amp)
    achieved = rows["dense_pre"]["achieved_tflops"]
    return {
        "pld_efficiency": pld_time / pld_flops,
        "ticket_efficiency": t_time / t_flops,
        "ticket_cls_efficiency": c_time / c_flops,
        "hf_speedup": statistics.median(h / p for h, p in zip(cases["hf_mlm"].times, cases["dense_post"].times)),
        "spread": {"pld_efficiency": spread("pld", "dense_pre"), "ticket_efficiency": spread("ticket_mlm", "dense_pre"),
                   "ticket_cls_efficiency": spread("ticket_cls", "dense_cls")},
        "savings": {"pld_time": pld_time, "pld_flops": pld_flops, "ticket_mlm_time": t_time,
                    "ticket_mlm_flops": t_flops, "ticket_cls_time": c_time, "ticket_cls_flops": c_flops},
        "mfu": achieved / peak if peak else None, "peak_tflops": peak,
        "peak_source": "--peak-tflops" if peak_tflops else ("spec sheet, bf16 dense" if peak else None),
        "matmul_mfu": achieved / mm_peak, "matmul_peak_tflops": mm_peak,
        "targets": {"pld_efficiency": 0.95, "ticket_efficiency": 0.9, "hf_speedup": 1.5, "mfu": 0.40},
        "cases": rows, "size": asdict(size), "theta": theta, "compile": compile,
        "precision": "bf16 autocast" if amp else "fp32",
    }


def format_table(res: dict) -> str:
    parts = []
    if "steps" in res["case_groups"]:
        parts.append(_steps_table(res))
    if "finetune" in res["case_groups"]:
        parts.append(_finetune_table(res))
    precision = res.get("precision", "fp32")
    return "\n\n".join(parts + [f"device {res['device']}, {precision}, torch {res['torch']}, {res['threads']} threads"])


def _steps_table(res: dict) -> str:
    lines = [f"{'case':<12} {'step ms':>9} {'tokens/s':>10} {'GFLOP/step':>11} {'TFLOP/s':>8} {'params':>11}"]
    for name, r in res["cases"].items():
        if name.startswith("finetune_"):
            continue
        lines.append(f"{name:<12} {1e3 * r['step_s']:>9.1f} {r['tokens_per_s']:>10.0f} "
                     f"{r['train_flops_per_step'] / 1e9:>11.2f} {r['achieved_tflops']:>8.3f} {r['params']:>11,}")
    s = res["savings"]
    sp = {k: v for k, v in res["spread"].items() if not k.startswith("finetune")}
    lines += ["",
              f"PLD (theta={res['theta']}): time saving {s['pld_time']:.1%} vs FLOP saving {s['pld_flops']:.1%}"
              f" -> pld_efficiency {res['pld_efficiency']:.2f} (target >= 0.95)",
              f"ticket MLM: time saving {s['ticket_mlm_time']:.1%} vs FLOP saving {s['ticket_mlm_flops']:.1%}"
              f" -> ticket_efficiency {res['ticket_efficiency']:.2f} (target >= 0.9)",
              f"ticket CLS: time saving {s['ticket_cls_time']:.1%} vs FLOP saving {s['ticket_cls_flops']:.1%}"
              f" -> {res['ticket_cls_efficiency']:.2f}",
              "range over repetitions: " + ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in sp.items()),
              f"BertForMaskedLM step / ours (PostLN): hf_speedup {res['hf_speedup']:.2f} (target >= 1.5)",
              (f"dense PreLN step: MFU {res['mfu']:.1%} of {res['peak_tflops']:g} TFLOP/s ({res['peak_source']};"
               " target >= 40%)" if res["mfu"] is not None else "MFU: no spec peak for this device (--peak-tflops)")
              + f"; {res['matmul_mfu']:.1%} of the best large matmul here ({res['matmul_peak_tflops']:.3f} TFLOP/s)"]
    return "\n".join(lines)


def _finetune_table(res: dict) -> str:
    f, sp = res["finetune"], res["spread"]
    label = {"finetune_ours_random": "ours, random batches", "finetune_ours_grouped": "ours, length-grouped",
             "finetune_trainer": "transformers.Trainer"}
    lines = [f"fine-tuning MiniLM-L6 on {f['task']}: {f['examples']} examples, batch {f['batch']}, lr {f['lr']:g}, "
             f"{f['precision']}; one epoch ({f['steps_per_epoch']} steps) per case and round, {f['rounds']} rounds",
             f"{'case':<22} {'epoch s':>8} {'step ms':>8} {'examples/s':>11} {'tokens/epoch':>13} {'padding':>8}"]
    for name, lab in label.items():
        r = res["cases"][name]
        lines.append(f"{lab:<22} {r['epoch_s']:>8.2f} {1e3 * r['step_s']:>8.1f} {r['examples_per_s']:>11.1f} "
                     f"{r['padded_tokens_per_epoch']:>13,.0f} {r['padding']:>8.1%}")

    def line(key, what):
        lo, hi = sp[key]
        return f"{key} {res[key]:.2f} (range over rounds {lo:.2f}-{hi:.2f}): {what}"
    lines += ["",
              line("finetune_speedup", "examples/s, ours length-grouped / Trainer (target >= 1.3)"),
              line("finetune_grouping_speedup", "ours length-grouped / ours random batches"),
              line("finetune_loop_speedup", "ours random batches / Trainer")]
    return "\n".join(lines)


def add_bench(sub):
    p = sub.add_parser("bench", help="time dense, PLD and pruned training steps, and fine-tuning against "
                                     "transformers.Trainer, side by side")
    p.add_argument("--profile", default="cpu", choices=list(SIZES))
    p.add_argument("--device", default="auto")
    p.add_argument("--theta", type=float, default=0.5)
    p.add_argument("--compile", action="store_true", help="torch.compile every model of the step cases first")
    p.add_argument("--peak-tflops", type=_positive, default=None,
                   help="the device's peak for MFU, where the built-in bf16 spec table lacks it")
    p.add_argument("--cases", nargs="+", default=list(CASE_GROUPS), choices=CASE_GROUPS,
                   help="which cases: steps (the seven training-step cases), finetune (MRPC fine-tuning, "
                        "ours vs transformers.Trainer); default both")
    p.add_argument("--data-dir", default=None, help="GLUE data for the finetune cases (default: as the notebooks)")
    p.add_argument("--out", default=None, help="a folder: writes bench.json and bench.txt there")
    p.set_defaults(func=cmd_bench)


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of TFLOP/s (e.g. 989 for an H100 SXM)")
    return v


def cmd_bench(args) -> int:
    from .results import provenance, write_json
    res = run_bench(args.profile, args.device, args.theta, args.compile, args.peak_tflops, args.cases,
                    args.data_dir)
    table = format_table(res)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = "bench_compiled" if args.compile else "bench"
        write_json(out / f"{name}.json", {**res, "provenance": provenance()})
        (out / f"{name}.txt").write_text(table + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.bench")
    add_bench(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["bench", *(argv or [])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
