"""Data: GLUE and an MLM corpus, from local files or the Hugging Face hub; tokenisation; padding and
BERT's MLM masking. SQuAD v1.1 is `repro.squad`; where the files are (the data folder, the
local-or-hub policy) and the checkpoint's tokenizer are `repro.sources`.

Local files live in a data folder (see sources.find_data_dir) laid out as
    glue/<TASK>/{train,dev}.tsv    the official GLUE TSVs (MNLI: dev_matched.tsv, dev_mismatched.tsv)
    squad/dev-v1.1.json            the official SQuAD v1.1 json (train-v1.1.json if you have it)
    corpus/gutenberg_en_{train,valid}.txt
With hub access the same loaders take nyu-mll/glue and rajpurkar/squad instead (source="hub"), or
as a fallback when a local file is missing (source="auto").
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .metrics import glue_task_name
from .sources import _HOW_TO, DataNotFoundError, _load_or_hub, find_data_dir
# repro.tasks reads these through this module (`D.load_squad`, `D.check_checkpoint`): its recorded
# functions name them so, and their fingerprints keep the names
from .sources import check_checkpoint  # noqa: F401
from .squad import (encode_squad_eval, encode_squad_train, load_squad, squad_article_split,  # noqa: F401
                    squad_examples, squad_predictions)


# ---- GLUE ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GlueTask:
    name: str
    num_labels: int  # 1 for the regression task STS-B
    is_regression: bool
    text_a: str  # column names in the hub copy (nyu-mll/glue)
    text_b: str | None
    hub_config: str
    # The official TSV: columns (text_a, text_b, label) by header name, or by index when no header.
    tsv_columns: tuple = ()
    header: bool = True
    # Label ids follow GLUE / Hugging Face (nyu-mll/glue ClassLabel order): string labels in a TSV
    # map to their index here, e.g. RTE/QNLI entailment=0, not_entailment=1.
    label_names: tuple = ()
    folder: str = ""  # glue/<folder>; defaults to name
    dev_file: str = "dev.tsv"
    hub_dev_split: str = "validation"


GLUE_TASKS: dict[str, GlueTask] = {t.name: t for t in [
    # CoLA: no header; columns source, label, original label (empty), sentence
    GlueTask("CoLA", 2, False, "sentence", None, "cola", (3, None, 1), header=False,
             label_names=("unacceptable", "acceptable")),
    GlueTask("SST-2", 2, False, "sentence", None, "sst2", ("sentence", None, "label"),
             label_names=("negative", "positive")),
    GlueTask("MRPC", 2, False, "sentence1", "sentence2", "mrpc", ("#1 String", "#2 String", "Quality"),
             label_names=("not_equivalent", "equivalent")),
    GlueTask("RTE", 2, False, "sentence1", "sentence2", "rte", ("sentence1", "sentence2", "label"),
             label_names=("entailment", "not_entailment")),
    GlueTask("STS-B", 1, True, "sentence1", "sentence2", "stsb", ("sentence1", "sentence2", "score")),
    GlueTask("WNLI", 2, False, "sentence1", "sentence2", "wnli", ("sentence1", "sentence2", "label"),
             label_names=("not_entailment", "entailment")),
    GlueTask("QNLI", 2, False, "question", "sentence", "qnli", ("question", "sentence", "label"),
             label_names=("entailment", "not_entailment")),
    GlueTask("QQP", 2, False, "question1", "question2", "qqp", ("question1", "question2", "is_duplicate"),
             label_names=("not_duplicate", "duplicate")),
    GlueTask("MNLI", 3, False, "premise", "hypothesis", "mnli", ("sentence1", "sentence2", "gold_label"),
             label_names=("entailment", "neutral", "contradiction"),
             dev_file="dev_matched.tsv", hub_dev_split="validation_matched"),
    # MNLI's mismatched dev set as its own task name (its train split is MNLI's)
    GlueTask("MNLI-mm", 3, False, "premise", "hypothesis", "mnli", ("sentence1", "sentence2", "gold_label"),
             label_names=("entailment", "neutral", "contradiction"), folder="MNLI",
             dev_file="dev_mismatched.tsv", hub_dev_split="validation_mismatched"),
]}


def _parse_label(task: GlueTask, raw: str, where: str):
    if task.is_regression:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{where}: score {raw!r} is not a number") from None
    if raw in task.label_names:
        return task.label_names.index(raw)
    try:
        label = int(raw)
    except ValueError:
        label = -1
    if not 0 <= label < task.num_labels:
        raise ValueError(f"{where}: label {raw!r} is not one of {list(task.label_names)} "
                         f"or 0..{task.num_labels - 1}")
    return label


def _read_glue_tsv(task: GlueTask, path: Path) -> list[dict]:
    rows = []
    # utf-8-sig drops MRPC's byte-order mark; QUOTE_NONE because GLUE text has unbalanced quotes
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if task.header:
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file")
            missing = [c for c in task.tsv_columns if c is not None and c not in header]
            if missing:
                raise ValueError(f"{path}: header {header} lacks column(s) {missing}")
            cols = [header.index(c) if c is not None else None for c in task.tsv_columns]
            width = len(header)
        else:
            cols, width = list(task.tsv_columns), 4
        ia, ib, il = cols
        for row in reader:
            if not row:  # a blank line (e.g. a trailing newline twice) carries nothing
                continue
            where = f"{path}, line {reader.line_num}"
            if len(row) != width:
                raise ValueError(f"{where}: expected {width} tab-separated fields, found {len(row)}")
            rows.append({"text_a": row[ia], "text_b": row[ib] if ib is not None else None,
                         "label": _parse_label(task, row[il], where)})
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _load_glue_hub(task: GlueTask, split: str) -> list[dict]:
    import datasets

    ds = datasets.load_dataset("nyu-mll/glue", task.hub_config,
                               split=task.hub_dev_split if split == "dev" else "train")
    a, labels = ds[task.text_a], ds["label"]
    b = ds[task.text_b] if task.text_b else [None] * len(a)
    cast = float if task.is_regression else int
    return [{"text_a": x, "text_b": y, "label": cast(l)} for x, y, l in zip(a, b, labels)]


def load_glue(task: str, split: str = "train", data_dir=None, source: str = "auto",
              limit: int | None = None, seed: int = 0) -> list[dict]:
    """One GLUE split as [{"text_a", "text_b" (None for single-sentence tasks), "label"}].

    Labels: int class ids in the GLUE/HF order of GlueTask.label_names; STS-B a float 0..5.
    limit: a seeded random subset of that size (files are often sorted, so not the head); subsets
    with the same seed are nested, and keep the file's order.
    """
    t = GLUE_TASKS[glue_task_name(task)]
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev', not {split!r}")
    fname = t.dev_file if split == "dev" else "train.tsv"
    kind, got = _load_or_hub(lambda: find_data_dir(data_dir) / "glue" / (t.folder or t.name) / fname,
                             lambda: _load_glue_hub(t, split), source, f"GLUE {t.name} {split}")
    rows = _read_glue_tsv(t, got) if kind == "local" else got
    if limit is not None and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).permutation(len(rows))[:limit])
        rows = [rows[i] for i in keep]
    return rows


# ---- GLUE tokenisation ------------------------------------------------------------------------

def encode_glue(examples: list[dict], tokenizer, max_len: int) -> list[dict]:
    """Tokenise (pairs as [CLS] a [SEP] b [SEP]), truncate to max_len; padding is the collator's job."""
    if not examples:
        return []
    a = [ex["text_a"] for ex in examples]
    b = [ex["text_b"] for ex in examples]
    n_none = sum(x is None for x in b)
    if 0 < n_none < len(b):
        raise ValueError("mixed single-sentence and pair examples")
    enc = tokenizer(a, None if n_none else b, truncation=True, max_length=max_len,
                    return_token_type_ids=True, return_attention_mask=False)
    return [{"input_ids": ids, "token_type_ids": tt, "label": ex["label"]}
            for ids, tt, ex in zip(enc["input_ids"], enc["token_type_ids"], examples)]


