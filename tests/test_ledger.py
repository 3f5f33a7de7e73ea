"""Tamper evidence (issue 9, point 3): every record sqltrack writes is in a hash chain,
and plain SQL behind sqltrack's back (an insert, a changed param of a finished run,
deleted metrics, reordered points, a reopened and closed run, an edited ledger) is
reported by `verify` with the table, the run and the key; a digest kept outside the
store proves older history unchanged. Both backends, real engines."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import sqltrack
from sqltrack import records
from sqltrack.backends import open_backend
from sqltrack.cli import main
from sqltrack.ledger import _encoding as enc
from sqltrack.ledger._tables import spec

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=timezone.utc)


def _sql(tracker: Any, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Plain SQL as the store's owner, behind sqltrack's back."""
    tracker.flush()
    with tracker.backend.session() as s:
        s.execute(statement, params)


def _found(report: Any, table: str, run_id: str | None, key: str | None = None) -> list[Any]:
    return [
        m
        for m in report.mismatches
        if m.table == table and m.run_id == run_id and (key is None or m.key == key)
    ]


def _run(tracker: Any, name: str = "rf") -> str:
    """A finished run with params, metrics (NaN, infinities, -0.0), tags and an artifact."""
    with tracker.start_run(run_name=name, tags={"team": "ml"}) as run:
        tracker.log_params({"lr": 0.1, "numTrees": 50, "note": "température ✓ 🚀"})
        tracker.log_metric_history("loss", [0.5, 0.4, float("nan"), -0.0, float("inf")])
        tracker.log_metric("tiny", 5e-324, step=7)
        tracker.log_metrics({f"m{i:02d}": i / 7 for i in range(40)}, step=3, timestamp=T0)
        tracker.set_tag("team", "ml-platform")  # tags are mutable: a new entry
        tracker.log_text("hello", "notes/readme.txt")
    tracker.set_tag("review", "approved", run_id=run.run_id)  # allowed after the end
    return run.run_id


def test_a_clean_store_verifies(tracker):
    tracker.create_experiment("churn", tags={"owner": "alice"})
    first = _run(tracker)
    with tracker.start_run(run_name="still-running") as running:
        tracker.log_metric("loss", 1.0)
        report = tracker.verify()
        assert report.ok, report.mismatches
        assert report.chains == 3  # two runs and the experiment
        assert tracker.verify(running.run_id).ok
    assert tracker.verify(first).ok
    _, rows = tracker.sql("SELECT DISTINCT table_name FROM sqltrack.ledger ORDER BY table_name")
    assert [r[0] for r in rows] == [
        "artifacts",
        "experiment_tags",
        "experiments",
        "metrics",
        "params",
        "runs",
        "tags",
    ]
    _, nulls = tracker.sql("SELECT count(*) FROM sqltrack.metrics WHERE ledger_entry IS NULL")
    assert nulls == [(0,)]
    with pytest.raises(sqltrack.NotFoundError):
        tracker.verify("0" * 32)


def test_rows_inserted_behind_sqltracks_back_are_reported(tracker):
    run_id = _run(tracker)
    _sql(
        tracker,
        "INSERT INTO sqltrack.params (run_id, key, value) VALUES (?, 'seed', '7')",
        (run_id,),
    )
    _sql(
        tracker,
        'INSERT INTO sqltrack.metrics (run_id, key, value, step, "timestamp") '
        "VALUES (?, 'auc', 0.99, 0, ?)",
        (run_id, T0),
    )
    _sql(tracker, "INSERT INTO sqltrack.tags (run_id, key, value) VALUES (?, 'x', 'y')", (run_id,))
    forged = "f" * 32
    _sql(
        tracker,
        "INSERT INTO sqltrack.runs (run_id, experiment_id, run_name, status, user_name, "
        "start_time) SELECT ?, experiment_id, 'forged', 'FINISHED', 'mallory', start_time "
        "FROM sqltrack.runs WHERE run_id = ?",
        (forged, run_id),
    )
    report = tracker.verify()
    assert not report.ok
    for table, run, key in (
        ("params", run_id, "seed"),
        ("metrics", run_id, "auc"),
        ("tags", run_id, "x"),
        ("runs", forged, forged),
    ):
        hits = _found(report, table, run, key)
        assert hits and "not in the ledger" in hits[0].problem, (table, report.mismatches)
    assert len(report.mismatches) == 4


