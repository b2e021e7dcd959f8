"""`make nbval`: re-execute every executed notebook of a profile (results/<profile>/<name>/<name>.ipynb)
from the records it was made from, and check with nbval that its tables and its computed
conclusion come out exactly as they stand.

    python scripts/nbval.py                          every notebook of results/cpu/
    python scripts/nbval.py pld_schedule report      some of them
    python scripts/nbval.py --profile smoke --results-dir /tmp/r   another results folder

What "the same records" means: the runner wrote each notebook's summary.json in the same execution
as the notebook (run.json says which); its run_ids (and read_only_run_ids) name every record the
notebook read. Each notebook is re-executed in a folder of its own under a temporary directory,
against a results store holding those records and no other (a unit recorded since, or recorded
again, would change the tables without anything being wrong) and a copy of the other notebooks'
output folders (the report reads them; earlybert_glue orders its tasks by glue_finetune's
summary). The report reads the records all the others name. Nothing is written under results/.

Nothing trains: the injected-parameters cell is re-written with `train = False` (a notebook that
declares `train`) and `output_dir` in the temporary folder, and the deadline is set in the past
(REPRO_DEADLINE), so a notebook executed before `train` existed does not train either.

What is compared (nbval --nbval-lax): only the cells tagged `nbval-check-output`, the ones that
show a table or the computed conclusion; every other cell (figures, logs, timings measured now)
must merely run without an error. Paths are compared relative to the repository and the home
folder as ~ (the runner's _portable). Besides, a committed notebook may hold no stderr output and
no absolute path of the machine that made it.

Exit status: 0 when every notebook checked reproduces, 1 otherwise (each failure is named).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

UNSET = ("REPRO_PLAN", "REPRO_FORCE", "REPRO_RERUN_STALE", "REPRO_FIT", "REPRO_EXECUTION_ID", "REPRO_CLIP",
         "REPRO_PROBE_STEPS")


def executed_notebooks(profile_dir: Path, names=()) -> dict[str, Path]:
    """{name: executed notebook} of the runner's output folders (not the folders moved aside)."""
    found = {p.stem: p for p in sorted(profile_dir.glob("*/*.ipynb")) if p.parent.name == p.stem}
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"no executed notebook {', '.join(missing)} under {profile_dir}")
    return {n: p for n, p in found.items() if not names or n in names}


def run_ids(folder: Path) -> list[str]:
    """The records a notebook's execution read: its summary's run_ids and read_only_run_ids, when the
    summary is of the same execution as the notebook (run.json)."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        raise ValueError("no summary.json beside it") from None
    try:
        run = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        raise ValueError("no run.json beside it: not the runner's output") from None
    if summary.get("execution") != run.get("execution"):
        raise ValueError("its summary.json is of another execution than the notebook (run.json)")
    return list(summary.get("run_ids") or []) + list(summary.get("read_only_run_ids") or [])


def record_files(runs_dir: Path) -> dict[str, Path]:
    """run_id -> the record's file."""
    files = {}
    for path in sorted(runs_dir.glob("*.json")):
        try:
            files[json.loads(path.read_text())["run_id"]] = path
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return files


