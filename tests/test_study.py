"""Run-level resume (repro.study): units are reused, retrained only when they must be, stopped at
the deadline, estimated in plan mode; the training loop checkpoints by time and at the deadline."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from repro import REPO_ROOT, study as S
from repro.fingerprint import code_digest
from repro.results import load_runs, load_runs_raw
from repro.train import TrainConfig, train

from conftest import tiny_mlm_data


class Counter:
    """A unit's run function that counts its calls and returns a metric derived from the config."""

    def __init__(self):
        self.calls = 0

    def __call__(self, u):
        self.calls += 1
        assert u.cache.parent.exists() and "train" in u.train_kwargs()["checkpoint_dir"]
        return {"metrics": {"acc": 0.5}, "times": {"total": 2.0}, "curve": [1, 2]}


def ask(study, run, seed=0, lr=0.1, **kw):
    return study.unit(task="T", method="m", seed=seed, config={"lr": lr}, run=run, **kw)


def test_recorded_units_are_reused_and_only_new_ones_train(store):
    run = Counter()
    first = ask(S.Study("nb", "smoke"), run)
    assert run.calls == 1 and first["metrics"] == {"acc": 0.5} and first["curve"] == [1, 2]
    st = S.Study("nb", "smoke")  # a later execution of the notebook
    again = [ask(st, run, seed=s) for s in (0, 1)]  # a seed was added
    assert run.calls == 2 and again[0]["run_id"] == first["run_id"]
    assert st.status() | {"run_ids": None} == {"complete": True, "done": 2, "planned": 2, "stale": 0,
                                               "run_ids": None, "stale_modules": [], "artifacts": {}}
    ask(S.Study("nb", "smoke"), run, lr=0.2)  # a config change retrains
    assert run.calls == 3
    assert len(load_runs("smoke", root=store / "results")) == 3  # where the Study wrote ($REPRO_RESULTS_DIR)


def writing_artifact(run):
    """A unit's run that leaves model.pt in its cache (its artifact), then counts itself with `run`."""
    def with_artifact(u):
        u.cache.mkdir(parents=True, exist_ok=True)
        (u.cache / "model.pt").write_text("weights")
        return run(u)
    return with_artifact


def test_force_retrains_and_an_artifact_that_is_gone_reruns_its_unit_when_a_user_must_run(store, monkeypatch, capsys):
    run = Counter()
    with_artifact = writing_artifact(run)
    row = ask(S.Study("nb", "smoke"), with_artifact, artifact="model.pt")
    ask(S.Study("nb", "smoke"), with_artifact, artifact="model.pt")
    assert run.calls == 1
    user = Counter()
    ask(S.Study("nb", "smoke"), user, seed=1, needs=[row])  # a unit that uses the artifact, recorded
    assert user.calls == 1
    (S.Study("nb", "smoke").cache_dir(row["unit"]) / "model.pt").unlink()  # a new machine
    st = S.Study("nb", "smoke")
    again = ask(st, with_artifact, artifact="model.pt")
    ask(st, user, seed=1, needs=[again])  # its only user is recorded: nothing needs the artifact
    assert run.calls == 1 and again["run_id"] == row["run_id"] and st.status()["complete"] and st.gone(again)
    st = S.Study("nb", "smoke")
    again = ask(st, with_artifact, artifact="model.pt")
    old_id = again["run_id"]
    users = [ask(st, user, seed=s, needs=[again]) for s in (2, 3)]  # two new users: one re-run
    assert run.calls == 2 and user.calls == 3 and all(users) and "is gone" in capsys.readouterr().out
    assert again["run_id"] != old_id  # the users' record of it is the re-run's, in place
    assert again["remake"] == {"of": old_id, "differs": {}} and all(u["used"] == [again["run_id"]] for u in users)
    assert S.Study("nb", "smoke").records()[again["unit"]]["run_id"] == old_id  # the measured record stays
    assert (st.cache_dir(again["unit"]) / "model.pt").exists() and not st.gone(again)
    assert st.status() | {"run_ids": None, "artifacts": None} == {"complete": True, "done": 3, "planned": 3, "stale": 0,
                                               "run_ids": None, "stale_modules": [], "artifacts": None}
    (st.cache_dir(again["unit"]) / "model.pt").unlink()
    monkeypatch.setenv("REPRO_PLAN", str(store / "plan.json"))  # the plan counts the re-run a new user causes
    st = S.Study("nb", "smoke")
    assert ask(st, user, seed=4, needs=[ask(st, with_artifact, artifact="model.pt")]) is None
    planned = json.loads((store / "plan.json").read_text())
    assert sorted((u["state"], u.get("rerun")) for u in planned) == [("missing", "artifact gone"), ("waiting", None)]
    assert run.calls == 2 and user.calls == 3
    monkeypatch.delenv("REPRO_PLAN")
    monkeypatch.setenv("REPRO_FORCE", "1")
    ask(S.Study("nb", "smoke"), with_artifact, artifact="model.pt")
    assert run.calls == 3


