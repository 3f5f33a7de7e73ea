"""The end-to-end demo on both backends (with a small data set): its SQL answers are checked
against the tracker's own view of the runs, on a store that already holds the runs of an
earlier invocation (with a better metric), which the demo's queries must leave out."""

from __future__ import annotations

import pytest

import sqltrack
from sqltrack import demo

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROWS = 2_000


@pytest.fixture
def rerun(store_uri, spark):
    """A store with an earlier demo invocation's run, then one demo run on it."""
    with sqltrack.connect(store_uri) as tracker:
        tracker.set_experiment(demo.EXPERIMENT)
        tags = {demo.INVOCATION_TAG: "earlier", "dataSize": 10, "user": "carol"}
        with tracker.start_run(run_name="earlier-best", tags=tags) as earlier:
            tracker.log_metrics({"areaUnderROC": 0.999, "F1": 0.99})
    lines: list[str] = []
    result = demo.run_demo(store_uri, spark=spark, rows=ROWS, out=lines.append)
    return store_uri, earlier.run_id, result, lines


def test_demo_answers_match_the_store(rerun, tmp_path, capsys):
    uri, earlier, result, lines = rerun
    with sqltrack.connect(uri) as tracker:
        runs = [tracker.get_run(r) for r in result.run_ids]
        assert len(runs) == 7 and earlier not in result.run_ids
        assert {r.info.status for r in runs} == {"FINISHED"}
        assert {r.info.user_name for r in runs} == {"alice", "bob"}
        assert {r.tags[demo.INVOCATION_TAG] for r in runs} == {result.invocation}
        # the leaderboard lists exactly this invocation's runs, in order
        board = result.queries["leaderboard"]
        assert [row[0] for row in board.rows] == [r.info.run_name for r in runs]
        # the best run by areaUnderROC, computed here from the tracker's API (the earlier
        # invocation's 0.999 is not this demo's)
        classifiers = [r for r in runs if "areaUnderROC" in r.metrics]
        assert len(classifiers) == 6
        best = max(classifiers, key=lambda r: r.metrics["areaUnderROC"])
        assert result.best_run_id == best.run_id != earlier
        assert result.best_auc == best.metrics["areaUnderROC"] < 0.999
        # its exact training data: the dataset the run logged, linked to its model
        (dataset,) = tracker.list_datasets(best.run_id)
        assert result.training_table == dataset.table_name
        assert result.training_fingerprint == dataset.fingerprint
        assert result.training_rows == dataset.row_count == int(best.tags["dataSize"])
        (model_row,) = result.queries["training_data"].rows
        assert model_row[1] == "pyspark.ml.pipeline.PipelineModel"
        assert model_row[2:] == (dataset.table_name, dataset.row_count, dataset.fingerprint)
        # its feature chains, from the feature_transformations table
        assert sorted(result.chains) == sorted(
            [
                f"{c} -> StringIndexer -> {c}_idx -> OneHotEncoder -> {c}_vec -> "
                "VectorAssembler -> featuresVec"
                for c in demo.CATEGORICAL
            ]
            + [f"{c} -> VectorAssembler -> featuresVec" for c in demo.NUMERIC]
        )
        assert best.params["Column- shipping_mode"] == (
            "shipping_mode -> StringIndexer -> OneHotEncoder -> VectorAssembler -> featuresVec"
        )
        assert best.params["Stage3"] in {
            "LogisticRegression",
            "DecisionTreeClassifier",
            "GBTClassifier",
            "RandomForestClassifier",
        }
        # the reloaded training set and model reproduce every prediction
        assert result.predictions_compared == dataset.row_count
        assert result.predictions_identical == result.predictions_compared
        # every classifier run has its ROC curve; every run its model, linked to its data
        for run in classifiers:
            assert [a.name for a in tracker.list_artifacts(run.run_id)] == ["roc_curve.png"]
        _, rows = tracker.sql(
            "SELECT count(*) FROM sqltrack.models m JOIN sqltrack.datasets d "
            "ON d.dataset_id = m.dataset_id AND d.run_id = m.run_id "
            "JOIN sqltrack.tags t ON t.run_id = m.run_id AND t.key = ? AND t.value = ?",
            (demo.INVOCATION_TAG, result.invocation),
        )
        assert rows == [(7,)]
    assert any("predictions identical" in line for line in lines)
    # one demo run per backend is expensive: the checks below share it
    check_training_curves_in_the_report(uri, result, tmp_path)
    check_the_runs_help_example(uri, capsys)


def check_training_curves_in_the_report(uri, result, tmp_path):
    """The metric-history chart is there for a first-time user: logistic regression's
    objective history and the gradient-boosted trees' loss after each tree."""
    from test_report import parse

    with sqltrack.connect(uri) as tracker:
        by_name = {tracker.get_run(r).info.run_name: r for r in result.run_ids}
        lr = tracker.get_metric_history(by_name["logistic-regression"], "training_objective")
        gbt = tracker.get_metric_history(by_name["gradient-boosted-trees"], "training_loss")
        assert len(lr) > 1 and [m.step for m in lr] == list(range(len(lr)))
        assert lr[-1].value < lr[0].value  # the objective goes down
        assert len(gbt) == 8  # maxIter trees
        params = tracker.get_run(by_name["logistic-regression"]).params
        assert params["LogisticRegressionModel.maxIter"] == "10"  # prefixed model params
        index = tracker.write_report(tmp_path / "report", demo.EXPERIMENT)
    history = parse(index).find("section", id="history")
    titles = [svg.find("title").text for svg in history.find_all("svg")]
    assert titles == ["training_loss by step", "training_objective by step"]


def check_the_runs_help_example(uri, capsys):
    """`sqltrack runs --help` shows an example that finds runs in the store the demo makes
    (its old example, --experiment demo, found none)."""
    import shlex

    from sqltrack.cli import COMMANDS, build_parser, main

    build_parser()  # registers the commands
    capsys.readouterr()
    argv = shlex.split(COMMANDS["runs"].example)[1:]
    assert main([*argv, "--uri", uri, "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert {r["run_name"] for r in rows} == {f"random-forest-{n}" for n in (5, 10, 20)}
    aucs = [r["metrics.areaUnderROC"] for r in rows]
    assert aucs == sorted(aucs, reverse=True)


def test_generated_orders_are_deterministic(spark):
    a = demo.generate_orders(spark, 500).collect()
    b = demo.generate_orders(spark, 500).collect()
    assert a == b and len(a) == 500
    assert set(demo.generate_orders(spark, 500).columns) >= {
        "order_id",
        "order_date",
        "shipping_mode",
        "destination_city",
        "customer_segment",
        "product_category",
        "quantity",
        "price",
        "scheduled_shipping_days",
        "late_delivery",
        "days_late",
    }


def test_readme_shows_the_sql_the_demo_runs():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, sql in demo.QUERIES.items():
        assert sql.strip() in readme, f"README.md does not show the demo's {name!r} query"
