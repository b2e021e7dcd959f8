"""repro.rules: the registry of each claim's rule and its history. Versions are append-only and
their texts locked (rules_lock.json); the version that judges is picked by the data's date."""
import json
import subprocess

import pytest

from repro import report, rules
from repro.floors import LEARNED_RULE


def test_every_claim_has_a_rule_history_and_every_version_a_judge():
    assert set(rules.RULES) == {c.name for c in report.CLAIMS}
    for key, versions in rules.RULES.items():
        assert versions, key
        assert [v.when for v in versions] == sorted(v.when for v in versions), f"{key}: versions out of date order"
        for v in versions:
            assert v.judge in rules.JUDGES and v.text and v.why and v.set[:4] == "2026", (key, v)
        assert report.CLAIMS[[c.name for c in report.CLAIMS].index(key)].rule == versions[-1].text


def test_rule_texts_are_locked_so_a_changed_rule_needs_a_new_version():
    """rules_lock.json holds each version's text sha256. Editing a text in place fails here: add a
    new Version (with its date and why) and append its hash (rules.write_lock())."""
    locked = json.loads(rules.LOCK.read_text())
    now = rules.lock()
    for key in set(locked) | set(now):
        old, new = locked.get(key, []), now.get(key, [])
        assert new[:len(old)] == old, (f"{key}: a locked rule text was edited or removed; rules are append-only, "
                                       "add a new version instead")
        assert new == old, f"{key}: a new version is not in rules_lock.json yet (rules.write_lock())"


