"""Downscale a folder of JPEG photos into a small, portable copy (e.g. to carry to a training machine).

Default source: Debian's mate-backgrounds nature photos (``/usr/share/backgrounds/mate/nature/*.jpg``,
GPL-2+; ``make photos`` installs them). Each is downscaled (Lanczos) to at most ``--long-side`` pixels on the
long side (2048: the paper's corruption width, so no detail the pipeline could use is lost) and re-encoded as
JPEG (``--quality``, default 95, 4:4:4: close to lossless against the Q75 corruption encode), EXIF
orientation applied. ``--cover WxH`` instead resizes a photo that covers WxH down to the smallest size that
still covers it and centre-crops it to WxH (what the training pipeline does with ``data.corruption_size``),
so nothing the pipeline would use is lost and nothing it would crop away is kept; smaller photos keep their
size.
Skips files that are already there and newer than their source, and prints the folder's size.

    python -m scripts.shrink_photos [--src /usr/share/backgrounds/mate/nature] [--out .photos]
    python -m scripts.shrink_photos --src photos/train --out /tmp/train --cover 2048x1024 --quality 88
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


def shrink(
    src: Path, long_side: int, quality: int = 95, cover: tuple[int, int] | None = None, subsampling: int = 0
) -> bytes:
    """``src`` as JPEG bytes, EXIF-oriented and downscaled (Lanczos) to at most ``long_side`` px, or, with
    ``cover`` (W, H), to the smallest size covering (W, H) and centre-cropped to it (when it covers it)."""
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if cover is not None and im.width >= cover[0] and im.height >= cover[1]:
            im = ImageOps.fit(im, cover, Image.Resampling.LANCZOS)
        else:
            scale = long_side / max(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality, subsampling=subsampling, optimize=True)
        return buf.getvalue()


def prepare(
    src: Path,
    out: Path,
    long_side: int,
    quality: int = 95,
    cover: tuple[int, int] | None = None,
    subsampling: int = 0,
) -> list[Path]:
    """Write the shrunk copies of ``src/*.jpg`` into ``out``; returns the files of ``out`` it manages."""
    photos = sorted(p for p in src.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not photos:
        raise PhotoSetError(f"no JPEG photo in {src} (install mate-backgrounds: `make photos`)")
    written = []
    for p in photos:
        dst = out / f"{p.stem}.jpg"
        if not (dst.exists() and dst.stat().st_mtime >= p.stat().st_mtime):
            atomic_write_bytes(dst, shrink(p, long_side, quality, cover, subsampling))
        written.append(dst)
    return written


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 2048x1024, got {text!r}") from None
    return w, h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="folder of JPEG photos")
    ap.add_argument("--out", type=Path, default=ROOT / ".photos", help="output folder (git-ignored)")
    ap.add_argument("--long-side", type=int, default=2048, help="max long side in pixels")
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality of the copies")
    ap.add_argument("--cover", type=_size, default=None, metavar="WxH", help="cover-resize and centre-crop")
    ap.add_argument(
        "--subsampling", type=int, choices=(0, 1, 2), default=0, help="0: 4:4:4, 1: 4:2:2, 2: 4:2:0"
    )
    args = ap.parse_args()
    files = prepare(args.src, args.out, args.long_side, args.quality, args.cover, args.subsampling)
    total = sum(f.stat().st_size for f in files)
    print(f"{len(files)} photos in {args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
