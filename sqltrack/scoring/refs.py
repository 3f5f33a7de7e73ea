"""Model references, MLflow's forms: ``runs:/RUN_ID/NAME`` and ``models:/NAME/VERSION`` or
``models:/NAME@ALIAS``.

``runs:/`` names a model a run stored with ``log_spark_model`` (``NAME`` defaults to
``model``, that function's default). ``models:/`` names a registered model version; the
registry is not part of sqltrack yet, so :func:`resolve_registered` refuses it with the
form that works today. When the registry lands, that one function resolves the name and
version (or alias) to the run's stored model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqltrack.backends import Backend
from sqltrack.errors import InvalidInputError, NotFoundError

__all__ = ["StoredModel", "parse", "resolve", "resolve_registered"]

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_FORMS = (
    "runs:/RUN_ID/NAME (a model stored by log_spark_model), models:/NAME/VERSION "
    "or models:/NAME@ALIAS"
)


@dataclass(frozen=True)
class StoredModel:
    """The ``sqltrack.models`` row a reference resolved to."""

    ref: str
    model_id: int
    run_id: str
    name: str
    model_class: str
    spark_version: str
    sha256: str
    chunk_count: int


@dataclass(frozen=True)
class ParsedRef:
    scheme: str  # "runs" or "models"
    run_id: str = ""
    name: str = ""
    version: int | None = None
    alias: str | None = None


def parse(ref: str) -> ParsedRef:
    """Split a model reference into its parts, naming the accepted forms when it is none."""
    if not isinstance(ref, str) or ":/" not in ref:
        raise InvalidInputError(f"model reference {ref!r} is not one of: {_FORMS}")
    scheme, _, rest = ref.partition(":/")
    if scheme == "runs":
        run_id, _, name = rest.strip("/").partition("/")
        if not _RUN_ID.match(run_id):
            raise InvalidInputError(
                f"model reference {ref!r}: {run_id!r} is not a run id (32 lowercase "
                "hexadecimal characters); use runs:/RUN_ID/NAME"
            )
        return ParsedRef("runs", run_id=run_id, name=name or "model")
    if scheme == "models":
        rest = rest.strip("/")
        if "@" in rest:
            name, _, alias = rest.partition("@")
            if name and alias:
                return ParsedRef("models", name=name, alias=alias)
        else:
            name, _, version = rest.rpartition("/")
            if name and version.isdigit():
                return ParsedRef("models", name=name, version=int(version))
        raise InvalidInputError(
            f"model reference {ref!r}: use models:/NAME/VERSION (a number) or models:/NAME@ALIAS"
        )
    raise InvalidInputError(f"model reference {ref!r} has scheme {scheme!r}; use one of: {_FORMS}")


def resolve_registered(
    backend: Backend, name: str, version: int | None, alias: str | None
) -> tuple[str, str]:
    """The ``(run_id, model name)`` a registered model version points at.

    The model registry is not part of this store yet: every registered name is unknown."""
    which = f"version {version}" if version is not None else f"alias {alias!r}"
    raise NotFoundError(
        f"registered model {name!r} ({which}) not found in {backend.uri}: sqltrack has no "
        "model registry yet; refer to the model by the run that stored it, "
        "runs:/RUN_ID/NAME (see `sqltrack models`)"
    )


def resolve(backend: Backend, ref: str) -> StoredModel:
    """The stored model ``ref`` names, or :class:`~sqltrack.NotFoundError` saying what exists."""
    parsed = parse(ref)
    if parsed.scheme == "models":
        run_id, name = resolve_registered(backend, parsed.name, parsed.version, parsed.alias)
    else:
        run_id, name = parsed.run_id, parsed.name
    with backend.session(read_only=True) as s:
        rows = s.query(
            "SELECT model_id, model_class, spark_version, sha256, chunk_count "
            "FROM sqltrack.models WHERE run_id = ? AND name = ?",
            (run_id, name),
        )
        if not rows:
            names = [
                r[0]
                for r in s.query(
                    "SELECT name FROM sqltrack.models WHERE run_id = ? ORDER BY name", (run_id,)
                )
            ]
            if not names and not s.query("SELECT 1 FROM sqltrack.runs WHERE run_id = ?", (run_id,)):
                raise NotFoundError(
                    f"model reference {ref!r}: run {run_id} does not exist in {backend.uri}"
                )
            raise NotFoundError(
                f"model reference {ref!r}: run {run_id} stored no model {name!r} (it has: "
                f"{', '.join(names) or 'none'}); store one with log_spark_model(model, name)"
            )
    model_id, model_class, spark_version, sha256, chunks = rows[0]
    return StoredModel(
        ref, int(model_id), run_id, name, model_class, spark_version, sha256, int(chunks)
    )
