# %% [markdown]
# # EarlyBERT on SQuAD v1.1: dense fine-tuning vs random ticket vs EarlyBERT ticket
#
# EarlyBERT's SQuAD claim (Chen et al., ACL 2021): the early-bird ticket (1/3 of the heads per layer,
# 40% of the FFN neurons globally) reaches EM/F1 close to the dense model, search included in
# less time. Three methods from the same pretrained checkpoint and the same span-head init:
# **dense** fine-tuning; **earlybert** (search with L1 on the slimming coefficients, ticket drawn by
# the early-bird detector or at the official 20% of the first epoch, physical pruning, rewind to the
# pre-search weights, efficient training as long as dense); **random** (same per-layer counts at
# random positions, no search).
#
# Only dev-v1.1.json is available offline, so it is split by article (never by question) into a
# training part and an evaluation part; the question subsets and the window length / stride are
# printed below (official: 384 / 128; smaller here so a CPU can run it). Plotted: EM and F1 per
# method (mean over seeds, seeds as dots) and the training time per method, split into search,
# drawing and training. Times exclude evaluation.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
seeds: list | None = None  # None: the profile's seeds
checkpoint: str | None = None  # None: the profile's checkpoint
subset_scale: float = 0.25  # questions: this fraction of the profile's GLUE subsets (SQuAD windows are ~2x longer)
seq_len: int = 128  # official: 384
stride: int = 64  # official: 128
lr: float | None = None  # dense and efficient training lr (official: 3e-5); None: the profile's
epochs: float | None = None  # dense and efficient training epochs (official: 3); None: the profile's
search_lr: float | None = None  # official: 3e-5; None: the profile's fine-tuning lr
search_epochs: float = 1.0
draw: str = "detector"  # "detector" or "fixed" (official: 20% of the first epoch)
fixed_fraction: float = 0.2
draw_every: int | None = None  # None: every 2% of the search
window: int = 5
epsilon: float = 0.1
lambda_head: float = 1e-4
lambda_ffn: float = 1e-4
head_ratio: float = 0.333333
ffn_ratio: float = 0.4
rewind: bool = True

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
from repro.profiles import get_profile
from repro.tasks import finetune_squad, squad_data, squad_model, steps_for


def scaled(n):
    return None if n is None else max(8, round(subset_scale * n))


check_parameters(globals())
base = get_profile(profile)
P = get_profile(profile, checkpoint=checkpoint, finetune_lr=lr, finetune_epochs=epochs,
                max_train_examples=scaled(base.max_train_examples), max_eval_examples=scaled(base.max_eval_examples))
out = Path(output_dir) if output_dir else results.output_dir(profile, "earlybert_squad")
seeds = list(seeds if seeds is not None else P.seeds)
tokenizer = load_tokenizer(P.checkpoint)
plan = dict(draw=draw, search_epochs=search_epochs, fixed_fraction=fixed_fraction, draw_every=draw_every,
            window=window, epsilon=epsilon, lambda_head=lambda_head, lambda_ffn=lambda_ffn,
            head_ratio=head_ratio, ffn_ratio=ffn_ratio)
PAPER_SAVING = (35.0, 45.0)
METHODS = ["dense", "random", "earlybert"]
print(f"profile {P.name}: checkpoint {P.checkpoint}, seeds {seeds}, {P.max_train_examples or 'all'} training "
      f"questions, {P.max_eval_examples or 'all'} evaluation questions, windows {seq_len}/{stride}, "
      f"batch {P.finetune_batch}, {P.finetune_epochs} epoch(s) at lr {P.finetune_lr}; ticket: {draw}")

# %%
rows, curves = [], []
for seed in seeds:
    data = squad_data(P, tokenizer, data_dir, seq_len=seq_len, stride=stride, seed=seed)
    common = dict(tokenizer=tokenizer, data=data, progress=False)
    runs = compare(
        lambda slimming: squad_model(P.checkpoint, seed=seed, slimming=slimming),
        lambda m, hooks, steps: finetune_squad(m, P, seed, steps=steps, lr=search_lr or P.finetune_lr,
                                               hooks=hooks, **common),
        lambda m: finetune_squad(m, P, seed, **common),
        steps_per_epoch=steps_for(len(data[0]), P.finetune_batch, 1.0), seed=seed,
        seq_len=seq_len, batch_size=P.finetune_batch, rewind=rewind, plan=plan)
    config = {"profile": P.to_dict(), "seq_len": seq_len, "stride": stride, "n_train_features": len(data[0]),
              "n_eval_questions": len(data[1][0]), "plan": plan, "rewind": rewind,
              "search_lr": search_lr or P.finetune_lr}
    rows += record_comparison(runs, notebook="earlybert_squad", profile=profile, task="SQuAD", seed=seed,
                              config=config)
    curves += [{"seed": seed, "method": k, **h} for k, r in runs.items() for h in r["history"]]
    for method, r in runs.items():
        print(f"seed {seed} {method:9s}: EM {r['metrics']['exact_match']:.1f} F1 {r['metrics']['f1']:.1f}, "
              f"{r['times']['total']:.1f}s (search {r['times']['search']:.1f}s), {r['params']:,} params" +
              (f", ticket drawn at step {r['draw_step']} (detector fired: {r['found']})" if method == "earlybert" else ""))
print(f"{len(data[0])} training windows, {len(data[1][1])} evaluation windows")

