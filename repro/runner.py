"""Run the study's notebooks with papermill: `python -m repro run NAME... --profile P`.

A notebook is a jupytext percent-format file notebooks/<name>.py with one cell tagged
`parameters` that declares at least `profile` and `output_dir`. The runner injects those two
(plus any `-p key=value` the notebook declares), executes it with ipykernel on this very
interpreter, and writes the executed copy to <results>/<profile>/<name>/<name>.ipynb.

Everything the user asked for is validated before anything runs, so a typo costs nothing and
touches nothing under results/ (a UsageError; the CLI exits 2).

Re-running: after a successful run the runner writes run.json beside the notebook's
summary.json (profile, parameters, the notebook source's hash, git revision). A later run with
the same request is skipped ("up to date"); --force runs it again. Whenever a run would write
into an output folder that holds anything else (other parameters, an edited notebook, a failed
or hand-made run, or --force), the old folder is moved aside to <output_dir>.<UTC timestamp>
and kept: outputs are never overwritten silently, and nothing is ever deleted.
"""
from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import REPO_ROOT
from .profiles import PROFILES
from .results import git_revision, output_path, read_json, results_root, to_jsonable, utc_now, write_json

# The study's notebooks in the order `run all` executes them (pld_glue needs pld_pretraining's checkpoints).
# Notebooks not listed here come after, alphabetically; `report` always runs last.
ORDER: list[str] = [
    "glue_finetune",  # the dense baseline and the end-to-end check
    "gradient_norms", "pld_schedule", "pld_pretraining", "pld_glue",  # PLD
    "earlybert_glue", "earlybert_squad", "earlybert_pretraining", "ticket_mask_distance",  # EarlyBERT
    "report",
]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
INJECTED = ("profile", "output_dir")  # set by the runner, never by -p


class UsageError(Exception):
    """Something wrong with the request (or a notebook's parameters cell): nothing was run."""


# ----------------------------------------------------------------------------- notebooks

def list_notebooks(nb_dir: Path | str | None = None) -> dict[str, Path]:
    paths = sorted(Path(nb_dir or NOTEBOOKS_DIR).glob("*.py"))
    return {p.stem: p for p in paths if not p.stem.startswith("_")}


def read_notebook(path: Path):
    import jupytext

    return jupytext.read(path)


def _parameters_index(nb, path) -> int:
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(found) != 1:
        raise UsageError(f"{path}: needs exactly one cell tagged parameters "
                         f"(# %% tags=[\"parameters\"]), found {len(found)}")
    return found[0]


def notebook_parameters(path: Path | str, nb=None) -> dict:
    """The parameters cell's names and default values, in order. Only `name = <literal>` (or
    `name: type = <literal>`) is allowed, because papermill overrides parameters by re-assigning
    them after this cell.

    Why not `papermill.inspect_notebook`: it skips annotated unions (`output_dir: str | None =
    None` is not in its result, and `max_seeds: int | None = None  # ...` logs "Unable to parse
    line"), which is how this study declares every optional parameter
    (tests/test_runner.py::test_papermill_inspect_misses_union_parameters pins it)."""
    return _parse_parameters(path, nb)[0]


def parameter_types(path: Path | str, nb=None) -> dict:
    """name -> annotation text, for parameters declared `name: type = default`. The annotation
    is what -p values are checked against when the default (often None) says nothing."""
    return _parse_parameters(path, nb)[1]


def _parse_parameters(path, nb=None) -> tuple[dict, dict]:
    nb = nb or read_notebook(Path(path))
    source = nb.cells[_parameters_index(nb, path)].source
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise UsageError(f"{path}: the parameters cell is not valid Python: {e}") from None
    params, types = {}, {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring-like note
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
            if isinstance(target, ast.Name):
                types[target.id] = ast.get_source_segment(source, node.annotation)
        try:
            if not isinstance(target, ast.Name):
                raise ValueError
            params[target.id] = ast.literal_eval(node.value)
        except (ValueError, TypeError):
            raise UsageError(f"{path}: the parameters cell may only hold literal assignments "
                             f"(name = 1, 'text', None, (0, 1), ...); line {node.lineno} is "
                             f"`{ast.get_source_segment(source, node)}`") from None
    return params, types


def description(nb) -> str:
    """The first line of the first markdown cell, without the heading's #."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.strip():
                    return line.lstrip("#").strip()
    return ""


def ordered(names) -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(set(names), key=lambda n: (n == "report", rank.get(n, len(ORDER)), n))


# ----------------------------------------------------------------------------- validation

def parse_value(text: str):
    """-p values are Python literals (0.1, None, (0, 1), 'MRPC'); anything else is a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
          "dict": dict, "None": type(None)}


