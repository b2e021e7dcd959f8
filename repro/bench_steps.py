"""The benchmark's step cases (`repro.bench`): dense PreLN / PostLN MLM steps, transformers'
BertForMaskedLM, PLD's gated steps and EarlyBERT-sized tickets, each one training step on a fixed
synthetic batch, timed in turns; the ratios of their times against their analytic FLOPs.
"""
from __future__ import annotations

import platform
import statistics
from dataclasses import asdict, dataclass

import torch

from .analysis import timed
from .earlybert import draw_masks, prune, random_masks
from .flops import flops_per_step
from .model import Bert
from .pld import PLD
from .train import TrainConfig, build_optimizer


@dataclass(frozen=True)
class BenchSize:
    layers: int
    hidden: int
    heads: int
    intermediate: int
    seq_len: int
    batch: int
    steps: int  # timed steps per repetition
    reps: int
    warmup: int
    vocab: int = 30522


SIZES = {
    "smoke": BenchSize(2, 64, 4, 256, 32, 4, steps=2, reps=2, warmup=1, vocab=1000),
    "cpu": BenchSize(4, 256, 4, 1024, 128, 16, steps=8, reps=7, warmup=2),
    "gpu": BenchSize(12, 768, 12, 3072, 128, 64, steps=10, reps=7, warmup=5),
    # BERT-base shapes on a CPU (a few minutes): do the ratios move towards the ideal when the
    # matrix products dominate the fixed costs (embeddings, LayerNorm, dropout, optimizer)?
    "cpu_base": BenchSize(12, 768, 12, 3072, 128, 8, steps=2, reps=6, warmup=1),
}

MLM_FRACTION = 0.15


# dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from NVIDIA's spec sheets; the first
# name found in torch.cuda.get_device_name wins, so the specific variants come first
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "GH200": 989.0, "H100": 989.0, "H200": 989.0,
                    "B200": 2250.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def spec_peak_tflops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)


def matmul_peak_tflops(device, amp: bool, reps: int = 5) -> float:
    """The best of a few square matmuls (8192 in bf16 on CUDA, 2048 in fp32 otherwise): what
    this device and precision really reach on the kernel that dominates BERT."""
    n, dtype = (8192, torch.bfloat16) if amp else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    best = min(timed(device, lambda: a @ b) for _ in range(reps + 1))  # the first warms up
    return 2 * n ** 3 / best / 1e12


def _batch(size: BenchSize, device, cls: bool = False, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000 if size.vocab > 2000 else 5, size.vocab, (size.batch, size.seq_len), generator=g)
    b = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if cls:
        b["labels"] = torch.randint(0, 2, (size.batch,), generator=g)
    else:
        chosen = torch.rand(ids.shape, generator=g) < MLM_FRACTION
        b["labels"] = torch.where(chosen, ids, torch.full_like(ids, -100))
    return {k: v.to(device) for k, v in b.items()}


class Case:
    """One training step, repeatable: model, optimizer, a fixed batch, optional gate sequence."""

    def __init__(self, name, model, batch, device, flops, gates=None, amp=False):
        self.name, self.model, self.batch, self.flops, self.gates = name, model.to(device), batch, flops, gates
        self.opt = build_optimizer(self.model, TrainConfig(max_steps=1, lr=1e-5), device)
        self.device, self.times, self.i = device, [], 0
        self.amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def step(self):
        kw = {}
        if self.gates is not None:
            kw["gates"] = self.gates[self.i % len(self.gates)]
            self.i += 1
        with self.amp:
            out = self.model(**self.batch, **kw)
            loss = out["loss"] if isinstance(out, dict) else out.loss
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def run(self, steps: int) -> float:
        # One untimed step first: the case before this one freed its memory and the allocator
        # gave it back to the OS, so this case's first step pays page faults that a training loop,
        # step after step of one model, never does (measured: up to +15% on a BERT-base step after
        # a ticket step on CPU, which inflated every saving measured against the slower case).
        self.step()
        self.i = 0  # every repetition replays the same gates
        return timed(self.device, self.step, steps)


def _ours(size: BenchSize, ln: str, head: str = "mlm", **kw) -> Bert:
    torch.manual_seed(0)
    return Bert.from_config(layers=size.layers, hidden=size.hidden, heads=size.heads,
                            intermediate=size.intermediate, vocab_size=size.vocab, ln=ln, head=head, **kw)


def _hf(size: BenchSize):
    from transformers import BertConfig as HFConfig, BertForMaskedLM
    torch.manual_seed(0)
    return BertForMaskedLM(HFConfig(vocab_size=size.vocab, hidden_size=size.hidden, num_hidden_layers=size.layers,
                                    num_attention_heads=size.heads, intermediate_size=size.intermediate,
                                    attn_implementation="sdpa"))


def _step_flops(model: Bert, size: BenchSize, gates=None, head_tokens: float | None = None) -> float:
    head = head_tokens if head_tokens is not None else MLM_FRACTION if model.config.head == "mlm" else 1.0
    return flops_per_step(model.config, size.seq_len, size.batch, gates, head)


