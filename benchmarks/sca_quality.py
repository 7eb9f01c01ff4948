"""SCA quality, do-no-harm and speed on any folder of photos (the paper's setting), per scene.

Corruption: the paper preset (JPEG Q75 4:2:0 with a 160-px EXIF thumbnail, AES-128-CBC-ESSIV, BER 1e-5 on
the scan sectors; ``--ber`` to change), robust decode (paper strategy), then SCA. Ground truth is the decoded
clean JPEG. Which size a photo is corrupted at:

* ``--photos DIR`` (any folder; sub-folders, else the file-name part before the first ``_``, are the groups,
  e.g. ``castle-P19_0003.jpg`` -> ``castle-P19``, ``CUrban100_img_004.jpg`` -> ``CUrban100``): a photo at
  least as large as the first ``--sizes`` entry (2048x1024 by default; either orientation) is corrupted at its
  native size, cropped to whole 16-px MCUs; a smaller one at its native size cropped to whole MCUs too, never
  upscaled (``--fit cover`` resizes every photo to cover the first size and centre-crops instead);
* no ``--photos``: scikit-image's bundled photos resized to cover 2048x1024 and centre-cropped (upscaled:
  smooth content; quick, the ``make bench`` case).

The other ``--sizes`` are the paper's protocol: output and ground truth downscaled (bicubic) by the ratio of
the first size to that one. Rows: ``pillow`` (the standard decoder), ``none`` (robust decode, clipped),
``paper`` (the Two-ACIR SCA), ``dc`` (ours, no thumbnail), ``dc_thumb`` (ours with the header thumbnail) and
``oracle`` (true shifts and offsets recovered from the clean file, the ``dc_thumb`` fill: the ceiling of that
fill). Printed per group and overall: Y-PSNR mean, 10th percentile and worst file (name) per size, Cb/Cr PSNR
(JPEG's full-range YCbCr) at the first size, the share of the remaining squared Y error that lies in pixels
the method marks trusted, and SCA milliseconds per image (process time).

``--clean``: do no harm. Every file is decoded as it is (JPEG files keep their own bytes, headers and
thumbnails; other images and the bundled photos are encoded at ``--clean-sizes`` in 4:2:0 and 4:4:4) and
compensated without corruption; a file counts as changed when its Y-PSNR against the plain decode is below
50 dB, and the bit-identical ones are counted.

``--baseline SRC_ROOT``: the same command first runs with ``SRC_ROOT``'s ``src`` package (e.g. the main
checkout) in a subprocess, and the table shows both (``base`` / ``ours``) from the same run.

    python -m benchmarks.sca_quality [--photos DIR] [--sizes 2048x1024,1024x512,512x256] [--seeds 1]
        [--methods none,paper,dc,dc_thumb,oracle] [--include GLOB,..] [--split all|tune|held] [--limit N]
        [--clean] [--baseline SRC_ROOT] [--json PATH]

``--split``: ``tune`` / ``held`` keep the photos whose CRC-32 of the file name is even / odd (a fixed half of
every group: tune on one, report the other).
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file (the --baseline subprocess): the src on PYTHONPATH wins
    sys.path.append(str(ROOT))

from src.corruption import Corruptor, encode_jpeg  # noqa: E402
from src.jpeg import decode  # noqa: E402
from src.metrics import psnr_y  # noqa: E402
from src.sca import compensate  # noqa: E402
from src.sca.compensate import render_uint8  # noqa: E402
from src.sca.diagnostics import true_alignment  # noqa: E402
from src.sca.thumbnail import decode_thumbnail, thumbnail_reference  # noqa: E402
from src.sca.tiles import mcu_features  # noqa: E402
from src.utils.images import load_rgb, resize_cover  # noqa: E402
from src.utils.photos import bundled_photos, list_images  # noqa: E402

METHODS = ("none", "paper", "dc", "dc_thumb", "oracle")
ROWS = ("pillow", *METHODS)
CLEAN_SIZES = ((256, 128), (512, 256), (768, 384), (1024, 512), (2048, 1024))
MCU = 16


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def group_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem.split("_")[0]


def in_split(name: str, split: str) -> bool:
    if split == "all":
        return True
    return (zlib.crc32(name.encode()) % 2 == 0) == (split == "tune")


def crop_mcus(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    h2, w2 = h - h % MCU, w - w % MCU
    top, left = (h - h2) // 2, (w - w2) // 2
    return np.ascontiguousarray(rgb[top : top + h2, left : left + w2])


def photo_list(args) -> list[tuple[str, str, Path | None, np.ndarray | None]]:
    """(group, name, path or None, rgb or None (loaded lazily)) of every selected photo."""
    if args.photos is None:
        return [("bundled", n, None, rgb) for n, rgb in bundled_photos().items()]
    root = Path(args.photos)
    pats = [p for p in (args.include or "").split(",") if p]
    out = []
    for p in list_images(root):
        if pats and not any(fnmatch.fnmatch(p.name, pat) for pat in pats):
            continue
        if in_split(p.name, args.split):
            out.append((group_of(p, root), p.stem, p, None))
    if args.limit:
        per: dict[str, int] = {}
        kept = []
        for item in out:
            per[item[0]] = per.get(item[0], 0) + 1
            if per[item[0]] <= args.limit:
                kept.append(item)
        out = kept
    return out


def prepare(rgb: np.ndarray, base: tuple[int, int], fit: str, bundled: bool) -> np.ndarray:
    """The image corrupted: see the module doc."""
    if bundled or fit == "cover":
        return resize_cover(rgb, base)
    return crop_mcus(rgb)


def pillow_decode(data: bytes, shape) -> np.ndarray:
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except OSError:
        return np.full(shape, 128, np.uint8)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def downscale(img: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))


def chroma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR over Cb and Cr together (JPEG's full-range BT.601 YCbCr, float64, peak 255)."""
    m = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    d = (a.astype(np.float64) - b.astype(np.float64)) @ m.T
    mse = float(np.mean(d**2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-10))


