"""GCA inference speed and memory: tiled (``src.gca.tiling``) against untiled, measured in the same run.

For each size (W x H) a photo is corrupted by the project's simulator (``paper`` preset, BER ``--ber``),
decoded and compensated (SCA ``dc_thumb`` with the header thumbnail), and the model's input is saved; then
each case runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own: the shipped
model's forward (``Restorer.forward``: inputs in, uint8 image out) untiled (the baseline, when the size is at
most ``--untiled-max-mp`` megapixels) and tiled. Printed per case: seconds, seconds per megapixel, peak RSS
(and the RSS before the forward, i.e. Python + torch + model + inputs), on CUDA the peak allocated memory,
Y-PSNR against the clean image, and for the tiled case the difference to the untiled result (dB, and the
largest difference in 8-bit levels). ``--restore WxH`` adds the whole ``restore_bytes`` (decode, SCA,
tiled model) of one corrupted file of that size.

    .venv/bin/python -m benchmarks.gca_inference [--sizes 1024x512,2048x1024,4000x3000] [--device cpu|cuda]
        [--precision 32|bf16|16] [--tile 512] [--tile-overlap auto] [--tile-batch 1] [--photo FILE|NAME]
        [--untiled-max-mp 2.5] [--restore 4000x3000] [--repeats 1] [--threads N]

``--photo``: an image file, or the name of a scikit-image photo (default ``astronaut``, upscaled). On CUDA
each case runs once untimed first (warm-up), then ``--repeats`` timed runs (median).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "gca_refine.pt"


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def load_photo(name: str) -> np.ndarray:
    from src.utils.images import load_rgb

    if Path(name).expanduser().is_file():
        return load_rgb(Path(name).expanduser())
    from skimage import data

    img = getattr(data, name)()
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]


def rss_mb() -> float:
    """Current resident memory of this process in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- cases
def case_prep(args: argparse.Namespace) -> None:
    """Corrupt, decode, SCA, model input of one photo at ``--size``; saved to ``--out`` (npz)."""
    from src.corruption import Corruptor
    from src.data.pipeline import prepare_photo
    from src.restoration import model_input, prepare
    from src.utils.images import decode_jpeg_rgb

    size = parse_size(args.size)
    sample = Corruptor.from_preset("paper", ber=args.ber).corrupt(
        prepare_photo(load_photo(args.photo), size), args.seed
    )
    result = prepare(sample.corrupted_jpeg, {"strategy": "paper"}, {"method": "dc_thumb"})
    inp = model_input(result)
    np.savez(args.out, sca=inp.sca, thumb=inp.thumb, mask=inp.mask, gt=decode_jpeg_rgb(sample.clean_jpeg),
             sca8=result.sca8, filled=np.float64(result.filled))  # fmt: skip
    Path(args.out).with_suffix(".jpg").write_bytes(sample.corrupted_jpeg)


def _restorer(args: argparse.Namespace, tiled: bool):
    import torch

    from src.restoration import load_restorer

    if args.threads:
        torch.set_num_threads(args.threads)
    overlap = None if args.tile_overlap in (None, "auto") else int(args.tile_overlap)
    return load_restorer(
        args.ckpt, args.device, args.precision, args.tile if tiled else None, overlap, args.tile_batch
    )


