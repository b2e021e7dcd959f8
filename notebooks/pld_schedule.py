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
# # The PLD schedule at the paper's depth: theta(t), p_i(t), the gates a run draws, the time they save
#
# PLD keeps block i (1-indexed, of L) at step t with probability `p_i(t) = 1 - (i/L)(1 - theta(t))`,
# `theta(t) = (1 - theta_bar) exp(-gamma t) + theta_bar` (the paper); the official code samples the
# 0-indexed `1 - i(1 - theta)/L` (block 0 never dropped). At theta 0.5 and 12 layers the paper's
# formula skips 27% of the blocks, the code's 23% (the paper reports 24% less time per sample); at
# 4 layers 31% vs 19%. Figure **`schedule`** (analytic, L = `layers_analytic`): theta(t) for several
# theta_bar and gamma, p_i(t) of both variants, blocks computed in expectation against theta.
#
# Measured, one unit per variant: a PreLN MLM run from scratch of the profile's `schedule_shape`
# (`cpu`: 12 x 256, seq 128, batch 32, 300 steps; theta_bar 0.5, gamma = 100/steps), then
# `schedule_pairs` adjacent training steps (forward, backward, AdamW) on one batch, one dense and one
# with the run's own gates (taken evenly over the run), order alternating. **`realized_keep`**: per
# layer, the share of micro-batches that computed the block vs its expectation (mean p_i(t), +- 2
# binomial sd), and the gates drawn. **`time_saving`**: time saved per step (= per sample; mean over
# the pairs of 1 - PLD / dense step time, 95% Student-t interval) beside the ideal saving (the timed
# gates' training FLOPs; embeddings, MLM head, optimizer never drop) and the paper's 24%.
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
seeds: list | None = None  # None: the profile seeds (the first is used)
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
layers_analytic: int = 12  # depth of the analytic figures (BERT-base)
horizon: int = 10_000  # steps shown in the analytic figures
theta_bars: tuple = (0.3, 0.5, 0.7)
gammas: tuple = (0.0005, 0.001, 0.002, 0.005)  # 0.0005 is the heuristic 100/T for the paper T of 200k steps
steps: int | None = None  # steps of each measured run; None: the profile's schedule_steps
theta_bar: float = 0.5  # the measured runs' theta_bar
gamma: float | None = None  # the measured runs' gamma; None: 100/steps (theta reaches theta_bar early, as in the paper)
variant: str = "paper"  # the variant the conclusion and the report lead with (both are measured)

# %%
import pandas as pd
from IPython.display import Markdown, display

from repro import pld, pld_runs, results
from repro import views_pld as vp
from repro.checks import check_parameters
from repro.study import Study
from repro.units import pld_schedule_unit

check_parameters(globals())
study = Study("pld_schedule", profile, train=train)
P = study.get_profile()
seed = list(seeds if seeds is not None else P.seeds)[0]  # one run per variant
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
L = layers_analytic

# %% tags=["nbval-check-output"]
results.save_figure(vp.plot_schedule(L, horizon, theta_bars, gammas), out, "schedule")
variants = pld_runs.variant_table(L)
results.save_table(variants, out, "variants")
variants

# %%
runs = {v: pld_schedule_unit(study, P, v, seed, theta_bar=theta_bar, gamma=gamma, steps=steps, data_dir=data_dir)
        for v in pld.VARIANTS}
done = {v: r for v, r in runs.items() if r is not None}
keep = pld_runs.keep_table(done)
timing = pd.DataFrame([pld_runs.schedule_timing(r) for r in done.values()])
results.save_table(keep, out, "realized_keep"), results.save_table(timing, out, "time_saving")

# %% tags=["nbval-check-output"]
print(f"{study.status()['done']} of {len(study.units)} runs done")
timing

# %%
if done:  # the gates of the run of `variant`, else of the other one
    results.save_figure(vp.plot_realized_keep(keep, done.get(variant) or next(iter(done.values()))), out, "realized_keep")

# %%
if len(timing):
    results.save_figure(vp.plot_time_saving(timing, theta_bar, profile), out, "time_saving")

# %% tags=["nbval-check-output"]
e, bias = {v: pld.expected_layers(0.5, L, v) for v in pld.VARIANTS}, variants.set_index(["variant", "theta"]).loc[("code", 0.5)]
study.write_summary(out, {"analytic": {"layers": L, "expected_layers_theta_0.5": e}, "default_variant": variant,
                          "theta_bar": theta_bar, "timing": {r["variant"]: r for r in timing.to_dict("records")}})
lines = [f"- At theta 0.5 with L = {L}, the paper's p_i compute {e['paper']:.2f} blocks in expectation, the code's "
         f"{e['code']:.2f}; the code also rescales a kept block by the next block's p (E[gate x scale] of the top block "
         f"{bias['mean_gate_x_scale_top']:.3f} instead of 1)."]
for r in sorted(timing.to_dict("records"), key=lambda r: r["variant"] != variant):
    lines.append(f"- **{r['variant']}** ({r['shape']}, theta_bar {theta_bar}): {pld_runs.saving_text(r)}; the paper reports 24% "
                 f"({100 * r['vs_paper']:+.1f} points). Keep frequencies over {r['micro_batches']} micro-batches: largest "
                 f"per-layer deviation from p_i {r['max_abs_z']:.1f} binomial sd.")
state = study.status()
display(Markdown(("" if state["complete"] else f"**Partial: {state['done']} of {state['planned']} runs.**\n\n") + "\n".join(lines)))
