"""Robust decoder speed: ``decode(...).to_rgb()`` vs Pillow on a 2048x1024 Q75 4:2:0 photo.

Baseline: Pillow (libjpeg-turbo) decoding the same CLEAN file to a numpy RGB array, timed in the same
run, interleaved with ours. Prints medians (and minima: the machine may be shared) and ratios for the
clean file and for a corrupted copy (paper preset: AES-CBC-ESSIV, BER 1e-5), per strategy; the speed-up
over the pure-Python paper algorithm (``src.jpeg.oracle``); and the first-call JIT cost in a fresh
process with a cold and with a warm on-disk cache.

Photo: a Debian mate-backgrounds picture (``make photos``) resized to 2048 wide and centre-cropped to
1024 rows; without it, scikit-image's astronaut upscaled (smoother, so faster to decode).

Resync quality (``--quality-seeds``): for each strategy, the share of decoded MCUs that start on a true
MCU boundary of the clean file ("in sync", positions compared as file bit offsets), the share at the
right MCU index, and how many of the injected hits the decoder noticed (resync events).

    .venv/bin/python -m benchmarks.decoder [--runs 30] [--seeds 3] [--quality-seeds 6] [--skip-oracle]
        [--skip-jit]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from src.corruption import Corruptor
from src.jpeg import MCU_LOST, decode, parse_header, warmup
from src.jpeg.bitstream import unstuff
from src.jpeg.oracle import paper_decode

ROOT = Path(__file__).resolve().parents[1]

PHOTO = Path("/usr/share/backgrounds/mate/nature/Dune.jpg")


def load_photo() -> tuple[np.ndarray, str]:
    """uint8 (1024, 2048, 3) RGB and where it came from."""
    if PHOTO.exists():
        img = Image.open(PHOTO).convert("RGB")
        name = str(PHOTO)
    else:
        from skimage import data

        img = Image.fromarray(data.astronaut())
        name = "skimage astronaut (upscaled; mate-backgrounds not installed)"
    w, h = img.size
    scale = max(2048 / w, 1024 / h)
    img = img.resize((max(2048, round(w * scale)), max(1024, round(h * scale))), Image.BICUBIC)
    a = np.asarray(img)
    top = (a.shape[0] - 1024) // 2
    left = (a.shape[1] - 2048) // 2
    return np.ascontiguousarray(a[top : top + 1024, left : left + 2048]), name


def pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def timeit(fns: dict, runs: int) -> dict[str, np.ndarray]:
    """Interleaved timing (each round runs every function once), seconds."""
    times = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(runs):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: np.array(v) for k, v in times.items()}


JIT_PROBE = """
import time, io, numpy as np
t0 = time.perf_counter()
from src.jpeg import decode
from PIL import Image
t1 = time.perf_counter()
buf = io.BytesIO(); Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(buf, "JPEG"); data = buf.getvalue()
d = decode(data); d.to_rgb(); d.to_rgb(clip=False)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def jit_cost() -> tuple[tuple[float, float], tuple[float, float]]:
    """(import s, first decode + to_rgb s) in a fresh process with a cold cache, then a warm one."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = []
        for _ in range(2):
            r = subprocess.run(
                [sys.executable, "-c", JIT_PROBE],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            a, b = r.stdout.split()
            out.append((float(a), float(b)))
    return out[0], out[1]


CHECKS = {"check_dc_category": True, "check_ac_size": True, "check_zrl": True, "check_range": True}
VARIANTS = {
    "paper": ("paper", {}),
    "paper + checks": ("paper", CHECKS),
    "aligned": ("aligned", {}),
    "aligned + checks": ("aligned", CHECKS),
    "aligned confirm=8": ("aligned", {"aligned_confirm": 8}),
    "strict": ("strict", {}),
}


def mcu_file_bits(data: bytes, d) -> np.ndarray:
    """File bit offset where each decoded MCU starts (-1 for filled MCUs)."""
    hdr = parse_header(data)
    off = unstuff(np.frombuffer(data, np.uint8), hdr.scan_start, hdr.scan_end, True)[5]
    bp = d.mcu_bitpos.ravel()
    out = np.full(bp.shape, -1, np.int64)
    ok = bp >= 0
    out[ok] = off[bp[ok] >> 3] * 8 + (bp[ok] & 7)
    return out


def resync_quality(img: np.ndarray, ber: float, seeds: int) -> None:
    corruptor = Corruptor.from_preset("paper", ber=ber)
    rows = {k: [] for k in VARIANTS}
    for seed in range(seeds):
        s = corruptor.corrupt(img, seed=1000 + seed)
        truth = mcu_file_bits(s.clean_jpeg, decode(s.clean_jpeg))
        true_set = set(truth.tolist())
        for name, (strategy, opts) in VARIANTS.items():
            d = decode(s.corrupted_jpeg, strategy, **opts)
            f = mcu_file_bits(s.corrupted_jpeg, d)
            in_sync = np.fromiter((x in true_set for x in f.tolist()), bool, f.size)
            noticed = (
                d.count("retry") + d.count("aligned_resync") + d.count("retry_cap") + d.count("error_fill")
            )
            lost = int(((d.mcu_status & MCU_LOST) != 0).sum())
            rows[name].append((in_sync.mean(), (f == truth).mean(), noticed, len(s.positions), lost))
    print(f"\nresync quality, BER {ber:g}, {seeds} corrupted copies (MCUs: {truth.size} per image)")
    print(f"{'variant':20s} {'in sync':>8s} {'same index':>11s} {'hits noticed':>13s} {'lost MCUs':>10s}")
    for name, v in rows.items():
        a = np.array(v, dtype=float)
        print(f"{name:20s} {a[:, 0].mean():8.4f} {a[:, 1].mean():11.4f} "
              f"{a[:, 2].mean():6.1f} / {a[:, 3].mean():5.1f} {a[:, 4].mean():10.1f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3, help="corrupted copies (one per seed)")
    ap.add_argument(
        "--quality-seeds", type=int, default=6, help="corrupted copies per BER for resync quality"
    )
    ap.add_argument("--skip-oracle", action="store_true")
    ap.add_argument("--skip-jit", action="store_true")
    args = ap.parse_args()

    img, name = load_photo()
    corruptor = Corruptor.from_preset("paper", ber=1e-5)
    samples = [corruptor.corrupt(img, seed=s) for s in range(args.seeds)]
    clean = samples[0].clean_jpeg
    print(f"photo: {name}; 2048x1024 Q75 4:2:0, {len(clean)} bytes; BER 1e-5 copies with "
          f"{[len(s.positions) for s in samples]} bit errors")  # fmt: skip
    warmup()

    fns = {
        "pillow clean": lambda: pillow_rgb(clean),
        "ours clean": lambda: decode(clean).to_rgb(),
        "ours clean float": lambda: decode(clean).to_rgb(clip=False),
    }
    for strategy in ("paper", "strict", "aligned"):
        for i, s in enumerate(samples):
            fns[f"ours corrupted {strategy} #{i}"] = lambda s=s, st=strategy: decode(
                s.corrupted_jpeg, st
            ).to_rgb()
    d = decode(clean)
    fns["  stage: decode only (clean)"] = lambda: decode(clean)
    fns["  stage: to_rgb uint8 (clean)"] = lambda: d.to_rgb()
    fns["  stage: to_rgb float (clean)"] = lambda: d.to_rgb(clip=False)
    t = timeit(fns, args.runs)
    base_med = np.median(t["pillow clean"])
    base_min = t["pillow clean"].min()
    print(f"\n{'':36s} {'median ms':>10s} {'min ms':>8s} {'x Pillow (med)':>15s} {'x Pillow (min)':>15s}")
    for k, v in t.items():
        print(f"{k:36s} {np.median(v) * 1e3:10.2f} {v.min() * 1e3:8.2f} "
              f"{np.median(v) / base_med:15.2f} {v.min() / base_min:15.2f}")  # fmt: skip
    for strategy in ("paper", "strict", "aligned"):
        keys = [k for k in t if k.startswith(f"ours corrupted {strategy}")]
        med = np.median([np.median(t[k]) for k in keys])
        print(f"ratio corrupted ({strategy}, median over copies) / Pillow clean: {med / base_med:.2f}x")
    print(f"ratio clean / Pillow: {np.median(t['ours clean']) / base_med:.2f}x (floor 3x, goal 1.5x)")

    if args.quality_seeds:
        for ber in (1e-5, 1e-4):
            resync_quality(img, ber, args.quality_seeds)

    if not args.skip_oracle:
        t0 = time.perf_counter()
        paper_decode(samples[0].corrupted_jpeg)
        oracle = time.perf_counter() - t0
        ours = np.median(t["ours corrupted paper #0"])
        print(f"\npure-Python paper algorithm (oracle) on corrupted copy #0: {oracle:.2f} s; "
              f"ours {ours * 1e3:.1f} ms: speed-up {oracle / ours:.0f}x")  # fmt: skip

    if not args.skip_jit:
        (ci, cd), (wi, wd) = jit_cost()
        print(f"\nfirst call in a fresh process: cold cache import {ci:.2f} s + first decode {cd:.2f} s; "
              f"warm cache import {wi:.2f} s + first decode {wd:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
