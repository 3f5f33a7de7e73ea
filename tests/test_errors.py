"""One error tree (issue 8, point 7): every measured escape is now an InvalidInputError
raised at the call, naming the bad value and the fix, on both backends.

Each test here is one case measured on main before this change (OverflowError,
ValueError, OSError, AssertionError, UnicodeEncodeError, a transient error for a value
that no retry can store, a key ending in a newline that passed validation).
"""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import sqltrack
from sqltrack import InvalidInputError
from sqltrack.identifiers import quote_ident, validate_key

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTRACK_JOURNAL_DIR", str(tmp_path / "journals"))


# -- numbers ---------------------------------------------------------------------------
def test_a_metric_beyond_double_range_is_refused_naming_it(tracker: Any) -> None:
    tracker.start_run()
    for value in (10**400, -(10**400), Fraction(10**400, 3)):  # OverflowError on main
        with pytest.raises(InvalidInputError, match=r"beyond the range of a double.*inf"):
            tracker.log_metric("k", value)
        with pytest.raises(InvalidInputError, match="beyond the range of a double"):
            tracker.log_metrics({"k": value})
    with pytest.raises(InvalidInputError, match="an integer of about 401 digits"):
        tracker.log_metric("k", 10**400)
    tracker.log_metric("k", 1.0)
    tracker.end_run()  # nothing half-written: the store took every accepted call


def test_steps_and_timestamps_out_of_range_are_refused(tracker: Any) -> None:
    tracker.start_run()
    with pytest.raises(InvalidInputError, match="BIGINT"):
        tracker.log_metric("k", 1.0, step=2**63)
    with pytest.raises(InvalidInputError, match="BIGINT"):
        tracker.log_metric("k", 1.0, step=Fraction(10**400))
    with pytest.raises(InvalidInputError, match="out of range"):
        tracker.log_metric("k", 1.0, timestamp=10**400)
    with pytest.raises(InvalidInputError, match="out of range"):
        tracker.log_metric("k", 1.0, timestamp=1e20)
    tracker.log_metric("k", 1.0, step=2**63 - 1)
    tracker.end_run()
    assert [m.step for m in tracker.get_metric_history(tracker.search_runs().run_id[0], "k")] == [
        2**63 - 1
    ]


def test_a_param_whose_text_python_cannot_make_is_refused(tracker: Any) -> None:
    tracker.start_run()
    with pytest.raises(InvalidInputError, match="cannot be turned into text"):
        tracker.log_param("p", 10**5000)  # str() refuses ints over 4,300 digits

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(InvalidInputError, match="Broken"):
        tracker.set_tag("t", Broken())
    tracker.end_run()


# -- full-string matching --------------------------------------------------------------
def test_keys_ending_in_a_newline_are_refused(tracker: Any) -> None:
    tracker.start_run()
    for key in ("loss\n", "loss\n\n", "\nloss"):  # "loss\n" passed on main
        with pytest.raises(InvalidInputError, match="characters outside"):
            tracker.log_metric(key, 1.0)
        with pytest.raises(InvalidInputError, match="characters outside"):
            tracker.log_param(key, "v")
        with pytest.raises(InvalidInputError, match="characters outside"):
            tracker.set_tag(key, "v")
    tracker.end_run()
    assert tracker.search_runs().iloc[0].filter(like="params.").empty


def test_identifiers_ending_in_a_newline_are_refused() -> None:
    from sqltrack.datasets import validate_name

    with pytest.raises(InvalidInputError, match="not a plain SQL name"):
        quote_ident("training\n")
    with pytest.raises(InvalidInputError):
        validate_key("a\n")
    with pytest.raises(InvalidInputError, match="dataset name"):
        validate_name("training\n")  # a dataset "training\n" was stored on main


