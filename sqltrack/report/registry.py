"""The report's registry pages: a models page (each registered model's versions, the history
of its aliases as a timeline, its deployments) and, for each run page, the versions and
deployments that came from the run.

Self-contained like the rest of the report: Jinja2 templates ``models.html`` and
``run_registry.html`` (a section a run page includes), rendered with autoescaping and
``StrictUndefined`` from the dataclasses below; the timeline is inline SVG.

Wiring (left to the report's owner): write ``models.html`` beside ``index.html`` with
:func:`write_models_page`, link it from the index, and on each run page render
``{% include "run_registry.html" %}`` with ``registry=run_registry(backend, run_id)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from sqltrack.backends import Backend, Session

__all__ = [
    "AliasEventRow",
    "DeploymentRow",
    "ModelSection",
    "ModelsPage",
    "RunRegistry",
    "VersionRow",
    "alias_timeline",
    "build_models_page",
    "run_registry",
    "write_models_page",
]


@dataclass(frozen=True)
class VersionRow:
    name: str
    version: int
    aliases: str  # "champion, challenger"
    run_id: str
    run_href: str
    created_at: str
    user_name: str
    table_name: str  # the training data, "" when none is linked
    fingerprint: str


@dataclass(frozen=True)
class AliasEventRow:
    changed_at: str
    alias: str
    change: str  # "set to 1", "1 -> 2", "removed (was 2)"
    user_name: str
    db_user: str
    reason: str


@dataclass(frozen=True)
class DeploymentRow:
    target: str
    kind: str
    name: str
    version: int
    alias: str
    status: str  # live, undeployed, replaced
    deployed_at: str
    deployed_by: str
    ended_at: str
    run_id: str
    run_href: str
    table_name: str
    fingerprint: str
    config: str


@dataclass(frozen=True)
class ModelSection:
    name: str
    description: str
    latest_version: int | None
    tags: tuple[tuple[str, str], ...]
    versions: tuple[VersionRow, ...]
    alias_events: tuple[AliasEventRow, ...]
    timeline: Markup  # inline SVG, empty when no alias was ever set
    deployments: tuple[DeploymentRow, ...]


@dataclass(frozen=True)
class ModelsPage:
    """``models.html``: every registered model of the store."""

    title: str
    store: str
    generated: str
    index_href: str
    models: tuple[ModelSection, ...]


@dataclass(frozen=True)
class RunRegistry:
    """What a run page shows of the registry: the run's versions and their deployments."""

    versions: tuple[VersionRow, ...]
    deployments: tuple[DeploymentRow, ...]


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _versions(s: Session, where: str, params: tuple[Any, ...], href: str) -> list[VersionRow]:
    from sqltrack.sqltext import Fragment, compose

    rows = s.query(
        compose(
            "SELECT v.name, v.version, v.run_id, v.created_at, v.user_name, d.table_name, "
            "v.dataset_fingerprint, (SELECT string_agg(a.alias, ', ' ORDER BY a.alias) "
            "FROM sqltrack.model_aliases a WHERE a.name = v.name AND a.version = v.version) "
            "FROM sqltrack.model_versions v "
            "LEFT JOIN sqltrack.datasets d ON d.dataset_id = v.dataset_id {where} "
            "ORDER BY v.name, v.version DESC",
            where=Fragment(where),
        ),
        params,
    )
    return [
        VersionRow(
            r[0],
            int(r[1]),
            r[7] or "",
            r[2],
            href.format(run_id=r[2]),
            _iso(r[3]),
            r[4],
            r[5] or "",
            r[6] or "",
        )  # fmt: skip
        for r in rows
    ]


def _deployments(s: Session, where: str, params: tuple[Any, ...], href: str) -> list[DeploymentRow]:
    from sqltrack.sqltext import Fragment, compose

    rows = s.query(
        compose(
            "SELECT target, kind, model_name, version, alias, status, deployed_at, deployed_by, "
            "ended_at, run_id, table_name, fingerprint, CAST(config AS TEXT) "
            "FROM sqltrack.deployments {where} ORDER BY deployed_at, deployment_id",
            where=Fragment(where),
        ),
        params,
    )
    return [
        DeploymentRow(
            r[0],
            r[1],
            r[2],
            int(r[3]),
            r[4] or "",
            r[5],
            _iso(r[6]),
            r[7],
            _iso(r[8]),
            r[9],
            href.format(run_id=r[9]),
            r[10] or "",
            r[11] or "",
            json.dumps(json.loads(r[12]), sort_keys=True),
        )  # fmt: skip
        for r in rows
    ]


def _change(from_version: int | None, to_version: int | None) -> str:
    if from_version is None:
        return f"set to {to_version}"
    if to_version is None:
        return f"removed (was {from_version})"
    return f"{from_version} -> {to_version}"


