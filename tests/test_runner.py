"""The notebook runner and its CLI, on tiny notebooks written here (the real ones are not used).

Kernel starts cost seconds, so papermill runs few notebooks, each for a reason: the end-to-end
subprocess run, the re-runs, the deadline and plan test, --jobs, a plan-mode error and the train
flag. Everything else is validation, which must not run or write anything.
"""
import json
import os
import subprocess
import sys

import pytest

from repro import REPO_ROOT, catalogue, execute, outputs, plan, runner
from repro.__main__ import main
from repro.results import load_runs

GOOD = '''\
# %% [markdown]
# # Good: writes a summary and a record

# %% tags=["parameters"]
profile = "smoke"
output_dir = None
lr = 0.1
task = "MRPC"
flag = True
seeds = None

# %%
import os, sys
from repro.control import Control
from repro.results import record, write_summary
print("EXECUTABLE", sys.executable)
control = Control.from_environ()  # the runner's results root and execution, passed down
write_summary(output_dir, {"lr": lr, "task": task, "profile": profile, "seeds": seeds,
                           "executable": sys.executable, "cwd": os.getcwd()}, execution=control.execution)
record(notebook="good", profile=profile, task=task, method="test", seed=0,
       metrics={"acc": 1.0}, times={}, config={"lr": lr}, root=control.results_dir, execution=control.execution)
'''

BAD = '''\
# %% [markdown]
# # Bad: raises in its second code cell

# %% tags=["parameters"]
profile = "smoke"
output_dir = None

# %%
x = 1

# %%
# the failure is on purpose
raise ValueError("boom in the second cell")
'''


@pytest.fixture(scope="module")
def nb_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("notebooks")
    (d / "good.py").write_text(GOOD)
    (d / "bad.py").write_text(BAD)
    (d / "_helpers.py").write_text("x = 1\n")  # a leading underscore: not a notebook
    return d


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- no execution

def test_list_notebooks_and_parameters(nb_dir):
    assert list(runner.list_notebooks(nb_dir)) == ["bad", "good"]
    assert runner.notebook_parameters(nb_dir / "good.py") == {
        "profile": "smoke", "output_dir": None, "lr": 0.1, "task": "MRPC", "flag": True, "seeds": None}
    assert runner.description(runner.read_notebook(nb_dir / "bad.py")) == "Bad: raises in its second code cell"


@pytest.mark.parametrize("cell, match", [
    ('lr = 1e-3 * 2', "literal assignments.*lr = 1e-3 \\* 2"),
    ('import os\nx = 1', "literal assignments.*import os"),
    ('a = b = 1', "literal assignments"),
])
def test_parameters_cell_must_be_literal(tmp_path, cell, match):
    path = tmp_path / "n.py"
    path.write_text(f'# %% tags=["parameters"]\n{cell}\n')
    with pytest.raises(runner.UsageError, match=match):
        runner.notebook_parameters(path)
    path.write_text("# %%\nx = 1\n")
    with pytest.raises(runner.UsageError, match="exactly one cell tagged parameters"):
        runner.notebook_parameters(path)


def test_order(monkeypatch, nb_dir):
    monkeypatch.setattr(catalogue, "ORDER", ["b", "a"])
    assert runner.ordered(["report", "z", "a", "b", "c", "a"]) == ["b", "a", "c", "z", "report"]
    monkeypatch.setattr(catalogue, "ORDER", ["good"])
    assert [j.name for j in runner.jobs_for(["all"], "smoke", nb_dir=nb_dir)] == ["good", "bad"]


def test_jobs_for_parses_and_routes_values(nb_dir):
    jobs = {j.name: j for j in runner.jobs_for(["bad", "good"], "cpu",
                                               ["lr=1", "task=RTE", "seeds=(0, 1)", "flag=False"], nb_dir)}
    assert jobs["good"].params == {"lr": 1, "task": "RTE", "seeds": (0, 1), "flag": False}
    assert jobs["bad"].params == {}  # only what a notebook declares is injected into it


