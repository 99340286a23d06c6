"""The what-if page (``propose --whatif``): its figures against a coverage run on the same
chosen set, after every toggle, through the JS API and by clicking markers; the downloaded set
through ``servicecircle coverage``; the page with the network switched off.

The browser tests need Debian's chromium and Playwright for Python, like tests/test_browser.py.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_browser import ARGS, CHROMIUM, HOSTILE, _missing, not_blank, watch

TIERS = ("centre_15min", "station_5min")


# --------------------------------------------------------------------------- fixtures
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


@pytest.fixture(scope="module")
def plan(tmp_path_factory, demo_area, demo_network):
    """``propose demo --tier station_5min --new 3 --whatif`` through the library, keeping the
    frames the page was built from (the oracle's chosen sets are made of them)."""
    import geopandas as gpd
    import pandas as pd

    from servicecircle.tiers import tier_by_name
    from servicecircle.workflows import run_propose
    from servicecircle.workflows.common import DEMO_FACILITIES, resolve_demand, resolve_facilities

    out = tmp_path_factory.mktemp("whatif")
    demand = resolve_demand(demo_area, None)
    fac = resolve_facilities(demo_area, DEMO_FACILITIES)
    result = run_propose(
        demo_area, tier=tier_by_name("station_5min"), new=3, facilities=fac, demand=demand,
        network=demo_network, out_dir=out, write_map=False, whatif=True, whatif_candidates=30,
        tiles="none",
    )  # fmt: skip
    others = result.whatif_candidates
    sites = pd.concat(
        [
            fac.assign(role="existing")[["facility_id", "kind", "role", "geometry"]],
            result.proposals.assign(facility_id=result.proposals["id"], role="proposal")[
                ["facility_id", "kind", "role", "geometry"]
            ],
            others.assign(facility_id=others["id"], role="candidate")[
                ["facility_id", "kind", "role", "geometry"]
            ],
        ],
        ignore_index=True,
    )
    sites = gpd.GeoDataFrame(sites, geometry="geometry", crs=demo_area.crs)
    assert sites["facility_id"].is_unique
    return {"out": out, "demand": demand, "sites": sites.set_index("facility_id", drop=False),
            "result": result}  # fmt: skip


def coverage_of(plan, ids, demo_area, demo_network) -> dict:
    """The oracle: a coverage run with the chosen set as facilities."""
    from servicecircle.workflows import run_coverage

    chosen = plan["sites"].loc[list(ids)].reset_index(drop=True)
    res = run_coverage(
        demo_area, facilities=chosen, demand=plan["demand"], network=demo_network, out_dir=None,
        write_map=False,
    )  # fmt: skip
    return res.summary["tiers"]


def assert_same(figures: dict, summary: dict) -> None:
    assert set(figures) == set(TIERS)
    for tier in TIERS:
        got, want = figures[tier], summary[tier]
        assert got["covered_residents"] == pytest.approx(want["covered_residents"], rel=1e-6)
        assert got["residents"] == pytest.approx(want["residents"], rel=1e-12)
        assert got["pass"] == want["pass"]
        assert got["share"] == pytest.approx(want["share"], rel=1e-6)


def open_page(browser, path: Path, **context):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True,
                              **context)  # fmt: skip
    page = ctx.new_page()
    errors, blocked = watch(page, ("file:", "data:", "blob:"))  # blob: the downloads
    page.goto(path.as_uri())
    page.wait_for_function("window.servicecircleWhatIf && window.servicecircleWhatIf.ready")
    return page, errors, blocked


