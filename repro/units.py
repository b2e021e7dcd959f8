"""The study's training units: one function per kind of run, through `Study.unit`.

Each builds the unit's config from the values that decide its numbers (not the whole profile, so
that changing, say, the pre-training length does not invalidate every fine-tuning run), loads
data and builds the model only when the unit has to be trained, and returns the unit's record
(None when it is missing and was not trained: deadline, plan mode). Notebooks call these.
"""
from __future__ import annotations

import functools
import math
import time

import torch

from . import pld, pld_runs
from .analysis import paired_step_times
from .evaluation import unigram_mlm_loss
from .flops import matmul_cost
from .model import INITS, Bert, scale_residual_init
from .profiles import Profile
from .sources import load_tokenizer
from .study import Probe, Study
from .tasks import corpus_data, finetune_glue, glue_data, glue_model, pretrain_mlm, scratch_model
from .train import train_seconds


def resolved_pooling(checkpoint: str, pooling: str | None) -> str:
    """The pooling a fine-tuning run will use: the one asked for, else the checkpoint's own."""
    from .model import _resolve, checkpoint_pooling
    return pooling or checkpoint_pooling(_resolve(checkpoint))


def glue_config(task: str, P: Profile, *, lr: float | None = None, epochs: float | None = None,
                pooling: str | None = None, **extra) -> dict:
    """What decides a GLUE fine-tuning run's numbers (besides the seed and the code)."""
    return {"kind": "glue", "task": task, "checkpoint": P.checkpoint, "pooling": resolved_pooling(P.checkpoint, pooling),
            "seq_len": P.finetune_seq_len,
            "batch": P.finetune_batch, "lr": lr or P.finetune_lr, "epochs": epochs or P.finetune_epochs,
            "max_train_examples": P.max_train(task), "max_eval_examples": P.max_eval_examples,
            "grad_accum": P.grad_accum, **extra}


def glue_unit(study: Study, task: str, P: Profile, seed: int, *, tokenizer, method: str = "dense",
              data_dir=None, lr: float | None = None, epochs: float | None = None, pooling: str | None = None,
              notebook: str | None = None, checkpoint: str | None = None, checkpoint_id: str | None = None,
              needs=(), like: tuple | None = None, **train_kw) -> dict | None:
    """Dense fine-tuning of a checkpoint on one GLUE task (dev metrics, training curve): the
    profile's, or `checkpoint`, a model folder such as another unit's artifact. `checkpoint_id`
    names that model in the config (a folder's path differs between machines, the producing
    unit's key does not); `needs`: the units that produce it; `like`: its plan estimate
    meanwhile (Study.unit). `pooling`: see resolved_pooling (a model pre-trained here keeps the
    pooling it was saved with: BERT's pooler)."""
    own = checkpoint is not None or checkpoint_id is not None
    train_kw.setdefault("group_by_length", True)  # the study's fine-tuning default, recorded in the config
    config = glue_config(task, P, lr=lr, epochs=epochs, pooling=pooling or ("pooler" if own else None), **train_kw)
    if own:
        config["checkpoint"] = checkpoint_id or str(checkpoint)

    def run(u):
        data = glue_data(task, P, tokenizer, data_dir, seed)
        model = glue_model(str(checkpoint or P.checkpoint), task, seed=seed, pooling=config["pooling"])
        out = finetune_glue(model, task, P, seed, tokenizer=tokenizer, data=data,
                            lr=lr, epochs=epochs, progress=False, **u.train_kwargs(), **train_kw)
        r = out["result"]
        return {"metrics": out["metrics"] | {"train_loss": r.history[-1]["loss"]}, "times": r.times,
                "status": r.status, "history": r.history, "n_train": out["n_train"], "n_eval": out["n_eval"]}
    return study.unit(task=task, method=method, seed=seed, config=config, run=run, needs=needs, notebook=notebook,
                      like=like)


