"""Real files through restore (issue 11's table): do no harm on clean files, corrupted files with their own
bytes, headers and thumbnails, mismatched thumbnails, restart intervals.

    python -m benchmarks.real_files [--photos DIR] [--seeds 1] [--ber 1e-5] [--limit N] [--mismatch N]
        [--include GLOB,..] [--per-file] [--baseline SRC_ROOT]

``--photos DIR``: every JPEG under DIR is used as it is (its own bytes, EXIF thumbnail, restart markers);
without it, scikit-image's bundled photos are encoded here (Q85, 4:2:0, a 160-px EXIF thumbnail, every
other one with restart markers, DRI 4), a stand-in for camera files. Restore runs as ``src.restore
ckpt_path=null`` does (``src.restoration.restore_bytes``: decoder ``paper``, SCA ``dc_thumb`` with the
thumbnail check, no model). The baseline of every row is measured in the same run: Pillow (libjpeg-turbo,
truncated images allowed) on the same bytes, and the plain robust decode.

Sections, all Y-PSNR (BT.601 Y, peak 255) against Pillow's decode of the clean file:

1. clean files: how many restore changes (Y-PSNR < 50 dB) and how many come back bit-identical;
2. corrupted files (the ``paper`` preset, BER ``--ber``, the file's own bytes and headers: the simulator with
   ``add_thumbnail=never``, nothing re-encoded): mean / p10 / worst for Pillow, the plain decode, ``dc``,
   ``dc_thumb`` as it was before the check (``check_thumbnail=false``) and restore's default (SCA methods
   with their presets, ``src.sca.presets``), and how many files come out below Pillow;
3. mismatched thumbnails (first ``--mismatch`` corrupted files): the right thumbnail made from the clean
   decode, then stretched to 4:3, letterboxed (16:9 content in 4:3 with bars), a stale crop (a wider scene:
   the image mirror-padded by 1/8 on each side), rotated (the display orientation of EXIF Orientation=6)
   and another file's: given as ``thumbnail=`` (``thumbnail_choice=given``), against restore without any
   thumbnail (``thumbnail_choice=none``: ``dc`` alone);
4. restart intervals: the corrupted files with DRI and MCUs the decoder lost: restore's gain over the plain
   decode, with and without the interval path (``restarts=false``).

``--baseline SRC_ROOT``: the same command first runs with ``SRC_ROOT``'s ``src`` package (e.g. the main
checkout; a subprocess with it on ``PYTHONPATH``), its tables printed before ours, on the same files and
corruption (the simulator's seeds).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from src.corruption import Corruptor, encode_jpeg  # noqa: E402
from src.jpeg import MCU_LOST, decode  # noqa: E402
from src.jpeg.presets import decoder_preset  # noqa: E402
from src.restoration.restore import restore_bytes  # noqa: E402
from src.sca import compensate  # noqa: E402
from src.sca.presets import sca_preset  # noqa: E402
from src.sca.thumb_check import to_display  # noqa: E402
from src.utils.images import decode_jpeg_rgb, decode_truncated  # noqa: E402
from src.utils.photos import bundled_photos  # noqa: E402

JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
CHANGED_DB = 50.0
CAP_DB = 99.0
UNCHECKED = {**sca_preset("dc_thumb"), "check_thumbnail": False}  # dc_thumb as it was before the check


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Y-PSNR (BT.601 studio Y, peak 255) of two uint8 (H, W, 3) images, capped at 99 dB (identical)."""
    if a.shape != b.shape:
        return float("nan")
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    d = np.asarray(a, np.float64) @ w - np.asarray(b, np.float64) @ w
    mse = float(np.mean(d * d))
    return CAP_DB if mse == 0 else min(float(10 * np.log10(255.0**2 / mse)), CAP_DB)


def load_files(photos: str | None) -> list[tuple[str, bytes]]:
    if photos:
        root = Path(photos).expanduser()
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in JPEG_SUFFIXES)
        if not files:
            raise SystemExit(f"--photos {photos!r}: no JPEG file found")
        return [(p.name, p.read_bytes()) for p in files]
    out = []
    for k, (name, rgb) in enumerate(bundled_photos().items()):
        out.append((f"{name}.jpg", encode_jpeg(rgb, quality=85, restart_interval=4 if k % 2 else 0)))
    return out


