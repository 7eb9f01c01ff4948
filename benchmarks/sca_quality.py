"""SCA quality and speed in the paper's setting, on large real photos.

Setting: 2048x1024 photos resized to cover and centre-cropped: ``--photos mate`` (default; Debian
mate-backgrounds "nature", the set SCA's tunables were chosen on with seeds 0-2; scikit-image's photos
if those are not installed) or ``--photos bundled`` (scikit-image's real photos, held out: astronaut,
coffee, chelsea, rocket, hubble_deep_field, retina, immunohistochemistry, the left stereo_motorcycle
view and camera as grey -> RGB), JPEG Q75 4:2:0 with a 160-px EXIF thumbnail, AES-128-CBC-ESSIV (be32
IVs), bit errors at BER 1e-5 on the scan sectors, robust decode (``--decoder paper``, the default; or
``aligned`` / ``strict``, with ``--checks`` for the decoder's plausibility checks), then SCA. Ground
truth = the decoded clean JPEG. 1024x512 and 512x256 scores are made by bicubic downscaling of output
and ground truth (the paper's protocol). Metrics: Y-PSNR and the paper code's Y-SSIM (src.metrics:
BT.601 Y, rounded, peak 255, no crop).

Rows: Pillow (the standard decoder; truncated data allowed), the robust decode clipped (``none``), the
paper's SCA, ours self-only (``dc``), ours with the thumbnail (``dc_thumb``), the thumbnail alone
(bicubic upsampled), and the oracle (true shifts and offsets recovered from the clean file, same fill)
as the ceiling. Named baseline for ratios: ``paper`` (quality) and the robust decode (time, same run).
Also the census of ``dc`` / ``dc_thumb`` errors: MCUs shown at a wrong place (wrong shift), garbage
shown, offsets off by more than half a DC step (drift), content filled although it was recoverable.

    .venv/bin/python -m benchmarks.sca_quality [--quick] [--photos mate|bundled] [--seeds 0-2]
        [--bers 1e-5,1e-6,1e-4] [--extra-seeds 0] [--decoder paper|aligned|strict] [--checks]
        [--methods none,paper,dc,dc_thumb] [--no-oracle]

Writes outputs/sca_quality/contact_sheet.png (Pillow | robust decode | paper SCA | ours | ground truth;
default setting only) and outputs/sca_quality/results[_<photos>][_<decoder>][_seeds<spec>][_<methods>]
[_checks].json.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from src.corruption import Corruptor
from src.jpeg import decode
from src.metrics import psnr_y, ssim_y_paper
from src.sca import compensate
from src.sca.compensate import render_uint8
from src.sca.diagnostics import alignment_census, true_alignment
from src.sca.thumbnail import decode_thumbnail, thumbnail_reference
from src.sca.tiles import mcu_features
from src.utils import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
SIZE = (2048, 1024)
BUNDLED = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "stereo_motorcycle",
    "camera",
)
CHECKS = ("check_dc_category", "check_ac_size", "check_zrl", "check_range")
METHODS = ("none", "paper", "dc", "dc_thumb")
SCALES = ((2048, 1024), (1024, 512), (512, 256))
ROWS = ("pillow", "none", "paper", "dc", "dc_thumb", "thumbnail", "oracle")
CENSUS = ("wrong_shift", "shown_garbage", "offset_error", "missed", "filled_lost")
OUT = ROOT / "outputs" / "sca_quality"


def bundled_photo(name: str) -> Image.Image:
    """One of scikit-image's photos as RGB (stereo_motorcycle: the left view; camera: grey -> RGB)."""
    from skimage import data

    img = getattr(data, name)()
    if name == "stereo_motorcycle":
        img = img[0]
    return Image.fromarray(np.asarray(img)).convert("RGB")


def photos(kind: str = "mate") -> list[tuple[str, np.ndarray]]:
    """(name, uint8 (1024, 2048, 3)) for every benchmark photo of the set ``kind`` (mate | bundled)."""
    paths = sorted(Path("/usr/share/backgrounds/mate/nature").glob("*.jpg")) if kind == "mate" else []
    if paths:
        images = [(p.stem, Image.open(p).convert("RGB")) for p in paths]
    else:
        if kind == "mate":
            print("mate-backgrounds not installed: using scikit-image's photos")
        images = [(n, bundled_photo(n)) for n in BUNDLED]
    out = []
    for name, img in images:
        w, h = img.size
        s = max(SIZE[0] / w, SIZE[1] / h)
        img = img.resize((max(SIZE[0], round(w * s)), max(SIZE[1], round(h * s))), Image.Resampling.BICUBIC)
        left, top = (img.width - SIZE[0]) // 2, (img.height - SIZE[1]) // 2
        out.append((name, np.asarray(img.crop((left, top, left + SIZE[0], top + SIZE[1])))))
    return out


def pillow_decode(data: bytes) -> np.ndarray:
    """What the standard decoder shows: Pillow with truncated data allowed; grey if it gives up."""
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except OSError:
        return np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def downscale(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (img.shape[1], img.shape[0]) == size:
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb01 * 255.0), 0, 255).astype(np.uint8)