# %%
df = add_savings(pd.DataFrame(rows))
results.save_table(df, out, "runs")
results.save_table(pd.DataFrame(curves), out, "train_curves")
table = (df.groupby("method")
         .agg(exact_match=("exact_match", "mean"), f1=("f1", "mean"), f1_std=("f1", "std"), n=("seed", "count"),
              time_total_s=("time_total", "mean"), time_search_s=("time_search", "mean"),
              time_saving_pct=("time_saving_pct", "mean"), flops_saving_pct=("flops_saving_pct", "mean"),
              flops_per_step=("flops_per_step", "mean"), params=("params", "mean"))
         .reindex(METHODS))
table["train_questions"], table["eval_questions"] = P.max_train_examples or "all", P.max_eval_examples or "all"
table["paper_time_saving_pct"] = [f"{PAPER_SAVING[0]:.0f}-{PAPER_SAVING[1]:.0f}" if m == "earlybert" else ""
                                  for m in table.index]
results.save_table(table, out, "earlybert_squad")
table

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
colors = {"dense": "tab:gray", "random": "tab:orange", "earlybert": "tab:blue"}
for j, metric in enumerate(("exact_match", "f1")):
    for i, method in enumerate(METHODS):
        g = df[df.method == method]
        axes[0].bar(j + (i - 1) * 0.27, g[metric].mean(), 0.27, color=colors[method], label=method if j == 0 else None)
        axes[0].scatter([j + (i - 1) * 0.27] * len(g), g[metric], color="k", s=8, zorder=3)
axes[0].set_xticks([0, 1], ["exact match", "F1"])
axes[0].set_ylabel("score on the held-out articles (0-100)")
axes[0].set_title("SQuAD v1.1 (bars: mean over seeds; dots: seeds)")
axes[0].legend()
parts = [("time_search", "search", "/"), ("time_draw", "draw + prune", "x"), ("time_train", "training", "")]
for i, method in enumerate(METHODS):
    g, bottom = df[df.method == method], 0.0
    for col, name, hatch in parts:
        v = g[col].mean()
        axes[1].bar(i, v, 0.6, bottom=bottom, color=colors[method], hatch=hatch, edgecolor="white",
                    label=name if i == METHODS.index("earlybert") else None)
        bottom += v
axes[1].set_xticks(range(len(METHODS)), METHODS)
axes[1].set_ylabel("training wall-clock time (s)")
axes[1].set_title("Time per run, search included (mean over seeds)")
axes[1].legend(fontsize=8)
fig.tight_layout()
results.save_figure(fig, out, "earlybert_squad")

# %%
eb, dense = df[df.method == "earlybert"], df[df.method == "dense"]
saving, flops_saving = float(eb["time_saving_pct"].mean()), float(eb["flops_saving_pct"].mean())
summary = {
    "methods": {m: {"exact_match": float(table.loc[m, "exact_match"]), "f1": float(table.loc[m, "f1"]),
                    "time_s": float(table.loc[m, "time_total_s"]), "flops_per_step": float(table.loc[m, "flops_per_step"]),
                    "params": int(table.loc[m, "params"])} for m in METHODS},
    "earlybert_time_saving_pct": saving, "earlybert_flops_saving_pct": flops_saving,
    "paper_time_saving_pct": list(PAPER_SAVING), "within_paper_range": PAPER_SAVING[0] <= saving <= PAPER_SAVING[1],
    "detector_fired_fraction": float(eb["found"].astype(float).mean()),
    "draw_step_mean": float(eb["draw_step"].astype(float).mean()),
    "seq_len": seq_len, "stride": stride, "train_questions": P.max_train_examples, "eval_questions": P.max_eval_examples,
    "draw": draw, "rewind": rewind}
results.write_summary(out, summary)
gap = summary["methods"]["earlybert"]["f1"] - summary["methods"]["dense"]["f1"]
gap_random = summary["methods"]["earlybert"]["f1"] - summary["methods"]["random"]["f1"]
where = "inside" if summary["within_paper_range"] else "below" if saving < PAPER_SAVING[0] else "above"
display(Markdown(
    f"**EarlyBERT vs dense on SQuAD v1.1 ({profile} profile, {len(seeds)} seed(s), {P.max_train_examples or 'all'} "
    f"training questions, windows {seq_len}/{stride}).** F1: EarlyBERT {summary['methods']['earlybert']['f1']:.1f}, "
    f"dense {summary['methods']['dense']['f1']:.1f} ({gap:+.1f}), random ticket {summary['methods']['random']['f1']:.1f} "
    f"(EarlyBERT {gap_random:+.1f}). The EarlyBERT pipeline, search included, took {abs(saving):.1f}% "
    f"{'less' if saving >= 0 else 'more'} wall-clock time than dense training ({abs(flops_saving):.1f}% "
    f"{'fewer' if flops_saving >= 0 else 'more'} training FLOPs), {where} the paper's "
    f"{PAPER_SAVING[0]:.0f}–{PAPER_SAVING[1]:.0f}%. The detector fired in "
    f"{100 * summary['detector_fired_fraction']:.0f}% of the searches. Timing conditions: 1-minute load average "
    f"{df['loadavg'].mean():.1f} on {os.cpu_count()} cores"
    f"{' (other work competed for the CPU: wall-clock times are noisy)' if df['loadavg'].max() > os.cpu_count() + 0.5 else ''}. "
    + ("At smoke scale this only shows the pipeline runs end to end." if profile == "smoke" else "")))
