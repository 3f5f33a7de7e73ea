"""Audit and comparison: runs side by side, a run's lineage, and the auditor's questions.

Every answer here comes from one SQL query over documented tables and views
(``sqltrack.run_lineage``, ``sqltrack.run_summary``; see docs/schema.md), so what
the library, the CLI and the HTML report show is exactly what an auditor gets by
running the documented query in psql or duckdb.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqltrack.entities import Run, RunInfo
from sqltrack.errors import InvalidInputError, NotFoundError
from sqltrack.sqltext import compose, placeholders

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker

__all__ = [
    "AUDIT_QUERIES",
    "AuditQuery",
    "Comparison",
    "ComparisonRow",
    "Lineage",
    "LineageDataset",
    "LineageModel",
    "audit",
    "compare_runs",
    "lineage",
]


# -- comparing runs ------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonRow:
    """One param or metric across the compared runs (``None`` where a run lacks it)."""

    kind: str  # "param" or "metric"
    key: str
    values: tuple[str | float | None, ...]  # one per run, in the order asked
    differs: bool  # not the same in every run (a missing value counts as different)


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: params (as logged) and latest metrics, differences marked."""

    runs: tuple[Run, ...]
    rows: tuple[ComparisonRow, ...]

    @property
    def params(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.kind == "param")

    @property
    def metrics(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.kind == "metric")

    @property
    def differences(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.differs)

    def labels(self) -> list[str]:
        """A column heading per run: its name, plus its id prefix when names repeat."""
        names = [r.info.run_name for r in self.runs]
        return [
            f"{n} ({r.run_id[:8]})" if names.count(n) > 1 else n
            for n, r in zip(names, self.runs, strict=True)
        ]


def _same(values: Sequence[str | float | None]) -> bool:
    first = values[0]
    for v in values[1:]:
        if (
            isinstance(v, float)
            and isinstance(first, float)
            and math.isnan(v)
            and math.isnan(first)
        ):
            continue
        if v != first:
            return False
    return first is not None


def _check_ids(run_ids: Sequence[str], at_least: int) -> list[str]:
    from sqltrack.tracking import _run_id

    if isinstance(run_ids, str):
        raise InvalidInputError(
            f"run ids {run_ids!r} must be a list of run ids, not one string; "
            f"pass [{run_ids!r}, ...]"
        )
    ids = [_run_id(r) for r in run_ids]
    if len(ids) < at_least:
        raise InvalidInputError(
            f"compare needs at least {at_least} run ids, got {len(ids)}; pass two or more"
        )
    dupes = sorted({r for r in ids if ids.count(r) > 1})
    if dupes:
        raise InvalidInputError(f"run id {dupes[0]} is given twice; compare distinct runs")
    return ids


def _runs(tracker: Tracker, ids: Sequence[str]) -> list[Run]:
    """Several runs with their params, latest metrics and tags, in four queries."""
    from sqltrack.tracking import _RUN_COLUMNS

    marks = placeholders(len(ids))
    with tracker.backend.session(read_only=True) as s:
        rows = s.query(
            compose(
                "SELECT {cols} FROM sqltrack.runs WHERE run_id IN ({marks})",
                cols=_RUN_COLUMNS,
                marks=marks,
            ),
            ids,
        )
        found = {r[0]: RunInfo(*r) for r in rows}
        missing = [r for r in ids if r not in found]
        if missing:
            raise NotFoundError(f"run {missing[0]} does not exist in {tracker.uri}")
        extra: dict[str, dict[str, dict[str, Any]]] = {r: {"p": {}, "m": {}, "t": {}} for r in ids}
        for kind, sql in (
            ("p", "SELECT run_id, key, value FROM sqltrack.params WHERE run_id IN ({marks})"),
            (
                "m",
                "SELECT run_id, key, value FROM sqltrack.latest_metrics WHERE run_id IN ({marks})",
            ),
            ("t", "SELECT run_id, key, value FROM sqltrack.tags WHERE run_id IN ({marks})"),
        ):
            for run_id, key, value in s.query(compose(sql, marks=marks), ids):
                extra[run_id][kind][key] = float(value) if kind == "m" else value
    return [Run(found[r], extra[r]["p"], extra[r]["m"], extra[r]["t"]) for r in ids]


