"""Command line: python -m repro {list,plan,run,clean,bench} ...

Adding a subcommand: write `add_<name>(sub)` that builds its parser and sets `func` (a function
of the parsed args returning an exit code), and append it to SUBCOMMANDS.
Exit codes: 0 done, 1 some notebook failed, 2 a bad request (nothing was run).

The top of the package: it reads the environment here (`control()`: Control.from_environ, and its
own --allow-cpu flag) and passes the values down; it sets the variables the notebook kernels it
starts inherit (--hours, --fit, --rerun-stale, --clip), which their Study reads.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from . import runner
from .control import Control
from .profiles import PROFILES
from .results import results_root


def control() -> Control:
    """The settings in the environment (Control.from_environ): a bad value is a bad request."""
    try:
        return Control.from_environ()
    except ValueError as e:
        raise runner.UsageError(str(e)) from None


def add_list(sub):
    p = sub.add_parser("list", help="the notebooks, their parameters, and the profiles")
    p.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_list)


def cmd_list(args) -> int:
    notebooks = runner.list_notebooks(args.notebooks_dir)
    print("Notebooks (run order of `run all`):")
    for name in runner.ordered(notebooks):
        nb = runner.read_notebook(notebooks[name])
        print(f"  {name:<24} {runner.description(nb)}")
        try:
            params = runner.notebook_parameters(notebooks[name], nb)
            shown = ", ".join(f"{k}=True (the runner's; {v!r} in Jupyter)" if k == runner.TRAIN else f"{k}={v!r}"
                              for k, v in params.items() if k not in runner.INJECTED)
        except runner.UsageError as e:
            shown = f"INVALID: {e}"
        print(f"  {'':<24} parameters: {shown or '(none)'}")
    print("\nProfiles (--profile):")
    for p in PROFILES.values():
        print(f"  {p.name:<8} device={p.device} model={p.layers}x{p.hidden} "
              f"pretrain_steps={p.pretrain_steps} checkpoint={p.checkpoint} "
              f"seeds={len(p.seeds)} tasks={','.join(p.glue_tasks)}")
    return 0


def _add_selection(p):
    p.add_argument("names", nargs="+", metavar="NAME", help="notebook names, or 'all'")
    p.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} (default smoke)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="set a parameter of the notebooks that declare it; VALUE is a Python "
                        "literal (0.1, None, (0, 1)) or else taken as text; repeatable")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="notebooks run side by side, each with its share of the cores (default 1)")
    p.add_argument("--results-dir", default=None,
                   help="results root (default: $REPRO_RESULTS_DIR or <repo>/results)")
    p.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)  # for tests


def add_run(sub):
    p = sub.add_parser(
        "run", help="execute notebooks with papermill",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute notebooks into <results>/<profile>/<name>/ (executed .ipynb, "
                    "figures, tables, summary.json, run.json).",
        epilog="Resuming: every training run a notebook makes is a unit, recorded in\n"
               "<results>/<profile>/runs/; a re-run reuses recorded units and trains only the\n"
               "missing ones, so a stopped study continues where it stopped. With --hours, units\n"
               "not started in time are left for the next run and the notebook is written as\n"
               "partial. A notebook whose outputs are complete and come from the same profile,\n"
               "parameters and source is skipped as up to date; --force retrains every unit.\n"
               "Before any run into a folder that holds outputs, that folder is moved aside to\n"
               "<name>.<UTC timestamp> (<name>.partial.<stamp> if unfinished); `repro clean`\n"
               "lists and removes those. Everything is validated first: a bad name, profile or\n"
               "-p exits 2, running nothing.")
    _add_selection(p)
    p.add_argument("--force", action="store_true", help="run even when up to date, retraining every unit")
    p.add_argument("--rerun-stale", action="store_true",
                   help="retrain units whose code changed since they were recorded (default: reuse, marked stale)")
    p.add_argument("--hours", type=float, default=None,
                   help="start no unit after this many hours (long units checkpoint and stop); "
                        "the notebooks are written from the units they have, marked partial")
    p.add_argument("--fit", action="store_true",
                   help="with --hours: start a unit only when its estimate (as `plan` makes it) fits in the "
                        "time left, so that none stops at the deadline with a checkpoint a new machine lacks; "
                        "the notebooks go on to their units that fit")
    p.add_argument("--clip", action="store_true",
                   help="a smoke test of the profile's code path on any machine: its model sizes and "
                        "data, but one seed and one task per notebook, at most 2 optimizer steps per "
                        "training run and a few dozen evaluation examples (sets REPRO_CLIP=1; see "
                        "repro/profiles.py); results go to <results>/_scratch/<profile>-clip/")
    p.add_argument("--allow-cpu", action="store_true",
                   help="run a GPU profile (gpu, paper) at full size although this machine has no CUDA "
                        "device: without it such a run is refused (sets REPRO_ALLOW_CPU=1)")
    p.set_defaults(func=cmd_run)


def _clip(args, results_dir: str | None) -> None:
    """--clip: every kernel inherits REPRO_CLIP=1; outputs go to a scratch root (git-ignored), so
    that clipped numbers can never be mistaken for the profile's results. `results_dir`: the
    environment's ($REPRO_RESULTS_DIR), where --results-dir is not given."""
    os.environ["REPRO_CLIP"] = "1"
    base = Path(args.results_dir) if args.results_dir else results_root(results_dir)
    scratch = Path("_scratch") / f"{args.profile}-clip"
    if base.parts[-2:] != scratch.parts:  # --jobs children get the scratch root already
        args.results_dir = str(base / scratch)


