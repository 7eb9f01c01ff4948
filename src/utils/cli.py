"""The one error path of the entry points: a project error ends the program with one line, anything else
raises with its traceback.

    with cli_errors("restore"):
        restore(cfg)

A :class:`src.errors.BitstreamRestoreError` (also when Hydra's ``instantiate`` wrapped it) prints
``src.<tool>: error: <message>`` on stderr and exits with status 1; every other exception (a bug) propagates
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import InstantiationException

from src.errors import BitstreamRestoreError


def project_error(exc: BaseException) -> BitstreamRestoreError | None:
    """``exc`` if it is a project error, the project error Hydra's ``instantiate`` wrapped, else None."""
    if isinstance(exc, BitstreamRestoreError):
        return exc
    cause = exc.__cause__
    while isinstance(exc, InstantiationException) and cause is not None:
        if isinstance(cause, BitstreamRestoreError):
            return cause
        exc, cause = cause, cause.__cause__
    return None


@contextmanager
def cli_errors(tool: str) -> Iterator[None]:
    """Report a project error raised inside the block as ``src.<tool>: error: ...`` and exit with status 1."""
    try:
        yield
    except Exception as exc:
        known = project_error(exc)
        if known is None:
            raise
        raise SystemExit(f"src.{tool}: error: {known}") from None