def test_a_remake_that_drew_other_numbers_says_which_and_leaves_the_measurement(store, capsys):
    draws = iter([{"acc": 0.5, "loss": 1.0, "train_seconds": 9.0}, {"acc": 0.5, "loss": 1.25, "train_seconds": 5.0}])

    def model(u):  # the second run: other bits (say, another thread count) and another speed
        u.cache.mkdir(parents=True, exist_ok=True)
        (u.cache / "model.pt").write_text("weights")
        return {"metrics": next(draws), "times": {"total": 1.0}}
    measured = ask(S.Study("nb", "smoke"), model, artifact="model.pt")
    (S.Study("nb", "smoke").cache_dir(measured["unit"]) / "model.pt").unlink()
    st = S.Study("nb", "smoke")
    ask(st, Counter(), seed=1, needs=[ask(st, model, artifact="model.pt")])
    assert "other numbers than run" in capsys.readouterr().out
    remake = [r for r in load_runs_raw("smoke", root=store / "results") if r["run_id"] != measured["run_id"] and r["seed"] == 0]
    assert [r["remake"] for r in remake] == [{"of": measured["run_id"], "differs": {"loss": [1.0, 1.25]}}]
    assert S.Study("nb", "smoke").records()[measured["unit"]]["metrics"]["train_seconds"] == 9.0
    assert S.differs({"x": float("nan"), "time_per_sample": 1.0}, {"x": float("nan"), "time_per_sample": 2.0}) == {}
    assert [k for k in ("train_seconds", "dense_s", "compute_s_per_step", "speedup_steps", "val_loss") if S.timed(k)] \
        == ["train_seconds", "dense_s", "compute_s_per_step"]


def test_fit_starts_only_the_units_whose_estimate_fits_before_the_deadline(store, monkeypatch, capsys):
    run = Counter()  # each of its units records 2 s: the estimate of the next
    ask(S.Study("nb", "smoke"), run, seed=0)
    monkeypatch.setenv("REPRO_DEADLINE", str(time.time() + 1.0))
    assert ask(S.Study("nb", "smoke"), run, seed=1) is not None and run.calls == 2  # no --fit: it starts
    monkeypatch.setenv("REPRO_FIT", "1")
    st = S.Study("nb", "smoke")
    assert ask(st, run, seed=2) is None and run.calls == 2 and "not started: it needs" in capsys.readouterr().out
    assert st.status()["complete"] is False and st.units[-1]["estimate"] == 2.0
    monkeypatch.setenv("REPRO_DEADLINE", str(time.time() + 60))
    assert ask(S.Study("nb", "smoke"), run, seed=2) is not None and run.calls == 3


def test_stale_units_are_reused_but_never_reported_as_current(store, monkeypatch):
    run = Counter()
    row = ask(S.Study("nb", "smoke"), run)
    assert row["code"] == {} and S.changed_modules(row["code"]) == []  # it called no package code
    # pretend the record was computed by another version of repro/model.py
    path = next((store / "results" / "smoke" / "runs").glob("*.json"))
    rec = json.loads(path.read_text())
    rec["code"] = {"repro.model": "0" * 12}
    path.write_text(json.dumps(rec))
    st = S.Study("nb", "smoke")
    assert ask(st, run)["run_id"] == row["run_id"] and run.calls == 1
    assert st.status()["stale"] == 1 and st.status()["stale_modules"] == ["model"]
    monkeypatch.setenv("REPRO_RERUN_STALE", "1")
    ask(S.Study("nb", "smoke"), run)
    assert run.calls == 2


def test_records_without_a_code_fingerprint_are_not_reused(store):
    from repro.results import record
    record(notebook="nb", profile="smoke", task="T", method="m", seed=0, metrics={}, times={},
           config={"lr": 0.1}, root=store / "results")  # written before run-level resume existed
    run = Counter()
    ask(S.Study("nb", "smoke"), run)
    assert run.calls == 1


