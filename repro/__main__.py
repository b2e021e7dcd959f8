"""Command line: python -m repro {list,run,bench} ...

Adding a subcommand: write `add_<name>(sub)` that builds its parser and sets `func` (a function
of the parsed args returning an exit code), and append it to SUBCOMMANDS.
Exit codes: 0 done, 1 some notebook failed, 2 a bad request (nothing was run).
"""
from __future__ import annotations

import argparse
import sys

from . import runner
from .profiles import PROFILES


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
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in runner.INJECTED)
        except runner.UsageError as e:
            shown = f"INVALID: {e}"
        print(f"  {'':<24} parameters: {shown or '(none)'}")
    print("\nProfiles (--profile):")
    for p in PROFILES.values():
        print(f"  {p.name:<8} device={p.device} model={p.layers}x{p.hidden} "
              f"pretrain_steps={p.pretrain_steps} checkpoint={p.checkpoint} "
              f"seeds={len(p.seeds)} tasks={','.join(p.glue_tasks)}")
    return 0


def add_run(sub):
    p = sub.add_parser(
        "run", help="execute notebooks with papermill",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute notebooks into <results>/<profile>/<name>/ (executed .ipynb, "
                    "figures, tables, summary.json, run.json).",
        epilog="Re-running: a notebook whose outputs come from the same profile, parameters and\n"
               "notebook source is skipped as up to date; --force runs it again. Before any run\n"
               "into a folder that already holds outputs, that folder is moved aside to\n"
               "<name>.<UTC timestamp> beside it and kept; nothing is overwritten or deleted.\n"
               "Everything is validated first: a bad name, profile or -p exits 2, running nothing.")
    p.add_argument("names", nargs="+", metavar="NAME", help="notebook names, or 'all'")
    p.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} (default smoke)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="set a parameter of the notebooks that declare it; VALUE is a Python "
                        "literal (0.1, None, (0, 1)) or else taken as text; repeatable")
    p.add_argument("--force", action="store_true", help="run even when up to date")
    p.add_argument("--results-dir", default=None,
                   help="results root (default: $REPRO_RESULTS_DIR or <repo>/results)")
    p.add_argument("--clip", action="store_true",
                   help="a smoke test of the profile's code path on any machine: its model sizes and "
                        "data, but one seed and one task per notebook, at most 2 optimizer steps per "
                        "training run and a few dozen evaluation examples (sets REPRO_CLIP=1; see "
                        "repro/profiles.py); results go to <results>/_scratch/<profile>-clip/")
    p.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)  # for tests
    p.set_defaults(func=cmd_run)


def _clip(args) -> None:
    """--clip: every kernel inherits REPRO_CLIP=1; outputs go to a scratch root (git-ignored), so
    that clipped numbers can never be mistaken for the profile's results."""
    import os
    from pathlib import Path

    from .results import results_root

    os.environ["REPRO_CLIP"] = "1"
    base = Path(args.results_dir) if args.results_dir else results_root()
    args.results_dir = str(base / "_scratch" / f"{args.profile}-clip")


def cmd_run(args) -> int:
    from .profiles import clip_enabled

    try:
        clip = args.clip or clip_enabled()  # REPRO_CLIP=1 in the environment means --clip too
    except ValueError as e:
        raise runner.UsageError(str(e)) from None
    if clip:
        _clip(args)
    jobs = runner.plan(args.names, args.profile, args.param, args.notebooks_dir)
    outcomes = runner.run(jobs, args.profile, args.results_dir, args.force)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        print(f"FAILED {o.message}", file=sys.stderr)
    return 1 if failed else 0


def add_bench(sub):
    from .bench import add_bench as add  # imports torch: only when the CLI is built
    add(sub)


SUBCOMMANDS = [add_list, add_run, add_bench]


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
