"""The HTML report: parsed with the standard library's html.parser and checked for structure
and numbers on both backends, plus one test that opens it in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from audit_demo import build_demo

import sqltrack
from sqltrack.cli import main
from sqltrack.report import svg

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VOID = {"meta", "link", "br", "img", "input", "hr", "col", "wbr", "source"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        def ok(n: Node) -> bool:
            if n.tag != tag:
                return False
            for k, v in attrs.items():
                k = k.rstrip("_").replace("_", "-")
                have = n.attrs.get(k)
                if (
                    have is None
                    or (k == "class" and v not in have.split())
                    or (k != "class" and have != v)
                ):
                    return False
            return True

        return [n for n in self.iter() if ok(n)]

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}>"
        return found[0]


class Tree(HTMLParser):
    """A small DOM; fails on a stray closing tag so that broken markup is caught."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.at = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.at)
        self.at.children.append(node)
        if tag not in VOID:
            self.at = node

    def handle_startendtag(self, tag, attrs):
        self.at.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.at))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.at.tag == tag, f"</{tag}> closes <{self.at.tag}>"
        assert self.at.parent is not None
        self.at = self.at.parent

    def handle_data(self, data):
        self.at.children.append(data)


def parse(path: Path) -> Node:
    tree = Tree()
    tree.feed(path.read_text(encoding="utf-8"))
    tree.close()
    assert tree.at is tree.root, f"unclosed <{tree.at.tag}> in {path}"
    return tree.root


@pytest.fixture
def demo(tracker, store_uri, monkeypatch):
    d = build_demo(tracker, store_uri, monkeypatch)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # artifacts need a running run: add them to a sixth run
    with tracker.start_run(run_name="<b>plots & notes</b>") as run:
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([1, 2, 3], [3, 1, 2])
        tracker.log_figure(fig, "figures/residuals.png")
        plt.close(fig)
        tracker.log_text("a <note> & more", "notes.txt")
        tracker.log_param("numTrees", 20)
        tracker.log_metric("r2", 0.5)
    d.runs["plots"] = run.run_id
    return d


