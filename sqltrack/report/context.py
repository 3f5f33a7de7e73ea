"""The documented context of each report page: one frozen dataclass per page.

Templates read only these fields (Jinja2 runs with ``StrictUndefined``, so a
misspelt field fails the render instead of printing nothing). Every page has:

- :class:`IndexPage` — ``index.html`` when the report covers several experiments;
- :class:`ExperimentPage` — an experiment's runs table and charts (``index.html`` when
  the report covers one experiment, else ``experiment-<id>.html``);
- :class:`RunPage` — ``runs/<run_id>.html``, everything about one run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from markupsafe import Markup

from sqltrack.entities import Experiment, RunInfo
from sqltrack.report import svg
from sqltrack.report._data import ExperimentData
from sqltrack.report.ranking import lower_is_better, rank_metrics

__all__ = [
    "ArtifactView",
    "Cell",
    "Chart",
    "DatasetView",
    "ExperimentLink",
    "ExperimentPage",
    "IndexPage",
    "ModelView",
    "RunPage",
    "RunRow",
    "build_experiment_page",
    "build_run_page",
    "lower_is_better",
    "run_labels",
]

MAX_PARAM_COLUMNS = 12  # params shown in the runs table (those that vary first)
MAX_METRIC_COLUMNS = 12  # metrics shown in the runs table (the most logged first)
MAX_COMPARED_RUNS = 10  # runs drawn in the side-by-side and history charts
MAX_HYPER_CHARTS = 6  # metric-against-hyperparameter charts
MAX_HISTORY_CHARTS = 6  # metric history charts on the experiment page
MAX_COMPARED_RUNS_TOTAL = 200  # runs the reader can pick for the side-by-side chart


@dataclass(frozen=True)
class Cell:
    """A table cell: ``text`` shown, ``sort`` the value the in-page sort uses."""

    text: str
    sort: str


@dataclass(frozen=True)
class Chart:
    """A server-rendered SVG chart and the sentence that explains it."""

    title: str
    svg: Markup
    caption: str


@dataclass(frozen=True)
class RunRow:
    """One row of the experiment's runs table."""

    run_id: str
    run_name: str
    label: str  # the name in charts: run_name, with time, user or short id when not unique
    short_id: str  # the first 8 characters of run_id
    compared: bool  # drawn in the side-by-side chart when the page opens
    href: str  # the run page, relative to the experiment page
    user_name: str
    status: str
    start: str  # start time, ISO 8601 UTC
    duration: Cell
    primary: Cell  # the primary metric's latest value ("" without a primary metric)
    params: tuple[Cell, ...]  # one per ExperimentPage.param_keys
    metrics: tuple[Cell, ...]  # one per ExperimentPage.metric_keys (primary excluded)


@dataclass(frozen=True)
class ExperimentLink:
    experiment_id: int
    name: str
    href: str
    run_count: int
    last_start: str


@dataclass(frozen=True)
class IndexPage:
    """``index.html`` for a report over several experiments: one line per experiment."""

    title: str
    root: str  # prefix from this page to the report folder ("" here)
    generated: str  # when the report was written, ISO 8601 UTC
    store: str  # the store URI
    experiments: tuple[ExperimentLink, ...]


@dataclass(frozen=True)
class ExperimentPage:
    """An experiment: its runs table (sortable and filterable in the page) and charts.

    The runs table starts with the run, its primary metric, status, user, start and
    duration; then the other metrics, then the params (those that vary first). Runs that
    share a name are told apart in charts by their start time, user or short id
    (``RunRow.label``).

    ``primary_metric`` is the y axis of the hyperparameter charts and orders the runs
    that the comparison and history charts draw (the ``MAX_COMPARED_RUNS`` best; higher
    is better unless its name says loss, err, rmse, mse, mae, mape, time, duration or
    seconds, or is FDR, FNR or FPR). By default it is the metric most runs logged (timings
    last), among equals a well-known one (r2, areaUnderROC, auc, accuracy, f1, ...), then a
    score before a loss (``write_report(metric=...)`` / ``sqltrack report --metric`` choose
    another).
    """

    title: str
    root: str
    generated: str
    store: str
    index_href: str | None  # link back to the experiment list, if there is one
    experiment: Experiment
    run_count: int
    status_counts: tuple[tuple[str, int], ...]
    param_keys: tuple[str, ...]
    metric_keys: tuple[str, ...]
    rows: tuple[RunRow, ...]
    primary_metric: str | None
    lower_is_better: bool
    hyper_charts: tuple[Chart, ...]  # primary metric against each hyperparameter
    compare_chart: Chart | None  # all metrics of the best runs, each axis scaled
    compare_metrics: tuple[tuple[str, bool], ...]  # (metric, drawn when the page opens)
    compare_data: Markup  # JSON for report.js, which redraws the chart for a new pick
    history_charts: tuple[Chart, ...]  # value against step, for metrics logged at steps


