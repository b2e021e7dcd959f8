"""The study's recurring experiments, so notebooks hold only parameters, calls and plots.

- `finetune_glue`: fine-tune a model on a GLUE task and evaluate on its dev split.
- `finetune_squad`: the same for SQuAD v1.1 (EM/F1 from the official normalisation).
- `pretrain_mlm`: masked-LM pre-training on the text corpus, validation loss as it goes.

Each returns a plain dict (metrics, the TrainResult, the trained model) and takes `hooks` so PLD
and EarlyBERT plug in unchanged. Sizes come from a `Profile`; any of them can be overridden.

Same seed, same numbers: the model builders (`glue_model`, `squad_model`, `scratch_model`) draw
every random weight (fresh task heads included) from a stream keyed by (seed, INIT_STREAM), and
the training functions run with the global RNG (dropout) keyed by (seed, DROPOUT_STREAM), both
through `repro.runtime.keyed_seed` like the loop's data order and masks. Neither reads nor changes
the caller's global RNG state.
"""
from __future__ import annotations

import contextlib
import math

import torch

from . import data as D
from .evaluation import mlm_loss, predict
from .metrics import glue_metrics, glue_task_name, squad_scores
from .model import Bert
from .profiles import Profile
from .runtime import keyed_seed, pick_device
from .train import TrainConfig, train

# Tags of the study's random streams in keyed_seed(seed, tag, ...): 1-3 are the training loop's
# (collation, prediction, MLM evaluation), 4 is PLD's gates (pld._PLD_STREAM).
INIT_STREAM = 5  # model construction: random weights and fresh task heads
DROPOUT_STREAM = 6  # the global torch RNG while training (dropout, SDPA's attention dropout)


@contextlib.contextmanager
def seeded_init(seed: int):
    """Inside, the global CPU RNG is keyed by (seed, INIT_STREAM); afterwards it is as before.
    Models are built on the CPU, so this fixes every initial weight they draw."""
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(keyed_seed(seed, INIT_STREAM))
        yield


@contextlib.contextmanager
def seeded_training(seed: int, device: str = "auto"):
    """Inside, the global RNG (CPU and the training device) is keyed by (seed, DROPOUT_STREAM):
    dropout masks depend on the run's seed, not on whatever ran before; restored afterwards."""
    seed = check_seed(seed)
    dev = pick_device(device)
    devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(keyed_seed(seed, DROPOUT_STREAM))
        yield


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return seed


def _positive(name: str, value, profile_field: str | None = None, integer: bool = False):
    """`value` if it is a number > 0 (an int >= 1 when `integer`), else a ValueError saying so."""
    ok = (not isinstance(value, bool) and isinstance(value, int) and value >= 1) if integer else \
        (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0)
    if not ok:
        where = f" (the profile's {profile_field})" if profile_field else ""
        need = "an integer >= 1" if integer else "a number > 0"
        raise ValueError(f"{name} must be {need}, got {value!r}{where}. A model with no training "
                         "is not a result of this study; pass a positive value or leave it None "
                         "for the profile's")
    return value


def train_config(P: Profile, *, steps: int, seed: int, lr: float, batch: int, **kw) -> TrainConfig:
    """One run's TrainConfig; the profile's step cap (`clip`) applies here, to every run."""
    if P.max_steps is not None:
        steps = min(steps, P.max_steps)
    return TrainConfig(max_steps=steps, batch_size=batch, lr=lr, seed=seed, device=P.device, **kw)


def steps_for(n_examples: int, batch: int, epochs: float) -> int:
    _positive("epochs", epochs)
    return max(1, math.ceil(n_examples / batch * epochs))


def _budget(P: Profile, n_examples: int, *, steps, epochs, lr, default_lr: float, default_lr_field: str):
    """(steps, lr) of a fine-tuning run: explicit values are checked (None means the profile's;
    0 is refused, never silently replaced by the profile's value)."""
    if steps is not None:
        _positive("steps", steps, integer=True)
    else:
        ep = epochs if epochs is not None else P.finetune_epochs
        steps = steps_for(n_examples, P.finetune_batch,
                          _positive("epochs", ep, None if epochs is not None else "finetune_epochs"))
    lr = _positive("lr", lr if lr is not None else default_lr, None if lr is not None else default_lr_field)
    return steps, lr


