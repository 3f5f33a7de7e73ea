"""``search_runs``: MLflow's filter grammar, parsed and compiled to bound SQL.

Grammar (AND only, as in MLflow)::

    filter  := clause ( AND clause )*
    clause  := field op value | field [NOT] IN ( value, ... )
    field   := (metrics|params|tags|attributes) . name   (name may be `quoted` or "quoted")
               | an attribute name alone (status, run_name, ...)
    op      := = | != | <> | < | <= | > | >= | LIKE | ILIKE | NOT LIKE
    value   := 'text' | "text" | number

A metric clause sees the latest value of the metric (the ``latest_metrics`` view).
Keys and values become bound parameters; only sqltrack's own column names and
operators from a fixed table are ever written into the SQL text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqltrack.backends import Backend, Session
from sqltrack.errors import InvalidInputError, NotFoundError
from sqltrack.identifiers import shown, validate_text
from sqltrack.sqltext import Fragment, compose, join, placeholders

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Clause", "parse_filter", "parse_order_by", "search_runs"]

ATTRIBUTES = {
    "run_id": "run_id",
    "run_name": "run_name",
    "status": "status",
    "user": "user_name",
    "user_name": "user_name",
    "start_time": "start_time",
    "end_time": "end_time",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_run_id",
    "git_commit": "git_commit",
    "host_name": "host_name",
    "source_name": "source_name",
}
_TIME_ATTRIBUTES = {"start_time", "end_time"}
_PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_OPS = {
    "=": "=",
    "==": "=",
    "!=": "<>",
    "<>": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "LIKE": "LIKE",
    "ILIKE": "ILIKE",
    "NOT LIKE": "NOT LIKE",
    "NOT ILIKE": "NOT ILIKE",
    "IN": "IN",
    "NOT IN": "NOT IN",
}
_LISTS = ("IN", "NOT IN")
_PATTERNS = ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE")
# PostgreSQL binds at most 65,535 parameters per statement; a search over more values is
# refused on both backends alike (a filter that one backend runs, the other runs too).
MAX_BOUND_VALUES = 65_535
# Integer literals longer than this are refused (Python turns at most 4,300 digits into text).
_MAX_DIGITS = 1_000
_BIGINT = 2**63

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?
                    |inf|infinity|nan)(?![\w.]))
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),])
      | (?P<field>[A-Za-z_][A-Za-z0-9_]*\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_\-./:]+))
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class Clause:
    kind: str  # metrics | params | tags | attributes
    key: str
    op: str  # SQL operator from _OPS
    values: tuple[Any, ...]


def _tokens(text: str, what: str = "filter") -> list[tuple[str, str]]:
    out = []
    pos = 0
    validate_text(text, f"filter {text[:60]!r}")
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInputError(
                f"cannot parse {what} {text!r} at position {pos}: {text[pos : pos + 20]!r}; "
                "write clauses like metrics.r2 > 0.5 and params.model = 'rf'"
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _unquote(s: str) -> str:
    if s[:1] in '`"' and s[-1:] == s[:1]:
        return s[1:-1]
    if s[:1] == "'" and s[-1:] == "'":
        return s[1:-1].replace("''", "'")
    return s


def _field(token: tuple[str, str], text: str, what: str = "filter") -> tuple[str, str]:
    kind, raw = token
    if kind == "field":
        prefix, name = raw.split(".", 1)
        entity = _PREFIXES.get(prefix.lower())
        if entity is None:
            raise InvalidInputError(
                f"{what} {text!r}: unknown field {raw!r}; use metrics.<key>, params.<key>, "
                "tags.<key> or attributes.<name>"
            )
        name = _unquote(name)
    elif kind == "word" and token[1].lower() in ATTRIBUTES:
        entity, name = "attributes", token[1].lower()
    else:
        raise InvalidInputError(
            f"{what} {text!r}: expected a field such as metrics.r2, found {raw!r}"
        )
    if entity == "attributes" and name.lower() not in ATTRIBUTES:
        raise InvalidInputError(
            f"{what} {text!r}: unknown attribute {name!r}; known: {', '.join(sorted(ATTRIBUTES))}"
        )
    return entity, name.lower() if entity == "attributes" else name


def _value(token: tuple[str, str], text: str) -> Any:
    kind, raw = token
    if kind == "string":
        return _unquote(raw)
    if kind == "number":
        if re.fullmatch(r"[-+]?\d+", raw):
            if len(raw) > _MAX_DIGITS:
                raise InvalidInputError(
                    f"filter {text[:60]!r}: the number {raw[:20]}... has {len(raw):,} digits; "
                    f"numbers have at most {_MAX_DIGITS:,}"
                )
            return int(raw)  # exact, also past 2**53
        return float(raw)
    raise InvalidInputError(f"filter {text!r}: expected a quoted string or a number, found {raw!r}")


def _double(v: Any) -> float:
    """A number as the double it is compared as; integers past the range are ±inf, as the
    literal 1e400 is."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def parse_filter(text: str) -> list[Clause]:
    """Parse an MLflow-style filter into clauses; raise a clear error on anything else."""
    if not isinstance(text, str):
        raise InvalidInputError(f"filter_string {text!r} must be a string")
    toks = _tokens(text)
    clauses: list[Clause] = []
    i = 0
    while i < len(toks):
        if not toks[i:]:
            break
        entity, key = _field(toks[i], text)
        i += 1
        if i >= len(toks):
            raise InvalidInputError(f"filter {text!r} ends after {key!r}; expected an operator")
        kind, raw = toks[i]
        op = raw.upper() if kind in ("op", "word") else ""
        if op == "NOT" and i + 1 < len(toks) and toks[i + 1][1].upper() in ("IN", "LIKE", "ILIKE"):
            op = "NOT " + toks[i + 1][1].upper()
            i += 1
        if op not in _OPS:
            raise InvalidInputError(
                f"filter {text!r}: {raw!r} is not an operator; use =, !=, <, <=, >, >=, LIKE, "
                "ILIKE, IN or NOT IN"
            )
        i += 1
        if _OPS[op] in ("IN", "NOT IN"):
            if i >= len(toks) or toks[i] != ("punct", "("):
                raise InvalidInputError(f"filter {text!r}: IN needs a list in parentheses")
            i += 1
            values = []
            while True:
                if i >= len(toks):
                    raise InvalidInputError(f"filter {text!r}: unclosed IN list")
                values.append(_value(toks[i], text))
                i += 1
                if i < len(toks) and toks[i] == ("punct", ","):
                    i += 1
                    continue
                if i < len(toks) and toks[i] == ("punct", ")"):
                    i += 1
                    break
                raise InvalidInputError(f"filter {text!r}: expected ',' or ')' in the IN list")
        else:
            if i >= len(toks):
                raise InvalidInputError(f"filter {text!r} ends after {raw!r}; expected a value")
            values = [_value(toks[i], text)]
            i += 1
        clauses.append(_typed(Clause(entity, key, _OPS[op], tuple(values)), text))
        if i < len(toks):
            word = toks[i][1].upper()
            if word == "OR":
                raise InvalidInputError(
                    f"filter {text!r}: OR is not supported (MLflow's grammar is AND-only); "
                    "run two searches"
                )
            if word != "AND":
                raise InvalidInputError(f"filter {text!r}: expected AND, found {toks[i][1]!r}")
            i += 1
            if i >= len(toks):
                raise InvalidInputError(f"filter {text!r} ends with AND")
    return clauses


