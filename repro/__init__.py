"""repro: a reproducibility study of EarlyBERT and Progressive Layer Dropping.

Modules: model (one BERT encoder), pld, earlybert (the two techniques), data, metrics,
train (one training loop), results (the results store), runner (papermill), profiles (scales).
"""
from pathlib import Path

__version__ = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
