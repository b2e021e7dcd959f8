"""The study's verdicts: one row per paper claim, computed from what the notebooks wrote.

Inputs, per notebook, under <results>/<profile>/<notebook>/: summary.json, the CSV tables, and the
run records of that notebook's latest execution (run.json names it). Each claim has a rule, stated
in its row, that turns our numbers into one of VERDICTS. The papers give point claims without a
tolerance, so the thresholds are ours: "reproduced" allows 20% less than the claimed effect, and
"comparable accuracy" is an equivalence test at a stated margin (repro.stats). A claim whose
notebook has not run at this profile is "not measured", and the row says which notebook to run.

The rules live in repro.rules with their history: a claim is judged by the version in force before
the earliest record its verdict rests on, and where a rule changed after data of its notebooks were
first recorded, the verdict under each version is shown beside it (`verdicts_by_version`).

The `smoke` profile gives no verdicts: its tiny models and few steps check that the pipeline runs,
they measure nothing, so every claim's verdict there is SMOKE_VERDICT. The rules still run: what
they would say is kept in the column `rule_verdict` (at other profiles, the verdict itself).

Savings are written as "12.3% less time" or "4.5% more time", never as a negative "less".

The claims are measured in repro.claims_pld and repro.claims_earlybert, from the store of results
(repro.store, shared through repro.report_store); this module judges them and writes REPORT.md, with
where the numbers were made read from the records (repro.machines) and the appendix (repro.appendix:
compute, hyper-parameters, per-seed numbers, what would change each verdict). Its figures are
repro.report_figures'. Nothing here measures: a floor or a timing the report needs is a record.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from . import appendix, claims_earlybert, claims_pld, report_store, rules
from .appendix import would_change
from .claims_earlybert import dense_learned, in_counted_metric
from .claims_pld import BALANCED, SHRUNK, imbalance_shown  # noqa: F401 (re-exported: notebooks/gradient_norms.py)
from .floors import LEARNED_RULE, blind_floor
from .machines import off_lock_text, provenance_table
from .report_store import Claim, Missing  # noqa: F401 (re-exported: earlybert_runs, notes/CONTRACTS.md)
from .results import fewer_flops, format_pm, read_json, results_root, saving  # noqa: F401 (re-exported)
from .rules import COUNTED_METRIC

RULE_VERDICTS = ("reproduced", "partly", "not reproduced", "not measured")  # what a rule may say
SMOKE_VERDICT = "smoke: not a measurement"  # every verdict at the smoke profile
PARTIAL_VERDICT = "partial"  # some of the claim's runs are still to run: no final verdict yet
# made by code that is no longer the package's (stale runs, or outputs from before run-level
# resume, when code was not tracked): shown, never given a verdict until the notebook re-runs
OUTDATED_VERDICT = "outdated"
VERDICTS = RULE_VERDICTS + (PARTIAL_VERDICT, OUTDATED_VERDICT, SMOKE_VERDICT)
NO_VERDICT_PROFILES = ("smoke",)


class Store(report_store.Store):
    """repro.report_store.Store, which also says whether a notebook's outputs are outdated: for
    outputs from before run-level resume that reads the notebook's source, where the runner keeps
    it (an upward import still to remove, notes/LAYOUT.md)."""

    def outdated(self, notebook: str, judged_ids=None) -> str | None:
        """Why the notebook's outputs are not what the package computes now, or None: stale runs
        (code_state), or outputs made before run-level resume by a notebook whose source changed
        since (the runner's run.json keeps the source's hash). `judged_ids`: the records a verdict
        rests on, where it rests on some of the notebook's only (the others' staleness is not its)."""
        import hashlib

        from .catalogue import NOTEBOOKS_DIR
        summary = self.summary(notebook)
        if "run_ids" in summary:
            mine = set(judged_ids or ())
            judged = [i for i in summary["run_ids"] if i in mine]
            # a verdict that names none of this notebook's records rests on all of them
            state = code_state({"run_ids": judged or summary["run_ids"]}, self.codes)
            return None if state == "current" else state
        made = read_json(self.finished(notebook) / "run.json").get("request", {}).get("source_sha256")
        source = NOTEBOOKS_DIR / f"{notebook}.py"
        if made and source.exists() and made != hashlib.sha256(source.read_bytes()).hexdigest():
            return "made before run-level resume by an earlier version of the notebook"
        return None


chance_score = blind_floor  # the input-blind floor (repro.floors): the training majority label's score; STS-B 0

CLAIMS: list[Claim] = [*claims_pld.CLAIMS, *claims_earlybert.CLAIMS]  # each claim's rule: repro.rules.RULES[name]


# the margins the judges before issue #35 hold in their code (repro.rules: _glue_avg -1, _eb_pooled
# and _squad -1.5); later versions carry theirs in params["margin"]
LEGACY_MARGIN = {"glue_average": 1.0, "eb_pooled": 1.5, "squad": 1.5}


def accepted_margin(key: str, i: int) -> float | None:
    """How far below its baseline version i of a claim's rule accepts a method as comparable
    (points; the band the report's figure draws), None for rules that compare no scores."""
    v = rules.RULES[key][i]
    return v.params.get("margin", LEGACY_MARGIN.get(v.judge))


def judge(key: str, got: dict, judged_at=None, first_seen=None) -> tuple[int, dict[int, str]]:
    """The rule versions for one claim: (the index of the version that judges, {index: its verdict}
    for it and every version shown beside it). A measure that gave a verdict itself (no rule can
    judge: "not measured") gives it under every version, and nothing is shown beside it."""
    g, facts = rules.governing(key, judged_at), got.get("facts")
    if facts is None:  # the same under every version: nothing to show beside it
        return g, {g: got["verdict"]}
    return g, {i: rules.verdict(key, i, facts) for i in sorted(set(rules.shown(key, judged_at, first_seen)) | {g})}


def versions_text(key: str, g: int, verdicts: dict[int, str], after) -> str:
    """"v1 (2026-11-25): partly; v2 (2026-11-29) [judges] [set after the first data]: reproduced",
    oldest first; empty where one version is all there is to show."""
    if len(verdicts) < 2:
        return ""
    return "; ".join(f"{rules.label(key, i)}{' [judges]' if i == g else ''}"
                     f"{' [set after the first data]' if after is not None and rules.RULES[key][i].when > rules.parse_time(after) else ''}"
                     f": {v}" for i, v in verdicts.items())


def assess(profile: str, root: Path | str | None = None, data_dir=None) -> pd.DataFrame:
    """One row per claim: claim, paper, ours (text), n, scale, verdict, rule, notebooks, figure,
    value / hw / unit (our primary number and its interval half-width, for plots), and
    rule_verdict: what the rule says, which is the verdict except at the smoke profile, where
    every verdict is SMOKE_VERDICT. The rule is the version of repro.rules in force before the
    earliest record the verdict rests on (data_from; rule_version names it); verdicts_by_version
    gives the verdict under each version since data of the claim's notebooks were first recorded
    at this profile, where there is more than one. `data_dir`: the GLUE data a floor no notebook
    recorded is computed from (the report notebook's Control's; None: the default folder)."""
    store = Store(profile, Path(root or results_root()), data_dir)
    rows = []
    for c in CLAIMS:
        try:
            got = c.measure(store)
        except Missing as e:
            got = {"ours": f"not measured: {e}", "n": "", "scale": "", "verdict": "not measured", "unit": ""}
        used = got.pop("used", c.notebooks)  # the notebooks whose numbers the verdict rests on
        judged_ids = got.pop("judged_ids", None)
        judged_at = store.judged_from(used, judged_ids)
        first = store.first_recorded(c.notebooks)
        first = min([t for t in (first, judged_at) if t], key=rules.parse_time, default=None)
        g, verdicts = judge(c.name, got, judged_at, first)
        facts, v = got.pop("facts", None), rules.RULES[c.name][g]
        if facts and v.judge == "threshold" and facts.get(v.params["number"]) is not None:  # the number it reads
            got["value"], got["hw"] = facts[v.params["number"]], facts.get(f"{v.params['number']}_hw", got.get("hw"))
        got["verdict"] = got["rule_verdict"] = verdicts[g]
        assert got["verdict"] in RULE_VERDICTS, got
        change, first_do = would_change(c.name, g, facts, verdicts[g]), []
        partial = [(nb, p) for nb in used if (store.dir(nb) / "summary.json").exists()
                   and (p := store.progress(nb))]
        if partial:  # numbers from some of the runs: shown, never given a final verdict
            runs = "; ".join(f"{nb} {k} of {n} runs" for nb, (k, n) in partial)
            got = {**got, "verdict": PARTIAL_VERDICT, "ours": f"partial ({runs}): {got['ours']}"}
            first_do.append(f"the remaining runs ({runs})")
        old = [(nb, why) for nb in used if got["verdict"] != "not measured"
               and (store.dir(nb) / "summary.json").exists() and (why := store.outdated(nb, judged_ids))]
        if old:  # numbers the package's code no longer computes: shown, no verdict
            why = "; ".join(f"{nb}: {state}" for nb, state in old)
            got = {**got, "verdict": OUTDATED_VERDICT,
                   "ours": f"outdated ({why}; re-run {', '.join(nb for nb, _ in old)}): {got['ours']}"}
            first_do.insert(0, f"re-running {', '.join(nb for nb, _ in old)} with the current code")
        if profile in NO_VERDICT_PROFILES:
            got["verdict"] = SMOKE_VERDICT
        change = f"{'; '.join(first_do)}; then {change}" if first_do else change
        if profile in NO_VERDICT_PROFILES:
            change = "no verdict at this profile: a run at the cpu profile or larger"
        rows.append({"claim": c.claim, "paper": c.paper, "value": None, "hw": None, **got,
                     "rule": rules.RULES[c.name][g].text, "rule_version": rules.label(c.name, g),
                     "would_change": change, "margin": accepted_margin(c.name, g),
                     "verdicts_by_version": versions_text(c.name, g, verdicts, first),
                     "data_from": judged_at and str(judged_at)[:16],
                     "notebooks": ", ".join(c.notebooks), "figure": c.figure and store.figure(*c.figure)})
    return pd.DataFrame(rows, index=pd.Index([c.name for c in CLAIMS], name="key"))


# ----------------------------------------------------------------------------- REPORT.md

VERSION_ENTRY = re.compile(r"^v(\d+) \(([^)]*)\)((?: \[[^\]]+\])*): (.*)$")


def rule_versions(claims: pd.DataFrame, cell=str) -> list[str]:
    """REPORT.md's "Rule versions": for each claim whose rule changed since data of its notebooks
    were first recorded, the verdict under every version since, oldest first, and why each was set."""
    from .results import markdown_table

    rows = []
    for key, text in claims.get("verdicts_by_version", pd.Series(dtype=object)).items():
        for entry in (text.split("; ") if isinstance(text, str) and text else []):
            if m := VERSION_ENTRY.match(entry):
                v = rules.RULES[key][int(m[1]) - 1]
                rows.append({"claim": key, "version": f"v{m[1]}", "set": v.set[:16].replace("T", " "),
                             "verdict": m[4], "note": m[3].strip().replace("[", "").replace("]", ";").rstrip(";"),
                             "why it was set": v.why})
    if not rows:
        return []
    return ["\n## Rule versions\n",
            "Each claim is judged by the latest version of its rule set before the earliest record its verdict rests "
            "on (`judges`). Where a rule changed after data of the claim's notebooks were first recorded at this "
            "profile (even data since re-run), the verdict under every version from the one then in force is shown, "
            "oldest first, on the same numbers; `set after the first data` marks versions whoever set them may have "
            "set with data in view.\n", markdown_table(pd.DataFrame(rows).map(cell))]

SHOWN = ["claim", "paper", "ours", "n", "scale", "verdict"]


def provenance(profile: str, root: Path | str | None = None, notebooks=None) -> pd.DataFrame:
    """Where and with what each notebook's outputs were made, one row per notebook that has run:
    its runs, code state and last execution, then from its records (machines.provenance_table)
    the machines, core-hours, dirty-tree records, git revisions and package versions. attrs["notes"]:
    the records made with package versions other than requirements.lock's."""
    from .catalogue import ORDER

    store, rows = Store(profile, Path(root or results_root())), []
    for nb in notebooks or [n for n in ORDER if n != "report"]:
        d = store.dir(nb)
        if not (d / "summary.json").exists():
            continue
        run, summary = read_json(d / "run.json") if (d / "run.json").exists() else {}, read_json(d / "summary.json")
        rows.append({"notebook": nb, "runs": f"{summary.get('done', '?')} of {summary.get('planned', '?')}",
                     "code": code_state(summary, store.codes), "last execution (UTC)": (run.get("finished") or "?")[:16]})
    table = pd.DataFrame(rows)
    if len(table):
        recs = provenance_table(store, table["notebook"])
        table = table.merge(recs, on="notebook", how="left") if len(recs) else table
    table.attrs["notes"] = off_lock_text(store, table["notebook"] if len(table) else [])
    return table


def code_state(summary: dict, codes: dict) -> str:
    """"current", or which runs are stale: the repro modules that computed them changed since."""
    from .study import changed_modules

    if "run_ids" not in summary:
        return "recorded before run-level resume (code not tracked)"
    changed = [changed_modules(codes.get(i)) for i in summary["run_ids"]]
    stale = [c for c in changed if c]
    if not stale:
        return "current"
    return f"stale: {len(stale)} of {len(changed)} runs made before {', '.join(sorted({m for c in stale for m in c}))} changed"


def baselines(profile: str, root: Path | str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The dense GLUE baselines every EarlyBERT comparison stands on (glue_finetune's summary):
    per task its score against the floors and whether it learned, and its checks in words
    (learning-rate sweeps, length-grouped batches). Empty when glue_finetune has not run."""
    s = Store(profile, Path(root or results_root()))
    try:
        summary = s.summary("glue_finetune")
    except Missing:
        return pd.DataFrame(), []
    rows = [{"task": t, "metric": h["metric"], "dense": round(h["mean"], 1), "seeds": h["n_seeds"],
             "input-blind": round(h["blind"], 1),
             "zero-shot": None if h.get("zero_shot") is None else round(h["zero_shot"], 1),
             "learned": "yes" if h["learned"] else "no", "why": h["floors"]} for t, h in summary["tasks"].items()]
    notes = []
    for c in summary.get("lr_sweeps") or []:
        best = max(c["runs"], key=lambda x: x["value"])
        notes.append(f"Learning-rate sweep, {c['task']} seed {c['seed']}: {c['metric']} "
                     + ", ".join(f"{x['value']:.1f} (lr {x['lr']:g}, {x['epochs']:g} epochs)" for x in c["runs"])
                     + f"; best {best['value']:.1f} at lr {best['lr']:g}, {best['epochs']:g} epochs.")
    for a in summary.get("adoptions") or []:  # floors.ADOPTION_RULE, set before the data it judges
        notes.append(f"Recipe check, {a['task']} (rule set {a['rule_set'][:16].replace('T', ' ')} UTC: {a['rule']}): {a['text']}.")
    b = summary.get("batching_check")
    if b:
        notes.append(f"Length-grouped vs random batches, {b.get('task', 'MRPC')} seeds {b['seeds']}: {b['metric']} "
                     f"{b['a_mean']:.1f} vs {b['b_mean']:.1f} (difference {format_pm(b['diff'], b['diff_hw'])}); "
                     f"{b['speedup']:.2f}x the training examples per second.")
    if not summary.get("complete", True):
        notes.append(f"Partial: {summary.get('done')} of {summary.get('planned')} runs.")
    return pd.DataFrame(rows), notes


def tickets(profile: str, root: Path | str | None = None, data_dir=None) -> tuple[pd.DataFrame, list[str]]:
    """The early-bird test behind the early_ticket claim (earlybert_glue's runs): per task, each
    ticket's score (mean ± 95% interval over seeds) and the paired differences early − late
    (end-of-epoch ticket) and early − random; then the same over the tasks the claim counts (those
    dense learned). Empty until two kinds of ticket have trained. `data_dir`: as assess'."""
    from .earlybert_tables import TICKETS, early_bird_table, shown
    s = Store(profile, Path(root or results_root()), data_dir)
    try:
        df = in_counted_metric(s, s.table("earlybert_glue", "runs"))  # MRPC by accuracy, as the claim counts it
    except Missing:
        return pd.DataFrame(), []
    tk = df[df["method"].isin(TICKETS)]
    if tk["method"].nunique() < 2:
        return pd.DataFrame(), []
    learned, counted, _ = dense_learned(s, df)
    per_task = early_bird_table(tk).drop(index="all tasks")
    over = early_bird_table(tk[tk["task"].isin(counted)]).loc[["all tasks"]]
    table = shown(pd.concat([per_task, over.rename(index={"all tasks": f"counted: {', '.join(counted)}"})]))
    table.insert(0, "dense learned", [("yes" if t in learned else "no") if t in per_task.index else "" for t in table.index])
    table = table.rename(columns={"n": "detector-end pairs"})
    notes = [] if learned else ["Dense learned none of these tasks, so the differences say nothing about the claim."]
    if (p := s.progress("earlybert_glue")):
        notes.append(f"Partial: {p[0]} of {p[1]} runs.")
    return table.reset_index(), notes


def sections(profile: str, root: Path | str | None = None, data_dir=None) -> list[tuple[str, str, pd.DataFrame, list[str]]]:
    """REPORT.md's sections after the claims: (title, what it is, table, notes), those with a table.
    `data_dir`: as assess'."""
    made = [("Dense baselines (glue_finetune)", "What EarlyBERT's GLUE comparisons stand on: a task counts only "
             f"where dense fine-tuning learned it. The rule: {LEARNED_RULE}.", *baselines(profile, root)),
            ("Early, late and random tickets (earlybert_glue)", "The early_ticket claim's numbers: every ticket "
             "trained alike from the rewound weights for the same epochs; detector = drawn when the stopping rule "
             "fires, fixed = at 20% of the search epoch (the official code), end = at the end of the epoch, "
             "random = heads and neurons drawn at random in the EarlyBERT ticket's per-layer numbers. Differences are paired by task and seed, "
             f"in each task's counted metric ({', '.join(f'{t} {m}' for t, m in COUNTED_METRIC.items())}; else its main metric).",
             *tickets(profile, root, data_dir))]
    return [m for m in made if len(m[2])]


def appendix_sections(profile: str, claims: pd.DataFrame, root: Path | str | None = None,
                      seeds: pd.DataFrame | None = None) -> list[tuple[str, str, pd.DataFrame, list[str]]]:
    """REPORT.md's appendix (repro.appendix.sections): compute, hyper-parameters, per-seed numbers
    (`seeds`: appendix.per_seed, read here when not given), what would change each verdict."""
    from .catalogue import ORDER

    s = Store(profile, Path(root or results_root()))
    return appendix.sections(s, claims, [n for n in ORDER if n != "report"],
                             appendix.per_seed(s) if seeds is None else seeds)


def readme_table(claims: pd.DataFrame) -> str:
    """The README's results table: a line per claim with its verdict (REPORT.md says why); a
    partial or outdated row also gives what the rule says of the runs so far."""
    rows = ["| claim | paper | verdict |", "|---|---|---|"]
    for _, r in claims.iterrows():
        v = r["verdict"] if r["verdict"] not in ("partial", "outdated") else f"{r['verdict']} (the rule on the runs so far: {r['rule_verdict']})"
        rows.append(f"| {r['claim']} | {r['paper']} | {v} |")
    return "\n".join(rows) + "\n"


def markdown(claims: pd.DataFrame, prov: pd.DataFrame, profile: str, header: str = "",
             extra: list[tuple[str, str, pd.DataFrame, list[str]]] = (),
             more: list[tuple[str, str, pd.DataFrame, list[str]]] = ()) -> str:
    """REPORT.md: the claims table, the extra sections (`sections`: the dense baselines, the
    tickets), the rules, the figures, where the numbers were made (prov; prov.attrs["notes"]: the
    records off the lock), and the appendix (`more`: appendix_sections)."""
    from .results import markdown_table

    def cell(x):  # a table cell: no pipes or newlines
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x).replace("|", "/").replace("\n", " ")

    counts = claims["verdict"].value_counts()
    if profile in NO_VERDICT_PROFILES:
        tally = (f"**No verdicts at the `{profile}` profile.** It is a plumbing check: tiny models trained for a "
                 "few steps on a few dozen examples show that every notebook runs and writes what the report "
                 "reads, not what the methods do. Every verdict below is therefore "
                 f"\"{SMOKE_VERDICT}\", and the numbers are the pipeline's output, not findings. "
                 "Run the `cpu` profile or larger for verdicts.\n")
    else:
        tally = "Verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS if v != SMOKE_VERDICT) + ".\n"
    # at smoke, "no verdicts" comes first, before any text about verdicts
    first = [tally, header] if profile in NO_VERDICT_PROFILES else [header, tally]
    parts = [f"# Reproduction report, `{profile}` profile\n", *first,
             "## Claims\n", markdown_table(claims[SHOWN].map(cell)),
             "\nIntervals are 95% Student-t over seeds (paired differences where the claim compares two methods). "
             "Each time claim's row names the CPU model its timings were made on (from the records), and how they were "
             "taken (steps timed side by side, or whole-run wall-clock); where a setting's runs were timed on more than "
             "one machine, each machine's mean is shown. The machines of every notebook are under \"Where the numbers "
             "were made\"; what would change each verdict is in appendix D.\n"]
    for title, intro, table, notes in extra:
        parts += [f"## {title}\n", f"{intro}\n", markdown_table(table.map(cell)), *[f"\n{n}" for n in notes], ""]
    parts += ["## Rules\n", markdown_table(claims[[c for c in ("claim", "rule_version", "rule", "notebooks")
                                                   if c in claims]].map(cell)), *rule_versions(claims, cell),
              "\n## Figures\n"]
    for key, row in claims.iterrows():
        if isinstance(row["figure"], str):
            parts.append(f"**{row['claim']}** ({row['verdict']})\n\n![{key}]({row['figure']})\n")
    parts += ["## Where the numbers were made\n",
              "From each notebook's records (the units its outputs show): the CPU models they ran on, core-hours "
              "(recorded seconds x threads), how many were made from a checkout with uncommitted changes, their git "
              "revisions, and their package versions against requirements.lock.\n",
              appendix.table_md(prov.map(cell)) if len(prov) else "No notebook has run.\n"]
    if notes := prov.attrs.get("notes"):
        parts += ["\nRecords made with package versions other than the lock's:\n", *notes, ""]
    if more:
        parts.append("\n# Appendix\n")
    for title, intro, table, notes in more:
        parts += [f"## {title}\n", f"{intro}\n", appendix.table_md(table.map(cell)), *[f"\n{n}" for n in notes], ""]
    return "\n".join(parts)
