"""torch Dataset and sampler around :func:`src.data.pipeline.make_sample`.

Randomness is explicit: the corruption seed of a sample is a function of (base seed, split, epoch or variant,
index) (:func:`sample_seed`), so a training image gets a new corruption every epoch and a validation / test
image always the same one, whatever the worker or the number of processes. The epoch reaches the workers
through the sampler (:class:`EpochSampler` yields ``(index, epoch)``), which also works with persistent
workers.

Batch dtypes: the workers ship the images ``sca``, ``thumb``, ``gt``, ``corrupted`` as uint8 (C, H, W) (a
quarter of float32's bytes through shared memory, pinning and the host-to-device copy) and ``mask`` as
float32 (1, H, W) (an area-averaged trust that gates the generator with ``max_pool(1 - mask) > 0``: it is
not rounded). :func:`batch_to_float` turns a batch into float32 images in [0, 1] (the models' input,
bit-identical to converting on the CPU); the DataModule calls it on the device in
``on_after_batch_transfer``, code that reads the loaders without Lightning calls it itself.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from src.data.errors import DatasetError
from src.data.pipeline import PipelineSettings, make_sample, prepare_photo
from src.data.sources import ImageItem, load_item
from src.data.transforms import crop_to_multiple, focused_crop, mcu_alignment, random_crop, random_flip
from src.jpeg import JPEGError
from src.utils import atomic_write_bytes
from src.utils.images import ImageLoadError, Size, resize_mask, resize_uint8, to_float01, to_uint8
from src.utils.seeds import derive_seed

log = logging.getLogger(__name__)

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_IMAGE_KEYS = ("sca", "gt", "mask", "thumb", "corrupted")


def sample_seed(base: int, split: str, epoch: int, index: int) -> int:
    """Corruption seed (0 <= seed < 2**32) of sample ``index`` of ``split`` in ``epoch`` (or cache
    variant)."""
    return derive_seed(base, SPLIT_IDS[split], epoch, index)


class EpochSampler(DistributedSampler):
    """A ``DistributedSampler`` (one replica when not distributed) that yields ``(index, epoch)`` pairs.

    Lightning calls ``set_epoch`` on it every epoch and leaves it alone under DDP (it is already distributed),
    so each rank draws its own share of a per-epoch permutation seeded by ``seed + epoch``."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        for index in super().__iter__():
            yield int(index), epoch


class CleanJpegCache:
    """Each photo's clean JPEG at the corruption size (with its thumbnail) and its ground truth at the output
    scale, keyed by item: a hit skips reading, resizing and encoding the photo and decoding the GT (about
    60 ms of a 2048x1024 sample; the corruption, decode and SCA still run every time). ``folder``: a ``.jpg``
    and a ``.npy`` per photo, shared by workers and runs; None: a dict per process (about 0.7 MB per
    2048x1024 photo and worker). The fingerprint must cover the encoder settings and both sizes."""

    def __init__(self, folder: str | Path | None, fingerprint: str) -> None:
        self.folder = Path(folder) if folder else None
        self.fingerprint = fingerprint
        self.memory: dict[str, tuple[bytes, np.ndarray]] = {}

    def _key(self, item: ImageItem) -> str:
        return hashlib.sha1(f"{self.fingerprint}|{item.key}|{item.path}".encode()).hexdigest()

    def get(self, item: ImageItem) -> tuple[bytes, np.ndarray] | None:
        """(clean JPEG bytes, GT uint8 (H, W, 3)) or None."""
        key = self._key(item)
        if self.folder is None:
            return self.memory.get(key)
        jpg, gt = self.folder / f"{key}.jpg", self.folder / f"{key}_gt.npy"
        if not (jpg.is_file() and gt.is_file()):
            return None
        try:
            return jpg.read_bytes(), np.load(gt, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cache entry %s: %s", gt, exc)
            return None

    def put(self, item: ImageItem, data: bytes, gt: np.ndarray) -> None:
        key = self._key(item)
        if self.folder is None:
            self.memory[key] = (data, gt)
            return
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(gt), allow_pickle=False)
        atomic_write_bytes(self.folder / f"{key}_gt.npy", buf.getvalue())  # the .jpg last: it marks a hit
        atomic_write_bytes(self.folder / f"{key}.jpg", data)