def _annotation_ok(value, annotation: str) -> bool:
    """Does `value` fit an annotation such as `float | None` or `list[str] | None`? Only the
    outer types are checked; an annotation we do not understand checks nothing."""
    def members(node):  # the alternatives of a `A | B | ...` union
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return members(node.left) + members(node.right)
        if isinstance(node, ast.Subscript):  # list[str] -> list
            node = node.value
        if isinstance(node, ast.Constant) and node.value is None:
            return ["None"]
        return [node.id] if isinstance(node, ast.Name) else ["?"]
    try:
        names = members(ast.parse(annotation, mode="eval").body)
    except SyntaxError:
        return True
    if any(n not in _TYPES for n in names):
        return True
    if value is None:
        return "None" in names
    return any(_type_ok(value, _TYPES[n]()) for n in names if n != "None")


def _type_ok(value, default) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):  # True is an int; don't mix them
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


@dataclass
class Job:
    name: str
    path: Path
    params: dict = field(default_factory=dict)  # the -p values this notebook declares
    types: dict = field(default_factory=dict)  # annotations of its parameters


def plan(names, profile: str, assignments=(), nb_dir=None) -> list[Job]:
    """Check the whole request and return what to run, in order; raises UsageError."""
    available = list_notebooks(nb_dir)
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    if not names:
        raise UsageError(f"name a notebook or 'all'; notebooks: {', '.join(ordered(available))}")
    selected = []
    for name in names:
        if name == "all":
            selected += list(available)
        elif name in available:
            selected.append(name)
        else:
            near = difflib.get_close_matches(name, list(available), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise UsageError(f"unknown notebook {name!r}{hint}; notebooks: "
                             f"{', '.join(ordered(available)) or '(none)'}, all")
    jobs = []
    for name in ordered(selected):
        params = notebook_parameters(available[name])
        missing = [k for k in INJECTED if k not in params]
        if missing:
            raise UsageError(f"{available[name]}: the parameters cell must declare "
                             f"{' and '.join(missing)} (the runner sets them)")
        jobs.append(Job(name, available[name], params, parameter_types(available[name])))

    values = {}
    for item in assignments:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"-p expects key=value, got {item!r}")
        if key in INJECTED:
            raise UsageError(f"-p {key}: the runner sets {key} (use "
                             f"{'--profile' if key == 'profile' else '--results-dir'})")
        values[key] = parse_value(text)
    for key, value in values.items():
        declaring = [j for j in jobs if key in j.params]
        if not declaring:
            lists = "; ".join(f"{j.name}: {', '.join(k for k in j.params if k not in INJECTED) or '(none)'}"
                              for j in jobs)
            raise UsageError(f"-p {key}: no selected notebook has a parameter {key!r}. "
                             f"Parameters — {lists}")
        for job in declaring:
            default, annotation = job.params[key], job.types.get(key)
            if annotation and not _annotation_ok(value, annotation):
                raise UsageError(f"-p {key}: {job.name} expects {annotation}, got "
                                 f"{type(value).__name__} {value!r}")
            if not _type_ok(value, default):
                expected = type(default).__name__ + (" (or int)" if isinstance(default, float) else "")
                hint = f"; to pass text, quote it: -p {key}='\"{text}\"'" if isinstance(default, str) else ""
                raise UsageError(f"-p {key}: {job.name} expects {expected} (default {default!r}), "
                                 f"got {type(value).__name__} {value!r}{hint}")
    for key, value in values.items():
        _check_domain(key, value)
    for job in jobs:
        job.params = {k: v for k, v in values.items() if k in job.params}
    return jobs


def _check_domain(key: str, value) -> None:
    """Values whose valid set the package knows (task names, seeds, counts >= 1, learning rates
    and epochs > 0, folders that must exist, ...: the rules of repro.checks, which the notebooks
    also apply to themselves) are checked up front, so a typo fails in a second instead of an
    hour into a batch, with nothing under results/ touched."""
    from .checks import check_parameter

    try:
        check_parameter(key, value)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as e:
        text = str(e)
        raise UsageError(f"-p {text}" if text.startswith(key) else f"-p {key}: {text}") from None


# ----------------------------------------------------------------------------- execution

