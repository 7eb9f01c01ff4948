#!/usr/bin/env bash
# One device call: GPU throughput (1 vs N GPUs, speed knobs), the input-pipeline ratio and a DDP smoke run of
# src.train, all within ~9 minutes. Run from the repository root on the device machine, carrying `.whl`
# (make gpu-wheels) and `.photos` (benchmarks/gpu_photos.py):
#
#   bash benchmarks/gpu_run.sh            # results (JSON, logs, the smoke run's metrics.csv) go to $OUT
#   PY=.venv/bin/python SKIP_WHEELS=1 bash benchmarks/gpu_run.sh    # plumbing check on a CPU machine
#   THROUGHPUT_ARGS="--knobs none" PIPELINE_ARGS="--cases premade,real,real_cached" bash benchmarks/gpu_run.sh
#
# Budgets (seconds of wall time; each step is also killed by `timeout`): throughput 230 (+30 grace),
# pipeline 150 (+40), DDP smoke 60; with the wheel install ~8.8 minutes at most (the first run, 2026-11-27 on
# 2 x H200, took 6.1 minutes before the DDP-variant and one-thread cases were added). Nothing here changes
# the GPUs' settings.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_run_out}
mkdir -p "$OUT"
T0=$SECONDS
# NVLink multicast must stay off on the lent machines (their docs): keep these in every child's environment
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 WANDB_MODE=offline

PY=${PY:-python3}
if [ "${SKIP_WHEELS:-0}" != 1 ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
nvidia-smi topo -m 2>/dev/null | head -8   # how the GPUs are linked (NV# = NVLink; PIX/PHB/SYS = PCIe)
lscpu 2>/dev/null | grep -E "^(Model name|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\))"
$PY - <<'EOF'
import os, sys, torch, lightning, hydra, kornia, numba, numpy
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, lightning {lightning.__version__}, "
      f"hydra {hydra.__version__}, kornia {kornia.__version__}, numba {numba.__version__}, numpy {numpy.__version__}")
print(f"{os.cpu_count()} CPU cores, {torch.cuda.device_count()} GPUs")
EOF
df -h /dev/shm | tail -1
ls .photos | wc -l | xargs echo "photos carried:"

# numba kernels (decoder, SCA) compile once into src/*/__pycache__ while the GPUs run the throughput cases
$PY - >"$OUT/numba_warmup.log" 2>&1 <<'EOF' &
import time
t = time.time()
from src.corruption import Corruptor
from src.data.datamodule import warm_up
from src.data.pipeline import PipelineSettings
warm_up(Corruptor.from_preset("paper"), PipelineSettings(sca={"method": "dc_thumb"}))
print(f"numba warm-up {time.time() - t:.1f} s")
EOF
WARM_PID=$!

echo "== gpu_throughput ($((SECONDS - T0)) s)"
timeout 260 $PY benchmarks/gpu_throughput.py --steps 60 --warmup 8 --budget 230 ${THROUGHPUT_ARGS:-} \
    --json "$OUT/gpu_throughput.json" 2>&1 | grep --line-buffered -v -E "Warning|warnings.warn|litlogger|^$" | tee "$OUT/gpu_throughput.log"

wait "$WARM_PID"; cat "$OUT/numba_warmup.log"
echo "== gpu_pipeline ($((SECONDS - T0)) s)"
timeout 190 $PY benchmarks/gpu_pipeline.py --data mate --photos .photos --budget 150 ${PIPELINE_ARGS:-} \
    --json "$OUT/gpu_pipeline.json" 2>&1 | grep --line-buffered -v -E "Warning|warnings.warn|litlogger|^$" | tee "$OUT/gpu_pipeline.log"

echo "== DDP smoke run of src.train ($((SECONDS - T0)) s)"
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$NGPU" -ge 2 ]; then
    RUN=/tmp/ddp_smoke
    timeout 60 $PY -m src.train experiment=gca_refine trainer=ddp trainer.devices="$NGPU" \
        trainer.precision=bf16-mixed logger=csv data=mate data.root="$PWD/.photos" data.crop=null \
        data.batch_size=$((8 * NGPU)) data.num_workers=6 trainer.max_epochs=2 extras.print_config=false \
        hydra.run.dir="$RUN" >"$OUT/ddp_smoke.log" 2>&1
    echo "exit code $?"
    grep -E "optimized metric|Error|error:" "$OUT/ddp_smoke.log" | tail -5
    ls "$RUN" "$RUN"/csv 2>/dev/null | tr '\n' ' '; echo
    cp "$RUN"/csv/version_0/metrics.csv "$OUT/ddp_smoke_metrics.csv" 2>/dev/null
fi
echo "done in $((SECONDS - T0)) s"
