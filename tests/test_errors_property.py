"""Property tests of the one error tree (issue 8, point 7): whatever text and numbers a
user passes, the filter/order parser, search_runs and the logging API either work or raise
a :class:`sqltrack.SqltrackError` subclass, on both backends, and a logging call that
returns has a record the store takes (``flush`` reports no refusal).

On main a 5,000-example run of the parser property found 19 crash signatures (ValueError,
OverflowError, OSError, AssertionError, UnicodeEncodeError, ...). Examples are generated
deterministically (``derandomize=True``, no example database), so CI sees the same ones.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqltrack
from sqltrack import SqltrackError
from sqltrack.search import _compile, parse_filter, parse_order_by
from tests.conftest import _reset_pg

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

# -- generators ------------------------------------------------------------------------
# Text with what breaks stores and parsers: quotes, NUL, lone surrogates, newlines,
# backslashes, non-ASCII letters.
_nasty = st.sampled_from(["'", '"', "`", "\x00", "\ud800", "\udcff", "\n", "\\", "é", "%", "_"])
_nasty_text = st.lists(st.one_of(_nasty, st.text(max_size=3)), min_size=1, max_size=8).map("".join)
_text = st.one_of(st.text(max_size=20), _nasty_text, _nasty_text)
_key_chars = string.ascii_letters + string.digits + "_-. /:"
_valid_key = st.text(alphabet=_key_chars, min_size=1, max_size=12)
_key = st.one_of(
    _valid_key,
    _valid_key,
    _text,
    st.sampled_from(["r2", "loss", "a/b", "a//b", "/a", "..", ".", "a\n", "x" * 251]),
)
_int = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), 10**400, -(10**400), 10**5000]),
)
_number = st.one_of(
    _int,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e20, 1e300, -1e300, 1e-300, 0.0, -0.0]),
)


def _literal_number(n: int | float) -> str:
    if isinstance(n, float):
        return repr(n)
    return str(n) if abs(n) < 10**4000 else "1" + "0" * 4500


def _quote(text: str, q: str) -> str:
    return q + text.replace(q, q + q) + q


_value = st.one_of(
    _number.map(_literal_number),
    st.sampled_from(["1e400", "-1e400", "1e20", "nan", "inf", "-inf", "infinity", ".5", "+3"]),
    st.builds(_quote, _text, st.sampled_from(["'", '"'])),
    st.sampled_from(["'2024-01-01'", "'2024-01-01T00:00:00+14:00'", "'0001-01-01T00:00:00+05:00'",
                     "'9999-12-31T23:59:59-05:00'", "'abc'", "''", "'1'", "'1.5'"]),
    _text,
)  # fmt: skip
_prefix = st.sampled_from(
    ["metrics", "metric", "params", "param", "tags", "tag", "attributes", "attr", "run", "foo"]
)
_attribute = st.sampled_from(
    ["run_id", "run_name", "status", "user", "start_time", "end_time", "experiment_id",
     "parent_run_id", "git_commit", "host_name", "source_name", "color"]
)  # fmt: skip
_name = st.one_of(
    _attribute,
    st.text(alphabet=_key_chars, min_size=1, max_size=10),
    st.builds(lambda t, q: q + t.replace(q, "") + q, _text, st.sampled_from(["`", '"'])),
)
_field = st.one_of(
    st.builds(lambda p, n: f"{p}.{n}", _prefix, _name),
    _attribute,
    _text,
)
_op = st.sampled_from(
    ["=", "==", "!=", "<>", "<", "<=", ">", ">=", "LIKE", "ilike", "NOT LIKE", "NOT ILIKE",
     "IN", "NOT IN", "not", ">>", "", "~"]
)  # fmt: skip


_valid_op = st.sampled_from(
    ["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "NOT LIKE", "IN", "NOT IN"]
)


@st.composite
def _clause(draw: st.DrawFn) -> str:
    if draw(st.booleans()):  # well-formed fields and operators, so values meet the typing
        kind = draw(st.sampled_from(["metrics", "params", "tags", "attributes", "attributes"]))
        name = draw(_attribute if kind == "attributes" else _name)
        field = (
            draw(st.sampled_from([f"{kind}.{name}", name]))
            if kind == "attributes"
            else (f"{kind}.{name}")
        )
        op = draw(_valid_op)
    else:
        field, op = draw(_field), draw(_op)
    if "IN" in op.upper() and draw(st.booleans()):
        values = draw(st.lists(_value, max_size=4))
        return f"{field} {op} ({', '.join(values)})"
    return f"{field} {op} {draw(_value)}"


_filter = st.one_of(
    st.lists(_clause(), max_size=4).flatmap(
        lambda cs: st.sampled_from([" AND ", " and ", " OR ", " ", ""]).map(lambda j: j.join(cs))
    ),
    _text,
)
_order_item = st.one_of(
    st.builds(lambda f, d: f"{f}{d}", _field, st.sampled_from(["", " ASC", " desc", " DOWN"])),
    _text,
    st.sampled_from(["", " ", "\n", "metrics.r2 DESC\n", "ASC", "DESC"]),
)
_order_by: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.lists(_order_item, max_size=3),
    _order_item,
    st.sampled_from([[None], [1], 5, [b"metrics.r2"]]),
)


# -- the parser alone ------------------------------------------------------------------
@settings(max_examples=2000, **SETTINGS)
@given(filter_string=_filter, order_by=_order_by)
def test_the_parser_raises_only_sqltrack_errors(filter_string: str, order_by: Any) -> None:
    try:
        for clause in parse_filter(filter_string):
            _compile(clause)
    except SqltrackError:
        pass
    try:
        parse_order_by(order_by)
    except SqltrackError:
        pass


# -- search on both backends -----------------------------------------------------------
@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store with a few runs (NaN and infinite metrics, params, tags), made once."""
    folder = tmp_path_factory.mktemp("property")
    mp = pytest.MonkeyPatch()
    mp.setenv("SQLTRACK_JOURNAL_DIR", str(folder / "journals"))
    if request.param == "duckdb":
        uri = f"duckdb:///{folder / 'store.duckdb'}"
    else:
        uri = request.getfixturevalue("pg_uri")
        _reset_pg(uri)
    tracker = sqltrack.connect(uri)
    tracker.create_experiment("exp", tags={"team": "x"})
    for i, r2 in enumerate([0.5, float("nan"), float("inf"), -1.0]):
        with tracker.start_run(run_name=f"run-{i}", tags={"team": "xy"[i % 2]}):
            tracker.log_params({"model": "rf" if i % 2 else "lr", "depth": i})
            tracker.log_metric("r2", r2, step=i)
    tracker.flush()
    yield tracker
    tracker.close()
    mp.undo()