@dataclass(frozen=True)
class ArtifactView:
    name: str
    href: str  # the file, copied beside the page
    media_type: str
    size: str
    sha256: str
    is_image: bool


@dataclass(frozen=True)
class DatasetView:
    name: str
    table_name: str
    row_count: str
    size: str
    fingerprint: str
    created_at: str
    columns: tuple[tuple[str, str, str], ...]  # (field, Spark type, nullable) from the schema


@dataclass(frozen=True)
class ModelView:
    name: str
    model_class: str
    dataset: str  # "training (fingerprint …)" or ""


@dataclass(frozen=True)
class RunPage:
    """One run: info, params, metrics with their history, tags, artifacts, datasets,
    feature-transformation chains, models and lineage."""

    title: str
    root: str  # "../": run pages live in runs/
    generated: str
    store: str
    experiment_name: str
    experiment_href: str
    info: tuple[tuple[str, str], ...]  # (label, value) pairs: status, user, times, commit...
    run: RunInfo
    params: tuple[tuple[str, str], ...]
    metrics: tuple[tuple[str, str, int], ...]  # (key, latest value, number of points)
    tags: tuple[tuple[str, str], ...]
    artifacts: tuple[ArtifactView, ...]
    datasets: tuple[DatasetView, ...]
    transformations: tuple[tuple[str, tuple[str, ...]], ...]  # (source column, chain)
    models: tuple[ModelView, ...]
    lineage: tuple[str, ...]  # the lineage tree, one line each
    history_charts: tuple[Chart, ...]


# -- helpers ---------------------------------------------------------------------------
def iso(t: datetime | None) -> str:
    if t is None:
        return ""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(info: RunInfo) -> Cell:
    if info.end_time is None:
        if info.state == "CRASHED":
            return Cell("crashed", "")
        return Cell("running" if info.status == "RUNNING" else "", "")
    seconds = (info.end_time - info.start_time).total_seconds()
    if seconds < 60:
        text = f"{seconds:.1f} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min {int(seconds % 60)} s"
    else:
        text = f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return Cell(text, f"{seconds:.3f}")


def size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value):,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _metric_cell(v: float | None) -> Cell:
    if v is None:
        return Cell("", "")
    return Cell(svg.format_number(v), repr(v) if math.isfinite(v) else "")


def _param_cell(v: str | None) -> Cell:
    if v is None:
        return Cell("", "")
    text = v if len(v) <= 40 else v[:39] + "…"
    return Cell(text, v)


def _ranked(data: ExperimentData, metric: str | None) -> list[RunInfo]:
    """Runs best first by ``metric`` (runs without it last, newest first among equals)."""
    if metric is None:
        return list(data.runs)
    lower = lower_is_better(metric)

    def key(info: RunInfo) -> tuple[int, float]:
        v = data.metrics.get(info.run_id, {}).get(metric)
        if v is None or not math.isfinite(v):
            return (1, 0.0)
        return (0, v if lower else -v)

    return sorted(data.runs, key=key)  # stable: keeps newest-first among ties


