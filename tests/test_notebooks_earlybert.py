"""The EarlyBERT notebooks at smoke profile (smaller still: a few steps each), executed by the
runner into one results folder, and what they produce."""
import json
import math

import pandas as pd
import pytest

from conftest import check_report, has_files, out, run_smoke_notebooks, summary
from repro import results

pytestmark = pytest.mark.notebook
NOTEBOOKS = ["ticket_mask_distance", "earlybert_glue", "earlybert_squad", "earlybert_pretraining"]
# each notebook's smallest sizes: -p values only the notebooks that declare them receive
PARAMS = ["max_train_examples=32", "subset_scale=0.1", "pretrain_fraction=0.15", "checkpoints=20"]
METHODS = {"dense", "random", "earlybert"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return run_smoke_notebooks(tmp_path_factory, NOTEBOOKS, PARAMS)


def conclusion(root, name):
    """The executed notebook's last markdown output (the computed conclusion)."""
    nb = json.loads((out(root, name) / f"{name}.ipynb").read_text())
    texts = ["".join(o["data"]["text/markdown"]) for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert texts, f"{name} displayed no conclusion"
    return texts[-1]


def test_ticket_mask_distance(root):
    name = "ticket_mask_distance"
    has_files(root, name, ["mask_distance.png", "detector_trace.png", "detector_fine-tuning.csv",
                           "detector_pre-training.csv"])
    s = summary(root, name)
    for setting in ("fine-tuning", "pre-training"):
        assert set(s[setting]["fired_step"]) == {"heads", "ffn", "joint", "found"}
        for kind, step in s[setting]["fired_step"].items():  # fired, or says it did not (None)
            frac = s[setting]["fired_fraction"][kind]
            assert (step is None and frac is None) or (0 < step <= s[setting]["search_steps"] and 0 < frac <= 1)
        for kind in ("heads", "ffn"):
            D = pd.read_csv(out(root, name) / f"distance_{setting}_{kind}.csv", index_col=0)
            assert D.shape == (s[setting]["recorded"],) * 2 and D.shape[0] >= 2
            assert ((D.values >= 0) & (D.values <= 1)).all()
            assert (D.values.diagonal() == 0).all() and (D.values == D.values.T).all()
    assert s["fine-tuning"]["fixed_step"] >= 1 and 0 < s["fine-tuning"]["fixed_fraction"] <= 1
    runs = results.load_runs("smoke", name, root=root)
    assert sorted(runs["task"]) == ["MLM", "MRPC"] and set(runs["method"]) == {"earlybert"}
    assert "fine-tuning" in conclusion(root, name)


def _check_methods(table, flops_col="flops_per_step", params_col="params"):
    assert set(table.index) == METHODS
    assert table.loc["earlybert", params_col] < table.loc["dense", params_col]
    assert table.loc["earlybert", flops_col] < table.loc["dense", flops_col]
    assert table.loc["random", params_col] == table.loc["earlybert", params_col]


def test_earlybert_glue(root):
    name = "earlybert_glue"
    has_files(root, name, ["earlybert_glue.png", "earlybert_glue.csv", "runs.csv", "train_curves.csv"])
    table = pd.read_csv(out(root, name) / "earlybert_glue.csv").set_index("method")
    _check_methods(table)
    assert (table["value"].between(0, 100)).all()
    s = summary(root, name)
    mrpc = s["tasks"]["MRPC"]
    assert mrpc["metric"] == "f1" and mrpc["params"]["earlybert"] < mrpc["params"]["dense"]
    assert s["paper_time_saving_pct"] == [35.0, 45.0] and math.isfinite(s["mean_time_saving_pct"])
    assert 0 <= mrpc["detector_fired_fraction"] <= 1
    runs = results.load_runs("smoke", name, root=root)
    assert set(runs["method"]) == METHODS and len(runs) == 3
    eb = runs[runs.method == "earlybert"].iloc[0]
    assert eb["time.total"] == pytest.approx(eb["time.search"] + eb["time.draw"] + eb["time.train"])
    # heads per layer: 4 of 12 pruned in every layer (the paper's 1/3)
    assert list(eb["heads_per_layer"]) == [8] * 6
    # the conclusion quotes the measured saving, not a typed one
    assert f"{abs(s['mean_time_saving_pct']):.1f}%" in conclusion(root, name)


def test_earlybert_squad(root):
    name = "earlybert_squad"
    has_files(root, name, ["earlybert_squad.png", "earlybert_squad.csv", "runs.csv"])
    table = pd.read_csv(out(root, name) / "earlybert_squad.csv").set_index("method")
    _check_methods(table)
    assert table[["exact_match", "f1"]].apply(lambda c: c.between(0, 100)).all().all()
    s = summary(root, name)
    assert s["seq_len"] == 128 and s["stride"] == 64
    assert set(s["methods"]) == METHODS
    assert set(results.load_runs("smoke", name, root=root)["method"]) == METHODS


def test_earlybert_pretraining(root):
    name = "earlybert_pretraining"
    has_files(root, name, ["earlybert_pretraining.png", "earlybert_pretraining.csv", "pretraining_runs.csv",
                           "finetuning_runs.csv", "checkpoints/earlybert/config.json"])
    table = pd.read_csv(out(root, name) / "earlybert_pretraining.csv").set_index("method")
    _check_methods(table)
    s = summary(root, name)
    assert s["equal"] == "fine-tuning steps"
    assert 1 <= s["draw_step"] <= s["pretrain_steps"] and 0 < s["draw_fraction"] <= 1
    # the ticket trains for the rest: search + ticket steps = dense steps
    assert table.loc["earlybert", "search_steps"] + table.loc["earlybert", "train_steps"] == table.loc["dense", "train_steps"]
    # the saved ticket reloads with its pruned shape
    cfg = json.loads((out(root, name) / "checkpoints" / "earlybert" / "config.json").read_text())["repro_bert"]
    assert sum(cfg["heads_per_layer"]) < cfg["heads"] * cfg["layers"]
    runs = results.load_runs("smoke", name, root=root)
    assert set(runs["method"]) == METHODS and set(runs["task"]) == {"MLM", "SST-2"}


def test_report_gives_the_earlybert_claims_a_verdict(root):
    check_report(root, ["early_bird", "earlybert_glue", "earlybert_time", "earlybert_squad"])
