"""Evaluation metrics: GLUE (sklearn/scipy) and SQuAD v1.1 EM/F1 (the official script's logic).

Every metric is on a 0..100 scale (accuracy 0.853 is reported as 85.3, MCC 0.52 as 52.0, Pearson
0.89 as 89.0), because that is how the GLUE leaderboard, the SQuAD script and both papers' tables
print them; a metric on 0..1 next to the papers' numbers would be an easy mistake to make.
"""
from __future__ import annotations

import collections
import difflib
import json
import re
import string
import warnings
from pathlib import Path

import numpy as np

# The key each task is ranked by in the study (what the papers' GLUE tables report first).
_MAIN_METRIC = {
    "CoLA": "mcc", "SST-2": "accuracy", "MRPC": "f1", "RTE": "accuracy", "STS-B": "pearson",
    "WNLI": "accuracy", "QNLI": "accuracy", "QQP": "f1", "MNLI": "accuracy", "MNLI-mm": "accuracy",
}
METRIC_TASKS = tuple(_MAIN_METRIC)

# Hugging Face's names of the GLUE configs (nyu-mll/glue) -> ours. Lower case; matching ignores case.
GLUE_ALIASES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP",
                "mnli": "MNLI", "mnli_matched": "MNLI", "mnli_mismatched": "MNLI-mm", "qnli": "QNLI",
                "rte": "RTE", "wnli": "WNLI"}


def resolve_name(name: str, valid, what: str = "task", aliases: dict[str, str] | None = None) -> str:
    """The canonical spelling of `name` among `valid` (case-insensitive; `aliases` maps other
    names, lower case, to canonical ones), else a ValueError that lists the valid names and
    suggests the closest one (shared with repro.data)."""
    by_lower = {v.lower(): v for v in valid}
    by_lower.update({a.lower(): c for a, c in (aliases or {}).items() if c in valid})
    if isinstance(name, str) and name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.5)
    hint = f" Did you mean {by_lower[close[0]]!r}?" if close else ""
    raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}.{hint}")


def glue_task_name(name: str) -> str:
    """Our name of a GLUE task: 'sst2', 'SST-2' and 'sst-2' are all 'SST-2'."""
    return resolve_name(name, METRIC_TASKS, "GLUE task", GLUE_ALIASES)


def main_metric(task: str) -> str:
    """The metric the study ranks a task by: mcc (CoLA), f1 (MRPC, QQP), pearson (STS-B), else accuracy."""
    return _MAIN_METRIC[glue_task_name(task)]


def glue_metrics(task: str, predictions, labels) -> dict:
    """GLUE dev metrics for `task`, each x100.

    predictions: class ids (or logits of shape (n, num_classes), argmax-ed here) for classification;
    scores (or an (n, 1) array) for STS-B. labels: the gold ids / scores.
    """
    # imported here: scipy and scikit-learn take seconds to import, and most importers of this
    # module (the model builders, the runner's checks) only need the task names
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    task = glue_task_name(task)
    preds, labels = np.asarray(predictions), np.asarray(labels)
    if task == "STS-B":
        preds, labels = preds.reshape(-1).astype(np.float64), labels.reshape(-1).astype(np.float64)
    elif preds.ndim == 2:
        preds = preds.argmax(axis=-1)
    if len(preds) != len(labels):
        raise ValueError(f"{task}: {len(preds)} predictions but {len(labels)} labels")
    if task == "CoLA":
        return {"mcc": 100 * matthews_corrcoef(labels, preds)}
    if task in ("MRPC", "QQP"):
        # F1 of the positive class (1 = paraphrase / duplicate), as GLUE scores it
        return {"f1": 100 * f1_score(labels, preds), "accuracy": 100 * accuracy_score(labels, preds)}
    if task == "STS-B":
        return {"pearson": 100 * pearsonr(preds, labels)[0], "spearman": 100 * spearmanr(preds, labels)[0]}
    return {"accuracy": 100 * accuracy_score(labels, preds)}


# ---- SQuAD v1.1: a transcription of the official evaluate-v1.1.py -------------------------------

_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace (official order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:  # also when both are empty: the official v1.1 script scores that 0
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _exact(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_scores(predictions: dict[str, str], squad_json, only_predicted: bool = False) -> dict:
    """SQuAD v1.1 exact match and F1 (x100), each the max over a question's reference answers.

    squad_json: the official nested dict, or a path to it. By default every question in it counts,
    and a question with no prediction scores 0 (with one warning); only_predicted=True instead scores
    just the questions that have a prediction. Predictions for ids not in squad_json are ignored.
    """
    if isinstance(squad_json, (str, Path)):
        squad_json = json.loads(Path(squad_json).read_text(encoding="utf-8"))
    em = f1 = 0.0
    total = missing = 0
    for article in squad_json["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if qa["id"] not in predictions:
                    missing += 1
                    if not only_predicted:
                        total += 1
                    continue
                total += 1
                truths = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                em += max(_exact(pred, t) for t in truths)
                f1 += max(_f1(pred, t) for t in truths)
    if missing and not only_predicted:
        warnings.warn(f"{missing} of {total} questions have no prediction; they score 0", stacklevel=2)
    if total == 0:
        raise ValueError("no questions to score (empty squad_json, or no predictions with only_predicted=True)")
    return {"exact_match": 100 * em / total, "f1": 100 * f1 / total}
