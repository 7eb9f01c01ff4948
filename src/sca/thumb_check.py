"""Check a thumbnail against the image before SCA trusts it, and align it when it fits.

A header thumbnail (or one a user gives) is not always the image scaled down: cameras letterbox a 3:2
frame into a 4:3 thumbnail, keep the thumbnail of the frame before an in-camera crop, leave it in the
other orientation after a lossless rotation, or carry a stale one of another shot. SCA uses the thumbnail
as an absolute reference for block means, so a wrong one wrecks the result.

:func:`fit_thumbnail` estimates, on low-pass luma, the map from the image to the thumbnail: one of the 8
EXIF orientations (the dihedral transforms of the thumbnail), black or flat bars cropped off, then an
axis-aligned affine map (a scale and an offset per axis, so a stretched, cropped or shifted thumbnail is
covered) refined by Nelder-Mead on the weighted normalised cross-correlation (NCC) of band-passed luma,
over the pixels the caller trusts. It returns the thumbnail resampled to cover exactly the image in
stored orientation (the original array when the fit is the identity), or a refusal with a one-line
reason: too little of the image covered, or too low a correlation (a plain mismatch).

The NCC is gain- and offset-free (a thumbnail's own tone curve does not matter) and computed on a
band-pass (difference of Gaussians at 1 and 6 reference pixels of a grid of :data:`GRID_LONG_SIDE` px),
so slowly varying colour errors and the steps left by wrong DC offsets weigh little.

numpy + scipy; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize

from src.sca.errors import SCAError

#: long side (px) of the grid the fit runs on (coarse search) and of the refinement grid
GRID_LONG_SIDE = 64
REFINE_LONG_SIDE = 128
#: a thumbnail is used only when its band-passed luma correlates at least this well with the image's over
#: the trusted pixels (measured on the bundled photos: a fitting thumbnail scores 0.85-0.99; an unrelated
#: photo, after the search over orientations and maps, 0.1-0.45)
MIN_NCC = 0.6
#: ... and when it covers at least this share of the image (the rest would have no reference)
MIN_COVERAGE = 0.97
#: below this trusted share of the image, a thumbnail that does not fit is used as stored, unchecked (the
#: reference is too damaged to refuse it on; an alignment the search finds is still applied)
MIN_TRUSTED = 0.5
#: orientations scoring within this of the best are decided by preference (as stored, then the EXIF one)
TIE = 0.02
#: a fit (other than the identity) below this correlation is replaced by its refit on the result it gave
#: (SCA with the thumbnail), a better reference than the self-only result, when that scores better; every
#: such fit is also weighed against the thumbnail as stored on its own result (src.sca.compensate)
RECHECK_NCC = 0.9
#: a fit whose image edges land within this many thumbnail pixels of the thumbnail's uses it unresampled
IDENTITY_PX = 0.75
#: a stored-orientation start scoring this well on the coarse grid is refined alone (no other is tried)
SURE = 0.9
_BAND = (1.0, 6.0)  # DoG sigmas, reference-grid pixels


@dataclass
class ThumbFit:
    """The outcome of :func:`fit_thumbnail`.

    ok: the thumbnail fits (use ``thumbnail``). thumbnail: uint8 (h, w, 3) RGB covering exactly the image in
    stored orientation (None when refused). orientation: the EXIF orientation (1..8) whose display transform
    the given thumbnail was in (1: stored orientation). bars: (left, top, right, bottom) pixels cropped off
    the oriented thumbnail as flat bars. affine: (ax, ay, bx, by): image position x / W maps to oriented,
    cropped thumbnail position ``ax * x / W + bx`` (of its width; y alike). ncc: the fit's correlation;
    coverage: share of the image the thumbnail covers. reason: one line saying what was found (or why the
    thumbnail was refused). as_stored: the correlation of the thumbnail as stored on the same reference
    (the alternative to an alignment).
    """

    ok: bool
    thumbnail: np.ndarray | None
    orientation: int = 1
    bars: tuple[int, int, int, int] = (0, 0, 0, 0)
    affine: tuple[float, float, float, float] = (1.0, 1.0, 0.0, 0.0)
    ncc: float = 0.0
    coverage: float = 0.0
    reason: str = ""
    scores: dict[int, float] = field(default_factory=dict, repr=False)
    #: correlation of the thumbnail as stored (no orientation, bars or map) on the same reference
    as_stored: float = -1.0

    @property
    def identity(self) -> bool:
        """The thumbnail is used as given (stored orientation, no bars, full cover)."""
        return self.ok and self.orientation == 1 and self.bars == (0, 0, 0, 0) and self.affine == (1, 1, 0, 0)


# ----------------------------------------------------------------------------------------- orientation
def from_display(img: np.ndarray, orientation: int) -> np.ndarray:
    """The stored-orientation image of ``img`` given in the display orientation of EXIF ``orientation``
    (1..8): the inverse of the transform a viewer applies. (h, w[, c]) arrays; a view where possible."""
    o = int(orientation)
    if o == 1:
        return img
    if o == 2:
        return img[:, ::-1]
    if o == 3:
        return img[::-1, ::-1]
    if o == 4:
        return img[::-1]
    if o == 5:  # transpose is its own inverse
        return np.swapaxes(img, 0, 1)
    if o == 6:  # displayed = stored rotated 90 degrees clockwise: undo by rotating counter-clockwise
        return np.rot90(img, 1)
    if o == 7:  # transverse
        return np.swapaxes(img[::-1, ::-1], 0, 1)
    if o == 8:
        return np.rot90(img, -1)
    raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}")


def to_display(img: np.ndarray, orientation: int) -> np.ndarray:
    """``img`` (stored orientation) as a viewer shows it for EXIF ``orientation`` (1..8)."""
    inverse = {6: 8, 8: 6}.get(int(orientation), int(orientation))
    return from_display(img, inverse)


# ----------------------------------------------------------------------------------------- features
def luma(rgb: np.ndarray) -> np.ndarray:
    """float32 (h, w) BT.601 luma (0..255) of uint8 or 0..255 float (h, w, 3) RGB; (h, w) passes through."""
    a = np.asarray(rgb, np.float32)
    if a.ndim == 2:
        return a
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def _area_resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Box (area) resize of a float (h, w) array to (height, width)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(a, np.float32), mode="F")
    return np.asarray(im.resize((width, height), Image.Resampling.BOX), np.float32)


def grid_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(gw, gh): the grid of ``long_side`` px on the long side with the image's aspect."""
    s = long_side / max(width, height)
    return max(round(width * s), 4), max(round(height * s), 4)


