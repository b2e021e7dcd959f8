"""Fingerprints survive moving code (repro.fingerprint): a record stays current when a function or
a declaration moves to another module unchanged, or an import line changes; it goes stale when a
body changes. Records made under scheme 1 stay current through the frozen table."""
import json
import textwrap

from repro import fingerprint as F

TRAIN = '''\
import math
from .a import helper

LR = 0.1


class Config:
    """fields"""
    lr: float = LR

    def scaled(self):
        return self.lr * 2


def step(x):
    from .b import other  # a function-local import
    return x * LR + math.pi
'''


def _pkg(tmp_path, files: dict):
    pkg = tmp_path / "pkg"
    pkg.mkdir(exist_ok=True)
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text))
    return pkg


def _record(pkg, calls):
    """A scheme-2 fingerprint of `calls` (file, qualified name) in `pkg`, as a run would record."""
    out, used = {"scheme": F.SCHEME}, set()
    for rel, name in calls:
        src = F.source(pkg / rel)
        out[f"{rel}::{name}"] = src.functions[name]
        used |= src.names[name] | {name.split(".")[0]}
    for p in sorted(pkg.glob("*.py")):
        for decl, digest in F.source(p).declarations.items():
            if decl in used:
                out[f"{p.name}::={decl}"] = digest
    return out


def _v1_record(pkg, calls):
    """What scheme 1 recorded: function digests with their import lines, and "<module>"."""
    out = {}
    for rel, name in calls:
        src = F.source(pkg / rel)
        out[f"{rel}::{name}"], out[f"{rel}::<module>"] = src.v1[name], src.v1["<module>"]
    return out


def test_moving_a_function_and_its_constant_keeps_a_record_current_changing_its_body_does_not(tmp_path):
    pkg = _pkg(tmp_path, {"train.py": TRAIN, "loop.py": "import os\n"})
    table = {"frozen": {}, "aliases": {}}
    rec = _record(pkg, [("train.py", "step"), ("train.py", "Config.scaled")])
    assert "train.py::=LR" in rec and "train.py::=Config" in rec
    assert F.changed(rec, pkg, table) == []
    # `step` and `LR` move to loop.py, with other import lines everywhere
    moved_step = "\n\nLR = 0.1\n\n\ndef step(x):\n    from .c import other  # moved too\n    return x * LR + math.pi\n"
    (pkg / "loop.py").write_text("import os\nimport math\n" + moved_step)
    (pkg / "train.py").write_text(TRAIN.replace("import math\n", "from .loop import LR, step\n")
                                  .replace("LR = 0.1\n", "").split("\n\ndef step")[0] + "\n")
    assert F.changed(rec, pkg, table) == []
    (pkg / "loop.py").write_text((pkg / "loop.py").read_text().replace("x * LR", "x * LR * 2"))
    assert F.changed(rec, pkg, table) == ["train.step"]
    (pkg / "loop.py").write_text((pkg / "loop.py").read_text().replace("LR = 0.1", "LR = 0.2"))
    assert sorted(F.changed(rec, pkg, table)) == ["train.LR (declaration)", "train.step"]


def test_a_class_field_change_stales_records_that_ran_its_methods(tmp_path):
    pkg = _pkg(tmp_path, {"train.py": TRAIN})
    rec = _record(pkg, [("train.py", "Config.scaled")])
    (pkg / "train.py").write_text(TRAIN.replace("lr: float = LR", "lr: float = 2 * LR"))
    assert F.changed(rec, pkg, {}) == ["train.Config (declaration)"]


