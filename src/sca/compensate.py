"""The SCA entry point: ``compensate(decoded, thumbnail, method)``.

Methods: ``none`` (the robust decode, clipped), ``paper`` (the Two-ACIR SCA, see ``src.sca.paper``),
``dc`` (ours, self-only: segments, joint offsets, interpolation fill) and ``dc_thumb`` (ours with the
header thumbnail as an absolute anchor, for garbage detection and as the fill). Everything before the
final colour conversion works on the decoded YCbCr planes, unclipped, in whole MCUs (the DC domain);
clipping happens once at the end. ``dc`` / ``dc_thumb`` leave a decode without decoder evidence of damage
(``src.sca.evidence``) as it is: an intact file comes back bit-identical.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from src.sca.consistency import (
    find_offset_steps,
    refine_first_row,
    repair_final_shift,
    revisit_shifts,
    split_segments,
)
from src.sca.errors import SCAError
from src.sca.evidence import stream_damaged
from src.sca.fill import choose_fill, fill_holes
from src.sca.refit import RefitParams, extend_into_gaps, judge_garbage, place_segments, refit_offsets
from src.sca.restart import restart_layout, uses_restarts
from src.sca.segment import SegmentParams, comp_vector, segment_stream
from src.sca.thumb_check import RECHECK_NCC, as_thumbnail, check_against
from src.sca.thumbnail import decode_thumbnail, thumbnail_reference
from src.sca.tiles import dc_steps, mcu_features, relayout
from src.sca.types import Compensated, Segment

SCA_METHODS = ("none", "paper", "dc", "dc_thumb")
_SEG_FIELDS = {f.name for f in dataclasses.fields(SegmentParams)}
_REFIT_FIELDS = {f.name for f in dataclasses.fields(RefitParams)}
_OTHER_OPTIONS = {
    "upsample",
    "refit",
    "detect_garbage",
    "end_check",
    "offset_steps",
    "first_row",
    "revisit_shifts",
    "final_shift",
    "check_thumbnail",
    "choose_fill",
    "segment_thumb",
    "restarts",
    "segment_merge",
}


def _planes_to_rgb(planes: list[np.ndarray], decoded, upsample: str, clip: bool = False) -> np.ndarray:
    """RGB via the decoder's colour stage: float32 (H, W, 3) in 0..255 units, unclipped; with ``clip``
    uint8 by libjpeg's integer arithmetic (samples rounded and clamped first, like a real decoder)."""
    from src.jpeg import planes_to_rgb

    w, h = decoded.width, decoded.height
    return planes_to_rgb(planes, decoded.components, w, h, upsample=upsample, clip=clip)


def _split_options(options: dict) -> tuple[SegmentParams, RefitParams, dict]:
    unknown = set(options) - _SEG_FIELDS - _REFIT_FIELDS - _OTHER_OPTIONS
    if unknown:
        allowed = sorted(_SEG_FIELDS | _REFIT_FIELDS | _OTHER_OPTIONS)
        raise SCAError(f"unknown SCA option(s) {sorted(unknown)}; allowed: {allowed}")

    def conv(v):
        return tuple(v) if isinstance(v, list) else v

    seg = SegmentParams(**{k: conv(v) for k, v in options.items() if k in _SEG_FIELDS})
    ref = RefitParams(**{k: conv(v) for k, v in options.items() if k in _REFIT_FIELDS})
    return seg, ref, {k: v for k, v in options.items() if k in _OTHER_OPTIONS}


def _trust_image(trusted_mcu: np.ndarray, decoded) -> np.ndarray:
    """float32 (H, W) trust from a bool (mcu_rows, mcu_cols) grid."""
    mh = decoded.planes[0].shape[0] // decoded.mcu_rows
    mw = decoded.planes[0].shape[1] // decoded.mcu_cols
    big = np.repeat(np.repeat(trusted_mcu.astype(np.float32), mh, axis=0), mw, axis=1)
    return np.ascontiguousarray(big[: decoded.height, : decoded.width])


