"""Bad input through the user-facing doors: one clear message naming the problem and the fix,
and nothing under results/ changed."""
import json

import pytest

from repro.__main__ import main
from repro.profiles import get_profile


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("argv, expected", [
    (["run", "glue_finetune", "-p", "tasks=['SST2']"], "Did you mean 'SST-2'"),
    (["run", "glue_finetune", "-p", "tasks=['MRPC', 'RTEE']"], "unknown GLUE task 'RTEE'"),
    (["run", "glue_finetune", "-p", "seeds=['a']"], "list of integers"),
    (["run", "glue_finetune", "-p", "lr=fast"], "expects float | None, got str"),
    (["run", "glue_finetune", "--profile", "laptop"], "unknown profile 'laptop'"),
])
def test_runner_refuses_before_running(argv, expected, tmp_path, capsys):
    (tmp_path / "smoke" / "glue_finetune").mkdir(parents=True)
    (tmp_path / "smoke" / "glue_finetune" / "summary.json").write_text("{}")
    before = _tree(tmp_path)
    assert main([*argv, "--results-dir", str(tmp_path)]) == 2
    assert expected in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_unknown_profile_field():
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("smoke", layerz=3)
    with pytest.raises(ValueError, match="choose one of smoke, cpu, gpu, paper"):
        get_profile("tiny")


def test_bad_squad_json_and_empty_corpus(tmp_path):
    from repro import data
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text('{"data": [')  # truncated download
    with pytest.raises(ValueError, match="dev-v1.1.json"):
        data.load_squad(data_dir=tmp_path, source="local")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "gutenberg_en_train.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        data.load_corpus("train", data_dir=tmp_path)


def test_checkpoint_folder_that_is_not_bert(tmp_path):
    from repro.model import Bert
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="not 'bert'"):
        Bert.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
                                                      "num_hidden_layers": 1, "num_attention_heads": 2,
                                                      "intermediate_size": 16}))
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        Bert.from_pretrained(tmp_path)