def test_a_unit_two_notebooks_ask_for_counts_once_in_the_plan(monkeypatch, capsys, nb_dir, tmp_path):
    """EarlyBERT's dense runs are glue_finetune's units: the plan's time counts them once, in the
    first notebook that lists them (here "bad": notebooks outside ORDER run alphabetically)."""
    def unit(key, estimate, state="missing"):
        return {"key": key, "state": state, "estimate": estimate, "run_id": None}
    units = {"good": [unit("shared", 100.0), unit("own-a", 50.0)],
             "bad": [unit("shared", 100.0), unit("own-b", 30.0), unit("done", None, "done")]}
    monkeypatch.setattr(plan, "plan_units", lambda job, profile, root: units[job.name])
    out = runner.print_plan(runner.jobs_for(["good", "bad"], "smoke", nb_dir=nb_dir), "smoke", tmp_path, parallel=1)
    assert [(r["notebook"], r["seconds"]) for r in out["notebooks"]] == [("bad", 130.0), ("good", 50.0)]
    assert out["seconds"] == 180.0
    printed = capsys.readouterr().out
    assert "2 to run, ~1m (1 counted above)" in printed and "0.1 h of runs in all" in printed


def test_list_command(capsys, nb_dir):
    rc, out, _ = cli(capsys, "list", "--notebooks-dir", nb_dir)
    assert rc == 0
    assert "Good: writes a summary and a record" in out and "lr=0.1, task='MRPC'" in out
    assert "bad" in out and "_helpers" not in out
    assert "Profiles" in out and all(p in out for p in ("smoke", "cpu", "gpu", "paper"))


@pytest.mark.parametrize("argv, expected", [
    (["nope"], ["unknown notebook 'nope'", "good", "bad"]),
    (["goood"], ["did you mean 'good'"]),
    (["good", "--profile", "huge"], ["unknown profile 'huge'", "smoke, cpu, gpu, paper"]),
    (["good", "-p", "nosuch=1"], ["nosuch", "good: lr, task, flag, seeds"]),
    (["all", "-p", "nosuch=1"], ["bad: (none)", "good: lr, task, flag, seeds"]),
    (["good", "-p", "lr=fast"], ["-p lr", "float", "'fast'"]),
    (["good", "-p", "task=3"], ["-p task", "expects str", "int 3"]),
    (["good", "-p", "flag=1"], ["-p flag", "expects bool"]),
    (["good", "-p", "profile=cpu"], ["--profile"]),
    (["good", "-p", "lr"], ["key=value"]),
    (["good", "nope", "-p", "lr=0.5"], ["unknown notebook 'nope'"]),  # nothing runs, not even good
])
def test_bad_requests_exit_2_and_touch_nothing(capsys, tmp_path, nb_dir, argv, expected):
    results = tmp_path / "results"
    rc, out, err = cli(capsys, "run", *argv, "--notebooks-dir", nb_dir, "--results-dir", results)
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one clear line
    for text in expected:
        assert text in err
    assert not results.exists() and out == ""


# ----------------------------------------------------------------------------- execution

@pytest.fixture(scope="module")
def first_run(nb_dir, tmp_path_factory):
    """`python -m repro run all` in a subprocess: the one end-to-end check of the real CLI."""
    results = tmp_path_factory.mktemp("results")
    # if --results-dir did not reach the kernel, record() would write here, never to results/
    stray = tmp_path_factory.mktemp("stray") / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "repro", "run", "all", "--profile", "smoke",
         "--notebooks-dir", str(nb_dir), "--results-dir", str(results)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "REPRO_RESULTS_DIR": str(stray)})
    assert not stray.exists()
    return proc, results / "smoke"


