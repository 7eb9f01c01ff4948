"""The corruption presets, defined in code: ``PRESETS`` maps a name to the full :class:`Corruptor` settings.

``Corruptor.from_preset(name)`` reads them from here, so an installed package needs no ``conf/`` folder.
The Hydra group ``conf/corruption/<name>.yaml`` is their mirror, generated from this module (``_target_``,
the description as a comment, every setting with its comment) and checked against it by the tests:

    python -m src.corruption conf/corruption            # rewrite the YAML mirror after editing a preset
    python -m src.corruption conf/corruption --check    # exit 1 if a file differs

Bit-error presets hit the sectors strictly inside the scan (``region: scan``, the paper's rule; ``region:
file`` lets damage hit headers and the thumbnail too, and such samples may fail with CorruptHeader).
Damage presets for unencrypted camera storage (``cipher: none``): ``sector_loss``, ``erased_flash``,
``truncated``. Any setting of one preset can be combined with another on the command line, e.g.
``corruption=paper corruption.sector_loss_count=1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.corruption.errors import CorruptionError

# The paper's AES-128 key (Two-ACIR `android_aes.py`), as hex.
PAPER_KEY = "2281f4baefa53a8966577450c7926fbf"
XTS_KEY = (
    "209dc17e4847e86733267270d063b8f2f3837b9229d062e61de2c7db7e3f86ca"
    "0bab0466c42c3aa1162a382f0d62018b5e64d5eafeb3dbce9f5bc1cd85bb4003"
)

#: The Two-ACIR paper's setting; also ``Corruptor()``'s defaults (a test keeps them equal).
PAPER: dict[str, Any] = {
    "cipher": "cbc-essiv",
    "key": PAPER_KEY,
    "sector_size": 512,
    "iv": "be32",
    "pad": "pkcs7",
    "first_sector": 0,
    "ber": 1.0e-5,
    "region": "scan",
    "model": "iid",
    "burst_length": 64.0,
    "burst_error_rate": 0.5,
    "sector_loss_rate": 0.0,
    "sector_loss_count": 0,
    "sector_loss_run": 1,
    "sector_fill": 0,
    "truncate": None,
    "quality": 75,
    "subsampling": "4:2:0",
    "restart_interval": 0,
    "optimize": False,
    "thumbnail_size": 160,
    "thumbnail_quality": 90,
    "thumbnail_reducing_gap": None,
    "add_thumbnail": "never",
}

_NO_CIPHER = {"cipher": "none", "key": None, "ber": 0.0}


def _text(paragraph: str) -> str:
    return " ".join(paragraph.split())


#: name -> (description, settings that differ from ``PAPER``)
_DEFINITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper": (
        _text(
            """
            The Two-ACIR paper's corruption (CVPR 2023; research/paper.md §1.2, design.md §3):
            Android-FDE-style AES-128-CBC-ESSIV over 512-byte sectors counted from the file start, the
            sector number as 32-bit BIG-endian (the paper's code; real dm-crypt uses le64, see android_fde),
            PKCS#7 padding to 16 bytes, i.i.d. bit errors at BER 1e-5 on the sectors strictly inside the
            scan, Q75 4:2:0 baseline JPEG with the standard Huffman tables and no restart markers. Unlike
            the paper's files we embed a real EXIF thumbnail (160 px on the long side, as the paper's
            synthetic thumbnail): it sits in the header sectors, which this region never hits.
            """
        ),
        {},
    ),
    "android_fde": (
        _text(
            """
            Real Android full-disk encryption (Android 4.4-9, dm-crypt "aes-cbc-essiv:sha256"): AES-128-CBC-
            ESSIV, 512-byte sectors, the sector number as 64-bit LITTLE-endian, numbered from the start of
            the partition (first_sector: where the file happens to lie; it changes the ciphertext, not the
            error statistics). Zero padding to a whole sector (a disk stores whole sectors; the file length
            is kept by the file system). Errors hit the sectors strictly inside the scan, as in `paper`, so
            the two presets differ only in the disk conventions.
            """
        ),
        {"iv": "le64", "pad": "zero", "first_sector": 8192},
    ),
    "xts": (
        _text(
            """
            Modern storage encryption: AES-256-XTS (IEEE 1619) as in Android file-based / metadata
            encryption (fscrypt data units = 4096-byte blocks) and LUKS ("aes-xts-plain64", 512-bit key). A
            ciphertext bit error garbles only its own 16-byte block (no carry into the next block, unlike
            CBC). Errors hit the sectors strictly inside the scan, as in `paper`.
            """
        ),
        {"cipher": "xts", "key": XTS_KEY, "sector_size": 4096, "iv": "le64"},
    ),
    "raw": (
        _text(
            """
            Raw bit errors on the plaintext (no encryption: a transmission error, or a stream cipher such as
            AES-CTR where one ciphertext flip flips one plaintext bit). Same region and BER as the paper
            preset, so the difference to `paper` is the cipher's error propagation alone.
            """
        ),
        {"cipher": "none", "key": None},
    ),
    "sector_loss": (
        _text(
            """
            Unreadable sectors on unencrypted storage (a memory card or disk that returns zeros for a sector
            it cannot read): 2 whole 512-byte sectors zeroed, placed uniformly among the sectors strictly
            inside the scan, no bit errors. `sector_loss_rate` instead of the count loses each sector with
            that probability; `region: file` lets the loss hit headers too.
            """
        ),
        _NO_CIPHER | {"sector_loss_count": 2},
    ),
    "erased_flash": (
        _text(
            """
            Erased flash pages inside the scan, as seen in a real camera file with a 16 KB run of 0xFF in
            its scan: one run of 4 consecutive 4 KiB sectors (16 KiB, aligned to 16 KiB from the file start,
            as flash blocks and file-system clusters are) set to 0xFF, unencrypted, no bit errors. Under a
            sector cipher (e.g. `cipher: cbc-essiv`) the erased ciphertext decrypts to random-looking bytes
            instead.
            """
        ),
        _NO_CIPHER | {"sector_size": 4096, "sector_loss_count": 1, "sector_loss_run": 4, "sector_fill": 255},
    ),
    "truncated": (
        _text(
            """
            A file cut short (an interrupted write or transfer, a recovered file whose last clusters are
            missing): the bytes after a point drawn uniformly in the scan (0 = where the scan starts, 1 =
            its EOI marker) are gone, EOI included; unencrypted, no bit errors. A single number cuts at that
            fraction of the scan.
            """
        ),
        _NO_CIPHER | {"truncate": [0.0, 1.0]},
    ),
}

PRESETS: dict[str, dict[str, Any]] = {name: PAPER | diff for name, (_, diff) in _DEFINITIONS.items()}
DESCRIPTIONS: dict[str, str] = {name: text for name, (text, _) in _DEFINITIONS.items()}

#: one-line comments written after each setting in the YAML mirror
COMMENTS: dict[str, str] = {
    "cipher": "cbc-essiv | xts | none",
    "key": "hex (cbc-essiv: 16/24/32 bytes, xts: 32/64); ignored by none",
    "sector_size": "bytes: cipher unit, loss unit, grid of region scan",
    "iv": "be32 | le64: how the sector number becomes the IV / tweak",
    "pad": "pkcs7 (to 16 bytes) | zero (to a whole sector)",
    "first_sector": "sector number of the file's first byte (the IVs)",
    "ber": "a float, or [lo, hi] drawn log-uniformly per sample",
    "region": "scan: sectors strictly inside the scan | file: anywhere",
    "model": "iid | gilbert_elliott (bursts)",
    "burst_length": "gilbert_elliott only: mean bits in the bad state",
    "burst_error_rate": "gilbert_elliott only: flip probability in the bad state",
    "sector_loss_rate": "each run in the region lost with this probability",
    "sector_loss_count": "or exactly this many runs (at most all of them)",
    "sector_loss_run": "sectors per lost run (aligned from the file start)",
    "sector_fill": "byte a lost sector reads as: 0 (zeroed) or 255 (erased flash)",
    "truncate": "null | fraction of the scan | [lo, hi]: the file ends there",
    "quality": "JPEG quality 1..100 (arrays only)",
    "subsampling": "4:4:4 | 4:2:2 | 4:2:0 (arrays only)",
    "restart_interval": "MCUs between RST markers, 0 = none (arrays only)",
    "optimize": "optimised Huffman tables (arrays only)",
    "thumbnail_size": "long side of the EXIF thumbnail in px; null = none",
    "thumbnail_quality": "JPEG quality of the thumbnail",
    "thumbnail_reducing_gap": "null = exact bicubic; 3.0: 5x faster, ~55 dB from exact",
    "add_thumbnail": "for JPEG bytes: never | if_missing | always",
}


def preset_settings(name: str) -> dict[str, Any]:
    """A copy of the settings of preset ``name``; :class:`CorruptionError` listing the known ones."""
    if name not in PRESETS:
        raise CorruptionError(f"unknown corruption preset {name!r}; known presets: {sorted(PRESETS)}")
    return {k: list(v) if isinstance(v, list) else v for k, v in PRESETS[name].items()}


def _yaml_value(value: Any) -> str:
    """One setting as YAML that PyYAML and OmegaConf read back alike: strings double-quoted (a hex key
    such as ``1e10...`` would otherwise become a float), floats with a dot (``1.0e-05``), lists inline."""
    import json

    import yaml  # PyYAML comes with hydra-core/omegaconf; only the mirror needs it

    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _wrap(text: str, width: int = 108) -> list[str]:
    import textwrap

    return ["# " + line for line in textwrap.wrap(text, width - 2, break_on_hyphens=False)]


def preset_yaml(name: str) -> str:
    """The Hydra mirror ``conf/corruption/<name>.yaml`` of preset ``name``, as text."""
    settings = preset_settings(name)
    lines = [
        *_wrap(DESCRIPTIONS[name]),
        "# Generated from src/corruption/presets.py: edit there, then run",
        "# `python -m src.corruption conf/corruption`.",
        "_target_: src.corruption.Corruptor",
    ]
    items = [(f"{k}: {_yaml_value(v)}", COMMENTS[k]) for k, v in settings.items()]
    width = max(len(text) for text, _ in items if len(text) <= 40) + 2  # a long key is not aligned
    lines += [f"{text.ljust(width - 2)}  # {comment}" for text, comment in items]
    return "\n".join(lines) + "\n"


def write_mirror(folder: str | Path, check: bool = False) -> list[str]:
    """Write (or with ``check`` only compare) every preset's YAML mirror in ``folder``.

    Returns the names of files that differed (written, or stale when checking), plus YAML files in the
    folder that name no preset.
    """
    folder = Path(folder)
    if not check:
        folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in PRESETS:
        path = folder / f"{name}.yaml"
        text = preset_yaml(name)
        if not path.is_file() or path.read_text() != text:
            changed.append(path.name)
            if not check:
                path.write_text(text)
    changed += sorted(p.name for p in folder.glob("*.yaml") if p.stem not in PRESETS)
    return changed