def test_experiment_page_runs_table_and_charts(tracker, demo, tmp_path):
    index = tracker.write_report(tmp_path / "report", "demo")
    assert index == tmp_path / "report" / "index.html"
    doc = parse(index)
    table = doc.find("table", id="runs-table")
    head = [th.text for th in table.find("thead").find_all("th")]
    # the primary metric and the run's key facts first (the primary metric came after 12
    # param columns, off screen at 1,400 px)
    assert head[:7] == ["compare", "run", "r2", "status", "user", "start", "duration"]
    # then the other metrics, the most logged first, well-known ones (rmse) before others
    # among equals; then params, those that vary first
    assert head[7:] == ["rmse", "loss", "big", "odd", "numTrees", "impurity", "maxDepth"]
    rows = table.find("tbody").find_all("tr")
    assert len(rows) == len(demo.runs) == 6
    by_name = {r.find("a").text: r for r in rows}
    rf100 = by_name["rf-100"]
    cells = [td.text for td in rf100.find_all("td")]
    assert cells[2:5] == ["0.91", "FINISHED", "bob"] and cells[11] == "100"
    assert rf100.find_all("td")[2].attrs["data-v"] == "0.91"
    assert rf100.find("code", class_="short-id").text == demo.runs["rf-100"][:8]
    assert rf100.find("input", class_="compare-run").attrs.get("checked") is not None
    assert by_name["rf-broken"].find("input", class_="compare-run").attrs.get("checked") is None
    assert rf100.find("a").attrs["href"] == f"runs/{demo.runs['rf-100']}.html"
    assert by_name["rf-broken"].attrs["data-status"] == "FAILED"
    assert "<b>plots & notes</b>" in by_name  # escaped on the way in, text again when parsed
    assert "<b>plots" not in index.read_text()
    notes = [td.text for td in by_name["notes"].find_all("td")]
    assert notes[9:11] == ["Infinity", "NaN"]

    charts = doc.find_all("svg", class_="chart")
    kinds = [c.attrs["data-kind"] for c in charts]
    assert kinds.count("scatter") == 1  # r2 against numTrees: the one param that varies
    scatter = doc.find("section", id="metric-vs-param").find("svg")
    assert scatter.find("title").text == "r2 against numTrees"
    dots = scatter.find_all("circle", class_="mark")
    assert len(dots) == 4  # the runs with both numTrees and r2
    tips = sorted(d.find("title").text for d in dots)
    assert "rf-100: numTrees (param) = 100, r2 (latest value) = 0.91" in tips
    labels = [t.text for t in scatter.find_all("text", class_="axis-label")]
    assert labels == ["numTrees (param)", "r2 (latest value)"]

    compare = doc.find("section", id="compare").find("svg")
    assert compare.attrs["data-kind"] == "parallel"
    legend = [g.find("text").text for g in compare.find_all("g", class_="legend-item")]
    assert legend == ["rf-100", "rf-50", "rf-10", "<b>plots & notes</b>"]  # best r2 first
    lines = compare.find_all("polyline", class_="mark")
    assert len(lines) == 3  # the fourth run has only r2: a dot
    axes = [t.children[0] for t in compare.find_all("text", class_="axis-label")]
    assert axes == ["r2", "rmse ↓", "loss ↓"]  # lower is better: flipped, better is up
    picks = {
        i.attrs["value"]: "checked" in i.attrs
        for i in doc.find("section", id="compare").find_all("input", class_="compare-metric")
    }
    assert picks == {"r2": True, "rmse": True, "loss": True, "big": False, "odd": False}

    history = doc.find("section", id="history").find("svg")
    assert history.find("title").text == "loss by step"
    assert len(history.find_all("polyline", class_="mark")) == 3
    first = history.find("polyline", class_="mark").attrs["points"].split()
    assert len(first) == 5
    for chart in charts:
        assert [n for n in chart.iter() if "mark" in n.attrs.get("class", "").split()]


def test_run_pages(tracker, demo, tmp_path):
    out = tmp_path / "report"
    tracker.write_report(out, "demo")
    pages = sorted(p.stem for p in (out / "runs").glob("*.html"))
    assert pages == sorted(demo.runs.values())

    doc = parse(out / "runs" / f"{demo.runs['rf-100']}.html")
    info = {
        tr.find("th").text: tr.find("td").text
        for tr in doc.find("section", id="info").find_all("tr")
    }
    assert info["status"] == "FINISHED" and info["user"] == "bob" and info["git commit"] == "b" * 40
    params = {
        tr.find_all("td")[0].text: tr.find_all("td")[1].text
        for tr in doc.find("table", id="params-table").find("tbody").find_all("tr")
    }
    assert params == {"impurity": "variance", "maxDepth": "5", "numTrees": "100"}
    metrics = [
        [td.text for td in tr.find_all("td")]
        for tr in doc.find("table", id="metrics-table").find("tbody").find_all("tr")
    ]
    assert metrics == [["loss", "0.3", "5"], ["r2", "0.91", "1"], ["rmse", "0.18", "1"]]
    assert doc.find("section", id="metrics").find("svg").attrs["data-kind"] == "line"
    dataset = doc.find("section", id="datasets")
    assert dataset.find("td", class_="row-count").text == "1,200"
    assert dataset.find("code", class_="fingerprint").text == "fp-house-2"
    schema = [
        [td.text for td in tr.find_all("td")]
        for tr in dataset.find("table", class_="schema").find("tbody").find_all("tr")
    ]
    assert schema == [["numTrees_feature", "double", "yes"], ["label", "double", "no"]]
    chain = doc.find("table", class_="transformations").find("tbody").find("tr")
    assert [td.text for td in chain.find_all("td")] == [
        "age",
        "age → Imputer: age_imputed → VectorAssembler: features",
    ]
    model = doc.find("section", id="models").find("tbody").find_all("td")
    assert model[1].text.endswith("RandomForestRegressionModel")
    assert model[2].text == "training (fingerprint fp-house-2)"
    tree = doc.find("pre", class_="tree").text
    assert "├── user: bob" in tree and "1,200 rows, fingerprint fp-house-2" in tree
    back = doc.find("nav").find("a").attrs["href"]
    assert (out / "runs" / back).resolve() == (out / "index.html").resolve()

    plots = parse(out / "runs" / f"{demo.runs['plots']}.html")
    img = plots.find("img", class_="artifact")
    png = out / "runs" / img.attrs["src"]
    assert png.read_bytes() == tracker.load_artifact(demo.runs["plots"], "figures/residuals.png")
    links = {a.text: a for a in plots.find("section", id="artifacts").find_all("a")}
    assert "download" in links["notes.txt"].attrs
    assert (out / "runs" / links["notes.txt"].attrs["href"]).read_text() == "a <note> & more"
    assert plots.find("h1").text == "Run <b>plots & notes</b>"


