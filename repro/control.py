"""How a study steers the code below it: the deadline, plan mode's probe, the folders and overrides
the runner set, and the two answers the loop gives back (TimeUp: stopped at the deadline with a
checkpoint; Probe: timed a few steps). The lowest layer: the loop (`train`) and the study (`study`)
both import it, so the loop never imports the study. The settings travel from the command line to
the notebooks it starts in environment variables (`repro run --hours`, `repro plan`, --clip), read
in `Control.from_environ` alone; below that they are values passed down. torchrun's ranks, which
its launcher sets per process, are read here too, in `ranks`.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace


class TimeUp(Exception):
    """The study's deadline passed inside a unit; its training loop saved a checkpoint to resume."""


class Probe(Exception):
    """Plan mode: the training loop timed a few steps and stopped (seconds per step, steps)."""

    def __init__(self, seconds_per_step: float, steps: int):
        super().__init__(f"{seconds_per_step:.3f}s/step x {steps}")
        self.seconds_per_step, self.steps = seconds_per_step, steps


@dataclass(frozen=True)
class Control:
    """What the runner tells the units below it, read from the environment once, at the top
    (`Control.from_environ()`: the command line sets the variables for the notebooks it starts,
    a notebook's Study reads them when it is made), then passed down as values: the Study holds
    it, each unit's context carries it, and the training loop gets the deadline and the probe
    in its TrainConfig, as it gets its checkpoint folder; the data folder, the results folder, the
    execution id, the checkpoint and clip reach the loaders, the store and the profile alike."""
    deadline: float = math.inf  # epoch seconds: a unit past it stops with a checkpoint (TimeUp)
    fit: bool = False  # --fit: a unit whose estimate does not fit in the time left is not started
    plan: str | None = None  # plan mode: the file the estimates go to; nothing trains
    probe_steps: int = 0  # plan mode: the loop times this many steps (after one untimed) and raises Probe
    rerun_stale: bool = False  # --rerun-stale: a stale record is trained again
    force: bool = False  # --force: every unit is trained again
    cache_dir: str | None = None  # $REPRO_CACHE_DIR: checkpoints and artifacts; None: the user's cache folder
    data_dir: str | None = None  # $REPRO_DATA_DIR: the data folder; None: the default (../shared/data, ./data)
    results_dir: str | None = None  # $REPRO_RESULTS_DIR: the results root; None: <repo>/results
    execution: str | None = None  # $REPRO_EXECUTION_ID: the runner's execution of this notebook
    checkpoint: str | None = None  # $REPRO_CHECKPOINT: the pretrained checkpoint instead of the profile's
    clip: bool = False  # $REPRO_CLIP (--clip): every run clipped (profiles.clip)
    clip_batch: int | None = None  # $REPRO_CLIP_BATCH: under clip, the batch sizes capped at this

    @classmethod
    def from_environ(cls, environ=None) -> "Control":
        env = os.environ if environ is None else environ
        clip = _clip(env)
        flag = lambda name: env.get(name, "") not in ("", "0")  # noqa: E731
        return cls(deadline=float(env["REPRO_DEADLINE"]) if env.get("REPRO_DEADLINE") else math.inf,
                   fit=flag("REPRO_FIT"), plan=env["REPRO_PLAN"] if flag("REPRO_PLAN") else None,
                   probe_steps=int(env.get("REPRO_PROBE_STEPS", "0") or 0),
                   rerun_stale=flag("REPRO_RERUN_STALE"), force=flag("REPRO_FORCE"),
                   cache_dir=env.get("REPRO_CACHE_DIR") or None, data_dir=env.get("REPRO_DATA_DIR") or None,
                   results_dir=env.get("REPRO_RESULTS_DIR") or None, execution=env.get("REPRO_EXECUTION_ID"),
                   checkpoint=env.get("REPRO_CHECKPOINT", "").strip() or None, clip=clip,
                   clip_batch=_clip_batch(env) if clip else None)  # without clip it does nothing

    @property
    def plan_mode(self) -> bool:
        """The runner only wants the units and their estimates (`repro plan`): nothing trains."""
        return self.plan is not None

    def time_left(self) -> float:
        return self.deadline - time.time()

    def probing(self, steps: int = 3) -> "Control":
        """Plan mode's probe of one unit: the loop times `steps` steps, then raises Probe."""
        return replace(self, probe_steps=self.probe_steps or steps)


def _clip(env) -> bool:
    """$REPRO_CLIP: true (1, true, yes, on) or false (unset, empty, 0, false, no, off); anything
    else is an error, not a silent full-size run."""
    value = env.get("REPRO_CLIP", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"REPRO_CLIP={env['REPRO_CLIP']!r}: set it to 1 to clip every run, or unset it")


def _clip_batch(env) -> int | None:
    """$REPRO_CLIP_BATCH as a positive int (None when unset: the profile's batch sizes)."""
    text = env.get("REPRO_CLIP_BATCH", "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"REPRO_CLIP_BATCH={text!r}: expected a positive number of sequences per "
                         "batch (e.g. 8), or unset it to keep the profile's batch sizes")
    return value


def ranks() -> tuple[int, int, int]:
    """torchrun's (rank, local rank, world size) of this process; (0, 0, 1) outside it. Its launcher
    sets them per process: read here alone, by the device and process group (runtime) and by the
    store (results: rank 0 alone writes)."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))
