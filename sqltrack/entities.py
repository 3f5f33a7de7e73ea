"""The frozen dataclasses users get back; never driver rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker

__all__ = [
    "ActiveRun",
    "Artifact",
    "Dataset",
    "Experiment",
    "Metric",
    "ModelVersion",
    "PipelineStage",
    "Run",
    "RunInfo",
    "RunStatus",
]


class RunStatus:
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    ENDED = (FINISHED, FAILED, KILLED)
    # Not a stored status: what RunInfo.state shows for a RUNNING run whose lease expired.
    CRASHED = "CRASHED"


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Experiment:
    experiment_id: int
    name: str
    created_at: datetime
    created_by: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: int
    run_name: str
    status: str
    user_name: str
    start_time: datetime
    end_time: datetime | None
    parent_run_id: str | None
    host_name: str | None
    source_name: str | None
    source_type: str | None
    git_commit: str | None
    # The run's state as a person means it: ``status``, except CRASHED for a RUNNING run
    # whose process stopped renewing its lease (``sqltrack.run_liveness``).
    state: str | None = None
    # The database logins that started and ended it (PostgreSQL's session_user, written by
    # the database); None on DuckDB, for runs from before migration 0007, and while the
    # run has not ended (end_db_user). Unlike user_name, a client cannot choose them.
    db_user: str | None = None
    end_db_user: str | None = None

    def __post_init__(self) -> None:
        if self.state is None:
            object.__setattr__(self, "state", self.status)


@dataclass(frozen=True)
class Run:
    """A run with its params, latest metrics and tags, as stored when it was read."""

    info: RunInfo
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "metrics", _frozen(self.metrics))
        object.__setattr__(self, "tags", _frozen(self.tags))

    @property
    def run_id(self) -> str:
        return self.info.run_id


@dataclass(frozen=True)
class ActiveRun(Run):
    """What ``start_run`` returns: a :class:`Run` that ends itself as a context manager,
    FINISHED on normal exit, FAILED when an exception leaves the block."""

    tracker: Tracker | None = field(default=None, repr=False, compare=False)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.tracker is not None:
            status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
            if exc_type is KeyboardInterrupt:
                status = RunStatus.KILLED
            self.tracker._exit_run(self.run_id, status, failed=exc_type is not None)


@dataclass(frozen=True)
class Artifact:
    artifact_id: int
    run_id: str
    name: str
    media_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


@dataclass(frozen=True)
class Dataset:
    """A training DataFrame stored as an ordinary SQL table (``table_name``)."""

    dataset_id: int
    run_id: str
    name: str
    table_name: str  # schema-qualified, usable as is in a FROM clause
    row_count: int
    size_bytes: int
    spark_schema: str  # the Spark schema as JSON, field metadata included
    fingerprint: str  # order-independent content hash, verified on load
    created_at: datetime
    created_by: str
    ordered: bool = False  # logged with keep_order=True: reloads in the original row order
    fingerprint_version: int = 1  # the algorithm of ``fingerprint`` (2 since migration 0008)


@dataclass(frozen=True)
class ModelVersion:
    """A fitted Spark model stored in the database, linked to its run and training data."""

    model_id: int
    run_id: str
    name: str
    model_class: str
    spark_version: str
    sha256: str
    size_bytes: int
    dataset_id: int | None
    input_schema: str | None  # Spark StructType JSON of the input columns, when known
    created_at: datetime
    input_columns: tuple[str, ...] = ()  # the columns the model reads


@dataclass(frozen=True)
class PipelineStage:
    """One stage of a logged Spark pipeline (nested pipelines flattened, with their path)."""

    run_id: str
    stage_index: int
    stage_path: str
    stage_class: str
    class_path: str
    stage_uid: str
    stage_kind: str  # estimator, model or transformer
    pipeline_uid: str