def _typed(c: Clause, text: str) -> Clause:
    if c.kind == "metrics":
        if c.op in _PATTERNS:
            raise InvalidInputError(f"filter {text!r}: metrics compare with numbers, not {c.op}")
        for v in c.values:
            if isinstance(v, str):
                raise InvalidInputError(
                    f"filter {text!r}: metric {c.key!r} compares with a number, not {v!r}"
                )
        return Clause(c.kind, c.key, c.op, tuple(_double(v) for v in c.values))
    if c.kind == "attributes" and c.key in _TIME_ATTRIBUTES:
        if c.op in _PATTERNS:
            raise InvalidInputError(
                f"filter {text!r}: {c.key} is a time; compare it with =, <, > ... and epoch "
                f"milliseconds or ISO 8601 text, not {c.op}"
            )
        return Clause(c.kind, c.key, c.op, tuple(_as_time(v, c.key, text) for v in c.values))
    if c.kind == "attributes" and c.key == "experiment_id":
        if c.op in _PATTERNS:
            raise InvalidInputError(
                f"filter {text!r}: experiment_id is a number; compare it with = or IN, not {c.op}"
            )
        return Clause(c.kind, c.key, c.op, tuple(_experiment_id(v, text) for v in c.values))
    return Clause(c.kind, c.key, c.op, tuple(str(v) for v in c.values))


def _experiment_id(v: Any, text: str) -> int:
    """An experiment id: an integer, or text or a whole float that is one."""
    number: int | None = None
    if isinstance(v, int):
        number = v
    elif isinstance(v, float) and v.is_integer():
        number = int(v)
    elif isinstance(v, str) and re.fullmatch(r"\s*[-+]?\d{1,19}\s*", v):
        number = int(v)
    if number is None:
        raise InvalidInputError(
            f"filter {text!r}: experiment_id {shown(v)} is not an experiment id; ids are "
            "whole numbers, e.g. attributes.experiment_id = 1"
        )
    if not -_BIGINT <= number < _BIGINT:
        raise InvalidInputError(
            f"filter {text!r}: experiment_id {shown(number)} is outside the 64-bit range of ids"
        )
    return number