class SampleCache:
    """Stores finished samples (before crop and flip) keyed by (item, split, variant).

    With ``folder`` set: one ``.npz`` per sample there (shared by workers and runs; written atomically), the
    file name a hash of the pipeline settings, the corruptor and the item, so changed settings never read
    stale entries. Without: a per-process dict (each DataLoader worker fills its own; keep workers
    persistent).
    """

    def __init__(self, folder: str | Path | None, fingerprint: str) -> None:
        self.folder = Path(folder) if folder else None
        self.fingerprint = fingerprint
        self.memory: dict[str, dict[str, Any]] = {}

    def _key(self, item: ImageItem, split: str, variant: int) -> str:
        raw = f"{self.fingerprint}|{item.key}|{item.path}|{split}|{variant}".encode()
        return hashlib.sha1(raw).hexdigest()

    def get(self, item: ImageItem, split: str, variant: int) -> dict[str, Any] | None:
        key = self._key(item, split, variant)
        if self.folder is None:
            return self.memory.get(key)
        path = self.folder / f"{key}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                out: dict[str, Any] = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        out["sca"] = to_float01(out["sca"])
        out["mask"] = out["mask"].astype(np.float32)
        for k in ("ber", "seed", "mcu"):
            out[k] = out[k].item()
        out["thumb_found"] = bool(out["thumb_found"])
        out["corruption_size"] = tuple(int(v) for v in out["corruption_size"])
        return out

    def put(self, item: ImageItem, split: str, variant: int, sample: dict[str, Any]) -> None:
        key = self._key(item, split, variant)
        if self.folder is None:
            self.memory[key] = sample
            return
        packed = {k: np.asarray(v) for k, v in sample.items()}
        packed["sca"] = to_uint8(packed["sca"])  # exact: the pipeline's SCA image holds 8-bit levels
        packed["mask"] = packed["mask"].astype(np.float16)  # trust in [0, 1], steps below 1e-3
        buf = io.BytesIO()
        np.savez(buf, **packed)
        atomic_write_bytes(self.folder / f"{key}.npz", buf.getvalue())


def settings_fingerprint(*objects: Any) -> str:
    """A stable hash of picklable settings objects (corruptor, pipeline settings, ...) for cache keys."""
    return hashlib.sha1(pickle.dumps(objects, protocol=4)).hexdigest()[:16]


def rescale_sample(sample: dict[str, Any], size: Size) -> dict[str, Any]:
    """``sample`` (built at the corruption size) downscaled to ``size`` = (W, H) as the pipeline would have
    made it (:func:`src.restoration.model_input`): 8-bit images bicubic (the thumbnail upsampled from
    ``thumb_small``), the trust mask by area average. Dtypes are kept."""
    if sample["gt"].shape[1::-1] == tuple(size):
        return sample
    out = dict(sample)
    for key in ("sca", "gt", "thumb", "corrupted"):
        img = sample.get(key)
        if img is None:
            continue
        if key == "thumb" and sample.get("thumb_small") is not None:
            img = sample["thumb_small"]
        if img.dtype == np.uint8:
            out[key] = resize_uint8(img, size)
        else:  # float [0, 1] holding 8-bit levels (the SCA image): resized as uint8, exactly
            out[key] = to_float01(resize_uint8(to_uint8(img), size))
    out["mask"] = resize_mask(sample["mask"], size)
    return out


#: the batch entries that travel from the workers to the device as uint8 (C, H, W) (``mask`` stays float32)
UINT8_KEYS = ("sca", "gt", "thumb", "corrupted")