@dataclass
class Outcome:
    name: str
    status: str  # ok | partial (deadline: some units missing) | failed | skipped
    seconds: float = 0.0
    message: str = ""


def _this_python_kernel():
    """A kernel manager that always starts ipykernel on this interpreter (the venv's python),
    whatever kernelspecs named python3 are installed elsewhere on the machine. It talks to the
    kernel over Unix sockets (IPC), not localhost TCP that other users of the machine can reach.
    The sockets live in a fresh private folder per kernel: jupyter_client's default IPC path
    (./kernel-ipc-N in the working directory) collides when two runs start at once."""
    import tempfile

    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec
    from traitlets import default

    class ThisPythonKernel(AsyncKernelManager):
        @property
        def kernel_spec(self):
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

        @default("transport")
        def _transport_default(self):
            return "tcp" if os.name == "nt" else "ipc"

        async def _async_interrupt_kernel(self):
            # jupyter_client interrupts a kernel before asking it to shut down; after the last cell
            # that only races ipykernel into logging "ERROR | KeyboardInterrupt caught in kernel".
            # The shutdown request (then a kill) still ends it; a user's interrupt still interrupts.
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        @default("ip")
        def _ip_default(self):
            if self.transport != "ipc":
                return "127.0.0.1"
            folder = tempfile.mkdtemp(prefix="repro-kernel-")
            _KERNEL_DIRS.append(folder)  # removed when the notebook's execution ends
            return os.path.join(folder, "kernel")

    return ThisPythonKernel


_KERNEL_DIRS: list[str] = []


@contextlib.contextmanager
def _environ(**values):
    """Environment for the kernel (it inherits ours): record() must write where we read."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _finished(out: Path) -> dict | None:
    """run.json of a finished, complete runner execution whose summary.json it made; else None."""
    try:
        run, summary = read_json(out / "run.json"), read_json(out / "summary.json")
    except (OSError, ValueError):
        return None
    if summary.get("execution") != run.get("execution") or summary.get("complete") is False:
        return None
    return run


def _move_aside(out: Path) -> Path:
    """<name>.<UTC stamp> for a finished execution, <name>.partial.<stamp> for anything else
    (failed, interrupted, partial, hand-made); `repro clean` lists and removes them."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tag = "" if _finished(out) else "partial."
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


def _stale_reason(out: Path, request: dict) -> str | None:
    """None when out/ holds a finished, complete run of exactly this request; else why not."""
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
    changed = [k for k in request if previous.get(k) != request[k]]
    if changed:
        return f"{', '.join(changed)} changed"
    if summary.get("stale") and os.environ.get("REPRO_RERUN_STALE"):
        return f"{summary['stale']} stale run(s) ({', '.join(summary.get('stale_modules', []))} changed)"
    stale = _stale_since(out, summary)
    if stale:  # the code its units ran changed since: its units may now be others (a new config)
        return f"code changed since it ran: {len(stale)} of its run(s) stale ({', '.join(sorted(set(stale))[:4])})"
    return None


def _stale_since(out: Path, summary: dict) -> list[str]:
    """What changed in the code of the runs a notebook's summary used, beyond what was already
    stale when it ran (one name per changed function or declaration and run)."""
    from .fingerprint import changed
    from .results import load_runs_raw

    ids = set(summary.get("run_ids") or [])
    if not ids:
        return []
    profile_dir = out.parent
    rows = [r for r in load_runs_raw(profile_dir.name, root=profile_dir.parent) if r.get("run_id") in ids]
    stale = [c for r in rows for c in (changed(r.get("code")) or [])]
    n_stale = sum(1 for r in rows if changed(r.get("code")))
    return stale if n_stale > (summary.get("stale") or 0) else []


def _failure_message(name: str, err, params_index: int, ipynb: Path) -> str:
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(err, PapermillExecutionError):
        return f"{name}: {type(err).__name__}: {err}"
    # papermill counts the injected-parameters cell (right after ours); report the source index
    index = err.cell_index - (err.cell_index > params_index)
    lines = [line.strip() for line in err.source.splitlines() if line.strip()]
    first = next((line for line in lines if not line.startswith("#")), lines[0] if lines else "")
    return (f"{name}: cell {index} (`{first.strip()}`) raised {err.ename}: {err.evalue}  "
            f"[executed notebook: {ipynb}]")


class _KnownParameters(logging.Filter):
    """papermill's own parameter scan does not read annotations like `str | None` and warns
    "Passed unknown parameter" for them; this runner has already checked every parameter
    against the notebook (plan()), so that warning is noise."""

    def filter(self, record):
        return "Passed unknown parameter" not in record.getMessage()


