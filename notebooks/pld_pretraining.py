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
# The paper's comparison: a PostLN BERT at its usual learning rate against PreLN + PLD at a larger
# rate, which PLD's PreLN blocks tolerate; PLD reaches the baseline's quality 2.5x faster and
# spends 24% less time per sample. Here BERTs of the profile's PLD size (`cpu`: 12 layers x 128,
# 2 heads, seq 128, batch 32: Google's BERT L-12/H-128, deep enough for PostLN's trouble) are
# pre-trained from scratch with masked LM on the book corpus, all from the same seed (same initial
# weights, data order and masks), all with the PLD recipe's schedule (warm-up 2%, then exponential
# decay) and PLD theta_bar 0.5, gamma 100/steps.
#
# 1. **Pilot** (`lr_pilot.csv`, `lr_pilot.png`): each block (PostLN, PreLN, PreLN + PLD) at every
#    pilot rate for the first `pilot_steps` of a full run's schedule. Stable: no non-finite loss,
#    final validation loss below its starting loss and no more than 0.1 nats above its lowest.
#    Best: the stable rate with the lowest final validation loss.
# 2. **Full runs**, at rates taken from the pilot (or fixed by `rates`): PostLN at its best (the
#    baseline), PreLN at its best, PreLN + PLD at the baseline's rate and at its own best.
# 3. Steps and training seconds (wall-clock minus evaluation) each run needs to reach the
#    baseline's final validation loss, the speed-ups, and the time per sample; the step costs are
#    also timed in adjacent pairs (dense vs PLD gates, one model) since whole runs span sessions
#    of different machine load. `val_loss.png` draws the validation curves against steps and
#    seconds with the **unigram plateau**: the loss of predicting the training corpus' token
#    frequencies, which every model sits at before it uses context.
#
# Each full run saves its final model as its unit's artifact; `pld_glue` fine-tunes them.

# %% tags=["parameters"]
profile = "smoke"
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
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import pld, results
from repro.profiles import get_profile, pld_profile
from repro.study import Study
from repro.units import pld_comparison

study = Study("pld_pretraining", profile)
P = pld_profile(get_profile(profile, pld_steps=steps, pld_pilot_steps=pilot_steps, pld_lrs=lrs and tuple(lrs)))
out = Path(output_dir) if output_dir else results.output_dir(profile, study.notebook)
seed = list(seeds if seeds is not None else P.seeds)[0]
tokens = P.pretrain_steps * P.pretrain_batch * P.grad_accum * P.seq_len
print(f"profile {P.name}: {P.layers} layers x {P.hidden} ({P.heads} heads, FFN {P.intermediate}), seq {P.seq_len}, "
      f"batch {P.pretrain_batch}; full runs {P.pretrain_steps} steps ({tokens / 1e6:.1f}M tokens), pilot "
      f"{P.pld_pilot_steps} steps at {P.pld_lrs}; PLD theta_bar {theta_bar} ({variant}); seed {seed}")

# %%
cmp = pld_comparison(study, P, seed, rates=rates, theta_bar=theta_bar, gamma=gamma, variant=variant, data_dir=data_dir)
unigram = cmp["unigram"]["metrics"]["val_loss"] if cmp["unigram"] else None
pilot = pld.pilot_table([r for r in cmp["pilot"] if r])
results.save_table(pilot, out, "lr_pilot")
fig, ax = plt.subplots(figsize=(6.5, 4))
for i, (arch, g) in enumerate(pilot.groupby("arch", sort=False)):
    ax.plot(g["lr"], g["final_val_loss"], marker="o", color=f"C{i}", label=f"{arch} (best {cmp['chosen'].get(arch, {}).get('best')})")
    bad = g[~g["stable"]]  # unstable: drawn at their final loss, or their start when it went non-finite
    ax.scatter(bad["lr"], bad["final_val_loss"].where(bad["final_val_loss"].notna(), bad["start_loss"]),
               marker="x", s=80, color=f"C{i}", zorder=3)
if unigram:
    ax.axhline(unigram, color="grey", ls=":", label=f"unigram plateau {unigram:.2f}")
ax.set_xscale("log")
ax.set_xlabel("peak learning rate")
ax.set_ylabel(f"validation MLM loss after {P.pld_pilot_steps} steps (nats)")
ax.set_title("Learning-rate pilot (x: unstable)")
ax.legend(fontsize=8)
results.save_figure(fig, out, "lr_pilot")
pilot

