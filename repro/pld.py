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
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from .analysis import steps_to_reach
from .metrics import main_metric
from .results import fewer_flops, format_pm, mean_hw, saving, summarize
from .train import Hook, _generator

VARIANTS = ("paper", "code")
_PLD_STREAM = 4  # tag of PLD's random stream in train._generator (1-3 are used by train.py)


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


def variant_table(num_layers: int, thetas=(0.5, 0.7, 1.0)) -> pd.DataFrame:
    """Paper vs official-code keep probabilities at a few theta: expected blocks computed, the
    share of blocks skipped, the bottom and top p_i, and E[gate x scale] of the top block (1 =
    its residual branches are unbiased in expectation; the code's off-by-one makes it > 1)."""
    rows = []
    for var in VARIANTS:
        for th in thetas:
            p, s = keep_probs(th, num_layers, var), branch_scales(th, num_layers, var)
            rows.append({"variant": var, "theta": th, "expected_layers": sum(p), "blocks_skipped": 1 - sum(p) / num_layers,
                         "p_bottom": p[0], "p_top": p[-1], "mean_gate_x_scale_top": p[-1] * s[-1]})
    return pd.DataFrame(rows)


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


# -- the pre-training comparison (pld_pretraining, pld_glue, repro.launch) ---------------------
# The paper compares a PostLN baseline at its usual rate with PreLN + PLD at a rate PostLN cannot
# use. We find each block's rates in a pilot, then run:
ARCHS = {"postln": ("post", False), "preln": ("pre", False), "preln_pld": ("pre", True)}  # block, PLD?
RUNS = {  # full run -> (arch, the arch whose best pilot rate it trains at)
    "postln": ("postln", "postln"),  # the baseline
    "preln": ("preln", "preln"),
    "preln_pld": ("preln_pld", "postln"),  # PLD at the baseline's rate
    "preln_pld_best": ("preln_pld", "preln_pld"),  # PLD at its own best rate: the paper's comparison
}
BASELINE = "postln"
REBOUND = 0.1  # nats: a pilot whose validation loss ends this far above its lowest has started to diverge
LEARNED_NATS = 1.0  # a model uses context when its loss is this far below the unigram plateau (e^1 = 2.7x perplexity)
PAPER_SPEEDUP, PAPER_TIME_SAVING = 2.5, 0.24


