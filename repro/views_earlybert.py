"""What the EarlyBERT notebooks show beside their tables: figures, earlybert_glue's tables of its
controls, its summary and the sentences of its conclusion. Drawn from the tables and records the
notebooks already hold: nothing here computes a number a record keeps (repro.fingerprint lists
this file as not numeric); the summary is what the notebook writes to summary.json.

- earlybert_glue: `glue_controls` (the controls, the null search, the trend over ticket size, the
  earlier recipe: each a table to save and show), `glue_summary`, `glue_conclusion`;
- earlybert_pretraining: `plot_pretraining`;
- ticket_mask_distance: `plot_detector_traces`.
"""
from __future__ import annotations

import pandas as pd

from . import earlybert_controls as ebc
from . import earlybert_tables as ebt
from .metrics import main_metric
from .results import format_pm, mean_hw


def _plt():
    import matplotlib.pyplot as plt  # cost: only where a figure is drawn
    return plt


# ----------------------------------------------------------------------------- earlybert_glue

def glue_controls(runs: pd.DataFrame, records: list, checks: list, searches: list, by_size: dict, earlier: list,
                  tickets, R, draw: str, profile: str) -> list[tuple]:
    """(name, table to save, table to show, figure or None) of each table of earlybert_glue's
    controls section that has rows: `controls`, `null_search`, `sizes`, `earlier_recipe`."""
    if not len(runs):
        return []
    control = ebt.shown(ebc.control_table(checks + [r for r in records if r and r["method"] in tickets],
                                          runs[runs.method == "dense"]))
    null = ebc.null_search_table(searches)
    shown = [("controls", control, control, None), ("null_search", null, null, None)]
    trend = ebc.size_table(ebc.size_runs((R.head_ratio, R.ffn_ratio), runs, by_size, records))
    if len(trend):
        fig = ebc.plot_sizes(trend, f"EarlyBERT vs random ticket over ticket size, {profile} profile")
        shown.append(("sizes", trend, trend, fig))
    was = ebt.earlier_recipe(earlier, [], draw)
    if was is not None:
        shown.append(("earlier_recipe", ebt.shown(was), ebt.shown(was)[["n", "metric", "value"]], None))
    return shown


def glue_summary(runs: pd.DataFrame, searches: list, draw: str, tickets, R, P, tasks, controls, sizes) -> dict:
    """earlybert_glue's summary.json (the report reads it): the recipe, the searches' draw points,
    and for the EarlyBERT ticket the mean savings and the early-bird test's paired differences."""
    summary = {"earlybert": draw, "tickets": tickets, "recipe": R.search_config() | {
                   "ticket_lr": R.ticket_lr, "ticket_epochs": R.ticket_epochs, "ticket_warmup": R.ticket_warmup},
               "controls": controls, "sizes": sizes, "dense_epochs": P.finetune_epochs,
               "paper_time_saving_pct": list(ebt.PAPER_TIME_SAVING),
               "n_train": {t: P.max_train(t) for t in tasks}, "n_eval": P.max_eval_examples, "checkpoint": P.checkpoint,
               "searches": [{"task": r["task"], "seed": r["seed"], "steps_per_epoch": r["steps_per_epoch"],
                             **{k: t["fraction"] for k, t in r["tickets"].items()}, "found": r["metrics"]["found"]}
                            for r in searches if r["method"] == "search"]}
    if len(runs) and draw in set(runs.method):
        e = runs[runs.method == draw]
        summary |= {f"mean_{k}": dict(zip(("mean", "hw", "n"), mean_hw(e[k])))
                    for k in ("time_saving_pct", "time_saving_official_pct", "flops_saving_pct")}
        summary["pairs"] = {f"{a}-{b}": mean_hw(ebt.paired(runs, a, b)) for a, b in (*ebt.PAIRS, (draw, "dense"))}
    return summary


