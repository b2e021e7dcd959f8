# %% [markdown]
# # EarlyBERT on GLUE: dense fine-tuning vs random ticket vs EarlyBERT ticket
#
# Reproduces EarlyBERT's fine-tuning claim (Chen et al., ACL 2021): a structured ticket found
# early in training (1/3 of the heads in every layer and 40% of the FFN neurons pruned) trains to
# accuracy comparable with the dense model while the whole pipeline, search included, takes
# 35–45% less time. For every task of the profile and every seed, three methods start from the
# same pretrained checkpoint and the same task-head initialisation:
#
# - **dense**: ordinary fine-tuning;
# - **earlybert**: searching stage (all weights + slimming coefficients, L1 on the coefficients),
#   ticket drawn when the early-bird detector fires (`draw="detector"`) or at the official fixed
#   point, 20% of the first epoch (`draw="fixed"`), physical pruning, rewind to the pre-search
#   weights, efficient training of the smaller network for as many steps as dense training;
# - **random**: a ticket with the same number of heads / neurons per layer at random positions,
#   trained the same way with no search.
#
# Plotted: the dev-set task metric per method (mean over seeds, each seed a dot), and the
# training wall-clock time per method split into search, drawing and efficient training.
# Table: metric, time, saving vs dense, FLOPs per training step, parameters. Times exclude
# evaluation. Subset sizes come from the profile and are printed below.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile's GLUE tasks, at most max_tasks of them
max_tasks: int | None = 2  # CPU budget (cpu: ~10 min per task and seed on 2 cores); None: all
seeds: list | None = None  # None: the profile's seeds, at most max_seeds of them
max_seeds: int | None = None  # None: all the profile's seeds (the study runs 3 or more); a smaller number for a quick look
checkpoint: str | None = None  # None: the profile's checkpoint
max_train_examples: int | None = None  # None: the profile's training subset
lr: float | None = None  # dense and efficient training (official EarlyBERT retrain: 4e-5); None: the profile's
epochs: float | None = None  # dense and efficient training epochs; None: the profile's
search_lr: float | None = None  # official: 2e-5; None: the profile's fine-tuning lr
search_epochs: float = 1.0  # official: the search runs (at most) one epoch
draw: str = "detector"  # "detector" (early-bird criterion) or "fixed" (official: 20% of the first epoch)
fixed_fraction: float = 0.2
draw_every: int | None = None  # None: a draw every 2% of the search
window: int = 5
epsilon: float = 0.1
lambda_head: float = 1e-4
lambda_ffn: float = 1e-4
head_ratio: float = 0.333333  # official value: 4 of 12 heads per layer
ffn_ratio: float = 0.4
rewind: bool = True  # official: the ticket is trained from the pre-search weights

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import results
from repro.checks import check_parameters
from repro.data import load_tokenizer
from repro.earlybert import add_savings, compare, record_comparison
from repro.metrics import main_metric
from repro.profiles import get_profile
from repro.tasks import finetune_glue, glue_data, glue_model, steps_for

check_parameters(globals())
P = get_profile(profile, checkpoint=checkpoint, finetune_lr=lr, finetune_epochs=epochs,
                max_train_examples=max_train_examples)
out = Path(output_dir) if output_dir else results.output_dir(profile, "earlybert_glue")
tasks = list(tasks or P.glue_tasks[:max_tasks])
seeds = list(seeds if seeds is not None else P.seeds[:max_seeds])
tokenizer = load_tokenizer(P.checkpoint)
plan = dict(draw=draw, search_epochs=search_epochs, fixed_fraction=fixed_fraction, draw_every=draw_every,
            window=window, epsilon=epsilon, lambda_head=lambda_head, lambda_ffn=lambda_ffn,
            head_ratio=head_ratio, ffn_ratio=ffn_ratio)
PAPER_SAVING = (35.0, 45.0)  # % less training time, search included (paper abstract)
print(f"profile {P.name}: checkpoint {P.checkpoint}, tasks {tasks}, seeds {seeds}, train subset "
      f"{P.max_train_examples or 'all'}, dev subset {P.max_eval_examples or 'all'}, batch {P.finetune_batch}, "
      f"seq {P.finetune_seq_len}, {P.finetune_epochs} epoch(s) at lr {P.finetune_lr}; ticket: {draw}")