def _finish(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 [0, 1] (or 0..255 floats: rounded and clipped first)."""
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb), 0.0, 255.0)
    # one pass: cast to float32 and scale (the same float32 products as astype then *=)
    return np.multiply(rgb, np.float32(1.0 / 255.0), dtype=np.float32)


def _lazy(rgb8: np.ndarray) -> np.ndarray | None:
    """None for a uint8 render (``Compensated.rgb`` is then made from ``rgb8`` when asked for), else the
    float32 image in [0, 1] (:func:`_finish`)."""
    return None if rgb8.dtype == np.uint8 else _finish(rgb8)


#: the segmentation uses the thumbnail only where it has at least this many pixels per MCU along each
#: axis (see :func:`_segment_thumb`)
MIN_THUMB_PX_PER_MCU = 1.0


def thumb_px_per_mcu(thumbnail: np.ndarray, decoded) -> float:
    """Thumbnail pixels per MCU along the coarser axis: thumbnail (h, w[, 3]) against the decoded image's
    MCU grid (luma pixels per MCU over the image size). 160-px thumbnail: 1.25 at 2048 px wide in 4:2:0
    (16-px MCUs), 0.31 at 8192."""
    th, tw = np.asarray(thumbnail).shape[:2]
    mh = decoded.planes[0].shape[0] / decoded.mcu_rows
    mw = decoded.planes[0].shape[1] / decoded.mcu_cols
    return float(min(tw * mw / decoded.width, th * mh / decoded.height))


def _segment_thumb(thumb, thumbnail, decoded, choice="auto"):
    """The thumbnail reference for the segmentation (``thumb``), or None: self-only segmentation.

    The segmentation tests shift hypotheses a few MCUs apart MCU by MCU, and takes offset observations
    from each MCU's block means against the thumbnail's. A thumbnail pixel spanning several MCUs (a
    160-px thumbnail of an 8K frame: ~3 MCUs a pixel) is one interpolated sample for all of them: it
    cannot tell neighbouring shifts apart, and where the image has detail under a thumbnail pixel every
    MCU carries a bias the residual's noise model (the thumbnail's own local variation, which the
    interpolation makes smaller the larger the image) does not admit: trusted as at 2K it breaks correct
    segments (33 MP bench photos: 10-12 dB below self-only). Where the image is smooth at that scale it
    still helps, so below :data:`MIN_THUMB_PX_PER_MCU` :func:`compensate` runs both and keeps the one
    closer to the thumbnail at the thumbnail's own scale (``choice`` True / False then forces one)."""
    if thumb is None or choice is False:
        return None
    if choice is True or thumb_px_per_mcu(thumbnail, decoded) >= MIN_THUMB_PX_PER_MCU:
        return thumb
    return None


def _thumb_scale_error(result, thumbnail: np.ndarray) -> float:
    """Mean |luma| difference (0..255 units) between a result, box-downscaled to the thumbnail's size,
    and the thumbnail (uint8 (h, w, 3) RGB): where the thumbnail is a reliable reference."""
    th, tw = thumbnail.shape[:2]
    img = result.rgb8 if result.rgb8 is not None else np.clip(np.rint(result.rgb * 255.0), 0, 255)
    small = np.asarray(
        Image.fromarray(np.asarray(img, np.uint8)).resize((tw, th), Image.Resampling.BOX), np.float64
    )
    w = np.array([0.299, 0.587, 0.114])
    return float(np.mean(np.abs(small @ w - np.asarray(thumbnail, np.float64) @ w)))


