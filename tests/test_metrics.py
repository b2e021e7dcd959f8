"""GLUE and SQuAD metrics against hand-computed values (every metric on the 0..100 scale)."""
import json
import math

import numpy as np
import pytest

from repro.metrics import glue_metrics, main_metric, normalize_answer, squad_scores


def test_mcc_hand_computed_and_perfect():
    # TP=2 TN=2 FP=1 FN=0: (2*2 - 1*0) / sqrt(3*2*3*2) = 4/6
    assert glue_metrics("CoLA", [1, 1, 0, 0, 1], [1, 0, 0, 0, 1])["mcc"] == pytest.approx(400 / 6)
    assert glue_metrics("cola", [0, 1, 1, 0], [0, 1, 1, 0]) == {"mcc": pytest.approx(100.0)}
    assert glue_metrics("CoLA", [1, 0, 0, 1], [0, 1, 1, 0])["mcc"] == pytest.approx(-100.0)


def test_f1_accuracy_mrpc_qqp():
    # precision 2/3, recall 1 -> F1 0.8; 4 of 5 right
    for task in ("MRPC", "QQP"):
        m = glue_metrics(task, [1, 1, 0, 0, 1], [1, 0, 0, 0, 1])
        assert m == {"f1": pytest.approx(80.0), "accuracy": pytest.approx(80.0)}


def test_stsb_pearson_spearman():
    # x=[1,2,3], y=[1,2,4]: r = 3 / (sqrt(2) * sqrt(42)/3) = 9/sqrt(84); ranks identical
    m = glue_metrics("STS-B", np.array([[1.0], [2.0], [3.0]]), [1.0, 2.0, 4.0])
    assert m["pearson"] == pytest.approx(100 * 9 / math.sqrt(84))
    assert m["spearman"] == pytest.approx(100.0)


def test_accuracy_tasks_and_logits():
    for task in ("SST-2", "RTE", "WNLI", "QNLI", "MNLI", "mnli-mm"):
        assert glue_metrics(task, [0, 1, 1, 2], [0, 1, 0, 2]) == {"accuracy": pytest.approx(75.0)}
    logits = np.array([[2.0, 0.1], [0.0, 3.0], [1.0, 0.0]])  # argmax -> 0, 1, 0
    assert glue_metrics("SST-2", logits, [0, 1, 1])["accuracy"] == pytest.approx(200 / 3)


def test_main_metric():
    assert [main_metric(t) for t in ("CoLA", "MRPC", "QQP", "STS-B", "SST-2", "rte", "MNLI-mm")] == \
        ["mcc", "f1", "f1", "pearson", "accuracy", "accuracy", "accuracy"]


def test_unknown_task_suggests():
    with pytest.raises(ValueError, match="Did you mean 'SST-2'") as e:
        glue_metrics("SST3", [1], [1])
    assert "CoLA" in str(e.value)  # lists the valid names
    with pytest.raises(ValueError, match="Did you mean 'STS-B'"):
        main_metric("stsc")


def test_hugging_face_config_names_are_our_tasks():
    from repro.metrics import GLUE_ALIASES, METRIC_TASKS, glue_task_name
    assert {a: glue_task_name(a) for a in ("stsb", "sst2", "cola", "mrpc", "rte", "qnli", "mnli", "qqp", "wnli")} == {
        "stsb": "STS-B", "sst2": "SST-2", "cola": "CoLA", "mrpc": "MRPC", "rte": "RTE", "qnli": "QNLI",
        "mnli": "MNLI", "qqp": "QQP", "wnli": "WNLI"}
    assert glue_task_name("SST2") == "SST-2" and glue_task_name("mnli_mismatched") == "MNLI-mm"
    assert set(GLUE_ALIASES.values()) <= set(METRIC_TASKS)
    assert main_metric("stsb") == "pearson"
    assert glue_metrics("sst2", [1, 0], [1, 1]) == glue_metrics("SST-2", [1, 0], [1, 1])


def test_length_mismatch():
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        glue_metrics("RTE", [0, 1], [0, 1, 1])


def _squad(*qas):
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": qid, "question": "q?", "answers": [{"text": a, "answer_start": 0} for a in answers]}
        for qid, answers in qas]}]}]}


def test_normalize_answer():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_squad_toy_cases():
    sq = _squad(("1", ["Denver Broncos"]), ("2", ["Denver Broncos"]), ("3", ["Santa Clara", "Levi's Stadium"]))
    # article dropped -> exact; one extra token -> F1 2*(2/3*1)/(2/3+1) = 0.8; max over references
    s = squad_scores({"1": "the Denver Broncos", "2": "Denver Broncos won", "3": "levis stadium"}, sq)
    assert s["exact_match"] == pytest.approx(200 / 3)
    assert s["f1"] == pytest.approx(100 * (1 + 0.8 + 1) / 3)
    assert squad_scores({"1": "Carolina", "2": "", "3": "Santa Clara"}, sq) == \
        {"exact_match": pytest.approx(100 / 3), "f1": pytest.approx(100 / 3)}


def test_squad_missing_predictions(tmp_path):
    sq = _squad(("1", ["Denver Broncos"]), ("2", ["Paris"]))
    with pytest.warns(UserWarning, match="1 of 2"):
        s = squad_scores({"1": "Denver Broncos", "zzz": "ignored"}, sq)
    assert s == {"exact_match": pytest.approx(50.0), "f1": pytest.approx(50.0)}
    assert squad_scores({"1": "Denver Broncos"}, sq, only_predicted=True)["exact_match"] == pytest.approx(100.0)
    path = tmp_path / "sq.json"
    path.write_text(json.dumps(sq))
    assert squad_scores({"1": "Denver Broncos", "2": "paris."}, path)["f1"] == pytest.approx(100.0)
