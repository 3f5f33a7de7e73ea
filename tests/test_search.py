"""search_runs: MLflow's filter grammar compiled to bound SQL, on both backends."""

from __future__ import annotations

import pytest

from sqltrack import InvalidInputError
from sqltrack.search import parse_filter


@pytest.fixture
def runs(tracker):
    tracker.create_experiment("exp")
    made = {}
    for name, model, r2, team, fail in [
        ("a", "rf", 0.9, "x", False),
        ("b", "rf", 0.4, "y", False),
        ("c", "lr", 0.7, "y", False),
        ("d", "lr", float("nan"), "x", False),
        ("e", "rf", 0.95, "y", True),
    ]:
        try:
            with tracker.start_run(run_name=name, tags={"team": team}) as run:
                tracker.log_params({"model": model, "depth": len(name)})
                tracker.log_metric("r2", 0.0, step=0)
                tracker.log_metric("r2", r2, step=1)
                if fail:
                    raise RuntimeError("fail")
        except RuntimeError:
            pass
        made[name] = run.run_id
    tracker.create_experiment("other")
    with tracker.start_run(run_name="z") as run:
        tracker.log_metric("r2", 0.99)
    made["z"] = run.run_id
    return made


def names(frame):
    return list(frame["run_name"])


def test_issue_example_filter(tracker, runs):
    frame = tracker.search_runs(
        ["exp"],
        "metrics.r2 > 0.5 and params.model = 'rf' and tags.team != 'y' "
        "and attributes.status = 'FINISHED'",
    )
    assert names(frame) == ["a"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.r2 >= 0.7", {"a", "c", "e"}),
        ("metrics.r2 < 0.7", {"b"}),  # NaN matches no range filter
        ("metrics.r2 <= 0.4", {"b"}),
        ("metrics.r2 = 0.9", {"a"}),
        ("metrics.r2 != 0.9", {"b", "c", "d", "e"}),
        ("params.model = 'lr'", {"c", "d"}),
        ("params.model LIKE 'r%'", {"a", "b", "e"}),
        ("params.model ILIKE 'R%'", {"a", "b", "e"}),
        ("params.model IN ('lr', 'xx')", {"c", "d"}),
        ("params.model NOT IN ('lr')", {"a", "b", "e"}),
        ('tags.team = "x"', {"a", "d"}),
        ("status = 'FAILED'", {"e"}),
        ("attributes.run_name IN ('a','c')", {"a", "c"}),
        ("attributes.status != 'FINISHED' AND metrics.r2 > 0", {"e"}),
        ("metrics.`r2` > 0.91", {"e"}),
        ("metrics.r2 > 1e-1 and params.depth = '1'", {"a", "b", "c", "e"}),
        ("", {"a", "b", "c", "d", "e"}),
    ],
)
def test_operators(tracker, runs, filter_string, expected):
    assert set(names(tracker.search_runs(["exp"], filter_string))) == expected


def test_columns_follow_mlflow_convention(tracker, runs):
    frame = tracker.search_runs(["exp"], "params.model = 'rf'", order_by=["metrics.r2 DESC"])
    assert list(frame.columns) == [
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "state",
        "start_time",
        "end_time",
        "user",
        "params.depth",
        "params.model",
        "metrics.r2",
        "tags.team",
    ]
    assert names(frame) == ["e", "a", "b"]
    assert list(frame["metrics.r2"]) == [0.95, 0.9, 0.4]  # the latest value, not step 0
    assert str(frame["start_time"].dtype).startswith("datetime64")


def test_order_by_and_max_results(tracker, runs):
    frame = tracker.search_runs(["exp", "other"], order_by=["metrics.r2 ASC"], max_results=3)
    assert names(frame) == ["b", "c", "a"]
    frame = tracker.search_runs(order_by=["params.model DESC", "attributes.run_name"])
    assert names(frame)[:3] == ["a", "b", "e"]
    assert names(frame)[-1] == "z"  # no param: NULLS LAST
    assert len(tracker.search_runs()) == 6


def test_injection_attempts_are_values_not_sql(tracker, runs):
    frame = tracker.search_runs(filter_string="params.model = 'rf'' OR ''1''=''1'")
    assert frame.empty
    frame = tracker.search_runs(filter_string="params.`model; DROP TABLE sqltrack.runs` = 'x'")
    assert frame.empty
    assert len(tracker.search_runs()) == 6


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("metrics.r2 > ", "expected a value"),
        ("metrics.r2 >> 1", "cannot parse|not an operator|expected"),
        ("metrics.r2 > 'high'", "compares with a number"),
        ("metrics.r2 > 1 or params.a = 'b'", "OR is not supported"),
        ("foo.bar = 1", "unknown field"),
        ("attributes.color = 'red'", "unknown attribute"),
        ("params.a = 'x' and", "ends with AND"),
        ("params.a IN 'x'", "IN needs a list"),
        ("metrics.r2 LIKE 1", "numbers"),
        ("params.a = 'unterminated", "cannot parse"),
    ],
)
def test_malformed_filters_raise_clear_errors(tracker, bad, match):
    with pytest.raises(InvalidInputError, match=match):
        tracker.search_runs(filter_string=bad)


def test_parse_filter_structure():
    clauses = parse_filter("metrics.r2 > 0.5 AND params.`my key` IN ('a', 'b')")
    assert [(c.kind, c.key, c.op, c.values) for c in clauses] == [
        ("metrics", "r2", ">", (0.5,)),
        ("params", "my key", "IN", ("a", "b")),
    ]