def glue_conclusion(state: dict, table, summary: dict, runs: pd.DataFrame, draw: str, R, dense_epochs: float,
                    profile: str) -> list[str]:
    """earlybert_glue's conclusion: partial or not, the comparison (ebt.comparison_text), the
    early-bird test per pair of tickets, where the detector fired, and the timing note."""
    lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} units.**"]
    lines += ebt.comparison_text(table, draw, f"as run (dense {dense_epochs:g} epochs, ticket {R.ticket_epochs:g})")
    for key, (d, hw, n) in summary.get("pairs", {}).items():
        a, b = key.split("-")
        if n and b != "dense":
            holds = ebt.early_tickets_hold(d, hw, b)
            lines.append(f"- Early-bird test, {a} ticket − {b} ticket: {format_pm(d, hw, signed=True)} points "
                         f"over {n} task-seed pairs: {'holds' if holds else 'does not hold'} "
                         f"({'as well as the late ticket' if b == 'end' else 'better than random'}).")
    fired = [s["detector"] for s in summary["searches"] if s["found"] and "detector" in s]
    if summary["searches"]:
        lines.append(f"- The detector fired in {len(fired)} of {len(summary['searches'])} searches"
                     + (f", at {100 * min(fired):.0f}-{100 * max(fired):.0f}% of the epoch (official fixed point: "
                        f"{100 * R.fixed_fraction:.0f}%)." if fired else "."))
    lines.append(ebt.timing_note(runs, profile))
    return lines


# ----------------------------------------------------------------------------- earlybert_pretraining

def plot_pretraining(runs: dict, search: dict | None, fine: pd.DataFrame, task: str, n_seeds: int, title: str,
                     observe_fraction: float):
    """Left: MLM validation loss against pre-training time, search included (a ticket's run starts
    after its search and draw; dotted: the draw), and the search's own curve. Right: the fine-tuned
    dev metric per model (bars: means; dots: seeds)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for m, r in runs.items():
        c = pd.DataFrame(r["curve"])
        offset = r["times"]["search"] + r["times"]["draw"]  # a ticket's run starts after the search and the draw
        axes[0].plot(offset + c["seconds"], c["val_loss"], "o-", color=ebt.COLORS[m], label=m, ms=3)
        if offset:
            axes[0].axvline(offset, color=ebt.COLORS[m], ls=":", lw=1)
    if search:
        c = pd.DataFrame(search["curve"])
        axes[0].plot(c["seconds"], c["val_loss"], "o--", color=ebt.COLORS["earlybert"], ms=3,
                     label=f"search (to {observe_fraction:.0%} of the run; charged to its draw)")
    axes[0].set(xlabel="pre-training time (s, wall-clock minus evaluation), search included (dotted: drawn)",
                ylabel="MLM validation loss (nats/token)", title=title)
    axes[0].legend(fontsize=7)
    groups = list(fine.groupby("method", sort=False)) if len(fine) else []
    for i, (m, g) in enumerate(groups):
        v = g[f"metric.{main_metric(task)}"]
        axes[1].bar(i, v.mean(), 0.6, color=ebt.COLORS[m])
        axes[1].scatter([i] * len(v), v, color="k", s=10, zorder=3)  # one dot per seed
    axes[1].set_xticks(range(len(groups)), [m for m, _ in groups])
    axes[1].set(ylabel=f"{task} dev {main_metric(task)} (0-100)", title=f"Fine-tuned for equal steps ({n_seeds} seed(s))")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- ticket_mask_distance

def plot_detector_traces(traces: list[tuple[str, dict]], R):
    """Each early-bird detector's largest distance within its FIFO against the step, per search
    (`traces`: (title, search record)), with the threshold epsilon."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(traces), figsize=(5.5 * len(traces), 3.5), squeeze=False)
    for ax, (title, r) in zip(axes[0], traces):
        d = pd.DataFrame(r["draws"])
        for kind, style in (("heads", "-"), ("ffn", "--"), ("joint", ":")):
            ax.plot(d["step"], d[f"max_dist_{kind}"].astype(float), style, label=ebt.CRITERIA_LONG[kind])
        ax.axhline(R.epsilon, color="k", lw=0.8, label=f"epsilon = {R.epsilon}")
        ax.set(xlabel="training step", ylabel=f"max distance to the last {R.window - 1} tickets",
               title=f"Early-bird detector, {title}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