def evaluate(
    sample, want_oracle: bool, methods: tuple[str, ...] = METHODS, decoder: dict | None = None
) -> tuple[dict, dict, dict, dict]:
    """Scores {row: {scale: (psnr, ssim)}}, SCA times {method: s}, census {method: counts}, images.

    decoder: ``src.jpeg.decode`` keyword arguments for the corrupted file (strategy and options).
    """
    clean = decode(sample.clean_jpeg)
    gt = clean.to_rgb()
    t0 = time.perf_counter()
    bad = decode(sample.corrupted_jpeg, **(decoder or {}))
    t_decode = time.perf_counter() - t0
    thumb = decode_thumbnail(sample.thumbnail)
    images = {"pillow": pillow_decode(sample.corrupted_jpeg)}
    times, census = {"decode": t_decode}, {}
    truth = true_alignment(bad, clean)
    steps = np.array([float(q[0]) / 8.0 for q in clean.qtables])
    for method in methods:
        t0, c0 = time.perf_counter(), time.process_time()
        comp = compensate(bad, thumb, method)
        times[method] = time.perf_counter() - t0
        times[f"{method}_cpu"] = time.process_time() - c0
        images[method] = to_uint8(comp.rgb)
        if comp.mcu_source is not None:
            census[method] = alignment_census(comp, truth, steps)
    images["thumbnail"] = np.asarray(Image.fromarray(thumb).resize(SIZE, Image.Resampling.BICUBIC))
    if want_oracle:
        ref = thumbnail_reference(thumb, bad.planes, bad.width, bad.height, bad.mcu_rows, bad.mcu_cols)
        feats = mcu_features(bad.planes, bad.mcu_rows, bad.mcu_cols, bad.dc, steps)
        hole = truth.source < 0
        src = np.where(hole, 0, truth.source)
        images["oracle"] = render_uint8(bad, feats, src, truth.offset[src], hole, ref)
    scores = {}
    for row, img in images.items():
        scores[row] = {}
        for size in SCALES:
            a, b = downscale(img, size), downscale(gt, size)
            scores[row][f"{size[0]}x{size[1]}"] = (psnr_y(a, b), ssim_y_paper(a, b))
    images["gt"] = gt
    return scores, times, census, images


def contact_sheet(cases: list[dict], path: Path) -> None:
    """Rows of (Pillow | robust decode | paper SCA | ours dc_thumb | ground truth), each 512x256."""
    cols = ("pillow", "none", "paper", "dc_thumb", "gt")
    tiles = [np.concatenate([downscale(c[k], (512, 256)) for k in cols], axis=1) for c in cases]
    sheet = np.concatenate(tiles, axis=0)
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, "PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())