# %%
timing = cmp["timing"]["metrics"] if cmp["timing"] else None
table = pld.speedup_table(cmp["runs"], timing and timing["ratio"])
runs = {n: r for n, r in cmp["runs"].items() if r is not None}
curves = pd.DataFrame([{"run": n, **c} for n, r in runs.items() for c in r["curve"]])
results.save_table(table, out, "speedup")
results.save_table(curves, out, "val_curves")
base = runs.get(pld.BASELINE)
target = base["metrics"]["val_loss"] if base and base["status"] == "ok" else None
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for i, (n, r) in enumerate(runs.items()):
    c = pd.DataFrame(r["curve"])
    label = f"{n} (lr {r['config']['lr']:g})" + (" DIVERGED" if r["status"] == "diverged" else "")
    for ax, x in zip(axes, ("step", "seconds")):
        ax.plot(c[x], c["val_loss"], marker=".", color=f"C{i}", label=label)
for ax in axes:
    if target:
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target: baseline's final {target:.3f}")
    if unigram:
        ax.axhline(unigram, color="grey", ls=":", label=f"unigram plateau {unigram:.3f}")
    ax.set_ylabel("validation MLM loss (nats/token)")
axes[0].set_xlabel("optimizer step")
axes[1].set_xlabel("training time (s, wall-clock minus evaluation)")
axes[1].legend(fontsize=8)
fig.suptitle(f"MLM pre-training from scratch ({profile}: {P.layers} layers x {P.hidden}, seq {P.seq_len}, batch {P.pretrain_batch})")
fig.tight_layout()
results.save_figure(fig, out, "val_loss")
table

# %%
summary = {"baseline": pld.BASELINE, "target_val_loss": target, "unigram_loss": unigram, "layers": P.layers,
           "hidden": P.hidden, "seq_len": P.seq_len, "batch": P.pretrain_batch, "steps": P.pretrain_steps,
           "tokens_per_run": tokens, "pilot_steps": P.pld_pilot_steps, "pilot_lrs": P.pld_lrs, "chosen": cmp["chosen"],
           "rates": cmp["lrs"], "pld": cmp["pld"], "runs": table.to_dict("index"),
           "paper": {"speedup": pld.PAPER_SPEEDUP, "time_per_sample_saving": pld.PAPER_TIME_SAVING}}
summary |= pld.time_savings(table, runs, timing)  # the time-per-sample claim (report: pld_time)
study.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %%
state = study.status()
lines = [] if state["complete"] else [f"**Partial: {state['done']} of {state['planned']} runs.**"]
for arch, c in cmp["chosen"].items():
    lines.append(f"- Pilot, `{arch}`: best rate {c['best']}, largest stable {c['max_stable']}"
                 + (" (at the grid's end: the grid may not bracket it)" if c["at_edge"] else "") + ".")
if target is not None and unigram is not None:
    lines.append(f"- Baseline (`postln`, lr {base['config']['lr']:g}): final validation loss {target:.3f}, "
                 f"{unigram - target:.2f} nats below the unigram plateau {unigram:.3f} " +
                 ("(it uses context)." if pld.uses_context(target, unigram) else f"(less than {pld.LEARNED_NATS:g}: "
                  "near the plateau, a speed-up to this loss says little; longer pre-training is needed)."))
for n, row in table.iterrows():
    if row["status"] != "ok":
        lines.append(f"- `{n}`: {row['status']}.")
    elif target is not None:
        reach = (f"reaches the target in {row['steps_to_target']:.0f} steps / {row['seconds_to_target']:.0f} s: "
                 f"{row['speedup_steps']:.2f}x in steps, {row['speedup_time']:.2f}x in wall-clock, "
                 f"{row['speedup_paired']:.2f}x with the paired step costs" if pd.notna(row["steps_to_target"])
                 else f"never reaches the target (final {row['final_val_loss']:.3f})")
        lines.append(f"- `{n}` (lr {row['lr']:g}): {reach}; {row['time_per_sample_ms']:.1f} ms per sample "
                     f"({row['time_per_sample_saving']:+.1%} vs the baseline).")
if "pld_time_per_sample_saving_paired" in summary:
    lines.append(f"- PLD's time per sample: {summary['pld_time_per_sample_saving_paired']:.1%} less in paired steps, "
                 f"{summary['pld_time_per_sample_saving_vs_preln']:.1%} over whole runs vs PreLN (paper 24%), with "
                 f"{1 - summary['pld_compute_fraction']['realized']:.1%} of the blocks skipped.")
display(Markdown("\n".join(lines) + f"\n\nPaper: {pld.PAPER_SPEEDUP}x faster to the baseline's quality."))
