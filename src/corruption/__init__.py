"""Corruption simulator: JPEG writing with an EXIF thumbnail, sector ciphers (cbc-essiv, xts, none) and a
bit-error channel (iid or Gilbert-Elliott bursts). numpy + cryptography + Pillow + piexif; no torch, no Hydra.

>>> from src.corruption import Corruptor
>>> sample = Corruptor.from_preset("paper").corrupt(rgb_uint8, seed=0)   # doctest: +SKIP
"""

from src.corruption.channel import (
    MODELS,
    REGIONS,
    bit_offsets_to_positions,
    flip_bits,
    positions_to_bit_offsets,
    region_bits,
    sample_flips,
)
from src.corruption.cipher import CIPHER_MODES, IV_MODES, PAD_MODES, SectorCipher
from src.corruption.corruptor import PAPER_KEY, CorruptionSample, Corruptor
from src.corruption.errors import CorruptionError
from src.corruption.jpeg_markers import header_segments, scan_extent
from src.corruption.jpeg_writer import (
    SUBSAMPLINGS,
    embed_thumbnail,
    encode_jpeg,
    make_thumbnail,
    read_thumbnail,
    strip_app_segments,
    thumbnail_shape,
)

__all__ = [
    "CIPHER_MODES",
    "IV_MODES",
    "MODELS",
    "PAD_MODES",
    "PAPER_KEY",
    "REGIONS",
    "SUBSAMPLINGS",
    "CorruptionError",
    "CorruptionSample",
    "Corruptor",
    "SectorCipher",
    "bit_offsets_to_positions",
    "embed_thumbnail",
    "encode_jpeg",
    "flip_bits",
    "header_segments",
    "make_thumbnail",
    "positions_to_bit_offsets",
    "read_thumbnail",
    "region_bits",
    "sample_flips",
    "scan_extent",
    "strip_app_segments",
    "thumbnail_shape",
]
