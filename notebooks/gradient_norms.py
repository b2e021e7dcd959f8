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
# # Gradient norms per layer, PostLN vs PreLN, at depth (PLD paper, Figure 1)
#
# The PLD paper motivates its PreLN backbone by the gradients: with PostLN (original BERT,
# `x = LN(x + F(x))`) they shrink towards the lower, input-side layers; with PreLN
# (`x = x + F(LN(x))`, final LayerNorm) they are balanced. That is a depth effect, so it is
# measured at several depths (the profile's `grad_shapes`: at `cpu` 4, 12 and 24 layers of width
# 256 and a 12 x 768 BERT-base-shaped pair), at initialisation over the profile's seeds, each
# on `grad_batches` fixed batches of held-out corpus blocks (fixed MLM masks, dropout off); and
# one shape (`grad_trained`) again after `grad_train_steps` MLM steps. Per block (layer 1 = next
# to the embeddings): the L2 norm of the MLM loss's gradient w.r.t. all the block's parameters,
# and w.r.t. the block's input hidden states. **Bottom/top ratio** = mean over the lowest quarter
# of the blocks over the mean over the highest quarter (first vs last block at 4 layers); < 1
# means smaller gradients next to the input. Intervals: 95% Student-t over seeds.
#
# PreLN is built as the official PLD code builds it (DeepSpeedExamples `bing_bert`,
# `nvidia/modelingpreln_layerdrop.py` l.816-834: attention-output and FFN-output projections at
# std 0.02 / sqrt(2 L)); PostLN keeps N(0, 0.02) (its `nvidia/modeling.py` l.700-712). PreLN with
# plain N(0, 0.02) is the sensitivity row "PreLN (plain 0.02)". **Along training**
# (`repro.gradients`): the `grad_trained` shape measured at init and at `grad_curve_steps` of MLM
# training (PLD's recipe schedule), `grad_curve_seeds` seeds per arm, with the loss on the fixed
# batches beside the unigram plateau; statistics that cannot hide a dip: the log-slope per layer
# and min(lower half)/top beside the quarter ratio. Figure 1's exact moment and init could not be
# verified: the paper does not state them.
#
# **Run All** reads the recorded `cpu` runs and trains nothing (a unit not recorded is missing);
# set `train = True` to train missing units; at `cpu` that can take hours.

# %% tags=["parameters"]
profile = "cpu"
train: bool = False  # True: train the units not recorded yet (the runner passes True)
output_dir: str | None = None
seeds: list | None = None  # None: the profile seeds
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data

# %%
import pandas as pd
from IPython.display import Markdown, display

from repro import results
from repro.report import BALANCED, SHRUNK, imbalance_shown
from repro.checks import check_parameters
from repro.study import Study
from repro import gradients
from repro import views_pld as vp
from repro.units import grad_norm_unit

check_parameters(globals())
study = Study("gradient_norms", profile, train=train)
P = study.get_profile()
out = study.out(output_dir)
data_dir = study.data_dir(data_dir)  # the parameter, else $REPRO_DATA_DIR (the Study's Control)
seeds = list(seeds if seeds is not None else P.seeds)
print(f"profile {P.name}: shapes {P.grad_shapes} at init over seeds {seeds}, {P.grad_batches} batches of "
      f"{P.grad_batch} x {P.seq_len} tokens; {P.grad_trained} after {P.grad_train_steps} steps (seed {seeds[0]})")

# %%
# cheapest first: every shape at init, seed-major; then the trained pair
init = {(L, H, ln, s): grad_norm_unit(study, P, L, H, ln, s, data_dir=data_dir)
        for s in seeds for (L, H) in P.grad_shapes for ln in ("post", "pre")}
init_plain = {(L, H, "pre", s): grad_norm_unit(study, P, L, H, "pre", s, data_dir=data_dir, preln_init="plain")
              for s in seeds for (L, H) in P.grad_shapes}
trained = {ln: grad_norm_unit(study, P, *P.grad_trained, ln, seeds[0], train_steps=P.grad_train_steps,
                              data_dir=data_dir) for ln in ("post", "pre")} if P.grad_trained else {}
# along training: every arm's first seed, then the further seeds; the plain-init PreLN one seed
curves = [gradients.grad_curve_unit(study, P, *P.grad_trained, ln, s, P.grad_curve_steps, preln_init=init_, data_dir=data_dir)
          for s in range(P.grad_curve_seeds) for ln, init_ in (("post", "scaled"), ("pre", "scaled"), ("pre", "plain"))
          if init_ == "scaled" or s == 0] if P.grad_trained else []
