"""Are the savings real? Training steps timed side by side in one process.

    python -m repro bench --profile cpu --out results/cpu/bench

The cases are `repro.bench_steps` and `repro.bench_finetune`; this module runs the chosen ones,
prints their table and is the `bench` command.

Cases (forward + backward + AdamW step, the same global batch):
  dense_pre / dense_post   our PreLN / PostLN MLM step
  hf_mlm                   transformers.BertForMaskedLM (SDPA) at the same config and batch
  pld                      our PreLN with PLD gates sampled at theta = 0.5 (paper's p_i)
  ticket_mlm / dense_cls / ticket_cls
                           an EarlyBERT-sized ticket (1/3 of heads per layer, 40% of FFN neurons
                           globally, physically pruned) vs dense, MLM and classification steps

  finetune                 MRPC fine-tuning of MiniLM-L6 (the packaged checkpoint), whole epochs:
                           our Loop with length-grouped batches (the study's default), our Loop
                           with random batches, and transformers.Trainer (DataCollatorWithPadding,
                           random batches, its defaults), same examples, batch, lr, fp32

`--cases steps finetune` (the default: both) picks which run.

Method: the cases take turns (round-robin, every other round in reverse, compared cases next to
each other) so slow drifts of the machine hit them all alike; warm-up steps first, and one
untimed step at the start of every turn; the table gives the median over repetitions of each
case's step time. The ratios pair the cases within a repetition (they ran back to back) and take
the median of the per-repetition ratios; `spread` gives their range over repetitions, a measure
of the noise. PLD's gates are a fixed sequence drawn once, the same in every repetition, and its
ideal saving is computed from exactly those gates. FLOPs are counted analytically
(repro.flops.flops_per_step: the analytic forward x3 for forward + backward); skipped or sliced work counts zero.

Ratios (top level of the JSON):
  pld_efficiency    = realized step-time saving of PLD / its FLOP saving        (target >= 0.95)
  ticket_efficiency = realized step-time saving of the ticket / its FLOP saving (target >= 0.9)
  hf_speedup        = BertForMaskedLM step time / our PostLN step time          (target >= 1.5)
  mfu               = model FLOPs/s of our dense PreLN step / the device's bf16 dense peak
                      (spec sheet; GPU only, target >= 0.40; --peak-tflops for other devices)
  matmul_mfu        = the same step against the best large matmul measured in this run, a
                      peak this device and precision really reach (also defined on a CPU)
  finetune_speedup  = examples/s of our fine-tuning (Loop, length-grouped) / transformers.Trainer's
                      over the same epoch of examples                             (target >= 1.3)
  finetune_grouping_speedup = ours grouped / ours with random batches (what grouping alone gives)
  finetune_loop_speedup     = ours with random batches / the Trainer (the loop alone)

Fine-tuning timing: one round = one epoch of the same examples for every case. Ours: N calls of
Loop.train_step() (batching, collation, forward, backward, clipping, AdamW), the study's own
code. The Trainer: one `trainer.train()` over all rounds; a TrainerCallback times each epoch from
on_epoch_begin to on_epoch_end (its sampler, DataLoader, collator, training_step, clipping,
optimizer and scheduler steps, callbacks; not train()'s one-off setup), and runs our cases
between its epochs, so the cases alternate as above. Every turn starts with one untimed step on
the batch of the longest examples (outside the data order: every round stays one exact epoch).
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from .bench_finetune import FINETUNE_SIZES, run_finetune
from .bench_steps import SIZES, run_steps
from .runtime import pick_device

CASE_GROUPS = ("steps", "finetune")


def run_bench(profile: str = "cpu", device: str = "auto", theta: float = 0.5, compile: bool = False,
              peak_tflops: float | None = None, cases=CASE_GROUPS, data_dir=None) -> dict:
    """The chosen case groups ("steps", "finetune"), one result dict (see the module's doc)."""
    if profile not in SIZES:
        raise ValueError(f"unknown bench profile {profile!r}: choose one of {', '.join(SIZES)}")
    if peak_tflops is not None and not peak_tflops > 0:
        raise ValueError(f"--peak-tflops must be a positive number of TFLOP/s, got {peak_tflops}")
    bad = [c for c in cases if c not in CASE_GROUPS]
    if bad or not cases:
        raise ValueError(f"unknown bench case group(s) {bad}: choose from {', '.join(CASE_GROUPS)}")
    dev = pick_device(device)
    res = {"profile": profile, "case_groups": [c for c in CASE_GROUPS if c in cases], "cases": {},
           "spread": {}, "targets": {}}
    if "steps" in cases:
        part = run_steps(SIZES[profile], dev, theta, compile, peak_tflops)
        for key in ("cases", "spread", "targets"):
            res[key].update(part.pop(key))
        res.update(part)
    if "finetune" in cases:
        part = run_finetune(FINETUNE_SIZES[profile], dev, data_dir)
        for key in ("cases", "spread", "targets"):
            res[key].update(part.pop(key))
        res.update(part)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    return {**res, "device": name, "torch": torch.__version__, "threads": torch.get_num_threads()}


def format_table(res: dict) -> str:
    parts = []
    if "steps" in res["case_groups"]:
        parts.append(_steps_table(res))
    if "finetune" in res["case_groups"]:
        parts.append(_finetune_table(res))
    precision = res.get("precision", "fp32")
    return "\n\n".join(parts + [f"device {res['device']}, {precision}, torch {res['torch']}, {res['threads']} threads"])


def _steps_table(res: dict) -> str:
    lines = [f"{'case':<12} {'step ms':>9} {'tokens/s':>10} {'GFLOP/step':>11} {'TFLOP/s':>8} {'params':>11}"]
    for name, r in res["cases"].items():
        if name.startswith("finetune_"):
            continue
        lines.append(f"{name:<12} {1e3 * r['step_s']:>9.1f} {r['tokens_per_s']:>10.0f} "
                     f"{r['train_flops_per_step'] / 1e9:>11.2f} {r['achieved_tflops']:>8.3f} {r['params']:>11,}")
    s = res["savings"]
    sp = {k: v for k, v in res["spread"].items() if not k.startswith("finetune")}
    lines += ["",
              f"PLD (theta={res['theta']}): time saving {s['pld_time']:.1%} vs FLOP saving {s['pld_flops']:.1%}"
              f" -> pld_efficiency {res['pld_efficiency']:.2f} (target >= 0.95)",
              f"ticket MLM: time saving {s['ticket_mlm_time']:.1%} vs FLOP saving {s['ticket_mlm_flops']:.1%}"
              f" -> ticket_efficiency {res['ticket_efficiency']:.2f} (target >= 0.9)",
              f"ticket CLS: time saving {s['ticket_cls_time']:.1%} vs FLOP saving {s['ticket_cls_flops']:.1%}"
              f" -> {res['ticket_cls_efficiency']:.2f}",
              "range over repetitions: " + ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in sp.items()),
              f"BertForMaskedLM step / ours (PostLN): hf_speedup {res['hf_speedup']:.2f} (target >= 1.5)",
              (f"dense PreLN step: MFU {res['mfu']:.1%} of {res['peak_tflops']:g} TFLOP/s ({res['peak_source']};"
               " target >= 40%)" if res["mfu"] is not None else "MFU: no spec peak for this device (--peak-tflops)")
              + f"; {res['matmul_mfu']:.1%} of the best large matmul here ({res['matmul_peak_tflops']:.3f} TFLOP/s)"]
    return "\n".join(lines)


