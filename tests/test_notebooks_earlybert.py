"""The EarlyBERT notebooks at smoke profile (smaller still: 32 training examples), executed by the
runner into one results folder, and what they produce."""
import json
import math
import re

import pandas as pd
import pytest

from conftest import check_report, has_files, out, run_smoke_notebooks, summary
from repro import earlybert_controls as ebc
from repro import earlybert_pretrain as ebp
from repro import earlybert_settings as ebs
from repro import results
from repro.profiles import get_profile
from repro.study import Study

pytestmark = pytest.mark.notebook
NOTEBOOKS = ["ticket_mask_distance", "earlybert_glue", "earlybert_squad", "earlybert_pretraining"]
# each notebook's smallest sizes: -p values only the notebooks that declare them receive
PARAMS = ["max_train_examples=32", "dense_f1_bar=0", "checkpoints=20"]
P = get_profile("smoke")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return run_smoke_notebooks(tmp_path_factory, NOTEBOOKS, PARAMS)


def conclusion(root, name):
    """The executed notebook's last markdown output (the computed conclusion)."""
    nb = json.loads((out(root, name) / f"{name}.ipynb").read_text())
    texts = ["".join(o["data"]["text/markdown"]) for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert texts, f"{name} displayed no conclusion"
    return texts[-1]


def records(root):
    return results.load_runs("smoke", root=root)


def artifact(root, key, *path):
    return root.joinpath("cache", "smoke", key.replace("/", "__"), *path)


def test_ticket_mask_distance_reads_the_shared_searches(root):
    name = "ticket_mask_distance"
    has_files(root, name, ["mask_distance.png", "detector_trace.png", "criterion.csv"])
    s = summary(root, name)
    assert s["complete"] and s["criterion"] == "found" and set(s["settings"]) == {"fine-tuning", "pre-training"}
    table = pd.read_csv(out(root, name) / "criterion.csv")
    assert list(table["setting"]) == ["fine-tuning"] * len(P.glue_tasks) + ["pre-training"]
    for col in ("fired_heads", "fired_ffn", "fired_joint", "fired_found", "fixed", "detector_ticket"):
        assert table[col].dropna().between(0, 1, inclusive="right").all()
    # the detector's ticket is where the stopping rule fired, else the end of the search (epoch / the cap)
    ft = table[table.setting == "fine-tuning"].iloc[0]
    assert ft["detector_ticket"] == (ft["fired_found"] if ft["detector_found"] else 1.0)
    assert ft["fixed"] == 1 / 2  # 32 examples, batch 16: 2 steps an epoch, the fixed point round(0.4) -> step 1
    assert s["settings"]["fine-tuning"]["fired"] == int(table["fired_found"].iloc[:-1].notna().sum())
    # one search unit per task and seed, owned by earlybert_glue and trained once for both notebooks
    runs = records(root)
    searches = runs[(runs["method"] == "search") & runs["task"].isin(P.glue_tasks)]
    assert len(searches) == len(P.glue_tasks) and set(searches["notebook"]) == {"earlybert_glue"}
    assert not (runs["notebook"] == name).any()  # it trained nothing of its own
    for key in searches["unit"]:
        assert artifact(root, key, "search", "trajectory.pt").exists() and artifact(root, key, "search", "rewind.pt").exists()
    assert "fine-tuning" in conclusion(root, name)


def test_earlybert_glue_units_tables_and_time_both_ways(root):
    name = "earlybert_glue"
    has_files(root, name, ["earlybert_glue.png", "earlybert_glue.csv", "early_bird.csv", "runs.csv"])
    runs = pd.read_csv(out(root, name) / "runs.csv").set_index("method")
    assert set(runs.index) == {"dense", *ebs.TICKETS}
    store = records(root)
    # the dense run is glue_finetune's own unit (same identity: trained once for both notebooks)
    assert list(store.loc[(store["method"] == "dense") & store["task"].isin(P.glue_tasks), "notebook"]) == ["glue_finetune"]
    search = store[(store["method"] == "search") & store["task"].isin(P.glue_tasks)].iloc[0]
    per_epoch, whole = search["steps_per_epoch"], train_seconds_of(search)
    assert per_epoch == 2 and runs.loc["dense", "train_steps"] == P.finetune_epochs * per_epoch
    for t in ebs.TICKETS:
        row = runs.loc[t]
        assert row["train_steps"] == ebs.GLUE_RECIPE.ticket_epochs * per_epoch  # official: 2 epochs
        assert row["params"] < runs.loc["dense", "params"] and row["flops_per_step"] < runs.loc["dense", "flops_per_step"]
        if t != "random":  # charged the whole search's clock at its draw step; the end ticket: all of it
            assert row["search_s"] == search["tickets"][t]["seconds"] and row["search_steps"] == row["draw_step"]
    assert runs.loc["fixed", "draw_step"] == 1 and runs.loc["end", "draw_step"] == per_epoch
    assert runs.loc["end", "search_s"] == pytest.approx(whole) and runs.loc["random", "search_s"] == 0
    assert runs.loc["random", "params"] == runs.loc["detector", "params"]  # the detector ticket's per-layer sizes
    ticket = store[store["method"] == "detector"].iloc[0]
    assert list(ticket["heads_per_layer"]) == [8] * 6  # 4 of 12 heads pruned in every layer (the paper's 1/3)
    # both accountings: as run, and with the ticket trained as many steps as dense; each run charged its
    # steps at the costs its task and seed's step_times unit timed side by side (dense, search, each ticket)
    e, d = runs.loc["detector"], runs.loc["dense"]
    timing = store[(store["method"] == "step_times") & store["task"].isin(P.glue_tasks)].iloc[0]["timing"]
    assert set(timing["ratio"]) == {"dense", "search", "detector", "fixed", "end"} and timing["ratio"]["dense"] == 1
    assert all(len(v) == P.eb_timing_rounds for v in timing["times"].values())
    assert (runs.loc[list(ebs.TICKETS), "timing"] == "paired").all()
    search_cost = e["search_steps"] * timing["ratio"]["search"] + e["draw_s"] / timing["seconds"]["dense"]
    for col, steps in (("time_saving_official_pct", e["train_steps"]), ("time_saving_pct", d["train_steps"])):
        assert e[col] == pytest.approx(100 * (1 - (search_cost + steps * timing["ratio"]["detector"]) / d["train_steps"]))
    equal = e["search_s"] + e["draw_s"] + e["train_s"] * d["train_steps"] / e["train_steps"]  # whole-run wall-clock
    assert e["time_saving_wall_pct"] == pytest.approx(100 * (1 - equal / d["time_s"]))
    assert e["time_saving_pct"] > e["time_saving_official_pct"]  # smoke: dense 1 epoch, the ticket 2
    eb = pd.read_csv(out(root, name) / "early_bird.csv", index_col="task")
    assert list(eb.index) == [*P.glue_tasks, "all tasks"] and eb.loc["all tasks", "n"] == 1
    s = summary(root, name)
    assert s["earlybert"] == "detector" and s["paper_time_saving_pct"] == [35.0, 45.0]
    assert s["mean_time_saving_pct"]["mean"] == pytest.approx(e["time_saving_pct"])
    text = conclusion(root, name)  # it quotes the measured savings, both ways, in words
    assert f"{results.saving(e['time_saving_pct'])} with equal epochs" in text
    assert f"{results.saving(e['time_saving_official_pct'])} as run" in text


def train_seconds_of(row):
    return row["time.total"] - row["time.eval"]  # train.train_seconds of a stored record


def test_earlybert_squad(root):
    name = "earlybert_squad"
    has_files(root, name, ["earlybert_squad.png", "earlybert_squad.csv", "runs.csv"])
    s = summary(root, name)
    assert s["gate"] == "off" and s["complete"]  # dense_f1_bar=0: no waiting for dense seed 0
    assert (s["seq_len"], s["stride"]) == (P.squad_seq_len, P.squad_stride)
    assert s["n_eval_questions"] == P.squad_eval_questions and s["split"] == {"by": "article", "seed": 0, "eval_fraction": 0.5}
    runs = pd.read_csv(out(root, name) / "runs.csv").set_index("method")
    assert set(runs.index) == {"dense", "detector", "random"}
    assert runs[["exact_match", "f1"]].stack().between(0, 100).all()
    # SQuAD's search stops at the detector's draw (one ticket needed): it ran no further
    search = records(root).query("notebook == 'earlybert_squad' and method == 'search'").iloc[0]
    assert search["metric.steps"] == runs.loc["detector", "draw_step"] == search["tickets"]["detector"]["step"]
    # the official SQuAD ticket trains 3 epochs (ebs.SQUAD_RECIPE), dense the profile's squad_epochs
    ratio = ebs.SQUAD_RECIPE.ticket_epochs / P.squad_epochs
    assert runs.loc["detector", "train_steps"] == pytest.approx(ratio * runs.loc["dense", "train_steps"], abs=ratio)
    assert runs.loc["detector", "time_saving_official_pct"] < runs.loc["detector", "time_saving_pct"]  # as run: longer


def test_earlybert_pretraining(root):
    name = "earlybert_pretraining"
    has_files(root, name, ["earlybert_pretraining.png", "earlybert_pretraining.csv"])
    table = pd.read_csv(out(root, name) / "earlybert_pretraining.csv", index_col=0)
    s = summary(root, name)
    steps = ebp.pretrain_steps(P)
    assert s["pretrain_steps"] == steps and s["equal"] == "fine-tuning steps"
    cap = round(ebs.PretrainRecipe().search_fraction * steps)
    assert 1 <= s["draw_step"] <= cap and s["draw_fraction"] == s["draw_step"] / steps
    for m in ("earlybert", "random"):  # the ticket trains for the rest: search + ticket steps = dense steps
        assert table.loc[m, "search_steps"] + table.loc[m, "train_steps"] == table.loc["dense", "train_steps"] == steps
        assert table.loc[m, "params"] < table.loc["dense", "params"]
    assert table.loc["random", "search_s"] == table.loc["earlybert", "search_s"] > 0  # it shares the search
    store = records(root)
    pre = store[(store["notebook"] == name) & (store["task"] == "MLM")].set_index("method")
    fine = store[(store["notebook"] == name) & (store["task"] == "SST-2")]
    assert set(fine["method"]) == {"dense", "earlybert", "random"}
    for _, row in fine.iterrows():  # each fine-tuning run names the pre-training unit whose model it read
        key = row["config.checkpoint"]
        assert key == pre.loc[row["method"], "unit"]
        assert artifact(root, key, "model", "model.safetensors").exists()
    cfg = json.loads(artifact(root, pre.loc["earlybert", "unit"], "model", "config.json").read_text())["repro_bert"]
    assert sum(cfg["heads_per_layer"]) < cfg["heads"] * cfg["layers"]  # the saved ticket keeps its pruned shape


def test_plan_lists_every_unit_with_nothing_trained(root, tmp_path, monkeypatch):
    """With every unit missing (plan mode), the notebooks still run to their end: ticket units
    wait for their search, SQuAD's comparison for dense seed 0."""
    from repro import runner
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    jobs = runner.jobs_for(["earlybert_squad", "earlybert_glue"], "smoke", ["max_train_examples=32"])
    units = {job.name: runner.plan_units(job, "smoke", tmp_path) for job in jobs}
    squad = units["earlybert_squad"]
    assert [u["method"] for u in squad] == ["dense", "search", "detector", "random", "step_times"]  # smoke: one seed
    assert squad[0]["state"] == "missing" and all(u["state"] == "waiting" for u in squad[1:])
    assert all(u["estimate"] > 0 for u in squad), squad  # waiting units: the dense probe, scaled
    assert squad[-1]["scaled_from"].startswith("earlybert_squad/SQuAD/dense x ")  # step timing, in dense steps
    glue = units["earlybert_glue"]
    sizes = {f"{t}@{ebc.size_label(*size)}" for size in ebc.SIZES if size != (1 / 3, 0.4) for t in ("search", "detector", "random")}
    assert {u["method"] for u in glue} == {"dense", "search", *ebs.TICKETS, "step_times", *ebc.CONTROLS} | sizes
    assert all(u["state"] == ("missing" if u["method"] == "dense" or u["method"].startswith("search") else "waiting")
               for u in glue)
    assert all(u["estimate"] > 0 for u in glue), glue
    assert [u["notebook"] for u in glue if u["method"] == "dense"] == ["glue_finetune"]


def test_a_new_machine_reruns_only_the_searches_something_still_reads(root, tmp_path, monkeypatch, capsys):
    """The cache is gone (a new machine; the records stay): a search whose tickets are all recorded
    is not searched again; ticket_mask_distance's figure reads trajectories, so it re-runs one
    fine-tuning search and the pre-training search, but only if it runs again: its outputs are
    current, so the plan calls it fresh and names the two remakes without counting them."""
    from repro import runner
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    jobs = runner.jobs_for(["earlybert_glue", "ticket_mask_distance"], "smoke", [p for p in PARAMS if "f1" not in p])
    units = {row["notebook"]: row["units"] for row in runner.print_plan(jobs, "smoke", root)["notebooks"]}
    assert units["earlybert_glue"] and all(u["state"] == "done" for u in units["earlybert_glue"])
    line = capsys.readouterr().out.split("  ticket_mask_distance")[-1].splitlines()[0]
    # its outputs are current, so `run` skips it: the plan says fresh, counts nothing, and names the
    # two artifacts a re-run would remake first
    assert line.lstrip().startswith("fresh") and "0 to run" in line, line
    assert "(this machine lacks 2 recorded artifact(s) the notebook reads" in line, line
    todo = [(u["task"], u["method"], u["state"]) for u in units["ticket_mask_distance"] if u["state"] != "done"]
    assert len(todo) == 2 and {m for _, m, _ in todo} == {"search"} and {s for *_, s in todo} == {"missing"}
    assert sorted(t == "MLM" for t, *_ in todo) == [False, True]
    assert all(u.get("rerun") == "artifact gone" for u in units["ticket_mask_distance"] if u["state"] != "done")


def test_report_gives_the_earlybert_claims_a_verdict(root):
    claims = check_report(root, ["early_bird", "early_ticket", "earlybert_glue", "earlybert_time", "earlybert_squad"])
    assert "equal epochs" in claims.loc["earlybert_time", "ours"] and "as run" in claims.loc["earlybert_time", "ours"]
    assert math.isfinite(claims.loc["earlybert_time", "value"])
    text = (root / "smoke" / "REPORT.md").read_text()  # the early-bird test's table, every ticket beside the others
    assert "## Early, late and random tickets (earlybert_glue)" in text
    assert re.search(r"\| counted: [^|]+ \|  \| \d+\.\d", text)
