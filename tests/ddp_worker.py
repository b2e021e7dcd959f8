"""Run by tests/test_distributed.py: once as a plain process, once under torchrun with 2 CPU
processes (gloo). Both must end with the same numbers: same global batch, same data, masks and
PLD gates, gradients averaged by DistributedDataParallel."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conftest import tiny_mlm_data  # noqa: E402
from repro.data import Collator  # noqa: E402
from repro.earlybert import Slimming, draw_masks, prune  # noqa: E402
from repro.model import Bert  # noqa: E402
from repro.pld import PLD  # noqa: E402
from repro.runtime import distributed  # noqa: E402
from repro.train import TrainConfig, train  # noqa: E402


def model(**kw):
    torch.manual_seed(0)
    return Bert.from_config(layers=3, hidden=32, heads=4, intermediate=64, vocab_size=500, ln="pre",
                            head="mlm", dropout=0.0, attn_dropout=0.0, **kw)


def main(out_file):
    data, _ = tiny_mlm_data(n=64)
    # BERT's masking picks the same number of tokens in every row, so each rank's mean loss
    # averages to the global batch's mean (a per-token coin flip would not)
    collate = Collator(mlm=True, mask_id=3, vocab_size=500, special_ids=(0,))
    cfg = dict(batch_size=8, grad_accum=2, lr=3e-3, progress=False, log_every=1)
    pld = PLD(theta_bar=0.5, gamma=0.2, seed=3)
    r = train(model(), data, collate, TrainConfig(max_steps=6, **cfg), hooks=[pld])
    pld_loss = [h["loss"] for h in r.history]
    search = Slimming(lambda_head=1e-2, lambda_ffn=1e-2)
    m = model(slimming=True)
    train(m, data, collate, TrainConfig(max_steps=4, **cfg), hooks=[search])
    heads, ffn = draw_masks(m, head_ratio=0.25, ffn_ratio=0.4)
    ticket = prune(m, heads, ffn)
    r2 = train(ticket, data, collate, TrainConfig(max_steps=3, **cfg))
    rank, world = distributed()
    if rank == 0:
        torch.save({"world": world, "pld_loss": pld_loss, "pld_gates": pld.record,
                    "coefs": [c.detach().clone() for c in m.coefficients()[0] + m.coefficients()[1]],
                    "heads": heads, "ffn": ffn, "ticket_loss": [h["loss"] for h in r2.history],
                    "ticket_state": {k: v.detach().clone() for k, v in ticket.state_dict().items()}}, out_file)


if __name__ == "__main__":
    main(sys.argv[1])
