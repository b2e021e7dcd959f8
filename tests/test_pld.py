"""Progressive Layer Dropping: schedule formulas, gate sampling, the hook inside the training
loop (dropped blocks really skipped, exact resume), and the per-layer analyses."""
import math

import pandas as pd

import pytest
import torch

from repro import pld, pld_runs
from repro.analysis import block_io_similarity, layer_grad_norms, paired_step_times, steps_to_reach
from repro.model import Bert
from repro.train import Hook, TrainConfig, train

VOCAB, SEQ, L = 50, 12, 4


def tiny(ln="pre", layers=L, seed=0):
    torch.manual_seed(seed)
    return Bert.from_config(layers=layers, hidden=16, heads=2, intermediate=32, vocab_size=VOCAB,
                            max_position=SEQ, ln=ln, head="mlm")


def examples(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, VOCAB, (SEQ,), generator=g)} for _ in range(n)]


def collate(batch, generator=None):
    """A minimal MLM collator: 25% of positions (at least one) become [MASK]=4 and are labelled."""
    ids = torch.stack([e["input_ids"] for e in batch])
    sel = torch.rand(ids.shape, generator=generator) < 0.25
    sel[:, 0] = True
    labels = torch.where(sel, ids, torch.full_like(ids, -100))
    return {"input_ids": ids.masked_fill(sel, 4), "attention_mask": torch.ones_like(ids), "labels": labels}


def cfg(**kw):
    base = dict(max_steps=6, batch_size=8, lr=1e-3, warmup=0, device="cpu", progress=False, log_every=1)
    return TrainConfig(**{**base, **kw})


# -- schedule ----------------------------------------------------------------------------------
def test_theta_formula_and_official_defaults():
    assert pld.theta(0) == 1.0
    assert pld.theta(1000) == pytest.approx(0.684, abs=5e-4)  # (1-0.5) e^-1 + 0.5
    assert pld.theta(3000) == pytest.approx(0.525, abs=5e-4)
    assert pld.theta(10**7) == pytest.approx(0.5)
    assert pld.theta(500, theta_bar=0.3, gamma=0.01) == pytest.approx(0.7 * math.exp(-5) + 0.3)


def test_keep_probs_paper_vs_code():
    p = pld.keep_probs(0.5, 12, "paper")
    assert p[-1] == pytest.approx(0.5) and p[0] == pytest.approx(1 - 0.5 / 12)  # top kept w.p. theta
    assert all(a > b for a, b in zip(p, p[1:]))  # deeper blocks are dropped more
    c = pld.keep_probs(0.5, 12, "code")
    assert c[0] == 1.0 and c[-1] == pytest.approx(1 - 11 * 0.5 / 12)  # block 0 never dropped
    assert pld.expected_layers(0.5, 12, "paper") == pytest.approx(8.75)
    assert pld.expected_layers(0.5, 12, "code") == pytest.approx(9.25)
    assert pld.expected_compute_fraction(1.0, 12) == 1.0
    # paper rescales by its own p_i; the code by the next block's sampling probability
    assert pld.branch_scales(0.5, 12, "paper") == pytest.approx([1 / q for q in p])
    assert pld.branch_scales(0.5, 12, "code") == pytest.approx([1 / q for q in c[1:] + [0.5]])
    with pytest.raises(ValueError):
        pld.keep_probs(0.5, 12, "nope")


def test_gates_scale_and_reproducibility():
    h = pld.PLD(theta_bar=0.5, gamma=0.01, seed=3)
    g = h.gates(200, 0, 12)
    scales = pld.branch_scales(h.theta(200), 12)
    assert all(s is None or s == pytest.approx(scales[i]) for i, s in enumerate(g))
    # same seed -> same gates (what data-parallel ranks need); other seed/step/micro -> other gates
    assert pld.PLD(0.5, 0.01, seed=3).gates(200, 0, 12) == g
    draws = {tuple(x is None for x in pld.PLD(0.5, 0.01, seed=s).gates(t, m, 12))
             for s, t, m in [(3, 200, 0), (4, 200, 0), (3, 201, 0), (3, 200, 1), (5, 300, 2)]}
    assert len(draws) > 1
    # the global RNG is neither used nor disturbed (dropout streams stay those of a plain run)
    state = torch.get_rng_state()
    h.gates(5, 0, 12)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("variant", ["paper", "code"])
