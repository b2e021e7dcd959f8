"""Where PLD's premise starts to hold: the smallest configuration at which PostLN fails at a rate
PreLN + PLD trains stably (notebook `pld_premise`).

PLD's 2.5x rests on PreLN + PLD training at a rate PostLN cannot use. At 12 x 128 (our `cpu` PLD
size) the learning-rate pilot found no such rate: every arch was stable up to 4e-3. This widens
the pilot, depth before width, up to 1e-2, with the recipe's 2% warm-up and the official PreLN
init; each cell is one pilot run (the first `steps` of a full run's schedule, `mlm_unit(pilot=True)`).

The rule (set 2026-12-07, before any of these runs): at a configuration and rate the premise
*holds* when
- PreLN + PLD is stable (pld pilot rule: finite, below its start, no rebound over REBOUND), and
- PostLN fails: it diverged (went non-finite), is not stable, or ends at least WORSE_NATS above
  PreLN + PLD's final validation loss.
The smallest configuration is the first in `search_shapes`' order (then rates ascending) where it holds.

Where it holds, `speedup_curve` reports the speed-up as a curve: for target losses between the
unigram plateau and the baseline's final loss, the baseline's training seconds to reach each
over PLD's, so it is measured where the baseline still descends, not only at its last point.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from . import pld_runs
from .analysis import steps_to_reach
from .study import Study
from .units import mlm_unit, unigram_unit

ARMS = ("postln", "preln_pld")
WORSE_NATS = 0.2  # "clearly worse": twice the pilot's rebound margin, in nats of validation loss


def search_shapes(P) -> tuple:
    """The profile's PLD size, twice as deep, then twice as wide too: depth before width
    (`cpu`: 12 x 128, 24 x 128, 24 x 256); the first P.premise_shapes of them."""
    return ((P.layers, P.hidden), (2 * P.layers, P.hidden), (2 * P.layers, 2 * P.hidden))[:P.premise_shapes]


def shape_profile(P, layers: int, hidden: int, steps: int | None = None):
    """P (a pld_profile) at another shape; heads keep 64 dimensions each (BERT's), FFN 4x."""
    return replace(P, layers=layers, hidden=hidden, heads=max(1, hidden // 64), intermediate=4 * hidden,
                   pld_pilot_steps=steps or P.pld_pilot_steps)


def premise_units(study: Study, P, seed: int, *, shapes, rates, steps: int | None = None,
                  pld_kw: dict, data_dir=None) -> list[dict | None]:
    """Every (shape, rate, arm) pilot run, in search order: shapes first, then rates; a unit missing
    (deadline, read-only) is None."""
    return [mlm_unit(study, shape_profile(P, layers, hidden, steps), arm, lr, seed, pld_kw=pld_kw, pilot=True,
                     data_dir=data_dir)
            for layers, hidden in shapes for lr in rates for arm in ARMS]


def divergence_step(rec: dict) -> int | None:
    """The first logged training step whose loss was non-finite (None if none was)."""
    bad = [p["step"] for p in rec.get("train_curve", []) if p["loss"] is None or not math.isfinite(p["loss"])]
    return min(bad) if bad else (rec.get("steps_done") if rec["status"] == "diverged" else None)


def premise_table(records) -> pd.DataFrame:
    """One row per pilot run: shape, rate, arm, final validation loss or the step it diverged at, stable."""
    recs = [r for r in records if r is not None]
    if not recs:
        return pd.DataFrame(columns=["layers", "hidden", "lr", "arch", "status", "final_val_loss", "diverged_at", "stable"])
    stable = pld_runs.pilot_table(recs)
    rows = [{"layers": r["config"]["layers"], "hidden": r["config"]["hidden"], "lr": r["config"]["lr"],
             "arch": r["config"]["arch"], "status": r["status"], "final_val_loss": r["metrics"]["val_loss"],
             "diverged_at": divergence_step(r), "stable": bool(s)} for r, s in zip(recs, stable["stable"])]
    return pd.DataFrame(rows)


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Per (shape, rate) with both arms recorded: does the premise hold, and why (the rule above)."""
    rows = []
    for (layers, hidden, lr), g in table.groupby(["layers", "hidden", "lr"], sort=False):
        arms = {a: row for a, row in zip(g["arch"], g.to_dict("records"))}
        if set(ARMS) - set(arms):
            continue
        post, pld_ = arms["postln"], arms["preln_pld"]
        gap = post["final_val_loss"] - pld_["final_val_loss"]
        if not pld_["stable"]:
            holds, why = False, "PreLN + PLD not stable"
        elif pd.notna(post["diverged_at"]) or not math.isfinite(post["final_val_loss"]):
            holds, why = True, f"PostLN diverged at step {post['diverged_at']:.0f}"
        elif not post["stable"]:
            holds, why = True, "PostLN not stable (rebound or no progress)"
        elif gap >= WORSE_NATS:
            holds, why = True, f"PostLN {gap:.2f} nats worse"
        else:
            holds, why = False, f"PostLN stable, {gap:+.2f} nats vs PreLN + PLD"
        rows.append({"layers": layers, "hidden": hidden, "lr": lr, "holds": holds, "why": why})
    return pd.DataFrame(rows, columns=["layers", "hidden", "lr", "holds", "why"])


def smallest(v: pd.DataFrame) -> dict | None:
    """The first (shape, rate) in search order where the premise holds, or None."""
    hit = v[v["holds"]]
    return None if hit.empty else hit.iloc[0][["layers", "hidden", "lr"]].to_dict()


def speedup_curve(base: dict, other: dict, unigram: float, points: int = 8) -> pd.DataFrame:
    """Target losses from just below the unigram plateau down to the baseline's final loss: the
    seconds (and steps) each run takes to reach each, and the speed-up base / other (None where
    the other run never reaches it)."""
    final = base["metrics"]["val_loss"]
    rows = []
    for target in np.linspace(min(unigram, base["curve"][0]["val_loss"]), final, points + 1)[1:]:
        row = {"target_val_loss": float(target)}
        for name, rec in (("baseline", base), ("other", other)):
            c = rec["curve"]
            for x in ("step", "seconds"):
                row[f"{name}_{x}"] = steps_to_reach([p[x] for p in c], [p["val_loss"] for p in c], target)
        for x in ("step", "seconds"):
            b, o = row[f"baseline_{x}"], row[f"other_{x}"]
            row[f"speedup_{x}"] = b / o if b and o else None
        rows.append(row)
    return pd.DataFrame(rows)


def conclusion(verdicts: pd.DataFrame, hit: dict | None, curve: pd.DataFrame | None, complete: bool) -> list[str]:
    """The notebook's computed conclusion, one line per shape, then the finding and the curve."""
    lines = []
    for (layers, hidden), g in verdicts.groupby(["layers", "hidden"], sort=False):
        held = g[g["holds"]]
        lines.append(f"- {layers} x {hidden}: " + (
            f"holds from lr {held['lr'].min():g} ({held.iloc[0]['why']})" if len(held) else
            "does not hold at any rate tried (" + "; ".join(f"{r:g}: {w}" for r, w in zip(g["lr"], g["why"])) + ")"))
    if hit is None and complete:
        lines.append("- **No configuration tried shows the premise**: PostLN trains at every rate PreLN + PLD does. "
                     "That is a finding.")
    if curve is not None:
        fmt = lambda x: "never reached" if x is None or not math.isfinite(x) else f"{x:.2f}x"  # noqa: E731
        mid, last = curve.iloc[len(curve) // 2], curve.iloc[-1]
        lines.append(f"- Speed-up at {hit['layers']} x {hit['hidden']} (training seconds): {fmt(mid['speedup_seconds'])} "
                     f"to loss {mid['target_val_loss']:.2f}, {fmt(last['speedup_seconds'])} to the baseline's final "
                     f"{last['target_val_loss']:.2f}.")
    return lines


def speedup_runs(study: Study, P, table: pd.DataFrame, hit: dict, seed: int, *, pld_kw: dict, data_dir=None) -> dict:
    """At the smallest configuration where the premise holds: PostLN at its best stable pilot
    rate there (the baseline) and PreLN + PLD at the rate PostLN failed at, full schedules, and
    the unigram plateau. {"postln", "preln_pld", "unigram"}: records, None where missing."""
    Q = shape_profile(P, int(hit["layers"]), int(hit["hidden"]))
    here = table[(table["layers"] == hit["layers"]) & (table["hidden"] == hit["hidden"])]
    post = here[(here["arch"] == "postln") & here["stable"]]
    if post.empty:
        return {"postln": None, "preln_pld": None, "unigram": None}
    base_lr = float(post.loc[post["final_val_loss"].idxmin(), "lr"])
    return {"postln": mlm_unit(study, Q, "postln", base_lr, seed, pld_kw=pld_kw, data_dir=data_dir),
            "preln_pld": mlm_unit(study, Q, "preln_pld", float(hit["lr"]), seed, pld_kw=pld_kw, data_dir=data_dir),
            "unigram": unigram_unit(study, Q, data_dir=data_dir)}
