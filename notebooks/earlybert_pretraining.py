# %% [markdown]
# # EarlyBERT in pre-training: search, draw, pre-train the ticket, then fine-tune
#
# The EarlyBERT paper (Chen et al., ACL 2021) also applies the method to pre-training: search
# during masked-LM pre-training (all weights + slimming coefficients, L1 on the coefficients), draw
# the ticket when it has emerged, and pre-train only the ticket for the rest. The authors never
# released that code; this notebook implements the paper's description with the study's one loop.
# From the same random initialisation (a small BERT of the profile's size, from scratch on the
# text corpus), all `pretrain_steps` long:
#
# - **dense**: ordinary MLM pre-training;
# - **earlybert**: the first steps are the search (ended by the early-bird detector, at most
#   `search_fraction` of the run; `draw="fixed"` ends it exactly there); the ticket (1/3 of the
#   heads per layer, 40% of FFN neurons globally) is pruned out and pre-trained for the remaining
#   steps, from the searched weights (`rewind=False`; `True` restarts from the initialisation);
# - **random**: the same number of heads / neurons per layer at random positions, from the same
#   weights and for the same steps as the ticket (it shares the search, and its time).
#
# Then every pre-trained checkpoint is fine-tuned on a GLUE task **for the same number of steps**
# (not the same time) over the seeds. Plotted: MLM validation loss against pre-training
# wall-clock time, and the fine-tuned dev metric per method. Table: pre-training time (search
# included), FLOPs, parameters, validation loss, fine-tuned metric and fine-tuning time.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
seeds: list | None = None  # None: the profile's seeds (fine-tuning, at most max_seeds); pre-training uses the first
max_seeds: int | None = None  # None: every seed of the profile (the study runs 3); fewer for a quick look
task: str = "SST-2"
ln: str = "pre"  # the scratch models' block: "pre" (PreLN) or "post"
pretrain_fraction: float = 0.2  # pre-training length: this fraction of the profile's pretrain_steps (CPU budget)
search_fraction: float = 0.2  # the search may use at most this fraction of the pre-training steps
draw: str = "detector"  # "detector" (early-bird criterion) or "fixed" (draw at search_fraction)
draw_every: int | None = None  # None: every 2% of the longest search
window: int = 5
epsilon: float = 0.1
lambda_head: float = 1e-4
lambda_ffn: float = 1e-4
head_ratio: float = 0.333333
ffn_ratio: float = 0.4
rewind: bool = False
max_train_examples: int | None = None  # fine-tuning subset; None: the profile's
finetune_lr: float | None = None  # None: the profile's
finetune_epochs: float | None = None  # None: the profile's

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from repro import results
from repro.checks import check_parameters
from repro.data import load_tokenizer
from repro.earlybert import compare_pretraining, record_comparison, train_seconds
from repro.metrics import main_metric
from repro.profiles import get_profile
from repro.tasks import corpus_data, finetune_glue, glue_data, glue_model, pretrain_mlm, scratch_model

check_parameters(globals())
P = get_profile(profile, max_train_examples=max_train_examples, finetune_lr=finetune_lr,
                finetune_epochs=finetune_epochs)
out = Path(output_dir) if output_dir else results.output_dir(profile, "earlybert_pretraining")
seeds = list(seeds if seeds is not None else P.seeds[:max_seeds])
seed = seeds[0]
steps = max(1, round(pretrain_fraction * P.pretrain_steps))
tokenizer = load_tokenizer(P.checkpoint)  # the scratch models share the checkpoint's WordPiece vocabulary
chars = steps * P.pretrain_batch * P.seq_len * 5  # ~5 characters per token: one pass over the text
corpus = corpus_data(P, tokenizer, data_dir, max_chars=chars, valid_chars=200 * P.seq_len * 5)
METHODS = ["dense", "random", "earlybert"]
print(f"profile {P.name}: {P.layers}x{P.hidden} {ln}LN BERT from scratch, {steps} pre-training steps of "
      f"{P.pretrain_batch}x{P.seq_len} tokens at lr {P.pretrain_lr} on {len(corpus[0])} blocks; search at most "
      f"{search_fraction:.0%} ({draw}); then {task}, {P.max_train_examples or 'all'} examples, seeds {seeds}")

