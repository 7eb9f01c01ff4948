"""Pure-Python references for the JPEG decoder (used by its tests and ``benchmarks/decoder.py``; slow).

1. ``paper_decode``: a slow, pure-Python, bit-at-a-time port of the Two-ACIR robust decoder's algorithm
   (``Robust decoder/decoder.py``: ``removeFF00``, the ``Stream`` bit reader, dict-based Huffman lookup,
   retry-one-bit-later MCU loop), written independently of ``src.jpeg``'s numba code. Deviations from the
   paper's script, all deliberate: tables are chosen by the SOS Td/Ta fields (the script uses
   ``component_id // 2``); the scan ends at the last FFD9 (the script drops the file's last 2 bytes); the
   output is the coefficients + float IDCT planes (no min-max stretch, no SCA). ``fill="dc"`` fills MCUs
   after the end of data with the DC predictor instead of zeros (``src.jpeg``'s default).
2. ``pillow_jpeg``: encode with Pillow (libjpeg-turbo), optionally with a DRI restart interval.

Corrupted inputs come from the corruption simulator (``src.corruption.Corruptor``).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from src.jpeg.markers import ZIGZAG, parse_header


def pillow_jpeg(
    img: np.ndarray, quality: int = 75, subsampling: str = "4:2:0", restart_blocks: int = 0
) -> bytes:
    """Pillow-encoded baseline JPEG (no EXIF). ``restart_blocks``: DRI interval in MCUs (0 = none)."""
    params: dict = {"quality": quality}
    if img.ndim == 3:
        params["subsampling"] = subsampling
    if restart_blocks:
        params["restart_marker_blocks"] = restart_blocks
    out = io.BytesIO()
    Image.fromarray(img).save(out, "JPEG", **params)
    return out.getvalue()


def _remove_ff00(scan: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(scan)
    while i < n:
        if scan[i] == 0xFF:
            if i + 1 < n and scan[i + 1] == 0x00:
                out.append(0xFF)
            i += 2  # FF00 -> FF; any other FFxx pair (and a final lone FF) is dropped
        else:
            out.append(scan[i])
            i += 1
    return bytes(out)


class _Stream:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.length = 8 * len(data)
        self.end = False

    def bit(self) -> int:
        if self.pos > self.length - 1:
            self.end = True
            return 0
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = 2 * v + self.bit()
        return v


def _table(spec) -> tuple[dict, int]:
    table = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(spec.counts[length - 1]):
            table[(code, length)] = spec.symbols[k]
            k += 1
            code += 1
        code <<= 1
    return table, max(length for _, length in table)


def _signed(v: int, n: int) -> int:
    return v + (-1 << n) + 1 if v < 2 ** (n - 1) else v


def _huff(st: _Stream, table: tuple[dict, int]) -> tuple[int, bool]:
    codes, maxlen = table
    code = 0
    n = 0
    while (code, n) not in codes:
        if st.end:
            return 0, True
        code = 2 * code + st.bit()
        n += 1
        if n > maxlen:
            return 0, True
    return codes[(code, n)], False


def _block(st: _Stream, dct: tuple, act: tuple, coeffs: list) -> tuple[int, bool]:
    s, err = _huff(st, dct)
    if err:
        return 0, True
    diff = _signed(st.bits(s), s)
    k = 1
    while k < 64:
        rs, err = _huff(st, act)
        if err:
            return diff, True
        r, s = rs >> 4, rs & 15
        if s == 0:
            if r == 0:
                break
            if r == 15:
                k += 16
        else:
            k += r
            if k >= 64:
                return diff, True
            coeffs[k] = _signed(st.bits(s), s)
            k += 1
    return diff, False


def _idct_matrix() -> np.ndarray:
    m = np.zeros((8, 8))
    for x in range(8):
        for u in range(8):
            m[x, u] = (1 / math.sqrt(2) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
    return m


def paper_decode(jpeg: bytes, fill: str = "grey") -> dict:
    """Decode a non-DRI baseline JPEG with the paper's algorithm. Returns a dict with ``coef`` (list per
    component of int64 (brows, bcols, 64) natural-order quantised coefficients, DC after DPCM), ``skipped``
    int64 (mcu_rows, mcu_cols) bits skipped before each MCU, ``lost`` bool (mcu_rows, mcu_cols), ``planes``
    (float64 IDCT + 128 per component) and ``errors`` (number of failed MCU attempts)."""
    hdr = parse_header(jpeg)
    comps = hdr.components
    hmax = max(c.h for c in comps)
    vmax = max(c.v for c in comps)
    mcx = -(-hdr.width // (8 * hmax))
    mcy = -(-hdr.height // (8 * vmax))
    st = _Stream(_remove_ff00(jpeg[hdr.scan_start : hdr.scan_end]))
    tables = {key: _table(spec) for key, spec in hdr.huffman.items()}
    coef = [np.zeros((mcy * c.v, mcx * c.h, 64), dtype=np.int64) for c in comps]
    skipped = np.zeros((mcy, mcx), dtype=np.int64)
    lost = np.zeros((mcy, mcx), dtype=bool)
    pred = [0] * len(comps)
    errors = 0
    for my in range(mcy):
        mx = 0
        while mx < mcx:
            start = st.pos
            ok = False
            while True:
                backup = st.pos
                saved = list(pred)
                blocks = []
                failed = False
                for sc in hdr.scan_components:
                    c = comps[sc.index]
                    for dy in range(c.v):
                        for dx in range(c.h):
                            zz = [0] * 64
                            diff, err = _block(st, tables[(0, sc.td)], tables[(1, sc.ta)], zz)
                            if err:
                                failed = True
                                break
                            pred[sc.index] += diff
                            zz[0] = pred[sc.index]
                            blocks.append((sc.index, my * c.v + dy, mx * c.h + dx, zz))
                        if failed:
                            break
                    if failed:
                        break
                if not failed:
                    ok = True
                    break
                errors += 1
                if st.end:
                    break
                st.pos = backup + 1
                pred = saved
            if ok:
                skipped[my, mx] = backup - start
                for ci, by, bx, zz in blocks:
                    coef[ci][by, bx, ZIGZAG] = zz
            else:  # end of data: this and (as the stream stays past the end) every later MCU is filled
                lost[my, mx] = True
                pred = saved
                if fill == "dc":
                    for sc in hdr.scan_components:
                        c = comps[sc.index]
                        coef[sc.index][my * c.v : (my + 1) * c.v, mx * c.h : (mx + 1) * c.h, 0] = pred[
                            sc.index
                        ]
            mx += 1
    m = _idct_matrix()
    planes = []
    for ci, c in enumerate(comps):
        q = hdr.qtables[ci].astype(np.float64).reshape(8, 8)
        blocks = coef[ci].reshape(mcy * c.v, mcx * c.h, 8, 8) * q
        pix = np.einsum("xu,abuv,yv->abxy", m, blocks, m) + 128.0
        planes.append(pix.transpose(0, 2, 1, 3).reshape(mcy * c.v * 8, mcx * c.h * 8))
    return {"coef": coef, "skipped": skipped, "lost": lost, "planes": planes, "errors": errors}
