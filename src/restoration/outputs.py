"""Where and how ``src.restore`` writes: output names, the output folder check, no-clobber PNG writes with the
input's metadata.

- :func:`output_bases`: one base name per input (``a.jpg`` -> ``a``; ``a.jpg`` and ``a.jpeg`` in one folder ->
  ``a_jpg`` and ``a_jpeg``), so two inputs never share an output.
- :func:`check_output_folder`: the output folder exists (created when missing) and takes a new file, before
  any work; else a one-line :class:`RestoreError`.
- :func:`refuse_existing`: a one-line :class:`RestoreError` naming an earlier output (unless ``overwrite``).
- :func:`jpeg_metadata` / :func:`write_output`: the input's EXIF block (orientation, time, GPS, ... as
  stored) and ICC profile carried into the output PNG (``eXIf`` / ``iCCP`` chunks), written atomically
  (a temporary file, then a rename that never replaces an existing file unless ``overwrite``).

Orientation: the pixels stay in the file's **stored** orientation (as the JPEG's scan holds them) and the
EXIF Orientation tag is kept, so a viewer that honours it shows the PNG turned like the JPEG.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from src.restoration.errors import RestoreError
from src.utils.images import write_png

#: the output kinds, in the order they are written: the restored image, the SCA image (when a model ran),
#: the side-by-side picture (``side_by_side=true``)
KINDS = ("restored", "sca", "compare")


class OutputExistsError(RestoreError):
    """An output file of an earlier run is in the way (``overwrite=true`` replaces it)."""


def output_bases(files: Sequence[Path], input_root: Path) -> dict[Path, Path]:
    """Per input file, its output base (a path relative to the output folder, without ``_<kind>.png``).

    ``input_root``: the folder given as input (sub-folders are kept) or the file itself. The base is the
    file's stem; inputs of one folder whose stems differ only by suffix or case (``a.jpg``, ``a.jpeg``,
    ``A.JPG``) get ``<stem>_<suffix>`` instead, and a number when even that is not unique ignoring case (as
    case-insensitive file systems compare names)."""
    rels = {f: (f.relative_to(input_root) if input_root.is_dir() else Path(f.name)) for f in files}
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for f, rel in rels.items():
        groups[(rel.parent.as_posix(), rel.stem.casefold())].append(f)
    bases: dict[Path, Path] = {}
    taken: set[str] = set()
    for f, rel in rels.items():
        name = rel.stem if len(groups[(rel.parent.as_posix(), rel.stem.casefold())]) == 1 else (
            f"{rel.stem}_{rel.suffix.lstrip('.')}"
        )  # fmt: skip
        base, n = rel.parent / name, 2
        while (base.as_posix().casefold()) in taken:
            base, n = rel.parent / f"{name}_{n}", n + 1
        taken.add(base.as_posix().casefold())
        bases[f] = base
    return bases


def output_path(out_dir: Path, base: Path, kind: str) -> Path:
    """The file of output ``kind`` (:data:`KINDS`) for ``base`` under ``out_dir``: ``<base>_<kind>.png``."""
    return out_dir / base.parent / f"{base.name}_{kind}.png"


def check_output_folder(out_dir: Path) -> None:
    """Make sure ``out_dir`` is a folder that takes new files (created with its parents when missing), by
    creating and removing a temporary file in it; else a one-line :class:`RestoreError`."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RestoreError(f"output folder {str(out_dir)!r} is a file: choose another output_dir")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or exc
        raise RestoreError(f"cannot create the output folder {str(out_dir)!r}: {reason}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RestoreError(f"output folder {str(out_dir)!r} is not writable: {exc.strerror or exc}") from None


def refuse_existing(paths: Iterable[Path], overwrite: bool, protected: Iterable[Path]) -> None:
    """One-line :class:`RestoreError` when an output would replace a ``protected`` file (an input; even with
    ``overwrite``), :class:`OutputExistsError` when one exists and not ``overwrite``."""
    paths = list(paths)
    keep = {p.resolve() for p in protected}
    for p in paths:
        if p.resolve() in keep:
            raise RestoreError(f"refusing to write {str(p)!r}: it is one of the inputs")
    if overwrite:
        return
    existing = [p for p in paths if os.path.lexists(p)]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(
            f"{str(existing[0])!r} exists{more}, from an earlier run: pass overwrite=true to replace it, or "
            "choose another output_dir"
        )


@dataclass
class Metadata:
    """What of a JPEG's header goes into its outputs: ``exif`` (the APP1 EXIF block as stored, TIFF bytes
    with the ``Exif\\0\\0`` prefix), ``icc_profile`` (the APP2 chunks joined), ``sha256`` of the input bytes,
    ``note`` (why something could not be read, else None), ``xmp`` (the APP1 XMP packet, UTF-8 text) and
    ``dpi`` (the resolution the header declares, (x, y) dots per inch)."""

    exif: bytes | None
    icc_profile: bytes | None
    sha256: str
    note: str | None = None
    xmp: str | None = None
    dpi: tuple[float, float] | None = None

    def describe(self) -> str:
        """One report line: what is carried into the PNG."""
        parts = [
            f"EXIF {len(self.exif)} B" if self.exif else "no EXIF",
            f"ICC profile {len(self.icc_profile)} B" if self.icc_profile else "no ICC profile",
        ]
        if self.xmp:
            parts.append(f"XMP {len(self.xmp.encode())} B")
        if self.dpi:
            parts.append(f"{self.dpi[0]:g}x{self.dpi[1]:g} dpi")
        return "metadata: " + ", ".join(parts) + (f" ({self.note})" if self.note else "") + " -> PNG"


def jpeg_metadata(data: bytes) -> Metadata:
    """The EXIF block and ICC profile of JPEG bytes (Pillow reads the header segments only; a header it
    cannot parse gives none of them and a ``note``)."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            info = dict(im.info)
    except Exception as exc:  # a damaged header: the pixels may still be restorable, the metadata is not
        return Metadata(None, None, digest, f"header not readable by Pillow: {type(exc).__name__}")
    exif = info.get("exif") or None
    if exif is not None and not exif.startswith(b"Exif\x00\x00"):
        exif = b"Exif\x00\x00" + exif
    xmp = info.get("xmp") or None
    if isinstance(xmp, bytes):
        try:
            xmp = xmp.decode("utf-8")
        except UnicodeDecodeError:  # XMP is UTF-8 by definition; a damaged packet is not carried
            xmp = None
    dpi = info.get("dpi")
    dpi = (float(dpi[0]), float(dpi[1])) if dpi and len(dpi) == 2 and min(dpi) > 0 else None
    icc = info.get("icc_profile") or None
    space = icc[16:20] if icc and len(icc) >= 20 else b""
    note = None
    if icc is not None and space != b"RGB ":  # the PNGs are RGB: a grey / CMYK profile misdescribes them
        name = space.decode("ascii", "replace").strip() or "unreadable"
        icc, note = None, f"ICC profile for {name!r} data not carried: the PNG is RGB"
    return Metadata(exif, icc, digest, note, xmp, dpi)


def write_output(
    path: Path,
    rgb: np.ndarray,
    metadata: Metadata | None,
    source: str,
    overwrite: bool,
    compress_level: int = 1,
) -> Path:
    """Write uint8 (H, W, 3) ``rgb`` as the PNG ``path``: atomically, never over an existing file unless
    ``overwrite`` (:class:`OutputExistsError`), with ``metadata``'s EXIF and ICC profile and an ``iTXt``
    ``Source`` chunk naming the input file (``source``) and its SHA-256. ``compress_level``: zlib 0..9 (1:
    about 5x faster than 6 on a 2048x1024 photo, for 17 % more bytes)."""
    extra: dict = {}
    if metadata is not None:
        text = {"Source": f"{source} (sha256 {metadata.sha256})", "Software": "bitstream-restore"}
        if metadata.xmp:
            text["XML:com.adobe.xmp"] = metadata.xmp  # where PNG keeps XMP
        extra = {"exif": metadata.exif, "icc_profile": metadata.icc_profile, "text": text}
        extra["dpi"] = metadata.dpi
    try:
        return write_png(path, rgb, compress_level, overwrite=overwrite, **extra)
    except FileExistsError:
        raise OutputExistsError(
            f"{str(path)!r} appeared while restoring: pass overwrite=true to replace it"
        ) from None