def to_batch_tensor(key: str, img: np.ndarray) -> torch.Tensor:
    """One image entry of a sample as the DataLoader ships it: (H, W, C) -> uint8 (C, H, W) for the
    :data:`UINT8_KEYS` (a float image, i.e. ``sca``, holds exact 8-bit levels k/255: :func:`to_uint8` gives
    back k), anything else (``mask``) float32 (C, H, W); (H, W) -> (1, H, W). :func:`batch_to_float` undoes
    it exactly: the same float32 values as :func:`src.restoration.model.to_tensor_image` (what the
    :class:`src.restoration.Restorer` gives the model)."""
    arr = img[:, :, None] if img.ndim == 2 else img
    if key in UINT8_KEYS:
        arr = arr if arr.dtype == np.uint8 else to_uint8(arr)
    else:
        arr = arr.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def batch_to_float(batch: Mapping[str, Any]) -> dict[str, Any]:
    """A batch (or one sample) as the models take it: uint8 images -> float32 in [0, 1] (``x / 255`` on the
    tensors' device), other floating images (``mask``) -> float32; metadata unchanged; float32 images pass
    through (idempotent). :meth:`RestorationDataModule.on_after_batch_transfer` calls it on the device; code
    that reads the loaders without Lightning (``src.train.score_pipeline``, benchmarks, tests) calls it
    itself."""
    out = dict(batch)
    divisor: torch.Tensor | None = None
    for key in _IMAGE_KEYS:
        t = out.get(key)
        if not isinstance(t, torch.Tensor):
            continue
        if t.dtype == torch.uint8:
            # a 0-dim tensor ON THE DEVICE, not a Python number: CUDA turns division by a host scalar into
            # multiplication by its reciprocal (1 ulp off); this is the true division the CPU path does
            if divisor is None or divisor.device != t.device:
                divisor = torch.full((), 255.0, dtype=torch.float32, device=t.device)
            out[key] = t.to(torch.float32).div_(divisor)
        elif t.is_floating_point() and t.dtype != torch.float32:
            out[key] = t.to(torch.float32)
    return out