rows = [{"shape": f"{L} x {H}", "layers": L, "variant": f"{ln.capitalize()}LN" + (" (plain 0.02)" if plain else ""),
         "stage": "init", "seed": s, "param_ratio": r["metrics"]["param_ratio_init"], "input_ratio": r["metrics"]["input_ratio_init"]}
        for plain, units in ((False, init), (True, init_plain)) for (L, H, ln, s), r in units.items() if r]
rows += [{"shape": f"{r['config']['layers']} x {r['config']['hidden']}", "layers": r["config"]["layers"],
          "variant": f"{ln.capitalize()}LN", "stage": f"after {P.grad_train_steps} steps", "seed": r["seed"],
          "param_ratio": r["metrics"]["param_ratio_trained"], "input_ratio": r["metrics"]["input_ratio_trained"]}
         for ln, r in trained.items() if r]
ratios = pd.DataFrame(rows)
table = results.summary_table(ratios.rename(columns={"param_ratio": "metric.param_ratio", "input_ratio": "metric.input_ratio"}),
                              by=("shape", "stage", "variant"), metrics=["param_ratio", "input_ratio"], digits=3) if rows else pd.DataFrame()
results.save_table(ratios, out, "ratios")
results.save_table(table, out, "bottom_top")

# %% tags=["nbval-check-output"]
table

# %%
results.save_figure(vp.plot_grad_norms(init, P.grad_shapes), out, "grad_norms")
if all(trained.values()) and trained:
    results.save_figure(vp.plot_trained(trained, P.grad_train_steps), out, "trained")

# %% tags=["nbval-check-output"]
done_curves = [r for r in curves if r]
curve = gradients.curve_table(done_curves)
if len(curve):
    results.save_table(curve, out, "curves")
    results.save_figure(gradients.plot_curves(done_curves, f"gradients along training, {P.grad_trained[0]} x "
                                               f"{P.grad_trained[1]}, {profile} profile"), out, "curves")
    display(curve[curve.measure == "input"].drop(columns="measure"))
curve_verdicts = gradients.curve_rule(curve) if len(curve) else []

# %% tags=["nbval-check-output"]
stats = results.summarize(ratios.rename(columns={"param_ratio": "metric.param", "input_ratio": "metric.input"}),
                          by=("layers", "shape", "stage", "variant")) if rows else pd.DataFrame()
summary = {"shapes": [list(s) for s in P.grad_shapes], "trained_shape": P.grad_trained, "steps": P.grad_train_steps,
           "rows": table.reset_index().to_dict("records") if len(table) else [], "stats": stats.to_dict("records"),
           "curve_steps": list(P.grad_curve_steps), "curve_rule": curve_verdicts,
           "curve_rule_text": f"PostLN's input-gradient bottom/top interval below {gradients.SHRUNK_BELOW} and PreLN's "
                              f"|log ratio| at most {gradients.BALANCED_FRACTION} of PostLN's, at the same step"}
study.write_summary(out, summary)
cell = {(r["shape"], r["stage"], r["variant"], r["metric"]): (r["mean"], r["hw"]) for r in summary["stats"]}


def pair(key, m):  # "PostLN / PreLN" bottom/top ratios of one measure, with their intervals over seeds
    return " / ".join(results.format_pm(*cell.get((*key, v, m), (None, None)), 2) for v in ("PostLN", "PreLN"))


lines = [f"The paper's picture, per measure: PostLN's bottom/top ratio < {SHRUNK} with its interval below 1, PreLN's "
         f"within {BALANCED} (`repro.report.imbalance_shown`, the report's rule). Ratios PostLN / PreLN:"]
for *_, key in sorted({(r["layers"], r["shape"], r["stage"] != "init", (r["shape"], r["stage"])) for r in summary["stats"]}):
    shown = [m for m in ("param", "input") if all((*key, v, m) in cell for v in ("PostLN", "PreLN"))
             and imbalance_shown(cell[(*key, "PostLN", m)], cell[(*key, "PreLN", m)])]
    lines.append(f"- {key[0]}, {key[1]}: parameter gradients {pair(key, 'param')}, input gradients {pair(key, 'input')}: "
                 f"**{'shown by the ' + ' and '.join(shown) + ' gradients' if shown else 'not shown'}**.")
for v in curve_verdicts:
    lines.append(f"- Along training, step {v['step']}: input bottom/top PostLN {results.format_pm(*v['postln'], 2)}, PreLN "
                 f"{results.format_pm(*v['preln'], 2)}: **{'shown' if v['shown'] else 'not shown'}** by the relative rule.")
state = study.status()
display(Markdown(("" if state["complete"] else f"**Partial: {state['done']} of {state['planned']} runs.**\n\n")
                 + "\n".join(lines)))