# ---- MLM corpus ---------------------------------------------------------------------------------

def load_corpus(split: str = "train", data_dir=None, max_chars: int | None = None, path=None) -> str:
    """The pre-training text: corpus/gutenberg_en_{train,valid}.txt, or `path` (a file or a list of
    files, joined by blank lines). max_chars reads only that many characters, cut back to a line end."""
    if path is None:
        if split not in ("train", "valid"):
            raise ValueError(f"split must be 'train' or 'valid', not {split!r}")
        paths = [find_data_dir(data_dir) / "corpus" / f"gutenberg_en_{split}.txt"]
    else:
        paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    parts, left = [], max_chars
    for p in paths:
        if not p.exists():
            raise DataNotFoundError(f"corpus file {p} does not exist. {_HOW_TO}")
        if left is not None and left <= 0:
            break
        with open(p, encoding="utf-8") as f:
            part = f.read() if left is None else f.read(left)
        if left is not None:
            left -= len(part)
            if left <= 0 and "\n" in part:  # do not end on half a word
                part = part[: part.rfind("\n")]
        parts.append(part)
    text = "\n\n".join(parts)
    if not text.strip():
        raise ValueError(f"empty corpus: {', '.join(map(str, paths))}")
    return text


def encode_corpus(text: str, tokenizer, seq_len: int, chunk_lines: int = 20_000) -> list[dict]:
    """BERT's pre-training packing without next-sentence prediction: tokenise everything, concatenate
    into one stream (crossing line, paragraph and book boundaries, as BERT's full-length sequences
    do), cut into blocks of seq_len - 2 tokens, each wrapped as [CLS] ... [SEP]; the tail that does
    not fill a block is dropped. Each block's input_ids is an int32 numpy row (a view of one array,
    so the 35 MB corpus takes ~35 MB, not ~300 MB of Python ints); the Collator takes those directly.

    Speed: the fast tokenizer in batches of lines, ~15 s for the 35 MB train corpus on 2 cores.
    Line by line gives the same tokens as the whole text (no WordPiece crosses whitespace).
    """
    if seq_len < 3:
        raise ValueError("seq_len must be at least 3 ([CLS] token [SEP])")
    lines = [line for line in text.splitlines() if line.strip()]
    chunks = []
    for i in range(0, len(lines), chunk_lines):
        ids = tokenizer(lines[i: i + chunk_lines], add_special_tokens=False, verbose=False,
                        return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        chunks.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32))
    stream = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    body = seq_len - 2
    n = len(stream) // body
    if n == 0:
        raise ValueError(f"the text has {len(stream)} tokens, fewer than one block of {seq_len}")
    blocks = np.empty((n, seq_len), dtype=np.int32)
    blocks[:, 0], blocks[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    blocks[:, 1:-1] = stream[: n * body].reshape(n, body)
    return [{"input_ids": row} for row in blocks]


# ---- collation and MLM masking ------------------------------------------------------------------

@dataclass
class Collator:
    """Pads a list of examples into a batch of tensors; with mlm=True also applies BERT's masking.

    Out: input_ids, attention_mask, token_type_ids (zeros when absent), and when present labels
    (from "label": long, or float32 for regression), start_positions, end_positions. Other keys
    (example_id, offset_mapping) stay out of the batch. max_len set: every batch is padded to exactly
    that width (fixed shapes), and a longer example is an error (truncate when encoding instead).
    """
    pad_id: int = 0
    mlm: bool = False
    mask_id: int = 103
    vocab_size: int = 30522
    mlm_prob: float = 0.15
    special_ids: tuple = (0, 101, 102)  # [PAD], [CLS], [SEP]: never chosen for masking
    max_len: int | None = None

    @classmethod
    def for_tokenizer(cls, tokenizer, mlm: bool = False, **kwargs) -> "Collator":
        special = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                   tokenizer.mask_token_id} - {None}
        return cls(pad_id=tokenizer.pad_token_id, mlm=mlm, mask_id=tokenizer.mask_token_id,
                   vocab_size=len(tokenizer), special_ids=tuple(sorted(special)), **kwargs)

    def __call__(self, examples: list[dict], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        lengths = [len(ex["input_ids"]) for ex in examples]
        width = self.max_len or max(lengths)
        if max(lengths) > width:
            raise ValueError(f"an example has {max(lengths)} tokens, more than max_len={width}")
        n = len(examples)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((n, width), dtype=torch.long)
        token_type_ids = torch.zeros((n, width), dtype=torch.long)
        for i, (ex, length) in enumerate(zip(examples, lengths)):
            input_ids[i, :length] = torch.as_tensor(np.asarray(ex["input_ids"], dtype=np.int64))
            attention_mask[i, :length] = 1
            if "token_type_ids" in ex:
                token_type_ids[i, :length] = torch.as_tensor(np.asarray(ex["token_type_ids"], dtype=np.int64))
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if "label" in examples[0]:
            labels = [ex["label"] for ex in examples]
            is_float = any(isinstance(x, (float, np.floating)) for x in labels)
            batch["labels"] = torch.tensor(labels, dtype=torch.float32 if is_float else torch.long)
        for key in ("start_positions", "end_positions"):
            if key in examples[0]:
                batch[key] = torch.tensor([ex[key] for ex in examples], dtype=torch.long)
        if self.mlm:  # the MLM targets replace any "label"
            batch["input_ids"], batch["labels"] = self.mask_tokens(input_ids, attention_mask, generator)
        return batch

    def mask_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT's masking (create_pretraining_data.py): per sequence, exactly
        max(1, round(mlm_prob * n)) of its n maskable tokens (not special, not padding), chosen
        uniformly; of those 80% -> [MASK], 10% -> a random token, 10% unchanged. labels hold the
        original ids there and -100 elsewhere. Every random draw comes from `generator`, so a
        generator seeded per step gives the same masks again on resume."""
        shape = input_ids.shape
        maskable = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(self.special_ids, dtype=torch.long))
        n_maskable = maskable.sum(dim=1)
        k = torch.where(n_maskable > 0, (n_maskable * self.mlm_prob).round().long().clamp(min=1), 0)
        # a uniformly random k-subset per row: the k smallest of random scores among maskable tokens
        scores = torch.rand(shape, generator=generator).masked_fill(~maskable, 2.0)
        chosen = scores.argsort(dim=1).argsort(dim=1) < k[:, None]
        labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        u = torch.rand(shape, generator=generator)
        random_ids = torch.randint(self.vocab_size, shape, generator=generator)
        out = input_ids.clone()
        out[chosen & (u < 0.8)] = self.mask_id
        swap = chosen & (u >= 0.8) & (u < 0.9)
        out[swap] = random_ids[swap]
        return out, labels
