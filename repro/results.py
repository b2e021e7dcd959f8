"""The results store: one JSON file per run, read back into pandas for the reports.

Layout under the results root (the `root` its callers pass: a notebook's Study passes its Control's
$REPRO_RESULTS_DIR, the command line its --results-dir; else <repo>/results):

    <root>/<profile>/runs/<timestamp>-<notebook>-<id>.json   one file per record(): append-only
    <root>/<profile>/<notebook>/                             a notebook's figures, tables,
                                                             summary.json, executed .ipynb

Every record gets a fresh file name and is written atomically (temp file + fsync + os.replace),
so two notebooks running at once never rewrite a shared file and a crash never leaves half a
row. Non-finite floats (a diverged loss) are stored as the strings "nan", "inf", "-inf" so the
files stay strict JSON, and are turned back into floats on reading.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
import uuid
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import REPO_ROOT, __version__
from .control import ranks

STATUSES = ("ok", "diverged", "failed")
IDENTITY = ["run_id", "timestamp", "notebook", "profile", "task", "method", "seed", "status",
            "config_hash", "execution"]
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# ----------------------------------------------------------------------------- paths

def results_root(override: str | Path | None = None) -> Path:
    """`override` (the Control's results_dir, $REPRO_RESULTS_DIR), else <repo>/results."""
    return Path(override or REPO_ROOT / "results")


def output_path(profile: str, notebook: str, root: Path | str | None = None) -> Path:
    """Where a notebook's outputs go, without creating anything (the runner validates first)."""
    return Path(root or results_root()) / profile / notebook


def output_dir(profile: str, notebook: str, root: Path | str | None = None) -> Path:
    """A notebook's default output folder when no `output_dir` was passed, i.e. when it runs
    outside `repro run` (plain papermill, Jupyter): <root>/_scratch/<profile>/<notebook>/, a folder
    of its own. The runner's folders only ever hold the files of one execution of the runner."""
    path = Path(root or results_root()) / "_scratch" / profile / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- JSON

def to_jsonable(obj):
    """Plain JSON types, recursively: dataclasses, Paths, tuples, numpy/torch scalars and arrays;
    non-finite floats become "nan"/"inf"/"-inf"."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("nan" if math.isnan(obj) else "inf" if obj > 0 else "-inf")
    if hasattr(obj, "tolist"):  # numpy scalars/arrays, torch tensors
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    raise TypeError(f"cannot store {type(obj).__name__} as JSON: {obj!r}")


def from_jsonable(obj):
    """Inverse of to_jsonable for the non-finite floats."""
    if isinstance(obj, dict):
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    return obj


def write_json(path: Path | str, data) -> Path:
    """Write atomically: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(data), indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path | str):
    return from_jsonable(json.loads(Path(path).read_text()))


