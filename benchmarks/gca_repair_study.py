"""Can the gated GCA generator repair what SCA filled? A short learning-curve study on one GPU.

Builds a fixed set of SCA samples (training photos x variants, 2048x1024 paper corruption -> 512x256, built
in parallel on every CPU core), then trains generator variants with the gated Charbonnier loss alone (no GAN:
what it measures is whether the refine pyramid learns corrections at all) on damage-focused crops, and
prints held-out Y-PSNR of output vs its SCA input every ``--eval-every`` steps. Several variants can share
one GPU (``--variants a,b``: one process each).

    python benchmarks/gca_repair_study.py --photos /tmp/model_photos --variants full,small --seconds 300
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

VARIANTS = {
    # name: (coarse kwargs, refine kwargs, lr, mask_gate)
    "full": (dict(ngf=16, n_local_enhancers=1, n_downsample_global=4, n_blocks_global=3, n_blocks_local=3),
             dict(levels=2, width=64, depth=12), 2e-4, 2),
    "full_lr1e3": (dict(ngf=16, n_local_enhancers=1, n_downsample_global=4, n_blocks_global=3,
                        n_blocks_local=3), dict(levels=2, width=64, depth=12), 1e-3, 2),
    "small": (dict(ngf=8, n_local_enhancers=1, n_downsample_global=3, n_blocks_global=2, n_blocks_local=1),
              dict(levels=2, width=64, depth=12), 5e-4, 2),
    "full_gate8": (dict(ngf=16, n_local_enhancers=1, n_downsample_global=4, n_blocks_global=3,
                        n_blocks_local=3), dict(levels=2, width=64, depth=12), 2e-4, 8),
}  # fmt: skip


def _build(job: tuple[str, int, float, int]) -> dict[str, np.ndarray]:
    from src.corruption import Corruptor
    from src.data.pipeline import PipelineSettings, make_sample, prepare_photo
    from src.data.sources import ImageItem, load_item

    path, seed, ber, _ = job
    settings = PipelineSettings(sca={"method": "dc_thumb"}, decoder={"strategy": "paper"})
    rgb = prepare_photo(load_item(ImageItem(Path(path).stem, path), (2048, 1024)), (2048, 1024))
    s = make_sample(rgb, Corruptor.from_preset("paper", ber=ber), seed, settings)
    return {k: s[k] for k in ("sca", "gt", "mask", "thumb")}


def build_samples(photos: Path, variants: int, workers: int) -> dict[str, list[dict[str, np.ndarray]]]:
    from src.corruption import Corruptor
    from src.data.datamodule import warm_up
    from src.data.pipeline import PipelineSettings

    warm_up(Corruptor.from_preset("paper"), PipelineSettings(sca={"method": "dc_thumb"}))
    train = sorted(p for p in (photos / "train").iterdir())
    val = sorted(p for p in (photos / "val").iterdir()) + sorted(p for p in (photos / "test").iterdir())
    rng = np.random.default_rng(0)
    jobs = [(str(p), 1000 + v, float(10 ** rng.uniform(-5, -4.5)), 0) for v in range(variants) for p in train]
    vjobs = [(str(p), 77 + v, 1e-5, 1) for v in range(2) for p in val]
    with mp.get_context("fork").Pool(workers) as pool:
        out = pool.map(_build, jobs + vjobs, chunksize=1)
    return {"train": out[: len(jobs)], "val": out[len(jobs) :]}


def to_gpu(samples: list[dict[str, np.ndarray]], dev: torch.device) -> dict[str, torch.Tensor]:
    def stack(key: str) -> torch.Tensor:
        arr = np.stack([s[key] if s[key].ndim == 3 else s[key][..., None] for s in samples])
        t = torch.from_numpy(arr).permute(0, 3, 1, 2).to(dev)
        return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()

    return {k: stack(k) for k in ("sca", "gt", "mask", "thumb")}


def train_variant(
    name: str, data_path: str, seconds: float, eval_every: int, batch: int, out_json: str
) -> None:
    from src.data.transforms import focused_crop
    from src.gca.generator import build_generator, to_signed
    from src.gca.losses import gated_charbonnier
    from src.gca.networks import CoarseGenerator
    from src.gca.refine import RefinePyramid, build_image_pyramid
    from src.metrics.tensor import METRIC_FUNCTIONS

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    blob = torch.load(data_path, weights_only=False)
    tr, va = to_gpu(blob["train"], dev), to_gpu(blob["val"], dev)
    masks = [s["mask"] for s in blob["train"]]
    ck, rk, lr, gate = VARIANTS[name]
    gen = build_generator(
        CoarseGenerator(in_channels=7, **ck), RefinePyramid(extra_channels=7, init="residual", **rk),
        True, True, ("sca", "mask", "thumb"), True, gate,
    ).to(dev)  # fmt: skip
    opt = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.6, 0.999))
    rng = np.random.default_rng(1)
    h, w = tr["gt"].shape[-2:]
    index = np.arange(h * w).reshape(h, w)
    psnr = METRIC_FUNCTIONS["psnr_y"]

    def evaluate() -> tuple[float, float]:
        gen.eval()
        ins, outs = [], []
        with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16):
            for i in range(va["gt"].shape[0]):
                sl = {k: v[i : i + 1] for k, v in va.items()}
                o = gen(sl["sca"], sl["thumb"], sl["mask"])["output"].float()
                o = torch.round(o * 255) / 255
                ins.append(psnr(sl["sca"], sl["gt"]).item())
                outs.append(psnr(o, sl["gt"]).item())
        gen.train()
        return float(np.mean(ins)), float(np.mean(outs))

    curve = [(0, 0.0, *evaluate())]
    print(f"[{name}] step 0 val in/out {curve[0][2]:.3f} / {curve[0][3]:.3f}", flush=True)
    t0, step = time.time(), 0
    while time.time() - t0 < seconds:
        idx = rng.integers(0, tr["gt"].shape[0], batch)
        crops = []
        for i in idx:
            c = focused_crop({"i": index}, (256, 256), 4, rng, 1.0 - masks[i])["i"]
            y, x = divmod(int(c[0, 0]), w)
            crops.append((int(i), y, x))
        b = {k: torch.stack([v[i, :, y : y + 256, x : x + 256] for i, y, x in crops]) for k, v in tr.items()}
        with torch.autocast(dev.type, torch.bfloat16):
            out = gen.run(b["sca"], b["thumb"], b["mask"])
        gts = build_image_pyramid(to_signed(b["gt"]), len(out["levels"]))
        levels = zip(out["levels"], gts, out["gates"], strict=True)
        loss = sum(gated_charbonnier(y.float(), t, g.float()) for y, t, g in levels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % eval_every == 0:
            curve.append((step, time.time() - t0, *evaluate()))
            print(f"[{name}] step {step} ({curve[-1][1]:.0f} s) loss {loss.item():.4f} "
                  f"val in/out {curve[-1][2]:.3f} / {curve[-1][3]:.3f}", flush=True)  # fmt: skip
    Path(out_json).write_text(json.dumps({"variant": name, "curve": curve}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--variants", default="full,small")
    ap.add_argument("--n-variants", type=int, default=16, help="corruptions per training photo")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("/tmp/repair_study"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    data = build_samples(args.photos, args.n_variants, max(1, (os.cpu_count() or 2) - 1))
    path = args.out / "samples.pt"
    torch.save(data, path)
    print(
        f"built {len(data['train'])} train / {len(data['val'])} val samples in {time.time() - t:.0f} s",
        flush=True,
    )
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=train_variant,
            args=(v, str(path), args.seconds, args.eval_every, args.batch, str(args.out / f"{v}.json")),
        )
        for v in args.variants.split(",")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
