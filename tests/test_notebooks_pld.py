"""The PLD notebooks at smoke profile, executed by the runner in order into one results folder
(pld_glue fine-tunes the checkpoints pld_pretraining saved), and what they produce."""
import math

import pandas as pd
import pytest

from conftest import check_report, has_files, out, run_smoke_notebooks, summary
from repro import results, runner

pytestmark = pytest.mark.notebook
ORDER = ["gradient_norms", "pld_schedule", "pld_pretraining", "pld_glue"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return run_smoke_notebooks(tmp_path_factory, ORDER)


def test_gradient_norms(root):
    has_files(root, "gradient_norms", ["grad_norms.png", "block_io.png", "per_layer.csv"])
    s = summary(root, "gradient_norms")
    assert set(s["variants"]) == {"PostLN", "PreLN"}
    for v in s["variants"].values():
        for key in ("bottom_top_param_grad", "bottom_top_input_grad"):
            assert all(math.isfinite(v[key][st]) and v[key][st] > 0 for st in ("init", "trained"))
    table = pd.read_csv(out(root, "gradient_norms") / "per_layer.csv")
    assert len(table) == 2 * 2 * s["layers"] and (table["param_grad"] > 0).all()
    assert table["io_cosine"].between(-1, 1).all()
    runs = results.load_runs("smoke", "gradient_norms", root=root)
    assert sorted(runs["method"]) == ["postln", "preln"]


def test_pld_schedule(root):
    has_files(root, "pld_schedule", ["theta.png", "keep_prob_heatmap.png", "expected_layers.png",
                                     "realized_keep.png", "realized_keep.csv", "compute_fraction.csv", "variants.csv"])
    s = summary(root, "pld_schedule")
    assert s["analytic"]["expected_layers_theta_0.5"] == pytest.approx({"paper": 8.75, "code": 9.25})
    r = s["run"]
    assert r["micro_batches"] == r["steps"]  # one gate row per micro-batch (no accumulation at smoke)
    for f, e, sd in zip(r["keep_realized"], r["keep_expected"], r["keep_sd"]):
        assert abs(f - e) <= 4 * sd + 1e-9  # realized keep frequency tracks p_i
    assert r["compute_fraction_expected"] < 1 and r["compute_fraction_realized"] < 1
    assert r["flop_fraction"] < 1
    assert set(r["compute_s_per_step"]) == {"dense", "pld"} and all(v > 0 for v in r["compute_s_per_step"].values())
    assert 0 < r["paired_time_ratio"] < 2 and r["paired_step_s"]["gated"] > 0


def test_pld_pretraining(root):
    has_files(root, "pld_pretraining", ["val_loss.png", "time_per_sample.png", "speedup.csv", "val_curves.csv"])
    s = summary(root, "pld_pretraining")
    methods = {"postln", "preln", "preln_pld", "preln_pld_lrhigh", "postln_lrhigh"}
    assert set(s["methods"]) == methods
    for m, v in s["methods"].items():
        assert v["status"] in ("ok", "diverged")
        if v["status"] == "ok":
            assert math.isfinite(v["final_val_loss"]) and v["time_per_sample_ms"] > 0
            assert (out(root, "pld_pretraining") / "checkpoints" / m / "model.safetensors").exists()
    assert 0 < s["methods"]["preln"]["steps_to_target"] <= s["steps"]  # the baseline reaches its own loss
    assert 0 < s["pld_compute_fraction"]["realized"] < 1
    assert -1 < s["pld_time_per_sample_saving_paired"] < 1 and s["paired_step_s"]["pld"] > 0
    runs = results.load_runs("smoke", "pld_pretraining", root=root)
    assert set(runs["method"]) == methods and set(runs["status"]) <= {"ok", "diverged"}


def test_pld_glue_uses_the_pretrained_checkpoints(root):
    has_files(root, "pld_glue", ["glue_vs_paper.csv", "delta.csv", "glue_scores.png"])
    s = summary(root, "pld_glue")
    ckpts = out(root, "pld_pretraining") / "checkpoints"
    assert s["checkpoints"] == str(ckpts)
    assert s["methods"][0] == "preln" and "preln_pld" in s["methods"]
    runs = results.load_runs("smoke", "pld_glue", root=root)
    assert len(runs) == len(s["methods"]) * len(s["tasks"]) * len(s["seeds"])
    assert {str(ckpts / m) for m in s["methods"]} == set(runs["config.checkpoint"])
    table = pd.read_csv(out(root, "pld_glue") / "glue_vs_paper.csv", index_col=0)
    assert str(table.loc["paper: PLD", "RTE"]) == "69.3" and "ours (smoke): preln_pld" in table.index
    delta = pd.read_csv(out(root, "pld_glue") / "delta.csv")
    assert set(delta["method"]) == set(s["methods"]) - {"preln"}


def test_pld_glue_without_checkpoints_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path))
    [outcome] = runner.run(runner.plan(["pld_glue"], "smoke"), "smoke", tmp_path)
    assert outcome.status == "failed" and "run the pld_pretraining notebook first" in outcome.message


def test_report_gives_the_pld_claims_a_verdict(root):
    check_report(root, ["postln_gradients", "pld_time", "pld_speedup", "pld_glue"])
    text = (root / "smoke" / "REPORT.md").read_text()
    assert "| pld_glue |" in text and "![pld_speedup](pld_pretraining/val_loss.png)" in text
