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
# # MLM pre-training: PreLN + PLD at a rate PostLN cannot use vs the PostLN baseline (PLD's 2.5x)
#
# The paper: PostLN BERT at its usual learning rate vs PreLN + PLD at a larger rate its PreLN
# blocks tolerate; PLD reaches the baseline's quality 2.5x faster, 24% less time per sample. Here
# BERTs of the profile's PLD size (`cpu`: Google's BERT L-12/H-128, 12 layers x 128, 2 heads, seq
# 128, batch 32: deep enough for PostLN's trouble) learn masked LM from scratch on the book corpus,
# from one seed (same initial weights, data order, masks), with the PLD recipe's schedule (warm-up
# 2%, exponential decay) and PLD theta_bar 0.5, gamma 100/steps.
#
# 1. **Pilot** (`lr_pilot.csv`, `lr_pilot.png`): PostLN, PreLN, PreLN + PLD at every pilot rate for
#    the first `pilot_steps` of a full run's schedule. Stable: finite, final validation loss below
#    its start and at most 0.1 nats above its lowest. Best: the stable rate with the lowest loss.
# 2. **Full runs** at rates from the pilot (or `rates`): PostLN at its best (the baseline), PreLN at
#    its best, PreLN + PLD at the baseline's rate and at its own best; `pld_glue` fine-tunes them.
# 3. `speedup.csv`: steps and training seconds (wall-clock minus evaluation) to the baseline's final
#    validation loss, speed-ups, time per sample; step costs also timed in adjacent pairs (whole
#    runs span sessions of different load). `val_loss.png`: curves vs steps and seconds, with the
#    **unigram plateau** (the loss of predicting the corpus' token frequencies: no context used).
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
seeds: list | None = None  # None: the profile's (the first is used: one run per setting)
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
steps: int | None = None  # each full run; None: the profile's pld_steps (cpu 4000, ~2.9 h on one core)
pilot_steps: int | None = None  # None: the profile's pld_pilot_steps (cpu 300)
lrs: list | None = None  # the pilot's rates; None: the profile's pld_lrs
rates: dict | None = None  # fix full-run rates, e.g. {"postln": 5e-4, "preln_pld": 2e-3}; None: the pilot's best
theta_bar: float = 0.5
gamma: float | None = None  # None: 100 / steps
variant: str = "paper"  # PLD keep probabilities: "paper" or "code"

# %%
import pandas as pd
from IPython.display import Markdown, display

from repro import pld, pld_runs, results
from repro import views_pld as vp
from repro.checks import check_parameters
from repro.profiles import pld_profile
from repro.study import Study
from repro.units import pld_comparison

check_parameters(globals())
study = Study("pld_pretraining", profile, train=train)
P = pld_profile(study.get_profile(pld_steps=steps, pld_pilot_steps=pilot_steps, pld_lrs=lrs and tuple(lrs)))
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
seed = list(seeds if seeds is not None else P.seeds)[0]
tokens = pld_runs.pretraining_tokens(P)
print(f"profile {P.name}: {P.layers} layers x {P.hidden} ({P.heads} heads, FFN {P.intermediate}), seq {P.seq_len}, "
      f"batch {P.pretrain_batch}; full runs {P.pretrain_steps} steps ({tokens / 1e6:.1f}M tokens), pilot "
      f"{P.pld_pilot_steps} steps at {P.pld_lrs}; PLD theta_bar {theta_bar} ({variant}); seed {seed}")

# %%
cmp = pld_comparison(study, P, seed, rates=rates, theta_bar=theta_bar, gamma=gamma, variant=variant, data_dir=data_dir)
unigram = cmp["unigram"]["metrics"]["val_loss"] if cmp["unigram"] else None

# %% tags=["nbval-check-output"]
pilot = pld_runs.pilot_table([r for r in cmp["pilot"] if r])
results.save_table(pilot, out, "lr_pilot")
results.save_figure(vp.plot_pilot(pilot, cmp["chosen"], unigram, P.pld_pilot_steps, P.pld_lrs), out, "lr_pilot")
pilot