def test_empirical_keep_frequency_matches_p(variant):
    h = pld.PLD(theta_bar=0.5, gamma=0.002, variant=variant, seed=0)
    n_layers, steps = 6, 3000
    for t in range(steps):
        g = h.gates(t, 0, n_layers)
        h.record.append("".join("0" if s is None else "1" for s in g))
        h.record_steps.append(t)
    r = h.realized_vs_expected(n_layers)
    assert r["n"] == steps
    for f, e, sd in zip(r["realized"], r["expected"], r["std"]):
        assert abs(f - e) <= 4.5 * sd + 1e-12  # binomial interval (4.5 sigma: ~1e-5 false alarms)
    assert r["compute_expected"] < 0.9 and abs(r["compute_realized"] - r["compute_expected"]) < 0.02
    if variant == "code":
        assert r["realized"][0] == 1.0


# -- the hook in the training loop ------------------------------------------------------------
class CallCounter:
    def __init__(self, model):
        self.calls = [0] * len(model.blocks)
        for i, b in enumerate(model.blocks):
            b.register_forward_pre_hook(lambda m, a, i=i: self.calls.__setitem__(i, self.calls[i] + 1))


def test_dropped_block_is_not_computed_and_gets_no_grad():
    model = tiny(layers=6)
    hook = pld.PLD(theta_bar=0.5, gamma=10.0, seed=1)  # theta(0) = 1, theta ~ 0.5 from step 1
    mixed = lambda g: any(x is None for x in g) and any(x is not None for x in g)  # noqa: E731
    gates = next(g for g in (hook.gates(t, 0, 6) for t in range(1, 100)) if mixed(g))
    calls = CallCounter(model)
    batch = collate(examples(8), torch.Generator().manual_seed(0))
    model.train()
    model(**batch, gates=gates)["loss"].backward()
    for i, (g, b) in enumerate(zip(gates, model.blocks)):
        grads = [p.grad for p in b.parameters()]
        if g is None:
            assert calls.calls[i] == 0 and all(x is None for x in grads)
        else:
            assert calls.calls[i] == 1 and all(x is not None and x.abs().sum() > 0 for x in grads)


def test_hook_drives_training_and_records_what_ran():
    model = tiny(layers=6)
    calls = CallCounter(model)
    hook = pld.PLD(theta_bar=0.5, gamma=1.0, seed=0)
    batch = collate(examples(4), torch.Generator().manual_seed(1))
    evals = []

    def eval_fn(m):  # the loop's evaluation: every block must run, and nothing is recorded
        before = list(calls.calls)
        evals.append(m(**batch)["loss"].item())
        assert [a - b for a, b in zip(calls.calls, before)] == [1] * 6
        return {"loss": evals[-1]}
    res = train(model, examples(), collate, cfg(max_steps=20, grad_accum=2, eval_every=10), eval_fn=eval_fn,
                hooks=[hook])
    assert res.status == "ok" and len(evals) == 2
    K = hook.keep_matrix()
    assert K.shape == (40, 6) and hook.record_steps == [s for s in range(20) for _ in range(2)]
    assert K.sum() < K.numel()  # some blocks were dropped
    # training ran exactly the recorded blocks; each of the two evaluations ran all of them once
    assert calls.calls == (K.sum(0) + 2).int().tolist()


