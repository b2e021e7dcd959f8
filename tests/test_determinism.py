"""Same seed, same numbers: models, heads and training runs depend on the run's seed only, not on
the global RNG state that whatever ran before left behind. Timings are the only fields allowed to
differ between two runs."""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import FIXTURE_DATA_DIR, tiny_mlm_data

from repro import REPO_ROOT
from repro.profiles import get_profile
from repro.tasks import finetune_glue, glue_data, glue_model, pretrain_mlm, scratch_model

TIMINGS = {"compute", "data", "eval", "total"}  # seconds: the only fields two runs may disagree on

# Builds every kind of model the notebooks build, after scrambling the global RNG with the
# argument, and prints a digest of each model's weights.
BUILD = """
import hashlib, json, sys
import torch
torch.manual_seed(int(sys.argv[1])); torch.rand(int(sys.argv[1]) % 97 + 1)
from repro.profiles import get_profile
from repro.tasks import glue_model, scratch_model, squad_model

def digest(model):
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode()); h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()

class Vocab:
    def __len__(self):
        return 500

print(json.dumps({seed: {
    "glue MRPC": digest(glue_model("minilm", "MRPC", seed=seed)),
    "squad": digest(squad_model("minilm", seed=seed)),
    "scratch": digest(scratch_model(get_profile("smoke"), Vocab(), seed=seed)),
} for seed in (0, 1)}))
"""


def _build(global_seed: int) -> dict:
    out = subprocess.run([sys.executable, "-c", BUILD, str(global_seed)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_models_built_in_fresh_processes_depend_only_on_the_seed():
    a, b = _build(1), _build(2)  # two processes, two different global RNG states
    assert a == b
    assert all(a["1"][k] != a["0"][k] for k in a["0"]), "seed 1 built the same weights as seed 0"


def test_two_seeds_give_different_heads_and_building_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    h0 = glue_model("minilm", "MRPC", seed=0).classifier.weight
    h0_again = glue_model("minilm", "MRPC", seed=0).classifier.weight
    h1 = glue_model("minilm", "MRPC", seed=1).classifier.weight
    assert torch.equal(h0, h0_again) and not torch.equal(h0, h1)
    assert torch.equal(state, torch.get_rng_state())


def test_seed_is_explicit():
    with pytest.raises(TypeError, match="seed"):
        glue_model("minilm", "MRPC")  # noqa: the seed is required, never the global RNG's
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        glue_model("minilm", "MRPC", seed=-1)


def _without_timings(result) -> dict:
    return {"status": result.status, "steps": result.steps, "samples": result.samples, "tokens": result.tokens,
            "history": [{k: v for k, v in h.items() if k not in TIMINGS} for h in result.history],
            "evals": result.evals, "stop_reason": result.stop_reason}


def _weights_digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def glue_setup(tokenizer):
    P = get_profile("smoke", max_train_examples=16, max_eval_examples=8, finetune_seq_len=32, finetune_batch=8)
    return P, glue_data("MRPC", P, tokenizer, FIXTURE_DATA_DIR, seed=0)


def _finetune(P, data, tokenizer, seed, scramble):
    torch.manual_seed(scramble)  # whatever ran before left the global RNG somewhere else
    torch.rand(scramble)
    model = glue_model("minilm", "MRPC", seed=seed)
    run = finetune_glue(model, "MRPC", P, seed, tokenizer=tokenizer, data=data, steps=2, log_every=1,
                        progress=False)
    return run, model


def test_finetuning_twice_with_one_seed_gives_identical_losses_and_metrics(glue_setup, tokenizer):
    P, data = glue_setup
    a, model_a = _finetune(P, data, tokenizer, seed=0, scramble=11)
    b, model_b = _finetune(P, data, tokenizer, seed=0, scramble=12)
    assert _without_timings(a["result"]) == _without_timings(b["result"])
    assert a["metrics"] == b["metrics"] and set(a["metrics"]) == {"f1", "accuracy"}
    assert _weights_digest(model_a) == _weights_digest(model_b)


def test_pretraining_twice_with_one_seed_gives_identical_losses():
    class Vocab:
        def __len__(self):
            return 500

    train_ex, collate = tiny_mlm_data(n=64, seq=16)
    data = (train_ex, train_ex[:16], collate)
    P = get_profile("smoke")
    losses = []
    for scramble in (3, 4):
        torch.manual_seed(scramble)
        model = scratch_model(P, Vocab(), seed=0)
        r = pretrain_mlm(model, P, 0, data=data, steps=3, eval_every=0, valid_examples=16, log_every=1,
                         progress=False)
        losses.append((_without_timings(r["result"]), r["metrics"], _weights_digest(model)))
    assert losses[0] == losses[1]