def test_a_changed_param_of_a_finished_run_is_reported(tracker):
    run_id = _run(tracker)
    _sql(
        tracker,
        "UPDATE sqltrack.params SET value = '0.5' WHERE run_id = ? AND key = 'lr'",
        (run_id,),
    )
    report = tracker.verify()
    [hit] = report.mismatches
    assert (hit.table, hit.run_id, hit.key) == ("params", run_id, "lr")
    assert "value differs" in hit.problem and "'0.5'" in hit.problem


def test_deleting_all_metrics_of_a_run_is_reported(tracker):
    run_id = _run(tracker)
    other = _run(tracker, "untouched")
    _sql(tracker, "DELETE FROM sqltrack.metrics WHERE run_id = ?", (run_id,))
    report = tracker.verify()
    assert report.mismatches and all(m.run_id == run_id for m in report.mismatches)
    hits = _found(report, "metrics", run_id)
    assert hits and all("deleted" in m.problem for m in hits)
    keys = ", ".join(m.key for m in hits)
    for key in ("loss", "tiny", "m00", "m39"):
        assert key in keys
    assert tracker.verify(other).ok


def test_reordered_metric_points_are_reported(tracker):
    with tracker.start_run() as run:
        tracker.log_metric_history("loss", [0.5, 0.4])  # one call: one entry
        tracker.log_metric("acc", 0.7, timestamp=T0)
        tracker.flush()  # the next point goes into another delivery, another entry
        tracker.log_metric("acc", 0.8, timestamp=T0 + timedelta(seconds=1))
    assert tracker.verify().ok
    # swap the steps of the two loss points
    _sql(
        tracker,
        "UPDATE sqltrack.metrics SET step = 1 - step WHERE run_id = ? AND key = 'loss'",
        (run.run_id,),
    )
    report = tracker.verify()
    [hit] = report.mismatches
    assert (hit.table, hit.run_id, hit.key) == ("metrics", run.run_id, "loss")
    assert "step differs" in hit.problem and "reordered" in hit.problem
    _sql(
        tracker,
        "UPDATE sqltrack.metrics SET step = 1 - step WHERE run_id = ? AND key = 'loss'",
        (run.run_id,),
    )
    assert tracker.verify().ok
    # swap the ledger's numbering of the two loss points: the order is part of the record
    _, [(low, high)] = tracker.sql(
        "SELECT min(ledger_entry), max(ledger_entry) FROM sqltrack.metrics "
        "WHERE run_id = ? AND key = 'loss'",
        (run.run_id,),
    )
    _sql(
        tracker,
        "UPDATE sqltrack.metrics SET ledger_entry = ? + ? - ledger_entry "
        "WHERE run_id = ? AND key = 'loss'",
        (low, high, run.run_id),
    )
    [hit] = tracker.verify().mismatches
    assert (hit.table, hit.run_id, hit.key) == ("metrics", run.run_id, "loss")
    assert "value, step differ" in hit.problem  # the rows changed places
    _sql(
        tracker,
        "UPDATE sqltrack.metrics SET ledger_entry = ? + ? - ledger_entry "
        "WHERE run_id = ? AND key = 'loss'",
        (low, high, run.run_id),
    )
    assert tracker.verify().ok
    # swap the timestamps of the two acc points (in two entries)
    _sql(
        tracker,
        'UPDATE sqltrack.metrics SET "timestamp" = CASE WHEN value = 0.7 THEN ? ELSE ? END '
        "WHERE run_id = ? AND key = 'acc'",
        (T0 + timedelta(seconds=1), T0, run.run_id),
    )
    report = tracker.verify()
    assert len(report.mismatches) == 2
    for hit in report.mismatches:
        assert (hit.table, hit.run_id, hit.key) == ("metrics", run.run_id, "acc")
        assert "timestamp differs" in hit.problem


