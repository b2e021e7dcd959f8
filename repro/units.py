"""The study's training units: one function per kind of run, through `Study.unit`.

Each builds the unit's config from the values that decide its numbers (not the whole profile, so
that changing, say, the pre-training length does not invalidate every fine-tuning run), loads
data and builds the model only when the unit has to be trained, and returns the unit's record
(None when it is missing and was not trained: deadline, plan mode). Notebooks call these.
"""
from __future__ import annotations

from .profiles import Profile
from .study import Study
from .tasks import finetune_glue, glue_data, glue_model


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
              notebook: str | None = None, **train_kw) -> dict | None:
    """Dense fine-tuning of the profile's checkpoint on one GLUE task (dev metrics, training curve)."""
    config = glue_config(task, P, lr=lr, epochs=epochs, pooling=pooling, **train_kw)

    def run(u):
        data = glue_data(task, P, tokenizer, data_dir, seed)
        model = glue_model(P.checkpoint, task, seed=seed, pooling=config["pooling"])
        out = finetune_glue(model, task, P, seed, tokenizer=tokenizer, data=data,
                            lr=lr, epochs=epochs, progress=False, **u.train_kwargs(), **train_kw)
        r = out["result"]
        return {"metrics": out["metrics"] | {"train_loss": r.history[-1]["loss"]}, "times": r.times,
                "status": r.status, "history": r.history, "n_train": out["n_train"], "n_eval": out["n_eval"]}
    return study.unit(task=task, method=method, seed=seed, config=config, run=run, notebook=notebook)