def page_data(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="sc-whatif">(.*?)</script>', html, re.S)
    assert found
    return json.loads(found.group(1))


def varints(raw: bytes) -> list[int]:
    out, value, shift = [], 0, 0
    for b in raw:
        value |= (b & 127) << shift
        shift += 7
        if not b & 128:
            out.append(value)
            value, shift = 0, 0
    return out


# --------------------------------------------------------------------------- without a browser
def test_leb128_and_spatial_order():
    from servicecircle.whatif_page import leb128, spatial_order

    values = np.array([0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**28 + 5, 2**31 - 1])
    assert varints(leb128(values).tobytes()) == values.tolist()
    assert leb128(np.zeros(0, dtype=int)).size == 0
    xy = np.random.default_rng(1).uniform(0, 5000, size=(1000, 2))
    order = spatial_order(xy)
    assert sorted(order.tolist()) == list(range(1000))


def test_ids_stay_unique():
    import geopandas as gpd
    import shapely

    from servicecircle.whatif_page import page_sites

    pt = [shapely.Point(0, 0)]
    fac = gpd.GeoDataFrame({"facility_id": ["a"], "kind": ["centre"]}, geometry=pt, crs=32650)
    prop = gpd.GeoDataFrame({"id": ["b"], "kind": ["centre"], "rank": [1]}, geometry=pt,
                            crs=32650)  # fmt: skip
    cand = gpd.GeoDataFrame({"id": ["b", "a", "c"], "kind": "station"}, geometry=pt * 3,
                            crs=32650)  # fmt: skip
    sites = page_sites(fac, prop, cand)
    assert sites["site_id"].tolist() == ["a", "b", "b-station", "a-station", "c"]
    assert sites["role"].tolist() == [0, 1, 2, 2, 2]


def test_page_data_encodes_what_coverage_computes(plan, demo_area, demo_network):
    """Decoded in Python, the entries of the starting set cover exactly the points a coverage
    run covers, and every candidate's entries are exactly its reach."""
    data = page_data(plan["out"] / "whatif.html")
    sites = data["sites"]
    assert sites["ids"][: len(plan["sites"])] == plan["sites"]["facility_id"].tolist()
    start = [sid for sid, role in zip(sites["ids"], sites["role"], strict=True) if role < 2]
    summary = coverage_of(plan, start, demo_area, demo_network)
    res = data["residents"]
    pop = np.frombuffer(base64.b64decode(res["pop"]), dtype=res["pop_dtype"])
    assert res["total"] == summary["station_5min"]["residents"]
    for tier in data["tiers"]:
        counts = np.frombuffer(base64.b64decode(tier["count"]), dtype="<u4")
        gaps = varints(base64.b64decode(tier["points"]))
        assert len(gaps) == counts.sum() == tier["entries"]
        walk = np.frombuffer(base64.b64decode(tier["walk"]), dtype="<u2") * tier["walk_unit_m"]
        assert walk.max() <= tier["target_m"] + 0.05
        reached = np.zeros(res["n"], dtype=bool)
        pos = 0
        for k, c in enumerate(counts):
            idx = np.cumsum(np.asarray(gaps[pos : pos + c], dtype=np.int64)) - 1
            pos += c
            assert np.all(np.diff(idx) > 0)
            if sites["kinds"][k] not in tier["kinds"]:
                assert c == 0
            if sites["role"][k] < 2:
                reached[idx] = True
        covered = float(pop[reached].sum())
        assert covered == pytest.approx(summary[tier["name"]]["covered_residents"], rel=1e-12)


def test_other_candidates(plan):
    result = plan["result"]
    others = result.whatif_candidates
    assert 0 < len(others) <= 30
    assert not set(others["id"]) & set(result.proposals["id"])
    assert (others["gain"] > 0).all()
    assert others["gain"].is_monotonic_decreasing
    assert others["kind"].eq("station").all()


def test_bad_requests(demo_area, tmp_path):
    from servicecircle._errors import InputError
    from servicecircle.scenario import load_scenario
    from servicecircle.tiers import tier_by_name
    from servicecircle.workflows import run_propose

    with pytest.raises(InputError, match="--whatif-candidates must be 0 or more"):
        run_propose(demo_area, tier=tier_by_name("station_5min"), new=1, facilities="demo",
                    whatif=True, whatif_candidates=-1)  # fmt: skip
    path = tmp_path / "s.toml"
    path.write_text('[area]\nsource = "demo"\n[facilities]\nsource = "demo"\n'
                    "[output]\nwhatif = true\nwhatif_candidates = -3\n")  # fmt: skip
    with pytest.raises(InputError, match=r"'output.whatif' needs a \[siting\].*0 or more"):
        load_scenario(path)


def test_scenario_writes_the_page(tmp_path):
    from servicecircle.workflows import run_scenario

    path = tmp_path / "s.toml"
    path.write_text(
        '[area]\nsource = "demo"\n[facilities]\nsource = "demo"\n'
        '[siting]\ntier = "station_5min"\nnew = 2\nmethod = "greedy"\n'
        "[output]\nmap = false\nreport = false\nwhatif = true\nwhatif_candidates = 5\n"
        'lang = "en"\ntiles = "none"\n'
    )
    run_scenario(path, out_dir=tmp_path / "out")
    data = page_data(tmp_path / "out" / "whatif.html")
    assert data["lang"] == "en"
    assert [t["name"] for t in data["tiers"]] == list(TIERS)
    assert data["sites"]["role"].count(1) == 2
    assert 0 < data["sites"]["role"].count(2) <= 5


def test_cli_and_two_level(tmp_path):
    from servicecircle.cli import main

    out = tmp_path / "one"
    argv = ["-q", "propose", "demo", "--tier", "station_5min", "--new", "3", "--whatif",
            "--whatif-candidates", "10", "--no-map", "--tiles", "none",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    data = page_data(out / "whatif.html")
    assert data["lang"] == "zh" and data["text"]["reset"] == "重置"
    assert (out / "whatif.html").stat().st_size < 2_000_000
    two = tmp_path / "two"
    argv = ["-q", "propose", "demo", "--centres", "1", "--tier", "station_5min", "--new", "2",
            "--method", "greedy", "--whatif", "--whatif-candidates", "6", "--no-map",
            "--out", str(two)]  # fmt: skip
    assert main(argv) == 0
    data = page_data(two / "whatif.html")
    kinds = [k for k, r in zip(data["sites"]["kinds"], data["sites"]["role"], strict=True) if r]
    assert "centre" in kinds and "station" in kinds
    assert len(set(data["sites"]["ids"])) == len(data["sites"]["ids"])


# --------------------------------------------------------------------------- in the browser
def test_toggles_through_the_api_match_coverage(browser, plan, demo_area, demo_network):
    page, errors, _ = open_page(browser, plan["out"] / "whatif.html")
    api = "servicecircleWhatIf"
    sites = plan["sites"]
    start = [i for i, r in zip(sites.index, sites["role"], strict=True) if r != "candidate"]
    assert page.evaluate(f"{api}.chosen()") == start
    assert_same(
        page.evaluate(f"{api}.figures()"), coverage_of(plan, start, demo_area, demo_network)
    )
    props = sites.index[sites["role"] == "proposal"].tolist()
    cands = sites.index[sites["role"] == "candidate"].tolist()
    centre = sites.index[(sites["role"] == "existing") & (sites["kind"] == "centre")][0]
    station = sites.index[(sites["role"] == "existing") & (sites["kind"] == "station")][0]
    chosen = list(start)
    steps = [props[0], cands[0], cands[1], centre, station, props[0], cands[-1], cands[0]]
    for sid in steps:
        now = page.evaluate(f"{api}.toggle({json.dumps(sid)})")
        if sid in chosen:
            assert now is False
            chosen.remove(sid)
        else:
            assert now is True
            chosen.append(sid)
        assert sorted(page.evaluate(f"{api}.chosen()")) == sorted(chosen)
        figures = page.evaluate(f"{api}.figures()")
        assert_same(figures, coverage_of(plan, chosen, demo_area, demo_network))
    with pytest.raises(Exception, match="no site with id"):
        page.evaluate(f"{api}.toggle('no-such-site')")
    page.evaluate(f"{api}.reset()")
    assert page.evaluate(f"{api}.chosen()") == start
    after = page.evaluate(f"{api}.figures()")
    assert all(after[t]["change_residents"] == 0 for t in TIERS)
    assert errors == []
    page.context.close()


def test_clicking_markers_matches_coverage(browser, plan, demo_area, demo_network):
    page, errors, _ = open_page(browser, plan["out"] / "whatif.html")
    sites = plan["sites"]
    ids = sites.index.tolist()
    chosen = [i for i, r in zip(ids, sites["role"], strict=True) if r != "candidate"]
    cand = sites.index[sites["role"] == "candidate"][2]
    prop = sites.index[sites["role"] == "proposal"][1]
    existing = sites.index[sites["role"] == "existing"][3]
    for sid in (cand, prop, existing, cand):
        k = ids.index(sid)
        page.evaluate(
            """k => { const api = window.servicecircleWhatIf, s = api.data.sites;
               api.map.setView([s.lat[k], s.lon[k]], 18, {animate: false}); }""",
            k,
        )
        tip_before = page.evaluate(f"servicecircleWhatIf.tip({json.dumps(sid)})")
        page.locator(f'[data-sc-site="{k}"]').click()
        if sid in chosen:
            chosen.remove(sid)
            assert "点击移除" in tip_before
        else:
            chosen.append(sid)
            assert "点击添加" in tip_before
        assert sorted(page.evaluate("servicecircleWhatIf.chosen()")) == sorted(chosen)
        assert_same(
            page.evaluate("servicecircleWhatIf.figures()"),
            coverage_of(plan, chosen, demo_area, demo_network),
        )
    # the panel shows the same figures
    panel = page.locator("#sc-panel").inner_text()
    f = page.evaluate("servicecircleWhatIf.figures()")
    assert f"{f['station_5min']['covered_residents']:,.0f} / " in panel
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_downloaded_set_round_trips_through_coverage(browser, plan, tmp_path, fmt):
    from servicecircle.cli import main

    page, errors, _ = open_page(browser, plan["out"] / "whatif.html")
    sites = plan["sites"]
    for sid in (sites.index[sites["role"] == "proposal"][0],
                *sites.index[sites["role"] == "candidate"][:3],
                sites.index[sites["role"] == "existing"][0]):  # fmt: skip
        page.evaluate(f"servicecircleWhatIf.toggle({json.dumps(sid)})")
    figures = page.evaluate("servicecircleWhatIf.figures()")
    with page.expect_download() as info:
        page.locator(f"#sc-download-{fmt}").click()
    path = tmp_path / f"chosen.{fmt}"
    info.value.save_as(path)
    out = tmp_path / "cov"
    argv = ["-q", "coverage", "demo", "--facilities", str(path), "--no-map", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["facilities"]["total"] == len(page.evaluate("servicecircleWhatIf.chosen()"))
    assert_same(figures, summary["tiers"])
    assert errors == []
    page.context.close()


def test_works_with_the_network_off(browser, plan, tmp_path):
    page, errors, blocked = open_page(browser, plan["out"] / "whatif.html", offline=True)
    assert page.evaluate("typeof L") == "object"
    html = (plan["out"] / "whatif.html").read_text()
    assert "http://" not in "".join(re.findall(r"<(?:script|link|img)[^>]*>", html))
    start = page.evaluate("servicecircleWhatIf.figures()")
    prop = plan["sites"].index[plan["sites"]["role"] == "proposal"][0]
    page.evaluate(f"servicecircleWhatIf.toggle({json.dumps(prop)})")
    assert page.evaluate("servicecircleWhatIf.figures()") != start
    page.locator("#sc-reset").click()
    assert page.evaluate("servicecircleWhatIf.figures()") == start
    page.evaluate("servicecircleWhatIf.colourBy('centre_15min')")
    # a resident's popup: its nearest chosen facility per tier
    page.mouse.click(10, 890)
    shot = page.screenshot(path=str(tmp_path / "whatif.png"))
    assert not_blank(shot)
    assert page.locator("canvas.sc-points").count() == 1
    assert blocked == []  # tiles "none": nothing asked for from outside
    assert errors == []
    page.context.close()


def test_hostile_text_stays_text_and_english(browser, demo_area, demo_network, tmp_path):
    import geopandas as gpd
    import shapely

    from servicecircle.facilities import read_facilities
    from servicecircle.tiers import DEFAULT_TIERS
    from servicecircle.whatif_page import whatif_html
    from servicecircle.workflows.common import resolve_demand

    fac = gpd.GeoDataFrame(
        {"facility_id": HOSTILE, "kind": ["centre", "station"] * 3,
         "name": [*HOSTILE[::-1][:5], None]},
        geometry=[shapely.Point(24.9527 - 0.003 * i, 60.1683 - 0.001 * i) for i in range(6)],
        crs=4326,
    ).to_crs(demo_area.crs)  # fmt: skip
    demand = resolve_demand(demo_area, None)
    html = whatif_html(demo_area, demand, fac, None, None, DEFAULT_TIERS, demo_network,
                       lang="en", tiles="none", title=HOSTILE[4])  # fmt: skip
    assert "<img src=x" not in html and "window.__pwned=3</script>" not in html
    path = tmp_path / "whatif.html"
    path.write_text(html, encoding="utf-8")
    page, errors, _ = open_page(browser, path)
    assert page.title() == HOSTILE[4]  # the browser tab: text, not markup
    tips = "\n".join(page.evaluate(f"servicecircleWhatIf.tip({json.dumps(i)})") for i in HOSTILE)
    for text in HOSTILE:
        assert text in tips
    assert "nan" not in tips and "None" not in tips
    assert "Reset" in page.locator("#sc-panel").inner_text()
    page.evaluate(f"servicecircleWhatIf.toggle({json.dumps(HOSTILE[1])})")
    with page.expect_download() as info:
        page.locator("#sc-download-csv").click()
    info.value.save_as(tmp_path / "chosen.csv")
    back = read_facilities(tmp_path / "chosen.csv", crs=demo_area.crs)
    assert back["facility_id"].tolist() == [h for h in HOSTILE if h != HOSTILE[1]]
    assert page.evaluate("window.__pwned") is None
    assert errors == []
    page.context.close()