def test_a_run_reopened_and_closed_again_is_reported(tracker, store_uri):
    quiet = _run(tracker, "reopened-by-sql")
    _sql(
        tracker,
        "UPDATE sqltrack.runs SET status = 'RUNNING', end_time = NULL WHERE run_id = ?",
        (quiet,),
    )
    _sql(
        tracker,
        'INSERT INTO sqltrack.metrics (run_id, key, value, step, "timestamp") '
        "VALUES (?, 'loss', 0.01, 9, ?)",
        (quiet, T0),
    )
    _sql(
        tracker,
        "UPDATE sqltrack.runs SET status = 'FINISHED', end_time = ? WHERE run_id = ?",
        (datetime.now(timezone.utc), quiet),
    )
    loud = _run(tracker, "reopened-then-logged")
    _sql(
        tracker,
        "UPDATE sqltrack.runs SET status = 'RUNNING', end_time = NULL WHERE run_id = ?",
        (loud,),
    )
    with sqltrack.connect(store_uri) as later:  # another process, trusting the store
        later.log_metric("loss", 0.001, step=99, run_id=loud)
        later.end_run(run_id=loud)
    report = tracker.verify()
    [changed] = _found(report, "runs", quiet, quiet)
    assert "end_time differs" in changed.problem
    assert "not in the ledger" in _found(report, "metrics", quiet, "loss")[0].problem
    after = [m for m in report.mismatches if m.run_id == loud]
    assert {m.table for m in after} == {"metrics", "runs"}
    assert all("after the run ended" in m.problem and "reopened" in m.problem for m in after)


def test_tampering_with_the_ledger_itself_is_reported(tracker):
    run_id = _run(tracker)
    _sql(
        tracker,
        "UPDATE sqltrack.ledger SET row_digest = ? WHERE scope = ? AND seq = 2",
        ("0" * 64, run_id),
    )
    report = tracker.verify()
    assert any(m.table == "ledger" and m.key.startswith("entry 2 ") and "altered" in m.problem
               for m in _found(report, "ledger", run_id))  # fmt: skip
    _, [(seq,)] = tracker.sql(
        "SELECT seq FROM sqltrack.ledger WHERE scope = ? AND table_name = 'params' "
        "AND row_key = '[\"lr\"]'",
        (run_id,),
    )
    _sql(tracker, "DELETE FROM sqltrack.ledger WHERE scope = ? AND seq = ?", (run_id, seq))
    report = tracker.verify()
    assert any(m.key == f"entry {seq}" and "missing" in m.problem
               for m in _found(report, "ledger", run_id))  # fmt: skip
    # the param that entry vouched for is now unaccounted for
    [param] = _found(report, "params", run_id, "lr")
    assert "not in the ledger" in param.problem
    last = tracker.sql("SELECT max(seq) FROM sqltrack.ledger WHERE scope = ?", (run_id,))[1][0][0]
    _sql(tracker, "DELETE FROM sqltrack.ledger WHERE scope = ? AND seq = ?", (run_id, last))
    report = tracker.verify()
    assert any(
        "removed from or added to its end" in m.problem
        for m in _found(report, "ledger_heads", run_id)
    )


