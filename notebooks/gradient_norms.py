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
# # Gradient norms per layer, PostLN vs PreLN (PLD paper, Figure 1)
#
# The PLD paper motivates its PreLN backbone by the gradients: with PostLN (original BERT,
# `x = LN(x + F(x))`) they shrink towards the lower, input-side layers; with PreLN
# (`x = x + F(LN(x))`, final LayerNorm) they are balanced across layers. It also shows that PreLN
# blocks change their input less, which is what makes skipping a block cheap in accuracy.
#
# Two MLM BERTs of the profile's size are built from **the same seed** (identical weights; PreLN
# only adds its final LayerNorm) and trained with the same data order and masks. On one fixed
# batch of held-out corpus blocks (fixed MLM masks, dropout off) we measure, per layer
# (layer 1 = the block next to the embeddings), at initialisation and after `steps` MLM steps:
#
# - **Figure `grad_norms`**: the L2 norm of the gradient of the MLM loss w.r.t. all the block's
#   parameters (attention, FFN and its LayerNorms together, one norm), and the L2 norm of the
#   gradient w.r.t. the block's input hidden states (the whole [batch, seq, hidden] tensor).
# - **Figure `block_io`**: for each token, the L2 distance `||y - x||` between the block's input
#   `x` and output `y`, the same relative to `||x||` (PostLN's `x` is LayerNorm-ed, PreLN's residual
#   stream is not, so only the relative distance compares the two), and their cosine similarity,
#   averaged over the batch's real tokens.
#
# The paper's exact plotted quantity could not be verified offline; these are the quantities
# named above, nothing else.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
seeds: list | None = None  # None: the profile seeds (the first is used: this is a per-layer picture)
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
steps: int | None = None  # MLM steps between the two measurements; None: min(profile pretrain_steps, 300)
max_chars: int | None = None  # characters of the training corpus to read; None: smoke 300k, else all
lr: float | None = None  # None: the profile pretrain_lr
# %%
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from repro import results
from repro.checks import check_parameters
from repro.analysis import block_io_similarity, layer_grad_norms
from repro.data import load_tokenizer
from repro.profiles import get_profile
from repro.tasks import corpus_data, pretrain_mlm, scratch_model

check_parameters(globals())
P = get_profile(profile, pretrain_lr=lr)
out = Path(output_dir) if output_dir else results.output_dir(profile, "gradient_norms")
seed = list(seeds if seeds is not None else P.seeds)[0]
steps = steps if steps is not None else min(P.pretrain_steps, 300)
max_chars = max_chars if max_chars is not None else (300_000 if profile == "smoke" else None)
tokenizer = load_tokenizer("minilm")
data = corpus_data(P, tokenizer, data_dir, max_chars=max_chars, valid_chars=max_chars)
train_blocks, valid_blocks, collate = data
# one fixed batch of held-out blocks; its MLM masks come from a fixed generator
batch = collate(list(valid_blocks[:P.pretrain_batch]), generator=torch.Generator().manual_seed(0))
print(f"profile {P.name}: {P.layers} layers x {P.hidden}, seq {P.seq_len}, {len(train_blocks)} train blocks; "
      f"{steps} MLM steps at lr {P.pretrain_lr}; measured on {batch['input_ids'].shape[0]} held-out blocks")

# %%
rows, runs = [], {}
for ln in ("post", "pre"):
    name = f"{ln.capitalize()}LN"
    torch.manual_seed(seed)
    model = scratch_model(P, tokenizer, ln=ln, seed=seed)
    before = {**layer_grad_norms(model, batch), **block_io_similarity(model, batch)}
    run = pretrain_mlm(model, P, seed, data=data, steps=steps, eval_every=0, progress=False)
    after = {**layer_grad_norms(model, batch), **block_io_similarity(model, batch)}
    r = run["result"]
    runs[name] = {"init": before, "trained": after, "status": r.status}
    for stage, m in (("init", before), (f"after {steps} steps", after)):
        for i in range(P.layers):
            rows.append({"variant": name, "stage": stage, "layer": i + 1, "param_grad": m["param"][i],
                         "input_grad": m["input"][i], "io_l2": m["l2"][i], "io_rel_l2": m["rel_l2"][i],
                         "io_cosine": m["cosine"][i], "batch_loss": m["loss"]})
    results.record(notebook="gradient_norms", profile=profile, task="mlm", method=ln + "ln", seed=seed,
                   metrics={"val_loss": run["metrics"].get("val_loss", float("nan")),
                            "bottom_top_param_grad_init": before["param"][0] / before["param"][-1],
                            "bottom_top_param_grad_trained": after["param"][0] / after["param"][-1]},
                   times=r.times, status=r.status,
                   config={"profile": P.to_dict(), "ln": ln, "steps": steps, "max_chars": max_chars})
    print(f"{name}: batch loss {before['loss']:.3f} -> {after['loss']:.3f}, val loss "
          f"{run['metrics'].get('val_loss', float('nan')):.3f} ({r.status}, {r.times['total']:.1f}s)")
