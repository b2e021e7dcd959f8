"""`make nbval` (scripts/nbval.py) without executing a notebook: what it re-executes against (the
records the notebook's summary names, no other), how it keeps the re-execution from training or
writing under results/, and what a kept notebook may not hold. The re-execution itself is
tests/test_notebooks_pld.py::test_the_executed_schedule_notebook_reproduces_under_nbval."""
import importlib.util
import json
from pathlib import Path

import pytest

from repro import REPO_ROOT

spec = importlib.util.spec_from_file_location("nbval_script", REPO_ROOT / "scripts" / "nbval.py")
nbval = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbval)


def cell(source, tags=(), outputs=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": list(outputs)}


def executed(tmp_path, run_ids, execution="e1", summary_execution="e1"):
    profile = tmp_path / "results" / "cpu"
    (profile / "runs").mkdir(parents=True)
    for i in ("a", "b", "c"):
        (profile / "runs" / f"2026-{i}.json").write_text(json.dumps({"run_id": i, "unit": f"nb/{i}"}))
    folder = profile / "nb"
    folder.mkdir()
    nb = {"cells": [cell('profile = "cpu"\ntrain: bool = False\noutput_dir = None\n', ["parameters"]),
                    cell('profile = "cpu"\noutput_dir = "results/cpu/nb"\ntrain = True\n', ["injected-parameters"]),
                    cell("table", ["nbval-check-output"])], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "nb.ipynb").write_text(json.dumps(nb))
    (folder / "summary.json").write_text(json.dumps({"execution": summary_execution, "run_ids": run_ids}))
    (folder / "run.json").write_text(json.dumps({"execution": execution}))
    (profile / "other").mkdir()
    (profile / "other" / "summary.json").write_text("{}")
    (profile / "other" / "other.ipynb").write_text(json.dumps(nb))
    return folder / "nb.ipynb"


def test_a_notebook_is_reexecuted_against_its_own_records_into_a_folder_of_its_own(tmp_path):
    ipynb = executed(tmp_path, ["a", "c"])
    records = nbval.record_files(ipynb.parent.parent / "runs")
    ids = nbval.run_ids(ipynb.parent)
    path = nbval.prepare("nb", ipynb, "cpu", tmp_path / "check", records, ids)
    store = tmp_path / "check" / "results" / "cpu"
    assert sorted(p.name for p in (store / "runs").iterdir()) == ["2026-a.json", "2026-c.json"]  # b came later
    assert (store / "other" / "summary.json").exists() and not (store / "other" / "other.ipynb").exists()
    injected = "".join(json.loads(path.read_text())["cells"][1]["source"]).splitlines()
    assert injected == ['profile = "cpu"', f"output_dir = {str(tmp_path / 'check' / 'out')!r}", "train = False"]


def test_a_notebook_whose_summary_is_of_another_execution_or_whose_records_are_gone_is_refused(tmp_path):
    ipynb = executed(tmp_path, ["a"], execution="e1", summary_execution="e2")
    with pytest.raises(ValueError, match="another execution"):
        nbval.run_ids(ipynb.parent)
    with pytest.raises(ValueError, match="1 of the 2 records it read are not in"):
        nbval.prepare("nb", ipynb, "cpu", tmp_path / "check", nbval.record_files(ipynb.parent.parent / "runs"), ["a", "z"])


def test_stderr_and_local_paths_in_a_kept_notebook_are_named():
    warn = {"output_type": "stream", "name": "stderr", "text": ["/x/site-packages/tqdm/auto.py:21: TqdmWarning: ...\n"]}
    path = {"output_type": "stream", "name": "stdout", "text": [f"checkpoint {Path.home()}/.cache/repro/model\n"]}
    clean = {"output_type": "stream", "name": "stdout", "text": ["checkpoint ~/.cache/repro/model\n"]}
    nb = {"cells": [cell("x", outputs=[warn]), cell("y", outputs=[path]), cell("z", outputs=[clean])]}
    found = nbval.leaks(nb)
    assert len(found) == 2 and found[0].startswith("cell 0 writes to stderr") and found[1].startswith("cell 1 names")
