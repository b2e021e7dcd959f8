"""The README's "Using both techniques on your own BERT training" blocks run as they stand: each is
executed at a tiny size (the replacements below must still match the README, or this fails)."""
import re

import pytest

from repro import REPO_ROOT

SECTION = "## Using both techniques on your own BERT training"
SHRINK = {  # README text -> tiny size; every key must occur in its block
    "pld": {"layers=12, hidden=256, heads=4, intermediate=1024": "layers=2, hidden=32, heads=2, intermediate=64",
            "steps = 10_000": "steps = 3", "batch_size=32": "batch_size=4", "seq_len=128": "seq_len=32"},
    "earlybert": {"] * 64": "] * 4", "batch_size=32": "batch_size=2", "len(examples) // 32": "len(examples) // 2"},
}


def blocks() -> dict[str, str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(code) == 2, f"expected the PLD and the EarlyBERT block, found {len(code)}"
    return dict(zip(("pld", "earlybert"), code))


def shrunk(name: str) -> str:
    code = blocks()[name]
    for old, new in SHRINK[name].items():
        assert old in code, f"the README's {name} block no longer has {old!r}: update SHRINK"
        code = code.replace(old, new)
    return code


@pytest.fixture
def workdir(tmp_path, monkeypatch, minilm_dir):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("The early bird catches the worm, and the second mouse gets the cheese.\n" * 40)
    return tmp_path


def test_the_pld_block_pretrains_with_blocks_dropped(workdir):
    ns = {}
    exec(shrunk("pld"), ns)
    assert ns["result"].steps == 3 and len(ns["pld"].record) == 3  # one gate string per micro-batch
    assert (workdir / "my_pld_bert" / "model.safetensors").exists()
    from repro.model import Bert
    again = Bert.from_pretrained(str(workdir / "my_pld_bert"), head="cls")
    assert again.config.ln == "pre" and len(again.blocks) == 2


def test_the_earlybert_block_trains_a_physically_smaller_ticket(workdir):
    ns = {}
    exec(shrunk("earlybert"), ns)
    model, ticket = ns["model"], ns["ticket"]
    heads = [b.attn.n_heads for b in model.blocks]
    assert ticket.config.heads_per_layer == [h - h // 3 for h in heads]  # a third of each layer's heads cut
    kept = sum(ticket.config.ffn_per_layer)
    assert kept == pytest.approx(0.6 * sum(b.ffn.fc1.out_features for b in model.blocks), abs=len(heads))
    assert ticket.num_params() < model.num_params() and (workdir / "my_ticket" / "config.json").exists()


def test_the_readmes_results_table_is_the_committed_reports():
    """The README's table of verdicts is results/cpu/report/claims.csv's (the report notebook's
    output), so the first page never says what the report no longer does."""
    import pandas as pd

    from repro import report
    text = (REPO_ROOT / "README.md").read_text()
    start, end = "<!-- results: results/cpu/report/claims.csv -->\n", "<!-- /results -->"
    assert start in text and end in text, "the README lost its results table's markers"
    table = text.split(start, 1)[1].split(end, 1)[0]
    want = report.readme_table(pd.read_csv(REPO_ROOT / "results" / "cpu" / "report" / "claims.csv", index_col="key"))
    assert table == want, f"the README's results table is not the committed report's; replace it with:\n{want}"
