#!/usr/bin/env bash
# Train the shipped gca_refine model (DDP over every GPU of the machine) and export the compact generator.
# Run from the repository root; the photos: scripts/model_photos.py's split of MATE (mate-backgrounds, e.g.
# .photos from scripts/shrink_photos.py) + the bundled photos. Results go to $OUT:
#   train.log, train_metrics.csv (Lightning CSV logger), run_config.yaml, gca_refine.pt (the int8 export) and
#   gca_refine.pt.sha256. Evaluation runs on CPU afterwards: scripts/model_eval.sh; then
#   python -m scripts.ship_model --file $OUT/gca_refine.pt --config $OUT/run_config.yaml
#
#   TRAIN_SECONDS=450 EPOCHS=300 BATCH_PER_GPU=16 bash scripts/train_model.sh       # the shipped model's run
#   ACCEL=cpu TRAIN_SECONDS=30 EPOCHS=2 SMOKE=1 bash scripts/train_model.sh         # a CPU check of the plumbing
#
# Environment: PY (default python3), OUT (default outputs/train_model), MATE (default .photos), TRAIN_SECONDS
# (the fit's wall-clock budget, Trainer max_time), EPOCHS, BATCH_PER_GPU, REPEATS (data.train_repeats),
# EVAL_SECONDS (> 0: a quick eval on the held-out photos), ACCEL (gpu | cpu), SMOKE (1: small sizes and net).
set -uo pipefail
OUT=${OUT:-outputs/train_model}
mkdir -p "$OUT"
T0=$SECONDS
export PYTHONUNBUFFERED=1 WANDB_MODE=offline
# one BLAS / OpenMP thread per process: many DataLoader workers must not each start a machine-wide pool
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=${PY:-python3}
ACCEL=${ACCEL:-gpu}
TRAIN_SECONDS=${TRAIN_SECONDS:-330}
MAX_TIME=$(printf "00:%02d:%02d:%02d" $((TRAIN_SECONDS / 3600)) $((TRAIN_SECONDS % 3600 / 60)) $((TRAIN_SECONDS % 60)))
# REPEATS (data.train_repeats, 16 for the shipped model): an epoch is 13 photos * REPEATS samples. The shipped
# run averaged 2.8 batches/s over 450 s with 13-batch epochs (each restarts the loaders and writes last.ckpt);
# a 120-s check with REPEATS=128 (104-batch epochs, H200) ran 12.3 batches/s inside an epoch and 4.9 on average
# with the cold cache build: use REPEATS=128 and EPOCHS / 8 next.
EPOCHS=${EPOCHS:-200}   # the schedule: constant for EPOCHS/2, then linear decay (max_time may stop it earlier)
VAL_EVERY=$(( EPOCHS < 5 ? EPOCHS : 5 ))   # a short check run validates too (train needs val/psnr_y)
PHOTOS=$OUT/photos
$PY -m scripts.model_photos --mate "${MATE:-.photos}" --out "$PHOTOS" || exit 1

if [ "$ACCEL" = gpu ]; then
    NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
    HW="trainer=ddp trainer.devices=$NGPU trainer.precision=bf16-mixed data.num_workers=$(( ($(nproc --all) - 2) / NGPU ))"
    HW="$HW data.batch_size=$((${BATCH_PER_GPU:-16} * NGPU)) data.pin_memory=true"
else
    NGPU=1
    HW="trainer=cpu data.num_workers=2 data.batch_size=2"
fi
SIZES="data.corruption_size=[2048,1024] data.scale=[512,256]"
# one model for every scale (the paper's three benchmarks and real photos): samples built at 2048x1024,
# downscaled per sample; crops centred on what SCA filled 90 % of the time
SCALES="data.train_scales=[[512,256],[1024,512],[2048,1024]] data.crop_focus=0.9"
CROP="data.crop=[256,256]"
MODEL=""
if [ "${SMOKE:-0}" = 1 ]; then
    SIZES="data.corruption_size=[512,256] data.scale=[256,128]" CROP="data.crop=[128,128]" MODEL="model=gca_refine_small"
    SCALES="data.train_scales=[[256,128],[512,256]] data.crop_focus=0.9"
fi
RUN=$OUT/run
echo "== train ($((SECONDS - T0)) s): $NGPU device(s), max_time $MAX_TIME"
timeout $((TRAIN_SECONDS + 150)) $PY -m src.train experiment=gca_refine data=folder data.root="$PHOTOS" \
    'data.splits={train:train,val:val,test:test}' data.holdout=null $SIZES $CROP $MODEL \
    $SCALES data.train_repeats=${REPEATS:-16} data.cache_variants=32 data.cache_dir="$OUT/sample_cache" \
    data.persistent_workers=true $HW \
    trainer.max_epochs=$EPOCHS model.scheduler.epochs_constant=$((EPOCHS / 2)) model.scheduler.epochs_decay=$((EPOCHS / 2)) \
    "trainer.max_time=$MAX_TIME" trainer.check_val_every_n_epoch=$VAL_EVERY trainer.log_every_n_steps=10 \
    logger=csv test=false hydra.run.dir="$RUN" 2>&1 | grep --line-buffered -v -E "Warning|warnings.warn|litlogger|^$" \
    | tee "$OUT/train.log" | grep --line-buffered -E "Epoch [0-9]+:.*100%|val/|Error|error|Traceback" | tail -40
cp "$RUN/run_config.yaml" "$OUT/" 2>/dev/null
find "$RUN" -name metrics.csv -exec cp {} "$OUT/train_metrics.csv" \;
CKPT=$RUN/checkpoints/last.ckpt
[ -f "$CKPT" ] || { echo "no checkpoint"; exit 1; }

echo "== export ($((SECONDS - T0)) s)"
$PY - "$CKPT" "$OUT/gca_refine.pt" <<'PYEOF' || { echo "export failed"; exit 1; }
import sys
from src.gca import load_generator, export_generator
path = export_generator(load_generator(sys.argv[1]), sys.argv[2], dtype="int8")
print(f"exported {path} ({path.stat().st_size / 2**20:.1f} MiB)")
PYEOF
(cd "$OUT" && sha256sum gca_refine.pt > gca_refine.pt.sha256) || exit 1

if [ "${EVAL_SECONDS:-0}" -gt 0 ]; then  # a quick look on held-out photos; the full table: scripts/model_eval.sh
    echo "== quick eval ($((SECONDS - T0)) s)"
    DEV=cuda; [ "$ACCEL" = gpu ] || DEV=cpu
    timeout "$EVAL_SECONDS" $PY -m src.eval ckpt_path="$OUT/gca_refine.pt" device=$DEV data=folder data.root="$PHOTOS" \
        'data.splits={train:train,val:val,test:test}' data.holdout=null $SIZES 'scales=[1.0,0.5,0.25]' \
        'bers=[1e-5]' 'sca_methods=[dc_thumb]' seeds_per_image=${EVAL_SEEDS:-2} save_images=0 \
        hydra.run.dir="$OUT/eval" 2>&1 | grep -v -E "Warning|warnings.warn" | tail -25
fi
ls -l "$OUT"; cat "$OUT/gca_refine.pt.sha256"
echo "== done ($((SECONDS - T0)) s)"
