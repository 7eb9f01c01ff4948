"""Exceptions of the SCA stage."""

from __future__ import annotations


class SCAError(ValueError):
    """Invalid input to the SCA stage: unknown method, unusable thumbnail or plane layout, bad option."""
