"""The GPU profiles' path, checked on a CPU.

- bf16 autocast (what a GPU run trains under) through every head, PLD gates, EarlyBERT
  coefficients and a physically pruned model, and the training loop with precision="bf16";
- `clip`: the caps, the environment variables, and where the caps act (repro.tasks);
- the checkpoint as a setting: REPRO_CHECKPOINT, a local folder, the stand-in, and the one
  message a hub id gets when there is no hub;
- `scripts/gpu_study.sh --dry-run`: the plan of a short GPU session;
- (marked `clip`) every notebook of the clipped gpu profile, end to end.
"""
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from repro import REPO_ROOT
from repro import profiles as PR
from repro.earlybert import Slimming, draw_masks, enable_slimming, l1_penalty, prune, random_masks
from repro.model import Bert
from repro.study import Study
from repro.train import TrainConfig, train

from conftest import tiny_mlm_data

BF16 = torch.autocast("cpu", dtype=torch.bfloat16)


# -- bf16 autocast ----------------------------------------------------------------------------
def _model(head, num_labels=2, **kw):
    torch.manual_seed(0)
    return Bert.from_config(layers=3, hidden=32, heads=4, intermediate=64, vocab_size=100, max_position=64,
                            ln=kw.pop("ln", "pre"), head=head, num_labels=num_labels, **kw)


def _batch(head, num_labels=2, B=4, S=12):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (B, S), generator=g)
    mask = torch.ones_like(ids)
    mask[0, S - 3:] = 0  # padding: the attention-mask path
    b = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    if head == "mlm":
        labels = torch.full_like(ids, -100)
        labels[:, 1] = ids[:, 1]
        b["labels"] = labels
    elif head == "cls":
        b["labels"] = (torch.rand(B, generator=g) * 5 if num_labels == 1
                       else torch.randint(0, num_labels, (B,), generator=g))
    else:
        b["start_positions"] = torch.randint(0, S, (B,), generator=g)
        b["end_positions"] = torch.randint(0, S, (B,), generator=g)
    return b


HEADS = [("mlm", 2), ("cls", 2), ("cls", 1), ("qa", 2)]  # cls with 1 label: STS-B regression
VARIANTS = ["dense", "pld", "slimming", "pruned", "postln"]


def _variant(head, num_labels, variant):
    model = _model(head, num_labels, ln="post" if variant == "postln" else "pre",
                   slimming=variant in ("slimming", "pruned"))
    if variant == "pruned":
        with torch.no_grad():  # distinct coefficients, so the drawn ticket is not a tie-break
            for c in [*model.coefficients()[0], *model.coefficients()[1]]:
                c.copy_(torch.rand(c.shape, generator=torch.Generator().manual_seed(c.numel())))
        model = prune(model, *draw_masks(model))
        assert model.config.heads_per_layer != [4, 4, 4]
    gates = [2.0, None, 1.25] if variant == "pld" else None  # block 2 dropped, the others rescaled
    return model, gates


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("head,num_labels", HEADS)
def test_bf16_autocast_forward_backward(head, num_labels, variant):
    """What a GPU run does on every step: the forward under bf16 autocast, the loss in fp32,
    gradients into fp32 parameters. A dtype mismatch raises here; a loss or gradient that lost
    its precision shows as a non-fp32 dtype or a non-finite value."""
    model, gates = _variant(head, num_labels, variant)
    batch = _batch(head, num_labels)
    with BF16:
        out = model(**batch, gates=gates)
        loss = out["loss"]
        if variant in ("slimming", "pruned"):
            loss = loss + l1_penalty(model)
    logits = out["logits" if head != "qa" else "start_logits"]
    assert logits.dtype == torch.bfloat16, "autocast did not reach the model: the test checks nothing"
    assert loss.dtype == torch.float32 and math.isfinite(loss.item()), (loss.dtype, loss)
    loss.backward()
    params = dict(model.named_parameters())
    assert all(p.dtype == torch.float32 for p in params.values())
    grads = {n: p.grad for n, p in params.items() if p.grad is not None}
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads.values())
    if variant == "pld":  # the dropped block got no gradient, the kept ones did
        assert not any(n.startswith("blocks.1.") for n in grads)
        assert any(n.startswith("blocks.2.") for n in grads)
    if variant in ("slimming", "pruned"):
        assert all(n in grads for n in params if n.endswith("coef"))
    # the same step in fp32 gives nearly the same loss: bf16 changed precision, not the function
    with torch.no_grad():
        model.eval()
        with BF16:
            low = model(**batch, gates=gates)
        full = model(**batch, gates=gates)
    for k in [k for k in full if k != "labels"]:
        assert torch.allclose(low[k].float(), full[k].float(), atol=0.1, rtol=0.05), k