def recipe_schedule(steps: int) -> dict:
    """The shipped PLD recipe as TrainConfig overrides: warm-up 2%, then lr * 0.99^((t - w)/k),
    with k = steps / 200 so the decay over the run equals the recipe's over its 200k steps."""
    return {"schedule": "exp", "warmup": 0.02, "exp_decay": 0.99, "exp_every": max(1, steps // 200)}


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return arch


def pilot_table(records) -> pd.DataFrame:
    """One row per pilot run (arch, lr): its losses and whether it was stable. Stable = it never
    went non-finite, its final validation loss is below its starting (first logged) training loss,
    and no more than REBOUND above the lowest validation loss it reached (no rebound)."""
    rows = []
    for r in records:
        vals = [c["val_loss"] for c in r["curve"]]
        final, start = r["metrics"]["val_loss"], r["metrics"]["start_loss"]
        ok = r["status"] == "ok" and all(math.isfinite(v) for v in vals) and math.isfinite(final)
        rows.append({"arch": r["config"]["arch"], "lr": r["config"]["lr"], "status": r["status"],
                     "start_loss": start, "final_val_loss": final, "lowest_val_loss": min(vals, default=math.nan),
                     "stable": bool(ok and final < start and final <= min(vals) + REBOUND)})
    return pd.DataFrame(rows, columns=["arch", "lr", "status", "start_loss", "final_val_loss", "lowest_val_loss", "stable"])


def choose_rates(pilot: pd.DataFrame) -> dict:
    """Per arch: the best rate (lowest final pilot validation loss among the stable runs), the
    largest stable rate, and whether the best sits at an end of the grid (the grid may not bracket it)."""
    out = {}
    for arch, g in pilot.groupby("arch", sort=False):
        stable = g[g["stable"]]
        best = float(stable.loc[stable["final_val_loss"].idxmin(), "lr"]) if len(stable) else None
        out[arch] = {"best": best, "max_stable": float(stable["lr"].max()) if len(stable) else None,
                     "at_edge": None if best is None else bool(len(g) > 1 and best in (g["lr"].min(), g["lr"].max()))}
    return out


def speedup_table(runs: dict, paired_ratio: float | None = None) -> pd.DataFrame:
    """One row per full run (name -> record, None when missing): its final validation loss, time
    per sample, and the steps and training seconds it takes to reach the baseline's final
    validation loss (interpolated between evaluations, first crossing; None if it never does),
    with the speed-ups (the baseline's own steps or seconds to it / the run's: the baseline is 1
    by definition, even when its noisy curve touched its final loss early). `speedup_paired` =
    the step speed-up x the per-step cost ratio timed in adjacent pairs (dense / PLD gates; a
    dense PreLN step costs what a PostLN one does): not skewed by load that differs between the
    sessions the runs ran in."""
    base = runs.get(BASELINE)
    base_ok = base is not None and base["status"] == "ok"

    def reach(rec, x, target):
        c = rec["curve"]
        return steps_to_reach([p[x] for p in c], [p["val_loss"] for p in c], target)

    rows = []
    for name, rec in runs.items():
        arch = RUNS[name][0]
        row = {"run": name, "arch": arch, "lr": rec["config"]["lr"] if rec else None,
               "status": rec["status"] if rec else "missing"}
        if rec is not None:
            m = rec["metrics"]
            row |= {"final_val_loss": m["val_loss"], "steps": rec["steps_done"], "train_seconds": m["train_seconds"],
                    "time_per_sample_ms": 1e3 * m["time_per_sample"]}
        if rec is not None and base_ok:
            target = base["metrics"]["val_loss"]
            s, t = reach(rec, "step", target), reach(rec, "seconds", target)
            s0, t0 = reach(base, "step", target), reach(base, "seconds", target)
            cost = paired_ratio if ARCHS[arch][1] else 1.0
            row |= {"steps_to_target": s, "seconds_to_target": t,
                    "speedup_steps": s0 / s if s else None, "speedup_time": t0 / t if t else None,
                    "speedup_paired": s0 / s / cost if s and cost else None,
                    "time_per_sample_saving": 1 - m["time_per_sample"] / base["metrics"]["time_per_sample"]}
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def speedup_text(row: dict | None) -> str:
    """One speedup_table row in words (the notebook's conclusion and the report's row)."""
    if row is None or row["status"] != "ok":
        return "not run" if row is None else row["status"]
    num = lambda k: None if row.get(k) is None or not math.isfinite(row[k]) else row[k]  # noqa: E731
    if num("speedup_steps") is None:
        return f"never reached the target (final validation loss {row['final_val_loss']:.3f})"
    speeds = [f"{num(k):.2f}x {label}" for k, label in (("speedup_paired", "with paired step costs"),
              ("speedup_time", "whole-run wall-clock"), ("speedup_steps", "in steps")) if num(k) is not None]
    return (f"reached the target in {row['steps_to_target']:.0f} steps: " + ", ".join(speeds)
            + (f"; {100 * num('time_per_sample_saving'):.0f}% less time per sample" if num("time_per_sample_saving") is not None else ""))


def uses_context(loss: float | None, unigram: float | None) -> bool | None:
    """Has a model with this validation loss learned more than token frequencies: at least
    LEARNED_NATS below the unigram plateau? None when either number is missing."""
    if loss is None or unigram is None or not math.isfinite(loss):
        return None
    return unigram - loss >= LEARNED_NATS


def time_savings(table: pd.DataFrame, runs: dict, timing: dict | None) -> dict:
    """PLD's time-per-sample saving against PreLN (the paper's 24%): from the paired step timing
    (1 - gated / dense) and from the two whole runs (PLD at the baseline's rate vs PreLN), with
    the share of blocks the PLD run computed. Empty when a part is missing."""
    if not timing or any(runs.get(n) is None for n in ("preln", "preln_pld")):
        return {}
    tps = table["time_per_sample_ms"]
    return {"pld_time_per_sample_saving_paired": 1 - timing["ratio"],
            "pld_time_per_sample_saving_vs_preln": 1 - tps["preln_pld"] / tps["preln"],
            "pld_compute_fraction": runs["preln_pld"]["pld_compute"],
            "paired_step_s": {"dense": timing["dense_s"], "pld": timing["gated_s"]}}


def keep_table(recs: dict) -> pd.DataFrame:
    """Per variant (recs: variant -> pld_schedule record) and layer: the realized keep frequency,
    its expectation, the binomial sd and z = (realized - expected) / sd."""
    rows = [{"variant": v, "layer": i + 1, "realized": k["realized"][i], "expected": k["expected"][i], "binomial_sd": k["std"][i]}
            for v, r in recs.items() for k in [r["keep"]] for i in range(len(k["realized"]))]
    df = pd.DataFrame(rows, columns=["variant", "layer", "realized", "expected", "binomial_sd"])
    df["z"] = (df["realized"] - df["expected"]) / df["binomial_sd"].where(df["binomial_sd"] > 0)
    return df


def schedule_timing(rec: dict) -> dict:
    """PLD's time saving in one pld_schedule unit (a scheduled run of one variant; its record
    holds the paired step times of the run's gates against dense steps, and their FLOPs):
    time_saving = mean over the pairs of 1 - gated / dense, with its Student-t half-width (hw);
    median_saving = 1 - the median pair ratio (analysis.paired_step_times); flop_saving = the
    ideal saving, 1 - the timed gates' training FLOPs over dense (embeddings, MLM head and
    optimizer are never dropped); efficiency = time_saving / flop_saving; vs_paper =
    time_saving - the paper's 24%; blocks skipped, realized over the run and expected at
    theta_bar; the realized keep frequencies' largest deviation from p_i, in binomial sd."""
    t, c, k = rec["timing"], rec["config"], rec["keep"]
    saving, hw, n = mean_hw([1 - g / d for g, d in zip(t["gated"], t["dense"])])
    flop_saving = 1 - rec["flops"]["timed_fraction"]
    z = keep_table({c["variant"]: rec})["z"].abs()
    return {"variant": c["variant"], "shape": f"{c['layers']} x {c['hidden']}", "layers": c["layers"],
            "time_saving": saving, "hw": hw, "pairs": n, "median_saving": 1 - t["ratio"],
            "flop_saving": flop_saving, "efficiency": saving / flop_saving if flop_saving > 0 else math.nan,
            "vs_paper": saving - PAPER_TIME_SAVING, "micro_batches": k["n"],
            "blocks_skipped": 1 - k["compute_realized"],
            "blocks_skipped_expected": 1 - expected_compute_fraction(c["theta_bar"], c["layers"], c["variant"]),
            "max_abs_z": float(z.max()) if z.notna().any() else 0.0}


def saving_text(row: dict) -> str:
    """One schedule_timing row in words (the notebook's conclusion and the report's row); a
    negative saving is "more time", never a negative "less"."""
    return (f"{saving(100 * row['time_saving'], 100 * row['hw'])} per step ({row['pairs']} pairs; median pair "
            f"{saving(100 * row['median_saving'])}) vs an ideal {fewer_flops(100 * row['flop_saving'])} (time/FLOP "
            f"saving {row['efficiency']:.2f}); {100 * row['blocks_skipped']:.1f}% of the blocks skipped "
            f"({100 * row['blocks_skipped_expected']:.1f}% expected at theta_bar)")


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


PAPER_TOKENS = 200_000 * 4096 * 128  # the paper's pre-training: 200k steps x 4096 sequences x 128 tokens


def pretraining_tokens(P) -> int:
    """Tokens one full pre-training run of a (pld_profile) Profile sees."""
    return P.pretrain_steps * P.pretrain_batch * P.grad_accum * P.seq_len


def models_to_finetune(runs: dict) -> tuple[dict, list]:
    """The pre-trained models pld_glue fine-tunes: the baseline and PLD at the baseline's rate and
    at its own best (one model when those rates are equal), name -> record (None: not trained
    yet); and the names of those that diverged, which are not fine-tuned."""
    pre = {n: runs[n] for n in (BASELINE, "preln_pld", "preln_pld_best")}
    if pre["preln_pld_best"] is not None and pre["preln_pld_best"] is pre["preln_pld"]:
        pre.pop("preln_pld_best")
    diverged = [n for n, r in pre.items() if r is not None and r["status"] == "diverged"]
    return {n: r for n, r in pre.items() if n not in diverged}, diverged


def glue_table(runs: pd.DataFrame, methods, tasks, label: str, chance: dict | None = None) -> pd.DataFrame:
    """Our GLUE dev scores (mean ± 95% t-interval over seeds) in the paper's column layout, one
    row per method ("ours (label): method"), the paper's rows verbatim, and `chance` (task -> the
    score of an input-blind predictor) as a last row."""
    summ = summarize(runs, by=("task", "method"))
    cell = {(t, m, k): (mean, hw) for t, m, k, mean, hw in summ[["task", "method", "metric", "mean", "hw"]].itertuples(index=False)}
    table = {}
    for m in methods:
        row = {}
        for col in PAPER_GLUE_COLUMNS:
            task = next((t for t in tasks if PAPER_GLUE_METRICS.get(t, ("",))[0] == col), None)
            keys = PAPER_GLUE_METRICS[task][1] if task else ()
            row[col] = "/".join(format_pm(*cell.get((task, m, k), (math.nan, math.nan))) for k in keys) or "–"
        mains = [cell[t, m, main_metric(t)][0] for t in tasks if (t, m, main_metric(t)) in cell]
        row["avg of tasks run"] = f"{sum(mains) / len(mains):.1f}" if mains else "–"
        table[f"ours ({label}): {m}"] = row
    for name, values in PAPER_GLUE.items():
        table[f"paper: {name}"] = dict(zip(PAPER_GLUE_COLUMNS, values)) | {"avg of tasks run": ""}
    if chance:
        table["input-blind predictor"] = {PAPER_GLUE_METRICS[t][0]: f"{v:.1f}" for t, v in chance.items() if t in PAPER_GLUE_METRICS}
    return pd.DataFrame(table).T.fillna("")


def glue_deltas(runs: pd.DataFrame, baseline: str, methods, tasks) -> pd.DataFrame:
    """Per method (not the baseline), task and metric: the mean difference method - baseline over
    the seeds both ran (paired: the same training subset and order), its 95% t half-width, and
    the paper's PLD - BERT-base (reimpl.) on that metric."""
    rows = []
    for m in methods:
        for t in tasks if m != baseline else ():
            g = runs[runs["task"] == t]
            for k in PAPER_GLUE_METRICS.get(t, ("", (main_metric(t),)))[1]:
                col = f"metric.{k}"  # absent while no run of the task is recorded (a partial study)
                wide = g.pivot_table(index="seed", columns="method", values=col) if col in g else pd.DataFrame()
                d = (wide[m] - wide[baseline]).dropna() if {m, baseline} <= set(wide.columns) else []
                mean, hw, n = mean_hw(list(d))
                pld, base = paper_glue_value("PLD", t, k), paper_glue_value("BERT-base (reimpl.)", t, k)
                rows.append({"method": m, "task": t, "metric": k, "main": k == main_metric(t), "delta": mean, "hw": hw,
                             "n_seeds": n, "paper_delta": None if pld is None else round(pld - base, 1)})
    return pd.DataFrame(rows, columns=["method", "task", "metric", "main", "delta", "hw", "n_seeds", "paper_delta"])