def build_cases(size: BenchSize, device, amp: bool, theta: float = 0.5, seed: int = 0) -> dict[str, Case]:
    mlm, cls = _batch(size, device), _batch(size, device, cls=True)
    cases = {}

    def add(name, model, batch, gates=None, flops=None):
        cases[name] = Case(name, model, batch, device, flops, gates, amp)

    # the order is the round's order: each case sits next to the one it is compared with
    pre = _ours(size, "pre")
    add("dense_pre", pre, mlm, flops=_step_flops(pre, size))
    # PLD at theta: the gates PLD.gates draws (the paper's keep probabilities, 1/p_i scales) once
    # theta has decayed to theta_bar = theta; with gamma = 100, exp(-100 t) vanishes from step 1
    hook = PLD(theta_bar=theta, gamma=100.0, seed=seed)
    gates = [hook.gates(1 + i, 0, size.layers) for i in range(size.steps)]
    pld = _ours(size, "pre")
    add("pld", pld, mlm, gates=gates,
        flops=statistics.fmean(_step_flops(pld, size, gt) for gt in gates))
    # an EarlyBERT-sized ticket: 1/3 of the heads and 40% of the neurons of every layer, at
    # random positions (speed only needs sizes). Layerwise, because a global ranking of the
    # untrained coefficients (all 1.0, ties by index) would empty the first layers.
    dense_slim = _ours(size, "pre", slimming=True)
    heads, ffn = random_masks(*draw_masks(dense_slim, ffn_scope="layer"), seed=seed)
    ticket = prune(dense_slim, heads, ffn)
    add("ticket_mlm", ticket, mlm, flops=_step_flops(ticket, size))
    post = _ours(size, "post")
    add("dense_post", post, mlm, flops=_step_flops(post, size))
    # BertForMaskedLM computes logits at every position, so its head costs 1/0.15 of ours
    add("hf_mlm", _hf(size), mlm, flops=_step_flops(post, size, head_tokens=1.0))
    dense_cls = _ours(size, "pre", head="cls")
    add("dense_cls", dense_cls, cls, flops=_step_flops(dense_cls, size))
    ticket_cls = prune(_ours(size, "pre", head="cls", slimming=True), heads, ffn)
    add("ticket_cls", ticket_cls, cls, flops=_step_flops(ticket_cls, size))
    return cases


def run_steps(size: BenchSize, dev, theta: float = 0.5, compile: bool = False,
              peak_tflops: float | None = None) -> dict:
    """The seven step cases on synthetic batches (the module's doc)."""
    amp = dev.type == "cuda"
    cases = build_cases(size, dev, amp, theta)
    if compile:
        for c in cases.values():
            c.model = torch.compile(c.model)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for c in cases.values():  # warm-up (and, on CUDA, each case's peak memory)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        c.run(size.warmup)
        c.peak_mem = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
    order = list(cases.values())
    for r in range(size.reps):  # round-robin, every other round backwards: a drift cancels out
        for c in order if r % 2 == 0 else order[::-1]:
            c.times.append(c.run(size.steps) / size.steps)
    rows = {}
    for name, c in cases.items():
        t = statistics.median(c.times)
        rows[name] = {"step_s": t, "tokens_per_s": size.batch * size.seq_len / t,
                      "train_flops_per_step": c.flops, "achieved_tflops": c.flops / t / 1e12,
                      "peak_mem_bytes": c.peak_mem, "params": sum(p.numel() for p in c.model.parameters()),
                      "times_s": c.times}

    def flop_saving(a, b):
        return 1 - cases[a].flops / cases[b].flops

    def time_saving(a, b):  # per repetition, then the median: the pair ran back to back
        return statistics.median(1 - ta / tb for ta, tb in zip(cases[a].times, cases[b].times))

    def spread(a, b):  # the efficiency's range over repetitions: how much to trust one run
        f = flop_saving(a, b)
        r = [(1 - ta / tb) / f for ta, tb in zip(cases[a].times, cases[b].times)]
        return [min(r), max(r)]
    pld_time, pld_flops = time_saving("pld", "dense_pre"), flop_saving("pld", "dense_pre")
    t_time, t_flops = time_saving("ticket_mlm", "dense_pre"), flop_saving("ticket_mlm", "dense_pre")
    c_time, c_flops = time_saving("ticket_cls", "dense_cls"), flop_saving("ticket_cls", "dense_cls")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    peak = peak_tflops or (spec_peak_tflops(name) if amp else None)
    mm_peak = matmul_peak_tflops(dev, amp)
    achieved = rows["dense_pre"]["achieved_tflops"]
    return {
        "pld_efficiency": pld_time / pld_flops,
        "ticket_efficiency": t_time / t_flops,
        "ticket_cls_efficiency": c_time / c_flops,
        "hf_speedup": statistics.median(h / p for h, p in zip(cases["hf_mlm"].times, cases["dense_post"].times)),
        "spread": {"pld_efficiency": spread("pld", "dense_pre"), "ticket_efficiency": spread("ticket_mlm", "dense_pre"),
                   "ticket_cls_efficiency": spread("ticket_cls", "dense_cls")},
        "savings": {"pld_time": pld_time, "pld_flops": pld_flops, "ticket_mlm_time": t_time,
                    "ticket_mlm_flops": t_flops, "ticket_cls_time": c_time, "ticket_cls_flops": c_flops},
        "mfu": achieved / peak if peak else None, "peak_tflops": peak,
        "peak_source": "--peak-tflops" if peak_tflops else ("spec sheet, bf16 dense" if peak else None),
        "matmul_mfu": achieved / mm_peak, "matmul_peak_tflops": mm_peak,
        "targets": {"pld_efficiency": 0.95, "ticket_efficiency": 0.9, "hf_speedup": 1.5, "mfu": 0.40},
        "cases": rows, "size": asdict(size), "theta": theta, "compile": compile,
        "precision": "bf16 autocast" if amp else "fp32",
    }
