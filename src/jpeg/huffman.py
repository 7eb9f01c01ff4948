"""Huffman tables: validation of DHT contents and the packed lookup arrays the numba decoder uses.

A table is built once per distinct DHT content (memoised: most files share the Annex K tables).
Layout of the packed arrays (one row per table slot ``slot = 4 * class + id``, class 0 = DC, 1 = AC):

- ``lut``     int32 (8, 2**LOOKAHEAD): for the next LOOKAHEAD bits, ``(length << 8) | symbol`` of the code
  they start with, or 0 when that code is longer than LOOKAHEAD bits (or no code matches);
- ``maxcode`` int64 (8, 18): for length l in 1..16 the largest code of that length, -1 when none;
- ``valptr``  int64 (8, 17): ``huffval[valptr[l] + code]`` is the symbol of a code of length l;
- ``huffval`` int32 (8, 256): symbols in code order;
- ``maxlen``  int64 (8,): longest code length of the table (the paper's decoder gives up after that);
- ``fast``    int32 (8, 2**LOOKAHEAD), AC slots only: when the next LOOKAHEAD bits hold a whole AC code of
  length n with run r and magnitude size s >= 1 AND its s value bits (n + s <= LOOKAHEAD),
  ``(value << 16) | (r << 8) | (s << 4) | n`` with the sign-extended coefficient value; else 0
  (libjpeg-turbo's and stb_image's "fast AC" idea: one lookup instead of lookup + EXTEND).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from src.jpeg.errors import CorruptHeader

LOOKAHEAD = 9
"""Bits resolved by one table lookup (libjpeg-turbo uses 8; 9 covers nearly all codes of photos)."""


@dataclass(frozen=True)
class HuffmanSpec:
    """One DHT table as stored in the file: ``counts[i]`` codes of length i + 1, then the symbols."""

    table_class: int  # 0 = DC, 1 = AC
    table_id: int  # 0..3
    counts: bytes  # 16 bytes
    symbols: bytes  # sum(counts) bytes


def validate_spec(spec: HuffmanSpec) -> None:
    """Raise ``CorruptHeader`` unless the table is a valid canonical JPEG Huffman table.

    Rules (as libjpeg applies them): at most 256 symbols, no code may be all one bits, and DC symbols
    (magnitude categories) are at most 15.
    """
    counts = np.frombuffer(spec.counts, dtype=np.uint8).astype(np.int64)
    name = f"{'DC' if spec.table_class == 0 else 'AC'} Huffman table {spec.table_id}"
    if counts.sum() == 0:
        raise CorruptHeader(f"{name} is empty (all 16 code-length counts are 0)")
    if counts.sum() > 256:
        raise CorruptHeader(f"{name} declares {int(counts.sum())} codes; at most 256 are allowed")
    code = 0
    for length in range(1, 17):
        code += int(counts[length - 1])
        if code >= (1 << length):
            raise CorruptHeader(
                f"{name} overflows the code space at length {length} ({code} codes of <= {length} bits); "
                "a valid table leaves the all-ones code unused"
            )
        code <<= 1
    if spec.table_class == 0:
        sym = np.frombuffer(spec.symbols, dtype=np.uint8)
        if sym.size and int(sym.max()) > 15:
            raise CorruptHeader(f"{name} holds DC magnitude category {int(sym.max())}; at most 15 is allowed")


@functools.lru_cache(maxsize=256)
def _build_one(
    counts: bytes, symbols: bytes
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:  # fmt: skip
    """Lookup arrays of one canonical table (see the module docstring); inputs already validated."""
    cnt = np.frombuffer(counts, dtype=np.uint8).astype(np.int64)
    sym = np.frombuffer(symbols, dtype=np.uint8).astype(np.int32)
    lengths = np.repeat(np.arange(1, 17, dtype=np.int64), cnt)
    maxcode = np.full(18, -1, dtype=np.int64)
    valptr = np.zeros(17, dtype=np.int64)
    first_code = np.zeros(17, dtype=np.int64)
    code = 0
    k = 0
    for length in range(1, 17):
        n = int(cnt[length - 1])
        first_code[length] = code
        valptr[length] = k - code
        if n:
            maxcode[length] = code + n - 1
        code = (code + n) << 1
        k += n
    first_index = np.concatenate(([0], np.cumsum(cnt)))[lengths - 1]
    codes = first_code[lengths] + (np.arange(lengths.size) - first_index)
    lut = np.zeros(1 << LOOKAHEAD, dtype=np.int32)
    for c, length, s in zip(codes.tolist(), lengths.tolist(), sym.tolist(), strict=True):
        if length <= LOOKAHEAD:  # a short code owns every lookahead pattern it is a prefix of
            shift = LOOKAHEAD - length
            lut[c << shift : (c + 1) << shift] = (length << 8) | s
    huffval = np.zeros(256, dtype=np.int32)
    huffval[: sym.size] = sym
    fast = np.zeros(1 << LOOKAHEAD, dtype=np.int32)
    for c, length, s in zip(codes.tolist(), lengths.tolist(), sym.tolist(), strict=True):
        size, run = s & 15, s >> 4
        if size == 0 or length + size > LOOKAHEAD:
            continue
        free = LOOKAHEAD - length - size  # bits after the value: any pattern
        for vbits in range(1 << size):
            v = vbits if vbits >= 1 << (size - 1) else vbits - (1 << size) + 1  # T.81 EXTEND
            lo = ((c << size) | vbits) << free
            fast[lo : lo + (1 << free)] = (v << 16) | (run << 8) | (size << 4) | length
    return lut, maxcode, valptr, huffval, int(lengths.max()), fast


@dataclass(frozen=True)
class PackedTables:
    """All table slots of one scan, packed for the numba decoder (layout in the module docstring)."""

    lut: np.ndarray
    maxcode: np.ndarray
    valptr: np.ndarray
    huffval: np.ndarray
    maxlen: np.ndarray
    fast: np.ndarray


def pack_tables(specs: dict[tuple[int, int], HuffmanSpec]) -> PackedTables:
    """Pack the tables keyed by (class, id) into slot arrays; unused slots stay empty (never decoded)."""
    lut = np.zeros((8, 1 << LOOKAHEAD), dtype=np.int32)
    maxcode = np.full((8, 18), -1, dtype=np.int64)
    valptr = np.zeros((8, 17), dtype=np.int64)
    huffval = np.zeros((8, 256), dtype=np.int32)
    maxlen = np.zeros(8, dtype=np.int64)
    fast = np.zeros((8, 1 << LOOKAHEAD), dtype=np.int32)
    for (tc, th), spec in specs.items():
        slot = 4 * tc + th
        lut[slot], maxcode[slot], valptr[slot], huffval[slot], maxlen[slot], f = _build_one(
            spec.counts, spec.symbols
        )
        if tc == 1:
            fast[slot] = f
    return PackedTables(lut, maxcode, valptr, huffval, maxlen, fast)
