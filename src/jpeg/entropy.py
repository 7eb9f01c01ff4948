"""Entropy decoding of one interleaved Huffman scan, with resynchronisation (numba, no Python objects inside).

Bit reader: stateless and position based. ``pos`` is a bit index into the unstuffed scan bytes (see
``bitstream.unstuff``); a 32-bit big-endian window is peeked at ``pos >> 3`` each time, so a retry is
``pos + 1``. Bits at or past the end of the current data segment read as 0 (the paper's reader and libjpeg
both pad with zeros).

End of data follows the paper's reader exactly: a Huffman code whose bits run more than one bit past the
segment end, or a decode that hits an error after reading past the end, ends the segment ("END"); the MCU
and the rest of its restart interval are then filled (``MCU_LOST``).

Error rules ("ERROR", resynchronised by the strategy): no valid Huffman code within the table's longest
code length; AC index overflow (run makes k > 63). Optional plausibility checks (bit mask ``checks``):
DC magnitude category > 11, AC size > 10, ZRL running past coefficient 63, coefficient magnitude beyond
what an 8-bit DCT can produce after dequantisation.

Strategies: ``PAPER`` (on error restore the DC predictors and retry the same MCU one bit later),
``STRICT`` (the first error fills the rest of the restart interval), ``ALIGNED`` (cipher-aware: resume
after the 16-byte garbage block(s) near the error, see ``_aligned_resume``). Work is bounded: a per-MCU cap
on skipped bits and a whole-scan budget of failed-attempt bits; past either, MCUs are decoded leniently
(errors accepted, ``MCU_ERROR``) so the time stays linear in the input size.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from src.jpeg.huffman import LOOKAHEAD

# MCU status bit flags (Decoded.mcu_status)
MCU_OK = 0
MCU_RESYNC = 1
MCU_LOST = 2
MCU_RESTART = 4
MCU_ERROR = 8

# strategies
PAPER = 0
STRICT = 1
ALIGNED = 2

# plausibility check bits
CHECK_DC_CATEGORY = 1
CHECK_AC_SIZE = 2
CHECK_ZRL = 4
CHECK_RANGE = 8

# decode results
OK = 0
ERROR = 1
END = 2

# error reasons (event detail)
ERR_NONE = 0
ERR_DC_CODE = 1
ERR_AC_CODE = 2
ERR_AC_OVERFLOW = 3
ERR_DC_CATEGORY = 4
ERR_AC_SIZE = 5
ERR_ZRL = 6
ERR_RANGE = 7
ERROR_NAMES = (
    "none",
    "invalid DC Huffman code",
    "invalid AC Huffman code",
    "AC index overflow (k > 63)",
    "DC magnitude category > 11",
    "AC magnitude size > 10",
    "ZRL past coefficient 63",
    "coefficient out of the DCT range",
)

# event kinds (rows of the events array: kind, mcu, bitpos, a, b)
EV_RESTART = 1  # a = RST number
EV_RESTART_RESYNC = 2  # a = expected RST number, b = found number * 8 + action (0 skip, 1 missing, 2 accept)
EV_LOST_INTERVAL = 3  # a = interval index, b = MCUs filled
EV_RETRY = 4  # a = skipped bits, b = error reason of the first failed attempt
EV_EOF_FILL = 5  # a = MCUs filled, b = interval index
EV_ERROR_FILL = 6  # a = MCUs filled, b = error reason
EV_RETRY_CAP = 7  # a = skipped bits, b = error reason
EV_RETRY_BUDGET = 8  # a = work bits spent
EV_ALIGNED = 9  # a = skipped bits, b = garbage blocks jumped
EVENT_NAMES = (
    "",
    "restart",
    "restart_resync",
    "lost_interval",
    "retry",
    "eof_fill",
    "error_fill",
    "retry_cap",
    "retry_budget",
    "aligned_resync",
)

_LOOK = LOOKAHEAD


@nb.njit(cache=True, nogil=True)
def scan_words(buf):
    """int64 (len(buf),): word ``i`` holds bytes ``i .. i+7`` of ``buf`` big-endian (zeros past the end), so
    the bit reader peeks with a single load."""
    n = buf.shape[0]
    w = np.empty(n, dtype=np.int64)
    acc = np.int64(0)
    for i in range(min(7, n)):
        acc = (acc << 8) | np.int64(buf[i])
    for i in range(n):
        b = np.int64(buf[i + 7]) if i + 7 < n else np.int64(0)
        acc = (acc << 8) | b
        w[i] = acc
    return w


@nb.njit(inline="always")
def _peek32(words, pos, endbits):
    """32 bits starting at bit ``pos`` (MSB first) as an int64; bits at or past ``endbits`` read as 0.
    ``words``: ``scan_words`` of the unstuffed scan."""
    bits = ((words[pos >> 3] << (pos & 7)) >> 32) & 0xFFFFFFFF
    if pos + 32 > endbits:
        valid = endbits - pos
        if valid <= 0:
            return np.int64(0)
        bits &= ~((np.int64(1) << (32 - valid)) - 1)
    return bits


@nb.njit(inline="always")
def _load_word(words, base, endbits):
    """The 64 bits from byte-aligned bit ``base`` with the bits at or past ``endbits`` zeroed."""
    w = words[base >> 3]
    if base + 64 > endbits:
        valid = endbits - base
        if valid <= 0:
            return np.int64(0)
        w &= ~((np.int64(1) << (64 - valid)) - 1)
    return w


@nb.njit(cache=True, nogil=True)
def _slow_symbol(bits, slot, maxcode, valptr, huffval, maxlen):
    """(symbol, code length) of a code longer than the lookahead at the top of ``bits``; (-1, 0) if none.

    (The lookahead hit is written out at each call site: numba's code for a shared helper returning from
    both paths was four times slower.)"""
    ml = maxlen[slot]
    n = _LOOK + 1
    while n <= ml:
        code = bits >> (32 - n)
        if code <= maxcode[slot, n]:
            return np.int64(huffval[slot, valptr[slot, n] + code]), n
        n += 1
    return np.int64(-1), np.int64(0)


@nb.njit(inline="always")
def _extend(v, s):
    """Sign-extend the s-bit magnitude value v (T.81 F.2.2.1 EXTEND); s >= 1."""
    if v < (np.int64(1) << (s - 1)):
        v -= (np.int64(1) << s) - 1
    return v


@nb.njit(inline="always")
def _clamp16(v):
    return max(-32768, min(32767, v))


@nb.njit(inline="always")
def _block_index(m, b, mcu_cols, blk, cmp):
    """Raster block index of block ``b`` of MCU ``m``; ``blk`` rows (comp, dy, dx), ``cmp`` rows
    (h, v, first block, block columns, DC slot, AC slot)."""
    row = m // mcu_cols
    col = m - row * mcu_cols
    c = blk[b, 0]
    return cmp[c, 2] + (row * cmp[c, 1] + blk[b, 1]) * cmp[c, 3] + col * cmp[c, 0] + blk[b, 2]


@nb.njit(cache=True, nogil=True)
def _decode_mcu(m, pos, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, lenient):
    """Decode MCU ``m`` at bit ``pos`` into ``out`` = (coef, nzk, dc), updating ``pred`` in place.

    Returns (status, pos, reason); on a non-OK status ``pred`` and the MCU's blocks are left dirty (the
    caller restores / clears them). With ``lenient`` errors are accepted instead: a bad code ends the block
    after skipping one bit (DC difference 0), an AC overflow ends the block, plausibility checks are off.
    (The block decoder is written out here on purpose: as a separate numba function, even inlined, it ran
    2.5 times slower.)
    """
    coef, nzk, dc = out
    lut, maxcode, valptr, huffval, maxlen, fast = tabs
    row = m // mcu_cols
    col = m - row * mcu_cols
    st = OK
    reason = ERR_NONE
    base = pos - (pos & 7)
    word = _load_word(buf, base, nbits)
    for b in range(blk.shape[0]):
        c = blk[b, 0]
        bi = cmp[c, 2] + (row * cmp[c, 1] + blk[b, 1]) * cmp[c, 3] + col * cmp[c, 0] + blk[b, 2]
        dslot = cmp[c, 4]
        aslot = cmp[c, 5]
        # DC (the 32-bit window at pos comes from a 64-bit word held across symbols: reloaded only
        # when pos has moved more than 32 bits past the word's start)
        d = pos - base
        if d > 32 or d < 0:
            base = pos - (pos & 7)
            word = _load_word(buf, base, nbits)
            d = pos - base
        bits = ((word << d) >> 32) & 0xFFFFFFFF
        e = lut[dslot, bits >> (32 - _LOOK)]
        s = np.int64(e & 0xFF)
        n = np.int64(e >> 8)
        if n == 0:
            s, n = _slow_symbol(bits, dslot, maxcode, valptr, huffval, maxlen)
        if s < 0:
            reason = ERR_DC_CODE
            if pos + maxlen[dslot] >= nbits:
                st = END
                break
            if not lenient:
                st = ERROR
                break
            pos += 1
            s = 0
            n = 0
        elif pos + n > nbits + 1:
            st = END
            reason = ERR_DC_CODE
            break
        if s == 0:
            pos += n
        else:
            if (checks & CHECK_DC_CATEGORY) and not lenient and s > 11:
                st = ERROR
                reason = ERR_DC_CATEGORY
                break
            diff = _extend((bits >> (32 - n - s)) & ((np.int64(1) << s) - 1), s)
            pos += n + s
            if (checks & CHECK_RANGE) and not lenient and abs(diff * qt[c, 0]) > 2048 + qt[c, 0]:
                st = END if pos > nbits else ERROR
                reason = ERR_RANGE
                break
            pred[c] += diff
        p = pred[c]
        coef[bi, 0] = _clamp16(p)
        dc[bi] = max(-2147483647, min(2147483647, p))
        # AC
        k = 1
        last = 0
        wide = 0
        while k < 64:
            d = pos - base
            if d > 32:
                base = pos - (pos & 7)
                word = _load_word(buf, base, nbits)
                d = pos - base
            bits = ((word << d) >> 32) & 0xFFFFFFFF
            fe = np.int64(fast[aslot, bits >> (32 - _LOOK)])
            if fe != 0:  # code and value within the lookahead: same rules as below, no EXTEND
                n = fe & 15
                s = (fe >> 4) & 15
                if pos + n > nbits + 1:
                    st = END
                    reason = ERR_AC_CODE
                    break
                k += (fe >> 8) & 15
                if k > 63:
                    if lenient:
                        pos += n + s
                    else:
                        st = END if pos + n > nbits else ERROR
                        reason = ERR_AC_OVERFLOW
                    break
                v = fe >> 16
                pos += n + s
                z = zz[k]
                if (checks & CHECK_RANGE) and not lenient and abs(v * qt[c, z]) > 1024 + (qt[c, z] >> 1):
                    st = END if pos > nbits else ERROR
                    reason = ERR_RANGE
                    break
                coef[bi, z] = v
                last = k
                wide |= z & 36
                k += 1
                continue
            e = lut[aslot, bits >> (32 - _LOOK)]
            sym = np.int64(e & 0xFF)
            n = np.int64(e >> 8)
            if n == 0:
                sym, n = _slow_symbol(bits, aslot, maxcode, valptr, huffval, maxlen)
            if sym < 0:
                reason = ERR_AC_CODE
                if pos + maxlen[aslot] >= nbits:
                    st = END
                elif not lenient:
                    st = ERROR
                else:
                    pos += 1
                break
            if pos + n > nbits + 1:
                st = END
                reason = ERR_AC_CODE
                break
            r = sym >> 4
            s = sym & 15
            if s == 0:
                pos += n
                if r == 15:
                    if (checks & CHECK_ZRL) and not lenient and k + 16 > 63:
                        st = END if pos > nbits else ERROR
                        reason = ERR_ZRL
                        break
                    k += 16
                elif r == 0:
                    break
                continue  # other s == 0 symbols are undefined; the paper's decoder ignores them
            k += r
            if k > 63:
                if lenient:
                    pos += n + s
                else:
                    st = END if pos + n > nbits else ERROR
                    reason = ERR_AC_OVERFLOW
                break
            if (checks & CHECK_AC_SIZE) and not lenient and s > 10:
                st = END if pos + n > nbits else ERROR
                reason = ERR_AC_SIZE
                break
            v = _extend((bits >> (32 - n - s)) & ((np.int64(1) << s) - 1), s)
            pos += n + s
            z = zz[k]
            if (checks & CHECK_RANGE) and not lenient and abs(v * qt[c, z]) > 1024 + (qt[c, z] >> 1):
                st = END if pos > nbits else ERROR
                reason = ERR_RANGE
                break
            coef[bi, z] = v
            last = k
            wide |= z & 36  # row or column >= 4
            k += 1
        if st != OK:
            break
        nzk[bi] = last | (128 if wide else 0)
    return st, pos, reason


_decode_mcu_inline = nb.njit(nogil=True, inline="always")(_decode_mcu.py_func)  # inlined only: no cache
"""``_decode_mcu`` inlined into the caller: the first attempt of every MCU (about 12 % of the scan time on a
2K photo is the call itself); retries and the other strategies call the shared copy (less to compile)."""


@nb.njit(cache=True, nogil=True)
def _fill_mcu(m, mcu_cols, blk, cmp, out, pred, fill_dc):
    """Fill MCU ``m``: all AC zero, DC = the component's predictor (``fill_dc``) or 0 (mid-grey)."""
    coef, nzk, dc = out
    for b in range(blk.shape[0]):
        bi = _block_index(m, b, mcu_cols, blk, cmp)
        coef[bi, :] = 0
        nzk[bi] = 0
        v = pred[blk[b, 0]] if fill_dc else np.int64(0)
        coef[bi, 0] = _clamp16(v)
        dc[bi] = max(-2147483647, min(2147483647, v))