def compensate(
    decoded, thumbnail: np.ndarray | None = None, method: str = "dc_thumb", **options
) -> Compensated:
    """Undo colour casts and block shifts of a robust decode.

    decoded: ``src.jpeg.Decoded`` (unclipped padded planes, MCU grid, status flags, quantisation tables).
    thumbnail: uint8 (h, w, 3) RGB of the whole image; for ``dc_thumb`` it defaults to ``decoded.thumbnail``
    (JPEG bytes from the header). Without any thumbnail ``dc_thumb`` runs as ``dc`` and says so in ``method``.
    options: tunables of :class:`SegmentParams` / :class:`RefitParams`, ``upsample`` ("fancy" or "nearest"),
    ``refit``, ``detect_garbage`` and ``end_check`` (bools, default True: see ``_segment_consistent``)
    for ablations; ``final_shift`` (default True): a final shift that misses the data's end is repaired
    by moving a tail of segments (``src.sca.consistency.repair_final_shift``); ``check_thumbnail``
    (default True): ``dc_thumb`` first checks the thumbnail against a ``dc`` result and aligns it
    (``src.sca.thumb_check``), or refuses it and returns that ``dc`` result; an alignment other than
    the identity is judged on the results it and the thumbnail as stored give (``_judge_alignment``:
    the ``dc`` reference can be misplaced where the fit was decided). Training
    turns the check off (``data.check_thumbnail``: the simulator's thumbnail always fits).
    ``choose_fill`` (default: as ``check_thumbnail``): each garbage MCU takes the fill, thumbnail or
    interpolation, that predicts the trusted MCUs around it better (``src.sca.fill.choose_fill``): a
    camera thumbnail can fit the image as a whole and be off in places (a burst neighbour, a stale edit).
    ``restarts`` (default True): a scan with restart markers is compensated interval by interval
    (``src.sca.restart``); ``segment_merge`` (default True): there, with a thumbnail (it judges what is
    taken), the interval path's holes take the segment path's layout where it realigned an interval's own
    content (``restart.take_segment_layout``: one more SCA pass on damaged restart files). The thumbnail
    is expected in the image's stored orientation; one in the display orientation (or any of the 8 EXIF
    orientations) is detected and turned back.
    """
    if method not in SCA_METHODS:
        raise SCAError(f"unknown SCA method {method!r}; choose one of {SCA_METHODS}")
    seg_p, ref_p, other = _split_options(options)
    upsample = other.get("upsample", "fancy")
    planes = [np.asarray(p, np.float32) for p in decoded.planes]
    rows, cols = int(decoded.mcu_rows), int(decoded.mcu_cols)
    n = rows * cols
    status = np.asarray(decoded.mcu_status, np.uint8).reshape(-1)
    if method == "none":
        trusted = (status & 2) == 0
        rgb8 = _planes_to_rgb(planes, decoded, upsample, clip=True)
        return Compensated(
            _lazy(rgb8),
            _trust_image(trusted.reshape(rows, cols), decoded),
            [Segment(0, n, 0, tuple(0.0 for _ in planes))],
            [],
            "none",
            rgb8=rgb8 if rgb8.dtype == np.uint8 else None,
        )
    if method == "paper":
        from src.sca.paper import paper_sca

        return paper_sca(decoded, upsample=upsample)

    thumb = fit = None
    if method == "dc_thumb":
        if thumbnail is None:
            thumbnail = decode_thumbnail(getattr(decoded, "thumbnail", None))
        if thumbnail is not None:
            thumbnail = as_thumbnail(thumbnail)
    if not stream_damaged(decoded):
        # do no harm: without decoder evidence of damage the decode is the answer (see src.sca.evidence)
        out = compensate(decoded, None, "none", upsample=upsample)
        out.method = "dc" if method == "dc_thumb" and thumbnail is None else method
        out.mcu_source = np.arange(n, dtype=np.int64)
        out.mcu_offsets = np.zeros((n, len(planes)), np.float32)
        return out
    if method == "dc_thumb":
        # --- thumbnail check (src.sca.thumb_check): align it to a dc result, or refuse it for that result
        if thumbnail is not None and other.get("check_thumbnail", True):
            # the reference is a self-only dc result: checked on the result the thumbnail itself steers,
            # a wrong thumbnail can look right (its garbage judgement and fill agree with it by
            # construction: a camera file at 9 dB passed such a check), so that result is only a second
            # opinion below
            base = compensate(decoded, None, "dc", **options)
            # the passes below use the thumbnail unchecked, but it came from outside: the fill choice stays
            options = {**options, "choose_fill": other.get("choose_fill", True)}
            fit = check_against(thumbnail, base, decoded)
            if not fit.ok and "does not match" in fit.reason:
                # the mismatch may be the dc reference's (segments misplaced): the thumbnail as stored is
                # judged once more on the result it gives, where it must fit, checked, as stored
                stored = compensate(decoded, thumbnail, method, **{**options, "check_thumbnail": False})
                on_stored = check_against(thumbnail, stored, decoded)
                if on_stored.identity and on_stored.reason.startswith("thumbnail fits as stored"):
                    on_stored.reason += f"; {fit.ncc:.2f} on the dc result, refused there"
                    return _no_worse_than_dc(stored, base, thumbnail, on_stored)
            if not fit.ok:
                return dataclasses.replace(base, thumbnail_fit=fit)
            if not fit.identity:
                done = _judge_alignment(decoded, thumbnail, fit, method, options)
                if isinstance(done, Compensated):
                    return _no_worse_than_dc(done, base, done.thumbnail_fit.thumbnail, done.thumbnail_fit)
                fit = done
            steered = compensate(decoded, fit.thumbnail, method, **{**options, "check_thumbnail": False})
            return _no_worse_than_dc(steered, base, fit.thumbnail, fit)
        # --- end of the thumbnail check
        choice = other.get("segment_thumb", "auto")
        if (
            thumbnail is not None
            and choice == "auto"
            and thumb_px_per_mcu(thumbnail, decoded) < MIN_THUMB_PX_PER_MCU
        ):
            # a thumbnail coarser than the MCU: segmentation self-only or with it, judged at its scale
            subs = [{**options, "check_thumbnail": False, "segment_thumb": v} for v in (False, True)]
            cands = [compensate(decoded, thumbnail, method, **sub) for sub in subs]
            best = min(cands, key=lambda r: _thumb_scale_error(r, thumbnail))
            return dataclasses.replace(best, thumbnail_fit=fit)
        if thumbnail is None:
            method = "dc"
        else:
            thumb = thumbnail_reference(
                np.asarray(thumbnail), planes, int(decoded.width), int(decoded.height), rows, cols
            )
    ncomp = len(planes)
    steps = dc_steps(decoded, ncomp)
    feats = mcu_features(planes, rows, cols, getattr(decoded, "dc", None), steps)
    # --- restart intervals (src.sca.restart): each interval is its own segment, damaged ends filled
    if other.get("restarts", True) and uses_restarts(decoded):
        seg_layout = None
        if other.get("segment_merge", True) and thumb is not None:
            # the segment path on the same decode, taken per interval where it realigned the content
            alt = compensate(
                decoded, thumbnail, method, **{**options, "restarts": False, "check_thumbnail": False}
            )
            seg_layout = (alt.mcu_source, alt.mcu_offsets)
        src, off_at, hole = restart_layout(decoded, feats, thumb, ref_p, seg_layout)
        rgb8 = render_uint8(
            decoded, feats, src, off_at, hole, thumb, upsample, ref_p.fill_gain, ref_p.fill_clamp, True
        )
        whole = [Segment(0, n, 0, tuple(0.0 for _ in planes))]
        garbage = _garbage_runs(np.zeros((0, 2), np.int64), src, hole)
        trust = _trust_image(~hole.reshape(rows, cols), decoded)
        return Compensated(
            _lazy(rgb8), trust, whole, garbage, method, np.where(hole, -1, src), off_at, rgb8, fit
        )
    # --- end of restart intervals
    seg_thumb = _segment_thumb(thumb, thumbnail, decoded, other.get("segment_thumb", "auto"))
    if other.get("end_check", True):
        segs, offs, garb = _segment_consistent(feats, status, cols, steps, seg_thumb, seg_p)
    else:
        segs, offs, garb = segment_stream(feats, status, cols, steps, seg_thumb, seg_p)
    segs, offs, garb = _merge_detours(segs, offs, garb, steps, ref_p.max_detour)
    segs, offs, garb = _merge_similar(segs, offs, garb, steps, ref_p.merge_steps)
    segs, offs, garb = _drop_short(segs, offs, garb, ref_p.min_segment)
    src, seg_of = place_segments(segs, n)
    if other.get("refit", True) and len(segs):
        offs = refit_offsets(feats, segs, offs, src, seg_of, cols, steps, thumb, ref_p, status)
        if other.get("first_row", True):
            # a hit in the first MCU row, placed from the row below (src.sca.consistency)
            segs2, offs2, garb2 = refine_first_row(
                feats, segs, offs, garb, src, seg_of, cols, steps, *_cost_weights(ref_p, ncomp),
                seg_p.garbage_cost, seg_p.max_garbage,
            )  # fmt: skip
            if segs2 is not segs:
                segs, offs, garb = segs2, offs2, garb2
                src, seg_of = place_segments(segs, n)
                offs = refit_offsets(feats, segs, offs, src, seg_of, cols, steps, thumb, ref_p, status)
        target = _end_shift(status)
        if other.get("final_shift", True) and target is not None and int(segs[-1, 2]) != target:
            # the known final shift: a shift missed at one break and inherited by every later segment
            # is moved back as a whole tail (src.sca.consistency)
            segs, offs, changed = repair_final_shift(
                feats, segs, offs, n, cols, steps, *_cost_weights(ref_p, ncomp), target,
                lambda s: place_segments(s, n),
            )  # fmt: skip
            if changed:
                src, seg_of = place_segments(segs, n)
                offs = refit_offsets(feats, segs, offs, src, seg_of, cols, steps, thumb, ref_p, status)
        if other.get("revisit_shifts", True):
            # every shift change judged on the finished canvas, above and below (src.sca.consistency)
            segs, offs, changed = revisit_shifts(
                feats,
                segs,
                offs,
                n,
                cols,
                steps,
                *_cost_weights(ref_p, ncomp),
                lambda s: place_segments(s, n),
            )
            if changed:
                src, seg_of = place_segments(segs, n)
                offs = refit_offsets(feats, segs, offs, src, seg_of, cols, steps, thumb, ref_p, status)
        for _ in range(2 if other.get("offset_steps", True) else 0):
            # hidden offset-only changes, seen on the corrected canvas (src.sca.consistency)
            splits = find_offset_steps(feats, segs, offs, src, seg_of, cols, steps)
            if not splits:
                break
            segs, offs = split_segments(segs, offs, splits)
            src, seg_of = place_segments(segs, n)
            offs = refit_offsets(feats, segs, offs, src, seg_of, cols, steps, thumb, ref_p, status)
    near = _near_breaks(garb, segs, src, n, ref_p)
    extend = ref_p.max_extend if ref_p.max_extend is not None else (8 if thumb is not None else 0)
    if other.get("detect_garbage", True) and extend > 0 and len(segs):
        near |= extend_into_gaps(src, seg_of, segs, garb, status, extend)
    off_at = np.zeros((n, ncomp), np.float32)
    ok = seg_of >= 0
    off_at[ok] = offs[seg_of[ok]]
    if other.get("detect_garbage", True):
        hole = judge_garbage(feats, src, off_at, cols, thumb, ref_p, near)
    else:
        hole = src < 0
    choose = bool(other.get("choose_fill", other.get("check_thumbnail", True)))
    rgb8 = render_uint8(
        decoded, feats, src, off_at, hole, thumb, upsample, ref_p.fill_gain, ref_p.fill_clamp, choose
    )
    rgb = _lazy(rgb8)
    segments = [
        Segment(int(a), int(b), int(s), tuple(float(v) for v in o))
        for (a, b, s), o in zip(segs, offs, strict=True)
    ]
    garbage = _garbage_runs(garb, src, hole)
    source = np.where(hole, -1, src)
    trust = _trust_image(~hole.reshape(rows, cols), decoded)
    return Compensated(
        rgb, trust, segments, garbage, method, source, off_at, rgb8 if rgb8.dtype == np.uint8 else None, fit
    )


