#!/usr/bin/env bash
# The ablation table under one budget: the same photos, the same wall-clock minutes per row, the same seed.
# Rows: gca_refine (ours), gca_refine_paper (the paper's nets), no_thumbnail, no_sca, no_refine (one multirun),
# and staged training (gca_coarse for half the budget, then the refine pyramid on the frozen coarse net for the
# other half) against joint training (the gca_refine row). Ends with python -m src.report over all of them:
# $OUT/report.md (best / last val metrics, SCA-input baseline, steps/s per row) and $OUT/report.png.
#
#   PHOTOS=photos SECONDS_PER_ROW=60 bash scripts/ablation.sh                    # one GPU
#   ACCEL=cpu SMOKE=1 PHOTOS=photos SECONDS_PER_ROW=20 bash scripts/ablation.sh  # a CPU check of the plumbing
#
# PHOTOS: a folder with train/ and val/ sub-folders (as for scripts/train_model.sh). Every row trains from random
# initialisation (the variants' networks differ), corrupted afresh at 2048x1024 with BER drawn from BER, validated
# at data.scale (VAL_SCALE, default 512x256) on val/. Environment: PY, OUT (default outputs/ablation), BER,
# SECONDS_PER_ROW, BATCH, WORKERS, ACCEL (gpu | cpu), SMOKE (1: small sizes and nets), LOGGER (default csv;
# wandb needs the wandb package), EXTRA (more overrides), ROWS (the joint rows, comma-separated; default all five),
# SWEEP (their sub-folder of OUT, default grid), STAGED (0: skip the staged row). A table too long for one sitting
# runs in parts into the same OUT (e.g. ROWS=gca_refine,no_sca SWEEP=grid_a STAGED=0, then ROWS=... SWEEP=grid_b);
# each part's report covers every part found in OUT.
set -uo pipefail
OUT=${OUT:-outputs/ablation}
PY=${PY:-python3}
PHOTOS=${PHOTOS:?set PHOTOS to a folder with train/ and val/ sub-folders}
BER=${BER:-[5e-6,2e-4]}
S=${SECONDS_PER_ROW:-60}
ACCEL=${ACCEL:-gpu}
export PYTHONUNBUFFERED=1 WANDB_MODE=${WANDB_MODE:-offline} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
hms() { printf "00:%02d:%02d:%02d" $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }
if [ "$ACCEL" = gpu ]; then
    HW="trainer=gpu trainer.precision=bf16-mixed data.batch_size=${BATCH:-16} data.num_workers=${WORKERS:-$(( $(nproc --all) - 2 ))}"
else
    HW="trainer=cpu data.batch_size=2 data.num_workers=${WORKERS:-2}"
fi
SIZES="data.corruption_size=[2048,1024] data.scale=${VAL_SCALE:-[512,256]} data.crop=[256,256]"
SIZES="$SIZES data.train_scales=[[512,256],[1024,512],[2048,1024]] data.crop_focus=0.9"
SMALL=""
if [ "${SMOKE:-0}" = 1 ]; then
    SIZES="data.corruption_size=[512,256] data.scale=[256,128] data.crop=[128,128]"
    SIZES="$SIZES data.train_scales=[[256,128],[512,256]] data.crop_focus=0.9"
    SMALL="model.generator.ngf=8"
fi
COMMON="data=folder data.root=$PHOTOS data.splits={train:train,val:val,test:val} data.holdout=null"
COMMON="$COMMON corruption.ber=$BER data.cache_clean=true data.train_repeats=4 $SIZES $HW $SMALL"
COMMON="$COMMON trainer.max_epochs=1000 model.scheduler.epochs_constant=1000 test=false seed=7 logger=${LOGGER:-csv} ${EXTRA:-}"
ROWS=${ROWS:-gca_refine,gca_refine_paper,no_thumbnail,no_sca,no_refine}
if [ -n "$ROWS" ]; then
    echo "== joint rows ($ROWS): ${S} s each"
    # shellcheck disable=SC2086  # the override lists are meant to split
    $PY -m src.train -m "experiment=$ROWS" $COMMON \
        "trainer.max_time=$(hms "$S")" hydra.sweep.dir="$OUT/${SWEEP:-grid}" || exit 1
fi
if [ "${STAGED:-1}" = 1 ]; then
    echo "== staged row: gca_coarse $((S / 2)) s, then refine on the frozen coarse net $((S - S / 2)) s"
    # shellcheck disable=SC2086
    $PY -m src.train experiment=gca_coarse $COMMON "trainer.max_time=$(hms $((S / 2)))" \
        run_dir="$OUT/staged/coarse" experiment_name=staged_coarse || exit 1
    # shellcheck disable=SC2086
    $PY -m src.train experiment=gca_refine $COMMON "trainer.max_time=$(hms $((S - S / 2)))" \
        model.coarse_ckpt_path="$OUT/staged/coarse/checkpoints/last.ckpt" model.freeze_coarse=true \
        run_dir="$OUT/staged/refine" experiment_name=staged || exit 1
fi
PARTS=()
for d in "$OUT"/grid* "$OUT/staged/refine"; do [ -d "$d" ] && PARTS+=("$d"); done
$PY -m src.report "${PARTS[@]}" --out "$OUT"
