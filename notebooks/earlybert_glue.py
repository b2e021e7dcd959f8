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
# # EarlyBERT on GLUE: dense vs EarlyBERT vs random ticket, and early vs late tickets
#
# EarlyBERT's fine-tuning claims (Chen et al., ACL 2021): a structured ticket (1/3 of the heads in
# every layer, 40% of the FFN neurons over all layers) found early in fine-tuning trains to accuracy
# comparable with dense BERT and better than a random ticket, in 35-45% less time, search included.
# Per task and seed of the profile (`cpu`: the whole training sets, SST-2 cut to 10k, whole dev sets;
# 3 seeds, 5 for MRPC and RTE), **as the official GLUE scripts run it** (VITA-Group/EarlyBERT at
# 5936242; file and line of each value in `notes/official-code.md`):
#
# - **dense**: `glue_finetune`'s own runs (our recipe for MiniLM-L6: lr 5e-5, 3 epochs, 10% warm-up);
# - **search**: all weights + coefficients, L1 1e-4 on the coefficients, lr 2e-5 in the schedule of a
#   3-epoch run stopped after one epoch (`launch_earlybert_glue.sh` l.46-55: `--num_train_epochs 3.0
#   --max_epochs 1`; `trainer.py` l.423, l.543-546), no warm-up, no weight decay, Adam eps 1e-8
#   (`training_args.py` l.113-114, l.126); the coefficients recorded every step, the early-bird
#   detector (5 draws within 0.1) running;
# - **tickets**, ranked by the raw coefficient against a quantile (`run_glue_earlybert_draw_and_train.py`
#   l.246-248, l.275-277: heads per layer, neurons over all layers), pruned out of the weights before
#   the search (rewind to `checkpoint-0`, launcher l.61) and trained at lr 4e-5 for 2 epochs, no
#   warm-up (launcher l.32-33): drawn when the detector fired (**detector**, EarlyBERT here), at the
#   official fixed point, 20% of the epoch (**fixed**), at the end of the epoch (**end**), and a
#   **random** ticket with the detector ticket's per-layer sizes.
#
# Differences from the official code, stated: its effective batch is 32 per GPU x the GPUs (the
# launcher's output folder says 4: 128); ours is 32, the dense baseline's. It draws at the fixed
# point and has no detector (`draw` picks which ticket is "EarlyBERT"); its random control
# thresholds random scores. Time saved against dense both ways: **equal epochs** (the report's
# rule) and **as run** (the official accounting), each run charged its steps at per-step costs
# timed side by side (**step_times**).
#
# **Controls** (`controls` tasks): the *full ticket* (every unit kept, through the same rewind ->
# prune -> train path) on dense's recipe and on the ticket's; the detector ticket on dense's recipe
# and at lr 1e-4; every ticket's score right after pruning; the *null search* (lambda = 0). **Trend
# over ticket size** (`sizes`): EarlyBERT and random tickets at 1/6 heads + 20% neurons and 1/2 +
# 60% beside the paper's 1/3 + 40%. **Earlier recipe** (ours before this one: a one-epoch schedule
# with 10% warm-up, weight decay 0.01, eps 1e-6, ranked by |c|): its recorded runs, read, never rerun.
# Outputs: `earlybert_glue.csv`, `early_bird.csv`, `controls.csv`, `null_search.csv`, `sizes.csv`,
# `earlier_recipe.csv`, `runs.csv`, the figures `earlybert_glue` and `sizes`.
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile's GLUE tasks
seeds: list | None = None  # None: the profile's seeds for each task (cpu: 3, 5 for MRPC and RTE)
checkpoint: str | None = None  # None: the profile's checkpoint
max_train_examples: int | None = None  # every task's training subset; None: the profile's sizes per task
draw: str = "detector"  # the ticket called EarlyBERT: "detector" (early-bird criterion) or "fixed" (official)
tickets: list | None = None  # None: all four ("detector", "fixed", "end", "random"); the early-bird test needs them
recipe: dict | None = None  # overrides of earlybert_settings.Recipe, e.g. {"epsilon": 0.05, "ticket_lr": 5e-5}
controls: list | None = None  # tasks that get the controls; None: CoLA, SST-2 and MRPC where run
sizes: list | None = None  # (head_ratio, ffn_ratio) of the trend; None: earlybert_controls.SIZES
size_seeds: int = 2  # seeds per size other than the recipe's own (which has the task's seeds)