def _no_worse_than_dc(result, base, thumbnail: np.ndarray, fit):
    """``result`` (``dc_thumb`` steered by a checked ``thumbnail``), unless the self-only ``dc`` result
    ``base`` lies closer to that thumbnail at the thumbnail's own scale (:func:`_thumb_scale_error`).

    A thumbnail that fits the image can still steer a segment wrong (a misplaced band, an offset taken
    from a thumbnail region that is off locally). The comparison leans towards ``result``: its fill and
    its garbage judgement come from the thumbnail, so at that scale it is close to the thumbnail by
    construction; a ``base`` closer still means ``result`` moved content away from where the thumbnail
    shows it. The price: with an aligned thumbnail (letterboxed, rotated, a stale crop: resampled, part of
    it bars) ``base`` wins a little too often (``benchmarks.real_files``' mismatched thumbnails: 0.5-0.6 dB
    less in the mean, never below ``dc``), against +20 dB on a scanner file a fitting thumbnail steered
    wrong. Returns a :class:`Compensated` with ``thumbnail_fit`` set (``method`` "dc" when ``base``
    is kept, its reason saying so)."""
    e_res, e_base = _thumb_scale_error(result, thumbnail), _thumb_scale_error(base, thumbnail)
    if e_base < e_res:
        why = (f"{fit.reason}; the dc result kept: closer to the thumbnail at its scale than the result "
               f"the thumbnail steers ({e_base:.2f} against {e_res:.2f} levels)")  # fmt: skip
        return dataclasses.replace(base, thumbnail_fit=dataclasses.replace(fit, reason=why))
    return dataclasses.replace(result, thumbnail_fit=fit)