def test_deadline_needs_and_plan_mode_leave_units_missing(store, monkeypatch, tmp_path):
    run = Counter()
    ask(S.Study("nb", "smoke"), run, seed=0)
    monkeypatch.setenv("REPRO_DEADLINE", str(time.time() - 1))
    st = S.Study("nb", "smoke")
    got = [ask(st, run, seed=s) for s in (0, 1)]
    assert got[0] is not None and got[1] is None and run.calls == 1
    assert ask(st, run, seed=2, needs=[got[1]]) is None
    status = st.status()
    assert not status["complete"] and (status["done"], status["planned"]) == (1, 3)
    monkeypatch.delenv("REPRO_DEADLINE")
    plan = tmp_path / "plan.json"
    monkeypatch.setenv("REPRO_PLAN", str(plan))
    st = S.Study("nb", "smoke")
    assert ask(st, run, seed=5) is None and run.calls == 1  # nothing trains in plan mode
    units = json.loads(plan.read_text())
    assert units[0]["state"] == "missing" and units[0]["estimate"] == 2.0  # the recorded unit's time


def test_a_gone_artifact_not_remade_at_the_deadline_keeps_its_record_in_the_status(store, monkeypatch):
    """The notebook read the record (its table shows it): when the remake cannot start (deadline), the
    status still counts it and names its run id, so that `make nbval` re-executes with it."""
    run = Counter()
    with_artifact = writing_artifact(run)
    row = ask(S.Study("nb", "smoke"), with_artifact, artifact="model.pt")
    (S.Study("nb", "smoke").cache_dir(row["unit"]) / "model.pt").unlink()  # a new machine
    monkeypatch.setenv("REPRO_DEADLINE", str(time.time() - 1))
    st = S.Study("nb", "smoke")
    again = ask(st, with_artifact, artifact="model.pt")
    assert st.need(again) is None and run.calls == 1  # not remade
    status = st.status()
    assert (status["done"], status["planned"]) == (1, 1) and status["run_ids"] == [row["run_id"]]


def test_plan_mode_probes_a_few_training_steps_when_nothing_is_recorded(store, monkeypatch, tmp_path):
    examples, collate = tiny_mlm_data(64)
    monkeypatch.setenv("REPRO_PLAN", str(tmp_path / "plan.json"))

    def run(u):
        from repro.model import Bert
        model = Bert.from_config(layers=1, hidden=32, heads=2, intermediate=64, vocab_size=500, head="mlm")
        r = train(model, examples, collate, TrainConfig(max_steps=40, batch_size=8, progress=False, **u.train_kwargs()))
        raise AssertionError(f"the probe should have stopped the loop, it ran {r.steps} steps")
    st = S.Study("nb", "smoke")
    assert ask(st, run) is None
    est = st.units[0]["estimate"]
    assert est is not None and 0 < est < 60  # 40 steps x a timed step


def _loop_run(examples, collate, ckpt, steps=12, **kw):
    torch.manual_seed(0)
    from repro.model import Bert
    model = Bert.from_config(layers=1, hidden=32, heads=2, intermediate=64, vocab_size=500, head="mlm")
    cfg = TrainConfig(max_steps=steps, batch_size=8, seed=3, progress=False, log_every=1, checkpoint_dir=ckpt, **kw)
    return train(model, examples, collate, cfg)


def test_deadline_checkpoints_and_the_next_run_resumes_to_the_same_numbers(store, monkeypatch, tmp_path):
    examples, collate = tiny_mlm_data(64)
    whole = _loop_run(examples, collate, str(tmp_path / "a"))
    with pytest.raises(S.TimeUp):  # the deadline comes down in the loop's config, as train_kwargs passes it
        _loop_run(examples, collate, str(tmp_path / "b"), deadline=time.time() - 1)
    assert (tmp_path / "b" / "last.pt").exists()
    resumed = _loop_run(examples, collate, str(tmp_path / "b"))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]


def test_checkpoint_by_time(store, tmp_path):
    examples, collate = tiny_mlm_data(64)
    _loop_run(examples, collate, str(tmp_path / "c"), steps=3, checkpoint_minutes=1e-9)
    assert (tmp_path / "c" / "last.pt").exists()
    _loop_run(examples, collate, str(tmp_path / "d"), steps=3)  # neither by steps nor by time
    assert not (tmp_path / "d" / "last.pt").exists()


def test_unwritable_cache_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="REPRO_CACHE_DIR"):
        S.check_cache_writable(blocker / "cache")


