"""Score in the database: compile a stored Spark model into one SQL query.

:func:`compile_model` turns a model stored with ``log_spark_model`` (a ``PipelineModel`` of
the supported stages, or one model) into one query that DuckDB or PostgreSQL runs without
Spark, a JVM or an extension; :func:`create_view` stores it as a view
(``sqltrack score MODEL_REF --source TABLE --view NAME``). The model is read from the
archive the store holds (:mod:`sqltrack.scoring.archive`); each stage follows the Spark
source file named in its module (:mod:`~sqltrack.scoring.features`,
:mod:`~sqltrack.scoring.vectors`, :mod:`~sqltrack.scoring.linear`,
:mod:`~sqltrack.scoring.trees`).

    from sqltrack import scoring
    query = scoring.compile_model(tracker, "runs:/<run_id>/model", "new_orders").sql
"""

from __future__ import annotations

from sqltrack.scoring.compiler import SUPPORTED_STAGES, CompiledModel, compile_model, create_view

__all__ = ["SUPPORTED_STAGES", "CompiledModel", "compile_model", "create_view"]
