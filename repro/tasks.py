"""The study's recurring experiments, so notebooks hold only parameters, calls and plots.

- `finetune_glue`: fine-tune a model on a GLUE task and evaluate on its dev split.
- `finetune_squad`: the same for SQuAD v1.1 (EM/F1 from the official normalisation).
- `pretrain_mlm`: masked-LM pre-training on the text corpus, validation loss as it goes.

Each returns a plain dict (metrics, the TrainResult, the trained model) and takes `hooks` so PLD
and EarlyBERT plug in unchanged. Sizes come from a `Profile`; any of them can be overridden.
"""
from __future__ import annotations

import contextlib
import math

import torch

from . import data as D
from .metrics import glue_metrics, resolve_name, squad_scores
from .model import Bert
from .profiles import Profile
from .train import TrainConfig, keyed_seed, mlm_loss, predict, train


def train_config(P: Profile, *, steps: int, seed: int, lr: float, batch: int, **kw) -> TrainConfig:
    return TrainConfig(max_steps=steps, batch_size=batch, lr=lr, seed=seed, device=P.device,
                       grad_accum=kw.pop("grad_accum", P.grad_accum), **kw)


def steps_for(n_examples: int, batch: int, epochs: float) -> int:
    return max(1, math.ceil(n_examples / batch * epochs))


# -- GLUE ----------------------------------------------------------------------------------
def glue_task(name: str) -> D.GlueTask:
    """The task's facts (labels, regression or not); a typo gets the list and a suggestion."""
    return D.GLUE_TASKS[resolve_name(name, D.GLUE_TASKS, "GLUE task")]


def glue_data(task: str, P: Profile, tokenizer, data_dir=None, seed: int = 0):
    """Encoded (train, dev) examples and the collator; subsets as the profile says (seeded)."""
    train_ex = D.load_glue(task, "train", data_dir=data_dir, limit=P.max_train(glue_task(task).name), seed=seed)
    dev_ex = D.load_glue(task, "dev", data_dir=data_dir, limit=P.max_eval_examples, seed=0)
    enc = lambda ex: D.encode_glue(ex, tokenizer, P.finetune_seq_len)  # noqa: E731
    return enc(train_ex), enc(dev_ex), D.Collator.for_tokenizer(tokenizer)


def glue_eval_fn(task: str, dev, collate, batch_size: int = 64):
    info = glue_task(task)
    labels = [e["label"] for e in dev]

    def eval_fn(model) -> dict:
        logits = torch.cat(predict(model, dev, collate, batch_size)["logits"])
        preds = logits.squeeze(-1) if info.is_regression else logits.argmax(-1)
        return glue_metrics(task, preds.tolist(), labels)
    return eval_fn


def finetune_glue(model: Bert, task: str, P: Profile, seed: int, *, tokenizer, data=None,
                  lr: float | None = None, epochs: float | None = None, steps: int | None = None,
                  hooks=(), data_dir=None, **train_kw) -> dict:
    """Fine-tune `model` (with a "cls" head sized for the task) and evaluate on dev.

    `data`: (train, dev, collate) from glue_data, to share encoding between runs.
    """
    train_ex, dev_ex, collate = data or glue_data(task, P, tokenizer, data_dir, seed)
    batch = P.finetune_batch
    steps = steps or steps_for(len(train_ex), batch, epochs or P.finetune_epochs)
    cfg = train_config(P, steps=steps, seed=seed, lr=lr or P.finetune_lr, batch=batch, **train_kw)
    result = train(model, train_ex, collate, cfg, eval_fn=glue_eval_fn(task, dev_ex, collate), hooks=hooks)
    return {"metrics": result.final_eval, "result": result, "model": model,
            "n_train": len(train_ex), "n_eval": len(dev_ex)}


_INIT_STREAM = 5  # tag of model initialisation in train.keyed_seed (1-3: train.py, 4: PLD)


@contextlib.contextmanager
def seeded_init(seed: int | None):
    """Random initialisation (fresh task heads, scratch models) drawn from the run's seed through
    the loop's keyed seeds, whatever the process's global RNG state; the global state is
    restored afterwards. seed=None: the global generator as it is (the caller seeded it)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(keyed_seed(seed, _INIT_STREAM))
        yield


def glue_model(checkpoint: str, task: str, seed: int | None = None, **kw) -> Bert:
    """A pretrained encoder with a fresh classification (or regression) head for `task`, the
    head initialised from `seed` (the same seed gives the same head in every process).
    `pooling=` overrides the checkpoint's own (model.checkpoint_pooling)."""
    info = glue_task(task)
    with seeded_init(seed):
        return Bert.from_pretrained(checkpoint, head="cls", num_labels=1 if info.is_regression else info.num_labels, **kw)