@pytest.mark.notebook
def test_a_killed_notebook_continues_where_it_stopped(tmp_path):
    """glue_finetune at smoke with two seeds (4 units: seed 1, and seed 0 with length-grouped and
    with random batches, the batching check, and at another rate, the rate check), killed (SIGKILL) once its first unit is recorded,
    then re-run: only the missing units train, and the outputs equal an uninterrupted run's. The
    uninterrupted run is also the quiet-success check: no ERROR or warning line from kernels or
    papermill, the notebook's own progress lines, and the last line names the report."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REPRO_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "repro", "run", "glue_finetune", "--profile", "smoke", "-p", "seeds=[0, 1]"]
    runs = tmp_path / "a" / "smoke" / "runs"
    proc = subprocess.Popen(cmd + ["--results-dir", str(tmp_path / "a")], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not (runs.exists() and any(runs.glob("*.json"))):
        assert proc.poll() is None and time.time() - t0 < 240, "no unit was recorded"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(runs.glob("*.json"))) == 1
    done = subprocess.run(cmd + ["--results-dir", str(tmp_path / "a")], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(runs.glob("*.json"))) == 4  # only the missing units trained
    with_report = cmd[:5] + ["report"] + cmd[5:]  # ... run glue_finetune report --profile smoke ...
    whole = subprocess.run(with_report + ["--results-dir", str(tmp_path / "b")], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    printed = (whole.stdout + whole.stderr).splitlines()
    assert not [line for line in printed if "ERROR" in line or "Unable to parse" in line], printed
    assert any(line.startswith("  glue_finetune | ") for line in printed)  # the notebook's own progress
    assert whole.stdout.strip().splitlines()[-1] == f"report: {tmp_path / 'b' / 'smoke' / 'REPORT.md'}"
    a = load_runs("smoke", root=tmp_path / "a").sort_values(["seed", "method"])
    b = load_runs("smoke", root=tmp_path / "b").sort_values(["seed", "method"])
    for col in ("metric.f1", "metric.accuracy", "metric.train_loss"):
        assert a[col].tolist() == pytest.approx(b[col].tolist(), abs=1e-6)
    summary = json.loads((tmp_path / "a" / "smoke" / "glue_finetune" / "summary.json").read_text())
    assert summary["complete"] and summary["done"] == 4


def test_the_fingerprint_covers_the_functions_a_unit_called_and_only_those(store):
    from repro.metrics import glue_metrics

    def run(u):
        return {"metrics": glue_metrics("MRPC", [1, 0, 1], [1, 1, 1])}
    row = ask(S.Study("nb", "smoke"), run)
    assert "metrics.py::glue_metrics" in row["code"] and row["code"]["scheme"] == 2
    assert not any("squad" in k for k in row["code"])  # never called: editing it stales nothing
    assert S.changed_modules(row["code"]) == []
    assert S.changed_modules({**row["code"], "metrics.py::glue_metrics": "0" * 12}) == ["metrics.glue_metrics"]
    assert S.changed_modules({"metrics.py::gone": "0" * 12}) == ["metrics.gone"]


def test_a_checkpoint_written_by_other_code_is_not_resumed(store, capsys):
    st = S.Study("nb", "smoke")
    seen = []

    def run(u):
        seen.append((u.cache / "train" / "last.pt").exists())
        raise S.TimeUp("stopped")  # as at the deadline, leaving its checkpoint
    ctx_dir = st.cache_dir(S.Study.key("nb", "T", "m", 0, __import__("repro.results").results.config_hash({"lr": 0.1})))
    (ctx_dir / "train").mkdir(parents=True)
    (ctx_dir / "train" / "last.pt").write_text("weights")
    (ctx_dir / "code.txt").write_text(code_digest())  # the same code: the checkpoint is resumed
    ask(st, run)
    (ctx_dir / "code.txt").write_text("another version\n")
    ask(S.Study("nb", "smoke"), run)
    assert seen == [True, False] and "starting over" in capsys.readouterr().out


def test_a_deadline_stamps_its_checkpoint_with_the_functions_it_ran(store, capsys):
    """Stopped at a deadline, a unit's checkpoint is tied to the functions it called: a resume
    under a changed package whose changes it never ran continues it; a change to one it ran
    starts it over. The resumed record's fingerprint covers both processes' calls."""
    from repro.metrics import glue_metrics
    from repro.results import config_hash

    seen = []

    def run(u):
        seen.append((u.cache / "train" / "last.pt").exists())
        if len(seen) in (1, 3):
            glue_metrics("MRPC", [1, 0, 1], [1, 1, 1])  # the first process's work
            (u.cache / "train").mkdir(parents=True, exist_ok=True)
            (u.cache / "train" / "last.pt").write_text("weights")
            raise S.TimeUp("stopped")
        return {"metrics": {"x": 1.0}}
    st = S.Study("nb", "smoke")
    ctx_dir = st.cache_dir(S.Study.key("nb", "T", "m", 0, config_hash({"lr": 0.1})))
    assert ask(st, run) is None
    stamp = json.loads((ctx_dir / "code.txt").read_text())
    assert "metrics.py::glue_metrics" in stamp and not any("squad" in k for k in stamp)
    row = ask(S.Study("nb", "smoke"), run)  # resumed: the whole-package digest plays no part
    assert seen == [False, True] and "metrics.py::glue_metrics" in row["code"]
    assert not (ctx_dir / "code.txt").exists()  # recorded: the checkpoint is spent

    # a second unit, stopped, then resumed after a function it ran changed
    other = S.Study.key("nb", "T", "m", 0, config_hash({"lr": 0.2}))
    assert ask(S.Study("nb", "smoke"), run, lr=0.2) is None
    stamp_path = st.cache_dir(other) / "code.txt"
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, "metrics.py::glue_metrics": "0" * 12}))
    ask(S.Study("nb", "smoke"), run, lr=0.2)
    assert seen[-1] is False and "metrics.glue_metrics" in capsys.readouterr().out


def test_another_method_estimates_a_missing_unit_only_at_the_same_length(store, monkeypatch, tmp_path):
    """Plan estimates: the same task and method first; another method of the task only when the
    config's length keys agree (an initialisation measurement is no estimate of a trained run)."""
    def quick(u):
        return {"metrics": {"x": 1.0}, "times": {"total": 2.0}}
    S.Study("nb", "smoke").unit(task="T", method="init", seed=0, config={"train_steps": 0}, run=quick)
    S.Study("nb", "smoke").unit(task="T", method="grouped", seed=0, config={"epochs": 3, "group": True}, run=quick)
    S.Study("nb", "smoke").unit(task="T", method="dense", seed=0, config={"kind": "glue", "epochs": 2}, run=quick)
    monkeypatch.setenv("REPRO_PLAN", str(tmp_path / "plan.json"))
    probed = []

    def trained(u):
        probed.append(u.key)
        raise S.Probe(1.5, 300)  # a few steps timed: 1.5 s per step of 300
    st = S.Study("nb", "smoke")
    st.unit(task="T", method="trained", seed=0, config={"train_steps": 300}, run=trained)
    st.unit(task="T", method="random", seed=0, config={"epochs": 3, "group": False}, run=trained)
    assert [u["estimate"] for u in st.units] == [450.0, 2.0] and len(probed) == 1
    # the same length but another kind of unit (a search carries its dense run's epochs): probed
    st = S.Study("nb", "smoke")
    st.unit(task="T", method="search", seed=0, config={"kind": "glue", "epochs": 2, "search": {"lr": 2e-5}}, run=trained)
    assert st.units[-1]["estimate"] == 450.0 and len(probed) == 2