@nb.njit(cache=True, nogil=True)
def _clear_mcu(m, mcu_cols, blk, cmp, out):
    coef, nzk, _ = out
    for b in range(blk.shape[0]):
        bi = _block_index(m, b, mcu_cols, blk, cmp)
        coef[bi, :] = 0
        nzk[bi] = 0


@nb.njit(cache=True, nogil=True)
def _event(events, ne, kind, m, bitpos, a, b):
    if ne < events.shape[0]:
        events[ne, 0] = kind
        events[ne, 1] = m
        events[ne, 2] = bitpos
        events[ne, 3] = a
        events[ne, 4] = b
    return ne + 1


@nb.njit(cache=True, nogil=True)
def _clean_run(m, m1, pos, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, count):
    """True if ``count`` MCUs from ``m`` (capped at the interval end ``m1``) decode without error at ``pos``.

    Works on a scratch copy of the predictors; the decoded blocks are cleared afterwards. Running into the
    end of the segment counts as clean.
    """
    p = pred.copy()
    ok = True
    last = min(m + count, m1)
    for mm in range(m, last):
        st, pos, _ = _decode_mcu(mm, pos, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, p, checks, False)
        if st != OK:
            ok = st == END
            last = mm + 1
            break
    for mm in range(m, last):
        _clear_mcu(mm, mcu_cols, blk, cmp, out)
    return ok


