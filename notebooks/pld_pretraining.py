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
# # MLM pre-training with Progressive Layer Dropping vs dense baselines
#
# The PLD paper's pre-training claims: 24% less time per sample, and with the larger learning rate
# PreLN + PLD tolerates, 2.5x faster to the baseline's quality. Here five BERTs of the profile's
# size are pre-trained from scratch with masked-LM on the text corpus, all from the same seed
# (same initial weights, same data order and masks):
#
# | method | block | learning rate | schedule |
# |---|---|---|---|
# | `postln` | PostLN (original BERT) | `lr` | warm-up 10%, linear decay |
# | `preln` | PreLN | `lr` | warm-up 10%, linear decay |
# | `preln_pld` | PreLN + PLD (theta_bar, gamma) | `lr` | warm-up 10%, linear decay |
# | `preln_pld_lrhigh` | PreLN + PLD | `lr_high` | the PLD recipe: warm-up 2%, then `lr * 0.99^((t - w)/k)` |
# | `postln_lrhigh` | PostLN | `lr_high` | the PLD recipe |
#
# `k` = steps/200 so that the decay over the run equals the recipe's over its 200k steps
# (k = 1000 there). A run whose loss becomes non-finite ends with status "diverged" and is shown
# as such. Figures: validation MLM loss (fixed held-out blocks, fixed masks) against optimizer
# steps and against training seconds (forward, backward, optimizer and batching; evaluation
# excluded); time per training sample (over each whole run, and paired: dense steps and steps with
# the PLD run's gates alternating on one model, which a shared machine's load skews less). Table: steps and seconds each run needs to reach the
# baseline's final validation loss (linear interpolation between evaluations; "not reached" if
# it never does) and the resulting speed-ups. The final weights go to `checkpoints/<method>` for
# the `pld_glue` notebook.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
seeds: list | None = None  # None: the profile seeds (the first is used)
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
steps: int | None = None  # None: the profile pretrain_steps (cpu: 600, so that the five runs fit ~1 h on one core)
lr: float | None = None  # None: the profile pretrain_lr
lr_high: float | None = None  # None: 10 x lr, the paper ratio (PLD recipe 1e-3 vs its baseline 1e-4)
high_schedule: str = "recipe"  # "recipe": warm-up 2% + exponential decay; "profile": as the baselines
theta_bar: float = 0.5
gamma: float | None = None  # None: 100/steps (theta reaches theta_bar within ~5% of the run, as in the paper)
variant: str = "paper"  # PLD keep probabilities: "paper" or "code"
baseline: str = "preln"  # the run whose final validation loss is the target
eval_every: int | None = None  # None: steps // 20
valid_examples: int | None = None  # held-out blocks per evaluation; None: smoke 64, else 256
max_chars: int | None = None  # characters of the training corpus; None: smoke 300k, else all
methods: list | None = None  # None: all five
# %%
import copy
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from repro import pld, results
from repro.checks import check_parameters
from repro.analysis import paired_step_times, steps_to_reach
from repro.data import load_tokenizer
from repro.profiles import get_profile
from repro.tasks import corpus_data, pretrain_mlm, scratch_model