def _finetune_table(res: dict) -> str:
    f, sp = res["finetune"], res["spread"]
    label = {"finetune_ours_random": "ours, random batches", "finetune_ours_grouped": "ours, length-grouped",
             "finetune_trainer": "transformers.Trainer"}
    lines = [f"fine-tuning MiniLM-L6 on {f['task']}: {f['examples']} examples, batch {f['batch']}, lr {f['lr']:g}, "
             f"{f['precision']}; one epoch ({f['steps_per_epoch']} steps) per case and round, {f['rounds']} rounds",
             f"{'case':<22} {'epoch s':>8} {'step ms':>8} {'examples/s':>11} {'tokens/epoch':>13} {'padding':>8}"]
    for name, lab in label.items():
        r = res["cases"][name]
        lines.append(f"{lab:<22} {r['epoch_s']:>8.2f} {1e3 * r['step_s']:>8.1f} {r['examples_per_s']:>11.1f} "
                     f"{r['padded_tokens_per_epoch']:>13,.0f} {r['padding']:>8.1%}")

    def line(key, what):
        lo, hi = sp[key]
        return f"{key} {res[key]:.2f} (range over rounds {lo:.2f}-{hi:.2f}): {what}"
    lines += ["",
              line("finetune_speedup", "examples/s, ours length-grouped / Trainer (target >= 1.3)"),
              line("finetune_grouping_speedup", "ours length-grouped / ours random batches"),
              line("finetune_loop_speedup", "ours random batches / Trainer")]
    return "\n".join(lines)


def add_bench(sub):
    p = sub.add_parser("bench", help="time dense, PLD and pruned training steps, and fine-tuning against "
                                     "transformers.Trainer, side by side")
    p.add_argument("--profile", default="cpu", choices=list(SIZES))
    p.add_argument("--device", default="auto")
    p.add_argument("--theta", type=float, default=0.5)
    p.add_argument("--compile", action="store_true", help="torch.compile every model of the step cases first")
    p.add_argument("--peak-tflops", type=_positive, default=None,
                   help="the device's peak for MFU, where the built-in bf16 spec table lacks it")
    p.add_argument("--cases", nargs="+", default=list(CASE_GROUPS), choices=CASE_GROUPS,
                   help="which cases: steps (the seven training-step cases), finetune (MRPC fine-tuning, "
                        "ours vs transformers.Trainer); default both")
    p.add_argument("--data-dir", default=None, help="GLUE data for the finetune cases (default: as the notebooks)")
    p.add_argument("--out", default=None, help="a folder: writes bench.json and bench.txt there")
    p.set_defaults(func=cmd_bench)


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of TFLOP/s (e.g. 989 for an H100 SXM)")
    return v


def cmd_bench(args) -> int:
    from .control import Control
    from .results import provenance, write_json
    res = run_bench(args.profile, args.device, args.theta, args.compile, args.peak_tflops, args.cases,
                    args.data_dir or Control.from_environ().data_dir)  # the notebooks' default: $REPRO_DATA_DIR
    table = format_table(res)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = "bench_compiled" if args.compile else "bench"
        write_json(out / f"{name}.json", {**res, "provenance": provenance()})
        (out / f"{name}.txt").write_text(table + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.bench")
    add_bench(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["bench", *(argv or [])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
