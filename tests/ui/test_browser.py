"""The Dagster UI in a real browser: materialize the example studies, serve them, look at them.

`scaling run` fills a temp warehouse and instance from the example studies and a small grouped
study (two arms of a results table); `dagster-webserver` serves that instance; Debian's
headless chromium (driven by Playwright, no browser download) opens the asset graph, a study's
`law_fits` partition, its checks and the automation page. Screenshots land in
``test-artifacts/ui/`` of the checkout.

Without ``/usr/bin/chromium`` the tests skip, unless SCALING_REQUIRE_BROWSER=1 (set by .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "ui"
GROUPED = "grouped_arms"  # two arms, arm=a and arm=b: the smallest study with groups
STUDIES = ("example_checkpoints", "example_mixture", "example_sweep", GROUPED)
FIT_STUDY = "example_sweep"
SERVER_TIMEOUT = 90.0


def _require_browser() -> None:
    if not CHROMIUM.exists():
        reason = f"the Debian chromium binary {CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("SCALING_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright; no browser download needed)"
        if os.environ.get("SCALING_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer within {SERVER_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(base + "/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@dataclass
class Served:
    base: str
    run: subprocess.CompletedProcess
    warehouse: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A webserver over a warehouse and instance that `scaling run` filled with the example studies."""
    from scaling.simulate.results_table import write_grouped_results_study

    _require_browser()
    tmp = tmp_path_factory.mktemp("ui")
    studies = tmp / "studies"
    studies.mkdir()
    for name in STUDIES[:-1]:  # the examples simulate their data beside their files
        shutil.copyfile(REPO / "studies" / f"{name}.toml", studies / f"{name}.toml")
    write_grouped_results_study(studies, GROUPED)
    env = {**os.environ, "SCALING_WAREHOUSE": str(tmp / "warehouse"), "DAGSTER_HOME": str(tmp / "dagster_home"),
           "SCALING_STUDIES": str(studies), "DAGSTER_DISABLE_TELEMETRY": "1"}
    run = subprocess.run([str(BIN / "scaling"), "run", "--quiet"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "webserver.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-m", "pipelines.definitions", "-h", "127.0.0.1",
                                 "-p", str(port)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(base, proc, log)
        yield Served(base, run, tmp / "warehouse")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000}, base_url=server.base)
            # the UI greets a new browser with a community dialog; mark it as seen
            context.add_init_script("window.localStorage.setItem('communityNux', '1')")
            page = context.new_page()
            page.set_default_timeout(45_000)
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def see(page, text: str) -> None:
    """Wait until `text` (exactly) is visible; the UI keeps hidden copies of labels for measuring."""
    page.get_by_text(text, exact=True).filter(visible=True).first.wait_for()


def metadata_entries(page, screenshots: bool = False) -> dict[str, dict]:
    """The shown materialization's metadata: per key, its text and decoded images (folded markdown opened)."""
    see(page, "dagster/row_count")
    entries = {}
    rows = page.locator("xpath=//tr[td][not(ancestor::td)]")  # not the rows of tables inside a value
    for i in range(rows.count()):
        cells = rows.nth(i).locator("xpath=./td")
        texts = [t.strip() for t in cells.all_inner_texts()]
        if len(texts) < 2 or not texts[0]:
            continue
        # key, [timestamp,] value, [actions]: the value is the last cell with content
        key, value = texts[0], cells.nth(max(j for j, t in enumerate(texts) if t))
        folded = value.get_by_text("[Show Markdown]")
        if folded.count():
            folded.first.click()
            dialog = page.get_by_role("dialog")
            dialog.wait_for()
            page.wait_for_timeout(500)  # let embedded images decode
            entries[key] = {"text": dialog.inner_text(), "images": _loaded_images(dialog)}
            if screenshots:
                shot(page, f"law_fits_{FIT_STUDY}_{key.replace('/', '_')}")
            dialog.get_by_role("button", name="Close").click()
            dialog.wait_for(state="hidden")
        else:
            entries[key] = {"text": value.inner_text(), "images": _loaded_images(value)}
    return entries


def _loaded_images(locator) -> int:
    return locator.locator("img").evaluate_all("imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")


def test_the_example_studies_materialized(server):
    """`scaling run` succeeded for every example study (the pages below show what it wrote either way)."""
    assert server.run.returncode == 0, f"scaling run failed:\n{server.run.stdout}\n{server.run.stderr}"