def test_report_over_several_experiments(tracker, demo, tmp_path):
    tracker.create_experiment("empty")
    tracker.create_experiment("other")
    with tracker.start_run(run_name="solo"):
        tracker.log_metric("acc", 0.7)
    out = tmp_path / "all"
    index = sqltrack.report.write_report(tracker, out)
    doc = parse(index)
    rows = doc.find("table", id="experiments-table").find("tbody").find_all("tr")
    got = {r.find_all("td")[0].text: r.find_all("td")[2].text for r in rows}
    assert got == {"demo": "6", "other": "1", "empty": "0"}
    for a in doc.find("table", id="experiments-table").find_all("a"):
        page = parse(out / a.attrs["href"])
        assert page.find("nav").find("a").attrs["href"] == "index.html"
    other = parse(out / f"experiment-{tracker.get_experiment_by_name('other').experiment_id}.html")
    assert "Comparing runs needs at least two metrics" in other.find("section", id="compare").text


def test_report_errors_name_the_fix(tracker, demo, tmp_path):
    with pytest.raises(sqltrack.NotFoundError, match="no experiment named 'nope'"):
        tracker.write_report(tmp_path / "r", "nope")
    with pytest.raises(sqltrack.NotFoundError, match="pick one of: big, loss"):
        tracker.write_report(tmp_path / "r", "demo", metric="auc")
    (tmp_path / "file").write_text("x")
    with pytest.raises(sqltrack.InvalidInputError, match="is a file"):
        tracker.write_report(tmp_path / "file")


def test_report_primary_metric_and_progress(tracker, demo, tmp_path):
    calls = []
    index = tracker.write_report(
        tmp_path / "r", "demo", metric="rmse", progress=lambda *a: calls.append(a)
    )
    doc = parse(index)
    compare = doc.find("section", id="compare").find("svg")
    legend = [g.find("text").text for g in compare.find_all("g", class_="legend-item")]
    assert legend == ["rf-100", "rf-50", "rf-10"]  # rmse: lower is better
    assert ("run pages", 6, 6) in calls and ("artifacts", 2, 2) in calls