def compare_runs(tracker: Tracker, run_ids: Sequence[str]) -> Comparison:
    """Params and latest metrics of two or more runs side by side, differences marked."""
    runs = _runs(tracker, _check_ids(run_ids, 2))
    rows: list[ComparisonRow] = []
    for kind, attr in (("param", "params"), ("metric", "metrics")):
        keys = sorted({k for r in runs for k in getattr(r, attr)})
        for key in keys:
            values = tuple(getattr(r, attr).get(key) for r in runs)
            rows.append(ComparisonRow(kind, key, values, not _same(values)))
    return Comparison(tuple(runs), tuple(rows))


# -- lineage ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LineageDataset:
    """A dataset the run logged (a row of ``sqltrack.datasets``)."""

    dataset_id: int
    name: str
    table_name: str
    row_count: int
    fingerprint: str


@dataclass(frozen=True)
class LineageModel:
    """A model the run stored, with the dataset it was trained on when recorded."""

    model_id: int
    name: str
    model_class: str
    dataset_id: int | None
    dataset_name: str | None
    dataset_fingerprint: str | None


@dataclass(frozen=True)
class Lineage:
    """Where a run's results come from: who ran what code on which data, and what it made."""

    run: RunInfo
    experiment_name: str
    datasets: tuple[LineageDataset, ...]
    models: tuple[LineageModel, ...]

    def tree(self) -> list[str]:
        """The lineage as lines of a small text tree (``sqltrack lineage``)."""
        r = self.run
        ended = r.end_time.isoformat(timespec="seconds") if r.end_time else "still running"
        lines = [f"run {r.run_id} {r.run_name!r} [{r.status}]"]
        branches: list[tuple[str, list[str]]] = [
            ("experiment", [self.experiment_name]),
            (
                "user",
                [
                    r.user_name
                    + (f" on {r.host_name}" if r.host_name else "")
                    + (f" (database login {r.db_user})" if r.db_user else "")
                ],
            ),
            ("time", [f"{r.start_time.isoformat(timespec='seconds')} → {ended}"]),
            ("code", [f"{r.source_name or '?'} @ commit {r.git_commit or 'unknown'}"]),
            (
                "data",
                [
                    f"{d.name}: {d.table_name} ({d.row_count:,} rows, fingerprint {d.fingerprint})"
                    for d in self.datasets
                ]
                or ["(no dataset logged)"],
            ),
            (
                "model",
                [
                    f"{m.name}: {m.model_class}"
                    + (
                        f" (trained on {m.dataset_name}, fingerprint {m.dataset_fingerprint})"
                        if m.dataset_id is not None
                        else ""
                    )
                    for m in self.models
                ]
                or ["(no model stored)"],
            ),
        ]
        for i, (label, leaves) in enumerate(branches):
            last = i == len(branches) - 1
            if len(leaves) == 1 and label not in ("data", "model"):
                lines.append(("└── " if last else "├── ") + f"{label}: {leaves[0]}")
                continue
            lines.append(("└── " if last else "├── ") + label)
            pad = "    " if last else "│   "
            for j, leaf in enumerate(leaves):
                lines.append(pad + ("└── " if j == len(leaves) - 1 else "├── ") + leaf)
        return lines

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``sqltrack lineage --format json``)."""
        from dataclasses import asdict

        out = asdict(self)
        out["experiment"] = out.pop("experiment_name")
        for k in ("start_time", "end_time"):
            v = out["run"][k]
            out["run"][k] = v.isoformat() if isinstance(v, datetime) else v
        return out


_LINEAGE_SQL = (
    "SELECT lineage_kind, experiment_name, dataset_id, dataset_name, table_name, row_count, "
    "fingerprint, model_id, model_name, model_class FROM sqltrack.run_lineage "
    "WHERE run_id = ? ORDER BY lineage_kind, dataset_id, model_id"
)


def lineage(tracker: Tracker, run_id: str) -> Lineage:
    """A run's lineage, read from the ``sqltrack.run_lineage`` view."""
    run = tracker.get_run(run_id)
    with tracker.backend.session(read_only=True) as s:
        rows = s.query(_LINEAGE_SQL, (run.run_id,))
    experiment = rows[0][1] if rows else ""
    datasets = tuple(
        LineageDataset(int(r[2]), r[3], r[4], int(r[5]), r[6]) for r in rows if r[0] == "dataset"
    )
    models = tuple(
        LineageModel(int(r[7]), r[8], r[9], None if r[2] is None else int(r[2]), r[3], r[6])
        for r in rows
        if r[0] == "model"
    )
    return Lineage(run.info, experiment, datasets, models)


