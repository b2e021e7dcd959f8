import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from fixture_data import make_fixture_data

# tests are CPU, fp32, and must not look for a hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


def _real_data_dir() -> Path | None:
    """The real data (shared/data's GLUE, SQuAD and corpus) where this machine has it: the folder
    $REPRO_DATA_DIR named before the session, else the default lookup of repro.sources.find_data_dir.
    Only the tests of the real files' own rows and counts read it; they skip without it."""
    from repro.control import Control
    from repro.sources import DataNotFoundError, find_data_dir
    try:
        path = find_data_dir(env_dir=Control.from_environ().data_dir)
    except DataNotFoundError:
        return None
    return path if (path / "glue").is_dir() else None


# The whole suite runs on synthetic data in the real layout (tests/fixture_data.py), made once
# per session: a fresh clone with nothing beside it passes offline, and every machine tests the
# same rows. Set in os.environ, so notebook kernels and `python -m repro` subprocesses see it too (their
# Study or command line reads it); a test that calls the loaders itself passes FIXTURE_DATA_DIR.
REAL_DATA_DIR = _real_data_dir()
FIXTURE_DATA_DIR = make_fixture_data(Path(tempfile.mkdtemp(prefix="repro-test-data-")))
atexit.register(shutil.rmtree, FIXTURE_DATA_DIR, ignore_errors=True)
os.environ["REPRO_DATA_DIR"] = str(FIXTURE_DATA_DIR)
needs_real_data = pytest.mark.skipif(REAL_DATA_DIR is None, reason="the real data (shared/data) is not on this machine")


@pytest.fixture(scope="session")
def minilm_dir():
    from repro.sources import minilm_path
    return minilm_path()


@pytest.fixture(scope="session")
def tokenizer(minilm_dir):
    from repro.sources import load_tokenizer
    return load_tokenizer("minilm")


def tiny_mlm_data(n=128, seq=32, vocab=500, seed=0):
    """Synthetic token blocks and a simple MLM collator: unit tests of the loop need no corpus."""
    g = torch.Generator().manual_seed(seed)
    # each row counts up from a random start: a masked token is predictable from its neighbours
    starts = torch.randint(5, vocab, (n, 1), generator=g)
    rows = (starts + torch.arange(seq)) % (vocab - 5) + 5
    examples = [{"input_ids": r.tolist()} for r in rows]

    def collate(exs, generator=None):
        ids = torch.tensor([e["input_ids"] for e in exs])
        chosen = torch.rand(ids.shape, generator=generator) < 0.15
        chosen[:, 0] = True  # at least one masked token per row
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        return {"input_ids": ids.masked_fill(chosen, 3), "attention_mask": torch.ones_like(ids),
                "labels": labels}
    return examples, collate


def run_smoke_notebooks(tmp_path_factory, names, params=()):
    """Execute notebooks with the runner at smoke profile into one fresh results folder."""
    from repro import runner
    root = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_RESULTS_DIR", str(root))
        mp.setenv("REPRO_CACHE_DIR", str(root / "cache"))  # units' checkpoints and artifacts, per test
        # one thread per kernel: on a shared 2-core machine OpenMP threads fighting other
        # processes make small models many times slower; the tests check what is produced
        mp.setenv("OMP_NUM_THREADS", "1")
        outcomes = runner.run(runner.jobs_for(names, "smoke", list(params)), "smoke", root)
    failed = [o.message for o in outcomes if o.status != "ok"]
    assert not failed, failed
    return root


def out(root, name):
    return root / "smoke" / name


def summary(root, name):
    import json
    return json.loads((out(root, name) / "summary.json").read_text())


def has_files(root, name, files):
    missing = [f for f in files + [f"{name}.ipynb", "summary.json", "run.json"] if not (out(root, name) / f).exists()]
    assert not missing, f"{name} lacks {missing}"


def check_report(root, ran):
    """Run the report notebook on root: smoke gives no verdicts (every one is "smoke: not a
    measurement"), but the rules still run: those of the notebooks that ran (`ran`) give a rule
    verdict, the others "not measured"; returns the claims table."""
    import pandas as pd

    from repro import report, runner
    [outcome] = runner.run(runner.jobs_for(["report"], "smoke"), "smoke", root)
    assert outcome.status == "ok", outcome.message
    has_files(root, "report", ["claims.csv", "claims.png", "provenance.csv"])
    claims = pd.read_csv(out(root, "report") / "claims.csv", index_col="key")
    assert (claims["verdict"] == report.SMOKE_VERDICT).all()
    measured = claims.loc[ran]
    # at smoke a baseline may stay at chance: its comparison is then "not measured", and says why
    blind = measured["rule_verdict"].eq("not measured")
    assert measured.loc[~blind, "rule_verdict"].isin(["reproduced", "partly", "not reproduced"]).all()
    assert measured.loc[blind, "ours"].str.contains("learned (?:nothing|little|too little)").all()
    assert set(measured.index[blind]) <= {"pld_speedup", "pld_glue", "earlybert_glue", "early_ticket", "earlybert_squad"}
    assert (claims.drop(index=ran)["rule_verdict"] == "not measured").all()
    assert "No verdicts at the `smoke` profile" in (root / "smoke" / "REPORT.md").read_text()
    return claims


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty results store and cache for a unit-level test, with none of the runner's settings."""
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("REPRO_DEADLINE", "REPRO_PLAN", "REPRO_FORCE", "REPRO_RERUN_STALE", "REPRO_PROBE_STEPS", "REPRO_FIT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path
