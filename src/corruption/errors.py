"""The one exception family of the corruption simulator."""

from __future__ import annotations


class CorruptionError(ValueError):
    """Bad input or settings for the corruption simulator (message names the value and what is allowed)."""
