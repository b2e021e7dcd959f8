"""PreLN's official init (model.scale_residual_init) and the along-training statistics."""
import math

import torch

from repro.gradients import curve_rule, log_slope, min_lower_over_top
from repro.model import Bert, scale_residual_init


def _std(ts):
    return torch.cat([t.detach().flatten() for t in ts]).std().item()


def test_official_preln_init_scales_only_the_residual_output_projections():
    torch.manual_seed(0)
    L = 6
    model = scale_residual_init(Bert.from_config(layers=L, hidden=128, heads=2, intermediate=512, vocab_size=500,
                                                 ln="pre", head="mlm"))
    outs = [b.attn.out.weight for b in model.blocks] + [b.ffn.fc2.weight for b in model.blocks]
    others = [b.attn.qkv.weight for b in model.blocks] + [b.ffn.fc1.weight for b in model.blocks]
    assert math.isclose(_std(outs), 0.02 / math.sqrt(2 * L), rel_tol=0.03)
    assert math.isclose(_std(others), 0.02, rel_tol=0.03)
    assert math.isclose(_std([model.emb.word.weight]), 0.02, rel_tol=0.03)
    assert all(b.ln1.weight.eq(1).all() and b.ffn.fc2.bias.eq(0).all() for b in model.blocks)


def test_statistics_see_a_dip_that_the_quarter_ratio_hides():
    flat = [1.0] * 8
    dip = [1.0, 1.0, 0.2, 0.2, 0.2, 0.2, 1.0, 1.0]  # bottom quarter and top quarter alike
    assert log_slope(flat) == 0 and min_lower_over_top(flat) == 1
    assert min_lower_over_top(dip) == 0.2
    assert log_slope([0.1 * 2 ** i for i in range(6)]) > 0 > log_slope([2.0 ** -i for i in range(6)])


def test_the_relative_rule_needs_postln_shrunk_with_its_interval_and_preln_balanced_beside_it():
    import pandas as pd
    from repro.gradients import ARMS

    def table(post, post_hw, pre, n=3):
        return pd.DataFrame([{"arm": ARMS["postln_curve"], "step": 50, "measure": "input", "n": n,
                              "bottom_top": post, "bottom_top_hw": post_hw},
                             {"arm": ARMS["preln_curve"], "step": 50, "measure": "input", "n": n,
                              "bottom_top": pre, "bottom_top_hw": 0.01}])
    assert curve_rule(table(0.15, 0.05, 1.02))[0]["shown"]
    assert not curve_rule(table(0.7, 0.2, 1.02))[0]["shown"]  # interval reaches 0.8: not shrunk
    assert not curve_rule(table(0.15, 0.05, 0.5))[0]["shown"]  # PreLN off balance by half of PostLN's
    assert curve_rule(table(0.15, 0.05, 1.02, n=1)) == []  # one seed: no verdict
