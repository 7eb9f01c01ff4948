"""Speed of the corruption simulator (channel, encode) and what restore makes of storage damage.

    .venv/bin/python -m benchmarks.corruption [--repeats N] [--encode-only]
    .venv/bin/python -m benchmarks.corruption --damage [--seeds 3] [--photos coffee,astronaut,...]

The file: scikit-image's coffee photo upscaled (bicubic, centre crop) to 2048x1024, Q75 4:2:0 with its
EXIF thumbnail (the paper's setting). Per cipher mode it prints the median time of
``encrypt -> sample_flips (BER 1e-5, region scan) -> flip_bits -> decrypt`` against the targets (floor
10 ms, goal 2 ms) and against the named baseline measured in the same run: a naive
per-sector loop of ``cryptography`` AES-CBC objects (one Cipher(AES, CBC(ESSIV IV)) per sector, encrypt
then decrypt), the way one would write it without vectorising.

The encode section times one training sample's simulator work on an array, ``Corruptor("paper")
.corrupt(rgb 2048x1024)`` = JPEG encode + 160-px EXIF thumbnail + corruption, against a plain Pillow
(libjpeg-turbo) encode of the same photo at the same settings in the same run (the named baseline: the
least any JPEG sample costs), for the 2K photos coffee, astronaut and chelsea (medians, interleaved);
also with ``thumbnail_reducing_gap=3`` (the faster thumbnail, not the paper preset's bytes).

``--damage``: the storage-damage presets (``sector_loss``: two 512-B sectors zeroed; ``erased_flash``: a
16 KiB run of 0xFF, as in a real camera file; ``truncated``: cut at a uniform point of the scan) on
scikit-image's photos at 2048x1024, scored by Y-PSNR against the decoded clean file: Pillow (the named
baseline: the standard decoder, truncated data allowed, grey when it gives up), the robust decode
(``src.jpeg.decode``, clipped), SCA ``dc`` (no thumbnail) and ``dc_thumb`` (the header thumbnail, the
restore default). Mean, 10th percentile, worst, and how many files come out below Pillow.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import time

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from PIL import Image

from src.corruption import Corruptor, SectorCipher, flip_bits, region_bits, sample_flips, scan_extent
from src.data.corrupted_folder import fit_size
from src.restoration.scoring import pillow_view
from src.utils.photos import bundled_photos

FLOOR_MS, GOAL_MS = 10.0, 2.0
MODES = {  # label -> SectorCipher settings
    "cbc-essiv be32 512 (paper)": dict(mode="cbc-essiv", key=bytes(range(16)), sector_size=512, iv="be32"),
    "cbc-essiv le64 512 (dm-crypt)": dict(mode="cbc-essiv", key=bytes(range(16)), sector_size=512, iv="le64"),
    "cbc-essiv le64 4096": dict(mode="cbc-essiv", key=bytes(range(16)), sector_size=4096, iv="le64"),
    "xts-256 le64 512 (LUKS)": dict(mode="xts", key=bytes(range(64)), sector_size=512, iv="le64"),
    "xts-256 le64 4096 (fscrypt)": dict(mode="xts", key=bytes(range(64)), sector_size=4096, iv="le64"),
    "none (raw bit errors)": dict(mode="none", sector_size=512),
}


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def naive_cbc_essiv(key: bytes, data: bytes, positions: np.ndarray, sector_size: int = 512) -> bytes:
    """Baseline: one cryptography CBC object per sector (ESSIV IV per sector), encrypt, flip, decrypt."""
    salt = Cipher(algorithms.AES(hashlib.sha256(key).digest()), modes.ECB()).encryptor()
    pad = 16 - len(data) % 16
    padded = data + bytes([pad]) * pad
    ivs = [salt.update(s.to_bytes(4, "big") + bytes(12)) for s in range(-(-len(padded) // sector_size))]
    ct = b"".join(
        (e := Cipher(algorithms.AES(key), modes.CBC(ivs[i // sector_size])).encryptor()).update(
            padded[i : i + sector_size]
        )
        + e.finalize()
        for i in range(0, len(padded), sector_size)
    )
    ct = flip_bits(ct, positions, sector_size)
    pt = b"".join(
        (d := Cipher(algorithms.AES(key), modes.CBC(ivs[i // sector_size])).decryptor()).update(
            ct[i : i + sector_size]
        )
        + d.finalize()
        for i in range(0, len(ct), sector_size)
    )
    return pt[: len(data)]


def pillow_encode(rgb: np.ndarray, quality: int = 75, subsampling: str = "4:2:0") -> bytes:
    """Baseline: one plain Pillow JPEG encode (no thumbnail, no EXIF)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


