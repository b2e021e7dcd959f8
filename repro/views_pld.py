"""What the PLD notebooks show beside their tables: their figures, and the sentences of pld_glue's
conclusion. Drawn from the tables and records the notebooks already hold: nothing here computes a
number a record or a summary keeps (repro.fingerprint lists this file as not numeric).

Figures (each returns the matplotlib figure; the notebook saves it):
- pld_schedule: `schedule` (theta(t), p_i(t), expected depth), `realized_keep`, `time_saving`;
- gradient_norms: `grad_norms` (per layer at init), `trained` (after training);
- pld_pretraining: `lr_pilot`, `val_loss`;
- pld_glue: `glue_scores`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import pld
from .results import format_pm


def _plt():
    import matplotlib.pyplot as plt  # cost: only where a figure is drawn
    return plt


# ----------------------------------------------------------------------------- pld_schedule

def plot_schedule(L: int, horizon: int, theta_bars, gammas):
    """theta(t) for several theta_bar and gamma, p_i(t) of both variants, blocks computed in
    expectation against theta and the share skipped by depth (the analytic figure)."""
    plt, t = _plt(), np.linspace(0, horizon, 501)  # the curves are smooth: 501 points draw them
    fig, axes = plt.subplots(2, 3, figsize=(16, 7.5), layout="constrained")
    for tb in theta_bars:
        axes[0, 0].plot(t, [pld.theta(s, tb, 0.001) for s in t], label=f"theta_bar = {tb}")
    for g in gammas:
        axes[0, 1].plot(t, [pld.theta(s, 0.5, g) for s in t], label=f"gamma = {g:g}")
    axes[0, 0].set(title="theta(t), gamma = 0.001 (official default)", ylabel="theta (keep probability of the top block)")
    axes[0, 1].set(title="theta(t), theta_bar = 0.5")
    for ax, var in zip(axes[1, :2], pld.VARIANTS):
        grid = np.array([pld.keep_probs(pld.theta(s, 0.5, 0.001), L, var) for s in t]).T  # [layer, step]
        im = ax.imshow(grid, aspect="auto", origin="lower", vmin=0.5, vmax=1.0, extent=(0, horizon, 0.5, L + 0.5))
        ax.set(title=f"p_i(t), {var} (theta_bar 0.5, gamma 0.001)", ylabel="layer i (1 = next to the embeddings)")
    fig.colorbar(im, ax=axes[1, :2], label="keep probability p_i(t)")
    depths, thetas = np.arange(2, 25), np.linspace(0.0, 1.0, 101)
    for var in pld.VARIANTS:
        axes[0, 2].plot(thetas, [pld.expected_layers(th, L, var) for th in thetas], label=var)
        axes[1, 2].plot(depths, [100 * (1 - pld.expected_compute_fraction(0.5, d, var)) for d in depths], marker=".", label=var)
    axes[0, 2].set(xlabel="theta", ylabel=f"expected blocks computed (of {L})", title="Expected depth, paper vs code")
    axes[1, 2].set(xlabel="layers L", ylabel="% of the blocks skipped", title="Blocks skipped at theta = 0.5, by depth")
    for ax in axes.flat:
        ax.set_xlabel(ax.get_xlabel() or "optimizer step t")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def plot_realized_keep(keep: pd.DataFrame, shown: dict):
    """Per layer, the share of micro-batches that computed the block against its expectation
    (+- 2 binomial sd), per variant; and the gates `shown` (one run's record) drew."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
    for j, (v, g) in enumerate(keep.groupby("variant", sort=False)):
        axes[0].bar(g["layer"] + 0.4 * j - 0.2, g["realized"], width=0.4, color=f"C{j}", alpha=0.6, label=f"{v}: realized")
        axes[0].errorbar(g["layer"] + 0.4 * j - 0.2, g["expected"], yerr=2 * g["binomial_sd"], fmt="o", ms=3,
                         color="k", label="expected, +- 2 sd" if j else None)
    axes[0].set(xlabel="layer i (1 = next to the embeddings)", ylabel="share of micro-batches computed", ylim=(0, 1.1),
                title="Realized keep frequency per layer"), axes[0].legend(fontsize=8, loc="lower left")
    K = np.array([[c == "1" for c in row] for row in shown["gates"]], dtype=float).T  # [layer, micro-batch]
    axes[1].imshow(K, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest", extent=(0, K.shape[1], 0.5, len(K) + 0.5))
    axes[1].set(xlabel="micro-batch", ylabel="layer i", yticks=range(1, len(K) + 1),
                title=f"Gates drawn, {shown['config']['variant']} (black = computed)")
    fig.tight_layout()
    return fig


def plot_time_saving(timing: pd.DataFrame, theta_bar: float, profile: str):
    """Time saved per step (95% interval) beside the ideal FLOP saving, the blocks skipped and the
    paper's 24%, per variant."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(timing))
    ax.bar(x - 0.25, 100 * timing["time_saving"], 0.25, yerr=100 * timing["hw"].fillna(0), capsize=4, label="time saved per step")
    ax.bar(x, 100 * timing["flop_saving"], 0.25, label="ideal: training FLOPs saved")
    ax.bar(x + 0.25, 100 * timing["blocks_skipped"], 0.25, label="blocks skipped")
    ax.axhline(100 * pld.PAPER_TIME_SAVING, color="k", ls="--", lw=1, label="paper: 24% less time per sample")
    ax.set_xticks(x, [f"{v} ({s})" for v, s in zip(timing["variant"], timing["shape"])])
    ax.set(ylabel="% of the dense step", title=f"PLD's saving, theta_bar {theta_bar} ({profile} profile)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- gradient_norms

def plot_grad_norms(init: dict, shapes):
    """Per shape, the mean over seeds of each block's gradient norms at initialisation (parameters,
    input), PostLN against PreLN. `init`: {(layers, hidden, ln, seed): record or None}."""
    plt = _plt()
    fig, axes = plt.subplots(2, max(1, len(shapes)), figsize=(4 * max(1, len(shapes)), 7), squeeze=False)
    for col, (L, H) in enumerate(shapes):
        for row, (key, what) in enumerate((("param", "||dL/d(block parameters)||"), ("input", "||dL/d(block input)||"))):
            ax = axes[row, col]
            for i, ln in enumerate(("post", "pre")):
                got = [r["stages"]["init"][key] for (l2, h2, ln2, s), r in init.items() if r and (l2, h2, ln2) == (L, H, ln)]
                if got:
                    mean = [sum(v[i_] for v in got) / len(got) for i_ in range(L)]
                    ax.plot(range(1, L + 1), mean, marker="o", ms=3, color=f"C{i}", label=f"{ln.capitalize()}LN ({len(got)} seeds)")
            ax.set(yscale="log", title=f"{L} x {H}, at init: {what}", xlabel="layer (1 = next to the embeddings)",
                   ylabel="L2 norm (log)")
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_trained(trained: dict, steps: int):
    """After `steps` of training, per block: the gradient norms (parameters, input) and the cosine of
    the block's input and output. `trained`: {ln: record}."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for i, (ln, r) in enumerate(trained.items()):
        st = r["stages"]["trained"]
        L = len(st["param"])
        axes[0].plot(range(1, L + 1), st["param"], marker="o", color=f"C{i}", label=f"{ln.capitalize()}LN")
        axes[1].plot(range(1, L + 1), st["input"], marker="o", color=f"C{i}", label=f"{ln.capitalize()}LN")
        axes[2].plot(range(1, L + 1), st["cosine"], marker="o", color=f"C{i}", label=f"{ln.capitalize()}LN")
    for ax, t in zip(axes, ("||dL/d(block parameters)||", "||dL/d(block input)||", "cosine(block input, output)")):
        ax.set(title=f"{t}, after {steps} steps", xlabel="layer")
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- pld_pretraining

def plot_pilot(pilot: pd.DataFrame, chosen: dict, unigram: float | None, pilot_steps: int, lrs):
    """The learning-rate pilot: final validation loss per rate and arm (x: unstable), the unigram plateau."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (arch, g) in enumerate(pilot.groupby("arch", sort=False)):
        best = chosen.get(arch, {}).get("best")
        note = f"best {best:g}" if best else "no stable rate" if chosen else "pilot not complete"
        ax.plot(g["lr"], g["final_val_loss"], marker="o", color=f"C{i}", label=f"{arch} ({note})")
        bad = g[~g["stable"]]  # unstable: drawn at their final loss, or their start when it went non-finite
        ax.scatter(bad["lr"], bad["final_val_loss"].fillna(bad["start_loss"]), marker="x", s=80, color=f"C{i}", zorder=3)
    if unigram:
        ax.axhline(unigram, color="grey", ls=":", label=f"unigram plateau {unigram:.2f}")
    ax.set(xscale="log", xlabel="peak learning rate", ylabel=f"validation MLM loss after {pilot_steps} steps (nats)",
           title="Learning-rate pilot (x: unstable)")
    ax.set_xticks(lrs, [f"{x:g}" for x in lrs])  # the grid's rates, not log-axis minor labels
    ax.minorticks_off()
    ax.legend(fontsize=8)
    return fig


def plot_val_loss(runs: dict, target: float | None, unigram: float | None, title: str):
    """Validation loss of each full run against steps and against training seconds, with the
    baseline's final loss (the target) and the unigram plateau."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for i, (n, r) in enumerate(runs.items()):
        c = pd.DataFrame(r["curve"])
        label = f"{n} (lr {r['config']['lr']:g})" + (" DIVERGED" if r["status"] == "diverged" else "")
        for ax, x in zip(axes, ("step", "seconds")):
            ax.plot(c[x], c["val_loss"], marker=".", color=f"C{i}", label=label)
    for ax, x in zip(axes, ("optimizer step", "training time (s, wall-clock minus evaluation)")):
        for y, style, text in ((target, "--", "target: baseline's final"), (unigram, ":", "unigram plateau")):
            if y:
                ax.axhline(y, color="grey", ls=style, label=f"{text} {y:.3f}")
        ax.set(xlabel=x, ylabel="validation MLM loss (nats/token)")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- pld_glue

def plot_glue_scores(main: pd.DataFrame, methods, tasks, chance: dict, zero_shot: dict, profile: str):
    """Each model's main dev metric per task (mean +- 95% interval over seeds), the input-blind
    predictor, and each model's zero-shot score where one is recorded."""
    from .metrics import main_metric

    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.5, 1.8 + 1.8 * len(tasks)), 3.8))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        g = main[main["method"] == m].set_index("task").reindex(tasks)
        ax.bar(np.arange(len(tasks)) + i * width, g["mean"], width, yerr=g["hw"].fillna(0), capsize=3, label=m)
    ax.scatter(np.arange(len(tasks)) + width * (len(methods) - 1) / 2, [chance[t] for t in tasks], marker="_", s=600,
               color="k", zorder=3, label="input-blind predictor")
    zs = [(tasks.index(t) + i * width, v) for i, m in enumerate(methods) for t, v in zero_shot.get(m, {}).items()]
    if zs:  # each model's own score before fine-tuning, over its bar
        ax.scatter(*zip(*zs), marker="*", s=90, color="k", zorder=4, label="zero-shot (mean-pooled cosine)")
    ax.set_xticks(np.arange(len(tasks)) + width * (len(methods) - 1) / 2)
    ax.set_xticklabels([f"{t}\n({main_metric(t)})" for t in tasks])
    ax.set_ylabel("dev score (0-100)")
    ax.set_title(f"GLUE dev after fine-tuning, mean ± 95% interval over seeds ({profile} profile)")
    ax.legend(fontsize=8)
    return fig


def glue_conclusion(state: dict, deltas: pd.DataFrame | None, baseline: str) -> list[str]:
    """pld_glue's conclusion: partial or not (the study's status), then one line per task and PLD
    model: it minus the baseline on the main metric, paired by seed, with its verdict and the
    paper's difference."""
    lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} runs (pre-training included).**"]
    for _, d in deltas[deltas["main"]].iterrows() if deltas is not None else ():
        verdict = ("no interval (one seed)" if not np.isfinite(d["hw"]) else "no significant difference"
                   if abs(d["delta"]) <= d["hw"] else "PLD better" if d["delta"] > 0 else "PLD worse")
        paper = "" if d["paper_delta"] is None else f"; paper: {d['paper_delta']:+.1f}"
        lines.append(f"- `{d['method']}` - `{baseline}`, {d['task']} {d['metric']}: "
                     f"{format_pm(d['delta'], d['hw'], signed=True)} ({verdict}{paper}).")
    return lines
