#!/usr/bin/env bash
# The GPU check of benchmarks/gpu_suite.py, in two steps (see its docstring and docs/fit.md).
#
#   bash benchmarks/gpu_suite.sh prepare   # here, with the registry: wheels the device lacks
#                                          # (constriction, ml-collections, same versions as
#                                          # here) into .whl/, Kodak + TAEF2 into .gpu_suite/
#   bash benchmarks/gpu_suite.sh run [gpu_suite.py flags]
#                                          # on the device (no registry): installs the carried
#                                          # wheels if needed, runs the suite into $OUT under a
#                                          # hard time limit (SUITE_LIMIT_S, default 480 s)
#
# Device tool call: command "bash benchmarks/gpu_suite.sh run", carry [".whl", ".gpu_suite"],
# timeout_s 540. Then, here: python benchmarks/gpu_suite.py --verify <files_at> --out <dir>.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
  py=${PYTHON:-.venv/bin/python}
  [ -x "$py" ] || py=python3
  versions=$("$py" -c 'import importlib.metadata as m; print(" ".join(f"{n}=={m.version(n)}" for n in ("constriction", "ml-collections")))')
  rm -rf .whl && mkdir -p .whl
  # the device's python is CPython 3.12 on x86-64 Linux
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl $versions
  shared=${SHARED:-../shared}
  mkdir -p .gpu_suite/kodak .gpu_suite/weights
  if [ -d "$shared/data/kodak" ]; then cp "$shared"/data/kodak/kodim*.png .gpu_suite/kodak/; fi
  if [ -d "$shared/weights" ]; then
    cp "$shared"/weights/taef2_*.pth "$shared"/weights/LICENSE.taesd .gpu_suite/weights/ 2>/dev/null || true
  fi
  echo "prepared: $(ls .whl | tr '\n' ' ')"
  echo "          $(ls .gpu_suite/kodak | wc -l) Kodak images, $(ls .gpu_suite/weights | wc -l) weight files in .gpu_suite/"
  echo 'device: run command "bash benchmarks/gpu_suite.sh run", carry [".whl", ".gpu_suite"], timeout_s 540'
  ;;
run)
  shift
  out=${OUT:-bench_out/gpu_suite}
  mkdir -p "$out"
  py=python3
  if ! "$py" -c 'import constriction, ml_collections' 2>/dev/null; then
    ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_suite.sh: error: constriction/ml-collections missing and no .whl/ carried (run 'prepare' first)" >&2; exit 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/gpu_suite_site .whl/*.whl
    export PYTHONPATH=/tmp/gpu_suite_site${PYTHONPATH:+:$PYTHONPATH}
  fi
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  # let the largest batches use the card (JAX preallocates 75 % by default)
  export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$out/nvidia_smi.txt" || true
  set +e
  timeout -k 10 "${SUITE_LIMIT_S:-480}" "$py" benchmarks/gpu_suite.py --out "$out" "$@" 2>&1 | tee "$out/gpu_suite.log"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 124 ] && echo "gpu_suite.sh: stopped at ${SUITE_LIMIT_S:-480} s; $out/gpu_suite.json holds what was measured" >&2
  exit "$rc"
  ;;
*)
  echo "usage: bash benchmarks/gpu_suite.sh prepare | run [gpu_suite.py flags]" >&2
  exit 2
  ;;
esac
