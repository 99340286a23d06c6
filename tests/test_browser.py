"""Maps and the report in a real headless Chromium with the network blocked.

Needs Debian's chromium (``/usr/bin/chromium``, installed by ``.ci/run``) and Playwright for
Python (test extra). Locally they skip with the reason when either is missing; in CI
(``CI`` set by ``.ci/run``) a missing browser fails the run instead.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    if os.environ.get("SERVICECIRCLE_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}; the browser tests must run here (SERVICECIRCLE_REQUIRE_BROWSER)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from servicecircle.plan import packaged_data, run_scenario

    out = tmp_path_factory.mktemp("scenario")
    run_scenario(packaged_data("demo_scenario.toml"), out_dir=out)
    return out


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        _missing("chromium is not installed (apt-get install chromium; .ci/run does it)")
    try:
        from playwright import sync_api
    except ImportError:
        _missing("Playwright for Python is a test extra (pip install -e '.[test]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def watch(page, allowed: tuple[str, ...] = ("file:", "data:")) -> tuple[list[str], list[str]]:
    """Collect a page's script errors, console errors and dialogs, and refuse (and list) every
    request whose URL does not start with one of ``allowed``."""
    errors: list[str] = []
    blocked: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))

    def route(r):
        if r.request.url.startswith(allowed):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return errors, blocked


def open_offline(browser, path: Path, *, wait_ms: int = 800):
    """Open a file with every non-file request refused; return (page, js_errors, blocked)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, blocked = watch(page)
    page.goto(path.as_uri())
    page.wait_for_timeout(wait_ms)
    return page, errors, blocked


def not_blank(png: bytes) -> bool:
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    colours = np.unique((img.reshape(-1, 3) * 255).astype(int), axis=0)
    return img.std() > 0.05 and len(colours) > 50


def test_map_works_offline_layers_toggle(browser, run_dir, tmp_path):
    page, errors, blocked = open_offline(browser, run_dir / "coverage_map.html")
    assert errors == []
    assert page.evaluate("typeof L") == "object"
    overlays = page.evaluate("servicecircleMap.overlays")
    # streets, boundary, cells, micro-grids, 2 service areas, 2 circles, 2 tiers, the elderly
    # and children of the 5-minute tier, facilities, proposals
    assert len(overlays) == 14, overlays
    labels = page.locator(".leaflet-control-layers-overlays label")
    assert labels.count() == 14
    # micro-grids draw only when zoomed in
    micro = "servicecircleMap.layers['polygons:1'].getLayers().length"
    assert page.evaluate(micro) == 0
    page.evaluate("void servicecircleMap.map.setZoom(17, {animate: false})")
    page.wait_for_timeout(200)
    assert page.evaluate(micro) == 1
    page.evaluate("void servicecircleMap.map.setZoom(14, {animate: false})")
    page.wait_for_timeout(200)
    # the 15-minute tier is off by default, the 5-minute tier on
    assert page.evaluate("servicecircleMap.pointsDrawn(0)") is False
    assert page.evaluate("servicecircleMap.pointsDrawn(1)") is True
    label = labels.nth(overlays.index(next(o for o in overlays if "1000 m (" in o)))
    label.locator("input").click()
    page.wait_for_timeout(200)
    assert page.evaluate("servicecircleMap.pointsDrawn(0)") is True
    label.locator("input").click()
    page.wait_for_timeout(200)
    assert page.evaluate("servicecircleMap.pointsDrawn(0)") is False
    shot = page.screenshot(path=str(tmp_path / "map.png"))
    assert not_blank(shot)
    # only tiles were asked for from outside, and refused; the map drew anyway
    assert all("tile.openstreetmap.org" in u for u in blocked)
    page.close()


def test_clicking_a_resident_opens_its_figures(browser, run_dir):
    page, errors, _ = open_offline(browser, run_dir / "coverage_map.html")
    data = page.evaluate("servicecircleMap.data.residents.ids.length")
    assert data > 10
    # the screen position of resident 0 of the 5-minute tier, then a real click there
    xy = page.evaluate(
        """() => { const m = servicecircleMap.map, d = servicecircleMap.data;
        const dx = atob(d.residents.dx), dy = atob(d.residents.dy);
        const f = s => new Float32Array(Uint8Array.from(s, c => c.charCodeAt(0)).buffer);
        const i = 0, ll = [d.origin[1] + f(dy)[i], d.origin[0] + f(dx)[i]];
        m.setView(ll, 18, {animate: false});
        const p = m.latLngToContainerPoint(ll); return [p.x, p.y]; }"""
    )
    page.wait_for_timeout(300)
    box = page.locator("#" + page.evaluate("servicecircleMap.map.getContainer().id")).bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.wait_for_timeout(300)
    popup = page.locator(".leaflet-popup-content")
    assert popup.count() == 1
    first_id = page.evaluate("servicecircleMap.data.residents.ids[0]")
    assert first_id in popup.inner_text()
    assert errors == []
    page.close()