def _as_time(v: Any, key: str, text: str) -> datetime:
    if isinstance(v, int | float):
        try:
            if not math.isfinite(v):
                raise ValueError("not finite")
            return datetime.fromtimestamp(v / 1000.0, tz=timezone.utc)  # epoch ms, as MLflow
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(
                f"filter {text!r}: {key} {shown(v)} is out of range for epoch milliseconds "
                "(years 1 to 9999); use epoch milliseconds or ISO 8601 text"
            ) from exc
    try:
        t = datetime.fromisoformat(v)
    except ValueError as exc:
        raise InvalidInputError(
            f"filter {text!r}: {v!r} is not a time; use epoch milliseconds or ISO 8601"
        ) from exc
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    try:
        t.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise InvalidInputError(
            f"filter {text!r}: {key} {v!r} is out of range (years 1 to 9999 in UTC)"
        ) from exc
    return t


_TABLES = {
    "metrics": Fragment("sqltrack.latest_metrics"),
    "params": Fragment("sqltrack.params"),
    "tags": Fragment("sqltrack.tags"),
}


def _compile(c: Clause) -> tuple[str, list[Any]]:
    marks = Fragment("(" + placeholders(len(c.values)) + ")" if c.op in _LISTS else "?")
    op = Fragment(_OPS[c.op])  # c.op is one of the fixed operators
    if c.kind == "attributes":
        column = Fragment("r." + ATTRIBUTES[c.key])
        return compose("{column} {op} {marks}", column=column, op=op, marks=marks), list(c.values)
    params = [c.key, *c.values]
    nan_guard = Fragment("")
    if c.kind == "metrics" and c.op in ("<", "<=", ">", ">="):
        # Both engines sort NaN above every number; a NaN metric matches no range filter.
        nan_guard = Fragment(" AND x.value <> ?")
        params.append(float("nan"))
    if c.kind == "metrics":
        # The comparison as a scalar subquery per run (NULL, so no match, when the run lacks
        # the metric): PostgreSQL then looks the latest value up through the metrics index
        # for each run, whatever its statistics say. EXISTS over the DISTINCT ON view let it
        # pick a nested loop over the whole view when the tables were not yet analysed
        # (1.6 s instead of 0.06 s over 10,000 runs; see benchmarks/README.md).
        sql = compose(
            "(SELECT x.value {op} {marks}{nan_guard} FROM {table} x "
            "WHERE x.run_id = r.run_id AND x.key = ?)",
            table=_TABLES[c.kind],
            op=op,
            marks=marks,
            nan_guard=nan_guard,
        )
        return sql, [*params[1:], c.key]
    sql = compose(
        "EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = ? "
        "AND x.value {op} {marks}{nan_guard})",
        table=_TABLES[c.kind],
        op=op,
        marks=marks,
        nan_guard=nan_guard,
    )
    return sql, params


def parse_order_by(items: Sequence[str] | str | None) -> list[tuple[Fragment, list[Any]]]:
    """``["metrics.r2 DESC", "start_time"]``: one field each, ASC by default."""
    if isinstance(items, str):
        items = [items]
    if items is not None and not isinstance(items, Sequence):
        raise InvalidInputError(
            f"order_by {shown(items)} must be a list of strings such as ['metrics.r2 DESC']"
        )
    out = []
    for item in items or ():
        if not isinstance(item, str):
            raise InvalidInputError(f"order_by item {shown(item)} must be a string")
        validate_text(item, f"order_by {item[:60]!r}")
        m = re.fullmatch(r"\s*(.+?)(?:\s+(ASC|DESC))?\s*", item, re.IGNORECASE | re.DOTALL)
        if m is None or not item.strip():
            raise InvalidInputError(
                f"order_by item {item!r} is empty; name a field such as metrics.r2 DESC"
            )
        toks = _tokens(m.group(1), "order_by")
        if len(toks) != 1:
            raise InvalidInputError(
                f"order_by {item!r}: expected one field such as metrics.r2 DESC"
            )
        entity, key = _field(toks[0], item, "order_by")
        direction = (m.group(2) or "ASC").upper()
        if entity == "attributes":
            expr, params = Fragment("r." + ATTRIBUTES[key]), []
        else:
            expr = Fragment(
                compose(
                    "(SELECT x.value FROM {table} x WHERE x.run_id = r.run_id AND x.key = ?)",
                    table=_TABLES[entity],
                )
            )
            params = [key]
        out.append((Fragment(expr + " " + direction + " NULLS LAST"), params))
    return out