def _rewrite_chain(tracker: Any, scope: str) -> None:
    """What an attacker who knows the format can do: recompute every row digest and
    hash of a chain from the live rows, so that the store alone verifies again."""
    tracker.flush()
    with tracker.backend.transaction() as s:
        entries = s.query(
            "SELECT seq, entry_id, table_name, operation, row_key, row_digest, detail, "
            "recorded_at FROM sqltrack.ledger WHERE scope = ? ORDER BY seq",
            (scope,),
        )
        prev = enc.genesis(scope)
        for seq, entry_id, table, op, key, digest, detail, at in entries:
            if table == "params":
                t = spec(table)
                [row] = s.query(t.select(by_scope=True, by_key=True), (scope, *json.loads(key)))
                columns = [(c, enc.encode_value(v)) for c, v in zip(t.columns, row, strict=True)]
                digest = enc.row_digest(table, columns)
                detail = enc.dumps({"columns": [[c, enc.short(e)] for c, e in columns]})
            h = enc.entry_hash(prev, scope, seq, entry_id, table, op, key, digest, detail,
                               enc.micros(at))  # fmt: skip
            s.execute(
                "UPDATE sqltrack.ledger SET row_digest = ?, detail = ?, prev_hash = ?, hash = ? "
                "WHERE scope = ? AND seq = ?",
                (digest, detail, prev, h, scope, seq),
            )
            prev = h
        s.execute("UPDATE sqltrack.ledger_heads SET hash = ? WHERE scope = ?", (prev, scope))


def test_a_digest_kept_outside_proves_older_history_unchanged(tracker, capsys):
    tracker.create_experiment("audit")
    old = _run(tracker, "old")
    doomed = _run(tracker, "doomed")
    taken = tracker.ledger_digest()
    assert len(taken.digest) == 64 and taken.chains == 3
    assert tracker.ledger_digest().digest == taken.digest  # nothing logged since: the same
    # legitimate logging afterwards
    _run(tracker, "new")
    tracker.set_tag("review", "re-approved", run_id=old)
    tracker.set_experiment("audit-2")
    assert tracker.verify(against=taken.digest).ok
    # a smart attacker changes an old param and rewrites the chain to match
    _sql(
        tracker, "UPDATE sqltrack.params SET value = '0.9' WHERE run_id = ? AND key = 'lr'", (old,)
    )
    _rewrite_chain(tracker, old)
    assert tracker.verify().ok  # the store alone cannot tell
    report = tracker.verify(against=taken.digest)
    [hit] = report.mismatches
    assert (hit.table, hit.run_id) == ("ledger", old) and "rewritten" in hit.problem
    # ... or deletes a whole run with its chain
    for table in ("artifact_chunks", "metrics", "params", "tags", "artifacts", "run_leases",
                  "ledger", "ledger_heads", "runs"):  # fmt: skip
        if table == "artifact_chunks":
            where = "artifact_id IN (SELECT artifact_id FROM sqltrack.artifacts WHERE run_id = ?)"
        elif table.startswith("ledger"):
            where = "scope = ?"
        else:
            where = "run_id = ?"
        _sql(tracker, f"DELETE FROM sqltrack.{table} WHERE {where}", (doomed,))  # noqa: S608
    report = tracker.verify(against=taken.digest)
    assert any("gone" in m.problem for m in _found(report, "ledger", doomed))
    assert tracker.verify(against="0" * 64).mismatches[0].table == "ledger_digests"
    # the same through the command line: exit 1, each mismatch named
    capsys.readouterr()
    assert main(["verify", "--uri", tracker.uri, "--against", taken.digest]) == 1
    out = capsys.readouterr().out
    assert old in out and doomed in out and "rewritten" in out


def test_experiment_chains(tracker):
    tracker.create_experiment("exp", tags={"owner": "alice"})
    tracker.create_experiment("exp", tags={"owner": "bob"})  # tags are mutable
    assert tracker.verify().ok
    _sql(tracker, "DELETE FROM sqltrack.experiment_tags")
    _sql(tracker, "UPDATE sqltrack.experiments SET name = 'renamed'")  # DuckDB: after the FK rows
    report = tracker.verify()
    eid = tracker.list_experiments()[0].experiment_id
    [renamed] = _found(report, "experiments", None)
    assert renamed.key == f"experiment {eid}: {eid}" and "name differs" in renamed.problem
    [tag] = _found(report, "experiment_tags", None)
    assert tag.key == f"experiment {eid}: owner" and "deleted" in tag.problem