# -- GLUE ----------------------------------------------------------------------------------
def glue_task(name: str) -> D.GlueTask:
    """The task's facts (labels, regression or not); a typo gets the list and a suggestion.
    Hugging Face's config names (sst2, stsb, ...) name the same tasks."""
    return D.GLUE_TASKS[glue_task_name(name)]


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
                  hooks=(), data_dir=None, group_by_length: bool = True, **train_kw) -> dict:
    """Fine-tune `model` (with a "cls" head sized for the task) and evaluate on dev.

    `data`: (train, dev, collate) from glue_data, to share encoding between runs.
    `group_by_length`: batches of similar lengths (the study's default: less padding, same
    metrics within seed noise); False for uniformly random batches.
    """
    check_seed(seed)
    task = glue_task(task).name
    train_ex, dev_ex, collate = data or glue_data(task, P, tokenizer, data_dir, seed)
    steps, lr = _budget(P, len(train_ex), steps=steps, epochs=epochs, lr=lr, default_lr=P.finetune_lr,
                        default_lr_field="finetune_lr")
    cfg = train_config(P, steps=steps, seed=seed, lr=lr, batch=P.finetune_batch, group_by_length=group_by_length,
                       **train_kw)
    with seeded_training(seed, cfg.device):
        result = train(model, train_ex, collate, cfg, eval_fn=glue_eval_fn(task, dev_ex, collate), hooks=hooks)
    return {"metrics": result.final_eval, "result": result, "model": model,
            "n_train": len(train_ex), "n_eval": len(dev_ex)}


def glue_model(checkpoint: str, task: str, *, seed: int, **kw) -> Bert:
    """A pretrained encoder with a fresh classification (or regression) head for `task`, drawn
    from `seed` (the run's seed: same seed, same head, whatever ran before). `pooling=`
    overrides the checkpoint's own (model.checkpoint_pooling)."""
    info = glue_task(task)
    D.check_checkpoint(checkpoint, tokenizer=False)
    with seeded_init(seed):
        return Bert.from_pretrained(checkpoint, head="cls", num_labels=1 if info.is_regression else info.num_labels,
                                    **kw)


def squad_model(checkpoint: str, *, seed: int, **kw) -> Bert:
    """A pretrained encoder with a fresh span-extraction head, drawn from `seed`."""
    D.check_checkpoint(checkpoint, tokenizer=False)
    with seeded_init(seed):
        return Bert.from_pretrained(checkpoint, head="qa", **kw)


# -- SQuAD v1.1 ----------------------------------------------------------------------------
def squad_data(P: Profile, tokenizer, data_dir=None, seed: int = 0, eval_limit: int | None = None,
               eval_fraction: float = 0.5, split_seed: int = 0):
    """(training windows, (eval questions, eval windows, eval json), collator) for SQuAD v1.1.

    Only dev-v1.1.json is available offline, so it is split by article (never by question: the
    questions on one paragraph share its text) into a training and an evaluation part
    (`eval_fraction` of the articles, drawn with `split_seed`: the same split for every run, so
    runs compare on the same questions). Windows of P.squad_seq_len tokens overlapping by
    P.squad_stride; at most P.squad_train_questions training questions (drawn with `seed`) and
    P.squad_eval_questions evaluation questions (the first), or `eval_limit`."""
    full = D.load_squad(data_dir=data_dir)
    train_json, eval_json = D.squad_article_split(full, eval_fraction=eval_fraction, seed=split_seed)
    train_q = D.squad_examples(train_json)
    eval_q = D.squad_examples(eval_json)
    if P.squad_train_questions:
        g = torch.Generator().manual_seed(seed)
        train_q = [train_q[i] for i in torch.randperm(len(train_q), generator=g)[:P.squad_train_questions].tolist()]
    limit = min(n for n in (P.squad_eval_questions, eval_limit, len(eval_q)) if n)
    if limit < len(eval_q):
        eval_q = eval_q[:limit]
        eval_json = _filter_squad(eval_json, {q["id"] for q in eval_q})
    train_f = D.encode_squad_train(train_q, tokenizer, P.squad_seq_len, P.squad_stride)
    eval_f = D.encode_squad_eval(eval_q, tokenizer, P.squad_seq_len, P.squad_stride)
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
                   group_by_length: bool = True, **train_kw) -> dict:
    """Fine-tune `model` (head="qa") on SQuAD windows and score the evaluation questions (EM/F1).
    Defaults: the profile's squad_epochs and squad_lr (else finetune_lr)."""
    check_seed(seed)
    train_f, eval_part, collate = data or squad_data(P, tokenizer, data_dir, seed=seed)
    steps, lr = _budget(P, len(train_f), steps=steps, epochs=P.squad_epochs if epochs is None else epochs, lr=lr,
                        default_lr=P.squad_lr or P.finetune_lr,
                        default_lr_field="squad_lr" if P.squad_lr else "finetune_lr")
    cfg = train_config(P, steps=steps, seed=seed, lr=lr, batch=P.finetune_batch, group_by_length=group_by_length,
                       **train_kw)
    with seeded_training(seed, cfg.device):
        result = train(model, train_f, collate, cfg, eval_fn=squad_eval_fn(eval_part, collate), hooks=hooks)
    return {"metrics": result.final_eval, "result": result, "model": model,
            "n_train": len(train_f), "n_eval": len(eval_part[0])}


