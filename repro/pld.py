"""Progressive Layer Dropping (Zhang & He, NeurIPS 2020), on the PreLN `repro.model.Bert`.

Each training micro-batch, block i (1-indexed, L blocks) is kept with probability

    theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar        temporal: 1 at t = 0, -> theta_bar
    p_i(t)   = 1 - (i / L) * (1 - theta(t))                         depth: the top block is kept w.p. theta

A kept block runs with both residual branches divided by p_i (h = x + Attn(LN(x)) / p_i,
out = h + FFN(LN(h)) / p_i), a dropped one is never called (no compute, no graph, no gradient):
`Bert.encode(gates=[...])` does both. Evaluation and fine-tuning run every block, unscaled.

variant="code" is what the official DeepSpeedExamples code does instead (bing_bert,
modelingpreln_layerdrop.py): it samples 0-indexed block i with 1 - i(1 - theta)/L (block 0 is
never dropped) and then rescales with the value one step further, 1 - (i+1)(1 - theta)/L, i.e.
the paper's p of that block. So the code keeps more blocks than the paper (9.25 vs 8.75 of 12 at
theta = 0.5) and E[gate * scale] > 1 for every block: an off-by-one, kept here to be measured.

Gates are drawn from a generator seeded by (seed, step, micro-batch) only, so every data-parallel
rank draws the same gates without communicating, and a resumed run draws what it would have.

At the end: what the paper reports and ships (its headline numbers, its GLUE table and fine-tuning
rates, the recipe's learning-rate schedule). The experiments built on all this (run definitions,
the pilot's choice of rate, tables and sentences) are `repro.pld_runs`.
"""
from __future__ import annotations

import math

import torch

from .runtime import _generator
from .train import Hook

VARIANTS = ("paper", "code")
_PLD_STREAM = 4  # tag of PLD's random stream in runtime._generator (1-3 are the loop's)


def theta(step: float, theta_bar: float = 0.5, gamma: float = 0.001) -> float:
    """Temporal schedule: the keep probability of the top block at optimizer step `step`."""
    return (1 - theta_bar) * math.exp(-gamma * step) + theta_bar


def _check(variant: str):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def keep_probs(theta: float, num_layers: int, variant: str = "paper") -> list[float]:
    """Probability that each block (bottom first) is kept at this theta."""
    _check(variant)
    L = num_layers
    if variant == "paper":  # 1-indexed: p_i = 1 - (i/L)(1 - theta), i = 1..L
        return [1 - (i / L) * (1 - theta) for i in range(1, L + 1)]
    return [1 - i * (1 - theta) / L for i in range(L)]  # code: 0-indexed, block 0 always kept


def branch_scales(theta: float, num_layers: int, variant: str = "paper") -> list[float]:
    """Multiplier of a kept block's residual branches: 1/p_i. The code divides by the *next*
    block's sampling probability (its p is decremented before use), 1 - (i+1)(1-theta)/L."""
    _check(variant)
    L = num_layers
    if variant == "paper":
        return [1 / p for p in keep_probs(theta, L, "paper")]
    return [1 / (1 - (i + 1) * (1 - theta) / L) for i in range(L)]


def expected_layers(theta: float, num_layers: int, variant: str = "paper") -> float:
    """Expected number of blocks computed per micro-batch, sum_i p_i."""
    return sum(keep_probs(theta, num_layers, variant))


def expected_compute_fraction(theta: float, num_layers: int, variant: str = "paper") -> float:
    """Expected fraction of the encoder's blocks computed (blocks have equal cost): mean p_i."""
    return expected_layers(theta, num_layers, variant) / num_layers


def heuristic_gamma(total_steps: int) -> float:
    """gamma = 100 / T for a T-step run: theta - theta_bar = (1 - theta_bar) exp(-100 t / T), under
    1% of its start after 5% of the run (the paper's 200k steps with gamma = 0.001: after 2.5%)."""
    return 100.0 / total_steps


