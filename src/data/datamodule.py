"""LightningDataModule: on-the-fly corrupted samples for the GCA modules (the batch dict of
:class:`src.data.dataset.CorruptedImageDataset`).

Batch dtypes: the DataLoaders yield uint8 (B, 3, H, W) ``sca``, ``thumb``, ``gt`` (and ``corrupted``) and a
float32 (B, 1, H, W) ``mask``; :meth:`RestorationDataModule.on_after_batch_transfer` converts them on the
device to the float32 images in [0, 1] the LightningModules take (:func:`src.data.dataset.batch_to_float`,
which code reading the loaders without a Trainer calls itself). Each DataLoader worker runs with
``worker_threads`` threads (:class:`WorkerInit`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.data import DataLoader

from src.corruption import Corruptor
from src.data.dataset import (
    CleanJpegCache,
    CorruptedImageDataset,
    EpochSampler,
    SampleCache,
    batch_to_float,
    settings_fingerprint,
)
from src.data.pipeline import PipelineSettings, make_sample
from src.data.sources import SPLITS, DatasetError, ImageItem, list_split, readable_items
from src.data.transforms import as_size, scaled_size
from src.jpeg import warmup as warm_up_decoder

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
        warm_up_decoder()
        make_sample(texture, with_ber(corruptor, 1e-3), seed=0, settings=small)
    except Exception as exc:  # warm-up is an optimisation: never fail training because of it
        log.warning("pipeline warm-up failed (workers will compile on first use): %s", exc)
    _WARMED_UP = True


#: environment variables of the OpenMP / BLAS pools (read by libraries loaded after they are set)
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Thread pools of this process to ``threads``: torch's intra-op pool (``resize_uint8``'s interpolate),
    numpy's BLAS / OpenMP pools through ``threadpoolctl`` when it is installed, and the
    ``OMP/OPENBLAS/MKL_NUM_THREADS`` variables (the fallback: they only reach libraries loaded afterwards).
    Numba is left alone (the kernels are not parallel, and setting its thread count starts its pool)."""
    torch.set_num_threads(threads)
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads)


class WorkerInit:
    """The DataLoaders' ``worker_init_fn`` (picklable, for spawn / forkserver workers too): Lightning's
    worker seeding when ``seed_everything(workers=True)`` asked for it (Lightning adds its own
    ``worker_init_fn`` only where there is none, so this one calls it), then :func:`limit_threads` to
    ``threads`` (None: left alone). The samples' randomness does not depend on it: it comes from (seed,
    split, epoch, index), see :mod:`src.data.dataset`."""

    def __init__(self, threads: int | None = 1, rank: int = 0) -> None:
        self.threads = threads
        self.rank = rank

    def __call__(self, worker_id: int) -> None:
        if int(os.environ.get("PL_SEED_WORKERS", 0)):
            from lightning.fabric.utilities.seed import pl_worker_init_function

            pl_worker_init_function(worker_id, rank=self.rank)
        if self.threads is not None:
            limit_threads(self.threads)


