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
# # Where PLD's premise starts to hold: PostLN fails at a rate PreLN + PLD trains
#
# PLD's speed-up rests on PreLN + PLD training at a learning rate PostLN cannot use. At the `cpu`
# PLD size (12 x 128) the pilot in `pld_pretraining` found none up to 4e-3. Here the pilot widens,
# depth before width (the profile's size, twice as deep, then twice as wide), at rates up to 1e-2,
# with the recipe's 2% warm-up and the official PreLN init: one pilot run (the first `steps` of a
# full run's schedule) per configuration, rate and arm.
#
# The rule (`repro.premise`, set before these runs): the premise **holds** at a configuration and
# rate when PreLN + PLD is stable and PostLN diverges, is not stable, or ends at least
# `premise.WORSE_NATS` nats worse. **`premise`** (table and figure): final validation loss or the
# step a run diverged at. Where the premise holds (`speedup = True`), the speed-up comparison runs
# there: PostLN at its best stable rate against PreLN + PLD at the failing one, full schedules,
# reported as a curve (**`speedup_curve`**): time to each target loss between the unigram plateau
# and the baseline's final loss.
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
seeds: list | None = None  # None: the profile's (the first is used)
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
rates: list | None = None  # None: the profile's premise_lrs (1e-3 ... 1e-2)
steps: int | None = None  # each pilot; None: the profile's pld_pilot_steps (cpu 300 of a 4000-step schedule)
speedup: bool = True  # where the premise holds, run the two full runs and the speed-up curve
theta_bar: float = 0.5

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from repro import pld, premise, results
from repro.checks import check_parameters
from repro.profiles import pld_profile
from repro.study import Study
from repro.units import unigram_unit

check_parameters(globals())
study = Study("pld_premise", profile, train=train)
P = pld_profile(study.get_profile())
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
seed = list(seeds if seeds is not None else P.seeds)[0]
shapes, grid = premise.search_shapes(P), tuple(rates or P.premise_lrs)
pld_kw = {"theta_bar": theta_bar, "gamma": pld.heuristic_gamma(P.pretrain_steps), "variant": "paper"}
print(f"profile {P.name}: shapes {shapes}, rates {grid}, pilots of {steps or P.pld_pilot_steps} of "
      f"{P.pretrain_steps} steps, batch {P.pretrain_batch} x {P.seq_len}, seed {seed}")

# %%
pilots = premise.premise_units(study, P, seed, shapes=shapes, rates=grid, steps=steps, pld_kw=pld_kw, data_dir=data_dir)
table = premise.premise_table(pilots)
verdicts = premise.verdicts(table)
results.save_table(table, out, "premise")
results.save_table(verdicts, out, "premise_verdicts")
unigram = (unigram_unit(study, P, data_dir=data_dir) or {}).get("metrics", {}).get("val_loss")
fig, axes = plt.subplots(1, len(shapes), figsize=(4.5 * len(shapes), 4), sharey=True, squeeze=False)
for ax, (L, H) in zip(axes[0], shapes):
    g = table[(table["layers"] == L) & (table["hidden"] == H)]
    for i, arm in enumerate(premise.ARMS):
        a = g[g["arch"] == arm]
        ax.plot(a["lr"], a["final_val_loss"], marker="o", color=f"C{i}", label=arm)
        bad = a[~a["stable"].astype(bool)]  # astype: an empty table's column is of object dtype
        ax.scatter(bad["lr"], bad["final_val_loss"].fillna(g["final_val_loss"].max()), marker="x", s=80, color=f"C{i}")
    if unigram:
        ax.axhline(unigram, color="grey", ls=":", label=f"unigram plateau {unigram:.2f}")
    ax.set(xscale="log" if len(g) else "linear", xlabel="peak learning rate", title=f"{L} x {H}")
axes[0][0].set_ylabel("validation MLM loss at the pilot's end (nats)")
axes[0][0].legend(fontsize=8)
fig.suptitle("PostLN vs PreLN + PLD pilots (x: not stable, drawn at the panel's top when non-finite)")
fig.tight_layout()
results.save_figure(fig, out, "premise")
verdicts

# %%
hit = premise.smallest(verdicts)
runs = premise.speedup_runs(study, P, table, hit, seed, pld_kw=pld_kw, data_dir=data_dir) if hit and speedup else {}
curve = None
if all(runs.values()) and runs and runs["postln"]["status"] == "ok":
    curve = premise.speedup_curve(runs["postln"], runs["preln_pld"], runs["unigram"]["metrics"]["val_loss"])
    results.save_table(curve, out, "speedup_curve")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["target_val_loss"], curve["speedup_seconds"], marker="o", label="training seconds")
    ax.plot(curve["target_val_loss"], curve["speedup_step"], marker=".", ls="--", label="steps")
    ax.axhline(pld.PAPER_SPEEDUP, color="grey", ls=":", label=f"paper {pld.PAPER_SPEEDUP}x")
    ax.invert_xaxis()
    ax.set(xlabel="target validation loss (plateau -> baseline's final)", ylabel="PostLN / PreLN + PLD",
           title=f"Speed-up to each loss at {hit['layers']} x {hit['hidden']}")
    ax.legend(fontsize=8)
    results.save_figure(fig, out, "speedup_curve")
curve

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
state = study.status()
study.write_summary(out, {"shapes": shapes, "rates": grid, "rule": {"worse_nats": premise.WORSE_NATS},
                          "verdicts": verdicts.to_dict("records"), "smallest": hit, "unigram_loss": unigram,
                          "speedup_curve": None if curve is None else curve.to_dict("records")})
lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} runs.**"]
lines += premise.conclusion(verdicts, hit, curve, state["complete"])
display(Markdown("\n".join(lines) or "Nothing recorded yet."))