def y_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    return ((a.astype(np.float64) - b.astype(np.float64)) @ w) ** 2


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb01 * 255.0), 0, 255).astype(np.uint8)


def oracle_image(bad, clean, thumb) -> np.ndarray:
    truth = true_alignment(bad, clean)
    steps = np.array([float(np.asarray(q).reshape(-1)[0]) / 8.0 for q in clean.qtables])
    feats = mcu_features(bad.planes, bad.mcu_rows, bad.mcu_cols, bad.dc, steps)
    ref = None
    if thumb is not None:
        ref = thumbnail_reference(thumb, bad.planes, bad.width, bad.height, bad.mcu_rows, bad.mcu_cols)
    hole = truth.source < 0
    src = np.where(hole, 0, truth.source)
    return render_uint8(bad, feats, src, truth.offset[src], hole, ref)


def evaluate(sample, methods, factors) -> dict:
    """One corrupted sample: {row: {"y": [psnr per size], "c": chroma psnr, "trusted": share, "ms": ms}}."""
    clean = decode(sample.clean_jpeg)
    gt = clean.to_rgb()
    bad = decode(sample.corrupted_jpeg)
    thumb = decode_thumbnail(sample.thumbnail)
    out = {}
    imgs = {"pillow": (pillow_decode(sample.corrupted_jpeg, gt.shape), None, None)}
    for m in methods:
        if m == "oracle":
            imgs[m] = (oracle_image(bad, clean, thumb), None, None)
            continue
        c0 = time.process_time()
        comp = compensate(bad, thumb, m)
        ms = (time.process_time() - c0) * 1000.0
        imgs[m] = (to_uint8(comp.rgb), comp.trust, ms)
    gts = [downscale(gt, f) for f in factors]
    for row, (img, trust, ms) in imgs.items():
        if img.shape != gt.shape:
            img = np.asarray(Image.fromarray(img).resize(gt.shape[1::-1], Image.Resampling.BICUBIC))
        rec = {"y": [psnr_y(downscale(img, f), g) for f, g in zip(factors, gts, strict=True)]}
        rec["c"] = chroma_psnr(img, gt)
        if trust is not None:
            err = y_error(img, gt)
            tot = float(err.sum())
            rec["trusted"] = float((err * (trust >= 0.5)).sum() / tot) if tot > 0 else float("nan")
            rec["ms"] = ms
        out[row] = rec
    return out


