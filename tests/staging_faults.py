"""A training process that dies in the middle of ``log_dataset`` (issue 8, point 4).

Run by tests/test_staging.py in its own process, which it kills with SIGKILL: it starts a
run and logs a 4-partition dataset on local[2] whose partition 1 writes ``MARKER`` and
then hangs, so the other partitions stage their rows and the write never commits.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def main(uri: str, marker: str) -> None:
    import pyspark.sql.functions as F
    from pyspark.sql import SparkSession
    from pyspark.sql.types import LongType

    import sqltrack

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sqltrack-staging-faults")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("OFF")

    def hang_in_partition_1(v):  # type: ignore[no-untyped-def]  # no hints: a plain UDF
        import time
        from pathlib import Path

        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx.partitionId() == 1 and v % 5000 == 2500:
            Path(marker).write_text(str(os.getpid()))
            time.sleep(3600)
        return v

    frame = spark.range(0, 20000, numPartitions=4).select(
        F.udf(hang_in_partition_1, LongType())("id").alias("id"),
        F.lit("x" * 200).alias("padding"),
    )
    tracker = sqltrack.connect(uri)
    with tracker.start_run():
        tracker.log_dataset(frame, "doomed")
    raise SystemExit("the write finished: the fault was not injected")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