def test_eval_output_is_independent_of_the_hook():
    model = tiny(layers=6)
    hook = pld.PLD(theta_bar=0.5, gamma=1.0)
    batch = collate(examples(4), torch.Generator().manual_seed(1))
    loop = type("L", (), {"model": model, "step": 50, "micro": 0})
    train_kw = hook.forward_kwargs(loop)  # in training the hook drops blocks at this step...
    assert None in train_kw["gates"] and len(hook.record) == 1
    model.eval()
    assert hook.forward_kwargs(loop) == {} and len(hook.record) == 1  # ...in evaluation it never does
    plain = model(**batch)["loss"]
    assert not torch.equal(model(**batch, **train_kw)["loss"], plain)  # the gates would have mattered
    torch.testing.assert_close(model(**batch, **hook.forward_kwargs(loop))["loss"], plain, rtol=0, atol=0)


def test_theta_bar_one_reproduces_plain_preln_exactly():
    plain = train(tiny(), examples(), collate, cfg(max_steps=5))
    hook = pld.PLD(theta_bar=1.0, gamma=0.001)
    withh = train(tiny(), examples(), collate, cfg(max_steps=5), hooks=[hook])
    assert [r["loss"] for r in withh.history] == [r["loss"] for r in plain.history]
    assert set(hook.record) == {"1" * L}


def test_hook_changes_training_when_it_drops():  # the test above can fail: dropping changes losses
    plain = train(tiny(), examples(), collate, cfg(max_steps=5))
    withh = train(tiny(), examples(), collate, cfg(max_steps=5), hooks=[pld.PLD(0.5, gamma=1.0)])
    assert [r["loss"] for r in withh.history] != [r["loss"] for r in plain.history]


class Killed(Exception):
    pass


class Crash(Hook):
    """Kills the run (an exception, like a lost machine) after step `at`."""
    def __init__(self, at):
        self.at = at

    def on_step_end(self, loop):
        if loop.step == self.at:
            raise Killed


def test_state_dict_roundtrip_and_mismatch():
    h = pld.PLD(0.5, 0.01, seed=2)
    h.record, h.record_steps = ["1011", "1111"], [0, 1]
    h2 = pld.PLD(0.5, 0.01, seed=2)
    h2.load_state_dict(h.state_dict())
    assert h2.record == h.record and h2.record_steps == h.record_steps
    with pytest.raises(ValueError):
        pld.PLD(0.5, 0.01, seed=3).load_state_dict(h.state_dict())


def test_resume_with_pld_matches_uninterrupted_run(tmp_path):
    full_hook = pld.PLD(0.5, gamma=0.5, seed=7)
    full = train(tiny(), examples(), collate, cfg(max_steps=8), hooks=[full_hook])
    ck = dict(checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=3)
    with pytest.raises(Killed):  # killed after step 5; last checkpoint at step 3
        train(tiny(), examples(), collate, cfg(max_steps=8, **ck), hooks=[pld.PLD(0.5, gamma=0.5, seed=7), Crash(5)])
    resumed_hook = pld.PLD(0.5, gamma=0.5, seed=7)
    resumed = train(tiny(seed=99), examples(), collate, cfg(max_steps=8, **ck), hooks=[resumed_hook])
    assert resumed.history[-1]["loss"] == full.history[-1]["loss"]
    assert resumed_hook.record == full_hook.record and resumed_hook.record_steps == full_hook.record_steps


# -- analyses ------------------------------------------------------------------------------------
def test_layer_grad_norms_match_backward():
    model = tiny()
    batch = collate(examples(8), torch.Generator().manual_seed(0))
    r = layer_grad_norms(model, batch)
    assert len(r["param"]) == L and len(r["input"]) == L and all(x > 0 for x in r["param"] + r["input"])
    assert all(p.grad is None for p in model.parameters())  # model's grads untouched
    model.eval()
    model(**batch)["loss"].backward()
    for i, b in enumerate(model.blocks):
        ref = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in b.parameters()))
        assert r["param"][i] == pytest.approx(ref, rel=1e-5)