def test_train_loop_bf16_on_cpu_runs_steps_with_pld_and_slimming():
    """TrainConfig(precision="bf16") on a CPU: the loop's autocast, its evaluation under autocast,
    and the PLD and EarlyBERT hooks."""
    from repro.pld import PLD
    from repro.evaluation import mlm_loss

    examples, collate = tiny_mlm_data(n=32, seq=12, vocab=100)
    cfg = dict(max_steps=3, batch_size=8, lr=1e-3, progress=False, precision="bf16", device="cpu", grad_accum=2)
    for hooks, slimming in (([PLD(0.5, 0.5, seed=0)], False), ([Slimming(draw_every=1)], True)):
        model = _model("mlm", slimming=slimming)
        r = train(model, examples, collate, TrainConfig(**cfg),
                  eval_fn=lambda m: {"val_loss": mlm_loss(m, examples[:8], collate)}, hooks=hooks)
        assert r.status == "ok" and r.steps == 3, (r.status, r.stop_reason)
        assert all(math.isfinite(h["loss"]) for h in r.history)
        assert math.isfinite(r.final_eval["val_loss"])
        assert all(p.dtype == torch.float32 for p in model.parameters())


def test_finetune_predictions_under_bf16_are_fp32():
    """Evaluation helpers hand fp32 to numpy/sklearn whatever the autocast (GLUE and SQuAD)."""
    from repro.evaluation import predict

    model = _model("qa")
    examples = [{"input_ids": list(range(5, 15)), "token_type_ids": [0] * 10} for _ in range(3)]
    from repro.data import Collator
    with BF16:
        out = predict(model, examples, Collator(), batch_size=2, keys=("start_logits", "end_logits"))
    assert all(t.dtype == torch.float32 for t in out["start_logits"] + out["end_logits"])


# -- clip --------------------------------------------------------------------------------------
CLIP_ENV, CLIP_BATCH_ENV, CHECKPOINT_ENV = "REPRO_CLIP", "REPRO_CLIP_BATCH", "REPRO_CHECKPOINT"


@pytest.fixture
def no_env(monkeypatch):
    for k in (CLIP_ENV, CLIP_BATCH_ENV, CHECKPOINT_ENV):
        monkeypatch.setenv(k, "")  # recorded, so whatever a test (or the CLI it calls) sets is undone
        monkeypatch.delenv(k)
    return monkeypatch


def gpu_profile(**overrides):
    """The gpu profile as a notebook gets it: its Study reads the environment (Control.from_environ)
    when it is made, and applies the checkpoint and clip there (Study.get_profile)."""
    return Study("nb", "gpu").get_profile(**overrides)


def test_clip_caps(no_env):
    gpu, paper = PR.PROFILES["gpu"], PR.PROFILES["paper"]
    c = PR.clip(gpu)
    # the model, sequence lengths, batch sizes, learning rates and checkpoint are the profile's
    for f in ("layers", "hidden", "heads", "intermediate", "seq_len", "finetune_seq_len", "pretrain_batch",
              "finetune_batch", "pretrain_lr", "finetune_lr", "checkpoint", "device"):
        assert getattr(c, f) == getattr(gpu, f), f
    assert c.seeds == (0,) and c.glue_tasks == ("CoLA",)
    assert c.pretrain_steps == 10  # notebooks' 20% searches of it are still 2 steps
    assert c.max_steps == 2 and c.max_eval_examples == 32 and c.max_valid_blocks == 32
    assert c.max_train_examples == 2 * gpu.finetune_batch
    assert c.max_corpus_chars >= 2 * gpu.pretrain_batch * gpu.seq_len * 5  # two steps' worth of blocks
    assert PR.clip(c) == c  # idempotent
    for P in (gpu, paper, PR.PROFILES["cpu"]):  # the PLD comparison's pilot stops inside the capped steps
        Q = PR.pld_profile(PR.clip(P))
        assert 0 < Q.pld_pilot_steps <= Q.max_steps < Q.pretrain_steps <= 5 * Q.max_steps, P.name
    cp = PR.clip(paper)
    assert cp.grad_accum == 2 and cp.pretrain_batch == 256  # accumulation kept, two micro-batches
    small = PR.clip(gpu, batch=8)
    assert small.pretrain_batch == small.finetune_batch == 8 and small.max_train_examples == 16
    assert PR.clip(PR.PROFILES["smoke"]).max_eval_examples == 32  # a cap never raises a size
    assert PR.clip(replace(PR.PROFILES["smoke"], max_eval_examples=20)).max_eval_examples == 20


