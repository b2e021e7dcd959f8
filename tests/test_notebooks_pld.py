"""The PLD notebooks at smoke profile, executed by the runner in order into one results folder
(pld_glue fine-tunes the checkpoints pld_pretraining saved), and what they produce."""
import math

import pandas as pd
import pytest

from conftest import check_report, has_files, out, run_smoke_notebooks, summary
from repro import pld, results, runner
from repro.profiles import get_profile, pld_profile

pytestmark = pytest.mark.notebook
ORDER = ["gradient_norms", "pld_schedule", "pld_pretraining", "pld_glue"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return run_smoke_notebooks(tmp_path_factory, ORDER)


def test_gradient_norms(root):
    has_files(root, "gradient_norms", ["grad_norms.png", "trained.png", "ratios.csv", "bottom_top.csv"])
    s = summary(root, "gradient_norms")
    P = get_profile("smoke")
    assert s["complete"] and s["done"] == s["planned"] == 2 * len(P.grad_shapes) * len(P.seeds) + 2
    stats = pd.DataFrame(s["stats"])
    # every shape at init and the trained one, both variants, both measures, each a positive ratio
    assert len(stats) == 2 * 2 * (len(P.grad_shapes) + 1) and (stats["mean"] > 0).all()
    runs = results.load_runs("smoke", "gradient_norms", root=root)
    assert sorted(set(runs["method"])) == ["postln", "postln_trained", "preln", "preln_trained"]
    trained = runs[runs["method"].str.endswith("_trained")]
    for stages in trained["stages"]:  # block input/output cosines after training, one per layer
        assert len(stages["trained"]["cosine"]) == P.grad_trained[0]
        assert all(-1 <= c <= 1 for c in stages["trained"]["cosine"])


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
    has_files(root, "pld_pretraining", ["val_loss.png", "lr_pilot.png", "lr_pilot.csv", "speedup.csv", "val_curves.csv"])
    s = summary(root, "pld_pretraining")
    P = pld_profile(get_profile("smoke"))
    assert s["complete"] and set(s["runs"]) == set(pld.RUNS)
    # the pilot: every arch at every rate; the full runs' rates are its best stable ones
    pilot = pd.read_csv(out(root, "pld_pretraining") / "lr_pilot.csv")
    assert sorted(zip(pilot["arch"], pilot["lr"])) == sorted((a, lr) for a in pld.ARCHS for lr in P.pld_lrs)
    for arch, g in pilot.groupby("arch"):
        stable = g[g["stable"]]
        assert s["rates"][arch] == stable.loc[stable["final_val_loss"].idxmin(), "lr"]
    for name, (arch, rate_of) in pld.RUNS.items():
        assert s["runs"][name]["lr"] == s["rates"][rate_of] and s["runs"][name]["status"] == "ok"
    runs = results.load_runs("smoke", "pld_pretraining", root=root)
    full = runs[runs["task"] == "mlm"].set_index("method")
    assert set(runs.loc[runs["task"] == "mlm_pilot", "method"]) == set(pld.ARCHS)
    assert {"unigram", "paired_step_times"} <= set(full.index)
    # a pilot is the first steps of the full run's schedule: same seed, same numbers
    pilot_run = runs[(runs["task"] == "mlm_pilot") & (runs["method"] == "postln") & (runs["config.lr"] == s["rates"]["postln"])]
    pilot_curve = [(c["step"], c["val_loss"]) for c in pilot_run["curve"].iloc[0]]
    full_curve = {c["step"]: c["val_loss"] for c in full.loc["postln", "curve"]}
    assert len(pilot_curve) >= 3 and pilot_curve == [(step, full_curve[step]) for step, _ in pilot_curve]
    # the speed-up arithmetic: the baseline is 1 by definition; paired = steps / the measured step-cost ratio
    table = pd.read_csv(out(root, "pld_pretraining") / "speedup.csv", index_col="run")
    assert table.loc["postln", "speedup_steps"] == 1.0 and table.loc["postln", "time_per_sample_saving"] == 0
    ratio = s["paired_step_s"]["pld"] / s["paired_step_s"]["dense"]
    for name, row in table.iterrows():
        if pd.notna(row["speedup_steps"]):
            cost = 1 - s["pld_time_per_sample_saving_paired"] if pld.ARCHS[row["arch"]][1] else 1.0
            assert row["speedup_paired"] == pytest.approx(row["speedup_steps"] / cost)
    assert s["pld_time_per_sample_saving_paired"] == pytest.approx(1 - ratio, abs=0.2)  # a median of pair ratios
    # the unigram plateau: finite, far below a uniform guess over the vocabulary
    assert 0 < s["unigram_loss"] < math.log(30522) - 2
    assert 0 < s["pld_compute_fraction"]["realized"] < 1
    # every full run's final model is its unit's artifact (pld_glue asks the unit for it)
    for key in full.loc[list(pld.ARCHS), "unit"]:
        assert (root / "cache" / "smoke" / key.replace("/", "__") / "model" / "model.safetensors").exists()


def test_pld_glue_uses_the_pretrained_units(root):
    has_files(root, "pld_glue", ["glue_vs_paper.csv", "delta.csv", "glue_scores.png"])
    s, pre = summary(root, "pld_glue"), summary(root, "pld_pretraining")
    assert s["methods"][0] == "postln" and "preln_pld" in s["methods"]
    units = results.load_runs("smoke", "pld_pretraining", root=root).set_index("unit")
    for name, key in s["checkpoints"].items():  # the models pld_pretraining's full runs saved, by unit
        arch, rate_of = pld.RUNS[name]
        assert units.loc[key, "method"] == arch and units.loc[key, "config.lr"] == pre["rates"][rate_of]
    runs = results.load_runs("smoke", "pld_glue", root=root)
    P = get_profile("smoke")
    assert len(runs) == len(s["methods"]) * sum(len(P.seeds_for(t)) for t in s["tasks"]) and set(runs["status"]) == {"ok"}
    assert all(c == s["checkpoints"][m] for m, c in zip(runs["method"], runs["config.checkpoint"]))
    assert (runs["config.lr"] == pld.paper_finetune_lr("MRPC")).all()  # smoke: the paper's rate per task
    table = pd.read_csv(out(root, "pld_glue") / "glue_vs_paper.csv", index_col=0)
    assert str(table.loc["paper: PLD", "RTE"]) == "69.3" and "ours (smoke): preln_pld" in table.index
    assert float(table.loc["input-blind predictor", "MRPC F1/Acc"]) == pytest.approx(81.2, abs=0.1)
    delta = pd.read_csv(out(root, "pld_glue") / "delta.csv")
    assert set(delta["method"]) == set(s["methods"]) - {"postln"}
    assert s["pretraining"]["tokens"] == 30 * 8 * 64 and s["pretraining"]["unigram_loss"] == pre["unigram_loss"]


def test_plans_run_to_the_end_with_every_unit_missing(tmp_path, capsys):
    """`repro plan`: nothing trains; the pilot is to run, the full runs wait for it, and pld_glue
    asks for pld_pretraining's units (it never looks for a folder under results/)."""
    jobs = runner.plan(["pld_pretraining", "pld_glue"], "smoke")
    plan = {j.name: runner.plan_units(j, "smoke", tmp_path) for j in jobs}
    assert " raised " not in capsys.readouterr().out  # both notebooks ran to their last cell
    states = {nb: [(u["notebook"], u["task"], u["method"], u["state"]) for u in units] for nb, units in plan.items()}
    pilot = [("pld_pretraining", "mlm_pilot", a, "missing") for _ in range(2) for a in pld.ARCHS]  # rate-major
    waiting = [("pld_pretraining", "mlm", pld.RUNS[n][0], "waiting") for n in pld.RUNS]
    assert states["pld_pretraining"] == pilot + waiting + [("pld_pretraining", "mlm", m, "missing")
                                                           for m in ("unigram", "paired_step_times")]
    glue = [u for u in states["pld_glue"] if u[0] == "pld_glue"]
    assert states["pld_glue"][:len(pilot) + len(waiting)] == pilot + waiting
    assert glue == [("pld_glue", "MRPC", n, "waiting") for n in ("postln", "preln_pld", "preln_pld_best")]
    assert all(u["estimate"] for u in plan["pld_pretraining"] if u["state"] == "missing")
    assert not list((tmp_path / "smoke").glob("runs/*.json"))  # nothing was recorded


def test_report_gives_the_pld_claims_a_verdict(root):
    check_report(root, ["postln_gradients", "pld_time", "pld_speedup", "pld_glue"])
    text = (root / "smoke" / "REPORT.md").read_text()
    assert "| pld_glue |" in text and "![pld_speedup](pld_pretraining/val_loss.png)" in text
