# %% [markdown]
# # When does the EarlyBERT ticket emerge? Mask distances during the search
#
# Reproduces EarlyBERT's mask-distance figure (Chen et al., ACL 2021, after You et al.'s
# Early-Bird tickets): during the searching stage (all weights + slimming coefficients, L1 on the
# coefficients) a ticket is drawn from the coefficients recorded at regular steps (1/3 of the heads
# in every layer, 40% of the FFN neurons globally, by |coefficient|), and the normalised Hamming
# distance between every pair of tickets is plotted. Two settings:
#
# 1. **fine-tuning** search from the profile's pretrained checkpoint on a GLUE task;
# 2. **pre-training** search, MLM from scratch on the text corpus (the part the official code
#    never released).
#
# Figure `mask_distance`: per setting (rows) and mask kind (columns: attention heads, FFN neurons)
# the pairwise distance matrix, both axes the training step of the two tickets, colour 0..1. The
# solid red line marks the step where the early-bird criterion (FIFO of the last `window` tickets
# all within `epsilon` of the newest) held for the heads AND the FFN neurons at the same draw: the
# search's stopping rule, and the criterion the report uses; the dotted orange line, where that
# panel's mask kind alone met it. The dashed line is the official code's fixed drawing point, 20%
# of the first epoch (fine-tuning only).
# Figure `detector_trace`: the detectors' largest distance within their FIFO against the step, with
# epsilon and the heads-and-FFN step. `summary.json`: the firing steps as fractions of the search length.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
seeds: list | None = None  # None: the profile's seeds; the searches run with the first
task: str = "MRPC"
checkpoint: str | None = None  # None: the profile's checkpoint
max_train_examples: int | None = None  # None: the profile's training subset
search_epochs: float = 1.0  # official fine-tuning search: one epoch
search_lr: float | None = None  # official: 2e-5; None: the profile's fine-tuning lr
fixed_fraction: float = 0.2  # official drawing point: 20% of the first epoch
pretrain: bool = True  # also search during MLM pre-training from scratch
pretrain_fraction: float = 0.2  # the pre-training search runs this fraction of the profile's pretrain_steps
checkpoints: int = 60  # about this many recorded tickets per search (the matrices' size)
draw_every: int | None = None  # detector draws; None: every 2% of the search
window: int = 5
epsilon: float = 0.1
lambda_head: float = 1e-4
lambda_ffn: float = 1e-4
head_ratio: float = 0.333333
ffn_ratio: float = 0.4

# %%
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from repro import results
from repro.checks import check_parameters
from repro.data import load_tokenizer
from repro.earlybert import Slimming, distance_matrix
from repro.profiles import get_profile
from repro.tasks import corpus_data, finetune_glue, glue_data, glue_model, pretrain_mlm, scratch_model, steps_for

check_parameters(globals())
P = get_profile(profile, checkpoint=checkpoint, max_train_examples=max_train_examples)
out = Path(output_dir) if output_dir else results.output_dir(profile, "ticket_mask_distance")
seed = list(seeds if seeds is not None else P.seeds)[0]
tokenizer = load_tokenizer(P.checkpoint)
draw_kw = dict(head_ratio=head_ratio, ffn_ratio=ffn_ratio)