# -- MLM pre-training ----------------------------------------------------------------------
def corpus_data(P: Profile, tokenizer, data_dir=None, max_chars: int | None = None,
                valid_chars: int | None = 2_000_000):
    """Encoded corpus blocks (train, valid) of the profile's seq_len, and an MLM collator."""
    if P.max_corpus_chars:  # clip: only what its few steps read
        max_chars, valid_chars = (min(c or P.max_corpus_chars, P.max_corpus_chars) for c in (max_chars, valid_chars))
    train_ex = D.encode_corpus(D.load_corpus("train", data_dir=data_dir, max_chars=max_chars),
                               tokenizer, P.seq_len)
    valid_ex = D.encode_corpus(D.load_corpus("valid", data_dir=data_dir, max_chars=valid_chars),
                               tokenizer, P.seq_len)
    return train_ex, valid_ex, D.Collator.for_tokenizer(tokenizer, mlm=True)


def scratch_model(P: Profile, tokenizer, ln: str = "pre", head: str | None = "mlm", *, seed: int, **kw) -> Bert:
    """A randomly initialised BERT of the profile's size, its weights drawn from `seed` (PostLN
    and PreLN models of one seed start from the same weights)."""
    with seeded_init(seed):
        return Bert.from_config(layers=P.layers, hidden=P.hidden, heads=P.heads, intermediate=P.intermediate,
                                vocab_size=len(tokenizer), max_position=max(512, P.seq_len), ln=ln,
                                head=head, **kw).to(pick_device(P.device))  # measured where it trains


def pretrain_mlm(model: Bert, P: Profile, seed: int, *, data, steps: int | None = None,
                 lr: float | None = None, hooks=(), eval_every: int | None = None,
                 valid_examples: int = 256, **train_kw) -> dict:
    """MLM pre-training; `data` = corpus_data(...). Validation loss every `eval_every` steps."""
    check_seed(seed)
    train_ex, valid_ex, collate = data
    valid = valid_ex[:min(valid_examples, P.max_valid_blocks or valid_examples)]
    train_kw.setdefault("grad_accum", P.grad_accum)  # the profile's accumulation is pre-training's
    steps = _positive("steps", steps if steps is not None else P.pretrain_steps,
                      None if steps is not None else "pretrain_steps", integer=True)
    lr = _positive("lr", lr if lr is not None else P.pretrain_lr, None if lr is not None else "pretrain_lr")
    cfg = train_config(P, steps=steps, seed=seed, lr=lr,
                       batch=P.pretrain_batch, eval_every=P.eval_every if eval_every is None else eval_every,
                       **train_kw)
    with seeded_training(seed, cfg.device):
        result = train(model, train_ex, collate, cfg,
                       eval_fn=lambda m: {"val_loss": mlm_loss(m, valid, collate)}, hooks=hooks)
    return {"metrics": result.final_eval, "result": result, "model": model}

