"""The exception family of the data package: :class:`DataError` and its kinds."""

from __future__ import annotations

from src.errors import BitstreamRestoreError


class DataError(BitstreamRestoreError):
    """A dataset, transform or pipeline setting cannot be used (the message says what to set)."""


class DatasetError(DataError):
    """A dataset cannot be built: missing or empty root, unknown source / split / photo name, bad loader
    settings."""


class TransformError(DataError):
    """A size, crop or alignment request does not fit the image."""


class PipelineError(DataError):
    """A pipeline setting is invalid (unknown thumbnail source, bad sizes)."""
