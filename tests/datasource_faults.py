"""Injected task failures under local[2,3] (task retries allowed), for one store URI.

Run by tests/test_datasource.py in its own process, because the suite's shared Spark
is local[2], which never retries a task. Prints one JSON line with what it found.
Partition 1's first attempt fails (a) mid-stream, from a UDF upstream of the writer,
and (b) after its rows were staged and committed, through the data source's
SQLTRACK_TEST_FAIL_AFTER_STAGE hook (set by the caller). Both are retried.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _failed_tasks(spark, group: str) -> int:  # type: ignore[no-untyped-def]
    tracker = spark.sparkContext.statusTracker()
    failed = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else ():
            stage = tracker.getStageInfo(stage_id)
            failed += stage.numFailedTasks if stage else 0
    return failed


def main(uri: str) -> None:
    import pyspark.sql.functions as F
    from pyspark.sql import SparkSession
    from pyspark.sql.types import LongType

    import sqltrack
    from sqltrack import datasets

    spark = (
        SparkSession.builder.master("local[2,3]")
        .appName("sqltrack-faults")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("OFF")

    def fail_first_attempt(v):  # type: ignore[no-untyped-def]  # no hints: a plain UDF
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx.partitionId() == 1 and ctx.attemptNumber() == 0 and v % 1000 == 500:
            raise RuntimeError("injected mid-stream failure")
        return v

    udf = F.udf(fail_first_attempt, LongType())
    tracker = sqltrack.connect(uri)
    result = {}
    with tracker.start_run() as run:
        for scenario in ("mid_stream", "after_stage"):
            frame = spark.range(0, 4000, numPartitions=4)
            if scenario == "mid_stream":
                frame = frame.select(udf("id").alias("id"))
            spark.sparkContext.setJobGroup(scenario, scenario)
            tracker.log_dataset(frame, scenario)
            loaded = tracker.load_dataset(spark, run.run_id, scenario)
            result[scenario] = {
                "rows": loaded.count(),
                "distinct": loaded.distinct().count(),
                "attempts_failed": _failed_tasks(spark, scenario) > 0,
            }
        result["staging_left"] = datasets.engine(tracker.backend).staging_areas(tracker.backend)
    tracker.close()
    spark.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