def stats(values: list[float], names: list[str]) -> str:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return "-"
    worst = int(np.nanargmin(v))
    return f"{np.nanmean(v):6.2f} / {np.nanpercentile(v, 10):6.2f} / {v[worst]:6.2f} ({names[worst][:22]})"


def restore_default(data: bytes, **kw):
    return restore_bytes(data, decoder_preset("paper"), sca_preset("dc_thumb"), **kw)


def mismatched_thumbnails(clean: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """The right thumbnail (160 px long side) and its mismatched variants, from the clean decode."""
    h, w = clean.shape[:2]

    def thumb(img, tw, th):
        return np.asarray(Image.fromarray(img).resize((tw, th), Image.Resampling.BICUBIC))

    tw, th = (160, max(round(160 * h / w), 2)) if w >= h else (max(round(160 * w / h), 2), 160)
    good = thumb(clean, tw, th)
    box = np.zeros((120, 160, 3), np.uint8)
    box[15:105] = thumb(clean, 160, 90)
    pad = np.pad(clean, ((h // 8, h // 8), (w // 8, w // 8), (0, 0)), mode="reflect")
    return {
        "right": good,
        "stretched 4:3": thumb(clean, 160, 120) if w >= h else thumb(clean, 120, 160),
        "letterboxed": box,
        "stale crop": thumb(pad, tw, th),
        "rotated (O=6)": to_display(good, 6),
        "unrelated": thumb(other, tw, th),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", help="folder of real JPEG files (used as they are); default: bundled photos")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--ber", type=float, default=1e-5)
    ap.add_argument("--limit", type=int, default=0, help="first N files only (0: all)")
    ap.add_argument("--mismatch", type=int, default=6, help="files for the mismatched-thumbnail section")
    ap.add_argument("--include", default=None, help="comma-separated file-name globs (default: all)")
    ap.add_argument("--per-file", action="store_true", help="one row per corrupted file")
    ap.add_argument(
        "--baseline", default=None, help="another checkout's root: its src runs first (subprocess)"
    )
    args = ap.parse_args(argv)
    if args.baseline:
        cmd = [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])]
        i = cmd.index("--baseline")
        del cmd[i : i + 2]
        env = {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}
        print(f"# baseline: src of {args.baseline}", flush=True)
        subprocess.run(cmd, env=env, check=True)
        print(f"\n# ours: src of {ROOT}", flush=True)
    files = load_files(args.photos)
    pats = [p for p in (args.include or "").split(",") if p]
    if pats:
        files = [(n, d) for n, d in files if any(fnmatch.fnmatch(n, p) for p in pats)]
    if args.limit:
        files = files[: args.limit]
    print(
        f"{len(files)} file(s) from {args.photos or 'the bundled photos'}; BER {args.ber}, "
        f"{args.seeds} seed(s)"
    )
    t0 = time.time()

    # 1. clean files
    changed, identical, clean_names, clean_rows = 0, 0, [], []
    truths: dict[str, np.ndarray] = {}
    for name, data in files:
        try:
            truth = decode_jpeg_rgb(data)
            res = restore_default(data)
        except Exception as e:  # a benchmark reports and goes on
            print(f"  clean {name}: skipped ({type(e).__name__}: {e})")
            continue
        truths[name] = truth
        p = y_psnr(res.restored, truth)
        changed += p < CHANGED_DB
        identical += bool(np.array_equal(res.restored, truth))
        clean_names.append(name)
        clean_rows.append(p)
        if p < CHANGED_DB:
            print(f"  clean {name}: {p:.1f} dB ({res.report[-1]})")

    # 2. corrupted files
    methods = ("pillow", "decode", "dc", "dc_thumb unchecked", "restore")
    scores = {m: [] for m in methods}
    names, corrupted, dri_rows = [], [], []
    corruptor = Corruptor.from_preset("paper", ber=args.ber)
    for name, data in files:
        if name not in truths:
            continue
        truth = truths[name]
        for seed in range(args.seeds):
            try:
                bad = corruptor.corrupt(data, seed).corrupted_jpeg
                dec = decode(bad, **decoder_preset("paper"))
            except Exception as e:
                print(f"  corrupt {name}: skipped ({type(e).__name__}: {e})")
                break
            try:
                pil = decode_truncated(bad)
            except Exception:  # Pillow gives up: grey
                pil = np.full_like(truth, 128)
            row = {
                "pillow": y_psnr(pil, truth),
                "decode": y_psnr(dec.to_rgb(), truth),
                "dc": y_psnr(compensate(dec, None, **sca_preset("dc")).rgb8, truth),
                "dc_thumb unchecked": y_psnr(compensate(dec, None, **UNCHECKED).rgb8, truth),
            }
            res = restore_default(bad)
            row["restore"] = y_psnr(res.restored, truth)
            for m in methods:
                scores[m].append(row[m])
            names.append(f"{name}#{seed}")
            corrupted.append((name, bad, dec))
            lost = int(np.count_nonzero(np.asarray(dec.mcu_status) & MCU_LOST))
            if dec.restart_interval and lost:
                off = compensate(dec, None, **{**sca_preset("dc_thumb"), "restarts": False}).rgb8
                dri_rows.append(
                    (name, dec.restart_interval, lost, row["decode"], row["restore"], y_psnr(off, truth))
                )

    # 3. mismatched thumbnails
    cases = ("right", "stretched 4:3", "letterboxed", "stale crop", "rotated (O=6)", "unrelated")
    mm = {c: {"checked": [], "unchecked": []} for c in cases}
    mm_dc: list[float] = []
    picked = corrupted[: args.mismatch]
    for k, (name, bad, dec) in enumerate(picked):
        truth = truths[name]
        other = truths[picked[(k + 1) % len(picked)][0]] if len(picked) > 1 else truth[::-1]
        dc = y_psnr(restore_default(bad, thumbnail_choice="none").restored, truth)
        mm_dc.append(dc)
        for case, thumb in mismatched_thumbnails(truth, other).items():
            res = restore_default(bad, thumbnail=thumb, thumbnail_choice="given")
            mm[case]["checked"].append(y_psnr(res.restored, truth) - dc)
            raw = compensate(dec, thumb, **UNCHECKED).rgb8
            mm[case]["unchecked"].append(y_psnr(raw, truth) - dc)

    # the table
    print(f"\n## real files ({args.photos or 'bundled photos'}; {time.time() - t0:.0f} s)")
    print("| check | value |\n|---|---|")
    print(
        f"| clean files changed by restore (Y-PSNR < {CHANGED_DB:.0f} dB vs Pillow) | "
        f"{changed} / {len(clean_rows)} |"
    )
    print(f"| clean files bit-identical to Pillow's decode | {identical} / {len(clean_rows)} |")
    print(f"| corrupted files (paper, BER {args.ber:g}, own headers) | {len(names)} |")
    for m in methods:
        below = (
            sum(a < b - 1e-9 for a, b in zip(scores[m], scores["pillow"], strict=True))
            if m != "pillow"
            else 0
        )
        tail = f", {below} below Pillow" if m != "pillow" else ""
        print(f"| {m}: mean / p10 / worst Y-PSNR (dB) | {stats(scores[m], names)}{tail} |")
    print(
        f"\nmismatched thumbnails on {len(picked)} corrupted files, given as thumbnail=: Y-PSNR minus `dc` "
        f"alone (mean {np.mean(mm_dc) if mm_dc else float('nan'):.2f} dB): mean / worst"
    )
    print("| thumbnail | restore (checked) | dc_thumb unchecked |\n|---|---|---|")
    for case in cases:
        c, u = np.asarray(mm[case]["checked"]), np.asarray(mm[case]["unchecked"])
        if c.size:
            print(f"| {case} | {c.mean():+6.2f} / {c.min():+6.2f} | {u.mean():+6.2f} / {u.min():+6.2f} |")
    print("\nrestart intervals: corrupted files with DRI and lost MCUs (Y-PSNR, dB)")
    print(
        "| file | DRI | lost MCUs | plain decode | restore | gain | restore, restarts=false |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, ri, lost, plain, rest, off in dri_rows:
        print(f"| {name[:28]} | {ri} | {lost} | {plain:.2f} | {rest:.2f} | {rest - plain:+.2f} | {off:.2f} |")
    if dri_rows:
        gains = [r[4] - r[3] for r in dri_rows]
        print(f"| mean of {len(dri_rows)} | | | | | {np.mean(gains):+.2f} | |")
    if args.per_file:
        print("\n| corrupted file | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
        for k, name in enumerate(names):
            print(f"| {name[:28]} | " + " | ".join(f"{scores[m][k]:.2f}" for m in methods) + " |")


if __name__ == "__main__":
    main()