class _Prefixed:
    """The notebook's printed lines, as they come, prefixed with its name: progress you can see."""

    def __init__(self, name: str):
        self.prefix, self.buffer = f"  {name} | ", ""

    def write(self, text: str):
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            if line.strip():
                print(self.prefix + line.rstrip()[:200], flush=True)

    def flush(self):
        pass


@contextlib.contextmanager
def _lock(profile_dir: Path, name: str):
    """One execution per output folder at a time: a second run of the same notebook and profile
    refuses (naming the running one) instead of moving the first one's folder from under it."""
    import fcntl

    profile_dir.mkdir(parents=True, exist_ok=True)
    path = profile_dir / f".{name}.lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise UsageError(f"{name} is already running into {profile_dir / name} ({holder}); wait for it "
                         f"or stop it first") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} since {utc_now()[:19]} UTC")
    f.flush()
    try:
        yield
    finally:
        f.close()  # closing releases the lock; the file stays (git-ignored) to avoid a race


def _report_inputs(profile_dir: Path) -> dict:
    """{notebook: execution id} of every finished notebook beside the report (not moved-aside ones)."""
    found = {}
    for run_json in sorted(profile_dir.glob("*/run.json")):
        name = run_json.parent.name
        if name in ORDER and name != "report":
            found[name] = read_json(run_json).get("execution")
    return found


def execute(job: Job, profile: str, root: Path, force: bool = False) -> Outcome:
    try:
        with _lock(output_path(profile, job.name, root).parent, job.name):
            return _execute(job, profile, root, force)
    except UsageError as e:
        return Outcome(job.name, "failed", message=str(e))


def _quiet_papermill() -> None:
    log = logging.getLogger("papermill")
    if not any(isinstance(f, _KnownParameters) for f in log.filters):
        log.addFilter(_KnownParameters())


def _execute(job: Job, profile: str, root: Path, force: bool = False) -> Outcome:
    import papermill

    _quiet_papermill()

    out = output_path(profile, job.name, root)
    rev, dirty = git_revision()
    request = _request(job, profile, out)  # the report's request holds its inputs' executions
    reason = _stale_reason(out, request) if out.exists() else "no outputs"
    if reason is None and not force:
        return Outcome(job.name, "skipped", message="up to date (use --force)")
    if out.exists() and any(out.iterdir()):
        why = "--force" if reason is None else reason
        print(f"{job.name}: previous outputs ({why}) moved to {_move_aside(out)}", flush=True)
    out.mkdir(parents=True, exist_ok=True)

    nb = read_notebook(job.path)
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    parameters = {"profile": profile, "output_dir": str(out), **job.params}
    ipynb = out / f"{job.name}.ipynb"
    execution = uuid.uuid4().hex
    print(f"{job.name}: running ({profile}) ...", flush=True)
    t0 = time.perf_counter()
    env = {"REPRO_RESULTS_DIR": str(root), "REPRO_EXECUTION_ID": execution}
    if force:
        env["REPRO_FORCE"] = "1"  # every unit retrains
    try:
        with _environ(**env):
            papermill.execute_notebook(
                nb, str(ipynb), parameters=parameters, kernel_name="python3", language="python",
                cwd=str(REPO_ROOT), progress_bar=False, stdout_file=_Prefixed(job.name),
                kernel_manager_class=_this_python_kernel())
    except Exception as err:  # the notebook raised, or its kernel died: report, go on
        seconds = time.perf_counter() - t0
        return Outcome(job.name, "failed", seconds,
                       _failure_message(job.name, err, _parameters_index(nb, job.path), ipynb))
    finally:
        while _KERNEL_DIRS:
            shutil.rmtree(_KERNEL_DIRS.pop(), ignore_errors=True)
        _portable(ipynb)
    seconds = time.perf_counter() - t0
    try:
        summary = read_json(out / "summary.json")
    except (OSError, ValueError):
        summary = {}
    write_json(out / "run.json", {"request": request, "injected": parameters, "execution": execution,
                                  "git_rev": rev, "git_dirty": dirty, "seconds": seconds,
                                  "finished": utc_now(), "complete": summary.get("complete", True)})
    if summary.get("complete") is False:
        return Outcome(job.name, "partial", seconds, f"{summary.get('done')} of {summary.get('planned')} runs")
    return Outcome(job.name, "ok", seconds)