def _choose_params(data: ExperimentData) -> tuple[list[str], list[str]]:
    """(all param keys, varying first), (numeric-or-few-valued varying keys)."""
    values: dict[str, list[str]] = {}
    for p in data.params.values():
        for k, v in p.items():
            values.setdefault(k, []).append(v)
    varying = sorted(k for k, vs in values.items() if len(set(vs)) > 1)
    constant = sorted(k for k in values if k not in varying)
    chartable = [k for k in varying if all(_number(v) is not None for v in values[k])]
    chartable += [k for k in varying if k not in chartable and len(set(values[k])) <= 30]
    return varying + constant, chartable


def _choose_metrics(data: ExperimentData) -> list[str]:
    return rank_metrics(data.metrics.values())


def run_href(run_id: str) -> str:
    return f"runs/{run_id}.html"


# -- pages -----------------------------------------------------------------------------
def build_experiment_page(
    data: ExperimentData,
    *,
    generated: str,
    store: str,
    index_href: str | None,
    metric: str | None = None,
) -> ExperimentPage:
    """The experiment page's context; ``metric`` picks the primary metric (default: the
    metric most runs logged)."""
    param_keys, chartable = _choose_params(data)
    metric_keys = _choose_metrics(data)
    primary = metric if metric is not None else (metric_keys[0] if metric_keys else None)
    shown_params = tuple(param_keys[:MAX_PARAM_COLUMNS])
    shown_metrics = tuple(k for k in metric_keys if k != primary)[:MAX_METRIC_COLUMNS]
    ranked = _ranked(data, primary)
    lower = primary is not None and lower_is_better(primary)
    labels = run_labels(data.runs)
    best = _best(data, ranked, primary)
    chosen = {r.run_id for r in best}
    rows = []
    statuses: dict[str, int] = {}
    for info in data.runs:
        state = info.state or info.status
        statuses[state] = statuses.get(state, 0) + 1
        p = data.params.get(info.run_id, {})
        m = data.metrics.get(info.run_id, {})
        rows.append(
            RunRow(
                info.run_id,
                info.run_name,
                labels[info.run_id],
                info.run_id[:8],
                info.run_id in chosen,
                run_href(info.run_id),
                info.user_name,
                info.state or info.status,
                iso(info.start_time),
                duration(info),
                _metric_cell(m.get(primary)) if primary is not None else Cell("", ""),
                tuple(_param_cell(p.get(k)) for k in shown_params),
                tuple(_metric_cell(m.get(k)) for k in shown_metrics),
            )
        )
    axes = [k for k in metric_keys if any(k in data.metrics[r.run_id] for r in best)]
    return ExperimentPage(
        title=f"Experiment {data.experiment.name}",
        root="",
        generated=generated,
        store=store,
        index_href=index_href,
        experiment=data.experiment,
        run_count=len(data.runs),
        status_counts=tuple(sorted(statuses.items())),
        param_keys=shown_params,
        metric_keys=shown_metrics,
        rows=tuple(rows),
        primary_metric=primary,
        lower_is_better=lower,
        hyper_charts=tuple(_hyper_charts(data, primary, chartable, labels)),
        compare_chart=_compare_chart(data, best, axes, primary, lower, labels),
        compare_metrics=tuple((k, k in axes) for k in metric_keys),
        compare_data=_compare_data(data, ranked, metric_keys, primary, labels),
        history_charts=tuple(_history_charts(data, ranked, labels)),
    )


def run_labels(runs: list[RunInfo]) -> dict[str, str]:
    """{run_id: label}: the run name, or for runs that share one, the name with what tells
    them apart: the user (when they differ), the start time, and the short id if needed."""
    by_name: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_name.setdefault(r.run_name, []).append(r)
    labels = {}
    for name, group in by_name.items():
        if len(group) == 1:
            labels[group[0].run_id] = name
            continue
        users = len({r.user_name for r in group}) > 1
        days = len({r.start_time.date() for r in group}) > 1
        for r in group:
            when = r.start_time.astimezone(timezone.utc)
            parts = [name, *([r.user_name] if users else [])]
            parts.append(when.strftime("%m-%d %H:%M" if days else "%H:%M:%S"))
            labels[r.run_id] = " · ".join(parts)
        taken = [labels[r.run_id] for r in group]
        for r in group:
            if taken.count(labels[r.run_id]) > 1:
                labels[r.run_id] += f" · {r.run_id[:6]}"
    return labels


