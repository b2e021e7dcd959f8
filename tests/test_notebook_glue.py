"""The end-to-end notebook at smoke profile: runner -> papermill -> model -> loop -> store."""
import json

import pytest

from repro import results
from repro.__main__ import main

pytestmark = pytest.mark.notebook


def test_glue_finetune_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path))
    assert main(["run", "glue_finetune", "--profile", "smoke", "--results-dir", str(tmp_path),
                 "-p", "tasks=['MRPC', 'STS-B']"]) == 0
    out = tmp_path / "smoke" / "glue_finetune"
    for f in ("glue_finetune.ipynb", "glue_dense.csv", "train_loss.png", "summary.json", "run.json"):
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == {"MRPC", "STS-B"}
    assert 0 <= summary["tasks"]["MRPC"]["mean"] <= 100 and summary["tasks"]["MRPC"]["metric"] == "f1"
    assert summary["provenance"]["torch"]
    runs = results.load_runs("smoke", "glue_finetune", root=tmp_path)
    # one run per task, plus MRPC's batching check (the same seed with random batches) and its
    # learning-rate sweep (the same seed at another learning rate and length)
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    assert sorted(zip(runs["task"], runs["method"], runs["config.group_by_length"], runs["config.lr"], runs["config.epochs"])) == [
        ("MRPC", "dense", True, 5e-5, 1.0), ("MRPC", "dense, lr 0.0001, 2 epochs", True, 1e-4, 2.0),
        ("MRPC", "dense, random batches", False, 5e-5, 1.0), ("STS-B", "dense", True, 5e-5, 1.0)]
    assert summary["complete"] and summary["done"] == summary["planned"] == 4
    other = runs[runs.method == "dense, lr 0.0001, 2 epochs"].iloc[0]
    assert summary["lr_sweeps"] == [{"task": "MRPC", "seed": 0, "metric": "f1", "runs": [
        {"lr": 5e-5, "epochs": 1.0, "value": pytest.approx(summary["tasks"]["MRPC"]["mean"])},
        {"lr": 1e-4, "epochs": 2.0, "value": pytest.approx(other["metric.f1"])}]}]
    # the recipe check (floors.ADOPTION_RULE) chose between the two points on seed 0; no other seed to judge it
    (adopted,) = summary["adoptions"]
    best = max(summary["lr_sweeps"][0]["runs"], key=lambda p: (p["value"], -p["epochs"], -p["lr"]))
    assert adopted["grid_points"] == adopted["grid_ran"] == 2 and adopted["adopted"] == [best["lr"], best["epochs"]]
    assert adopted["learned"] is None and "not measured: 0 of the other seeds ran" in adopted["text"]
    assert set(runs["config.pooling"]) == {"mean"}  # MiniLM's own pooling, recorded with every run
    assert runs["config_hash"].notna().all() and runs["prov.git_rev"].notna().all()
    # the floors each task's baseline is held against: input-blind everywhere, zero-shot on STS-B
    mrpc, stsb = summary["tasks"]["MRPC"], summary["tasks"]["STS-B"]
    assert mrpc["blind"] > 0 and mrpc["zero_shot"] is None and "input-blind" in mrpc["floors"]
    assert stsb["blind"] == 0 and stsb["zero_shot"] > 50  # MiniLM's sentence embeddings know STS-B
    check = summary["batching_check"]
    assert check["task"] == "MRPC" and check["seeds"] == [0] and check["speedup"] > 0
    grouped, random_ = (runs[(runs.task == "MRPC") & (runs.method == m)].iloc[0] for m in ("dense", "dense, random batches"))
    assert check["diff"] == pytest.approx(grouped["metric.f1"] - random_["metric.f1"])
