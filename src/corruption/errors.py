"""The one exception family of the corruption simulator."""

from __future__ import annotations

from src.errors import BitstreamRestoreError


class CorruptionError(BitstreamRestoreError):
    """Bad input or settings for the corruption simulator (message names the value and what is allowed)."""


class UneditableExif(CorruptionError):
    """A thumbnail was asked for (``add_thumbnail``) but the file's EXIF block cannot be edited in place
    (unreadable TIFF structure, or no room left in the 64 KB APP1 segment). The file is never rewritten."""
