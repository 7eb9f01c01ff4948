"""Atomic file output: write to a temporary file in the same folder, fsync, then rename.

A reader never sees a half-written file, and an interrupted run leaves either the old file or
nothing (plus at most a stray ``.*.tmp`` that the next run overwrites). ``overwrite=False`` never replaces
an existing file, even one that appears while the data is being written (the rename is a hard link, which
fails when the name exists; on file systems without hard links: a check just before the rename).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created). Returns the path.

    ``overwrite=False``: raise :class:`FileExistsError` (nothing written) when ``path`` exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _link_new(tmp: str, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path`` unless that name exists (FileExistsError), then drop
    ``tmp``."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
    except OSError:  # no hard links here (FAT, exFAT, some network shares): check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Text variant of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding))
