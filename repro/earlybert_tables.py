"""EarlyBERT's tables, figures and computed sentences, from the records of `repro.earlybert_runs`'
units: the comparison of dense, EarlyBERT and random tickets (mean ± 95% t-interval over seeds,
time saved both ways), the early-bird test (early − late, early − random, paired by seed), where
each early-bird criterion fired, the mask-distance figure, and the pre-training table. The
controls' and the size trend's tables are `repro.earlybert_controls`."""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from .earlybert import PAPER_TIME_SAVING
from .earlybert_settings import SQUAD, TICKETS
from .metrics import main_metric
from .results import fewer_flops, format_pm, mean_hw, save_figure, save_table, saving
from .train import train_seconds


# ----------------------------------------------------------------------------- tables

def comparison(records: list[dict]) -> pd.DataFrame:
    """One row per (task, seed, method) of the dense and ticket units: the main metric ("value"),
    the time parts (search, draw, train; time_s their sum), steps, FLOPs, parameters, and each
    ticket's saving against the dense run of its task and seed, both ways:
    time_saving_pct (equal epochs: the ticket trained as many steps as dense, from its measured
    seconds per step) and time_saving_official_pct (as run: dense its epochs, the ticket its own);
    the same for FLOPs (the search's steps at the dense cost).
    Time: where the task and seed have a step_times record (earlybert_runs.step_times_unit), each
    run is charged its steps at the per-step costs timed side by side ("timing" "paired"), so the
    machine's load while each run trained cancels; else whole-run wall-clock ("wall-clock", also
    kept as time_saving_wall_pct)."""
    rows, costs = [], {}
    for r in records:
        if r["method"] == "step_times":
            costs[(r["task"], r["seed"])] = r["timing"]
        if r["method"] not in ("dense", *TICKETS):
            continue
        t, m = r["times"], _metric(r["task"])
        dense = r["method"] == "dense"
        rows.append({"task": r["task"], "seed": r["seed"], "method": r["method"], "metric": m,
                     "value": r["metrics"].get(m), **{k: r["metrics"].get(k) for k in ("exact_match", "f1") if k in r["metrics"]},
                     "search_s": 0.0 if dense else t["search"], "draw_s": 0.0 if dense else t["draw"],
                     "train_s": train_seconds(t) if dense else t["train"],
                     "search_steps": 0 if dense else r["steps"]["search"],
                     "train_steps": r["history"][-1]["step"] if dense else r["steps"]["train"],
                     "flops_per_step": None if dense else r["flops_per_step"], "params": None if dense else r["params"],
                     "dense_flops_per_step": None if dense else r["dense"]["flops_per_step"],
                     "dense_params": None if dense else r["dense"]["params"],
                     "draw_step": None if dense else r["draw_step"], "draw_fraction": None if dense else r["draw_fraction"],
                     "found": None if dense else r["found"], "n_train": r.get("n_train"), "loadavg": r.get("loadavg"),
                     # whose per-step cost it trains at: a random ticket has its model's per-layer sizes
                     "cost_of": "dense" if dense else ((r.get("config") or {}).get("like") or r["method"])})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["time_s"] = df["search_s"] + df["draw_s"] + df["train_s"]
    # the dense run's size comes with its tickets (they built the unpruned model)
    size = df.dropna(subset=["dense_params"]).groupby(["task", "seed"])[["dense_params", "dense_flops_per_step"]].first()
    d = df[df.method == "dense"].set_index(["task", "seed"])[["time_s", "train_steps"]].join(size)
    d.columns = ["d_time", "d_steps", "d_params", "d_fps"]
    df = df.join(d, on=["task", "seed"])
    is_dense = df.method == "dense"
    df.loc[is_dense, "params"], df.loc[is_dense, "flops_per_step"] = df["d_params"], df["d_fps"]
    equal_s = df["search_s"] + df["draw_s"] + df["train_s"] / df["train_steps"] * df["d_steps"]
    dense_flops = df["d_steps"] * df["d_fps"]
    df["flops_total"] = df["search_steps"] * df["d_fps"] + df["train_steps"] * df["flops_per_step"]
    df["time_saving_pct"] = 100 * (1 - equal_s / df["d_time"])
    df["time_saving_official_pct"] = 100 * (1 - df["time_s"] / df["d_time"])
    df["time_saving_wall_pct"], df["timing"] = df["time_saving_pct"], "wall-clock"
    for i, row in df.iterrows():
        t = costs.get((row["task"], row["seed"]))
        if t is None or row["method"] == "dense" or row["cost_of"] not in t["ratio"]:
            continue
        # in dense steps: the search's steps, the draw, the ticket's steps; dense's run is d_steps of them
        search = row["search_steps"] * t["ratio"]["search"] + row["draw_s"] / t["seconds"]["dense"]
        ticket = t["ratio"][row["cost_of"]]
        df.loc[i, "time_saving_pct"] = 100 * (1 - (search + row["d_steps"] * ticket) / row["d_steps"])
        df.loc[i, "time_saving_official_pct"] = 100 * (1 - (search + row["train_steps"] * ticket) / row["d_steps"])
        df.loc[i, "timing"] = "paired"
    df["flops_saving_pct"] = 100 * (1 - (df["search_steps"] * df["d_fps"] + df["d_steps"] * df["flops_per_step"]) / dense_flops)
    df["flops_saving_official_pct"] = 100 * (1 - df["flops_total"] / dense_flops)
    return df.drop(columns=["d_time", "d_steps", "d_params", "d_fps", "dense_params", "dense_flops_per_step"])