def test_cli_report_writes_the_folder_with_progress(capsys, tracker, demo, tmp_path):
    out = tmp_path / "cli-report"
    code = main(["report", "--uri", demo.uri, "--experiment", "demo", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0 and stdout.strip() == f"report written: {out / 'index.html'}"
    assert "run pages: 6/6" in stderr
    assert len(list((out / "runs").glob("*.html"))) == 6


def test_svg_helpers():
    assert svg.nice_ticks(0.71, 0.91) == [0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert svg.nice_ticks(3, 3) == [2.6, 2.8, 3.0, 3.2, 3.4]
    assert [svg.format_number(v) for v in (0.912345, 1234.0, 1.2e-5, float("nan"))] == [
        "0.9123",
        "1,234",
        "1.2e-05",
        "NaN",
    ]
    chart = svg.scatter(
        [svg.Point(1, 0.5, "a"), svg.Point(2, float("nan"), "b"), svg.Point(3, 0.7, "<c>")],
        "x",
        "y",
        "t",
    )
    assert chart.count('class="mark"') == 2 and "1 non-finite value" in chart
    assert "&lt;c&gt;" in chart and "<c>" not in chart


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_in_headless_chromium(tracker, demo, tmp_path):
    browser = find_chromium()
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is not installed in CI; `make test` installs it (make browser)")
        pytest.skip("no chromium on PATH: install the Debian package `chromium` (make browser)")
    index = tracker.write_report(tmp_path / "report", "demo")
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,2400",
    ]
    url = index.resolve().as_uri()
    shot = tmp_path / "report.png"
    result = subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'profile-shot'}", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    artifacts = Path(__file__).resolve().parent / "artifacts"  # git-ignored
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / f"report-{tracker.backend.capabilities.name}.png")
    run_page = index.parent / "runs" / f"{demo.runs['rf-100']}.html"
    for page, charts in ((index, 3), (run_page, 1)):
        root = rendered_dom(flags, page, tmp_path / f"profile-{page.stem}")
        assert root.attrs.get("data-report-ready") == "ok", (
            f"{page.name}: the script did not finish"
        )
        assert "data-js-error" not in root.attrs, root.attrs.get("data-js-error")
        assert int(root.attrs["data-chart-count"]) == charts, page.name
        assert root.attrs["data-empty-charts"] == "0", page.name
        assert root.attrs["data-overlapping-labels"] == "0", root.attrs.get("data-overlaps")


def rendered_dom(flags: list[str], page: Path | str, profile: Path) -> Node:
    """The page's DOM after its script ran (``page``: a file, or a URL with a #fragment);
    fails on any console message."""
    url = page if isinstance(page, str) else page.resolve().as_uri()
    dom = subprocess.run(
        [*flags, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # the report's script logs nothing: any console line is an error or a warning
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    html = Tree()
    html.feed(dom.stdout)
    return html.root.find("html")


def test_wheel_ships_the_templates_and_renders_from_them(tmp_path, wheel):
    root = Path(__file__).resolve().parent.parent
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted((root / "sqltrack" / "report" / "templates").iterdir())
    assert {t.name for t in templates} >= {"base.html", "experiment.html", "run.html", "report.js"}
    for t in templates:
        assert f"sqltrack/report/templates/{t.name}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sqltrack, sqltrack.report as r; "
        "assert r.__file__.startswith(sys.argv[1]), r.__file__; "
        "t = sqltrack.connect('duckdb:///' + sys.argv[2]); "
        "run = t.start_run(run_name='w'); t.log_metric('r2', 0.5); t.end_run(); "
        "print(t.write_report(sys.argv[3]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(site), str(tmp_path / "w.duckdb"), str(tmp_path / "r")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert out.strip() == str(tmp_path / "r" / "index.html")
    assert "<table" in (tmp_path / "r" / "index.html").read_text()


def test_report_of_an_experiment_without_runs(tracker, tmp_path):
    tracker.create_experiment("new")
    doc = parse(tracker.write_report(tmp_path / "r", "new"))
    assert doc.find("table", id="runs-table").find("tbody").find_all("tr") == []
    assert doc.find_all("svg") == []
    assert "No run logged a metric" in doc.find("section", id="history").text


def test_lower_is_better_reads_the_words_of_a_metric_name():
    from sqltrack.report.context import lower_is_better

    lower = ["rmse", "val_loss", "training_time", "FPR", "logLoss", "errorRate"]
    higher = ["areaUnderROC", "r2", "F1", "accuracy", "precision", "interrupted"]
    assert [lower_is_better(n) for n in lower] == [True] * 6
    assert [lower_is_better(n) for n in higher] == [False] * 6