def test_clip_from_environment(no_env, tmp_path):
    assert gpu_profile().max_steps is None
    no_env.setenv(CLIP_ENV, "1")
    no_env.setenv(CLIP_BATCH_ENV, "8")
    no_env.setenv(CHECKPOINT_ENV, str(tmp_path))  # available: no stand-in
    P = gpu_profile(max_train_examples=1000, seeds=(3, 4))
    assert (P.max_steps, P.pretrain_batch, P.max_train_examples, P.seeds) == (2, 8, 16, (3,))
    assert P.checkpoint == str(tmp_path)
    assert PR.get_profile("gpu").max_steps is None  # below the Study, only the values passed count
    assert PR.get_profile("gpu", clip=True, clip_batch=8).pretrain_batch == 8
    for bad in ("maybe", "2"):
        no_env.setenv(CLIP_ENV, bad)
        with pytest.raises(ValueError, match="REPRO_CLIP.*set it to 1"):
            gpu_profile()
    no_env.setenv(CLIP_ENV, "0")
    no_env.setenv(CLIP_BATCH_ENV, "none")
    assert gpu_profile().max_steps is None  # REPRO_CLIP_BATCH alone does nothing
    no_env.setenv(CLIP_ENV, "yes")
    with pytest.raises(ValueError, match="REPRO_CLIP_BATCH='none'.*positive"):
        gpu_profile()


def test_clip_caps_act_where_runs_and_data_are_built(no_env):
    from repro import tasks

    P = PR.clip(PR.PROFILES["gpu"])
    cfg = tasks.train_config(P, steps=20_000, seed=0, lr=1e-4, batch=P.pretrain_batch)
    assert cfg.max_steps == 2
    assert tasks.train_config(PR.PROFILES["gpu"], steps=20_000, seed=0, lr=1e-4, batch=8).max_steps == 20_000
    # the profile's gradient accumulation is pre-training's; fine-tuning steps are one batch
    assert tasks.train_config(PR.PROFILES["paper"], steps=5, seed=0, lr=1e-4, batch=32).grad_accum == 1


def test_run_clip_flag_sets_env_and_scratch_results(no_env, tmp_path):
    from repro import __main__ as cli

    seen = {}

    def fake_run(jobs, profile, results_dir, force, parallel=1, control=None):
        seen.update(env=os.environ.get(CLIP_ENV), root=results_dir, names=[j.name for j in jobs], clip=control.clip)
        return []
    no_env.setattr(cli.runner, "run", fake_run)
    assert cli.main(["run", "glue_finetune", "--profile", "gpu", "--clip", "--results-dir", str(tmp_path)]) == 0
    assert seen == {"env": "1", "root": str(tmp_path / "_scratch" / "gpu-clip"), "names": ["glue_finetune"], "clip": True}
    no_env.setenv(CLIP_ENV, "sometimes")  # a typo never runs at full size
    assert cli.main(["run", "glue_finetune", "--profile", "gpu", "--results-dir", str(tmp_path)]) == 2


# -- checkpoints without a hub ----------------------------------------------------------------
def test_hub_id_without_hub_gets_one_message_with_both_ways_out(no_env, tmp_path):
    import huggingface_hub.constants as hc

    from repro.sources import CheckpointNotFoundError, load_tokenizer
    from repro.tasks import glue_model

    no_env.setattr(hc, "HF_HUB_OFFLINE", True)
    no_env.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # nothing cached, whatever this machine has
    for load in (load_tokenizer, lambda name: glue_model(name, "MRPC", seed=0)):
        with pytest.raises(CheckpointNotFoundError) as e:
            load("bert-base-uncased")
        msg = str(e.value)
        assert "'bert-base-uncased'" in msg and "REPRO_CHECKPOINT=/path/to/folder" in msg
        assert "-p checkpoint=/path/to/folder" in msg and "enable hub access" in msg
        assert "Traceback" not in msg and msg.count("\n") == 0
    with pytest.raises(FileNotFoundError, match="'/no/such/bert' does not exist: give a checkpoint folder"):
        load_tokenizer("/no/such/bert")
    assert not PR.checkpoint_available("bert-base-uncased")


