"""The project's exception base: every error raised on bad input or settings derives from it.

Each package has one family under it (``src.corruption.CorruptionError``, ``src.jpeg.JPEGError``,
``src.sca.SCAError``, ``src.data.DataError``, ``src.restoration.RestoreError``, ``src.utils.ConfigError``,
...). None of them is a ``ValueError``: ``except ValueError`` never swallows one, and ``except
BitstreamRestoreError`` never swallows a bug. The entry points report these in one line
(:func:`src.utils.cli.cli_errors`) and let every other exception raise with its traceback.
"""

from __future__ import annotations


class BitstreamRestoreError(Exception):
    """Base of the project's errors: a message that says what was found and what is allowed."""
