#!/usr/bin/env bash
# The device check: run as it is on a machine with an NVIDIA GPU (about 5 to 8 minutes on one GPU).
#
#   bash benchmarks/gpu_check.sh            # results under $OUT (default: a new temporary folder)
#
# 1. the CUDA tests (pytest -m cuda): the GPU corruption engine against the CPU engine, every zoo
#    component under bf16 and fp16 autocast on CUDA;
# 2. training images per second, 224 px, batch 128, bf16 autocast: the zoo's plain ViT against
#    timm's ViT of the same dims (target >= 0.95x), TAP and the channel mixers, side by side;
# 3. corrupted images per second of the GPU engine against the reference package on the CPU;
# 4. a 4-trial search sharing the GPU (gpus_per_trial 0.25, benchmarks/gpu_check_space.yaml).
# Without a GPU it says so and exits 0. Each part has its own time limit; a part that fails is
# reported and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing to check"
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())" | tee -a "$OUT/gpu.txt"

status=()
part() {  # part NAME SECONDS COMMAND...: run one part with a time limit, output to $OUT/NAME.txt
    local name="$1" limit="$2"; shift 2
    echo; echo "== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    status+=("$name: exit $rc in $((SECONDS - start)) s")
}

part cuda_tests 150 python -m pytest -q -m cuda -p no:cacheprovider
part training_throughput 150 python benchmarks/bench_components.py --device cuda --precision bf16 \
    --img-size 224 --patch-size 16 --batch-size 128 --embed-dim 192 --depth 12 --num-heads 3 \
    --steps 10 --warmup 3 --fan-rounds 3 --fan-batch-size 32
part corruption_engine 120 python benchmarks/bench_corruptions.py --device cuda --images 16 --rounds 2 \
    --severities 1,3,5 --no-pool --skip-judging
part gpu_search 180 bash -c 'cd "$0" && search run "$1"' "$OUT" "$PWD/benchmarks/gpu_check_space.yaml"

echo; echo "== gpu_check summary (outputs in $OUT)"
for line in "${status[@]}"; do echo "  $line"; done
grep -h "plain / timm ViT" "$OUT/training_throughput.txt" 2>/dev/null | sed 's/^/  /'
grep -h "passed\|failed" "$OUT/cuda_tests.txt" 2>/dev/null | tail -1 | sed 's/^/  cuda tests: /'
