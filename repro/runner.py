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
import logging
import os
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
    "ticket_mask_distance", "earlybert_glue", "earlybert_squad", "earlybert_pretraining",  # EarlyBERT
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
    them after this cell."""
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
    status: str  # ok | failed | skipped
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

        @default("ip")
        def _ip_default(self):
            if self.transport != "ipc":
                return "127.0.0.1"
            return os.path.join(tempfile.mkdtemp(prefix="repro-kernel-"), "kernel")

    return ThisPythonKernel


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


def _move_aside(out: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside, i = out.with_name(f"{out.name}.{stamp}"), 1
    while aside.exists():
        aside, i = out.with_name(f"{out.name}.{stamp}-{i}"), i + 1
    out.rename(aside)
    return aside


def _stale_reason(out: Path, request: dict) -> str | None:
    """None when out/ holds a finished run of exactly this request; else why not."""
    if not (out / "summary.json").exists():
        return "no summary.json"
    try:
        previous = read_json(out / "run.json")["request"]
    except (OSError, ValueError, KeyError):
        return "summary.json was not made by the runner"
    changed = [k for k in request if previous.get(k) != request[k]]
    return f"{', '.join(changed)} changed" if changed else None


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


def _report_inputs(profile_dir: Path) -> dict:
    """{notebook: execution id} of every finished notebook beside the report (not moved-aside ones)."""
    found = {}
    for run_json in sorted(profile_dir.glob("*/run.json")):
        name = run_json.parent.name
        if name in ORDER and name != "report":
            found[name] = read_json(run_json).get("execution")
    return found


def execute(job: Job, profile: str, root: Path, force: bool = False) -> Outcome:
    import papermill

    log = logging.getLogger("papermill")
    if not any(isinstance(f, _KnownParameters) for f in log.filters):
        log.addFilter(_KnownParameters())

    out = output_path(profile, job.name, root)
    rev, dirty = git_revision()
    request = to_jsonable({"profile": profile, "parameters": job.params,
                           "source_sha256": hashlib.sha256(job.path.read_bytes()).hexdigest()})
    if job.name == "report":  # its inputs are the other notebooks' outputs: stale when they change
        request["inputs"] = _report_inputs(out.parent)
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
    try:
        with _environ(REPRO_RESULTS_DIR=str(root), REPRO_EXECUTION_ID=execution):
            papermill.execute_notebook(
                nb, str(ipynb), parameters=parameters, kernel_name="python3", language="python",
                cwd=str(REPO_ROOT), progress_bar=sys.stderr.isatty(),
                kernel_manager_class=_this_python_kernel())
    except Exception as err:  # the notebook raised, or its kernel died: report, go on
        seconds = time.perf_counter() - t0
        return Outcome(job.name, "failed", seconds,
                       _failure_message(job.name, err, _parameters_index(nb, job.path), ipynb))
    seconds = time.perf_counter() - t0
    write_json(out / "run.json", {"request": request, "injected": parameters, "execution": execution,
                                  "git_rev": rev, "git_dirty": dirty, "seconds": seconds,
                                  "finished": utc_now()})
    return Outcome(job.name, "ok", seconds)


def run(jobs: list[Job], profile: str, results_dir=None, force: bool = False) -> list[Outcome]:
    """Execute the planned jobs one after another; a failure doesn't stop the others."""
    root = Path(results_dir or results_root()).resolve()
    log = root / profile / "runner.log"
    outcomes = []
    for job in jobs:
        o = execute(job, profile, root, force)
        outcomes.append(o)
        line = f"{job.name}: {o.status} in {o.seconds:.1f}s" + (f" — {o.message}" if o.status == "skipped" else "")
        print(line, flush=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:  # one short line per notebook; appends don't clobber
            f.write(f"{utc_now()}\t{job.name}\t{o.status}\t{o.seconds:.1f}\n")
    return outcomes