def search_runs(
    backend: Backend,
    experiment_names: Sequence[str] | None,
    filter_string: str,
    order_by: Sequence[str] | None,
    max_results: int,
) -> pd.DataFrame:
    import pandas as pd

    if isinstance(experiment_names, str):
        experiment_names = [experiment_names]
    if experiment_names is not None and not isinstance(experiment_names, Sequence):
        raise InvalidInputError(
            f"experiment_names {shown(experiment_names)} must be a name or a list of names"
        )
    for name in experiment_names or ():
        if not isinstance(name, str):
            raise InvalidInputError(f"experiment name {shown(name)} must be a string")
        validate_text(name, f"experiment name {name[:60]!r}")
    if (
        not isinstance(max_results, int)
        or isinstance(max_results, bool)
        or not 1 <= max_results < _BIGINT
    ):
        raise InvalidInputError(
            f"max_results {shown(max_results)} must be a positive integer (below 2**63)"
        )
    where: list[Fragment] = []
    params: list[Any] = []
    if experiment_names:
        where.append(
            Fragment(
                compose(
                    "r.experiment_id IN (SELECT experiment_id FROM sqltrack.experiments "
                    "WHERE name IN ({marks}))",
                    marks=placeholders(len(experiment_names)),
                )
            )
        )
        params.extend(experiment_names)
    for clause in parse_filter(filter_string or ""):
        sql, p = _compile(clause)
        where.append(Fragment(sql))
        params.extend(p)
    order = parse_order_by(order_by)
    order_sql = [o for o, _ in order] + [Fragment("r.start_time DESC"), Fragment("r.run_id")]
    for _, p in order:
        params.extend(p)
    query = compose(
        "SELECT r.run_id, r.experiment_id, r.run_name, r.status, "
        "(SELECT l.state FROM sqltrack.run_liveness l WHERE l.run_id = r.run_id), "
        "r.start_time, r.end_time, r.user_name FROM sqltrack.runs r {where} "
        "ORDER BY {order} LIMIT ?",
        where=Fragment("WHERE " + join(" AND ", where)) if where else Fragment(""),
        order=join(", ", order_sql),
    )
    params.append(max_results)
    if len(params) > MAX_BOUND_VALUES:
        raise InvalidInputError(
            f"this search binds {len(params):,} values; the limit is {MAX_BOUND_VALUES:,} per "
            "query (PostgreSQL's bind-parameter limit). Split a long IN list over several "
            "searches, or tag the runs and filter on the tag"
        )
    with backend.session(read_only=True) as s:
        require_experiments(s, backend.uri, experiment_names or ())
        runs = s.query(query, params)
        ids = [r[0] for r in runs]
        extra: dict[str, dict[str, Any]] = {i: {} for i in ids}
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            for prefix, kind in (("params.", "params"), ("metrics.", "metrics"), ("tags.", "tags")):
                for run_id, key, value in s.query(
                    compose(
                        "SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks})",
                        table=_TABLES[kind],
                        marks=placeholders(len(part)),
                    ),
                    part,
                ):
                    extra[run_id][prefix + key] = value
    base = [
        "run_id", "experiment_id", "run_name", "status", "state", "start_time", "end_time", "user"
    ]  # fmt: skip
    records = [dict(zip(base, r, strict=True)) | extra[r[0]] for r in runs]
    dynamic = sorted(
        {k for e in extra.values() for k in e},
        key=lambda k: (("params.", "metrics.", "tags.").index(k[: k.index(".") + 1]), k),
    )
    frame = pd.DataFrame.from_records(records, columns=base + dynamic)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in dynamic:
        if col.startswith("metrics."):
            frame[col] = frame[col].astype("float64")
    return frame


def require_experiments(s: Session, uri: str, names: Sequence[str]) -> None:
    """An unknown experiment name is an error (as in ``get_experiment_by_name``), not an
    empty answer that looks like a search without matches."""
    if not names:
        return
    found = {
        r[0]
        for r in s.query(
            compose(
                "SELECT name FROM sqltrack.experiments WHERE name IN ({marks})",
                marks=placeholders(len(names)),
            ),
            list(names),
        )
    }
    missing = [n for n in names if n not in found]
    if missing:
        known = [r[0] for r in s.query("SELECT name FROM sqltrack.experiments ORDER BY name")]
        raise NotFoundError(
            f"no experiment named {missing[0]!r} in {uri}; known experiments: "
            + (", ".join(repr(k) for k in known[:20]) or "none yet")
            + ("" if len(known) <= 20 else f" and {len(known) - 20} more")
        )
