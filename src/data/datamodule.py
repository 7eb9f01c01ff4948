"""LightningDataModule: on-the-fly corrupted samples for the GCA modules (batch dict in contracts.md)."""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from lightning.pytorch import LightningDataModule
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.data import DataLoader

from src.data.dataset import (
    CleanJpegCache,
    CorruptedImageDataset,
    EpochSampler,
    SampleCache,
    settings_fingerprint,
)
from src.data.pipeline import PipelineSettings, make_sample
from src.data.sources import SPLITS, DatasetError, ImageItem, list_split, readable_items
from src.data.transforms import as_size, scaled_size

log = logging.getLogger(__name__)

_WARMED_UP = False


def _plain(value: Any) -> Any:
    """A Hydra DictConfig / ListConfig as plain Python containers (other values unchanged)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _options(value: Any) -> dict[str, Any]:
    """Keyword options from a config mapping, without Hydra's ``_target_`` / ``_partial_`` style keys."""
    return {k: v for k, v in (_plain(value) or {}).items() if not str(k).startswith("_")}


def with_ber(corruptor: Any, ber: float | Sequence[float]) -> Any:
    """A copy of ``corruptor`` with another bit-error rate (a float or a [lo, hi] range)."""
    if dataclasses.is_dataclass(corruptor):
        try:
            return dataclasses.replace(corruptor, ber=ber)
        except (TypeError, ValueError):
            pass
    clone = copy.copy(corruptor)
    clone.ber = ber
    return clone


