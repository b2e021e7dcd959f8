
import pytest
import torch

from conftest import FIXTURE_DATA_DIR, tiny_mlm_data
from repro import earlybert_runs as ebr
from repro import earlybert_settings as ebs
from repro import earlybert_tables as ebt
from repro.earlybert import (EarlyBird, Slimming, distance_matrix, draw_masks, enable_slimming, fixed_step, flat_mask,
                             kept_counts, l1_penalty, mask_distance, masked_copy, prune, random_masks, search_plan, snapshot)
from repro.flops import flops_per_step, flops_per_token
from repro.model import Bert
from repro.train import TrainConfig, train, train_seconds

DATA, COLLATE = tiny_mlm_data()


def tiny(ln="post", head="mlm", slimming=True, layers=3, seed=0, **kw):
    torch.manual_seed(seed)
    return Bert.from_config(layers=layers, hidden=32, heads=4, intermediate=64, vocab_size=500, ln=ln,
                            head=head, slimming=slimming, **kw)


def cfg(**kw):
    return TrainConfig(**{"max_steps": 8, "batch_size": 8, "lr": 3e-3, "progress": False,
                          "schedule": "constant", "warmup": 0, **kw})


def randomise_coefs(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in model.blocks:
            b.attn.head_coef.copy_(torch.randn(b.attn.n_heads, generator=g))
            b.ffn.coef.copy_(torch.randn(len(b.ffn.coef), generator=g))


# -- coefficients and the L1 term ------------------------------------------------------------
def test_l1_term_sums_all_layers_with_its_own_lambda():
    m = tiny()
    randomise_coefs(m)
    heads, ffn = m.coefficients()
    want = 1e-4 * sum(c.abs().sum() for c in heads) + 2e-3 * sum(c.abs().sum() for c in ffn)
    assert torch.allclose(l1_penalty(m, 1e-4, 2e-3), want)
    # at init every coefficient is 1: the term is lambda * number of units
    assert l1_penalty(tiny(), 1.0, 0.0).item() == pytest.approx(3 * 4)
    assert l1_penalty(tiny(), 0.0, 1.0).item() == pytest.approx(3 * 64)
    # the hook adds the same term to the loss
    assert torch.allclose(Slimming(1e-4, 2e-3).extra_loss(type("L", (), {"model": m})), want)


def test_enable_slimming_adds_trainable_unit_coefficients():
    m = tiny(slimming=False)
    with pytest.raises(ValueError):
        m.coefficients()
    x = torch.randint(5, 500, (2, 8))
    m.eval()
    before = m.encode(x)
    enable_slimming(m)
    heads, ffn = m.coefficients()
    assert [len(c) for c in heads] == [4] * 3 and [len(c) for c in ffn] == [64] * 3
    assert all(c.requires_grad and bool((c == 1).all()) for c in heads + ffn)
    assert torch.equal(m.encode(x), before)  # coefficients of 1 change nothing
    assert any(n.endswith("head_coef") for n, _ in m.named_parameters())


# -- drawing masks ---------------------------------------------------------------------------
def test_coefficients_scale_each_heads_probabilities_and_each_neurons_activation():
    # the paper's definition, written out head by head: c_h multiplies head h's attention
    # probabilities before the product with V; c_n multiplies neuron n's GELU output
    m = tiny(layers=1).eval()
    randomise_coefs(m)
    b, x = m.blocks[0], torch.randn(2, 5, 32)
    a, d = b.attn, b.attn.head_dim
    q, k, v = a.qkv(x).split(a.n_heads * d, dim=-1)
    heads = []
    for h in range(a.n_heads):
        cols = slice(h * d, (h + 1) * d)
        probs = torch.softmax(q[..., cols] @ k[..., cols].transpose(1, 2) / d ** 0.5, dim=-1)
        heads.append((a.head_coef[h] * probs) @ v[..., cols])
    ref_attn = a.out(torch.cat(heads, dim=-1))
    ref_ffn = b.ffn.fc2(torch.nn.functional.gelu(b.ffn.fc1(x)) * b.ffn.coef)
    torch.testing.assert_close(a(x, None), ref_attn, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.ffn(x), ref_ffn, rtol=1e-5, atol=1e-6)


def test_heads_per_layer_prune_the_smallest_magnitudes():
    heads = [torch.tensor([0.9, -0.05, 0.3, 0.8, 0.01, 0.7, 0.6, -0.5, 0.2, 0.95, 0.4, 0.1])] * 2
    ffn = [torch.ones(10), torch.ones(10)]
    hm, _ = draw_masks((heads, ffn))
    assert [int(m.sum()) for m in hm] == [8, 8]  # 4 of 12 pruned in every layer at 1/3
    assert set(torch.where(~hm[0])[0].tolist()) == {1, 4, 11, 8}  # |c| = .05, .01, .1, .2
    # the official code's variant ranks the raw value: -0.5 is now among the smallest
    hm_raw, _ = draw_masks((heads, ffn), magnitude=False)
    assert not hm_raw[0][7] and hm[0][7]


def test_ffn_global_ranking_gives_uneven_layers_and_exact_total():
    ffn = [torch.linspace(0.0, 0.1, 100), torch.linspace(0.5, 1.0, 100), torch.linspace(0.05, 0.6, 100)]
    heads = [torch.ones(4)] * 3
    _, fm = draw_masks((heads, ffn), ffn_ratio=0.3)
    kept = [int(m.sum()) for m in fm]
    assert sum(kept) == 300 - 90
    assert kept[1] == 100 and 1 < kept[0] < kept[2]  # small-coefficient layers lose more
    thresh = max(c[~m].abs().max() for c, m in zip(ffn, fm) if (~m).any())
    assert all(bool((c[m].abs() >= thresh).all()) for c, m in zip(ffn, fm))  # a true global cut
    # per-layer scope instead: the same count in every layer
    _, fm_layer = draw_masks((heads, ffn), ffn_ratio=0.4, ffn_scope="layer")
    assert [int(m.sum()) for m in fm_layer] == [60, 60, 60]


def test_every_layer_keeps_one_and_ties_are_deterministic():
    ffn = [torch.full((50,), 1e-6), torch.ones(50)]  # layer 0 is globally the smallest
    _, fm = draw_masks(([torch.ones(2)] * 2, ffn), ffn_ratio=0.9)
    assert int(fm[0].sum()) == 1 and sum(int(m.sum()) for m in fm) == 100 - 90
    hm, _ = draw_masks(([torch.ones(3)], [torch.ones(4)]), head_ratio=0.9)
    assert int(hm[0].sum()) == 1  # round(0.9 * 3) = 3 would empty the layer
    ties = [torch.ones(12)]
    a, b = draw_masks((ties, ties))[0], draw_masks((ties, ties))[0]
    assert torch.equal(a[0], b[0]) and torch.equal(~a[0], torch.arange(12) < 4)  # lower index first


@pytest.mark.parametrize("kw", [{"head_ratio": 1.0}, {"head_ratio": -0.1}, {"ffn_ratio": 1.5},
                                {"ffn_scope": "model"}, {"head_scope": "Layer"}])
def test_bad_ratios_and_scopes_raise(kw):
    with pytest.raises(ValueError, match="ratio|scope"):
        draw_masks(([torch.ones(4)], [torch.ones(4)]), **kw)
    with pytest.raises(ValueError):
        Slimming(**kw)


def test_random_ticket_keeps_the_same_counts_per_layer():
    hm, fm = draw_masks(([torch.rand(12) for _ in range(3)], [torch.rand(40) + i for i in range(3)]))
    rh, rf = random_masks(hm, fm, seed=3)
    assert kept_counts((rh, rf)) == kept_counts((hm, fm))
    assert mask_distance(rf, fm) > 0
    assert kept_counts(random_masks(hm, fm, seed=4)) == kept_counts((hm, fm))
    assert all(torch.equal(a, b) for a, b in zip(rf, random_masks(hm, fm, seed=3)[1]))  # seeded


# -- distances and the detector --------------------------------------------------------------
def test_mask_distance_properties():
    g = torch.Generator().manual_seed(0)
    a = [torch.rand(12, generator=g) > 0.3, torch.rand(30, generator=g) > 0.5]
    b = [torch.rand(12, generator=g) > 0.3, torch.rand(30, generator=g) > 0.5]
    assert mask_distance(a, a) == 0
    assert mask_distance(a, [~m for m in a]) == 1
    assert mask_distance(a, b) == mask_distance(b, a)
    # the fraction of differing units over the concatenation of layers
    want = (torch.cat(a) != torch.cat(b)).float().mean().item()
    assert mask_distance(a, b) == pytest.approx(want)
    D = distance_matrix([a, b, [~m for m in a]])
    assert torch.allclose(D, D.T) and bool((D.diagonal() == 0).all()) and D[0, 2] == 1
    assert D[0, 1].item() == pytest.approx(want)
    with pytest.raises(ValueError):
        mask_distance(a, a[:1])


def _flip(mask, frac, g):
    return mask ^ (torch.rand(mask.shape, generator=g) < frac)


def test_early_bird_fires_when_masks_settle_and_not_while_they_change():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1000, generator=g) > 0.4
    det = EarlyBird(window=5, epsilon=0.1)
    fired = []
    for step in range(1, 13):  # steps 1-4 change a lot, from step 5 on the mask moves by ~2%
        m = _flip(base, 0.5, g) if step <= 4 else _flip(base, 0.01, g)
        fired.append(det.update(m, step))
    assert det.fired_step == 9  # the first step with five settled masks in the FIFO
    assert fired[:8] == [False] * 8 and all(fired[8:])
    changing = EarlyBird(window=5, epsilon=0.1)
    assert not any(changing.update(_flip(base, 0.3, g), s) for s in range(30))
    assert changing.fired_step is None
    # a FIFO that is not yet full never fires, even on identical masks
    short = EarlyBird(window=5)
    assert [short.update(base, s) for s in range(5)] == [False] * 4 + [True]


