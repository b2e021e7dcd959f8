"""The benchmark runs at smoke size and writes well-formed JSON (its timings are not checked here:
speed is measured by `python -m repro bench`, never asserted in tests)."""
import json
import math

from repro.__main__ import main


def test_bench_smoke_writes_json(tmp_path, capsys):
    assert main(["bench", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench.json").read_text())
    for key in ("pld_efficiency", "ticket_efficiency", "hf_speedup"):
        assert isinstance(res[key], float) and math.isfinite(res[key])
    for key, (lo, hi) in res["spread"].items():  # the range over repetitions holds the median
        assert lo <= res[key] <= hi
    assert set(res["cases"]) == {"dense_pre", "dense_post", "hf_mlm", "pld", "ticket_mlm", "dense_cls", "ticket_cls"}
    c = res["cases"]
    # what the ratios stand on: skipped and sliced work really is smaller
    assert c["pld"]["train_flops_per_step"] < c["dense_pre"]["train_flops_per_step"]
    assert c["ticket_mlm"]["params"] < c["dense_pre"]["params"]
    assert c["hf_mlm"]["train_flops_per_step"] > c["dense_post"]["train_flops_per_step"]
    assert res["provenance"]["torch"] and "hf_speedup" in capsys.readouterr().out