@settings(max_examples=100, **SETTINGS)
@given(
    filter_string=_filter,
    order_by=_order_by,
    names=st.one_of(st.none(), st.lists(_text, max_size=2), _text, st.just([1])),
    max_results=st.one_of(st.integers(-2, 10), st.sampled_from([2**63, 2**70, True, 1.5])),
)
def test_search_runs_raises_only_sqltrack_errors(
    seeded: Any, filter_string: str, order_by: Any, names: Any, max_results: Any
) -> None:
    try:
        frame = seeded.search_runs(names, filter_string, order_by, max_results)
    except SqltrackError:
        return
    assert len(frame) <= max_results


# -- the logging API on both backends --------------------------------------------------
class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


_any_value = st.one_of(
    _text,
    _number,
    st.just(Fraction(10**400, 7)),
    st.builds(Decimal, st.sampled_from(["1.5", "NaN", "sNaN", "1e400", "-Infinity"])),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),
    st.sampled_from([None, True, b"bytes", [1, 2], {"a": 1}, _Unprintable(), "x" * 1_000_001]),
)
_timestamp = st.one_of(
    st.none(),
    _number,
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
    st.sampled_from(["2024-01-01", object()]),
)


@st.composite
def _call(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    kind = draw(
        st.sampled_from(
            ["log_param", "log_params", "log_metric", "log_metrics", "set_tag", "set_tags",
             "start_run", "create_experiment", "log_metric_history", "log_text", "log_dict"]
        )
    )  # fmt: skip
    if kind in ("log_param", "set_tag"):
        return kind, (draw(_key), draw(_any_value)), {}
    if kind in ("log_params", "set_tags"):
        return kind, (draw(st.dictionaries(_key, _any_value, max_size=3)),), {}
    if kind == "log_metric":
        step = draw(st.one_of(st.none(), _number, _any_value))
        return kind, (draw(_key), draw(_any_value)), {"step": step, "timestamp": draw(_timestamp)}
    if kind == "log_metrics":
        metrics = draw(st.dictionaries(_key, _any_value, max_size=3))
        return kind, (metrics,), {"step": draw(st.one_of(st.none(), _int))}
    if kind == "log_text":
        return kind, (draw(st.one_of(_text, _any_value)), draw(_key)), {}
    if kind == "log_dict":
        obj = draw(st.one_of(_any_value, st.dictionaries(_text, _any_value, max_size=2)))
        return kind, (obj, draw(_key)), {}
    if kind == "log_metric_history":
        return kind, (draw(_key), draw(st.lists(_any_value, max_size=3))), {}
    if kind == "start_run":
        tags = draw(st.one_of(st.none(), st.dictionaries(_key, _any_value, max_size=2)))
        return kind, (), {"run_name": draw(st.one_of(st.none(), _any_value)), "tags": tags}
    tags = draw(st.one_of(st.none(), st.dictionaries(_key, _any_value, max_size=2)))
    name = draw(st.one_of(_text, _any_value, st.just("n" * 2001)))
    return kind, (name,), {"tags": tags}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def logging_tracker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str]]:
    folder = tmp_path_factory.mktemp("logging")
    mp = pytest.MonkeyPatch()
    mp.setenv("SQLTRACK_JOURNAL_DIR", str(folder / "journals"))
    if request.param == "duckdb":
        uri = f"duckdb:///{folder / 'store.duckdb'}"
    else:
        uri = request.getfixturevalue("pg_uri")
        _reset_pg(uri)
    tracker = sqltrack.connect(uri)
    yield tracker, request.param
    tracker.close()
    mp.undo()