@nb.njit(cache=True, nogil=True)
def _aligned_resume(
    m, m1, p0, perr, nbits, buf, src_off, aligned, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks
):
    """Cipher-aware resume point for MCU ``m`` whose decode at bit ``p0`` failed at bit ``perr``.

    ``aligned`` = (block bytes, boundaries past the error, MCUs to confirm, bit window). Garbage arrives as
    whole blocks aligned to the FILE start. Candidates: the first bit after each block boundary from the
    one after ``p0`` up to ``aligned[1]`` boundaries past the error; at each, ``aligned[3]`` bit offsets are
    tried; the first position from which ``aligned[2]`` MCUs decode cleanly wins (earliest first).
    Returns (bit position, boundaries jumped), or (-1, 0) when none qualifies.
    """
    block_bytes, max_blocks, confirm, window = aligned
    nbytes = src_off.shape[0]
    if nbytes == 0:
        return -1, 0
    b0 = src_off[min(p0 >> 3, nbytes - 1)] // block_bytes + 1
    be = src_off[min(perr >> 3, nbytes - 1)] // block_bytes + max_blocks
    j = min(p0 >> 3, nbytes - 1)
    for bnd in range(b0, be + 1):
        target = bnd * block_bytes
        while j < nbytes and src_off[j] < target:  # first unstuffed byte at/after the boundary
            j += 1
        if j >= nbytes:
            break
        start = j * 8
        for off in range(window):
            q = start + off
            if q <= p0:
                continue
            if q >= nbits:
                break
            if _clean_run(m, m1, q, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, confirm):
                return q, bnd - b0 + 1
    return -1, 0