# -- the hook: record, detection, stop, resume ----------------------------------------------
def test_slimming_hook_records_detects_and_stops_the_search():
    m = tiny(head="mlm")
    hook = Slimming(record_every=2, draw_every=1, window=3, epsilon=0.5, stop_when_found=True)
    r = train(m, DATA, COLLATE, cfg(max_steps=30), hooks=[hook])
    assert r.status == "stopped" and "early-bird" in r.stop_reason
    assert hook.found_step == r.steps < 30
    assert r.history[-1]["step"] == r.steps  # the step the hook stopped at is logged
    assert hook.found_step >= 3  # the FIFO of 3 needs three draws
    assert hook.steps == list(range(2, r.steps + 1, 2))
    heads, ffn = hook.coefficients_at(len(hook.steps) - 1)
    assert [len(c) for c in heads] == [4] * 3 and [len(c) for c in ffn] == [64] * 3
    assert kept_counts(hook.ticket)["heads_per_layer"] == [3, 3, 3]
    # the coefficients moved away from 1 (they are trained, with the L1 pull)
    assert not torch.allclose(hook.head_record[-1], torch.ones(12))
    assert len(hook.draws) == r.steps and len(hook.recorded_masks()) == len(hook.steps)


def test_search_plan_fixed_point_detector_and_whole_search():
    steps, fixed, hook = search_plan(50, "fixed")
    assert steps == 50 and fixed == hook.stop_at == 10 and not hook.stop_when_found and hook.draw_every == 1
    steps, fixed, hook = search_plan(500, "detector", search_epochs=2, lambda_head=0.0)
    assert steps == 1000 and fixed == 100 and hook.stop_when_found and hook.stop_at is None and hook.draw_every == 20
    assert hook.lambda_head == 0.0
    steps, fixed, hook = search_plan(500, None)  # the whole search: every ticket is drawn from it later
    assert steps == 500 and not hook.stop_when_found and hook.stop_at is None
    with pytest.raises(ValueError, match="draw must be"):
        search_plan(10, "early")
    assert fixed_step(3) == 1 and fixed_step(313) == 63  # 20% of the epoch, never step 0
    # the fixed point ends the run there, with the schedule of the whole search
    steps, _, hook = search_plan(8, "fixed", fixed_fraction=0.25)
    r = train(tiny(), DATA, COLLATE, cfg(max_steps=steps, schedule="linear", log_every=1), hooks=[hook])
    assert r.status == "stopped" and r.steps == 2 and hook.steps == [1, 2]
    assert r.history[-1]["lr"] > 0.5 * 3e-3  # still early in the linear decay over 8 steps