class PLD(Hook):
    """The PLD training hook: `train(..., hooks=[PLD(theta_bar=0.5, gamma=1e-3)])`.

    Every call of forward_kwargs (one per micro-batch) draws one Bernoulli gate per block and
    returns {"gates": [None (dropped) or 1/p_i (kept), ...]}. The realized gates are recorded as
    one bit string per micro-batch ("1" = kept, bottom block first) in `self.record`, with the
    step of each in `self.record_steps`; both travel in state_dict, so a resumed run keeps them.
    """

    def __init__(self, theta_bar: float = 0.5, gamma: float = 0.001, variant: str = "paper",
                 seed: int = 0, record: bool = True):
        _check(variant)
        if not 0 < theta_bar <= 1:
            raise ValueError(f"theta_bar must be in (0, 1], got {theta_bar}")
        self.theta_bar, self.gamma, self.variant, self.seed = theta_bar, gamma, variant, seed
        self.keep_record = record
        self.record: list[str] = []
        self.record_steps: list[int] = []

    def theta(self, step: int) -> float:
        return theta(step, self.theta_bar, self.gamma)

    def probs(self, step: int, num_layers: int) -> list[float]:
        return keep_probs(self.theta(step), num_layers, self.variant)

    def gates(self, step: int, micro: int, num_layers: int) -> list[float | None]:
        """The gates of (step, micro-batch): a pure function of (seed, step, micro)."""
        t = self.theta(step)
        p = torch.tensor(keep_probs(t, num_layers, self.variant), dtype=torch.float64)
        u = torch.rand(num_layers, generator=_generator(self.seed, _PLD_STREAM, step, micro),
                       dtype=torch.float64)
        keep = (u < p).tolist()  # G_i ~ Bernoulli(p_i); u in [0, 1) so p_i = 1 always keeps
        scales = branch_scales(t, num_layers, self.variant)
        return [s if k else None for k, s in zip(keep, scales)]

    # -- Hook ----------------------------------------------------------------------------
    def forward_kwargs(self, loop) -> dict:
        if not loop.model.training:  # PLD is a training-time regulariser only
            return {}
        g = self.gates(loop.step, loop.micro, len(loop.model.blocks))
        if self.keep_record:
            self.record.append("".join("0" if s is None else "1" for s in g))
            self.record_steps.append(loop.step)
        return {"gates": g}

    def state_dict(self) -> dict:
        return {"theta_bar": self.theta_bar, "gamma": self.gamma, "variant": self.variant,
                "seed": self.seed, "record": list(self.record), "record_steps": list(self.record_steps)}

    def load_state_dict(self, state: dict) -> None:
        mine = (self.theta_bar, self.gamma, self.variant, self.seed)
        theirs = tuple(state[k] for k in ("theta_bar", "gamma", "variant", "seed"))
        if mine != theirs:  # resuming with another schedule would silently mix two experiments
            raise ValueError(f"checkpoint was made with PLD{theirs}, this run is PLD{mine}")
        self.record, self.record_steps = list(state["record"]), list(state["record_steps"])

    # -- what happened ---------------------------------------------------------------------
    def replay(self, index: int, num_layers: int) -> list[float | None]:
        """The gates of the `index`-th recorded micro-batch, drawn again (scales included) by
        `gates`, a pure function of (seed, step, micro): what the run computed, for timing it."""
        step = self.record_steps[index]
        g = self.gates(step, index - self.record_steps.index(step), num_layers)
        if "".join("0" if s is None else "1" for s in g) != self.record[index]:
            raise RuntimeError(f"micro-batch {index} recorded {self.record[index]}, the gates draw differently: "
                               "the record is not this hook's (another seed, schedule or variant)")
        return g

    def keep_matrix(self) -> torch.Tensor:
        """Realized gates, [micro-batches, layers] of 0/1 (1 = block computed)."""
        return torch.tensor([[c == "1" for c in row] for row in self.record], dtype=torch.float64)

    def expected_matrix(self, num_layers: int) -> torch.Tensor:
        """p_i(t) at each recorded micro-batch, same shape as keep_matrix()."""
        return torch.tensor([self.probs(s, num_layers) for s in self.record_steps], dtype=torch.float64)

    def realized_vs_expected(self, num_layers: int) -> dict:
        """Per layer: realized keep frequency, its expectation (mean p_i(t) over the recorded
        micro-batches) and the binomial standard deviation of the frequency; overall compute
        fraction realized and expected."""
        K, P = self.keep_matrix(), self.expected_matrix(num_layers)
        n = K.shape[0]
        return {"n": n, "realized": K.mean(0).tolist(), "expected": P.mean(0).tolist(),
                "std": ((P * (1 - P)).sum(0).sqrt() / n).tolist(),
                "compute_realized": K.mean().item(), "compute_expected": P.mean().item()}