def test_failing_notebook_is_reported_and_the_others_kept(first_run):
    proc, out = first_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the message names the notebook, the source cell (0-based, as in bad.py) and the exception
    failed = [line for line in proc.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert "bad: cell 3, line 2 (`raise ValueError(\"boom in the second cell\")`)" in failed[0]
    assert "ValueError: boom in the second cell" in failed[0]
    assert "bad: failed in" in proc.stdout and "good: ok in" in proc.stdout

    partial = json.loads((out / "bad" / "bad.ipynb").read_text())  # kept for inspection
    errors = [o for c in partial["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "ValueError"
    assert not (out / "bad" / "run.json").exists()

    assert {p.name for p in (out / "good").iterdir()} == {"good.ipynb", "summary.json", "run.json"}
    log = (out / "runner.log").read_text().splitlines()
    assert [line.split("\t")[1:3] for line in log] == [["bad", "failed"], ["good", "ok"]]


def test_good_notebook_ran_on_this_interpreter_with_injected_parameters(first_run):
    _, out = first_run
    summary = json.loads((out / "good" / "summary.json").read_text())
    assert summary["executable"] == sys.executable  # the venv's python, not some global kernel
    assert summary["cwd"] == str(REPO_ROOT)
    assert summary["profile"] == "smoke" and summary["lr"] == 0.1 and summary["provenance"]["python"]
    executed = json.loads((out / "good" / "good.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert f"EXECUTABLE {sys.executable}" in printed
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and f'output_dir = "{out / "good"}"' in "".join(injected[0]["source"])
    # record() inside the notebook wrote to --results-dir (passed to the kernel), not to results/
    runs = load_runs("smoke", root=out.parent)
    assert list(runs.notebook) == ["good"] and runs.execution.iloc[0] == json.loads(
        (out / "good" / "run.json").read_text())["execution"]


def test_rerun_skips_up_to_date_and_moves_changed_outputs_aside(capsys, monkeypatch, tmp_path,
                                                               first_run, nb_dir):
    _, out = first_run
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "stray"))  # never the real results/
    args = ["--notebooks-dir", nb_dir, "--results-dir", out.parent]
    stamp = (out / "good" / "good.ipynb").stat().st_mtime_ns

    rc, stdout, _ = cli(capsys, "run", "good", *args)  # same request: nothing runs
    assert rc == 0 and "good: skipped" in stdout and "up to date (use --force)" in stdout
    assert (out / "good" / "good.ipynb").stat().st_mtime_ns == stamp

    rc, stdout, _ = cli(capsys, "run", "good", "-p", "lr=1", *args)  # execution 3
    assert rc == 0 and "parameters changed" in stdout and "good: ok" in stdout
    aside = sorted(out.glob("good.*"))
    assert len(aside) == 1 and json.loads((aside[0] / "summary.json").read_text())["lr"] == 0.1
    assert json.loads((out / "good" / "summary.json").read_text())["lr"] == 1

    rc, stdout, _ = cli(capsys, "run", "good", "-p", "lr=1", *args)
    assert rc == 0 and "up to date" in stdout and len(list(out.glob("good.*"))) == 1

    rc, stdout, _ = cli(capsys, "run", "good", "-p", "lr=1", "--force", *args)  # execution 4
    assert rc == 0 and "(--force) moved to" in stdout and "good: ok" in stdout
    assert len(list(out.glob("good.*"))) == 2 and (out / "good" / "summary.json").exists()
    assert len(load_runs("smoke", "good", root=out.parent)) == 3  # the store keeps every run
    assert not (tmp_path / "stray").exists()


# ----------------------------------------------------------------------------- units, plan, jobs

UNITS = '''\
# %% [markdown]
# # Units: n fake training runs through the study's unit store

# %% tags=["parameters"]
profile = "smoke"
output_dir = None
n = 2

# %%
from repro.study import Study
study = Study("units", profile)
for s in range(n):
    print(f"unit {s}")
    study.unit(task="T", method="m", seed=s, config={"kind": "fake"},
               run=lambda u: {"metrics": {"x": 1.0}, "times": {"total": 90.0}})
study.write_summary(output_dir, {"n": n})
'''


@pytest.fixture
def units_env(tmp_path, monkeypatch):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "units.py").write_text(UNITS)
    (nbs / "good.py").write_text(GOOD)
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "stray"))
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("REPRO_DEADLINE", raising=False)
    return nbs, tmp_path / "results"