def test_a_missing_unit_is_estimated_from_its_own_shape_first(store, monkeypatch, tmp_path):
    """Plan estimates: recorded units of the same method, task and length keys (layers, hidden)
    before the method and task's median: pilots at a larger shape are not estimated from smaller."""
    def took(seconds):
        return lambda u: {"metrics": {"x": 1.0}, "times": {"total": seconds}}
    for lr, layers, hidden, seconds in ((1e-3, 12, 128, 10.0), (2e-3, 12, 128, 11.0), (1e-3, 24, 256, 40.0)):
        S.Study("nb", "smoke").unit(task="T", method="pilot", seed=0, run=took(seconds),
                                    config={"lr": lr, "layers": layers, "hidden": hidden})
    monkeypatch.setenv("REPRO_PLAN", str(tmp_path / "plan.json"))
    st = S.Study("nb", "smoke")
    for layers, hidden in ((24, 256), (12, 128), (12, 768)):
        st.unit(task="T", method="pilot", seed=0, config={"lr": 5e-3, "layers": layers, "hidden": hidden},
                run=took(0.0))
    # its own shape; its own shape; no unit of that shape: the method and task's median
    assert [u["estimate"] for u in st.units] == [40.0, 11.0, 11.0]


def test_a_waiting_unit_is_estimated_from_the_unit_it_is_like(store, monkeypatch, tmp_path):
    """A unit that waits for another's output cannot be probed: the plan scales `like`'s recorded
    (or, in the same plan, probed) time, says so, and leaves it unestimated when neither exists."""
    def quick(u):
        return {"metrics": {"x": 1.0}, "times": {"total": 100.0}}
    S.Study("dense_nb", "smoke").unit(task="T", method="dense", seed=0, config={"epochs": 3}, run=quick)
    monkeypatch.setenv("REPRO_PLAN", str(tmp_path / "plan.json"))
    st = S.Study("nb", "smoke")
    search = st.unit(task="T", method="search", seed=0, config={"epochs": 1}, run=lambda u: (_ for _ in ()).throw(S.Probe(2.0, 10)))
    assert search is None and st.units[0]["estimate"] == 20.0  # probed
    st.unit(task="T", method="ticket", seed=0, config={"epochs": 2}, run=quick, needs=[search],
            like=("dense_nb", "dense", "T", 0.4))
    st.unit(task="T", method="late", seed=0, config={"epochs": 2}, run=quick, needs=[search],
            like=("nb", "search", "T", 3.0))
    st.unit(task="U", method="ticket", seed=0, config={"epochs": 2}, run=quick, needs=[search],
            like=("dense_nb", "dense", "U", 0.4))
    assert [u["estimate"] for u in st.units[1:]] == [40.0, 60.0, None]
    assert st.units[1]["scaled_from"] == "dense_nb/T/dense x 0.40" and "scaled_from" not in st.units[3]


