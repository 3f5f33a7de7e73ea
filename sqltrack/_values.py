"""Coercion of user-supplied metric values, steps and timestamps.

Everything that cannot be stored is refused here, at the call, with an
:class:`~sqltrack.InvalidInputError` naming the value: a journaled record is never
refused later by the store for its numbers.
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime, timezone

from sqltrack.errors import InvalidInputError
from sqltrack.identifiers import shown

# Steps are BIGINT on both backends.
MAX_STEP = 2**63 - 1


def metric_value(key: str, value: object) -> float:
    if type(value) is float:  # the common case, without the numbers.Real ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"metric {key!r}: value {shown(value)} is not a number ({type(value).__name__}); "
            "log numbers as metrics and text as params or tags"
        )
    try:
        return float(value)
    except OverflowError as exc:
        raise InvalidInputError(
            f"metric {key!r}: value {shown(value)} is beyond the range of a double "
            "(about ±1.8e308), which metrics are stored as; log float('inf') or a scaled value"
        ) from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidInputError(
            f"metric {key!r}: value {shown(value)} cannot be converted to a double: {exc}"
        ) from exc


def step(key: str, value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"metric {key!r}: step {shown(value)} must be a whole number")
    if isinstance(value, numbers.Integral):
        result = int(value)
    else:
        try:
            f = float(value)
        except (TypeError, ValueError, ArithmeticError) as exc:  # OverflowError
            raise InvalidInputError(
                f"metric {key!r}: step {shown(value)} is not a whole number in the range 0 "
                f"to {MAX_STEP:,} (BIGINT)"
            ) from exc
        if not math.isfinite(f) or not f.is_integer():
            raise InvalidInputError(
                f"metric {key!r}: step {shown(value)} must be a finite whole number"
            )
        result = int(f)
    if result < 0:
        raise InvalidInputError(
            f"metric {key!r}: step {shown(result)} is negative; steps start at 0"
        )
    if result > MAX_STEP:
        raise InvalidInputError(
            f"metric {key!r}: step {shown(result)} does not fit in 64 bits; steps are BIGINT "
            f"(at most {MAX_STEP:,})"
        )
    return result


# Epoch milliseconds below this (1973-03-03) are refused: such a number is nearly always
# seconds (``time.time()``), which would be stored as a date in January 1970.
MIN_EPOCH_MS = 100_000_000_000


def timestamp(key: str, value: object) -> datetime:
    """None -> now; int/float -> epoch milliseconds (MLflow's convention), refused below
    :data:`MIN_EPOCH_MS` as plainly seconds; datetime -> itself (a naive datetime is read
    as local time)."""
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, datetime):
        try:
            aware = value if value.tzinfo is not None else value.astimezone()
            aware.timestamp()  # the journal stores epoch microseconds
            aware.astimezone(timezone.utc)
        except (OverflowError, OSError, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"metric {key!r}: timestamp {shown(value)} is out of range: {exc}"
            ) from exc
        return aware
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            f = float(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidInputError(
                f"metric {key!r}: timestamp {shown(value)} is out of range for epoch milliseconds"
            ) from exc
        if not math.isfinite(f):
            raise InvalidInputError(f"metric {key!r}: timestamp {shown(value)} is not finite")
        if 0 <= f < MIN_EPOCH_MS:
            raise InvalidInputError(
                f"metric {key!r}: timestamp {shown(value)} looks like seconds since the epoch "
                "(as epoch milliseconds it is before 1973); pass milliseconds "
                "(int(time.time() * 1000)) or a datetime"
            )
        try:
            return datetime.fromtimestamp(f / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(
                f"metric {key!r}: timestamp {shown(value)} is out of range for epoch "
                "milliseconds (years 1 to 9999)"
            ) from exc
    raise InvalidInputError(
        f"metric {key!r}: timestamp {shown(value)} must be epoch milliseconds or a datetime"
    )