ALLOW_CPU_ENV = "REPRO_ALLOW_CPU"  # --allow-cpu, inherited by the processes of --jobs N


def _check_device(args, clip: bool) -> None:
    """A profile that wants a GPU (device "auto": gpu, paper), at full size, on a machine where
    CUDA is not available would run for days on the CPU: refuse it, in one line, before anything
    is written, naming the two ways on (--clip, --allow-cpu)."""
    P = PROFILES[args.profile]
    if clip or P.device == "cpu":
        return
    if args.allow_cpu or os.environ.get(ALLOW_CPU_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        os.environ[ALLOW_CPU_ENV] = "1"
        return
    import torch
    if torch.cuda.is_available():
        return
    raise runner.UsageError(
        f"--profile {args.profile} is sized for a GPU and this machine has none (torch.cuda.is_available() "
        f"is False): add --clip for the clipped CPU check of its code path (results/_scratch/), or "
        f"--allow-cpu to run it at full size on the CPU anyway")


def cmd_run(args) -> int:
    settings = control()
    clip = args.clip or settings.clip  # REPRO_CLIP=1 in the environment means --clip too
    if clip:
        _clip(args, settings.results_dir)
    jobs = runner.jobs_for(args.names, args.profile, args.param, args.notebooks_dir)
    if args.jobs < 1:
        raise runner.UsageError(f"--jobs must be at least 1, got {args.jobs}")
    _check_device(args, clip)
    if args.hours is not None:
        if args.hours <= 0:
            raise runner.UsageError(f"--hours must be positive, got {args.hours}")
        os.environ["REPRO_DEADLINE"] = str(time.time() + 3600 * args.hours)
    if args.fit:
        if args.hours is None:
            raise runner.UsageError("--fit needs --hours: it starts the units that fit in them")
        os.environ["REPRO_FIT"] = "1"
    if args.rerun_stale:
        os.environ["REPRO_RERUN_STALE"] = "1"
    from .study import cache_root, check_cache_writable
    settings = control()  # with what the flags above set, as the kernels will read it
    try:
        check_cache_writable(cache_root(settings.cache_dir))
    except PermissionError as e:
        raise runner.UsageError(str(e)) from None
    try:
        outcomes = runner.run(jobs, args.profile, args.results_dir, args.force, args.jobs, control=settings)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {', '.join(j.name for j in jobs)} ({args.profile}). Every finished run is "
              f"recorded; the same command continues where this one stopped.", file=sys.stderr)
        return 130
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        print(f"FAILED {o.message}", file=sys.stderr)
    if any(o.name == "report" and o.status != "failed" for o in outcomes):
        root = Path(args.results_dir or results_root(settings.results_dir))
        print(f"report: {root / args.profile / 'REPORT.md'}")
    return 1 if failed else 0