def method_table(runs: pd.DataFrame, methods) -> pd.DataFrame:
    """Per task and method: the metric (mean ± 95% t-interval over seeds), time, savings both ways
    (mean ± interval), FLOPs per step and parameters."""
    rows = []
    for (task, method), g in runs[runs.method.isin(methods)].groupby(["task", "method"], sort=False):
        row = {"task": task, "method": method, "metric": g["metric"].iloc[0], "n": len(g)}
        for col in ("value", "exact_match", "time_s", "search_s", "time_saving_pct", "time_saving_official_pct",
                    "flops_saving_pct"):
            if col not in g:
                continue
            mean, hw, _ = mean_hw(g[col])
            row[col], row[f"{col}_hw"] = mean, hw
        row |= {"flops_per_step": g["flops_per_step"].mean(), "params": g["params"].mean()}
        rows.append(row)
    table = pd.DataFrame(rows)
    table["method"] = pd.Categorical(table["method"], categories=list(methods), ordered=True)
    return table.sort_values(["task", "method"]).set_index(["task", "method"])


PAIRS = (("detector", "end"), ("fixed", "end"), ("detector", "random"), ("fixed", "random"))


def paired(runs: pd.DataFrame, a: str, b: str, col: str = "value", keys=("task", "seed")) -> list[float]:
    """a − b per task and seed (the pairs where both ran)."""
    wide = runs.pivot_table(index=list(keys), columns="method", values=col)
    return list((wide[a] - wide[b]).dropna()) if a in wide and b in wide else []


