"""Governance grids (网格) and micro-grids (微网格): properties that must always hold on
synthetic districts, rebalancing against an exact oracle, the Nanjing extract, roll-ups at
both levels."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from servicecircle import InputError
from servicecircle.governance import GovernanceParams, governance_hierarchy, street_blocks
from servicecircle.governance_balance import AtomGraph, balance
from servicecircle.governance_micro import unit_floor_split

CRS = "EPSG:32650"
X0, Y0 = 650_000.0, 3_550_000.0
PROPERTY = settings(
    derandomize=True,
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ synthetic districts
@st.composite
def districts(draw):
    """A street lattice of uneven blocks, some streets primary, buildings with footprints
    (now and then a tower over the grid maximum), sometimes two communities."""
    nx, ny = draw(st.integers(2, 5)), draw(st.integers(2, 4))
    xs = np.cumsum([0.0, *draw(st.lists(st.floats(80, 220), min_size=nx, max_size=nx))])
    ys = np.cumsum([0.0, *draw(st.lists(st.floats(80, 220), min_size=ny, max_size=ny))])
    major_x = draw(st.integers(0, nx))
    lines, kinds = [], []
    for i, x in enumerate(xs):
        lines.append(shapely.LineString([(X0 + x, Y0), (X0 + x, Y0 + ys[-1])]))
        kinds.append("primary" if i == major_x else "residential")
    for y in ys:
        lines.append(shapely.LineString([(X0, Y0 + y), (X0 + xs[-1], Y0 + y)]))
        kinds.append("residential")
    edges = gpd.GeoDataFrame({"highway": kinds}, geometry=lines, crs=CRS)
    boundary = shapely.box(X0, Y0, X0 + xs[-1], Y0 + ys[-1])
    rows = []
    for i in range(nx):
        for j in range(ny):
            # up to six buildings on 3 × 2 plots of the block, each somewhere in its plot
            slots = draw(st.lists(st.integers(0, 5), max_size=6, unique=True))
            for k in slots:
                sw, sh = (xs[i + 1] - xs[i]) / 3, (ys[j + 1] - ys[j]) / 2
                w, h = sw * 0.5, sh * 0.5
                x = X0 + xs[i] + (k % 3) * sw + draw(st.floats(0.05, 0.45)) * sw
                y = Y0 + ys[j] + (k // 3) * sh + draw(st.floats(0.05, 0.45)) * sh
                tower = draw(st.integers(0, 40)) == 0
                hh = draw(st.floats(600, 900)) if tower else draw(st.floats(5, 140))
                rows.append(
                    {
                        "demand_id": f"b{i}{j}{k}",
                        "households": hh,
                        "population": hh * 2.62,
                        "levels": 24 if tower else draw(st.integers(2, 12)),
                        "footprint": shapely.box(x, y, x + w, y + h),
                    }
                )
    if not rows:
        rows.append(
            {
                "demand_id": "b0",
                "households": 50.0,
                "population": 131.0,
                "levels": 6,
                "footprint": shapely.box(X0 + 10, Y0 + 10, X0 + 30, Y0 + 30),
            }
        )
    demand = gpd.GeoDataFrame(rows, geometry=[r["footprint"].centroid for r in rows], crs=CRS)
    communities = None
    if draw(st.booleans()):
        cut = X0 + draw(st.floats(0.3, 0.7)) * xs[-1]
        communities = gpd.GeoDataFrame(
            {"code": ["C01", "C02"]},
            geometry=[
                shapely.box(X0 - 1, Y0 - 1, cut, Y0 + ys[-1] + 1),
                shapely.box(cut, Y0 - 1, X0 + xs[-1] + 1, Y0 + ys[-1] + 1),
            ],
            crs=CRS,
        )
    return edges, boundary, demand, communities


def check_hierarchy(h, edges, boundary, demand, communities, params):
    grids, micro, bld = h.grids, h.micro_grids, h.buildings
    lo, hi = params.households_min, params.households_max
    hh = demand["households"].to_numpy()
    # every building in exactly one grid (and wholly: its parts add up to 1)
    assert set(bld["demand_id"]) == set(demand["demand_id"])
    assert (bld.groupby("demand_id")["grid_id"].nunique() == 1).all()
    assert np.allclose(bld.groupby("demand_id")["share"].sum(), 1.0)
    g_of = grids.set_index("cell_id").geometry
    for r in bld.drop_duplicates("demand_id").itertuples():
        assert g_of[r.grid_id].distance(r.geometry) < 1e-6
    # no footprint is cut between grids (unless a community boundary runs through it)
    lines = shapely.union_all(
        [] if communities is None else shapely.boundary(communities.geometry.to_numpy())
    )
    for f in demand["footprint"]:
        if communities is not None and f.intersects(lines):
            continue
        shares = grids.geometry.intersection(f).area / f.area
        assert (shares > 1e-6).sum() == 1
    # grids tile the blocks, micro-grids tile their grid
    blocks = street_blocks(edges, boundary)
    union = shapely.union_all(grids.geometry.to_numpy())
    assert grids.area.sum() == pytest.approx(union.area, rel=1e-7)  # no overlaps
    assert shapely.symmetric_difference(union, blocks.union_all()).area < 1e-6 * union.area
    m_area = micro.groupby("grid_id").apply(lambda s: s.area.sum(), include_groups=False)
    assert np.allclose(m_area.reindex(grids["cell_id"]).to_numpy(), grids.area, rtol=1e-7)
    for gid, sub in micro.groupby("grid_id"):
        assert shapely.symmetric_difference(
            shapely.union_all(sub.geometry.to_numpy()), g_of[gid]
        ).area < 1e-6 * max(g_of[gid].area, 1.0)
    assert (grids.geom_type == "Polygon").all()  # contiguous
    # no grid crosses a community boundary
    if communities is not None:
        comm = communities.set_index("code").geometry
        for r in grids.itertuples():
            assert r.geometry.difference(comm[r.community]).area < 1.0
        assert grids["cell_id"].str.match(r"^C0[12]-\d{3}$").all()
    # households conserved across levels
    total = float(hh.sum())
    assert grids["households"].sum() == pytest.approx(total)
    assert micro["households"].sum() == pytest.approx(total)
    assert bld["households"].sum() == pytest.approx(total)
    per_grid = micro.groupby("grid_id")["households"].sum().reindex(grids["cell_id"])
    assert np.allclose(per_grid.to_numpy(), grids["households"].to_numpy())
    per_micro = bld.groupby("micro_grid_id")["households"].sum().reindex(micro["cell_id"])
    assert np.allclose(per_micro.fillna(0).to_numpy(), micro["households"].to_numpy())
    assert all(
        c.startswith(g + "-") for c, g in zip(micro["cell_id"], micro["grid_id"], strict=True)
    )
    # in range, or a grid of one large building divided into micro-grids, or flagged
    plain = grids[(grids["flag"] == "") & ~grids["single_building"]]
    assert ((plain["households"] >= lo - 1e-6) & (plain["households"] <= hi + 1e-6)).all()
    for r in grids[grids["single_building"]].itertuples():
        assert r.flag == "" and r.households > hi
        parts = micro[micro["grid_id"] == r.cell_id]
        assert len(parts) >= math.ceil(r.households / params.micro_households_max)
        assert (parts["demand_id"] != "").all()
    assert all(f.startswith(("below_min", "above_max")) for f in grids["flag"] if f)
    assert grids["polsby_popper"].between(0, 1).all()
    assert grids["street_share"].between(0, 1).all()


@PROPERTY
@given(districts())
def test_hierarchy_properties_on_synthetic_districts(district):
    edges, boundary, demand, communities = district
    params = GovernanceParams()
    h = governance_hierarchy(edges, boundary, demand, communities=communities, params=params)
    check_hierarchy(h, edges, boundary, demand, communities, params)
    again = governance_hierarchy(edges, boundary, demand, communities=communities, params=params)
    for a, b in ((h.grids, again.grids), (h.micro_grids, again.micro_grids)):
        assert a["cell_id"].tolist() == b["cell_id"].tolist()  # re-runs identical
        assert all(x.equals(y) for x, y in zip(a.geometry, b.geometry, strict=True))
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))


# ------------------------------------------------------------------ rebalancing vs an oracle
def path_graph(hh) -> AtomGraph:
    """Atoms in a row, each touching the next (a street of plots): grids are runs of atoms."""
    n = len(hh)
    eu = np.arange(n - 1)
    return AtomGraph(
        hh=np.asarray(hh, dtype=float),
        area=np.full(n, 100.0),
        perim=np.full(n, 40.0),
        inner_total=np.zeros(n),
        community=np.array(["c"] * n, dtype=object),
        tower=np.zeros(n, dtype=bool),
        unit=np.arange(n),
        eu=eu,
        ev=eu + 1,
        length=np.full(n - 1, 10.0),
        inner=np.zeros(n - 1),
        major=np.zeros(n - 1),
        nbrs=tuple(np.array([j for j in (i - 1, i + 1) if 0 <= j < n]) for i in range(n)),
        nbr_edges=tuple(np.array([e for e in (i - 1, i) if 0 <= e < n - 1]) for i in range(n)),
    )


def runs_exist(hh, lo, hi) -> bool:
    """Exact: can the row be cut into runs of lo–hi households? (dynamic programming)"""
    cum = np.concatenate([[0.0], np.cumsum(hh)])
    ok = [True] + [False] * len(hh)
    for i in range(1, len(hh) + 1):
        ok[i] = any(ok[j] and lo <= cum[i] - cum[j] <= hi for j in range(i))
    return ok[-1]


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=2, max_size=12))
@example([280, 400, 320])  # greedy growth strands the first atom: "every neighbour would pass"
@example([250, 260, 260])  # 770 fits two grids by count, but no run of atoms does
# rows where re-splitting at most four grids at a time found nothing (kept as examples)
@example([68, 266, 120, 142, 50, 139, 83, 235, 41, 160, 121, 274, 196, 169, 44])
@example([140, 209, 137, 125, 33, 276, 178, 29, 80, 183, 182, 5, 275])
def test_rebalancing_finds_an_arrangement_whenever_one_exists(hh):
    lo, hi = 300.0, 500.0
    b = balance(path_graph(hh), lo, hi)
    totals = np.bincount(b.grid_of, weights=np.asarray(hh, dtype=float))
    in_range = (totals >= lo - 1e-9) & (totals <= hi + 1e-9)
    assert [f == "" for f in b.flags] == in_range.tolist()
    for x in range(len(totals)):  # grids are runs (contiguous)
        idx = np.flatnonzero(b.grid_of == x)
        assert (np.diff(idx) == 1).all()
    assert in_range.all() == runs_exist(hh, lo, hi)
    total = sum(hh)
    if math.floor(total / lo) < math.ceil(total / hi):
        settled = ("no whole number of grids", "fewer than the minimum")
        assert any(s in f for f in b.flags for s in settled)


def test_unit_floor_split_is_the_fewest_micro_grids():
    """Against brute force over every number of unit groups and floor bands: within 30–150,
    the fewest floor bands, then the fewest micro-grids, using the estimated units (more units
    only when none fits)."""

    def fits(households, units, floors, nu, nf):
        u_total = max(units, nu)
        return all(
            30 <= households * (len(a) / u_total) * (len(f) / floors) <= 150
            for a in np.array_split(np.arange(u_total), nu)
            for f in np.array_split(np.arange(floors), nf)
        )

    cases = [(545.2, 7, 6), (600, 1, 30), (213, 3, 6), (160, 1, 1), (900, 2, 3)]
    for households, units, floors in cases:
        us, fs = unit_floor_split(households, units, floors, 30, 150)
        parts = households * np.outer(np.asarray(us) / sum(us), np.asarray(fs) / floors)
        assert sum(fs) == floors and parts.sum() == pytest.approx(households)
        assert ((parts >= 30 - 1e-9) & (parts <= 150 + 1e-9)).all()
        top = max(units, math.ceil(households / 30))
        for limit in (units, top):
            options = [
                (nf, nu * nf)
                for nu in range(1, limit + 1)
                for nf in range(1, floors + 1)
                if fits(households, units, floors, nu, nf)
            ]
            if options:
                assert (len(fs), len(us) * len(fs)) == min(options)
                assert (len(us) > units) == (limit > units)
                break


# ------------------------------------------------------------------ real footprints
def test_nanjing_grids_are_balanced_and_towers_become_micro_grids(nanjing_area):
    from servicecircle.demand import demand_from_buildings

    area = nanjing_area
    demand = demand_from_buildings(area.buildings, landuse=area.landuse)
    params = GovernanceParams()
    h = governance_hierarchy(area.edges, area.boundary, demand, params=params)
    grids = h.grids
    flagged = grids[grids["flag"] != ""]
    assert len(flagged) <= 0.05 * len(grids)
    assert not flagged["flag"].str.contains("one building").any()
    towers = grids[grids["single_building"]]
    assert len(towers) >= 1 and (towers["micro_grids"] >= 2).all()
    assert grids.attrs["footprints_not_kept_whole"] == 0
    assert h.micro_grids["households"].sum() == pytest.approx(grids["households"].sum())
    assert grids["polsby_popper"].median() > 0.3 and grids["street_share"].median() > 0.5
    again = governance_hierarchy(area.edges, area.boundary, demand, params=params)
    assert again.grids["cell_id"].tolist() == grids["cell_id"].tolist()
    assert all(a.equals(b) for a, b in zip(again.grids.geometry, grids.geometry, strict=True))


def square_streets():
    return gpd.GeoDataFrame(
        {"highway": ["residential"] * 4},
        geometry=[
            shapely.LineString([(X0, Y0), (X0 + 200, Y0)]),
            shapely.LineString([(X0 + 200, Y0), (X0 + 200, Y0 + 200)]),
            shapely.LineString([(X0 + 200, Y0 + 200), (X0, Y0 + 200)]),
            shapely.LineString([(X0, Y0 + 200), (X0, Y0)]),
        ],
        crs=CRS,
    )


def test_no_residents_give_one_flagged_grid_with_its_reason():
    demand = gpd.GeoDataFrame({"population": []}, geometry=[], crs=CRS)
    h = governance_hierarchy(square_streets(), shapely.box(X0, Y0, X0 + 200, Y0 + 200), demand)
    assert len(h.grids) == 1 and len(h.micro_grids) == 1 and len(h.buildings) == 0
    assert h.grids["flag"].iloc[0].startswith("below_min: isolated block")
    assert h.micro_grids["flag"].iloc[0] == "below_min: no households"


def test_a_footprint_that_cannot_be_kept_whole_is_counted_not_dropped():
    edges = square_streets()
    boundary = shapely.box(X0, Y0, X0 + 200, Y0 + 200)
    with np.errstate(invalid="ignore"):  # a broken outline, as some OSM exports hold
        bad = shapely.Polygon([(X0 + 150, Y0 + 150), (np.nan, Y0 + 160), (X0 + 160, Y0 + 170)])
    footprints = [
        shapely.box(X0 + 20, Y0 + 20, X0 + 40, Y0 + 40),
        shapely.box(X0 + 100, Y0 + 20, X0 + 120, Y0 + 40),
        bad,
    ]
    points = [shapely.Point(X0 + 30, Y0 + 30), shapely.Point(X0 + 110, Y0 + 30)]
    points.append(shapely.Point(X0 + 155, Y0 + 160))
    demand = gpd.GeoDataFrame(
        {"demand_id": ["a", "b", "c"], "households": [90.0, 90.0, 90.0], "footprint": footprints},
        geometry=points,
        crs=CRS,
    )
    demand["population"] = demand["households"] * 2.62
    h = governance_hierarchy(
        edges, boundary, demand, params=GovernanceParams(households_min=60, households_max=100)
    )
    assert h.grids.attrs["footprints_not_kept_whole"] == 1
    assert sorted(h.buildings["demand_id"]) == ["a", "b", "c"]
    assert h.grids["households"].sum() == pytest.approx(270.0)


def test_bad_governance_settings_are_all_reported():
    with pytest.raises(InputError, match="MIN:MAX") as err:
        GovernanceParams(micro_households_min=200, micro_households_max=100, unit_width_m=0)
    assert "micro-grid" in str(err.value) and "unit width" in str(err.value)


# ------------------------------------------------------------------ roll-ups at both levels
def test_rollup_divides_a_building_by_its_shares():
    """Hand-computed: building x (100 residents) is held 1/4 and 3/4 by two micro-grids that
    do not contain its point; building y (10) lies in the first one."""
    from graphs import make_net
    from servicecircle.coverage import compute_coverage
    from servicecircle.rollup import rollup
    from servicecircle.tiers import Tier

    net = make_net([(0, 0), (300, 0), (600, 0)], [(0, 1), (1, 2)])
    demand = gpd.GeoDataFrame(
        {"demand_id": ["x", "y"], "population": [100.0, 10.0], "households": [40.0, 4.0]},
        geometry=[shapely.Point(590, 5), shapely.Point(100, 5)],
        crs=CRS,
    )
    fac = gpd.GeoDataFrame(
        {"facility_id": ["s"], "kind": ["station"]}, geometry=[shapely.Point(600, -5)], crs=CRS
    )
    cov = compute_coverage(net, demand, fac, [Tier("s300", 300.0, ("station",))])
    cells = gpd.GeoDataFrame(
        {"cell_id": ["m1", "m2", "m3"], "demand_id": ["x", "x", ""], "share": [0.25, 0.75, None]},
        geometry=[
            shapely.box(0, -50, 200, 50),
            shapely.box(200, -50, 400, 50),
            shapely.box(400, -50, 700, 50),
        ],
        crs=CRS,
    )
    r = rollup(cov, demand, cells).set_index("cell_id")
    assert r["population"].tolist() == pytest.approx([35.0, 75.0, 0.0])
    assert r["households"].tolist() == pytest.approx([14.0, 30.0, 0.0])
    assert r["s300_covered_residents"].tolist() == pytest.approx([25.0, 75.0, 0.0])
    assert r.loc["m2", "s300_responsible_id"] == "s"
    assert r.attrs["points_outside_cells"] == 0


def test_responsibility_rollups_at_grid_and_micro_grid_level(demo_area, demo_network):
    from servicecircle.coverage import compute_coverage
    from servicecircle.demand import demand_from_buildings
    from servicecircle.facilities import read_facilities
    from servicecircle.rollup import rollup
    from servicecircle.workflows import demo_facilities_path

    demand = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    h = governance_hierarchy(demo_area.edges, demo_area.boundary, demand)
    fac = read_facilities(demo_facilities_path(), crs=demo_area.crs)
    cov = compute_coverage(demo_network, demand, fac)
    tier = cov.tiers[-1].name
    grid_r = rollup(cov, demand, h.grids)
    micro_r = rollup(cov, demand, h.micro_grids)
    total = demand["population"].sum()
    for r in (grid_r, micro_r):
        assert r["population"].sum() == pytest.approx(total)
        assert r[f"{tier}_covered_residents"].sum() == pytest.approx(
            cov.points["population"].where(cov.points[f"{tier}_covered"], 0).sum()
        )
    # a building divided by unit and floor: its residents by share, its facility in every part
    micro_r = micro_r.set_index("cell_id")
    parts = h.micro_grids[h.micro_grids["demand_id"] != ""]
    assert len(parts) >= 2
    by_id = demand.set_index("demand_id")
    for r in parts.itertuples():
        b = by_id.loc[r.demand_id]
        assert micro_r.loc[r.cell_id, "population"] >= b["population"] * r.share - 1e-6
        pos = int(np.flatnonzero(demand["demand_id"].to_numpy() == r.demand_id)[0])
        want = cov.points[f"{tier}_facility_id"].iloc[pos]
        if want is not None and micro_r.loc[r.cell_id, "population"] == pytest.approx(
            b["population"] * r.share
        ):
            assert micro_r.loc[r.cell_id, f"{tier}_responsible_id"] == want
    # grid level: the micro-grids add up to their grid
    by_grid = micro_r.groupby("grid_id")["population"].sum()
    assert np.allclose(
        by_grid.reindex(grid_r["cell_id"]).to_numpy(), grid_r["population"].to_numpy()
    )
    # shares that do not add up are refused
    broken = h.micro_grids[h.micro_grids["cell_id"] != parts["cell_id"].iloc[0]]
    with pytest.raises(InputError, match="add up to"):
        rollup(cov, demand, broken)


def test_grid_cli_writes_the_hierarchy(tmp_path, capsys):
    import json

    from servicecircle.cli import main

    out = tmp_path / "g"
    args = ["grid", "demo", "--kind", "governance", "--micro-households", "30:150"]
    assert main([*args, "--out", str(out)]) == 0
    assert "micro-grids" in capsys.readouterr().out
    import pyogrio

    assert [n for n, _ in pyogrio.list_layers(out / "cells.gpkg")] == [
        "cells",
        "micro_grids",
        "buildings",
    ]
    cells = gpd.read_file(out / "cells.gpkg", layer="cells")
    micro = gpd.read_file(out / "cells.gpkg", layer="micro_grids")
    assert {"level", "polsby_popper", "street_share", "micro_grids"} <= set(cells.columns)
    assert {"grid_id", "level", "demand_id", "share", "units", "floors"} <= set(micro.columns)
    assert micro["grid_id"].isin(cells["cell_id"]).all()
    s = json.loads((out / "grid_summary.json").read_text())
    gov = s["governance"]
    hh = gov["hierarchy"]["households"]
    assert hh["grids"] == pytest.approx(hh["micro_grids"]) == pytest.approx(hh["buildings"])
    assert (
        gov["micro_grids"]["count"]
        == len(micro)
        == sum(len(g["micro_grids"]) for g in gov["grids"])
    )
    assert gov["footprints_not_kept_whole"] == {"grids": 0, "micro_grids": 0}
    assert set(gov["shape"]) == {"polsby_popper", "street_share"}
    assert main([*args[:4], "--micro-households", "150:30", "--out", str(tmp_path / "x")]) == 2
    assert "micro-grid household range" in capsys.readouterr().err
    assert main([*args[:4], "--micro-households", "lots", "--out", str(tmp_path / "y")]) == 2
    assert "--micro-households must be MIN:MAX" in capsys.readouterr().err
