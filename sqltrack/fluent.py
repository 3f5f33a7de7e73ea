"""The module-level API on a default tracker, for MLflow users:
``sqltrack.start_run()``, ``sqltrack.log_metric()``... mirror :class:`Tracker`.

The default tracker connects on first use to ``set_tracking_uri()``'s URI, else
``SQLTRACK_URI``, else ``duckdb:///sqltrack.duckdb``.
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


FORWARDED = (
    "active_run",
    "compare_runs",
    "create_experiment",
    "download_artifact",
    "end_run",
    "get_experiment_by_name",
    "get_metric_history",
    "get_run",
    "lineage",
    "list_artifacts",
    "list_datasets",
    "list_experiments",
    "load_artifact",
    "load_dataset",
    "load_spark_model",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_dict",
    "log_evaluator_metrics",
    "log_feature_transformations",
    "log_figure",
    "log_metric",
    "log_metric_history",
    "log_metrics",
    "log_model_params",
    "log_param",
    "log_params",
    "log_pipeline_stages",
    "log_spark_model",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "start_timer",
    "stop_and_log_timer",
    "write_report",
)
