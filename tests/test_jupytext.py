"""Opening a notebook in Jupyter and saving it unchanged leaves its file byte-identical: every
notebook round-trips through jupytext with the project's configuration (jupytext.toml), as
JupyterLab's jupytext contents manager reads and writes it."""
import jupytext
import pytest
from jupytext.config import load_jupytext_config

from repro import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_an_unchanged_save_changes_no_byte(path):
    config = load_jupytext_config(str(REPO_ROOT / "notebooks"))
    assert config is not None, "jupytext.toml is not found from notebooks/"
    text = path.read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    assert jupytext.writes(nb, fmt="py:percent", config=config) == text
