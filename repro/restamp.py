"""Re-stamping: carry the study's records across a code change that moves no number.

Some changes edit a function's body without changing what it computes (the loop taking its
deadline as an argument instead of reading the environment). Fingerprints (repro/fingerprint.py)
cannot know that, so every record that ran the function turns stale. A re-stamp proves it instead:

1. `changes(old, new)`: the (key, digest) pairs of the old revision's numeric code whose digest
   the new revision changed (a function keeps its qualified name; `renames` maps the others);
2. `affected(rows, changes)`: the notebooks whose records carry one of them;
3. each affected notebook is run with `--force` at the old and at the new revision, in two
   separate git worktrees and results folders, at the verification profiles (`smoke`, and `cpu`
   clipped to 2 steps per run: the study's shapes and code path in minutes), and every unit's
   metrics are compared: they must be bit-identical, timings aside (`study.differs`);
4. only then `write_aliases` adds an alias per change to fingerprints.json, each naming the
   re-stamp (revisions, profiles, units compared) that justified it. No record is edited.

`python -m repro fingerprints restamp --old REV --why "..."` runs it (the new revision is HEAD,
committed: a re-stamp cites two revisions a reader can check out).
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import fingerprint as fp
from .study import differs

PROFILES = (("smoke", False), ("cpu", True))  # (profile, clipped)


@dataclass(frozen=True)
class Change:
    old: str  # "train.py::Loop.run@<digest>"
    new: str


# ----------------------------------------------------------------------------- what changed

def sources_at(rev: str, repo: Path) -> dict[str, fp.Source]:
    """The numeric modules of `repro/` at a git revision, by path relative to the package."""
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "repro/"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout.split()
    out = {}
    for name in names:
        rel = name.removeprefix("repro/")
        if name.endswith(".py") and Path(name).name not in fp.NOT_NUMERIC_FILES:
            text = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=repo, capture_output=True,
                                  text=True, check=True).stdout
            out[rel] = fp._parse(text)
    return out


def _entries(src: fp.Source) -> dict[str, str]:
    return {**src.functions, **{f"={d}": v for d, v in src.declarations.items()}}


def changes(old: dict[str, fp.Source], new: dict[str, fp.Source], renames: dict | None = None) -> tuple[list[Change], list[str]]:
    """(changed pairs, old keys the new code no longer defines under any name given). A name is
    found in its old module first, else in any module (code moves); `renames` maps old qualified
    names to new ones."""
    renames = renames or {}
    new_entries = {rel: _entries(src) for rel, src in new.items()}
    out, gone = [], []
    for rel, src in sorted(old.items()):
        for name, digest in sorted(_entries(src).items()):
            target = renames.get(name, name)
            where = [rel] if target in new_entries.get(rel, {}) else \
                sorted(r for r, e in new_entries.items() if target in e)
            if not where:
                gone.append(f"{rel}::{name}")
                continue
            now = new_entries[where[0]][target]
            if now != digest or target != name:
                out.append(Change(f"{rel}::{name}@{digest}", f"{where[0]}::{target}@{now}"))
    return out, gone


def _record_keys(code: dict, frozen: dict) -> set[str]:
    """"key@digest" of a record's fingerprint, scheme-1 keys through the frozen table."""
    keys = set()
    for key, digest in (code or {}).items():
        if key == "scheme" or "::" not in key:
            continue
        keys.add(f"{key}@{digest}")
        keys |= {f"{k}@{d}" for k, d in frozen.get(f"{key}@{digest}", {}).items()}
    return keys


def affected(rows, found: list[Change], table: dict | None = None) -> dict[str, int]:
    """notebook -> how many of its records carry one of the changed pairs."""
    frozen = (fp.read_table() if table is None else table).get("frozen", {})
    olds, counts = {c.old for c in found}, {}
    for row in rows:
        if _record_keys(row.get("code"), frozen) & olds:
            counts[row["notebook"]] = counts.get(row["notebook"], 0) + 1
    return counts


# ----------------------------------------------------------------------------- verifying

def unit_metrics(results: Path) -> dict[tuple, dict]:
    """(profile, notebook, task, method, seed, config hash) -> metrics, from every record under `results`."""
    out = {}
    for path in sorted(Path(results).rglob("runs/*.json")):
        row = json.loads(path.read_text())
        if row.get("status") in ("ok", "diverged"):
            out[row["profile"], row["notebook"], row.get("task"), row["method"], row.get("seed"),
                row.get("config_hash")] = row.get("metrics") or {}
    return out


def step_time_ratio(metric: str) -> bool:
    """A ratio of two measured step times (a timing unit's `ratio`, `dense_ratio`, ..., pld_schedule's
    `median_pair_ratio`): free to differ between runs like any timing. Gradient ratios
    (`param_ratio_init`, `input_ratio_trained`) are numbers the code computes and must agree."""
    return metric.endswith("ratio") and not metric.startswith(("param_", "input_"))