def _judge_alignment(decoded, thumbnail: np.ndarray, fit, method: str, options: dict):
    """An alignment ``fit`` (not the identity) of ``thumbnail`` found on a ``dc`` result, judged on the
    results it gives: the ``dc`` reference can be wrong where the fit is decided (segments misplaced by
    SCA shift the content, and the search then fits that shift), and SCA with a thumbnail places segments
    by it, so each hypothesis is scored by refitting the thumbnail on the result it gave: the thumbnail as
    stored (the file's own, the simplest hypothesis) is kept when, on its own result, it fits as stored
    at least as well as it fits the aligned result (costs two SCA passes, only when a fit is not the
    identity). A fit
    below ``RECHECK_NCC`` is replaced by its refit when that is better (a poor reference). Returns the
    final :class:`Compensated` when it was computed here, else the fit to use."""
    nocheck = {**options, "check_thumbnail": False}
    aligned = compensate(decoded, fit.thumbnail, method, **nocheck)
    again = check_against(thumbnail, aligned, decoded)
    stored = compensate(decoded, thumbnail, method, **nocheck)
    on_stored = check_against(thumbnail, stored, decoded)
    if on_stored.ok and on_stored.identity and on_stored.ncc >= again.ncc:
        on_stored.reason += (
            f"; preferred over an alignment found on the dc result ({fit.ncc:.2f} there, the thumbnail "
            f"as stored {fit.as_stored:.2f}; {again.ncc:.2f} on the aligned result)"
        )
        return dataclasses.replace(stored, thumbnail_fit=on_stored)
    if fit.ncc < RECHECK_NCC and again.ok and again.ncc > fit.ncc:  # a poor reference: the refit is better
        return again
    return dataclasses.replace(aligned, thumbnail_fit=fit)


