"""The exception family of the restoration library and the restore tool."""

from __future__ import annotations

from src.errors import BitstreamRestoreError


class RestoreError(BitstreamRestoreError):
    """An input cannot be restored: missing path, not a JPEG, an unusable checkpoint or thumbnail, a bad
    option."""
