"""SQuAD v1.1: the official json from a local file or the hub, split by article, flattened to one
example per question, tokenised into overlapping windows (training targets, evaluation offsets),
and the windows' logits turned back into answer texts.

`repro.data` re-exports the names `repro.tasks` reads through it (`data.load_squad`, ...).
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import torch

from .sources import _load_or_hub, find_data_dir


def _squad_from_hub(split: str) -> dict:
    """rajpurkar/squad (one row per question) back into the official nested json."""
    import datasets

    ds = datasets.load_dataset("rajpurkar/squad", split="validation" if split == "dev" else "train")
    articles: dict[str, dict] = {}  # title -> {context -> paragraph}, insertion-ordered
    for row in ds:
        paras = articles.setdefault(row["title"], {})
        para = paras.setdefault(row["context"], {"context": row["context"], "qas": []})
        answers = [{"text": t, "answer_start": s}
                   for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"])]
        para["qas"].append({"id": row["id"], "question": row["question"], "answers": answers})
    return {"version": "1.1", "data": [{"title": t, "paragraphs": list(p.values())}
                                       for t, p in articles.items()]}


def load_squad(data_dir=None, source: str = "auto", split: str = "dev") -> dict:
    """SQuAD v1.1 as the official json dict ({"version", "data": [articles]})."""
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev', not {split!r}")
    kind, got = _load_or_hub(lambda: find_data_dir(data_dir) / "squad" / f"{split}-v1.1.json",
                             lambda: _squad_from_hub(split), source, f"SQuAD v1.1 {split}")
    if kind != "local":
        return got
    try:
        squad = json.loads(got.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{got} is not valid JSON ({e}); a truncated download? Replace it with "
                         "the official dev-v1.1.json (md5 3e85deb501d4e538b6bc56f786231552)") from None
    if not isinstance(squad, dict) or not isinstance(squad.get("data"), list):
        raise ValueError(f"{got} is not SQuAD v1.1: expected {{\"data\": [articles]}}")
    return squad


def squad_article_split(squad_json: dict, eval_fraction: float = 0.5, seed: int = 0) -> tuple[dict, dict]:
    """Split by article, never by question: questions on one paragraph share its text, so a
    question split would leak answers between train and eval. Deterministic in seed; each part
    keeps the original article order. Articles are shared (not copied) with the input."""
    data = squad_json["data"]
    if not 0 < eval_fraction < 1 or len(data) < 2:
        raise ValueError("need 0 < eval_fraction < 1 and at least 2 articles")
    n_eval = min(max(round(len(data) * eval_fraction), 1), len(data) - 1)
    eval_idx = set(np.random.default_rng(seed).permutation(len(data))[:n_eval].tolist())
    version = squad_json.get("version", "1.1")
    train = [a for i, a in enumerate(data) if i not in eval_idx]
    evals = [a for i, a in enumerate(data) if i in eval_idx]
    return {"version": version, "data": train}, {"version": version, "data": evals}


def squad_examples(squad_json: dict) -> list[dict]:
    """Flatten to one dict per question: id, question, context, answers={"text": [...], "answer_start": [...]}."""
    return [{"id": qa["id"], "question": qa["question"], "context": para["context"],
             "answers": {"text": [a["text"] for a in qa["answers"]],
                         "answer_start": [a["answer_start"] for a in qa["answers"]]}}
            for article in squad_json["data"] for para in article["paragraphs"] for qa in para["qas"]]


def _tokenize_squad(examples, tokenizer, max_len, stride):
    # question first, only the context is truncated, into windows overlapping by `stride` tokens;
    # leading spaces in questions waste window room (the run_qa recipe strips them too)
    return tokenizer([ex["question"].lstrip() for ex in examples], [ex["context"] for ex in examples],
                     truncation="only_second", max_length=max_len, stride=stride,
                     return_overflowing_tokens=True, return_offsets_mapping=True,
                     return_token_type_ids=True, return_attention_mask=False)


def encode_squad_train(examples: list[dict], tokenizer, max_len: int = 384, stride: int = 128) -> list[dict]:
    """Training features, one per window; the target is the first answer's token span, or (0, 0)
    ([CLS]) when that answer is not wholly inside the window (Hugging Face's run_qa recipe)."""
    enc = _tokenize_squad(examples, tokenizer, max_len, stride)
    feats = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = examples[enc["overflow_to_sample_mapping"][i]]
        seq = enc.sequence_ids(i)
        ctx_start = seq.index(1)
        ctx_end = len(seq) - 1 - seq[::-1].index(1)
        start = end = 0
        if ex["answers"]["text"]:
            start_char = ex["answers"]["answer_start"][0]
            end_char = start_char + len(ex["answers"]["text"][0])
            if offsets[ctx_start][0] <= start_char and offsets[ctx_end][1] >= end_char:
                # bounded by the context (run_qa's loop can walk onto [SEP] when the answer starts
                # at the window's last token)
                s = ctx_start
                while s <= ctx_end and offsets[s][0] <= start_char:
                    s += 1
                e = ctx_end
                while e >= ctx_start and offsets[e][1] >= end_char:
                    e -= 1
                start, end = s - 1, e + 1
        feats.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                      "start_positions": start, "end_positions": end})
    return feats


def encode_squad_eval(examples: list[dict], tokenizer, max_len: int = 384, stride: int = 128) -> list[dict]:
    """Evaluation features: windows plus the example id and character offsets (None outside the
    context, so that a predicted span can only come from the context)."""
    enc = _tokenize_squad(examples, tokenizer, max_len, stride)
    feats = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        seq = enc.sequence_ids(i)
        feats.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                      "example_id": examples[enc["overflow_to_sample_mapping"][i]]["id"],
                      "offset_mapping": [tuple(o) if s == 1 else None for o, s in zip(offsets, seq)]})
    return feats


def _rows(x):
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return x


def squad_predictions(examples: list[dict], features: list[dict], start_logits, end_logits,
                      n_best: int = 20, max_answer_len: int = 30) -> dict[str, str]:
    """Best answer text per example: over all its windows, the n_best top start and end tokens,
    keeping start <= end, at most max_answer_len tokens, both inside the context; score = sum of
    logits. Logits: one row per feature (a padded 2-D array/tensor or a list of 1-D rows)."""
    start_logits, end_logits = _rows(start_logits), _rows(end_logits)
    by_example = defaultdict(list)
    for fi, f in enumerate(features):
        by_example[f["example_id"]].append(fi)
    preds = {}
    for ex in examples:
        best, best_score = "", -np.inf
        for fi in by_example[ex["id"]]:
            offsets = features[fi]["offset_mapping"]
            sl = np.asarray(start_logits[fi], dtype=np.float64)[: len(offsets)]
            el = np.asarray(end_logits[fi], dtype=np.float64)[: len(offsets)]
            for s in np.argsort(sl)[::-1][:n_best]:
                for e in np.argsort(el)[::-1][:n_best]:
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_len:
                        continue
                    if sl[s] + el[e] > best_score:
                        best_score = sl[s] + el[e]
                        best = ex["context"][offsets[s][0]: offsets[e][1]]
        preds[ex["id"]] = best
    return preds
