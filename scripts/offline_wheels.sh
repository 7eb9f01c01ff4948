#!/usr/bin/env bash
# Wheels of the project's small dependencies, for a machine that already has torch, lightning and numpy (a GPU
# image, say) but cannot reach a package index: download them here, carry the folder, then there run
#   pip install --no-index --no-deps --target SITE DIR/*.whl   and put SITE on PYTHONPATH.
#
#   bash scripts/offline_wheels.sh [DIR]                  # default .whl (git-ignored)
#   PYVER=3.12 PLATFORM=manylinux_2_28_x86_64 bash scripts/offline_wheels.sh
#
# PACKAGES (space-separated pip specs; default: the versions the project was tested with) overrides the list;
# PYVER / PLATFORM select the target interpreter and platform (default: this one's).
set -euo pipefail
DIR=${1:-.whl}
PY=${PY:-python3}
PACKAGES=${PACKAGES:-hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 kornia==0.9.0 kornia_rs==0.2.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 piexif==1.1.3}
mkdir -p "$DIR"
TARGET=()
[ -n "${PYVER:-}" ] && TARGET+=(--python-version "$PYVER" --implementation cp)
[ -n "${PLATFORM:-}" ] && TARGET+=(--platform "$PLATFORM")
# antlr4-python3-runtime 4.9.3 (hydra's pin) ships as an sdist only: build its wheel
for spec in $PACKAGES; do
    if [ "$spec" = "antlr4-python3-runtime==4.9.3" ]; then
        $PY -m pip wheel -q --no-deps "$spec" -w "$DIR"
    else
        $PY -m pip download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$DIR" "$spec"
    fi
done
ls -la "$DIR"
