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
# # GLUE fine-tuning of the PLD and baseline pre-trained models (PLD paper, GLUE table)
#
# The PLD paper's downstream claim: a model pre-trained with PLD fine-tunes as well as (or better
# than) the baseline. This notebook takes the checkpoints the `pld_pretraining` notebook saved
# (same profile): the PreLN baseline and the PLD runs, fine-tunes each on the profile's GLUE
# tasks over the profile's seeds (fine-tuning runs every block, unscaled; no PLD), and reports
# the dev-set metrics as mean +- 95% t-interval over seeds, beside the paper's published table
# (rows labelled "paper:"), and the difference PLD - baseline per task (paired by seed: both
# models see the same training subset and order) beside the paper's PLD - BERT-base (reimpl.).
# Our models are small and pre-trained briefly on a book corpus: absolute scores are not
# comparable with the paper's, only the sign and size of the difference is.
# Figure **`glue_scores`**: each task's main metric per method (mean over seeds, error bars = 95% interval).

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None
seeds: list | None = None  # None: the profile seeds
data_dir: str | None = None  # None: $REPRO_DATA_DIR or ../shared/data
tasks: list | None = None  # None: the profile GLUE tasks, at most max_tasks of them
max_tasks: int | None = None  # None: the profile's budget (cpu: its first 3 tasks, to fit the study in a session; others: all)
methods: list | None = None  # None: the baseline and every PLD checkpoint pld_pretraining saved
baseline: str = "preln"
lr: float | None = None  # None: the profile finetune_lr
epochs: float | None = None  # None: the profile finetune_epochs
# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from scipy import stats

from repro import pld, results
from repro.checks import check_parameters
from repro.data import load_tokenizer
from repro.metrics import main_metric
from repro.profiles import get_profile
from repro.tasks import finetune_glue, glue_data, glue_model

check_parameters(globals())
P = get_profile(profile, finetune_lr=lr, finetune_epochs=epochs)
out = Path(output_dir) if output_dir else results.output_dir(profile, "pld_glue")
max_tasks = max_tasks if max_tasks is not None else {"cpu": 3}.get(profile)
tasks = list(tasks or P.glue_tasks[:max_tasks])
seeds = list(seeds if seeds is not None else P.seeds)
ckpt_root = results.output_path(profile, "pld_pretraining") / "checkpoints"
available = sorted(p.name for p in ckpt_root.glob("*") if (p / "config.json").exists())
if not available:
    raise FileNotFoundError(f"no pre-trained checkpoints in {ckpt_root}: run the pld_pretraining notebook "
                            f"first (python -m repro run pld_pretraining --profile {profile})")
methods = list(methods or [baseline] + [m for m in available if "pld" in m])
missing = [m for m in methods if m not in available]
if missing:
    raise FileNotFoundError(f"checkpoints {missing} are not in {ckpt_root} (found {available}; a diverged "
                            f"pre-training run saves none): re-run pld_pretraining or pass methods=[...]")
tokenizer = load_tokenizer("minilm")  # the scratch models' vocabulary
print(f"profile {P.name}: methods {methods} from {ckpt_root}; tasks {tasks}; seeds {seeds}; "
      f"lr {P.finetune_lr:g}, {P.finetune_epochs} epochs, train subset {P.max_train_examples or 'all'}")

# %%
rows = []
for task in tasks:
    for seed in seeds:
        data = glue_data(task, P, tokenizer, data_dir, seed)  # the same subset and order for every method
        for method in methods:
            model = glue_model(str(ckpt_root / method), task, seed=seed)
            run = finetune_glue(model, task, P, seed, tokenizer=tokenizer, data=data, progress=False)
            r = run["result"]
            rows.append(results.record(
                notebook="pld_glue", profile=profile, task=task, method=method, seed=seed,
                metrics=run["metrics"] | {"train_loss": r.history[-1]["loss"]}, times=r.times,
                status="diverged" if r.status == "diverged" else "ok",
                config={"profile": P.to_dict(), "task": task, "checkpoint": str(ckpt_root / method),
                        "n_train": run["n_train"], "n_eval": run["n_eval"]}))
            print(f"{task} seed {seed} {method}: {run['metrics']} ({r.times['total']:.1f}s)")
runs = results.to_frame(rows)

# %%
summ = results.summarize(runs, by=("task", "method"))
cell = {(t, m, k): (mean, hw) for t, m, k, mean, hw in summ[["task", "method", "metric", "mean", "hw"]].itertuples(index=False)}
table = {}
for m in methods:  # ours, in the paper's column layout
    row = {}
    for col in pld.PAPER_GLUE_COLUMNS:
        task = next((t for t, (c, _) in pld.PAPER_GLUE_METRICS.items() if c == col and t in tasks), None)
        metrics = pld.PAPER_GLUE_METRICS[task][1] if task else ()
        row[col] = "/".join(results.format_pm(*cell.get((task, m, k), (np.nan, np.nan))) for k in metrics) or "–"
    ours_main = [cell[(t, m, main_metric(t))][0] for t in tasks if (t, m, main_metric(t)) in cell]
    row["avg of tasks run"] = f"{np.mean(ours_main):.1f}" if ours_main else "–"
    table[f"ours ({profile}): {m}"] = row
