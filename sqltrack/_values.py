"""Coercion of user-supplied metric values, steps and timestamps."""

from __future__ import annotations

import math
import numbers
from datetime import datetime, timezone

from sqltrack.errors import InvalidInputError


def metric_value(key: str, value: object) -> float:
    if type(value) is float:  # the common case, without the numbers.Real ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"metric {key!r}: value {value!r} is not a number ({type(value).__name__}); "
            "log numbers as metrics and text as params or tags"
        )
    return float(value)


def step(key: str, value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"metric {key!r}: step {value!r} must be a whole number")
    if isinstance(value, numbers.Integral):
        result = int(value)
    else:
        f = float(value)
        if not math.isfinite(f) or not f.is_integer():
            raise InvalidInputError(f"metric {key!r}: step {value!r} must be a finite whole number")
        result = int(f)
    if result < 0:
        raise InvalidInputError(f"metric {key!r}: step {result} is negative; steps start at 0")
    if result > 2**63 - 1:
        raise InvalidInputError(f"metric {key!r}: step {result} does not fit in 64 bits")
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
        return value if value.tzinfo is not None else value.astimezone()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        f = float(value)
        if not math.isfinite(f):
            raise InvalidInputError(f"metric {key!r}: timestamp {value!r} is not finite")
        if 0 <= f < MIN_EPOCH_MS:
            raise InvalidInputError(
                f"metric {key!r}: timestamp {value!r} looks like seconds since the epoch "
                "(as epoch milliseconds it is before 1973); pass milliseconds "
                "(int(time.time() * 1000)) or a datetime"
            )
        try:
            return datetime.fromtimestamp(f / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(
                f"metric {key!r}: timestamp {value!r} is out of range for epoch milliseconds"
            ) from exc
    raise InvalidInputError(
        f"metric {key!r}: timestamp {value!r} must be epoch milliseconds or a datetime"
    )