def test_deadline_writes_partial_outputs_and_the_next_run_completes_them(capsys, monkeypatch, units_env):
    import tempfile
    import time
    nbs, results = units_env
    args = ["--notebooks-dir", nbs, "--results-dir", results]
    kernel_tmp = results.parent / "kernel-tmp"  # where this process makes the kernels' socket folders
    kernel_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(kernel_tmp))
    monkeypatch.setenv("REPRO_DEADLINE", str(time.time() - 1))  # as --hours does, already passed
    rc, stdout, _ = cli(capsys, "run", "units", *args)
    assert rc == 0 and "units: partial" in stdout and "0 of 2 runs" in stdout
    assert "  units | unit 0" in stdout  # the notebook's own lines show as it runs
    summary = json.loads((results / "smoke" / "units" / "summary.json").read_text())
    assert summary["complete"] is False and (summary["done"], summary["planned"]) == (0, 2)
    monkeypatch.delenv("REPRO_DEADLINE")

    rc, stdout, _ = cli(capsys, "plan", "units", *args)
    # a unit without a training loop runs whole in plan mode: the time it reports is its estimate
    assert rc == 0 and "0 done, 0 stale, 2 to run, ~3m" in stdout and "without an estimate" not in stdout, stdout

    rc, stdout, _ = cli(capsys, "run", "units", *args)  # partial is never up to date
    assert rc == 0 and "partial (0 of 2 runs)" in stdout and "units: ok" in stdout
    assert [p.name.split(".")[1] for p in (results / "smoke").glob("units.*")] == ["partial"]
    rc, stdout, _ = cli(capsys, "run", "units", "-p", "n=3", *args)  # one more unit: only it trains
    assert len(list((results / "smoke" / "runs").glob("*.json"))) == 3
    # outputs of exactly this request, every unit recorded and current: read, no kernel started
    with monkeypatch.context() as m:
        m.setattr(plan, "plan_units", lambda *a: pytest.fail("plan mode executed a current notebook"))
        rc, stdout, _ = cli(capsys, "plan", "units", "-p", "n=3", *args)
    assert rc == 0 and "fresh: 3 done, 0 stale, 0 to run (read from its records)" in stdout, stdout
    rc, stdout, _ = cli(capsys, "plan", "units", "-p", "n=4", "--jobs", "2", *args)
    assert "fresh" not in stdout and "3 done, 0 stale, 1 to run, ~2m" in stdout  # recorded 90 s each
    assert not list(kernel_tmp.glob("repro-kernel-*"))  # kernel socket folders removed

    rc, stdout, _ = cli(capsys, "clean", "--results-dir", results)
    assert rc == 0 and "2 folder(s)" in stdout and "--remove" in stdout
    rc, stdout, _ = cli(capsys, "clean", "--remove", "--results-dir", results)
    assert not list((results / "smoke").glob("units.*")) and (results / "smoke" / "units").exists()

    # a record whose code changed since it ran: the folder is no longer current, plan mode must tell
    [job] = runner.jobs_for(["units"], "smoke", ["n=3"], nbs)
    assert [u["state"] for u in outputs.recorded_units(job, "smoke", results)] == ["done"] * 3
    record = sorted((results / "smoke" / "runs").glob("*.json"))[0]
    row = json.loads(record.read_text())
    record.write_text(json.dumps({**row, "code": {"scheme": 2, "train.py::Loop.run": "0" * 12}}))
    assert outputs.recorded_units(job, "smoke", results) is None


def test_a_second_run_of_the_same_notebook_refuses(capsys, units_env):
    nbs, results = units_env
    with execute._lock(results / "smoke", "good"):
        rc, _, err = cli(capsys, "run", "good", "--notebooks-dir", nbs, "--results-dir", results)
    assert rc == 1 and "good is already running" in err and f"pid {os.getpid()}" in err
    assert not (results / "smoke" / "good").exists()


def test_jobs_run_notebooks_side_by_side(capsys, units_env):
    nbs, results = units_env
    rc, stdout, _ = cli(capsys, "run", "all", "--jobs", "2", "--notebooks-dir", nbs, "--results-dir", results)
    assert rc == 0 and "2 at a time" in stdout
    assert (results / "smoke" / "good" / "run.json").exists() and (results / "smoke" / "units" / "run.json").exists()


DEEP = '''\
# %% [markdown]
# # Deep: raises inside the package, only when the runner sets train

# %% tags=["parameters"]
profile = "smoke"
output_dir = None
train = False

# %%
from repro.results import read_json
folder = "/nonexistent/summary.json" if train else "repro/fingerprints.json"
read_json(folder)
'''