def early_bird_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The early-bird test: per task and over all tasks, each ticket's metric and the paired
    differences early − late (end of the epoch) and early − random, mean ± 95% t-interval; n: the
    seeds detector − end pairs over."""
    rows = []
    for task, g in [*runs.groupby("task"), ("all tasks", runs)]:
        row = {"task": task}
        for t in TICKETS:
            row[t], row[f"{t}_hw"], _ = mean_hw(g.loc[g.method == t, "value"])
        pairs = {f"{a}-{b}": mean_hw(paired(g, a, b)) for a, b in PAIRS}
        for key, (d, hw, _) in pairs.items():
            row[key], row[f"{key}_hw"] = d, hw
        row["n"] = pairs["detector-end"][2]
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")


def early_tickets_hold(d: float, hw: float, vs: str) -> bool:
    """The early-bird rule: an early ticket scores "as well as" the late one when its mean paired
    difference is at least −1 point or its 95% interval reaches 0; "better than random" when the
    mean difference is positive."""
    if not math.isfinite(d):
        return False
    if vs == "end":
        return d >= -1.0 or (math.isfinite(hw) and d + hw >= 0)
    return d > 0


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table's "x" / "x_hw" column pairs as "mean ± hw" strings (differences signed)."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        if col.endswith("_hw"):
            continue
        if f"{col}_hw" in table:
            signed = "-" in col or "saving" in col
            out[col] = [format_pm(m, h, signed=signed) for m, h in zip(table[col], table[f"{col}_hw"])]
        else:
            out[col] = table[col]
    return out


# ----------------------------------------------------------------------------- figure and text

COLORS = {"dense": "tab:gray", "random": "tab:orange", "detector": "tab:blue", "fixed": "tab:cyan",
          "end": "tab:purple", "earlybert": "tab:blue"}
PARTS = (("search_s", "search", "/"), ("draw_s", "draw + prune", "x"), ("train_s", "training", ""))


def plot_comparison(runs: pd.DataFrame, methods, title: str):
    """Left: the dev metric per task and method (bars: mean over seeds, dots: seeds). Right: the
    time per run (mean over seeds) stacked as search, drawing and training."""
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(runs["task"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 2.5 * len(tasks) + 5), 3.8))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        g = runs[runs.method == m]
        x0 = {t: tasks.index(t) + (i - (len(methods) - 1) / 2) * width for t in tasks}
        means = g.groupby("task")["value"].mean().reindex(tasks)
        axes[0].bar([x0[t] for t in tasks], means.values, width, color=COLORS.get(m), label=m)
        axes[0].scatter([x0[t] for t in g.task], g.value, color="k", s=8, zorder=3)
        parts = g.groupby("task")[[p[0] for p in PARTS]].mean().reindex(tasks).fillna(0)
        bottom = np.zeros(len(tasks))
        for col, name, hatch in PARTS:
            if parts[col].sum() > 0:
                axes[1].bar([x0[t] for t in tasks], parts[col].values, width, bottom=bottom, color=COLORS.get(m),
                            hatch=hatch, edgecolor="white", label=f"{m}: {name}")
                bottom += parts[col].values
    metrics = runs.groupby("task")["metric"].first()
    axes[0].set_xticks(range(len(tasks)), [f"{t}\n({metrics[t]})" for t in tasks])
    axes[0].set(ylabel="dev metric (0-100)", title="Task metric (bars: mean over seeds; dots: seeds)")
    axes[1].set_xticks(range(len(tasks)), tasks)
    axes[1].set(ylabel="training wall-clock time (s)", title="Time per run, search included (mean over seeds)")
    for ax, size, ncol, room in ((axes[0], 8, len(methods), 1.2), (axes[1], 7, 2, 1.5)):
        ax.set_ylim(top=ax.get_ylim()[1] * room)  # headroom: the legend sits above the bars, not on them
        ax.legend(fontsize=size, ncol=ncol, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def timing_note(runs: pd.DataFrame, profile: str) -> str:
    """The machine's load while the runs trained (1-minute load average) and whether it was busy;
    at the smoke profile, that the numbers measure nothing."""
    load = pd.to_numeric(runs["loadavg"], errors="coerce").dropna() if "loadavg" in runs else pd.Series(dtype=float)
    note = "" if profile != "smoke" else "At smoke scale these numbers only show that the pipeline runs end to end."
    if load.empty:
        return note
    busy = load.max() > os.cpu_count() + 0.5
    return (f"Timing conditions: 1-minute load average {load.mean():.1f} on {os.cpu_count()} cores"
            + (" (other work competed for the CPU, so wall-clock times are noisy). " if busy else " (no heavy competing load). ")
            + note)


def save_comparison(runs: pd.DataFrame, earlybert: str, out, name: str, title: str) -> pd.DataFrame | None:
    """Write a comparison notebook's outputs: runs.csv, the table of dense, the `earlybert` ticket
    and the random one (`name`.csv, mean ± hw) and the figure `name`; returns the table
    (method_table), None while no run has finished."""
    if not len(runs):
        return None
    methods = ["dense", earlybert, "random"]
    save_table(runs, out, "runs")
    table = method_table(runs, methods)
    save_table(shown(table), out, name)
    save_figure(plot_comparison(runs[runs.method.isin(methods)], methods, title), out, name)
    return table


def comparison_text(table: pd.DataFrame | None, earlybert: str, accounting: str) -> list[str]:
    """The computed conclusion of a dense / EarlyBERT / random table (method_table): per task the
    metrics and the time saved both ways, in words; then the paper's claim."""
    lines = []
    for task, g in (table.groupby(level="task") if table is not None else []):
        g = g.droplevel("task")
        if "dense" not in g.index or earlybert not in g.index:
            continue
        e, d = g.loc[earlybert], g.loc["dense"]
        r = g.loc["random"] if "random" in g.index else None
        lines.append(f"- **{task}** ({e['metric']}): EarlyBERT {format_pm(e['value'], e['value_hw'])}, dense "
                     f"{format_pm(d['value'], d['value_hw'])}" + (f", random ticket {format_pm(r['value'], r['value_hw'])}" if r is not None else "")
                     + f"; against dense {saving(e['time_saving_pct'], e['time_saving_pct_hw'])} with equal epochs, "
                     f"{saving(e['time_saving_official_pct'], e['time_saving_official_pct_hw'])} {accounting} "
                     f"({fewer_flops(e['flops_saving_pct'])}); the search took {e['search_s']:.0f} s of {e['time_s']:.0f} s.")
    if lines:
        lines.append(f"- Paper: {PAPER_TIME_SAVING[0]:.0f}-{PAPER_TIME_SAVING[1]:.0f}% less time, search included; "
                     "accuracy comparable to BERT.")
    return lines


