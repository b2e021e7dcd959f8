"""The benchmark's fine-tuning cases (`repro.bench`): MRPC fine-tuning of MiniLM-L6, whole epochs,
our Loop (length-grouped and random batches) against transformers.Trainer, the cases taking turns
between the Trainer's epochs.
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch

from .analysis import timed
from .train import Loop, TrainConfig


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

    from .data import Collator, encode_glue, load_glue
    from .sources import MINILM, load_tokenizer, minilm_path
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
