"""Artifacts stored in the database, in chunks.

A file is read and inserted chunk by chunk (``CHUNK_SIZE`` bytes each) inside one
transaction, hashing as it goes, so a file of several hundred MB never sits whole
in memory and a failure leaves no artifact behind. Reading streams the chunks
back in order and verifies the sha256 recorded at write time.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqltrack import ledger, runs
from sqltrack.backends import Backend, Session
from sqltrack.entities import Artifact
from sqltrack.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from sqltrack.identifiers import validate_key
from sqltrack.sqltext import Fragment, compose

__all__ = [
    "CHUNK_SIZE",
    "ChunkTable",
    "download",
    "list_artifacts",
    "load",
    "log_bytes",
    "log_file",
    "read_chunks",
    "write_chunks",
]

CHUNK_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class ChunkTable:
    """A table of ``(<owner>, chunk_index, data)`` rows holding one blob per owner id;
    shared by artifacts and stored models."""

    table: Fragment  # e.g. sqltrack.artifact_chunks
    owner: Fragment  # e.g. artifact_id


ARTIFACT_CHUNKS = ChunkTable(Fragment("sqltrack.artifact_chunks"), Fragment("artifact_id"))


def write_chunks(
    s: Session, chunks: ChunkTable, owner_id: int, stream: BinaryIO
) -> tuple[int, str, int]:
    """Insert ``stream`` as chunks of ``owner_id`` inside the caller's transaction,
    hashing as it goes; return ``(size_bytes, sha256, chunk_count)``."""
    sql = compose(
        "INSERT INTO {table} ({owner}, chunk_index, data) VALUES (?, ?, ?)",
        table=chunks.table,
        owner=chunks.owner,
    )
    digest = hashlib.sha256()
    size = 0
    index = 0
    for block in iter(lambda: stream.read(CHUNK_SIZE), b""):
        digest.update(block)
        size += len(block)
        s.execute(sql, (owner_id, index, block))
        index += 1
    return size, digest.hexdigest(), index


def read_chunks(
    backend: Backend, chunks: ChunkTable, owner_id: int, count: int, sha256: str, what: str
) -> Iterator[bytes]:
    """Yield the ``count`` chunks of ``owner_id`` in order, one query per chunk, then
    verify the sha256 recorded at write time (``what`` names the blob in errors)."""
    sql = compose(
        "SELECT data FROM {table} WHERE {owner} = ? AND chunk_index = ?",
        table=chunks.table,
        owner=chunks.owner,
    )
    digest = hashlib.sha256()
    for index in range(count):
        with backend.session(read_only=True) as s:
            rows = s.query(sql, (owner_id, index))
        if not rows:
            raise IntegrityError(f"{what}: chunk {index} is missing")
        block = bytes(rows[0][0])
        digest.update(block)
        yield block
    if digest.hexdigest() != sha256:
        raise IntegrityError(
            f"{what}: sha256 {digest.hexdigest()} does not match the recorded {sha256}; "
            "the stored bytes were altered"
        )


def _media_type(name: str, default: str | None = None) -> str:
    if default:
        return default
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _store(backend: Backend, run_id: str, stream: BinaryIO, name: str, media_type: str) -> Artifact:
    name = validate_key(name, "artifact name")
    with backend.transaction() as s:
        runs.require_running(s, run_id, backend.uri, "artifacts")
        existing = s.query(
            "SELECT sha256 FROM sqltrack.artifacts WHERE run_id = ? AND name = ?", (run_id, name)
        )
        if existing:
            digest = hashlib.sha256()
            for block in iter(lambda: stream.read(CHUNK_SIZE), b""):
                digest.update(block)
            if digest.hexdigest() == existing[0][0]:
                return _get(s, run_id, name, backend.uri)  # the same bytes again: a no-op
            raise ConflictError(
                f"artifact {name!r} of run {run_id} already exists with other content; "
                "artifacts are immutable records: log it under another name"
            )
        artifact_id = s.query(
            "INSERT INTO sqltrack.artifacts (run_id, name, media_type, size_bytes, sha256, "
            "chunk_count) VALUES (?, ?, ?, 0, '', 0) RETURNING artifact_id",
            (run_id, name, media_type),
        )[0][0]
        size, sha256, count = write_chunks(s, ARTIFACT_CHUNKS, artifact_id, stream)
        s.execute(
            "UPDATE sqltrack.artifacts SET size_bytes = ?, sha256 = ?, chunk_count = ? "
            "WHERE artifact_id = ?",
            (size, sha256, count, artifact_id),
        )
        ledger.record(s, "artifacts", run_id, (name,), "insert")
        return _get(s, run_id, name, backend.uri)


def log_file(backend: Backend, run_id: str, path: Path, name: str | None = None) -> Artifact:
    if not path.is_file():
        raise InvalidInputError(f"artifact file {str(path)!r} does not exist or is not a file")
    name = name if name is not None else path.name
    with path.open("rb") as stream:
        return _store(backend, run_id, stream, name, _media_type(name))


def log_files(
    backend: Backend, run_id: str, paths: str | Path | Iterable[str | Path]
) -> list[Artifact]:
    """A directory (its files, named by relative path) or a list of files."""
    if isinstance(paths, str | Path) and Path(paths).is_dir():
        root = Path(paths)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return [log_file(backend, run_id, p, p.relative_to(root).as_posix()) for p in files]
    if isinstance(paths, str | Path):
        raise InvalidInputError(f"{str(paths)!r} is not a directory; pass a folder or a list")
    return [log_file(backend, run_id, Path(p)) for p in paths]


def log_bytes(
    backend: Backend, run_id: str, data: bytes, name: str, media_type: str | None = None
) -> Artifact:
    return _store(backend, run_id, io.BytesIO(data), name, _media_type(name, media_type))


def dump_json(obj: Any, name: str) -> bytes:
    try:
        return json.dumps(obj, indent=2, sort_keys=True, allow_nan=True).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"log_dict({name!r}): the object is not JSON-serialisable: {exc}"
        ) from exc


def figure_png(figure: Any, name: str) -> bytes:
    if not hasattr(figure, "savefig"):
        raise InvalidInputError(
            f"log_figure({name!r}) needs a matplotlib Figure, not {type(figure).__name__}"
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _get(s: Session, run_id: str, name: str, uri: str) -> Artifact:
    rows = s.query(
        "SELECT artifact_id, run_id, name, media_type, size_bytes, sha256, created_at "
        "FROM sqltrack.artifacts WHERE run_id = ? AND name = ?",
        (run_id, name),
    )
    if not rows:
        raise NotFoundError(f"run {run_id} has no artifact {name!r} in {uri}")
    return Artifact(*rows[0])


def list_artifacts(backend: Backend, run_id: str) -> list[Artifact]:
    with backend.session(read_only=True) as s:
        rows = s.query(
            "SELECT artifact_id, run_id, name, media_type, size_bytes, sha256, created_at "
            "FROM sqltrack.artifacts WHERE run_id = ? ORDER BY name",
            (run_id,),
        )
    return [Artifact(*r) for r in rows]


def _chunks(backend: Backend, run_id: str, name: str) -> Iterator[bytes]:
    """Yield the chunks in order, one query per chunk, then verify the hash."""
    with backend.session(read_only=True) as s:
        art = _get(s, run_id, name, backend.uri)
        count = s.query(
            "SELECT chunk_count FROM sqltrack.artifacts WHERE artifact_id = ?", (art.artifact_id,)
        )[0][0]
    yield from read_chunks(
        backend,
        ARTIFACT_CHUNKS,
        art.artifact_id,
        count,
        art.sha256,
        f"artifact {name!r} of run {run_id}",
    )


def load(backend: Backend, run_id: str, name: str) -> bytes:
    return b"".join(_chunks(backend, run_id, name))


def download(backend: Backend, run_id: str, name: str, dst: Path) -> Path:
    """Write the artifact to ``dst`` (a file, or a folder to put it in); verified first,
    then renamed into place, so a corrupt artifact never leaves a file behind."""
    target = dst / Path(name).name if dst.is_dir() else dst
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".sqltrack-")
    try:
        with os.fdopen(fd, "wb") as out:
            for block in _chunks(backend, run_id, name):
                out.write(block)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
