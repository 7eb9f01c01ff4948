"""Downscale a folder of JPEG photos into a small, portable copy (e.g. to carry to a training machine).

Default source: Debian's mate-backgrounds nature photos (``/usr/share/backgrounds/mate/nature/*.jpg``,
GPL-2+; ``make photos`` installs them). Each is downscaled (Lanczos) to at most ``--long-side`` pixels on the
long side (2048: the paper's corruption width, so no detail the pipeline could use is lost) and re-encoded as
JPEG quality 95, 4:4:4 (close to lossless against the Q75 corruption encode), EXIF orientation applied.
Skips files that are already there and newer than their source, and prints the folder's size.

    python -m scripts.shrink_photos [--src /usr/share/backgrounds/mate/nature] [--out .photos]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image, ImageOps

from src.errors import BitstreamRestoreError
from src.utils import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_SRC = Path("/usr/share/backgrounds/mate/nature")


class PhotoSetError(BitstreamRestoreError):
    """The source folder is missing or holds no JPEG."""


def shrink(src: Path, long_side: int, quality: int = 95) -> bytes:
    """``src`` as JPEG bytes, EXIF-oriented and downscaled (Lanczos) to at most ``long_side`` px."""
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        scale = long_side / max(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality, subsampling=0, optimize=True)
        return buf.getvalue()


def prepare(src: Path, out: Path, long_side: int) -> list[Path]:
    """Write the shrunk copies of ``src/*.jpg`` into ``out``; returns the files of ``out`` it manages."""
    photos = sorted(p for p in src.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not photos:
        raise PhotoSetError(f"no JPEG photo in {src} (install mate-backgrounds: `make photos`)")
    written = []
    for p in photos:
        dst = out / f"{p.stem}.jpg"
        if not (dst.exists() and dst.stat().st_mtime >= p.stat().st_mtime):
            atomic_write_bytes(dst, shrink(p, long_side))
        written.append(dst)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="folder of JPEG photos")
    ap.add_argument("--out", type=Path, default=ROOT / ".photos", help="output folder (git-ignored)")
    ap.add_argument("--long-side", type=int, default=2048, help="max long side in pixels")
    args = ap.parse_args()
    files = prepare(args.src, args.out, args.long_side)
    total = sum(f.stat().st_size for f in files)
    print(f"{len(files)} photos in {args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
