"""The PLD pre-training comparison's parts: pilot runs as prefixes of full runs, the one training
time, the unigram plateau, the pilot's stability rule and rate choice, the speed-up arithmetic,
the profile's sizes, and full runs that wait for the pilot unless their rates are fixed."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import FIXTURE_DATA_DIR, tiny_mlm_data
from repro import pld_runs
from repro.data import Collator
from repro.evaluation import mlm_loss, unigram_mlm_loss
from repro.model import Bert
from repro.profiles import get_profile, pld_profile
from repro.units import pld_comparison
from repro.study import Study
from repro.train import TrainConfig, TrainResult, train, train_seconds

DATA, COLLATE = tiny_mlm_data()
RATES = {"postln": 1e-3, "preln": 4e-3, "preln_pld": 1e-3}


def run(**kw):
    torch.manual_seed(0)
    model = Bert.from_config(layers=2, hidden=32, heads=4, intermediate=64, vocab_size=500, head="mlm")
    cfg = TrainConfig(**{"max_steps": 20, "batch_size": 8, "lr": 3e-3, "progress": False, "eval_every": 4,
                         "log_every": 2, "schedule": "exp", "warmup": 0.2, "exp_every": 5, **kw})
    return train(model, DATA, COLLATE, cfg, eval_fn=lambda m: {"val": mlm_loss(m, DATA[:32], COLLATE)})


def test_a_pilot_is_the_first_steps_of_the_full_run():
    full, pilot = run(), run(stop_at=8)
    assert pilot.status == "ok" and pilot.steps == 8 and pilot.evals[-1]["step"] == 8
    assert pilot.evals == full.evals[:2]  # steps 4 and 8: same numbers
    lr_at = lambda r: {h["step"]: h["lr"] for h in r.history}  # noqa: E731
    assert lr_at(pilot)[8] == lr_at(full)[8]  # the schedule spans max_steps, not stop_at
    with pytest.raises(ValueError, match="stop_at must be in 0..max_steps"):
        TrainConfig(max_steps=10, stop_at=11)


def test_train_seconds_is_wall_clock_minus_evaluation():
    r = run()
    assert train_seconds(r) == pytest.approx(r.times["total"] - r.times["eval"]) and r.times["eval"] > 0
    assert train_seconds({"result": r}) == train_seconds(r) == train_seconds(r.times)
    h = r.history[-1]
    assert train_seconds(h) == h["total"] - h["eval"] <= train_seconds(r)
    assert train_seconds(TrainResult("ok", 1, [], [], {"total": 10.0, "eval": 3.0, "compute": 5.0, "data": 1.0}, 1, 1)) == 7.0


def test_unigram_loss_is_the_loss_of_predicting_token_frequencies():
    # CLS=1, SEP=2, PAD=0, MASK=3 are never targets; training text: token 5 three times as often as 6
    collate = Collator(pad_id=0, mlm=True, mask_id=3, vocab_size=10, special_ids=(0, 1, 2, 3))
    train_ex = [{"input_ids": np.array([1, 5, 5, 5, 6, 2])}] * 10
    valid_5 = [{"input_ids": np.array([1, 5, 5, 5, 5, 2])}] * 4
    valid_6 = [{"input_ids": np.array([1, 6, 6, 6, 6, 2])}] * 4
    # add-one smoothing over the 10-word vocabulary: q(5) = 31/50, q(6) = 11/50
    assert unigram_mlm_loss(train_ex, valid_5, collate) == pytest.approx(-math.log(31 / 50))
    assert unigram_mlm_loss(train_ex, valid_6, collate) == pytest.approx(-math.log(11 / 50))


def test_unigram_loss_scores_the_same_masked_tokens_as_mlm_loss():
    """A model that ignores its input and outputs the unigram distribution gets exactly the
    unigram loss from mlm_loss: same validation blocks, same fixed masks."""
    collate = Collator(pad_id=0, mlm=True, mask_id=3, vocab_size=500, special_ids=(0, 1, 2, 3))
    ids = [np.asarray(e["input_ids"]) for e in DATA]
    counts = np.bincount(np.concatenate(ids), minlength=500).astype(float)
    counts[[0, 1, 2, 3]] = 0
    log_q = torch.tensor(np.log(counts + 1) - np.log(counts.sum() + 500), dtype=torch.float32)

    class Frequencies(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))  # mlm_loss reads the device from a parameter

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
            target = labels[labels != -100]
            return {"loss": torch.nn.functional.cross_entropy(log_q.expand(len(target), -1), target), "labels": target}

    valid = [{"input_ids": i} for i in ids[:40]]
    assert mlm_loss(Frequencies(), valid, collate) == pytest.approx(unigram_mlm_loss(DATA, valid, collate), rel=1e-5)


def pilot_record(arch, lr, curve, start=10.0, status="ok"):
    final = curve[-1] if status == "ok" else math.nan
    return {"config": {"arch": arch, "lr": lr}, "status": status, "metrics": {"val_loss": final, "start_loss": start},
            "curve": [{"step": 10 * (i + 1), "val_loss": v} for i, v in enumerate(curve)]}


def test_pilot_stability_and_the_rates_it_chooses():
    records = [pilot_record("postln", 1e-3, [7.0, 6.5, 6.0]),
               pilot_record("postln", 2e-3, [6.8, 6.2, 5.8]),  # best
               pilot_record("postln", 4e-3, [6.5, 6.0, 6.3]),  # rebounds 0.3 above its lowest: unstable
               pilot_record("postln", 8e-3, [9.0, math.nan], status="diverged"),
               pilot_record("preln", 1e-3, [7.0, 6.6]),
               pilot_record("preln", 8e-3, [6.0, 5.5]),  # best at the top of the grid
               pilot_record("preln_pld", 1e-3, [10.2, 10.4], start=10.3),  # ends above its start
               pilot_record("preln_pld", 8e-3, [math.nan], status="diverged")]
    table = pld_runs.pilot_table(records)
    assert table["stable"].tolist() == [True, True, False, False, True, True, False, False]
    chosen = pld_runs.choose_rates(table)
    assert chosen["postln"] == {"best": 2e-3, "max_stable": 2e-3, "at_edge": False}
    assert chosen["preln"] == {"best": 8e-3, "max_stable": 8e-3, "at_edge": True}
    assert chosen["preln_pld"] == {"best": None, "max_stable": None, "at_edge": None}


def full_record(arch, lr, steps_to_5, seconds_per_step, per_sample):
    """A run whose validation loss falls linearly from 7 to 5 at step `steps_to_5`, then on to 4."""
    curve = [{"step": s, "val_loss": max(4.0, 7 - 2 * s / steps_to_5), "seconds": s * seconds_per_step}
             for s in range(100, 1001, 100)]
    return {"config": {"lr": lr, "arch": arch}, "status": "ok", "steps_done": 1000, "curve": curve,
            "metrics": {"val_loss": curve[-1]["val_loss"], "train_seconds": 1000 * seconds_per_step,
                        "time_per_sample": per_sample}}


def test_speedups_to_the_baselines_final_loss():
    runs = {"postln": full_record("postln", 5e-4, 1000, 1.0, 1.0),  # reaches its own final loss 5 at its end
            "preln": full_record("preln", 1e-3, 2000, 1.0, 1.0),  # never gets there
            "preln_pld": full_record("preln_pld", 5e-4, 1000, 0.8, 0.8),
            "preln_pld_best": full_record("preln_pld", 2e-3, 400, 0.8, 0.8)}
    t = pld_runs.speedup_table(runs, paired_ratio=0.75)
    assert t.loc["postln", ["speedup_steps", "speedup_time", "speedup_paired"]].tolist() == [1.0, 1.0, 1.0]
    assert t.loc["preln", ["steps_to_target", "speedup_steps", "speedup_paired"]].isna().all()
    best = t.loc["preln_pld_best"]
    assert best["steps_to_target"] == pytest.approx(400) and best["speedup_steps"] == pytest.approx(2.5)
    assert best["speedup_time"] == pytest.approx(1000 / 320)  # its steps cost 0.8 s, the baseline's 1 s
    assert best["speedup_paired"] == pytest.approx(2.5 / 0.75)  # the paired cost ratio, not the runs' clocks
    assert best["time_per_sample_saving"] == pytest.approx(0.2)
    assert t.loc["preln_pld", "speedup_paired"] == pytest.approx(1 / 0.75)
    runs["postln"] = None  # no baseline: nothing to compare with
    assert "speedup_steps" not in pld_runs.speedup_table(runs, 0.75).columns


def test_context_rule():
    assert pld_runs.uses_context(5.5, 6.6) and not pld_runs.uses_context(6.0, 6.6)
    assert pld_runs.uses_context(None, 6.6) is None and pld_runs.uses_context(math.nan, 6.6) is None


def test_pld_profile_sizes():
    cpu = pld_profile(get_profile("cpu"))
    assert (cpu.layers, cpu.hidden, cpu.heads, cpu.seq_len, cpu.pretrain_batch) == (12, 128, 2, 128, 32)
    assert cpu.pld_pilot_steps < cpu.pretrain_steps and len(cpu.pld_lrs) >= 3
    assert get_profile("cpu").layers == 4  # the shared size the other notebooks use is unchanged
    paper = pld_profile(get_profile("paper"))
    assert (paper.layers, paper.pretrain_steps, paper.pld_pilot_steps) == (12, 200_000, 5000)
    bare = pld_profile(replace(get_profile("smoke"), pld_steps=None, pld_pilot_steps=None, pld_lrs=()))
    assert bare.pretrain_steps == 40 and bare.pld_pilot_steps == 4  # the shared steps, a tenth of them
    assert bare.pld_lrs == pytest.approx(tuple(1e-3 * f for f in (0.5, 1, 2, 4, 8)))


@pytest.mark.parametrize("rates, full_state", [(None, "waiting"), (RATES, "missing")])
def test_full_runs_wait_for_the_pilot_unless_their_rates_are_fixed(tmp_path, monkeypatch, rates, full_state):
    for var, value in (("REPRO_RESULTS_DIR", tmp_path / "r"), ("REPRO_CACHE_DIR", tmp_path / "c"), ("REPRO_PLAN", "1"),
                       ("REPRO_PROBE_STEPS", "1"), ("TMPDIR", tmp_path)):
        monkeypatch.setenv(var, str(value))
    study = Study("pld_pretraining", "smoke")
    cmp = pld_comparison(study, pld_profile(get_profile("smoke")), 0, rates=rates, measure=False, data_dir=FIXTURE_DATA_DIR)
    assert cmp["runs"] == dict.fromkeys(pld_runs.RUNS) and not any(cmp["pilot"])  # plan mode: nothing trained
    states = [(u["task"], u["state"]) for u in study.units]
    assert states == [("mlm_pilot", "missing")] * 6 + [("mlm", full_state)] * (4 if rates is None else 3)
    if rates:  # PLD's fixed rate is the baseline's: one run serves both
        assert cmp["lrs"] == RATES


def test_a_pilot_longer_than_a_full_run_is_one_clear_error():
    P = pld_profile(get_profile("smoke", pld_steps=20, pld_pilot_steps=20))
    with pytest.raises(ValueError, match="a pilot of 20 steps must be shorter than a full run .20 steps.: set pilot_steps below steps"):
        pld_comparison(Study("pld_pretraining", "smoke"), P, 0)