# ----------------------------------------------------------------------------- when tickets emerge

# the detectors a search runs; "found" is the stopping rule (heads and FFN at the same draw),
# the criterion the tickets, the report and the figure's bold marker use
CRITERIA = {"heads": "heads", "ffn": "FFN", "joint": "joint", "found": "both"}  # short names
CRITERIA_LONG = {"heads": "heads alone", "ffn": "FFN neurons alone", "joint": "heads + FFN as one mask",
                 "found": "heads and FFN at the same draw: the stopping rule, the report's"}


def criterion_table(searches: list[dict], setting: str) -> pd.DataFrame:
    """Per search: where each criterion fired, as a fraction of the reference length (fine-tuning:
    the epoch; pre-training: the whole run), the official fixed point, and how far the detector's
    ticket is from the last ticket of the search (heads, FFN)."""
    rows = []
    for r in searches:
        ref = r.get("reference_steps") or r["steps_per_epoch"]
        det = r["tickets"]["detector"]
        rows.append({"setting": setting, "task": r["task"], "seed": r["seed"], "search_steps": r["metrics"]["steps"],
                     "reference_steps": ref, **{f"fired_{k}": None if v is None else v / ref for k, v in r["fired"].items()},
                     "fixed": r["tickets"]["fixed"]["fraction"] if "fixed" in r["tickets"] else None,
                     "detector_ticket": det["fraction"], "detector_found": det["found"],
                     **{f"units_{k}": v for k, v in r["units"].items()},
                     **{f"distance_to_last_{k}": v for k, v in det["distance_to_last"].items()}})
    return pd.DataFrame(rows)


MARKERS = {"heads": ("tab:red", ":"), "ffn": ("tab:orange", "--"), "joint": ("tab:pink", "-."), "found": ("red", "-")}
# legend labels short enough to stay inside the matrix (CRITERIA_LONG's are for tables and text)
CRITERIA_SHORT = {"heads": "heads alone", "ffn": "FFN alone", "joint": "heads + FFN as one mask",
                  "found": "both at one draw (stopping rule)"}