def _cost_weights(p: RefitParams, ncomp: int):
    """(comp weight, tau floor, tau k, truncation) of the continuity costs, per component."""
    return (
        comp_vector(p.comp_weight, ncomp), comp_vector(p.tau_floor, ncomp), comp_vector(p.tau_k, ncomp),
        float(p.truncate),
    )  # fmt: skip


def _end_shift(status: np.ndarray) -> int | None:
    """The stream's final shift as the decoder saw it: minus the MCUs filled for lack of data at the end
    (each shift decrease costs one MCU of data there), or None when none were (the shift can be >= 0)."""
    lost = (status & 2) != 0
    k = int(np.argmin(lost[::-1])) if not lost.all() else lost.size
    return -k if k else None


def _segment_consistent(feats, status, cols, steps, thumb, p: SegmentParams):
    """``segment_stream``, and when its final shift contradicts the end of the data (a shift change of a
    hit in flat content was not accepted, or a wrong one led the segmentation astray), again without
    the sign tests (``sign_frac``, ``n_strong``, ``shift_frac``): the run whose final shift is closer to
    the data's wins (ties: the first). Clean decodes end unshifted and are segmented once."""
    target = _end_shift(status)

    def miss(segs: np.ndarray) -> int:
        final = int(segs[-1, 2]) if len(segs) else 0
        return max(-final, 0) if target is None else abs(final - target)

    first = segment_stream(feats, status, cols, steps, thumb, p)
    if miss(first[0]) == 0:
        return first
    loose = dataclasses.replace(p, sign_frac=0.0, n_strong=0.0, shift_frac=0.0)
    second = segment_stream(feats, status, cols, steps, thumb, loose)
    return second if miss(second[0]) < miss(first[0]) else first