def zero_shot_unit(study: Study, task: str, P: Profile, *, method: str, tokenizer: str, checkpoint,
                   checkpoint_id: str, needs=(), data_dir=None) -> dict | None:
    """The zero-shot floor (repro.floors) of a model this study pre-trained, recorded: a scratch
    checkpoint lives in the study's cache, so the report could not compute it from a clean
    checkout. STS-B: floors.zero_shot_floor (Pearson of cos(mean-pooled a, mean-pooled b), dev set); other
    tasks have none (None, nothing recorded). `tokenizer`: the name the model was trained with;
    `checkpoint_id` names the model in the config as in glue_unit, `needs` its producing unit."""
    from .floors import zero_shot_floor
    from .metrics import glue_task_name, main_metric

    if glue_task_name(task) != "STS-B":
        return None
    config = {"kind": "zero_shot", "task": task, "checkpoint": checkpoint_id, "tokenizer": tokenizer,
              "pooling": "mean", "max_eval_examples": P.max_eval_examples}

    def run(u):
        t0 = time.perf_counter()
        score = zero_shot_floor(task, str(checkpoint), tokenizer, data_dir, P.max_eval_examples)
        return {"metrics": {main_metric(task): score}, "times": {"total": time.perf_counter() - t0}}
    return study.unit(task=task, method=f"{method}_zero_shot", seed=None, config=config, run=run, needs=needs)


def scratch_vs_checkpoint(P: Profile) -> float:
    """Fine-tuning cost of the profile's scratch model (pre-trained here) relative to its
    checkpoint's, by matmul_cost: glue_finetune's recorded times scaled to estimate pld_glue's runs."""
    import json

    from .sources import checkpoint_folder

    raw = json.loads((checkpoint_folder(P.checkpoint) / "config.json").read_text())
    return matmul_cost(P.layers, P.hidden, P.intermediate) / matmul_cost(
        raw["num_hidden_layers"], raw["hidden_size"], raw["intermediate_size"])


# -- the PLD pre-training comparison (pld_pretraining; pld_glue asks for the same units) --------
PLD_NOTEBOOK = "pld_pretraining"  # the notebook the pre-training units belong to, whoever asks


@functools.lru_cache(maxsize=1)
def _corpus(P: Profile, data_dir):
    """(train blocks, validation blocks, MLM collator), tokenised once per process."""
    return corpus_data(P, load_tokenizer("minilm"), data_dir, max_chars=P.pld_corpus_chars,
                       valid_chars=P.pld_corpus_chars)


def _model_config(P: Profile) -> dict:
    return {"layers": P.layers, "hidden": P.hidden, "heads": P.heads, "intermediate": P.intermediate,
            "seq_len": P.seq_len, "batch": P.pretrain_batch, "grad_accum": P.grad_accum, "tokenizer": "minilm"}


PRELN_INIT = "scaled"  # from-scratch PreLN models: the official PLD code's init (model.scale_residual_init)


def init_of(ln: str, preln_init: str = PRELN_INIT) -> str | None:
    """A from-scratch model's init in its unit's config: "scaled" for PreLN as the official code
    builds it; None (not hashed: the records made before keep their identity) for plain N(0, 0.02)."""
    if preln_init not in INITS:
        raise ValueError(f"preln_init must be one of {INITS}, got {preln_init!r}")
    return "scaled" if ln == "pre" and preln_init == "scaled" else None


def fresh_model(Q: Profile, tok, ln: str, seed: int, init: str | None) -> Bert:
    """scratch_model with the unit's init (init_of)."""
    model = scratch_model(Q, tok, ln=ln, seed=seed)
    return scale_residual_init(model) if init == "scaled" else model