def run_quality(args) -> dict:
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    base = sizes[0]
    factors = [base[0] / s[0] for s in sizes]
    methods = tuple(m for m in METHODS if m in args.methods.split(","))
    corruptor = Corruptor.from_preset("paper", ber=args.ber)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    records = []
    warm = False
    for group, name, path, rgb in photo_list(args):
        img = prepare(load_rgb(path) if rgb is None else rgb, base, args.fit, path is None)
        for seed in seeds:
            sample = corruptor.corrupt(img, seed=seed)
            if not warm:  # JIT compile outside the timings
                compensate(decode(sample.corrupted_jpeg), None, "dc")
                warm = True
            res = evaluate(sample, methods, factors)
            records.append({"group": group, "name": name, "seed": seed, "hits": len(sample.positions), **res})
            if args.verbose:
                line = " ".join(f"{r}={res[r]['y'][0]:.2f}" for r in ROWS if r in res)
                size = f"{img.shape[1]}x{img.shape[0]}"
                hits = len(sample.positions)
                print(
                    f"  {group:14s} {name:24s} s{seed} {size} hits {hits:3d}  {line}",
                    file=sys.stderr,
                    flush=True,
                )
    return {"kind": "quality", "sizes": args.sizes, "records": records}


def clean_cases(args):
    """(group, name, jpeg bytes) of every intact file of the --clean run."""
    if args.photos is None:
        for name, rgb in bundled_photos().items():
            for w, h in CLEAN_SIZES:
                small = resize_cover(rgb, (w, h))
                for sub in ("4:2:0", "4:4:4"):
                    yield "bundled", f"{name}@{w}x{h}/{sub}", encode_jpeg(small, quality=75, subsampling=sub)
        return
    for group, name, path, _ in photo_list(args):
        if path.suffix.lower() in (".jpg", ".jpeg"):
            yield group, name, path.read_bytes()
        else:
            rgb = crop_mcus(load_rgb(path))
            for sub in ("4:2:0", "4:4:4"):
                yield group, f"{name}/{sub}", encode_jpeg(rgb, quality=75, subsampling=sub)


def run_clean(args) -> dict:
    methods = [m for m in ("dc", "dc_thumb") if m in args.methods.split(",")] or ["dc", "dc_thumb"]
    records = []
    for group, name, data in clean_cases(args):
        try:
            dec = decode(data)
        except Exception as exc:  # an undecodable header: not SCA's business
            print(f"  {name}: not decodable ({exc})", file=sys.stderr)
            continue
        want = dec.to_rgb()
        thumb = decode_thumbnail(dec.thumbnail)
        rec = {"group": group, "name": name}
        for m in methods:
            c0 = time.process_time()
            comp = compensate(dec, thumb, m)
            ms = (time.process_time() - c0) * 1000.0
            got = to_uint8(comp.rgb)
            same = got.shape == want.shape and bool(np.array_equal(got, want))
            rec[m] = {"y": min(psnr_y(got, want), 99.0) if got.shape == want.shape else 0.0, "same": same,
                      "ms": ms}  # fmt: skip
            if args.verbose and not same:
                print(f"  {name} {m}: changed, {rec[m]['y']:.2f} dB", file=sys.stderr, flush=True)
        records.append(rec)
    return {"kind": "clean", "methods": methods, "records": records}


# ------------------------------------------------------------------------------------------------ tables
def _stats(vals: list[float], names: list[str]) -> str:
    v = np.asarray(vals)
    k = int(np.argmin(v))
    return f"{v.mean():6.2f} {np.percentile(v, 10):6.2f} {v[k]:6.2f} {names[k][:22]:22s}"