def test_scheme_1_records_survive_a_move_through_the_frozen_table_and_only_through_it(tmp_path):
    pkg = _pkg(tmp_path, {"train.py": TRAIN, "loop.py": "import os\n"})
    old = _v1_record(pkg, [("train.py", "step")])
    table_path = tmp_path / "fingerprints.json"
    assert F.changed(old, pkg, F.read_table(table_path)) == []  # unmoved: scheme 1's own rule
    assert F.freeze(pkg, table_path) > 0
    frozen = F.read_table(table_path)
    before = json.loads(table_path.read_text())
    assert F.freeze(pkg, table_path) == 0 and json.loads(table_path.read_text()) == before  # nothing edited
    # an import line changes (scheme 1 digested it) and the function moves with its constant
    (pkg / "loop.py").write_text("import math\n\nLR = 0.1\n\n\ndef step(x):\n    return x * LR + math.pi\n")
    (pkg / "train.py").write_text(TRAIN.replace("from .a import helper\n", "from .loop import LR, step\n")
                                  .replace("LR = 0.1\n", "").split("\n\ndef step")[0] + "\n")
    assert sorted(F.changed(old, pkg, {"frozen": {}, "aliases": {}})) == ["train declarations", "train.step"]
    assert F.changed(old, pkg, frozen) == []
    (pkg / "train.py").write_text((pkg / "train.py").read_text() + "\nUNUSED = 1\n")
    assert F.changed(old, pkg, frozen) == []  # a declaration `step` does not name
    (pkg / "loop.py").write_text((pkg / "loop.py").read_text().replace("LR = 0.1", "LR = 0.3"))
    assert F.changed(old, pkg, frozen) == ["train declarations"]  # a declaration it names changed


def test_an_alias_carries_a_rename_or_a_body_change_that_keeps_the_numbers(tmp_path):
    pkg = _pkg(tmp_path, {"train.py": TRAIN})
    rec = _record(pkg, [("train.py", "step")])
    (pkg / "train.py").write_text(TRAIN.replace("def step(x):", "def train_step(x):"))
    assert F.changed(rec, pkg, {}) == ["train.step"]
    new = F.source(pkg / "train.py").functions["train_step"]
    aliases = {f"train.py::step@{rec['train.py::step']}": {"to": f"train.py::train_step@{new}", "why": "renamed"}}
    assert F.changed(rec, pkg, {"aliases": aliases}) == []


def test_digests_ignore_docstrings_comments_position_and_imports(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text('import os\nX = 1\n\ndef f(x):\n    """doc"""\n    import math\n    return x + 1  # why\n')
    b.write_text('import sys\nX = 1\n\n\n\ndef f(x):\n    """other doc"""\n    # a comment\n    return x + 1\n')
    da, db = F.source(a), F.source(b)
    assert da.functions["f"] == db.functions["f"] and da.declarations == db.declarations
    b.write_text('X = 2\n\ndef f(x):\n    return x + 2\n')
    dc = F.source(b)
    assert dc.functions["f"] != da.functions["f"] and dc.declarations["X"] != da.declarations["X"]


def test_the_committed_frozen_table_covers_every_module_the_scheme_1_records_name():
    """Freezing is a recorded step: the table in the package holds a scheme-1 digest of every module
    the committed scheme-1 records name, so they stay current through any later move (modules
    written since have only scheme-2 records). Every alias says why it keeps the numbers."""
    from repro import REPO_ROOT

    frozen = F.read_table()["frozen"]
    named = set()
    for path in (REPO_ROOT / "results").glob("*/runs/*.json"):
        code = json.loads(path.read_text()).get("code") or {}
        if code.get("scheme") != F.SCHEME:
            named |= {k.split("::")[0] for k in code if k.endswith("::<module>")}
    for rel in named:
        assert any(k.startswith(f"{rel}::<module>@") for k in frozen), rel
    for alias in F.read_table()["aliases"].values():
        assert alias.get("why") and alias.get("to"), alias


def test_an_alias_written_where_a_function_lives_now_carries_records_keyed_where_it_lived(tmp_path):
    """A record keyed train.py::step (made before `step` moved to loop.py); the re-stamp after a
    later body change writes its alias under loop.py, where it found the function: the record
    stays current through it, and without it goes stale."""
    pkg = _pkg(tmp_path, {"train.py": TRAIN, "loop.py": "import math\n"})
    rec = _record(pkg, [("train.py", "step")])
    old = rec["train.py::step"]
    (pkg / "loop.py").write_text("import math\n\nLR = 0.1\n\n\ndef step(x):\n    return x * LR + math.pi\n")
    (pkg / "train.py").write_text(TRAIN.split("\n\ndef step")[0] + "\n")
    assert F.changed(rec, pkg, {}) == []  # moved unchanged
    (pkg / "loop.py").write_text((pkg / "loop.py").read_text().replace("return x * LR", "y = x\n    return y * LR"))
    assert F.changed(rec, pkg, {}) == ["train.step"]
    new = F.source(pkg / "loop.py").functions["step"]
    aliases = {f"loop.py::step@{old}": {"to": f"loop.py::step@{new}", "why": "re-stamped"}}
    assert F.changed(rec, pkg, {"aliases": aliases}) == []