def test_block_io_similarity_identity_and_change():
    model = tiny()
    batch = collate(examples(4), torch.Generator().manual_seed(0))
    r = block_io_similarity(model, batch)
    assert len(r["cosine"]) == L and all(-1 <= c <= 1 for c in r["cosine"])
    assert all(d > 0 for d in r["l2"])
    for b in model.blocks:  # a PreLN block whose branches output zero is the identity
        torch.nn.init.zeros_(b.attn.out.weight), torch.nn.init.zeros_(b.attn.out.bias)
        torch.nn.init.zeros_(b.ffn.fc2.weight), torch.nn.init.zeros_(b.ffn.fc2.bias)
    r0 = block_io_similarity(model, batch)
    assert r0["l2"] == pytest.approx([0.0] * L, abs=1e-9) and r0["cosine"] == pytest.approx([1.0] * L)


def test_steps_to_reach():
    assert steps_to_reach([0, 10, 20], [5.0, 3.0, 1.0], 2.0) == pytest.approx(15.0)
    assert steps_to_reach([0, 10], [5.0, 3.0], 1.0) is None
    assert steps_to_reach([10, 20], [1.0, 0.5], 2.0) == 10.0
    assert steps_to_reach([0, 10, 20], [5.0, float("nan"), 1.0], 3.0) == pytest.approx(10.0)


def test_paired_step_times_sees_skipped_blocks():
    model = tiny(layers=6)
    batch = collate(examples(8), torch.Generator().manual_seed(0))
    r = paired_step_times(model, batch, [[None] * 5 + [1.0]], pairs=6)  # 1 block of 6 computed
    assert len(r["times"]["dense"]) == 6 and r["dense_s"] > 0 and r["gated_s"] > 0
    assert r["ratio"] < 1  # the gated step does less work


def test_timed_is_the_one_step_timer():
    """analysis.timed: every call of fn inside the clock; paired_step_times and the benchmark use it."""
    import time

    from repro import bench_finetune, bench_steps
    from repro.analysis import timed
    calls = []
    seconds = timed(torch.device("cpu"), lambda: (calls.append(1), time.sleep(0.01)), times=3)
    assert len(calls) == 3 and 0.03 <= seconds < 1.0
    assert bench_steps.timed is timed and bench_finetune.timed is timed


def test_rotated_step_times_rotates_the_order_and_times_every_round(monkeypatch):
    """analysis.rotated_step_times (EarlyBERT's dense / search / ticket steps): every round calls each
    step once, starting one further along; warm-up rounds are not kept; ratios are per round."""
    from repro import analysis
    order = []
    # a fake clock: a's steps take 1 s, b's 2 s and c's 3 s whatever the order
    monkeypatch.setattr(analysis, "timed", lambda device, fn: (fn(), {"a": 1.0, "b": 2.0, "c": 3.0}[order[-1]])[1])
    steps = {k: (lambda k=k: order.append(k)) for k in "abc"}
    r = analysis.rotated_step_times(steps, torch.device("cpu"), rounds=3, warmup=1)
    assert order == list("abc" "bca" "cab" "abc")  # 1 warm-up round + 3
    assert all(len(v) == 3 for v in r["times"].values())
    assert r["seconds"] == {"a": 1.0, "b": 2.0, "c": 3.0} and r["ratio"] == {"a": 1.0, "b": 2.0, "c": 3.0}
    order.clear()  # a clipped study (its Control, from the unit's context): one round, no warm-up
    r = analysis.rotated_step_times(steps, torch.device("cpu"), rounds=3, warmup=1, clip=True)
    assert order == list("abc") and all(len(v) == 1 for v in r["times"].values())


def test_glue_deltas_of_a_partial_study_leave_a_task_with_no_runs_empty():
    # PLD's SST-2 runs recorded, the baseline's not yet, CoLA (metric mcc) not at all: no pairs, no error
    runs = pd.DataFrame({"task": ["SST-2"] * 2, "method": ["preln_pld"] * 2, "seed": [0, 1],
                         "metric.accuracy": [72.6, 74.2]})
    d = pld_runs.glue_deltas(runs, pld_runs.BASELINE, ["postln", "preln_pld"], ["SST-2", "CoLA"]).set_index(["task", "metric"])
    assert d.loc[("CoLA", "mcc"), "n_seeds"] == 0 and d.loc[("SST-2", "accuracy"), "n_seeds"] == 0
