"""Lay out the photo set of the shipped model: ``<out>/{train,val,test}/`` from real photos.

Photos: Debian's mate-backgrounds nature set (``--mate``, e.g. ``.photos/`` made by
``scripts/shrink_photos.py``; GPL-2+) plus the photos bundled with scikit-image (CC0 / public domain). Held
out by name (never trained on): test = 3 mate photos + 3 bundled photos, val = 1 + 1; everything else trains.

    python -m scripts.model_photos --mate .photos --out /tmp/photos
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from src.utils.photos import bundled_photos

ROOT = Path(__file__).resolve().parents[1]

HELD_OUT = {
    "test": {"Garden", "RainDrops", "Storm", "coffee", "chelsea", "astronaut"},
    "val": {"Dune", "rocket"},
}


def split_of(name: str) -> str:
    return next((split for split, names in HELD_OUT.items() if name in names), "train")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mate", type=Path, default=ROOT / ".photos")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    counts: dict[str, int] = {"train": 0, "val": 0, "test": 0}
    for path in sorted(args.mate.glob("*.jpg")):
        split = split_of(path.stem)
        (args.out / split).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, args.out / split / path.name)
        counts[split] += 1
    for name, rgb in bundled_photos().items():
        split = split_of(name)
        (args.out / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(args.out / split / f"{name}.png")
        counts[split] += 1
    print(f"photos in {args.out}: {counts}")


if __name__ == "__main__":
    main()
