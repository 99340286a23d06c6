"""The audit as a planner runs it: the CLI on the real extracts, all outputs, the pages in the
browser."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import BEIJING, NANJING, shared_file
from servicecircle.cli import main

FILES = ("audit.csv", "audit_summary.json", "audit_cells.csv", "audit_cells.gpkg",
         "audit_map.html", "audit_report.html")  # fmt: skip


@pytest.fixture(scope="module", params=["nanjing", "beijing"])
def audited(request, tmp_path_factory):
    path = shared_file({"nanjing": NANJING, "beijing": BEIJING}[request.param])
    out = tmp_path_factory.mktemp(f"audit_{request.param}")
    assert main(["-q", "audit", str(path), "--grid", "hex:300", "--tiles", "none",
                 "--out", str(out)]) == 0  # fmt: skip
    return out


def test_the_extracts_find_schools_clinics_markets_and_write_everything(audited):
    for name in FILES:
        assert (audited / name).stat().st_size > 0, name
    s = json.loads((audited / "audit_summary.json").read_text())
    found = {t: v["pois"] for t, v in s["types"].items()}
    assert found["kindergarten"] > 0
    assert found["primary_school"] + found["middle_school"] > 0
    assert found["clinic_station"] + found["health_centre"] > 0
    assert found["market"] + found["supermarket"] > 0
    table = pd.read_csv(audited / "audit.csv")
    assert len(table) == s["demand_points"]
    assert {"kindergarten_walk_m", "kindergarten_within", "types_missing"} <= set(table.columns)
    # a resident marked within reach of a type walks no farther than its distance
    within = table["kindergarten_within"].astype(str) == "true"
    assert (table.loc[within, "kindergarten_walk_m"] <= 300 + 0.05).all()
    assert s["types"]["kindergarten"]["segment_walk_m"] == pytest.approx(240)


def test_type_layers_render_and_the_report_has_the_matrix(audited, tmp_path):
    from test_browser import CHROMIUM, open_offline

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page, errors, _ = open_offline(b, audited / "audit_map.html")
        overlays = page.evaluate("servicecircleMap.overlays")
        assert errors == []
        assert any(o.startswith("缺项数") for o in overlays)
        assert any(o.startswith("幼儿园 ≤ 300 m") for o in overlays)
        panel = page.locator(".leaflet-control-layers")
        if "expanded" not in (panel.get_attribute("class") or ""):  # (folded: no room beside)
            page.locator(".leaflet-control-layers-toggle").click(force=True)
            page.wait_for_timeout(200)
        label = page.locator(".leaflet-control-layers-overlays label").filter(has_text="幼儿园")
        label.locator("input").click()
        page.wait_for_timeout(200)
        k = next(i for i, o in enumerate(page.evaluate("servicecircleMap.data.resident_layers"))
                 if o["name"].startswith("幼儿园"))  # fmt: skip
        assert page.evaluate(f"servicecircleMap.pointsDrawn({k})") is True
        report, errors, _ = open_offline(b, audited / "audit_report.html")
        assert errors == []
        assert report.locator("table.matrix").count() == 1
        heads = report.locator("table.matrix th").all_inner_texts()
        assert "幼儿园" in heads and "网格" in heads
        b.close()
