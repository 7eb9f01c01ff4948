"""Decoder evidence that a stream is damaged: what no intact baseline stream can produce.

SCA only changes a decode (breaks, shifts, offsets, garbage) where the stream is known to be damaged: an
intact file comes back as its decode, bit-identical. Evidence, all read from ``src.jpeg.Decoded``:

* an MCU flagged ``MCU_RESYNC`` / ``MCU_LOST`` / ``MCU_ERROR`` (the entropy decoder failed, resynchronised,
  or ran out of data before the last MCU);
* an event other than a restart marker: retries, fills, restart markers out of sequence, lost intervals, a
  missing EOI, or any event kind a caller adds (``src.sca.synthetic`` names its hits);
* a coefficient no 8-bit image can produce: the DCT of level-shifted samples in [-128, 127] stays within
  [-1024, 1024] (DC at most 8 * 128; AC less), and the quantised value is that over q, rounded; a
  dequantised coefficient (DC after the DPCM) beyond 1024 + q is damage (random bits after a hit decode to
  large AC sizes; a DC offset pushes block means out of range). No intact camera file or encode of ours
  has one;
* a marker (``FF xx``, not a restart) inside the decoded MCU data: an encoder stuffs every FF data byte, so
  only damage puts one there. Markers after the start of the last MCU are not counted: real camera files
  carry trailing bytes (padding, a second image) after the scan, which the scan reader sees as markers.

Content alone (a discontinuity, an edge that looks like a DC jump, a shift that fits flat content) is never
evidence: every such test also fires on some intact photo.
"""

from __future__ import annotations

import numpy as np

# MCU status flags (the values of src.jpeg's MCU_* constants) and event kinds that intact streams produce
_RESYNC, _LOST, _ERROR = 1, 2, 8
_INTACT_EVENTS = ("restart",)


def stream_damaged(decoded) -> bool:
    """True when ``decoded`` (a ``src.jpeg.Decoded``) carries evidence of damage (see the module doc)."""
    status = np.asarray(decoded.mcu_status).reshape(-1)
    if ((status & (_RESYNC | _LOST | _ERROR)) != 0).any():
        return True
    if _impossible_coefficients(decoded):
        return True
    events = getattr(decoded, "events", None) or []
    if not events:
        return False
    bitpos = np.asarray(getattr(decoded, "mcu_bitpos", np.zeros(0, np.int64))).reshape(-1)
    last = int(bitpos.max()) if bitpos.size else -1
    for e in events:
        if e.kind in _INTACT_EVENTS:
            continue
        if e.kind == "spurious_marker":
            if 0 <= e.bitpos < last:
                return True
            continue
        return True
    return False


def _impossible_coefficients(decoded) -> bool:
    """True when a quantised coefficient (natural order; the DC from ``decoded.dc``) exceeds what an
    8-bit source allows: ``|c| * q > 1024 + q``, i.e. ``|c| > (1024 + q) // q`` in integers."""
    coefs = getattr(decoded, "coefficients", None)
    for c in range(len(decoded.planes)):
        q = np.maximum(np.asarray(decoded.qtables[c]).reshape(-1).astype(np.int64), 1)
        limit = (1024 + q) // q
        if np.abs(np.asarray(decoded.dc[c])).max(initial=0) > limit[0]:
            return True
        if coefs is None or c >= len(coefs):
            continue
        co = np.asarray(coefs[c]).reshape(-1, 64)
        lim = limit[1:].astype(co.dtype)
        # AC: int16 compares per zig-zag position, on the blocks' 63 AC values
        ac = co[:, 1:]
        if ((ac > lim) | (ac < -lim)).any():
            return True
    return False