def _drop_none(obj):
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def config_hash(config: dict) -> str:
    """Short, stable fingerprint of a configuration (independent of key order). Keys whose value
    is None are left out, so adding an optional setting (default None) to a config class does not
    change the hash of every run already recorded, and the study's units stay reusable."""
    text = json.dumps(_drop_none(to_jsonable(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# ----------------------------------------------------------------------------- provenance

def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout; (None, None) outside git. Modified tracked files make
    it dirty, except under results/: the runner itself appends to results/<profile>/runner.log,
    and outputs are not code. Untracked files don't count."""
    rev = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results") if rev else None
    return rev, None if status is None else bool(status)


@functools.cache
def _static_provenance() -> dict:
    import torch  # imported here: results.py stays cheap to import for the runner

    rev, dirty = git_revision()
    cuda = torch.cuda.is_available()
    return {
        "git_rev": rev,
        "git_dirty": dirty,
        "python": platform.python_version(),
        **{pkg: _version(pkg) for pkg in ("torch", "transformers", "datasets", "numpy", "pandas")},
        "repro": __version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "device": "cuda" if cuda else "cpu",
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "hostname": socket.gethostname(),
    }


def provenance() -> dict:
    """Where and with what a result was made. Cached per process, except the thread count,
    which a notebook may change after the first call."""
    import torch

    return {**_static_provenance(), "torch_threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- runs

def record(*, notebook: str, profile: str, task: str | None, method: str, seed: int | None,
           metrics: dict, times: dict, config: dict, status: str = "ok",
           root: Path | str | None = None, execution: str | None = None, **extra) -> dict:
    """Store one run (one task x method x seed) as its own JSON file; returns the row.
    `execution`: the runner's execution of the notebook (the Control's), telling this run's rows
    from older ones."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    timestamp, run_id = utc_now(), uuid.uuid4().hex
    row = {
        "run_id": run_id, "timestamp": timestamp, "notebook": notebook, "profile": profile,
        "task": task, "method": method, "seed": seed, "status": status,
        "metrics": dict(metrics), "times": dict(times), "config": config,
        "config_hash": config_hash(config),
        "execution": execution,
        "provenance": provenance(),
    }
    if clash := set(extra) & set(row):
        raise ValueError(f"extra keys {sorted(clash)} would overwrite the record's own fields")
    row.update(extra)
    if ranks()[0] != 0:  # data-parallel: rank 0 alone writes the row
        return row
    stamp = timestamp.replace("-", "").replace(":", "").replace("+0000", "Z")
    path = Path(root or results_root()) / profile / "runs" / f"{stamp}-{notebook}-{run_id[:8]}.json"
    write_json(path, row)
    return row


def load_runs_raw(profile: str | None = None, root: Path | str | None = None) -> list[dict]:
    """Every record of a profile as stored (nested dicts), oldest first; unreadable files are
    skipped with a warning."""
    rows = []
    for path in sorted(Path(root or results_root()).glob(f"{profile or '*'}/runs/*.json")):
        try:
            row = read_json(path)
            if not isinstance(row, dict) or "run_id" not in row:
                raise ValueError("not a run record")
        except (OSError, ValueError) as e:  # JSONDecodeError is a ValueError
            warnings.warn(f"skipping unreadable run file {path}: {e}")
            continue
        rows.append(row)
    return sorted(rows, key=lambda r: r.get("timestamp", ""))


_PREFIX = {"metrics": "metric", "times": "time", "config": "config", "provenance": "prov"}


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Records as one frame: identity columns, then metric.<name>, time.<name>, config.<key>
    (nested keys joined with dots, by pandas.json_normalize) and prov.<key>; other fields as they are."""
    if not rows:
        return pd.DataFrame(columns=IDENTITY)
    top = pd.DataFrame([{k: v for k, v in r.items() if k not in _PREFIX} for r in rows])
    nested = [pd.json_normalize([r.get(k) or {} for r in rows], sep=".").add_prefix(f"{p}.")
              for k, p in _PREFIX.items()]
    df = pd.concat([top, *nested], axis=1)
    rest = sorted(c for c in df.columns if c not in IDENTITY)
    return df[[c for c in IDENTITY if c in df.columns] + rest]


def load_runs(profile: str | None = None, notebook: str | None = None,
              root: Path | str | None = None) -> pd.DataFrame:
    """All records of a profile (optionally one notebook's) as a frame (see _frame), oldest
    first. Unreadable files are skipped with a warning."""
    df = _frame([row for row in load_runs_raw(profile, root) if notebook is None or row.get("notebook") == notebook])
    if len(df):
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df.sort_values("timestamp", ignore_index=True) if len(df) else df


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Records returned by record() or Study.unit() as the same frame load_runs() builds."""
    return _frame([r for r in rows if r is not None])


# ----------------------------------------------------------------------------- reports

def t_halfwidth(std, n, confidence: float = 0.95):
    """Half-width of the Student-t confidence interval of a mean from its sample std and n
    (nan for n < 2). The study's one interval: scalars or pandas columns."""
    from scipy import stats

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        hw = stats.t.ppf((1 + confidence) / 2, n - 1) * np.asarray(std, dtype=float) / np.sqrt(n)
    return float(hw) if np.ndim(hw) == 0 else hw


def mean_hw(values, confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean, t-interval half-width (nan for fewer than 2 values) and n of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), t_halfwidth(v.std(ddof=1) if len(v) > 1 else math.nan, len(v), confidence), len(v)


def summarize(df: pd.DataFrame, by=("task", "method"), metrics=None,
              confidence: float = 0.95) -> pd.DataFrame:
    """Long table, one row per group x metric: n (non-missing values), mean, and hw, the
    half-width of a Student-t confidence interval (nan when n < 2). `metrics` defaults to every
    metric.* column; names are given and returned without the "metric." prefix."""
    from scipy import stats

    by = list(by)
    names = metrics or [c for c in df.columns if c.startswith("metric.")]
    names = [m.removeprefix("metric.") for m in names]
    out = []
    for name in names:
        col = f"metric.{name}" if f"metric.{name}" in df.columns else name
        g = pd.to_numeric(df[col], errors="coerce").groupby([df[b] for b in by], dropna=False)
        s = g.agg(["count", "mean", "std"]).rename(columns={"count": "n"}).reset_index()
        s = s[s["n"] > 0]
        s["hw"] = t_halfwidth(s["std"], s["n"], confidence)  # nan for n == 1
        s.insert(len(by), "metric", name)
        out.append(s.drop(columns="std"))
    if not out:
        return pd.DataFrame(columns=[*by, "metric", "n", "mean", "hw"])
    return pd.concat(out, ignore_index=True)


def format_pm(mean: float, hw: float, digits: int = 1, unit: str = "", signed: bool = False) -> str:
    """81.2 ± 0.4 (signed: +1.2 ± 0.4 for differences); just the mean when there is no interval;
    an en dash when there is no mean."""
    if mean is None or not math.isfinite(mean):
        return "–"
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if hw is not None and math.isfinite(hw):
        text += f" ± {hw:.{digits}f}"
    return text + unit


def summary_table(df: pd.DataFrame, by=("task", "method"), metrics=None,
                  confidence: float = 0.95, digits: int = 1, scale: float = 1.0) -> pd.DataFrame:
    """Strings "mean ± hw" per group (rows) and metric (columns), plus n (runs in the group).
    scale=100 shows fractions as percentages."""
    by = list(by)
    s = summarize(df, by, metrics, confidence)
    s["cell"] = [format_pm(m * scale, h * scale, digits) for m, h in zip(s["mean"], s["hw"])]
    table = s.set_index([*by, "metric"])["cell"].unstack("metric")
    table = table[list(dict.fromkeys(s["metric"]))].fillna("–")  # metric order as given
    table.insert(0, "n", df.groupby(by, dropna=False).size().reindex(table.index))
    table.columns.name = None
    return table


def _meaningful_index(df: pd.DataFrame) -> bool:
    """A named index, or anything but 0..n-1, is data worth writing out."""
    return any(df.index.names) or not df.index.equals(pd.RangeIndex(len(df)))


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' to_markdown needs tabulate, which we don't require)."""
    df = df.reset_index() if _meaningful_index(df) else df
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- notebook helpers

def save_figure(fig, out_dir: Path | str, name: str) -> Path:
    path = Path(out_dir) / (name if name.endswith(".png") else f"{name}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def save_table(df: pd.DataFrame, out_dir: Path | str, name: str) -> Path:
    path = Path(out_dir) / (name if name.endswith(".csv") else f"{name}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=_meaningful_index(df))
    return path


def write_summary(out_dir: Path | str, data: dict, execution: str | None = None) -> Path:
    """<out_dir>/summary.json: the notebook's headline numbers, with provenance and a timestamp,
    and `execution` (the Control's: the runner checks it is the execution it started)."""
    data = dict(data)
    data["provenance"] = {**provenance(), "timestamp": utc_now(), **data.get("provenance", {})}
    data.setdefault("execution", execution)
    return write_json(Path(out_dir) / "summary.json", data)


def load_summary(out_dir: Path | str) -> dict:
    return read_json(Path(out_dir) / "summary.json")


def saving(pct: float, hw: float = math.nan, noun: str = "time", less: str = "less", more: str = "more") -> str:
    """A saving in words: 12.3 -> "12.3% less time", -75.9 -> "75.9% more time" (the sign is in
    the word, never a negative "less")."""
    if pct is None or not math.isfinite(pct):
        return "–"
    amount = f"{abs(pct):.1f}" + (f" ± {hw:.1f}" if hw is not None and math.isfinite(hw) else "") + "%"
    return f"{amount} {less if pct >= 0 else more} {noun}"


def fewer_flops(pct: float) -> str:
    return saving(pct, noun="FLOPs", less="fewer")