def test_clicking_a_facility_opens_its_figures(browser, run_dir):
    """A real click on each of the first facility markers opens a popup with its id, kind and
    the residents it serves per tier, as facilities.csv has them."""
    import pandas as pd

    from servicecircle.tiers import KIND_LABELS

    fac = pd.read_csv(run_dir / "facilities.csv", dtype={"facility_id": str}).set_index(
        "facility_id"
    )
    page, errors, _ = open_offline(browser, run_dir / "coverage_map.html")
    markers = page.locator(".leaflet-marker-icon")
    seen = 0
    for k in range(min(markers.count(), 6)):
        page.evaluate("servicecircleMap.map.closePopup()")
        markers.nth(k).click(force=True)
        page.wait_for_timeout(150)
        popup = page.locator(".leaflet-popup-content")
        if popup.count() == 0:
            continue
        rows = dict(line.split("\t", 1) for line in popup.inner_text().splitlines() if "\t" in line)
        fid = rows["id"]
        if fid not in fac.index:
            continue  # (a proposed site's marker)
        seen += 1
        loads = [fac.loc[fid, f"{t}_load_residents"] for t in ("centre_15min", "station_5min")]
        served = [v.split(" (")[0] for k, v in rows.items() if "服务居民" in k]  # (tier order)
        assert served == [f"{x:,.0f}" for x in loads if pd.notna(x)], (fid, rows)
        assert rows["类型"] == KIND_LABELS["zh"][fac.loc[fid, "kind"]]
    assert seen >= 3
    assert errors == []
    page.close()


def test_streets_are_drawn_when_the_tiles_cannot_load(browser, run_dir):
    """With OSM tiles and no network, the walk network's streets are switched on by the first
    tile that fails; every edge is a line, and the area sits clear of the panels."""
    page, errors, blocked = open_offline(browser, run_dir / "coverage_map.html")
    assert blocked  # the tiles were asked for and refused
    assert page.evaluate("servicecircleMap.map.hasLayer(servicecircleMap.layers.streets)")
    lines = page.evaluate("servicecircleMap.layers.streets.getLatLngs().length")
    starts = page.evaluate("atob(servicecircleMap.data.streets.starts).length / 4")
    assert lines == starts - 1 > 1000
    boxes = page.evaluate(
        """() => { const m = servicecircleMap.map, b = servicecircleMap.data.bounds;
        const r = e => e.getBoundingClientRect(), c = r(m.getContainer());
        const p = m.latLngToContainerPoint([b[3], b[2]]);
        const q = m.latLngToContainerPoint([b[1], b[0]]);
        return {east: p.x + c.left, west: q.x + c.left,
                panel: r(document.querySelector('.leaflet-control-layers')).left,
                legend: r(document.getElementById('sc-legend')).right}; }"""
    )
    assert boxes["legend"] <= boxes["west"] + 1 and boxes["east"] <= boxes["panel"] + 1, boxes
    assert errors == []
    page.close()


def test_on_a_small_screen_the_layer_panel_folds_into_its_button(browser, run_dir):
    page = browser.new_page(viewport={"width": 800, "height": 600})
    errors, _ = watch(page)
    page.goto((run_dir / "coverage_map.html").as_uri())
    page.wait_for_timeout(800)
    panel = page.locator(".leaflet-control-layers")
    assert panel.count() == 1 and "leaflet-control-layers-expanded" not in (
        panel.get_attribute("class") or ""
    )
    page.locator(".leaflet-control-layers-toggle").click(force=True)  # opens, every layer there
    page.wait_for_timeout(200)
    assert "leaflet-control-layers-expanded" in (panel.get_attribute("class") or "")
    assert page.locator(".leaflet-control-layers-overlays label").count() == 14
    assert errors == []
    page.close()


def test_map_without_tiles_and_in_english(browser, tmp_path):
    from servicecircle.cli import main

    assert (
        main(["-q", "coverage", "demo", "--tiles", "none", "--lang", "en", "--out", str(tmp_path)])
        == 0
    )
    page, errors, blocked = open_offline(browser, tmp_path / "coverage_map.html")
    assert errors == [] and blocked == []
    assert page.evaluate("servicecircleMap.map.hasLayer(servicecircleMap.layers.streets)")
    assert "covered" in page.locator("#sc-legend").inner_text()
    assert "OpenStreetMap contributors" in page.locator(".leaflet-control-attribution").inner_text()
    assert not_blank(page.screenshot())
    page.close()


def test_report_opens_offline(browser, run_dir):
    page, errors, blocked = open_offline(browser, run_dir / "report.html")
    assert errors == [] and blocked == []
    assert page.locator("table").count() >= 3
    ok = page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert ok
    assert page.locator("figure svg polyline").count() >= 2  # the share curve, one line a tier
    page.close()