def leaks(nb: dict) -> list[str]:
    """What a kept notebook must not hold: stderr output, absolute paths of this machine."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            text = json.dumps(out)
            if out.get("name") == "stderr":
                first = "".join(out.get("text", "")).strip().splitlines()[:1]
                found.append(f"cell {i} writes to stderr: {first[0][:160] if first else ''!r}")
            for path in {str(REPO_ROOT), str(Path.home())}:
                if path + "/" in text or f'"{path}"' in text:
                    found.append(f"cell {i} names the local path {path}")
    return found


def prepare(name: str, ipynb: Path, profile: str, dest: Path, records: dict[str, Path], ids: list[str]) -> Path:
    """dest/: the notebook (injected cell re-written), its results store and output folder."""
    profile_dir = ipynb.parent.parent
    store = dest / "results" / profile
    (store / "runs").mkdir(parents=True)
    absent = [i for i in ids if i not in records]
    if absent:
        raise ValueError(f"{len(absent)} of the {len(ids)} records it read are not in {profile_dir / 'runs'} "
                         f"(e.g. {absent[0]})")
    for i in ids:
        shutil.copy2(records[i], store / "runs" / records[i].name)
    for other in executed_notebooks(profile_dir).values():  # the other notebooks' outputs, as they stand
        if other.parent.name != name:
            shutil.copytree(other.parent, store / other.parent.name, ignore=shutil.ignore_patterns("*.ipynb"))
    nb = json.loads(ipynb.read_text())
    declares_train = any("parameters" in c["metadata"].get("tags", []) and
                         re.search(r"^train\b", "".join(c["source"]), re.M) for c in nb["cells"])
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    if len(injected) != 1:
        raise ValueError("it has no injected-parameters cell: not executed by the runner")
    lines = [line for line in "".join(injected[0]["source"]).splitlines()
             if not re.match(r"(output_dir|train)\s*=", line)]
    lines.append(f"output_dir = {str(dest / 'out')!r}")
    if declares_train:
        lines.append("train = False")
    injected[0]["source"] = "\n".join(lines) + "\n"
    path = dest / ipynb.name
    path.write_text(json.dumps(nb))
    (dest / "sanitize.cfg").write_text(sanitize_patterns(dest))
    (dest / "pytest.ini").write_text("[pytest]\n")
    return path


def sanitize_patterns(dest: Path) -> str:
    """nbval's sanitize file: both sides' paths as the runner keeps them (runner._portable)."""
    rules = [(str(dest / "results") + "/", "results/"), (str(REPO_ROOT) + "/", ""), (str(REPO_ROOT), "."),
             (str(Path.home()) + "/", "~/")]
    return "".join(f"[path{i}]\nregex: {re.escape(a)}\nreplace: {b}\n\n" for i, (a, b) in enumerate(rules))


def check(path: Path, timeout: int) -> tuple[bool, str]:
    """nbval on the prepared copy, in a process whose environment points the study at its store."""
    dest = path.parent
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env |= {"REPRO_RESULTS_DIR": str(dest / "results"), "REPRO_DEADLINE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(dest / "pytest.ini"),
           "--rootdir", str(dest), "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout", str(timeout),
           "--nbval-sanitize-with", str(dest / "sanitize.cfg"), str(path)]
    proc = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks (default: every executed one of the profile)")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--results-dir", default=None, help="default: $REPRO_RESULTS_DIR, else results/")
    ap.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (their paths are printed)")
    args = ap.parse_args(argv)
    from repro.control import Control

    root = Path(args.results_dir or Control.from_environ().results_dir or REPO_ROOT / "results").resolve()
    profile_dir = root / args.profile
    notebooks = executed_notebooks(profile_dir, args.names)
    if not notebooks:
        print(f"no executed notebooks under {profile_dir}")
        return 1
    records = record_files(profile_dir / "runs")
    ids_of = {}
    for name, ipynb in executed_notebooks(profile_dir).items():
        try:
            ids_of[name] = run_ids(ipynb.parent)
        except ValueError as e:
            ids_of[name] = e
    # the report reads the records every other notebook names
    everyone = sorted({i for n, ids in ids_of.items() if n != "report" and isinstance(ids, list) for i in ids})
    tmp = Path(tempfile.mkdtemp(prefix="repro-nbval-"))
    failed = []
    try:
        for name, ipynb in notebooks.items():
            t0 = time.perf_counter()
            kept = json.loads(ipynb.read_text())
            problems = leaks(kept)
            checked = sum("nbval-check-output" in c["metadata"].get("tags", []) for c in kept["cells"])
            ids = everyone if name == "report" else ids_of[name]
            try:
                if isinstance(ids, ValueError):
                    raise ids
                path = prepare(name, ipynb, args.profile, tmp / name, records, ids)
            except ValueError as e:
                failed.append(name)
                print(f"{name}: not checked: {e}" + "".join(f"\n  {p}" for p in problems), flush=True)
                continue
            ok, log = check(path, args.cell_timeout)
            ok = ok and not problems
            failed += [] if ok else [name]
            print(f"{name}: {'reproduces' if ok else 'FAILED'} ({len(ids)} records, {checked} cells compared"
                  + ("" if checked else ": none is tagged nbval-check-output, it was only run")
                  + f", {time.perf_counter() - t0:.0f}s)" + "".join(f"\n  {p}" for p in problems), flush=True)
            if not ok and log.strip():
                print("\n".join("  | " + line for line in log.strip().splitlines()[-60:]), flush=True)
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(notebooks) - len(failed)} of {len(notebooks)} notebooks reproduce"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
