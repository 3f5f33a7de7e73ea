"""The module-level API on a default tracker, for MLflow users:
``sqltrack.start_run()``, ``sqltrack.log_metric()``... mirror :class:`Tracker`.

The default tracker connects on first use to ``set_tracking_uri()``'s URI, else
``SQLTRACK_URI``, else ``duckdb:///tracking.duckdb``.
"""

from __future__ import annotations

import threading
from typing import Any

from sqltrack.tracking import Tracker, connect

_lock = threading.Lock()
_tracker: Tracker | None = None
_uri: str | None = None


def set_tracking_uri(uri: str | None) -> None:
    """Point the default tracker at ``uri`` (closing the previous one)."""
    global _tracker, _uri
    with _lock:
        if _tracker is not None:
            _tracker.close()
        _tracker, _uri = None, uri


def get_tracker() -> Tracker:
    """The default tracker, connected on first use."""
    global _tracker
    with _lock:
        if _tracker is None:
            _tracker = connect(_uri)
        return _tracker


def _forward(name: str) -> Any:
    method = getattr(Tracker, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(get_tracker(), name)(*args, **kwargs)

    call.__name__ = name
    call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call
