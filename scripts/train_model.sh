#!/usr/bin/env bash
# Train (or continue training) the shipped gca_refine model on a folder of photos and export the compact
# generator. Run from the repository root. Results go to $OUT:
#   train.log, train_metrics.csv, run_config.yaml, gca_refine.pt (the int8 export), gca_refine.pt.sha256.
# Then: scripts/model_eval.sh (or src.eval on a benchmark folder) and
#   python -m scripts.ship_model --file $OUT/gca_refine.pt --config $OUT/run_config.yaml
#
#   PHOTOS=photos TRAIN_SECONDS=480 bash scripts/train_model.sh                     # warm start from weights/
#   PHOTOS=photos INIT= TRAIN_SECONDS=1800 bash scripts/train_model.sh              # from scratch
#   ACCEL=cpu SMOKE=1 PHOTOS=photos TRAIN_SECONDS=30 EPOCHS=2 bash scripts/train_model.sh  # plumbing check
#
# PHOTOS: a folder with train/ and val/ sub-folders (searched recursively: any layout below them), e.g. made
# by scripts/shrink_photos.py --cover 2048x1024. Every sample is corrupted afresh (data.cache_clean keeps only
# each photo's clean JPEG), at 2048x1024, with a BER drawn log-uniformly from BER (default [5e-6,2e-4]), and
# trained at 512x256 / 1024x512 / 2048x1024 (drawn per sample), 256x256 crops centred on damage 90 % of the time.
# Environment: PY (default python3), OUT (default outputs/train_model), INIT (warm start: an exported generator
# or a checkpoint, default weights/gca_refine.pt; empty: random init), BER, TRAIN_SECONDS (Trainer max_time),
# EPOCHS (the schedule: constant for EPOCHS/2, then linear decay; max_time may stop it earlier), REPEATS
# (data.train_repeats: samples per photo and epoch), BATCH_PER_GPU, ACCEL (gpu | cpu), SMOKE (1: small sizes and
# net), LOGGER (default csv; wandb needs the wandb package), EXTRA (more src.train overrides).
set -uo pipefail
OUT=${OUT:-outputs/train_model}
mkdir -p "$OUT"
T0=$SECONDS
export PYTHONUNBUFFERED=1 WANDB_MODE=${WANDB_MODE:-offline}
# one BLAS / OpenMP thread per process: many DataLoader workers must not each start a machine-wide pool
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=${PY:-python3}
ACCEL=${ACCEL:-gpu}
PHOTOS=${PHOTOS:?set PHOTOS to a folder with train/ and val/ sub-folders}
INIT=${INIT-weights/gca_refine.pt}
BER=${BER:-[5e-6,2e-4]}
TRAIN_SECONDS=${TRAIN_SECONDS:-480}
MAX_TIME=$(printf "00:%02d:%02d:%02d" $((TRAIN_SECONDS / 3600)) $((TRAIN_SECONDS % 3600 / 60)) $((TRAIN_SECONDS % 60)))
EPOCHS=${EPOCHS:-16}
[ -d "$PHOTOS/train" ] && [ -d "$PHOTOS/val" ] || { echo "train_model: error: $PHOTOS needs train/ and val/" >&2; exit 2; }

if [ "$ACCEL" = gpu ]; then
    NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
    HW="trainer.precision=bf16-mixed data.num_workers=$(( ($(nproc --all) - 2) / NGPU ))"
    HW="$HW data.batch_size=$((${BATCH_PER_GPU:-16} * NGPU)) data.pin_memory=true"
    if [ "$NGPU" -gt 1 ]; then HW="trainer=ddp trainer.devices=$NGPU $HW"; else HW="trainer=gpu $HW"; fi
else
    NGPU=1
    HW="trainer=cpu data.num_workers=2 data.batch_size=2"
fi
SIZES="data.corruption_size=[2048,1024] data.scale=[512,256]"
SCALES="data.train_scales=[[512,256],[1024,512],[2048,1024]] data.crop_focus=0.9"
CROP="data.crop=[256,256]"
MODEL=""
if [ "${SMOKE:-0}" = 1 ]; then
    SIZES="data.corruption_size=[512,256] data.scale=[256,128]" CROP="data.crop=[128,128]" MODEL="model=gca_refine_small"
    SCALES="data.train_scales=[[256,128],[512,256]] data.crop_focus=0.9"
fi
WARM=""
[ -n "$INIT" ] && WARM="model.init_from=$INIT"
RUN=$OUT/run
echo "== train ($((SECONDS - T0)) s): $NGPU device(s), max_time $MAX_TIME, BER $BER, init ${INIT:-random}"
# shellcheck disable=SC2086  # the override lists are meant to split
timeout $((TRAIN_SECONDS + 150)) $PY -m src.train experiment=gca_refine data=folder data.root="$PHOTOS" \
    'data.splits={train:train,val:val,test:val}' data.holdout=null $SIZES $CROP $MODEL $SCALES $WARM \
    "corruption.ber=$BER" data.cache_clean=true data.train_repeats=${REPEATS:-8} $HW \
    trainer.max_epochs=$EPOCHS model.scheduler.epochs_constant=$((EPOCHS / 2)) \
    model.scheduler.epochs_decay=$((EPOCHS - EPOCHS / 2)) "trainer.max_time=$MAX_TIME" \
    trainer.log_every_n_steps=20 logger=${LOGGER:-csv} test=false run_dir="$RUN" ${EXTRA:-} 2>&1 \
    | grep --line-buffered -v -E "Warning|warnings.warn|litlogger|^$" \
    | tee "$OUT/train.log" | grep --line-buffered -E "Epoch [0-9]+:.*100%|val/|Error|error|Traceback" | tail -40
cp "$RUN/run_config.yaml" "$OUT/" 2>/dev/null
cp "$RUN/metrics.csv" "$OUT/train_metrics.csv" 2>/dev/null
cp "$RUN/summary.json" "$OUT/train_summary.json" 2>/dev/null
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
ls -l "$OUT"; cat "$OUT/gca_refine.pt.sha256"
echo "== done ($((SECONDS - T0)) s)"