def test_asset_graph_shows_the_layers_and_the_lineage_of_fits(page):
    from playwright.sync_api import expect

    page.goto("/asset-groups")
    for group in ("raw", "normalized", "fits"):
        see(page, group)
    shot(page, "asset_graph")
    page.goto("/assets/law_fits?view=lineage&lineageScope=upstream&lineageDepth=2")
    # the fits wait for the whole ingest: runs and points, and mixture_points beside them
    shown = ("raw_sources", "runs", "points", "mixture_points", "law_fits")
    for name in shown:
        see(page, name)
    # every node has loaded its partition status: all studies materialized everywhere
    expect(page.get_by_text(f"{len(STUDIES)} partitions", exact=True).filter(visible=True)).to_have_count(
        len(shown), timeout=45_000)
    expect(page.get_by_text("100% filled", exact=True).filter(visible=True)).to_have_count(len(shown))
    shot(page, "law_fits_lineage")


def test_fit_partition_shows_every_study_and_the_fitted_parameters(page):
    page.goto(f"/assets/law_fits?view=partitions&partition={FIT_STUDY}")
    for study in STUDIES:
        see(page, study)
    see(page, f"Materialized ({len(STUDIES)})")
    see(page, "dagster/row_count")
    shot(page, f"law_fits_{FIT_STUDY}")
    entries = metadata_entries(page, screenshots=True)
    assert "parameters" in entries and "fits" in entries, sorted(entries)
    parameters = entries["parameters"]["text"]
    for word in ("chinchilla", "alpha", "beta", "estimate", "ci_low", "ci_high"):
        assert word in parameters, f"{word!r} not in the parameters table"
    assert "chinchilla" in entries["fits"]["text"]


def test_fit_metadata_embeds_a_plot_image(page):
    """A fit's materialization shows a plot (markdown with an embedded PNG) that the browser decodes."""
    page.goto(f"/assets/law_fits?view=partitions&partition={FIT_STUDY}")
    entries = metadata_entries(page)
    with_images = sorted(k for k, e in entries.items() if e["images"])
    assert with_images, f"no metadata entry of law_fits[{FIT_STUDY}] shows an image; entries: {sorted(entries)}"


def test_checks_tab_lists_the_fit_checks(page):
    from assets.fits import FIT_CHECKS

    page.goto("/assets/law_fits?view=checks")
    for name in FIT_CHECKS:
        see(page, name)
    page.get_by_text("fit_converged", exact=True).filter(visible=True).first.click()
    page.get_by_text("This is a blocking asset check").filter(visible=True).first.wait_for()
    see(page, "Passed")
    shot(page, "law_fits_checks")


def test_sensors_and_schedule_are_running_by_default(page, server):
    from playwright.sync_api import expect

    data = graphql(server.base, """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        sensors { name sensorState { status } } schedules { name scheduleState { status } } } } } }""")
    nodes = data["repositoriesOrError"]["nodes"]
    status = {s["name"]: s["sensorState"]["status"] for n in nodes for s in n["sensors"]}
    status |= {s["name"]: s["scheduleState"]["status"] for n in nodes for s in n["schedules"]}
    assert status == {"study_files_sensor": "RUNNING", "study_automation": "RUNNING",
                      "refresh_url_sources": "RUNNING"}
    page.goto("/automation")
    for name in status:
        see(page, name)
    for kind in ("Standard sensor", "Automation condition sensor"):
        see(page, kind)
    # the three toggles are on once their state has loaded
    expect(page.locator("input[type=checkbox]:checked")).to_have_count(len(status))
    shot(page, "automation")


ENTRY = """metadataEntries { label __typename
    ... on TableMetadataEntry { table { schema { columns { name type } } records } }
    ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
    ... on TextMetadataEntry { text } ... on MarkdownMetadataEntry { mdStr }
    ... on PathMetadataEntry { path } ... on UrlMetadataEntry { url }
    ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue } }"""


def asset_node(base: str, key: str, partition: str = FIT_STUDY) -> dict:
    data = graphql(base, f"""{{ assetNodes(assetKeys: [{{path: ["{key}"]}}]) {{
        owners {{ ... on TeamAssetOwner {{ team }} ... on UserAssetOwner {{ email }} }}
        tags {{ key value }} {ENTRY}
        assetMaterializations(partitions: ["{partition}"], limit: 1) {{ partition {ENTRY} }} }} }}""")
    (node,) = data["assetNodes"]
    return node


def by_label(entries: list[dict]) -> dict[str, dict]:
    return {e["label"]: e for e in entries}