def test_masks_at_redraws_the_ticket_of_any_recorded_step():
    hook = Slimming(record_every=1, draw_every=1, window=3, epsilon=0.5)
    train(tiny(head="mlm"), DATA, COLLATE, cfg(max_steps=12), hooks=[hook])
    assert hook.found_step is not None  # the detector's live ticket is the one redrawn at its step
    assert torch.equal(flat_mask(hook.masks_at(hook.found_step)), flat_mask(hook.ticket))
    sparse = Slimming(record_every=4)
    train(tiny(head="mlm"), DATA, COLLATE, cfg(max_steps=8), hooks=[sparse])
    with pytest.raises(ValueError, match="record_every=1"):
        sparse.masks_at(3)


def test_l1_shrinks_coefficients():
    runs = {}
    for lam in (0.0, 0.05):
        hook = Slimming(lam, lam, record_every=10)
        train(tiny(head="mlm", layers=2), DATA, COLLATE, cfg(max_steps=10, lr=1e-2), hooks=[hook])
        runs[lam] = (hook.head_record[-1].abs().mean() + hook.ffn_record[-1].abs().mean()).item()
    assert runs[0.05] < runs[0.0]


def test_slimming_resumes_exactly(tmp_path):
    kw = dict(record_every=1, draw_every=2, window=3, epsilon=0.05)
    full = Slimming(**kw)
    train(tiny(layers=2), DATA, COLLATE, cfg(max_steps=8), hooks=[full])
    first = Slimming(**kw)
    train(tiny(layers=2), DATA, COLLATE, cfg(max_steps=4, checkpoint_dir=str(tmp_path), checkpoint_every=3),
          hooks=[first])
    resumed = Slimming(**kw)
    train(tiny(layers=2), DATA, COLLATE, cfg(max_steps=8, checkpoint_dir=str(tmp_path), checkpoint_every=3),
          hooks=[resumed])
    assert resumed.steps == full.steps == list(range(1, 9))
    assert all(torch.equal(a, b) for a, b in zip(resumed.ffn_record, full.ffn_record))
    assert all(torch.equal(a, b) for a, b in zip(resumed.head_record, full.head_record))
    assert resumed.draws == full.draws and resumed.fired_steps() == full.fired_steps()
    # and a state_dict round trip in memory
    copy = Slimming(**kw)
    copy.load_state_dict(full.state_dict())
    assert copy.steps == full.steps and copy.fired_steps() == full.fired_steps()
    assert list(map(len, copy.detectors["ffn"].masks)) == list(map(len, full.detectors["ffn"].masks))


