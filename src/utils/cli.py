"""The one error path of the entry points: a project error ends the program with one line, anything else
raises with its traceback; and :func:`quote_path_overrides`, which lets file names reach Hydra unharmed.

    with cli_errors("restore"):
        restore(cfg)

A :class:`src.errors.BitstreamRestoreError` (also when Hydra's ``instantiate`` wrapped it) prints
``src.<tool>: error: <message>`` on stderr and exits with status 1; every other exception (a bug) propagates
unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
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


#: values that keep their Hydra meaning when given unquoted (``ckpt_path=null``; an empty value)
HYDRA_KEYWORDS = ("null", "")


def hydra_quote(value: str) -> str:
    """``value`` as a Hydra double-quoted string that parses back to exactly ``value``: a backslash run
    before a quote, before ``${`` or at the end is doubled, quotes are escaped, and ``${`` is escaped (a file
    name is never an interpolation)."""
    value = re.sub(r"(\\+)(?=\"|\$\{|$)", lambda m: m.group(1) * 2, value)
    value = value.replace('"', '\\"').replace("${", "\\${")
    return f'"{value}"'


def quote_path_overrides(argv: Sequence[str], keys: Sequence[str]) -> list[str]:
    """``argv`` with the values of the file-name options ``keys`` (``input=...``, also ``+input=``,
    ``++input=``) quoted for Hydra (:func:`hydra_quote`), so a name with spaces, parentheses, commas, ``=``,
    quotes, ``#``, ``$`` or non-ASCII letters arrives as it is. Left alone: values already quoted
    (``input="..."`` or ``input='...'``), ``null`` and empty values, and everything after ``--``."""
    out: list[str] = []
    pattern = re.compile(r"^(\+{0,2})(" + "|".join(re.escape(k) for k in keys) + r")=(.*)$", re.DOTALL)
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        m = pattern.match(arg)
        value = m.group(3) if m else ""
        quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
        if m is None or quoted or value.lower() in HYDRA_KEYWORDS:
            out.append(arg)
        else:
            out.append(f"{m.group(1)}{m.group(2)}={hydra_quote(value)}")
    return out