def test_changed_artifact_bytes_are_reported(tracker):
    run_id = _run(tracker)
    _sql(tracker, "UPDATE sqltrack.artifact_chunks SET data = ?", (b"HELLO",))
    [hit] = tracker.verify().mismatches
    assert (hit.table, hit.run_id, hit.key) == ("artifact_chunks", run_id, "notes/readme.txt")
    assert "sha256" in hit.problem


def test_records_written_with_the_ledger_off_are_reported(tracker, monkeypatch):
    tracker.create_experiment("ledger-on")
    monkeypatch.setenv("SQLTRACK_LEDGER", "off")
    with tracker.start_run() as run:
        tracker.log_metric("loss", 0.5)
    tracker.flush()
    monkeypatch.delenv("SQLTRACK_LEDGER")
    report = tracker.verify()
    assert {(m.table, m.key) for m in report.mismatches} == {
        ("runs", run.run_id),
        ("metrics", "loss"),
    }


def test_the_verify_command(tracker, capsys):
    run_id = _run(tracker)
    tracker.flush()
    capsys.readouterr()
    assert main(["verify", "--uri", tracker.uri]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["verify", "--uri", tracker.uri, "--digest", "--format", "json"]) == 0
    digest = json.loads(capsys.readouterr().out)["digest"]
    _, rows = tracker.sql("SELECT digest FROM sqltrack.ledger_digests")
    assert rows == [(digest,)]
    _sql(tracker, "UPDATE sqltrack.params SET value = '1' WHERE key = 'numTrees'")
    assert main(["verify", "--uri", tracker.uri, "--run", run_id]) == 1
    out = capsys.readouterr().out
    assert "params" in out and run_id in out and "numTrees" in out and "MISMATCH" in out
    assert main(["verify", "--uri", tracker.uri, "--digest"]) == 1  # no digest of a bad store
    assert "no digest taken" in capsys.readouterr().err


def test_the_encoding_is_exact_and_pinned():
    assert enc.encode_value(-0.0) != enc.encode_value(0.0)
    assert enc.encode_value(float("nan")) == enc.encode_value(-float("nan")) == '["d","nan"]'
    assert enc.encode_value(float("-inf")) == '["d","-inf"]'
    assert enc.encode_value(T0) == '["t",1777863721123456]'
    assert enc.encode_value(T0.astimezone(timezone(timedelta(hours=-7)))) == enc.encode_value(T0)
    assert enc.encode_value("é\U0001f680") == '"\\u00e9\\ud83d\\ude80"'
    assert enc.encode_value(True) == "true" and enc.encode_value(1) == "1"
    with pytest.raises(TypeError):
        enc.encode_value(datetime(2026, 1, 1))  # a naive timestamp is refused
    # the format is a contract: these digests must never change (format v1)
    row = [("run_id", enc.encode_value("a" * 32)), ("key", '"lr"'), ("value", '"0.1"')]
    assert enc.row_digest("params", row) == (
        "2d520e90971e6f5544515debe9e5254a40215899736c13818a75eb79ff218b3b"
    )

    def metrics(points):
        return enc.metrics_digest(*(list(c) for c in zip(*points, strict=True)))

    points = [("loss", 0.5, 1, 10), ("loss", float("nan"), 0, 10), ("acc", -0.0, 0, 11)]
    digest, detail = metrics(points)
    assert digest != metrics(list(reversed(points)))[0]  # the order is part of the record
    swapped = [("loss", 0.5, 0, 10), ("loss", float("nan"), 1, 10), ("acc", -0.0, 0, 11)]
    assert digest != metrics(swapped)[0]  # the same values at other steps
    assert digest != metrics([*points[:2], ("acc", 0.0, 0, 11)])[0]  # -0.0 is not 0.0
    assert detail["rows"] == 3 and {k: n for k, (n, _) in detail["keys"].items()} == {
        "acc": 1,
        "loss": 2,
    }
    assert digest == "c85804b547ff5cb90f642263d21cc1881588f2b2a00fb6f31e461f01d7851249"
    # format 1 (the first entries, points sorted) still verifies
    assert enc.metrics_digest(*(list(c) for c in zip(*points, strict=True)), version=1)[0] == (
        "2a071e8a2a34fc28b77490dc4a4b50dd9ca3e812a19f39e5cbcebe73c0d3cd99"
    )
    # ... and it is exactly what docs/schema.md describes
    keys = [k.encode() for k, *_ in points]
    blobs = [
        b"".join(struct.pack("<I", len(k)) for k in keys) + b"".join(keys),
        b"".join(struct.pack("<d", v) for _, v, _, _ in points),
        b"".join(struct.pack("<q", s) for _, _, s, _ in points),
        b"".join(struct.pack("<q", t) for *_, t in points),
    ]
    spelled = hashlib.sha256(b"sqltrack-metrics-v2\x00" + b"3")
    for blob in blobs:
        spelled.update(b"\x00" + hashlib.sha256(blob).hexdigest().encode())
    assert spelled.hexdigest() == digest
    assert enc.metrics_digest(["é", "a"], [1.0, 2.0], [0, 0], [1, 1])[0] == (
        "54ce0af205e26256305a38f934f014087f31c3f1049410ebb35bc3093ceedf85"  # UTF-8 byte lengths
    )
    link = enc.entry_hash(enc.genesis("s"), "s", 1, 7, "params", "insert", '["lr"]', "0" * 64,
                          "{}", 0)  # fmt: skip
    assert link == "8dd8a85e6461b9a586ced767fefff69b3d7c96089cf0f144b758d8774a80e56f"
    assert enc.digest_of_heads([("s", 1, "ab"), ("a", 2, "cd")]) == (
        "2d0a87a6778be01751e5fa88a200ad9a270d1b4db8f076e7eab4df63e61177e7"
    )


