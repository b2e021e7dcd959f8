"""A unit's context: what its `run` gets (UnitContext: identity, cache folder, the study's Control),
the cache folder itself, and training checkpoints tied to the code that wrote them (a resume across
a code change would record numbers no single version of the code computes). Study (repro.study)
makes one per unit; timings are told from numbers here too (`timed`, `differs`), since a remake or
a re-stamp compares numbers and never timings.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .control import Control
from .fingerprint import changed as changed_modules, code_digest, code_fingerprint


def timed(metric: str) -> bool:
    """Is this metric a timing (seconds, time per sample, s per step), free to differ between runs?"""
    return "second" in metric or "time" in metric or metric.endswith("_s") or "_s_" in metric


def differs(old: dict, new: dict) -> dict:
    """The metrics (name -> [old, new]) that two runs of one unit disagree on, timings aside."""
    same = lambda a, b: a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))  # noqa: E731
    return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
            if not timed(k) and not same(old.get(k), new.get(k))}


# ----------------------------------------------------------------------------- settings

def cache_root(override: str | None = None) -> Path:
    """Checkpoints and other large unit artifacts: never in git, may vanish (a new machine).
    `override`: the Control's cache_dir ($REPRO_CACHE_DIR); else the user's cache folder
    (platformdirs: ~/.cache/repro on Linux, honouring $XDG_CACHE_HOME)."""
    import platformdirs

    return Path(override) if override else Path(platformdirs.user_cache_dir("repro"))


def check_cache_writable(path: Path | None = None) -> Path:
    path = Path(path or cache_root())
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"the cache folder {path} is not writable ({e.strerror}): set REPRO_CACHE_DIR "
                              f"to a writable folder outside the git tree") from None
    return path


# ----------------------------------------------------------------------------- code staleness
# what computed a record's numbers: repro.fingerprint (digests that survive moving code)


def _checkpoint_code(ctx) -> tuple[list[str], dict]:
    """What changed since a unit's training checkpoints were written ([]: nothing, they resume it)
    and the fingerprint a resumed run carries over.

    `code.txt` holds what wrote them: the fingerprint of the functions the run had called when it
    stopped at a deadline (then only a change to one of those counts: editing another notebook's
    code does not), else the digest of the whole numeric package (a run killed outright: any
    change counts)."""
    stamp = ctx.cache / "code.txt"
    text = stamp.read_text().strip() if stamp.exists() else ""
    if text.startswith("{"):
        carried = json.loads(text)
        return changed_modules(carried), carried
    return (["the package"] if text and text != code_digest() else []), {}


def _drop_checkpoints_of_other_code(ctx) -> dict:
    """A unit's training checkpoints resume it only under the code that wrote them: a run resumed
    across a code change would record numbers no single version of the code computes. Returns
    the fingerprint a resumed run carries over (_checkpoint_code)."""
    changed, carried = _checkpoint_code(ctx)
    if changed:
        carried = {}
        for ckpt in ctx.cache.glob("*/last.pt"):
            ckpt.unlink()
            print(f"{ctx.key}: the code changed since its checkpoint {ckpt} was written "
                  f"({', '.join(changed[:4])}): starting over", flush=True)
    if not carried:
        (ctx.cache / "code.txt").write_text(code_digest() + "\n")
    return carried


def trained_seconds(ctx) -> float:
    """Training time a unit's checkpoints already hold, over its stages (search, ticket, ...):
    what resuming it saves. 0 when it has none, or when the code changed since they were written
    (the run will start over)."""
    import torch

    ckpts = sorted(ctx.cache.glob("*/last.pt"))
    if not ckpts or _checkpoint_code(ctx)[0]:
        return 0.0
    total = 0.0
    for path in ckpts:
        try:  # mmap: the loop's clock is read without pulling the weights into memory
            total += torch.load(path, map_location="cpu", weights_only=False, mmap=True)["loop"]["times"]["total"]
        except Exception as e:  # noqa: BLE001 - an estimate must never break the plan
            print(f"{ctx.key}: checkpoint {path} unreadable ({type(e).__name__}): no credit for it", flush=True)
    return total


def _stamp_checkpoints(ctx, calls, carried: dict) -> None:
    """At a deadline: the functions the run called so far (and before, if it resumed) wrote its
    checkpoints; a later resume checks just those (_drop_checkpoints_of_other_code)."""
    if any(ctx.cache.glob("*/last.pt")):
        (ctx.cache / "code.txt").write_text(json.dumps({**carried, **code_fingerprint(calls)}, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- units

# config keys that set how long a unit trains: another method of the same task estimates a
# missing unit only when these agree (a gradient measurement at initialisation is no estimate of
# one after 300 training steps; a run with random batches is one of a length-grouped run), and the
# kind of unit agrees too: an EarlyBERT search, ticket or step timing carries its dense run's
# config (epochs, kind) but is none; its "search" key tells it apart
LENGTH_KEYS = ("kind", "search", "steps", "train_steps", "stop_at", "epochs", "max_train_examples", "seq_len", "layers",
               "hidden")


def _length(config: dict) -> list:
    return [config.get(k) for k in LENGTH_KEYS]


@dataclass
class UnitContext:
    """What a unit's `run` gets: its identity and a cache folder of its own."""
    key: str
    cache: Path
    checkpoint_minutes: float = 5.0
    control: Control = field(default_factory=Control)  # the study's: deadline, plan mode's probe

    @property
    def probe_steps(self) -> int:
        """Plan mode's probe: a unit without a training loop times itself once and raises Probe."""
        return self.control.probe_steps

    def train_kwargs(self, stage: str = "train") -> dict:
        """TrainConfig overrides: checkpoint into the cache every few minutes and resume from it,
        stop with a checkpoint at the study's deadline, and time a few steps in plan mode's probe.
        A unit with several training stages (search, then ticket) names each stage."""
        return {"checkpoint_dir": str(self.cache / stage), "checkpoint_minutes": self.checkpoint_minutes,
                "deadline": self.control.deadline, "probe_steps": self.control.probe_steps}
