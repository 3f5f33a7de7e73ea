"""``format("sqltrack")``: a PySpark (>= 4.0) Python Data Source that stores a
DataFrame as an ordinary SQL table of a sqltrack store, and reads it back exactly.

    import spark_datasource
    spark_datasource.register(spark)
    (df.write.format("sqltrack").option("uri", URI).option("run_id", RUN_ID)
       .option("name", "training").mode("append").save())
    spark.read.format("sqltrack").option("uri", URI).option("run_id", RUN_ID)
         .option("name", "training").load()          # or .option("dataset_id", 7)

Options: ``uri`` (default ``SQLTRACK_URI``), ``run_id``, ``name`` (default
``training``), ``dataset_id`` (reads), ``keep_order`` (writes: store the row order
and give it back on read), ``verify`` (reads, default true: check the fingerprint
first), ``partitions`` (reads), ``created_by`` (writes); the tracker also sets
``staging`` (the staging name), ``writer`` (``host/pid/start`` of the process that owns
the write) and ``retry`` (seconds each step waits for a store that is away).
Modes: ``append`` creates the dataset and fails if the run already has one of that
name; ``overwrite`` replaces it atomically while the run is RUNNING. Spark itself refuses
``errorifexists`` and ``ignore`` for Python data sources, with a message naming
``Append`` and ``Overwrite``.

Where the code runs, and why the design is what it is
-----------------------------------------------------
Spark calls ``writer()`` and ``reader()`` in planner Python processes on the
driver, ``write()`` and ``read()`` in executor Python workers (one per running
task), and ``commit()``/``abort()`` in yet another driver-side Python process; none
of them is the user's process. The writer object is pickled to each: state set in
``writer()`` is seen everywhere, state set in ``write()`` reaches ``commit()`` only
through the returned commit messages. Spark hands ``commit()`` the message of the
first successful attempt of each task, but never undoes what failed, retried or
speculative attempts wrote. So every attempt writes only into a place named by
that attempt, and ``commit()`` publishes exactly the attempts named in its messages,
in one transaction together with the catalog row, then removes the rest:

* ``writer()`` checks that the run is RUNNING and (append) that the name is free,
  runs the janitor (:mod:`sqltrack.staging`: the staging of writers that are gone is
  removed at once; ``sqltrack gc`` does the same on demand), records the write's owner
  in ``sqltrack.staging_writers`` (option ``writer``, set by the tracker to its own
  process; else the Spark driver's JVM) and creates the staging area: a table
  ``sqltrack_data._stg_<time>_<id>`` on PostgreSQL, a folder
  ``<db>.staging/_stg_<time>_<id>/`` next to a DuckDB file.
* ``write()`` receives Arrow record batches (``DataSourceArrowWriter``: no per-row
  Python) and stages them. **PostgreSQL**: binary COPY straight from Arrow through
  the ADBC PostgreSQL driver into the staging table, one transaction per attempt,
  whose transaction id is the commit message. **DuckDB**: the file admits one
  writing process, so executors never open it; each attempt streams its batches
  into its own Parquet file in the staging folder and names it in its message.
* ``commit()`` publishes in one transaction. PostgreSQL: lock the staging table,
  delete rows of any attempt not named (by ``xmin``), compute the fingerprint,
  rename to ``sqltrack_data.ds_<run_id>_<name>``, insert the catalog row. DuckDB:
  ``CREATE TABLE ... AS SELECT * FROM read_parquet(<exactly the named files>)``,
  fingerprint, catalog row; then the staging folder goes. The same transaction marks
  the writer row published, so a commit whose answer was lost is not run twice. A
  failure anywhere before that transaction commits leaves no table and no catalog
  row; ``abort()`` drops the staging. Every step that talks to the store retries
  transient errors with back-off for at most ``retry`` seconds from the first failure
  (``SQLTRACK_BULK_RETRY``).
* Reads: ``reader()`` (driver) looks the dataset up, checks its fingerprint and row
  count, and plans disjoint slices that cover every possible row, each with its row
  count (PostgreSQL heap-page ``ctid`` ranges, DuckDB ``rowid`` ranges over the real
  span, or the original partitions of a kept-order dataset); each ``read()`` checks it
  read exactly its slice's count (IntegrityError otherwise), and
  opens its own short-lived connection (DuckDB READ_ONLY, which any number of
  processes may hold) and yields Arrow record batches of exactly the stored Spark
  schema, which ``StructType.fromJson`` of the catalog's ``spark_schema`` restores
  with every field's metadata (ML attributes) and ``VectorUDT`` columns.

Connections are opened inside ``writer()``/``write()``/``commit()``/``read()`` and
closed before they return; nothing holds one on ``self``.

The cluster story: PostgreSQL works from any number of executors on any hosts
that reach the server. DuckDB needs the staging folder next to the database file
to be reachable from every executor and from the driver (local mode, or a shared
file system), because executors write Parquet there and the driver ingests it.

The tracker's ``log_dataset``/``load_dataset`` register this source through the
``sqltrack.spark_datasource`` entry point; ``sqltrack`` never imports this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SqltrackDataSource", "register"]


def register(spark: Any) -> None:
    """Register ``format("sqltrack")`` with a SparkSession."""
    from spark_datasource.source import SqltrackDataSource

    spark.dataSource.register(SqltrackDataSource)


def __getattr__(name: str) -> Any:
    if name == "SqltrackDataSource":
        from spark_datasource.source import SqltrackDataSource

        return SqltrackDataSource
    raise AttributeError(name)