# %%
timing = cmp["timing"]["metrics"] if cmp["timing"] else None
table = pld_runs.speedup_table(cmp["runs"], timing and timing["ratio"])
runs = {n: r for n, r in cmp["runs"].items() if r is not None}
for n, r in runs.items():  # each full run's model and tokenizer: a `checkpoint` for fine-tuning notebooks
    path = study.cache_dir(r["unit"]) / "model"
    print(f"{n}: checkpoint {path}" + ("" if path.exists() else " (not on this machine: a unit that needs it re-runs it)"))
curves = pd.DataFrame([{"run": n, **c} for n, r in runs.items() for c in r["curve"]])
results.save_table(table, out, "speedup")
results.save_table(curves, out, "val_curves")
base = runs.get(pld_runs.BASELINE)
target = base["metrics"]["val_loss"] if base and base["status"] == "ok" else None
title = f"MLM pre-training from scratch ({profile}: {P.layers} layers x {P.hidden}, seq {P.seq_len}, batch {P.pretrain_batch})"
results.save_figure(vp.plot_val_loss(runs, target, unigram, title), out, "val_loss")

# %% tags=["nbval-check-output"]
table

# %%
summary = {"baseline": pld_runs.BASELINE, "target_val_loss": target, "unigram_loss": unigram, "layers": P.layers,
           "hidden": P.hidden, "seq_len": P.seq_len, "batch": P.pretrain_batch, "steps": P.pretrain_steps,
           "tokens_per_run": tokens, "pilot_steps": P.pld_pilot_steps, "pilot_lrs": P.pld_lrs, "chosen": cmp["chosen"],
           "rates": cmp["lrs"], "pld": cmp["pld"], "runs": table.to_dict("index"),
           "paper": {"speedup": pld.PAPER_SPEEDUP, "time_per_sample_saving": pld.PAPER_TIME_SAVING}}
summary |= pld_runs.time_savings(table, runs, timing)  # the time-per-sample claim (report: pld_time)
study.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %% tags=["nbval-check-output"]
state, dense_s = study.status(), timing and timing["dense_s"]
lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} runs.**"]
if dense_s:
    lines.append(f"- A dense step takes {dense_s:.2f} s here: a full run of {P.pretrain_steps} steps ~{P.pretrain_steps * dense_s / 3600:.1f} h.")
for arch, c in cmp["chosen"].items():
    lines.append(f"- Pilot, `{arch}`: best rate {c['best']}, largest stable {c['max_stable']}"
                 + (" (at the grid's end: the grid may not bracket it)" if c["at_edge"] else "") + ".")
if target is not None and unigram is not None:
    gap = unigram - target
    lines.append(f"- Baseline (`postln`, lr {base['config']['lr']:g}): final validation loss {target:.3f}, {abs(gap):.2f} nats "
                 f"{'below' if gap >= 0 else 'above'} the unigram plateau {unigram:.3f} " + ("(it uses context)." if pld_runs.uses_context(target, unigram)
                 else f"(under {pld_runs.LEARNED_NATS:g}: a speed-up to a loss this near the plateau says little; pre-train longer)."))
for n, row in table.iterrows() if target is not None else ():
    lines.append(f"- `{n}` (lr {row['lr']:g}): {pld_runs.speedup_text(row.to_dict())}.")
if "pld_time_per_sample_saving_paired" in summary:
    lines.append(f"- PLD's time per sample: {summary['pld_time_per_sample_saving_paired']:.1%} less in paired steps, "
                 f"{summary['pld_time_per_sample_saving_vs_preln']:.1%} over whole runs vs PreLN (paper 24%), with "
                 f"{1 - summary['pld_compute_fraction']['realized']:.1%} of the blocks skipped.")
display(Markdown("\n".join(lines) + f"\n\nPaper: {pld.PAPER_SPEEDUP}x faster to the baseline's quality."))