def _best(data: ExperimentData, ranked: list[RunInfo], primary: str | None) -> list[RunInfo]:
    """The runs the side-by-side chart draws when the page opens: the best by the primary
    metric, at most ``MAX_COMPARED_RUNS``."""
    if primary is None:
        return []
    return [
        r for r in ranked if math.isfinite(data.metrics.get(r.run_id, {}).get(primary, math.nan))
    ][:MAX_COMPARED_RUNS]


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _compare_data(
    data: ExperimentData,
    ranked: list[RunInfo],
    metric_keys: list[str],
    primary: str | None,
    labels: dict[str, str],
) -> Markup:
    """What report.js needs to redraw the side-by-side chart for the reader's pick: every
    run (best first, at most ``MAX_COMPARED_RUNS_TOTAL``) with its finite latest metrics,
    and which metrics are better lower. JSON inside ``<script type="application/json">``
    (``<`` escaped, so no value can close the script element)."""
    runs = [
        {
            "id": r.run_id,
            "label": labels[r.run_id],
            "href": run_href(r.run_id),
            "metrics": {k: _finite_or_none(v) for k, v in data.metrics.get(r.run_id, {}).items()},
        }
        for r in ranked
        if data.metrics.get(r.run_id)
    ][:MAX_COMPARED_RUNS_TOTAL]
    payload = {
        "runs": runs,
        "metrics": metric_keys,
        "lower": [k for k in metric_keys if lower_is_better(k)],
        "primary": primary,
        "palette": list(svg.PALETTE),
        "geometry": svg.parallel_geometry(),
    }
    text = json.dumps(payload, allow_nan=False).replace("<", "\\u003c")
    return Markup(text)  # JSON with "<" escaped: safe inside a script element


def _hyper_charts(
    data: ExperimentData, metric: str | None, params: list[str], labels: dict[str, str]
) -> list[Chart]:
    if metric is None:
        return []
    charts = []
    for key in params[:MAX_HYPER_CHARTS]:
        points = []
        for info in data.runs:
            value = data.params.get(info.run_id, {}).get(key)
            y = data.metrics.get(info.run_id, {}).get(metric)
            if value is None or y is None:
                continue
            x = _number(value)
            points.append(
                svg.Point(value if x is None else x, y, labels[info.run_id], run_href(info.run_id))
            )
        if not points:
            continue
        title = f"{metric} against {key}"
        charts.append(
            Chart(
                title,
                svg.scatter(points, f"{key} (param)", f"{metric} (latest value)", title),
                f"One dot per run ({len(points)} runs); hover a dot for the run, click to open it.",
            )
        )
    return charts


def _compare_chart(
    data: ExperimentData,
    best: list[RunInfo],
    axes: list[str],
    primary: str | None,
    lower: bool,
    labels: dict[str, str],
) -> Chart | None:
    if primary is None or not best or len(axes) < 2:
        return None
    series = [
        svg.Series(labels[r.run_id], values=dict(data.metrics[r.run_id]), href=run_href(r.run_id))
        for r in best
    ]
    title = f"All metrics of the {len(best)} best runs"
    order = "lowest" if lower else "highest"
    caption = (
        f"Runs chosen by {primary} ({order} first); tick other runs in the table and other "
        "metrics above to compare them. Each axis is one metric scaled to its range among the "
        "runs drawn, better at the top (axes marked ↓ are metrics where lower is better); a "
        "dashed line has the same values as another run. Click a legend entry to hide or "
        "show a run."
    )
    lower_keys = {k for k in axes if lower_is_better(k)}
    return Chart(title, svg.parallel_coordinates(series, axes, title, lower_keys), caption)


def _history_charts(
    data: ExperimentData, ranked: list[RunInfo], labels: dict[str, str]
) -> list[Chart]:
    counts: dict[str, int] = {}
    for h in data.history.values():
        for k in h:
            counts[k] = counts.get(k, 0) + 1
    charts = []
    for key in sorted(counts, key=lambda k: (-counts[k], k))[:MAX_HISTORY_CHARTS]:
        runs = [r for r in ranked if key in data.history.get(r.run_id, {})][:MAX_COMPARED_RUNS]
        series = [
            svg.Series(
                labels[r.run_id], points=data.history[r.run_id][key], href=run_href(r.run_id)
            )
            for r in runs
        ]
        title = f"{key} by step"
        caption = (
            f"{len(runs)} of the {counts[key]} runs that logged {key} at several steps "
            "(the best first)."
        )
        charts.append(Chart(title, svg.line_chart(series, "step", key, title), caption))
    return charts