_LANE, _LEFT, _WIDTH = 28, 110, 760
_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")


def alias_timeline(events: list[tuple[str, datetime, int | None]], now: datetime) -> Markup:
    """One lane per alias, a bar per period it pointed at a version (labelled ``vN``), from
    ``(alias, changed_at, to_version)`` events in time order; empty without events."""
    if not events:
        return Markup("")
    aliases = sorted({a for a, _, _ in events})
    start = min(t for _, t, _ in events)
    span = max((now - start).total_seconds(), 1e-6)

    def x(t: datetime) -> float:
        return _LEFT + (t - start).total_seconds() / span * (_WIDTH - _LEFT - 10)

    height = _LANE * len(aliases) + 30
    out = [
        f'<svg class="timeline" role="img" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Alias history: which version each alias pointed at, over time</title>",
    ]
    for lane, alias in enumerate(aliases):
        y = 10 + lane * _LANE
        out.append(f'<text x="4" y="{y + 15}" class="lane">{escape(alias)}</text>')
        mine = [(t, v) for a, t, v in events if a == alias]
        for i, (t, version) in enumerate(mine):
            if version is None:
                continue
            end = mine[i + 1][0] if i + 1 < len(mine) else now
            x0, x1 = x(t), max(x(end), x(t) + 2)
            colour = _COLOURS[(version - 1) % len(_COLOURS)]
            out.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="{_LANE - 8}" '
                f'fill="{colour}" data-alias="{escape(alias)}" data-version="{version}">'
                f"<title>{escape(alias)}: version {version} from {escape(_iso(t))} "
                f"to {escape(_iso(end) if i + 1 < len(mine) else 'now')}</title></rect>"
            )
            out.append(f'<text x="{x0 + 4:.1f}" y="{y + 15}" class="bar-label">v{version}</text>')
    axis_y = 10 + len(aliases) * _LANE + 12
    out.append(f'<text x="{_LEFT}" y="{axis_y}" class="axis">{escape(_iso(start))}</text>')
    out.append(f'<text x="{_WIDTH - 10}" y="{axis_y}" text-anchor="end" class="axis">now</text>')
    out.append("</svg>")
    return Markup("".join(out))


def build_models_page(
    backend: Backend,
    *,
    generated: str | None = None,
    run_href: str = "runs/{run_id}.html",
    index_href: str = "index.html",
) -> ModelsPage:
    """The context of ``models.html``; ``run_href`` formats a run page's link."""
    now = datetime.now(timezone.utc)
    sections = []
    with backend.session(read_only=True) as s:
        models = s.query(
            "SELECT r.name, r.description, (SELECT max(v.version) FROM sqltrack.model_versions v "
            "WHERE v.name = r.name) FROM sqltrack.registered_models r ORDER BY r.name"
        )
        for name, description, latest in models:
            tags = tuple(
                (k, v)
                for k, v in s.query(
                    "SELECT key, value FROM sqltrack.registered_model_tags WHERE name = ? "
                    "ORDER BY key",
                    (name,),
                )
            )
            events = s.query(
                "SELECT changed_at, alias, from_version, to_version, user_name, db_user, reason "
                "FROM sqltrack.model_alias_events WHERE name = ? ORDER BY changed_at, alias, seq",
                (name,),
            )
            sections.append(
                ModelSection(
                    name,
                    description or "",
                    None if latest is None else int(latest),
                    tags,
                    tuple(_versions(s, "WHERE v.name = ?", (name,), run_href)),
                    tuple(
                        AliasEventRow(
                            _iso(e[0]), e[1], _change(e[2], e[3]), e[4], e[5] or "", e[6] or ""
                        )
                        for e in events
                    ),
                    alias_timeline([(e[1], e[0], e[3]) for e in events], now),
                    tuple(_deployments(s, "WHERE model_name = ?", (name,), run_href)),
                )
            )
    return ModelsPage(
        "Registered models",
        backend.uri,
        generated or now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        index_href,
        tuple(sections),
    )


def run_registry(backend: Backend, run_id: str, run_href: str = "{run_id}.html") -> RunRegistry:
    """The versions registered from ``run_id``'s models and their deployments."""
    with backend.session(read_only=True) as s:
        return RunRegistry(
            tuple(_versions(s, "WHERE v.run_id = ?", (run_id,), run_href)),
            tuple(_deployments(s, "WHERE run_id = ?", (run_id,), run_href)),
        )


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("sqltrack.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_models_page(backend: Backend, out_dir: str | os.PathLike[str]) -> Path:
    """Render ``models.html`` into ``out_dir`` (created if needed); return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = _environment().get_template("models.html").render(page=build_models_page(backend))
    path = out / "models.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path
