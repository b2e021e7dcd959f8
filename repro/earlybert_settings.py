"""EarlyBERT's settings: the recipes (the official GLUE and SQuAD ones, the earlier ones kept as a
sensitivity row, pre-training's), a notebook's overrides of one, and `Setting`, where a fine-tuning
comparison runs (a GLUE task or SQuAD at the profile's sizes: its data, model, training and
evaluation). The units that run them are `repro.earlybert_runs` and `repro.earlybert_pretrain`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch

from .flops import flops_per_step, matmul_cost
from .metrics import main_metric
from .model import Bert
from .profiles import Profile
from .tasks import finetune_glue, finetune_squad, glue_data, glue_model, squad_data, squad_model, steps_for
from .units import glue_config

SQUAD = "SQuAD"
TICKETS = ("detector", "fixed", "end", "random")  # where a ticket is drawn from the search
DENSE_NOTEBOOK = "glue_finetune"  # GLUE's dense runs are that notebook's units: trained once
PRE_NOTEBOOK = "earlybert_pretraining"
SEARCH_EVAL = 8  # a search's own score is never used: its final evaluation sees 8 examples
SQUAD_DENSE_F1 = 50.0  # earlybert_squad trains the comparison once dense seed 0 reaches this F1
# SQuAD: only dev-v1.1.json is offline, split by article into training and evaluation halves, the
# same split for every run (so all of them score the same questions)
SQUAD_SPLIT = {"by": "article", "seed": 0, "eval_fraction": 0.5}


# ----------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class Search:
    """The searching stage's L1 term, the ticket's size and the early-bird detector (official values)."""
    lambda_head: float = 1e-4
    lambda_ffn: float = 1e-4
    head_ratio: float = 1 / 3  # 4 of 12 heads in every layer
    ffn_ratio: float = 0.4  # of the FFN neurons, ranked over all layers
    draw_every: float = 0.02  # a detector draw every 2% of the search
    window: int = 5
    epsilon: float = 0.1

    def slimming_kw(self, steps: int) -> dict:
        return {"lambda_head": self.lambda_head, "lambda_ffn": self.lambda_ffn, "head_ratio": self.head_ratio,
                "ffn_ratio": self.ffn_ratio, "draw_every": max(1, round(self.draw_every * steps)),
                "window": self.window, "epsilon": self.epsilon, "record_every": 1}

    def search_config(self) -> dict:
        """What decides the search's numbers (not how its tickets are trained)."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("ticket_")}


@dataclass(frozen=True)
class Recipe(Search):
    """EarlyBERT fine-tuning; None: the dense run's value (lr, epochs) or the earlier recipe's.

    The fields after `ticket_warmup` came with the official recipe (notes/official-code.md has
    each value's file and line in VITA-Group/EarlyBERT); left None they give the earlier recipe
    (the search's schedule one epoch long after a 10% warm-up, weight decay 0.01, Adam eps 1e-6,
    units ranked by |c|), whose recorded units keep their identity (None is not hashed)."""
    search_lr: float | None = 2e-5
    search_epochs: float = 1.0  # the search's longest run
    fixed_fraction: float = 0.2  # the official drawing point: 20% of the first epoch
    ticket_lr: float | None = 4e-5
    ticket_epochs: float | None = 2.0
    ticket_warmup: float = 0.0  # the official retraining has none
    schedule_epochs: float | None = None  # the search's lr schedule spans this many epochs (None: search_epochs)
    search_warmup: float | None = None  # None: the dense run's warm-up (10%)
    weight_decay: float | None = None  # search and ticket; None: TrainConfig's 0.01
    adam_eps: float | None = None  # search and ticket; None: TrainConfig's 1e-6
    rank: str | None = None  # "raw": keep the units whose coefficient is above the quantile; None: by |c|
    ticket_label: str | None = None  # a variant's tickets are recorded as "<ticket>@<label>" (controls)

    def optimizer_kw(self) -> dict:
        """TrainConfig overrides of the search and the ticket (weight decay, Adam eps)."""
        return {k: v for k, v in (("weight_decay", self.weight_decay), ("adam_eps", self.adam_eps)) if v is not None}

    def draw_kw(self) -> dict:
        """draw_masks arguments: the ticket's size and how units are ranked."""
        return {"head_ratio": self.head_ratio, "ffn_ratio": self.ffn_ratio,
                **({"magnitude": False} if self.rank == "raw" else {})}

    def search_steps(self, per_epoch: int) -> tuple[int, int]:
        """(schedule steps, steps run): the official search runs the first epoch of a 3-epoch
        schedule (`--num_train_epochs 3.0 --max_epochs 1`)."""
        run = max(1, math.ceil(self.search_epochs * per_epoch))
        return max(run, math.ceil((self.schedule_epochs or self.search_epochs) * per_epoch)), run