def warm_up(corruptor: Any, settings: PipelineSettings) -> None:
    """Compile the numba decoder / SCA kernels in this process (once), so DataLoader workers forked afterwards
    start warm: one sample of a 256x256 noise texture, corrupted at BER 1e-3 so the resync paths run too."""
    global _WARMED_UP
    if _WARMED_UP:
        return
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256]
    base = np.stack([xx, yy, (xx + yy) // 2], axis=2).astype(np.float64)
    texture = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    small = dataclasses.replace(settings, corruption_size=None, scale=None, keep_corrupted=True)
    try:
        from src.jpeg import warmup as warm_up_decoder

        warm_up_decoder()
        make_sample(texture, with_ber(corruptor, 1e-3), seed=0, settings=small)
    except Exception as exc:  # warm-up is an optimisation: never fail training because of it
        log.warning("pipeline warm-up failed (workers will compile on first use): %s", exc)
    _WARMED_UP = True


class RestorationDataModule(LightningDataModule):
    """Photos -> corrupted JPEG -> robust decode -> SCA -> batches of ``sca``, ``thumb``, ``gt``, ``mask`` (+
    ``corrupted`` in val/test) float32 (B, C, H, W) in [0, 1], with ``path``, ``ber``, ``seed``.

    Args (Hydra ``conf/data/*.yaml``):
        source, root, splits, holdout: which images (see :func:`src.data.sources.list_split`).
        corruptor: a ``src.corruption.Corruptor`` (the ``corruption`` group); None = the ``paper`` preset.
        decoder, sca: option dicts for ``src.jpeg.decode`` / ``src.sca.compensate`` (those groups).
        corruption_size: [W, H] the photo is corrupted at (the paper: 2048x1024); null = native size.
        scale: [W, H] of the training / evaluation images (the paper's 512x256, 1024x512, 2048x1024) or a
            factor.
        crop: [W, H] random training crop (offsets on the MCU grid), null = whole images.
        size_multiple: H and W of every image are multiples of it (16 * 2**(levels-1) for the refine pyramid;
            evaluation images are cropped top-left to it).
        hflip, vflip: random training flips.
        thumb_source: header | input | none (see :class:`src.data.pipeline.PipelineSettings`).
        keep_corrupted: add ``corrupted`` (robust decode, clipped) to val / test batches (for image grids).
        batch_size: GLOBAL training batch size; each of the N processes loads batch_size / N.
        eval_batch_size: per-device val / test batch size (null = the per-device training batch size).
        num_workers, pin_memory, persistent_workers, multiprocessing_context: DataLoader settings.
        seed: base seed of every corruption, crop and flip.
        shuffle: shuffle training images.
        resample: a new corruption every epoch (else every epoch reuses variant 0, e.g. for overfitting).
        cache_variants: K > 0 cycles through K corruption variants per training image and caches them.
        train_repeats: each training image appears R times per epoch, each time with its own corruption
            (longer epochs for small photo sets: fewer validation passes and DataLoader restarts).
        cache_dir: folder for the caches (shared by workers and runs); null = in memory per worker.
        cache_clean: keep each photo's clean JPEG at the corruption size (skips load + resize + encode,
            about 50 ms of a 2048x1024 sample; every corruption is still drawn afresh).
        max_items: {train: N, val: N, test: N} caps on the number of images per split (null = all).
        warm_up: compile the numba kernels in the main process before workers fork.
    """

    def __init__(
        self,
        source: str = "samples",
        root: str | None = None,
        splits: Mapping[str, Any] | None = None,
        holdout: Mapping[str, float | int] | None = None,
        corruptor: Any = None,
        decoder: Mapping[str, Any] | None = None,
        sca: Mapping[str, Any] | None = None,
        corruption_size: Sequence[int] | None = (2048, 1024),
        scale: Sequence[int] | float | None = (512, 256),
        crop: Sequence[int] | None = (256, 256),
        size_multiple: int = 128,
        hflip: bool = True,
        vflip: bool = False,
        thumb_source: str = "header",
        thumb_long_side: int = 160,
        keep_corrupted: bool = True,
        batch_size: int = 4,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        multiprocessing_context: str | None = None,
        seed: int = 0,
        shuffle: bool = True,
        resample: bool = True,
        cache_variants: int = 0,
        train_repeats: int = 1,
        cache_dir: str | None = None,
        cache_clean: bool = False,
        max_items: Mapping[str, int | None] | None = None,
        warm_up: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.root = root
        self.splits = _plain(splits)
        self.holdout = _plain(holdout)
        if corruptor is None:
            from src.corruption import Corruptor

            corruptor = Corruptor.from_preset("paper")
        self.corruptor = corruptor
        self.corruption_size = as_size(_plain(corruption_size), "data.corruption_size")
        scale = _plain(scale)
        self.scale = (
            scale if scale is None or isinstance(scale, int | float) else as_size(scale, "data.scale")
        )
        self.crop = as_size(_plain(crop), "data.crop")
        self.size_multiple = int(size_multiple)
        if self.size_multiple < 1:
            raise DatasetError(f"data.size_multiple must be >= 1, got {size_multiple!r}")
        self.hflip, self.vflip = hflip, vflip
        self.pipeline = PipelineSettings(
            corruption_size=self.corruption_size,
            scale=self.scale,
            decoder=_options(decoder),
            sca=_options(sca) or {"method": "dc_thumb"},
            thumb_source=thumb_source,
            thumb_long_side=thumb_long_side,
            keep_corrupted=False,
        )
        self.keep_corrupted = keep_corrupted
        if int(batch_size) < 1:
            raise DatasetError(f"data.batch_size must be >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.batch_size_per_device = self.batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and self.num_workers > 0
        self.multiprocessing_context = multiprocessing_context if self.num_workers > 0 else None
        self.seed = int(seed)
        self.shuffle = shuffle
        self.resample = resample
        self.cache_variants = int(cache_variants)
        if int(train_repeats) < 1:
            raise ValueError(f"data.train_repeats must be a positive integer, got {train_repeats!r}")
        self.train_repeats = int(train_repeats)
        self.cache_dir = cache_dir
        self.cache_clean = cache_clean
        self.max_items = dict(_plain(max_items) or {})
        self.warm_up_kernels = warm_up
        self.items: dict[str, list[ImageItem]] = {}
        self.skipped_files: list[str] = []
        self.datasets: dict[str, CorruptedImageDataset] = {}
        self._check_sizes()

    # ------------------------------------------------------------------ set-up
    def _check_sizes(self) -> None:
        m = self.size_multiple
        if self.crop is not None and (self.crop[0] % m or self.crop[1] % m):
            raise DatasetError(f"data.crop={list(self.crop)} must be multiples of data.size_multiple={m}")
        if self.corruption_size is not None:
            out = scaled_size(self.corruption_size, self.scale)
            if self.crop is not None and (self.crop[0] > out[0] or self.crop[1] > out[1]):
                raise DatasetError(
                    f"data.crop={list(self.crop)} is larger than the training images {list(out)}"
                )
            if out[0] < m or out[1] < m:
                raise DatasetError(f"images of {list(out)} are smaller than data.size_multiple={m}")

    def _items(self, split: str) -> list[ImageItem]:
        if split not in self.items:
            items = list_split(self.source, split, self.root, self.splits, self.holdout)
            good, bad = readable_items(items)
            self.skipped_files += [b.path or b.key for b in bad]
            cap = self.max_items.get(split)
            if cap is not None:
                good = good[: int(cap)]
            if not good:
                raise DatasetError(f"split {split!r} of source {self.source!r} has no readable image")
            self.items[split] = good
        return self.items[split]

    def _dataset(self, split: str) -> CorruptedImageDataset:
        if split not in self.datasets:
            train = split == "train"
            settings = dataclasses.replace(self.pipeline, keep_corrupted=self.keep_corrupted and not train)
            cache = None
            if train and self.cache_variants > 0:
                cache = SampleCache(self.cache_dir, settings_fingerprint(self.corruptor, settings, self.seed))
            clean_cache = None
            if self.cache_clean:  # keyed by what makes the clean file and the GT
                names = ("quality", "subsampling", "restart_interval", "optimize", "thumbnail_size",
                         "thumbnail_quality")  # fmt: skip
                encoder = [getattr(self.corruptor, k, None) for k in names]
                fingerprint = settings_fingerprint(encoder, self.corruption_size, self.scale)
                clean_cache = CleanJpegCache(self.cache_dir, fingerprint)
            self.datasets[split] = CorruptedImageDataset(
                self._items(split),
                self.corruptor,
                settings,
                split=split,
                seed=self.seed,
                train=train,
                crop=self.crop,
                size_multiple=self.size_multiple,
                hflip=self.hflip,
                vflip=self.vflip,
                resample=self.resample,
                variants=self.cache_variants,
                repeats=self.train_repeats if train else 1,
                cache=cache,
                clean_cache=clean_cache,
            )
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        """Lists and checks the images of the splits ``stage`` needs (a missing or empty root raises
        :class:`DatasetError` here, before any training step), divides the global batch by the world size and
        warms up the numba kernels before workers fork."""
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world:
            raise DatasetError(
                f"data.batch_size={self.batch_size} is not divisible by the world size {world}"
            )
        self.batch_size_per_device = self.batch_size // world
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in needed.get(stage, SPLITS) if stage else SPLITS:
            self._dataset(split)
        if self.skipped_files:
            log.warning(
                "skipped %d unreadable image file(s): %s", len(self.skipped_files), self.skipped_files[:5]
            )
        if self.warm_up_kernels:
            warm_up(self.corruptor, self.pipeline)

    # ------------------------------------------------------------------ loaders
    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
            "multiprocessing_context": self.multiprocessing_context,
        }

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        trainer = self.trainer
        replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        sampler = EpochSampler(
            dataset, num_replicas=replicas, rank=rank, shuffle=self.shuffle, seed=self.seed, drop_last=False
        )
        return DataLoader(
            dataset,
            batch_size=self.batch_size_per_device,
            sampler=sampler,
            drop_last=False,
            **self._loader_kwargs(),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self._dataset(split),
            batch_size=self.eval_batch_size or self.batch_size_per_device,
            shuffle=False,
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
