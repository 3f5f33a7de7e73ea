"""Read a stored Spark model without a JVM.

:func:`sqltrack.models.log_spark_model` stores the ``tar.gz`` of the folder Spark's
``model.write().save(path)`` wrote. This module streams the archive back from
``sqltrack.model_chunks`` (verifying its sha256), extracts it into a temporary folder and
reads Spark's own persistence format with the standard library and pyarrow:

- ``metadata/part-*``: one JSON line per stage (``class``, ``uid``, ``sparkVersion``,
  ``paramMap``, ``defaultParamMap``, and e.g. ``numClasses`` for tree ensembles);
- ``data/``: Parquet with the fitted values (coefficients, labels, tree nodes...);
- ``treesMetadata/``: Parquet with each ensemble tree's metadata and weight;
- a ``PipelineModel`` lists its stages' uids in ``paramMap.stageUids``, and keeps each
  stage in ``stages/<index>_<uid>/`` (nested pipelines are flattened).

Vectors and matrices in Parquet are Spark's UDT structs: a vector is ``(type, size,
indices, values)`` with type 0 sparse and 1 dense; a matrix is ``(type, numRows, numCols,
colPtrs, rowIndices, values, isTransposed)``, column-major unless transposed, sparse ones
in compressed-column form. :func:`vector_values` and :func:`matrix_rows` turn them into
plain lists.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqltrack import artifacts
from sqltrack.backends import Backend
from sqltrack.errors import IntegrityError
from sqltrack.models import MODEL_CHUNKS

__all__ = ["SavedStage", "matrix_rows", "read_stages", "vector_values"]


@dataclass(frozen=True)
class SavedStage:
    """One fitted stage as Spark saved it."""

    index: int  # position in the (flattened) pipeline
    class_name: str  # the JVM class, e.g. org.apache.spark.ml.feature.StringIndexerModel
    uid: str
    params: Mapping[str, Any]  # defaults overlaid by the explicitly set params
    explicit: frozenset[str]  # the names of the explicitly set params
    metadata: Mapping[str, Any]  # the whole metadata JSON
    data: tuple[dict[str, Any], ...] = ()  # rows of data/
    trees: tuple[dict[str, Any], ...] = ()  # rows of treesMetadata/
    extra: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The short class name, e.g. ``StringIndexerModel``."""
        return self.class_name.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        return f"stage {self.index} {self.name} ({self.uid})"

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


def vector_values(struct: Mapping[str, Any] | None) -> list[float]:
    """The dense values of a Spark vector struct."""
    if struct is None:
        raise IntegrityError("the stored model holds a null vector where Spark writes one")
    values = [float(v) for v in struct.get("values") or ()]
    if int(struct["type"]) == 1:
        return values
    out = [0.0] * int(struct["size"])
    for i, v in zip(struct.get("indices") or (), values, strict=True):
        out[int(i)] = v
    return out


def matrix_rows(struct: Mapping[str, Any]) -> list[list[float]]:
    """The rows of a Spark matrix struct as dense lists."""
    rows, cols = int(struct["numRows"]), int(struct["numCols"])
    values = [float(v) for v in struct.get("values") or ()]
    transposed = bool(struct.get("isTransposed"))
    out = [[0.0] * cols for _ in range(rows)]
    if int(struct["type"]) == 1:  # dense
        for r in range(rows):
            for c in range(cols):
                out[r][c] = values[r * cols + c] if transposed else values[c * rows + r]
        return out
    # sparse: CSC, or CSR when transposed (colPtrs then index rows)
    ptrs = [int(p) for p in struct["colPtrs"]]
    idx = [int(i) for i in struct["rowIndices"]]
    outer = rows if transposed else cols
    for o in range(outer):
        for k in range(ptrs[o], ptrs[o + 1]):
            if transposed:
                out[o][idx[k]] = values[k]
            else:
                out[idx[k]][o] = values[k]
    return out


def _metadata(folder: Path) -> dict[str, Any]:
    parts = sorted((folder / "metadata").glob("part-*"))
    if not parts:
        raise IntegrityError(f"the stored model has no Spark metadata in {folder.name}/metadata")
    text = parts[0].read_text(encoding="utf-8").strip().splitlines()[0]
    meta: dict[str, Any] = json.loads(text)
    return meta


def _parquet(folder: Path) -> tuple[dict[str, Any], ...]:
    import pyarrow.parquet as pq

    files = sorted(p for p in folder.glob("*.parquet"))
    rows: list[dict[str, Any]] = []
    for f in files:
        rows += pq.read_table(f).to_pylist()
    return tuple(rows)


def _stage(folder: Path, index: int, meta: dict[str, Any]) -> SavedStage:
    explicit = dict(meta.get("paramMap") or {})
    params = {**(meta.get("defaultParamMap") or {}), **explicit}
    data = _parquet(folder / "data") if (folder / "data").is_dir() else ()
    trees: tuple[dict[str, Any], ...] = ()
    if (folder / "treesMetadata").is_dir():
        trees = _parquet(folder / "treesMetadata")
    return SavedStage(
        index=index,
        class_name=str(meta.get("class", "")),
        uid=str(meta.get("uid", "")),
        params=params,
        explicit=frozenset(explicit),
        metadata=meta,
        data=data,
        trees=trees,
    )


def _walk(folder: Path, counter: list[int]) -> Iterator[SavedStage]:
    meta = _metadata(folder)
    if meta.get("class") not in (
        "org.apache.spark.ml.PipelineModel",
        "org.apache.spark.ml.Pipeline",
    ):
        counter[0] += 1
        yield _stage(folder, counter[0] - 1, meta)
        return
    uids = list((meta.get("paramMap") or {}).get("stageUids") or ())
    stages = folder / "stages"
    by_uid = {}
    if stages.is_dir():
        for d in stages.iterdir():
            head, _, uid = d.name.partition("_")
            if head.isdigit():
                by_uid[uid] = d
    for uid in uids:
        if uid not in by_uid:
            raise IntegrityError(f"the stored pipeline lists stage {uid!r} but does not hold it")
        yield from _walk(by_uid[uid], counter)


def read_stages(
    backend: Backend, model_id: int, chunks: int, sha256: str, what: str
) -> list[SavedStage]:
    """The stages of stored model ``model_id`` (a lone model is a one-stage list)."""
    with tempfile.TemporaryDirectory(prefix="sqltrack-score-") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        with archive.open("wb") as out:
            for block in artifacts.read_chunks(
                backend, MODEL_CHUNKS, model_id, chunks, sha256, what
            ):
                out.write(block)
        folder = Path(tmp) / "model"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(folder, filter="data")  # refuses absolute paths, '..' and links out
        return list(_walk(folder, [0]))