def _merge_detours(segs: np.ndarray, offs: np.ndarray, garb: np.ndarray, steps: np.ndarray, max_len: int):
    """Short segments (together under ``max_len`` MCUs) between two segments of the same shift and
    offsets (within two DC steps) are a false detour: two real hits never restore the same DC
    offsets. Merge them all, dropping the garbage runs in between."""
    segs, offs = segs.copy(), offs.copy()
    garb = garb.reshape(-1, 2)
    tol = 2.0 * steps[: offs.shape[1]] + 1e-3
    k = 1
    while k < len(segs) - 1:
        merged = False
        for r in range(k + 1, len(segs)):
            if segs[r - 1, 1] - segs[k, 0] >= max_len:
                break
            if segs[r, 2] == segs[k - 1, 2] and (np.abs(offs[r] - offs[k - 1]) <= tol).all():
                lo, hi = segs[k - 1, 1], segs[r, 0]
                garb = garb[(garb[:, 1] <= lo) | (garb[:, 0] >= hi)]
                segs[k - 1, 1] = segs[r, 1]
                segs = np.delete(segs, range(k, r + 1), axis=0)
                offs = np.delete(offs, range(k, r + 1), axis=0)
                merged = True
                break
        k = max(k - 1, 1) if merged else k + 1
    return segs, offs, garb


def _merge_similar(segs: np.ndarray, offs: np.ndarray, garb: np.ndarray, steps: np.ndarray, tol: float):
    """Neighbouring segments with the same shift, offsets within ``tol`` DC steps and at most one
    garbage MCU between them are one segment split by noise (offset-only searches in smooth
    gradients): merge them and let the refit estimate one offset."""
    if len(segs) < 2 or tol <= 0:
        return segs, offs, garb
    garb = garb.reshape(-1, 2)
    keep_s, keep_o = [segs[0].copy()], [offs[0].copy()]
    for seg, off in zip(segs[1:], offs[1:], strict=True):
        last, last_o = keep_s[-1], keep_o[-1]
        if (
            seg[2] == last[2]
            and seg[0] - last[1] <= 1
            and (np.abs(off - last_o) <= tol * steps[: offs.shape[1]] + 1e-3).all()
        ):
            garb = garb[(garb[:, 1] <= last[1]) | (garb[:, 0] >= seg[0])]
            last[1] = seg[1]
        else:
            keep_s.append(seg.copy())
            keep_o.append(off.copy())
    return np.asarray(keep_s), np.asarray(keep_o), garb


