"""Evaluation outside the training loop: a model's outputs over examples in order (`predict`), the
masked-LM loss on fixed masks (`mlm_loss`), and the unigram plateau (`unigram_mlm_loss`): the
loss of predicting token frequencies, on the very masks `mlm_loss` scores.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .runtime import _generator


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
