"""The ``sqltrack`` command line: each command parses, calls one library function
and formats its answer as a table, CSV or JSON.

Commands live in the modules of this package; each registers itself with
:func:`command`. Every command has help with an example (a test checks it) and
takes ``--uri`` (default: ``SQLTRACK_URI``, else ``duckdb:///tracking.duckdb``).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["COMMANDS", "Command", "command", "emit", "main"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    example: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    formats: bool = True  # takes --format table|csv|json


COMMANDS: dict[str, Command] = {}


ConfigureFn = Callable[[argparse.ArgumentParser], None]
RunFn = Callable[[argparse.Namespace], "int | None"]


class CommandBuilder:
    """What ``@command(...)`` turns a configure function into; ``@x.runner`` completes it."""

    def __init__(
        self, name: str, help: str, example: str, formats: bool, configure: ConfigureFn
    ) -> None:
        self.name, self.help, self.example = name, help, example
        self.formats, self.configure = formats, configure

    def runner(self, run: RunFn) -> RunFn:
        COMMANDS[self.name] = Command(
            self.name, self.help, self.example, self.configure, run, self.formats
        )
        return run


def command(
    name: str, help: str, example: str, *, formats: bool = True
) -> Callable[[ConfigureFn], CommandBuilder]:
    """Register a command: decorate ``configure(parser)``, then its ``run(args)`` with
    ``@<configure>.runner``. ``example`` is shown in the command's help."""

    def wrap(configure: ConfigureFn) -> CommandBuilder:
        return CommandBuilder(name, help, example, formats, configure)

    return wrap


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def emit(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> None:
    """Print rows as an aligned table, CSV or JSON (a list of objects)."""
    out = sys.stdout
    if fmt == "json":
        data = [{c: _cell(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        out.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        out.write(buffer.getvalue())
        return
    text = [[("" if v is None else str(_cell(v))) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in text:
        for i, v in enumerate(row):
            widths[i] = min(max(widths[i], len(v)), 60)
    line = "  ".join(c.ljust(widths[i]) for i, c in enumerate(columns)).rstrip()
    out.write(line + "\n" + "  ".join("-" * w for w in widths) + "\n")
    for row in text:
        cells = [
            (v if len(v) <= 60 else v[:57] + "...").ljust(widths[i]) for i, v in enumerate(row)
        ]
        out.write("  ".join(cells).rstrip() + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _load_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = argparse.ArgumentParser(
        prog="sqltrack",
        description="Database-native ML tracking: runs, metrics, models and training data "
        "as SQL tables.",
        epilog="Settings: --uri, else SQLTRACK_URI, else duckdb:///tracking.duckdb. "
        "Example (on the store `sqltrack demo` makes): sqltrack runs --experiment "
        'supply-chain-late-delivery --filter "metrics.areaUnderROC > 0.75"',
    )
    from sqltrack import __version__

    parser.add_argument(
        "--version", action="version", version=f"sqltrack {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in sorted(COMMANDS.values(), key=lambda c: c.name):
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog="Example: " + cmd.example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "--uri",
            default=None,
            help="store URI (default: SQLTRACK_URI or duckdb:///tracking.duckdb)",
        )
        if cmd.formats:
            p.add_argument(
                "--format",
                choices=("table", "csv", "json"),
                default="table",
                help="output format (default: table)",
            )
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sqltrack.errors import SqltrackError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SqltrackError as exc:
        print(f"sqltrack: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