# -- physical pruning ------------------------------------------------------------------------
def uneven_masks(model):
    """Different numbers of heads and neurons per layer (global scope for both)."""
    randomise_coefs(model)
    with torch.no_grad():  # make layer 0 clearly the weakest so the counts really differ
        model.blocks[0].attn.head_coef.mul_(0.01)
        model.blocks[0].ffn.coef.mul_(0.01)
    masks = draw_masks(model, head_ratio=0.4, ffn_ratio=0.5, head_scope="global")
    counts = kept_counts(masks)
    assert len(set(counts["heads_per_layer"])) > 1 and len(set(counts["ffn_per_layer"])) > 1
    return masks


@pytest.mark.parametrize("ln", ["post", "pre"])
@pytest.mark.parametrize("padded", [False, True])
def test_prune_equals_the_masked_model(ln, padded):
    m = tiny(ln=ln, head=None)
    hm, fm = uneven_masks(m)
    pruned, oracle = prune(m, hm, fm), masked_copy(m, hm, fm)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(5, 500, (3, 12), generator=g)
    am = torch.ones_like(x)
    if padded:
        am[1, 7:] = 0
        am[2, 3:] = 0
    tt = torch.randint(0, 2, x.shape, generator=g)
    pruned.eval(), oracle.eval()
    with torch.no_grad():
        a, b = pruned(x, am, tt), oracle(x, am, tt)
    assert (a - b).abs().max().item() < 1e-5
    # and it is not trivially equal: the unmasked model gives something else
    m.eval()
    assert (m(x, am, tt) - b).abs().max().item() > 1e-3


