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
# # When does the EarlyBERT ticket emerge? Mask distances during the search
#
# EarlyBERT's early-bird claim (Chen et al., ACL 2021, after You et al.'s Early-Bird tickets): the
# ticket (1/3 of the heads in every layer, 40% of the FFN neurons over all layers, by |coefficient|)
# stops changing early in the search. The searches are the units of `earlybert_glue` (every task and
# seed of the profile: one whole epoch, coefficients recorded every step) and of
# `earlybert_pretraining` (MLM from scratch, recorded to `observe_fraction` of the run): asked for
# by identity, trained once. The early-bird detector keeps the last 5 tickets (drawn every 2% of
# the search) and fires when the newest is within 0.1 of each. Four criteria run side by side:
# heads alone, FFN neurons alone, both as one mask (joint), and heads and FFN at the same draw (the
# stopping rule the tickets and the report use).
#
# **`criterion.csv`**: per search, where each criterion fired (fraction of the epoch; pre-training:
# of the whole run), the official fixed point (20% of the epoch) and the detector ticket's distance
# to the last ticket. **`mask_distance.png`**: the pairwise distance matrix of the tickets (both
# axes the training step, colour 0..1) of one fine-tuning search and the pre-training search, heads
# and FFN neurons; a line per criterion where it fired (legend), the report's bold.
# **`detector_trace.png`**: each detector's largest distance within its FIFO against the step.
# Whether early tickets also *train* as well as late ones is `earlybert_glue`'s early-bird table.
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile's GLUE tasks (pass what earlybert_glue ran with)
seeds: list | None = None  # None: the profile's seeds for each task
checkpoint: str | None = None  # None: the profile's checkpoint
max_train_examples: int | None = None  # as earlybert_glue's; None: the profile's sizes per task
recipe: dict | None = None  # overrides of earlybert_settings.Recipe, as earlybert_glue's
pretrain: bool = True  # also the pre-training search (earlybert_pretraining's unit)
ln: str = "pre"  # as earlybert_pretraining's
pretrain_steps: int | None = None  # as earlybert_pretraining's; None: the profile's eb_pretrain_steps
pretrain_recipe: dict | None = None  # overrides of earlybert_settings.PretrainRecipe, as earlybert_pretraining's
checkpoints: int = 60  # tickets per matrix (evenly spread over the recorded steps)

# %%
import pandas as pd
from IPython.display import Markdown, display

from repro import earlybert_pretrain as ebp
from repro import earlybert_runs as ebr
from repro import earlybert_settings as ebs
from repro import earlybert_tables as ebt
from repro import views_earlybert as ebv
from repro import results
from repro.checks import check_parameters
from repro.sources import load_tokenizer
from repro.study import Study

check_parameters(globals())
study = Study("ticket_mask_distance", profile, train=train)
P = study.get_profile(checkpoint=checkpoint, max_train_examples=max_train_examples,
                      task_max_train=() if max_train_examples else None, eb_pretrain_steps=pretrain_steps)
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
R, PR = ebs.recipe(ebs.GLUE_RECIPE, recipe), ebs.recipe(ebs.PretrainRecipe(), pretrain_recipe)
tasks = list(tasks or P.glue_tasks)
task_seeds = {t: list(seeds) if seeds is not None else P.seeds_for(t) for t in tasks}
tokenizer = load_tokenizer(P.checkpoint)
draw_kw = {"head_ratio": R.head_ratio, "ffn_ratio": R.ffn_ratio}

# %%
# in earlybert_glue's order (these are its searches)
fine = [ebr.search_unit(study, ebs.Setting(t, P, data_dir), s, tokenizer, R) for s, t in ebr.run_order(task_seeds, profile, study.root)]
pre = ebp.pretrain_search_unit(study, P, P.seeds[0], PR, ln=ln, data_dir=data_dir) if pretrain else None
found = {"fine-tuning": ebr.in_task_order(fine, tasks), "pre-training": [pre] if pre else []}  # shown in the tasks' order

# %% tags=["nbval-check-output"]
table = pd.concat([ebt.criterion_table(v, k) for k, v in found.items() if v] or [pd.DataFrame()], ignore_index=True)
if len(table):
    results.save_table(table, out, "criterion")
    display(table)

# %%
panels = []
# one fine-tuning search: the first whose trajectory this machine holds (else the first, re-run)
shown = sorted(found["fine-tuning"], key=study.gone)[:1]
for setting, r in (("fine-tuning", shown), ("pre-training", found["pre-training"])):
    for rec in map(study.need, r):  # the search's trajectory: re-run where it is gone (a new machine)
        if rec is None:  # could not re-run (deadline)
            continue
        steps, mats = ebr.distance_matrices(study, rec, checkpoints, **draw_kw)
        what = f"{rec['task']} seed {rec['seed']}" if setting == "fine-tuning" else f"MLM {P.layers}x{P.hidden}"
        panels.append({"title": f"{setting} ({what})", "steps": steps, "matrices": mats, "fired": rec["fired"],
                       "fixed": rec["tickets"]["fixed"]["step"] if setting == "fine-tuning" else None})
if panels:
    results.save_figure(ebt.plot_mask_distance(panels), out, "mask_distance")

# %%
traces = [(f"{k}: {r['task']} seed {r['seed']}", r) for k, v in found.items() for r in v[:1]]
if traces:
    results.save_figure(ebv.plot_detector_traces(traces, R), out, "detector_trace")

# %%
settings = {}
for k, v in found.items():
    if v:
        t = table[table.setting == k]
        settings[k] = {"searches": len(v), "fired": int(t["fired_found"].notna().sum()),
                       "fired_fraction": t["fired_found"].dropna().tolist(), "fixed_fraction": t["fixed"].dropna().tolist(),
                       "distance_to_last": {kind: t[f"distance_to_last_{kind}"].tolist() for kind in ("heads", "ffn")},
                       "search_fraction": PR.search_fraction if k == "pre-training" else None}
study.write_summary(out, {"epsilon": R.epsilon, "window": R.window, "criterion": "found", "settings": settings,
                          "tasks": tasks})

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
state, lines = study.status(), []
if not state["complete"]:
    lines.append(f"**Partial: {state['done']} of {state['planned']} searches.**")
for k, s in settings.items():
    f, where = s["fired_fraction"], "the epoch" if k == "fine-tuning" else "the pre-training run"
    lines.append(f"- **{k}**: the stopping rule fired in {s['fired']} of {s['searches']} searches"
                 + (f", at {100 * min(f):.0f}-{100 * max(f):.0f}% of {where} (median {100 * pd.Series(f).median():.0f}%)" if f else "")
                 + (f"; the official fixed point is {100 * s['fixed_fraction'][0]:.0f}%" if k == "fine-tuning" and s["fixed_fraction"] else "")
                 + ". The detector's ticket differs from the search's last ticket by "
                 + ", ".join(f"{kind} {pd.Series(v).mean():.2f}" for kind, v in s["distance_to_last"].items()) + " on average.")
    for kind in ("heads", "ffn"):  # one swap of a kept and a pruned unit moves the distance by 2 / units
        n = int(table.loc[table.setting == k, f"units_{kind}"].min())
        if 2 / n >= R.epsilon:
            lines.append(f"  With {n} {kind} in all one swap already moves the distance by {2 / n:.3f} >= epsilon: "
                         "that criterion only holds for identical masks.")
if profile == "smoke":
    lines.append("At smoke scale the searches are a handful of steps: the figures show the machinery, not when tickets emerge.")
display(Markdown("\n".join(lines)))