def _portable(ipynb: Path) -> None:
    """An executed notebook kept in the repository (results/, committed) names paths relative to
    the repository (the kernel ran there) and the home folder as ~ (the unit cache's default), never
    this machine's checkout or user: re-executed or read elsewhere, it points at the same files.
    One written outside the repository (--results-dir elsewhere) keeps this machine's paths."""
    if ipynb.exists() and ipynb.resolve().is_relative_to(REPO_ROOT):
        text = ipynb.read_text()
        root = str(REPO_ROOT)
        portable = text.replace(root + "/", "").replace(root, ".").replace(str(Path.home()) + "/", "~/")
        if portable != text:
            ipynb.write_text(portable)


# notebooks that read what another one made (its checkpoints): with --jobs they wait for it
# a notebook that asks for another's units waits for it (else both may train the same unit at once)
DEPENDS = {"pld_glue": {"pld_pretraining"}, "earlybert_glue": {"glue_finetune"},
           "ticket_mask_distance": {"earlybert_glue", "earlybert_pretraining"}}


def _depends(job: Job, names: set[str]) -> set[str]:
    return set(names) - {"report"} if job.name == "report" else DEPENDS.get(job.name, set()) & names


def _log(root: Path, profile: str, o: Outcome) -> None:
    line = f"{o.name}: {o.status} in {o.seconds:.1f}s" + (f" — {o.message}" if o.status in ("skipped", "partial") else "")
    print(line, flush=True)
    log = root / profile / "runner.log"  # git-ignored: a run that changes nothing leaves the checkout clean
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:  # one short line per notebook; appends don't clobber
        f.write(f"{utc_now()}\t{o.name}\t{o.status}\t{o.seconds:.1f}\n")


def run(jobs: list[Job], profile: str, results_dir=None, force: bool = False, parallel: int = 1) -> list[Outcome]:
    """Execute the planned jobs; a failure doesn't stop the others. parallel > 1 runs independent
    notebooks side by side, each in its own process with its share of the cores."""
    root = Path(results_dir or results_root()).resolve()
    if parallel > 1 and len(jobs) > 1:
        return _run_parallel(jobs, profile, root, force, parallel)
    outcomes = []
    for job in jobs:
        outcomes.append(execute(job, profile, root, force))
        _log(root, profile, outcomes[-1])
    return outcomes


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _command(job: Job, profile: str, root: Path, force: bool) -> list[str]:
    cmd = [sys.executable, "-m", "repro", "run", job.name, "--profile", profile, "--results-dir", str(root),
           "--notebooks-dir", str(job.path.parent)]
    for key, value in job.params.items():
        cmd += ["-p", f"{key}={value!r}"]
    return cmd + (["--force"] if force else [])


