"""Where and with what the recorded numbers were made, read from the run records themselves (each
record's provenance: CPU model, threads, git revision and dirty flag, package versions; its
times): the report's provenance table, the compute spent, the records made with package versions
other than requirements.lock pins, and which machine each EarlyBERT time saving was timed on.

It reads and counts; it measures nothing.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from . import REPO_ROOT
from .store import Missing, Store

LOCK_FILE = REPO_ROOT / "requirements.lock"
PACKAGES = ("torch", "transformers", "datasets", "numpy", "pandas")  # what every record's provenance names


def cpu(record: dict) -> str:
    """The CPU model a record was made on ("?" where not recorded), with its GPU where it had one."""
    p = record.get("provenance") or {}
    return p.get("gpu") or p.get("cpu") or "?"


def core_seconds(record: dict) -> float:
    """A record's own seconds (times.total, else the sum of its times) x the threads it ran with."""
    t = record.get("times") or {}
    seconds = t.get("total") if t.get("total") is not None else sum(v for v in t.values() if isinstance(v, (int, float)))
    return float(seconds or 0.0) * int((record.get("provenance") or {}).get("torch_threads") or 1)


@functools.cache
def locked(path: Path = LOCK_FILE) -> dict[str, str]:
    """{package (lower case): version} pinned in requirements.lock; empty where there is none."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    return {m[1].lower().replace("_", "-"): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", text, re.M)}


def off_lock(record: dict, lock: dict | None = None) -> dict[str, str]:
    """{package: version} where the record's version is not the lock's (a local build tag such as
    +cpu aside); empty where it matches, or the lock does not pin the package."""
    lock = locked() if lock is None else lock
    p = record.get("provenance") or {}
    return {k: p[k] for k in PACKAGES if p.get(k) and k in lock and str(p[k]).split("+")[0] != lock[k]}


def _counts(values) -> str:
    """"AMD EPYC ×34; Intel Xeon ×2": each value and how many records have it, most first."""
    return "; ".join(f"{v} ×{n}" for v, n in Counter(values).most_common())


def notebook_records(s: Store, notebook: str) -> list[dict]:
    """The records a notebook's outputs were made from, with those it only read (an earlier
    recipe's sensitivity row): everything its outputs show."""
    try:
        return s.used_records(notebook) + s.used_records(notebook, read_only=True)
    except Missing:
        return []


def provenance_table(s: Store, notebooks, lock: dict | None = None) -> pd.DataFrame:
    """One row per notebook with outputs: its records' machines, core-hours (recorded seconds x
    threads), how many were made from a dirty tree, their git revisions, and their package
    versions: "as the lock" (requirements.lock's, of PACKAGES), else the versions off it."""
    lock = locked() if lock is None else lock
    rows = []
    for nb in notebooks:
        recs = notebook_records(s, nb)
        if not recs:
            continue
        prov = [r.get("provenance") or {} for r in recs]
        versions = [", ".join(f"{k} {v}" for k, v in off.items()) if (off := off_lock(r, lock)) else "as the lock"
                    for r in recs]
        revs = Counter((p.get("git_rev") or "?")[:7] for p in prov)
        rows.append({"notebook": nb, "records": len(recs), "machines": _counts(cpu(r) for r in recs),
                     "core-hours": round(sum(core_seconds(r) for r in recs) / 3600, 2),
                     "dirty tree": f"{sum(bool(p.get('git_dirty')) for p in prov)} of {len(recs)}",
                     "git revisions": f"{len(revs)}: " + ", ".join(r for r, _ in revs.most_common(3))
                                      + (", …" if len(revs) > 3 else ""),
                     "packages": _counts(versions)})
    return pd.DataFrame(rows)


def off_lock_text(s: Store, notebooks, lock: dict | None = None, shown: int = 6) -> list[str]:
    """One line per notebook and package version off the lock: which records (method, task, seed)."""
    lock = locked() if lock is None else lock
    lines = []
    for nb in notebooks:
        by: dict[tuple, list[dict]] = {}
        for r in notebook_records(s, nb):
            for k, v in off_lock(r, lock).items():
                by.setdefault((k, v), []).append(r)
        for (k, v), recs in sorted(by.items()):
            names = [f"{r.get('method')} {r.get('task') or ''} s{r.get('seed')}".replace("  ", " ") for r in recs]
            more = f", and {len(names) - shown} more" if len(names) > shown else ""
            lines.append(f"- {nb}: {len(recs)} record(s) with {k} {v} (the lock pins {lock[k]}): "
                         f"{', '.join(names[:shown])}{more}")
    return lines


def compute_spent(s: Store, notebooks) -> pd.DataFrame:
    """Core-hours per notebook (recorded seconds x threads) of the records it wrote at this
    profile, and of those some notebook's outputs show (the rest: runs since superseded, stale or
    abandoned); a last row, all. Each record counts once, under the notebook that wrote it."""
    shown = {r["run_id"] for nb in notebooks for r in notebook_records(s, nb)}
    rows = []
    for nb in notebooks:
        every = [r for r in s.records if r.get("notebook") == nb]
        if every:
            used = [r for r in every if r["run_id"] in shown]
            rows.append({"notebook": nb, "records": len(every), "core-hours": sum(map(core_seconds, every)) / 3600,
                         "records shown": len(used), "core-hours shown": sum(map(core_seconds, used)) / 3600})
    if rows:
        rows.append({"notebook": "all", **{k: sum(r[k] for r in rows) for k in rows[0] if k != "notebook"}})
    return pd.DataFrame(rows).round(2)


def saving_machines(s: Store, notebook: str, df: pd.DataFrame) -> list[str]:
    """The machine each row of an EarlyBERT comparison table (earlybert_tables.comparison) was
    timed on: paired rows, the CPU model of the task and seed's step_times record (the per-step
    costs it is charged at); whole-run wall-clock rows, the model the ticket and its dense run both
    ran on, "mixed: A / B" where they differ."""
    recs = notebook_records(s, notebook)
    step = {(r.get("task"), r.get("seed")): cpu(r) for r in recs if r.get("method") == "step_times"}
    run = {(r.get("task"), r.get("seed"), r.get("method")): cpu(r) for r in recs}
    out = []
    for row in df.itertuples():
        key = (getattr(row, "task", None), None if pd.isna(row.seed) else int(row.seed))
        if getattr(row, "timing", "") == "paired" and key in step:
            out.append(step[key])
            continue
        mine, dense = run.get((*key, row.method), "?"), run.get((*key, "dense"), "?")
        out.append(mine if mine == dense else f"mixed: {mine} / {dense}")
    return out