def test_prune_slices_shapes_and_leaves_the_original_alone():
    m = tiny(head="cls")
    hm, fm = uneven_masks(m)
    before = snapshot(m)
    p = prune(m, hm, fm)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())  # untouched
    assert p.config.heads_per_layer == kept_counts((hm, fm))["heads_per_layer"]
    assert p.config.ffn_per_layer == kept_counts((hm, fm))["ffn_per_layer"]
    d, H = m.config.head_dim, m.config.hidden
    for b, h, f in zip(p.blocks, p.config.heads_per_layer, p.config.ffn_per_layer):
        assert b.attn.qkv.weight.shape == (3 * h * d, H) and b.attn.qkv.bias.shape == (3 * h * d,)
        assert b.attn.out.weight.shape == (H, h * d) and b.attn.n_heads == h
        assert b.ffn.fc1.weight.shape == (f, H) and b.ffn.fc2.weight.shape == (H, f)
        assert b.attn.head_coef.shape == (h,) and b.ffn.coef.shape == (f,)
    # surviving V rows of layer 0 are the original rows of the kept heads
    keep = torch.where(hm[0])[0]
    v_rows = torch.cat([torch.arange(2 * 4 * d + i * d, 2 * 4 * d + (i + 1) * d) for i in keep])
    assert torch.equal(p.blocks[0].attn.qkv.weight[2 * len(keep) * d:], m.blocks[0].attn.qkv.weight[v_rows])
    assert torch.equal(p.blocks[0].ffn.fc2.weight, m.blocks[0].ffn.fc2.weight[:, fm[0]])


def test_prune_param_count_matches_the_arithmetic():
    m = tiny(head="mlm")
    hm, fm = uneven_masks(m)
    p = prune(m, hm, fm)
    d, H = m.config.head_dim, m.config.hidden
    gone_heads = sum(int((~x).sum()) for x in hm)
    gone_neurons = sum(int((~x).sum()) for x in fm)
    per_head = 3 * d * H + 3 * d + H * d + 1  # qkv rows + bias, out columns, coefficient
    per_neuron = H + 1 + H + 1  # fc1 row + bias, fc2 column, coefficient
    assert p.num_params() == m.num_params() - gone_heads * per_head - gone_neurons * per_neuron
    assert p.mlm.word.weight is p.emb.word.weight  # the tied decoder survives the copy


def test_pruned_model_trains_and_has_fewer_flops():
    m = tiny(head="mlm")
    p = prune(m, *draw_masks(m))
    r = train(p, DATA, COLLATE, cfg(max_steps=3))
    assert r.status == "ok"
    assert all(q.grad is None for q in p.parameters())  # optimizer zeroed them after stepping
    out = p(**COLLATE(DATA[:4], generator=torch.Generator().manual_seed(0)))
    out["loss"].backward()
    assert all(q.grad is not None for n, q in p.named_parameters() if n.startswith("blocks"))
    f_dense, f_pruned = flops_per_token(m.config, 32)["blocks"], flops_per_token(p.config, 32)["blocks"]
    assert f_pruned < f_dense
    assert flops_per_step(p.config, 32, 8) < flops_per_step(m.config, 32, 8)
    # the saving is real: the pruned network's weight matrices are smaller (timing is the bench's job)
    big = Bert.from_config(layers=2, hidden=256, heads=4, intermediate=1024, vocab_size=500, slimming=True)
    small = prune(big, *draw_masks(big, head_ratio=0.5, ffn_ratio=0.5, head_scope="layer"))
    for b, s in zip(big.blocks, small.blocks):
        assert s.attn.qkv.weight.shape[0] == b.attn.qkv.weight.shape[0] // 2
        assert s.attn.out.weight.shape[1] == b.attn.out.weight.shape[1] // 2
    assert sum(s.ffn.fc1.weight.shape[0] for s in small.blocks) == sum(b.ffn.fc1.weight.shape[0] for b in big.blocks) // 2
    assert small.num_params(include_embeddings=False) < 0.6 * big.num_params(include_embeddings=False)


def test_pruned_model_save_load_round_trip(tmp_path):
    m = tiny(head="cls", ln="pre")
    p = prune(m, *uneven_masks(m))
    p.save_pretrained(tmp_path / "ticket")
    q = Bert.from_pretrained(str(tmp_path / "ticket"))
    assert q.config.heads_per_layer == p.config.heads_per_layer
    assert q.config.ffn_per_layer == p.config.ffn_per_layer and q.config.head == "cls"
    assert all(torch.equal(a, b) for a, b in zip(p.state_dict().values(), q.state_dict().values()))
    p.eval(), q.eval()
    x = torch.randint(5, 500, (2, 9))
    assert torch.equal(p(x)["logits"], q(x)["logits"])


