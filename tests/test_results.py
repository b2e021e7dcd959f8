"""The results store: append-only JSON records, pandas reports, notebook helpers."""
import json
import math
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from repro import results as R


def _rec(root, **kw):
    args = dict(notebook="nb", profile="smoke", task="MRPC", method="pld", seed=0,
                metrics={"acc": 0.8}, times={"train_s": 1.0}, config={"lr": 1e-3}, root=root)
    return R.record(**{**args, **kw})


def _files(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def test_paths(tmp_path, monkeypatch):
    from repro.control import Control
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "r"))
    root = Control.from_environ().results_dir  # read at the top, passed down
    assert R.results_root(root) == tmp_path / "r"
    d = R.output_dir("smoke", "fig1", root)
    # outside the runner a notebook writes to a scratch folder of its own, never the runner's
    assert d == tmp_path / "r" / "_scratch" / "smoke" / "fig1" and d.is_dir()
    assert R.output_path("smoke", "fig1", root) == tmp_path / "r" / "smoke" / "fig1"
    assert R.results_root() == R.REPO_ROOT / "results"  # the environment is not read below the top
    monkeypatch.delenv("REPRO_RESULTS_DIR")
    assert R.results_root(Control.from_environ().results_dir) == R.REPO_ROOT / "results"


def test_the_execution_is_passed_down_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_EXECUTION_ID", "from-the-environment")
    assert _rec(tmp_path)["execution"] is None and _rec(tmp_path, execution="e1")["execution"] == "e1"
    R.write_summary(tmp_path, {"x": 1}, execution="e2")
    assert json.loads((tmp_path / "summary.json").read_text())["execution"] == "e2"
    R.write_summary(tmp_path, {"x": 1})
    assert json.loads((tmp_path / "summary.json").read_text())["execution"] is None


def test_record_twice_makes_two_files(tmp_path):
    a, b = _rec(tmp_path), _rec(tmp_path)
    files = _files(tmp_path)
    assert len(files) == 2 and a["run_id"] != b["run_id"]
    assert all(f.parent == tmp_path / "smoke" / "runs" and "-nb-" in f.name for f in files)
    assert {json.loads(f.read_text())["run_id"] for f in files} == {a["run_id"], b["run_id"]}


def test_round_trip_nan_inf_and_status(tmp_path):
    @dataclass
    class Cfg:
        lr: float
        seeds: tuple

    _rec(tmp_path, seed=0, metrics={"acc": 0.8, "loss": 0.5})
    _rec(tmp_path, seed=1, status="diverged", metrics={"acc": 0.5, "loss": float("nan")},
         times={"train_s": float("inf")}, config={"model": Cfg(np.float32(0.5), (0, 1)), "p": Path("/x")},
         note="extra key")
    _rec(tmp_path, profile="cpu", notebook="other")
    # the files are strict JSON: no NaN/Infinity tokens
    for f in _files(tmp_path):
        json.loads(f.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))

    df = R.load_runs("smoke", root=tmp_path)
    assert len(df) == 2 and list(df.columns[:len(R.IDENTITY)]) == R.IDENTITY
    bad = df[df.seed == 1].iloc[0]
    assert bad.status == "diverged" and bad.note == "extra key"
    assert math.isnan(bad["metric.loss"]) and bad["time.train_s"] == math.inf
    assert bad["config.model.lr"] == 0.5 and bad["config.model.seeds"] == [0, 1]
    assert bad["config.p"] == "/x" and bad["prov.python"]
    assert df[df.seed == 0].iloc[0]["metric.loss"] == 0.5
    assert len(R.load_runs(root=tmp_path)) == 3
    assert list(R.load_runs(notebook="other", root=tmp_path).profile) == ["cpu"]
    with pytest.raises(ValueError, match="status"):
        _rec(tmp_path, status="weird")
    with pytest.raises(ValueError, match="run_id"):
        _rec(tmp_path, run_id="mine")


def test_empty_store_has_identity_columns(tmp_path):
    df = R.load_runs(root=tmp_path)
    assert df.empty and list(df.columns) == R.IDENTITY


def test_corrupt_file_is_skipped_with_a_warning(tmp_path):
    _rec(tmp_path)
    (tmp_path / "smoke" / "runs" / "half.json").write_text('{"run_id": "x", "metr')
    (tmp_path / "smoke" / "runs" / "list.json").write_text("[1, 2]")
    with pytest.warns(UserWarning) as caught:
        df = R.load_runs(root=tmp_path)
    assert len(df) == 1
    messages = " ".join(str(w.message) for w in caught)
    assert "half.json" in messages and "list.json" in messages


def test_writes_are_atomic(tmp_path, monkeypatch):
    _rec(tmp_path)
    R.write_summary(tmp_path / "out", {"x": 1})
    assert not [f for f in _files(tmp_path) if f.name.startswith(".") or f.suffix == ".tmp"]

    def crash(*a):
        raise OSError("disk full")

    monkeypatch.setattr(R.os, "replace", crash)
    with pytest.raises(OSError):
        R.write_summary(tmp_path / "out", {"x": 2})
    assert R.load_summary(tmp_path / "out")["x"] == 1  # the old file is intact
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["summary.json"]  # no temp left


def _writer(root, worker, n):
    for i in range(n):
        _rec(root, notebook=f"w{worker}", seed=i, metrics={"acc": i / n, "loss": float("nan")})