# %%
rows, curves = [], []
for task in tasks:
    for seed in seeds:
        data = glue_data(task, P, tokenizer, data_dir, seed)
        # the search's own dev score is never used: 8 dev examples keep its final evaluation cheap
        search_data = (data[0], data[1][:8], data[2])
        runs = compare(
            lambda slimming: glue_model(P.checkpoint, task, seed=seed, slimming=slimming),
            lambda m, hooks, steps: finetune_glue(m, task, P, seed, tokenizer=tokenizer, data=search_data,
                                                  steps=steps, lr=search_lr or P.finetune_lr, hooks=hooks,
                                                  progress=False),
            lambda m: finetune_glue(m, task, P, seed, tokenizer=tokenizer, data=data, progress=False),
            steps_per_epoch=steps_for(len(data[0]), P.finetune_batch, 1.0), seed=seed,
            seq_len=P.finetune_seq_len, batch_size=P.finetune_batch, rewind=rewind, plan=plan)
        config = {"profile": P.to_dict(), "task": task, "n_train": len(data[0]), "n_eval": len(data[1]),
                  "plan": plan, "rewind": rewind, "search_lr": search_lr or P.finetune_lr}
        rows += record_comparison(runs, notebook="earlybert_glue", profile=profile, task=task, seed=seed, config=config)
        curves += [{"task": task, "seed": seed, "method": k, **h} for k, r in runs.items() for h in r["history"]]
        m = main_metric(task)
        for method, r in runs.items():
            print(f"{task} seed {seed} {method:9s}: {m} {r['metrics'][m]:.1f}, {r['times']['total']:.1f}s "
                  f"(search {r['times']['search']:.1f}s), {r['params']:,} params" +
                  (f", ticket drawn at step {r['draw_step']} (detector fired: {r['found']})" if method == "earlybert" else ""))

# %%
df = add_savings(pd.DataFrame(rows))
df["metric"] = [main_metric(t) for t in df.task]
df["value"] = df.apply(lambda r: r[r.metric], axis=1)  # each task's main metric
df["n_train"] = P.max_train_examples
results.save_table(df, out, "runs")
results.save_table(pd.DataFrame(curves), out, "train_curves")
METHODS = ["dense", "random", "earlybert"]
table = (df.groupby(["task", "method"])
         .agg(metric=("metric", "first"), value=("value", "mean"), value_std=("value", "std"), n=("seed", "count"),
              time_total_s=("time_total", "mean"), time_search_s=("time_search", "mean"),
              time_saving_pct=("time_saving_pct", "mean"), flops_saving_pct=("flops_saving_pct", "mean"),
              flops_per_step=("flops_per_step", "mean"), params=("params", "mean"))
         .reindex(METHODS, level="method"))
table["n_train"], table["n_eval"] = P.max_train_examples or "all", P.max_eval_examples or "all"
table["paper_time_saving_pct"] = [f"{PAPER_SAVING[0]:.0f}-{PAPER_SAVING[1]:.0f}" if m == "earlybert" else ""
                                  for _, m in table.index]
results.save_table(table, out, "earlybert_glue")
table

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
colors = {"dense": "tab:gray", "random": "tab:orange", "earlybert": "tab:blue"}
width = 0.8 / len(METHODS)
for i, method in enumerate(METHODS):
    g = df[df.method == method]
    means = g.groupby("task")["value"].mean().reindex(tasks)
    x = [tasks.index(t) + (i - 1) * width for t in tasks]
    axes[0].bar(x, means.values, width, color=colors[method], label=method)
    axes[0].scatter([tasks.index(t) + (i - 1) * width for t in g.task], g.value, color="k", s=8, zorder=3)
axes[0].set_xticks(range(len(tasks)), [f"{t}\n({main_metric(t)})" for t in tasks])
axes[0].set_ylabel("dev metric (0-100)")
axes[0].set_title("Task metric (bars: mean over seeds; dots: seeds)")
axes[0].legend()
parts = [("time_search", "search", "/"), ("time_draw", "draw + prune", "x"), ("time_train", "training", "")]
for i, method in enumerate(METHODS):
    g = df[df.method == method].groupby("task")[[p[0] for p in parts]].mean().reindex(tasks)
    bottom = [0.0] * len(tasks)
    for col, name, hatch in parts:
        x = [j + (i - 1) * width for j in range(len(tasks))]
        axes[1].bar(x, g[col].values, width, bottom=bottom, color=colors[method], hatch=hatch,
                    edgecolor="white", label=f"{method}: {name}" if g[col].sum() > 0 else None)
        bottom = [b + v for b, v in zip(bottom, g[col].values)]