def plot_mask_distance(panels: list[dict]):
    """One row per panel {"title", "steps", "matrices", "fired", "fixed"}: the heads' and the FFN
    neurons' distance matrices, with a line where each criterion fired (legend: which) and the
    official fixed point (white, dashed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 4.4 * len(panels)), squeeze=False)
    for row, p in zip(axes, panels):
        st = p["steps"]
        half = (st[-1] - st[0]) / max(1, len(st) - 1) / 2  # each cell spans one interval between tickets
        for ax, (kind, label) in zip(row, (("heads", "attention heads"), ("ffn", "FFN neurons"))):
            im = ax.imshow(p["matrices"][kind].numpy(), vmin=0, vmax=1, cmap="viridis", origin="lower",
                           extent=(st[0] - half, st[-1] + half, st[0] - half, st[-1] + half))
            for crit, (color, style) in MARKERS.items():
                step = p["fired"].get(crit)
                if step is not None and step <= st[-1]:
                    ax.axvline(step, color=color, ls=style, lw=2.5 if crit == "found" else 1.2,
                               label=f"{CRITERIA_SHORT[crit]}: step {step}")
                    ax.axhline(step, color=color, ls=style, lw=2.5 if crit == "found" else 1.2)
            if p.get("fixed"):
                ax.axvline(p["fixed"], color="white", ls="--", lw=1.5, label=f"official fixed point (step {p['fixed']})")
            missing = [CRITERIA[c] for c in MARKERS if p["fired"].get(c) is None]
            ax.set(xlabel="training step of ticket A", ylabel="training step of ticket B",
                   title=f"{p['title']}: {label}" + (f"\ncriteria not fired: {', '.join(missing)}" if missing else ""))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6.5, loc="upper left", title="criterion fired", title_fontsize=7)
            fig.colorbar(im, ax=ax, label="normalised Hamming distance")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- pre-training

def pretraining_table(pre: dict, fine: pd.DataFrame | None = None, metric: str | None = None) -> pd.DataFrame:
    """Per pre-training method: validation loss, time (search included), steps, FLOPs, parameters
    and the saving against dense (the same number of steps for all three); with the fine-tuning
    runs `fine` (results.to_frame), their `metric` column as "finetune" mean ± 95% t-interval."""
    rows = {}
    for m, r in pre.items():
        if r is None:
            continue
        t = r["times"]
        rows[m] = {"val_loss": r["metrics"]["val_loss"], "search_s": t["search"], "draw_s": t["draw"], "train_s": t["train"],
                   "time_s": t["search"] + t["draw"] + t["train"], "search_steps": r["steps"]["search"],
                   "train_steps": r["steps"]["train"], "flops_per_step": r["flops_per_step"], "params": r["params"]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if "dense" in rows:
        d = rows["dense"]
        table["flops_total"] = table["search_steps"] * d["flops_per_step"] + table["train_steps"] * table["flops_per_step"]
        table["time_saving_pct"] = 100 * (1 - table["time_s"] / d["time_s"])
        table["flops_saving_pct"] = 100 * (1 - table["flops_total"] / (d["train_steps"] * d["flops_per_step"]))
    if fine is not None and len(fine) and len(table):
        scores = {m: mean_hw(g[metric]) for m, g in fine.groupby("method")}
        table["finetune"], table["finetune_hw"], table["finetune_n"] = zip(
            *[scores.get(m, (math.nan, math.nan, 0)) for m in table.index])
    return table


# ----------------------------------------------------------------------------- the earlier recipe

def _metric(task: str) -> str:
    return "f1" if task == SQUAD else main_metric(task)


def earlier_recipe(records: list, dense: list, draw: str) -> pd.DataFrame | None:
    """The earlier recipe's dense / EarlyBERT / random table (method_table) from its recorded
    units beside the dense runs, None when none is recorded."""
    runs = comparison([r for r in records if r is not None] + dense)
    return method_table(runs, ["dense", draw, "random"]) if len(runs) else None