@dataclass(frozen=True)
class PretrainRecipe(Search):
    """EarlyBERT in pre-training (the paper's text): the ticket is drawn by `search_fraction` of the
    run at the latest; the search unit records up to `observe_fraction` (for the mask-distance
    figure: where the criterion fires), and only the steps up to the draw are charged."""
    search_fraction: float = 0.2
    observe_fraction: float = 0.5


# The official recipes (notes/official-code.md): GLUE launch_earlybert_glue.sh (search lr 2e-5 in a
# 3-epoch schedule stopped after one epoch; ticket 4e-5, 2 epochs) and the repository's own
# trainer's defaults (no warm-up, no weight decay, eps 1e-8); SQuAD launch_earlybert_squad.sh
# (search 3e-5 in its 2-epoch schedule; ticket 3e-5, 3 epochs, no warm-up). Both rank raw c.
OFFICIAL = {"search_warmup": 0.0, "weight_decay": 0.0, "adam_eps": 1e-8, "rank": "raw"}
GLUE_RECIPE = Recipe(schedule_epochs=3.0, **OFFICIAL)
SQUAD_RECIPE = Recipe(search_lr=3e-5, schedule_epochs=2.0, ticket_lr=3e-5, ticket_epochs=3.0, **OFFICIAL)
# what the study ran before it followed the official code (kept as a sensitivity row)
EARLIER_GLUE_RECIPE = Recipe()
EARLIER_SQUAD_RECIPE = Recipe(search_lr=None, ticket_lr=None, ticket_epochs=None, ticket_warmup=0.1)


RECIPES = {"recipe": GLUE_RECIPE, "pretrain_recipe": PretrainRecipe()}  # the notebooks' override parameters


def recipe(base, overrides: dict | None):
    """`base` with a notebook's overrides (repro.checks checks each value by its rule first); an
    unknown name is one clear error listing the fields; draw_every is a fraction of the search."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"expected a dict of recipe fields, e.g. {{'epsilon': 0.05}}, got {overrides!r}")
    names = {f.name for f in fields(base)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"unknown recipe field(s) {bad}: valid fields are {', '.join(sorted(names))}")
    for key, value in overrides.items():
        if key == "draw_every" and not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise ValueError(f"draw_every (a fraction of the search between draws) must be in (0, 1], got {value!r}")
    return replace(base, **overrides)


def nominal_cost(R: Search) -> float:
    """A ticket's cost per step relative to the dense model's, for plan estimates only: the share
    of a block's weight multiply-adds (flops.matmul_cost, BERT's 4x FFN) it keeps. The measured
    ratio is the ticket's record."""
    return matmul_cost(1, 1, 4 * (1 - R.ffn_ratio), heads_kept=1 - R.head_ratio) / matmul_cost(1, 1, 4)


# ----------------------------------------------------------------------------- fine-tuning targets

