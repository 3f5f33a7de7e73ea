"""The report as a first-time user reads it (issue 13): every metric in the side-by-side
chart, axes that keep the best and worst runs off the frame, runs with the same name told
apart, categorical labels that are not cut into look-alikes, the reader's own pick of runs
and metrics (checked in headless Chromium, screenshots kept), and the demo's training
curves. Each assertion failed on the report before the change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_report import find_chromium, parse, rendered_dom

from sqltrack.report import svg

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # git-ignored: screenshots
METRICS = ("areaUnderROC", "areaUnderPR", "accuracy", "F1", "precision", "recall",
           "weightedPrecision", "weightedRecall", "TPR", "FPR", "FDR", "FNR", "logLoss",
           "training_time")  # fmt: skip
CLASSES = (
    "pyspark.ml.classification.LogisticRegressionModel",
    "pyspark.ml.classification.RandomForestClassificationModel",
    "pyspark.ml.classification.GBTClassificationModel",
)


@pytest.fixture
def twice(tracker, monkeypatch):
    """Three classifiers logged by two invocations of the same script: the same run names,
    the second time with the same values (identical lines), plus a run by another user."""
    tracker.create_experiment("fresh")
    ids: list[str] = []
    for _invocation in range(2):
        for i, cls in enumerate(CLASSES):
            monkeypatch.setenv("SQLTRACK_USER", "alice")
            with tracker.start_run(run_name=cls.rsplit(".", 1)[1].lower()) as run:
                tracker.log_params({"model_class": cls, "numTrees": 10 * (i + 1)})
                tracker.log_metrics({m: 0.5 + 0.1 * i + 0.01 * k for k, m in enumerate(METRICS)})
            ids.append(run.run_id)
    monkeypatch.setenv("SQLTRACK_USER", "bob")
    with tracker.start_run(run_name="logisticregressionmodel") as run:
        tracker.log_params({"model_class": CLASSES[0], "numTrees": 5})
        tracker.log_metrics({m: 0.4 + 0.01 * k for k, m in enumerate(METRICS)})
    ids.append(run.run_id)
    return ids


def test_side_by_side_chart_has_every_metric_and_padded_axes(tracker, twice, tmp_path):
    doc = parse(tracker.write_report(tmp_path / "r", "fresh"))
    chart = doc.find("section", id="compare").find("svg")
    axes = [t.attrs["data-key"] for t in chart.find_all("text", class_="axis-label")]
    assert axes[0] == "areaUnderROC" and set(axes) == set(METRICS)  # not capped at 10
    width = int(chart.attrs["width"])
    xs = [float(line.attrs["x1"]) for line in chart.find_all("line", class_="axis")]
    assert max(xs) < width - 200 and min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= 60
    top = min(float(line.attrs["y1"]) for line in chart.find_all("line", class_="axis"))
    bottom = max(float(line.attrs["y2"]) for line in chart.find_all("line", class_="axis"))
    ys = [
        float(point.split(",")[1])
        for line in chart.find_all("polyline", class_="mark")
        for point in line.attrs["points"].split()
    ]
    assert ys and all(top < y < bottom for y in ys)  # no line on the frame
    # better is up on every axis: the best run's FPR (lowest) is drawn at the top
    flipped = [t.children[0] for t in chart.find_all("text", class_="axis-label")]
    assert "FPR ↓" in flipped and "training_time ↓" in flipped and "recall" in flipped


def test_runs_with_the_same_name_are_told_apart(tracker, twice, tmp_path):
    doc = parse(tracker.write_report(tmp_path / "r", "fresh"))
    chart = doc.find("section", id="compare").find("svg")
    legend = [g.find("title").text for g in chart.find_all("g", class_="legend-item")]
    assert len(legend) == len(set(legend)) == 7
    assert any(" · bob · " in name for name in legend)  # users differ: named
    assert all(re.search(r" · \d\d:\d\d:\d\d", name) for name in legend)
    # the second invocation's identical values are dashed, and say so
    twins = chart.find_all("g", class_="twin")
    assert len(twins) == 3
    for g in twins:
        line = g.find("polyline")
        assert line.attrs["stroke-dasharray"] and "the same values as" in line.find("title").text
    rows = doc.find("table", id="runs-table").find("tbody").find_all("tr")
    ids = [r.find("code", class_="short-id").text for r in rows]
    assert len(set(ids)) == 7


def test_categorical_axis_labels_are_not_cut_into_look_alikes(tracker, twice, tmp_path):
    doc = parse(tracker.write_report(tmp_path / "r", "fresh"))
    chart = next(
        c
        for c in doc.find("section", id="metric-vs-param").find_all("svg")
        if c.find("title").text == "areaUnderROC against model_class"
    )
    ticks = chart.find_all("text", class_="category")
    shown = [t.children[0] for t in ticks]
    assert shown == [
        "GBTClassificationModel",
        "LogisticRegressionModel",
        "RandomForestClassificationModel",
    ]
    assert [t.find("title").text for t in ticks] == sorted(CLASSES)
    labels, stagger = svg.category_labels(["a.b.Same", "x.Same", "c.Other"], 100)
    assert labels == {"a.b.Same": "b.Same", "x.Same": "x.Same", "c.Other": "Other"}
    assert not stagger


def test_compare_pick_redraws_in_headless_chromium(tracker, twice, tmp_path, request):
    browser = find_chromium()
    if browser is None:
        pytest.fail("chromium is not installed; `make browser` installs it")
    index = tracker.write_report(tmp_path / "r", "fresh")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--enable-logging=stderr", "--v=0", "--window-size=1400,1800"]  # fmt: skip
    root = rendered_dom(flags, index, tmp_path / "p0")
    assert root.attrs["data-report-ready"] == "ok" and "data-js-error" not in root.attrs
    assert root.attrs["data-overlapping-labels"] == "0", root.attrs.get("data-overlaps")
    assert int(root.attrs["data-primary-right"]) < 700  # the primary metric on screen
    compare = root.find("section", id="compare")
    legend = [t.text for t in compare.find_all("g", class_="legend-item")]
    assert len(set(legend)) == len(legend) == 7  # runs that share a name told apart
    drawn = [t.attrs["data-key"] for t in compare.find_all("text", class_="axis-label")]
    assert sorted(drawn) == sorted(METRICS)  # every metric, none dropped
    # a pick of two runs and three metrics, applied by clicking the boxes
    a, b = twice[0], twice[-1]
    pick = f"#runs={a},{b}&metrics=areaUnderROC,FPR,recall"
    page = index.resolve().as_uri() + pick
    root = rendered_dom(flags, page, tmp_path / "p1")
    assert "data-js-error" not in root.attrs, root.attrs.get("data-js-error")
    assert root.attrs["data-compare-runs"] == "2"
    assert root.attrs["data-compare-axes"] == "areaUnderROC|recall|FPR"
    chart = root.find("section", id="compare").find("svg")
    assert chart.attrs.get("data-redrawn")
    assert {g.attrs["data-run-id"] for g in chart.find_all("g", class_="series")} == {a, b}
    axes = [t.attrs["data-key"] for t in chart.find_all("text", class_="axis-label")]
    assert axes == ["areaUnderROC", "recall", "FPR"]
    assert root.attrs["data-overlapping-labels"] == "0", root.attrs.get("data-overlaps")
    # screenshots, kept as test artefacts (tmp_path, copied to tests/artifacts/)
    name = request.node.name.replace("[", "-").rstrip("]")
    for label, url in (("default", index.resolve().as_uri()), ("picked", page)):
        shot = tmp_path / f"{name}-{label}.png"
        screenshot(flags, url, shot, tmp_path / f"shot-{label}")
        assert shot.is_file() and shot.stat().st_size > 10_000
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTIFACTS / shot.name)


def screenshot(flags: list[str], url: str, shot: Path, profile: Path) -> None:
    import subprocess

    subprocess.run(
        [*flags, f"--user-data-dir={profile}", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
