"""What a BERT's shape costs, counted analytically: forward FLOPs per token and training FLOPs per
step (the study's one FLOPs count: dropped blocks, pruned heads and neurons count zero), and the
weight multiply-adds that plan estimates compare model sizes by.
"""
from __future__ import annotations

from .model import BertConfig  # noqa: F401 (annotations)


def flops_per_token(config: BertConfig, seq_len: int, gates=None, head_tokens: float = 1.0) -> dict:
    """Forward matmul FLOPs per token (2 per multiply-add), counted analytically.

    Blocks dropped by `gates` (None entries) and heads/neurons pruned away (absent from the
    config) count zero. `head_tokens`: the fraction of tokens the task head runs on (0.15 for
    MLM, whose logits are computed at masked positions only). Training (fwd + bwd) is about 3x.
    """
    c, H = config, config.hidden
    per_block = []
    for i in range(c.layers):
        inner = c.heads_per_layer[i] * c.head_dim
        attn = 2 * H * 3 * inner + 2 * inner * H + 2 * 2 * seq_len * inner  # qkv, out, QK^T and PV
        ffn = 2 * 2 * H * c.ffn_per_layer[i]
        kept = gates is None or gates[i] is not None
        per_block.append((attn + ffn) if kept else 0)
    head = 0
    if c.head == "mlm":
        head = head_tokens * (2 * H * H + 2 * H * c.vocab_size)
    elif c.head == "cls":
        head = (2 * H * H + 2 * H * c.num_labels) / seq_len
    elif c.head == "qa":
        head = 2 * H * 2
    return {"blocks": float(sum(per_block)), "per_block": per_block, "head": float(head),
            "total": float(sum(per_block) + head)}


def flops_per_step(config: BertConfig, seq_len: int, batch_size: int, gates=None, head_tokens: float = 1.0) -> float:
    """Training FLOPs of one optimizer step of `batch_size` sequences of `seq_len` tokens: the
    analytic forward (`flops_per_token`; dropped blocks, pruned heads and neurons count zero)
    x 3 for forward + backward. The study's one FLOPs-per-step."""
    return 3 * flops_per_token(config, seq_len, gates, head_tokens)["total"] * seq_len * batch_size


def matmul_cost(layers: int, hidden: float, intermediate: float, heads_kept: float = 1.0) -> float:
    """Multiply-adds per token of a BERT's blocks' weight matrices (Q, K, V, out: 4 h^2, times the
    share of heads kept; FFN: 2 h x intermediate): what sizes compare by in plan estimates, not a
    FLOP count (flops_per_step)."""
    return layers * hidden * (4 * hidden * heads_kept + 2 * intermediate)