def case_forward(args: argparse.Namespace) -> None:
    """One forward (untiled or tiled) on the saved input; prints a JSON line, writes the output (npy)."""
    import torch

    data = np.load(args.input)
    sca, thumb, mask = data["sca"], data["thumb"], data["mask"]
    restorer = _restorer(args, args.mode == "tiled")
    cuda = restorer.device.type == "cuda"
    restorer(sca[:64, :64], thumb[:64, :64], mask[:64, :64])  # warm-up of the conv kernels (small)
    if cuda:
        restorer(sca, thumb, mask)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = rss_mb()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    times = []
    for _ in range(args.repeats if cuda else 1):
        t0 = time.perf_counter()
        out = restorer(sca, thumb, mask)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    np.save(args.out, out)
    cpu_s = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / len(times)
    rec = {
        "seconds": statistics.median(times),
        "cpu_s": cpu_s,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "threads": torch.get_num_threads(),
    }
    if cuda:
        rec["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    rec.update(restorer.last_report)
    print(json.dumps(rec))


def case_restore(args: argparse.Namespace) -> None:
    """``restore_bytes`` of the saved corrupted file with the tiled model; prints a JSON line."""
    from src.restoration import restore_bytes

    data = Path(args.input).with_suffix(".jpg").read_bytes()
    restorer = _restorer(args, True)
    t0 = time.perf_counter()
    out = restore_bytes(data, {"strategy": "paper"}, {"method": "dc_thumb"}, restorer=restorer)
    rec = {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb(), "gca": out.gca}
    np.save(args.out, out.restored)
    print(json.dumps(rec))


# ---------------------------------------------------------------------------------------------- driver
def _sub(case: str, args: argparse.Namespace, **extra: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.gca_inference", "--case", case, "--ckpt", str(args.ckpt),
           "--device", args.device, "--precision", str(args.precision), "--tile", str(args.tile),
           "--tile-overlap", str(args.tile_overlap), "--tile-batch", str(args.tile_batch),
           "--repeats", str(args.repeats), "--threads", str(args.threads or 0), "--photo", args.photo,
           "--ber", str(args.ber), "--seed", str(args.seed)]  # fmt: skip
    for k, v in extra.items():
        cmd += [f"--{k}", v]
    # the repository first, then whatever the caller's PYTHONPATH holds (packages installed there)
    path = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if res.returncode:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"case {case} failed ({res.returncode})")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1024x512,2048x1024,4000x3000")
    p.add_argument("--ckpt", default=str(SHIPPED))
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="32")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--tile-overlap", default="auto")
    p.add_argument("--tile-batch", type=int, default=1)
    p.add_argument("--photo", default="astronaut")
    p.add_argument("--ber", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--untiled-max-mp", type=float, default=2.5)
    p.add_argument("--restore", default="", help="WxH: also time restore_bytes of one file of this size")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--work", default="", help="folder for the inputs and outputs (kept; default: a temp one)")
    p.add_argument("--case", default="", help=argparse.SUPPRESS)
    p.add_argument("--size", default="", help=argparse.SUPPRESS)
    p.add_argument("--input", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case == "prep":
        return case_prep(args)
    if args.case == "forward":
        return case_forward(args)
    if args.case == "restore":
        return case_restore(args)

    from src.metrics import psnr_y

    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    if args.restore and parse_size(args.restore) not in sizes:
        sizes.append(parse_size(args.restore))
    print(
        f"model {args.ckpt}; device {args.device}, precision {args.precision}, tile {args.tile}, "
        f"overlap {args.tile_overlap}, tile batch {args.tile_batch}; photo {args.photo}, paper preset "
        f"BER {args.ber}, seed {args.seed}; one subprocess per case (peak RSS = ru_maxrss)"
    )
    head = f"{'size':>10} {'MP':>5} {'case':>8} {'s':>8} {'s/MP':>7} {'peak MB':>8} {'before':>7} "
    head += f"{'Y-PSNR':>7} {'vs SCA':>7} {'tiled-untiled':>13} {'max|d|':>6}"
    if args.device.startswith("cuda"):
        head += f" {'cuda MB':>8}"
    print(head)
    with tempfile.TemporaryDirectory(prefix="gca_inference_") as tmp_dir:
        tmp = args.work or tmp_dir
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for w, h in sizes:
            mp = w * h / 1e6
            inp = str(Path(tmp) / f"in_{w}x{h}_{Path(args.photo).stem}_{args.ber:g}_{args.seed}.npz")
            if not Path(inp).is_file():
                _sub("prep", args, size=f"{w}x{h}", out=inp)
            data = np.load(inp)
            gt, sca_psnr = data["gt"], psnr_y(data["sca8"], data["gt"])
            outs: dict[str, np.ndarray] = {}
            cases = ["untiled"] if mp <= args.untiled_max_mp else []
            cases.append("tiled")
            for mode in cases:
                out = str(Path(tmp) / f"out_{mode}_{w}x{h}.npy")
                rec = _sub("forward", args, input=inp, out=out, mode=mode)
                outs[mode] = np.load(out)
                q = psnr_y(outs[mode], gt)
                diff = dmax = ""
                if mode == "tiled" and "untiled" in outs:
                    diff = f"{q - psnr_y(outs['untiled'], gt):+.4f} dB"
                    dmax = str(int(np.abs(outs["tiled"].astype(int) - outs["untiled"]).max()))
                sec = rec["seconds"]
                line = (
                    f"{w}x{h:<5} {mp:5.2f} {mode:>8} {sec:8.2f} {sec / mp:7.2f} {rec['peak_rss_mb']:8.0f} "
                    f"{rec['rss_before_mb']:7.0f} {q:7.2f} {q - sca_psnr:+7.2f} {diff:>13} {dmax:>6}"
                )
                if "cuda_peak_mb" in rec:
                    line += f" {rec['cuda_peak_mb']:8.0f}"
                line += f"  cpu {rec['cpu_s']:.0f} s"
                if rec.get("tiled"):
                    line += (
                        f"  [coarse {rec['coarse_s']:.1f} s, refine {rec.get('refine_s', 0):.1f} s, "
                        f"{rec.get('refine_skipped', 0)} of {rec.get('refine_tiles', 0)} tiles skipped]"
                    )
                print(line, flush=True)
            filled = 100 * float(data["filled"])
            print(f"{'':>10} SCA filled {filled:.2f} % of the pixels; SCA Y-PSNR {sca_psnr:.2f}")
            if args.restore and parse_size(args.restore) == (w, h):
                out = str(Path(tmp) / f"restore_{w}x{h}.npy")
                rec = _sub("restore", args, input=inp, out=out)
                print(
                    f"{w}x{h:<5} {mp:5.2f} restore_bytes (decode + SCA + tiled GCA): {rec['seconds']:.1f} s, "
                    f"peak RSS {rec['peak_rss_mb']:.0f} MB, GCA ran: {rec['gca']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
