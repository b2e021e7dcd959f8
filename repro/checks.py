"""The notebooks' parameters, checked before anything runs.

One table of rules, used twice: by the runner (`python -m repro run NAME -p key=value`), which
refuses a bad value before it touches results/, and by each notebook's first code cell
(`check_parameters(globals())`), so that running a notebook with papermill or by hand fails with
the same message instead of deep inside a cell. A value of None always means "the profile's
default" and passes. Parameters the table does not know are left to the notebook.
"""
from __future__ import annotations

import math

# integers >= 1: sizes, counts, intervals in steps
COUNTS = {
    "max_tasks": "GLUE tasks to run", "max_seeds": "seeds to run", "max_train_examples": "training examples",
    "steps": "training steps", "pilot_steps": "steps of each learning-rate pilot run",
    "max_chars": "characters of the corpus to read", "batching_seeds": "runs of the batching check",
    "valid_examples": "validation blocks", "checkpoints": "tickets per mask-distance matrix",
    "draw_every": "steps between ticket draws", "window": "tickets in the detector's window",
    "eval_every": "steps between evaluations", "seq_len": "tokens per window", "stride": "overlap in tokens",
    "layers_analytic": "layers in the analytic figures", "horizon": "steps in the analytic figures",
    "pretrain_steps": "pre-training steps of each run", "size_seeds": "seeds per ticket size",
}
# numbers > 0: learning rates, lengths in epochs, multipliers
POSITIVE = {"lr", "lr_high", "search_lr", "finetune_lr", "ticket_lr", "epochs", "search_epochs", "finetune_epochs",
            "ticket_epochs", "schedule_epochs", "adam_eps",
            "gamma", "epsilon", "subset_scale", "pretrain_fraction"}
# fractions in (0, 1]
FRACTIONS = {"fixed_fraction", "observe_fraction", "head_ratio", "ffn_ratio", "theta_bar"}
# fractions in (0, 1): the search must leave the ticket something to train
OPEN_FRACTIONS = {"search_fraction"}
# numbers >= 0 (0 switches the term, or the gate, off)
NON_NEGATIVE = {"lambda_head", "lambda_ffn", "dense_f1_bar", "ticket_warmup", "search_warmup", "weight_decay"}
CHOICES = {"draw": ("detector", "fixed"), "variant": ("paper", "code"), "ln": ("pre", "post"),
           "high_schedule": ("recipe", "profile"), "rank": ("raw",)}


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