def test_assets_carry_their_column_schema_catalog_view_owners_tags_and_code(server):
    from warehouse.tables import TABLES

    for key, view in (("law_fits", "law_fits"), ("forecasts", "forecasts"), ("runs", "runs"),
                      ("raw_sources", "raw")):
        node = asset_node(server.base, key)
        meta = by_label(node["metadataEntries"])
        assert meta["dagster/table_name"]["text"] == f"catalog.main.{view}"
        assert "dagster/code_references" in meta, sorted(meta)
        assert {"team": "scaling-studies"} in node["owners"]
        assert {"key": "layer", "value": "raw" if key == "raw_sources" else
                {"law_fits": "fits", "forecasts": "forecasts", "runs": "normalized"}[key]} in node["tags"]
        if view in TABLES:
            columns = meta["dagster/column_schema"]["schema"]["columns"]
            assert [(c["name"], c["type"]) for c in columns] == [(c.name, c.type.lower()) for c in TABLES[view].columns]
            assert all(c["description"] for c in columns)


def test_result_tables_are_typed_tables_with_intervals_first(server):
    mat = asset_node(server.base, "law_fits")["assetMaterializations"][0]
    assert mat["partition"] == FIT_STUDY
    params = by_label(mat["metadataEntries"])["parameters"]
    assert params["__typename"] == "TableMetadataEntry"
    columns = [c["name"] for c in params["table"]["schema"]["columns"]]
    # the example study has no groups, so no empty group column; labels, then the value and its interval
    assert columns[:6] == ["law", "target", "parameter", "estimate", "ci_low", "ci_high"]
    types = {c["name"]: c["type"] for c in params["table"]["schema"]["columns"]}
    assert types["estimate"] == types["ci_low"] == "float" and types["converged"] == "bool"
    rows = [json.loads(r) for r in params["table"]["records"]]
    alpha = next(r for r in rows if r["law"] == "chinchilla" and r["parameter"] == "alpha")
    assert alpha["ci_low"] < alpha["estimate"] < alpha["ci_high"]
    for key, label in (("forecasts", "recommended_compute_optimal"), ("backtest_summary", "ranking"),
                       ("backtests", "preview")):
        entry = by_label(asset_node(server.base, key)["assetMaterializations"][0]["metadataEntries"])[label]
        assert entry["__typename"] == "TableMetadataEntry", (key, label, entry["__typename"])
    forecast = by_label(asset_node(server.base, "forecasts")["assetMaterializations"][0]["metadataEntries"])
    names = [c["name"] for c in forecast["recommended_compute_optimal"]["table"]["schema"]["columns"]]
    assert names.index("ci_high") < names.index("extrapolation")


def _plots(entries: dict[str, dict]) -> dict[str, str]:
    """The embedded plots among a materialization's entries: key -> Markdown."""
    return {k: e["mdStr"] for k, e in entries.items() if k.startswith("plot_") and "mdStr" in e}


def test_plots_say_which_study_and_group_they_show(server):
    entries = by_label(asset_node(server.base, "forecasts")["assetMaterializations"][0]["metadataEntries"])
    plots = _plots(entries)
    for kind in ("frontier", "allocation", "isoflop", "backtests"):
        name = f"plot_{kind}_loss"
        assert name in plots, sorted(plots)
        assert f"study {FIT_STUDY}, target loss, all runs (no groups)" in plots[name]
        assert "data:image/png;base64," in plots[name]
    # a grouped study: a plot per group, each caption naming the partition and the group
    for key in ("law_fits", "forecasts"):
        (mat,) = asset_node(server.base, key, GROUPED)["assetMaterializations"]
        assert mat["partition"] == GROUPED
        plots = _plots(by_label(mat["metadataEntries"]))
        groups = {name.split("__")[1] for name in plots}
        assert groups == {"arm=a", "arm=b"}, sorted(plots)
        for name, md in plots.items():
            caption = md.split("\n")[0]
            assert f"study {GROUPED}, " in caption and caption.endswith(f"group {name.split('__')[1]}"), caption


def test_every_plot_gives_its_png_path_and_the_study_report(server):
    """Beside each embedded plot (folded behind "[Show Markdown]"), the PNG's path, which exists, and a
    link to the study's HTML report, which `scaling run` wrote."""
    for study, keys in ((FIT_STUDY, ("law_fits", "forecasts", "backtest_summary")), (GROUPED, ("forecasts",)),
                        ("example_mixture", ("mixing_laws",))):
        for key in keys:
            entries = by_label(asset_node(server.base, key, study)["assetMaterializations"][0]["metadataEntries"])
            plots = _plots(entries)
            assert plots, (study, key, sorted(entries))
            for name in plots:
                path = entries[f"{name}_png"]
                assert path["__typename"] == "PathMetadataEntry", (study, key, name)
                png = Path(path["path"])
                assert png.parent == server.warehouse / "plots" / study and png.name == f"{name[5:]}.png"
                assert png.read_bytes()[:4] == b"\x89PNG", png
            report = entries["report"]
            assert report["__typename"] == "UrlMetadataEntry", (study, key)
            assert report["url"] == (server.warehouse / "reports" / f"{study}.html").resolve().as_uri()
            assert (server.warehouse / "reports" / f"{study}.html").is_file()


