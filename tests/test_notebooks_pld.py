"""The PLD notebooks at smoke profile, executed by the runner in order into one results folder
(pld_glue fine-tunes the checkpoints pld_pretraining saved), and what they produce."""
import math
import statistics

import pandas as pd
import pytest

from conftest import check_report, has_files, out, run_smoke_notebooks, summary
from repro import pld, pld_runs, results, runner
from repro.flops import flops_per_step
from repro.model import BertConfig
from repro.profiles import get_profile, pld_profile

pytestmark = pytest.mark.notebook
ORDER = ["gradient_norms", "pld_schedule", "pld_pretraining", "pld_premise", "pld_glue"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return run_smoke_notebooks(tmp_path_factory, ORDER)


def test_gradient_norms(root):
    has_files(root, "gradient_norms", ["grad_norms.png", "trained.png", "ratios.csv", "bottom_top.csv"])
    s = summary(root, "gradient_norms")
    P = get_profile("smoke")
    curves = 2 * P.grad_curve_seeds + 1  # PostLN and PreLN (official init) per seed, plain-init PreLN once
    # at init: PostLN, PreLN (official init) and PreLN (plain 0.02) per shape and seed; the trained pair
    assert s["complete"] and s["done"] == s["planned"] == 3 * len(P.grad_shapes) * len(P.seeds) + 2 + curves
    stats = pd.DataFrame(s["stats"])
    # every shape at init in three variants and the trained pair, both measures, each a positive ratio
    assert len(stats) == 2 * (3 * len(P.grad_shapes) + 2) and (stats["mean"] > 0).all()
    runs = results.load_runs("smoke", "gradient_norms", root=root)
    assert sorted(set(runs["method"])) == ["postln", "postln_curve", "postln_trained", "preln", "preln_curve",
                                           "preln_curve_plain", "preln_trained"]
    curve = runs[runs["method"].str.contains("_curve")]
    assert len(curve) == curves and all(sorted(map(int, st)) == [0, *P.grad_curve_steps] for st in curve["stages"])
    assert len(s["curve_rule"]) == len(P.grad_curve_steps) + 1  # a verdict per step, from 2 seeds per arm
    runs = runs[~runs["method"].str.contains("_curve")]
    trained = runs[runs["method"].str.endswith("_trained")]
    for stages in trained["stages"]:  # block input/output cosines after training, one per layer
        assert len(stages["trained"]["cosine"]) == P.grad_trained[0]
        assert all(-1 <= c <= 1 for c in stages["trained"]["cosine"])
        assert stages["trained"]["loss"] < stages["init"]["loss"]  # the trained pair did train
    # a bottom/top ratio is the lowest quarter of the blocks over the highest, per batch, averaged
    for stages in runs["stages"]:
        for m in ("param", "input"):
            assert len(stages["init"]["ratio"][m]) == P.grad_batches
            assert stages["init"]["ratio"][m][0] > 0
    one = runs[(runs["task"] == "4x64") & (runs["method"] == "postln")].iloc[0]
    cell = stats.set_index(["shape", "stage", "variant", "metric"])
    assert cell.loc[("4 x 64", "init", "PostLN", "input"), "mean"] == pytest.approx(
        sum(one["stages"]["init"]["ratio"]["input"]) / P.grad_batches)


def test_pld_premise(root):
    """Every (shape, rate, arm) pilot recorded, the rule's verdict per (shape, rate) from them, and
    where it holds the two full runs behind the speed-up curve."""
    has_files(root, "pld_premise", ["premise.csv", "premise_verdicts.csv", "premise.png"])
    s = summary(root, "pld_premise")
    table = pd.read_csv(out(root, "pld_premise") / "premise.csv")
    assert len(s["shapes"]) == 3 and len(table) == 3 * len(s["rates"]) * 2 and set(table["arch"]) == {"postln", "preln_pld"}
    assert [v["holds"] for v in s["verdicts"]] == [bool(v) for v in pd.read_csv(out(root, "pld_premise") / "premise_verdicts.csv")["holds"]]
    assert s["complete"] and s["done"] == s["planned"]
    assert s["speedup_curve"] is None or s["smallest"] is not None  # a curve only where the premise held


def test_pld_schedule(root):
    has_files(root, "pld_schedule", ["schedule.png", "realized_keep.png", "time_saving.png", "realized_keep.csv",
                                     "time_saving.csv", "variants.csv"])
    s = summary(root, "pld_schedule")
    assert s["analytic"]["expected_layers_theta_0.5"] == pytest.approx({"paper": 8.75, "code": 9.25})
    assert s["complete"] and s["done"] == s["planned"] == 2 and s["default_variant"] == "paper"
    P = get_profile("smoke")
    L, H = P.schedule_shape
    recs = {r["method"]: r for r in results.load_runs_raw("smoke", root=root) if r["notebook"] == "pld_schedule"}
    assert sorted(recs) == ["pld_code", "pld_paper"]
    for variant in pld.VARIANTS:
        rec, row = recs[f"pld_{variant}"], s["timing"][variant]
        # the loop drew exactly the schedule's gates: each recorded micro-batch is PLD.gates of its step
        hook = pld.PLD(rec["config"]["theta_bar"], rec["config"]["gamma"], variant, seed=0)
        assert len(rec["gates"]) == P.schedule_steps and rec["gate_steps"] == list(range(P.schedule_steps))
        assert all(bits == "".join("0" if g is None else "1" for g in hook.gates(t, 0, L))
                   for bits, t in zip(rec["gates"], rec["gate_steps"]))
        assert set(rec["timing"]["rows"]) <= set(rec["gates"])  # the timed steps replay the run's own gates
        k = rec["keep"]
        for f, e, sd in zip(k["realized"], k["expected"], k["std"]):
            assert abs(f - e) <= 4 * sd + 1e-9  # realized keep frequency tracks p_i
        assert row["blocks_skipped"] == pytest.approx(1 - sum(b.count("1") for b in rec["gates"]) / (L * P.schedule_steps))
        assert row["blocks_skipped_expected"] == pytest.approx(1 - pld.expected_compute_fraction(0.5, L, variant))
        # the ideal saving counts the blocks the timed gates skip, never the embeddings or the MLM head
        rows = [[1.0 if b == "1" else None for b in bits] for bits in rec["timing"]["rows"]]
        model_cfg = BertConfig(layers=L, hidden=H, heads=H // 64, intermediate=4 * H, vocab_size=30522, head="mlm")
        dense = flops_per_step(model_cfg, P.seq_len, P.schedule_batch, head_tokens=rec["flops"]["head_tokens"])
        ideal = 1 - sum(flops_per_step(model_cfg, P.seq_len, P.schedule_batch, g, rec["flops"]["head_tokens"])
                        for g in rows) / len(rows) / dense
        skipped = 1 - sum(b.count("1") for b in rec["timing"]["rows"]) / (L * len(rows))  # of the timed blocks
        assert row["flop_saving"] == pytest.approx(ideal) and (0 < ideal < skipped or ideal == skipped == 0)
        # the saving is the mean over the timed pairs, with its Student-t interval
        d, g = rec["timing"]["dense"], rec["timing"]["gated"]
        assert len(d) == len(g) == row["pairs"] == P.schedule_pairs and min(d + g) > 0
        mean, hw, _ = results.mean_hw([1 - b / a for a, b in zip(d, g)])
        assert row["time_saving"] == pytest.approx(mean) and row["hw"] == pytest.approx(hw)
    # the paper's formula skips more blocks than the official code's, in expectation and in the runs:
    # both draw from the same uniforms (seed, step, micro-batch) and p_i(paper) <= p_i(code), so
    # every block the paper's run computed, the code's run computed too
    t = s["timing"]
    assert t["paper"]["blocks_skipped_expected"] > t["code"]["blocks_skipped_expected"]
    assert all(c == "1" for paper, code in zip(recs["pld_paper"]["gates"], recs["pld_code"]["gates"])
               for p, c in zip(paper, code) if p == "1")
    assert t["paper"]["blocks_skipped"] >= t["code"]["blocks_skipped"]


def test_the_executed_schedule_notebook_reproduces_under_nbval(root):
    """`make nbval` at smoke: pld_schedule, executed by the runner (it trained its units), is
    re-executed from the records its summary names, training nothing, and nbval finds its tables and
    its conclusion (the cells tagged nbval-check-output) exactly as they stand."""
    import os
    import subprocess
    import sys

    from repro import REPO_ROOT
    env = {**os.environ, "REPRO_CACHE_DIR": str(root / "cache"), "OMP_NUM_THREADS": "1"}
    before = sorted(p.name for p in (root / "smoke" / "runs").iterdir())
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "nbval.py"), "--profile", "smoke",
                           "--results-dir", str(root), "pld_schedule"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "pld_schedule: reproduces (2 records, 3 cells compared" in proc.stdout, proc.stdout + proc.stderr
    assert sorted(p.name for p in (root / "smoke" / "runs").iterdir()) == before  # nothing recorded


def test_pld_pretraining(root):
    has_files(root, "pld_pretraining", ["val_loss.png", "lr_pilot.png", "lr_pilot.csv", "speedup.csv", "val_curves.csv"])
    s = summary(root, "pld_pretraining")
    P = pld_profile(get_profile("smoke"))
    assert s["complete"] and set(s["runs"]) == set(pld_runs.RUNS)
    # the pilot: every arch at every rate; the full runs' rates are its best stable ones
    pilot = pd.read_csv(out(root, "pld_pretraining") / "lr_pilot.csv")
    assert sorted(zip(pilot["arch"], pilot["lr"])) == sorted((a, lr) for a in pld_runs.ARCHS for lr in P.pld_lrs)
    for arch, g in pilot.groupby("arch"):
        stable = g[g["stable"]]
        assert s["rates"][arch] == stable.loc[stable["final_val_loss"].idxmin(), "lr"]
    for name, (arch, rate_of) in pld_runs.RUNS.items():
        assert s["runs"][name]["lr"] == s["rates"][rate_of] and s["runs"][name]["status"] == "ok"
    runs = results.load_runs("smoke", "pld_pretraining", root=root)
    full = runs[runs["task"] == "mlm"].set_index("method")
    assert set(runs.loc[runs["task"] == "mlm_pilot", "method"]) == set(pld_runs.ARCHS)
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
            cost = 1 - s["pld_time_per_sample_saving_paired"] if pld_runs.ARCHS[row["arch"]][1] else 1.0
            assert row["speedup_paired"] == pytest.approx(row["speedup_steps"] / cost)
    # the saving is 1 - the median of the per-pair ratios (not of the medians' ratio, which load can move)
    times = full.loc["paired_step_times", "step_times"]
    pair_ratios = [g / d for d, g in zip(times["dense"], times["gated"])]
    assert s["pld_time_per_sample_saving_paired"] == pytest.approx(1 - statistics.median(pair_ratios))
    assert 0 < ratio < 2  # both medians are real step times
    # the unigram plateau: finite, far below a uniform guess over the vocabulary
    assert 0 < s["unigram_loss"] < math.log(30522) - 2
    assert 0 < s["pld_compute_fraction"]["realized"] < 1
    # every full run's final model is its unit's artifact (pld_glue asks the unit for it)
    for key in full.loc[list(pld_runs.ARCHS), "unit"]:
        assert (root / "cache" / "smoke" / key.replace("/", "__") / "model" / "model.safetensors").exists()


def test_pld_glue_uses_the_pretrained_units(root):
    has_files(root, "pld_glue", ["glue_vs_paper.csv", "delta.csv", "glue_scores.png"])
    s, pre = summary(root, "pld_glue"), summary(root, "pld_pretraining")
    assert s["methods"][0] == "postln" and "preln_pld" in s["methods"]
    units = results.load_runs("smoke", "pld_pretraining", root=root).set_index("unit")
    for name, key in s["checkpoints"].items():  # the models pld_pretraining's full runs saved, by unit
        arch, rate_of = pld_runs.RUNS[name]
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
    jobs = runner.jobs_for(["pld_pretraining", "pld_glue"], "smoke")
    plan = {j.name: runner.plan_units(j, "smoke", tmp_path) for j in jobs}
    assert " raised " not in capsys.readouterr().out  # both notebooks ran to their last cell
    states = {nb: [(u["notebook"], u["task"], u["method"], u["state"]) for u in units] for nb, units in plan.items()}
    pilot = [("pld_pretraining", "mlm_pilot", a, "missing") for _ in range(2) for a in pld_runs.ARCHS]  # rate-major
    waiting = [("pld_pretraining", "mlm", pld_runs.RUNS[n][0], "waiting") for n in pld_runs.RUNS]
    assert states["pld_pretraining"] == pilot + waiting + [("pld_pretraining", "mlm", m, "missing")
                                                           for m in ("unigram", "paired_step_times")]
    glue = [u for u in states["pld_glue"] if u[0] == "pld_glue"]
    assert states["pld_glue"][:len(pilot) + len(waiting)] == pilot + waiting
    assert glue == [("pld_glue", "MRPC", n, "waiting") for n in ("postln", "preln_pld", "preln_pld_best")]
    assert all(u["estimate"] for u in plan["pld_pretraining"] if u["state"] == "missing")
    assert not list((tmp_path / "smoke").glob("runs/*.json"))  # nothing was recorded


def test_gradient_norms_and_pld_schedule_plan_with_every_unit_missing(tmp_path, capsys):
    """Plan mode: both notebooks run to their last cell with no unit trained; every unit is
    listed as missing, with an estimate from a few timed steps (or one measurement)."""
    P = get_profile("smoke")
    jobs = runner.jobs_for(["gradient_norms", "pld_schedule"], "smoke")
    plan = {j.name: runner.plan_units(j, "smoke", tmp_path) for j in jobs}
    assert " raised " not in capsys.readouterr().out
    grads = [(u["task"], u["method"], u["state"]) for u in plan["gradient_norms"]]
    assert grads == [(f"{L}x{H}", f"{ln}ln", "missing") for _ in P.seeds for L, H in P.grad_shapes for ln in ("post", "pre")] \
        + [(f"{L}x{H}", "preln", "missing") for _ in P.seeds for L, H in P.grad_shapes] \
        + [("4x64", f"{ln}ln_trained", "missing") for ln in ("post", "pre")] \
        + [("4x64", m, "missing") for s in range(P.grad_curve_seeds)
           for m in ("postln_curve", "preln_curve", "preln_curve_plain") if s == 0 or not m.endswith("plain")]
    assert [(u["method"], u["state"]) for u in plan["pld_schedule"]] == [("pld_paper", "missing"), ("pld_code", "missing")]
    assert all(u["estimate"] for units in plan.values() for u in units)
    assert not list((tmp_path / "smoke").glob("runs/*.json"))  # nothing was recorded


def test_report_gives_the_pld_claims_a_verdict(root):
    check_report(root, ["postln_gradients", "postln_gradients_training", "pld_premise", "pld_time", "pld_speedup", "pld_glue"])
    text = (root / "smoke" / "REPORT.md").read_text()
    assert "| pld_glue |" in text and "![pld_speedup](pld_pretraining/val_loss.png)" in text