def test_checkpoint_from_a_local_folder_through_the_env(no_env, tmp_path):
    """The stand-in is a Hugging Face BERT folder (what bert-base-uncased is): REPRO_CHECKPOINT
    pointing at it reaches the tokenizer and the model through the hub checkpoint's code path."""
    from repro.sources import load_tokenizer, standin
    from repro.tasks import glue_model

    small = replace(PR.PROFILES["smoke"], checkpoint="bert-base-uncased")  # 2 x 64: quick to build
    folder = standin(small, root=tmp_path)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "bert"
    assert standin(small, root=tmp_path) == folder  # built once
    no_env.setenv(CHECKPOINT_ENV, str(folder))
    P = gpu_profile()
    assert P.checkpoint == str(folder)
    assert gpu_profile(checkpoint="minilm").checkpoint == "minilm"  # the parameter wins
    tok = load_tokenizer(P.checkpoint)
    assert tok("the cat")["input_ids"] == [101, 1996, 4937, 102]  # bert-base-uncased WordPiece ids
    model = glue_model(P.checkpoint, "MRPC", seed=0)
    assert (model.config.layers, model.config.hidden) == (2, 64)
    assert set(model.load_report["missing"]) == {"classifier.weight", "classifier.bias"}  # only the fresh head


def test_clip_stands_in_for_an_unavailable_checkpoint(no_env, tmp_path):
    no_env.setenv(CLIP_ENV, "1")
    no_env.setattr(PR, "checkpoint_available", lambda name: False)
    no_env.setattr(PR, "standin", lambda P, root=None: tmp_path / f"standin-{P.layers}x{P.hidden}")
    assert gpu_profile().checkpoint == str(tmp_path / "standin-12x768")
    no_env.setattr(PR, "checkpoint_available", lambda name: True)
    assert gpu_profile().checkpoint == "bert-base-uncased"


def test_pld_pretraining_folder_is_a_checkpoint(tmp_path, tokenizer):
    """What pld_pretraining saves (our model + the tokenizer) is a `checkpoint` for glue_finetune."""
    from repro.sources import CheckpointNotFoundError, load_tokenizer
    from repro.tasks import glue_model

    m = Bert.from_config(layers=2, hidden=32, heads=2, intermediate=64, vocab_size=len(tokenizer), ln="pre", head="mlm")
    folder = m.save_pretrained(tmp_path / "preln")
    with pytest.raises(FileNotFoundError, match="tokenizer.*save_pretrained"):
        load_tokenizer(str(folder))
    tokenizer.save_pretrained(folder)
    assert load_tokenizer(str(folder))("the cat")["input_ids"] == [101, 1996, 4937, 102]
    g = glue_model(str(folder), "STS-B", seed=0)
    assert (g.config.ln, g.config.head, g.config.num_labels) == ("pre", "cls", 1)
    assert torch.equal(g.emb.word.weight, m.emb.word.weight)


