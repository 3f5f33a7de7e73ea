"""Validation and quoting of identifiers and keys: the one helper for both.

Every SQL identifier that is not a constant of sqltrack's own goes through
:func:`quote_ident`; every key users log goes through :func:`validate_key`.
"""

from __future__ import annotations

import posixpath
import re

from sqltrack.errors import InvalidInputError

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_NAME_BYTES",
    "MAX_VALUE_LENGTH",
    "quote_ident",
    "quote_literal",
    "shown",
    "storable",
    "validate_key",
    "validate_name",
    "validate_text",
    "validate_value",
]

MAX_KEY_LENGTH = 250
# Params and tags are TEXT; sqltrack keeps values whole up to this size and rejects larger
# ones (MLflow truncates silently at 6,000/8,000 characters; we never truncate).
MAX_VALUE_LENGTH = 1_000_000
# Text the store indexes (experiment names): a PostgreSQL btree entry holds at most 2,704
# bytes ("index row size ... exceeds btree version 4 maximum 2704"), after compression that
# random text does not get. The same limit holds on DuckDB, so a name that one backend
# takes the other takes too.
MAX_NAME_BYTES = 2_000
# Full-string patterns (fullmatch): ``$`` would also match before a final newline.
_KEY_RE = re.compile(r"[A-Za-z0-9_\-. /:]+")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Keys already found valid: a training loop logs the same few keys at every step.
_VALID_KEYS: set[str] = set()


def validate_key(key: object, what: str = "key") -> str:
    """Check a metric, param or tag key against MLflow's rules; return it unchanged."""
    if type(key) is str and key in _VALID_KEYS:
        return key
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} {shown(key)} must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidInputError(f"{what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{what} {key[:40]!r}... has {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.fullmatch(key):
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


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters; never raises (an int
    of more than 4,300 digits has no repr, an object's ``__repr__`` may fail)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        digits = int(value.bit_length() * 0.30103) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits:,} digits"
    try:
        text = repr(value)
    except Exception:
        return f"<a {type(value).__name__} without a printable form>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_text(text: str, what: str) -> str:
    """Refuse text that no store can hold: NUL characters (PostgreSQL's TEXT cannot hold
    them) and lone surrogates (not UTF-8; both engines refuse them). Checked at the call,
    so that a journaled record is never refused later for its text."""
    if "\x00" in text:
        raise InvalidInputError(
            f"{what} contains a NUL character at position {text.index(chr(0))}, which SQL "
            "text cannot hold; remove it"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} contains a lone surrogate {text[exc.start]!r} at position {exc.start}, "
            "which is not UTF-8 text; decode bytes with errors='replace' or "
            "'backslashreplace' first"
        ) from None
    return text


def validate_value(value: object, what: str) -> str:
    """A param or tag value as the text that is stored (``str(value)``), checked."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception as exc:  # a huge int, or an object whose __str__ fails
            raise InvalidInputError(
                f"{what}: value {shown(value)} cannot be turned into text ({exc}); "
                "log a shorter value or its summary"
            ) from exc
        if not isinstance(text, str):
            raise InvalidInputError(f"{what}: str() of {shown(value)} did not return text")
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidInputError(
            f"{what} has {len(text):,} characters; the limit is {MAX_VALUE_LENGTH:,}. "
            "Log large text with log_text() or log_artifact() instead"
        )
    return validate_text(text, what)


def validate_name(name: object, what: str) -> str:
    """A name the store indexes (an experiment name): non-empty text, storable, and at
    most :data:`MAX_NAME_BYTES` bytes in UTF-8."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{what} {shown(name)} must be a non-empty string")
    validate_text(name, what)
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidInputError(
            f"{what} {name[:40]!r}... is {size:,} bytes in UTF-8; the limit is "
            f"{MAX_NAME_BYTES:,} bytes (names are indexed, and a PostgreSQL btree entry "
            "holds at most 2,704 bytes). Use a shorter name and put the detail in a tag"
        )
    return name


def storable(text: str) -> str:
    """Text gathered from the environment (user, host, script path), made storable:
    NUL and lone surrogates (undecodable bytes of a file name) become escapes."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
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
    if plain and not _IDENT_RE.fullmatch(name):
        raise InvalidInputError(
            f"identifier {name!r} is not a plain SQL name (letters, digits, underscore, "
            "not starting with a digit)"
        )
    validate_text(name, f"identifier {name[:40]!r}")
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
