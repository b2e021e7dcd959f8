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
# # GLUE fine-tuning of the PLD and baseline pre-trained models (PLD paper, GLUE table)
#
# The PLD paper's downstream claim: a model pre-trained with PLD fine-tunes as well as the baseline.
# The models are the final ones of `pld_pretraining`'s units, asked for by identity (same profile
# and pre-training parameters; one whose checkpoint is gone is pre-trained again): the PostLN
# baseline, PreLN + PLD at the baseline's rate and at its own best. Each is fine-tuned (every block
# runs, unscaled) on the profile's GLUE tasks and sizes (`cpu`: SST-2 cut to 10k, STS-B, MRPC, RTE,
# CoLA; full dev sets) over the profile's seeds (`cpu`: 3, 5 for MRPC and RTE). **`glue_vs_paper`**:
# dev metrics, mean ± 95% t-interval, beside the paper's rows and an input-blind predictor (majority
# label; a constant for STS-B). **`delta`**: PLD - baseline, paired by seed, beside the paper's PLD -
# BERT-base (reimpl.). **`glue_scores`**: main metric per task and model. Small models, briefly pre-trained on books: only the sign and size
# of the difference compare with the paper, and only when the baseline learned the task: it beats the input-blind
# predictor and, on STS-B, the model's own zero-shot score (cosine of mean-pooled embeddings, recorded per model).
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
seeds: list | None = None  # None: the profile's seeds of each task (pre-training uses the first)
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile's GLUE tasks
lr: float | None = None  # fine-tuning rate; None: the profile's pld_glue_lr, else the paper's rate per task
epochs: float | None = None  # None: the profile's finetune_epochs
# the pre-training units to fine-tune: pass what pld_pretraining was run with
steps: int | None = None
pilot_steps: int | None = None
lrs: list | None = None
rates: dict | None = None
theta_bar: float = 0.5
gamma: float | None = None
variant: str = "paper"

# %%
import numpy as np
from IPython.display import Markdown, display

from repro import pld, pld_runs, report, results
from repro import views_pld as vp
from repro.metrics import main_metric
from repro.checks import check_parameters
from repro.profiles import pld_profile
from repro.sources import load_tokenizer
from repro.study import Study
from repro.units import glue_unit, pld_comparison, scratch_vs_checkpoint, unigram_unit, zero_shot_unit

check_parameters(globals())
study = Study("pld_glue", profile, train=train)
P = pld_profile(study.get_profile(pld_steps=steps, pld_pilot_steps=pilot_steps, pld_lrs=lrs and tuple(lrs),
                                  finetune_epochs=epochs))
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
tasks = list(tasks or P.glue_tasks)
task_seeds = {t: list(seeds) if seeds is not None else P.seeds_for(t) for t in tasks}
task_lr = {t: lr or P.pld_glue_lr or pld.paper_finetune_lr(t) for t in tasks}
tokenizer = load_tokenizer("minilm")  # the scratch models' vocabulary
print(f"profile {P.name}: tasks {tasks} at lr {task_lr}, {P.finetune_epochs} epochs, train subset "
      f"{[P.max_train(t) or 'all' for t in tasks]}, dev {P.max_eval_examples or 'all'}; seeds {task_seeds}")

# %%
cmp = pld_comparison(study, P, list(seeds if seeds is not None else P.seeds)[0], rates=rates, theta_bar=theta_bar,
                     gamma=gamma, variant=variant, measure=False, data_dir=data_dir)
pre, diverged = pld_runs.models_to_finetune(cmp["runs"])
methods = list(pre)
size = scratch_vs_checkpoint(P)  # plan estimates while pre-training runs: glue_finetune's runs x size
like = lambda t: ("glue_finetune", "dense", t, size)
# the models this machine holds are fine-tuned first, then one whose artifact is gone is pre-trained again
order = sorted(pre.items(), key=lambda nr: nr[1] is not None and study.gone(nr[1]))
model = {n: dict(checkpoint=study.cache_dir(r["unit"]) / "model" if r else None,  # its folder, and its name in configs
                 checkpoint_id=r["unit"] if r else f"{n}: waiting for pld_pretraining", needs=[r]) for n, r in order}