def print_quality(runs: dict[str, dict]) -> None:
    first = next(iter(runs.values()))
    sizes = first["sizes"].split(",")
    groups = sorted({r["group"] for r in first["records"]})
    if len(groups) > 1:
        groups.append("ALL")
    n = len(first["records"])
    print(f"{n} corrupted images, mean {np.mean([r['hits'] for r in first['records']]):.1f} bit errors each")
    print("Y-PSNR mean / p10 / worst file (dB); cbcr: Cb/Cr PSNR mean; trusted: share of the remaining")
    print("squared Y error in trusted pixels (mean over files); ms: SCA process time per image (median);")
    print("<none: files more than 0.1 dB below the robust decode (first size)")
    for g in groups:
        print(f"\n== {g}")
        head = "  ".join(f"{s + ' mean p10 worst':>44s}" for s in sizes)
        print(f"{'run':5s} {'method':9s} {head}   cbcr trusted     ms <none")
        for tag, run in runs.items():
            recs = [r for r in run["records"] if g == "ALL" or r["group"] == g]
            names = [f"{r['name']}/s{r['seed']}" for r in recs]
            for m in ROWS:
                if not recs or m not in recs[0]:
                    continue
                cells = "  ".join(
                    f"{_stats([r[m]['y'][k] for r in recs], names):>44s}" for k in range(len(sizes))
                )
                c = np.mean([r[m]["c"] for r in recs])
                tr = [r[m]["trusted"] for r in recs if "trusted" in r[m] and np.isfinite(r[m]["trusted"])]
                trs = f"{100 * np.mean(tr):6.1f}%" if tr else "      -"
                ms = [r[m]["ms"] for r in recs if "ms" in r[m]]
                mss = f"{np.median(ms):6.1f}" if ms else "     -"
                below = sum(r[m]["y"][0] < r["none"]["y"][0] - 0.1 for r in recs) if "none" in recs[0] else 0
                print(f"{tag:5s} {m:9s} {cells}  {c:5.2f} {trs} {mss} {below:5d}")
    if "ours" in runs and "base" in runs:
        ms = {t: {m: np.median([r[m]["ms"] for r in run["records"]]) for m in ("dc", "dc_thumb")
                  if m in run["records"][0]} for t, run in runs.items()}  # fmt: skip
        o, b = ms["ours"], ms["base"]
        cells = [f"{m} {o[m]:.1f} / {b[m]:.1f} ms = {o[m] / b[m]:.2f}x" for m in o if m in b]
        print("\nSCA time, ours / base (median per image): " + ", ".join(cells))


def print_clean(runs: dict[str, dict]) -> None:
    for tag, run in runs.items():
        recs = run["records"]
        for g in [*sorted({r["group"] for r in recs}), "ALL"]:
            sel = [r for r in recs if g == "ALL" or r["group"] == g]
            parts = []
            for m in run["methods"]:
                changed = [r["name"] for r in sel if r[m]["y"] < 50.0]
                same = sum(r[m]["same"] for r in sel)
                worst = min(sel, key=lambda r: r[m]["y"])
                ms = np.median([r[m]["ms"] for r in sel])
                parts.append(f"{m}: {len(changed)} changed (<50 dB), {same}/{len(sel)} bit-identical, worst"
                             f" {worst[m]['y']:.1f} dB {worst['name'][:24]}, {ms:.1f} ms")  # fmt: skip
            print(f"{tag:5s} {g:14s} " + "; ".join(parts))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--photos", default=None, help="folder of photos (default: scikit-image's bundled photos)"
    )
    ap.add_argument(
        "--sizes", default="2048x1024,1024x512,512x256", help="first: corruption size; others: protocol"
    )
    ap.add_argument("--fit", choices=("native", "cover"), default="native", help="size of --photos (see doc)")
    ap.add_argument("--seeds", type=int, default=1, help="corruptions per photo")
    ap.add_argument("--seed0", type=int, default=0, help="first seed")
    ap.add_argument("--ber", type=float, default=1e-5)
    ap.add_argument("--methods", default="none,paper,dc,dc_thumb,oracle")
    ap.add_argument("--include", default=None, help="comma-separated file-name globs (default: all)")
    ap.add_argument("--split", choices=("all", "tune", "held"), default="all")
    ap.add_argument("--limit", type=int, default=0, help="at most N photos per group (0: all)")
    ap.add_argument("--clean", action="store_true", help="do-no-harm check on intact files")
    ap.add_argument(
        "--baseline", default=None, help="another checkout's root: its src runs first (subprocess)"
    )
    ap.add_argument("--json", default=None, help="write the per-file records here")
    ap.add_argument("--verbose", action="store_true", help="one line per file on stderr")
    ap.add_argument("--no-table", action="store_true", help=argparse.SUPPRESS)  # the --baseline subprocess
    args = ap.parse_args(argv)
    runs = {}
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "base.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), *(argv or sys.argv[1:])]
            i = cmd.index("--baseline")
            del cmd[i : i + 2]
            env = {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}
            print(f"baseline: src of {args.baseline}", flush=True)
            subprocess.run([*cmd, "--json", str(out), "--no-table"], env=env, check=True)
            runs["base"] = json.loads(out.read_text())
    runs["ours"] = run_clean(args) if args.clean else run_quality(args)
    if args.json:
        Path(args.json).write_text(json.dumps(runs["ours"]))
    if args.no_table:
        return
    if args.clean:
        print_clean(runs)
    else:
        print_quality(runs)


if __name__ == "__main__":
    main()
