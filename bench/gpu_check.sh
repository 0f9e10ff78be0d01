#!/usr/bin/env bash
# The one prepared GPU run of issue 14 (part 5), for a session lent a device machine.
#
# Prepare here (CPU machine, repo root), once:
#   echo /.devdata/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
#   mkdir -p .devdata && cp ../shared/data/cifar10-jpeg.tar.gz .devdata/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl analog-nasbench==0.1.3
# Then one device call: run(command="bash bench/gpu_check.sh", carry=[".devdata", ".whl"], timeout_s=540)
# What it writes comes back under $OUT: the CUDA tests' log, the step bench, a SPOS C=16 N=5
# run of as many epochs as TRAIN_SECONDS allow (its checkpoint resumes), and its ranking of
# the 1,000 seed-0 architectures with the fast protocol.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
# Entry points (the built-in methods) need the package's metadata; no dependency is fetched.
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1
DATA=.devdata/cifar10-jpeg.tar.gz
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/harness/oneshot/test_cuda.py \
  tests/harness/oneshot/test_loss_meter.py tests/harness/oneshot/test_precision.py > "$OUT/cuda-tests.log" 2>&1
echo "cuda tests exit $?" >> "$OUT/cuda-tests.log"
timeout 150 python3 bench/bench_gpu_step.py --data-dir "$DATA" --batch-sizes 64 256 1024 --steps 300 \
  --out "$OUT/gpu_step.json" > "$OUT/gpu_step.log" 2>&1
timeout -s INT "${TRAIN_SECONDS:-150}" python3 -m harness.cli train --method spos --device cuda --precision auto \
  --C 16 --N 5 --epochs 250 --data-dir "$DATA" --no-mlflow --no-progress --out "$OUT/spos-c16n5" > "$OUT/train.log" 2>&1
timeout 90 python3 -m harness.cli rank --checkpoint "$OUT/spos-c16n5" --archs 1000 --precision bf16 \
  --calibration-images 160 --eval-images 500 --data-dir "$DATA" --no-mlflow --no-progress \
  --out "$OUT/rank" > "$OUT/rank.log" 2>&1
ls -la "$OUT"