rows = [glue_unit(study, t, P, s, tokenizer=tokenizer, method=n, data_dir=data_dir, lr=task_lr[t], like=like(t), **model[n])
        for n, _ in order for t in tasks for s in task_seeds[t]]
runs = results.to_frame([r for r in rows if r is not None])
print(f"{sum(r is not None for r in rows)} of {len(rows)} fine-tuning runs done; diverged in pre-training: {diverged or 'none'}")
# each model's zero-shot floor where one is defined (STS-B: cosine of mean-pooled embeddings, repro.floors),
# recorded while its checkpoint is on this machine: fine-tuning that ends below it learned nothing
zero_shot = {}
for n, _ in order:
    for t in tasks:
        z = zero_shot_unit(study, t, P, method=n, tokenizer="minilm", data_dir=data_dir, **model[n])
        if z is not None:
            zero_shot.setdefault(n, {})[t] = z["metrics"][main_metric(t)]
print(f"zero-shot floors: {zero_shot or 'none yet'}")

# %% tags=["nbval-check-output"]
chance = {t: report.chance_score(t, data_dir) for t in tasks}
table = pld_runs.glue_table(runs, methods, tasks, profile, chance) if len(runs) else None
deltas = pld_runs.glue_deltas(runs, pld_runs.BASELINE, methods, tasks) if len(runs) else None
if table is not None:
    results.save_table(table, out, "glue_vs_paper")
    results.save_table(deltas, out, "delta")
    display(table, deltas)

# %%
main = results.summarize(runs, by=("task", "method")) if len(runs) else None
main = main[[k == main_metric(t) for t, k in zip(main["task"], main["metric"])]] if len(runs) else None
if len(runs):
    results.save_figure(vp.plot_glue_scores(main, methods, tasks, chance, zero_shot, profile), out, "glue_scores")

# %%
base = pre.get(pld_runs.BASELINE)
unigram = unigram_unit(study, P, data_dir=data_dir)
scores = {m: dict(zip(g["task"], g["mean"])) for m, g in main.groupby("method")} if len(runs) else {}
summary = {"baseline": pld_runs.BASELINE, "methods": methods, "tasks": tasks, "lr": task_lr,
           "seeds": sorted({s for v in task_seeds.values() for s in v}),
           "checkpoints": {n: r["unit"] for n, r in pre.items() if r}, "diverged": diverged, "scores": scores,
           "chance": chance, "zero_shot": zero_shot, "delta": deltas.to_dict("records") if deltas is not None else [],
           "pretraining": {"tokens": pld_runs.pretraining_tokens(P),
                           "paper_tokens": pld.PAPER_TOKENS, "baseline_val_loss": base and base["metrics"]["val_loss"],
                           "unigram_loss": unigram and unigram["metrics"]["val_loss"]}}
study.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
lines = vp.glue_conclusion(study.status(), deltas, pld_runs.BASELINE)  # each PLD model - the baseline, paired by seed
if scores.get(pld_runs.BASELINE):
    pt = summary["pretraining"]
    lines.append("- Task average of the main metrics: " + ", ".join(f"`{m}` {np.nanmean(list(v.values())):.1f}" for m, v in scores.items())
                 + f"; an input-blind predictor {np.mean(list(chance.values())):.1f} (the report counts a task only "
                 "where the baseline beats it by 5 points and, on STS-B, its own zero-shot score).")
    lines.append(f"- Pre-training behind these models: {pt['tokens']:.2g} tokens, the baseline ending at MLM loss "
                 f"{pt['baseline_val_loss']:.2f} (unigram plateau {pt['unigram_loss'] or np.nan:.2f}); the paper's BERT saw "
                 f"{pt['paper_tokens']:.2g} tokens, {pt['paper_tokens'] / pt['tokens']:.0f}x more. A baseline near the "
                 f"input-blind score needs pre-training well below the plateau first (pld_pretraining's rule: {pld_runs.LEARNED_NATS:g} nat).")
for m, z in zero_shot.items():
    lines.append(f"- `{m}` before fine-tuning (zero-shot, cosine of mean-pooled embeddings): "
                 + ", ".join(f"{t} {main_metric(t)} {v:.1f} (fine-tuned: {scores.get(m, {}).get(t, np.nan):.1f})"
                             for t, v in z.items()) + ".")
display(Markdown("\n".join(lines)))