def add_plan(sub):
    p = sub.add_parser("plan", help="what a run would do: units done, stale and to run, estimated time; "
                                    "exits 1 when a notebook raises (a run would fail the same way)")
    _add_selection(p)
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    jobs = runner.jobs_for(args.names, args.profile, args.param, args.notebooks_dir)
    if args.jobs < 1:
        raise runner.UsageError(f"--jobs must be at least 1, got {args.jobs}")
    errors = runner.print_plan(jobs, args.profile, args.results_dir, args.jobs, control=control())["errors"]
    for message in errors:  # a notebook that raises in plan mode would fail a run the same way
        print(f"ERROR {message}", file=sys.stderr)
    return 1 if errors else 0


def add_clean(sub):
    p = sub.add_parser("clean", help="list (and with --remove delete) output folders earlier runs moved aside")
    p.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} (default smoke)")
    p.add_argument("--remove", action="store_true", help="delete them (default: only list)")
    p.add_argument("--results-dir", default=None, help="results root")
    p.set_defaults(func=cmd_clean)


def cmd_clean(args) -> int:
    if args.profile not in PROFILES:
        raise runner.UsageError(f"unknown profile {args.profile!r}; profiles: {', '.join(PROFILES)}")
    found = runner.moved_aside(Path(args.results_dir or results_root(control().results_dir)) / args.profile)
    for path in found:
        print(f"{'removed' if args.remove else 'moved aside'}: {path}")
        if args.remove:
            shutil.rmtree(path)
    print(f"{len(found)} folder(s)" + ("" if args.remove or not found else "; --remove deletes them"))
    return 0


def add_bench(sub):
    from .bench import add_bench as add  # imports torch: only when the CLI is built
    add(sub)


def add_fingerprints(sub):
    p = sub.add_parser("fingerprints", help="code fingerprints: which records the code now leaves current")
    p.add_argument("action", choices=["check", "freeze", "restamp"],
                   help="check: count current and stale records per notebook; freeze: map every module's "
                        "scheme-1 digests to scheme-2 keys (repro/fingerprints.json) before moving code; "
                        "restamp: after a change that moves no number (committed), run the notebooks whose "
                        "records it staled at --old and at HEAD, and alias the changed code only if every "
                        "unit's metrics are bit-identical (repro/restamp.py)")
    p.add_argument("--profile", default="cpu", help="the records to check or re-stamp")
    p.add_argument("--old", help="restamp: the revision the records' code was committed at")
    p.add_argument("--why", help="restamp: why the change computes the same numbers (kept with each alias)")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="restamp: a function renamed by the change (qualified names)")
    p.add_argument("--smoke-only", action="store_true",
                   help="restamp: verify at smoke only (default: smoke, then cpu clipped to 2 steps per run)")
    p.set_defaults(func=cmd_fingerprints)


def cmd_fingerprints(args) -> int:
    from collections import Counter

    from . import fingerprint
    from .results import load_runs_raw
    root = results_root(control().results_dir)
    if args.action == "freeze":
        print(f"{fingerprint.freeze()} entries added to {fingerprint.TABLE}")
        return 0
    if args.action == "restamp":
        from . import restamp
        if not args.old or not args.why:
            raise runner.UsageError("restamp needs --old REV (the records' code) and --why \"...\" (why no number moves)")
        renames = dict(r.split("=", 1) for r in args.rename)
        profiles = restamp.PROFILES[:1] if args.smoke_only else restamp.PROFILES
        print(restamp.restamp(args.old, args.why, load_runs_raw(args.profile, root), renames=renames, profiles=profiles))
        return 0
    counts, what = Counter(), Counter()
    for row in load_runs_raw(args.profile, root):
        changed = fingerprint.changed(row.get("code"))
        counts[row.get("notebook"), "no fingerprint" if changed is None else "stale" if changed else "current"] += 1
        what.update(changed or [])
    for (notebook, state), n in sorted(counts.items()):
        print(f"{notebook:<24} {state:<15} {n}")
    print("changed: " + (", ".join(f"{k} ({n})" for k, n in what.most_common()) or "nothing"))
    return 0


SUBCOMMANDS = [add_list, add_plan, add_run, add_clean, add_bench, add_fingerprints]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits on --help and on bad syntax; return its code
        return int(e.code or 0)
    try:
        return args.func(args)
    except runner.UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
