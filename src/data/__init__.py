"""On-the-fly data: photos -> corrupted JPEG -> robust decode -> SCA -> training batches.

numpy-only parts (:mod:`src.data.sources`, :mod:`src.data.transforms`, :mod:`src.data.pipeline`) import
without torch; the torch Dataset (:mod:`src.data.dataset`) and the LightningDataModule
(:mod:`src.data.datamodule`) are loaded lazily from here.
"""

from __future__ import annotations

from src.data.errors import DataError, DatasetError, PipelineError, TransformError
from src.data.pipeline import PipelineSettings, StageTimer, make_sample
from src.data.sources import ImageItem, list_split, load_item
from src.utils.lazy import lazy_getattr

__all__ = [
    "CorruptedImageDataset",
    "DataError",
    "DatasetError",
    "EpochSampler",
    "ImageItem",
    "PipelineError",
    "PipelineSettings",
    "RestorationDataModule",
    "StageTimer",
    "TransformError",
    "batch_to_float",
    "list_split",
    "load_item",
    "make_sample",
    "sample_seed",
]

_LAZY = {
    "CorruptedImageDataset": "src.data.dataset",
    "EpochSampler": "src.data.dataset",
    "sample_seed": "src.data.dataset",
    "batch_to_float": "src.data.dataset",
    "RestorationDataModule": "src.data.datamodule",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