TRAINS = '''\
# %% [markdown]
# # Trains: reports the train flag it was given

# %% tags=["parameters"]
profile = "smoke"
output_dir = None
train = False

# %%
from repro.results import write_summary
write_summary(output_dir, {"train": train})
'''


def test_a_notebook_that_raises_in_plan_mode_is_an_error_of_the_plan(capsys, units_env):
    """The plan quotes the line of the cell that raised (not the cell's first line) and where in
    the package it was raised, and exits 1. DEEP raises only with train=True: the runner sets it
    in plan mode too."""
    nbs, results = units_env
    (nbs / "deep.py").write_text(DEEP)
    rc, stdout, err = cli(capsys, "plan", "deep", "good", "--notebooks-dir", nbs, "--results-dir", results)
    assert rc == 1, stdout + err
    assert "deep                   ERROR: deep: cell 2, line 3 (`read_json(folder)`) raised " \
           "FileNotFoundError in read_json (repro/results.py:" in stdout, stdout
    assert "/nonexistent/summary.json" in stdout and "executed notebook" not in stdout  # its copy was temporary
    assert "1 notebook(s) raised" in stdout and "good " in stdout  # the plan goes on past it
    assert [line.split(": cell")[0] for line in err.splitlines()] == ["ERROR deep"]


def test_the_runner_sets_train_where_a_notebook_declares_it(capsys, units_env):
    nbs, results = units_env
    (nbs / "trains.py").write_text(TRAINS)
    path = nbs / "good.py"  # declares no train: it gets none (papermill would add an unknown name)
    assert catalogue.injected(path, catalogue.read_notebook(path), "smoke", "out", {"lr": 1}) == {
        "profile": "smoke", "output_dir": "out", "lr": 1}
    rc, stdout, _ = cli(capsys, "run", "trains", "--notebooks-dir", nbs, "--results-dir", results)
    assert rc == 0 and "trains: ok" in stdout, stdout
    out = results / "smoke" / "trains"
    assert json.loads((out / "summary.json").read_text())["train"] is True
    assert json.loads((out / "run.json").read_text())["injected"]["train"] is True
    rc, stdout, _ = cli(capsys, "run", "trains", "-p", "train=False", "--notebooks-dir", nbs, "--results-dir", results)
    assert rc == 0 and json.loads((out / "summary.json").read_text())["train"] is False  # -p still wins


def test_schedule_honours_dependencies():
    jobs = [runner.Job(n, None) for n in ("pld_pretraining", "gradient_norms", "pld_glue", "report")]
    secs = {"pld_pretraining": 100, "gradient_norms": 10, "pld_glue": 50, "report": 1}
    assert runner.schedule(secs, jobs, 1) == 161
    assert runner.schedule(secs, jobs, 2) == 151  # pld_glue waits for pld_pretraining; report for all


def test_papermill_inspect_misses_union_parameters(tmp_path):
    """Why the runner parses the parameters cell itself: papermill's inspect_notebook drops
    `name: A | None = ...` parameters. If papermill learns them, this fails: switch to it then."""
    import nbformat
    import papermill
    nb = runner.read_notebook(REPO_ROOT / "notebooks" / "glue_finetune.py")
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    ours = runner.notebook_parameters(REPO_ROOT / "notebooks" / "glue_finetune.py")
    theirs = papermill.inspect_notebook(str(path))
    assert "output_dir" in ours and "data_dir" in ours
    assert "output_dir" not in theirs and "data_dir" not in theirs


def test_an_executed_notebook_in_the_repository_names_no_path_of_this_machine():
    from pathlib import Path
    nb = REPO_ROOT / "results" / "_scratch" / "portable-test.ipynb"  # git-ignored
    nb.parent.mkdir(parents=True, exist_ok=True)
    nb.write_text(f'{{"output_dir": "{REPO_ROOT}/results/cpu/x", "cwd": "{REPO_ROOT}", '
                  f'"cache": "{Path.home()}/.cache/repro/cpu/u"}}')
    execute._portable(nb)
    assert nb.read_text() == '{"output_dir": "results/cpu/x", "cwd": ".", "cache": "~/.cache/repro/cpu/u"}'
    nb.unlink()
