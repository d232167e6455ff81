#!/usr/bin/env bash
# Step time per GPU of the recipe's two trainers (run on a CUDA machine from the repo root):
#   bash benchmarks/gpu_smoke.sh            -> one JSON line per run on stdout
# IS-Net stage 2 at 1024² (batch 4, the recipe's per-GPU batch) and FBA at 640² (batch 1),
# bf16 autocast; then fp16 with the gradient scaler for FBA. About 2-3 minutes on one GPU.
set -euo pipefail
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)/src"
PY=${PYTHON:-python}
$PY benchmarks/train_step_time.py --task isnet --size 1024 --batch 4 --device cuda --amp bf16 --warmup 3 --steps 20 --gpus 1
$PY benchmarks/train_step_time.py --task isnet --size 1024 --batch 4 --device cuda --amp bf16 --warmup 3 --steps 20 --gpus 8 --no-flops
$PY benchmarks/train_step_time.py --task fba --size 640 --batch 1 --device cuda --amp bf16 --warmup 3 --steps 20 --gpus 1
$PY benchmarks/train_step_time.py --task fba --size 640 --batch 1 --device cuda --amp fp16 --warmup 3 --steps 20 --gpus 8 --no-flops
