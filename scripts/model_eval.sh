#!/usr/bin/env bash
# Evaluate a generator on the held-out photos of the shipped model, on CPU, in the paper's protocol: the test
# split of scripts/model_photos.py (3 mate-backgrounds + 3 scikit-image photos, never trained on), corrupted
# at 2048x1024 with BER 1e-5, scored at 2048x1024, 1024x512 and 512x256 (Pillow, robust decode, each SCA
# variant, thumbnail, model). Writes table.md, metrics.csv and side-by-side PNGs to $OUT_DIR.
#
#   bash scripts/model_eval.sh [GENERATOR] [extra src.eval overrides ...]
#   SEEDS=3 bash scripts/model_eval.sh weights/gca_refine.pt             # 3 corruptions per photo
#   python -m scripts.ship_model --metrics outputs/model_eval/table.md   # then ship the table with the model
#
# GENERATOR: an export (src.gca.export_generator) or a src.train checkpoint; default weights/gca_refine.pt.
# Environment: SEEDS (seeds_per_image, default 1), MAX_IMAGES (default all 6), OUT_DIR (default
# outputs/model_eval), MATE (the mate photos, default .photos from scripts/shrink_photos.py, else the installed
# /usr/share/backgrounds/mate/nature), PHOTOS (where the split is laid out, default outputs/model_photos), PY
# (default .venv/bin/python).
# Time on a 2-core CPU with the full gca_refine generator (18.1 M parameters, 45-60 s a forward at 2048x1024):
# about 105 s per photo and seed, so 11 min with SEEDS=1, 32 min with SEEDS=3.
set -euo pipefail
cd "$(dirname "$0")/.."
GEN=${1:-weights/gca_refine.pt}
[ $# -gt 0 ] && shift
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-1}
OUT_DIR=${OUT_DIR:-outputs/model_eval}
PHOTOS=${PHOTOS:-outputs/model_photos}
MATE=${MATE:-.photos}
[ -d "$MATE" ] || MATE=/usr/share/backgrounds/mate/nature
[ -f "$GEN" ] || { echo "model_eval: error: generator $GEN does not exist" >&2; exit 1; }
$PY -m scripts.model_photos --mate "$MATE" --out "$PHOTOS"
N=$(find "$PHOTOS/test" -type f | wc -l)
[ "$N" -gt 0 ] || { echo "model_eval: error: no test photos in $PHOTOS/test" >&2; exit 1; }
MAX=${MAX_IMAGES:-null}
echo "== eval of $GEN on $N held-out photo(s) (max_images=$MAX), $SEEDS seed(s), BER 1e-5, CPU -> $OUT_DIR"
T0=$SECONDS
$PY -m src.eval ckpt_path="$GEN" device=cpu data=folder data.root="$PHOTOS" \
    'data.splits={train:train,val:val,test:test}' data.holdout=null 'data.corruption_size=[2048,1024]' \
    'scales=[1.0,0.5,0.25]' 'bers=[1e-5]' seeds_per_image="$SEEDS" max_images="$MAX" \
    hydra.run.dir="$OUT_DIR" "$@"
echo "== done in $((SECONDS - T0)) s: $OUT_DIR/table.md"
