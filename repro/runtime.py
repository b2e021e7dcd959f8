"""Where a run computes and how reproducibly: the device, the data-parallel ranks (torchrun,
accelerate), and random streams keyed by integers (seed, stream, step, ...) rather than by
whatever ran before, with the length-grouped epoch order drawn from one. `repro.train`'s loop,
PLD's gates and the tasks' model init and dropout all draw from these.
"""
from __future__ import annotations

import random
from typing import Sequence

import torch
import torch.distributed as dist

from .control import ranks


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", ranks()[1])
        return torch.device("cpu")
    return torch.device(name)


def distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun/accelerate."""
    _, local_rank, world = ranks()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _mean_over_ranks(x: float, world: int, device: torch.device) -> float:
    if world == 1:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=device)  # nccl needs a CUDA tensor
    dist.all_reduce(t)
    return t.item() / world


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np
        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def keyed_seed(*keys: int) -> int:
    """A 63-bit seed that depends only on the integer keys (seed, stream, step, ...), the same in
    every process and Python version (numpy's SeedSequence mixes them; `hash` is CPython's)."""
    import numpy as np

    return int(np.random.SeedSequence([int(k) % 2**32 for k in keys]).generate_state(2, np.uint32)
               .astype(np.uint64) @ np.array([1, 2**32], dtype=np.uint64)) % 2**63


# Streams of _generator's keys after the seed: (seed, epoch) the epoch's permutation, 1 the
# collator (step, micro-batch), 2 predict, 3 mlm_loss, 4 PLD's gates (repro.pld), 5 model init and
# 6 dropout (repro.tasks, and repro.train's loop: _DROPOUT_STREAM), 7 length grouping.
_DROPOUT_STREAM = 6


GROUP_STREAM = 7

GROUP_MEGABATCH = 50  # batches per megabatch, as transformers' LengthGroupedSampler


def length_grouped_order(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                         megabatch: int = GROUP_MEGABATCH) -> list[int]:
    """One epoch's order of the indices of `lengths`, cut into consecutive batches of
    `batch_size` whose members have similar lengths.

    A random permutation is cut into megabatches of `megabatch` batches (fewer when the data
    holds less than 4 such megabatches, so that an epoch keeps some randomness); each megabatch
    is sorted by length (longest first; ties stay in random order) and cut into batches; the
    batches of the epoch are shuffled, the one holding the longest example goes first (a run that
    would run out of memory does so at once), and a short remainder batch, if any, goes last so
    that every other batch is full. Every index appears exactly once; the same generator state
    gives the same order.
    """
    n = len(lengths)
    if n == 0:
        return []
    mult = max(1, min(megabatch, n // (4 * batch_size)))
    size = mult * batch_size
    perm = torch.randperm(n, generator=generator).tolist()
    batches = []
    for start in range(0, n, size):
        chunk = sorted(perm[start:start + size], key=lambda i: -lengths[i])  # stable
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rest = batches.pop() if len(batches[-1]) < batch_size else None  # only the last can be short
    batches = [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]
    if batches:  # each batch is sorted, so its first member is its longest
        top = max(range(len(batches)), key=lambda k: lengths[batches[k][0]])
        batches[0], batches[top] = batches[top], batches[0]
    if rest:
        batches.append(rest)
    return [i for b in batches for i in b]


# Public in use (the loop, repro.pld and repro.evaluation draw from it) but private by name: a new
# name would change the recorded functions that call it (Loop._next_batch, PLD.gates, predict, ...)
# and its own key (train.py::_generator), staling the records that ran them.
def _generator(*keys: int) -> torch.Generator:
    # a generator whose stream depends only on the keys (seed, epoch, step, ...)
    g = torch.Generator()
    g.manual_seed(keyed_seed(*keys))
    return g