def _same_text(stored: str, logged: Any) -> bool:
    return stored == (logged if isinstance(logged, str) else str(logged))


# A DuckDB delivery opens and closes the file (about 0.1 s on this machine): fewer examples.
_LOGGING_EXAMPLES = {"duckdb": 50, "postgres": 120}


def test_logging_calls_raise_only_sqltrack_errors_and_what_returns_is_stored(
    logging_tracker: tuple[Any, str],
) -> None:
    t, backend = logging_tracker
    run_id = t.start_run(run_name="property").info.run_id

    @settings(max_examples=_LOGGING_EXAMPLES[backend], **SETTINGS)
    @given(calls=st.lists(_call(), min_size=1, max_size=4))
    def check(calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
        tags: dict[str, Any] = {}
        for kind, args, kwargs in calls:
            if kind == "start_run":
                kwargs = {**kwargs, "nested": True}
            elif kind not in ("create_experiment",):
                kwargs = {**kwargs, "run_id": run_id}
            try:
                result = getattr(t, kind)(*args, **kwargs)
            except SqltrackError:
                continue
            if kind == "start_run":
                t.end_run(run_id=result.info.run_id)
            elif kind == "set_tag":
                tags[args[0]] = args[1]
            elif kind == "set_tags":
                tags.update(args[0])
        t.flush()  # raises what the store refused on delivery: nothing may be
        stored = t.get_run(run_id)
        assert stored.info.status == "RUNNING"
        for key, value in tags.items():
            assert _same_text(stored.tags[key], value), (key, value, stored.tags[key])
        for value in stored.metrics.values():
            assert isinstance(value, float)

    try:
        check()
    finally:
        while t._active:
            t.end_run()
