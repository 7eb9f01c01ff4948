"""Scan-data preprocessing: remove byte stuffing once and record where markers were.

The entropy decoder then reads a plain byte array with a stateless, position-based bit reader, so that
"retry one bit later" is just ``pos + 1``. Rule (the paper's ``removeFF00``, applied pairwise): ``FF 00``
gives one data byte ``FF``; any other ``FF xx`` pair is removed and recorded (``xx`` = marker code); a lone
``FF`` as the last byte is dropped. RSTn markers are resync points for the decoder; other markers inside the
scan are garbage from corruption.
"""

from __future__ import annotations

import numba as nb
import numpy as np

PAD_BYTES = 16
"""Zero bytes appended after the data so the bit reader may peek past the end without bounds checks."""


@nb.njit(cache=True, nogil=True)
def unstuff(data: np.ndarray, start: int, end: int, want_offsets: bool):
    """Unstuff ``data[start:end]`` (uint8).

    Returns ``(buf, n, mk_pos, mk_code, mk_file, src_off)``: ``buf`` uint8 (n + PAD_BYTES,) unstuffed bytes
    then zeros; ``mk_pos`` int64 byte offset in ``buf`` where each removed marker was, ``mk_code`` its code
    byte, ``mk_file`` its file offset; ``src_off`` int64 (n,) file offset of every output byte (only when
    ``want_offsets``, else empty).
    """
    size = max(end - start, 0)
    buf = np.zeros(size + PAD_BYTES, dtype=np.uint8)
    nff = 0  # markers <= FF bytes: the marker arrays are sized by them (not by the scan length)
    for i in range(start, end):
        nff += data[i] == 0xFF
    mk_pos = np.empty(nff, dtype=np.int64)
    mk_code = np.empty(nff, dtype=np.int64)
    mk_file = np.empty(nff, dtype=np.int64)
    src_off = np.empty(size if want_offsets else 0, dtype=np.int64)
    j = 0
    m = 0
    i = start
    while i < end:
        b = data[i]
        if b != 0xFF:
            buf[j] = b
            if want_offsets:
                src_off[j] = i
            j += 1
            i += 1
        elif i + 1 >= end:
            i += 1
        elif data[i + 1] == 0:
            buf[j] = 0xFF
            if want_offsets:
                src_off[j] = i
            j += 1
            i += 2
        else:
            mk_pos[m] = j
            mk_code[m] = data[i + 1]
            mk_file[m] = i
            m += 1
            i += 2
    return buf[: j + PAD_BYTES], j, mk_pos[:m], mk_code[:m], mk_file[:m], src_off[:j]
