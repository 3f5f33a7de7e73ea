"""Artifacts stored in the database, chunked and verified, on both backends."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc

import pytest

from sqltrack import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from sqltrack.artifacts import CHUNK_SIZE


def test_log_artifact_records_size_type_and_hash(tracker, tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("a,b\n1,2\n")
    with tracker.start_run() as run:
        art = tracker.log_artifact(path)
        named = tracker.log_artifact(path, name="copies/report-2.csv")
    assert art.name == "report.csv" and named.name == "copies/report-2.csv"
    assert art.size_bytes == 8
    assert art.media_type == "text/csv"
    assert art.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert tracker.load_artifact(run.run_id, "report.csv") == b"a,b\n1,2\n"
    assert [a.name for a in tracker.list_artifacts(run.run_id)] == [
        "copies/report-2.csv",
        "report.csv",
    ]


def test_log_artifacts_directory_and_list(tracker, tmp_path):
    root = tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"A")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)))
    with tracker.start_run() as run:
        arts = tracker.log_artifacts(root)
        more = tracker.log_artifacts([root / "a.txt"])
    assert [a.name for a in arts] == ["a.txt", "sub/b.bin"]
    assert more[0].sha256 == arts[0].sha256  # same bytes again: a no-op
    assert tracker.load_artifact(run.run_id, "sub/b.bin") == bytes(range(256))


def test_text_dict_and_figure(tracker):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    with tracker.start_run() as run:
        tracker.log_text("héllo\n", "notes.txt")
        tracker.log_dict({"b": [1, 2], "a": None}, "config.json")
        png = tracker.log_figure(fig, "roc.png")
        with pytest.raises(InvalidInputError, match="JSON"):
            tracker.log_dict({"x": object()}, "bad.json")
        with pytest.raises(InvalidInputError, match="matplotlib"):
            tracker.log_figure("not a figure", "x.png")
    assert tracker.load_artifact(run.run_id, "notes.txt").decode() == "héllo\n"
    assert json.loads(tracker.load_artifact(run.run_id, "config.json")) == {"a": None, "b": [1, 2]}
    assert png.media_type == "image/png"
    assert tracker.load_artifact(run.run_id, "roc.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_artifacts_are_immutable(tracker):
    with tracker.start_run() as run:
        tracker.log_text("one", "a.txt")
        tracker.log_text("one", "a.txt")
        with pytest.raises(ConflictError, match="'a.txt'"):
            tracker.log_text("two", "a.txt")
    assert tracker.load_artifact(run.run_id, "a.txt") == b"one"


def test_missing_file_and_artifact(tracker, tmp_path):
    with tracker.start_run() as run:
        with pytest.raises(InvalidInputError, match="does not exist"):
            tracker.log_artifact(tmp_path / "nope.txt")
    with pytest.raises(NotFoundError, match="'nope'"):
        tracker.load_artifact(run.run_id, "nope")


def test_large_file_is_chunked_streamed_and_verified(tracker, tmp_path):
    size = 5 * CHUNK_SIZE + 12345  # 6 chunks; several hundred MB works the same way
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        for i in range(6):
            out.write(os.urandom(CHUNK_SIZE if i < 5 else 12345))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with tracker.start_run() as run:
        tracemalloc.start()
        art = tracker.log_artifact(path)
        _, peak_write = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert art.size_bytes == size and art.sha256 == digest
    chunks = tracker.sql(
        "SELECT count(*), max(octet_length(data)) FROM sqltrack.artifact_chunks "
        "WHERE artifact_id = ?",
        (art.artifact_id,),
    )[1][0]
    assert chunks == (6, CHUNK_SIZE)
    dst = tmp_path / "restored"
    dst.mkdir()
    tracemalloc.start()
    out = tracker.download_artifact(run.run_id, "big.bin", dst)
    _, peak_read = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out == dst / "big.bin"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    # Streaming: never the whole file in Python memory at once.
    assert peak_write < size / 2 and peak_read < size / 2


def test_tampered_chunk_is_detected_and_leaves_no_file(tracker, tmp_path):
    with tracker.start_run() as run:
        art = tracker.log_text("original content", "model.txt")
    with tracker.backend.transaction() as s:
        s.execute(
            "UPDATE sqltrack.artifact_chunks SET data = ? WHERE artifact_id = ?",
            (b"tampered content", art.artifact_id),
        )
    with pytest.raises(IntegrityError, match="'model.txt'"):
        tracker.load_artifact(run.run_id, "model.txt")
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(IntegrityError):
        tracker.download_artifact(run.run_id, "model.txt", folder / "model.txt")
    assert list(folder.iterdir()) == []  # no partial file, no temporary left behind
