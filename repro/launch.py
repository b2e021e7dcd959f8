"""Pre-training outside a notebook, for several GPUs or nodes through torchrun / accelerate.

    torchrun --nproc_per_node 8 -m repro.launch --profile paper --method preln_pld --lr 1e-3 --out runs/pld
    accelerate launch --num_processes 8 -m repro.launch --profile paper --method postln --lr 1e-4 --out runs/base

The same routine as a `pld_pretraining` run (repro.tasks.pretrain_mlm with the method's block, the
PLD recipe's schedule and the PLD hook; the rate is yours: the notebook's pilot finds each method's
best); the loop wraps the model in DDP by itself. The
profile's `pretrain_batch` is the global batch per micro-step (split across processes) and
`grad_accum` micro-steps make one optimizer step. Rank 0 writes the checkpoint (resumable: run
the same command again), the final model and one row in the results store.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import pld, pld_runs, results
from .control import Control
from .profiles import PROFILES, get_profile
from .runtime import distributed
from .sources import load_tokenizer
from .tasks import corpus_data, pretrain_mlm, scratch_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m repro.launch", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="paper", choices=list(PROFILES))
    ap.add_argument("--method", default="preln_pld", choices=list(pld_runs.ARCHS))
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the profile's pretrain_lr)")
    ap.add_argument("--out", required=True, help="folder for the checkpoint and the final model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--tokenizer", default="minilm", help="a folder or hub id with a BERT WordPiece tokenizer")
    ap.add_argument("--checkpoint-every", type=int, default=1000)
    args = ap.parse_args(argv)
    settings = Control.from_environ()  # what the notebooks' Study reads: the checkpoint, clip, the folders

    P = get_profile(args.profile, pretrain_steps=args.steps, checkpoint=settings.checkpoint, clip=settings.clip,
                    clip_batch=settings.clip_batch)
    ln, use_pld = pld_runs.ARCHS[args.method]
    lr = args.lr or P.pretrain_lr
    rank, world = distributed()
    tokenizer = load_tokenizer(args.tokenizer)
    data = corpus_data(P, tokenizer, args.data_dir or settings.data_dir)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = scratch_model(P, tokenizer, ln=ln, seed=args.seed)
    # no per-micro-batch gate record at this scale: 200k steps x 16 micro-batches would fill the checkpoint
    hooks = [pld.PLD(seed=args.seed, gamma=pld.heuristic_gamma(P.pretrain_steps), record=False)] if use_pld else []
    out = Path(args.out)
    run = pretrain_mlm(model, P, args.seed, data=data, lr=lr, hooks=hooks, progress=rank == 0,
                       checkpoint_dir=str(out / "checkpoint"), checkpoint_every=args.checkpoint_every,
                       **pld.recipe_schedule(P.pretrain_steps))
    r = run["result"]
    if rank == 0:
        tokenizer.save_pretrained(model.save_pretrained(out / "model"))  # loadable as a checkpoint
        results.record(notebook="launch", profile=args.profile, task="mlm", method=args.method, seed=args.seed,
                       metrics=r.final_eval, times=r.times, status="diverged" if r.status == "diverged" else "ok",
                       config={"profile": P.to_dict(), "method": args.method, "lr": lr, "world_size": world},
                       root=settings.results_dir, execution=settings.execution)
        print(f"{args.method}: {r.status} after {r.steps} steps, {r.final_eval}, {r.times}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
