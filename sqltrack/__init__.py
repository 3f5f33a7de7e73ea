"""sqltrack: database-native ML tracking for Spark.

Experiments, runs, params, metrics, tags, artifacts, models and full training
DataFrames are rows in documented SQL tables, on DuckDB (the embedded default)
or PostgreSQL (the shared team store).

    import sqltrack
    tracker = sqltrack.connect()            # SQLTRACK_URI or ./tracking.duckdb
    with tracker.start_run(run_name="rf") as run:
        tracker.log_param("numTrees", 50)
        tracker.log_metric("r2", 0.91)
"""

from __future__ import annotations

from sqltrack import fluent as _fluent
from sqltrack.deployments import Deployment
from sqltrack.entities import (
    ActiveRun,
    Artifact,
    Dataset,
    Experiment,
    Metric,
    ModelVersion,
    PipelineStage,
    Run,
    RunInfo,
    RunStatus,
)
from sqltrack.errors import (
    BackendError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaOutOfDateError,
    SqltrackError,
    StoreBusyError,
    TerminalBackendError,
    TransientBackendError,
)
from sqltrack.fluent import get_tracker, set_tracking_uri
from sqltrack.journal import JournalWarning
from sqltrack.ledger import LedgerDigest, Mismatch, VerifyReport
from sqltrack.registry import AliasEvent, RegisteredModel, RegisteredModelVersion
from sqltrack.tracking import Tracker, connect

__version__ = "0.1.0"

active_run = _fluent._forward("active_run")
compare_runs = _fluent._forward("compare_runs")
create_experiment = _fluent._forward("create_experiment")
create_registered_model = _fluent._forward("create_registered_model")
delete_registered_model_alias = _fluent._forward("delete_registered_model_alias")
deploy = _fluent._forward("deploy")
download_artifact = _fluent._forward("download_artifact")
end_run = _fluent._forward("end_run")
end_stale_runs = _fluent._forward("end_stale_runs")
export_model = _fluent._forward("export_model")
flush = _fluent._forward("flush")
get_deployment_at = _fluent._forward("get_deployment_at")
get_experiment_by_name = _fluent._forward("get_experiment_by_name")
get_metric_history = _fluent._forward("get_metric_history")
get_model_alias_history = _fluent._forward("get_model_alias_history")
get_model_version = _fluent._forward("get_model_version")
get_model_version_by_alias = _fluent._forward("get_model_version_by_alias")
get_registered_model = _fluent._forward("get_registered_model")
get_run = _fluent._forward("get_run")
ledger_digest = _fluent._forward("ledger_digest")
lineage = _fluent._forward("lineage")
list_artifacts = _fluent._forward("list_artifacts")
list_datasets = _fluent._forward("list_datasets")
list_deployments = _fluent._forward("list_deployments")
list_experiments = _fluent._forward("list_experiments")
load_artifact = _fluent._forward("load_artifact")
load_dataset = _fluent._forward("load_dataset")
load_spark_model = _fluent._forward("load_spark_model")
log_artifact = _fluent._forward("log_artifact")
log_artifacts = _fluent._forward("log_artifacts")
log_dataset = _fluent._forward("log_dataset")
log_dict = _fluent._forward("log_dict")
log_evaluator_metrics = _fluent._forward("log_evaluator_metrics")
log_feature_transformations = _fluent._forward("log_feature_transformations")
log_figure = _fluent._forward("log_figure")
log_metric = _fluent._forward("log_metric")
log_metric_history = _fluent._forward("log_metric_history")
log_metrics = _fluent._forward("log_metrics")
log_model_params = _fluent._forward("log_model_params")
log_param = _fluent._forward("log_param")
log_params = _fluent._forward("log_params")
log_pipeline_stages = _fluent._forward("log_pipeline_stages")
log_spark_model = _fluent._forward("log_spark_model")
log_text = _fluent._forward("log_text")
register_model = _fluent._forward("register_model")
search_model_versions = _fluent._forward("search_model_versions")
search_registered_models = _fluent._forward("search_registered_models")
search_runs = _fluent._forward("search_runs")
set_experiment = _fluent._forward("set_experiment")
set_registered_model_alias = _fluent._forward("set_registered_model_alias")
set_registered_model_tag = _fluent._forward("set_registered_model_tag")
set_tag = _fluent._forward("set_tag")
set_tags = _fluent._forward("set_tags")
stale_runs = _fluent._forward("stale_runs")
start_run = _fluent._forward("start_run")
start_timer = _fluent._forward("start_timer")
stop_and_log_timer = _fluent._forward("stop_and_log_timer")
sync = _fluent._forward("sync")
undeploy = _fluent._forward("undeploy")
verify = _fluent._forward("verify")
write_report = _fluent._forward("write_report")
lp = log_param
lm = log_metric

__all__ = [
    "ActiveRun",
    "AliasEvent",
    "Artifact",
    "BackendError",
    "ConflictError",
    "Dataset",
    "Deployment",
    "Experiment",
    "IntegrityError",
    "InvalidInputError",
    "JournalWarning",
    "LedgerDigest",
    "Metric",
    "Mismatch",
    "ModelVersion",
    "NotFoundError",
    "PermissionDeniedError",
    "PipelineStage",
    "RegisteredModel",
    "RegisteredModelVersion",
    "Run",
    "RunInfo",
    "RunStatus",
    "SchemaOutOfDateError",
    "SqltrackError",
    "StoreBusyError",
    "TerminalBackendError",
    "Tracker",
    "TransientBackendError",
    "VerifyReport",
    "active_run",
    "compare_runs",
    "connect",
    "create_experiment",
    "create_registered_model",
    "delete_registered_model_alias",
    "deploy",
    "download_artifact",
    "end_run",
    "end_stale_runs",
    "export_model",
    "flush",
    "get_deployment_at",
    "get_experiment_by_name",
    "get_metric_history",
    "get_model_alias_history",
    "get_model_version",
    "get_model_version_by_alias",
    "get_registered_model",
    "get_run",
    "get_tracker",
    "ledger_digest",
    "lineage",
    "list_artifacts",
    "list_datasets",
    "list_deployments",
    "list_experiments",
    "lm",
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
    "lp",
    "register_model",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_registered_model_alias",
    "set_registered_model_tag",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "stale_runs",
    "start_run",
    "start_timer",
    "stop_and_log_timer",
    "sync",
    "undeploy",
    "verify",
    "write_report",
]
