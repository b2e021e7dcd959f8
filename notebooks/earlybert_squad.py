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
# # EarlyBERT on SQuAD v1.1: dense vs EarlyBERT vs random ticket
#
# EarlyBERT's SQuAD claim (Chen et al., ACL 2021): the ticket (1/3 of the heads per layer, 40% of the
# FFN neurons over all layers) reaches EM/F1 close to dense BERT, in less time, search included.
# Only `dev-v1.1.json` is available offline, so its 48 articles are split by article (never by
# question: questions on one paragraph share its text), half for training and half for evaluation
# (split seed 0, the same for every run; the question counts are printed below). Windows of 384
# tokens with stride 128, as the official recipe (smoke: smaller); EM and F1 by SQuAD's official
# normalisation. Per seed, from the same pretrained checkpoint and span-head initialisation:
#
# - **dense**: fine-tuning for 2 epochs at the profile's SQuAD rate, 10% warm-up (our baseline recipe);
# - **EarlyBERT** as the official SQuAD scripts run it (VITA-Group/EarlyBERT at 5936242,
#   `notes/official-code.md`): search at lr 3e-5 in a 2-epoch linear schedule with no warm-up, no
#   weight decay, Adam eps 1e-8 (`launch_earlybert_squad.sh` l.11-15, l.49-51; search script l.109,
#   l.657-669), stopped when the early-bird detector fires (at most one epoch); the ticket, ranked by
#   the raw coefficient (draw script l.910-912, l.939-941), pruned out of the rewound weights and
#   trained at lr 3e-5 for 3 epochs with no warm-up (launcher l.25-26, l.70-71);
# - **random**: the ticket's per-layer sizes at random positions, trained the same way, no search;
# - every ticket's score right after pruning (`pruned_f1`); the **earlier recipe** (search and ticket
#   at the dense rate and length, 10% warm-up, |c| ranking): its recorded runs, read, never rerun.
#
# The runs take hours at `cpu`, so dense seed 0 runs first and the others only once it reaches
# F1 >= `dense_f1_bar` (50): below that the model has not learned enough for the comparison to
# mean anything. Differences from the official code, stated: batch 32 (official 12 x 4 GPUs = 48);
# the ticket drawn by the detector instead of the fixed point, 20% of the first epoch (`draw`); a
# random ticket with the ticket's per-layer sizes; the search stopped after at most one of its two
# epochs (every ticket is drawn by then). Time saved both ways: equal epochs and as run (dense 2
# epochs, the ticket 3).
# Outputs: `earlybert_squad.csv` (EM, F1, times, savings, FLOPs, parameters; mean ± 95% t-interval
# over seeds), `runs.csv`, the figure `earlybert_squad`.
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
seeds: list | None = None  # None: the profile's seeds
checkpoint: str | None = None  # None: the profile's checkpoint
draw: str = "detector"  # the ticket called EarlyBERT: "detector" or "fixed" (official: 20% of the first epoch)
dense_f1_bar: float | None = None  # dense seed 0's F1 that unlocks the comparison; None: 50; 0: no gate
recipe: dict | None = None  # overrides of earlybert_settings.SQUAD_RECIPE (the official SQuAD recipe)

# %%

from IPython.display import Markdown, display

from repro import earlybert_runs as ebr
from repro import earlybert_settings as ebs
from repro import earlybert_tables as ebt
from repro.checks import check_parameters
from repro.sources import load_tokenizer
from repro.study import Study

check_parameters(globals())
study = Study("earlybert_squad", profile, train=train)
P = study.get_profile(checkpoint=checkpoint)
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
s, R = ebs.Setting(ebs.SQUAD, P, data_dir), ebs.recipe(ebs.SQUAD_RECIPE, recipe)
bar = ebs.SQUAD_DENSE_F1 if dense_f1_bar is None else dense_f1_bar
seeds = list(seeds if seeds is not None else P.seeds)
tokenizer = load_tokenizer(P.checkpoint)
cfg = s.config()
print(f"profile {P.name}: {P.checkpoint}, windows {P.squad_seq_len}/{P.squad_stride}, batch {P.finetune_batch}, "
      f"{P.squad_epochs:g} epochs at lr {cfg['lr']:g}; training questions {P.squad_train_questions or 'all'} of half the "
      f"articles, evaluation {P.squad_eval_questions or 'all'} of the other half; seeds {seeds}; gate F1 {bar:g}")

# %%
first = ebr.dense_unit(study, s, seeds[0], tokenizer)
gate = ebr.squad_gate(first, bar)
records = [first]
if gate != "failed":  # waiting: the others are planned behind dense seed 0
    for seed in seeds:
        records += ebr.comparison_units(study, s, seed, tokenizer, R, [draw, "random"], draw=draw,
                                        with_dense=seed != seeds[0], needs=[first] if bar > 0 else [])
records = [r for r in records if r is not None]
runs = ebt.comparison(records)
with study.reading():  # the earlier recipe's recorded runs, never trained again
    earlier = [r for seed in seeds for r in ebr.comparison_units(study, s, seed, tokenizer, ebs.EARLIER_SQUAD_RECIPE,
                                                                 [draw, "random"], draw=draw, with_dense=False) if r]
print(f"gate: {gate}" + (f" (dense seed {seeds[0]} F1 {first['metrics']['f1']:.1f})" if first else "")
      + f"; {study.status()['done']} of {len(study.units)} units done")
if first:
    print(f"{first['n_train']} training windows, {first['n_eval']} evaluation questions")

# %% tags=["nbval-check-output"]
table = ebt.save_comparison(runs, draw, out, study.notebook, f"SQuAD v1.1: EarlyBERT ({draw} ticket) vs dense and random")
if table is not None:
    display(ebt.shown(table)[["n", "exact_match", "value", "time_s", "time_saving_pct", "flops_saving_pct", "params"]])

    was = ebt.earlier_recipe(earlier, [r for r in records if r["method"] == "dense"], draw)
    if was is not None:
        ebt.save_table(ebt.shown(was), out, "earlier_recipe")
        display(ebt.shown(was)[["n", "exact_match", "value"]])

# %%
summary = {"earlybert": draw, "gate": gate, "dense_f1_bar": bar, "seeds": seeds, "seq_len": P.squad_seq_len,
           "stride": P.squad_stride, "epochs": P.squad_epochs, "lr": cfg["lr"], "split": cfg["split"],
           "train_questions": P.squad_train_questions, "eval_questions": P.squad_eval_questions,
           "n_train_windows": first and first["n_train"], "n_eval_questions": first and first["n_eval"],
           "paper_time_saving_pct": list(ebt.PAPER_TIME_SAVING)}
if table is not None:
    summary["methods"] = table.loc[ebs.SQUAD, ["exact_match", "value", "time_s"]].to_dict("index")
study.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
state = study.status()
lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} units.**"]
if gate == "failed":
    lines.append(f"- Dense seed {seeds[0]} reached F1 {first['metrics']['f1']:.1f} < {bar:g}: the comparison was not run "
                 "(a model this weak says nothing about the ticket); more training questions or epochs first, or "
                 "`-p dense_f1_bar=0` to run it anyway.")
lines += ebt.comparison_text(table, draw, f"as run (dense {P.squad_epochs:g} epochs, ticket {R.ticket_epochs:g})")
lines.append(ebt.timing_note(runs, profile))
display(Markdown("\n".join(lines)))
