"""Run sqltrack's benchmarks: ``python -m benchmarks [NAME ...]`` from the repository root.

Every module of this package whose name does not start with ``_`` and that defines
``run(args) -> list[dict]`` is a benchmark (``tracking``, ``datasource``, ...); NAME
selects some of them, none runs them all. Each row a module returns carries a figure
(a rate or seconds) and an anchor measured in the same run (see
:mod:`benchmarks._common` for the keys). The runner prints one table with every
figure beside its anchor and their ratio, and writes the rows as JSON to
``benchmarks/results/`` (git-ignored).

``args`` is an :class:`argparse.Namespace` with:

``pg_dsn``      PostgreSQL server for scratch databases (``--pg-dsn``, else
                ``SQLTRACK_TEST_PG_DSN``, else postgresql://root@127.0.0.1:5432/test)
``backends``    the backends to measure, a subset of ``("duckdb", "postgres")``
``size``        ``full`` (the issue's sizes), ``small`` or ``tiny`` (smoke tests)
``mlflow``      False to skip the MLflow anchors (they also skip when it is not installed)
``workdir``     a scratch folder the module may use (deleted afterwards)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import pkgutil
import platform
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import benchmarks
from benchmarks._common import DEFAULT_PG_DSN, KEYS

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("duckdb", "postgres")


def available() -> list[str]:
    """Benchmark module names found in this package (a module may be absent)."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if not m.name.startswith("_") and not m.ispkg
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run sqltrack's benchmarks and print each figure beside its anchor.",
        epilog="example: python -m benchmarks tracking --backends duckdb --no-mlflow",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmark modules (default: all)")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get("SQLTRACK_TEST_PG_DSN", DEFAULT_PG_DSN),
        help="PostgreSQL server for the scratch databases (default: SQLTRACK_TEST_PG_DSN)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated subset of duckdb,postgres (default: both)",
    )
    parser.add_argument(
        "--size",
        choices=("full", "small", "tiny"),
        default="full",
        help="full: the issue's sizes; small/tiny: quicker, for trying things out",
    )
    parser.add_argument("--no-mlflow", dest="mlflow", action="store_false", help="skip MLflow")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="where the JSON results go"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (for README.md)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; use duckdb, postgres")
    args.backends = backends
    return args


def _format_figure(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if "seconds" in row:
        return f"{value:.3f} s"
    unit = row.get("unit", "/s")
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    header = ("benchmark", "backend", "figure", "anchor", "anchor figure", "ratio", "target")
    lines = []
    for r in rows:
        figure_key = "rate" if "rate" in r else "seconds"
        ratio = r.get("ratio")
        target = r.get("target", "")
        if target:
            met = r.get("met")
            target += " (met)" if met else " (MISSED)" if met is False else ""
        lines.append(
            (
                r["benchmark"],
                r["backend"],
                _format_figure(r, figure_key) if "error" not in r else "ERROR",
                r.get("anchor", ""),
                _format_figure(r, "anchor_figure"),
                f"{ratio:.2f}x" if ratio is not None else "-",
                target,
            )
        )
    if markdown:
        md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
        return "\n".join(md)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [
        " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    ]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    for mod in ("duckdb", "psycopg", "mlflow"):
        try:
            info[mod] = importlib.metadata.version(mod)
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """Run the selected modules; return their rows and whether every module succeeded."""
    found = available()
    names = args.names or found
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(
            f"no benchmark module {', '.join(missing)} in benchmarks/; available: "
            f"{', '.join(found) or 'none'}"
        )
    rows: list[dict[str, Any]] = []
    ok = True
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        if not callable(getattr(module, "run", None)):
            print(f"[{name}] has no run(args); skipped", file=sys.stderr)
            continue
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"sqltrack-bench-{name}-") as workdir:
            args.workdir = workdir
            try:
                produced = module.run(args)
            except Exception as exc:  # one module failing must not hide the others' figures
                ok = False
                traceback.print_exc()
                produced = [{"benchmark": name, "backend": "-", "anchor": "", "error": repr(exc)}]
        for row in produced:
            row.setdefault("module", name)
            lacking = [k for k in KEYS if k not in row and "error" not in row]
            if lacking or ("rate" not in row and "seconds" not in row and "error" not in row):
                ok = False
                row["error"] = f"row lacks {', '.join(lacking) or 'rate/seconds'}"
        rows += produced
        print(f"[{name}] done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(available()))
        return 0
    info = machine()
    started = datetime.now(timezone.utc)
    rows, ok = run(args)
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(format_table(rows, markdown=args.markdown))
    print(
        f"\n{info['cpus']} CPUs, load average {info.get('load_average')} before, "
        f"{info['load_average_after']} after; ratio = how many times better than the anchor"
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "started": started.isoformat(),
        "seconds": (datetime.now(timezone.utc) - started).total_seconds(),
        "argv": sys.argv[1:] if argv is None else argv,
        "size": args.size,
        "machine": info,
        "results": rows,
    }
    text = json.dumps(payload, indent=2, default=str)
    path = args.results_dir / f"{'-'.join(args.names) or 'all'}-{stamp}.json"
    path.write_text(text, encoding="utf-8")
    (args.results_dir / "latest.json").write_text(text, encoding="utf-8")
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
