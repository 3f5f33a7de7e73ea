"""The registry's report pages (parsed with html.parser) and the demo's registry step, on
both backends."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from sqltrack.report import registry as report

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ["tests.registry_fixtures"]

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]


class Page(HTMLParser):
    """Every element as (tag, attrs, text inside it), in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[list[object]] = []
        self.open: list[list[object]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element: list[object] = [tag, dict(attrs), ""]
        self.elements.append(element)
        if tag not in ("meta", "link", "br", "img", "input", "hr", "rect"):
            self.open.append(element)

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for element in self.open:
            element[2] = str(element[2]) + data

    def all(self, tag, cls=None):
        return [
            e
            for e in self.elements
            if e[0] == tag and (cls is None or cls in str(e[1].get("class", "")).split())
        ]


def rows(table_text: str) -> str:
    return " ".join(table_text.split())


def test_models_page_and_run_section(reg, trained, fresh_name, tmp_path):
    name = fresh_name
    reg.create_registered_model(name, "late deliveries")
    reg.register_model(trained[0].uri, name)
    reg.register_model(trained[1].uri, name)
    reg.set_registered_model_tag(name, "team", "supply <chain>")
    reg.set_registered_model_alias(name, "champion", 1)
    reg.set_registered_model_alias(name, "champion", 2, reason="retrained")
    reg.set_registered_model_alias(name, "challenger", 1)
    reg.deploy(f"models:/{name}@champion", name, "sagemaker", {"endpoint": "e", "region": "r"})

    path = report.write_models_page(reg.backend, tmp_path)
    html = path.read_text()
    page = Page(html)
    (section,) = [
        s for s in page.all("section", "registered-model") if s[1]["id"] == f"model-{name}"
    ]
    text = rows(str(section[2]))
    assert "late deliveries" in text and "tag team" in text and "supply <chain>" in text
    assert "supply &lt;chain&gt;" in html  # autoescaped
    assert "<svg" in html and "</svg>" in html
    bars = [e[1] for e in page.all("rect") if e[1].get("data-alias")]
    mine = [(b["data-alias"], b["data-version"]) for b in bars]
    assert ("champion", "1") in mine and ("champion", "2") in mine and ("challenger", "1") in mine
    history = [rows(str(r[2])) for r in page.all("table", "alias-history")]
    assert any("1 -> 2" in h and "retrained" in h for h in history)
    deployments = [rows(str(t[2])) for t in page.all("table", "deployments")]
    assert any(name in d and "sagemaker" in d and "live" in d for d in deployments)
    versions = [t for t in page.all("table", "versions")]
    assert any(trained[0].dataset.fingerprint in str(t[2]) for t in versions)
    links = {e[1]["href"] for e in page.all("a")}
    assert f"runs/{trained[0].run_id}.html" in links and "index.html" in links

    section = report.run_registry(reg.backend, trained[1].run_id)
    assert [(v.name, v.version, v.aliases) for v in section.versions if v.name == name] == [
        (name, 2, "champion")
    ]
    assert [(d.target, d.status) for d in section.deployments if d.name == name] == [(name, "live")]
    rendered = report._environment().get_template("run_registry.html").render(registry=section)
    assert name in rendered and "sagemaker" in rendered
    empty = (
        report._environment()
        .get_template("run_registry.html")
        .render(registry=report.RunRegistry((), ()))
    )
    assert "No model of this run is registered" in empty


def test_the_demo_step_registers_deploys_and_prints_the_sql(reg, trained, fresh_name, tmp_path):
    from sqltrack.registry_demo import registry_demo_step

    said: list[str] = []
    first = registry_demo_step(
        reg, trained[0].run_id, name=fresh_name, out_dir=tmp_path, say=said.append
    )
    assert (first.kind, first.version, first.alias) == ("mlflow_dir", 1, "champion")
    assert (tmp_path / f"{fresh_name}-v1" / "MLmodel").is_file()
    out = "\n".join(said)
    assert "FROM sqltrack.live_deployments" in out
    assert trained[0].dataset.table_name in out and trained[0].dataset.fingerprint in out
    again = registry_demo_step(
        reg, trained[1].run_id, name=fresh_name, out_dir=tmp_path, say=said.append
    )
    assert again.version == 2 and again.target == first.target
    history = reg.list_deployments(first.target, include_ended=True)
    assert [(d.version, d.status) for d in history] == [(1, "replaced"), (2, "live")]
    assert reg.get_model_version_by_alias(fresh_name, "champion").version == 2
