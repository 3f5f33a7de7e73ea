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
- a metrics entry (the points one delivery wrote for one run) is encoded by column,
  points sorted by (key, step, timestamp, value bits): each column is hashed on its own
  (keys as little-endian uint32 byte length + UTF-8, values as little-endian IEEE-754
  doubles with NaN made canonical, steps and timestamps as little-endian int64) and the
  digest is ``sha256("sqltrack-metrics-v1" NUL count NUL column hashes...)``;
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


def metrics_digest(
    keys: Sequence[str], values: Sequence[float], steps: Sequence[int], stamps: Sequence[int]
) -> tuple[str, dict[str, Any]]:
    """The digest and detail of a metrics entry from its points, given by column (key,
    value, step, timestamp in µs), in any order. Up to ``KEYS_LISTED`` keys, the detail
    also holds each key's point count and 8 hex digits of its points' own hash, so that a
    mismatch names the keys whose points changed. (numpy sorts and packs; the bytes are
    the ones the module docstring defines.)"""
    import numpy as np

    v = np.array(values, dtype=np.float64)
    nan = np.isnan(v)
    if nan.any():
        v[nan] = np.nan  # one NaN: the same bits wherever it came from
    bits = v.view(np.int64)
    step = np.array(steps, dtype=np.int64)
    stamp = np.array(stamps, dtype=np.int64)
    key = np.array(keys, dtype=str)
    order = np.lexsort((bits, stamp, step, key))  # by key, step, timestamp, value bits
    sorted_keys = key[order]
    ordered: list[str] = sorted_keys.tolist()
    joined = "".join(ordered)
    if joined.isascii():  # the usual case: a key's length is its byte length
        lengths, data = np.char.str_len(sorted_keys), joined.encode()
    else:
        encoded = [k.encode() for k in ordered]
        lengths, data = np.array([len(k) for k in encoded]), b"".join(encoded)
    words = [a[order].astype("<i8").tobytes() for a in (bits, step, stamp)]
    columns = (
        ("key", lengths.astype("<u4").tobytes() + data),
        ("value", words[0]),  # the doubles' bits: their little-endian IEEE-754 bytes
        ("step", words[1]),
        ("timestamp", words[2]),
    )
    hashes = [(name, hashlib.sha256(blob).hexdigest()) for name, blob in columns]
    h = hashlib.sha256(b"sqltrack-metrics-v1\x00" + str(len(ordered)).encode())
    for _, column_hash in hashes:
        h.update(b"\x00" + column_hash.encode())
    detail: dict[str, Any] = {
        "format": "metrics-v1",
        "rows": len(ordered),
        "columns": [[name, column_hash[:8]] for name, column_hash in hashes],
    }
    if not ordered:
        detail["keys"] = {}
        return h.hexdigest(), detail
    starts = [0, *(np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1).tolist()]
    if len(starts) <= KEYS_LISTED:
        listed: dict[str, list[Any]] = {}
        for i, start in enumerate(starts):  # one slice of the sorted points per key
            end = starts[i + 1] if i + 1 < len(starts) else len(ordered)
            part = hashlib.sha256(ordered[start].encode())
            for blob in words:
                part.update(b"\x00" + blob[start * 8 : end * 8])
            listed[ordered[start]] = [end - start, part.hexdigest()[:8]]
        detail["keys"] = listed
    else:
        detail["distinct_keys"] = len(starts)
        detail["first_key"], detail["last_key"] = ordered[0], ordered[-1]
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
