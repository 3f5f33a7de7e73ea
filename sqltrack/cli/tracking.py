"""Commands over the tracking store: experiments, runs, show, sql, db upgrade."""

from __future__ import annotations

import argparse
import json

from sqltrack.cli import command, emit


def _tracker(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from sqltrack.tracking import connect

    return connect(args.uri)


@command("experiments", "List experiments.", "sqltrack experiments --format json")
def _experiments(p: argparse.ArgumentParser) -> None:
    pass


@_experiments.runner
def _run_experiments(args: argparse.Namespace) -> None:
    exps = _tracker(args).list_experiments()
    emit(
        ["experiment_id", "name", "created_at", "created_by", "tags"],
        [
            (
                e.experiment_id,
                e.name,
                e.created_at,
                e.created_by,
                json.dumps(dict(e.tags)) if e.tags else "",
            )
            for e in exps
        ],
        args.format,
    )


@command(
    "runs",
    "Search runs with MLflow's filter grammar; params, latest metrics and tags as columns.",
    "sqltrack runs --experiment demo --filter \"metrics.r2 > 0.5 and params.model = 'rf'\" "
    '--order-by "metrics.r2 DESC"',
)
def _runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", action="append", help="experiment name (repeatable)")
    p.add_argument("--filter", default="", help='filter, e.g. "metrics.r2 > 0.5"')
    p.add_argument("--order-by", action="append", help='e.g. "metrics.r2 DESC" (repeatable)')
    p.add_argument("--max-results", type=int, default=1000)


@_runs.runner
def _run_runs(args: argparse.Namespace) -> None:
    frame = _tracker(args).search_runs(
        args.experiment, args.filter, args.order_by, args.max_results
    )
    rows = list(frame.astype(object).where(frame.notna(), None).itertuples(index=False))
    emit(list(frame.columns), rows, args.format)


@command(
    "show",
    "Show one run: info, params, latest metrics and tags.",
    "sqltrack show 0123456789abcdef0123456789abcdef",
)
def _show(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")


@_show.runner
def _run_show(args: argparse.Namespace) -> None:
    run = _tracker(args).get_run(args.run_id)
    rows: list[tuple[str, str, object]] = [("info", k, v) for k, v in vars(run.info).items()]
    rows += [("param", k, v) for k, v in sorted(run.params.items())]
    rows += [("metric", k, v) for k, v in sorted(run.metrics.items())]
    rows += [("tag", k, v) for k, v in sorted(run.tags.items())]
    emit(["section", "key", "value"], rows, args.format)


@command(
    "sql",
    "Run one read-only SQL query against the store.",
    'sqltrack sql "SELECT run_id, key, value FROM sqltrack.latest_metrics" --format csv',
)
def _sql(p: argparse.ArgumentParser) -> None:
    p.add_argument("query")


@_sql.runner
def _run_sql(args: argparse.Namespace) -> None:
    columns, rows = _tracker(args).sql(args.query)
    emit(columns, rows, args.format)


@command(
    "db",
    "Schema management: 'db upgrade URI' applies pending migrations; 'db status URI' lists them.",
    "sqltrack db upgrade postgresql://root@127.0.0.1/test",
    formats=False,
)
def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("upgrade", "status"))
    p.add_argument("target", nargs="?", help="store URI (or use --uri)")


@_db.runner
def _run_db(args: argparse.Namespace) -> None:
    from sqltrack import config, schema
    from sqltrack.backends import open_backend

    backend = open_backend(config.get("uri", args.target or args.uri))
    try:
        if args.action == "upgrade":
            names = schema.upgrade(backend)
            print(
                f"{backend.uri}: applied {len(names)} migration(s)"
                + (": " + ", ".join(names) if names else "; already up to date")
            )
        else:
            done = schema.applied(backend) or {}
            for m in schema.migrations(backend.capabilities.name):
                print(f"{'applied' if m.name in done else 'pending'}  {m.name}")
    finally:
        backend.close()
