"""Corruption simulator: JPEG writing with an EXIF thumbnail, sector ciphers (cbc-essiv, xts, none) and a
storage channel (bit errors, iid or Gilbert-Elliott bursts; lost sectors; truncation). numpy + cryptography
+ Pillow; no torch, no Hydra. Presets are defined in code (:mod:`src.corruption.presets`).

>>> from src.corruption import Corruptor
>>> sample = Corruptor.from_preset("paper").corrupt(rgb_uint8, seed=0)   # doctest: +SKIP
>>> real = Corruptor.from_preset("erased_flash").corrupt(camera_file_bytes, seed=0)   # doctest: +SKIP
"""

from src.corruption.channel import (
    MODELS,
    REGIONS,
    bit_offsets_to_positions,
    fill_sectors,
    flip_bits,
    positions_to_bit_offsets,
    region_bits,
    region_sectors,
    sample_flips,
    sample_lost_sectors,
    truncation_point,
)
from src.corruption.cipher import CIPHER_MODES, IV_MODES, PAD_MODES, SectorCipher
from src.corruption.corruptor import ADD_THUMBNAIL, ENCODER_SETTINGS, CorruptionSample, Corruptor
from src.corruption.errors import CorruptionError, UneditableExif
from src.corruption.jpeg_markers import header_segments, scan_extent
from src.corruption.jpeg_writer import (
    SUBSAMPLINGS,
    embed_thumbnail,
    encode_jpeg,
    make_thumbnail,
    read_thumbnail,
    strip_app_segments,
    thumbnail_of_jpeg,
    thumbnail_shape,
)
from src.corruption.presets import PAPER_KEY, PRESETS, preset_settings

__all__ = [
    "ADD_THUMBNAIL",
    "CIPHER_MODES",
    "ENCODER_SETTINGS",
    "IV_MODES",
    "MODELS",
    "PAD_MODES",
    "PAPER_KEY",
    "PRESETS",
    "REGIONS",
    "SUBSAMPLINGS",
    "CorruptionError",
    "CorruptionSample",
    "Corruptor",
    "SectorCipher",
    "UneditableExif",
    "bit_offsets_to_positions",
    "embed_thumbnail",
    "encode_jpeg",
    "fill_sectors",
    "flip_bits",
    "header_segments",
    "make_thumbnail",
    "positions_to_bit_offsets",
    "preset_settings",
    "read_thumbnail",
    "region_bits",
    "region_sectors",
    "sample_flips",
    "sample_lost_sectors",
    "scan_extent",
    "strip_app_segments",
    "thumbnail_of_jpeg",
    "thumbnail_shape",
    "truncation_point",
]
