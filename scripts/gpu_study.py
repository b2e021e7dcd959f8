"""One short session on one GPU: the benchmark with and without torch.compile, then the `gpu`
profile's notebooks sized to the time left. Called by scripts/gpu_study.sh (which first installs
any missing packages from .whl/); `--dry-run` prints the plan and the commands and runs nothing.

Sizing: every notebook's time is estimated as a fixed overhead (kernel start, imports, corpus
tokenisation, model set-up, figures) plus its optimizer steps times a step time. The step time
comes from the FLOPs of the step (repro.flops.flops_per_token, x3 for forward + backward) at an
assumed model-FLOPs utilisation of `--mfu` (0.40) of `--peak-tflops` (990, an H100/H200's dense
bf16 peak); once the eager benchmark has run, its measured step time (BERT-base, batch 64, bf16)
replaces that estimate. The pre-training notebook's length (steps) absorbs what is left.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from repro.control import Control  # noqa: E402
from repro.flops import flops_per_token  # noqa: E402
from repro.model import BertConfig  # noqa: E402
from repro.profiles import PROFILES, checkpoint_available  # noqa: E402

P = PROFILES["gpu"]
BENCH_BATCH = 64  # repro.bench's gpu size: BERT-base, seq 128, batch 64
OVERHEAD_S = {"bench": 40, "bench_compile": 60, "notebook": 30, "report": 20}
COMPILE_S = 240  # torch.compile of the seven bench models (and PLD's gate patterns): a guess, time-boxed
RESERVE = 0.9  # plan 90% of the time: the estimates are estimates
# the order in which notebooks leave a plan that does not fit (gradient_norms, pld_schedule,
# pld_pretraining and the report always stay)
DROP_ORDER = ["ticket_mask_distance", "earlybert_glue", "pld_glue", "glue_finetune", "earlybert_pretraining"]  # readers first
EB_PRETRAIN_STEPS = 500  # earlybert_pretraining's runs (and the search ticket_mask_distance reads)
GLUE_TRAIN = {"RTE": 2490, "MRPC": 3668, "STS-B": 5749, "CoLA": 8551, "SST-2": 67349}  # train examples


def step_seconds(batch: int, seq: int, head: str, mfu: float, peak_tflops: float) -> float:
    """One BERT-base (the gpu profile's size) training step from its FLOPs at mfu x peak."""
    c = BertConfig(layers=P.layers, hidden=P.hidden, heads=P.heads, intermediate=P.intermediate, head=head)
    per_token = flops_per_token(c, seq, head_tokens=0.15 if head == "mlm" else 1.0)["total"]
    return 3 * per_token * seq * batch / (mfu * peak_tflops * 1e12)


@dataclass
class Item:
    name: str  # a notebook, "bench" or "bench_compile"
    params: dict = field(default_factory=dict)
    steps_pre: float = 0.0  # optimizer steps at the pre-training batch (128 x 128)
    steps_ft: float = 0.0  # steps at the fine-tuning batch (32 x <= 128)
    fixed_s: float = 0.0  # estimated seconds that are not steps
    env: dict = field(default_factory=dict)
    why: str = ""

    def seconds(self, t_pre: float, t_ft: float) -> float:
        return self.fixed_s + self.steps_pre * t_pre + self.steps_ft * t_ft

    def command(self, out: Path) -> list[str]:
        if self.name.startswith("bench"):
            return [sys.executable, "-m", "repro", "bench", "--profile", "gpu", "--out", str(out / "gpu" / "bench"),
                    *(["--compile"] if self.name == "bench_compile" else [])]
        cmd = [sys.executable, "-m", "repro", "run", self.name, "--profile", "gpu", "--results-dir", str(out)]
        for k, v in self.params.items():
            cmd += ["-p", f"{k}={v}" if isinstance(v, str) else f"{k}={json.dumps(v)}"]
        return cmd


def ft_steps(task: str, epochs: float = P.finetune_epochs, n: int | None = None) -> float:
    return math.ceil((n or GLUE_TRAIN[task]) / P.finetune_batch * epochs)


def pld_pretraining(steps: int) -> Item:
    # the learning-rate pilot (5 rates x 3 archs, a tenth of a run each, PLD ~20% cheaper), then
    # 4 full runs (2 with PLD), 20 evaluations of 256 blocks per full run (a forward is ~1/3 of a
    # step), paired timing 44 steps, 4 checkpoints written
    pilot = max(10, steps // 10)
    return Item("pld_pretraining", {"steps": steps, "pilot_steps": pilot},
                steps_pre=5 * pilot * (2 + 0.8) + steps * (2 + 2 * 0.8) + 4 * 20 * 2 / 3 + 44,
                fixed_s=OVERHEAD_S["notebook"] + 4 * 3)


def plan(budget_s: float, mfu: float, peak: float, t64: float | None = None, done_s: float = 0.0,
         benches=("bench", "bench_compile"), checkpoint: bool = False, squad: bool = False) -> tuple[list[Item], dict]:
    """The session: the `benches` still to run, then the notebooks that fit `budget_s - done_s`."""
    t64 = t64 or step_seconds(BENCH_BATCH, 128, "mlm", mfu, peak)
    t_pre = t64 * P.pretrain_batch / BENCH_BATCH
    t_ft = t64 * P.finetune_batch / BENCH_BATCH  # fine-tuning batches of <= 128 tokens: an upper bound
    items = []
    # a bench: 7 cases x (warm-up 5 + 1, 7 repetitions x (1 + 10)) steps at batch 64 ~ 581 x t64
    bench = {"bench": Item("bench", steps_pre=581 * BENCH_BATCH / P.pretrain_batch, fixed_s=OVERHEAD_S["bench"],
                           why="mfu without torch.compile"),
             "bench_compile": Item("bench_compile", steps_pre=581 * BENCH_BATCH / P.pretrain_batch,
                                   fixed_s=OVERHEAD_S["bench_compile"] + COMPILE_S, why="mfu with torch.compile")}
    items += [bench[b] for b in benches]
    nb = OVERHEAD_S["notebook"]
    one = {"seeds": [0]}
    notebooks = [  # in the runner's order; defaults where they fit, smaller sizes where not
        Item("gradient_norms", steps_pre=2 * 300 + 4, fixed_s=nb, why="12-layer PostLN vs PreLN gradients, 300 steps"),
        Item("pld_schedule", steps_pre=2 * (300 + 2 * (30 + 2)), fixed_s=nb,
             why="PLD's realized gates and paired step times at 12 layers, both keep-probability variants"),
        pld_pretraining(500),
        Item("pld_glue", {"tasks": ["RTE"], **one}, steps_ft=3 * ft_steps("RTE"), fixed_s=nb,
             why="fine-tunes pld_pretraining's checkpoints: RTE, one seed"),
        # dense 500 steps, the search unit to half of them, two tickets for the rest (~0.64 of a dense step)
        Item("earlybert_pretraining", {"pretrain_steps": EB_PRETRAIN_STEPS, "seeds": [0], "max_train_examples": 2000},
             steps_pre=EB_PRETRAIN_STEPS * (1 + 0.5 + 2 * 0.8 * 0.64) + 1, steps_ft=3 * ft_steps("SST-2", n=2000), fixed_s=nb,
             env={} if checkpoint else {"REPRO_CHECKPOINT": "minilm"},
             why="500 pre-training steps; fine-tunes on 2000 SST-2 examples, one seed"
                 + ("" if checkpoint else " (tokenizer: MiniLM's, bert-base-uncased's vocabulary)")),
    ]
    if checkpoint:  # bert-base-uncased (or REPRO_CHECKPOINT) is here: the fine-tuning notebooks
        notebooks += [
            Item("glue_finetune", {"tasks": ["RTE", "MRPC"], **one}, steps_ft=ft_steps("RTE") + ft_steps("MRPC"),
                 fixed_s=nb, why="dense fine-tuning, RTE and MRPC, one seed"),
            # earlybert_glue: the RTE search (one epoch) and four tickets (2 epochs, ~0.64 of a dense step);
            # its dense run is glue_finetune's (reused)
            Item("earlybert_glue", {"tasks": ["RTE"], "seeds": [0]},
                 steps_ft=ft_steps("RTE", 1.0) + 4 * 0.64 * ft_steps("RTE", 2.0) + 1, fixed_s=nb,
                 why="dense vs EarlyBERT vs random, early vs late tickets; RTE, one seed"),
            # ticket_mask_distance: earlybert_glue's and earlybert_pretraining's searches (reused: no steps)
            Item("ticket_mask_distance", {"tasks": ["RTE"], "seeds": [0], "pretrain_steps": EB_PRETRAIN_STEPS},
                 fixed_s=nb, why="mask distances of the RTE and the pre-training searches"),
        ]
    notebooks.append(Item("report", fixed_s=OVERHEAD_S["report"], why="REPORT.md from whatever ran"))
    skipped = {}
    if not checkpoint:
        for n in ("glue_finetune", "ticket_mask_distance", "earlybert_glue", "earlybert_squad"):
            skipped[n] = (f"needs the checkpoint {P.checkpoint!r} (not here: set REPRO_CHECKPOINT=/path/to/folder)")
    else:
        skipped["earlybert_squad"] = ("its training set is all of SQuAD dev's training half at the gpu profile "
                                      "(no size parameter): too long for a short session")
    if not squad:
        skipped["earlybert_squad"] = "no squad/dev-v1.1.json in the data folder"
    core = sum(n.seconds(t_pre, t_ft) for n in notebooks if n.name not in DROP_ORDER)  # at 500 steps
    left = RESERVE * (budget_s - done_s) - sum(i.seconds(t_pre, t_ft) for i in items)
    # drop optional notebooks, least informative at this length first, until the rest fits at
    # the shortest pre-training (a few hundred steps teach no GLUE task: pld_glue goes early)
    optional = [n for n in DROP_ORDER if any(x.name == n for x in notebooks)]
    while sum(n.seconds(t_pre, t_ft) for n in notebooks) > left and optional:
        gone = optional.pop(0)
        notebooks = [n for n in notebooks if n.name != gone]
        skipped[gone] = "does not fit the time left"
    # whatever is left lengthens pld_pretraining (in hundreds of steps, up to the profile's own)
    rest = left - sum(n.seconds(t_pre, t_ft) for n in notebooks)
    i = next(k for k, n in enumerate(notebooks) if n.name == "pld_pretraining")
    # per full-run step, its pilot's share included (the pilot is a tenth of a run)
    per_step = (pld_pretraining(1500).seconds(t_pre, t_ft) - pld_pretraining(500).seconds(t_pre, t_ft)) / 1000
    steps = int(min(P.pretrain_steps, max(500, 500 + rest / per_step)) // 100 * 100)
    notebooks[i] = pld_pretraining(steps)
    notebooks[i].why = f"5 pre-training runs of {steps} steps" + (
        f" (the profile's {P.pretrain_steps} do not fit)" if steps < P.pretrain_steps else "")
    items += notebooks
    total = done_s + sum(i.seconds(t_pre, t_ft) for i in items)
    facts = {"t64_s": t64, "t_pre_s": t_pre, "t_ft_s": t_ft, "mfu": mfu, "peak_tflops": peak,
             "budget_s": budget_s, "estimated_total_s": total, "core_notebooks_s": core, "skipped": skipped}
    return items, facts


def describe(items, facts, out: Path, measured: bool) -> str:
    f = facts
    src = "measured by the eager bench" if measured else (f"from FLOPs at {f['mfu']:.0%} of {f['peak_tflops']:g} TFLOP/s")
    lines = [f"BERT-base training step, seq 128, bf16: {1e3 * f['t64_s']:.1f} ms at batch 64 ({src}); "
             f"pre-training batch {P.pretrain_batch}: {1e3 * f['t_pre_s']:.1f} ms, fine-tuning batch "
             f"{P.finetune_batch}: <= {1e3 * f['t_ft_s']:.1f} ms",
             f"{'item':<24}{'est. s':>8}  what"]
    for it in items:
        lines.append(f"{it.name:<24}{it.seconds(f['t_pre_s'], f['t_ft_s']):>8.0f}  {it.why}")
        env = " ".join(f"{k}={v}" for k, v in it.env.items())
        lines.append(f"{'':<34}$ {env + ' ' if env else ''}{shlex.join(it.command(out))}")
    for name, why in f["skipped"].items():
        lines.append(f"{name:<24}{'-':>8}  skipped: {why}")
    lines.append(f"estimated total {f['estimated_total_s']:.0f}s of a {f['budget_s']:.0f}s budget "
                 f"(planned to {RESERVE:.0%} of the time left)")
    return "\n".join(lines)


def run(cmd: list[str], env: dict, timeout: float) -> tuple[int, float]:
    """Run `cmd` in its own process group; at the timeout the whole group (kernels too) is ended."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, start_new_session=True)
    try:
        rc = p.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        rc = 124
    return rc, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/gpu_study.sh", description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=720, help="seconds for the whole session (default 720)")
    ap.add_argument("--mfu", type=float, default=0.40, help="assumed utilisation before the bench measures it")
    ap.add_argument("--peak-tflops", type=float, default=990.0, help="the GPU's dense bf16 peak (H100/H200: 990)")
    ap.add_argument("--results-dir", default=os.environ.get("RESULTS_DIR") or str(REPO / "results"))
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the commands; run nothing")
    ap.add_argument("--started", type=float, default=None, help=argparse.SUPPRESS)  # the shell's start time
    args = ap.parse_args(argv)
    if not args.budget > 60 or not 0 < args.mfu <= 1 or not args.peak_tflops > 0:
        ap.error("--budget must exceed 60 seconds, --mfu lie in (0, 1], --peak-tflops be positive")
    out = Path(args.results_dir)
    start = args.started or time.time()
    from repro.sources import find_data_dir
    settings = Control.from_environ()  # the data folder and the checkpoint the notebooks will be given
    try:
        data = find_data_dir(env_dir=settings.data_dir)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ckpt = checkpoint_available(settings.checkpoint or P.checkpoint)
    squad = (data / "squad" / "dev-v1.1.json").exists()
    items, facts = plan(args.budget, args.mfu, args.peak_tflops, checkpoint=ckpt, squad=squad,
                        done_s=time.time() - start)
    print(describe(items, facts, out, measured=False), flush=True)
    if args.dry_run:
        return 0
    import torch
    if not torch.cuda.is_available():
        print("error: no CUDA device. This script is for a GPU box; see the plan with --dry-run, or test "
              "the gpu profile's code path on a CPU with: python -m repro run all --profile gpu --clip",
              file=sys.stderr)
        return 2
    log = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "plan": facts, "items": []}
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    measured, t64 = False, None
    queue = list(items)
    while queue:
        it = queue.pop(0)
        elapsed = time.time() - start
        est = it.seconds(facts["t_pre_s"], facts["t_ft_s"])
        # each item gets 1.5x its estimate, never past the budget: the report always gets its turn,
        # and a bench (torch.compile's time is a guess) never eats the core notebooks' time
        keep = (facts["core_notebooks_s"] if it.name.startswith("bench")
                else 0 if it.name == "report" else OVERHEAD_S["report"])
        limit = min(1.5 * est, args.budget - elapsed - keep)
        if limit < 0.5 * est:
            log["items"].append({"name": it.name, "status": "skipped", "why": "no time left"})
            print(f"== {it.name}: skipped, {args.budget - elapsed:.0f}s left", flush=True)
            continue
        print(f"== {it.name} (estimated {est:.0f}s, limit {limit:.0f}s)", flush=True)
        rc, secs = run(it.command(out), {**env, **it.env}, limit)
        status = "ok" if rc == 0 else "timed out" if rc == 124 else f"failed (exit {rc})"
        log["items"].append({"name": it.name, "params": it.params, "estimated_s": est, "seconds": secs, "status": status})
        print(f"== {it.name}: {status} in {secs:.0f}s", flush=True)
        if it.name.startswith("bench"):  # re-plan what is left: the time it took, the step time it measured
            name = "bench_compiled.json" if it.name == "bench_compile" else "bench.json"
            if rc == 0:
                res = json.loads((out / "gpu" / "bench" / name).read_text())
                log[it.name] = {"mfu": res.get("mfu"), "step_s_batch64": res["cases"]["dense_pre"]["step_s"]}
                if it.name == "bench":
                    t64, measured = res["cases"]["dense_pre"]["step_s"], True
            pending = tuple(q.name for q in queue if q.name.startswith("bench"))
            queue, facts = plan(args.budget, args.mfu, args.peak_tflops, t64=t64, done_s=time.time() - start,
                                benches=pending, checkpoint=ckpt, squad=squad)
            print(describe(queue, facts, out, measured=measured), flush=True)
            log.setdefault("replans", []).append(facts)
    log["total_s"] = time.time() - start
    (out / "gpu").mkdir(parents=True, exist_ok=True)
    (out / "gpu" / "gpu_study.json").write_text(json.dumps(log, indent=2, default=str) + "\n")
    print(f"session: {log['total_s']:.0f}s; log in {out / 'gpu' / 'gpu_study.json'}")
    print("commit the outputs (checkpoints are git-ignored):  git add results/gpu && git commit -m 'gpu profile: short session'")
    return 0 if all(i["status"] == "ok" for i in log["items"]) else 1


if __name__ == "__main__":
    sys.exit(main())