@nb.njit(cache=True, nogil=True)
def _resync_to_restart(j, rst_pos, rst_num, mi, events, ne, m0):
    """Find the data of restart interval ``j`` >= 1 (libjpeg's jpeg_resync_to_restart policy, T.81 F.1.4.4
    numbering modulo 8). Returns (start byte or -1 if the interval has no data, next marker index, ne)."""
    desired = (j - 1) & 7
    while mi < rst_pos.shape[0]:
        found = rst_num[mi]
        d = (found - desired) & 7
        if d == 0:
            ne = _event(events, ne, EV_RESTART, m0, rst_pos[mi] * 8, found, 0)
            return rst_pos[mi], mi + 1, ne
        if d == 1 or d == 2:  # a later interval's marker: ours is missing; keep it for later
            ne = _event(events, ne, EV_RESTART_RESYNC, m0, rst_pos[mi] * 8, desired, found * 8 + 1)
            return np.int64(-1), mi, ne
        if d >= 6:  # an earlier interval's marker: stale, skip it
            ne = _event(events, ne, EV_RESTART_RESYNC, m0, rst_pos[mi] * 8, desired, found * 8 + 0)
            mi += 1
            continue
        ne = _event(events, ne, EV_RESTART_RESYNC, m0, rst_pos[mi] * 8, desired, found * 8 + 2)
        return rst_pos[mi], mi + 1, ne
    return np.int64(-1), mi, ne