ENCODE_VARIANTS = {"paper": {}, "paper, reducing_gap 3": {"thumbnail_reducing_gap": 3.0}}


def encode_section(repeats: int, variants: dict[str, dict] | None = None) -> None:
    """Median ms of ``Corruptor.corrupt(rgb)`` (encode + thumbnail + corrupt) vs a plain Pillow encode."""
    variants = variants or {"paper": {}}
    photos = {
        n: fit_size(img, (2048, 1024))
        for n, img in bundled_photos(["coffee", "astronaut", "chelsea"]).items()
    }
    corruptors = {label: Corruptor.from_preset("paper", **kw) for label, kw in variants.items()}
    print(f"\nencode + thumbnail + corrupt of a 2048x1024 photo (median ms, {repeats} repeats, interleaved)")
    print(f"{'photo':10s} {'Pillow encode':>14s} " + " ".join(f"{k:>24s}" for k in corruptors))
    seed = iter(range(10**9))
    for name, rgb in photos.items():
        times: dict[str, list[float]] = {"pillow": []} | {k: [] for k in corruptors}
        pillow_encode(rgb)
        for c in corruptors.values():
            c.corrupt(rgb, 0)
        for _ in range(repeats):
            t = time.perf_counter()
            pillow_encode(rgb)
            times["pillow"].append(time.perf_counter() - t)
            for label, c in corruptors.items():
                t = time.perf_counter()
                c.corrupt(rgb, next(seed))
                times[label].append(time.perf_counter() - t)
        med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        cells = " ".join(f"{med[k]:8.2f} ms ({med[k] / med['pillow']:4.2f}x)".rjust(24) for k in corruptors)
        print(f"{name:10s} {med['pillow']:11.2f} ms {cells}")


DAMAGE_PRESETS = ("sector_loss", "erased_flash", "truncated")
DAMAGE_PHOTOS = (
    "astronaut,coffee,chelsea,rocket,hubble_deep_field,retina,immunohistochemistry,motorcycle,camera"
)


