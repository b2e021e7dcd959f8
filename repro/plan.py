"""`python -m repro plan`: what a run would do, per notebook (units done, stale and to run) and
how long it would take, without training anything.

A notebook whose output folder is current (outputs.recorded_units) is answered from its
summary.json and the results store, in a fraction of a second. Any other is executed in plan
mode (`REPRO_PLAN`: no unit trains; each missing one is estimated from recorded units or a few
timed steps) into a temporary folder. A notebook that raises is an ERROR of the plan: a run
would fail the same way.
"""
from __future__ import annotations

import heapq
import json
import tempfile
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path

from .catalogue import _parameters_index, depends, injected, read_notebook
from .control import Control
from .execute import cores, failure_message, papermill_run
from .outputs import Records, recorded_units, request, stale_reason
from .results import output_path, results_root


class NotebookFailed(Exception):
    """A notebook raised in plan mode (its message says where): the plan cannot say what it does."""


def plan_units(job, profile: str, root: Path) -> list[dict]:
    """Execute the notebook in plan mode (no unit trains; outputs go to a temporary folder) and
    return its units: state done | stale | missing | waiting, with an estimate of the missing.
    Raises NotebookFailed when a cell raises."""
    with tempfile.TemporaryDirectory(prefix="repro-plan-") as tmp:
        plan_file = Path(tmp) / "units.json"
        nb = read_notebook(job.path)
        parameters = injected(job.path, nb, profile, Path(tmp) / "out", job.params)
        env = {"REPRO_RESULTS_DIR": str(root), "REPRO_PLAN": str(plan_file), "REPRO_EXECUTION_ID": "plan"}
        try:
            papermill_run(nb, Path(tmp) / f"{job.name}.ipynb", parameters, env)
        except Exception as err:  # the executed copy goes with the temporary folder: not named
            raise NotebookFailed(failure_message(job.name, err, _parameters_index(nb, job.path), None)) from None
        return json.loads(plan_file.read_text()) if plan_file.exists() else []


@dataclass
class Row:
    notebook: str
    state: str  # fresh | missing | stale (...) | to run (...) | ERROR
    units: list = field(default_factory=list)
    seconds: float = 0.0  # the estimate counted for it
    error: str = ""