def mlm_config(P: Profile, arch: str, lr: float | None, pld_kw: dict, pilot: bool = False) -> dict:
    """What decides an MLM pre-training run's numbers. A pilot is the first pld_pilot_steps of
    the full run's schedule (warm-up, decay and PLD's theta all span pretrain_steps), so it tests
    exactly the stretch where a too-large rate breaks a run."""
    steps, stop = P.pretrain_steps, P.pld_pilot_steps if pilot else 0
    if pilot and not 0 < stop < steps:
        raise ValueError(f"a pilot of {stop} steps must be shorter than a full run ({steps} steps): "
                         f"set pilot_steps below steps")
    every = max(1, (stop or steps) // (5 if pilot else 20))  # 5 (pilot) or 20 validation points
    every -= every % 10 if every >= 10 else 0  # a multiple of the logging interval (10)
    return {"kind": "mlm", "arch": pld_runs.check_arch(arch), **_model_config(P),
            "init": init_of(pld_runs.ARCHS[arch][0]), "steps": steps, "stop_at": stop,
            "lr": lr, **pld.recipe_schedule(steps), "eval_every": every, "valid_blocks": P.pld_valid_blocks,
            "corpus_chars": P.pld_corpus_chars, "pld": pld_kw if pld_runs.ARCHS[arch][1] else None}


def mlm_unit(study: Study, P: Profile, arch: str, lr: float | None, seed: int, *, pld_kw: dict,
             pilot: bool = False, needs=(), data_dir=None) -> dict | None:
    """One MLM pre-training run from scratch (PostLN, PreLN or PreLN + PLD) at peak rate `lr`.
    Its record: final validation loss, starting training loss, training seconds, time per sample,
    the validation curve (step, loss, training seconds so far), the training curve and, with PLD,
    the share of blocks computed. A full run's final model is the unit's artifact ("model")."""
    config = mlm_config(P, arch, lr, pld_kw, pilot)
    ln, use_pld = pld_runs.ARCHS[arch]

    def run(u):
        data = _corpus(P, data_dir)
        model = fresh_model(P, load_tokenizer("minilm"), ln, seed, config["init"])  # one seed's draws for every arch and rate
        hooks = [pld.PLD(**pld_kw, seed=seed)] if use_pld else []
        r = pretrain_mlm(model, P, seed, data=data, lr=lr, hooks=hooks, eval_every=config["eval_every"],
                         valid_examples=P.pld_valid_blocks, log_every=min(10, config["eval_every"]), progress=False,
                         stop_at=config["stop_at"], **pld.recipe_schedule(P.pretrain_steps), **u.train_kwargs())["result"]
        if not pilot:  # saved whatever happened (the record says whether it diverged), with its
            model.save_pretrained(u.cache / "model")  # tokenizer: the folder is a `checkpoint`
            load_tokenizer("minilm").save_pretrained(str(u.cache / "model"))
        seconds = {h["step"]: train_seconds(h) for h in r.history}
        ok = r.status != "diverged"
        extra = {}
        if use_pld:
            rve = hooks[0].realized_vs_expected(P.layers)
            extra["pld_compute"] = {"realized": rve["compute_realized"], "expected": rve["compute_expected"]}
        return {"metrics": {"val_loss": r.final_eval["val_loss"] if ok else math.nan, "start_loss": r.history[0]["loss"],
                            "train_seconds": train_seconds(r), "time_per_sample": train_seconds(r) / max(r.samples, 1)},
                "times": r.times, "status": "ok" if ok else "diverged", "steps_done": r.steps, "samples": r.samples,
                "curve": [{"step": e["step"], "val_loss": e["val_loss"], "seconds": seconds.get(e["step"])} for e in r.evals],
                "train_curve": [{"step": h["step"], "loss": h["loss"]} for h in r.history], **extra}
    # while a full run waits for the pilot, the plan scales the pilot's time by the steps
    like = None if pilot else (PLD_NOTEBOOK, arch, "mlm_pilot", steps_ratio(P))
    return study.unit(task="mlm_pilot" if pilot else "mlm", method=arch, seed=seed, config=config, run=run,
                      needs=needs, artifact=None if pilot else "model", notebook=PLD_NOTEBOOK, like=like)


def steps_ratio(P: Profile) -> float:
    """A full pre-training run's steps over a pilot's (plan estimates)."""
    return P.pretrain_steps / max(1, P.pld_pilot_steps or 1)


def unigram_unit(study: Study, P: Profile, *, data_dir=None) -> dict | None:
    """The unigram plateau: the validation MLM loss of predicting the training corpus' token
    frequencies (evaluation.unigram_mlm_loss), on the blocks and masks every run is scored on."""
    config = {"kind": "unigram_mlm_loss", "seq_len": P.seq_len, "tokenizer": "minilm",
              "valid_blocks": P.pld_valid_blocks, "corpus_chars": P.pld_corpus_chars}

    def run(u):
        t0 = time.perf_counter()
        train_ex, valid_ex, collate = _corpus(P, data_dir)
        loss = unigram_mlm_loss(train_ex, valid_ex[:P.pld_valid_blocks], collate)
        if u.probe_steps:  # plan mode: it just ran; its time is the estimate
            raise Probe(time.perf_counter() - t0, 1)
        return {"metrics": {"val_loss": loss}, "times": {"total": time.perf_counter() - t0, "eval": 0.0}}
    return study.unit(task="mlm", method="unigram", seed=None, config=config, run=run, notebook=PLD_NOTEBOOK)


def pld_timing_unit(study: Study, P: Profile, seed: int, *, pld_kw: dict, data_dir=None) -> dict | None:
    """Seconds per training step of a PreLN model, dense vs with PLD's gates, in adjacent pairs
    on one batch (analysis.paired_step_times): the gates of P.pld_timing_pairs steps spread
    evenly over a full run, so theta's whole schedule is represented."""
    pairs = P.pld_timing_pairs
    config = {"kind": "paired_step_times", **_model_config(P), "steps": P.pretrain_steps, "pld": pld_kw, "pairs": pairs,
              "init": init_of("pre")}

    def run(u):
        train_ex, _, collate = _corpus(P, data_dir)
        model = fresh_model(P, load_tokenizer("minilm"), "pre", seed, config["init"])
        hook = pld.PLD(**pld_kw, seed=seed)
        rows = [hook.gates(int(t), 0, P.layers) for t in torch.linspace(0, P.pretrain_steps - 1, pairs)]
        batch = collate(list(train_ex[:P.pretrain_batch]), generator=torch.Generator().manual_seed(seed))
        t0 = time.perf_counter()
        if u.probe_steps:  # plan mode: one dense step stands for each of the 2 x (pairs + 2) steps
            paired_step_times(model, batch, rows[:1], pairs=1, warmup=0)
            raise Probe((time.perf_counter() - t0) / 2, 2 * (pairs + 2))
        res = paired_step_times(model, batch, rows, pairs=pairs, clip=u.control.clip)
        return {"metrics": {"dense_s": res["dense_s"], "gated_s": res["gated_s"], "ratio": res["ratio"]},
                "times": {"total": time.perf_counter() - t0, "eval": 0.0}, "step_times": res["times"]}
    return study.unit(task="mlm", method="paired_step_times", seed=seed, config=config, run=run, notebook=PLD_NOTEBOOK)


def pld_comparison(study: Study, P: Profile, seed: int, *, rates: dict | None = None, theta_bar: float = 0.5,
                   gamma: float | None = None, variant: str = "paper", measure: bool = True, data_dir=None) -> dict:
    """The PLD paper's pre-training comparison as units (P = profiles.pld_profile(...)):

    1. pilot: every rate of P.pld_lrs for each arch (postln, preln, preln_pld), short;
    2. the full runs of pld_runs.RUNS, each at the best pilot rate of the arch it names (`rates`,
       {arch: lr}, fixes any by hand); a full run waits until the pilot it depends on is complete;
    3. with `measure`: the unigram plateau and the paired step timing.
    Returns {"pld", "pilot" (records), "chosen" (pld_runs.choose_rates), "lrs" (arch -> rate used),
    "runs" (name -> record or None), "unigram", "timing"}."""
    rates = dict(rates or {})
    for arch in rates:
        pld_runs.check_arch(arch)
    pld_kw = {"theta_bar": theta_bar, "gamma": gamma or pld.heuristic_gamma(P.pretrain_steps), "variant": variant}
    # rate-major: a pilot stopped half-way has compared every arch at the rates it reached
    pilot = [mlm_unit(study, P, arch, lr, seed, pld_kw=pld_kw, pilot=True, data_dir=data_dir)
             for lr in P.pld_lrs for arch in pld_runs.ARCHS]
    chosen = pld_runs.choose_rates(pld_runs.pilot_table(pilot)) if all(pilot) else {}
    lrs = {arch: rates.get(arch, chosen.get(arch, {}).get("best")) for arch in pld_runs.ARCHS}
    units, runs = {}, {}
    for name, (arch, rate_of) in pld_runs.RUNS.items():
        lr = lrs[rate_of]
        if lr is None and chosen:  # the pilot is complete and found no stable rate: no run
            runs[name] = None
            continue
        key = (arch, lr if lr is not None else rate_of)  # PLD's best may be the baseline's rate: one run then
        if key not in units:
            units[key] = mlm_unit(study, P, arch, lr, seed, pld_kw=pld_kw, needs=() if rate_of in rates else pilot,
                                  data_dir=data_dir)
        runs[name] = units[key]
    out = {"pld": pld_kw, "pilot": pilot, "chosen": chosen, "lrs": lrs, "runs": runs, "unigram": None, "timing": None}
    if measure:
        out["unigram"] = unigram_unit(study, P, data_dir=data_dir)
        out["timing"] = pld_timing_unit(study, P, seed, pld_kw=pld_kw, data_dir=data_dir)
    return out


# -- gradient norms per layer, PostLN vs PreLN (gradient_norms) -------------------------------
def fixed_batches(P: Profile, Q: Profile, tok, data_dir, train_chars: int):
    """(train, valid, collate, batches) for a gradient measurement of shape Q: P.grad_batches fixed
    batches of P.grad_batch held-out blocks (seeded collation: the same MLM masks every time) and
    `train_chars` of training text."""
    n = P.grad_batch
    train_ex, valid_ex, collate = corpus_data(Q, tok, data_dir, max_chars=train_chars,
                                              valid_chars=P.seq_len * 8 * n * P.grad_batches)
    batches = [collate(list(valid_ex[i * n:(i + 1) * n]), generator=torch.Generator().manual_seed(i))
               for i in range(P.grad_batches)]
    return train_ex, valid_ex, collate, batches


def grad_norm_unit(study: Study, P: Profile, layers: int, hidden: int, ln: str, seed: int, *,
                   train_steps: int = 0, data_dir=None, preln_init: str = PRELN_INIT) -> dict | None:
    """Per-layer gradient norms (analysis.layer_grad_norms) of a scratch MLM BERT of
    `layers` x `hidden` (hidden/64 heads, FFN 4 x hidden) on P.grad_batches fixed batches of
    P.grad_batch held-out blocks, at initialisation from `seed`, and after `train_steps` MLM
    steps when > 0 (then also block input/output similarity). Record: per stage, the per-layer
    norms averaged over the batches and the bottom/top ratios (analysis.bottom_top) per batch."""
    from dataclasses import replace

    from .analysis import block_io_similarity, bottom_top, layer_grad_norms

    heads = max(1, hidden // 64)
    shape = {"layers": layers, "hidden": hidden, "heads": heads, "intermediate": 4 * hidden}
    config = {"kind": "grad_norms", **shape, "ln": ln, "init": init_of(ln, preln_init), "seq_len": P.seq_len, "batch": P.grad_batch,
              "n_batches": P.grad_batches, "train_steps": train_steps, "tokenizer": "minilm",
              **({"lr": P.pretrain_lr, "train_batch": P.pretrain_batch, "corpus_chars": P.pld_corpus_chars}
                 if train_steps else {})}

    def measure(model, batches, io: bool) -> dict:
        per = [layer_grad_norms(model, b) for b in batches]
        out = {k: [sum(p[k][i] for p in per) / len(per) for i in range(layers)] for k in ("param", "input")}
        out["ratio"] = {k: [bottom_top(p[k]) for p in per] for k in ("param", "input")}
        out["loss"] = sum(p["loss"] for p in per) / len(per)
        if io:
            sims = [block_io_similarity(model, b) for b in batches]
            out.update({k: [sum(x[k][i] for x in sims) / len(sims) for i in range(layers)]
                        for k in ("l2", "rel_l2", "cosine")})
        return out

    def run(u):
        t0 = time.perf_counter()
        Q = replace(P, **shape)
        tok = load_tokenizer("minilm")
        # the fixed batches come from the held-out books; the training text only when training
        train_ex, valid_ex, collate, batches = fixed_batches(P, Q, tok, data_dir, P.pld_corpus_chars if train_steps else 20_000)
        model = fresh_model(Q, tok, ln, seed, config["init"])
        stages = {"init": measure(model, batches, io=bool(train_steps))}
        times = {"eval": 0.0}
        if train_steps:
            r = pretrain_mlm(model, Q, seed, data=(train_ex, valid_ex, collate), steps=train_steps, eval_every=0,
                             valid_examples=len(batches) * P.grad_batch, progress=False, **u.train_kwargs())["result"]
            stages["trained"] = measure(model, batches, io=True)
            times, status = r.times, r.status
        else:
            status = "ok"
        return {"metrics": {f"{k}_ratio_{s}": sum(v["ratio"][k]) / len(v["ratio"][k]) for s, v in stages.items()
                            for k in ("param", "input")},
                "times": {**times, "total": time.perf_counter() - t0}, "status": status, "stages": stages}
    return study.unit(task=f"{layers}x{hidden}", method=f"{ln}ln" + ("_trained" if train_steps else ""), seed=seed,
                      config=config, run=run)


# -- models of a given shape from scratch (pld_schedule; grad_norm_unit shapes its own alike) --
def _shape(layers: int, hidden: int) -> dict:
    """A BERT of `layers` x `hidden` shaped like BERT-base: heads of 64, FFN 4 x hidden."""
    return {"layers": layers, "hidden": hidden, "heads": max(1, hidden // 64), "intermediate": 4 * hidden}


# -- the PLD schedule at the paper's depth: realized gates and the time they save (pld_schedule)
def pld_schedule_unit(study: Study, P: Profile, variant: str, seed: int, *, theta_bar: float = 0.5,
                      gamma: float | None = None, steps: int | None = None, data_dir=None) -> dict | None:
    """A PreLN MLM run from scratch of P.schedule_shape (layers x hidden), P.schedule_batch
    sequences per step, `steps` (P.schedule_steps) steps under PLD's schedule with one
    keep-probability variant ("paper" or "code"; gamma None: 100 / steps), then
    P.schedule_pairs adjacent dense / PLD training steps on one batch (analysis.paired_step_times)
    with the run's own gates, replayed at evenly spaced micro-batches so theta's whole schedule
    is represented. Record: the gates drawn (one bit string per micro-batch) and their steps,
    realized vs expected keep frequencies, the paired step times, and the training FLOPs per step
    (flops.flops_per_step) dense, of the timed gates and of the whole run."""
    from dataclasses import replace

    from .flops import flops_per_step
    from .profiles import CHARS_PER_TOKEN

    layers, hidden = P.schedule_shape
    steps = steps or P.schedule_steps
    gamma = gamma or pld.heuristic_gamma(steps)
    shape, batch_size, pairs = _shape(layers, hidden), P.schedule_batch, P.schedule_pairs
    chars = steps * batch_size * P.grad_accum * P.seq_len * CHARS_PER_TOKEN  # one epoch of what the run reads
    config = {"kind": "pld_schedule", **shape, "seq_len": P.seq_len, "batch": batch_size, "grad_accum": P.grad_accum,
              "steps": steps, "lr": P.pretrain_lr, "theta_bar": theta_bar, "gamma": gamma, "variant": variant,
              "pairs": pairs, "tokenizer": "minilm", "corpus_chars": chars, "init": init_of("pre")}

    def run(u):
        t0 = time.perf_counter()
        Q = replace(P, **shape, pretrain_batch=batch_size)
        tok = load_tokenizer("minilm")
        train_ex, valid_ex, collate = corpus_data(Q, tok, data_dir, max_chars=chars, valid_chars=64 * P.seq_len * CHARS_PER_TOKEN)
        model = fresh_model(Q, tok, "pre", seed, config["init"])
        hook = pld.PLD(theta_bar, gamma, variant, seed=seed)
        try:
            r = pretrain_mlm(model, Q, seed, data=(train_ex, valid_ex, collate), steps=steps, hooks=[hook], eval_every=0,
                             valid_examples=64, progress=False, **u.train_kwargs())["result"]
        except Probe as p:  # plan mode: the timed pairs cost about what training steps do
            raise Probe(p.seconds_per_step, p.steps + 2 * (pairs + 2)) from None
        n = len(hook.record)
        rows = [hook.replay(round(i * (n - 1) / max(1, pairs - 1)), layers) for i in range(pairs)]
        batch = collate(list(train_ex[:batch_size]), generator=torch.Generator().manual_seed(seed))
        head = float((batch["labels"] != -100).float().mean())  # MLM logits only at the masked tokens
        timing = paired_step_times(model, batch, rows, pairs=pairs, clip=u.control.clip)

        def flops(gate_rows):  # mean training FLOPs per step of these gates, over dense
            return sum(flops_per_step(model.config, P.seq_len, batch_size, g, head) for g in gate_rows) / len(gate_rows)
        dense = flops_per_step(model.config, P.seq_len, batch_size, head_tokens=head)
        ran = [[1.0 if c == "1" else None for c in bits] for bits in hook.record]  # FLOPs count kept blocks only
        ok = r.status != "diverged"
        return {"metrics": {"val_loss": r.final_eval["val_loss"] if ok else math.nan, "train_seconds": train_seconds(r),
                            "time_per_sample": train_seconds(r) / max(r.samples, 1), "median_pair_ratio": timing["ratio"]},
                "times": {**r.times, "total": time.perf_counter() - t0}, "status": "ok" if ok else "diverged",
                "gates": hook.record, "gate_steps": hook.record_steps, "keep": hook.realized_vs_expected(layers),
                "timing": {"dense": timing["times"]["dense"], "gated": timing["times"]["gated"], "ratio": timing["ratio"],
                           "rows": ["".join("0" if g is None else "1" for g in row) for row in rows]},
                "flops": {"dense_per_step": dense, "timed_fraction": flops(rows) / dense, "run_fraction": flops(ran) / dense,
                          "head_tokens": head}}
    return study.unit(task=f"{layers}x{hidden}", method=f"pld_{variant}", seed=seed, config=config, run=run)
