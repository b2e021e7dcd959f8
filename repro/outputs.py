"""What a notebook's output folder <results>/<profile>/<name>/ holds, read without running it:
finished or not, current or stale, and the folders earlier runs moved aside.

After a successful run the runner writes run.json beside the notebook's summary.json (the
request: profile, parameters, the notebook source's hash; the execution id summary.json carries
too). A folder is current when it holds a finished, complete run of exactly the request and no
unit it used has gone stale since; `run` skips it, and `plan` reads its units from the records.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .catalogue import ORDER
from .control import Control
from .fingerprint import changed
from .results import load_runs_raw, output_path, read_json, to_jsonable


@dataclass
class Records:
    """A profile's run records, read once, and what changed in each one's code since it ran,
    asked once per distinct fingerprint (fingerprint.changed reads the package's sources: slow;
    the runs of one notebook and method mostly share theirs)."""
    rows: list[dict]
    _changed: dict = field(default_factory=dict)  # the fingerprint as JSON -> what changed

    @classmethod
    def load(cls, profile: str, root: Path) -> "Records":
        return cls(load_runs_raw(profile, root))

    def of(self, ids) -> list[dict]:
        ids = set(ids)
        return [r for r in self.rows if r.get("run_id") in ids]

    def changed(self, row: dict) -> list[str] | None:
        key = json.dumps(row.get("code"), sort_keys=True)
        if key not in self._changed:
            self._changed[key] = changed(row.get("code"))
        return self._changed[key]


def request(job, profile: str, out: Path) -> dict:
    """What run.json keeps of a run: a later run of the same request is up to date. The report's
    request holds its inputs' executions, so it re-runs when any notebook did."""
    req = to_jsonable({"profile": profile, "parameters": job.params,
                       "source_sha256": hashlib.sha256(job.path.read_bytes()).hexdigest()})
    if job.name == "report":
        req["inputs"] = _report_inputs(out.parent)
    return req


def _report_inputs(profile_dir: Path) -> dict:
    """{notebook: execution id} of every finished notebook beside the report (not moved-aside ones)."""
    found = {}
    for run_json in sorted(profile_dir.glob("*/run.json")):
        name = run_json.parent.name
        if name in ORDER and name != "report":
            found[name] = read_json(run_json).get("execution")
    return found


def finished(out: Path) -> dict | None:
    """run.json of a finished, complete runner execution whose summary.json it made; else None."""
    try:
        run, summary = read_json(out / "run.json"), read_json(out / "summary.json")
    except (OSError, ValueError):
        return None
    if summary.get("execution") != run.get("execution") or summary.get("complete") is False:
        return None
    return run


def stale_reason(out: Path, req: dict, records: Records | None = None, rerun_stale: bool = False) -> str | None:
    """None when out/ holds a finished, complete run of exactly this request; else why not.
    `records`: the profile's, where the caller has read them; `rerun_stale` (--rerun-stale, the
    runner's Control): a summary with stale runs is not current either."""
    try:
        summary = read_json(out / "summary.json")
    except (OSError, ValueError):
        return "no summary.json"
    try:
        run = read_json(out / "run.json")
        previous = run["request"]
    except (OSError, ValueError, KeyError):
        return "summary.json was not made by the runner"
    if summary.get("execution") != run.get("execution"):
        return "summary.json comes from another execution than run.json"
    if summary.get("complete") is False:
        return f"partial ({summary.get('done')} of {summary.get('planned')} runs)"
    differ = [k for k in req if previous.get(k) != req[k]]
    if differ:
        return f"{', '.join(differ)} changed"
    if summary.get("stale") and rerun_stale:
        return f"{summary['stale']} stale run(s) ({', '.join(summary.get('stale_modules', []))} changed)"
    stale = _stale_since(out, summary, records)
    if stale:  # the code its units ran changed since: its units may now be others (a new config)
        return f"code changed since it ran: {len(stale)} of its run(s) stale ({', '.join(sorted(set(stale))[:4])})"
    return None


def _stale_since(out: Path, summary: dict, records: Records | None = None) -> list[str]:
    """What changed in the code of the runs a notebook's summary used, beyond what was already
    stale when it ran (one name per changed function or declaration and run)."""
    ids = summary.get("run_ids") or []
    if not ids:
        return []
    records = records or Records.load(out.parent.name, out.parent.parent)
    changes = [records.changed(r) for r in records.of(ids)]
    n_stale = sum(1 for c in changes if c)
    return [c for cs in changes for c in cs or []] if n_stale > (summary.get("stale") or 0) else []


def recorded_units(job, profile: str, root: Path, records: Records | None = None,
                   control: Control = Control()) -> list[dict] | None:
    """The units of a current output folder, as plan mode would list them, read from its
    summary.json and the results store without starting a kernel; None when the folder is not
    current or any unit it used (read-only ones included) is not recorded and current: then only
    executing the notebook in plan mode says what a run would do. `records`: if read already;
    `control`: the runner's settings (its cache folder, --rerun-stale).

    A recorded artifact this machine's cache lacks (a new machine) sends the notebook to plan
    mode too, which names the artifacts a re-run would remake."""
    from .study import cache_root

    cache = cache_root(control.cache_dir) / profile
    out = output_path(profile, job.name, root)
    records = records or Records.load(profile, root)
    if stale_reason(out, request(job, profile, out), records, control.rerun_stale) is not None:
        return None
    summary = read_json(out / "summary.json")
    if "planned" not in summary or summary.get("stale") or summary.get("done") != summary.get("planned"):
        return None  # not the summary of a Study (its units are unknown here), or not all current
    if "artifacts" not in summary or any(not (cache / path).exists() for path in summary["artifacts"].values()):
        return None  # an artifact this machine lacks (or a summary that did not list them): plan mode says which
    ids = {i: False for i in summary.get("run_ids") or []} | {i: True for i in summary.get("read_only_run_ids") or []}
    by_id = {r.get("run_id"): r for r in records.of(ids)}
    units = []
    for run_id, read_only in ids.items():
        r = by_id.get(run_id)
        if r is None or not r.get("unit") or not isinstance(r.get("code"), dict) or records.changed(r) != []:
            return None

        units.append({"key": r["unit"], "notebook": r.get("notebook"), "task": r.get("task"),
                      "method": r.get("method"), "seed": r.get("seed"), "state": "done", "run_id": run_id,
                      "seconds": (r.get("times") or {}).get("total"), "estimate": None, "changed": None,
                      "read_only": read_only or None})
    return units


def move_aside(out: Path) -> Path:
    """<name>.<UTC stamp> for a finished execution, <name>.partial.<stamp> for anything else
    (failed, interrupted, partial, hand-made); `repro clean` lists and removes them."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tag = "" if finished(out) else "partial."
    aside, i = out.with_name(f"{out.name}.{tag}{stamp}"), 1
    while aside.exists():
        aside, i = out.with_name(f"{out.name}.{tag}{stamp}-{i}"), i + 1
    out.rename(aside)
    return aside


def moved_aside(profile_dir: Path) -> list[Path]:
    """Folders earlier runs moved aside under <results>/<profile>/, oldest first."""
    names = set(ORDER) | {p.parent.name for p in profile_dir.glob("*/run.json")}
    return sorted((p for p in profile_dir.iterdir() if p.is_dir() and "." in p.name and p.name.split(".")[0] in names),
                  key=lambda p: p.name.split(".", 1)[1].removeprefix("partial.")) if profile_dir.exists() else []
