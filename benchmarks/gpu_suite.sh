#!/usr/bin/env bash
# The GPU suite (issue 18) on a bare GPU machine, from a copy of the repository's working tree as cwd:
# a venv, CUDA torch, the project with its minilm and bench extras, then benchmarks/gpu_suite.py with a
# total budget of 8 minutes. Results: gpu_suite.json and gpu_suite.md under $OUT (or --out DIR).
#
#   bash benchmarks/gpu_suite.sh                    # on the GPU machine ($OUT set by the device tool)
#   bash benchmarks/gpu_suite.sh --out results/     # elsewhere
#   bash benchmarks/gpu_suite.sh --tiny --device cpu --out /tmp/s   # the CPU smoke run
#
# Every install is pinned: torch==2.13.0 and everything else by requirements/constraints.txt plus
# benchmarks/gpu_suite_requirements.txt (the bench extra's peers, which the project's constraints leave out).
# Where the machine's python3 already has a CUDA torch (the device tool's image), the venv sees its
# packages and that torch is kept; a wheel folder (--wheels DIR, or ./.whl when present) is used instead of
# the index when the machine cannot reach one.
set -euo pipefail
cd "$(dirname "$0")/.."

ARGS="$*"
OUT_DIR=${OUT:-}
BUDGET=480
WHEELS=
VENV=${GPU_SUITE_VENV:-/tmp/pairmill-gpu-suite-venv}
PYTHON=${PYTHON:-python3}
SKIP_INSTALL=0
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --skip-install) SKIP_INSTALL=1; shift ;;
    --tiny) PASS+=(--tiny); shift ;;
    --device|--parts) PASS+=("$1" "$2"); shift 2 ;;
    *) echo "gpu_suite.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$OUT_DIR" ] || { echo "gpu_suite.sh: set \$OUT or give --out DIR" >&2; exit 2; }
[ -z "$WHEELS" ] && [ -d .whl ] && WHEELS=.whl
mkdir -p "$OUT_DIR"
started=$(date +%s)

if [ "$SKIP_INSTALL" = 0 ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
  PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input)
  [ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")
  if "$VENV/bin/python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    # Keep the machine's CUDA torch (and what was built against it); pin everything else that is missing.
    CONSTRAINTS=$(mktemp)
    grep -v -E '^(torch|triton|nvidia-|numpy|sentence-transformers|transformers|tokenizers|safetensors|huggingface)' requirements/constraints.txt > "$CONSTRAINTS"
    "${PIP[@]}" -c "$CONSTRAINTS" -c benchmarks/gpu_suite_requirements.txt --no-deps -r benchmarks/gpu_suite_requirements.txt
    "${PIP[@]}" -c "$CONSTRAINTS" -c benchmarks/gpu_suite_requirements.txt --no-deps --no-build-isolation -e . \
      || echo "gpu_suite.sh: the project itself did not install; running it from the checkout (PYTHONPATH)"
  else
    "${PIP[@]}" -c requirements/constraints.txt torch==2.13.0
    "${PIP[@]}" -c requirements/constraints.txt -c benchmarks/gpu_suite_requirements.txt -e '.[bench]'
  fi
fi
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=$PYTHON
echo "installed in $(( $(date +%s) - started )) s; torch $("$PY" -c 'import torch; print(torch.__version__, "cuda", torch.cuda.is_available())')"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export GPU_SUITE_COMMAND="bash benchmarks/gpu_suite.sh${ARGS:+ $ARGS}"
"$PY" benchmarks/gpu_suite.py --out "$OUT_DIR" --budget "$BUDGET" ${PASS[@]+"${PASS[@]}"}