# -- text that no store can hold -------------------------------------------------------
@pytest.mark.parametrize("bad", ["x\ud800y", "x\x00y"], ids=["surrogate", "NUL"])
def test_unstorable_text_is_refused_at_the_call_naming_the_field(tracker: Any, bad: str) -> None:
    match = "lone surrogate" if "\ud800" in bad else "NUL"
    with pytest.raises(InvalidInputError, match=f"experiment name.*{match}"):
        tracker.create_experiment(bad)
    with pytest.raises(InvalidInputError, match=f"tag 'owner'.*{match}"):
        tracker.create_experiment("e", tags={"owner": bad})
    with pytest.raises(InvalidInputError, match=f"run name.*{match}"):
        tracker.start_run(run_name=bad)
    with pytest.raises(InvalidInputError, match=f"tag 't'.*{match}"):
        tracker.start_run(tags={"t": bad})
    run = tracker.start_run()
    with pytest.raises(InvalidInputError, match=f"param 'p'.*{match}"):
        tracker.log_param("p", bad)
    with pytest.raises(InvalidInputError, match=f"param 'p'.*{match}"):
        tracker.log_params({"p": bad})
    with pytest.raises(InvalidInputError, match=f"tag 't'.*{match}"):
        tracker.set_tag("t", bad)
    with pytest.raises(InvalidInputError, match=f"filter.*{match}"):
        tracker.search_runs(filter_string=f"params.p = '{bad}'")
    with pytest.raises(InvalidInputError, match=match):
        tracker.search_runs(experiment_names=[bad])
    # On main the tag reached the journal and the store refused it on delivery (a
    # TerminalBackendError at a later call); now nothing of it was journaled.
    tracker.end_run()
    tracker.flush()
    assert tracker.get_run(run.info.run_id).info.status == "FINISHED"


def test_log_text_with_a_lone_surrogate_is_invalid_input(tracker: Any) -> None:
    tracker.start_run()
    with pytest.raises(InvalidInputError, match=r"log_text\('notes.txt'\).*lone surrogate"):
        tracker.log_text("x\ud800", "notes.txt")  # UnicodeEncodeError on main
    tracker.log_text("x\x00", "notes.txt")  # NUL is fine in an artifact's bytes
    assert tracker.load_artifact(tracker.active_run().info.run_id, "notes.txt") == b"x\x00"
    tracker.end_run()


