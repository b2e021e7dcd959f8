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
    assert len(runs) == 2 and set(runs["status"]) == {"ok"}
    assert summary["complete"] and summary["done"] == summary["planned"] == 2
    assert set(runs["config.pooling"]) == {"mean"}  # MiniLM's own pooling, recorded with every run
    assert runs["config_hash"].notna().all() and runs["prov.git_rev"].notna().all()
