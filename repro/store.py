"""The read-only store of one profile's results: what the notebooks wrote under
<results>/<profile>/<notebook>/ (summary.json, CSV tables, figures) and the run records under
<results>/<profile>/runs/. It computes nothing: it reads, and says what is not there (`Missing`).

It sits next to repro.results (layer 0) so that experiments (earlybert_runs.value_tiers) and the
report read recorded outputs alike; repro.report_store re-exports it for the claims.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .results import from_jsonable, load_runs, load_runs_raw, read_json


class Missing(Exception):
    """An output a claim needs is not there (its notebook has not run at this profile)."""


def utc(x) -> datetime:
    """An ISO date or date-time (a date is its midnight UTC), or a pandas Timestamp, as aware UTC
    (repro.rules.parse_time reads times alike)."""
    t = x if isinstance(x, datetime) else datetime.fromisoformat(str(x))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


@dataclass
class Store:
    """Read-only view of one profile's results."""
    profile: str
    root: Path
    data_dir: str | None = None  # GLUE data for a floor no notebook recorded (the Control's); None: the default

    def dir(self, notebook: str) -> Path:
        return self.root / self.profile / notebook

    @functools.cached_property
    def records(self) -> list[dict]:
        """The profile's run records as stored, read once per report."""
        return load_runs_raw(self.profile, root=self.root)

    @functools.cached_property
    def by_id(self) -> dict[str, dict]:
        """run id -> its record as stored."""
        return {r["run_id"]: r for r in self.records}

    @functools.cached_property
    def codes(self) -> dict:
        """run id -> the code fingerprint of its record."""
        return {r["run_id"]: r.get("code") for r in self.records}

    def judged_from(self, notebooks, ids=None) -> str | None:
        """The earliest timestamp of the records the notebooks' outputs were made from (their
        summaries' run_ids; `ids`, when a claim names the ones its verdict rests on); None when no
        such record is known."""
        stamps = {r["run_id"]: r.get("timestamp") for r in self.records}
        found = [stamps[i] for nb in notebooks if (self.dir(nb) / "summary.json").exists()
                 for i in self.summary(nb).get("run_ids", []) if stamps.get(i) and (ids is None or i in ids)]
        return min(found, key=utc) if found else None

    def first_recorded(self, notebooks) -> str | None:
        """The earliest record any of the notebooks wrote at this profile (any execution, also
        ones whose outputs were since remade): when data of the claim were first seen."""
        found = [r["timestamp"] for r in self.records if r.get("notebook") in notebooks and r.get("timestamp")]
        return min(found, key=utc) if found else None

    def finished(self, notebook: str) -> Path:
        """The notebook's output folder, or Missing when it holds no finished run."""
        d = self.dir(notebook)
        if not (d / "summary.json").exists():
            raise Missing(f"run the {notebook} notebook (python -m repro run {notebook} --profile {self.profile})")
        return d

    def summary(self, notebook: str) -> dict:
        return from_jsonable(read_json(self.finished(notebook) / "summary.json"))

    def table(self, notebook: str, name: str) -> pd.DataFrame:
        return pd.read_csv(self.finished(notebook) / f"{name}.csv")

    def runs(self, notebook: str) -> pd.DataFrame:
        """The run records the notebook's outputs were made from: the units its summary.json
        lists (reused from earlier executions or trained in this one); for outputs made before
        run-level resume, the records of the execution run.json names."""
        summary = self.summary(notebook)
        df = load_runs(self.profile, root=self.root)
        if "run_ids" in summary:
            return df[df["run_id"].isin(summary["run_ids"])]
        execution = read_json(self.finished(notebook) / "run.json").get("execution")
        df = df[df["notebook"] == notebook]
        return df[df["execution"] == execution] if execution else df

    def used_records(self, notebook: str, read_only: bool = False) -> list[dict]:
        """The records (as stored) the notebook's outputs were made from, as `runs` picks them;
        with read_only, those it only read (Study.reading(): an earlier recipe's sensitivity row)."""
        summary = self.summary(notebook)
        if read_only:
            return [self.by_id[i] for i in summary.get("read_only_run_ids", []) if i in self.by_id]
        if "run_ids" in summary:
            return [self.by_id[i] for i in summary["run_ids"] if i in self.by_id]
        execution = read_json(self.finished(notebook) / "run.json").get("execution")
        return [r for r in self.records if r.get("notebook") == notebook
                and (execution is None or r.get("execution") == execution)]

    def progress(self, notebook: str) -> tuple[int, int] | None:
        """(done, planned) units when the notebook's outputs are partial; None when complete."""
        summary = self.summary(notebook)
        return None if summary.get("complete", True) else (summary.get("done", 0), summary.get("planned", 0))

    def figure(self, notebook: str, name: str) -> str | None:
        """The figure's path relative to <results>/<profile>/, where REPORT.md is."""
        return f"{notebook}/{name}.png" if (self.dir(notebook) / f"{name}.png").exists() else None
