"""The whole simulator in one object: encode (with thumbnail) -> sector-encrypt -> bit errors -> decrypt.

``Corruptor`` holds plain settings (so Hydra can build it with ``_target_: src.corruption.Corruptor`` and
``Corruptor.from_preset(name)`` reads the same YAML files without Hydra). ``corrupt(image_or_jpeg, seed)``
is deterministic in ``seed``: the seed's SeedSequence is split into one stream for the BER draw and one
for the flip positions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.corruption.channel import MODELS, REGIONS, check_ber, flip_bits, region_bits, sample_flips
from src.corruption.cipher import SectorCipher
from src.corruption.errors import CorruptionError
from src.corruption.jpeg_markers import scan_extent
from src.corruption.jpeg_writer import (
    embed_thumbnail,
    encode_jpeg,
    make_thumbnail,
    read_thumbnail,
    thumbnail_shape,
)

# The paper's AES-128 key (Two-ACIR `android_aes.py`), as hex.
PAPER_KEY = "2281f4baefa53a8966577450c7926fbf"


def conf_dir() -> Path:
    """The project's ``conf/`` folder (Hydra configs and the corruption presets).

    Located from this file (src/corruption/ -> repo root), not from ``src.__file__``: an editable install
    made before ``src/__init__.py`` existed maps ``src`` as a namespace package whose ``__file__`` is None.
    """
    return Path(__file__).resolve().parents[2] / "conf"


@dataclass
class CorruptionSample:
    """One corrupted file and everything needed to reproduce or study it.

    clean_jpeg: the clean file (with its thumbnail if enabled); corrupted_jpeg: the same length, decrypted
    after the bit errors; thumbnail: the embedded EXIF thumbnail JPEG bytes (None if none);
    positions: int64 (n, 3) rows (sector, byte_in_sector, bit) of the flipped CIPHERTEXT bits, bit 0 = MSB,
    sector counted from the file start; settings: JSON-able dict of the Corruptor settings plus the drawn
    ``ber``, the scan extent and the size of the hit region; seed: the seed that made it.
    """

    clean_jpeg: bytes
    corrupted_jpeg: bytes
    thumbnail: bytes | None
    positions: np.ndarray
    settings: dict
    seed: int

    @property
    def n_flips(self) -> int:
        return int(self.positions.shape[0])

    @property
    def ber(self) -> float:
        """The BER used for this sample (drawn when the Corruptor holds a range)."""
        return float(self.settings["ber"])

    def differing_bytes(self) -> int:
        """Number of plaintext bytes that differ between the clean and the corrupted file."""
        a = np.frombuffer(self.clean_jpeg, dtype=np.uint8)
        b = np.frombuffer(self.corrupted_jpeg, dtype=np.uint8)
        return int(np.count_nonzero(a != b))

    def to_json_dict(self) -> dict:
        """JSON-able record: settings, seed, positions (list of [sector, byte, bit]) and sizes."""
        return {
            "seed": int(self.seed),
            "settings": self.settings,
            "n_flips": self.n_flips,
            "positions": self.positions.tolist(),
            "clean_bytes": len(self.clean_jpeg),
            "corrupted_bytes": len(self.corrupted_jpeg),
            "differing_bytes": self.differing_bytes(),
            "thumbnail_bytes": len(self.thumbnail) if self.thumbnail else 0,
        }


def _as_ber(ber: Any) -> float | tuple[float, float]:
    """A float, or a (lo, hi) range with 0 < lo <= hi <= 0.5 (drawn log-uniformly per call)."""
    if isinstance(ber, str | bytes) or not hasattr(ber, "__len__"):  # a scalar (ListConfig has __len__)
        return check_ber(ber)
    values = [check_ber(v) for v in list(ber)]
    if len(values) != 2 or not 0.0 < values[0] <= values[1]:
        raise CorruptionError(
            f"ber range must be [lo, hi] with 0 < lo <= hi <= 0.5 (drawn log-uniformly), got {list(ber)!r}"
        )
    return values[0], values[1]


@dataclass
class Corruptor:
    """Settings of the corruption simulator; ``corrupt(image_or_jpeg, seed)`` makes one sample.

    cipher/key/sector_size/iv/pad/first_sector: see :class:`SectorCipher` (key as hex string or bytes).
    ber: bit error rate, a float in [0, 0.5] or a [lo, hi] range drawn log-uniformly per call.
    region: ``scan`` | ``file``; model: ``iid`` | ``gilbert_elliott`` (burst_length: mean bits in the bad
    state, burst_error_rate: flip probability there); see :mod:`src.corruption.channel`.
    quality/subsampling/restart_interval/optimize: the JPEG encoder (restart_interval in MCUs, 0 = none).
    thumbnail_size: long side of the EXIF thumbnail in px, or None for no thumbnail; thumbnail_quality.
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
    quality: int = 75
    subsampling: str = "4:2:0"
    restart_interval: int = 0
    optimize: bool = False
    thumbnail_size: int | None = 160
    thumbnail_quality: int = 90
    _cipher: SectorCipher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.key, bytes | bytearray):
            self.key = bytes(self.key).hex()
        self.ber = _as_ber(self.ber)
        if self.region not in REGIONS:
            raise CorruptionError(f"region must be one of {REGIONS}, got {self.region!r}")
        if self.model not in MODELS:
            raise CorruptionError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.thumbnail_size is not None:
            thumbnail_shape(1, 1, self.thumbnail_size)  # validates
        self._cipher = SectorCipher(
            self.cipher, self.key, self.sector_size, self.iv, self.pad, self.first_sector
        )
        # validate the encoder settings and the channel parameters once, on a tiny image
        encode_jpeg(
            np.zeros((8, 8, 3), np.uint8),
            self.quality,
            self.subsampling,
            self.restart_interval,
            self.optimize,
            thumbnail=self.thumbnail_size is not None,
            thumbnail_size=self.thumbnail_size or 160,
            thumbnail_quality=self.thumbnail_quality,
        )
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
        """Build from ``conf/corruption/<name>.yaml`` (the Hydra presets) with keyword overrides."""
        import yaml  # PyYAML comes with hydra-core/omegaconf; only this helper needs it

        path = conf_dir() / "corruption" / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise CorruptionError(f"unknown corruption preset {name!r}; known presets: {known}")
        cfg = yaml.safe_load(path.read_text()) or {}
        cfg = {k: v for k, v in cfg.items() if not str(k).startswith("_")}
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
        """JSON-able settings (key as hex, ber as float or [lo, hi])."""
        out = {name: getattr(self, name) for name in self.setting_names()}
        out = {k: v.item() if isinstance(v, np.generic) else v for k, v in out.items()}
        out["ber"] = list(self.ber) if isinstance(self.ber, tuple) else self.ber
        return out

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

    def encode(self, image: np.ndarray) -> bytes:
        """uint8 (H, W, 3) RGB or (H, W) grey -> clean JPEG bytes with these encoder/thumbnail settings."""
        return encode_jpeg(
            image,
            self.quality,
            self.subsampling,
            self.restart_interval,
            self.optimize,
            thumbnail=self.thumbnail_size is not None,
            thumbnail_size=self.thumbnail_size or 160,
            thumbnail_quality=self.thumbnail_quality,
        )

    def prepare(self, image_or_jpeg: np.ndarray | bytes) -> bytes:
        """Clean JPEG bytes: encodes an array; checks JPEG bytes and adds a thumbnail if they lack one."""
        if isinstance(image_or_jpeg, np.ndarray):
            return self.encode(image_or_jpeg)
        if not isinstance(image_or_jpeg, bytes | bytearray | memoryview):
            raise CorruptionError(
                f"expected a uint8 image array or JPEG bytes, got {type(image_or_jpeg).__name__}"
            )
        data = bytes(image_or_jpeg)
        scan_extent(data)  # raises CorruptionError on non-JPEG bytes
        if self.thumbnail_size is not None and read_thumbnail(data) is None:
            import io

            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im = im.convert("L" if im.mode in ("L", "1", "I", "I;16") else "RGB")
                pixels = np.asarray(im)
            data = embed_thumbnail(data, make_thumbnail(pixels, self.thumbnail_size, self.thumbnail_quality))
        return data

    def hit_region(self, clean_jpeg: bytes) -> range:
        """Absolute ciphertext bit offsets the channel may hit for this clean file."""
        extent = scan_extent(clean_jpeg) if self.region == "scan" else None
        return region_bits(self.region, self._cipher.padded_length(len(clean_jpeg)), extent, self.sector_size)

    def apply(self, clean_jpeg: bytes, positions: np.ndarray) -> bytes:
        """Encrypt ``clean_jpeg``, flip the ciphertext bits at ``positions``, decrypt (same length back).

        Replaying a sample's recorded positions on its clean file reproduces its corrupted file exactly.
        """
        ciphertext = self._cipher.encrypt(clean_jpeg)
        return self._cipher.decrypt(
            flip_bits(ciphertext, positions, self.sector_size), length=len(clean_jpeg)
        )

    def corrupt(self, image_or_jpeg: np.ndarray | bytes, seed: int) -> CorruptionSample:
        """One corrupted sample of an RGB uint8 image (encoded here) or of clean JPEG bytes."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise CorruptionError(f"seed must be a non-negative integer, got {seed!r}")
        clean = self.prepare(image_or_jpeg)
        ber_seq, flip_seq = np.random.SeedSequence(int(seed)).spawn(2)
        ber = self.draw_ber(np.random.default_rng(ber_seq))
        extent = scan_extent(clean)
        bits = self.hit_region(clean)
        positions = sample_flips(
            bits,
            ber,
            np.random.default_rng(flip_seq),
            sector_size=self.sector_size,
            model=self.model,
            burst_length=self.burst_length,
            burst_error_rate=self.burst_error_rate,
        )
        corrupted = self.apply(clean, positions)
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
        )
