import math

import pytest
import torch

from conftest import tiny_mlm_data
from repro.model import Bert
from repro.train import Hook, TrainConfig, lr_factor, mlm_loss, train

DATA, COLLATE = tiny_mlm_data()


def model(ln="pre"):
    torch.manual_seed(0)
    return Bert.from_config(layers=2, hidden=32, heads=4, intermediate=64, vocab_size=500, ln=ln, head="mlm")


def run(cfg, hooks=()):
    return train(model(), DATA, COLLATE, cfg, eval_fn=lambda m: {"val": mlm_loss(m, DATA[:32], COLLATE)}, hooks=hooks)


def cfg(**kw):
    return TrainConfig(**{"max_steps": 20, "batch_size": 8, "lr": 3e-3, "progress": False,
                          "eval_every": 10, "log_every": 5, **kw})


def test_loss_goes_down_and_result_is_complete():
    r = run(cfg(max_steps=40))
    assert r.status == "ok" and r.steps == 40
    assert r.history[-1]["loss"] < r.history[0]["loss"]
    assert [e["step"] for e in r.evals] == [10, 20, 30, 40]
    assert r.samples == 40 * 8 and r.tokens == 40 * 8 * 32
    assert r.times["compute"] > 0 and r.times["data"] > 0 and r.times["total"] >= r.times["compute"]


def test_same_seed_same_numbers_and_other_seed_differs():
    a, b, c = run(cfg()), run(cfg()), run(cfg(seed=1))
    assert a.history == [{**h, **{k: a.history[i][k] for k in ("compute", "data", "eval", "total")}}
                         for i, h in enumerate(b.history)]
    assert a.evals == b.evals
    assert c.evals[-1]["val"] != a.evals[-1]["val"]


class Crash(Hook):
    def on_step_end(self, loop):
        if loop.step == 13:
            raise KeyboardInterrupt  # a run killed mid-way


def test_resume_ends_with_same_numbers(tmp_path):
    ref = run(cfg(grad_accum=2))
    with pytest.raises(KeyboardInterrupt):
        run(cfg(grad_accum=2, checkpoint_dir=str(tmp_path), checkpoint_every=5), hooks=[Crash()])
    resumed = run(cfg(grad_accum=2, checkpoint_dir=str(tmp_path), checkpoint_every=5))
    assert resumed.evals == ref.evals
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in ref.history]


def test_divergence_is_recorded_not_raised():
    class Explode(Hook):
        def extra_loss(self, loop):
            return torch.tensor(float("nan")) if loop.step == 4 else None
    r = run(cfg(), hooks=[Explode()])
    assert r.status == "diverged" and r.steps == 5 and math.isnan(r.history[-1]["loss"])
    assert "non-finite" in r.stop_reason


def test_hook_can_stop_and_add_kwargs():
    seen = []

    class Stopper(Hook):
        def forward_kwargs(self, loop):
            seen.append(loop.step)
            return {"gates": [1.0, None]}

        def on_step_end(self, loop):
            if loop.step == 3:
                loop.stop = "found it"
    r = run(cfg(), hooks=[Stopper()])
    assert r.status == "stopped" and r.steps == 3 and r.stop_reason == "found it" and seen == [0, 1, 2]


def test_schedules():
    lin = TrainConfig(max_steps=100, warmup=0.1)
    assert lr_factor(0, lin) == pytest.approx(0.1) and lr_factor(9, lin) == 1.0
    assert lr_factor(55, lin) == pytest.approx(0.5)
    exp = TrainConfig(max_steps=10_000, warmup=200, schedule="exp")  # PLD recipe
    assert lr_factor(1200, exp) == pytest.approx(0.99)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(max_steps=1, schedule="cosine")
