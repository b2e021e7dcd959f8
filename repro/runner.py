"""Run the study's notebooks with papermill: `python -m repro run NAME... --profile P`.

    from repro import runner
    jobs = runner.jobs_for(["glue_finetune"], "cpu", ["seeds=[0]"])  # checked; raises UsageError
    runner.run(jobs, "cpu")                                            # [Outcome, ...]

The runner is split by responsibility; this module runs a list of jobs, one after another or
side by side, and names the parts' public functions so that callers need one import:
- repro.catalogue: the notebooks, their order and dependencies, their parameters cells;
- repro.selection: a request (names, profile, -p values) checked as a whole into Jobs;
- repro.outputs: what an output folder holds (current, stale), moving folders aside;
- repro.execute: one notebook executed with papermill into its folder, under a lock;
- repro.plan: `repro plan`, what a run would do and how long it would take.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter
from pathlib import Path

from . import REPO_ROOT  # noqa: F401 - named by callers (runner.REPO_ROOT)
# the parts' public names, as callers know them (runner.jobs_for, runner.UsageError, ...)
from .catalogue import (INJECTED, ORDER, TRAIN, UsageError, _parameters_index, depends, description,  # noqa: F401
                        list_notebooks, notebook_parameters, ordered, parameter_types, read_notebook)
from .control import Control
from .execute import Outcome, cores, execute
from .outputs import moved_aside  # noqa: F401
from .plan import NotebookFailed, plan_units, print_plan, schedule  # noqa: F401
from .results import results_root, utc_now
from .selection import Job, jobs_for  # noqa: F401


def run(jobs: list[Job], profile: str, results_dir=None, force: bool = False, parallel: int = 1,
        control: Control = Control()) -> list[Outcome]:
    """Execute the jobs; a failure doesn't stop the others. parallel > 1 runs independent
    notebooks side by side, each in its own process with its share of the cores. `control`: the
    command line's settings (Control.from_environ at its top): the results root when
    `results_dir` is None, and --rerun-stale."""
    root = Path(results_dir or results_root(control.results_dir)).resolve()
    if parallel > 1 and len(jobs) > 1:
        return _run_parallel(jobs, profile, root, force, parallel)
    outcomes = []
    for job in jobs:
        outcomes.append(execute(job, profile, root, force, control))
        _log(root, profile, outcomes[-1])
    return outcomes


def _log(root: Path, profile: str, o: Outcome) -> None:
    line = f"{o.name}: {o.status} in {o.seconds:.1f}s" + (f" — {o.message}" if o.status in ("skipped", "partial") else "")
    print(line, flush=True)
    log = root / profile / "runner.log"  # git-ignored: a run that changes nothing leaves the checkout clean
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:  # one short line per notebook; appends don't clobber
        f.write(f"{utc_now()}\t{o.name}\t{o.status}\t{o.seconds:.1f}\n")


def _command(job: Job, profile: str, root: Path, force: bool) -> list[str]:
    cmd = [sys.executable, "-m", "repro", "run", job.name, "--profile", profile, "--results-dir", str(root),
           "--notebooks-dir", str(job.path.parent)]
    for key, value in job.params.items():
        cmd += ["-p", f"{key}={value!r}"]
    return cmd + (["--force"] if force else [])


def _run_parallel(jobs, profile, root, force, parallel) -> list[Outcome]:
    """Each notebook in a `repro run` process of its own, `parallel` at a time. Whenever one ends,
    the first job in order whose dependencies (catalogue.DEPENDS; the report waits for all) have
    ended starts: plan.schedule estimates this very policy."""
    threads = str(max(1, cores() // parallel))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    print(f"running {len(jobs)} notebook(s), {parallel} at a time, {threads} thread(s) each", flush=True)
    names, by_name = {j.name for j in jobs}, {j.name: j for j in jobs}
    rank = {j.name: i for i, j in enumerate(jobs)}
    graph = TopologicalSorter({j.name: depends(j.name, names) for j in jobs})
    graph.prepare()
    procs, guard = {}, threading.Lock()  # name -> its process, for an interrupt to stop them

    def one(name: str) -> Outcome:
        t0 = time.perf_counter()
        with guard:
            procs[name] = proc = subprocess.Popen(_command(by_name[name], profile, root, force), env=env)
        code = proc.wait()
        return Outcome(name, "ok" if code == 0 else "failed", time.perf_counter() - t0,
                       "" if code == 0 else f"{name}: exited {code} (see above)")

    ready, running, outcomes = [], {}, []
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        try:
            while graph.is_active():
                ready = sorted(ready + list(graph.get_ready()), key=rank.__getitem__)
                while ready and len(running) < parallel:
                    name = ready.pop(0)
                    running[pool.submit(one, name)] = name
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    outcomes.append(future.result())
                    graph.done(running.pop(future))
        except KeyboardInterrupt:
            with guard:
                for proc in procs.values():
                    if proc.poll() is None:
                        proc.terminate()
            raise
    return outcomes
