"""LightningModules for GCA: the coarse GAN alone, and coarse + refine trained jointly (the paper's way).

Batch dict (from the DataModule): ``sca``, ``thumb``, ``gt`` float ``(B, 3, H, W)`` in [0, 1], ``mask``
``(B, 1, H, W)`` in [0, 1], optional ``corrupted`` (for image grids) and metadata ``path``, ``ber``, ``seed``.
The DataModule's loaders ship the images as uint8 and its ``on_after_batch_transfer`` converts them to
float32 on the device (``src.data.dataset.batch_to_float``): the steps here always see float32. Feeding
these modules from another loader, give them float images too (or call ``batch_to_float``).
Training crops have H, W multiples of ``net.required_multiple``; validation and test run on full images of any
size (``forward`` pads).

Optimisation is manual (two optimizers) with ONE backward pass per batch, of ``loss_d + loss_g``: the D loss
(LSGAN on [input | GT] vs [input.detach() | coarse.detach()]) reaches only D; the G terms evaluate D through
``torch.func.functional_call`` with detached D parameters, so they reach only G. Then both optimizers step
(pix2pixHD's own order: G and D losses from the same D, then both updated). Adam 2e-4, betas (0.6, 0.999);
the learning rate is constant, then decays linearly, stepped per EPOCH (``global_step`` counts 2 per batch:
two optimizer steps). Every trainable parameter gets a gradient in that one backward pass, so DDP needs no
unused-parameter search: use the plain ``ddp`` strategy (``trainer=ddp``), one all-reduce per batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from src.gca.generator import GCAGenerator, build_generator, export_generator, load_generator, to_signed
from src.gca.losses import (
    PerceptualLoss,
    SobelEdgeLoss,
    charbonnier,
    feature_matching_loss,
    gated_charbonnier,
    lsgan_loss,
)
from src.gca.networks import MultiscaleDiscriminator, NetworkConfigError
from src.gca.refine import build_image_pyramid
from src.gca.schedules import constant_then_linear
from src.metrics.tensor import METRIC_FUNCTIONS, image_metric_collection, to_levels

__all__ = ["CoarseGANModule", "RefineGANModule"]

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], Any]
NetOrFactory = nn.Module | Callable[..., nn.Module]

#: The paper's optimizer: Adam, lr 2e-4, betas (0.6, 0.999), for G and D.
default_optimizer: OptimizerFactory = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.6, 0.999))
#: The paper's schedule: 100 epochs constant, 100 epochs linear decay to 0.
default_scheduler: SchedulerFactory = functools.partial(
    constant_then_linear, epochs_constant=100, epochs_decay=100
)

_NOT_HPARAMS = ("generator", "discriminator", "refine", "optimizer_g", "optimizer_d", "scheduler")


class CoarseGANModule(L.LightningModule):
    """The paper's coarse stage alone: pix2pixHD generator + multiscale PatchGAN.

    Args:
        generator: a :class:`~src.gca.networks.CoarseGenerator` or a factory (Hydra ``_partial_``) that gets
            ``in_channels`` from ``use_thumbnail`` / ``use_mask``.
        discriminator: a :class:`~src.gca.networks.MultiscaleDiscriminator` or a factory that gets
            ``in_channels`` (generator input + 3); may be None only when no adversarial step runs.
        optimizer_g, optimizer_d: factories ``params -> Optimizer`` (default: Adam 2e-4, betas (0.6, 0.999)).
        scheduler: factory ``optimizer -> LR scheduler`` stepped once per epoch (None: the paper's 100 + 100
            epochs).
        use_thumbnail, use_mask: generator inputs besides the SCA image.
        lambda_gan, lambda_feat, lambda_edge: LSGAN (1), feature matching (10), Sobel edge (15) on the coarse
            image.
        lambda_char: Charbonnier between coarse image and GT (0: the paper has no pixel loss on the coarse
        image). lambda_vgg, vgg_weights_path: VGG19 perceptual loss on the coarse image (off; needs a
        weights file).
        char_eps: Charbonnier eps (1e-6).
        gradient_clip_val: clip each network's gradient norm to this (None = off); set here, not on the
        Trainer
            (manual optimisation).
        val_metrics: names from :data:`src.metrics.tensor.METRIC_FUNCTIONS` logged as ``val/<name>`` (output),
            ``val/<name>_input`` (the SCA input) and likewise ``test/...``.
        num_grid_images: images per validation grid logged on rank 0 to loggers with ``log_image`` (0 = off);
            uint8 (H, W, 3) arrays quantised like the metrics (``to_levels``), one per image.
        init_from: warm start: an exported generator (``weights/gca_refine.pt``, any
            :func:`~src.gca.generator.export_generator` file) or a GCA Lightning checkpoint whose generator
            weights are copied into ``net`` (its spec must match this module's networks); the discriminator
            and the optimizer states start afresh. None: random init.
        generator_spec, discriminator_spec: network constructor arguments as stored in checkpoints; given,
            they replace ``generator`` / ``refine`` / ``discriminator``, so ``load_from_checkpoint(path)``
            works without a config. Inference alone: :func:`src.gca.generator.load_generator`.
    """

    def __init__(
        self,
        generator: NetOrFactory | None = None,
        discriminator: NetOrFactory | None = None,
        optimizer_g: OptimizerFactory | None = None,
        optimizer_d: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        use_thumbnail: bool = True,
        use_mask: bool = False,
        lambda_gan: float = 1.0,
        lambda_feat: float = 10.0,
        lambda_edge: float = 15.0,
        lambda_char: float = 0.0,
        lambda_vgg: float = 0.0,
        vgg_weights_path: str | None = None,
        char_eps: float = 1e-6,
        gradient_clip_val: float | None = None,
        val_metrics: Sequence[str] = ("psnr_y", "ssim_y", "psnr_rgb"),
        num_grid_images: int = 4,
        generator_spec: dict[str, Any] | None = None,
        discriminator_spec: dict[str, Any] | None = None,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=list(_NOT_HPARAMS), logger=False)
        self.automatic_optimization = False
        if generator_spec is not None:  # rebuilt from a checkpoint's hyper-parameters (load_from_checkpoint)
            self.net: GCAGenerator = GCAGenerator.from_spec(generator_spec)
            if discriminator_spec is not None:
                discriminator = MultiscaleDiscriminator(**discriminator_spec)
        elif generator is None:
            raise NetworkConfigError("pass a generator (module or factory) or a generator_spec")
        else:
            self.net = self._build_net(generator, use_thumbnail, use_mask)
        self.discriminator = None
        if discriminator is not None:
            d_in = self.net.coarse.in_channels + 3
            self.discriminator = (
                discriminator if isinstance(discriminator, nn.Module) else discriminator(in_channels=d_in)
            )
            if self.discriminator.in_channels != d_in:
                raise NetworkConfigError(
                    f"discriminator has in_channels={self.discriminator.in_channels}; the generator input "
                    f"({self.net.coarse.in_channels}) + 3 image channels = {d_in}"
                )
        self.optimizer_g = optimizer_g or default_optimizer
        self.optimizer_d = optimizer_d or default_optimizer
        self.scheduler = scheduler if scheduler is not None else default_scheduler
        self.edge_loss = SobelEdgeLoss()
        self.vgg_loss = PerceptualLoss(vgg_weights_path) if lambda_vgg > 0 else None
        unknown = [m for m in val_metrics if m not in METRIC_FUNCTIONS]
        if unknown:
            raise ValueError(f"unknown val_metrics {unknown}; known: {sorted(METRIC_FUNCTIONS)}")
        self.val_out = image_metric_collection(val_metrics, prefix="val/")
        self.val_in = image_metric_collection(val_metrics, prefix="val/", suffix="_input")
        self.test_out = image_metric_collection(val_metrics, prefix="test/")
        self.test_in = image_metric_collection(val_metrics, prefix="test/", suffix="_input")
        self.rows: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
        if init_from and generator_spec is None:  # (from a checkpoint, its own weights follow)
            self.warm_start(init_from)
        self.hparams["generator_spec"] = self.net.spec()
        if self.discriminator is not None:
            self.hparams["discriminator_spec"] = dict(self.discriminator.config)

    # ------------------------------------------------------------------ construction helpers
    def _build_net(self, generator: NetOrFactory, use_thumbnail: bool, use_mask: bool) -> GCAGenerator:
        return build_generator(generator, None, use_thumbnail, use_mask)

    @property
    def adversarial(self) -> bool:
        """True when each batch runs a D step and the adversarial G terms."""
        return self.discriminator is not None

    def configure_optimizers(self) -> Any:
        opt_g = self.optimizer_g([p for p in self.net.parameters() if p.requires_grad])
        optimizers = [opt_g]
        if self.adversarial:
            optimizers.append(self.optimizer_d(self.discriminator.parameters()))
        schedulers = [self.scheduler(o) for o in optimizers] if self.scheduler is not None else []
        return optimizers, schedulers

    # ------------------------------------------------------------------ inference
    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``{"coarse", "refined", "output"}``: float ``(B, 3, H, W)`` in [0, 1] for a batch of any size."""
        return self.net(batch["sca"], batch.get("thumb"), batch.get("mask"))

    def warm_start(self, path: str | Path) -> None:
        """Copy the generator weights of ``path`` (an export file or a GCA Lightning checkpoint) into
        ``self.net``. Raises :class:`NetworkConfigError` naming the differences when the networks differ."""
        src = load_generator(path)

        def shape_free(spec: dict[str, Any]) -> dict[str, Any]:  # init schemes do not change the weights
            out = dict(spec)
            for part in ("coarse", "refine"):
                if isinstance(out.get(part), dict):
                    out[part] = {k: v for k, v in out[part].items() if k not in ("init", "init_std")}
            return out

        mine, theirs = shape_free(self.net.spec()), shape_free(src.spec())
        if mine != theirs:
            diff = {
                k: (theirs.get(k), mine.get(k))
                for k in mine.keys() | theirs.keys()
                if mine.get(k) != theirs.get(k)
            }
            raise NetworkConfigError(
                f"model.init_from={path}: its generator differs from this module's (file, config): {diff}; "
                "choose the model config it was trained with"
            )
        self.net.load_state_dict(src.state_dict())
        log.info("warm start: generator weights from %s (discriminator and optimizers start afresh)", path)

    def export_generator(self, path: str | Path, dtype: torch.dtype = torch.bfloat16) -> Path:
        """Write the generator (spec + ``dtype`` weights) for :func:`src.gca.generator.load_generator`."""
        return export_generator(self.net, path, dtype)

    # ------------------------------------------------------------------ losses
    def _d_input(self, x_in: Tensor, image: Tensor) -> Tensor:
        return torch.cat([x_in, image], dim=1)

    def _frozen_discriminator(self, x: Tensor) -> list[list[Tensor]]:
        """D's outputs with its parameters detached: gradients reach the input ``x`` (so G), never D, and no
        ``requires_grad`` flag changes (DDP needs every parameter's flag fixed)."""
        d = self.discriminator
        state = {name: p.detach() for name, p in d.named_parameters()}
        state.update(dict(d.named_buffers()))
        return torch.func.functional_call(d, state, (x,))

    def _adversarial_terms(
        self, x_in: Tensor, coarse: Tensor, gt: Tensor, d_real: list[list[Tensor]] | None = None
    ) -> dict[str, Tensor]:
        """G-side LSGAN and feature-matching terms; they send gradients into G only (D's parameters are
        detached). ``d_real``: D's outputs on [x_in | gt] if already computed (the D loss's real pass)."""
        d_fake = self._frozen_discriminator(self._d_input(x_in, coarse))
        if d_real is None:
            with torch.no_grad():
                d_real = self.discriminator(self._d_input(x_in, gt))
        return {"g_gan": lsgan_loss(d_fake, True), "g_feat": feature_matching_loss(d_fake, d_real)}

    def generator_losses(self, out: dict[str, Any], gt: Tensor) -> dict[str, Tensor]:
        """Unweighted G loss terms (images in [-1, 1]); :meth:`weighted_total` applies the lambdas.
        ``out`` may hold ``d_real`` (D's outputs on [x_in | gt]), reused for feature matching."""
        hp = self.hparams
        coarse = out["coarse"]
        terms: dict[str, Tensor] = {}
        if self.adversarial:
            terms.update(self._adversarial_terms(out["x_in"], coarse, gt, out.get("d_real")))
        if hp.lambda_edge > 0:
            terms["g_edge"] = self.edge_loss(coarse, gt)
        if self._coarse_char_weight() > 0:
            terms["g_char"] = charbonnier(coarse, gt, hp.char_eps)
        if self.vgg_loss is not None:
            terms["g_vgg"] = self.vgg_loss(coarse, gt)
        return terms

    def _coarse_char_weight(self) -> float:
        return float(self.hparams.lambda_char)

    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        return {
            "g_gan": hp.lambda_gan,
            "g_feat": hp.lambda_feat,
            "g_edge": hp.lambda_edge,
            "g_char": hp.lambda_char,
            "g_vgg": hp.lambda_vgg,
        }

    def weighted_total(self, terms: dict[str, Tensor]) -> Tensor:
        weights = self.loss_weights()
        return sum(weights[k] * v for k, v in terms.items())

    # ------------------------------------------------------------------ training
    def _clip(self, optimizer: Any) -> None:
        if self.hparams.gradient_clip_val:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.hparams.gradient_clip_val, gradient_clip_algorithm="norm"
            )

    def _run_generator(self, batch: dict[str, Any]) -> dict[str, Any]:
        return self.net.run(batch["sca"], batch.get("thumb"), batch.get("mask"))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """One backward pass of ``loss_d + loss_g``, then a D and a G optimizer step.

        ``loss_d`` sees only detached generator outputs (gradients into D only); the G terms evaluate D with
        detached parameters (:meth:`_frozen_discriminator`: gradients into G only), so the sum's gradients are
        exactly each network's own loss gradients. Both losses use the same (not yet updated) D, then both
        networks step: the order of pix2pixHD's training loop. One backward = one DDP all-reduce per batch,
        and every trainable parameter gets a gradient (plain ``ddp``, no unused-parameter search).
        """
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        gt = to_signed(batch["gt"])
        bs = gt.shape[0]
        out = self._run_generator(batch)

        loss_d: Tensor | None = None
        if self.adversarial:
            x_in, fake = out["x_in"].detach(), out["coarse"].detach()
            d_real = self.discriminator(self._d_input(x_in, gt))
            loss_d_real = lsgan_loss(d_real, True)
            loss_d_fake = lsgan_loss(self.discriminator(self._d_input(x_in, fake)), False)
            loss_d = 0.5 * (loss_d_real + loss_d_fake)
            # the real pass's features are the feature-matching targets (detached, as in pix2pixHD)
            out["d_real"] = [[f.detach() for f in feats] for feats in d_real]
            self.log_dict(
                {
                    "train/loss_d": loss_d.detach(),
                    "train/d_real": loss_d_real.detach(),
                    "train/d_fake": loss_d_fake.detach(),
                },
                on_step=True,
                on_epoch=True,
                batch_size=bs,
            )

        terms = self.generator_losses(out, gt)
        loss_g = self.weighted_total(terms)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        self.manual_backward(loss_g if loss_d is None else loss_d + loss_g)
        for opt in optimizers[::-1]:  # [opt_d,] opt_g
            self._clip(opt)
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        self.log("train/loss_g", loss_g.detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in terms.items()}, on_step=True, on_epoch=True, batch_size=bs
        )

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for sch in schedulers if isinstance(schedulers, list) else [schedulers]:
            sch.step()
        self.log("train/lr", self.optimizers_lr(), on_step=False, on_epoch=True, sync_dist=True)

    def optimizers_lr(self) -> float:
        opts = self.optimizers()
        opt = opts[0] if isinstance(opts, list) else opts
        return float(opt.param_groups[0]["lr"])

    # ------------------------------------------------------------------ validation / test
    def _evaluate(self, batch: dict[str, Any], stage: str) -> dict[str, Tensor]:
        pred = self(batch)
        gt, bs = batch["gt"], batch["gt"].shape[0]
        metrics_out, metrics_in = (
            (self.val_out, self.val_in) if stage == "val" else (self.test_out, self.test_in)
        )
        metrics_out.update(pred["output"], gt)
        metrics_in.update(batch["sca"], gt)
        self.log_dict(metrics_out, on_step=False, on_epoch=True, batch_size=bs, prog_bar=stage == "val")
        self.log_dict(metrics_in, on_step=False, on_epoch=True, batch_size=bs)
        return pred

    def _collect_rows(self, batch: dict[str, Any], pred: dict[str, Tensor], stage: str) -> None:
        """One row per image (path, BER, seed, every metric of the output and of the SCA input)."""
        gt = batch["gt"]
        per_image = {name: METRIC_FUNCTIONS[name](pred["output"], gt) for name in self.hparams.val_metrics}
        per_input = {f"{n}_input": METRIC_FUNCTIONS[n](batch["sca"], gt) for n in self.hparams.val_metrics}
        paths = batch.get("path") or [""] * gt.shape[0]
        for i in range(gt.shape[0]):
            row: dict[str, Any] = {"path": str(paths[i])}
            for key in ("ber", "seed"):
                if key in batch:
                    v = batch[key][i]
                    row[key] = v.item() if isinstance(v, Tensor) else v
            row.update({k: float(v[i]) for k, v in {**per_image, **per_input}.items()})
            self.rows[stage].append(row)

    @property
    def test_rows(self) -> list[dict[str, Any]]:
        """The per-image rows of the last test run (gathered from every rank)."""
        return self.rows["test"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        pred = self._evaluate(batch, "val")
        if not self.trainer.sanity_checking:
            self._collect_rows(batch, pred, "val")
        if batch_idx == 0:
            self.log_image_grid(batch, pred, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        pred = self._evaluate(batch, "test")
        self._collect_rows(batch, pred, "test")
        if batch_idx == 0:
            self.log_image_grid(batch, pred, "test")

    def on_validation_epoch_start(self) -> None:
        self.rows["val"] = []

    def on_test_epoch_start(self) -> None:
        self.rows["test"] = []

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_rows("val")

    def on_test_epoch_end(self) -> None:
        self._log_rows("test")

    @property
    def logging_step(self) -> int:
        """The step Lightning gives the loggers with ``self.log`` values: training batches done
        (``global_step`` counts two optimizer steps per batch here), so grids and tables line up with the
        metrics."""
        return int(self.trainer.fit_loop.epoch_loop._batches_that_stepped) if self._trainer is not None else 0

    def _log_rows(self, stage: str) -> None:
        """Gather the per-image rows from every rank and log them as the ``<stage>/per_image`` table (with the
        step of the validation) to every logger with ``log_table`` (wandb, the run folder's CSV files)."""
        rows = self.rows[stage]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
            self.rows[stage] = rows
        if self.global_rank != 0 or not rows:
            return
        columns = ["step", *rows[0]]
        data = [[self.logging_step, *(r.get(c) for c in columns[1:])] for r in rows]
        for logger in self.loggers:
            if hasattr(logger, "log_table"):
                try:
                    logger.log_table(key=f"{stage}/per_image", columns=columns, data=data)
                except Exception as err:  # a logging backend must never fail training or evaluation
                    log.warning("could not log the per-image table to %s: %s", type(logger).__name__, err)

    # ------------------------------------------------------------------ image grids
    def grid_columns(self, batch: dict[str, Any], pred: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
        cols: list[tuple[str, Tensor]] = []
        if batch.get("corrupted") is not None:
            cols.append(("corrupted", batch["corrupted"]))
        cols += [("SCA", batch["sca"]), ("coarse", pred["coarse"])]
        if self.net.refine is not None:
            cols.append(("refined", pred["refined"]))
        cols.append(("GT", batch["gt"]))
        return cols

    def log_image_grid(self, batch: dict[str, Any], pred: dict[str, Tensor], stage: str) -> None:
        """Rows ``corrupted | SCA | coarse | refined | GT`` for the first images of the batch, from rank 0
        only, to every logger that has ``log_image`` (wandb); a no-op without such a logger. Each image is a
        uint8 (H, W * columns, 3) array, quantised like the metrics and the PNGs (``to_levels``: wandb takes
        arrays as 0..255 values, so float images in [0, 1] would come out black)."""
        n = min(int(self.hparams.num_grid_images), batch["sca"].shape[0])
        if n <= 0 or self.global_rank != 0:
            return
        targets = [lg for lg in self.loggers if hasattr(lg, "log_image")]
        if not targets:
            return
        cols = self.grid_columns(batch, pred)
        names = " | ".join(name for name, _ in cols)
        rows = torch.cat([c[:n].detach().float().cpu() for _, c in cols], dim=-1)  # (n, 3, H, W * columns)
        levels = to_levels(rows).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        images = list(levels)
        paths = batch.get("path") or [""] * n
        captions = [f"{names}  {Path(str(paths[i])).name}" for i in range(n)]
        for logger in targets:
            try:
                logger.log_image(key=f"{stage}/grid", images=images, caption=captions, step=self.logging_step)
            except Exception as err:  # a logging backend must never fail training
                log.warning("could not log images to %s: %s", type(logger).__name__, err)


class RefineGANModule(CoarseGANModule):
    """Coarse GAN + refine pyramid trained jointly (the paper), or refine-only from a coarse checkpoint.

    Extra args (the rest as :class:`CoarseGANModule`):
        refine: a :class:`~src.gca.refine.RefinePyramid` or a factory that gets ``extra_channels`` and
            ``use_thumbnail``.
        refine_inputs: our variant: any of ``"sca"``, ``"mask"``, ``"thumb"`` appended to every refine level's
            input (the paper: none).
        refine_residual: our variant: refine levels are corrections added to the (bicubic-halved) SCA image.
        mask_gate: our variant (with refine_residual): corrections only where SCA did not trust its content
            (``1 - mask``, dilated by this many pixels); 0 = everywhere.
        lambda_char: Charbonnier over the pyramid levels vs the bicubic-halved GT, divided by
            ``max(levels - 1, 1)`` (the paper: 150 / scen).
        lambda_edge_refined: Sobel edge loss on the refined image (15).
        lambda_char_gate: our variant (with mask_gate): Charbonnier over the pyramid levels averaged over
            the GATED pixels only (normalised by the gate's area, so the ~1 % of pixels SCA filled carry the
            whole term instead of 1 % of a mean), divided by ``max(levels - 1, 1)``; 0 = off.
        coarse_ckpt_path: an export file or Lightning checkpoint whose coarse generator (and discriminator, if
            present and used) initialise this module.
        freeze_coarse: keep the coarse generator fixed (refine-only mode: no D step, no adversarial terms).
    """

    def __init__(
        self,
        generator: NetOrFactory | None = None,
        discriminator: NetOrFactory | None = None,
        refine: NetOrFactory | None = None,
        refine_inputs: Sequence[str] = (),
        refine_residual: bool = False,
        mask_gate: int = 0,
        lambda_char: float = 150.0,
        lambda_edge_refined: float = 15.0,
        lambda_char_gate: float = 0.0,
        coarse_ckpt_path: str | None = None,
        freeze_coarse: bool = False,
        **kwargs: Any,
    ) -> None:
        self._refine_factory = refine
        self._refine_inputs = tuple(refine_inputs)
        self._refine_residual = refine_residual
        self._mask_gate = int(mask_gate)
        if freeze_coarse:
            discriminator = None
        if coarse_ckpt_path and kwargs.get("init_from"):
            raise NetworkConfigError(
                "give model.init_from (the whole generator) or model.coarse_ckpt_path, not both"
            )
        if refine is None and kwargs.get("generator_spec") is None:
            raise NetworkConfigError(
                "RefineGANModule needs a refine net (module or factory) or a generator_spec"
            )
        super().__init__(generator, discriminator, lambda_char=lambda_char, **kwargs)
        if lambda_char_gate > 0 and not self.net.mask_gate:
            raise NetworkConfigError("lambda_char_gate > 0 needs mask_gate > 0 (the gate it averages over)")
        if coarse_ckpt_path:
            self.load_coarse(coarse_ckpt_path)
        elif freeze_coarse and kwargs.get("generator_spec") is None:
            log.warning(
                "freeze_coarse=True without coarse_ckpt_path: the coarse generator stays at its random init"
            )
        if freeze_coarse:
            self.net.coarse.requires_grad_(False)

    def _build_net(self, generator: NetOrFactory, use_thumbnail: bool, use_mask: bool) -> GCAGenerator:
        return build_generator(
            generator,
            self._refine_factory,
            use_thumbnail,
            use_mask,
            self._refine_inputs,
            self._refine_residual,
            self._mask_gate,
        )

    def load_coarse(self, path: str | Path) -> None:
        """Copy the coarse generator (and D, if this module has one and the file holds one) from ``path``."""
        src = load_generator(path)
        if src.coarse.config != self.net.coarse.config:
            raise NetworkConfigError(
                f"{path}: coarse generator {src.coarse.config} does not match this module's "
                f"{self.net.coarse.config}"
            )
        self.net.coarse.load_state_dict(src.coarse.state_dict())
        if self.discriminator is not None:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            d_state = {
                k[len("discriminator.") :]: v
                for k, v in payload.get("state_dict", {}).items()
                if k.startswith("discriminator.")
            }
            if d_state:
                self.discriminator.load_state_dict(d_state)

    def _coarse_char_weight(self) -> float:
        return 0.0  # lambda_char weighs the pyramid levels here

    def on_train_epoch_start(self) -> None:
        if self.hparams.freeze_coarse:
            self.net.coarse.eval()  # no effect with instance norm; keeps batch-norm variants fixed

    def generator_losses(self, out: dict[str, Any], gt: Tensor) -> dict[str, Tensor]:
        # the coarse image's own terms (none when it is frozen: they would carry no gradient)
        terms = super().generator_losses(out, gt) if not self.hparams.freeze_coarse else {}
        levels: list[Tensor] = out["levels"]
        gts = build_image_pyramid(gt, len(levels))
        eps = self.hparams.char_eps
        terms["g_char"] = sum(charbonnier(y, t, eps) for y, t in zip(levels, gts, strict=True)) / max(
            len(levels) - 1, 1
        )
        if self.hparams.lambda_edge_refined > 0:
            terms["g_edge_refined"] = self.edge_loss(levels[-1], gt)
        gates: list[Tensor] = out.get("gates") or []
        if self.hparams.lambda_char_gate > 0 and gates:
            terms["g_char_gate"] = sum(
                gated_charbonnier(y, t, g, eps) for y, t, g in zip(levels, gts, gates, strict=True)
            ) / max(len(levels) - 1, 1)
        return terms

    def loss_weights(self) -> dict[str, float]:
        return {
            **super().loss_weights(),
            "g_edge_refined": self.hparams.lambda_edge_refined,
            "g_char_gate": self.hparams.lambda_char_gate,
        }
