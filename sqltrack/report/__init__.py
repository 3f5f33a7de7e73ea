"""The HTML report: a self-contained folder (no CDN, no server; open ``index.html``).

::

    out/index.html                 the experiment page (or a list of experiments)
    out/experiment-<id>.html       one page per experiment when there are several
    out/runs/<run_id>.html         one page per run
    out/runs/<run_id>/<artifact>   the run's artifacts, copied beside its page

Pages render from Jinja2 templates shipped in ``sqltrack/report/templates`` with
autoescaping and ``StrictUndefined``, each from one documented context dataclass
(:mod:`sqltrack.report.context`). Charts are inline SVG drawn on the server
(:mod:`sqltrack.report.svg`); the only JavaScript is a few lines inline in each
page for sorting and filtering the runs table and toggling runs in the charts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqltrack.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import jinja2

    from sqltrack.entities import RunInfo
    from sqltrack.report._data import ExperimentData
    from sqltrack.tracking import Tracker

__all__ = ["Progress", "write_report"]

Progress = Callable[[str, int, int], None]  # (what, done, total)


def _environment() -> jinja2.Environment:
    import jinja2

    from sqltrack.report import svg

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sqltrack.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates do not change during a render: no stat per page
    )
    env.filters["number"] = svg.format_number
    return env


def _lineage_lines(data: ExperimentData, info: RunInfo) -> tuple[str, ...]:
    """The lineage tree of ``sqltrack lineage``, built from the rows already loaded."""
    from sqltrack.audit import Lineage, LineageDataset, LineageModel

    run_id = info.run_id
    datasets = tuple(
        LineageDataset(
            int(d["dataset_id"]),
            str(d["name"]),
            str(d["table_name"]),
            int(d["row_count"]),
            str(d["fingerprint"]),
        )
        for d in data.datasets.get(run_id, [])
    )
    models = tuple(
        LineageModel(
            int(m["model_id"]),
            str(m["name"]),
            str(m["model_class"]),
            None if m["dataset_id"] is None else int(m["dataset_id"]),
            m["dataset_name"],
            m["fingerprint"],
        )
        for m in data.models.get(run_id, [])
    )
    return tuple(Lineage(info, data.experiment.name, datasets, models).tree())


def _export_artifacts(
    tracker: Tracker, data: ExperimentData, out: Path, progress: Progress | None
) -> dict[str, dict[str, str]]:
    """Copy every artifact beside its run page; return {run_id: {name: href}}."""
    from sqltrack import artifacts

    hrefs: dict[str, dict[str, str]] = {}
    todo = [(rid, a) for rid, arts in data.artifacts.items() for a in arts]
    for i, (rid, art) in enumerate(todo, 1):
        target = out / "runs" / rid / art.name  # names are normalised relative paths
        if not (target.is_file() and target.stat().st_size == art.size_bytes):
            target.parent.mkdir(parents=True, exist_ok=True)
            artifacts.download(tracker.backend, rid, art.name, target)
        hrefs.setdefault(rid, {})[art.name] = f"{rid}/{art.name}"
        if progress:
            progress("artifacts", i, len(todo))
    return hrefs


def write_report(
    tracker: Tracker,
    out_dir: str | os.PathLike[str],
    experiment: str | None = None,
    *,
    metric: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the report for ``experiment`` (default: every experiment with runs) into
    ``out_dir``; return the path of its ``index.html``.

    ``metric`` is the primary metric the charts use (default: the metric most runs
    logged). ``progress(what, done, total)`` is called as pages and artifacts are written.
    """
    from sqltrack.report import context
    from sqltrack.report._data import load_experiment

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"report folder {str(out)!r} is a file; pass a folder path")
    if experiment is not None:
        from sqltrack.search import require_experiments

        with tracker.backend.session(read_only=True) as s:
            require_experiments(s, tracker.uri, [experiment])  # the error `runs` gives
        experiments = [tracker.get_experiment_by_name(experiment)]
    else:
        experiments = tracker.list_experiments()
    env = _environment()
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    store = tracker.uri
    loaded = [load_experiment(tracker, e) for e in experiments]
    with_runs = [d for d in loaded if d.runs] if experiment is None else loaded
    if metric is not None and not any(metric in m for d in with_runs for m in d.metrics.values()):
        raise NotFoundError(
            f"no run in the report logged metric {metric!r}; pick one of: "
            + ", ".join(sorted({k for d in with_runs for m in d.metrics.values() for k in m}))
        )
    single = len(with_runs) == 1
    (out / "runs").mkdir(parents=True, exist_ok=True)
    links = []
    total = sum(len(d.runs) for d in with_runs)
    done = 0
    for data in with_runs:
        eid = data.experiment.experiment_id
        page_name = "index.html" if single else f"experiment-{eid}.html"
        page = context.build_experiment_page(
            data,
            generated=generated,
            store=store,
            index_href=None if single else "index.html",
            metric=metric,
        )
        _write(out / page_name, env, "experiment.html", page)
        hrefs = _export_artifacts(tracker, data, out, progress)
        for info in data.runs:
            run_page = context.build_run_page(
                data,
                info,
                generated=generated,
                store=store,
                experiment_href="../" + page_name,
                artifact_hrefs=hrefs.get(info.run_id, {}),
                lineage=_lineage_lines(data, info),
            )
            _write(out / "runs" / f"{info.run_id}.html", env, "run.html", run_page)
            done += 1
            if progress:
                progress("run pages", done, total)
        last = max((r.start_time for r in data.runs), default=None)
        links.append(
            context.ExperimentLink(
                eid, data.experiment.name, page_name, len(data.runs), context.iso(last)
            )
        )
    if not single:
        for data in loaded:
            if not data.runs:
                links.append(
                    context.ExperimentLink(
                        data.experiment.experiment_id, data.experiment.name, "", 0, ""
                    )
                )
        index = context.IndexPage("sqltrack report", "", generated, store, tuple(links))
        _write(out / "index.html", env, "index.html", index)
    return out / "index.html"


def _write(path: Path, env: jinja2.Environment, template: str, page: Any) -> None:
    html = env.get_template(template).render(page=page)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