@nb.njit(cache=True, nogil=True)
def decode_scan(
    buf,
    nbytes,
    rst_pos,
    rst_num,
    stop_pos,
    src_off,
    mcu_cols,
    mcu_rows,
    restart_interval,
    blk,
    cmp,
    tabs,
    qt,
    zz,
    strategy,
    checks,
    max_retry_bits,
    work_budget,
    fill_dc,
    eof_grey,
    aligned,
    out,
    status,
    bitpos,
    skipped,
    events,
):
    """Decode the whole scan into the preallocated outputs; returns (the number of events (it may exceed the
    rows of ``events``: the extra ones were dropped), the bit just after the last MCU decoded from data).

    ``buf``: unstuffed scan + zero padding, ``nbytes`` data bytes. ``rst_pos``/``rst_num``: byte offsets and
    numbers of the RST markers used as resync points (empty without DRI). ``stop_pos``: byte offsets of
    other markers, which end a segment's data under STRICT. ``src_off``: file offset of each byte of ``buf``
    (ALIGNED only). ``blk`` int64 (blocks per MCU, 3) = (component, dy, dx) in scan order; ``cmp`` int64
    (components, 6) = (h, v, first block, block columns, DC slot, AC slot); ``tabs`` = huffman.PackedTables
    fields; ``qt`` int64 (components, 64) natural order; ``zz`` zigzag -> natural index.
    ``out`` = (coef int16 (nblocks, 64) natural order, nzk uint8 (nblocks,) last nonzero zigzag index
    plus 128 when a coefficient lies outside the top-left 4x4, dc int32 (nblocks,)); ``status`` uint8,
    ``bitpos`` int64, ``skipped`` int32 per MCU in raster order. ``fill_dc``: filled MCUs keep the DC
    predictor (else DC 0, mid-grey); ``eof_grey``: except the MCUs filled because the file's data ran out
    (a truncated file), which are mid-grey as libjpeg leaves them.
    """
    buf = scan_words(buf)  # the MCU decoder reads 64-bit big-endian words (see _peek32)
    nmcu = mcu_cols * mcu_rows
    ri = restart_interval if restart_interval > 0 else nmcu
    nint = (nmcu + ri - 1) // ri
    ncomp = cmp.shape[0]
    pred = np.zeros(ncomp, dtype=np.int64)
    backup = np.zeros(ncomp, dtype=np.int64)
    nrst = rst_pos.shape[0]
    nstop = stop_pos.shape[0]
    mi = 0
    si = 0
    ne = 0
    end_bit = np.int64(0)
    work = np.int64(0)
    budget_hit = False
    for j in range(nint):
        m0 = j * ri
        m1 = min(m0 + ri, nmcu)
        pred[:] = 0
        start = np.int64(0)
        if j > 0:
            status[m0] |= MCU_RESTART
            start, mi, ne = _resync_to_restart(j, rst_pos, rst_num, mi, events, ne, m0)
            if start < 0:
                for m in range(m0, m1):
                    _fill_mcu(m, mcu_cols, blk, cmp, out, pred, fill_dc)
                    status[m] |= MCU_LOST
                    bitpos[m] = -1
                ne = _event(events, ne, EV_LOST_INTERVAL, m0, -1, j, m1 - m0)
                continue
        seg_end = rst_pos[mi] if mi < nrst else nbytes
        if strategy == STRICT:
            while si < nstop and stop_pos[si] < start:
                si += 1
            if si < nstop and stop_pos[si] < seg_end:
                seg_end = stop_pos[si]
        nbits = seg_end * 8
        pos = start * 8
        m = m0
        while m < m1:
            p0 = pos
            for ci in range(ncomp):  # (explicit loops: slice assignment costs a view per MCU)
                backup[ci] = pred[ci]
            st, npos, reason = _decode_mcu_inline(
                m, pos, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, budget_hit
            )
            first_reason = reason
            at = pos
            kind = EV_RETRY
            jumped = 0
            if st == ERROR and strategy == ALIGNED:
                work += npos - at + 1
                _clear_mcu(m, mcu_cols, blk, cmp, out)
                for ci in range(ncomp):
                    pred[ci] = backup[ci]
                q, jumped = _aligned_resume(
                    m,
                    m1,
                    p0,
                    npos,
                    nbits,
                    buf,
                    src_off,
                    aligned,
                    mcu_cols,
                    blk,
                    cmp,
                    tabs,
                    qt,
                    zz,
                    out,
                    pred,
                    checks,
                )
                work += aligned[1] * aligned[3] * 64
                if q >= 0:
                    at = q
                    kind = EV_ALIGNED
                    st, npos, reason = _decode_mcu(
                        m, at, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, False
                    )
                else:  # no aligned candidate qualifies: fall back to the bit slide
                    st, npos, reason = _decode_mcu(
                        m, at, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, False
                    )
            if st == ERROR and strategy != STRICT:
                # bit slide (the paper's resync): same MCU, one bit later, predictors restored
                kind = EV_RETRY
                while st == ERROR:
                    work += npos - at + 1
                    _clear_mcu(m, mcu_cols, blk, cmp, out)
                    for ci in range(ncomp):
                        pred[ci] = backup[ci]
                    at += 1
                    if not budget_hit and work > work_budget:
                        budget_hit = True
                        ne = _event(events, ne, EV_RETRY_BUDGET, m, at, work, 0)
                    capped = at - p0 > max_retry_bits
                    lenient = capped or budget_hit
                    st, npos, reason = _decode_mcu(
                        m, at, nbits, buf, mcu_cols, blk, cmp, tabs, qt, zz, out, pred, checks, lenient
                    )
                    if lenient and st == OK:
                        status[m] |= MCU_ERROR
                        kind = EV_RETRY_CAP
            if st == OK:
                bitpos[m] = at
                skipped[m] = min(at - p0, 2147483647)
                if at != p0:
                    status[m] |= MCU_RESYNC
                    ne = _event(
                        events, ne, kind, m, at, at - p0, jumped if kind == EV_ALIGNED else first_reason
                    )
                pos = npos
                end_bit = npos
                m += 1
                continue
            # END, or ERROR under STRICT: this MCU and the rest of the interval are filled
            _clear_mcu(m, mcu_cols, blk, cmp, out)
            for ci in range(ncomp):
                pred[ci] = backup[ci]
            dc_fill = fill_dc
            if st == END:
                ne = _event(events, ne, EV_EOF_FILL, m, at, m1 - m, j)
                dc_fill = fill_dc and not (eof_grey and seg_end == nbytes)  # the file's data ran out
            else:
                ne = _event(events, ne, EV_ERROR_FILL, m, at, m1 - m, reason)
            for mm in range(m, m1):
                _fill_mcu(mm, mcu_cols, blk, cmp, out, pred, dc_fill)
                status[mm] |= MCU_LOST
                bitpos[mm] = -1
            break
    return ne, end_bit
