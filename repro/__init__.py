"""repro: a reproducibility study of EarlyBERT and Progressive Layer Dropping.

Modules: model (one BERT encoder), pld, earlybert (the two techniques), data, metrics,
train (one training loop), results (the results store), runner (papermill), profiles (scales).
"""
import warnings
from pathlib import Path

__version__ = "0.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
# In a notebook kernel without ipywidgets, tqdm.auto (huggingface_hub's progress bars) warns on
# import, naming this machine's site-packages: noise on stderr in every executed notebook. The
# bars themselves still work (tqdm falls back to text).
warnings.filterwarnings("ignore", message="IProgress not found")
