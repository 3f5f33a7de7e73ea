"""Validation and quoting of identifiers and keys: the one helper for both.

Every SQL identifier that is not a constant of sqltrack's own goes through
:func:`quote_ident`; every key users log goes through :func:`validate_key`.
"""

from __future__ import annotations

import posixpath
import re

from sqltrack.errors import InvalidInputError

__all__ = ["MAX_KEY_LENGTH", "MAX_VALUE_LENGTH", "quote_ident", "quote_literal", "validate_key"]

MAX_KEY_LENGTH = 250
# Params and tags are TEXT; sqltrack keeps values whole up to this size and rejects larger
# ones (MLflow truncates silently at 6,000/8,000 characters; we never truncate).
MAX_VALUE_LENGTH = 1_000_000
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Keys already found valid: a training loop logs the same few keys at every step.
_VALID_KEYS: set[str] = set()


def validate_key(key: object, what: str = "key") -> str:
    """Check a metric, param or tag key against MLflow's rules; return it unchanged."""
    if type(key) is str and key in _VALID_KEYS:
        return key
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} {key!r} must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidInputError(f"{what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{what} {key[:40]!r}... has {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidInputError(
            f"{what} {key!r} has characters outside letters, digits and '_-. /:'; rename it"
        )
    if (
        key.startswith("/")
        or posixpath.normpath(key) != key
        or key == "."
        or ".." in key.split("/")
    ):
        raise InvalidInputError(
            f"{what} {key!r} must be a normalised relative path (no leading '/', no '..', "
            "no '//', no trailing '/')"
        )
    if type(key) is str:  # not a str subclass, whose hash or equality may differ
        if len(_VALID_KEYS) >= 100_000:
            _VALID_KEYS.clear()
        _VALID_KEYS.add(key)
    return key


def validate_value(value: object, what: str) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidInputError(
            f"{what} has {len(text):,} characters; the limit is {MAX_VALUE_LENGTH:,}. "
            "Log large text with log_text() or log_artifact() instead"
        )
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains a NUL character, which SQL text cannot hold")
    return text


def quote_ident(name: str, *, plain: bool = True, max_length: int = 255) -> str:
    """Quote one SQL identifier.

    With ``plain=True`` (table and schema names) only ASCII letters, digits and
    underscores are accepted, so the name reads the same in psql, the duckdb CLI and
    Spark's JDBC reader. With ``plain=False`` (column names taken from a user's
    DataFrame) any text without NUL characters is accepted and embedded quotes are
    doubled, so the name is stored exactly and never injected.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"identifier {name!r} must be a non-empty string")
    if plain and not _IDENT_RE.match(name):
        raise InvalidInputError(
            f"identifier {name!r} is not a plain SQL name (letters, digits, underscore, "
            "not starting with a digit)"
        )
    if "\x00" in name:
        raise InvalidInputError(f"identifier {name!r} contains a NUL character")
    if len(name.encode()) > max_length:
        raise InvalidInputError(
            f"identifier {name[:40]!r}... is {len(name.encode())} bytes; the limit is {max_length}"
        )
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a string literal for the few statements that cannot bind parameters
    (DuckDB's ATTACH of a file path)."""
    if "\x00" in text:
        raise InvalidInputError(f"{text!r} contains a NUL character")
    return "'" + text.replace("'", "''") + "'"
