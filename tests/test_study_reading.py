"""A notebook's default, `train = False`: Run All reads what is recorded and trains nothing
(Study(..., train=False)). A missing unit stays missing, as at a deadline; --force and
--rerun-stale cannot retrain through it; a lost artifact is not remade; plan mode still plans
what training would run; and the notebook writes its outputs outside results/."""
import os

import pytest

from repro import REPO_ROOT, study as S
from repro.results import load_runs_raw


def ask(study, seed=0, calls=None, **kw):
    def run(u):
        calls.append(seed) if calls is not None else None
        u.cache.mkdir(parents=True, exist_ok=True)
        (u.cache / "model.pt").write_text("weights")
        return {"metrics": {"acc": 0.5 + seed}, "times": {"total": 1.0}}
    return study.unit(task="T", method="m", seed=seed, config={"lr": 0.1}, run=run, artifact="model.pt", **kw)


def test_a_reading_study_returns_the_recorded_and_trains_nothing(store, monkeypatch):
    recorded = ask(S.Study("nb", "smoke"))  # trained (the runner's train=True)
    calls = []
    st = S.Study("nb", "smoke", train=False)
    assert ask(st, calls=calls)["run_id"] == recorded["run_id"]
    assert ask(st, seed=1, calls=calls) is None and calls == []  # missing: not trained
    assert st.status() | {"run_ids": None, "artifacts": None} == {"complete": False, "done": 1, "planned": 2, "stale": 0,
                                               "run_ids": None, "stale_modules": [], "artifacts": None}
    for flag in ("REPRO_FORCE", "REPRO_RERUN_STALE"):  # a runner's flag in the environment cannot make it train
        monkeypatch.setenv(flag, "1")
        assert ask(S.Study("nb", "smoke", train=False), calls=calls)["run_id"] == recorded["run_id"]
        monkeypatch.delenv(flag)
    assert calls == [] and len(load_runs_raw("smoke", root=store / "results")) == 1


def test_a_lost_artifact_is_not_remade_but_its_record_stands(store):
    row = ask(S.Study("nb", "smoke"))
    (S.Study("nb", "smoke").cache_dir(row["unit"]) / "model.pt").unlink()  # a new machine
    calls = []
    st = S.Study("nb", "smoke", train=False)
    again = ask(st, calls=calls)
    assert again["run_id"] == row["run_id"] and st.gone(again)
    assert st.need(again) is None  # the notebook cannot read the artifact: it draws without it
    assert ask(st, seed=1, calls=calls, needs=[again]) is None  # a user of it: not run either
    assert calls == [] and st.status()["done"] == 1 and len(load_runs_raw("smoke", root=store / "results")) == 1


def test_plan_mode_plans_what_training_would_run(store, monkeypatch):
    monkeypatch.setenv("REPRO_PLAN", str(store / "plan.json"))
    st = S.Study("nb", "smoke", train=False)
    assert ask(st) is None
    assert [u["state"] for u in st.units] == ["missing"] and st.units[0]["estimate"] == 1.0  # probed: it ran whole


def test_without_output_dir_the_outputs_go_outside_the_repository(store):
    out = S.Study("nb", "smoke", train=False).out(None)
    assert out.is_dir() and not out.resolve().is_relative_to(REPO_ROOT)
    assert out == S.cache_root(os.environ["REPRO_CACHE_DIR"]) / "scratch" / "smoke" / "nb"
    assert S.Study("nb", "smoke").out(store / "given") == store / "given"
