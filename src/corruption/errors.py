"""The one exception family of the corruption simulator."""

from __future__ import annotations

from src.errors import BitstreamRestoreError


class CorruptionError(BitstreamRestoreError):
    """Bad input or settings for the corruption simulator (message names the value and what is allowed)."""