def test_html_references_no_external_url_but_tiles(run_dir):
    html = (run_dir / "coverage_map.html").read_text()
    for tag in re.findall(r"<(?:script|link|img)[^>]*>", html):
        assert "http://" not in tag and "https://" not in tag, tag
    urls = set(re.findall(r"https?://[^\s\"'<>)\\]+", html))
    allowed = (
        "https://tile.openstreetmap.org/",
        "http://www.w3.org/",
        "https://leafletjs.com",
        "https://bugs.chromium.org/",
        "https://bugzilla.mozilla.org/",
        "https://www.openstreetmap.org/copyright",
    )
    assert all(u.startswith(allowed) for u in urls), urls - {
        u for u in urls if u.startswith(allowed)
    }
    report = (run_dir / "report.html").read_text()
    assert not re.findall(r"(?:src|href)=[\"']https?://", report)


HOSTILE = [
    "${alert(7)}",
    "`backtick`${window.__pwned=1}`",
    "\"quote' & <b>bold</b>",
    '<img src=x onerror="window.__pwned=2">',
    "</script><script>window.__pwned=3</script>",
    "{{7*7}} 驿站",
]


def _hostile_run(tmp_path):
    """A coverage run whose facility names/ids, demand ids and cell ids are hostile."""
    import geopandas as gpd
    import shapely

    from servicecircle.cli import main

    fac = gpd.GeoDataFrame(
        {
            "id": HOSTILE,
            "kind": ["centre", "station", "station", "centre", "station", "station"],
            "name": [*HOSTILE[::-1][:5], None],
        },
        geometry=[
            shapely.Point(24.9527, 60.1683),
            shapely.Point(24.9460, 60.1700),
            shapely.Point(24.9400, 60.1660),
            shapely.Point(24.9350, 60.1720),
            shapely.Point(24.9480, 60.1640),
            shapely.Point(24.9420, 60.1690),
        ],
        crs=4326,
    )
    fac.to_file(tmp_path / "fac.geojson")
    rng = np.random.default_rng(3)
    n = 60
    dem = gpd.GeoDataFrame(
        {
            "id": [HOSTILE[i % len(HOSTILE)] + f"#{i}" for i in range(n)],
            "name": [
                None if i % 3 == 0 else "小区 " + HOSTILE[(i + 1) % len(HOSTILE)] for i in range(n)
            ],
            "population": 50.0,
        },
        geometry=gpd.points_from_xy(rng.uniform(24.935, 24.955, n), rng.uniform(60.164, 60.172, n)),
        crs=4326,
    )
    dem.to_file(tmp_path / "dem.geojson")
    cells = gpd.GeoDataFrame(
        {"cell_id": HOSTILE[:2]},
        geometry=[
            shapely.box(24.93, 60.16, 24.945, 60.175),
            shapely.box(24.945, 60.16, 24.96, 60.175),
        ],
        crs=4326,
    )
    cells.to_file(tmp_path / "cells.geojson")
    out = tmp_path / "out"
    argv = ["-q", "coverage", "demo", "--facilities", str(tmp_path / "fac.geojson"),
            "--demand", str(tmp_path / "dem.geojson"), "--cells", str(tmp_path / "cells.geojson"),
            "--service-areas", "--tiles", "none", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def test_hostile_names_and_ids_stay_text(browser, tmp_path):
    """Every popup and tooltip of a map built from hostile ids and names opens, shows the text
    as it is, and runs nothing; every layer draws."""
    out = _hostile_run(tmp_path)
    page, errors, _ = open_offline(browser, out / "coverage_map.html")
    assert errors == []
    assert page.evaluate("window.__pwned") is None
    assert len(page.evaluate("servicecircleMap.overlays")) >= 8
    n = page.evaluate("servicecircleMap.data.residents.n")
    k = len(page.evaluate("servicecircleMap.data.resident_layers"))
    seen = set()
    for layer in range(k):
        for i in range(n):
            seen.add(page.evaluate(f"servicecircleMap.openResidentPopup({layer}, {i})"))
    assert any("${alert(7)}#0" in s for s in seen)
    assert any('<img src=x onerror="window.__pwned=2">' in s for s in seen)
    names = page.evaluate("servicecircleMap.data.residents.names")
    assert names[0] == "" and names[1].startswith("小区 ")  # the demand file's names
    assert any(f"名称小区 {HOSTILE[2]}" in s.replace("\n", "").replace("\t", "") for s in seen)
    tips = page.evaluate(
        """() => { const out = [];
        Object.values(servicecircleMap.layers).forEach(l => l.eachLayer && l.eachLayer(m => {
          if (m.getTooltip && m.getTooltip()) { m.openTooltip();
            out.push(m.getTooltip().getElement().textContent); m.closeTooltip(); }
        })); return out.concat(servicecircleMap.polygonPopups()); }"""
    )
    joined = "\n".join(tips)
    for text in HOSTILE[:5]:
        assert text in joined, text  # shown as written (names and cell ids)
    assert HOSTILE[-1] in joined  # an id shown where the name is missing
    assert "nan" not in joined and "None" not in joined
    assert page.evaluate("document.querySelectorAll('.leaflet-popup-content img').length") == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert errors == []
    page.close()
    report = (out / "summary.json").read_text()
    assert json.loads(report)["facilities"]["total"] == len(HOSTILE)
