"""src.gca.modules: Hydra configs, Lightning fit / validate / test, manual GAN optimisation, schedules,
export, refine-only mode, logging hooks; an overfit check (slow) and a 2-process DDP run (slow).

Data: crops of scikit-image's photos with a simple synthetic degradation standing in for SCA's output (some
16x16 blocks get a DC offset per channel, some are replaced by the thumbnail; the trust mask is 0 there) and a
thumbnail made by 8x area-downsampling and bicubic upsampling.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

from src.gca import CoarseGANModule, RefineGANModule, count_parameters, load_generator
from src.gca.generator import to_signed
from src.gca.losses import feature_matching_loss, lsgan_loss
from src.metrics.tensor import psnr_y

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
SMALL_COARSE = [
    "generator.ngf=4",
    "generator.n_downsample_global=2",
    "generator.n_blocks_global=1",
    "generator.n_blocks_local=1",
    "discriminator.ndf=8",
    "discriminator.n_layers=2",
]

warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*GPU available but not used.*")


def degrade(rgb: np.ndarray, top: int, left: int, h: int, w: int, seed: int) -> dict[str, Any]:
    """One sample of the batch contract from a photo crop (see the module docstring)."""
    rng = np.random.default_rng(seed)
    gt = torch.from_numpy(rgb[top : top + h, left : left + w].copy()).permute(2, 0, 1).float() / 255.0
    small = F.adaptive_avg_pool2d(gt[None], (h // 8, w // 8))
    thumb = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)
    sca, mask = gt.clone(), torch.ones(1, h, w)
    for by in range(h // 16):
        for bx in range(w // 16):
            block = (slice(None), slice(16 * by, 16 * by + 16), slice(16 * bx, 16 * bx + 16))
            r = rng.random()
            if r < 0.3:
                offset = rng.choice([-1.0, 1.0], (3, 1, 1)) * rng.uniform(0.08, 0.2, (3, 1, 1))
                sca[block] = (sca[block] + torch.from_numpy(offset).float()).clamp(0, 1)
                mask[block] = 0
            elif r < 0.45:
                sca[block] = thumb[block]
                mask[block] = 0
    corrupted = sca.clone()
    corrupted[:, h // 2 :] = 0.5  # what a plain decoder shows after an error
    return {
        "sca": sca,
        "thumb": thumb,
        "gt": gt,
        "mask": mask,
        "corrupted": corrupted,
        "path": f"photo{seed}.png",
        "ber": 1e-5,
        "seed": seed,
    }


class Samples(Dataset):
    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.samples[i]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread, and the shared 2-core runners stay responsive."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def loaders():
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea()]
    train = [degrade(p, 40 + 30 * i, 60 + 20 * i, 64, 64, seed=i) for i, p in enumerate(photos)]
    train.append(degrade(photos[0], 200, 200, 64, 64, seed=7))
    # validation / test on "full images" whose size is no multiple of the networks' (forward pads)
    full = [degrade(p, 0, 0, 72, 88, seed=10 + i) for i, p in enumerate(photos[:2])]
    return (
        DataLoader(Samples(train), batch_size=2, shuffle=False),
        DataLoader(Samples(full), batch_size=1),
    )


def model(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=list(overrides))
    return instantiate(cfg)


def trainer(**kw) -> L.Trainer:
    args = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    args.update(kw)
    return L.Trainer(**args)


# ---------------------------------------------------------------- configs


def test_every_model_config_instantiates():
    coarse = model("gca_coarse")
    assert isinstance(coarse, CoarseGANModule) and not isinstance(coarse, RefineGANModule)
    assert coarse.net.coarse.in_channels == 7  # SCA | thumbnail | trust mask
    assert round(count_parameters(coarse.net) / 1e6, 2) == 17.38
    paper = model("gca_refine_paper")
    assert paper.net.coarse.in_channels == 6 and paper.net.refine.extra_channels == 0
    assert not paper.net.refine_residual
    assert round(count_parameters(paper.net.refine) / 1e6, 2) == 0.74  # 2 levels
    ours = model("gca_refine", "refine.levels=3")
    assert ours.net.refine.levels == 3 and ours.net.refine.extra_channels == 7 and ours.net.refine_residual
    small = model("gca_refine_small")
    assert count_parameters(small.net) < 200_000
    # hyper-parameters are plain Python (checkpoints load with weights_only=True)
    for m in (coarse, paper, ours, small):
        for v in m.hparams.values():
            assert type(v).__module__ == "builtins", (m, v)
    assert isinstance(small.optimizer_g(small.net.parameters()), torch.optim.Adam)


# ---------------------------------------------------------------- Lightning runs


@pytest.mark.parametrize("name", ["gca_coarse", "gca_refine_small"])
def test_fast_dev_run_fit_validate_test(name, loaders):
    train, full = loaders
    m = model(name, *SMALL_COARSE) if name == "gca_coarse" else model(name)
    t = trainer(fast_dev_run=True)
    t.fit(m, train, full)
    for key in (
        "train/loss_d",
        "train/loss_g",
        "train/g_feat",
        "train/g_edge",
        "val/psnr_y",
        "val/psnr_y_input",
    ):
        assert key in t.callback_metrics, key
    assert t.global_step == 2  # a D and a G optimizer step (after one backward pass)
    if name == "gca_refine_small":
        assert "train/g_char" in t.callback_metrics and "train/g_edge_refined" in t.callback_metrics
    out = t.test(m, full)[0]
    assert {"test/psnr_y", "test/ssim_y", "test/psnr_rgb", "test/psnr_y_input"} <= set(out)
    sca, gt = full.dataset[0]["sca"][None], full.dataset[0]["gt"][None]
    assert out["test/psnr_y_input"] == pytest.approx(psnr_y(sca, gt).item(), abs=1e-6)
    assert len(m.test_rows) == 1 and m.test_rows[0]["path"] == "photo10.png"


class _GradSpyMixin:
    """Records every parameter's gradient right after each backward pass (``self.spy``: one dict per pass)."""

    def manual_backward(self, loss, *args, **kwargs):
        super().manual_backward(loss, *args, **kwargs)
        self.spy.append(
            {n: None if p.grad is None else p.grad.detach().clone() for n, p in self.named_parameters()}
        )


