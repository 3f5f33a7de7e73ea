"""The demo's registry step (issue point 6), for ``sqltrack/demo.py`` to call after it found
the best run: register its model, point the alias ``champion`` at the new version, deploy
it, and print in plain SQL what is live and which exact data trained it.

Deployment: as an exported MLflow model directory (kind ``mlflow_dir``, target
``late-delivery-mlflow_dir``) until in-database scoring is wired in; then
``kind="sql_view"`` deploys it as a scoring view instead. The demo runs again on the same
store: each invocation adds a version, moves ``champion`` to it and replaces the live
deployment (``replace=True``), so the history shows every invocation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqltrack.deployments import Deployment
    from sqltrack.tracking import Tracker

__all__ = ["LIVE_QUERY", "registry_demo_step"]

LIVE_QUERY = """SELECT target, model_name, version, alias, deployed_by, run_id,
       table_name, row_count, fingerprint
FROM sqltrack.live_deployments
WHERE target = ?"""


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    text = [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for r in text:
        lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return lines


def registry_demo_step(
    tracker: Tracker,
    run_id: str,
    *,
    name: str = "late-delivery",
    target: str | None = None,
    kind: str = "mlflow_dir",
    out_dir: str | Path = "demo-models",
    say: Callable[[str], None] = print,
) -> Deployment:
    """Register ``run_id``'s model as the next version of ``name``, set ``champion`` to it,
    deploy it to ``target`` (an MLflow directory under ``out_dir``, or a ``sql_view``), and
    print the live deployment and its training data as plain SQL and its answer."""
    version = tracker.register_model(f"runs:/{run_id}/model", name)
    tracker.set_registered_model_alias(
        name, "champion", version.version, reason="best areaUnderROC of this demo"
    )
    say(f"registered models:/{name}/{version.version} and set {name}@champion to it")
    ref = f"models:/{name}@champion"
    target = target or f"{name}-{kind}"  # a target keeps its kind: one per kind
    if kind == "mlflow_dir":
        folder = Path(out_dir) / f"{name}-v{version.version}"
        deployment = tracker.export_model(ref, folder, target=target, replace=True)
        say(f"exported {ref} to {deployment.config['path']} (MLflow model format)")
    else:
        view = {"view": "sqltrack_scoring." + name.replace("-", "_").replace(".", "_")}
        deployment = tracker.deploy(
            ref, target, kind, view if kind == "sql_view" else None, replace=True
        )
        say(f"deployed {ref} to {target} ({kind})")
    say("\n-- what is live on " + target + ", and the exact data that trained it")
    for line in LIVE_QUERY.splitlines():
        say("   " + line)
    columns, rows = tracker.sql(LIVE_QUERY, (target,))
    for line in _table(columns, rows):
        say(line)
    return deployment
