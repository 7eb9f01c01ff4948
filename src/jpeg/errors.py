"""Exceptions of the JPEG decoder: one family, ``JPEGError``, split by cause.

Corruption inside the entropy-coded scan data never raises: the decoder reports it in
``Decoded.mcu_status`` and ``Decoded.events``. Only a header that cannot be used raises.
"""

from __future__ import annotations

from src.errors import BitstreamRestoreError


class JPEGError(BitstreamRestoreError):
    """Base class: the bytes cannot be decoded as a JPEG image."""


class UnsupportedJPEG(JPEGError):
    """A valid JPEG of a kind this decoder does not handle (progressive, arithmetic, 12-bit, CMYK, ...)."""


class CorruptHeader(JPEGError):
    """The marker segments before the scan are broken (bad lengths, missing tables, impossible values)."""


class ImageTooLarge(JPEGError):
    """The frame declares more pixels than the configured limit (guard against decompression bombs)."""
