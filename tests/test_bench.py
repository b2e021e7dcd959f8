"""The benchmark runs at smoke size and writes well-formed JSON (its timings are not checked here:
speed is measured by `python -m repro bench`, never asserted in tests)."""
import json
import math

import pytest

from repro.__main__ import main
from repro.bench_steps import spec_peak_tflops


def test_bench_smoke_writes_json(tmp_path, capsys):
    assert main(["bench", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench.json").read_text())
    for key in ("pld_efficiency", "ticket_efficiency", "hf_speedup"):
        assert isinstance(res[key], float) and math.isfinite(res[key])
    for key, (lo, hi) in res["spread"].items():  # the range over repetitions holds the median
        assert lo <= res[key] <= hi
    assert set(res["cases"]) == {"dense_pre", "dense_post", "hf_mlm", "pld", "ticket_mlm", "dense_cls", "ticket_cls",
                                 "finetune_ours_grouped", "finetune_ours_random", "finetune_trainer"}
    c = res["cases"]
    # what the ratios stand on: skipped and sliced work really is smaller
    assert c["pld"]["train_flops_per_step"] < c["dense_pre"]["train_flops_per_step"]
    assert c["ticket_mlm"]["params"] < c["dense_pre"]["params"]
    assert c["hf_mlm"]["train_flops_per_step"] > c["dense_post"]["train_flops_per_step"]
    assert res["provenance"]["torch"] and "hf_speedup" in capsys.readouterr().out
    # MFU: no spec peak for a CPU, but the measured-matmul reference is always there
    assert res["mfu"] is None and res["peak_tflops"] is None
    assert 0 < res["matmul_mfu"] < 1.5 and res["matmul_peak_tflops"] > 0
    # fine-tuning against transformers.Trainer: every case trained the same whole epochs
    f = res["finetune"]
    assert res["case_groups"] == ["steps", "finetune"] and f["rounds"] == 2 and res["targets"]["finetune_speedup"] == 1.3
    for key in ("finetune_speedup", "finetune_grouping_speedup", "finetune_loop_speedup"):
        assert isinstance(res[key], float) and math.isfinite(res[key]) and res[key] > 0
    real = {r["real_tokens_per_epoch"] for name, r in c.items() if name.startswith("finetune_")}
    assert len(real) == 1  # the same examples, so the same tokens, in every case's epoch
    for name in ("finetune_ours_grouped", "finetune_ours_random", "finetune_trainer"):
        r = c[name]
        assert len(r["times_s"]) == 2 and r["padded_tokens_per_epoch"] >= r["real_tokens_per_epoch"] > 0
        assert r["examples_per_s"] == pytest.approx(f["examples"] / r["epoch_s"])
    assert "finetune_speedup" in (tmp_path / "bench.txt").read_text()


def test_bench_runs_one_case_group_alone(tmp_path, capsys):
    assert main(["bench", "--profile", "smoke", "--cases", "steps", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench.json").read_text())
    assert res["case_groups"] == ["steps"] and "finetune_speedup" not in res and "hf_speedup" in res
    assert not any(name.startswith("finetune") for name in res["cases"])
    assert main(["bench", "--profile", "smoke", "--cases", "nothing"]) == 2
    assert "--cases" in capsys.readouterr().err


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0),
                                        ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                                        ("Tesla T4", None)])
def test_spec_peak_names_the_variant_before_the_family(name, peak):
    assert spec_peak_tflops(name) == peak


def test_bench_rejects_a_peak_that_is_not_positive(capsys):
    assert main(["bench", "--profile", "smoke", "--peak-tflops", "0"]) == 2
    assert "--peak-tflops" in capsys.readouterr().err