class CorruptedImageDataset(Dataset):
    """Corrupts, decodes and compensates photos on the fly; one item = the batch-dict entries of one sample.

    Items: ``sca``, ``thumb``, ``gt`` uint8 (3, H, W); ``mask`` float32 (1, H, W) in [0, 1]; ``corrupted``
    uint8 (3, H, W) when ``settings.keep_corrupted`` (:func:`batch_to_float` gives the float32 images in
    [0, 1] the models take); ``path`` str (file path or bundled photo name); ``ber``
    float32 scalar; ``seed`` int64 scalar. Training samples (``train=True``) are randomly cropped to ``crop``
    (offsets on the MCU grid) and flipped; evaluation samples are full images cropped top-left to a multiple
    of ``size_multiple``. ``__getitem__`` takes an index or an ``(index, epoch)`` pair (from
    :class:`EpochSampler`). With ``repeats`` R > 1 (training) the dataset is R times longer: index
    ``r * len(items) + i`` is photo ``i`` with the corruption variant of pass ``epoch * R + r``.

    An image that fails to load is skipped with a warning and counted in ``skipped`` (this worker's count):
    the next readable image takes its place. A decode error on a corrupted file (possible when the corruption
    region includes headers) re-draws the seed up to ``retries`` times.
    """

    def __init__(
        self,
        items: Sequence[ImageItem],
        corruptor: Any,
        settings: PipelineSettings,
        split: str,
        seed: int = 0,
        train: bool = False,
        crop: Size | None = None,
        crop_focus: float = 0.0,
        scales: Sequence[Size] | None = None,
        size_multiple: int = 1,
        hflip: bool = True,
        vflip: bool = False,
        resample: bool = True,
        variants: int = 0,
        repeats: int = 1,
        cache: SampleCache | None = None,
        clean_cache: CleanJpegCache | None = None,
        retries: int = 3,
    ) -> None:
        if not items:
            raise DatasetError(f"split {split!r} has no image")
        if split not in SPLIT_IDS:
            raise DatasetError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_IDS)}")
        self.items = list(items)
        self.corruptor = corruptor
        self.settings = settings
        self.split = split
        self.seed = int(seed)
        self.train = train
        self.crop = crop
        self.crop_focus = float(crop_focus)
        self.scales = [tuple(s) for s in scales] if scales else None
        self.size_multiple = max(1, int(size_multiple))
        self.hflip, self.vflip = hflip, vflip
        self.resample = resample
        self.variants = max(0, int(variants))
        self.repeats = max(1, int(repeats))
        self.cache = cache
        self.clean_cache = clean_cache
        self.retries = retries
        self.skipped: set[int] = set()

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def variant_of(self, epoch: int) -> int:
        """Corruption variant for ``epoch``: the epoch itself (train, resampling), ``epoch % variants`` (train
        with a cache of K variants), or 0 (evaluation, or training without resampling)."""
        if not (self.train and self.resample):
            return 0
        return epoch % self.variants if self.variants else epoch

    def _load(self, index: int) -> tuple[int, np.ndarray]:
        n = len(self.items)
        for step in range(n):
            i = (index + step) % n
            if i in self.skipped:
                continue
            try:
                return i, load_item(self.items[i], self.settings.corruption_size)
            except (OSError, ImageLoadError) as exc:
                self.skipped.add(i)
                log.warning(
                    "skipping unreadable image %s (%d skipped in this worker): %s",
                    self.items[i].path or self.items[i].key,
                    len(self.skipped),
                    exc,
                )
        raise RuntimeError(f"no readable image left in split {self.split!r} ({n} items, all failed to load)")

    def scale_of(self, variant: int, index: int) -> Size:
        """Training scale (W, H) of photo ``index`` in ``variant`` (multi-scale training): drawn from
        ``scales`` by the sample's seed, so a cached variant keeps its scale and every epoch mixes scales."""
        assert self.scales
        pick = sample_seed(self.seed + 1, self.split, variant, index) % len(self.scales)
        return self.scales[pick]

    def build(self, index: int, variant: int, timer: Any = None) -> dict[str, Any]:
        """The finished (uncropped) numpy sample of ``index`` for ``variant``; uses and fills the cache."""
        item = self.items[index]
        if self.cache is not None and (hit := self.cache.get(item, self.split, variant)) is not None:
            return {**hit, "path": item.path or item.key}
        kwargs = {"timer": timer} if timer is not None else {}
        with timer("load") if timer is not None else nullcontext():
            clean = self.clean_cache.get(item) if self.clean_cache is not None else None
            if clean is not None:
                i, rgb = index, clean[0]
                kwargs["gt"] = clean[1]
            else:
                i, rgb = self._load(index)
                rgb = prepare_photo(rgb, self.settings.corruption_size)
        seed = sample_seed(self.seed, self.split, variant, i)
        for attempt in range(self.retries + 1):
            try:
                sample = make_sample(rgb, self.corruptor, seed, self.settings, **kwargs)
                break
            except JPEGError as exc:
                if attempt == self.retries:
                    raise
                log.warning("decode failed for %s (seed %d: %s); drawing a new seed", item.key, seed, exc)
                seed = sample_seed(self.seed + 7919 * (attempt + 1), self.split, variant, i)
        sample_clean = sample.pop("clean_jpeg", None)
        if self.clean_cache is not None and clean is None and i == index and sample_clean is not None:
            self.clean_cache.put(item, sample_clean, sample["gt"])
        # multi-scale: built at the corruption size, downscaled once before caching (cache entries stay small)
        if self.scales:
            sample = rescale_sample(sample, self.scale_of(variant, i))
        sample["path"] = self.items[i].path or self.items[i].key
        if self.cache is not None and i == index:
            self.cache.put(item, self.split, variant, {k: v for k, v in sample.items() if k != "path"})
        return sample

    def finish(self, sample: dict[str, Any], rng: np.random.Generator, timer: Any = None) -> dict[str, Any]:
        """Crop (and flip, training) the images of ``sample`` and convert them to tensors (uint8 images,
        float32 mask: :func:`to_batch_tensor`)."""
        with timer("crop") if timer is not None else nullcontext():
            images = {k: sample[k] for k in _IMAGE_KEYS if k in sample}
            if self.train and self.crop is not None:
                width = images["gt"].shape[1]
                align = mcu_alignment(int(sample.get("mcu", 16)), int(sample["corruption_size"][0]), width)
                if self.crop_focus > 0 and rng.random() < self.crop_focus:
                    images = focused_crop(images, self.crop, align, rng, 1.0 - images["mask"])
                else:
                    images = random_crop(images, self.crop, align, rng)
            else:
                images = crop_to_multiple(images, self.size_multiple)
            if self.train:
                images = random_flip(images, rng, self.hflip, self.vflip)
            out: dict[str, Any] = {k: to_batch_tensor(k, v) for k, v in images.items()}
        out["path"] = str(sample["path"])
        out["ber"] = torch.tensor(float(sample["ber"]), dtype=torch.float32)
        out["seed"] = torch.tensor(int(sample["seed"]), dtype=torch.int64)
        return out

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        key_index, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple | list) else (int(key), 0)
        repeat, index = divmod(key_index, len(self.items))
        variant = self.variant_of(epoch * self.repeats + repeat)
        sample = self.build(index, variant)
        # crops and flips draw from their own stream, so cached samples still get fresh crops every epoch
        rng = np.random.default_rng([sample_seed(self.seed, self.split, epoch, key_index), 1])
        return self.finish(sample, rng)