# -- what the paper reports and ships ------------------------------------------------------------
# pre-training: 2.5x faster to the baseline's quality, 24% less time per sample
PAPER_SPEEDUP, PAPER_TIME_SAVING = 2.5, 0.24
PAPER_TOKENS = 200_000 * 4096 * 128  # the paper's pre-training: 200k steps x 4096 sequences x 128 tokens


def recipe_schedule(steps: int) -> dict:
    """The shipped PLD recipe as TrainConfig overrides: warm-up 2%, then lr * 0.99^((t - w)/k),
    with k = steps / 200 so the decay over the run equals the recipe's over its 200k steps."""
    return {"schedule": "exp", "warmup": 0.02, "exp_decay": 0.99, "exp_every": max(1, steps // 200)}


# GLUE dev results published with the official implementation (DESIGN.md §1), verbatim; the
# last row is the fine-tuning learning rate the paper used per task.
PAPER_GLUE_COLUMNS = ("RTE", "MRPC F1/Acc", "STS-B P/S", "CoLA", "SST-2", "QNLI", "QQP F1/Acc", "MNLI m/mm", "GLUE")
PAPER_GLUE = {
    "BERT-base (original)": ("66.4", "88.9/84.8", "87.1/89.2", "52.1", "93.5", "90.5", "71.2/89.2", "84.6/83.4", "80.7"),
    "BERT-base (reimpl.)": ("67.8", "88.0/86.0", "89.5/89.2", "52.5", "91.2", "87.1", "89.0/90.6", "82.5/83.4", "82.1"),
    "PLD": ("69.3", "86.6/84.3", "90.0/89.6", "55.8", "91.6", "90.7", "89.6/91.2", "84.1/83.8", "82.9"),
    "fine-tune lr": ("7e-5", "9e-5", "7e-5", "5e-5", "7e-5", "9e-5", "2e-4", "3e-5", ""),
}
# our task name -> (paper column, the metrics that column shows, in its order)
PAPER_GLUE_METRICS = {"RTE": ("RTE", ("accuracy",)), "MRPC": ("MRPC F1/Acc", ("f1", "accuracy")),
                      "STS-B": ("STS-B P/S", ("pearson", "spearman")), "CoLA": ("CoLA", ("mcc",)),
                      "SST-2": ("SST-2", ("accuracy",)), "QNLI": ("QNLI", ("accuracy",)),
                      "QQP": ("QQP F1/Acc", ("f1", "accuracy"))}


def paper_glue_value(row: str, task: str, metric: str) -> float | None:
    """A published number as a float, e.g. paper_glue_value("PLD", "MRPC", "accuracy") = 84.3."""
    if task not in PAPER_GLUE_METRICS:
        return None
    col, metrics = PAPER_GLUE_METRICS[task]
    if metric not in metrics:
        return None
    cell = PAPER_GLUE[row][PAPER_GLUE_COLUMNS.index(col)]
    return float(cell.split("/")[metrics.index(metric)])


def paper_finetune_lr(task: str) -> float | None:
    """The fine-tuning learning rate the paper used for `task` (DESIGN.md §1), or None."""
    if task not in PAPER_GLUE_METRICS:
        return None
    return float(PAPER_GLUE["fine-tune lr"][PAPER_GLUE_COLUMNS.index(PAPER_GLUE_METRICS[task][0])])
