"""How a study steers the training loop below it: the deadline, plan mode's probe, and the two
answers the loop gives back (TimeUp: stopped at the deadline with a checkpoint; Probe: timed a few
steps). The lowest layer: the loop (`train`) and the study (`study`) both import it, so the loop
never imports the study. The settings are read from the environment the runner sets at the top
(`repro run --hours`, `repro plan`), in this one module.
"""
from __future__ import annotations

import math
import os
import time


class TimeUp(Exception):
    """The study's deadline passed inside a unit; its training loop saved a checkpoint to resume."""


class Probe(Exception):
    """Plan mode: the training loop timed a few steps and stopped (seconds per step, steps)."""

    def __init__(self, seconds_per_step: float, steps: int):
        super().__init__(f"{seconds_per_step:.3f}s/step x {steps}")
        self.seconds_per_step, self.steps = seconds_per_step, steps


def deadline() -> float:
    text = os.environ.get("REPRO_DEADLINE")
    return float(text) if text else math.inf


def time_left() -> float:
    return deadline() - time.time()


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def plan_mode() -> bool:
    """The runner only wants the units and their estimates (`repro plan`): nothing trains."""
    return _flag("REPRO_PLAN")


def probe_steps() -> int:
    """Plan mode: how many timed steps a training loop runs (after one untimed) to estimate a unit."""
    return int(os.environ.get("REPRO_PROBE_STEPS", "0") or 0)
