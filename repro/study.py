"""Run-level resume: every training run a notebook makes is a *unit* of the study.

    study = Study("glue_finetune", profile)
    P = study.get_profile(checkpoint=checkpoint)  # the profile under the runner's checkpoint and --clip
    data_dir = study.data_dir(data_dir)  # the notebook's parameter, else $REPRO_DATA_DIR
    row = study.unit(task="MRPC", method="dense", seed=0, config=cfg, run=lambda u: {...})

The Study reads the runner's settings from the environment once, when it is made
(`control.Control.from_environ`), and passes them down as values.

A unit is (notebook, profile, task, method, seed, config hash). `unit()` returns the record of
that unit when the results store already holds one (status ok or diverged) and only runs
`run(u)` when it does not, so a notebook killed at any point continues where it stopped, and
adding a seed or a task trains just the new units. `run(u)` returns what `results.record` takes
(metrics, times, status and any extra JSON fields such as a curve); `u.cache` is a folder outside
the git tree for the unit's checkpoints and artifacts (`u.train_kwargs()` makes the training loop
checkpoint there every few minutes and resume from it).

A unit returns None, instead of running, when
- the study only reads (`Study(..., train=False)`, a notebook's default: Run All shows what is
  recorded and trains nothing; a missing unit is missing, as at a deadline);
- the deadline has passed (`REPRO_DEADLINE`, set by `repro run --hours/--until`): the notebook
  then writes its figures and tables from the units it has, and `status()` says it is partial;
  with `REPRO_FIT` (`--fit`) also when its estimate does not fit in the time left;
- a unit it needs (`needs=`) returned None;
- the runner only wants the plan (`REPRO_PLAN`): nothing is trained, each missing unit's time
  is estimated from recorded units, or from a few timed steps of the training loop.

Staleness: every record carries a hash of each `repro` function its run called (and of those
modules' declarations). A record any of whose functions changed since is *stale*: reused (the study accumulates over sessions while code
that does not touch its numbers is edited) but never reported as current: `status()`, `plan`
and the report say so; `REPRO_RERUN_STALE=1` (`repro run --rerun-stale`) retrains them instead,
and `REPRO_FORCE=1` (`repro run --force`) retrains every unit.
Records written before run-level resume existed carry no hashes and are never reused.

Artifacts: a unit's artifact (a checkpoint, a search's trajectory) lives in the cache, which a new
machine lacks. Its record is reused as it stands; the unit is run again only when a unit that
reads the artifact has to run (`Study.need`). That *remake* is recorded with `remake` = the
measured record's run id and the metrics that came out otherwise (timings aside: same seed, same
numbers, unless the thread count or machine changed the last bits). The measured record stays
the unit's record: a lost file does not change what was measured, nor the conditions its timings
were taken under; the units that read the artifact name the record they read in `used`.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import profiles
from .control import Control, Probe, TimeUp  # noqa: F401 - Probe, TimeUp: the units below raise them
from .fingerprint import changed as changed_modules, code_fingerprint, loaded_source, traced_calls
from .results import config_hash, load_runs_raw, record, to_jsonable
from .sources import check_data_dir
from .unit_context import (LENGTH_KEYS, UnitContext, _drop_checkpoints_of_other_code, _length,  # noqa: F401 - also
                           _stamp_checkpoints, cache_root, check_cache_writable, differs, timed,  # the Study's public
                           trained_seconds)  # names, as before the split

DONE = ("ok", "diverged")  # a diverged run is a result too


@dataclass
class Study:
    notebook: str
    profile: str
    root: Path | None = None
    units: list[dict] = field(default_factory=list)  # every unit asked for, in order, with its state
    _records: dict | None = None
    _estimates: dict = field(default_factory=dict)
    _gone: dict = field(default_factory=dict)  # key -> (its unit() arguments, entry): recorded, artifact gone
    _redone: dict = field(default_factory=dict)  # key -> the re-run's record, or None (deadline, plan mode)
    recorded_only: bool = False  # units not recorded are not run, nor planned (reading()): a sensitivity row
    train: bool = True  # False: recorded units are read, missing ones stay missing (nothing trains, nothing is remade)
    # what the runner set (deadline, --fit, plan mode, --force, --rerun-stale, the folders, the
    # execution, the checkpoint and clip): read from the environment once, here at the notebook's
    # set-up, and passed down from here as values
    control: Control = field(default_factory=Control.from_environ)

    def __post_init__(self):
        loaded_source()  # the code as imported, before anything trains
        if self.root is None and self.control.results_dir:  # the runner's results root
            self.root = Path(self.control.results_dir)

    def get_profile(self, **overrides) -> profiles.Profile:
        """The notebook's profile (profiles.get_profile) under the runner's settings: the
        checkpoint the environment names unless the notebook names one, and --clip."""
        if overrides.get("checkpoint") is None:
            overrides["checkpoint"] = self.control.checkpoint
        return profiles.get_profile(self.profile, clip=self.control.clip, clip_batch=self.control.clip_batch, **overrides)

    def data_dir(self, data_dir=None) -> str | None:
        """The data folder the notebook's loaders get: its `data_dir` parameter, else the one the
        environment names ($REPRO_DATA_DIR, checked here so that an error names it), else None:
        the loaders' default (sources.find_data_dir)."""
        if (data_dir is None or str(data_dir) == "") and self.control.data_dir:
            return str(check_data_dir(self.control.data_dir, "$REPRO_DATA_DIR"))
        return data_dir

    def out(self, output_dir=None) -> Path:
        """Where the notebook writes its tables and figures: `output_dir` when given (the runner
        passes results/<profile>/<notebook>/), else a scratch folder outside the repository,
        <cache>/scratch/<profile>/<notebook>/: a Run All in Jupyter writes nothing under results/."""
        if output_dir:
            return Path(output_dir)
        path = cache_root(self.control.cache_dir) / "scratch" / self.profile / self.notebook
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- the store ---------------------------------------------------------------------------
    def records(self) -> dict:
        """unit key -> latest finished record (with a code fingerprint) of this profile."""
        if self._records is None:
            self._records = {}
            for row in load_runs_raw(self.profile, root=self.root):
                if row.get("status") in DONE and row.get("unit") and isinstance(row.get("code"), dict):
                    if row.get("remake") and row["unit"] in self._records:
                        continue  # it remade an artifact: the measured record stays the unit's
                    self._records[row["unit"]] = row  # rows come oldest first: the latest wins
        return self._records

    @staticmethod
    def key(notebook, task, method, seed, chash) -> str:
        return f"{notebook}/{task}/{method}/s{seed}/{chash}"

    def cache_dir(self, key: str) -> Path:
        return cache_root(self.control.cache_dir) / self.profile / key.replace("/", "__")

    # -- one unit ----------------------------------------------------------------------------
    def unit(self, **kw) -> dict | None:
        """unit(task=, method=, seed=, config=, run=, needs=(), artifact=None, notebook=None).

        The record of this unit: reused when stored, else trained by `run(ctx)`, else None.

        `artifact`: a file or folder (relative to the unit's cache) the unit's users need, e.g.
        a checkpoint. A stored record whose artifact is gone (a new machine) is reused as it
        stands, and re-run (saying so) only when a unit that lists it in `needs` has to run:
        a search whose tickets are all recorded is not searched again.
        `notebook`: the notebook the unit belongs to, when another notebook asks for it (a
        checkpoint pre-trained by `pld_pretraining`, used by `pld_glue`).
        `like`: (notebook, method, task, factor), the plan's estimate of this unit while it
        waits for `needs` (nothing to probe yet): that unit's recorded or probed seconds x factor,
        e.g. a ticket as its dense run x epochs and FLOPs kept.
        """
        try:
            return self._unit(kw, **kw)
        finally:
            if self.control.plan_mode:
                self._save_plan()

    def _unit(self, kw: dict, *, task, method: str, seed, config: dict, run, needs=(), artifact: str | None = None,
              notebook: str | None = None, checkpoint_minutes: float = 5.0, like: tuple | None = None,
              again: bool = False) -> dict | None:
        notebook = notebook or self.notebook
        chash = config_hash(config)
        key = self.key(notebook, task, method, seed, chash)
        ctx = UnitContext(key, self.cache_dir(key), checkpoint_minutes, self.control)
        if self.recorded_only and (self._forced() or key not in self.records()):
            return None
        entry = {"key": key, "notebook": notebook, "task": task, "method": method, "seed": seed,
                 "config_hash": chash, "state": "missing", "run_id": None, "seconds": None, "estimate": None,
                 "changed": None, "length": _length(config), "read_only": self.recorded_only or None,
                 "artifact": artifact and f"{key.replace('/', '__')}/{artifact}"}
        self.units.append(entry)
        rec = None if self._forced() else self.records().get(key)
        remade = None
        if rec is not None:
            changed = changed_modules(rec.get("code"))
            gone = artifact is not None and not (ctx.cache / artifact).exists()
            rerun_stale = changed and self.control.rerun_stale and not self.recorded_only and self._trains()
            if not rerun_stale and not (gone and again):
                entry.update(state="stale" if changed else "done", run_id=rec["run_id"], changed=changed or None,
                             seconds=(rec.get("times") or {}).get("total"))
                if gone:  # re-run only if a unit that needs the artifact has to run (Study.need)
                    self._gone[key] = (kw, entry)
                return rec
            why = (f"its artifact {ctx.cache / artifact} is gone and a unit that needs it has to run" if gone
                   else f"code changed ({', '.join(changed)})")
            print(f"{key}: re-running: {why}", flush=True)
            entry["rerun"] = "artifact gone" if gone else "stale"
            remade = rec if gone and not changed else None  # a remake: the same code, the same numbers due
        needs = [self.need(n) for n in needs]
        if any(n is None for n in needs):
            entry["state"] = "waiting"
            entry["estimate"] = self._estimate(entry, None, like)
            return None
        if self.control.plan_mode:
            entry["estimate"] = self._still_to_run(entry, run, ctx)
            return None
        if not self.train or self.control.time_left() <= 0 or (self.control.fit and not self._fits(entry, run, ctx, like)):
            return None
        check_cache_writable(ctx.cache)
        carried = _drop_checkpoints_of_other_code(ctx)
        try:
            with traced_calls() as calls:
                out = run(ctx)
        except TimeUp:
            _stamp_checkpoints(ctx, calls, carried)
            print(f"{key}: stopped at the deadline; its checkpoint in {ctx.cache} resumes it", flush=True)
            return None
        out = dict(out)
        metrics = out.pop("metrics", {})
        if needs:  # the records whose artifacts it read (a remake's, when one was remade)
            out["used"] = [n["run_id"] for n in needs]
        if remade is not None:
            out["remake"] = {"of": remade["run_id"], "differs": differs(remade.get("metrics") or {}, metrics)}
            print(f"{key}: artifact remade, " + (f"other numbers than run {remade['run_id'][:8]}: {out['remake']['differs']}"
                  if out["remake"]["differs"] else f"the same numbers as run {remade['run_id'][:8]}"), flush=True)
        row = record(notebook=notebook, profile=self.profile, task=task, method=method, seed=seed,
                     config=config, metrics=metrics, times=out.pop("times", {}),
                     status=out.pop("status", "ok"), root=self.root, execution=self.control.execution, unit=key,
                     code={**carried, **code_fingerprint(calls)}, **out)
        entry.update(state="done", run_id=row["run_id"], seconds=row["times"].get("total"))
        self.records()[key] = row
        for stage in ctx.cache.glob("*/last.pt"):  # recorded: its training checkpoints are spent
            stage.unlink()
            stage.parent.rmdir() if not any(stage.parent.iterdir()) else None
        (ctx.cache / "code.txt").unlink(missing_ok=True)
        if ctx.cache.exists() and not any(ctx.cache.iterdir()):
            ctx.cache.rmdir()
        return row

    def _trains(self) -> bool:
        """Whether a missing unit may run: train=True, or plan mode (which plans what training would
        run, whatever the notebook's `train`)."""
        return self.train or self.control.plan_mode

    def _forced(self) -> bool:
        """`repro run --force`: every unit retrains (never while the study only reads)."""
        return self.control.force and self._trains()

    @contextlib.contextmanager
    def reading(self):
        """Inside the block, units are only read: a recorded one is returned (and counted), a
        missing one is neither run nor planned (e.g. the runs of an earlier recipe, kept as a
        sensitivity row where they exist)."""
        before, self.recorded_only = self.recorded_only, True
        try:
            yield self
        finally:
            self.recorded_only = before

    def gone(self, rec: dict) -> bool:
        """Whether a record this study reused has lost its artifact (a new machine)."""
        return rec["unit"] in self._gone and rec["unit"] not in self._redone

    def need(self, rec: dict | None) -> dict | None:
        """`rec`, a record whose artifact is about to be read: by a unit that has to run (its
        `needs`), or by a notebook (ticket_mask_distance's figure reads a search's trajectory).
        A record whose artifact is gone is re-run first, once per study. Its new record replaces
        the old one in place, so that the code holding the old one (the unit's `run`) sees what
        the artifact comes from; None while the re-run could not run (deadline, plan mode) or may not
        (a study that only reads: train=False)."""
        key = rec.get("unit") if rec else None
        if key not in self._gone:
            return rec
        if not self._trains():  # only reading: the record stands, its artifact is not remade
            return None
        if key not in self._redone:
            kw, entry = self._gone[key]
            at = self.units.index(entry)
            self.units.remove(entry)  # the re-run appends its own entry
            self._redone[key] = self._unit(kw, **kw, again=True)
            if self.control.plan_mode:  # a notebook may call this itself, outside unit()
                self._save_plan()
            elif self._redone[key] is None:  # not re-run (deadline): the record the notebook read stands
                self.units[:] = [u for u in self.units if u["key"] != key]
                self.units.insert(at, entry)
            if self._redone[key] is not None:
                rec.clear()
                rec.update(self._redone[key])
        return rec if self._redone[key] is not None else None

    # -- estimates ---------------------------------------------------------------------------
    def _still_to_run(self, entry: dict, run, ctx: UnitContext, like=None) -> float | None:
        """The unit's estimate less what its checkpoints already trained (never quite nothing:
        evaluation, recording); None when there is no estimate."""
        estimate = self._estimate(entry, lambda: self._probe(run, ctx), like)
        if estimate and (spent := trained_seconds(ctx)):
            entry["resumed_seconds"] = spent
            estimate = max(estimate - spent, 0.05 * estimate)
        return estimate

    def _fits(self, entry: dict, run, ctx: UnitContext, like) -> bool:
        """`repro run --hours H --fit`: is the unit expected to finish (less what its checkpoints
        hold) before the deadline? One that is not would stop at the deadline and leave its
        checkpoint in a cache the next session's machine may lack, so it is not started and
        the notebook asks for its next unit. No estimate: it starts (and checkpoints)."""
        left = self._still_to_run(entry, run, ctx, like)
        if left is None or left <= self.control.time_left():
            return True
        entry["estimate"] = left
        print(f"{entry['key']}: not started: it needs ~{left / 60:.0f} min, {self.control.time_left() / 60:.0f} min are left (--fit)",
              flush=True)
        return False

    def _probe(self, run, ctx: UnitContext) -> float | None:
        """Time a few steps of the unit's first training loop (plan mode, and --fit)."""
        import tempfile

        try:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="repro-probe-") as tmp:
                out = run(UnitContext(ctx.key, Path(tmp), control=self.control.probing()))  # no checkpoint of it survives
            # a unit with no training loop ran whole: the time it reports, else the time it took
            return ((out or {}).get("times") or {}).get("total") or time.perf_counter() - t0
        except Probe as p:
            return p.seconds_per_step * p.steps
        except Exception as e:  # noqa: BLE001 - an estimate must never break the plan
            print(f"{ctx.key}: no estimate ({type(e).__name__}: {e})", flush=True)
        return None

    def _estimate(self, entry: dict, probe, like: tuple | None = None) -> float | None:
        """Median recorded seconds of the most similar finished units; else a probe; else, for a
        unit waiting for another's output, `like`'s unit scaled (see unit)."""
        own = self._recorded_seconds(entry["notebook"], entry["method"], entry["task"], entry["length"])
        if own is not None:
            return own
        group = (entry["notebook"], entry["method"], entry["task"])
        if group not in self._estimates and probe is not None:
            self._estimates[group] = probe()
        if self._estimates.get(group) is not None or like is None:
            return self._estimates.get(group)
        notebook, method, task, factor = like
        base = self._recorded_seconds(notebook, method, task)
        base = base if base is not None else self._estimates.get((notebook, method, task))
        if base is None:
            return None
        entry["scaled_from"] = f"{notebook}/{task}/{method} x {factor:.2f}"
        return base * factor

    def _recorded_seconds(self, notebook: str, method: str, task, length: list | None = None) -> float | None:
        """Median seconds of the notebook's finished units of this method, task and (given `length`)
        length keys; else of this method and task; else of this task and length keys. Length first:
        a pilot at 24 x 256 takes four times one at 12 x 128, and a pilot's time is no full run's."""
        rows = [(r, (r.get("times") or {}).get("total")) for r in self.records().values() if r.get("notebook") == notebook]
        rows = [(r, t) for r, t in rows if t]
        def same_length(r):
            return length is not None and _length(r.get("config") or {}) == length
        for same in (lambda r: (r.get("method"), r.get("task")) == (method, task) and same_length(r),
                     lambda r: (r.get("method"), r.get("task")) == (method, task),
                     lambda r: r.get("task") == task and same_length(r)):
            found = sorted(t for r, t in rows if same(r))
            if found:
                return found[len(found) // 2]
        return None

    # -- what the notebook writes ------------------------------------------------------------
    def status(self) -> dict:
        """For summary.json: complete, done/planned counts, stale units, the run ids used."""
        # units only read (reading(): an earlier recipe's sensitivity row) are shown, never judged
        units = [u for u in self.units if not u.get("read_only")]
        done = [u for u in units if u["state"] in ("done", "stale")]
        stale = [u for u in units if u["state"] == "stale"]
        read = [u["run_id"] for u in self.units if u.get("read_only") and u["run_id"]]
        return {"complete": len(done) == len(units), "done": len(done), "planned": len(units),
                "stale": len(stale), "run_ids": [u["run_id"] for u in done],
                "stale_modules": sorted({m for u in stale for m in u["changed"] or []}),  # what changed
                # the cache paths of the artifacts its units left (`repro plan` checks this machine has them)
                "artifacts": {u["run_id"]: u["artifact"] for u in self.units if u.get("artifact") and u["run_id"]},
                **({"read_only_run_ids": read} if read else {})}

    def write_summary(self, out, data: dict) -> Path:
        """summary.json with the notebook's numbers and the study's state (complete or partial)."""
        from .results import write_summary
        return write_summary(out, {**data, **self.status()}, execution=self.control.execution)

    def _save_plan(self) -> None:
        """Plan mode: the unit list so far (with estimates), as JSON in the file the runner named."""
        path = self.control.plan
        if path and path not in ("1", "0"):
            Path(path).write_text(json.dumps(to_jsonable(self.units)))


def unit_rows(study: Study) -> list[dict]:
    """The stored records of the units a study has (skipping missing ones), in order."""
    recs = study.records()
    return [recs[u["key"]] for u in study.units if u["state"] in ("done", "stale")]
