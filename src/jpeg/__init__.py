"""Robust baseline-JPEG decoder: resynchronises after scan corruption and reports what it found.

    from src.jpeg import decode, extract_thumbnail
    d = decode(jpeg_bytes, strategy="paper")   # Decoded: unclipped planes, DC map, per-MCU status, events
    rgb = d.to_rgb()                           # uint8 (H, W, 3); d.to_rgb(clip=False): float32 unclipped

Modules (libjpeg-turbo's split): ``markers`` (header up to SOS, scan extent), ``thumbnail`` (EXIF IFD1
JPEG or uncompressed, JFXX; EXIF orientation), ``huffman`` (lookup tables), ``bitstream`` (unstuffing, marker
positions), ``entropy`` (numba MCU loop and resync strategies), ``idct`` (numba islow / float IDCT),
``color`` (numba upsampling + YCbCr -> RGB, and the fused IDCT + colour path ``decode(...).to_rgb()``
takes), ``decoder`` (``decode``, ``Decoded``), ``errors``. With the islow IDCT, ``Decoded.planes`` is a
``LazyPlanes``: the planes are transformed on first access, so a decode straight to RGB never makes the
full-size float32 planes (the same pixels either way).

Strategies (``conf/decoder/*.yaml``): ``paper`` retries an MCU one bit later after an error (the Two-ACIR
algorithm; same skipped bits and planes as the pure-Python port in ``src/jpeg/oracle.py``); ``strict``
fills the rest of the restart interval after the first error (libjpeg-like); ``aligned`` resumes just after
a 16-byte cipher block boundary near the error (measured: no better than ``paper``, see
``benchmarks/decoder.py``). RSTn markers of DRI files are resync points for all strategies (libjpeg's
``jpeg_resync_to_restart`` policy); without DRI every marker inside the scan is dropped as garbage.

Filled MCUs (no data left in their segment, or an interval lost): AC zero and the DC predictor of the
component carried on (``fill="dc"``, the default: no grey holes in the DC map SCA works on); ``fill="grey"``
writes zeros as the paper's decoder does. A truncated file (no EOI) is the exception: the MCUs after its
data ran out are mid-grey, as libjpeg (and so Pillow) leaves them (``fill_truncated="grey"``, the default;
a carried-on DC painted the whole lost part one flat colour, worse than grey); ``fill_truncated="dc"``
carries the DC there too.

Events (``Decoded.events``) are hints, not the whole story: Huffman codes resynchronise by themselves, so
at BER 1e-5 the paper's rules notice almost none of the ~17 hits per 2K image; the plausibility checks
(``check_*`` options) notice about 40 % of them.

JIT: all kernels are ``@njit(cache=True)`` (no ``parallel``; fork-safe). The first call in a fresh process
compiles them (about 19 s on a 2-core machine with an empty cache), later processes load the on-disk cache
(about 0.7 s). Call ``warmup()`` in the parent before forking DataLoader workers.
"""

from src.jpeg.color import planes_to_rgb
from src.jpeg.decoder import DEFAULT_OPTIONS, STRATEGIES, Decoded, Event, decode, warmup
from src.jpeg.entropy import MCU_ERROR, MCU_LOST, MCU_OK, MCU_RESTART, MCU_RESYNC
from src.jpeg.errors import CorruptHeader, ImageTooLarge, JPEGError, UnsupportedJPEG
from src.jpeg.markers import Component, JPEGHeader, parse_header
from src.jpeg.thumbnail import ExifInfo, decode_thumbnail, extract_thumbnail, header_exif

__all__ = [
    "DEFAULT_OPTIONS",
    "MCU_ERROR",
    "MCU_LOST",
    "MCU_OK",
    "MCU_RESTART",
    "MCU_RESYNC",
    "STRATEGIES",
    "Component",
    "CorruptHeader",
    "Decoded",
    "Event",
    "ExifInfo",
    "ImageTooLarge",
    "JPEGError",
    "JPEGHeader",
    "UnsupportedJPEG",
    "decode",
    "decode_thumbnail",
    "extract_thumbnail",
    "header_exif",
    "parse_header",
    "planes_to_rgb",
    "warmup",
]