def test_concurrent_writers(tmp_path):
    ctx = mp.get_context("spawn")  # fork after torch's thread pools exist is not safe
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 20)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    df = R.load_runs(root=tmp_path)
    assert len(df) == 40 and df.run_id.is_unique
    assert sorted(df.groupby("notebook").seed.apply(sorted).tolist()) == [list(range(20))] * 2


def test_summarize_matches_a_hand_computation():
    df = pd.DataFrame({
        "task": ["MRPC"] * 4 + ["RTE"],
        "method": ["pld", "pld", "pld", "base", "pld"],
        "metric.acc": [0.80, 0.84, np.nan, 0.7, 0.6],
        "metric.f1": [0.9, 0.8, 0.7, 0.6, np.nan],
    })
    s = R.summarize(df).set_index(["task", "method", "metric"])
    acc = s.loc[("MRPC", "pld", "acc")]
    hw = stats.t.ppf(0.975, 1) * np.std([0.80, 0.84], ddof=1) / np.sqrt(2)
    assert acc.n == 2 and acc["mean"] == pytest.approx(0.82) and acc.hw == pytest.approx(hw)
    f1 = s.loc[("MRPC", "pld", "f1")]
    hw3 = stats.t.ppf(0.95, 2) * np.std([0.9, 0.8, 0.7], ddof=1) / np.sqrt(3)
    assert f1.n == 3 and R.summarize(df, confidence=0.9).set_index(
        ["task", "method", "metric"]).loc[("MRPC", "pld", "f1")].hw == pytest.approx(hw3)
    assert math.isnan(s.loc[("MRPC", "base", "acc")].hw)  # n = 1: no interval
    assert ("RTE", "pld", "f1") not in s.index  # no values at all: no row
    only = R.summarize(df, by=["method"], metrics=["metric.f1"])
    assert set(only.metric) == {"f1"} and only.set_index("method").loc["pld", "n"] == 3

    assert R.format_pm(81.234, 0.44) == "81.2 ± 0.4"
    assert R.format_pm(81.234, float("nan"), digits=2) == "81.23"
    assert R.format_pm(float("nan"), 1.0) == "–"
    table = R.summary_table(df, scale=100)
    assert list(table.columns) == ["n", "acc", "f1"]
    assert table.loc[("MRPC", "pld"), "acc"] == R.format_pm(82.0, hw * 100)
    assert table.loc[("MRPC", "pld"), "n"] == 3 and table.loc[("RTE", "pld"), "f1"] == "–"
    md = R.markdown_table(table)
    assert md.splitlines()[0] == "| task | method | n | acc | f1 |" and "| MRPC | base | 1 | 70.0 |" in md


def test_config_hash():
    a = {"lr": 1e-3, "model": {"layers": 2, "heads": 4}, "seeds": (0, 1), "path": Path("/d")}
    b = {"path": Path("/d"), "seeds": [0, 1], "model": {"heads": 4, "layers": 2}, "lr": np.float64(1e-3)}
    assert R.config_hash(a) == R.config_hash(b) and len(R.config_hash(a)) == 12
    assert R.config_hash(a) != R.config_hash({**a, "lr": 2e-3})
    assert R.config_hash(a) != R.config_hash({**a, "model": {"layers": 3, "heads": 4}})


def test_provenance(tmp_path, monkeypatch):
    p = R.provenance()
    keys = {"git_rev", "git_dirty", "python", "torch", "transformers", "datasets", "numpy",
            "pandas", "repro", "platform", "cpu", "cpu_count", "device", "gpu", "torch_threads",
            "hostname"}
    assert keys <= set(p) and p["python"] and p["torch"] and p["cpu_count"] >= 1
    assert R.provenance() == p and R._static_provenance.cache_info().currsize == 1
    monkeypatch.setattr(R, "REPO_ROOT", tmp_path)  # not a git checkout: no crash, no revision
    assert R.git_revision() == (None, None)


def test_git_dirty_means_code_not_results(tmp_path, monkeypatch):
    import subprocess
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runner.log").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(R, "REPO_ROOT", tmp_path)
    assert R.git_revision()[1] is False
    (tmp_path / "results" / "runner.log").write_text("a\nb\n")  # the runner's own log: not dirt
    assert R.git_revision()[1] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert R.git_revision()[1] is True


def test_notebook_helpers(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = R.save_figure(fig, tmp_path / "o", "curve")
    plt.close(fig)
    assert png == tmp_path / "o" / "curve.png" and png.read_bytes()[:4] == b"\x89PNG"

    df = pd.DataFrame({"a": [1, 2], "b": [0.5, float("nan")]})
    csv = R.save_table(df, tmp_path / "o", "tab")
    assert pd.read_csv(csv).columns.tolist() == ["a", "b"]  # a RangeIndex is not written
    R.save_table(df.set_index("a"), tmp_path / "o", "tab2.csv")
    assert pd.read_csv(tmp_path / "o" / "tab2.csv").columns.tolist() == ["a", "b"]

    path = R.write_summary(tmp_path / "o", {"loss": float("nan"), "best": float("-inf"), "n": 3})
    back = R.load_summary(tmp_path / "o")
    assert path.name == "summary.json" and math.isnan(back["loss"]) and back["best"] == -math.inf
    assert back["provenance"]["timestamp"] and back["provenance"]["torch"] and back["n"] == 3


def test_profile_per_task_sizes_and_seeds():
    from repro.profiles import get_profile
    P = get_profile("cpu")
    assert P.max_train("SST-2") == 10_000 and P.max_train("MRPC") is None
    assert P.seeds_for("MRPC") == [0, 1, 2, 3, 4] and P.seeds_for("STS-B") == [0, 1, 2]