for name, values in pld.PAPER_GLUE.items():
    table[f"paper: {name}"] = dict(zip(pld.PAPER_GLUE_COLUMNS, values)) | {"avg of tasks run": ""}
table = pd.DataFrame(table).T
results.save_table(table, out, "glue_vs_paper")
table

# %%
def paired_delta(task, metric, method):
    """Mean and 95% t half-width of (method - baseline) over seeds run by both."""
    col = f"metric.{metric}"
    a = runs[(runs["task"] == task) & (runs["method"] == method)].set_index("seed")[col]
    b = runs[(runs["task"] == task) & (runs["method"] == baseline)].set_index("seed")[col]
    d = (a - b).dropna()
    hw = stats.t.ppf(0.975, len(d) - 1) * d.std() / np.sqrt(len(d)) if len(d) > 1 else np.nan
    return float(d.mean()), float(hw), len(d)


deltas = []
for m in methods:
    if m == baseline:
        continue
    for t in tasks:
        for k in sorted({c.removeprefix("metric.") for c in runs.columns if c.startswith("metric.")} - {"train_loss"}):
            if runs.loc[runs["task"] == t, f"metric.{k}"].notna().any():
                mean, hw, n = paired_delta(t, k, m)
                p_pld, p_base = pld.paper_glue_value("PLD", t, k), pld.paper_glue_value("BERT-base (reimpl.)", t, k)
                deltas.append({"method": m, "task": t, "metric": k, "main": k == main_metric(t), "delta": mean,
                               "hw": hw, "n_seeds": n, "paper_delta": None if p_pld is None else p_pld - p_base})
deltas = pd.DataFrame(deltas)
results.save_table(deltas, out, "delta")
deltas

# %%
main = summ[[k == main_metric(t) for t, k in zip(summ["task"], summ["metric"])]]
fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(tasks), 3.8))
width = 0.8 / len(methods)
for i, m in enumerate(methods):
    g = main[main["method"] == m].set_index("task").reindex(tasks)
    ax.bar(np.arange(len(tasks)) + i * width, g["mean"], width, yerr=g["hw"].fillna(0), capsize=3, label=m)
ax.set_xticks(np.arange(len(tasks)) + width * (len(methods) - 1) / 2)
ax.set_xticklabels([f"{t}\n({main_metric(t)})" for t in tasks])
ax.set_ylabel("dev score (0-100)")
ax.set_title(f"GLUE dev after fine-tuning, mean over {len(seeds)} seed(s) ({profile} profile)")
ax.legend()
results.save_figure(fig, out, "glue_scores")

# %%
summary = {"methods": methods, "baseline": baseline, "tasks": tasks, "seeds": seeds, "checkpoints": str(ckpt_root),
           "scores": {m: {t: cell.get((t, m, main_metric(t)), (None, None))[0] for t in tasks} for m in methods},
           "delta": deltas.to_dict("records")}
results.write_summary(out, summary)

# %% [markdown]
# ## Conclusion (computed from the numbers above)

# %%
lines = []
for m in methods:
    if m == baseline:
        continue
    for _, d in deltas[(deltas["method"] == m) & deltas["main"]].iterrows():
        if np.isfinite(d["hw"]):
            verdict = ("no significant difference" if abs(d["delta"]) <= d["hw"]
                       else "PLD better" if d["delta"] > 0 else "PLD worse")
            interval = f" +- {d['hw']:.1f} ({verdict}, 95% paired t-interval, {d['n_seeds']} seeds)"
        else:
            interval = " (one seed: no interval, no verdict)"
        paper = f"; paper PLD - BERT reimpl.: {d['paper_delta']:+.1f}" if d["paper_delta"] is not None and not pd.isna(d["paper_delta"]) else ""
        lines.append(f"- `{m}` - `{baseline}`, {d['task']} {d['metric']}: {d['delta']:+.1f}{interval}{paper}.")
avg = {m: np.nanmean([summary["scores"][m][t] if summary["scores"][m][t] is not None else np.nan for t in tasks]) for m in methods}
lines.append("- Average of the main metrics over the tasks run: " + ", ".join(f"`{m}` {v:.1f}" for m, v in avg.items())
             + f" (paper GLUE score over all tasks: PLD {pld.PAPER_GLUE['PLD'][-1]} vs BERT-base reimpl. "
             f"{pld.PAPER_GLUE['BERT-base (reimpl.)'][-1]}).")
display(Markdown("\n".join(lines)))
