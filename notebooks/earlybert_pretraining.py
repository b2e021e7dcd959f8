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
# # EarlyBERT in pre-training: search, draw, pre-train the ticket, then fine-tune
#
# The EarlyBERT paper (Chen et al., ACL 2021) also applies the method to pre-training: search during
# masked-LM pre-training (all weights + slimming coefficients, L1 on the coefficients), draw the
# ticket when it has emerged, pre-train only the ticket for the rest. The authors never released
# that code; this follows the paper's text with the study's one loop. From the same random
# initialisation (a small BERT of the profile's size, from scratch on the book corpus; `cpu`: 4 x 256,
# 600 steps of 32 x 128 tokens), every run as many steps as dense:
#
# - **dense**: ordinary MLM pre-training;
# - **earlybert**: the search is the start of a pre-training run (its schedule is the whole run's);
#   the ticket (1/3 of the heads per layer, 40% of the FFN neurons) is drawn when the early-bird
#   detector fires, by 20% of the run at the latest (`draw="fixed"`: exactly there), pruned out of
#   the searched weights (the search's steps are pre-training too) and pre-trained for the rest.
#   The search unit records on to half the run (`ticket_mask_distance` plots where the criterion
#   fires); only the steps up to the draw are charged;
# - **random**: the ticket's per-layer sizes at random positions, from the same searched weights,
#   for the same steps (it shares the search, and its time).
#
# Each model is saved as its unit's artifact and fine-tuned on a GLUE task (the profile's sizes and
# seeds) for the same number of steps. Plotted: MLM validation loss against pre-training time (search
# included) and the fine-tuned dev metric. Table `earlybert_pretraining`: validation loss, time,
# FLOPs, parameters, savings against dense, fine-tuned metric (mean ± 95% t-interval over seeds).
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
seeds: list | None = None  # fine-tuning seeds; None: the profile's for the task; pre-training uses the profile's first
task: str = "SST-2"
pretrain_steps: int | None = None  # each pre-training run's length; None: the profile's eb_pretrain_steps (cpu 600)
ln: str = "pre"  # the scratch models' block: "pre" (PreLN) or "post"
draw: str = "detector"  # "detector" (early-bird criterion, by search_fraction at the latest) or "fixed"
pretrain_recipe: dict | None = None  # overrides of earlybert_settings.PretrainRecipe, e.g. {"search_fraction": 0.1}
max_train_examples: int | None = None  # fine-tuning subset; None: the profile's for the task

# %%
import pandas as pd
from IPython.display import Markdown, display

from repro import earlybert_pretrain as ebp
from repro import earlybert_settings as ebs
from repro import earlybert_tables as ebt
from repro import views_earlybert as ebv
from repro import results
from repro.checks import check_parameters
from repro.metrics import main_metric
from repro.sources import load_tokenizer
from repro.study import Study
from repro.units import glue_unit, scratch_vs_checkpoint

check_parameters(globals())
study = Study("earlybert_pretraining", profile, train=train)
P = study.get_profile(max_train_examples=max_train_examples, task_max_train=() if max_train_examples else None,
                      eb_pretrain_steps=pretrain_steps)
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
PR = ebs.recipe(ebs.PretrainRecipe(), pretrain_recipe)
seed, steps = P.seeds[0], ebp.pretrain_steps(P)
seeds = list(seeds if seeds is not None else P.seeds_for(task))
tokenizer = load_tokenizer(P.checkpoint)  # the scratch models share the checkpoint's WordPiece vocabulary
print(f"profile {P.name}: {P.layers}x{P.hidden} {ln}LN BERT from scratch, {steps} steps of {P.pretrain_batch}x{P.seq_len} "
      f"tokens at lr {P.pretrain_lr:g}; ticket by {PR.search_fraction:.0%} ({draw}); then {task}, "
      f"{P.max_train(task) or 'all'} examples, seeds {seeds}")

# %%
search = ebp.pretrain_search_unit(study, P, seed, PR, ln=ln, data_dir=data_dir)
pre = {"dense": ebp.pretrain_dense_unit(study, P, seed, ln=ln, data_dir=data_dir),
       **{m: ebp.pretrain_ticket_unit(study, P, seed, search, m, PR, draw=draw, ln=ln, data_dir=data_dir)
          for m in ("earlybert", "random")}}
like = ("glue_finetune", "dense", task, scratch_vs_checkpoint(P))  # plan estimate while pre-training runs
fine = [glue_unit(study, task, P, s, tokenizer=tokenizer, method=m, data_dir=data_dir,
                  checkpoint=study.cache_dir(r["unit"]) / "model" if r else None,
                  checkpoint_id=r["unit"] if r else f"{m}: waiting", needs=[r], like=like) for m, r in pre.items() for s in seeds]
fine = results.to_frame([r for r in fine if r is not None])

# %% tags=["nbval-check-output"]
print(f"{study.status()['done']} of {len(study.units)} units done")
table = ebt.pretraining_table(pre, fine, f"metric.{main_metric(task)}")
if len(table):
    results.save_table(table, out, "earlybert_pretraining")
    display(table)

# %%
runs = {m: r for m, r in pre.items() if r is not None}
if runs:  # MLM validation loss against pre-training time, search included; the fine-tuned metric
    title = f"Pre-training from scratch ({P.layers}x{P.hidden}, {steps} steps)"
    fig = ebv.plot_pretraining(runs, search, fine, task, len(seeds), title, PR.observe_fraction)
    results.save_figure(fig, out, "earlybert_pretraining")

# %%
drawn = search and search["tickets"][draw]
summary = {"pretrain_steps": steps, "draw": draw, "recipe": PR.search_config(), "finetune_task": task,
           "finetune_metric": main_metric(task), "equal": "fine-tuning steps", "seeds": seeds,
           "draw_step": drawn and drawn["step"], "draw_fraction": drawn and drawn["fraction"],
           "detector_fired": drawn and drawn["found"], "fired": search and search["fired"],
           "methods": table.to_dict("index")}
study.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
state = study.status()
lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} units.**"]
if drawn:
    lines.append(f"- The ticket was drawn at step {drawn['step']} of {steps} ({100 * drawn['fraction']:.0f}%; detector "
                 f"fired by then: {drawn['found']}).")
if {"dense", "earlybert"} <= set(table.index):
    e, d = table.loc["earlybert"], table.loc["dense"]
    lines.append(f"- Pre-training against dense, search included: {results.saving(e['time_saving_pct'])}, "
                 f"{results.fewer_flops(e['flops_saving_pct'])}; validation loss {e['val_loss']:.3f} vs dense {d['val_loss']:.3f}"
                 + (f" and random ticket {table.loc['random', 'val_loss']:.3f}" if "random" in table.index else "") + ".")
if len(fine):
    lines.append(f"- Fine-tuned on {task} for equal steps ({main_metric(task)}): " + ", ".join(
        f"{m} {results.format_pm(row['finetune'], row['finetune_hw'])}" for m, row in table.iterrows()) + ".")
lines.append(ebt.timing_note(pd.DataFrame(list(runs.values())), profile))
display(Markdown("\n".join(lines)))