def test_the_lock_itself_is_append_only_against_the_last_commit():
    try:
        head = subprocess.run(["git", "show", "HEAD:repro/rules_lock.json"], capture_output=True, text=True,
                              cwd=rules.LOCK.parent, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("no git here")
    if head.returncode != 0:
        pytest.skip("rules_lock.json is not committed yet")
    committed, now = json.loads(head.stdout), json.loads(rules.LOCK.read_text())
    for key, hashes in committed.items():
        assert now.get(key, [])[:len(hashes)] == hashes, f"{key}: a committed rule version was rewritten"


def test_current_rules_state_the_floors_rule_they_apply():
    """A rule that counts the tasks a baseline learned quotes repro.floors' rule; when the floors
    rule changes, so does the rule text, which then needs a new version (the test above)."""
    for key in ("pld_glue", "early_ticket", "earlybert_glue"):
        assert LEARNED_RULE in rules.RULES[key][-1].text, key


@pytest.mark.parametrize("when, expected", [
    (None, 1),  # no date: the latest
    ("2026-11-20T00:00:00+00:00", 0),  # before every version: the first (set after the data)
    ("2026-11-25T10:39:26+00:00", 0),  # at the moment v1 was set
    ("2026-11-28", 0),  # a date alone is its midnight (UTC)
    ("2026-11-29T03:37:23+00:00", 0),
    ("2026-11-29T03:37:24+00:00", 1),
    ("2026-11-29T04:37:24+01:00", 1),  # offsets are read
    ("2026-12-31T00:00:00+00:00", 1),
])
def test_the_version_in_force_before_the_data_judges(when, expected):
    assert rules.governing("early_bird", when) == expected


def test_new_rules_judge_only_data_recorded_after_them():
    v4, v5 = rules.RULES["earlybert_glue"][3].when, rules.RULES["earlybert_glue"][4].when
    assert rules.governing("earlybert_glue", "2026-12-01T00:00:00+00:00") == 2  # the pooled rule with floors
    assert rules.governing("earlybert_glue", v4) == 3 and rules.governing("earlybert_glue", v5) == 4
    # shown: from the version in force when the claim's data were first recorded, to the latest
    assert rules.shown("earlybert_glue", "2026-12-01T00:00:00+00:00", "2026-11-25T11:00:00+00:00") == [0, 1, 2, 3, 4]
    assert rules.shown("earlybert_glue", "2026-12-07T00:00:00+00:00", "2026-12-07T00:00:00+00:00") == [3, 4]
    assert rules.shown("earlybert_glue", "2026-12-08T00:00:00+00:00", "2026-12-08T00:00:00+00:00") == [4]
    assert rules.shown("earlybert_glue", None, None) == [4]
    assert rules.label("earlybert_glue", 3) == "v4 (2026-12-06)" and rules.label("earlybert_glue", 4) == "v5 (2026-12-07)"


def test_early_bird_under_each_version():
    facts = {"settings": {"fine-tuning": {"fired": 3, "searches": 3, "fractions": [0.1, 0.2, 0.44]},
                          "pre-training": {"fired": 1, "searches": 1, "fractions": [0.06]}}}
    assert [rules.verdict("early_bird", i, facts) for i in (0, 1)] == ["partly", "reproduced"]
    facts["settings"]["fine-tuning"] |= {"fired": 2, "fractions": [0.1, 0.2]}  # one search never met it
    assert [rules.verdict("early_bird", i, facts) for i in (0, 1)] == ["partly", "partly"]
    facts["settings"] = {"fine-tuning": {"fired": 0, "searches": 3, "fractions": []}}
    assert [rules.verdict("early_bird", i, facts) for i in (0, 1)] == ["not reproduced", "not reproduced"]


def test_per_task_rules_grade_each_task_then_the_claim():
    tight = [-0.2, -0.1, 0.0]  # comparable at 1 point
    facts = {"learned": ["CoLA", "SST-2"], "counted": {
        "CoLA": {"dense": tight, "random": [2.0, 2.5, 3.0]},  # both hold: reproduced
        "SST-2": {"dense": [-3.0, -3.2, -2.8], "random": [2.0, 2.5, 3.0]}}}  # worse than dense: partly
    assert rules.verdict("earlybert_glue", 3, facts) == "partly"
    facts["counted"]["SST-2"]["dense"] = tight
    assert rules.verdict("earlybert_glue", 3, facts) == "reproduced"
    facts["counted"]["SST-2"]["dense"] = [-4.0, 2.0, -1.0]  # noisy: inconclusive, which does not hold
    assert rules.verdict("earlybert_glue", 3, facts) == "partly"
    assert rules.verdict("earlybert_glue", 3, {**facts, "learned": []}) == "not measured"


def test_the_2026_12_07_versions():
    """earlybert_time v3 reads the saving of the machine with the most runs; pld_glue v4 is partly at
    most with one pre-training run per arm, and counts the tasks that clear the random-init floor."""
    time = {"equal": 28.0, "one_machine": 40.0, "as_run": 50.0}
    assert [rules.verdict("earlybert_time", i, time) for i in (0, 1, 2)] == ["reproduced", "partly", "reproduced"]
    glue = {"deltas": {"all": [0.1, 0.2, 0.0], "learned": [0.1, 0.2, 0.0], "learned_ri": [-5.0, -4.0, -6.0]},
            "learned": True, "learned_ri": True, "pretraining_runs": 2}
    assert rules.verdict("pld_glue", 2, glue) == "reproduced" and rules.verdict("pld_glue", 3, glue) == "not reproduced"
    glue["deltas"]["learned_ri"] = glue["deltas"]["learned"]
    assert rules.verdict("pld_glue", 3, glue) == "reproduced"
    assert rules.verdict("pld_glue", 3, {**glue, "pretraining_runs": 1}) == "partly"
    assert rules.verdict("pld_glue", 3, {**glue, "learned_ri": False}) == "not measured"
    assert rules.RULES["pld_glue"][3].params["margin"] == rules.GLUE_MARGIN


def test_pld_glue_v5_judges_each_task_alone_and_caps_one_pretraining_run():
    """The average of v4 would pass a task that is clearly worse when another is better; v5 does not."""
    tight, worse, noisy = [-0.2, -0.1, 0.0], [-3.0, -3.2, -2.8], [-4.0, 2.0, -1.0]
    glue = {"learned_counted": ["CoLA", "SST-2"], "pretraining_runs": 2,
            "counted": {"CoLA": {"pld-baseline": tight}, "SST-2": {"pld-baseline": tight}}}
    assert rules.verdict("pld_glue", 4, glue) == "reproduced"
    assert rules.verdict("pld_glue", 4, {**glue, "pretraining_runs": 1}) == "partly"
    glue["counted"]["SST-2"]["pld-baseline"] = worse
    assert rules.verdict("pld_glue", 4, glue) == "partly"
    glue["counted"]["CoLA"]["pld-baseline"] = noisy  # inconclusive does not hold
    assert rules.verdict("pld_glue", 4, glue) == "not reproduced"
    assert rules.verdict("pld_glue", 4, {**glue, "learned_counted": []}) == "not measured"
    assert rules.RULES["pld_glue"][4].set > rules.RULES["pld_glue"][3].set
