"""The canonical encoding of records and the hashes of the chain (format v1).

Everything here is pure Python over the values a driver returns (``None``, ``bool``,
``int``, ``float``, ``str``, ``bytes``, aware ``datetime``), so a row read back from
DuckDB and the same row read back from PostgreSQL encode to the same bytes:

- a value is canonical JSON text: ``null``, ``true``/``false``, an integer in decimal,
  a JSON string (``ensure_ascii``: every code point escaped alike), a float as
  ``["d", float.hex(x)]`` (exact: ``-0x0.0p+0`` is not ``0x0.0p+0``; every NaN is
  ``"nan"``; ``"inf"``/``"-inf"``), a timestamp as ``["t", microseconds since the
  Unix epoch, UTC]`` and bytes as ``["b", hex]``;
- a row digest is ``sha256("sqltrack-row-v1" NUL table (NUL column "=" value)...)`` over
  the columns its ledger entry names, in that order (JSON text holds no raw NUL, so the
  encoding is unambiguous);
- a metrics entry (the points one delivery wrote for one run) is encoded by column, the
  points in their order (``metrics.ledger_entry`` = the entry's id + the point's position):
  each column is hashed on its own (keys as little-endian uint32 byte lengths followed by
  the UTF-8 bytes, values as little-endian IEEE-754 doubles with NaN made canonical, steps
  and timestamps as little-endian int64) and the digest is ``sha256("sqltrack-metrics-v2"
  NUL count NUL column hashes...)``; (format 1, of the first entries, is the same over the
  points sorted by key, step, timestamp and value bits, under ``sqltrack-metrics-v1``)
- an entry's hash is ``sha256("sqltrack-ledger-v1" NUL prev_hash NUL json([scope, seq,
  entry_id, table, operation, row_key, row_digest, detail, recorded_at in µs]))``; the
  first entry of a chain links to ``sha256("sqltrack-ledger-v1 genesis" NUL scope)``;
- a digest of the store is ``sha256("sqltrack-digest-v1" LF (scope TAB seq TAB hash LF)...)``
  over every chain's head, in scope order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "digest_of_heads",
    "encode_value",
    "entry_hash",
    "genesis",
    "metrics_digest",
    "micros",
    "row_digest",
    "row_key",
    "short",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_NAN = float("nan")
KEYS_LISTED = 100  # a metrics entry lists its keys with their counts up to this many


def micros(value: datetime) -> int:
    """Microseconds since the Unix epoch (UTC), exactly (integer arithmetic)."""
    if value.tzinfo is None:
        raise TypeError(f"timestamp {value!r} has no time zone; sqltrack stores TIMESTAMPTZ")
    return (value - EPOCH) // _MICROSECOND


def encode_value(value: Any) -> str:
    """One value as canonical JSON text (see the module docstring)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return '["d","' + ("nan" if value != value else value.hex()) + '"]'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, datetime):
        return '["t",' + str(micros(value)) + "]"
    if isinstance(value, bytes | bytearray | memoryview):
        return '["b","' + bytes(value).hex() + '"]'
    raise TypeError(f"the ledger cannot encode a {type(value).__name__} value ({value!r})")


def short(encoded: str) -> str:
    """8 hex digits naming one encoded column value (to tell which columns changed)."""
    return hashlib.sha256(encoded.encode()).hexdigest()[:8]


def row_digest(table: str, columns: Sequence[tuple[str, str]]) -> str:
    """The digest of a row: ``columns`` are (name, encoded value) pairs in entry order."""
    h = hashlib.sha256(b"sqltrack-row-v1\x00" + table.encode())
    for name, encoded in columns:
        h.update(b"\x00" + name.encode() + b"=" + encoded.encode())
    return h.hexdigest()


def row_key(values: Iterable[Any]) -> str:
    """The key of a row within its chain: its key columns as a canonical JSON list."""
    return "[" + ",".join(encode_value(v) for v in values) + "]"


METRICS_FORMAT = 2  # the format new metrics entries are written in