table = pd.DataFrame(rows)
results.save_table(table, out, "per_layer")
table

# %%
stages = list(dict.fromkeys(table["stage"]))
fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
for col, stage in enumerate(stages):
    for row, (key, what) in enumerate((("param_grad", "||dL/d(block parameters)||_2"),
                                       ("input_grad", "||dL/d(block input)||_2"))):
        ax = axes[row, col]
        for name, g in table[table["stage"] == stage].groupby("variant"):
            ax.plot(g["layer"], g[key], marker="o", label=name)
        ax.set_yscale("log")
        ax.set_title(f"{what}, {stage}")
        ax.set_ylabel("gradient L2 norm (log scale)")
        ax.legend()
for ax in axes[-1]:
    ax.set_xlabel("layer (1 = next to the embeddings)")
    ax.set_xticks(range(1, P.layers + 1))
fig.suptitle(f"Per-layer gradient norms of the MLM loss, one fixed batch ({profile} profile)")
fig.tight_layout()
results.save_figure(fig, out, "grad_norms")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
panels = (("io_l2", "mean ||y - x||_2 per token", "L2 distance, block input x vs output y"),
          ("io_rel_l2", "mean ||y - x||_2 / ||x||_2 per token", "Relative L2 distance"),
          ("io_cosine", "mean cosine(x, y) per token", "Cosine similarity of input and output"))
for color, (name, g) in enumerate(table.groupby("variant")):
    for stage, style in zip(stages, ("--", "-")):
        s = g[g["stage"] == stage]
        for ax, (key, _, _) in zip(axes, panels):
            ax.plot(s["layer"], s[key], style, marker="o", color=f"C{color}", label=f"{name}, {stage}")
for ax, (_, ylabel, title) in zip(axes, panels):
    ax.set_xlabel("layer (1 = next to the embeddings)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(1, P.layers + 1))
    ax.set_title(title)
    ax.legend(fontsize=8)
fig.tight_layout()
results.save_figure(fig, out, "block_io")

# %%
def ratio(m, key):  # bottom layer's gradient norm over the top layer's
    return m[key][0] / m[key][-1]


summary = {"steps": steps, "seed": seed, "layers": P.layers, "variants": {}}
for name, r in runs.items():
    summary["variants"][name] = {
        "status": r["status"],
        "bottom_top_param_grad": {"init": ratio(r["init"], "param"), "trained": ratio(r["trained"], "param")},
        "bottom_top_input_grad": {"init": ratio(r["init"], "input"), "trained": ratio(r["trained"], "input")},
        "mean_io_cosine": {"init": sum(r["init"]["cosine"]) / P.layers,
                           "trained": sum(r["trained"]["cosine"]) / P.layers},
        "mean_io_rel_l2": {"init": sum(r["init"]["rel_l2"]) / P.layers,
                           "trained": sum(r["trained"]["rel_l2"]) / P.layers},
    }
results.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %%
v = summary["variants"]
lines, holds = [], {}
for stage in ("init", "trained"):
    post, pre = v["PostLN"]["bottom_top_param_grad"][stage], v["PreLN"]["bottom_top_param_grad"][stage]
    # the paper's picture: PostLN's bottom layer gets the smaller gradient (ratio < 1), and PreLN's
    # ratio is closer to 1 (on a log scale: 0.5 and 2 are equally unbalanced)
    holds[stage] = post < 1 and abs(math.log(pre)) < abs(math.log(post))
    when = "At initialisation" if stage == "init" else f"After {steps} steps"
    lines.append(f"- {when}: bottom/top parameter-gradient norm ratio PostLN {post:.3g}, PreLN {pre:.3g} "
                 f"(input-gradient ratio PostLN {v['PostLN']['bottom_top_input_grad'][stage]:.3g}, PreLN "
                 f"{v['PreLN']['bottom_top_input_grad'][stage]:.3g}): the paper's picture (PostLN gradients shrink "
                 f"towards the input, PreLN's balanced) **{'holds' if holds[stage] else 'does not hold'}** here.")
cos = {n: v[n]["mean_io_cosine"]["trained"] for n in v}
rel = {n: v[n]["mean_io_rel_l2"]["trained"] for n in v}
lines.append(f"- After training, a block changes its input by a relative L2 of {rel['PreLN']:.3g} (PreLN) vs "
             f"{rel['PostLN']:.3g} (PostLN), mean input/output cosine {cos['PreLN']:.3g} vs {cos['PostLN']:.3g}: "
             f"by the cosine, PreLN blocks are {'closer to' if cos['PreLN'] > cos['PostLN'] else 'not closer to'} the identity.")
lines.append(f"- Scale: {P.layers} layers, {steps} steps, one seed, one batch ({profile} profile).")
display(Markdown("\n".join(lines)))
