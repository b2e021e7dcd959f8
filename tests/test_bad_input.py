"""Bad input through the user-facing doors: one clear message naming the problem and the fix,
and nothing under results/ changed."""
import json
import os
import re

import pytest

from repro.__main__ import main
from repro.profiles import get_profile


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("argv, expected", [
    (["run", "glue_finetune", "-p", "tasks=['SST3']"], "Did you mean 'SST-2'"),
    (["run", "glue_finetune", "-p", "tasks=['MRPC', 'RTEE']"], "unknown GLUE task 'RTEE'"),
    (["run", "glue_finetune", "-p", "tasks=[]"], "tasks is an empty list"),
    (["run", "glue_finetune", "-p", "tasks=['sst2', 'SST-2']"], "name a task twice"),
    (["run", "glue_finetune", "-p", "seeds=['a']"], "list of integers"),
    (["run", "glue_finetune", "-p", "seeds=[]"], "-p seeds is an empty list: nothing would run"),
    (["run", "glue_finetune", "-p", "seeds=[0, 0]"], "repeat a seed"),
    (["run", "glue_finetune", "-p", "seeds=[-1]"], "integers >= 0"),
    (["run", "glue_finetune", "-p", "epochs=0"], "-p epochs must be a number > 0, got 0"),
    (["run", "glue_finetune", "-p", "epochs=-1.5"], "-p epochs must be a number > 0"),
    (["run", "glue_finetune", "-p", "lr=0"], "-p lr must be a number > 0"),
    (["run", "glue_finetune", "-p", "lr=fast"], "expects float | None, got str"),
    (["run", "glue_finetune", "-p", "seeds=[]"], "-p seeds"),
    (["run", "earlybert_glue", "-p", "max_train_examples=-1"], "-p max_train_examples (training examples) must be an integer >= 1"),
    (["run", "ticket_mask_distance", "-p", "checkpoints=0"], "-p checkpoints (tickets per mask-distance matrix) must be an integer >= 1"),
    (["run", "earlybert_glue", "-p", "tickets=['late']"], "-p tickets must be a list of EarlyBERT tickets"),
    (["run", "earlybert_glue", "-p", "recipe={'epsilon': 0}"], "-p recipe: epsilon must be a number > 0"),
    (["run", "earlybert_squad", "-p", "dense_f1_bar=-1"], "-p dense_f1_bar must be a number >= 0"),
    (["run", "earlybert_glue", "-p", "draw=sometimes"], "-p draw must be one of 'detector', 'fixed'"),
    (["run", "earlybert_pretraining", "-p", "pretrain_recipe={'search_fraction': 1.0}"], "search_fraction must be a fraction in (0, 1)"),
    (["run", "pld_pretraining", "-p", "steps=0"], "-p steps (training steps) must be an integer >= 1"),
    (["run", "ticket_mask_distance", "-p", "tasks=['qnlii']"], "unknown GLUE task 'qnlii'"),
    (["run", "all", "-p", "seeds=[]"], "-p seeds is an empty list"),
    (["run", "glue_finetune", "-p", "checkpoint='{tmp}/empty'"], "lacks config.json; model.safetensors or "
                                                                  "pytorch_model.bin (the weights); tokenizer.json"),
    (["run", "glue_finetune", "-p", "checkpoint='{tmp}/nope'"], "checkpoint '{tmp}/nope' does not exist"),
    (["run", "glue_finetune", "-p", "data_dir='{tmp}/nope'"], "-p data_dir '{tmp}/nope' does not exist"),
    (["run", "glue_finetune", "--profile", "laptop"], "unknown profile 'laptop'"),
    (["run", "glue_finetune", "--fit"], "--fit needs --hours"),
])
def test_runner_refuses_before_running(argv, expected, tmp_path, capsys):
    (tmp_path / "smoke" / "glue_finetune").mkdir(parents=True)
    (tmp_path / "smoke" / "glue_finetune" / "summary.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    before = _tree(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert expected.replace("{tmp}", str(tmp_path)) in err
    assert "Traceback" not in err
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("profile", ["gpu", "paper"])
def test_a_gpu_profile_without_a_gpu_is_refused(profile, tmp_path, capsys, monkeypatch):
    """gpu and paper at full size on a machine without CUDA: one line naming --clip and
    --allow-cpu, exit 2, nothing written; --clip and --allow-cpu go on."""
    import torch

    from repro import runner
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for var in ("REPRO_CLIP", "REPRO_ALLOW_CPU"):
        monkeypatch.setenv(var, "")  # recorded, so what the CLI sets is undone after the test
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "results"
    (root / profile / "glue_finetune").mkdir(parents=True)
    (root / profile / "glue_finetune" / "summary.json").write_text("{}")
    before = _tree(tmp_path)
    assert main(["run", "glue_finetune", "--profile", profile, "--results-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--profile {profile}" in err and "--clip" in err and "--allow-cpu" in err
    assert _tree(tmp_path) == before
    ran = []
    monkeypatch.setattr(runner, "run", lambda jobs, *a, **k: ran.append([j.name for j in jobs]) or [])
    assert main(["run", "glue_finetune", "--profile", profile, "--clip", "--results-dir", str(root)]) == 0
    monkeypatch.setenv("REPRO_CLIP", "")
    assert main(["run", "glue_finetune", "--profile", profile, "--allow-cpu", "--results-dir", str(root)]) == 0
    assert ran == [["glue_finetune"]] * 2
    assert os.environ["REPRO_ALLOW_CPU"] == "1"  # what the processes of --jobs N inherit
    monkeypatch.setenv("REPRO_ALLOW_CPU", "")
    assert main(["run", "glue_finetune", "--profile", "smoke", "--results-dir", str(root)]) == 0  # a CPU profile
    assert ran[-1] == ["glue_finetune"] and len(ran) == 3


def test_runner_accepts_hugging_face_task_names():
    from repro import runner
    [job] = runner.jobs_for(["glue_finetune"], "smoke", ["tasks=['sst2', 'stsb', 'cola', 'mrpc', 'rte']"])
    assert job.params["tasks"] == ["sst2", "stsb", "cola", "mrpc", "rte"]  # the notebook maps them (below)
    [job] = runner.jobs_for(["earlybert_pretraining"], "smoke", ["task='qnli'", "seeds=[3]", "max_train_examples=8"])
    assert job.params == {"task": "qnli", "seeds": [3], "max_train_examples": 8}


# ---- the same checks for a papermill user: the notebooks call them in their first code cell ----

def test_check_parameters_refuses_and_names_the_problem(tmp_path):
    from repro.checks import check_parameters
    good = {"profile": "smoke", "seeds": [0, 1], "tasks": ["sst2", "stsb", "MRPC"], "task": "qnli",
            "max_tasks": 2, "epochs": 0.5, "lr": 2e-5, "window": 5, "data_dir": str(tmp_path),
            "checkpoint": "minilm", "unrelated": -1, "max_seeds": None}
    check_parameters(good)
    assert good["tasks"] == ["SST-2", "STS-B", "MRPC"] and good["task"] == "QNLI"  # our spelling, in place
    for bad, message in [({"seeds": []}, "parameter seeds is an empty list"),
                         ({"epochs": 0}, "parameter epochs must be a number > 0"),
                         ({"lr": -1e-5}, "parameter lr must be a number > 0"),
                         ({"steps": 0}, "parameter steps (training steps) must be an integer >= 1"),
                         ({"max_tasks": -1}, "parameter max_tasks (GLUE tasks to run) must be an integer >= 1"),
                         ({"max_seeds": 1.5}, "parameter max_seeds"),
                         ({"task": "SST3"}, "parameter task: unknown GLUE task 'SST3'"),
                         ({"theta_bars": (0.5, 1.5)}, "parameter theta_bars must be a list of fractions")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_parameters(bad)
    with pytest.raises(FileNotFoundError, match="data_dir '.*nope' does not exist"):
        check_parameters({"data_dir": str(tmp_path / "nope")})


def test_a_checkpoint_folder_is_checked_before_the_tokenizer_loads(tmp_path):
    from repro.sources import load_tokenizer
    from repro.tasks import glue_model
    with pytest.raises(FileNotFoundError) as e:
        load_tokenizer(str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg and "config.json" in msg and "model.safetensors" in msg and "tokenizer.json" in msg
    assert "sentencepiece" not in msg
    with pytest.raises(FileNotFoundError, match="'/nonexistent/ckpt' does not exist"):
        load_tokenizer("/nonexistent/ckpt")
    # a model saved by Bert.save_pretrained has no tokenizer: fine for the model, not as a tokenizer
    from repro.model import Bert
    Bert.from_config(layers=1, hidden=8, heads=2, intermediate=16, vocab_size=20, head=None).save_pretrained(tmp_path / "m")
    assert glue_model(str(tmp_path / "m"), "stsb", seed=0).config.num_labels == 1
    with pytest.raises(FileNotFoundError, match=r"lacks tokenizer\.json or vocab\.txt \(the tokenizer\)"):
        load_tokenizer(str(tmp_path / "m"))
    with pytest.raises(FileNotFoundError, match="lacks config.json"):
        glue_model(str(tmp_path), "MRPC", seed=0)


def test_a_missing_data_dir_never_falls_back_on_the_hub(tmp_path, monkeypatch):
    import datasets

    from repro import data, sources, squad

    def no_hub(*a, **k):
        raise AssertionError("the hub was asked although the user named a data folder")
    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    for load in (lambda: data.load_glue("MRPC", data_dir=tmp_path / "nope"),
                 lambda: squad.load_squad(data_dir=tmp_path / "nope"),
                 lambda: data.load_corpus("train", data_dir=tmp_path / "nope")):
        with pytest.raises(sources.DataDirNotFoundError, match=f"data_dir '{re.escape(str(tmp_path))}/nope' does not exist"):
            load()


def test_training_refuses_no_training(tmp_path):
    from repro.tasks import finetune_glue, pretrain_mlm, steps_for
    P = get_profile("smoke")
    data = ([{"input_ids": [1, 2], "label": 0}] * 4, [], None)  # never reached: the budget is checked first
    for kw, message in [({"epochs": 0}, "epochs must be a number > 0, got 0"),
                        ({"lr": 0.0}, "lr must be a number > 0, got 0.0"),
                        ({"steps": 0}, "steps must be an integer >= 1, got 0")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            finetune_glue(object(), "MRPC", P, 0, tokenizer=None, data=data, **kw)
    with pytest.raises(ValueError, match="the profile's finetune_epochs"):
        finetune_glue(object(), "MRPC", get_profile("smoke", finetune_epochs=-1.0), 0, tokenizer=None, data=data)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        pretrain_mlm(object(), P, 0, data=data, steps=0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        finetune_glue(object(), "MRPC", P, -3, tokenizer=None, data=data)
    with pytest.raises(ValueError, match="epochs must be a number > 0"):
        steps_for(100, 16, 0)


def test_unknown_profile_field():
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("smoke", layerz=3)
    with pytest.raises(ValueError, match="choose one of smoke, cpu, gpu, paper"):
        get_profile("tiny")


def test_bad_squad_json_and_empty_corpus(tmp_path):
    from repro import data, squad
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text('{"data": [')  # truncated download
    with pytest.raises(ValueError, match="dev-v1.1.json"):
        squad.load_squad(data_dir=tmp_path, source="local")
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


@pytest.mark.notebook
def test_a_papermill_user_gets_the_same_message(tmp_path, monkeypatch):
    """No runner: papermill straight on the notebook. Its first code cell refuses the value."""
    import papermill

    from repro import execute, runner
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = runner.list_notebooks()["glue_finetune"]
    nb = runner.read_notebook(path)
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    with pytest.raises(papermill.PapermillExecutionError, match="parameter seeds is an empty list"):
        papermill.execute_notebook(nb, str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                                   parameters={"profile": "smoke", "output_dir": str(tmp_path / "out"), "seeds": []},
                                   cwd=str(runner.REPO_ROOT), kernel_manager_class=execute._this_python_kernel())
    assert not (tmp_path / "out").exists() and not (tmp_path / "smoke").exists()