def hook_for(steps):
    # records ~`checkpoints` tickets; the detector draws every `draw_every` steps (never stops the run)
    return Slimming(lambda_head, lambda_ffn, record_every=max(1, steps // checkpoints),
                    draw_every=draw_every or max(1, round(0.02 * steps)), window=window, epsilon=epsilon, **draw_kw)


searches = {}

# %%
data = glue_data(task, P, tokenizer, data_dir, seed)
per_epoch = steps_for(len(data[0]), P.finetune_batch, 1.0)
steps = max(1, math.ceil(search_epochs * per_epoch))
torch.manual_seed(seed)
hook = hook_for(steps)
# the dev score after the search is not what this notebook is about: 8 dev examples keep it cheap
run = finetune_glue(glue_model(P.checkpoint, task, seed=seed, slimming=True), task, P, seed, tokenizer=tokenizer,
                    data=(data[0], data[1][:8], data[2]), steps=steps, lr=search_lr or P.finetune_lr,
                    hooks=[hook], progress=False)
searches["fine-tuning"] = {"hook": hook, "steps": steps, "result": run["result"],
                           "fixed_step": max(1, round(fixed_fraction * per_epoch)),
                           "what": f"{task} from {P.checkpoint}, {len(data[0])} examples, batch {P.finetune_batch}"}
print(f"fine-tuning search: {steps} steps ({per_epoch} per epoch), {len(hook.steps)} recorded tickets, "
      f"detectors fired at {hook.fired_steps()}")

# %%
if pretrain:
    pre_steps = max(1, round(pretrain_fraction * P.pretrain_steps))
    chars = pre_steps * P.pretrain_batch * P.seq_len * 5  # ~5 characters per token: one pass over the text
    corpus = corpus_data(P, tokenizer, data_dir, max_chars=chars, valid_chars=300 * P.seq_len * 5)
    torch.manual_seed(seed)
    hook = hook_for(pre_steps)
    run = pretrain_mlm(scratch_model(P, tokenizer, seed=seed, slimming=True), P, seed, data=corpus, steps=pre_steps,
                       hooks=[hook], eval_every=0, progress=False)
    searches["pre-training"] = {"hook": hook, "steps": pre_steps, "result": run["result"], "fixed_step": None,
                                "what": f"MLM from scratch, {P.layers}x{P.hidden} {len(corpus[0])} blocks of {P.seq_len}"}
    print(f"pre-training search: {pre_steps} steps, {len(hook.steps)} recorded tickets, "
          f"detectors fired at {hook.fired_steps()}")

# %%
KINDS = [("heads", 0, "attention heads"), ("ffn", 1, "FFN neurons")]
matrices, summary = {}, {"window": window, "epsilon": epsilon, "head_ratio": head_ratio, "ffn_ratio": ffn_ratio}
for setting, s in searches.items():
    hook = s["hook"]
    masks = hook.recorded_masks()
    fired = hook.fired_steps()
    summary[setting] = {
        "what": s["what"], "search_steps": s["steps"], "recorded": len(hook.steps), "draw_every": hook.draw_every,
        "units": {"heads": sum(hook.sizes[0]), "ffn": sum(hook.sizes[1])},
        "fired_step": fired, "fired_fraction": {k: (v / s["steps"] if v is not None else None) for k, v in fired.items()},
        "fixed_step": s["fixed_step"], "fixed_fraction": s["fixed_step"] / s["steps"] if s["fixed_step"] else None}
    for kind, i, _ in KINDS:
        D = distance_matrix([m[i] for m in masks])
        matrices[setting, kind] = D
        results.save_table(pd.DataFrame(D.numpy(), index=hook.steps, columns=hook.steps), out,
                           f"distance_{setting}_{kind}")
        summary[setting][f"max_distance_{kind}"] = float(D.max())
        summary[setting][f"final_vs_first_{kind}"] = float(D[0, -1])
    results.save_table(pd.DataFrame(hook.draws), out, f"detector_{setting}")
    results.record(notebook="ticket_mask_distance", profile=profile, task=task if setting == "fine-tuning" else "MLM",
                   method="earlybert", seed=seed, metrics={f"fired_fraction_{k}": v for k, v in
                                                           summary[setting]["fired_fraction"].items()},
                   times=s["result"].times, config={"profile": P.to_dict(), "setting": setting, **summary[setting]})

# %%
fig, axes = plt.subplots(len(searches), 2, figsize=(10, 4.3 * len(searches)), squeeze=False)
for r, (setting, s) in enumerate(searches.items()):
    hook, fired = s["hook"], s["hook"].fired_steps()
    for c, (kind, _, label) in enumerate(KINDS):
        ax, D, st = axes[r][c], matrices[setting, kind], hook.steps
        half = hook.record_every / 2  # each cell spans one record interval
        im = ax.imshow(D.numpy(), vmin=0, vmax=1, cmap="viridis", origin="lower",
                       extent=(st[0] - half, st[-1] + half, st[0] - half, st[-1] + half))
        if fired[kind] is not None:  # this mask kind's criterion alone
            ax.axvline(fired[kind], color="orange", ls=":", lw=1.5, zorder=3, label=f"{kind} alone met it (step {fired[kind]})")
            ax.axhline(fired[kind], color="orange", ls=":", lw=1.5, zorder=3)
        if fired["found"] is not None:  # heads and FFN at one draw: the stopping rule, the report's criterion
            ax.axvline(fired["found"], color="red", lw=1.5, label=f"heads + FFN met it (step {fired['found']}): the report's")
            ax.axhline(fired["found"], color="red", lw=1.5)
        if s["fixed_step"]:
            ax.axvline(s["fixed_step"], color="white", ls="--", lw=1.5, label=f"official 20% of epoch 1 (step {s['fixed_step']})")
            ax.axhline(s["fixed_step"], color="white", ls="--", lw=1.5)
        ax.set_xlabel("training step of ticket A")
        ax.set_ylabel("training step of ticket B")
        ax.set_title(f"{setting}: {label}" + ("" if fired["found"] is not None else
                                              f"\nheads + FFN criterion (the report's) never met in {s['steps']} steps"),
                     fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
        fig.colorbar(im, ax=ax, label="normalised Hamming distance")
fig.tight_layout()
results.save_figure(fig, out, "mask_distance")

# %%
fig, axes = plt.subplots(1, len(searches), figsize=(5.5 * len(searches), 3.5), squeeze=False)
for ax, (setting, s) in zip(axes[0], searches.items()):
    d = pd.DataFrame(s["hook"].draws)
    for kind, style, name in (("heads", "-", "heads"), ("ffn", "--", "FFN"), ("joint", ":", "heads and FFN concatenated")):
        ax.plot(d["step"], d[f"max_dist_{kind}"].astype(float), style, label=name)
    ax.axhline(epsilon, color="k", lw=0.8, label=f"epsilon = {epsilon}")
    found = s["hook"].fired_steps()["found"]
    if found is not None:
        ax.axvline(found, color="red", lw=1.2, label=f"heads and FFN both within epsilon (step {found}): the report's")
    if s["fixed_step"]:
        ax.axvline(s["fixed_step"], color="gray", ls="--", label="official fixed point")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"max distance to the last {window - 1} tickets")
    ax.set_title(f"Early-bird detector, {setting}")
    ax.legend(fontsize=7)
fig.tight_layout()
results.save_figure(fig, out, "detector_trace")

# %%
results.write_summary(out, summary)


def said(setting):
    s = summary[setting]
    parts = []
    for kind in ("heads", "ffn", "found"):
        f = s["fired_fraction"][kind]
        name = {"heads": "heads", "ffn": "FFN neurons", "found": "both (the stopping rule)"}[kind]
        parts.append(f"{name}: " + (f"step {s['fired_step'][kind]} ({100 * f:.0f}% of the search)" if f is not None
                                    else "did not fire"))
    fixed, found = "", s["fired_step"]["found"]
    if s["fixed_step"]:
        fixed = f"; the official fixed point is step {s['fixed_step']} ({100 * s['fixed_fraction']:.0f}%)"
        if found is not None:
            gap = found - s["fixed_step"]
            fixed += ", so the criterion fired " + ("exactly there" if gap == 0 else
                                                     f"{abs(gap)} steps {'after' if gap > 0 else 'before'} it")
    # swapping one kept and one pruned unit moves the distance by 2 / units
    coarse = [k for k in ("heads", "ffn") if 2 / s["units"][k] >= epsilon]
    caveat = "".join(f" With {s['units'][k]} {k} in all, one swap already moves the distance by "
                     f"{2 / s['units'][k]:.3f} >= epsilon: that criterion only holds for identical masks." for k in coarse)
    return (f"**{setting}** ({s['search_steps']} steps): detector — " + "; ".join(parts) + fixed +
            f". Largest distance between any two tickets: heads {s['max_distance_heads']:.2f}, "
            f"FFN {s['max_distance_ffn']:.2f}." + caveat)


display(Markdown("\n\n".join(said(k) for k in searches) + (
    "\n\nAt smoke scale the searches are a handful of steps: the figure shows the machinery, "
    "not when tickets emerge." if profile == "smoke" else "")))