class _CoarseSpy(_GradSpyMixin, CoarseGANModule):
    pass


class _RefineSpy(_GradSpyMixin, RefineGANModule):
    pass


STEP_CASES = {
    "coarse": ("_CoarseSpy", "gca_coarse", *SMALL_COARSE),
    "refine": ("_RefineSpy", "gca_refine_small"),
    "refine_frozen_coarse": ("_RefineSpy", "gca_refine_small", "freeze_coarse=true"),
}


def _plain_adversarial_terms(self, x_in, coarse, gt, d_real=None):
    """The G-side terms with D called as is (its parameters not detached): gradients reach D too."""
    d_fake = self.discriminator(torch.cat([x_in, coarse], dim=1))
    with torch.no_grad():
        d_real = self.discriminator(torch.cat([x_in, gt], dim=1))
    return {"g_gan": lsgan_loss(d_fake, True), "g_feat": feature_matching_loss(d_fake, d_real)}


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_single_backward_gives_each_network_its_own_loss_gradient(case, loaders):
    train, _ = loaders
    target, name, *overrides = STEP_CASES[case]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=[f"_target_={__name__}.{target}", *overrides])
    torch.manual_seed(0)
    m = instantiate(cfg)
    m.spy = []
    ref = copy.deepcopy(m)  # the weights the step starts from
    trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(m, train)
    assert len(m.spy) == 1  # one backward pass per training step
    grads = m.spy[0]
    # every trainable parameter (and only those) got a gradient: plain DDP (no unused search) needs that
    for n, p in m.named_parameters():
        assert (grads[n] is not None) == p.requires_grad, n
    assert any(p.requires_grad for p in m.net.parameters())
    if case == "refine_frozen_coarse":
        assert m.discriminator is None and not any(p.requires_grad for p in m.net.coarse.parameters())
        ref.net.coarse.eval()

    # references on the same batch: each network's own loss, differentiated alone
    batch = next(iter(train))
    gt = to_signed(batch["gt"])
    out = ref._run_generator(batch)
    g_params = {n: p for n, p in ref.named_parameters() if p.requires_grad and n.startswith("net.")}
    d_params = {f"discriminator.{n}": p for n, p in (ref.discriminator or nn.Module()).named_parameters()}
    assert len(g_params) + len(d_params) == sum(p.requires_grad for p in ref.parameters())
    expected = {}
    if d_params:
        disc = ref.discriminator
        x_in, fake = out["x_in"].detach(), out["coarse"].detach()
        loss_d = 0.5 * (
            lsgan_loss(disc(torch.cat([x_in, gt], 1)), True)
            + lsgan_loss(disc(torch.cat([x_in, fake], 1)), False)
        )
        expected.update(zip(d_params, torch.autograd.grad(loss_d, list(d_params.values())), strict=True))
    ref._adversarial_terms = functools.partial(_plain_adversarial_terms, ref)
    loss_g = ref.weighted_total(ref.generator_losses(out, gt))
    g_grads = torch.autograd.grad(loss_g, list(g_params.values()), retain_graph=True)
    expected.update(zip(g_params, g_grads, strict=True))
    if d_params:  # loss_g alone would reach D: the step's detached D parameters keep it out
        to_d = torch.autograd.grad(loss_g, list(d_params.values()), allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in to_d)
    assert set(expected) == {n for n, g in grads.items() if g is not None}
    for n, g in expected.items():
        torch.testing.assert_close(grads[n], g, rtol=1e-4, atol=1e-8, msg=n)


