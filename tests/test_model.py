import pytest
import torch

from repro.flops import flops_per_token
from repro.model import Bert, BertConfig

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "A short one.",
             "Who wrote On the Origin of Species, published in 1859?"]


def test_matches_transformers_on_real_checkpoint(minilm_dir, tokenizer):
    from transformers import BertModel
    ours = Bert.from_pretrained(minilm_dir).eval()
    hf = BertModel.from_pretrained(minilm_dir).eval()
    b = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        a = ours(b["input_ids"], b["attention_mask"], b["token_type_ids"])
        r = hf(**b).last_hidden_state
    assert a.shape == r.shape == (3, b["input_ids"].shape[1], 384)
    real = b["attention_mask"].bool()  # padded positions carry no meaning in either model
    assert (a - r)[real].abs().max() < 1e-5
    assert ours.load_report["missing"] == []


def test_hub_name_minilm_and_bad_folder(tmp_path):
    m = Bert.from_pretrained("minilm", head="cls", num_labels=3)
    assert m.classifier.out_features == 3 and "classifier.weight" in m.load_report["missing"]
    with pytest.raises(FileNotFoundError, match="not a BERT checkpoint"):
        Bert.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="PostLN"):
        Bert.from_pretrained("minilm", ln="pre")


def small(**kw):
    torch.manual_seed(0)
    base = dict(layers=3, hidden=32, heads=4, intermediate=64, vocab_size=100, dropout=0.0, attn_dropout=0.0)
    return Bert.from_config(**{**base, **kw})


def test_preln_has_final_ln_and_differs_from_postln():
    ids = torch.randint(0, 100, (2, 7))
    pre, post = small(ln="pre"), small(ln="post")
    assert pre.final_ln is not None and post.final_ln is None
    assert not torch.allclose(pre(ids), post(ids))


@pytest.mark.parametrize("ln", ["pre", "post"])
def test_padding_does_not_change_real_tokens(ln):
    m = small(ln=ln).eval()
    ids = torch.randint(1, 100, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    assert torch.allclose(m(ids)[0], m(padded, mask)[0, :6], atol=1e-5)


def test_mlm_logits_only_at_masked_positions():
    m = small(head="mlm")
    ids = torch.randint(0, 100, (4, 10))
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[2, 5], labels[3, 0] = 7, 8, 9
    out = m(ids, labels=labels)
    assert out["logits"].shape == (3, 100)  # never [batch, seq, vocab]
    assert out["labels"].tolist() == [7, 8, 9] and torch.isfinite(out["loss"])
    assert m.mlm.word.weight is m.emb.word.weight  # tied decoder


def test_heads_cls_regression_qa():
    ids = torch.randint(0, 100, (2, 9))
    out = small(head="cls", num_labels=3)(ids, labels=torch.tensor([0, 2]))
    assert out["logits"].shape == (2, 3) and out["loss"] > 0
    out = small(head="cls", num_labels=1)(ids, labels=torch.tensor([0.5, 4.0]))
    assert out["logits"].shape == (2, 1) and out["loss"] > 0
    out = small(head="qa")(ids, start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4]))
    assert out["start_logits"].shape == (2, 9) and out["loss"] > 0


def test_dropped_gate_skips_block_and_scale_rescales_branches():
    m = small(ln="pre")
    calls = []
    for i, b in enumerate(m.blocks):
        b.register_forward_hook(lambda mod, inp, out, i=i: calls.append(i))
    ids = torch.randint(0, 100, (2, 5))
    m(ids, gates=[1.0, None, 1.0])
    assert calls == [0, 2]
    # gates of 1.0 everywhere are the ungated model
    assert torch.allclose(m(ids, gates=[1.0] * 3), m(ids))
    with pytest.raises(ValueError, match="gates"):
        m(ids, gates=[1.0])


def test_save_load_roundtrip_with_per_layer_shapes(tmp_path):
    m = small(head="mlm", ln="pre", slimming=True, heads_per_layer=[4, 2, 1], ffn_per_layer=[64, 10, 3]).eval()
    m.save_pretrained(tmp_path / "m")
    m2 = Bert.from_pretrained(tmp_path / "m").eval()
    assert m2.config == m.config
    ids = torch.randint(0, 100, (2, 5))
    assert torch.equal(m(ids)["logits"], m2(ids)["logits"])
    assert m2.blocks[2].attn.qkv.out_features == 3 * 1 * 8


def test_config_validation():
    with pytest.raises(ValueError, match="ln"):
        BertConfig(ln="middle")
    with pytest.raises(ValueError, match="at least one head"):
        BertConfig(layers=2, heads_per_layer=[1, 0])
    with pytest.raises(ValueError, match="unknown BertConfig"):
        BertConfig.from_dict({"hiden": 3})


def test_flops_count_dropped_and_pruned_parts_as_zero():
    c = BertConfig(layers=2, hidden=64, heads=4, intermediate=256)
    full = flops_per_token(c, 128)
    # per block: qkv 2*64*192, out 2*64*64, QK^T + PV 2*2*128*64, FFN 2*2*64*256
    assert full["per_block"][0] == 2 * 64 * 192 + 2 * 64 * 64 + 4 * 128 * 64 + 4 * 64 * 256
    assert flops_per_token(c, 128, gates=[1.0, None])["blocks"] == full["blocks"] / 2
    pruned = BertConfig(layers=2, hidden=64, heads=4, intermediate=256, heads_per_layer=[2, 2], ffn_per_layer=[128, 128])
    assert flops_per_token(pruned, 128)["blocks"] == pytest.approx(full["blocks"] / 2)


def test_pooling_choices_save_load_prune_and_the_loading_rule(tmp_path, minilm_dir):
    from repro.earlybert import draw_masks, prune
    from repro.model import checkpoint_pooling
    torch.manual_seed(0)
    ids = torch.randint(5, 100, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    m = Bert.from_config(layers=1, hidden=16, heads=2, intermediate=32, vocab_size=100, head="cls", pooling="mean",
                         slimming=True)
    m.eval()
    h = m.encode(ids, mask)
    torch.testing.assert_close(m.pool(h, mask)[1], h[1, :3].mean(0))  # padding does not count
    pad_mask = torch.tensor([[1, 1, 1] + [0] * 5])
    padded = m.pool(m.encode(torch.cat([ids[1:, :3], torch.full((1, 5), 7)], 1), pad_mask), pad_mask)
    torch.testing.assert_close(padded[0], m.pool(m.encode(ids[1:, :3]))[0], atol=1e-5, rtol=0)
    assert m.pooler is None and Bert.from_config(layers=1, hidden=16, heads=2, intermediate=32, vocab_size=100,
                                                 head="cls", pooling="cls").pool(h)[0].equal(h[0, 0])
    m.save_pretrained(tmp_path / "m")
    assert Bert.from_pretrained(str(tmp_path / "m")).config.pooling == "mean"
    assert prune(m, *draw_masks(m)).config.pooling == "mean"
    assert checkpoint_pooling(minilm_dir) == "mean"  # sentence-transformers: its 1_Pooling config
    assert checkpoint_pooling(tmp_path / "m") == "pooler"  # any other BERT folder: BERT's pooler
    assert Bert.from_pretrained("minilm", head="cls", pooling="cls").config.pooling == "cls"
    with pytest.raises(ValueError, match="pooling must be one of"):
        Bert.from_config(layers=1, hidden=16, heads=2, intermediate=32, vocab_size=100, head="cls", pooling="max")