def _run_parallel(jobs, profile, root, force, parallel) -> list[Outcome]:
    threads = str(max(1, cores() // parallel))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    print(f"running {len(jobs)} notebook(s), {parallel} at a time, {threads} thread(s) each", flush=True)
    pending, running, outcomes = list(jobs), {}, []
    try:
        while pending or running:
            busy = {j.name for j in pending} | set(running)
            for job in list(pending):
                if len(running) < parallel and not _depends(job, busy - {job.name}):
                    running[job.name] = (job, subprocess.Popen(_command(job, profile, root, force), env=env),
                                         time.perf_counter())
                    pending.remove(job)
            time.sleep(0.5)
            for name, (job, proc, t0) in list(running.items()):
                if proc.poll() is not None:
                    del running[name]
                    outcomes.append(Outcome(name, "ok" if proc.returncode == 0 else "failed",
                                            time.perf_counter() - t0,
                                            "" if proc.returncode == 0 else f"{name}: exited {proc.returncode} (see above)"))
    except KeyboardInterrupt:
        for _, proc, _ in running.values():
            proc.terminate()
        raise
    return outcomes


# ----------------------------------------------------------------------------- plan

def plan_units(job: Job, profile: str, root: Path) -> list[dict]:
    """Execute the notebook in plan mode (no unit trains; outputs go to a temporary folder) and
    return its units: state done | stale | missing | waiting, with an estimate of the missing."""
    import tempfile

    import papermill

    _quiet_papermill()
    with tempfile.TemporaryDirectory(prefix="repro-plan-") as tmp:
        plan_file = Path(tmp) / "units.json"
        nb = read_notebook(job.path)
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
        env = {"REPRO_RESULTS_DIR": str(root), "REPRO_PLAN": str(plan_file), "REPRO_EXECUTION_ID": "plan"}
        try:
            with _environ(**env):
                papermill.execute_notebook(
                    nb, str(Path(tmp) / f"{job.name}.ipynb"),
                    parameters={"profile": profile, "output_dir": str(Path(tmp) / "out"), **job.params},
                    kernel_name="python3", language="python", cwd=str(REPO_ROOT), progress_bar=False,
                    kernel_manager_class=_this_python_kernel())
        except Exception as err:  # a plan must not stop at one notebook
            print(_failure_message(job.name, err, _parameters_index(nb, job.path), Path(tmp)), flush=True)
        finally:
            while _KERNEL_DIRS:
                shutil.rmtree(_KERNEL_DIRS.pop(), ignore_errors=True)
        return json.loads(plan_file.read_text()) if plan_file.exists() else []


def _state(job: Job, profile: str, root: Path, units: list[dict]) -> str:
    out = output_path(profile, job.name, root)
    if not (out / "summary.json").exists():
        return "missing"
    reason = _stale_reason(out, _request(job, profile, out))
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


def _request(job: Job, profile: str, out: Path) -> dict:
    request = to_jsonable({"profile": profile, "parameters": job.params,
                           "source_sha256": hashlib.sha256(job.path.read_bytes()).hexdigest()})
    if job.name == "report":
        request["inputs"] = _report_inputs(out.parent)
    return request


def schedule(seconds: dict[str, float], jobs: list[Job], parallel: int) -> float:
    """Wall-clock of running the jobs with `parallel` workers in order, honouring DEPENDS."""
    names = {j.name for j in jobs}
    free, end = [0.0] * max(1, parallel), {}
    for job in jobs:
        ready = max([end[d] for d in _depends(job, names) if d in end], default=0.0)
        i = min(range(len(free)), key=free.__getitem__)
        start = max(free[i], ready)
        end[job.name] = free[i] = start + seconds.get(job.name, 0.0)
    return max(end.values(), default=0.0)


def print_plan(jobs: list[Job], profile: str, results_dir=None, parallel: int = 1) -> dict:
    """Per notebook: units done, stale and to run, and the estimated time to run them."""
    from .results import load_runs_raw

    root = Path(results_dir or results_root()).resolve()
    revs = {r["run_id"]: (r.get("provenance") or {}).get("git_rev") for r in load_runs_raw(profile, root)}
    seconds, rows, unknown, counted = {}, [], 0, set()
    print(f"Plan for profile {profile} (results in {root / profile}):", flush=True)
    for job in jobs:
        units = [] if job.name == "report" else plan_units(job, profile, root)
        for u in units:
            u["git_rev"] = revs.get(u.get("run_id"))
        state = _state(job, profile, root, units)
        todo = [u for u in units if u["state"] in ("missing", "waiting")]
        # a fresh notebook's remakes run only if it is re-run: shown, not counted
        remake = lambda u: state == "fresh" and u.get("rerun") == "artifact gone"
        remakes, todo = [u for u in todo if remake(u)], [u for u in todo if not remake(u)]
        # a unit another notebook asks for too (EarlyBERT's dense runs are glue_finetune's, pld_glue's
        # pre-training is pld_pretraining's) trains once: its time counts in the first notebook only
        own = [u for u in todo if u["key"] not in counted]
        counted.update(u["key"] for u in todo)
        est = [u["estimate"] for u in own if u.get("estimate")]
        unknown += len(own) - len(est)
        seconds[job.name] = sum(est) if job.name != "report" else 0.0 if state == "fresh" else 30.0
        n = {k: sum(u["state"] == k for u in units) for k in ("done", "stale")}
        line = (f"  {job.name:<22} {state}: {n['done']} done, {n['stale']} stale, {len(todo)} to run"
                + (f", ~{_hms(seconds[job.name])}" if own else "")
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
        rows.append({"notebook": job.name, "state": state, "units": units, "seconds": seconds[job.name]})
    total = schedule(seconds, jobs, parallel)
    print(f"Estimated: ~{_hms(total)} at --jobs {parallel} ({cores()} cores), "
          f"{sum(seconds.values()) / 3600:.1f} h of runs in all"
          + (f"; {unknown} unit(s) without an estimate not counted" if unknown else "")
          + ". Units already recorded are reused; a stopped run continues where it stopped.", flush=True)
    return {"notebooks": rows, "seconds": total}


def _hms(seconds: float) -> str:
    m = int(round(seconds / 60))
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m" if m else f"{int(seconds)}s"
