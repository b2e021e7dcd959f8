"""The report's figures (notebooks/report.py saves them under <results>/<profile>/report/): our
numbers against the papers' with the bands the judging rules accept (`claims_figure`), the
early-bird tickets per task (`early_ticket`), and EarlyBERT's time saving per seed and machine in
the accounting its rule reads (`time_saving`). Every "over seeds" shows its seeds: a 95%
t-interval (error bar) and the seeds themselves (dots). Bands and thresholds come from the rules'
registry (repro.rules), never typed here.
"""
from __future__ import annotations

import math

import pandas as pd

from . import rules
from .earlybert_tables import COLORS, TICKETS
from .results import mean_hw

# the claims the figure sets against the papers' numbers: (key, label, the paper's range)
SAVINGS = [("pld_time", "PLD", (24, 24)), ("earlybert_time", "EarlyBERT\n(equal epochs)", (35, 45))]
GAPS = [("pld_glue", "PLD: GLUE"), ("earlybert_glue", "EarlyBERT: GLUE"), ("earlybert_squad", "EarlyBERT: SQuAD F1")]


def _hw(x) -> float | None:
    return float(x) if x is not None and pd.notna(x) and math.isfinite(float(x)) else None


def claims_figure(claims: pd.DataFrame, profile: str):
    """Left: time saved against the papers' (the number each time rule reads, ± its 95% interval
    over seeds or step pairs). Right: score differences from the dense baseline (± 95% interval) and
    the band the judging rule version accepts as comparable (claims["margin"])."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for i, (key, name, (lo, hi)) in enumerate(SAVINGS):
        ours, hw = claims.loc[key, "value"], _hw(claims.loc[key, "hw"])
        axes[0].barh(i, ours if pd.notna(ours) else 0, 0.5, xerr=hw, capsize=4, color="tab:blue",
                     label="ours (95% interval)" if i == 0 else None)
        axes[0].fill_betweenx([i - 0.35, i + 0.35], lo - 0.4, hi + 0.4, color="k", alpha=0.3, label="paper" if i == 0 else None)
        axes[0].text(0.5, i + 0.3, claims.loc[key, "verdict"] if pd.notna(ours) else "not measured", fontsize=8)
    ends = [v + sg * (_hw(h) or 0) for v, h in claims.loc[[k for k, _, _ in SAVINGS], ["value", "hw"]].dropna(subset="value")
            .itertuples(index=False) for sg in (-1, 1)]
    axes[0].set_yticks(range(len(SAVINGS)), [s[1] for s in SAVINGS])
    axes[0].set(xlabel="training time saved vs dense (%)", xlim=(min([0, *ends]) - 5, max([55, *ends]) + 2),
                ylim=(-0.5, len(SAVINGS) - 0.2), title="Time saved (the accounting each rule reads)")
    axes[0].legend(loc="upper right", fontsize=8)
    for i, (key, name) in enumerate(GAPS):
        v, hw, margin = claims.loc[key, "value"], _hw(claims.loc[key, "hw"]), claims.loc[key].get("margin")
        if pd.notna(v):
            axes[1].errorbar(v, i, xerr=hw, fmt="o", color="tab:blue", capsize=4)
        if margin is not None and pd.notna(margin):
            axes[1].plot([-margin, 0], [i, i], color="tab:green", lw=8, alpha=0.25,
                         label="accepted as comparable (the judging rule's margin)" if i == 0 else None)
        axes[1].text(-(margin if margin is not None and pd.notna(margin) else 1), i + 0.25,
                     f"{claims.loc[key, 'verdict']} ({claims.loc[key, 'rule_version']})", fontsize=7)
    axes[1].axvline(0, color="grey", lw=0.8)
    ends = [v + sg * (_hw(h) or 0) for v, h in claims.loc[[g[0] for g in GAPS], ["value", "hw"]].dropna(subset="value")
            .itertuples(index=False) for sg in (-1, 1)]
    axes[1].set_yticks(range(len(GAPS)), [g[1] for g in GAPS])
    axes[1].set(xlabel="score difference from the dense baseline (points; 95% interval)",
                xlim=(min([-5, *ends]) - 0.5, max([3, *ends]) + 0.5), ylim=(-0.5, len(GAPS) - 0.2), title="Accuracy cost")
    axes[1].legend(loc="upper left", fontsize=7)
    fig.suptitle(f"Claims against the papers ({profile} profile)")
    fig.tight_layout()
    return fig


def _bars(ax, g: pd.DataFrame, groups: list, arms: list, label_of=str):
    """Per group (x) and arm (bar): the mean over seeds with its 95% t-interval, the seeds as dots."""
    width = 0.8 / len(arms)
    for j, arm in enumerate(arms):
        for i, grp in enumerate(groups):
            vals = g[(g["group"] == grp) & (g["arm"] == arm)]["value"]
            if vals.empty:
                continue
            m, hw, n = mean_hw(vals)
            x = i + (j - (len(arms) - 1) / 2) * width
            ax.bar(x, m, width, yerr=_hw(hw), capsize=3, color=COLORS.get(arm, f"C{j}"), alpha=0.8, label=label_of(arm))
            ax.scatter([x] * len(vals), vals, color="k", s=9, zorder=3)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(seen.values(), seen.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside, never on the bars


def early_ticket(seeds: pd.DataFrame):
    """The early-bird test's tickets per task (earlybert_glue, the judged recipe, each task's
    counted metric): detector, fixed, end and random, mean over seeds ± 95% interval, seeds as
    dots, dense beside for reference; None until a ticket has trained."""
    import matplotlib.pyplot as plt

    g = seeds[(seeds["notebook"] == "earlybert_glue") & seeds["arm"].isin(("dense", *TICKETS))
              & (seeds["claims"] != "earlybert_time")]
    if not g["arm"].isin(TICKETS).any():
        return None
    g = g[g["task"].isin(g.loc[g["arm"].isin(TICKETS), "task"])]  # the tasks with a ticket trained
    g = g.assign(group=g["task"] + "\n(" + g["metric"] + ")")
    groups = list(dict.fromkeys(g.sort_values("task")["group"]))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(groups) + 2), 3.8))
    n = g[g["arm"] == "detector"].groupby("task")["seed"].nunique()
    _bars(ax, g, groups, [a for a in ("dense", *TICKETS) if a in set(g["arm"])],
          lambda a: f"{a} (reference)" if a == "dense" else a)
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel="dev metric (0-100)", title="Early-bird tickets: mean over seeds ± 95% interval, dots: seeds\n"
           f"(detector ticket seeds: {', '.join(f'{t} {k}' for t, k in n.items())})")
    fig.tight_layout()
    return fig


def time_saving(seeds: pd.DataFrame):
    """EarlyBERT's saving against dense with equal epochs (the accounting the rule reads), per
    setting and the machine each run was timed on: mean ± 95% interval, seeds as dots; the paper's
    range and the latest rule's thresholds (repro.rules; every version holds the same); None until
    a ticket has been timed."""
    import matplotlib.pyplot as plt

    from .earlybert import PAPER_TIME_SAVING

    g = seeds[seeds["claims"] == "earlybert_time"]
    if g.empty:
        return None
    g = g.assign(group=g["notebook"].str.removeprefix("earlybert_") + ": " + g["task"], arm=g["machine"])
    groups = list(dict.fromkeys(g["group"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(groups) + 3), 3.6))
    ax.axhspan(*PAPER_TIME_SAVING, color="k", alpha=0.15, label="paper")
    p = rules.RULES["earlybert_time"][-1].params
    for y, name, style in ((p["reproduced"], "reproduced", "-"), (p["partly"], "partly", "--")):
        ax.axhline(y, color="tab:green", ls=style, lw=1, label=f"rule: {name} >= {y:g}%")
    _bars(ax, g, groups, list(dict.fromkeys(g["arm"])), lambda m: f"timed on {m}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel="time saved vs dense (%)", title="EarlyBERT's time saving, search included, equal epochs\n"
           "(per machine timed on: mean over seeds ± 95% interval, dots: seeds)")
    fig.tight_layout()
    return fig