def _same_run(uri: str) -> list[tuple[str, str, str]]:
    """The same records through records.apply; the run chain's (table, operation,
    digest) rows."""
    backend = open_backend(uri)
    try:
        sqltrack.connect(uri).close()  # the schema
        run_id = "c0ffee" * 5 + "00"
        batch: list[records.Record] = [
            records.RunStart(
                run_id,
                None,
                "same",
                "same",
                "alice",
                T0,
                None,
                "h",
                "s.py",
                "SCRIPT",
                None,
                (("team", "ml"),),
            ),  # fmt: skip
            records.Params(run_id, (("lr", "0.1"), ("name", "température ✓"))),
            records.Metrics(
                run_id,
                tuple(
                    (k, v, s, T0 + timedelta(microseconds=s))
                    for s, (k, v) in enumerate(
                        [("a", float("nan")), ("a", -0.0), ("b", float("inf")), ("b", 5e-324)]
                    )
                ),
            ),
            records.RunEnd(run_id, "FINISHED", T0 + timedelta(seconds=1)),
        ]
        with backend.transaction() as s:
            assert records.apply(s, batch, uri) == []
        with backend.session() as s:
            rows = s.query(
                "SELECT table_name, operation, row_digest FROM sqltrack.ledger "
                "WHERE scope = ? ORDER BY seq",
                (run_id,),
            )
        return [tuple(r) for r in rows]
    finally:
        backend.close()


def test_both_backends_encode_the_same_records_alike(tmp_path, pg_uri):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    duck = _same_run(f"duckdb:///{tmp_path / 'same.duckdb'}")
    pg = _same_run(pg_uri)
    assert duck == pg
    assert [r[:2] for r in duck] == [
        ("runs", "start"),
        ("params", "insert"),
        ("params", "insert"),
        ("tags", "set"),
        ("metrics", "append"),
        ("runs", "end"),
    ]


