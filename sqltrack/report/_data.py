"""What the report reads from the store: one experiment's runs in a handful of bulk queries
(never one query per run), so that a thousand runs render in seconds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqltrack.entities import Artifact, Experiment, RunInfo

if TYPE_CHECKING:
    from sqltrack.backends import Session
    from sqltrack.tracking import Tracker

__all__ = ["MAX_POINTS", "ExperimentData", "load_experiment"]

MAX_POINTS = 2000  # a longer metric history is thinned to this many points in charts

_IN_EXPERIMENT = "run_id IN (SELECT run_id FROM sqltrack.runs WHERE experiment_id = ?)"


@dataclass
class ExperimentData:
    """One experiment as read from the store, keyed by run id."""

    experiment: Experiment
    runs: list[RunInfo]
    params: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    metrics: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    metric_points: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    history: dict[str, dict[str, list[tuple[float, float]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # only metrics logged at more than one step
    tags: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    artifacts: dict[str, list[Artifact]] = field(default_factory=lambda: defaultdict(list))
    datasets: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    models: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    transformations: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    every = -(-len(points) // MAX_POINTS)
    kept = points[::every]
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _rows(s: Session, sql: str, experiment_id: int) -> list[tuple[Any, ...]]:
    return s.query(sql, (experiment_id,))


def load_experiment(tracker: Tracker, experiment: Experiment) -> ExperimentData:
    from sqltrack.sqltext import Fragment, compose
    from sqltrack.tracking import _RUN_COLUMNS

    eid = experiment.experiment_id
    inside = Fragment(_IN_EXPERIMENT)
    with tracker.backend.session(read_only=True) as s:
        runs = [
            RunInfo(*r)
            for r in s.query(
                compose(
                    "SELECT {cols} FROM sqltrack.runs WHERE experiment_id = ? "
                    "ORDER BY start_time DESC, run_id",
                    cols=_RUN_COLUMNS,
                ),
                (eid,),
            )
        ]
        data = ExperimentData(experiment, runs)
        q = compose("SELECT run_id, key, value FROM sqltrack.params WHERE {inside}", inside=inside)
        for run_id, key, value in _rows(s, q, eid):
            data.params[run_id][key] = value
        q = compose(
            "SELECT run_id, key, value FROM sqltrack.latest_metrics WHERE {inside}", inside=inside
        )
        for run_id, key, value in _rows(s, q, eid):
            data.metrics[run_id][key] = float(value)
        q = compose(
            "SELECT run_id, key, count(*) FROM sqltrack.metrics WHERE {inside} "
            "GROUP BY run_id, key",
            inside=inside,
        )
        for run_id, key, n in _rows(s, q, eid):
            data.metric_points[run_id][key] = int(n)
        q = compose(
            "SELECT m.run_id, m.key, m.step, m.value FROM sqltrack.metrics m JOIN ("
            "SELECT run_id, key FROM sqltrack.metrics WHERE {inside} GROUP BY run_id, key "
            "HAVING count(DISTINCT step) > 1) h ON h.run_id = m.run_id AND h.key = m.key "
            'ORDER BY m.run_id, m.key, m.step, m."timestamp"',
            inside=inside,
        )
        for run_id, key, step, value in _rows(s, q, eid):
            data.history[run_id].setdefault(key, []).append((float(step), float(value)))
        q = compose("SELECT run_id, key, value FROM sqltrack.tags WHERE {inside}", inside=inside)
        for run_id, key, value in _rows(s, q, eid):
            data.tags[run_id][key] = value
        q = compose(
            "SELECT artifact_id, run_id, name, media_type, size_bytes, sha256, created_at "
            "FROM sqltrack.artifacts WHERE {inside} ORDER BY run_id, name",
            inside=inside,
        )
        for row in _rows(s, q, eid):
            data.artifacts[row[1]].append(Artifact(*row))
        _load_lineage(s, data, eid)
    for series in data.history.values():
        for key, points in series.items():
            series[key] = _thin(points)
    return data


def _load_lineage(s: Session, data: ExperimentData, eid: int) -> None:
    """Datasets, models and feature-transformation chains of the experiment's runs."""
    from sqltrack.sqltext import Fragment, compose

    inside = Fragment(_IN_EXPERIMENT)
    q = compose(
        "SELECT run_id, dataset_id, name, table_name, row_count, size_bytes, spark_schema, "
        "fingerprint, created_at FROM sqltrack.datasets WHERE {inside} ORDER BY run_id, name",
        inside=inside,
    )
    names = ("dataset_id", "name", "table_name", "row_count", "size_bytes", "spark_schema")
    for row in _rows(s, q, eid):
        record = dict(zip((*names, "fingerprint", "created_at"), row[1:], strict=True))
        data.datasets[row[0]].append(record)
    q = compose(
        "SELECT run_id, model_id, model_name, model_class, dataset_id, dataset_name, "
        "fingerprint FROM sqltrack.run_lineage WHERE lineage_kind = 'model' AND {inside} "
        "ORDER BY run_id, model_id",
        inside=inside,
    )
    keys = ("model_id", "name", "model_class", "dataset_id", "dataset_name", "fingerprint")
    for row in _rows(s, q, eid):
        data.models[row[0]].append(dict(zip(keys, row[1:], strict=True)))
    q = compose(
        "SELECT run_id, source_column, branch, stage_class, output_column "
        "FROM sqltrack.feature_transformations WHERE {inside} "
        "ORDER BY run_id, source_column, branch, step",
        inside=inside,
    )
    chains: dict[tuple[str, str, int], list[str]] = {}
    for run_id, source, branch, stage_class, output in _rows(s, q, eid):
        chain = chains.setdefault((run_id, source, int(branch)), [source])
        chain.append(f"{stage_class}: {output}")
    for (run_id, source, _), chain in chains.items():
        data.transformations[run_id].append({"source": source, "chain": tuple(chain)})
