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

# %% tags=["parameters"]
profile = "smoke"
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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from repro import pld, results
from repro.checks import check_parameters
from repro.profiles import get_profile
from repro.study import Study
from repro.units import pld_schedule_unit

check_parameters(globals())
P = get_profile(profile)
seed = list(seeds if seeds is not None else P.seeds)[0]  # one run per variant
study = Study("pld_schedule", profile)
out = study.out(output_dir)
L, t = layers_analytic, np.linspace(0, horizon, 501)  # the curves are smooth: 501 points draw them

# %%
fig, axes = plt.subplots(2, 3, figsize=(16, 7.5), layout="constrained")
for tb in theta_bars:
    axes[0, 0].plot(t, [pld.theta(s, tb, 0.001) for s in t], label=f"theta_bar = {tb}")
for g in gammas:
    axes[0, 1].plot(t, [pld.theta(s, 0.5, g) for s in t], label=f"gamma = {g:g}")
axes[0, 0].set(title="theta(t), gamma = 0.001 (official default)", ylabel="theta (keep probability of the top block)")
axes[0, 1].set(title="theta(t), theta_bar = 0.5")
for ax, var in zip(axes[1, :2], pld.VARIANTS):
    grid = np.array([pld.keep_probs(pld.theta(s, 0.5, 0.001), L, var) for s in t]).T  # [layer, step]
    im = ax.imshow(grid, aspect="auto", origin="lower", vmin=0.5, vmax=1.0, extent=(0, horizon, 0.5, L + 0.5))
    ax.set(title=f"p_i(t), {var} (theta_bar 0.5, gamma 0.001)", ylabel="layer i (1 = next to the embeddings)")
fig.colorbar(im, ax=axes[1, :2], label="keep probability p_i(t)")
depths, thetas = np.arange(2, 25), np.linspace(0.0, 1.0, 101)
for var in pld.VARIANTS:
    axes[0, 2].plot(thetas, [pld.expected_layers(th, L, var) for th in thetas], label=var)
    axes[1, 2].plot(depths, [100 * (1 - pld.expected_compute_fraction(0.5, d, var)) for d in depths], marker=".", label=var)
axes[0, 2].set(xlabel="theta", ylabel=f"expected blocks computed (of {L})", title="Expected depth, paper vs code")
axes[1, 2].set(xlabel="layers L", ylabel="% of the blocks skipped", title="Blocks skipped at theta = 0.5, by depth")
for ax in axes.flat:
    ax.set_xlabel(ax.get_xlabel() or "optimizer step t")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
results.save_figure(fig, out, "schedule")
variants = pld.variant_table(L)
results.save_table(variants, out, "variants")
variants

# %%
runs = {v: pld_schedule_unit(study, P, v, seed, theta_bar=theta_bar, gamma=gamma, steps=steps, data_dir=data_dir)
        for v in pld.VARIANTS}
done = {v: r for v, r in runs.items() if r is not None}
keep = pld.keep_table(done)
timing = pd.DataFrame([pld.schedule_timing(r) for r in done.values()])
results.save_table(keep, out, "realized_keep"), results.save_table(timing, out, "time_saving")
print(f"{study.status()['done']} of {len(study.units)} runs done")
timing

# %%
if done:
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
    for j, (v, g) in enumerate(keep.groupby("variant", sort=False)):
        axes[0].bar(g["layer"] + 0.4 * j - 0.2, g["realized"], width=0.4, color=f"C{j}", alpha=0.6, label=f"{v}: realized")
        axes[0].errorbar(g["layer"] + 0.4 * j - 0.2, g["expected"], yerr=2 * g["binomial_sd"], fmt="o", ms=3,
                         color="k", label="expected, +- 2 sd" if j else None)
    axes[0].set(xlabel="layer i (1 = next to the embeddings)", ylabel="share of micro-batches computed", ylim=(0, 1.1),
                title="Realized keep frequency per layer"), axes[0].legend(fontsize=8, loc="lower left")
    shown = done.get(variant) or next(iter(done.values()))
    K = np.array([[c == "1" for c in row] for row in shown["gates"]], dtype=float).T  # [layer, micro-batch]
    axes[1].imshow(K, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest", extent=(0, K.shape[1], 0.5, len(K) + 0.5))
    axes[1].set(xlabel="micro-batch", ylabel="layer i", yticks=range(1, len(K) + 1),
                title=f"Gates drawn, {shown['config']['variant']} (black = computed)")
    fig.tight_layout()
    results.save_figure(fig, out, "realized_keep")

# %%
if len(timing):
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(timing))
    ax.bar(x - 0.25, 100 * timing["time_saving"], 0.25, yerr=100 * timing["hw"].fillna(0), capsize=4, label="time saved per step")
    ax.bar(x, 100 * timing["flop_saving"], 0.25, label="ideal: training FLOPs saved")
    ax.bar(x + 0.25, 100 * timing["blocks_skipped"], 0.25, label="blocks skipped")
    ax.axhline(100 * pld.PAPER_TIME_SAVING, color="k", ls="--", lw=1, label="paper: 24% less time per sample")
    ax.set_xticks(x, [f"{v} ({s})" for v, s in zip(timing["variant"], timing["shape"])])
    ax.set(ylabel="% of the dense step", title=f"PLD's saving, theta_bar {theta_bar} ({profile} profile)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    results.save_figure(fig, out, "time_saving")

# %%
e, bias = {v: pld.expected_layers(0.5, L, v) for v in pld.VARIANTS}, variants.set_index(["variant", "theta"]).loc[("code", 0.5)]
study.write_summary(out, {"analytic": {"layers": L, "expected_layers_theta_0.5": e}, "default_variant": variant,
                          "theta_bar": theta_bar, "timing": {r["variant"]: r for r in timing.to_dict("records")}})
lines = [f"- At theta 0.5 with L = {L}, the paper's p_i compute {e['paper']:.2f} blocks in expectation, the code's "
         f"{e['code']:.2f}; the code also rescales a kept block by the next block's p (E[gate x scale] of the top block "
         f"{bias['mean_gate_x_scale_top']:.3f} instead of 1)."]
for r in sorted(timing.to_dict("records"), key=lambda r: r["variant"] != variant):
    lines.append(f"- **{r['variant']}** ({r['shape']}, theta_bar {theta_bar}): {pld.saving_text(r)}; the paper reports 24% "
                 f"({100 * r['vs_paper']:+.1f} points). Keep frequencies over {r['micro_batches']} micro-batches: largest "
                 f"per-layer deviation from p_i {r['max_abs_z']:.1f} binomial sd.")
state = study.status()
display(Markdown(("" if state["complete"] else f"**Partial: {state['done']} of {state['planned']} runs.**\n\n") + "\n".join(lines)))