@dataclass(frozen=True)
class Setting:
    """Where a fine-tuning comparison runs: a GLUE task or "SQuAD", with the profile's sizes."""
    task: str
    P: Profile
    data_dir: str | None = None

    @property
    def squad(self) -> bool:
        return self.task == SQUAD

    @property
    def metric(self) -> str:
        return "f1" if self.squad else main_metric(self.task)

    @property
    def notebook(self) -> str:  # the notebook its search and tickets belong to, whoever asks
        return "earlybert_squad" if self.squad else "earlybert_glue"

    @property
    def seq_len(self) -> int:
        return self.P.squad_seq_len if self.squad else self.P.finetune_seq_len

    def config(self) -> dict:
        """What decides the data, the model and the dense run (besides the seed). Its "kind"
        ("glue", "squad") overrides the "kind" the search, ticket and timing units put before it:
        a slip kept because mending it would re-key every recorded EarlyBERT unit. Their method and
        their "search" key tell them from the dense run (study.LENGTH_KEYS)."""
        if not self.squad:  # as glue_unit records it (finetune_glue's default batching)
            return glue_config(self.task, self.P, group_by_length=True)
        P = self.P
        return {"kind": "squad", "checkpoint": P.checkpoint, "seq_len": P.squad_seq_len, "stride": P.squad_stride,
                "batch": P.finetune_batch, "lr": P.squad_lr or P.finetune_lr, "epochs": P.squad_epochs,
                "train_questions": P.squad_train_questions, "eval_questions": P.squad_eval_questions,
                "group_by_length": True, "split": SQUAD_SPLIT}

    def data(self, tokenizer, seed: int, eval_limit: int | None = None):
        if self.squad:
            return squad_data(self.P, tokenizer, self.data_dir, seed, eval_limit=eval_limit,
                              eval_fraction=SQUAD_SPLIT["eval_fraction"], split_seed=SQUAD_SPLIT["seed"])
        train_ex, dev, collate = glue_data(self.task, self.P, tokenizer, self.data_dir, seed)
        return train_ex, dev[:eval_limit] if eval_limit else dev, collate

    def model(self, seed: int, **kw) -> Bert:
        if self.squad:
            return squad_model(self.P.checkpoint, seed=seed, **kw)
        return glue_model(self.P.checkpoint, self.task, seed=seed, pooling=self.config()["pooling"], **kw)

    def finetune(self, model, seed: int, data, tokenizer, **kw) -> dict:
        if self.squad:
            return finetune_squad(model, self.P, seed, tokenizer=tokenizer, data=data, progress=False, **kw)
        return finetune_glue(model, self.task, self.P, seed, tokenizer=tokenizer, data=data, progress=False, **kw)

    def evaluate(self, model, data) -> dict:
        """The dev metrics of `model` as it stands (the training loop's own evaluation)."""
        from .tasks import glue_eval_fn, squad_eval_fn
        _, dev, collate = data
        fn = squad_eval_fn(dev, collate) if self.squad else glue_eval_fn(self.task, dev, collate)
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model)
        finally:
            model.train(was)

    def flops_per_step(self, config) -> float:
        return flops_per_step(config, self.seq_len, self.P.finetune_batch)

    def dense_steps(self) -> int:
        """The dense run's steps, counted without tokenising (plan estimates only): SQuAD counts
        questions, a few % fewer than its windows (a long context gives more than one)."""
        from .data import load_glue
        from .squad import load_squad, squad_article_split, squad_examples
        from .tasks import glue_task
        if self.squad:
            train_json, _ = squad_article_split(load_squad(data_dir=self.data_dir),
                                                eval_fraction=SQUAD_SPLIT["eval_fraction"], seed=SQUAD_SPLIT["seed"])
            n = len(squad_examples(train_json))
            n = min(n, self.P.squad_train_questions or n)
        else:
            n = len(load_glue(self.task, "train", data_dir=self.data_dir, limit=self.P.max_train(glue_task(self.task).name)))
        return steps_for(n, self.P.finetune_batch, self.config()["epochs"])

    def like_dense(self, epochs: float | None, cost: float = 1.0) -> tuple:
        """Study.unit's `like`: the plan estimates a unit waiting for the search (or SQuAD's gate)
        as the dense run x its epochs over the dense run's x `cost` per step."""
        dense = self.config()["epochs"]
        return (self.notebook if self.squad else DENSE_NOTEBOOK, "dense", self.task, (epochs or dense) / dense * cost)
