"""PLD's premise search (repro.premise): the rule over constructed pilot records, and the speed-up
curve over constructed validation curves."""
import math

import pytest

from repro import premise


def _pilot(arch, lr, losses, status="ok", layers=24, hidden=128, start=10.0):
    return {"config": {"arch": arch, "lr": lr, "layers": layers, "hidden": hidden}, "status": status,
            "metrics": {"val_loss": losses[-1], "start_loss": start},
            "curve": [{"step": 10 * (i + 1), "val_loss": v} for i, v in enumerate(losses)],
            "train_curve": [{"step": 10 * (i + 1), "loss": v} for i, v in enumerate(losses)],
            "steps_done": 10 * len(losses)}


def test_the_rule_holds_only_where_postln_fails_and_pld_is_stable():
    recs = [_pilot("postln", 1e-3, [8.0, 7.0]), _pilot("preln_pld", 1e-3, [8.0, 7.1]),  # both fine
            _pilot("postln", 5e-3, [8.0, math.nan], status="diverged"), _pilot("preln_pld", 5e-3, [8.0, 7.0]),
            _pilot("postln", 1e-2, [8.0, 7.5]), _pilot("preln_pld", 1e-2, [8.0, 7.2]),  # 0.3 nats worse
            _pilot("postln", 2e-2, [8.0, 11.0]), _pilot("preln_pld", 2e-2, [8.0, 12.0])]  # PLD unstable too
    table = premise.premise_table(recs)
    assert table.loc[2, "diverged_at"] == 20 and math.isnan(table.loc[0, "diverged_at"])
    v = premise.verdicts(table)
    assert v["holds"].tolist() == [False, True, True, False]
    assert v["why"].tolist()[1:] == ["PostLN diverged at step 20", "PostLN 0.30 nats worse", "PreLN + PLD not stable"]
    assert premise.smallest(v) == {"layers": 24, "hidden": 128, "lr": 5e-3}


def test_within_the_margin_is_not_the_premise():
    v = premise.verdicts(premise.premise_table([_pilot("postln", 1e-3, [8.0, 7.19]), _pilot("preln_pld", 1e-3, [8.0, 7.0])]))
    assert not v["holds"].item() and premise.smallest(v) is None
    assert "No configuration tried shows the premise" in premise.conclusion(v, None, None, complete=True)[-1]


def test_search_order_is_depth_before_width():
    class P:
        layers, hidden, premise_shapes = 12, 128, 3
    assert premise.search_shapes(P) == ((12, 128), (24, 128), (24, 256))


def test_speedup_curve_times_each_target_loss():
    def run(losses, seconds):
        return {"metrics": {"val_loss": losses[-1]},
                "curve": [{"step": 100 * (i + 1), "val_loss": v, "seconds": s} for i, (v, s) in enumerate(zip(losses, seconds))]}
    base = run([7.0, 6.5, 6.0], [100, 200, 300])
    fast = run([6.5, 6.0, 5.5], [50, 100, 150])  # reaches every loss in half the time... and a third of the steps
    curve = premise.speedup_curve(base, fast, unigram=7.0, points=2)
    assert curve["target_val_loss"].tolist() == pytest.approx([6.5, 6.0])
    assert curve["speedup_seconds"].tolist() == pytest.approx([4.0, 3.0])
    slow = run([7.0, 6.9, 6.8], [100, 200, 300])  # never gets there
    assert premise.speedup_curve(base, slow, unigram=7.0, points=2)["speedup_seconds"].isna().all()
