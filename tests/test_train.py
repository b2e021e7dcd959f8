import math
import statistics
from dataclasses import asdict

import pytest
import torch

from conftest import tiny_mlm_data
from repro.model import Bert
from repro.evaluation import mlm_loss
from repro.runtime import GROUP_STREAM, _generator, length_grouped_order
from repro.train import Hook, Loop, TrainConfig, lr_factor, train

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


# -- length-grouped batches ------------------------------------------------------------------
def varlen_data(n=128, seed=0):
    """tiny_mlm_data's rows cut to random lengths 6..32, and a collator that pads them."""
    g = torch.Generator().manual_seed(seed)
    cut = torch.randint(6, 33, (n,), generator=g).tolist()
    examples = [{"input_ids": e["input_ids"][:k], "id": i} for i, (e, k) in enumerate(zip(DATA[:n], cut))]

    def collate(exs, generator=None):
        width = max(len(e["input_ids"]) for e in exs)
        ids = torch.zeros(len(exs), width, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, e in enumerate(exs):
            ids[i, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
            attn[i, :len(e["input_ids"])] = 1
        chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & attn.bool()
        chosen[:, 1] = True  # at least one masked token per row (every row has >= 6 tokens)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        return {"input_ids": ids.masked_fill(chosen, 3), "attention_mask": attn, "labels": labels}
    return examples, collate


def padded_tokens(order, lengths, bs):
    return sum(max(lengths[i] for i in order[s:s + bs]) * len(order[s:s + bs]) for s in range(0, len(order), bs))


@pytest.mark.parametrize("n, bs", [(1000, 32), (3668, 32), (100, 16), (96, 16), (5, 8), (1, 4), (130, 8)])
def test_length_grouped_order_is_a_permutation_with_full_batches_first(n, bs):
    g = torch.Generator().manual_seed(n)
    lengths = torch.randint(5, 129, (n,), generator=g).tolist()
    order = length_grouped_order(lengths, bs, _generator(0, GROUP_STREAM, 0))
    assert sorted(order) == list(range(n))  # every example exactly once
    batches = [order[s:s + bs] for s in range(0, n, bs)]
    assert all(len(b) == bs for b in batches[:-1])  # only the last batch may be short
    full = [b for b in batches if len(b) == bs] or batches
    assert max(lengths[i] for i in full[0]) == max(lengths[i] for b in full for i in b)  # longest first


def test_length_grouped_batches_are_homogeneous_and_seeded():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(19, 101, (1000,), generator=g).tolist()
    bs = 32
    grouped = length_grouped_order(lengths, bs, _generator(0, GROUP_STREAM, 0))
    rand = torch.randperm(1000, generator=_generator(0, 0)).tolist()
    # padding: random batches are padded to nearly the longest example, grouped ones are not
    real = sum(lengths)
    assert padded_tokens(grouped, lengths, bs) - real < 0.25 * (padded_tokens(rand, lengths, bs) - real)
    # the spread of lengths inside a batch: a fraction of a random batch's
    def spread(order):
        return statistics.mean(max(lengths[i] for i in order[s:s + bs]) - min(lengths[i] for i in order[s:s + bs])
                               for s in range(0, 1000, bs))
    assert spread(grouped) < 0.25 * spread(rand)
    # batches are shuffled, not in length order
    widths = [max(lengths[i] for i in grouped[s:s + bs]) for s in range(0, 992, bs)]
    assert widths != sorted(widths, reverse=True) and widths[0] == max(widths)
    assert grouped == length_grouped_order(lengths, bs, _generator(0, GROUP_STREAM, 0))
    assert grouped != length_grouped_order(lengths, bs, _generator(1, GROUP_STREAM, 0))  # other seed
    assert grouped != length_grouped_order(lengths, bs, _generator(0, GROUP_STREAM, 1))  # next epoch


def test_loop_groups_each_epoch_and_records_the_setting():
    data, collate = varlen_data()
    seen = []

    def spy(exs, generator=None):
        seen.append([e["id"] for e in exs])
        return collate(exs, generator)
    c = cfg(max_steps=48, group_by_length=True, eval_every=0)  # 3 epochs of 16 batches of 8
    loop = Loop(model(), data, spy, c)
    loop.run()
    assert asdict(loop.cfg)["group_by_length"] is True
    lengths = [len(e["input_ids"]) for e in data]
    for epoch in range(3):
        ids = [i for b in seen[16 * epoch:16 * (epoch + 1)] for i in b]
        assert sorted(ids) == list(range(len(data)))  # each example once per epoch
    first = [i for b in seen[:16] for i in b]
    assert padded_tokens(first, lengths, 8) < padded_tokens(torch.randperm(128, generator=_generator(0, 0)).tolist(),
                                                            lengths, 8)
    assert seen[:16] != seen[16:32]  # a new grouping every epoch


def test_grouped_order_depends_on_the_seed():
    data, collate = varlen_data()

    def losses(seed):
        return [h["loss"] for h in train(model(), data, collate, cfg(max_steps=6, seed=seed, group_by_length=True,
                                                                      eval_every=0, log_every=1)).history]
    a, b, c = losses(0), losses(0), losses(1)
    assert a == b and a != c


@pytest.mark.parametrize("group", [False, True])
def test_resume_with_length_grouping_ends_with_same_numbers(tmp_path, group):
    data, collate = varlen_data()

    def go(hooks=(), **kw):
        return train(model(), data, collate, cfg(grad_accum=2, group_by_length=group, **kw),
                     eval_fn=lambda m: {"val": mlm_loss(m, data[:32], collate)}, hooks=hooks)
    ref = go()
    with pytest.raises(KeyboardInterrupt):  # killed at step 13, mid-epoch (8 steps an epoch)
        go(checkpoint_dir=str(tmp_path), checkpoint_every=5, hooks=[Crash()])
    resumed = go(checkpoint_dir=str(tmp_path), checkpoint_every=5)
    assert resumed.evals == ref.evals
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in ref.history]