@pytest.mark.parametrize("name", ["gca_coarse", "gca_refine_small"])
def test_one_training_step_updates_generator_and_discriminator(name, loaders):
    train, _ = loaders
    m = model(name, *SMALL_COARSE) if name == "gca_coarse" else model(name)
    nets = {"coarse G": m.net.coarse, "D": m.discriminator}
    if name == "gca_refine_small":
        nets["refine"] = m.net.refine
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in nets.items()}
    t = trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    t.fit(m, train)
    assert t.global_step == 2  # a D and a G optimizer step after the one backward pass
    assert {"train/loss_d", "train/d_real", "train/d_fake", "train/loss_g", "train/g_gan"} <= set(
        t.callback_metrics
    )
    for k, net in nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters(), strict=True)), k


class _LrRecorder(Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_lr_schedule_is_per_epoch_and_resumes(loaders, tmp_path):
    train, _ = loaders
    sched = ["scheduler.epochs_constant=1", "scheduler.epochs_decay=2"]
    rec = _LrRecorder()
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    t = trainer(max_epochs=2, limit_val_batches=0, callbacks=[rec, ckpt], enable_checkpointing=True)
    t.fit(model("gca_refine_small", *sched), train)
    assert t.global_step == 2 * 2 * 2  # 2 optimizer steps per batch, 2 batches, 2 epochs
    rec2 = _LrRecorder()
    t2 = trainer(max_epochs=4, limit_val_batches=0, callbacks=[rec2])
    m2 = model("gca_refine_small", *sched)
    t2.fit(m2, train, ckpt_path=str(tmp_path / "last.ckpt"))
    assert t2.global_step == 16 and t2.current_epoch == 4
    base = 1e-3
    # epochs 0, 1 at the base lr, then down by 1/2 per epoch: 0.5, 0
    assert rec.lrs + rec2.lrs == pytest.approx([base, base, base / 2, 0.0])


def test_export_and_load_round_trip(loaders, tmp_path):
    train, full = loaders
    m = model("gca_refine_small")
    t = trainer(max_steps=2, limit_val_batches=0)
    t.fit(m, train)
    t.save_checkpoint(tmp_path / "m.ckpt")
    m.eval()
    batch = full.dataset[0]
    args = (batch["sca"][None], batch["thumb"][None], batch["mask"][None])
    with torch.no_grad():
        ref = m.net(*args)
        # a Lightning checkpoint rebuilds without any config, as a module or as the bare generator
        again = RefineGANModule.load_from_checkpoint(tmp_path / "m.ckpt").eval()
        torch.testing.assert_close(again.net(*args)["refined"], ref["refined"], rtol=0, atol=0)
        torch.testing.assert_close(load_generator(tmp_path / "m.ckpt")(*args)["refined"], ref["refined"])
        path32 = m.export_generator(tmp_path / "g32.pt", dtype=torch.float32)
        out32 = load_generator(path32)(*args)
        torch.testing.assert_close(out32["refined"], ref["refined"], rtol=0, atol=0)
        path16 = m.export_generator(tmp_path / "g16.pt")
        g16 = load_generator(path16)
        for p in m.net.parameters():  # the module with its weights rounded to bf16 must agree exactly
            p.copy_(p.to(torch.bfloat16).float())
        torch.testing.assert_close(g16(*args)["refined"], m.net(*args)["refined"], rtol=0, atol=0)
    n = count_parameters(m.net)
    assert path16.stat().st_size < 2 * n + 200_000 < path32.stat().st_size
    assert g16.spec() == m.net.spec()


def test_warm_start_from_an_exported_generator_or_checkpoint(loaders, tmp_path):
    """``model.init_from``: the generator's weights come from the file (an export or a Lightning checkpoint),
    the discriminator and optimizers start afresh, training continues from there; another network is an
    error that says what differs."""
    train, _ = loaders
    first = model("gca_refine_small")
    trainer(max_steps=4, limit_val_batches=0).fit(first, train)
    export = first.export_generator(tmp_path / "g.pt", dtype=torch.float32)
    warm = model("gca_refine_small", f"init_from={export}")
    for (name, a), b in zip(first.net.state_dict().items(), warm.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    trained_d = zip(first.discriminator.parameters(), warm.discriminator.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in trained_d)  # D starts afresh
    t = trainer(max_steps=2, limit_val_batches=0)
    t.fit(warm, train)
    assert t.global_step == 2  # a new run: steps and optimizer states restart
    moved = zip(first.net.parameters(), warm.net.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in moved)
    # a Lightning checkpoint's generator works too
    t.save_checkpoint(tmp_path / "warm.ckpt")
    again = model("gca_refine_small", f"init_from={tmp_path / 'warm.ckpt'}")
    torch.testing.assert_close(again.net.state_dict(), warm.net.state_dict(), rtol=0, atol=0)
    with pytest.raises(InstantiationException, match=r"init_from=.*differs from this module.s"):
        model("gca_refine_small", f"init_from={export}", "refine.width=8")


def test_warm_start_from_the_shipped_weights(tmp_path):
    """The documented command: ``model=gca_refine model.init_from=weights/gca_refine.pt`` (the shipped int8
    generator) gives a module whose generator computes what the shipped generator computes."""
    shipped = Path(__file__).resolve().parents[1] / "weights" / "gca_refine.pt"
    if not shipped.is_file():
        pytest.skip("weights/gca_refine.pt is not in this checkout")
    m = model("gca_refine", f"init_from={shipped}")
    ref = load_generator(shipped)
    x = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    thumb = F.interpolate(F.avg_pool2d(x, 4), size=(64, 128), mode="bicubic").clamp(0, 1)
    mask = torch.ones(1, 1, 64, 128)
    with torch.no_grad():
        torch.testing.assert_close(m.net.eval()(x, thumb, mask)["output"], ref(x, thumb, mask)["output"])


def test_refine_only_mode_starts_from_a_coarse_checkpoint(loaders, tmp_path):
    train, _ = loaders
    small = ["generator.ngf=8", "generator.n_downsample_global=2", "generator.n_blocks_global=1"]
    small += ["generator.n_blocks_local=1", "discriminator.ndf=16", "discriminator.n_layers=2"]
    coarse = model("gca_coarse", *small)
    t = trainer(max_steps=2, limit_val_batches=0)
    t.fit(coarse, train)
    t.save_checkpoint(tmp_path / "coarse.ckpt")
    m = model("gca_refine_small", f"coarse_ckpt_path={tmp_path / 'coarse.ckpt'}", "freeze_coarse=true")
    assert m.discriminator is None
    for a, b in zip(m.net.coarse.parameters(), coarse.net.coarse.parameters(), strict=True):
        assert torch.equal(a, b)
    coarse_before = [p.detach().clone() for p in m.net.coarse.parameters()]
    refine_before = [p.detach().clone() for p in m.net.refine.parameters()]
    t2 = trainer(max_steps=2, limit_val_batches=0)
    t2.fit(m, train)
    assert len(t2.optimizers) == 1 and t2.global_step == 2  # G steps only
    assert all(torch.equal(a, b) for a, b in zip(coarse_before, m.net.coarse.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(refine_before, m.net.refine.parameters(), strict=True))
    # not frozen: the discriminator comes from the checkpoint too
    m3 = model("gca_refine_small", f"coarse_ckpt_path={tmp_path / 'coarse.ckpt'}")
    for a, b in zip(m3.discriminator.parameters(), coarse.discriminator.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(InstantiationException, match="does not match"):
        model("gca_refine_small", f"coarse_ckpt_path={tmp_path / 'coarse.ckpt'}", "generator.ngf=4")


def test_wandb_offline_grids_are_0_255_images_of_the_batch_and_summaries_keep_the_best(
    loaders, tmp_path, monkeypatch
):
    """The REAL wandb, offline: the PNG it writes for a validation grid is the uint8 image of the batch
    (``corrupted | SCA | coarse | refined | GT``, quantised like the metrics), not a black 0/1 picture; the
    summary of the monitored metric is its best value; the per-image tables reach wandb and the run
    folder."""
    import csv

    from lightning.pytorch.loggers import WandbLogger
    from PIL import Image

    from src.metrics.tensor import to_levels
    from src.utils.instantiators import define_best_summaries
    from src.utils.run_files import read_metrics
    from src.utils.run_logger import RunFileLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train, full = loaders
    m = model("gca_refine_small")
    wb = WandbLogger(save_dir=str(tmp_path), project="test", offline=True)
    loggers = [wb, RunFileLogger(tmp_path)]
    t = trainer(max_epochs=3, limit_val_batches=1, logger=loggers, num_sanity_val_steps=0)
    assert define_best_summaries(t.loggers, {"val/psnr_y": "max"}) == ["val/psnr_y"]
    try:
        t.fit(m, train, full)
        t.test(m, full)
        summary = wb.experiment.summary["val/psnr_y"]
        best = dict(summary)["max"]
    finally:
        wb.experiment.finish()
    run = next((tmp_path / "wandb").glob("offline-run-*"))
    pngs = sorted((run / "files" / "media" / "images" / "val").glob("grid_*.png"))
    assert len(pngs) == 3  # one grid per validation
    grid = np.asarray(Image.open(pngs[-1]))
    assert grid.dtype == np.uint8 and grid.shape == (72, 5 * 88, 3)  # corrupted|SCA|coarse|refined|GT
    assert grid.max() > 200 and len(np.unique(grid)) > 50  # a photo, not 0 / 1
    expect = {"SCA": (88, full.dataset[0]["sca"]), "GT": (4 * 88, full.dataset[0]["gt"])}
    for name, (x0, tensor) in expect.items():
        levels = to_levels(tensor[None])[0].permute(1, 2, 0).numpy().astype(np.uint8)
        np.testing.assert_array_equal(grid[:, x0 : x0 + 88], levels, err_msg=name)
    # the wandb summary holds the best validation value, as metrics.csv shows it
    series = read_metrics(tmp_path / "metrics.csv")["val/psnr_y"]
    assert len(series) == 3 and best == pytest.approx(max(v for _, v in series))
    # per-image tables: wandb's table files and the run folder's CSVs
    assert list((run / "files" / "media" / "table" / "test").glob("per_image_*.table.json"))
    with (tmp_path / "tables" / "test_per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == ["photo10.png", "photo11.png"]
    assert {"step", "ber", "seed", "psnr_y", "psnr_y_input"} <= set(rows[0])
    with (tmp_path / "tables" / "val_per_image.csv").open() as f:
        val_rows = list(csv.DictReader(f))
    assert len(val_rows) == 1 and int(val_rows[0]["step"]) == series[-1][0]  # the last validation's step
    # a logger without image support is fine
    trainer(max_epochs=1, limit_val_batches=1, logger=CSVLogger(tmp_path / "csv")).fit(
        model("gca_refine_small"), train, full
    )


# ---------------------------------------------------------------- slow checks


@pytest.mark.slow
def test_overfit_two_crops_beats_the_input():
    from skimage import data

    samples = [
        degrade(data.astronaut(), 100, 180, 64, 64, seed=1),
        degrade(data.coffee(), 150, 250, 64, 64, seed=2),
    ]
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("sca", "thumb", "gt", "mask")}
    torch.manual_seed(0)
    m = model("gca_refine_small")
    trainer(max_epochs=300, limit_val_batches=0).fit(m, DataLoader(Samples(samples), batch_size=2))
    m.eval()
    with torch.no_grad():
        out = m(batch)
    before = psnr_y(batch["sca"], batch["gt"])
    after = psnr_y(out["refined"], batch["gt"])
    assert after.mean() > before.mean() + 2.0, (before, after)
    assert (after > before + 0.5).all(), (before, after)


@pytest.mark.slow
def test_ddp_spawn_two_cpu_processes(loaders, tmp_path):
    train, full = loaders
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    m = model("gca_refine_small")
    t = trainer(
        devices=2,
        strategy="ddp_spawn",  # plain DDP: it raises if a parameter got no gradient in an iteration
        max_steps=6,  # 3 batches (1 a rank per epoch): the check runs from the 2nd on
        limit_val_batches=1,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    before = [p.detach().clone() for p in m.net.parameters()]
    d_before = [p.detach().clone() for p in m.discriminator.parameters()]
    t.fit(m, train, full)
    # ddp_spawn hands rank 0's weights and metrics back to this process
    keys = {"train/loss_d", "train/loss_g", "train/lr", "val/psnr_y", "val/psnr_y_input"}
    assert keys <= set(t.callback_metrics)
    assert any(not torch.equal(a, b) for a, b in zip(before, m.net.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, m.discriminator.parameters(), strict=True))
