"""A checkpoint folder's weights as our parameter names: safetensors or PyTorch's .bin, and Hugging
Face BERT's names mapped to `repro.model.Bert`'s (query, key and value fused into one projection).
`Bert.from_pretrained` reads a checkpoint through these.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file
        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").exists():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} has config.json but no model.safetensors or pytorch_model.bin")


_HF_NAMES = [  # Hugging Face BERT parameter names -> ours ({i} = layer)
    (r"embeddings\.word_embeddings\.", "emb.word."),
    (r"embeddings\.position_embeddings\.", "emb.position."),
    (r"embeddings\.token_type_embeddings\.", "emb.token_type."),
    (r"embeddings\.LayerNorm\.", "emb.ln."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.out."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"blocks.\1.ln1."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.ffn.fc1."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.ffn.fc2."),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"blocks.\1.ln2."),
    (r"pooler\.dense\.", "pooler."),
    (r"cls\.predictions\.transform\.dense\.", "mlm.dense."),
    (r"cls\.predictions\.transform\.LayerNorm\.", "mlm.ln."),
    (r"cls\.predictions\.bias", "mlm.bias"),
]


def _convert_hf_state(sd: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    sd = {re.sub(r"^(bert|model)\.", "", k).replace(".gamma", ".weight").replace(".beta", ".bias"): v
          for k, v in sd.items()}
    out = {}
    for k, v in sd.items():
        for pat, rep in _HF_NAMES:
            if re.match(pat, k):
                out[re.sub(pat, rep, k)] = v
                break
    for i in range(layers):  # fuse query/key/value into one projection (one matmul, not three)
        for kind in ("weight", "bias"):
            names = [f"encoder.layer.{i}.attention.self.{n}.{kind}" for n in ("query", "key", "value")]
            if all(n in sd for n in names):
                out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([sd[n] for n in names], 0)
    return out
