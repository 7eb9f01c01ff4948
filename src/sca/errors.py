"""Exceptions of the SCA stage."""

from __future__ import annotations

from src.errors import BitstreamRestoreError


class SCAError(BitstreamRestoreError):
    """Invalid input to the SCA stage: unknown method, unusable thumbnail or plane layout, bad option."""
