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
# (`repro/report.py` holds the rules): *reproduced*, *partly*, *not reproduced*, or *not
# measured* when its notebook has not run. Writes `results/<profile>/REPORT.md`, plus
# `claims.csv`, `provenance.csv` and a figure of our numbers against the papers' here. The
# runner runs this notebook last, and again whenever another notebook's outputs change.

# %% tags=["parameters"]
profile = "smoke"
output_dir: str | None = None

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from repro import report, results

out = Path(output_dir) if output_dir else results.output_dir(profile, "report")
root = out.parent.parent  # <results>/<profile>/report -> <results>
claims = report.assess(profile, root)
prov = report.provenance(profile, root)
results.save_table(claims, out, "claims")
results.save_table(prov, out, "provenance")
with pd.option_context("display.max_colwidth", 90):
    display(claims[report.SHOWN])

# %% [markdown]
# Our numbers against the papers'. Left: training time saved (PLD at theta_bar 0.5 against its
# 24%; the EarlyBERT pipeline, search included, against its 35-45%). Right: accuracy differences
# of the cheap method from its dense baseline, with 95% intervals over seeds and the band each
# rule accepts as "comparable".

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
SAVINGS = [("pld_time", "PLD", (24, 24)), ("earlybert_time", "EarlyBERT", (35, 45))]
for i, (key, name, (lo, hi)) in enumerate(SAVINGS):
    ours = claims.loc[key, "value"]
    axes[0].barh(i, ours if pd.notna(ours) else 0, 0.5, color="tab:blue", label="ours" if i == 0 else None)
    axes[0].fill_betweenx([i - 0.35, i + 0.35], lo - 0.4, hi + 0.4, color="k", alpha=0.3,
                          label="paper" if i == 0 else None)
    axes[0].text(0.5, i + 0.3, claims.loc[key, "verdict"] if pd.notna(ours) else "not measured", fontsize=8)
axes[0].set_yticks(range(len(SAVINGS)), [s[1] for s in SAVINGS])
axes[0].set_xlabel("training time saved vs dense (%)")
axes[0].set_xlim(min([0, *claims.loc[[s[0] for s in SAVINGS], "value"].dropna()]) - 5, 55)
axes[0].set_ylim(-0.5, len(SAVINGS) - 0.2)
axes[0].legend(loc="upper right", fontsize=8)
axes[0].set_title("Time saved")
GAPS = [("pld_glue", "PLD: GLUE", -1.0), ("earlybert_glue", "EarlyBERT: GLUE", -1.5),
        ("earlybert_squad", "EarlyBERT: SQuAD F1", -1.5)]
for i, (key, name, tol) in enumerate(GAPS):
    v, hw = claims.loc[key, "value"], claims.loc[key, "hw"]
    if pd.notna(v):
        axes[1].errorbar(v, i, xerr=hw if pd.notna(hw) else None, fmt="o", color="tab:blue", capsize=4)
    axes[1].plot([tol, 0], [i, i], color="tab:green", lw=8, alpha=0.25, label="accepted as comparable" if i == 0 else None)
    axes[1].text(tol, i + 0.25, claims.loc[key, "verdict"], fontsize=8)
axes[1].axvline(0, color="grey", lw=0.8)
ends = [v + sign * (h if pd.notna(h) else 0) for v, h in claims.loc[[g[0] for g in GAPS], ["value", "hw"]].dropna(subset="value").itertuples(index=False) for sign in (-1, 1)]
axes[1].set_xlim(min([-5, *ends]) - 0.5, max([3, *ends]) + 0.5)
axes[1].set_yticks(range(len(GAPS)), [g[1] for g in GAPS])
axes[1].set_xlabel("score difference from the dense baseline (points; 95% interval)")
axes[1].set_ylim(-0.5, len(GAPS) - 0.2)
axes[1].legend(loc="upper left", fontsize=8)
axes[1].set_title("Accuracy cost")
fig.suptitle(f"Claims against the papers ({profile} profile)")
fig.tight_layout()
results.save_figure(fig, out, "claims")

# %%
header = (
    f"Made by `notebooks/report.py` from the other notebooks' outputs at this profile (regenerate: "
    f"`python -m repro run all --profile {profile}`). Each verdict comes from the rule in the Rules table; "
    "the papers state point claims without a tolerance, so the tolerances are ours. Our scale is far "
    "below the papers' (see the scale column): a claim that does not hold here is a finding at this scale, "
    "not a refutation of the paper.\n\n![claims](report/claims.png)\n")
path = out.parent / "REPORT.md"
path.write_text(report.markdown(claims, prov, profile, header, report.sections(profile, root)))
counts = claims["verdict"].value_counts()
results.write_summary(out, {"verdicts": claims["verdict"].to_dict(), "counts": {v: int(counts.get(v, 0)) for v in report.VERDICTS},
                            "values": {k: {"value": v, "hw": h, "unit": u} for k, v, h, u in
                                       claims[["value", "hw", "unit"]].itertuples()}})
display(Markdown(f"Wrote `{path}`: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in report.VERDICTS) + "."))