_WRITER = """
import sys, sqltrack
uri, run_id, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
with sqltrack.connect(uri) as t:
    for b in range(batches):
        t.log_metrics({f"m{i:03d}": i / 100 for i in range(200)}, step=b, run_id=run_id)
        t.flush(timeout=600)
    t.end_run(run_id=run_id)
print("done", flush=True)
"""


def test_writers_of_different_runs_do_not_wait_for_each_other(pg_uri, tmp_path):
    """8 writer processes on 8 runs: while one run's chain head is locked (a writer of that
    run holds it), the 7 others finish; the held one finishes once it is released."""
    from tests.conftest import _pg_connect, _reset_pg

    _reset_pg(pg_uri)
    run_ids = []
    for i in range(8):  # eight open runs, each ended by its writer
        with sqltrack.connect(pg_uri) as t:
            t.set_experiment("concurrent")
            run_ids.append(t.start_run(run_name=f"w{i}").info.run_id)
            t.flush()
    env = {**os.environ, "SQLTRACK_JOURNAL_DIR": str(tmp_path / "journals")}
    with _pg_connect(pg_uri) as lock:
        lock.autocommit = False
        lock.execute(
            "SELECT seq FROM sqltrack.ledger_heads WHERE scope = %s FOR UPDATE", (run_ids[0],)
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(_WRITER), pg_uri, rid, "3"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=env,
            )
            for rid in run_ids
        ]
        try:
            for p in procs[1:]:
                out, err = p.communicate(timeout=300)  # a hang guard, not a timing threshold
                assert p.returncode == 0 and "done" in out, err
            assert procs[0].poll() is None  # still waiting for its run's head
        finally:
            lock.rollback()
    out, err = procs[0].communicate(timeout=300)
    assert procs[0].returncode == 0 and "done" in out, err
    with sqltrack.connect(pg_uri) as t:
        report = t.verify()
        assert report.ok, report.mismatches
        _, rows = t.sql("SELECT scope, count(*) FROM sqltrack.ledger GROUP BY scope")
        per_run = {r[0]: r[1] for r in rows}
        # start, 3 metric deliveries, end
        assert all(per_run[r] == 5 for r in run_ids), per_run