# -- the GPU session's plan ---------------------------------------------------------------------
def test_gpu_study_dry_run_plans_within_budget(tmp_path, monkeypatch):
    script = ["bash", str(REPO_ROOT / "scripts" / "gpu_study.sh")]
    env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"), "PYTHON": sys.executable}
    r = subprocess.run([*script, "--dry-run"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout
    assert "python -m repro bench --profile gpu --out" in out and "--compile" in out
    for name in ("gradient_norms", "pld_schedule", "pld_pretraining", "report"):
        assert f"-m repro run {name} --profile gpu" in out
    total = float(out.split("estimated total ")[1].split("s")[0])
    assert 0.8 * 720 < total <= 720, out
    assert not (tmp_path / "results").exists()  # a dry run writes nothing
    # a longer session: more notebooks, a longer pre-training, still within its budget
    gs = _gpu_study_module(monkeypatch)
    short, f1 = gs.plan(720, 0.4, 990)
    long, f2 = gs.plan(1800, 0.4, 990, checkpoint=True, squad=True)
    assert f2["estimated_total_s"] <= 1800 and len(long) > len(short)

    def pld_steps(items):
        return next(i.params["steps"] for i in items if i.name == "pld_pretraining")
    assert 500 <= pld_steps(short) < pld_steps(long) <= 20_000
    for argv, env2, message in ((["--budget", "soon"], env, "--budget needs a number"),
                                (["--dry-run"], {**env, "PYTHON": "/nonexistent/python"}, "set PYTHON="),
                                (["--frobnicate"], env, "unknown option")):
        r = subprocess.run([*script, *argv], cwd=REPO_ROOT, env=env2, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr, r.stderr


def _gpu_study_module(monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_study", REPO_ROOT / "scripts" / "gpu_study.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_study", mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_gpu_study_session_replans_and_keeps_to_its_budget(tmp_path, monkeypatch):
    """The session loop on a pretend GPU, with a pretend clock: the eager bench measures a step
    twice as slow as the FLOP estimate and torch.compile never finishes. The notebooks are
    re-planned with the measured step time and the time left, the core notebooks and the report
    still run, and the session ends within its budget."""
    gs = _gpu_study_module(monkeypatch)
    clock = {"t": 1000.0}
    ran = []

    def fake_run(cmd, env, timeout):
        name = cmd[cmd.index("run") + 1] if "run" in cmd else ("bench_compile" if "--compile" in cmd else "bench")
        est = {i.name: i for i in current["items"]}[name].seconds(current["facts"]["t_pre_s"], current["facts"]["t_ft_s"])
        if name == "bench":
            (tmp_path / "gpu" / "bench").mkdir(parents=True)
            (tmp_path / "gpu" / "bench" / "bench.json").write_text(json.dumps(
                {"mfu": 0.2, "cases": {"dense_pre": {"step_s": 2 * current["facts"]["t64_s"]}}}))
        took, rc = (timeout, 124) if name == "bench_compile" else (min(est, timeout), 0)
        clock["t"] += took
        ran.append((name, [c for c in cmd if "=" in c], rc))
        return rc, took

    current = {}
    real_plan = gs.plan

    def spy_plan(*a, **k):
        items, facts = real_plan(*a, **k)
        current.update(items=list(items), facts=facts)  # main pops from the list it gets
        return items, facts
    monkeypatch.setattr(gs, "plan", spy_plan)
    monkeypatch.setattr(gs, "run", fake_run)
    monkeypatch.setattr(gs.time, "time", lambda: clock["t"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100 80GB HBM3")
    rc = gs.main(["--budget", "720", "--results-dir", str(tmp_path), "--started", "1000"])
    names = [r[0] for r in ran]
    assert names[:2] == ["bench", "bench_compile"] and names[-1] == "report", names
    assert {"gradient_norms", "pld_schedule", "pld_pretraining"} <= set(names)
    assert clock["t"] - 1000 <= 720, clock["t"] - 1000
    log = json.loads((tmp_path / "gpu" / "gpu_study.json").read_text())
    assert [i["status"] for i in log["items"]][:2] == ["ok", "timed out"] and rc == 1
    assert log["replans"][0]["t64_s"] == pytest.approx(2 * log["plan"]["t64_s"])  # the measured step time
    steps = [int(a.split("=")[1]) for n, args, _ in ran if n == "pld_pretraining" for a in args if a.startswith("steps=")]
    assert steps and 500 <= steps[0] < 20_000


# -- the clipped gpu profile, every notebook -----------------------------------------------------
@pytest.mark.clip
def test_clipped_gpu_profile_runs_every_notebook(tmp_path, request):
    """`python -m repro run all --profile gpu --clip` on this CPU: BERT-base shapes, the gpu
    profile's data and code path, 2 steps per run (batches capped at 8), then a fine-tuning
    notebook from a checkpoint that pld_pretraining saved. About 25 minutes on a busy 2-core
    machine, so only when asked for: `make test-clip` (pytest -m clip)."""
    if "clip" not in (request.config.option.markexpr or "") or "not clip" in request.config.option.markexpr:
        pytest.skip("the clipped gpu profile takes ~25 min on 2 cores: run it with `make test-clip` (pytest -m clip)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REPRO_CLIP_BATCH": "8", "HF_HUB_OFFLINE": "1",
           "REPRO_CACHE_DIR": str(tmp_path / "cache")}
    env.pop(CHECKPOINT_ENV, None)
    cmd = [sys.executable, "-m", "repro", "run", "all", "--profile", "gpu", "--clip", "--results-dir", str(tmp_path)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    root = tmp_path / "_scratch" / "gpu-clip" / "gpu"
    names = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("*.py"))
    assert all((root / n / "summary.json").exists() for n in names), sorted(os.listdir(root))
    records = [json.loads(p.read_text()) for p in (root / "runs").glob("*.json")]
    assert records and all(rec["history"][-1]["step"] <= 2 for rec in records if rec.get("history"))
    assert all(rec["steps_done"] <= 2 for rec in records if "steps_done" in rec)
    # a full pre-training run's model, with its tokenizer, is the unit's artifact in the cache
    [ckpt] = [p / "model" for p in (tmp_path / "cache" / "gpu").glob("pld_pretraining__mlm__preln__*")]
    r = subprocess.run([*cmd[:4], "glue_finetune", *cmd[5:], "-p", f"checkpoint={ckpt}", "--force"],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert json.loads((root / "glue_finetune" / "summary.json").read_text())["checkpoint"] == str(ckpt)
    print(f"clipped gpu profile, all notebooks: {time.perf_counter() - t0:.0f}s")