def compare(old: dict, new: dict) -> tuple[int, list[str]]:
    """(units compared, what disagrees), timings and step-time ratios aside. A unit only one side
    has is a disagreement too."""
    problems = [f"{'/'.join(map(str, k[1:]))}: only at the {'old' if k in old else 'new'} revision"
                for k in sorted(set(old) ^ set(new), key=str)]
    drop = lambda m: {k: v for k, v in m.items() if not step_time_ratio(k)}  # noqa: E731
    for k in sorted(set(old) & set(new), key=str):
        if d := differs(drop(old[k]), drop(new[k])):
            problems.append(f"{'/'.join(map(str, k[1:]))}: {d}")
    return len(set(old) & set(new)), problems


def run_notebook(tree: Path, notebook: str, profile: str, clip: bool, results: Path, cache: Path) -> None:
    """The runner of the revision checked out in `tree`, forced, into scratch results and cache,
    on this checkout's data (a worktree has none beside it)."""
    from .control import Control
    from .sources import find_data_dir

    data = find_data_dir(env_dir=Control.from_environ().data_dir)
    env = {**os.environ, "PYTHONPATH": str(tree), "REPRO_RESULTS_DIR": str(results), "REPRO_CACHE_DIR": str(cache),
           "REPRO_DATA_DIR": str(data), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in ("REPRO_DEADLINE", "REPRO_FIT", "REPRO_PLAN", "REPRO_CLIP"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "repro", "run", notebook, "--profile", profile, "--force", "--jobs", "1"]
    subprocess.run(cmd + (["--clip"] if clip else []), cwd=tree, env=env, check=True)


def verify(repo: Path, old_rev: str, new_rev: str, notebooks, profiles=PROFILES, run=run_notebook) -> dict:
    """Run `notebooks` at both revisions and compare their units; raises with what disagrees."""
    with tempfile.TemporaryDirectory(prefix="restamp-") as tmp:
        tmp, units, problems = Path(tmp), 0, []
        for side, rev in (("old", old_rev), ("new", new_rev)):
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tmp / side), rev], cwd=repo, check=True)
        try:
            for profile, clip in profiles:
                got = {}
                for side in ("old", "new"):
                    results = tmp / f"results-{side}-{profile}"
                    for nb in notebooks:
                        run(tmp / side, nb, profile, clip, results, tmp / f"cache-{side}")
                    got[side] = unit_metrics(results)
                n, bad = compare(got["old"], got["new"])
                units, problems = units + n, problems + [f"{profile}: {p}" for p in bad]
        finally:
            for side in ("old", "new"):
                subprocess.run(["git", "worktree", "remove", "--force", str(tmp / side)], cwd=repo, check=False)
    if problems or not units:
        raise RuntimeError("not re-stamped, the revisions disagree:\n  " + "\n  ".join(problems or ["no unit ran"]))
    return {"old": old_rev, "new": new_rev, "notebooks": sorted(notebooks),
            "profiles": [p + (" clipped" if c else "") for p, c in profiles], "units_identical": units,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")}


def write_aliases(found: list[Change], why: str, evidence: dict, path: Path = fp.TABLE) -> int:
    """One alias per change, naming its re-stamp; existing aliases are kept. Returns how many were added."""
    table = fp.read_table(path)
    restamps = table.setdefault("restamps", [])
    restamps.append({**evidence, "why": why})
    aliases, added = table.setdefault("aliases", {}), 0
    for c in found:
        if c.old not in aliases:
            aliases[c.old] = {"to": c.new, "why": why, "restamp": len(restamps) - 1}
            added += 1
    Path(path).write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return added


def _rev(repo: Path, rev: str) -> str:
    return subprocess.run(["git", "rev-parse", rev], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def restamp(old_rev: str, why: str, rows, repo: Path = fp.PACKAGE.parent, new_rev: str = "HEAD",
            renames: dict | None = None, run=run_notebook, profiles=PROFILES, path: Path = fp.TABLE) -> str:
    """The whole step; returns what it did in words. Refuses while the working tree's numeric code
    differs from `new_rev` (the aliases would vouch for code nobody ran)."""
    old_rev, new_rev = _rev(repo, old_rev), _rev(repo, new_rev)
    new = sources_at(new_rev, repo)
    here = {p.relative_to(repo / "repro").as_posix(): fp.source(p) for p in fp.numeric_files(repo / "repro")}
    if {k: _entries(v) for k, v in here.items()} != {k: _entries(v) for k, v in new.items()}:
        raise RuntimeError(f"the working tree's numeric code differs from {new_rev[:8]}: commit it first")
    found, gone = changes(sources_at(old_rev, repo), new, renames)
    table = fp.read_table(path)
    hit = affected(rows, found, table)
    carried = set().union(*(_record_keys(r.get("code"), table.get("frozen", {})) for r in rows))
    relevant = [c for c in found if c.old in carried]
    if not hit:
        return f"nothing to re-stamp: no record carries code that changed ({len(found)} changes, {len(gone)} gone)"
    evidence = verify(repo, old_rev, new_rev, sorted(hit), profiles, run)
    n = write_aliases(relevant, why, evidence, path)
    return (f"re-stamped {sum(hit.values())} records of {', '.join(sorted(hit))}: {n} aliases, "
            f"{evidence['units_identical']} units bit-identical at {', '.join(evidence['profiles'])}"
            + (f"; no longer defined (stay stale): {', '.join(gone)}" if gone else ""))