def test_datasets_models_and_pipelines_are_chained(tracker, spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    df = spark.createDataFrame(
        [(34, "Paris", 1.0), (51, "Lyon", 0.0), (29, "Nice", 1.0)], ["age", "city", "label"]
    )
    model = Pipeline(
        stages=[
            StringIndexer(inputCol="city", outputCol="city_idx"),
            VectorAssembler(inputCols=["age", "city_idx"], outputCol="features"),
        ]
    ).fit(df)
    with tracker.start_run() as run:
        tracker.log_dataset(df.limit(2), name="training")
        tracker.log_dataset(df, name="training", mode="overwrite")  # legitimate: an entry
        tracker.log_pipeline_stages(model)
        tracker.log_feature_transformations(model)
        tracker.log_spark_model(model, dataset="training")
    report = tracker.verify()
    assert report.ok, report.mismatches
    _, ops = tracker.sql(
        "SELECT table_name, operation, count(*) FROM sqltrack.ledger WHERE scope = ? "
        "AND table_name IN ('datasets', 'models', 'pipeline_stages', 'feature_transformations') "
        "GROUP BY table_name, operation ORDER BY table_name, operation",
        (run.run_id,),
    )
    assert [(t, o) for t, o, _ in ops] == [
        ("datasets", "insert"),
        ("datasets", "overwrite"),
        ("feature_transformations", "insert"),
        ("models", "insert"),
        ("pipeline_stages", "insert"),
    ]
    [training] = tracker.list_datasets(run.run_id)
    assert training.row_count == 3
    _sql(tracker, "UPDATE sqltrack.datasets SET row_count = 2 WHERE name = 'training'")
    _sql(tracker, f"DELETE FROM {training.table_name} WHERE age = 51")  # noqa: S608
    _sql(
        tracker,
        "UPDATE sqltrack.pipeline_stages SET stage_class = 'Tokenizer' WHERE stage_index = 0",
    )
    _sql(
        tracker, "UPDATE sqltrack.model_chunks SET data = ? WHERE chunk_index = 0", (b"\x00" * 16,)
    )
    report = tracker.verify()
    found = {(m.table, m.key) for m in report.mismatches}
    assert found == {
        ("datasets", "training"),
        (training.table_name, "training"),
        ("pipeline_stages", "0"),
        ("model_chunks", "model"),
    }, report.mismatches
    assert all(m.run_id == run.run_id for m in report.mismatches)
    [count] = _found(report, "datasets", run.run_id, "training")
    assert "row_count differs" in count.problem
    [rows] = _found(report, training.table_name, run.run_id, "training")
    assert "fingerprint" in rows.problem


def test_a_store_from_before_the_ledger_is_adopted(store_uri, capsys):
    """A store made at migration 0005 by an older sqltrack, then upgraded: its records are
    unknown to the ledger until `verify --adopt` binds them; then changes to them show."""
    from sqltrack import schema

    backend = open_backend(store_uri)
    try:
        old = [m for m in schema.migrations(backend.capabilities.name) if m.name < "0006"]
        with backend.transaction() as s:
            schema._apply_in(backend, s, old)
            s.execute("INSERT INTO sqltrack.experiments (name, created_by) VALUES ('old', 'bob')")
            for run_id, status in (("a" * 32, "FINISHED"), ("b" * 32, "RUNNING")):
                s.execute(
                    "INSERT INTO sqltrack.runs (run_id, experiment_id, run_name, status, "
                    "user_name, start_time, end_time) SELECT ?, experiment_id, 'r', ?, 'bob', "
                    "?, ? FROM sqltrack.experiments",
                    (run_id, status, T0, T0 if status == "FINISHED" else None),
                )
                s.execute("INSERT INTO sqltrack.params VALUES (?, 'lr', '0.1')", (run_id,))
                s.execute(
                    "INSERT INTO sqltrack.metrics VALUES (?, 'loss', 0.5, 0, ?)", (run_id, T0)
                )
        assert schema.upgrade(backend)[0] == "0006_ledger.sql"  # and the later ones
    finally:
        backend.close()
    with sqltrack.connect(store_uri) as tracker:
        before = tracker.verify()
        assert len(before.mismatches) == 7  # 1 experiment, 2 runs, 2 params, 2 metric keys
        assert all("not in the ledger" in m.problem for m in before.mismatches)
        capsys.readouterr()
        assert main(["verify", "--uri", tracker.uri, "--adopt"]) == 0
        assert "adopted 7 record(s)" in capsys.readouterr().err
        report = tracker.verify()
        assert report.ok and report.adopted == 7, report.mismatches
        assert main(["verify", "--uri", tracker.uri, "--adopt"]) == 0  # nothing left: a no-op
        assert "adopted 0 record(s)" in capsys.readouterr().err
        # adopted history is guarded like recorded history
        tracker.log_metric("loss", 0.4, step=1, run_id="b" * 32)  # the running run goes on
        tracker.end_run(run_id="b" * 32)
        assert tracker.verify().ok
        _sql(tracker, "UPDATE sqltrack.params SET value = '0.2' WHERE run_id = ?", ("a" * 32,))
        _sql(
            tracker,
            "UPDATE sqltrack.runs SET status = 'RUNNING', end_time = NULL WHERE run_id = ?",
            ("a" * 32,),
        )
        tracker.log_metric("loss", 0.1, step=5, run_id="a" * 32)
        report = tracker.verify()
        assert {(m.table, m.key) for m in report.mismatches} == {
            ("params", "lr"),
            ("runs", "a" * 32),
            ("metrics", "entry 4"),  # runs, params and metrics adopted: entries 1-3
        }, report.mismatches
        assert "after the run ended" in _found(report, "metrics", "a" * 32)[0].problem
        assert main(["verify", "--uri", tracker.uri, "--adopt"]) == 1  # chained runs: never adopted
