"""The environment is read in one place, at the top: `Control.from_environ` (repro/control.py)
reads every REPRO_* variable when a notebook makes its Study (or the command line starts), and
the values are passed down from there; torchrun's ranks are read in `control.ranks`."""
import re
from pathlib import Path

import pytest

import repro
from repro.control import Control, ranks
from repro.study import Study

# the modules that may touch os.environ, and why; any other reading it is a read below the top
ALLOWED = {
    "control.py": "Control.from_environ reads the REPRO_* variables, ranks() torchrun's",
    "__main__.py": "the top: sets the variables its notebook kernels inherit, reads its own --allow-cpu",
    "execute.py": "sets a notebook kernel's environment around papermill",
    "runner.py": "builds the environment of the processes of --jobs N",
    "restamp.py": "builds the environment of the runner it starts at each revision",
}
USES = re.compile(r"\bos\.environ\b|\bgetenv\b|\bputenv\b|(?<![\w.])environ\b")


def environment_uses(folder: Path) -> dict[str, list[str]]:
    """module file name -> its lines that name the process environment."""
    found = {}
    for path in sorted(Path(folder).glob("*.py")):
        lines = [line.strip() for line in path.read_text().splitlines() if USES.search(line)]
        if lines:
            found[path.name] = lines
    return found


def test_the_environment_is_read_at_the_top_only():
    found = environment_uses(Path(repro.__file__).parent)
    below = {name: lines for name, lines in found.items() if name not in ALLOWED}
    assert not below, f"read the variable in Control.from_environ and pass its value down: {below}"


def test_the_check_finds_a_read_below_the_top(tmp_path):
    (tmp_path / "deep.py").write_text('import os\nlimit = float(os.environ.get("REPRO_DEADLINE", "inf"))\n')
    (tmp_path / "other.py").write_text("from os import environ, getenv\n")
    (tmp_path / "fine.py").write_text('"""The environment, read by Control.from_environ."""\n')
    assert set(environment_uses(tmp_path)) == {"deep.py", "other.py"}


def test_from_environ_reads_every_setting():
    c = Control.from_environ({"REPRO_DATA_DIR": "/d", "REPRO_RESULTS_DIR": "/r", "REPRO_EXECUTION_ID": "e1",
                              "REPRO_CHECKPOINT": " /ckpt ", "REPRO_CLIP": "yes", "REPRO_CLIP_BATCH": "8",
                              "REPRO_CACHE_DIR": "/c", "REPRO_RERUN_STALE": "1"})
    assert (c.data_dir, c.results_dir, c.execution, c.checkpoint, c.clip, c.clip_batch) == ("/d", "/r", "e1", "/ckpt", True, 8)
    assert (c.cache_dir, c.rerun_stale) == ("/c", True)
    assert Control.from_environ({}) == Control()
    assert Control.from_environ({"REPRO_CLIP": "0", "REPRO_CLIP_BATCH": "none"}).clip_batch is None  # without clip
    with pytest.raises(ValueError, match="REPRO_CLIP='maybe': set it to 1"):
        Control.from_environ({"REPRO_CLIP": "maybe"})
    with pytest.raises(ValueError, match="REPRO_CLIP_BATCH='0'.*positive"):
        Control.from_environ({"REPRO_CLIP": "1", "REPRO_CLIP_BATCH": "0"})


def test_a_study_made_after_the_environment_changed_reads_the_new_values(store, monkeypatch, tmp_path):
    monkeypatch.setenv("REPRO_EXECUTION_ID", "e1")
    monkeypatch.setenv("REPRO_CHECKPOINT", str(tmp_path))
    st = Study("nb", "smoke")
    assert st.root == store / "results" and st.control.execution == "e1"  # the store fixture's results root
    assert st.get_profile().checkpoint == str(tmp_path) and st.get_profile(checkpoint="minilm").checkpoint == "minilm"
    row = st.unit(task="T", method="m", seed=0, config={"k": 1}, run=lambda u: {"metrics": {"x": 1.0}})
    assert row["execution"] == "e1" and (store / "results" / "smoke" / "runs").is_dir()
    st.write_summary(tmp_path / "out", {})
    assert '"execution": "e1"' in (tmp_path / "out" / "summary.json").read_text()
    monkeypatch.setenv("REPRO_EXECUTION_ID", "e2")
    assert Study("nb", "smoke").control.execution == "e2" and st.control.execution == "e1"  # values, read once


def test_torchrun_ranks(monkeypatch):
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert ranks() == (0, 0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert ranks() == (3, 1, 4)
