"""One BERT encoder for the whole study.

- `ln="post"` is the original BERT block, x = LN(x + F(x)); `ln="pre"` is PreLN, x = x + F(LN(x)),
  with a final LayerNorm after the last block (PLD's backbone). One code path, one flag.
- Attention goes through torch's scaled_dot_product_attention (fused kernels on CPU and GPU).
- PLD: `forward(..., gates=[s_0, ..., s_{L-1}])`, s_i = None drops block i (it is never called,
  so no graph and no gradient), a float s_i runs it with both residual branches scaled by s_i
  (PLD uses s_i = 1/p_i). `gates=None` runs every block unscaled (evaluation, fine-tuning).
- EarlyBERT: with `config.slimming` each attention head and each FFN neuron carries a learnable
  coefficient (initialised to 1) multiplying that head's attention output / that neuron's
  activation. Heads and neurons per layer may differ layer to layer (`heads_per_layer`,
  `ffn_per_layer`) so a physically pruned model is just a smaller config.
- Task heads: MLM (logits only at masked positions), sequence classification / regression
  (GLUE), span extraction (SQuAD). With no head the model returns the last hidden states.
- `Bert.from_pretrained` reads any Hugging Face BERT checkpoint (safetensors or .bin, through
  `repro.weights`) or one of our own saved models; `save_pretrained` writes ours.
- FLOPs per token and per step of a config: `repro.flops`.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import _convert_hf_state, _read_weights

log = logging.getLogger(__name__)
HEADS = (None, "mlm", "cls", "qa")
POOLINGS = ("pooler", "cls", "mean")


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    max_position: int = 512
    type_vocab: int = 2
    ln: str = "post"  # "post" (original BERT) | "pre" (PreLN, PLD's backbone)
    eps: float = 1e-12
    dropout: float = 0.1
    attn_dropout: float = 0.1
    init_range: float = 0.02
    pad_token_id: int = 0
    head: str | None = None  # None | "mlm" | "cls" | "qa"
    num_labels: int = 2  # "cls" head: 1 means regression (STS-B)
    # what the "cls" head reads: "pooler" tanh(W h_CLS) (BERT's), "cls" h_CLS, "mean" mean of
    # the real tokens' states (what a sentence-transformers checkpoint was trained to give)
    pooling: str = "pooler"
    slimming: bool = False  # EarlyBERT coefficients on heads and FFN neurons
    # a pruned model: per-layer counts (None = every layer has `heads` / `intermediate`)
    heads_per_layer: list[int] | None = None
    ffn_per_layer: list[int] | None = None
    head_dim: int = 0  # 0 = hidden // heads; fixed at construction so pruning keeps it

    def __post_init__(self):
        if self.ln not in ("post", "pre"):
            raise ValueError(f"ln must be 'post' or 'pre', got {self.ln!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not self.head_dim:
            if self.hidden % self.heads:
                raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
            self.head_dim = self.hidden // self.heads
        self.heads_per_layer = list(self.heads_per_layer or [self.heads] * self.layers)
        self.ffn_per_layer = list(self.ffn_per_layer or [self.intermediate] * self.layers)
        if len(self.heads_per_layer) != self.layers or len(self.ffn_per_layer) != self.layers:
            raise ValueError("heads_per_layer and ffn_per_layer need one entry per layer")
        if min(self.heads_per_layer) < 1 or min(self.ffn_per_layer) < 1:
            raise ValueError("every layer must keep at least one head and one FFN neuron")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BertConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown BertConfig fields {sorted(unknown)}")
        return cls(**d)


class Embeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word = nn.Embedding(c.vocab_size, c.hidden, padding_idx=c.pad_token_id)
        self.position = nn.Embedding(c.max_position, c.hidden)
        self.token_type = nn.Embedding(c.type_vocab, c.hidden)
        self.ln = nn.LayerNorm(c.hidden, eps=c.eps)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, input_ids, token_type_ids=None):
        S = input_ids.shape[1]
        x = self.word(input_ids) + self.position.weight[:S]
        if token_type_ids is None:
            x = x + self.token_type.weight[0]
        else:
            x = x + self.token_type(token_type_ids)
        return self.drop(self.ln(x))


class Attention(nn.Module):
    def __init__(self, c: BertConfig, n_heads: int):
        super().__init__()
        self.n_heads, self.head_dim, self.p_drop = n_heads, c.head_dim, c.attn_dropout
        inner = n_heads * c.head_dim
        # rows of qkv: [q_head0 .. q_headN | k_head0 .. | v_head0 ..], head_dim rows per head
        self.qkv = nn.Linear(c.hidden, 3 * inner)
        self.out = nn.Linear(inner, c.hidden)
        self.head_coef = nn.Parameter(torch.ones(n_heads)) if c.slimming else None

    def forward(self, x, mask):
        B, S, _ = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.p_drop if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, S, -1)
        if self.head_coef is None:
            return self.out(y)
        # EarlyBERT scales head h's attention probabilities by c_h: (c_h P V) W_o = P V (c_h W_o),
        # so c_h scales head h's columns of the output projection instead. Same product, keeps the
        # fused attention kernel, and touches hidden x inner weights, not tokens x inner activations.
        c = self.head_coef.repeat_interleave(self.head_dim)
        return F.linear(y, self.out.weight * c, self.out.bias)


class FFN(nn.Module):
    def __init__(self, c: BertConfig, n_neurons: int):
        super().__init__()
        self.fc1 = nn.Linear(c.hidden, n_neurons)
        self.fc2 = nn.Linear(n_neurons, c.hidden)
        self.coef = nn.Parameter(torch.ones(n_neurons)) if c.slimming else None

    def forward(self, x):
        h = F.gelu(self.fc1(x))
        if self.coef is None:
            return self.fc2(h)
        # EarlyBERT: one coefficient per intermediate neuron, after GELU: fc2(c * h) = (W2 c) h,
        # so c scales fc2's columns (hidden x n weights) rather than the tokens x n activations
        return F.linear(h, self.fc2.weight * self.coef, self.fc2.bias)


class Block(nn.Module):
    def __init__(self, c: BertConfig, i: int):
        super().__init__()
        self.pre = c.ln == "pre"
        self.attn = Attention(c, c.heads_per_layer[i])
        self.ffn = FFN(c, c.ffn_per_layer[i])
        self.ln1 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.ln2 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, mask, scale: float = 1.0):
        if self.pre:  # PreLN: h = x + s * Attn(LN(x)); out = h + s * FFN(LN(h))
            h = x + scale * self.drop(self.attn(self.ln1(x), mask))
            return h + scale * self.drop(self.ffn(self.ln2(h)))
        # PostLN: h = LN(x + Attn(x)); out = LN(h + FFN(h))
        h = self.ln1(x + scale * self.drop(self.attn(x, mask)))
        return self.ln2(h + scale * self.drop(self.ffn(h)))


class MLMHead(nn.Module):
    def __init__(self, c: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(c.hidden, c.hidden)
        self.ln = nn.LayerNorm(c.hidden, eps=c.eps)
        self.word = word_embeddings  # tied decoder, as in BERT
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))

    def forward(self, h):
        return F.linear(self.ln(F.gelu(self.dense(h))), self.word.weight, self.bias)


# From-scratch PreLN as the official PLD code builds it (DeepSpeedExamples bing_bert,
# nvidia/modelingpreln_layerdrop.py l.816-834, flags l.490-491 and l.527-528): the attention-output
# and FFN-output projections start at std init_range / sqrt(2 L), "accounting for accumulation on
# the residual path"; its PostLN model draws every weight from N(0, init_range).
INITS = ("plain", "scaled")


def scale_residual_init(model: "Bert") -> "Bert":
    """Scale each block's attention-output and FFN-output weights by 1 / sqrt(2 L) in place: the
    N(0, init_range) draws become N(0, init_range / sqrt(2 L)), the same draws for one seed."""
    k = 1 / math.sqrt(2 * model.config.layers)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.out.weight.mul_(k)
            block.ffn.fc2.weight.mul_(k)
    return model


class Bert(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        c = self.config = config
        self.emb = Embeddings(c)
        self.blocks = nn.ModuleList(Block(c, i) for i in range(c.layers))
        self.final_ln = nn.LayerNorm(c.hidden, eps=c.eps) if c.ln == "pre" else None
        if c.head == "mlm":
            self.mlm = MLMHead(c, self.emb.word)
        elif c.head == "cls":
            self.pooler = nn.Linear(c.hidden, c.hidden) if c.pooling == "pooler" else None
            self.cls_drop = nn.Dropout(c.dropout)
            self.classifier = nn.Linear(c.hidden, c.num_labels)
        elif c.head == "qa":
            self.qa = nn.Linear(c.hidden, 2)
        self.apply(self._init)

    def _init(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.config.init_range)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # -- encoder --------------------------------------------------------------------------
    def encode(self, input_ids, attention_mask=None, token_type_ids=None, gates=None):
        """Last hidden states [batch, seq, hidden]. `gates`: see the module docstring."""
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask[:, None, None, :].bool()  # True = attend; None lets SDPA go fastest
        x = self.emb(input_ids, token_type_ids)
        if gates is not None and len(gates) != len(self.blocks):
            raise ValueError(f"got {len(gates)} gates for {len(self.blocks)} blocks")
        for i, block in enumerate(self.blocks):
            if gates is None:
                x = block(x, mask)
            elif gates[i] is not None:  # a dropped block (None) is never called
                x = block(x, mask, gates[i])
        return self.final_ln(x) if self.final_ln is not None else x

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                start_positions=None, end_positions=None, gates=None):
        h = self.encode(input_ids, attention_mask, token_type_ids, gates)
        head = self.config.head
        if head is None:
            return h
        if head == "mlm":
            if labels is None:
                return {"logits": self.mlm(h)}
            # logits only where a token was masked: [n_masked, vocab], never [B, S, vocab]
            sel = labels != -100
            logits = self.mlm(h[sel])
            target = labels[sel]
            return {"loss": F.cross_entropy(logits, target), "logits": logits, "labels": target}
        if head == "cls":
            pooled = self.pool(h, attention_mask)
            logits = self.classifier(self.cls_drop(pooled))
            out = {"logits": logits}
            if labels is not None:
                if self.config.num_labels == 1:
                    out["loss"] = F.mse_loss(logits.squeeze(-1), labels.float())
                else:
                    out["loss"] = F.cross_entropy(logits, labels)
            return out
        start, end = self.qa(h).unbind(-1)
        out = {"start_logits": start, "end_logits": end}
        if start_positions is not None:
            S = start.shape[1]
            out["loss"] = (F.cross_entropy(start, start_positions.clamp(0, S - 1))
                           + F.cross_entropy(end, end_positions.clamp(0, S - 1))) / 2
        return out

    def pool(self, h, attention_mask=None):
        """The sequence vector the "cls" head reads (config.pooling)."""
        if self.config.pooling == "pooler":
            return torch.tanh(self.pooler(h[:, 0]))
        if self.config.pooling == "cls":
            return h[:, 0]
        if attention_mask is None:
            return h.mean(1)
        m = attention_mask.unsqueeze(-1).to(h.dtype)  # padding does not count
        return (h * m).sum(1) / m.sum(1).clamp(min=1)

    # -- bookkeeping ---------------------------------------------------------------------
    def num_params(self, include_embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())  # tied weights are counted once
        if not include_embeddings:
            n -= sum(p.numel() for p in self.emb.parameters())
        return n

    def coefficients(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """EarlyBERT coefficients per layer: (head coefficients, FFN neuron coefficients)."""
        if not self.config.slimming:
            raise ValueError("model has no slimming coefficients: build it with slimming=True")
        return ([b.attn.head_coef for b in self.blocks], [b.ffn.coef for b in self.blocks])

    def save_pretrained(self, path) -> Path:
        from safetensors.torch import save_model
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"repro_bert": self.config.to_dict()}, indent=2))
        save_model(self, str(path / "model.safetensors"))  # handles the tied decoder
        return path

    @classmethod
    def from_config(cls, **kw) -> "Bert":
        """A randomly initialised model from a size, e.g. Bert.from_config(layers=4, hidden=256,
        heads=4, intermediate=1024, ln="pre", head="mlm") for pre-training from scratch."""
        return cls(BertConfig(**kw))

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str, ln: str = "post", head: str | None = None,
                        num_labels: int = 2, pooling: str | None = None, **overrides) -> "Bert":
        """Load a Hugging Face BERT checkpoint (folder or hub id) or one of our saved models.

        A Hugging Face checkpoint is PostLN BERT; asking for ln="pre" on one is refused since its
        weights were trained for the other block. Weights the checkpoint lacks (a fresh task
        head, an MLM head absent from a BertModel) keep their random initialisation.
        pooling=None picks what suits the checkpoint (see checkpoint_pooling); ours keep theirs.
        """
        folder = _resolve(path_or_hub_id)
        if pooling is not None:
            overrides["pooling"] = pooling
        cfg_file = folder / "config.json"
        if not cfg_file.exists():
            raise FileNotFoundError(f"{folder} is not a BERT checkpoint: it has no config.json")
        raw = json.loads(cfg_file.read_text())
        if "repro_bert" in raw:  # one of ours: shape (pruned or not) lives in its config
            from safetensors.torch import load_model
            d = dict(raw["repro_bert"])
            if head is not None or "head" not in d:
                d.update(head=head, num_labels=num_labels)
            d.update(overrides)
            model = cls(BertConfig.from_dict(d))
            load_model(model, str(folder / "model.safetensors"), strict=d["head"] == raw["repro_bert"]["head"])
            return model
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{folder}: model_type {raw.get('model_type')!r} is not 'bert'")
        if ln != "post":
            raise ValueError("Hugging Face BERT checkpoints are PostLN: load them with ln='post'")
        overrides.setdefault("pooling", checkpoint_pooling(folder))
        config = BertConfig(
            vocab_size=raw["vocab_size"], hidden=raw["hidden_size"], layers=raw["num_hidden_layers"],
            heads=raw["num_attention_heads"], intermediate=raw["intermediate_size"],
            max_position=raw.get("max_position_embeddings", 512), type_vocab=raw.get("type_vocab_size", 2),
            eps=raw.get("layer_norm_eps", 1e-12), dropout=raw.get("hidden_dropout_prob", 0.1),
            attn_dropout=raw.get("attention_probs_dropout_prob", 0.1),
            pad_token_id=raw.get("pad_token_id", 0) or 0, ln="post", head=head, num_labels=num_labels,
            **overrides)
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{folder}: hidden_act {raw['hidden_act']!r} is not supported (gelu only)")
        model = cls(config)
        state = _convert_hf_state(_read_weights(folder), config.layers)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("coef")]
        log.info("loaded %s; fresh: %s; unused: %s", folder, missing, unexpected)
        model.load_report = {"missing": missing, "unexpected": unexpected}
        return model


def checkpoint_pooling(folder: Path) -> str:
    """The pooling a Hugging Face checkpoint was trained with. A sentence-transformers folder says
    it in 1_Pooling/config.json (all-MiniLM-L6-v2: mean; its BERT pooler was never trained);
    any other BERT checkpoint is BERT's own: the pooler."""
    st = Path(folder) / "1_Pooling" / "config.json"
    if not st.exists():
        return "pooler"
    modes = json.loads(st.read_text())
    if modes.get("pooling_mode_mean_tokens"):
        return "mean"
    if modes.get("pooling_mode_cls_token"):
        return "cls"
    raise ValueError(f"{st}: pooling {modes} is not one of ours ({', '.join(POOLINGS)}); pass pooling= explicitly")


def _resolve(path_or_hub_id) -> Path:
    from .sources import checkpoint_folder  # a folder, "minilm", or a hub id; one clear error otherwise
    return checkpoint_folder(str(path_or_hub_id))