axes[1].set_xticks(range(len(tasks)), tasks)
axes[1].set_ylabel("training wall-clock time (s)")
axes[1].set_title("Time per run, search included (mean over seeds)")
axes[1].legend(fontsize=7)
fig.tight_layout()
results.save_figure(fig, out, "earlybert_glue")

# %%
eb, dense = df[df.method == "earlybert"], df[df.method == "dense"].set_index(["task", "seed"])
summary = {"tasks": {}, "paper_time_saving_pct": list(PAPER_SAVING), "draw": draw, "rewind": rewind,
           "n_train": P.max_train_examples, "n_eval": P.max_eval_examples, "checkpoint": P.checkpoint}
for task in tasks:
    t = table.loc[task]
    summary["tasks"][task] = {
        "metric": t.loc["dense", "metric"], **{f"{m}_value": float(t.loc[m, "value"]) for m in METHODS},
        **{f"{m}_time_s": float(t.loc[m, "time_total_s"]) for m in METHODS},
        "earlybert_time_saving_pct": float(t.loc["earlybert", "time_saving_pct"]),
        "earlybert_flops_saving_pct": float(t.loc["earlybert", "flops_saving_pct"]),
        "flops_per_step": {m: float(t.loc[m, "flops_per_step"]) for m in METHODS},
        "params": {m: int(t.loc[m, "params"]) for m in METHODS},
        "detector_fired_fraction": float(eb[eb.task == task]["found"].astype(float).mean()),
        "draw_step_mean": float(eb[eb.task == task]["draw_step"].astype(float).mean())}
saving = float(eb["time_saving_pct"].mean())
flops_saving = float(eb["flops_saving_pct"].mean())
gap = float((eb.set_index(["task", "seed"])["value"] - dense["value"]).mean())
gap_random = float((eb.set_index(["task", "seed"])["value"]
                    - df[df.method == "random"].set_index(["task", "seed"])["value"]).mean())
summary.update(mean_time_saving_pct=saving, mean_flops_saving_pct=flops_saving,
               mean_metric_gap_vs_dense=gap, mean_metric_gap_vs_random=gap_random,
               within_paper_range=PAPER_SAVING[0] <= saving <= PAPER_SAVING[1])
results.write_summary(out, summary)
where = ("inside" if summary["within_paper_range"] else "below" if saving < PAPER_SAVING[0] else "above")
display(Markdown(
    f"**EarlyBERT vs dense fine-tuning ({profile} profile, {len(tasks)} task(s) x {len(seeds)} seed(s), "
    f"{P.max_train_examples or 'all'} training examples).** The whole EarlyBERT pipeline, search included, "
    f"took {abs(saving):.1f}% {'less' if saving >= 0 else 'more'} wall-clock time than dense training of the "
    f"same length ({abs(flops_saving):.1f}% {'fewer' if flops_saving >= 0 else 'more'} training FLOPs), {where} "
    f"the paper's {PAPER_SAVING[0]:.0f}–{PAPER_SAVING[1]:.0f}% saving. "
    f"Its task metric differs from dense by {gap:+.1f} points on average and from the random ticket by "
    f"{gap_random:+.1f} points. The detector fired in {100 * eb['found'].astype(float).mean():.0f}% of the searches "
    f"(ticket drawn at step {eb['draw_step'].astype(float).mean():.1f} on average; `draw={draw!r}`). "
    f"Timing conditions: 1-minute load average {df['loadavg'].mean():.1f} on {os.cpu_count()} cores "
    f"({'other work competed for the CPU, so wall-clock times are noisy' if df['loadavg'].max() > os.cpu_count() + 0.5 else 'no heavy competing load'}). "
    + ("At smoke scale these numbers only show that the pipeline runs: a handful of steps on a few "
       "dozen examples measure overheads, not the method." if profile == "smoke" else "")))