def _schema_columns(spark_schema: Any) -> tuple[tuple[str, str, str], ...]:
    """(name, type, nullable) of each field of a Spark schema given as JSON text (DuckDB)
    or as the already parsed object (psycopg parses JSON columns)."""
    parsed = spark_schema
    if isinstance(spark_schema, str):
        try:
            parsed = json.loads(spark_schema)
        except ValueError:
            return ()
    out = []
    for f in parsed.get("fields", []) if isinstance(parsed, dict) else []:
        kind = f.get("type")
        kind = kind if isinstance(kind, str) else json.dumps(kind)[:80]
        out.append((str(f.get("name")), kind, "yes" if f.get("nullable") else "no"))
    return tuple(out)


def build_run_page(
    data: ExperimentData,
    info: RunInfo,
    *,
    generated: str,
    store: str,
    experiment_href: str,
    artifact_hrefs: dict[str, str],
    lineage: tuple[str, ...],
) -> RunPage:
    rid = info.run_id
    details = (
        ("run id", rid),
        ("status", info.state or info.status),
        ("user", info.user_name),
        ("start", iso(info.start_time)),
        ("end", iso(info.end_time)),
        ("duration", duration(info).text),
        ("parent run", info.parent_run_id or ""),
        ("host", info.host_name or ""),
        ("source", f"{info.source_name or ''} ({info.source_type or ''})"),
        ("git commit", info.git_commit or ""),
    )
    metrics = data.metrics.get(rid, {})
    points = data.metric_points.get(rid, {})
    history = data.history.get(rid, {})
    charts = tuple(
        Chart(
            f"{key} by step",
            svg.line_chart(
                [svg.Series(info.run_name, points=history[key])],
                "step",
                key,
                f"{key} by step",
            ),
            f"{points.get(key, len(history[key]))} points logged"
            + (f"; {len(history[key])} drawn" if len(history[key]) < points.get(key, 0) else ""),
        )
        for key in sorted(history)
    )
    artifacts = tuple(
        ArtifactView(
            a.name,
            artifact_hrefs.get(a.name, ""),
            a.media_type,
            size(a.size_bytes),
            a.sha256,
            a.media_type.startswith("image/"),
        )
        for a in data.artifacts.get(rid, [])
    )
    datasets = tuple(
        DatasetView(
            str(d["name"]),
            str(d["table_name"]),
            f"{int(d['row_count']):,}",
            size(d.get("size_bytes")),
            str(d["fingerprint"]),
            iso(d.get("created_at")),
            _schema_columns(d.get("spark_schema")),
        )
        for d in data.datasets.get(rid, [])
    )
    models = tuple(
        ModelView(
            str(m["name"]),
            str(m["model_class"]),
            f"{m['dataset_name']} (fingerprint {m['fingerprint']})" if m["dataset_id"] else "",
        )
        for m in data.models.get(rid, [])
    )
    transformations = tuple(
        (str(t["source"]), tuple(str(s) for s in t["chain"]))
        for t in data.transformations.get(rid, [])
    )
    return RunPage(
        title=f"Run {info.run_name}",
        root="../",
        generated=generated,
        store=store,
        experiment_name=data.experiment.name,
        experiment_href=experiment_href,
        info=details,
        run=info,
        params=tuple(sorted(data.params.get(rid, {}).items())),
        metrics=tuple(
            (k, svg.format_number(v), points.get(k, 1)) for k, v in sorted(metrics.items())
        ),
        tags=tuple(sorted(data.tags.get(rid, {}).items())),
        artifacts=artifacts,
        datasets=datasets,
        transformations=transformations,
        models=models,
        lineage=lineage,
        history_charts=charts,
    )
