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
# # The report: a verdict for every claim
#
# Reads what the other notebooks wrote at this profile (their `summary.json`, tables and run
# records) and gives each paper claim a verdict by the rule printed beside it
# (`repro/rules.py` holds the rules): *reproduced*, *partly*, *not reproduced*, or *not
# measured* when its notebook has not run. Writes `results/<profile>/REPORT.md` and
# `per_seed.csv` beside it, plus `claims.csv`, `provenance.csv` and the figures here. The
# runner runs this notebook last, and again whenever another notebook's outputs change.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import appendix, report, report_figures, results
from repro.control import Control

control = Control.from_environ()  # what the runner set: the results root, its execution, the data folder
out = Path(output_dir) if output_dir else results.output_dir(profile, "report", control.results_dir)
root = out.parent.parent  # <results>/<profile>/report -> <results>
seeds = appendix.per_seed(report.Store(profile, root))  # every compared arm's number per seed, from the records

# %% [markdown]
# The figures drawn from the records alone come first, so that the claims they show link them:
# the early-bird tickets per task, and EarlyBERT's time saving in the accounting its rule reads
# (equal epochs), per machine the runs were timed on. Every bar is a mean over seeds with its 95%
# interval; the dots are the seeds.

# %%
for name, draw in (("early_ticket", report_figures.early_ticket), ("earlybert_time", report_figures.time_saving)):
    fig = draw(seeds)
    if fig is None:  # nothing to show yet: no figure of an earlier execution is left behind
        (out / f"{name}.png").unlink(missing_ok=True)
        continue
    results.save_figure(fig, out, name)
    plt.close(fig)

# %%
claims = report.assess(profile, root, control.data_dir)
prov = report.provenance(profile, root)
results.save_table(claims, out, "claims")
results.save_table(prov, out, "provenance")
with pd.option_context("display.max_colwidth", 90):
    display(claims[report.SHOWN])

# %% [markdown]
# Our numbers against the papers'. Left: training time saved (PLD at theta_bar 0.5 against its
# 24%; the EarlyBERT pipeline, search included and trained for equal epochs, against its 35-45%),
# each the number its rule reads with its 95% interval. Right: accuracy differences of the cheap
# method from its dense baseline, with 95% intervals over seeds and the band the judging rule
# version accepts as "comparable" (its margin, from repro.rules).

# %%
fig = report_figures.claims_figure(claims, profile)
results.save_figure(fig, out, "claims")

# %%
header = (
    f"Made by `notebooks/report.py` from the other notebooks' outputs at this profile (regenerate: "
    f"`python -m repro run all --profile {profile}`). Each verdict comes from the rule in the Rules table; "
    "the papers state point claims without a tolerance, so the tolerances are ours. Our scale is far "
    "below the papers' (see the scale column): a claim that does not hold here is a finding at this scale, "
    "not a refutation of the paper.\n\n![claims](report/claims.png)\n")
path = out.parent / "REPORT.md"
seeds.to_csv(out.parent / appendix.PER_SEED_CSV, index=False)  # linked from the appendix, beside REPORT.md
path.write_text(report.markdown(claims, prov, profile, header, report.sections(profile, root, control.data_dir),
                                report.appendix_sections(profile, claims, root, seeds)))
counts = claims["verdict"].value_counts()
results.write_summary(out, {"verdicts": claims["verdict"].to_dict(), "counts": {v: int(counts.get(v, 0)) for v in report.VERDICTS},
                            "values": {k: {"value": v, "hw": h, "unit": u} for k, v, h, u in
                                       claims[["value", "hw", "unit"]].itertuples()}}, execution=control.execution)
display(Markdown(f"Wrote `{path}`: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in report.VERDICTS) + "."))