def test_grouped_plots_show_their_captions_and_images_in_the_page(page):
    page.goto(f"/assets/law_fits?view=partitions&partition={GROUPED}")
    entries = metadata_entries(page)
    for group in ("arm=a", "arm=b"):
        plot = entries[f"plot_fit_loss__{group}"]
        assert f"study {GROUPED}, group {group}" in plot["text"], plot["text"][:300]
        assert plot["images"] == 1, group
        assert entries[f"plot_fit_loss__{group}_png"]["text"].endswith(f"fit_loss__{group}.png")
    assert entries["report"]["text"].endswith(f"reports/{GROUPED}.html")
    shot(page, f"law_fits_{GROUPED}")


def test_check_results_carry_observed_value_and_threshold(server):
    from assets.fits import FIT_CHECKS
    from scaling.spec import CHECK_DEFAULTS

    thresholds = {"fit_converged": 0, "fits_completed": 0, "params_within_bounds": 0,
                  "residuals_small": CHECK_DEFAULTS["max_rmse"],
                  "intervals_reasonable": CHECK_DEFAULTS["max_relative_ci_width"],
                  "backtest_error_small": CHECK_DEFAULTS["max_backtest_error"]}
    assert sorted(thresholds) == sorted(FIT_CHECKS)
    for name in FIT_CHECKS:
        data = graphql(server.base, """{ assetCheckExecutions(assetKey: {path: ["law_fits"]},
            checkName: "%s", limit: 20) { evaluation { partition success %s } } }""" % (name, ENTRY))
        evaluations = {e["evaluation"]["partition"]: e["evaluation"] for e in data["assetCheckExecutions"]
                       if e["evaluation"]}
        for study in (FIT_STUDY, GROUPED):
            meta = by_label(evaluations[study]["metadataEntries"])
            assert meta["threshold"]["floatValue"] == thresholds[name], (name, study)
            observed = meta["observed"]["floatValue"]
            assert observed >= 0 and (observed <= thresholds[name] or not evaluations[study]["success"]), \
                (name, study, observed)
            if name == "residuals_small":  # a measured value, not a count of problems
                assert observed > 0, study


def test_reports_open_with_every_plot_and_no_broken_link(server, page):
    """`scaling run` wrote the reports; each opens in the browser, decodes every plot, links only inside."""
    from urllib.parse import urlparse

    reports = server.warehouse / "reports"
    assert f"reports: {reports / 'index.html'}" in server.run.stdout
    page.goto((reports / "index.html").as_uri())
    links = page.locator("a").evaluate_all("as => as.map(a => a.href)")
    assert sorted(Path(urlparse(h).path).name for h in links) == sorted(
        [f"{s}.html" for s in STUDIES] + [f"{s}.md" for s in STUDIES])
    for study in STUDIES:
        page.goto((reports / f"{study}.html").as_uri())
        page.wait_for_load_state("load")
        images = page.locator("img").evaluate_all(
            "imgs => imgs.map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))")
        files = sorted((server.warehouse / "plots" / study).glob("*.png"))
        assert len(images) == len(files) > 0, (study, images, files)
        assert all(i["ok"] for i in images), (study, images)
        anchors = page.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert anchors, study
        for href in anchors:
            assert href.startswith("#") and page.locator(href).count() == 1, (study, href)
        shot(page, f"report_{study}")
    sweep = (reports / f"{FIT_STUDY}.html").read_text()
    for text in ("Fitted laws", "Backtests", "Forecasts", "chinchilla", "95% interval", "coverage", "N interval"):
        assert text in sweep, text
    assert "Proposed mixture" in (reports / "example_mixture.html").read_text()
    md = (reports / f"{FIT_STUDY}.md").read_text()
    for ref in (line.split("](", 1)[1].rstrip(")") for line in md.splitlines() if line.startswith("![")):
        assert (reports / ref).is_file(), ref


def test_parameter_table_is_shown_in_the_page(page):
    page.goto(f"/assets/law_fits?view=partitions&partition={FIT_STUDY}")
    see(page, "dagster/row_count")
    see(page, "parameters")
    shot(page, f"law_fits_{FIT_STUDY}_tables")
