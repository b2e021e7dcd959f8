"""Execute one notebook with papermill into its output folder: `execute(job, profile, root)`.

The runner injects `profile`, `output_dir` (and `train`, where the notebook declares it: see
catalogue.injected) plus the -p values the notebook declares, executes it with ipykernel on this
very interpreter, and writes the executed copy to <results>/<profile>/<name>/<name>.ipynb.

A run of a request whose outputs are current is skipped ("up to date"); --force runs it again.
Whenever a run would write into an output folder that holds anything else (other parameters, an
edited notebook, a failed or hand-made run, or --force), the old folder is moved aside to
<output_dir>.<UTC timestamp> and kept: outputs are never overwritten silently, and nothing is
ever deleted. One execution per output folder at a time (a lock file beside it).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from . import REPO_ROOT
from .catalogue import UsageError, _parameters_index, injected, read_notebook
from .control import Control
from .outputs import move_aside, request, stale_reason
from .results import git_revision, output_path, read_json, utc_now, write_json


@dataclass
class Outcome:
    name: str
    status: str  # ok | partial (deadline: some units missing) | failed | skipped
    seconds: float = 0.0
    message: str = ""


def execute(job, profile: str, root: Path, force: bool = False, control: Control = Control()) -> Outcome:
    """`control`: the runner's settings (--rerun-stale decides whether stale outputs are current);
    the kernel reads its own from the environment it inherits."""
    try:
        with _lock(output_path(profile, job.name, root).parent, job.name):
            return _execute(job, profile, root, force, control)
    except UsageError as e:
        return Outcome(job.name, "failed", message=str(e))


def _execute(job, profile: str, root: Path, force: bool = False, control: Control = Control()) -> Outcome:
    out = output_path(profile, job.name, root)
    rev, dirty = git_revision()
    req = request(job, profile, out)  # the report's request holds its inputs' executions
    reason = stale_reason(out, req, rerun_stale=control.rerun_stale) if out.exists() else "no outputs"
    if reason is None and not force:
        return Outcome(job.name, "skipped", message="up to date (use --force)")
    if out.exists() and any(out.iterdir()):
        why = "--force" if reason is None else reason
        print(f"{job.name}: previous outputs ({why}) moved to {move_aside(out)}", flush=True)
    out.mkdir(parents=True, exist_ok=True)

    nb = read_notebook(job.path)
    parameters = injected(job.path, nb, profile, out, job.params)
    ipynb = out / f"{job.name}.ipynb"
    execution = uuid.uuid4().hex
    print(f"{job.name}: running ({profile}) ...", flush=True)
    t0 = time.perf_counter()
    env = {"REPRO_RESULTS_DIR": str(root), "REPRO_EXECUTION_ID": execution}
    if force:
        env["REPRO_FORCE"] = "1"  # every unit retrains
    try:
        papermill_run(nb, ipynb, parameters, env, stdout_file=_Prefixed(job.name))
    except Exception as err:  # the notebook raised, or its kernel died: report, go on
        seconds = time.perf_counter() - t0
        return Outcome(job.name, "failed", seconds,
                       failure_message(job.name, err, _parameters_index(nb, job.path), ipynb))
    finally:
        _portable(ipynb)
    seconds = time.perf_counter() - t0
    try:
        summary = read_json(out / "summary.json")
    except (OSError, ValueError):
        summary = {}
    write_json(out / "run.json", {"request": req, "injected": parameters, "execution": execution,
                                  "git_rev": rev, "git_dirty": dirty, "seconds": seconds,
                                  "finished": utc_now(), "complete": summary.get("complete", True)})
    if summary.get("complete") is False:
        return Outcome(job.name, "partial", seconds, f"{summary.get('done')} of {summary.get('planned')} runs")
    return Outcome(job.name, "ok", seconds)


def cores() -> int:
    """The cores this process may use (its affinity where the OS says it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def papermill_run(nb, ipynb: Path, parameters: dict, env: dict, stdout_file=None) -> None:
    """Execute `nb` into `ipynb` on this interpreter's kernel, with `env` set for the kernel
    (it inherits ours: record() must write where we read). Raises what papermill raises."""
    import papermill

    _quiet_papermill()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    try:
        with _environ(**env):
            papermill.execute_notebook(
                nb, str(ipynb), parameters=parameters, kernel_name="python3", language="python",
                cwd=str(REPO_ROOT), progress_bar=False, stdout_file=stdout_file,
                kernel_manager_class=_this_python_kernel())
    finally:
        while _KERNEL_DIRS:
            shutil.rmtree(_KERNEL_DIRS.pop(), ignore_errors=True)


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


@contextlib.contextmanager
def _lock(profile_dir: Path, name: str):
    """One execution per output folder at a time: a second run of the same notebook and profile
    refuses (naming the running one) instead of moving the first one's folder from under it.
    The holder writes who it is into the lock file (free to write: the lock is flock's, not the
    file's content), which stays after release (git-ignored)."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    path = profile_dir / f".{name}.lock"
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = path.read_text().strip() if path.exists() else ""
        raise UsageError(f"{name} is already running into {profile_dir / name} ({holder or 'another process'}); "
                         f"wait for it or stop it first") from None
    path.write_text(f"pid {os.getpid()} since {utc_now()[:19]} UTC")
    try:
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------- messages

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_message(name: str, err, params_index: int, ipynb: Path | None) -> str:
    """One line: the notebook, the source cell, the line of it that raised (from the traceback)
    and where the exception came from, the exception, and the executed copy to read (if kept)."""
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(err, PapermillExecutionError):
        return f"{name}: {type(err).__name__}: {err}"
    # papermill counts the injected-parameters cell (right after ours); report the source index
    index = err.cell_index - (err.cell_index > params_index)
    line, where = _raised_at(err)
    return (f"{name}: cell {index}{line} raised {err.ename}{where}: {err.evalue}"
            + (f"  [executed notebook: {ipynb}]" if ipynb else ""))


def _raised_at(err) -> tuple[str, str]:
    """(", line N (`text`)", " in f (file:line)") from IPython's traceback: `Cell In[k], line N`
    names the cell's line; of the `File path:line, in f(...)` frames, the innermost one in the
    package (repro/: its code that raised), else the innermost one."""
    text = _ANSI.sub("", "\n".join(err.traceback or []))
    lines = err.source.splitlines()
    cell = re.search(r"^Cell In\[\d+\], line (\d+)", text, re.M) or re.search(r"<cell line: (\d+)>", text)
    if cell and 0 < int(cell.group(1)) <= len(lines):
        n = int(cell.group(1))
        line = f", line {n} (`{lines[n - 1].strip()}`)"
    else:  # a traceback we cannot read (a SyntaxError, another IPython): the cell's first code line
        code = [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]
        line = f" (`{code[0]}`)" if code else ""
    frames = []
    for path, lineno, func in re.findall(r"^File (.+?):(\d+), in (\S+?)\(", text, re.M):
        for root in (str(REPO_ROOT), str(REPO_ROOT).replace(str(Path.home()), "~", 1)):  # IPython writes ~ for home
            path = path.removeprefix(root + "/")
        frames.append((path, lineno, func))
    ours = [f for f in frames if f[0].startswith("repro/")]
    if not (ours or frames):
        return line, ""
    path, lineno, func = (ours or frames)[-1]
    return line, f" in {func} ({path}:{lineno})"


def _quiet_papermill() -> None:
    log = logging.getLogger("papermill")
    if not any(isinstance(f, _KnownParameters) for f in log.filters):
        log.addFilter(_KnownParameters())


class _KnownParameters(logging.Filter):
    """papermill's own parameter scan does not read annotations like `str | None` and warns
    "Passed unknown parameter" for them; this runner has already checked every parameter
    against the notebook (selection.jobs_for), so that warning is noise."""

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
