"""The re-stamp (repro.restamp): a body change that moves no number keeps records current only
after both revisions ran the affected notebooks to bit-identical metrics; one that moves a number
writes nothing. Built on a tiny git repository whose `repro/` holds one numeric module."""
import json
import subprocess
import textwrap

import pytest

from repro import fingerprint as F
from repro import restamp as R

OLD = '''\
import os

SCALE = 2


def step(x, deadline=None):
    limit = float(os.environ.get("DEADLINE", "inf"))  # read deep inside: to be passed down
    return x * SCALE
'''
NEUTRAL = OLD.replace('    limit = float(os.environ.get("DEADLINE", "inf"))  # read deep inside: to be passed down\n', "")
MOVES_A_NUMBER = NEUTRAL.replace("x * SCALE", "x * SCALE + 1")


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo, text, message):
    (repo / "repro" / "loop.py").write_text(textwrap.dedent(text))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "repro").mkdir(parents=True)
    _git(repo, "init", "-q")
    return repo


def _record(repo, rev):
    src = F._parse(_git(repo, "show", f"{rev}:repro/loop.py"))
    return {"notebook": "nb", "code": {"scheme": F.SCHEME, "loop.py::step": src.functions["step"],
                                       "loop.py::=SCALE": src.declarations["SCALE"]}}


def _fake_run(tree, notebook, profile, clip, results, cache):
    """What a notebook run records: step(3) computed by the revision in `tree`."""
    ns = {}
    exec((tree / "repro" / "loop.py").read_text(), ns)
    (results / "runs").mkdir(parents=True, exist_ok=True)
    row = {"profile": profile, "notebook": notebook, "task": "t", "method": "m", "seed": 0, "config_hash": "c",
           "status": "ok", "metrics": {"value": ns["step"](3), "total_seconds": float(len(str(tree)))}}
    (results / "runs" / f"{notebook}.json").write_text(json.dumps(row))


def test_changes_see_bodies_not_moves_and_follow_renames():
    old = {"a.py": F._parse("def f(x):\n    return x\n\n\ndef g(x):\n    return 2 * x\n")}
    moved = {"b.py": F._parse("import math\n\n\ndef f(x):\n    return x\n\n\ndef g(x):\n    return 3 * x\n")}
    found, gone = R.changes(old, moved)
    assert [c.old.split("@")[0] for c in found] == ["a.py::g"] and found[0].new.startswith("b.py::g@") and not gone
    renamed = {"a.py": F._parse("def h(x):\n    return x\n")}
    found, gone = R.changes(old, renamed, renames={"f": "h"})
    assert [c.new.split("@")[0] for c in found] == ["a.py::h"] and gone == ["a.py::g"]


def test_compare_ignores_timings_but_not_metrics_or_missing_units():
    a = {("p", "nb", "t", "m", 0, "c"): {"acc": 0.5, "total_seconds": 1.0}}
    assert R.compare(a, {k: {**v, "total_seconds": 9.0} for k, v in a.items()}) == (1, [])
    n, bad = R.compare(a, {k: {**v, "acc": 0.5000001} for k, v in a.items()})
    assert n == 1 and "acc" in bad[0]
    assert R.compare(a, {})[1] == ["nb/t/m/0/c: only at the old revision"]
    timing = {("p", "nb", "t", "m", 0, "c"): {"dense_ratio": 0.7, "param_ratio_init": 1.2}}
    assert R.compare(timing, {k: {**v, "dense_ratio": 0.8} for k, v in timing.items()}) == (1, [])  # a step-time ratio
    assert R.compare(timing, {k: {**v, "param_ratio_init": 1.3} for k, v in timing.items()})[1]  # a gradient ratio


def test_a_neutral_change_is_restamped_and_its_records_turn_current(repo):
    old = _commit(repo, OLD, "old")
    rows = [_record(repo, old)]
    new = _commit(repo, NEUTRAL, "deadline passed down")
    table = repo / "fingerprints.json"
    assert F.changed(rows[0]["code"], root=repo / "repro", table=F.read_table(table)) == ["loop.step"]
    said = R.restamp(old, "the deadline comes as an argument", rows, repo=repo, run=_fake_run,
                     profiles=(("smoke", False),), path=table)
    assert "re-stamped 1 records of nb: 1 aliases, 1 units bit-identical" in said
    saved = json.loads(table.read_text())
    alias = saved["aliases"][f"loop.py::step@{rows[0]['code']['loop.py::step']}"]
    assert alias["to"].startswith("loop.py::step@") and saved["restamps"][alias["restamp"]]["new"] == new
    assert F.changed(rows[0]["code"], root=repo / "repro", table=saved) == []


def test_a_change_that_moves_a_number_writes_nothing(repo):
    old = _commit(repo, OLD, "old")
    rows = [_record(repo, old)]
    _commit(repo, MOVES_A_NUMBER, "changes the numbers")
    table = repo / "fingerprints.json"
    with pytest.raises(RuntimeError, match="value"):
        R.restamp(old, "claimed neutral", rows, repo=repo, run=_fake_run, profiles=(("smoke", False),), path=table)
    assert not table.exists()
    assert F.changed(rows[0]["code"], root=repo / "repro", table=F.read_table(table)) == ["loop.step"]


def test_uncommitted_code_is_not_restamped(repo):
    old = _commit(repo, OLD, "old")
    rows = [_record(repo, old)]
    _commit(repo, NEUTRAL, "neutral")
    (repo / "repro" / "loop.py").write_text(MOVES_A_NUMBER)
    with pytest.raises(RuntimeError, match="commit it first"):
        R.restamp(old, "why", rows, repo=repo, run=_fake_run, profiles=(("smoke", False),), path=repo / "t.json")