def test_prune_rejects_bad_masks():
    m = tiny()
    hm, fm = draw_masks(m)
    with pytest.raises(ValueError):
        prune(m, hm[:2], fm)
    with pytest.raises(ValueError):
        prune(m, [torch.zeros(4, dtype=torch.bool)] + hm[1:], fm)
    with pytest.raises(ValueError):
        prune(m, hm, [torch.ones(10, dtype=torch.bool)] * 3)


# -- the experiments (repro.earlybert_runs) -------------------------------------------------
def test_a_search_stopped_at_the_detector_is_the_prefix_of_the_whole_search():
    # what lets one whole search serve every ticket, each charged only up to its draw
    runs = {}
    for stop in (True, False):
        hook = Slimming(record_every=1, draw_every=1, window=3, epsilon=0.5, stop_when_found=stop)
        r = train(tiny(head="mlm"), DATA, COLLATE, cfg(max_steps=20, schedule="linear", log_every=1), hooks=[hook])
        runs[stop] = (hook, r)
    (short, rs), (whole, rw) = runs[True], runs[False]
    assert rs.steps == short.found_step == whole.found_step < rw.steps == 20
    assert all(torch.equal(a, b) for a, b in zip(short.head_record, whole.head_record[:rs.steps]))
    assert all(torch.equal(a, b) for a, b in zip(short.ffn_record, whole.ffn_record[:rs.steps]))
    assert [h["loss"] for h in rs.history] == [h["loss"] for h in rw.history[:rs.steps]]


def test_ticket_draws_charge_the_search_up_to_each_draw():
    hook = Slimming(record_every=1, draw_every=1, window=3, epsilon=0.5)
    r = train(tiny(head="mlm"), DATA, COLLATE, cfg(max_steps=10, log_every=1), hooks=[hook])
    at = {"detector": hook.found_step, "fixed": 2, "end": r.steps}
    t = ebr.ticket_draws(hook, r, at, reference=5)
    assert [t[k]["step"] for k in at] == list(at.values())
    assert t["fixed"]["seconds"] == train_seconds(r.history[1])  # the clock when step 2 ended
    assert t["fixed"]["seconds"] < t["end"]["seconds"] == train_seconds(r)  # a ticket at the end: the whole run
    assert t["end"]["fraction"] == 2.0 and t["fixed"]["fraction"] == 0.4  # of the reference (an epoch of 5 steps)
    assert t["end"]["distance_to_last"] == {"heads": 0.0, "ffn": 0.0} and t["detector"]["found"]
    assert t["fixed"]["heads_per_layer"] == [3, 3, 3]


def test_draw_ticket_slices_the_rewound_weights():
    m = tiny(head="mlm")
    start = snapshot(m)
    hook = Slimming(record_every=1)
    train(m, DATA, COLLATE, cfg(max_steps=6), hooks=[hook])
    rewound = _load(m.config, start)
    pruned, masks = ebr.draw_ticket(rewound, hook, 4)
    assert torch.equal(flat_mask(masks), flat_mask(hook.masks_at(4)))
    ref = snapshot(prune(_load(m.config, start), *masks))  # every surviving weight is the pre-search one
    assert all(torch.equal(v, ref[k]) for k, v in snapshot(pruned).items())
    searched = snapshot(prune(m, *masks))
    assert not all(torch.equal(v, searched[k]) for k, v in snapshot(pruned).items())
    rnd, rmasks = ebr.draw_ticket(rewound, hook, 4, random_seed=3)
    assert kept_counts(rmasks) == kept_counts(masks) and rnd.num_params() == pruned.num_params()
    assert not torch.equal(flat_mask(rmasks), flat_mask(masks))


def _load(config, state):
    m = Bert(config)
    m.load_state_dict(state)
    return m