def test_the_plan_credits_the_training_a_units_checkpoints_hold(store, monkeypatch, tmp_path):
    """A unit stopped at a deadline resumes from its checkpoints: the plan counts only what is
    left of it, and nothing when the code changed since (the run would start over). Planning
    never discards a checkpoint."""
    examples, collate = tiny_mlm_data(64)

    def quick(u):
        return {"metrics": {"x": 1.0}, "times": {"total": 100.0}}

    def run(u):
        from repro.model import Bert
        torch.manual_seed(0)
        model = Bert.from_config(layers=1, hidden=32, heads=2, intermediate=64, vocab_size=500, head="mlm")
        kw = {**u.train_kwargs(), "checkpoint_minutes": 1e-9}  # a checkpoint every step
        train(model, examples, collate, TrainConfig(max_steps=5, batch_size=8, progress=False, **kw))
        raise S.TimeUp("stopped")  # as at a deadline in a later stage
    ask(S.Study("nb", "smoke"), quick, seed=0)  # 100 s: the estimate of a missing seed
    st = S.Study("nb", "smoke")
    assert ask(st, run, seed=1) is None
    ckpt = next((st.cache_dir(st.units[0]["key"])).glob("*/last.pt"))
    held = torch.load(ckpt, weights_only=False)["loop"]["times"]["total"]
    assert held > 0
    monkeypatch.setenv("REPRO_PLAN", str(tmp_path / "plan.json"))
    st = S.Study("nb", "smoke")
    ask(st, run, seed=1)
    assert st.units[0]["resumed_seconds"] == pytest.approx(held) and st.units[0]["estimate"] == pytest.approx(100 - held)
    (ckpt.parent.parent / "code.txt").write_text("another version\n")  # its checkpoint will not resume it
    st = S.Study("nb", "smoke")
    ask(st, run, seed=1)
    assert st.units[0]["estimate"] == 100.0 and "resumed_seconds" not in st.units[0] and ckpt.exists()


def test_units_only_read_are_neither_run_nor_judged(store):
    """reading(): an earlier recipe's recorded units are returned (a sensitivity row); a missing
    one is neither run nor planned, and none counts in the notebook's status."""
    run = Counter()
    ask(S.Study("nb", "smoke"), run, lr=0.2)  # recorded under the earlier recipe
    st = S.Study("nb", "smoke")
    ask(st, run)  # the current recipe's unit
    with st.reading():
        assert ask(st, run, lr=0.2)["config"] == {"lr": 0.2}
        assert ask(st, run, lr=0.3) is None
    assert run.calls == 2 and ask(st, run, lr=0.3) is not None and run.calls == 3  # outside: it runs
    status = st.status()
    assert status["planned"] == status["done"] == 2 and len(status["read_only_run_ids"]) == 1