def metrics_digest(
    keys: Sequence[str],
    values: Sequence[float],
    steps: Sequence[int],
    stamps: Sequence[int],
    version: int = METRICS_FORMAT,
) -> tuple[str, dict[str, Any]]:
    """The digest and detail of a metrics entry from its points in their order (their
    ``metrics.ledger_entry``), given by column: key, value, step, timestamp in µs. Up to
    ``KEYS_LISTED`` keys, the detail also holds each key's point count and 8 hex digits of
    its points' own hash, so that a mismatch names the keys whose points changed. (numpy
    packs the columns; the bytes are the ones the module docstring defines.)

    ``version=1`` is the format of the first entries (before points were numbered): the
    same encoding over the points sorted by key, step, timestamp and value bits, under the
    prefix ``sqltrack-metrics-v1``; verification still reads it."""
    import numpy as np

    n = len(keys)
    value = np.array(values, dtype="<f8")
    nan = np.isnan(value)
    if nan.any():
        value[nan] = np.nan  # one NaN: the same bits wherever it came from
    step = np.array(steps, dtype="<i8")
    stamp = np.array(stamps, dtype="<i8")
    if version == 1:
        order = np.lexsort((value.view("<i8"), stamp, step, np.array(keys, dtype=str)))
        keys = [keys[i] for i in order.tolist()]
        value, step, stamp = value[order], step[order], stamp[order]
    joined = "".join(keys)
    if joined.isascii():  # the usual case: a key's length is its byte length
        lengths, data = np.fromiter(map(len, keys), dtype="<u4", count=n), joined.encode()
    else:
        encoded = [k.encode() for k in keys]
        lengths = np.fromiter(map(len, encoded), dtype="<u4", count=n)
        data = b"".join(encoded)
    columns = (
        ("key", lengths.tobytes() + data),
        ("value", value.tobytes()),
        ("step", step.tobytes()),
        ("timestamp", stamp.tobytes()),
    )
    hashes = [(name, hashlib.sha256(blob).hexdigest()) for name, blob in columns]
    h = hashlib.sha256(f"sqltrack-metrics-v{version}".encode() + b"\x00" + str(n).encode())
    for _, column_hash in hashes:
        h.update(b"\x00" + column_hash.encode())
    detail: dict[str, Any] = {
        "format": f"metrics-v{version}",
        "rows": n,
        "columns": [[name, column_hash[:8]] for name, column_hash in hashes],
    }
    distinct = set(keys)
    if len(distinct) <= KEYS_LISTED:
        codes: dict[str, int] = {}
        code = np.fromiter((codes.setdefault(k, len(codes)) for k in keys), dtype=np.int64, count=n)
        listed: dict[str, list[Any]] = {}
        for key in sorted(codes):
            mine = code == codes[key]
            part = hashlib.sha256(key.encode())
            for array in (value, step, stamp):
                part.update(b"\x00" + array[mine].tobytes())
            listed[key] = [int(mine.sum()), part.hexdigest()[:8]]
        detail["keys"] = listed
    else:
        detail["distinct_keys"] = len(distinct)
        detail["first_key"], detail["last_key"] = min(distinct), max(distinct)
    return h.hexdigest(), detail


def dumps(value: Any) -> str:
    """Canonical JSON text of a detail object or an entry's hashed fields."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def genesis(scope: str) -> str:
    """What the first entry of a chain links to."""
    return hashlib.sha256(b"sqltrack-ledger-v1 genesis\x00" + scope.encode()).hexdigest()


def entry_hash(
    prev_hash: str,
    scope: str,
    seq: int,
    entry_id: int,
    table: str,
    operation: str,
    key: str,
    digest: str,
    detail: str,
    recorded_at: int,
) -> str:
    fields = dumps([scope, seq, entry_id, table, operation, key, digest, detail, recorded_at])
    return hashlib.sha256(
        b"sqltrack-ledger-v1\x00" + prev_hash.encode() + b"\x00" + fields.encode()
    ).hexdigest()


def digest_of_heads(heads: Iterable[tuple[str, int, str]]) -> str:
    """The store's digest over every chain head ``(scope, seq, hash)``."""
    h = hashlib.sha256(b"sqltrack-digest-v1\n")
    for scope, seq, head in sorted(heads):
        h.update(f"{scope}\t{int(seq)}\t{head}\n".encode())
    return h.hexdigest()