# %%
def pretrain(model, n, hooks):
    return pretrain_mlm(model, P, seed, data=corpus, steps=n, hooks=hooks, eval_every=max(1, steps // 5),
                        progress=False)


runs = compare_pretraining(
    lambda slimming: scratch_model(P, tokenizer, ln=ln, seed=seed, slimming=slimming), pretrain,
    total_steps=steps, seed=seed, seq_len=P.seq_len, batch_size=P.pretrain_batch, search_fraction=search_fraction,
    draw=draw, draw_every=draw_every, rewind=rewind, window=window, epsilon=epsilon,
    lambda_head=lambda_head, lambda_ffn=lambda_ffn, head_ratio=head_ratio, ffn_ratio=ffn_ratio)
pre_config = {"profile": P.to_dict(), "ln": ln, "steps": steps, "search_fraction": search_fraction, "draw": draw,
              "rewind": rewind, "lambda": [lambda_head, lambda_ffn], "ratios": [head_ratio, ffn_ratio]}
pre_rows = pd.DataFrame(record_comparison(runs, notebook="earlybert_pretraining", profile=profile, task="MLM",
                                          seed=seed, config=pre_config))
for method, r in runs.items():
    print(f"{method:9s}: val loss {r['metrics']['val_loss']:.3f}, {r['times']['total']:.1f}s "
          f"(search {r['times']['search']:.1f}s), {r['params']:,} params" +
          (f", ticket drawn at step {r['draw_step']} (detector fired: {r['found']})" if method == "earlybert" else ""))

# %%
# each pre-trained model is saved (ours: the pruned shape lives in config.json) and fine-tuned
ckpt = {}
for method, r in runs.items():
    ckpt[method] = r["model"].save_pretrained(out / "checkpoints" / method)
fine_rows = []
for s in seeds:
    data = glue_data(task, P, tokenizer, data_dir, s)
    for method in METHODS:
        torch.manual_seed(s)
        ft = finetune_glue(glue_model(str(ckpt[method]), task, seed=s), task, P, s, tokenizer=tokenizer, data=data,
                           progress=False)
        pre = runs[method]
        t_ft = train_seconds(ft)
        results.record(notebook="earlybert_pretraining", profile=profile, task=task, method=method, seed=s,
                       metrics={**ft["metrics"], "pretrain_val_loss": pre["metrics"]["val_loss"]},
                       times={"pretrain": pre["times"]["total"], "finetune": t_ft},
                       config={**pre_config, "finetune_task": task, "n_train": ft["n_train"], "n_eval": ft["n_eval"]},
                       params=pre["params"], flops=pre["flops"])
        fine_rows.append({"method": method, "seed": s, "value": ft["metrics"][main_metric(task)], "finetune_s": t_ft,
                          "finetune_steps": ft["result"].steps})
        print(f"{task} seed {s} {method:9s}: {main_metric(task)} {fine_rows[-1]['value']:.1f} ({t_ft:.1f}s)")
fine = pd.DataFrame(fine_rows)

# %%
pre_rows["time_saving_pct"] = 100 * (1 - pre_rows["time_total"] / pre_rows.set_index("method").loc["dense", "time_total"])
pre_rows["flops_saving_pct"] = 100 * (1 - pre_rows["flops_total"] / pre_rows.set_index("method").loc["dense", "flops_total"])
table = pre_rows.set_index("method")[["val_loss", "time_total", "time_search", "time_saving_pct", "flops_total",
                                      "flops_saving_pct", "flops_per_step", "params", "search_steps", "train_steps"]]
table = table.rename(columns={"val_loss": "pretrain_val_loss", "time_total": "pretrain_time_s",
                              "time_search": "search_time_s", "flops_total": "pretrain_flops"})
g = fine.groupby("method")
table[f"{task}_{main_metric(task)}"] = g["value"].mean()
table[f"{task}_{main_metric(task)}_std"] = g["value"].std()
table["finetune_time_s"] = g["finetune_s"].mean()
table["finetune_steps"] = g["finetune_steps"].first()
table = table.reindex(METHODS)
results.save_table(table, out, "earlybert_pretraining")
results.save_table(pre_rows, out, "pretraining_runs")
results.save_table(fine, out, "finetuning_runs")
curves = pd.DataFrame([{"method": m, **h} for m, r in runs.items() for h in r["history"]])
results.save_table(curves, out, "pretraining_curves")
table

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
colors = {"dense": "tab:gray", "random": "tab:orange", "earlybert": "tab:blue"}
for method in METHODS:
    r = runs[method]
    # validation points of each run against its training time (evaluation excluded); a ticket's
    # run starts after the search and the drawing
    offset = r["times"]["search"] + r["times"]["draw"]
    hist = pd.DataFrame(r["history"])
    evals = pd.DataFrame(r["evals"])
    t = offset + np.interp(evals["step"], [0, *hist["step"]], [0, *(hist["compute"] + hist["data"])])
    axes[0].plot(t, evals["val_loss"], "o-", color=colors[method], label=method, ms=3)
    if method == "earlybert":  # the search (shared with the random ticket)
        sh, se = pd.DataFrame(r["search_history"]), pd.DataFrame(r["search_evals"])
        ts = np.interp(se["step"], [0, *sh["step"]], [0, *(sh["compute"] + sh["data"])])
        axes[0].plot(ts, se["val_loss"], "o--", color=colors[method], ms=3, label="search (dense + coefficients)")
    if r["times"]["search"]:
        axes[0].axvline(offset, color=colors[method], ls=":", lw=1)
axes[0].set_xlabel("pre-training wall-clock time (s), search included (dotted: ticket drawn)")
axes[0].set_ylabel("MLM validation loss (nats/token)")
axes[0].set_title(f"Pre-training from scratch ({P.layers}x{P.hidden}, {steps} steps)")
axes[0].legend()
for i, method in enumerate(METHODS):
    v = fine[fine.method == method]["value"]
    axes[1].bar(i, v.mean(), 0.6, color=colors[method])
    axes[1].scatter([i] * len(v), v, color="k", s=10, zorder=3)
axes[1].set_xticks(range(len(METHODS)), METHODS)
axes[1].set_ylabel(f"{task} dev {main_metric(task)} (0-100)")
axes[1].set_title(f"Fine-tuned for equal steps (bars: mean over {len(seeds)} seed(s))")
fig.tight_layout()
results.save_figure(fig, out, "earlybert_pretraining")

# %%
eb = table.loc["earlybert"]
summary = {"pretrain_steps": steps, "draw": draw, "rewind": rewind, "search_fraction": search_fraction,
           "detector_fired": bool(runs["earlybert"]["found"]), "draw_step": runs["earlybert"]["draw_step"],
           "draw_fraction": runs["earlybert"]["draw_step"] / steps, "fired": runs["earlybert"]["fired"],
           "finetune_task": task, "finetune_metric": main_metric(task), "equal": "fine-tuning steps",
           "methods": {m: {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in table.loc[m].items()}
                       for m in METHODS}}
results.write_summary(out, summary)
metric_col = f"{task}_{main_metric(task)}"
display(Markdown(
    f"**EarlyBERT in pre-training ({profile} profile).** The ticket was drawn at step {summary['draw_step']} of "
    f"{steps} ({100 * summary['draw_fraction']:.0f}%; detector fired: {summary['detector_fired']}). Pre-training "
    f"took {abs(eb['time_saving_pct']):.1f}% {'less' if eb['time_saving_pct'] >= 0 else 'more'} wall-clock time than dense "
    f"({abs(eb['flops_saving_pct']):.1f}% {'fewer' if eb['flops_saving_pct'] >= 0 else 'more'} FLOPs), reaching validation loss "
    f"{eb['pretrain_val_loss']:.3f} vs dense {table.loc['dense', 'pretrain_val_loss']:.3f} and random ticket "
    f"{table.loc['random', 'pretrain_val_loss']:.3f}. Fine-tuned on {task} for equal steps: EarlyBERT "
    f"{eb[metric_col]:.1f}, dense {table.loc['dense', metric_col]:.1f}, random {table.loc['random', metric_col]:.1f} "
    f"({main_metric(task)}). Timing conditions: 1-minute load average {pre_rows['loadavg'].mean():.1f} on "
    f"{os.cpu_count()} cores"
    f"{' (other work competed for the CPU: wall-clock times are noisy)' if pre_rows['loadavg'].max() > os.cpu_count() + 0.5 else ''}. "
    + ("At smoke scale this only shows the pipeline runs end to end." if profile == "smoke" else "")))