class RestorationDataModule(LightningDataModule):
    """Photos -> corrupted JPEG -> robust decode -> SCA -> batches of ``sca``, ``thumb``, ``gt``, ``mask`` (+
    ``corrupted`` in val/test) (B, C, H, W), with ``path``, ``ber``, ``seed``. The loaders yield uint8 images
    and a float32 mask; the models get float32 images in [0, 1] from :meth:`on_after_batch_transfer`.

    Args (Hydra ``conf/data/*.yaml``):
        source, root, splits, holdout: which images (see :func:`src.data.sources.list_split`).
        corruptor: a ``src.corruption.Corruptor`` (the ``corruption`` group); None = the ``paper`` preset.
        decoder, sca: option dicts for ``src.jpeg.decode`` / ``src.sca.compensate`` (those groups).
        corruption_size: [W, H] the photo is corrupted at (the paper: 2048x1024); null = native size.
        scale: [W, H] of the training / evaluation images (the paper's 512x256, 1024x512, 2048x1024) or a
            factor.
        crop: [W, H] random training crop (offsets on the MCU grid), null = whole images.
        crop_focus: probability in [0, 1] that a training crop is centred on damage: it then contains a pixel
            drawn in proportion to ``1 - mask`` (what SCA had to fill; at BER 1e-5 about 1 % of a 2K image,
            so uniform crops rarely show the network anything to repair). 0 = uniform crops.
        train_scales: [[W, H], ...] train at several scales: each training sample is built at the
            corruption size and downscaled to one of these, drawn per sample (a model that restores the
            paper's 512x256, 1024x512 and 2048x1024 benchmarks alike); null = ``scale``.
        size_multiple: H and W of every image are multiples of it (16 * 2**(levels-1) for the refine pyramid;
            evaluation images are cropped top-left to it).
        hflip, vflip: random training flips.
        thumb_source: header | input | none (see :class:`src.data.pipeline.PipelineSettings`).
        keep_corrupted: add ``corrupted`` (robust decode, clipped) to val / test batches (for image grids).
        check_thumbnail: SCA checks the header thumbnail as restore does (default off: the simulator's
            thumbnail is made from the photo and always fits; see ``src.data.pipeline.PipelineSettings``).
        batch_size: GLOBAL training batch size; each of the N processes loads batch_size / N.
        eval_batch_size: per-device val / test batch size (null = the per-device training batch size).
        num_workers, pin_memory, persistent_workers, multiprocessing_context: DataLoader settings
            (``persistent_workers``, on by default, only acts with workers: they then live across epochs).
        worker_threads: torch / BLAS threads of each DataLoader worker (1: the workers are the parallelism;
            null = leave the pools alone, i.e. torch's 1 and a BLAS pool as large as the machine).
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
        crop_focus: float = 0.0,
        train_scales: Sequence[Sequence[int]] | None = None,
        size_multiple: int = 128,
        hflip: bool = True,
        vflip: bool = False,
        thumb_source: str = "header",
        thumb_long_side: int = 160,
        keep_corrupted: bool = True,
        check_thumbnail: bool = False,
        batch_size: int = 4,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        multiprocessing_context: str | None = None,
        worker_threads: int | None = 1,
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
            corruptor = Corruptor.from_preset("paper")
        self.corruptor = corruptor
        self.corruption_size = as_size(_plain(corruption_size), "data.corruption_size")
        scale = _plain(scale)
        self.scale = (
            scale if scale is None or isinstance(scale, int | float) else as_size(scale, "data.scale")
        )
        self.crop = as_size(_plain(crop), "data.crop")
        if not 0.0 <= float(crop_focus) <= 1.0:
            raise DatasetError(f"data.crop_focus must be in [0, 1], got {crop_focus!r}")
        self.crop_focus = float(crop_focus)
        scales = _plain(train_scales)
        self.train_scales = None if not scales else [as_size(s, "data.train_scales[i]") for s in scales]
        if self.train_scales and self.corruption_size is None:
            raise DatasetError("data.train_scales needs a fixed data.corruption_size")
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
            check_thumbnail=bool(check_thumbnail),
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
        if worker_threads is not None and int(worker_threads) < 1:
            raise DatasetError(f"data.worker_threads must be >= 1 or null, got {worker_threads!r}")
        self.worker_threads = None if worker_threads is None else int(worker_threads)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.resample = resample
        self.cache_variants = int(cache_variants)
        if int(train_repeats) < 1:
            raise DatasetError(f"data.train_repeats must be a positive integer, got {train_repeats!r}")
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
            for size in self.train_scales or []:
                if size[0] > self.corruption_size[0] or size[1] > self.corruption_size[1]:
                    raise DatasetError(
                        f"data.train_scales entry {list(size)} is larger than data.corruption_size "
                        f"{list(self.corruption_size)}"
                    )
                if self.crop is not None and (self.crop[0] > size[0] or self.crop[1] > size[1]):
                    raise DatasetError(
                        f"data.crop={list(self.crop)} is larger than the training scale {list(size)}"
                    )

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
            if train and self.train_scales:  # built at the corruption size, downscaled per sample
                settings = dataclasses.replace(settings, scale=None)
            cache = None
            if train and self.cache_variants > 0:
                # the training scales too: a multi-scale entry is stored at its drawn scale
                fingerprint = settings_fingerprint(self.corruptor, settings, self.seed, self.train_scales)
                cache = SampleCache(self.cache_dir, fingerprint)
            clean_cache = None
            if self.cache_clean:  # keyed by what makes the clean file and the GT
                encoder = self.corruptor.encoder_settings()
                fingerprint = settings_fingerprint(encoder, self.corruption_size, settings.scale)
                clean_cache = CleanJpegCache(self.cache_dir, fingerprint)
            self.datasets[split] = CorruptedImageDataset(
                self._items(split),
                self.corruptor,
                settings,
                split=split,
                seed=self.seed,
                train=train,
                crop=self.crop,
                crop_focus=self.crop_focus if train else 0.0,
                scales=self.train_scales if train else None,
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
        rank = self.trainer.global_rank if self.trainer is not None else 0
        init = WorkerInit(self.worker_threads, rank) if self.worker_threads is not None else None
        return {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
            "multiprocessing_context": self.multiprocessing_context,
            "worker_init_fn": init if self.num_workers > 0 else None,
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

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 images -> float32 in [0, 1] on the device (:func:`src.data.dataset.batch_to_float`), in every
        stage (fit, validate, test, predict): the LightningModules see float32 batches."""
        return batch_to_float(batch) if isinstance(batch, Mapping) else batch