def _record(method, seed, value, search=0.0, draw=0.0, train_s=10.0, steps=20, search_steps=0, fps=1.0):
    times = {"total": train_s + 3.0, "eval": 3.0} if method == "dense" else {"search": search, "draw": draw, "train": train_s}
    r = {"task": "MRPC", "seed": seed, "method": method, "metrics": {"f1": value}, "times": times, "n_train": 100}
    if method == "dense":
        return r | {"history": [{"step": steps}]}
    return r | {"steps": {"search": search_steps, "train": steps}, "flops_per_step": fps, "params": 60,
                "dense": {"flops_per_step": 2.0, "params": 100}, "draw_step": search_steps, "draw_fraction": 0.1,
                "found": True}


def test_comparison_savings_both_ways():
    # dense: 30 steps in 30 s (evaluation excluded), 2 FLOP units a step; the ticket: a 4 s search of 3 steps,
    # 1 s to draw, 20 steps in 12 s at 1 FLOP unit: 0.6 s a step, so 30 steps would take 18 s
    recs = [_record("dense", 0, 80.0, train_s=30.0, steps=30),
            _record("detector", 0, 79.0, search=4.0, draw=1.0, train_s=12.0, steps=20, search_steps=3),
            _record("random", 0, 75.0, draw=1.0, train_s=12.0, steps=20)]
    df = ebt.comparison(recs).set_index("method")
    e = df.loc["detector"]
    assert e["time_s"] == 17.0 and df.loc["dense", "time_s"] == 30.0
    assert e["time_saving_official_pct"] == pytest.approx(100 * (1 - 17 / 30))  # as run
    assert e["time_saving_pct"] == pytest.approx(100 * (1 - (4 + 1 + 18) / 30))  # equal epochs
    assert e["flops_saving_pct"] == pytest.approx(100 * (1 - (3 * 2 + 30 * 1) / 60))
    assert e["flops_saving_official_pct"] == pytest.approx(100 * (1 - (3 * 2 + 20 * 1) / 60))
    assert df.loc["random", "search_s"] == 0 and df.loc["random", "time_saving_pct"] == pytest.approx(100 * (1 - 19 / 30))
    assert df.loc["dense", "params"] == 100 and df.loc["dense", "time_saving_pct"] == 0
    assert list(df["value"]) == [80.0, 79.0, 75.0]


def test_comparison_charges_each_run_its_steps_at_the_paired_costs():
    # the same runs, timed under different loads (the ticket's wall-clock says it saved nothing), and
    # their step costs measured side by side: a search step 1.1 dense steps, a ticket step 0.7 (dense: 2 s)
    recs = [_record("dense", 0, 80.0, train_s=30.0, steps=30),
            _record("detector", 0, 79.0, search=10.0, draw=1.0, train_s=40.0, steps=20, search_steps=3),
            _record("random", 0, 75.0, draw=1.0, train_s=40.0, steps=20) | {"config": {"like": "detector"}},
            {"task": "MRPC", "seed": 0, "method": "step_times",
             "timing": {"seconds": {"dense": 2.0}, "ratio": {"dense": 1.0, "search": 1.1, "detector": 0.7}}}]
    df = ebt.comparison(recs).set_index("method")
    e, r = df.loc["detector"], df.loc["random"]
    assert e["timing"] == r["timing"] == "paired" and df.loc["dense", "timing"] == "wall-clock"
    search = 3 * 1.1 + 1.0 / 2.0  # in dense steps: the search's 3 steps and the 1 s draw
    assert e["time_saving_pct"] == pytest.approx(100 * (1 - (search + 30 * 0.7) / 30))  # equal epochs
    assert e["time_saving_official_pct"] == pytest.approx(100 * (1 - (search + 20 * 0.7) / 30))  # as run
    assert r["time_saving_pct"] == pytest.approx(100 * (1 - (0.5 + 30 * 0.7) / 30))  # the detector ticket's sizes
    assert e["time_saving_wall_pct"] == pytest.approx(100 * (1 - (10 + 1 + 60) / 30))  # the wall-clock one, kept
    # another seed without a timing record keeps its wall-clock saving
    more = ebt.comparison(recs + [_record("dense", 1, 80.0, train_s=30.0, steps=30),
                                  _record("detector", 1, 79.0, search=4.0, draw=1.0, train_s=12.0, steps=20, search_steps=3)])
    other = more[(more.seed == 1) & (more.method == "detector")].iloc[0]
    assert other["timing"] == "wall-clock" and other["time_saving_pct"] == pytest.approx(100 * (1 - 23 / 30))


