"""The whole simulator in one object: encode (with thumbnail) -> sector-encrypt -> damage -> decrypt.

``Corruptor`` holds plain settings (so Hydra can build it with ``_target_: src.corruption.Corruptor``, and
``Corruptor.from_preset(name)`` builds the presets of :mod:`src.corruption.presets` without Hydra or any
file on disk). ``corrupt(image_or_jpeg, seed)`` is deterministic in ``seed``: the seed's SeedSequence is
split into one stream each for the BER draw, the flip positions, the lost sectors and the truncation point.

Damage on the stored (encrypted) bytes, in this order: bit errors (``ber``, ``model``), lost sectors
(``sector_loss_*``: whole sectors read back as ``sector_fill``), then after decryption truncation
(``truncate``). Bit errors and lost sectors hit ``region`` (``scan``: the sectors strictly inside the scan;
``file``: anywhere); truncation always cuts inside the scan.

Photos given as arrays are encoded here with an EXIF thumbnail (``thumbnail_size``); JPEG bytes given are
the clean file exactly as they are, unless ``add_thumbnail`` asks for a thumbnail (``if_missing`` /
``always``), which is then added to the existing EXIF in place (every other byte kept) or refused with
:class:`UneditableExif` when that EXIF block cannot be edited.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from src.corruption.channel import (
    MODELS,
    REGIONS,
    check_ber,
    check_sector_loss,
    fill_sectors,
    flip_bits,
    region_bits,
    region_sectors,
    sample_flips,
    sample_lost_sectors,
    truncation_point,
)
from src.corruption.cipher import SectorCipher
from src.corruption.errors import CorruptionError
from src.corruption.jpeg_markers import scan_extent
from src.corruption.jpeg_writer import (
    check_thumbnail_editable,
    embed_thumbnail,
    encode_jpeg,
    read_thumbnail,
    thumbnail_of_jpeg,
    thumbnail_shape,
)
from src.corruption.presets import PAPER_KEY, preset_settings

ADD_THUMBNAIL = ("never", "if_missing", "always")
#: the settings that decide the clean file made from an array (what a cache of clean files is keyed by)
ENCODER_SETTINGS = (
    "quality",
    "subsampling",
    "restart_interval",
    "optimize",
    "thumbnail_size",
    "thumbnail_quality",
    "thumbnail_reducing_gap",
)


@dataclass
class CorruptionSample:
    """One corrupted file and everything needed to reproduce or study it.

    clean_jpeg: the clean file (with its thumbnail if enabled); corrupted_jpeg: after the damage and
    decryption, as long as the clean file unless truncated; thumbnail: the EXIF thumbnail JPEG bytes of the
    clean file (None if none); positions: int64 (n, 3) rows (sector, byte_in_sector, bit) of the flipped
    CIPHERTEXT bits, bit 0 = MSB, sector counted from the file start; lost_sectors: int64 (m,) indices of
    the sectors (same grid) read back as ``sector_fill``; truncated_at: the corrupted file's length when it
    was cut (a byte offset inside the scan), else None; settings: JSON-able dict of the Corruptor settings
    plus the drawn ``ber``, the scan extent and the hit region; seed: the seed that made it.
    """

    clean_jpeg: bytes
    corrupted_jpeg: bytes
    thumbnail: bytes | None
    positions: np.ndarray
    settings: dict
    seed: int
    lost_sectors: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    truncated_at: int | None = None

    @property
    def n_flips(self) -> int:
        return int(self.positions.shape[0])

    @property
    def ber(self) -> float:
        """The BER used for this sample (drawn when the Corruptor holds a range)."""
        return float(self.settings["ber"])

    def differing_bytes(self) -> int:
        """Plaintext bytes that differ between the clean and the corrupted file (bytes cut off count)."""
        a = np.frombuffer(self.clean_jpeg, dtype=np.uint8)
        b = np.frombuffer(self.corrupted_jpeg, dtype=np.uint8)
        n = min(a.size, b.size)
        return int(np.count_nonzero(a[:n] != b[:n])) + abs(a.size - b.size)

    def to_json_dict(self) -> dict:
        """JSON-able record: settings, seed, positions (list of [sector, byte, bit]), lost sectors,
        truncation and sizes."""
        return {
            "seed": int(self.seed),
            "settings": self.settings,
            "n_flips": self.n_flips,
            "positions": self.positions.tolist(),
            "lost_sectors": self.lost_sectors.tolist(),
            "truncated_at": self.truncated_at,
            "clean_bytes": len(self.clean_jpeg),
            "corrupted_bytes": len(self.corrupted_jpeg),
            "differing_bytes": self.differing_bytes(),
            "thumbnail_bytes": len(self.thumbnail) if self.thumbnail else 0,
        }


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bytes) or not hasattr(value, "__len__")  # ListConfig has __len__


def _as_ber(ber: Any) -> float | tuple[float, float]:
    """A float, or a (lo, hi) range with 0 < lo <= hi <= 0.5 (drawn log-uniformly per call)."""
    if _is_scalar(ber):
        return check_ber(ber)
    values = [check_ber(v) for v in list(ber)]
    if len(values) != 2 or not 0.0 < values[0] <= values[1]:
        raise CorruptionError(
            f"ber range must be [lo, hi] with 0 < lo <= hi <= 0.5 (drawn log-uniformly), got {list(ber)!r}"
        )
    return values[0], values[1]


def _as_truncate(value: Any) -> float | tuple[float, float] | None:
    """None, a fraction of the scan in [0, 1], or a [lo, hi] range with 0 <= lo <= hi <= 1."""
    if value is None:
        return None
    try:
        values = [float(value)] if _is_scalar(value) else [float(v) for v in list(value)]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (1, 2) or not all(0.0 <= v <= 1.0 for v in values) or values != sorted(values):
        raise CorruptionError(
            "truncate must be null, a fraction of the scan in [0, 1] or a range [lo, hi] with "
            f"0 <= lo <= hi <= 1, got {value!r}"
        )
    return values[0] if len(values) == 1 else (values[0], values[1])


@dataclass
class Corruptor:
    """Settings of the corruption simulator; ``corrupt(image_or_jpeg, seed)`` makes one sample.
    ``Corruptor()`` is the paper's setting (the ``paper`` preset).

    cipher/key/sector_size/iv/pad/first_sector: see :class:`SectorCipher` (key as hex string or bytes).
    ber: bit error rate, a float in [0, 0.5] or a [lo, hi] range drawn log-uniformly per call.
    region: ``scan`` | ``file``; model: ``iid`` | ``gilbert_elliott`` (burst_length: mean bits in the bad
    state, burst_error_rate: flip probability there); see :mod:`src.corruption.channel`.
    sector_loss_rate / sector_loss_count: lost runs of ``sector_loss_run`` sectors in ``region`` (each run
    with this probability, or exactly this many; one of the two), read back as the byte ``sector_fill``
    (0 zeroed, 255 erased flash); sectors of ``sector_size`` bytes on the file's grid.
    truncate: None, or where the file ends: a fraction of its scan in [0, 1] or a [lo, hi] range drawn
    uniformly per call (0 = the scan's first byte, 1 = its EOI marker; the rest of the file is gone).
    quality/subsampling/restart_interval/optimize: the JPEG encoder (restart_interval in MCUs, 0 = none).
    thumbnail_size: long side of the EXIF thumbnail in px, or None for no thumbnail; thumbnail_quality;
    thumbnail_reducing_gap: None (exact bicubic, the paper's) or Pillow's reducing_gap (faster, see
    :func:`make_thumbnail`). Encoder and thumbnail settings apply to arrays.
    add_thumbnail: for JPEG bytes given to ``corrupt``: ``never`` (the default: the file is used as it
    is), ``if_missing`` (add a ``thumbnail_size`` thumbnail when it has no EXIF thumbnail) or ``always``
    (add one in any case; an earlier one stays as unreferenced bytes).
    """

    cipher: str = "cbc-essiv"
    key: str | bytes | None = PAPER_KEY
    sector_size: int = 512
    iv: str = "be32"
    pad: str = "pkcs7"
    first_sector: int = 0
    ber: Any = 1e-5
    region: str = "scan"
    model: str = "iid"
    burst_length: float = 64.0
    burst_error_rate: float = 0.5
    sector_loss_rate: float = 0.0
    sector_loss_count: int = 0
    sector_loss_run: int = 1
    sector_fill: int = 0
    truncate: Any = None
    quality: int = 75
    subsampling: str = "4:2:0"
    restart_interval: int = 0
    optimize: bool = False
    thumbnail_size: int | None = 160
    thumbnail_quality: int = 90
    thumbnail_reducing_gap: float | None = None
    add_thumbnail: str = "never"
    _cipher: SectorCipher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.key, bytes | bytearray):
            self.key = bytes(self.key).hex()
        self.ber = _as_ber(self.ber)
        self.truncate = _as_truncate(self.truncate)
        if self.region not in REGIONS:
            raise CorruptionError(f"region must be one of {REGIONS}, got {self.region!r}")
        if self.model not in MODELS:
            raise CorruptionError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.add_thumbnail not in ADD_THUMBNAIL:
            raise CorruptionError(f"add_thumbnail must be one of {ADD_THUMBNAIL}, got {self.add_thumbnail!r}")
        if self.thumbnail_size is not None:
            thumbnail_shape(1, 1, self.thumbnail_size)  # validates
        elif self.add_thumbnail != "never":
            raise CorruptionError(f"add_thumbnail={self.add_thumbnail!r} needs a thumbnail_size, got None")
        check_sector_loss(self.sector_loss_rate, self.sector_loss_count, self.sector_loss_run)
        fill_sectors(b"", np.empty(0, np.int64), 16, self.sector_fill)  # validates the fill byte
        self._cipher = SectorCipher(
            self.cipher, self.key, self.sector_size, self.iv, self.pad, self.first_sector
        )
        # validate the encoder settings and the channel parameters once, on a tiny image
        self.encode(np.zeros((8, 8, 3), np.uint8))
        hi = self.ber[1] if isinstance(self.ber, tuple) else self.ber
        sample_flips(
            range(0),
            hi,
            0,
            model=self.model,
            burst_length=self.burst_length,
            burst_error_rate=self.burst_error_rate,
        )

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Corruptor:
        """Build preset ``name`` of :data:`src.corruption.presets.PRESETS` with keyword overrides (no file
        is read: the YAML files in ``conf/corruption`` are the Hydra mirror of the same presets)."""
        cfg = preset_settings(name)
        unknown = sorted(set(cfg) - set(cls.setting_names())) + sorted(
            set(overrides) - set(cls.setting_names())
        )
        if unknown:
            raise CorruptionError(
                f"unknown Corruptor setting(s) {unknown}; allowed: {list(cls.setting_names())}"
            )
        cfg.update(overrides)
        return cls(**cfg)

    def settings(self) -> dict:
        """JSON-able settings (key as hex, ber and truncate as a float or [lo, hi])."""
        out = {name: getattr(self, name) for name in self.setting_names()}
        out = {k: v.item() if isinstance(v, np.generic) else v for k, v in out.items()}
        out["ber"] = list(self.ber) if isinstance(self.ber, tuple) else self.ber
        out["truncate"] = list(self.truncate) if isinstance(self.truncate, tuple) else self.truncate
        return out

    def encoder_settings(self) -> dict:
        """The settings that decide the clean file made from an array (see :data:`ENCODER_SETTINGS`)."""
        return {name: getattr(self, name) for name in ENCODER_SETTINGS}

    def __getstate__(self) -> dict:
        return self.settings()

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # -- the pipeline ----------------------------------------------------------------------------
    def draw_ber(self, rng: np.random.Generator) -> float:
        """The BER for one call: the fixed value, or log-uniform in [lo, hi]."""
        if not isinstance(self.ber, tuple):
            return float(self.ber)
        lo, hi = self.ber
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else lo

    def draw_truncation(self, extent: tuple[int, int], rng: np.random.Generator) -> int | None:
        """The byte offset where the file ends for one call (None when ``truncate`` is None)."""
        if self.truncate is None:
            return None
        if isinstance(self.truncate, tuple):
            lo, hi = self.truncate
            fraction = float(rng.uniform(lo, hi)) if hi > lo else lo
        else:
            fraction = self.truncate
        return truncation_point(extent, fraction)

    def encode(self, image: np.ndarray | Image.Image) -> bytes:
        """uint8 (H, W, 3) RGB or (H, W) grey (or a Pillow RGB / L image) -> clean JPEG bytes with these
        encoder/thumbnail settings."""
        return encode_jpeg(
            image,
            self.quality,
            self.subsampling,
            self.restart_interval,
            self.optimize,
            thumbnail=self.thumbnail_size is not None,
            thumbnail_size=self.thumbnail_size or 160,
            thumbnail_quality=self.thumbnail_quality,
            thumbnail_reducing_gap=self.thumbnail_reducing_gap,
        )

    def prepare(self, image_or_jpeg: np.ndarray | Image.Image | bytes) -> bytes:
        """Clean JPEG bytes: encodes an array (or Pillow image); JPEG bytes are checked and kept as they
        are, unless ``add_thumbnail`` asks for a thumbnail (added in place, see :func:`embed_thumbnail`)."""
        if isinstance(image_or_jpeg, np.ndarray | Image.Image):
            return self.encode(image_or_jpeg)
        if not isinstance(image_or_jpeg, bytes | bytearray | memoryview):
            raise CorruptionError(
                "expected a uint8 image array, a Pillow image or JPEG bytes, got "
                f"{type(image_or_jpeg).__name__}"
            )
        data = bytes(image_or_jpeg)
        scan_extent(data)  # raises CorruptionError on non-JPEG bytes
        if self.add_thumbnail == "never":
            return data
        if self.add_thumbnail == "if_missing" and read_thumbnail(data) is not None:
            return data
        check_thumbnail_editable(data)  # before the work of making the thumbnail
        thumb = thumbnail_of_jpeg(
            data, self.thumbnail_size, self.thumbnail_quality, self.thumbnail_reducing_gap
        )
        return embed_thumbnail(data, thumb)

    def hit_region(self, clean_jpeg: bytes, extent: tuple[int, int] | None = None) -> range:
        """Absolute ciphertext bit offsets that bit errors and sector loss may hit for this clean file
        (``extent``: its :func:`scan_extent`, computed when not given)."""
        if self.region == "scan" and extent is None:
            extent = scan_extent(clean_jpeg)
        return region_bits(self.region, self._cipher.padded_length(len(clean_jpeg)), extent, self.sector_size)

    def apply(
        self,
        clean_jpeg: bytes,
        positions: np.ndarray,
        lost_sectors: np.ndarray | None = None,
        truncated_at: int | None = None,
    ) -> bytes:
        """Encrypt ``clean_jpeg``, flip the ciphertext bits at ``positions``, set ``lost_sectors`` to
        ``sector_fill``, decrypt (same length back), cut at ``truncated_at`` (bytes kept) if given.

        Replaying a sample's recorded positions, lost sectors and truncation on its clean file reproduces
        its corrupted file exactly.
        """
        lost = np.empty(0, np.int64) if lost_sectors is None else np.asarray(lost_sectors, np.int64)
        if len(positions) or lost.size:  # decrypt(encrypt(x)) == x: skip both when nothing is hit
            ciphertext = flip_bits(self._cipher.encrypt(clean_jpeg), positions, self.sector_size)
            ciphertext = fill_sectors(ciphertext, lost, self.sector_size, self.sector_fill)
            plaintext = self._cipher.decrypt(ciphertext, length=len(clean_jpeg))
        else:
            plaintext = bytes(clean_jpeg)
        if truncated_at is not None:
            if not 0 <= truncated_at <= len(plaintext):
                raise CorruptionError(f"truncated_at must be in 0..{len(plaintext)}, got {truncated_at}")
            plaintext = plaintext[:truncated_at]
        return plaintext

    def corrupt(self, image_or_jpeg: np.ndarray | Image.Image | bytes, seed: int) -> CorruptionSample:
        """One corrupted sample of an RGB uint8 image or Pillow image (encoded here) or of JPEG bytes."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise CorruptionError(f"seed must be a non-negative integer, got {seed!r}")
        clean = self.prepare(image_or_jpeg)
        ber_seq, flip_seq, loss_seq, cut_seq = np.random.SeedSequence(int(seed)).spawn(4)
        ber = self.draw_ber(np.random.default_rng(ber_seq))
        extent = scan_extent(clean)
        bits = self.hit_region(clean, extent)
        positions = sample_flips(
            bits,
            ber,
            np.random.default_rng(flip_seq),
            sector_size=self.sector_size,
            model=self.model,
            burst_length=self.burst_length,
            burst_error_rate=self.burst_error_rate,
        )
        lost = sample_lost_sectors(
            region_sectors(bits, self.sector_size),
            np.random.default_rng(loss_seq),
            rate=self.sector_loss_rate,
            count=self.sector_loss_count,
            run=self.sector_loss_run,
        )
        cut = self.draw_truncation(extent, np.random.default_rng(cut_seq))
        corrupted = self.apply(clean, positions, lost, cut)
        settings = self.settings()
        settings.update(
            ber=ber,
            ber_setting=self.settings()["ber"],
            scan=[int(extent[0]), int(extent[1])],
            region_bits=[bits.start, bits.stop],
        )
        return CorruptionSample(
            clean_jpeg=clean,
            corrupted_jpeg=corrupted,
            thumbnail=read_thumbnail(clean),
            positions=positions,
            settings=settings,
            seed=int(seed),
            lost_sectors=lost,
            truncated_at=cut,
        )