def reference_grid(
    image: np.ndarray, trust: np.ndarray | None, long_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """(luma, weight) of the image (uint8 (H, W, 3) RGB, or float (H, W) luma) on a grid of ``long_side``
    px: area means; weight 1 where every pixel is trusted (``trust`` float (H, W) in [0, 1], None: all),
    else 0. An 8-bit RGB image is shrunk before the luma is taken (Pillow, in C: a few ms at 2K)."""
    h, w = image.shape[:2]
    gw, gh = grid_size(w, h, long_side)
    if image.ndim == 3 and image.dtype == np.uint8:
        from PIL import Image

        small = Image.fromarray(np.ascontiguousarray(image)).resize((gw, gh), Image.Resampling.BOX)
        y = luma(np.asarray(small))
    else:
        y = _area_resize(luma(image), gw, gh)
    if trust is None:
        return y, np.ones_like(y)
    t = _area_resize(np.asarray(trust, np.float32), gw, gh)
    return y, (t > 0.99).astype(np.float32)


def _bandpass(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Masked difference of Gaussians (normalised convolution: masked-out pixels neither count nor leak)."""
    out = []
    for s in _BAND:
        num = ndimage.gaussian_filter(y * m, s, mode="nearest")
        den = ndimage.gaussian_filter(m, s, mode="nearest")
        out.append(num / np.maximum(den, 1e-6))
    return out[0] - out[1]


def _ncc(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    sw = float(w.sum())
    if sw < 16:
        return -1.0
    ma, mb = float((a * w).sum() / sw), float((b * w).sum() / sw)
    da, db = a - ma, b - mb
    va, vb = float((w * da * da).sum()), float((w * db * db).sum())
    if va <= 1e-9 or vb <= 1e-9:
        return -1.0
    return float((w * da * db).sum() / np.sqrt(va * vb))


def find_bars(y: np.ndarray, flat: float = 4.0, max_share: float = 0.3) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) widths of flat bars along the edges of a luma thumbnail (h, w): outer
    rows / columns whose spread (std) stays under ``flat`` levels and whose mean stays within ``flat`` of
    the outermost one (letterbox / pillarbox bars, black or not), up to ``max_share`` of the size. The
    affine fit that follows absorbs a line of JPEG ringing left at the bar's inner edge."""

    def run(lines: np.ndarray) -> int:
        ref = lines[0].mean()
        k = 0
        while k < int(max_share * len(lines)) and lines[k].std() < flat and abs(lines[k].mean() - ref) < flat:
            k += 1
        return k

    left, right = run(y.T), run(y.T[::-1])
    top, bottom = run(y), run(y[::-1])
    return left, top, right, bottom


# ----------------------------------------------------------------------------------------- the fit
class _Problem:
    """Score of an affine map of one oriented, cropped thumbnail against the reference grid.

    Both band-passes are computed once: the reference's on its grid (masked by the trusted pixels), the
    thumbnail's on its own pixels with the sigmas scaled by the start map's thumbnail pixels per grid
    pixel; a map is then scored by sampling the thumbnail's band-pass at the grid points (bilinear)."""

    def __init__(self, thumb_y: np.ndarray, ref: np.ndarray, weight: np.ndarray, start):
        """ref: the reference grid's band-pass (:func:`_bandpass` with ``weight``)."""
        self.weight = weight
        self.ref = ref
        gh, gw = ref.shape
        th, tw = thumb_y.shape
        kx, ky = max(abs(start[0]) * tw / gw, 1e-3), max(abs(start[1]) * th / gh, 1e-3)
        blur = [ndimage.gaussian_filter(thumb_y, (s * ky, s * kx), mode="nearest") for s in _BAND]
        self.thumb = (blur[0] - blur[1]).astype(np.float32)
        self.gx = (np.arange(gw) + 0.5) / gw
        self.gy = (np.arange(gh) + 0.5) / gh

    def score(self, p) -> tuple[float, float]:
        """(NCC over the covered trusted pixels, covered share of the image)."""
        ax, ay, bx, by = p
        if ax <= 0.05 or ay <= 0.05:
            return -1.0, 0.0
        th, tw = self.thumb.shape
        u = (ax * self.gx + bx) * tw - 0.5
        v = (ay * self.gy + by) * th - 0.5
        inside_x = ((u >= -0.5) & (u <= tw - 0.5)).astype(np.float32)
        inside_y = ((v >= -0.5) & (v <= th - 0.5)).astype(np.float32)
        inside = inside_y[:, None] * inside_x[None, :]
        cover = float(inside_x.mean() * inside_y.mean())
        m = inside * self.weight
        if m.sum() < 16:
            return -1.0, cover
        vals = _lerp(_lerp(self.thumb, v, 0), u, 1)  # bilinear: separable for an axis-aligned map
        return _ncc(self.ref, vals, m), cover

    def objective(self, p) -> float:
        ncc, cover = self.score(p)
        return -(ncc * min(cover / MIN_COVERAGE, 1.0))


def _lerp(a: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``a`` along ``axis`` at positions ``pos`` (pixel units, edges repeated):
    two gathers, no BLAS (whose threads cost more than these tiny products)."""
    n = a.shape[axis]
    p = np.clip(pos, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(p).astype(np.int64), max(n - 2, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    f = (p - i0).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = len(pos)
    f = f.reshape(shape)
    return np.take(a, i0, axis) * (1.0 - f) + np.take(a, i1, axis) * f


def _starts(image_aspect: float, thumb_aspect: float) -> list[tuple[float, float, float, float]]:
    """Initial maps: full cover (stretch), and the aspect-keeping fits (the thumbnail shows more of the
    scene, or is a centred crop of it)."""
    r = image_aspect / thumb_aspect  # > 1: the image is wider than the thumbnail
    starts = [(1.0, 1.0, 0.0, 0.0)]
    if abs(np.log(r)) > 0.02:
        if r > 1:  # thumbnail narrower: it shows the full width and more height, or a crop of the width
            starts += [(1.0, 1 / r, 0.0, (1 - 1 / r) / 2), (r, 1.0, (1 - r) / 2, 0.0)]
        else:
            starts += [(r, 1.0, (1 - r) / 2, 0.0), (1.0, 1 / r, 0.0, (1 - 1 / r) / 2)]
    return starts


def _refine(prob: _Problem, start) -> tuple[np.ndarray, float, float]:
    res = optimize.minimize(
        prob.objective,
        np.asarray(start, np.float64),
        method="Nelder-Mead",
        options={
            "initial_simplex": np.asarray(start) + np.vstack([np.zeros(4), 0.04 * np.eye(4)]),
            "xatol": 2e-3,
            "fatol": 1e-4,
            "maxiter": 200,
        },
    )
    ncc, cover = prob.score(res.x)
    return res.x, ncc, cover


def _resample(thumb: np.ndarray, p, width: int, height: int) -> np.ndarray:
    """The oriented, cropped thumbnail (uint8 (h, w, 3)) over exactly the image: bicubic, at the thumbnail's
    own resolution (aspect of the image; edges repeated where the map runs past the thumbnail)."""
    ax, ay, bx, by = p
    th, tw = thumb.shape[:2]
    out_w = max(round(abs(ax) * tw), 1)
    out_h = max(round(abs(ay) * th), 1)
    u = (ax * (np.arange(out_w) + 0.5) / out_w + bx) * tw - 0.5
    v = (ay * (np.arange(out_h) + 0.5) / out_h + by) * th - 0.5
    vv, uu = np.meshgrid(v, u, indexing="ij")
    chans = [
        ndimage.map_coordinates(thumb[..., c].astype(np.float32), [vv, uu], order=3, mode="nearest")
        for c in range(thumb.shape[2])
    ]
    return np.clip(np.rint(np.stack(chans, -1)), 0, 255).astype(np.uint8)


def fit_thumbnail(
    thumbnail: np.ndarray,
    image: np.ndarray,
    trust: np.ndarray | None = None,
    exif_orientation: int | None = None,
    min_ncc: float = MIN_NCC,
    min_coverage: float = MIN_COVERAGE,
) -> ThumbFit:
    """Check and align ``thumbnail`` (uint8 (h, w, 3) RGB) against the image.

    image: the image in stored orientation, uint8 (H, W, 3) RGB or float (H, W) luma (0..255; e.g. a
    self-only SCA result). trust: float (H, W) in [0, 1], the pixels to compare on (None: all).
    exif_orientation: the file's EXIF Orientation: on a tie, a thumbnail in that display orientation is
    preferred after the stored orientation. Never raises on a thumbnail of any size >= 2x2.
    """
    thumbnail = np.asarray(thumbnail)
    if thumbnail.ndim != 3 or thumbnail.shape[2] != 3 or min(thumbnail.shape[:2]) < 2:
        return ThumbFit(
            False, None, reason=f"thumbnail is not an (h, w, 3) RGB image (shape {thumbnail.shape})"
        )
    H, W = image.shape[:2]
    ref, weight = reference_grid(image, trust, GRID_LONG_SIDE)
    if weight.sum() < 16:
        return ThumbFit(
            False, None, reason="too little of the image is trusted to check the thumbnail against"
        )
    ref = _bandpass(ref, weight)
    prefer = [1] + ([int(exif_orientation)] if exif_orientation not in (None, 1) else [])
    order = prefer + [o for o in range(1, 9) if o not in prefer]
    as_given = (1.0, 1.0, 0.0, 0.0)
    ncc0, cover0 = _Problem(luma(thumbnail), ref, weight, as_given).score(as_given)
    candidates = [(ncc0, 1, (0, 0, 0, 0), as_given)]
    # the usual case, a thumbnail that fits as stored, needs no search over orientations and bars
    for o in order if ncc0 < SURE else ():
        oriented = np.ascontiguousarray(from_display(thumbnail, o))
        y = luma(oriented)
        for bars in {(0, 0, 0, 0), find_bars(y)}:
            l, t, r, b = bars
            crop = y[t : y.shape[0] - b, l : y.shape[1] - r]
            if min(crop.shape) < 4:
                continue
            for s in _starts(W / H, crop.shape[1] / crop.shape[0]):
                ncc, cover = _Problem(crop, ref, weight, s).score(s)
                candidates.append((ncc * min(cover / min_coverage, 1.0), o, bars, s))
    # refine the best start of each orientation among the leading ones
    candidates.sort(key=lambda c: -c[0])
    best_by_o: dict[int, tuple] = {}
    for c in candidates:
        best_by_o.setdefault(c[1], c)
    ranked = sorted(best_by_o.values(), key=lambda c: -c[0])
    stored = best_by_o.get(1)
    if stored is not None and stored[0] >= SURE:  # the usual case: it fits as stored, nothing else to try
        leading = [stored]
    else:
        leading = [c for c in ranked if c[0] >= ranked[0][0] - 0.15][:4]
    ref2, weight2 = reference_grid(image, trust, REFINE_LONG_SIDE)
    ref2 = _bandpass(ref2, weight2)
    results = []
    for _, o, bars, s in leading:
        oriented = np.ascontiguousarray(from_display(thumbnail, o))
        l, t, r, b = bars
        crop_rgb = oriented[t : oriented.shape[0] - b, l : oriented.shape[1] - r]
        p, _, _ = _refine(_Problem(luma(crop_rgb), ref, weight, s), s)
        # the finer grid settles the last digits of the map
        p, ncc, cover = _refine(_Problem(luma(crop_rgb), ref2, weight2, p), p)
        results.append((ncc, cover, o, bars, p, crop_rgb))
    scores = {o: float(ncc) for ncc, _, o, *_ in results}
    # the simplest hypothesis, the thumbnail as given, wins unless the search found a clearly better fit:
    # on a poor reference (much of the self-only result misplaced) the search fits its errors too
    ncc0, cover0 = _Problem(luma(thumbnail), ref2, weight2, as_given).score(as_given)
    given = (ncc0 + TIE, cover0, 1, (0, 0, 0, 0), np.asarray(as_given), thumbnail)
    results.append(given)
    covering = [r for r in results if r[1] >= min_coverage] or results  # those that cover the image first
    top = max(r[0] for r in covering)
    rank = {o: k for k, o in enumerate(order)}
    chosen = min((r for r in covering if r[0] >= top - TIE), key=lambda r: (r is not given, rank[r[2]]))
    if chosen is given:
        chosen = (ncc0, *given[1:])
    ncc, cover, o, bars, p, crop_rgb = chosen
    fit = ThumbFit(
        False, None, o, tuple(int(v) for v in bars), tuple(float(v) for v in p), ncc, cover, "", scores,
        float(ncc0) if cover0 >= min_coverage else -1.0,
    )  # fmt: skip
    what = _describe(fit, thumbnail.shape)
    trusted = float(weight.mean())
    if (ncc < min_ncc or cover < min_coverage) and trusted < MIN_TRUSTED:
        # too little of the image is left to tell a wrong thumbnail from a damaged reference: the
        # thumbnail (that of the file, as a rule) is given the benefit of the doubt, as stored
        return ThumbFit(
            True, thumbnail, ncc=float(ncc0), coverage=float(cover0), scores=scores,
            reason=f"thumbnail used as stored, unchecked: only {100 * trusted:.0f} % of the image is trusted "
            f"(below {100 * MIN_TRUSTED:.0f} %; correlation {ncc0:.2f})",
        )  # fmt: skip
    if ncc < min_ncc:
        fit.reason = (
            f"thumbnail refused: it does not match the image (best correlation {ncc:.2f} < {min_ncc}; "
            f"a stale or unrelated thumbnail); best fit {what}"
        )
        return fit
    if cover < min_coverage:
        fit.reason = f"thumbnail refused: it covers only {100 * cover:.0f} % of the image ({what})"
        return fit
    fit.ok = True
    th, tw = crop_rgb.shape[:2]
    ax, ay, bx, by = p  # the image's edges within IDENTITY_PX thumbnail pixels of the thumbnail's: as it is
    near = (
        max(abs(bx), abs(ax + bx - 1)) * tw <= IDENTITY_PX
        and max(abs(by), abs(ay + by - 1)) * th <= IDENTITY_PX
    )
    if o == 1 and bars == (0, 0, 0, 0) and near:
        fit.affine = (1.0, 1.0, 0.0, 0.0)
        fit.thumbnail = thumbnail
        fit.reason = f"thumbnail fits as stored (correlation {ncc:.2f})"
    else:
        fit.thumbnail = _resample(crop_rgb, p, W, H)
        fit.reason = f"thumbnail aligned: {what} (correlation {ncc:.2f})"
    return fit


def _describe(fit: ThumbFit, shape) -> str:
    parts = []
    if fit.orientation != 1:
        parts.append(f"given in the display orientation of EXIF Orientation={fit.orientation}")
    if any(fit.bars):
        parts.append(f"bars cropped (left, top, right, bottom) = {fit.bars}")
    ax, ay, bx, by = fit.affine
    parts.append(
        f"the image spans {100 * ax:.0f} % x {100 * ay:.0f} % of the thumbnail from ({100 * bx:.0f} %, "
        f"{100 * by:.0f} %)"
    )
    return f"{shape[1]}x{shape[0]} thumbnail, " + ", ".join(parts)


def as_thumbnail(thumbnail) -> np.ndarray:
    """``thumbnail`` as a uint8 (h, w, 3) RGB array; :class:`SCAError` for any other shape."""
    a = np.asarray(thumbnail)
    if a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 2:
        raise SCAError(f"thumbnail must be (h, w, 3) RGB, at least 2x2; got shape {a.shape}")
    return a if a.dtype == np.uint8 else np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _first_segment_trust(base, decoded) -> np.ndarray | None:
    """float32 (H, W): 1 on the trusted output MCUs shown from the first segment of ``base`` (decoded from
    the start of the scan, before any damage the segmentation found), else 0; None when there is none."""
    src, trust = base.mcu_source, base.trust
    if src is None or not base.segments or trust is None:
        return None
    first = base.segments[0]
    if first.start_mcu != 0 or first.shift_mcus != 0:
        return None
    rows, cols = int(decoded.mcu_rows), int(decoded.mcu_cols)
    grid = ((src >= 0) & (src < first.end_mcu)).reshape(rows, cols).astype(np.float32)
    big = np.repeat(np.repeat(grid, int(decoded.mcu_height), 0), int(decoded.mcu_width), 1)
    h, w = trust.shape
    return big[:h, :w] * (np.asarray(trust) >= 1.0)


def check_against(thumbnail: np.ndarray, base, decoded) -> ThumbFit:
    """:func:`fit_thumbnail` against a self-only SCA result ``base`` (``src.sca.Compensated``: its image's
    luma on its trusted pixels) of ``decoded`` (``src.jpeg.Decoded``: MCU grid, EXIF orientation). When
    that refuses the thumbnail as a mismatch, the thumbnail as stored is scored once more on the first
    segment alone (the start of the scan, before the first damage: the decoder's own pixels, which SCA's
    later segments may have misplaced): fitting there, it is used."""
    rgb = base.rgb8 if base.rgb8 is not None else luma(np.asarray(base.rgb, np.float32) * 255.0)
    fit = fit_thumbnail(thumbnail, rgb, base.trust, getattr(decoded, "orientation", None))
    if fit.ok or "does not match" not in fit.reason:
        return fit
    first = _first_segment_trust(base, decoded)
    if first is None or first.mean() >= 0.999 * float(np.mean(np.asarray(base.trust) >= 1.0)):
        return fit
    ref, weight = reference_grid(rgb, first, REFINE_LONG_SIDE)
    as_given = (1.0, 1.0, 0.0, 0.0)
    ncc, cover = _Problem(luma(thumbnail), _bandpass(ref, weight), weight, as_given).score(as_given)
    if ncc >= MIN_NCC and cover >= MIN_COVERAGE:
        share = 100 * float(first.mean())
        return ThumbFit(
            True, thumbnail, ncc=ncc, coverage=cover, scores=fit.scores,
            reason=f"thumbnail fits as stored on the undamaged start of the image ({share:.0f} % of it; "
            f"correlation {ncc:.2f}; {fit.ncc:.2f} on the whole self-compensated image)",
        )  # fmt: skip
    return fit