# -- the auditor's questions -----------------------------------------------------------
@dataclass(frozen=True)
class AuditQuery:
    """One auditor's question and the one documented query that answers it."""

    name: str
    question: str
    parameters: tuple[str, ...]  # what each ``?`` stands for, in order
    sql: str


AUDIT_QUERIES: dict[str, AuditQuery] = {
    q.name: q
    for q in (
        AuditQuery(
            "who-trained-what",
            "Who trained what, when, on which data?",
            (),
            "SELECT user_name, db_user, experiment_name, run_name, run_id, status, start_time,\n"
            "       end_time, lineage_kind, dataset_name, table_name, row_count, fingerprint,\n"
            "       model_name, model_class\n"
            "FROM sqltrack.run_lineage\n"
            "ORDER BY start_time, run_id, lineage_kind, dataset_id, model_id",
        ),
        AuditQuery(
            "runs-by-fingerprint",
            "Which runs used a dataset with a given fingerprint (logged it, or trained a "
            "model on it)?",
            ("fingerprint",),
            "SELECT DISTINCT experiment_name, run_id, run_name, user_name, start_time, status\n"
            "FROM sqltrack.run_lineage\n"
            "WHERE fingerprint = ?\n"
            "ORDER BY start_time, run_id",
        ),
        AuditQuery(
            "metric-history",
            "The full history of a metric for a run.",
            ("run_id", "metric key"),
            'SELECT step, "timestamp", value\n'
            "FROM sqltrack.metrics\n"
            "WHERE run_id = ? AND key = ?\n"
            'ORDER BY step, "timestamp"',
        ),
        AuditQuery(
            "failed-runs",
            "Every run that ended FAILED in a period (start inclusive, end exclusive).",
            ("period start", "period end"),
            "SELECT e.name AS experiment_name, r.run_id, r.run_name, r.user_name,\n"
            "       r.start_time, r.end_time, r.git_commit\n"
            "FROM sqltrack.runs r\n"
            "JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id\n"
            "WHERE r.status = 'FAILED'\n"
            "  AND r.end_time >= CAST(? AS TIMESTAMPTZ)\n"
            "  AND r.end_time < CAST(? AS TIMESTAMPTZ)\n"
            "ORDER BY r.end_time, r.run_id",
        ),
        AuditQuery(
            "run-diff",
            "What changed between two runs: params, data and code commit?",
            ("run_id A", "run_id B"),
            "WITH pair AS (SELECT CAST(? AS TEXT) AS a, CAST(? AS TEXT) AS b),\n"
            "facts AS (\n"
            "  SELECT run_id, 'param' AS aspect, key AS item, value FROM sqltrack.params\n"
            "  UNION ALL\n"
            "  SELECT run_id, 'data', name, fingerprint FROM sqltrack.datasets\n"
            "  UNION ALL\n"
            "  SELECT run_id, 'commit', 'git_commit', git_commit FROM sqltrack.runs\n"
            "),\n"
            "fa AS (SELECT f.* FROM facts f, pair WHERE f.run_id = pair.a),\n"
            "fb AS (SELECT f.* FROM facts f, pair WHERE f.run_id = pair.b)\n"
            "SELECT COALESCE(fa.aspect, fb.aspect) AS aspect, COALESCE(fa.item, fb.item) AS item,\n"
            "       fa.value AS value_a, fb.value AS value_b\n"
            "FROM fa FULL OUTER JOIN fb ON fa.aspect = fb.aspect AND fa.item = fb.item\n"
            "WHERE fa.value IS DISTINCT FROM fb.value\n"
            "ORDER BY aspect, item",
        ),
    )
}


def audit(
    tracker: Tracker, name: str, params: Sequence[Any] = ()
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one of :data:`AUDIT_QUERIES` (read-only); return (column names, rows)."""
    query = AUDIT_QUERIES.get(name)
    if query is None:
        raise InvalidInputError(
            f"no audit question named {name!r}; known: {', '.join(sorted(AUDIT_QUERIES))}"
        )
    if len(params) != len(query.parameters):
        wanted = ", ".join(query.parameters) or "no parameters"
        raise InvalidInputError(
            f"audit question {name!r} takes {len(query.parameters)} parameter(s) ({wanted}), "
            f"got {len(params)}"
        )
    return tracker.sql(query.sql, list(params))