def damage_section(photo_names: list[str], seeds: int) -> None:
    """Y-PSNR of Pillow / robust decode / dc / dc_thumb on the storage-damage presets at 2048x1024."""
    from src.jpeg import decode
    from src.metrics import psnr_y
    from src.sca import compensate
    from src.sca.thumbnail import decode_thumbnail

    rows = ("pillow", "decode", "dc", "dc_thumb")
    photos = {n: fit_size(img, (2048, 1024)) for n, img in bundled_photos(photo_names).items()}
    print(
        f"\nstorage damage at 2048x1024: {len(photos)} photos x {seeds} seeds, Y-PSNR dB vs the clean decode"
    )
    print(
        f"{'preset':13s} {'row':9s} {'mean':>6s} {'p10':>6s} {'worst':>6s} {'vs Pillow':>9s} "
        f"{'< Pillow':>9s}  worst file"
    )
    for preset in DAMAGE_PRESETS:
        corruptor = Corruptor.from_preset(preset)
        scores: dict[str, list[tuple[float, str]]] = {r: [] for r in rows}
        for name, rgb in photos.items():
            for seed in range(seeds):
                sample = corruptor.corrupt(rgb, seed)
                gt = decode(sample.clean_jpeg).to_rgb()
                bad = decode(sample.corrupted_jpeg)
                thumb = decode_thumbnail(sample.thumbnail)
                images = {
                    "pillow": pillow_view(sample.corrupted_jpeg, gt.shape[1::-1]),
                    "decode": bad.to_rgb(),
                }
                for method in ("dc", "dc_thumb"):
                    comp = compensate(bad, thumb, method)
                    images[method] = comp.rgb8 if comp.rgb8 is not None else to_uint8(comp.rgb)
                for row in rows:
                    scores[row].append((psnr_y(images[row], gt), f"{name}/s{seed}"))
        base = [v for v, _ in scores["pillow"]]
        for row in rows:
            values = np.array([v for v, _ in scores[row]])
            worst = min(scores[row])
            below = int(np.sum(values < np.array(base) - 1e-9)) if row != "pillow" else 0
            p10, gain = np.percentile(values, 10), float(np.mean(values - np.array(base)))
            print(
                f"{preset:13s} {row:9s} {values.mean():6.2f} {p10:6.2f} {worst[0]:6.2f} {gain:+9.2f} "
                f"{below:4d}/{values.size:<4d}  {worst[1]}"
            )


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb01 * 255.0), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument(
        "--encode-only", action="store_true", help="only the encode + thumbnail + corrupt section"
    )
    ap.add_argument("--damage", action="store_true", help="only the storage-damage quality section")
    ap.add_argument("--seeds", type=int, default=3, help="--damage: seeds per photo")
    ap.add_argument("--photos", default=DAMAGE_PHOTOS, help="--damage: scikit-image photo names")
    args = ap.parse_args()
    if args.damage:
        damage_section(args.photos.split(","), args.seeds)
        return
    if args.encode_only:
        encode_section(max(10, args.repeats // 10), ENCODE_VARIANTS)
        return
    rgb = fit_size(bundled_photos(["coffee"])["coffee"], (2048, 1024))
    jpeg = Corruptor.from_preset("paper").encode(rgb)
    extent = scan_extent(jpeg)
    print(
        f"file: coffee upscaled to 2048x1024, Q75 4:2:0 + EXIF thumbnail, {len(jpeg) / 1024:.0f} KB; BER 1e-5"
    )
    print(
        f"targets: floor {FLOOR_MS:.0f} ms, goal {GOAL_MS:.0f} ms (encrypt + inject + decrypt); "
        f"{args.repeats} repeats"
    )

    key = bytes(range(16))
    fixed = sample_flips(region_bits("scan", len(jpeg) + 16, extent), 1e-5, 0)
    base_ms = median_ms(lambda: naive_cbc_essiv(key, jpeg, fixed), args.repeats)
    ours = SectorCipher(**MODES["cbc-essiv be32 512 (paper)"])
    assert naive_cbc_essiv(key, jpeg, fixed) == ours.decrypt(flip_bits(ours.encrypt(jpeg), fixed), len(jpeg))
    print(f"\nbaseline  naive per-sector cryptography CBC loop (cbc-essiv be32 512): {base_ms:7.3f} ms")

    print(f"\n{'mode':32s} {'median ms':>10s} {'vs naive':>9s} {'floor':>6s} {'goal':>5s}")
    seed = iter(range(10**9))
    for label, kw in MODES.items():
        cipher = SectorCipher(**kw)
        bits = region_bits("scan", cipher.padded_length(len(jpeg)), extent, cipher.sector_size)

        def step(cipher=cipher, bits=bits):
            ct = cipher.encrypt(jpeg)
            pos = sample_flips(bits, 1e-5, next(seed), sector_size=cipher.sector_size)
            return cipher.decrypt(flip_bits(ct, pos, cipher.sector_size), length=len(jpeg))

        ms = median_ms(step, args.repeats)
        print(
            f"{label:32s} {ms:10.3f} {base_ms / ms:8.1f}x {'ok' if ms <= FLOOR_MS else 'MISS':>6s} "
            f"{'ok' if ms <= GOAL_MS else 'miss':>5s}"
        )

    corr = Corruptor.from_preset("paper")
    ms = median_ms(lambda: corr.corrupt(jpeg, next(seed)), max(20, args.repeats // 4))
    print(f"\nCorruptor('paper').corrupt(jpeg bytes) incl. scan/thumbnail checks: {ms:.3f} ms")
    ms = median_ms(lambda: corr.corrupt(rgb, next(seed)), max(10, args.repeats // 20))
    print(f"Corruptor('paper').corrupt(rgb 2048x1024) incl. JPEG + thumbnail encode: {ms:.3f} ms")
    encode_section(max(10, args.repeats // 10), ENCODE_VARIANTS)


if __name__ == "__main__":
    main()