def print_plan(jobs, profile: str, results_dir=None, parallel: int = 1, control: Control = Control()) -> dict:
    """Per notebook: units done, stale and to run, and the estimated time to run them.
    Returns {"notebooks": [row as dict], "seconds": wall-clock estimate, "errors": [messages]}.
    `control`: the command line's settings (the results root when `results_dir` is None, the
    cache folder, --rerun-stale)."""
    root = Path(results_dir or results_root(control.results_dir)).resolve()
    records = Records.load(profile, root)  # read once; each record's code checked once
    revs = {r["run_id"]: (r.get("provenance") or {}).get("git_rev") for r in records.rows}
    rows, unknown, counted = [], 0, set()
    print(f"Plan for profile {profile} (results in {root / profile}):", flush=True)
    for job in jobs:
        recorded = [] if job.name == "report" else recorded_units(job, profile, root, records, control)
        try:
            units = recorded if recorded is not None else plan_units(job, profile, root)
        except NotebookFailed as e:
            rows.append(Row(job.name, "ERROR", error=str(e)))
            print(f"  {job.name:<22} ERROR: {e}", flush=True)
            continue
        for u in units:
            u["git_rev"] = revs.get(u.get("run_id"))
        state = _state(job, profile, root, units, records, control.rerun_stale)
        todo = [u for u in units if u["state"] in ("missing", "waiting")]
        # a fresh notebook's remakes run only if it is re-run: shown, not counted
        remake = lambda u: state == "fresh" and u.get("rerun") == "artifact gone"  # noqa: E731
        remakes, todo = [u for u in todo if remake(u)], [u for u in todo if not remake(u)]
        # a unit another notebook asks for too (EarlyBERT's dense runs are glue_finetune's, pld_glue's
        # pre-training is pld_pretraining's) trains once: its time counts in the first notebook only
        own = [u for u in todo if u["key"] not in counted]
        counted.update(u["key"] for u in todo)
        est = [u["estimate"] for u in own if u.get("estimate")]
        unknown += len(own) - len(est)
        seconds = sum(est) if job.name != "report" else 0.0 if state == "fresh" else 30.0
        n = {k: sum(u["state"] == k for u in units) for k in ("done", "stale")}
        line = (f"  {job.name:<22} {state}: {n['done']} done, {n['stale']} stale, {len(todo)} to run"
                + (f", ~{_hms(seconds)}" if own else "")
                + (" (read from its records)" if recorded is not None and job.name != "report" else "")
                + (f" ({len(todo) - len(own)} counted above)" if len(own) < len(todo) else "")
                + (f" ({len(own) - len(est)} without an estimate)" if len(own) > len(est) else "")
                + (f" ({scaled} scaled from related runs: they wait for others' outputs)"
                   if (scaled := sum(bool(u.get("scaled_from")) for u in own)) else "")
                + (f" ({len(resumed)} resume from checkpoints holding {_hms(sum(resumed))} of training)"
                   if (resumed := [u["resumed_seconds"] for u in own if u.get("resumed_seconds")]) else "")
                + (f" ({remade} recorded, re-run to remake an artifact this machine lacks and a unit to run needs)"
                   if (remade := sum(u.get("rerun") == "artifact gone" for u in own)) else "")
                + (f" (this machine lacks {len(remakes)} recorded artifact(s) the notebook reads: running it"
                   f" again would remake them first, ~{_hms(sum(u.get('estimate') or 0 for u in remakes))})"
                   if remakes else ""))
        print(line, flush=True)
        rows.append(Row(job.name, state, units, seconds))
    seconds = {r.notebook: r.seconds for r in rows}
    total = schedule(seconds, jobs, parallel)
    errors = [r.error for r in rows if r.state == "ERROR"]
    print(f"Estimated: ~{_hms(total)} at --jobs {parallel} ({cores()} cores), "
          f"{sum(seconds.values()) / 3600:.1f} h of runs in all"
          + (f"; {unknown} unit(s) without an estimate not counted" if unknown else "")
          + (f"; {len(errors)} notebook(s) raised (ERROR above): not counted, a run would fail" if errors else "")
          + ". Units already recorded are reused; a stopped run continues where it stopped.", flush=True)
    return {"notebooks": [vars(r) for r in rows], "seconds": total, "errors": errors}


def _state(job, profile: str, root: Path, units: list[dict], records: Records | None = None,
           rerun_stale: bool = False) -> str:
    out = output_path(profile, job.name, root)
    if not (out / "summary.json").exists():
        return "missing"
    reason = stale_reason(out, request(job, profile, out), records, rerun_stale)
    stale = [u for u in units if u["state"] == "stale"]
    if stale:
        revs = sorted({u.get("git_rev") or "?" for u in stale})
        mods = sorted({m for u in stale for m in u.get("changed") or []})
        return f"stale ({', '.join(mods)} changed since {', '.join(r[:7] for r in revs)})"
    # outputs of exactly this request, every unit recorded: `run` skips it, even where the cache
    # lacks an artifact the notebook reads (that is remade only when the notebook runs again)
    if reason is None and all(u["state"] == "done" or u.get("rerun") == "artifact gone" for u in units):
        return "fresh"
    return f"to run ({reason or 'units missing'})"


def schedule(seconds: dict[str, float], jobs, parallel: int) -> float:
    """Wall-clock of running the jobs with `parallel` workers as `runner.run` does: whenever a
    worker is free it starts the first job, in order, whose dependencies have finished."""
    names = {j.name for j in jobs}
    rank = {j.name: i for i, j in enumerate(jobs)}
    graph = TopologicalSorter({j.name: depends(j.name, names) for j in jobs})
    graph.prepare()
    ready, running, now = [], [], 0.0  # running: a heap of (end, name)
    while graph.is_active():
        ready = sorted(ready + list(graph.get_ready()), key=rank.__getitem__)
        while ready and len(running) < max(1, parallel):
            name = ready.pop(0)
            heapq.heappush(running, (now + seconds.get(name, 0.0), name))
        now, name = heapq.heappop(running)
        graph.done(name)
    return now


def _hms(seconds: float) -> str:
    m = int(round(seconds / 60))
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m" if m else f"{int(seconds)}s"