# -- SQuAD v1.1 ----------------------------------------------------------------------------
def squad_data(P: Profile, tokenizer, data_dir=None, seq_len: int = 384, stride: int = 128,
               eval_fraction: float = 0.5, seed: int = 0):
    """Train/eval parts of SQuAD. Here only dev-v1.1.json exists, so it is split by article."""
    full = D.load_squad(data_dir=data_dir)
    train_json, eval_json = D.squad_article_split(full, eval_fraction=eval_fraction, seed=0)
    train_q = D.squad_examples(train_json)
    eval_q = D.squad_examples(eval_json)
    if P.max_train_examples:
        g = torch.Generator().manual_seed(seed)
        train_q = [train_q[i] for i in torch.randperm(len(train_q), generator=g)[:P.max_train_examples].tolist()]
    if P.max_eval_examples:
        eval_q = eval_q[:P.max_eval_examples]
        keep = {q["id"] for q in eval_q}
        eval_json = _filter_squad(eval_json, keep)
    train_f = D.encode_squad_train(train_q, tokenizer, seq_len, stride)
    eval_f = D.encode_squad_eval(eval_q, tokenizer, seq_len, stride)
    return train_f, (eval_q, eval_f, eval_json), D.Collator.for_tokenizer(tokenizer)


def _filter_squad(squad_json: dict, keep: set) -> dict:
    data = []
    for art in squad_json["data"]:
        paras = [{**p, "qas": [q for q in p["qas"] if q["id"] in keep]} for p in art["paragraphs"]]
        paras = [p for p in paras if p["qas"]]
        if paras:
            data.append({**art, "paragraphs": paras})
    return {**squad_json, "data": data}


def squad_eval_fn(eval_part, collate, batch_size: int = 32):
    questions, features, squad_json = eval_part

    def eval_fn(model) -> dict:
        out = predict(model, features, collate, batch_size, keys=("start_logits", "end_logits"))
        starts = [row for t in out["start_logits"] for row in t]
        ends = [row for t in out["end_logits"] for row in t]
        preds = D.squad_predictions(questions, features, starts, ends)
        return squad_scores(preds, squad_json)
    return eval_fn


def finetune_squad(model: Bert, P: Profile, seed: int, *, tokenizer, data=None, lr: float | None = None,
                   epochs: float | None = None, steps: int | None = None, hooks=(), data_dir=None,
                   **train_kw) -> dict:
    train_f, eval_part, collate = data or squad_data(P, tokenizer, data_dir, seed=seed)
    batch = P.finetune_batch
    steps = steps or steps_for(len(train_f), batch, epochs or P.finetune_epochs)
    cfg = train_config(P, steps=steps, seed=seed, lr=lr or P.finetune_lr, batch=batch, **train_kw)
    result = train(model, train_f, collate, cfg, eval_fn=squad_eval_fn(eval_part, collate), hooks=hooks)
    return {"metrics": result.final_eval, "result": result, "model": model,
            "n_train": len(train_f), "n_eval": len(eval_part[0])}


# -- MLM pre-training ----------------------------------------------------------------------
def corpus_data(P: Profile, tokenizer, data_dir=None, max_chars: int | None = None,
                valid_chars: int | None = 2_000_000):
    """Encoded corpus blocks (train, valid) of the profile's seq_len, and an MLM collator."""
    train_ex = D.encode_corpus(D.load_corpus("train", data_dir=data_dir, max_chars=max_chars),
                               tokenizer, P.seq_len)
    valid_ex = D.encode_corpus(D.load_corpus("valid", data_dir=data_dir, max_chars=valid_chars),
                               tokenizer, P.seq_len)
    return train_ex, valid_ex, D.Collator.for_tokenizer(tokenizer, mlm=True)


def scratch_model(P: Profile, tokenizer, ln: str = "pre", head: str | None = "mlm", seed: int | None = None,
                  **kw) -> Bert:
    """A randomly initialised BERT of the profile's size, initialised from `seed` (see seeded_init)."""
    with seeded_init(seed):
        return Bert.from_config(layers=P.layers, hidden=P.hidden, heads=P.heads, intermediate=P.intermediate,
                                vocab_size=len(tokenizer), max_position=max(512, P.seq_len), ln=ln,
                                head=head, **kw)


def pretrain_mlm(model: Bert, P: Profile, seed: int, *, data, steps: int | None = None,
                 lr: float | None = None, hooks=(), eval_every: int | None = None,
                 valid_examples: int = 256, **train_kw) -> dict:
    """MLM pre-training; `data` = corpus_data(...). Validation loss every `eval_every` steps."""
    train_ex, valid_ex, collate = data
    valid = valid_ex[:valid_examples]
    cfg = train_config(P, steps=steps or P.pretrain_steps, seed=seed, lr=lr or P.pretrain_lr,
                       batch=P.pretrain_batch, eval_every=P.eval_every if eval_every is None else eval_every,
                       **train_kw)
    result = train(model, train_ex, collate, cfg,
                   eval_fn=lambda m: {"val_loss": mlm_loss(m, valid, collate)}, hooks=hooks)
    return {"metrics": result.final_eval, "result": result, "model": model}