def _drop_short(segs: np.ndarray, offs: np.ndarray, garb: np.ndarray, min_len: int):
    """Segments shorter than ``min_len`` MCUs between two others become garbage: a true segment that
    short (two hits a few MCUs apart) is rare, a spurious one costs more than filling it."""
    if len(segs) < 3 or min_len <= 0:
        return segs, offs, garb
    length = segs[:, 1] - segs[:, 0]
    drop = np.zeros(len(segs), bool)
    drop[1:-1] = length[1:-1] < min_len
    if not drop.any():
        return segs, offs, garb
    runs = np.concatenate([garb.reshape(-1, 2), segs[drop, :2]])
    runs = runs[np.argsort(runs[:, 0])]
    merged: list[list[int]] = []
    for a, b in runs.tolist():
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return segs[~drop], offs[~drop], np.asarray(merged, np.int64).reshape(-1, 2)


def _near_breaks(garb: np.ndarray, segs: np.ndarray, src: np.ndarray, n: int, p: RefitParams) -> np.ndarray:
    """bool (N,) output positions whose decoded MCU lies within ``near_break`` MCUs of a garbage run or a
    segment start (other than the first)."""
    mark = np.zeros(n + 1, np.int64)
    k = p.near_break
    edges = [(int(a), int(b)) for a, b in garb] + [(int(a), int(a)) for a in segs[1:, 0]]
    for a, b in edges:
        mark[max(a - k, 0)] += 1
        mark[min(b + k, n)] -= 1
    near_dec = np.cumsum(mark)[:n] > 0
    return (src >= 0) & near_dec[np.maximum(src, 0)]


def _garbage_runs(runs: np.ndarray, src: np.ndarray, hole: np.ndarray) -> list[tuple[int, int]]:
    """Decoded MCU ranges judged garbage: the segmentation's runs plus decoded MCUs rejected afterwards."""
    mark = np.zeros(src.size + 1, bool)
    for a, b in runs:
        mark[a:b] = True
    mark[src[hole & (src >= 0)]] = True
    mark[src[~hole & (src >= 0)]] = False  # MCUs given back to a segment and shown
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mark.astype(np.int8)])))
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def render_uint8(
    decoded,
    feats,
    src: np.ndarray,
    off_at: np.ndarray,
    hole: np.ndarray,
    thumb=None,
    upsample: str = "fancy",
    fill_gain: float = 0.5,
    fill_clamp: float = 16.0,
    choose: bool = False,
) -> np.ndarray:
    """Re-layout the decoded planes (output MCU j <- decoded MCU src[j] minus off_at[j]), fill the
    ``hole`` MCUs (thumbnail or interpolation) and convert by the decoder's clipping colour stage: uint8
    (H, W, 3) RGB (``_finish`` gives the float32 image in [0, 1]).

    feats: McuFeatures of the decoded planes (their block means steer the fill). choose: with a
    thumbnail, each hole takes the fill that fits the trusted MCUs around it (``src.sca.fill.choose_fill``)
    instead of the thumbnail everywhere.
    """
    rows, cols = int(decoded.mcu_rows), int(decoded.mcu_cols)
    planes = [np.asarray(p, np.float32) for p in decoded.planes]
    src = np.where(hole, -1, src)
    out = relayout(planes, src, off_at, rows, cols, fill=0.0)
    means = feats.means[np.maximum(src, 0)] - off_at[:, feats.m_comp]
    args = (means, feats.m_comp, rows, cols, thumb, fill_gain, fill_clamp)
    use_thumb = choose_fill(out, hole, *args)[0] if choose and thumb is not None else None
    out = fill_holes(out, hole, *args, thumb_tiles=use_thumb)
    return _planes_to_rgb(out, decoded, upsample, clip=True)