# %%

from IPython.display import Markdown, display

from repro import earlybert_controls as ebc
from repro import earlybert_runs as ebr
from repro import earlybert_settings as ebs
from repro import earlybert_tables as ebt
from repro import views_earlybert as ebv
from repro import results
from repro.checks import check_parameters
from repro.sources import load_tokenizer
from repro.study import Study

check_parameters(globals())
study = Study("earlybert_glue", profile, train=train)
P = study.get_profile(checkpoint=checkpoint, max_train_examples=max_train_examples,
                      task_max_train=() if max_train_examples else None)
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
R = ebs.recipe(ebs.GLUE_RECIPE, recipe)
tasks, tickets = list(tasks or P.glue_tasks), list(tickets or ebs.TICKETS)
task_seeds = {t: list(seeds) if seeds is not None else P.seeds_for(t) for t in tasks}
tokenizer = load_tokenizer(P.checkpoint)
print(f"profile {P.name}: {P.checkpoint}; dense {P.finetune_epochs:g} epochs at lr {P.finetune_lr:g}; search lr "
      f"{R.search_lr:g}, tickets {tickets} {R.ticket_epochs:g} epochs at lr {R.ticket_lr:g}; EarlyBERT = {draw!r} ticket; "
      + "; ".join(f"{t}: seeds {s}, {P.max_train(t) or 'all'} examples" for t, s in task_seeds.items()))

# %%
# every task's first seed, then the further seeds of the tasks the report can judge (dense learned)
# first; a task's controls right after its comparison, then the other ticket sizes
controls = [t for t in (controls if controls is not None else ("CoLA", "SST-2", "MRPC")) if t in tasks]
sizes = [tuple(x) for x in (sizes if sizes is not None else ebc.SIZES) if tuple(x) != (R.head_ratio, R.ffn_ratio)]
records, checks, by_size = [], [], {size: [] for size in sizes}
for seed, task in ebr.run_order(task_seeds, profile, study.root):
    s = ebs.Setting(task, P, data_dir)
    rows = ebr.comparison_units(study, s, seed, tokenizer, R, tickets, draw=draw)
    records += rows
    if task in controls:
        checks += ebc.control_units(study, s, seed, tokenizer, R, rows[-2])
for size in sizes:
    for task in controls:
        for seed in task_seeds[task][:size_seeds]:
            by_size[size] += ebc.size_units(study, ebs.Setting(task, P, data_dir), seed, tokenizer, R, *size, draw=draw)
with study.reading():  # the earlier recipe's recorded runs, never trained again
    earlier = [r for task in tasks for seed in task_seeds[task] for r in ebr.comparison_units(
        study, ebs.Setting(task, P, data_dir), seed, tokenizer, ebs.EARLIER_GLUE_RECIPE, tickets, draw=draw)]
records, checks = (ebr.in_task_order(x, tasks) for x in (records, checks))  # shown in the tasks' order, not the runs'
runs = ebt.comparison(records)
searches = [r for r in records + checks if r["method"].startswith("search")]

# %% tags=["nbval-check-output"]
print(f"{study.status()['done']} of {len(study.units)} units done")
table = ebt.save_comparison(runs, draw, out, study.notebook, f"EarlyBERT ({draw} ticket) vs dense and random, {profile} profile")
if table is not None:
    display(ebt.shown(table)[["n", "metric", "value", "time_s", "time_saving_pct", "time_saving_official_pct",
                              "flops_saving_pct", "params"]])
    eb = ebt.early_bird_table(runs[runs.method != "dense"])
    results.save_table(ebt.shown(eb), out, "early_bird")
    display(ebt.shown(eb))

# %% [markdown]
# ## Controls, the null search, the trend over ticket size and the earlier recipe

# %% tags=["nbval-check-output"]
for name, saved, shown, fig in ebv.glue_controls(runs, records, checks, searches, by_size, earlier, tickets, R, draw, profile):
    results.save_table(saved, out, name)
    if fig is not None:
        results.save_figure(fig, out, name)
    display(shown)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
summary = ebv.glue_summary(runs, searches, draw, tickets, R, P, tasks, controls, sizes)
study.write_summary(out, summary)
lines = ebv.glue_conclusion(study.status(), table, summary, runs, draw, R, P.finetune_epochs, profile)
display(Markdown("\n".join(lines)))