def seed_list(spec: str) -> list[int]:
    """``"0-2"`` / ``"10,11,12"`` / ``"10-12,20"`` / ``"10"`` -> the listed seeds."""
    seeds: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 photos x 1 seed, BER 1e-5 only")
    ap.add_argument("--photos", choices=("mate", "bundled"), default="mate", help="photo set (see above)")
    ap.add_argument("--seeds", default="0-2", help="seeds at the first BER: 0-2, 10,11,12, ...")
    ap.add_argument("--bers", default="1e-5,1e-6,1e-4", help="BERs; the first is the main table")
    ap.add_argument("--extra-seeds", default=None, help="seeds at the other BERs (default: the first one)")
    ap.add_argument("--decoder", choices=("paper", "aligned", "strict"), default="paper", help="resync")
    ap.add_argument(
        "--checks", action="store_true", help="decoder plausibility checks on: " + ", ".join(CHECKS)
    )
    ap.add_argument("--methods", default=",".join(METHODS), help="SCA methods to run (none always runs)")
    ap.add_argument("--no-oracle", action="store_true", help="skip the oracle row")
    args = ap.parse_args()
    methods = tuple(m for m in METHODS if m == "none" or m in args.methods.split(","))
    decoder = {"strategy": args.decoder, **dict.fromkeys(CHECKS, args.checks)}
    pics = photos(args.photos)
    bers = [float(b) for b in args.bers.split(",")]
    seeds_main = seed_list(args.seeds)
    seeds_extra = seed_list(args.extra_seeds) if args.extra_seeds else seeds_main[:1]
    if args.quick:
        pics, bers, seeds_main = pics[:4], bers[:1], seeds_main[:1]
    print(
        f"{len(pics)} {args.photos} photos at {SIZE[0]}x{SIZE[1]}, Q75 4:2:0, cbc-essiv be32, thumbnail"
        f" 160 px; decoder {args.decoder}{' + checks' if args.checks else ''}; seeds {seeds_main}"
    )
    compensate(
        decode(Corruptor.from_preset("paper").corrupt(pics[0][1], 0).corrupted_jpeg, **decoder), None, "dc"
    )  # JIT
    results, sheet = {}, []
    for bi, ber in enumerate(bers):
        corruptor = Corruptor.from_preset("paper", ber=ber)
        acc: dict = {"scores": {}, "times": {}, "census": {}, "hits": []}
        for name, rgb in pics:
            for seed in seeds_main if bi == 0 else seeds_extra:
                sample = corruptor.corrupt(rgb, seed=seed)
                want_oracle = bi == 0 and not args.no_oracle
                scores, times, census, images = evaluate(sample, want_oracle, methods, decoder)
                acc["hits"].append(len(sample.positions))
                for row, per_scale in scores.items():
                    for scale, v in per_scale.items():
                        acc["scores"].setdefault(row, {}).setdefault(scale, []).append(v)
                for k, v in times.items():
                    acc["times"].setdefault(k, []).append(v)
                for m, cen in census.items():
                    for k, v in cen.items():
                        acc["census"].setdefault(m, {}).setdefault(k, []).append(v)
                if bi == 0 and seed == seeds_main[0] and len(sheet) < 4:
                    sheet.append(images)
                line = " ".join(f"{r}={scores[r]['2048x1024'][0]:.2f}" for r in ROWS if r in scores)
                print(
                    f"  BER {ber:g} {name:14s} seed {seed} hits {len(sample.positions):3d}  {line}",
                    flush=True,
                )
        results[f"{ber:g}"] = acc
        print_table(ber, acc)
    OUT.mkdir(parents=True, exist_ok=True)
    parts = (args.photos != "mate") * [args.photos] + (args.decoder != "paper") * [args.decoder]
    parts += (args.seeds != "0-2") * [f"seeds{args.seeds.replace(',', '_')}"]
    parts += (methods != METHODS) * ["-".join(methods)]
    tag = "".join(f"_{t}" for t in parts + args.checks * ["checks"])
    wrote = []
    if not tag and methods == METHODS:
        contact_sheet(sheet, OUT / "contact_sheet.png")
        wrote.append(OUT / "contact_sheet.png")
    summary = {
        "setting": {
            "photos": args.photos,
            "decoder": decoder,
            "seeds": seeds_main,
            "extra_seeds": seeds_extra,
        },
        **{
            ber: {
                "scores": {
                    r: {s: np.mean(v, axis=0).tolist() for s, v in d.items()}
                    for r, d in acc["scores"].items()
                },
                "time_median_s": {k: float(np.median(v)) for k, v in acc["times"].items()},
                "census_per_image": {
                    m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in acc["census"].items()
                },
                "hits_mean": float(np.mean(acc["hits"])),
                "images": len(acc["hits"]),
            }
            for ber, acc in results.items()
        },
    }
    atomic_write_text(OUT / f"results{tag}.json", json.dumps(summary, indent=1))
    wrote.append(OUT / f"results{tag}.json")
    print("wrote " + " and ".join(str(w) for w in wrote))


def print_table(ber: float, acc: dict) -> None:
    n = len(acc["hits"])
    ref_row = "paper" if "paper" in acc["scores"] else "none"
    print(f"\nBER {ber:g}: {n} images, {np.mean(acc['hits']):.1f} bit errors per image (mean)")
    print(f"{'method':10s} " + " ".join(f"{s:>17s}" for s in acc["scores"]["none"]) + f"   vs {ref_row} (2K)")
    ref = np.mean([v[0] for v in acc["scores"][ref_row]["2048x1024"]])
    for row in ROWS:
        if row not in acc["scores"]:
            continue
        cells = []
        for vals in acc["scores"][row].values():
            p, s = np.mean(vals, axis=0)
            cells.append(f"{p:7.2f} dB / {s:.4f}")
        gain = np.mean([v[0] for v in acc["scores"][row]["2048x1024"]]) - ref
        print(f"{row:10s} " + " ".join(f"{c:>17s}" for c in cells) + f"   {gain:+6.2f} dB")
    t = {k: np.median(v) * 1000 for k, v in acc["times"].items()}
    ours = [m for m in ("dc", "dc_thumb") if m in t]
    print(
        "median CPU time (process time; the wall clock includes other jobs on a shared machine): "
        + ", ".join(f"{m} {t[m + '_cpu']:.1f} ms" for m in ours)
    )
    parts = [f"none {t['none']:.1f}"] + ([f"paper {t['paper']:.0f}"] if "paper" in t else [])
    parts += [f"{m} {t[m]:.1f} ({t[m] / t['decode']:.2f}x decode)" for m in ours]
    print(
        f"median time per 2K image: robust decode {t['decode']:.1f} ms (baseline); SCA "
        + ", ".join(parts)
        + " ms"
    )
    for m, cen in acc["census"].items():
        per = {k: np.mean(v) for k, v in cen.items()}
        imgs = {k: int(np.count_nonzero(v)) for k, v in cen.items()}
        print(
            f"census {m:8s} per image (of {per['positions']:.0f} MCUs): "
            + ", ".join(f"{k} {per[k]:.1f} (in {imgs[k]}/{n} images)" for k in CENSUS)
        )
    print()


if __name__ == "__main__":
    main()