check_parameters(globals())
steps = steps if steps is not None else {"cpu": 600}.get(profile)
P = get_profile(profile, pretrain_steps=steps, pretrain_lr=lr)
steps, lr = P.pretrain_steps, P.pretrain_lr
out = Path(output_dir) if output_dir else results.output_dir(profile, "pld_pretraining")
seed = list(seeds if seeds is not None else P.seeds)[0]
lr_high = lr_high if lr_high is not None else 10 * lr
gamma = gamma if gamma is not None else pld.heuristic_gamma(steps)
eval_every = eval_every if eval_every is not None else max(1, steps // 20)
valid_examples = valid_examples if valid_examples is not None else (64 if profile == "smoke" else 256)
max_chars = max_chars if max_chars is not None else (300_000 if profile == "smoke" else None)
SPECS = {m: pld.pretraining_method(m, lr, steps, lr_high, high_schedule) for m in pld.PRETRAINING_METHODS}
methods = list(methods or SPECS)
if set(methods) - set(SPECS):
    raise ValueError(f"methods must be among {list(SPECS)}, got {methods}")
if baseline not in methods:
    raise ValueError(f"baseline {baseline!r} must be one of the methods run: {methods}")
tokenizer = load_tokenizer("minilm")
data = corpus_data(P, tokenizer, data_dir, max_chars=max_chars, valid_chars=max_chars)
print(f"profile {P.name}: {P.layers} layers x {P.hidden}, seq {P.seq_len}, batch {P.pretrain_batch}, "
      f"{steps} steps ({len(data[0])} train blocks), lr {lr:g}, lr_high {lr_high:g} ({high_schedule}), "
      f"PLD theta_bar {theta_bar} gamma {gamma:.3g} ({variant}), eval every {eval_every} steps on {valid_examples} blocks")

# %%
# untimed warm-up: a process's first training steps allocate memory and pick kernels; no method pays for it
torch.manual_seed(seed)
pretrain_mlm(scratch_model(P, tokenizer, seed=seed), P, seed, data=data, steps=3, eval_every=0, progress=False)

runs = {}
for method in methods:
    spec = SPECS[method]
    ln, use_pld, run_lr, overrides = spec["ln"], spec["pld"], spec["lr"], spec["train"]
    torch.manual_seed(seed)
    model = scratch_model(P, tokenizer, ln=ln, seed=seed)
    hooks = [pld.PLD(theta_bar, gamma, variant, seed=seed)] if use_pld else []
    run = pretrain_mlm(model, P, seed, data=data, lr=run_lr, hooks=hooks, eval_every=eval_every,
                       valid_examples=valid_examples, log_every=1, progress=False, **overrides)
    r = run["result"]
    # training seconds (compute + batching, evaluation excluded) at each logged step
    secs = {h["step"]: h["compute"] + h["data"] for h in r.history}
    curve = [{"method": method, "step": e["step"], "val_loss": e["val_loss"], "seconds": secs.get(e["step"])}
             for e in r.evals]
    train_s = r.times["compute"] + r.times["data"]
    runs[method] = {"result": r, "curve": curve, "model": model, "hooks": hooks, "lr": run_lr,
                    "time_per_sample": train_s / max(r.samples, 1), "train_s": train_s,
                    "final_val_loss": r.final_eval.get("val_loss", float("nan")) if r.status != "diverged" else float("nan")}
    print(f"{method}: {r.status}, {r.steps} steps, val loss {runs[method]['final_val_loss']:.3f}, "
          f"{train_s:.1f}s training, {1e3 * runs[method]['time_per_sample']:.2f} ms/sample")
curves = pd.DataFrame([row for m in runs for row in runs[m]["curve"]])
train_curves = pd.DataFrame([{"method": m, "step": h["step"], "loss": h["loss"], "lr": h["lr"],
                              "seconds": h["compute"] + h["data"]} for m in runs for h in runs[m]["result"].history])
results.save_table(curves, out, "val_curves")
results.save_table(train_curves, out, "train_curves")

# %%
# Step time with less noise than two whole runs: dense steps and steps with the PLD run's gates in
# adjacent pairs on one model (a copy of the PreLN baseline) and one training batch.
paired = None
if "preln_pld" in runs and "preln" in runs:
    batch = data[2](list(data[0][:P.pretrain_batch]), generator=torch.Generator().manual_seed(0))
    gates = [[1.0 if c == "1" else None for c in row] for row in runs["preln_pld"]["hooks"][0].record]
    paired = paired_step_times(copy.deepcopy(runs["preln"]["model"]), batch, gates)
    print(f"paired: dense {1e3 * paired['dense_s']:.1f} ms/step, PLD gates {1e3 * paired['gated_s']:.1f} ms/step "
          f"(ratio {paired['ratio']:.3f})")

# %%
target = runs[baseline]["final_val_loss"]
base_end = runs[baseline]["curve"][-1]  # the baseline's last evaluation: its steps and seconds
rows = []
for m, r in runs.items():
    c = r["curve"]
    s_reach = steps_to_reach([x["step"] for x in c], [x["val_loss"] for x in c], target)
    t_reach = steps_to_reach([x["seconds"] for x in c], [x["val_loss"] for x in c], target)
    rows.append({"method": m, "status": r["result"].status, "lr": r["lr"], "final_val_loss": r["final_val_loss"],
                 "time_per_sample_ms": 1e3 * r["time_per_sample"],
                 "time_per_sample_saving": 1 - r["time_per_sample"] / runs[baseline]["time_per_sample"],
                 "steps_to_target": s_reach, "seconds_to_target": t_reach,
                 "speedup_steps": base_end["step"] / s_reach if s_reach else None,
                 "speedup_time": base_end["seconds"] / t_reach if t_reach else None,
                 # steps x the paired per-step cost (PLD runs: gated/dense; the others cost what the baseline does)
                 "speedup_time_paired": (base_end["step"] / s_reach / (paired["ratio"] if r["hooks"] else 1.0))
                 if s_reach and paired else None})
table = pd.DataFrame(rows).set_index("method")
results.save_table(table, out, "speedup")
for m, r in runs.items():
    res, row = r["result"], table.loc[m]
    results.record(notebook="pld_pretraining", profile=profile, task="mlm", method=m, seed=seed,
                   status="diverged" if res.status == "diverged" else "ok",
                   metrics={"val_loss": r["final_val_loss"], "time_per_sample": r["time_per_sample"],
                            "steps_to_target": row["steps_to_target"], "seconds_to_target": row["seconds_to_target"],
                            "speedup_steps": row["speedup_steps"], "speedup_time": row["speedup_time"],
                            "speedup_time_paired": row["speedup_time_paired"]},
                   times=res.times,
                   config={"profile": P.to_dict(), "method": m, "lr": r["lr"], "steps": steps, "baseline": baseline,
                           "target_val_loss": target, "max_chars": max_chars, "schedule": SPECS[m]["train"] or "profile",
                           "pld": {"theta_bar": theta_bar, "gamma": gamma, "variant": variant} if r["hooks"] else None},
                   samples=res.samples, stop_reason=res.stop_reason)
table

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for i, (m, r) in enumerate(runs.items()):
    c = pd.DataFrame(r["curve"])
    label = f"{m} (lr {r['lr']:g})" + (" - DIVERGED" if r["result"].status == "diverged" else "")
    if len(c):
        axes[0].plot(c["step"], c["val_loss"], marker=".", color=f"C{i}", label=label)
        axes[1].plot(c["seconds"], c["val_loss"], marker=".", color=f"C{i}", label=label)
    if r["result"].status == "diverged":  # mark where the loss became non-finite
        axes[0].axvline(r["result"].steps, color=f"C{i}", ls=":", lw=1)
for ax in axes:
    ax.axhline(target, color="grey", ls="--", lw=0.8, label=f"{baseline} final val loss {target:.3f}")
    ax.set_ylabel("validation MLM loss (nats/token)")
axes[0].set_xlabel("optimizer step")
axes[1].set_xlabel("training time (s, evaluation excluded)")
axes[0].set_title("Validation loss vs steps")
axes[1].set_title("Validation loss vs wall-clock")
axes[1].legend(fontsize=8)
fig.suptitle(f"MLM pre-training from scratch ({profile} profile, {P.layers} layers x {P.hidden})")
fig.tight_layout()
results.save_figure(fig, out, "val_loss")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(table.index, table["time_per_sample_ms"], color=[f"C{i}" for i in range(len(table))])
ax.set_ylabel("training time per sample (ms)")
ax.set_title("Time per sample (compute + batching)")
ax.tick_params(axis="x", rotation=30)
results.save_figure(fig, out, "time_per_sample")

# %%
ckpt_dir = out / "checkpoints"
saved = {}
for m, r in runs.items():
    if r["result"].status != "diverged":
        saved[m] = str(r["model"].save_pretrained(ckpt_dir / m))
print("checkpoints:", saved)

pld_m = "preln_pld"
summary = {
    "baseline": baseline, "target_val_loss": target, "steps": steps, "lr": lr, "lr_high": lr_high,
    "theta_bar": theta_bar, "gamma": gamma, "variant": variant, "checkpoints": saved,
    "methods": {m: {k: (None if pd.isna(v) else v) for k, v in table.loc[m].items()} for m in table.index},
    "paper": {"time_per_sample_saving": 0.24, "speedup": 2.5},
}
if pld_m in runs and "preln" in runs:
    summary["pld_time_per_sample_saving_vs_preln"] = 1 - runs[pld_m]["time_per_sample"] / runs["preln"]["time_per_sample"]
    hook = runs[pld_m]["hooks"][0]
    rec = hook.realized_vs_expected(P.layers)
    summary["pld_compute_fraction"] = {"realized": rec["compute_realized"], "expected": rec["compute_expected"]}
    summary["pld_time_per_sample_saving_paired"] = 1 - paired["ratio"]
    summary["paired_step_s"] = {"dense": paired["dense_s"], "pld": paired["gated_s"]}
results.write_summary(out, summary)
table

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %%
def fmt(x, unit=""):
    return "not reached" if x is None or pd.isna(x) else f"{x:.2f}{unit}"


lines = [f"- Target: the `{baseline}` run's final validation loss, {target:.3f}."]
for m, row in table.iterrows():
    if row["status"] == "diverged":
        lines.append(f"- `{m}` (lr {row['lr']:g}) **diverged** (non-finite loss at step {runs[m]['result'].steps}).")
        continue
    lines.append(f"- `{m}` (lr {row['lr']:g}): final val loss {row['final_val_loss']:.3f}; reaches the target in "
                 f"{fmt(row['steps_to_target'])} steps / {fmt(row['seconds_to_target'], ' s')}; speed-up vs "
                 f"`{baseline}` {fmt(row['speedup_steps'], 'x')} in steps, {fmt(row['speedup_time'], 'x')} in measured "
                 f"time ({fmt(row['speedup_time_paired'], 'x')} with the paired step times); "
                 f"{row['time_per_sample_ms']:.2f} ms per sample ({row['time_per_sample_saving']:+.1%} saving).")
if "pld_time_per_sample_saving_vs_preln" in summary:
    s, cf = summary["pld_time_per_sample_saving_vs_preln"], summary["pld_compute_fraction"]
    lines.append(f"- PLD's measured time-per-sample saving vs PreLN: {summary['pld_time_per_sample_saving_paired']:.1%} "
                 f"paired (alternating steps on one model), {s:.1%} from the two whole runs (paper: 24%), with "
                 f"{1 - cf['realized']:.1%} of the encoder blocks skipped ({1 - cf['expected']:.1%} expected); "
                 f"embeddings, MLM head and optimizer are never skipped, so the saving is below the skipped share.")
best = table[table.index != baseline]["speedup_time"].dropna()
if len(best):
    paired_best = table.loc[best.idxmax(), "speedup_time_paired"]
    lines.append(f"- Largest measured time speed-up to the target: `{best.idxmax()}` at {best.max():.2f}x "
                 f"({fmt(paired_best, 'x')} with the paired step times; paper: 2.5x).")
else:
    lines.append("- No run other than the baseline reached the baseline's final loss: no speed-up (paper: 2.5x).")
display(Markdown("\n".join(lines)))
