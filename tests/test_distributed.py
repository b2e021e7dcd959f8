"""Data parallelism through torchrun: 2 CPU processes (gloo) equal 1 process, same global batch."""
import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(args, out, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update({"OMP_NUM_THREADS": "1", **(env_extra or {})})
    subprocess.run([sys.executable, *args, str(WORKER), str(out)], check=True, env=env, timeout=300,
                   capture_output=True)
    return torch.load(out, weights_only=False)


def test_two_processes_equal_one(tmp_path):
    single = _run([], tmp_path / "single.pt")
    double = _run(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"],
                  tmp_path / "ddp.pt")
    assert single["world"] == 1 and double["world"] == 2
    # PLD: the same gates on every rank and as one process; the same losses
    assert double["pld_gates"] == single["pld_gates"] and "0" in "".join(single["pld_gates"])
    torch.testing.assert_close(double["pld_loss"], single["pld_loss"], rtol=1e-5, atol=1e-5)
    # EarlyBERT: same coefficients, so the same ticket, and the pruned model trains the same
    for a, b in zip(double["coefs"], single["coefs"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(double["heads"] + double["ffn"], single["heads"] + single["ffn"]))
    torch.testing.assert_close(double["ticket_loss"], single["ticket_loss"], rtol=1e-5, atol=1e-5)
    for k, v in single["ticket_state"].items():
        torch.testing.assert_close(double["ticket_state"][k], v, rtol=1e-4, atol=1e-5)
