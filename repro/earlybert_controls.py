"""EarlyBERT's controls and the trend over ticket size, units and tables: the controls that tell a
pipeline defect from a finding (every unit kept, the ticket on dense's recipe and at a higher rate,
a search without the L1 term), and searches that prune more or less than the paper, each with its
ticket and a random one of the same per-layer sizes. `earlybert_glue` calls these.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from .earlybert_runs import search_unit, ticket_unit
from .earlybert_settings import Recipe, Setting
from .earlybert_tables import COLORS, _metric, comparison, paired
from .results import mean_hw
from .study import Study

# the controls that tell a pipeline defect from a finding (control_units), and the ticket sizes of
# the trend (size_units): (head_ratio, ffn_ratio); the paper's is the middle one
CONTROLS = ("full@dense recipe", "full", "detector@dense recipe", "detector@lr 1e-4", "search@null")
SIZES = ((1 / 6, 0.2), (1 / 3, 0.4), (1 / 2, 0.6))


def dense_recipe(R: Recipe) -> Recipe:
    """R's tickets trained as the dense baseline is (its lr, epochs, 10% warm-up, weight decay
    0.01, eps 1e-6), to tell "the ticket cannot learn" from "the ticket was trained otherwise"."""
    return replace(R, ticket_lr=None, ticket_epochs=None, ticket_warmup=0.1, weight_decay=None, adam_eps=None,
                   ticket_label="dense recipe")


def control_units(study: Study, s: Setting, seed: int, tokenizer, R: Recipe, search: dict | None,
                  needs=()) -> list[dict | None]:
    """A task and seed's controls on `search` (its whole search under R):
    - "full@dense recipe" / "full": every head and neuron kept, through the same rewind -> prune ->
      train path, on dense's recipe (must match dense within seed noise) and on the ticket's;
    - "detector@dense recipe", "detector@lr 1e-4": the detector ticket on dense's recipe and at a
      higher rate (every ticket also records its score right after pruning, `pruned_<metric>`);
    - "search@null": the search with lambda = 0 (no L1 term): does the detector still fire?"""
    D = dense_recipe(R)
    return [ticket_unit(study, s, seed, tokenizer, search, "full", D, needs=needs),
            ticket_unit(study, s, seed, tokenizer, search, "full", R, needs=needs),
            ticket_unit(study, s, seed, tokenizer, search, "detector", D, needs=needs),
            ticket_unit(study, s, seed, tokenizer, search, "detector", replace(R, ticket_lr=1e-4, ticket_label="lr 1e-4"),
                        needs=needs),
            search_unit(study, s, seed, tokenizer, replace(R, lambda_head=0.0, lambda_ffn=0.0), needs=needs, label="null")]


def size_label(head_ratio: float, ffn_ratio: float) -> str:
    return f"heads {head_ratio:.2f}, ffn {ffn_ratio:.2f}"


def size_units(study: Study, s: Setting, seed: int, tokenizer, R: Recipe, head_ratio: float, ffn_ratio: float,
               draw: str = "detector", needs=()) -> list[dict | None]:
    """One point of the trend over ticket size: a search that prunes `head_ratio` of the heads and
    `ffn_ratio` of the neurons (its detector draws tickets of that size), its `draw` ticket and a
    random ticket of the same per-layer sizes, methods "<ticket>@heads h, ffn f"."""
    label = size_label(head_ratio, ffn_ratio)
    Q = replace(R, head_ratio=head_ratio, ffn_ratio=ffn_ratio, ticket_label=label)
    search = search_unit(study, s, seed, tokenizer, Q, stop=draw, needs=needs, label=label)
    return [search, *(ticket_unit(study, s, seed, tokenizer, search, t, Q, like=draw, needs=needs) for t in (draw, "random"))]


# ----------------------------------------------------------------------------- tables

def control_table(records: list[dict], dense: pd.DataFrame) -> pd.DataFrame:
    """Per task and arm (dense, the recipe's tickets, the controls): the metric after training and
    right after pruning (mean ± 95% t-interval over seeds), the final training loss, and the arm
    − dense difference paired by seed. `dense`: comparison()'s dense rows."""
    rows = [{"task": r["task"], "seed": r["seed"], "method": r["method"],
             "value": r["metrics"].get(_metric(r["task"])), "pruned": r["metrics"].get(f"pruned_{_metric(r['task'])}"),
             "train_loss": r["metrics"].get("train_loss")}
            for r in records if r and r["method"] not in ("dense", "step_times") and not r["method"].startswith("search")]
    df = pd.concat([pd.DataFrame(rows), dense[["task", "seed", "method", "value"]]], ignore_index=True) if rows else dense
    out = []
    for (task, method), g in df.groupby(["task", "method"], sort=False):
        row = {"task": task, "arm": method, "n": g["value"].notna().sum()}
        for col in ("value", "pruned", "train_loss"):
            if col in g:
                row[col], row[f"{col}_hw"], _ = mean_hw(g[col])
        d = mean_hw(paired(df[df.task == task], method, "dense")) if method != "dense" else (math.nan, math.nan, 0)
        row["arm-dense"], row["arm-dense_hw"] = d[0], d[1]
        out.append(row)
    return pd.DataFrame(out).set_index(["task", "arm"]).sort_index()


def null_search_table(searches: list[dict]) -> pd.DataFrame:
    """Per search (with the L1 term and without, "search@null"): whether and where (fraction of
    the epoch) the early-bird detector fired."""
    rows = [{"task": r["task"], "seed": r["seed"], "search": r["method"], "found": r["metrics"]["found"],
             "fired_at": r["tickets"]["detector"]["fraction"] if r["metrics"]["found"] else None,
             "negative_coefficients": r.get("negative_coefficients")}
            for r in searches if r and r["method"] in ("search", "search@null")]
    return pd.DataFrame(rows)


def size_runs(paper: tuple, runs: pd.DataFrame, by_size: dict, records: list) -> dict:
    """{(head_ratio, ffn_ratio): comparison() rows} for size_table: the recipe's own size from
    `runs`, each other size from its units (size_units: "<ticket>@<size>", named "<ticket>")
    beside the dense runs in `records`."""
    dense = [r for r in records if r is not None and r["method"] == "dense"]
    out = {paper: runs}
    for size, rows in by_size.items():
        named = [dict(r, method=r["method"].split("@")[0]) for r in rows if r is not None and "@" in r["method"]]
        if named:
            out[size] = comparison(named + dense)
    return out


def size_table(runs_by_size: dict) -> pd.DataFrame:
    """The trend over ticket size: per task, size (head ratio, FFN ratio) and ticket (EarlyBERT or
    random): FLOPs saved per step and the accuracy cost (ticket − dense, paired by seed), mean ±
    95% interval. `runs_by_size`: {(head_ratio, ffn_ratio): comparison() rows whose tickets are
    named "detector" / "random" and dense}."""
    rows = []
    for (h, f), runs in runs_by_size.items():
        for task, g in runs.groupby("task"):
            for ticket in ("detector", "random"):
                t = g[g.method == ticket]
                if t.empty:
                    continue
                cost = mean_hw(paired(g, ticket, "dense"))
                saved = mean_hw(100 * (1 - t["flops_per_step"] / g[g.method == "dense"]["flops_per_step"].mean()))
                rows.append({"task": task, "head_ratio": h, "ffn_ratio": f, "ticket": ticket, "n": cost[2],
                             "cost": cost[0], "cost_hw": cost[1], "flops_saved_pct": saved[0]})
    return pd.DataFrame(rows)


def plot_sizes(table: pd.DataFrame, title: str):
    """Accuracy cost (ticket − dense) against FLOPs saved per step, one panel per task, EarlyBERT
    beside random, error bars the 95% interval over seeds."""
    import matplotlib.pyplot as plt

    tasks = sorted(table.task.unique()) if len(table) else []
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4.2 * max(1, len(tasks)), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for ticket, color in (("detector", COLORS["detector"]), ("random", COLORS["random"])):
            g = table[(table.task == task) & (table.ticket == ticket)].sort_values("flops_saved_pct")
            ax.errorbar(g["flops_saved_pct"], g["cost"], yerr=g["cost_hw"].fillna(0), marker="o", capsize=3,
                        color=color, label="EarlyBERT" if ticket == "detector" else "random ticket")
        ax.axhline(0, color="gray", lw=0.8)
        ax.set(title=task, xlabel="FLOPs saved per step (%)", ylabel="ticket − dense (metric points)")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