def check_parameter(key: str, value):
    """`value` (task names in our spelling) if it is valid for the parameter `key`, else a
    ValueError (FileNotFoundError for a missing folder) that names the problem and the fix."""
    if value is None:
        return None
    if key in COUNTS:
        if not _is_int(value) or value < 1:
            raise ValueError(f"{key} ({COUNTS[key]}) must be an integer >= 1, got {value!r}; "
                             "leave it None for the profile's default")
    elif key in POSITIVE:
        if not _is_number(value) or value <= 0:
            hint = (" (a model with no training is not a result: to see an untrained model, "
                    "evaluate it, do not fine-tune it for 0 epochs)") if "epoch" in key or "lr" in key else ""
            raise ValueError(f"{key} must be a number > 0, got {value!r}{hint}; leave it None for the "
                             "profile's default")
    elif key in FRACTIONS | OPEN_FRACTIONS:
        hi_ok = key in FRACTIONS
        if not _is_number(value) or not (0 < value < 1 or (hi_ok and value == 1)):
            raise ValueError(f"{key} must be a fraction in (0, 1{']' if hi_ok else ')'}, got {value!r}")
    elif key in NON_NEGATIVE:
        if not _is_number(value) or value < 0:
            raise ValueError(f"{key} must be a number >= 0, got {value!r}")
    elif key in CHOICES:
        if value not in CHOICES[key]:
            raise ValueError(f"{key} must be one of {', '.join(map(repr, CHOICES[key]))}, got {value!r}")
    elif key == "theta_bars":
        _sequence(key, value, lambda x: _is_number(x) and 0 < x <= 1, "fractions in (0, 1]")
    elif key == "gammas":
        _sequence(key, value, lambda x: _is_number(x) and x > 0, "numbers > 0")
    elif key == "seeds":
        value = _seeds(value)
    elif key == "task":
        from .metrics import glue_task_name
        value = glue_task_name(value)
    elif key in ("tasks", "controls"):
        value = _tasks(value)
    elif key == "sizes":
        _sequence(key, value, lambda x: isinstance(x, (list, tuple)) and len(x) == 2 and all(_is_number(v) and 0 <= v < 1 for v in x),
                  "(head_ratio, ffn_ratio) pairs of fractions in [0, 1)")
    elif key == "tickets":
        from .earlybert_settings import TICKETS
        _sequence(key, value, lambda x: x in TICKETS, f"EarlyBERT tickets ({', '.join(TICKETS)})")
    elif key in ("recipe", "pretrain_recipe"):  # EarlyBERT's recipe overrides: each field by its rule
        from .earlybert_settings import RECIPES, recipe
        for field, v in (value if isinstance(value, dict) else {}).items():
            if field != "draw_every":
                check_parameter(field, v)
        recipe(RECIPES[key], value)
    elif key == "methods":
        _sequence(key, value, lambda x: isinstance(x, str) and x.strip(), "method names")
    elif key == "checkpoint":
        from .sources import check_checkpoint
        check_checkpoint(value, tokenizer=True)
    elif key == "data_dir":
        from .sources import check_data_dir
        check_data_dir(value, "data_dir")
    return value


def _sequence(key, value, ok, what: str):
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{key} must be a list of {what}, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{key} is empty: give at least one, or leave it None for the default")
    bad = [x for x in value if not ok(x)]
    if bad:
        raise ValueError(f"{key} must be a list of {what}; {bad!r} are not")


def _seeds(value) -> list:
    if not isinstance(value, (list, tuple)) or not all(_is_int(x) for x in value):
        raise ValueError(f"seeds: expected a list of integers, e.g. seeds=[0, 1, 2], got {value!r}")
    if not value:
        raise ValueError("seeds is an empty list: nothing would run. Give at least one seed, e.g. "
                         "seeds=[0], or leave it None for the profile's seeds")
    if any(x < 0 for x in value):
        raise ValueError(f"seeds must be integers >= 0, got {value!r}")
    if len(set(value)) < len(value):
        raise ValueError(f"seeds {value!r} repeat a seed: the same seed gives the same run twice")
    return list(value)


def _tasks(value) -> list:
    from .metrics import glue_task_name

    if not isinstance(value, (list, tuple)):
        raise ValueError(f"tasks must be a list of GLUE task names, e.g. tasks=['MRPC', 'RTE'], got {value!r}")
    if not value:
        raise ValueError("tasks is an empty list: nothing would run. Name at least one GLUE task, "
                         "or leave it None for the profile's tasks")
    names = [glue_task_name(t) for t in value]
    if len(set(names)) < len(names):
        raise ValueError(f"tasks {list(value)!r} name a task twice")
    return names


def check_parameters(namespace: dict) -> None:
    """Check every parameter in `namespace` (a notebook's globals()) that the table knows, and
    write task names back in our spelling ('sst2' -> 'SST-2'). Raises on the first bad one."""
    for key in [k for k in namespace if k in _KNOWN]:
        try:
            namespace[key] = check_parameter(key, namespace[key])
        except ValueError as e:
            raise ValueError(f"parameter {e}" if str(e).startswith(key) else f"parameter {key}: {e}") from None


_KNOWN = (set(COUNTS) | POSITIVE | FRACTIONS | OPEN_FRACTIONS | NON_NEGATIVE | set(CHOICES)
          | {"theta_bars", "gammas", "seeds", "task", "tasks", "tickets", "recipe", "pretrain_recipe", "methods", "checkpoint", "data_dir"})