def test_early_bird_table_pairs_by_seed_and_its_rule():
    recs = []
    for seed, noise in enumerate((-2.0, 0.0, 2.0)):  # seed effects cancel in the paired differences
        recs += [_record("dense", seed, 80 + noise)] + [_record(t, seed, v + noise) for t, v in
                                                        (("detector", 79.5), ("fixed", 79.0), ("end", 80.0), ("random", 76.0))]
    table = ebt.early_bird_table(ebt.comparison(recs)).loc["all tasks"]
    assert table["detector-end"] == pytest.approx(-0.5) and table["fixed-random"] == pytest.approx(3.0)
    assert table["detector-end_hw"] == pytest.approx(0.0, abs=1e-9) and table["n"] == 3
    assert table["detector"] == pytest.approx(79.5) and table["detector_hw"] > 1  # unpaired: the seeds' spread
    assert ebt.early_tickets_hold(-0.5, 0.1, "end") and not ebt.early_tickets_hold(-2.0, 0.5, "end")
    assert ebt.early_tickets_hold(-2.0, 2.5, "end")  # the interval reaches 0
    assert ebt.early_tickets_hold(0.2, 5.0, "random") and not ebt.early_tickets_hold(-0.1, 0.0, "random")
    assert not ebt.early_tickets_hold(float("nan"), float("nan"), "end")


def test_recipe_overrides_and_the_squad_gate():
    assert ebs.recipe(ebs.GLUE_RECIPE, {"epsilon": 0.05}).epsilon == 0.05
    with pytest.raises(ValueError, match="unknown recipe field.*epsilonn.*valid fields are"):
        ebs.recipe(ebs.GLUE_RECIPE, {"epsilonn": 0.05})
    assert "ticket_lr" not in ebs.GLUE_RECIPE.search_config()  # how a ticket trains does not change the search
    dense = {"metrics": {"f1": 49.9}}
    assert ebr.squad_gate(None, 50) == "waiting" and ebr.squad_gate(dense, 50) == "failed"
    assert ebr.squad_gate({"metrics": {"f1": 50.0}}, 50) == "passed" and ebr.squad_gate(None, 0) == "off"


def test_squad_halves_are_split_by_article_at_the_profiles_sizes(tokenizer):
    from repro import squad as Q
    from repro.profiles import get_profile
    P = get_profile("smoke")
    s = ebs.Setting(ebs.SQUAD, P, FIXTURE_DATA_DIR)
    train_f, (eval_q, eval_f, eval_json), _ = s.data(tokenizer, seed=0)
    halves = Q.squad_article_split(Q.load_squad(FIXTURE_DATA_DIR), eval_fraction=ebs.SQUAD_SPLIT["eval_fraction"],
                                   seed=ebs.SQUAD_SPLIT["seed"])
    contexts = [{p["context"] for a in h["data"] for p in a["paragraphs"]} for h in halves]
    assert len(halves[0]["data"]) == len(halves[1]["data"]) == 24 and not contexts[0] & contexts[1]  # 48 articles
    # evaluation: the profile's first questions of the evaluation half, its answers filtered to them
    assert len(eval_q) == P.squad_eval_questions and {q["context"] for q in eval_q} <= contexts[1]
    assert {q["id"] for a in eval_json["data"] for p in a["paragraphs"] for q in p["qas"]} == {q["id"] for q in eval_q}
    assert {f["example_id"] for f in eval_f} == {q["id"] for q in eval_q}
    # windows of the profile's length, overlapping: long contexts give a question several windows
    assert max(len(f["input_ids"]) for f in train_f + eval_f) == P.squad_seq_len
    assert len(train_f) > P.squad_train_questions and len(eval_f) > len(eval_q)
    # another seed draws other training questions, never other evaluation questions
    train1, (eval_q1, _, _), _ = s.data(tokenizer, seed=1)
    assert [q["id"] for q in eval_q1] == [q["id"] for q in eval_q]
    assert [f["input_ids"] for f in train1] != [f["input_ids"] for f in train_f]
    assert len(s.data(tokenizer, seed=0, eval_limit=8)[1][0]) == 8