def test_a_script_path_with_undecodable_bytes_still_records_its_run(
    store_uri: str, tmp_path: Path
) -> None:
    script = Path(os.fsdecode(bytes(tmp_path) + b"/train-\xff.py"))
    script.write_text(
        textwrap.dedent(f"""
            import sqltrack
            with sqltrack.connect({store_uri!r}) as t:
                with t.start_run(run_name="bytes") as run:
                    t.log_metric("x", 1.0)
                print(run.info.run_id)
        """)
    )
    out = subprocess.run(
        [sys.executable, os.fsencode(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    with sqltrack.connect(store_uri) as t:
        run = t.get_run(out.stdout.split()[-1])
    assert run.info.status == "FINISHED"
    assert run.info.source_name.endswith("train-\\udcff.py")


# -- limits of an engine ---------------------------------------------------------------
def test_a_long_experiment_name_is_refused_naming_the_limit(tracker: Any) -> None:
    # 4,000 random letters: on main PostgreSQL refused it with "index row size 4016
    # exceeds btree version 4 maximum 2704", reported as a *transient* error.
    name = "".join(random.Random(8).choices(string.ascii_letters, k=4000))
    with pytest.raises(InvalidInputError, match=r"2,000 bytes.*btree.*shorter name"):
        tracker.create_experiment(name)
    with pytest.raises(InvalidInputError, match="2,000 bytes"):
        tracker.start_run(experiment=name)
    with pytest.raises(InvalidInputError, match="2,000 bytes"):
        tracker.create_experiment("é" * 1001)  # 2,002 bytes in UTF-8
    longest = "".join(random.Random(9).choices(string.ascii_letters, k=2000))
    assert (
        tracker.create_experiment(longest) == tracker.get_experiment_by_name(longest).experiment_id
    )


# -- the filter and order parser -------------------------------------------------------
@pytest.mark.parametrize(
    ("filter_string", "order_by", "match"),
    [
        ("attributes.experiment_id = 'abc'", None, "experiment_id 'abc' is not an experiment id"),
        ("attributes.experiment_id = 1.5", None, "not an experiment id"),
        ("attributes.experiment_id = 99999999999999999999", None, "64-bit range"),
        ("attributes.experiment_id LIKE 1", None, "experiment_id is a number"),
        ("start_time > 1e20", None, "start_time 1e\\+20 is out of range for epoch milliseconds"),
        ("end_time < 'yesterday'", None, "not a time"),
        ("start_time LIKE '2024%'", None, "start_time is a time"),
        ("metrics.r2 > 1" + "0" * 5000, None, "5,001 digits"),
        ("", [""], "order_by item '' is empty"),
        ("", ["   "], "empty"),
        ("", ["metrics.r2 DESC\n"], None),  # trailing whitespace is fine
        ("", 5, "must be a list of strings"),
        ("", [None], "must be a string"),
    ],
)
def test_bad_filters_and_orders_are_invalid_input_naming_the_part(
    tracker: Any, filter_string: str, order_by: Any, match: str | None
) -> None:
    # ValueError, OSError, OverflowError, AssertionError, TypeError or a terminal
    # PostgreSQL error on main.
    with tracker.start_run():
        tracker.log_metric("r2", 0.5)
    if match is None:
        assert len(tracker.search_runs(filter_string=filter_string, order_by=order_by)) == 1
        return
    with pytest.raises(InvalidInputError, match=match):
        tracker.search_runs(filter_string=filter_string, order_by=order_by)


def test_the_accepted_grammar_keeps_its_meaning(tracker: Any) -> None:
    experiment = tracker.create_experiment("e")
    with tracker.start_run(run_name="a"):
        tracker.log_metric("r2", 0.5)
        tracker.log_param("n", 12345678901234567890)
    for f in (
        f"attributes.experiment_id = {experiment}",
        f"attributes.experiment_id = '{experiment}'",
        f"attributes.experiment_id IN ({experiment}, 99)",
        "metrics.r2 < 1e400",  # inf, as before
        "metrics.r2 < 1" + "0" * 400,  # the same number written out (OverflowError on main)
        "params.n = 12345678901234567890",  # exact past 2**53
        "start_time > 0",
        "start_time > '2000-01-01'",
    ):
        assert list(tracker.search_runs(filter_string=f).run_name) == ["a"], f
    assert tracker.search_runs(order_by="metrics.r2 DESC").run_name.tolist() == ["a"]


def test_an_in_list_longer_than_postgresql_binds_is_refused_naming_the_limit(
    tracker: Any,
) -> None:
    # 70,000 values: on main PostgreSQL reported "number of parameters must be between 0
    # and 65535" as a *transient* error; DuckDB ran it. Both refuse it now, naming the fix.
    values = ", ".join(f"'{i}'" for i in range(70_000))
    with pytest.raises(InvalidInputError, match=r"70,00\d values; the limit is 65,535.*Split"):
        tracker.search_runs(filter_string=f"params.a IN ({values})")
    values = ", ".join(f"'{i}'" for i in range(60_000))
    assert tracker.search_runs(filter_string=f"params.a IN ({values})").empty


def test_the_readme_documents_every_error_class() -> None:
    from sqltrack import errors

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Errors") :].split("\n## ", 1)[0]
    for name in errors.__all__:
        if name not in ("SqltrackError", "BackendError"):  # the root and an abstract parent
            assert f"| `{name}`" in table, name
    assert "`sqltrack.SqltrackError`" in table


def test_wrong_typed_arguments_are_invalid_input(tracker: Any, tmp_path: Path) -> None:
    # TypeError from Path(), len() or iter() on main.
    tracker.start_run()
    calls = [
        lambda: tracker.log_artifact(None),
        lambda: tracker.log_artifacts(5),
        lambda: tracker.log_artifacts([tmp_path, None]),
        lambda: tracker.log_metric_history("k", None),
        lambda: tracker.log_metric_history("k", [1.0], steps=5),
        lambda: tracker.search_runs(experiment_names=5),
        lambda: tracker.sql("SELECT ?", 5),
        lambda: tracker.write_report(None),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()
    tracker.end_run()
