"""Grids: exact tiling (property tests), governance grids on real extracts, bad input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BEIJING, NANJING, shared_file
from servicecircle import InputError
from servicecircle.governance import GovernanceParams, governance_grid
from servicecircle.grid import cell_figures, h3_grid, hex_grid, square_grid

CRS = "EPSG:32650"  # UTM 50N: Nanjing and Beijing


@st.composite
def boundaries(draw):
    """Random polygons: unions of discs and boxes, sometimes in several parts or with holes."""
    x0 = draw(st.floats(600_000, 700_000))
    y0 = draw(st.floats(3_500_000, 3_600_000))
    n = draw(st.integers(1, 5))
    parts = []
    for _ in range(n):
        cx, cy = draw(st.floats(0, 3000)), draw(st.floats(0, 3000))
        if draw(st.booleans()):
            parts.append(shapely.Point(x0 + cx, y0 + cy).buffer(draw(st.floats(200, 1500)), 8))
        else:
            w, h = draw(st.floats(200, 2000)), draw(st.floats(200, 2000))
            parts.append(shapely.box(x0 + cx, y0 + cy, x0 + cx + w, y0 + cy + h))
    shape = shapely.union_all(parts)
    if draw(st.booleans()):
        c = shape.representative_point()
        shape = shape.difference(c.buffer(100))
    return shape


def check_tiling(cells: gpd.GeoDataFrame, boundary) -> None:
    assert cells["cell_id"].is_unique
    areas = cells.area.to_numpy()
    total = boundary.area
    assert areas.sum() == pytest.approx(total, rel=1e-9)
    union = shapely.union_all(cells.geometry.to_numpy())
    assert union.area == pytest.approx(total, rel=1e-9)  # no overlaps: Σ areas = union area
    assert shapely.symmetric_difference(union, boundary).area <= total * 1e-9  # no gaps


def check_points(cells: gpd.GeoDataFrame, boundary, seed: int) -> None:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = boundary.bounds
    pts = shapely.points(rng.uniform(minx, maxx, 300), rng.uniform(miny, maxy, 300))
    pts = pts[shapely.contains_properly(boundary, pts)]
    if len(pts) == 0:
        return
    hits = cells.sindex.query(pts, predicate="within")
    counts = np.bincount(hits[0], minlength=len(pts))
    assert (counts == 1).all()
    demand = gpd.GeoDataFrame({"population": rng.uniform(0, 100, len(pts))}, geometry=pts, crs=CRS)
    fig = cell_figures(cells, demand)
    assert fig["population"].sum() == pytest.approx(demand["population"].sum())


def too_big(boundary, size) -> bool:
    minx, miny, maxx, maxy = boundary.bounds
    return size > max(maxx - minx, maxy - miny)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(boundaries(), st.floats(80, 600), st.integers(0, 10_000))
def test_square_cells_tile_the_boundary(boundary, size, seed):
    if too_big(boundary, size):
        with pytest.raises(InputError, match="larger than the area"):
            square_grid(boundary, size, crs=CRS)
        return
    cells = square_grid(boundary, size, crs=CRS)
    check_tiling(cells, boundary)
    check_points(cells, boundary, seed)


@SETTINGS
@given(boundaries(), st.floats(80, 600), st.integers(0, 10_000))
def test_hex_cells_tile_the_boundary(boundary, size, seed):
    if too_big(boundary, size):
        with pytest.raises(InputError, match="larger than the area"):
            hex_grid(boundary, size, crs=CRS)
        return
    cells = hex_grid(boundary, size, crs=CRS)
    check_tiling(cells, boundary)
    check_points(cells, boundary, seed)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boundaries(), st.sampled_from([8, 9]), st.integers(0, 10_000))
def test_h3_cells_tile_the_boundary(boundary, res, seed):
    cells = h3_grid(boundary, res, crs=CRS)
    check_tiling(cells, boundary)
    check_points(cells, boundary, seed)


def test_ids_are_stable_and_unclipped_cells_are_regular():
    b1 = shapely.box(0, 0, 1000, 1000)
    b2 = shapely.box(-500, -500, 1500, 1500)
    a = hex_grid(b1, 200, crs=CRS).set_index("cell_id")
    b = hex_grid(b2, 200, crs=CRS).set_index("cell_id")
    inner = a.index[a.area > 0.999 * (200**2 * np.sqrt(3) / 2)]
    assert len(inner) > 5
    for cid in inner:  # the same id is the same hexagon, whatever the boundary
        assert a.geometry[cid].equals(b.geometry[cid])
    assert a.area.max() == pytest.approx(200**2 * np.sqrt(3) / 2)
    sq = square_grid(b1, 250, crs=CRS)
    assert sorted(sq["cell_id"])[:2] == ["sq250-0-0", "sq250-0-1"] and len(sq) == 16


def test_bad_grid_input():
    with pytest.raises(InputError, match="must be a polygon"):
        square_grid(shapely.LineString([(0, 0), (1, 1)]), 100, crs=CRS)
    with pytest.raises(InputError, match="positive number of metres"):
        hex_grid(shapely.box(0, 0, 1000, 1000), 0, crs=CRS)
    with pytest.raises(InputError, match="larger than the area"):
        square_grid(shapely.box(0, 0, 1000, 1000), 5000, crs=CRS)
    with pytest.raises(InputError, match="from 0 to 15"):
        h3_grid(shapely.box(600_000, 3_500_000, 601_000, 3_501_000), 16, crs=CRS)
    from servicecircle import CRSError

    with pytest.raises(CRSError, match="geographic"):
        square_grid(shapely.box(118, 32, 118.1, 32.1), 0.01, crs=4326)


# ------------------------------------------------------------------ governance grids
def _strips(boundary, n):
    minx, miny, maxx, maxy = boundary.bounds
    xs = np.linspace(minx - 1, maxx + 1, n + 1)
    return gpd.GeoDataFrame(
        {"code": [f"C{i + 1:02d}" for i in range(n)]},
        geometry=[shapely.box(xs[i], miny - 1, xs[i + 1], maxy + 1) for i in range(n)],
    )


def check_governance(area, communities=None, params=None):
    from servicecircle.demand import demand_from_buildings

    params = params or GovernanceParams()
    demand = demand_from_buildings(area.buildings, landuse=area.landuse)
    comm = None
    if communities is not None:
        comm = communities.set_crs(area.crs)
    grids = governance_grid(area.edges, area.boundary, demand, communities=comm, params=params)
    again = governance_grid(area.edges, area.boundary, demand, communities=comm, params=params)
    assert grids["cell_id"].tolist() == again["cell_id"].tolist()  # deterministic codes
    assert all(a.equals(b) for a, b in zip(grids.geometry, again.geometry, strict=True))
    ok = grids[grids["flag"] == ""]
    plain = ok[~ok["single_building"]]  # a grid of one large building is above the maximum
    assert (
        (plain["households"] >= params.households_min - 1e-6)
        & (plain["households"] <= params.households_max + 1e-6)
    ).all()
    tower = ok[ok["single_building"]]
    assert (tower["households"] > params.households_max).all()
    assert (tower["micro_grids"] >= 2).all()
    assert (grids.geom_type == "Polygon").all()  # contiguous
    assert grids["cell_id"].is_unique
    assert grids["households"].sum() == pytest.approx(
        demand["population"].sum() / params.household_size
    )
    assert all(f.startswith(("below_min", "above_max")) for f in grids["flag"] if f)
    assert len(ok) >= 0.9 * len(grids)
    if comm is not None:
        for g in grids.itertuples():
            c = comm.loc[comm["code"] == g.community].geometry.iloc[0]
            assert g.geometry.difference(c).area < 1.0  # inside one community
        assert grids["cell_id"].str.match(r"^C\d\d-\d{3}$").all()
    return grids


def test_governance_grids_on_the_demo(demo_area):
    grids = check_governance(demo_area)
    assert grids["cell_id"].iloc[0] == "000-001"


def test_governance_grids_respect_communities(demo_area):
    check_governance(demo_area, communities=_strips(demo_area.boundary, 3))


@pytest.mark.parametrize("path", [NANJING, BEIJING], ids=["nanjing", "beijing"])
def test_governance_grids_on_chinese_extracts(path):
    from servicecircle.area import load_area

    area = load_area(shared_file(path))
    check_governance(area, communities=_strips(area.boundary, 2))


def test_community_layer_that_misses_the_area(demo_area):
    from servicecircle.demand import demand_from_buildings

    far = gpd.GeoDataFrame({"code": ["X"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=demo_area.crs)
    demand = demand_from_buildings(demo_area.buildings)
    with pytest.raises(InputError, match="does not overlap the area"):
        governance_grid(demo_area.edges, demo_area.boundary, demand, communities=far)


def test_bad_household_range():
    with pytest.raises(InputError, match="MIN:MAX"):
        GovernanceParams(households_min=500, households_max=300)


def test_grid_cli_and_coverage_rollup(tmp_path, capsys):
    import json

    from servicecircle.cli import main

    assert (
        main(
            ["grid", "demo", "--kind", "hex", "--size-m", "300", "--out", str(tmp_path / "g"), "-q"]
        )
        == 0
    )
    cells = gpd.read_file(tmp_path / "g" / "cells.gpkg", layer="cells")
    assert {"cell_id", "population", "households", "flag"} <= set(cells.columns)
    s = json.loads((tmp_path / "g" / "grid_summary.json").read_text())
    assert s["count"] == len(cells)
    assert (
        main(
            [
                "coverage",
                "demo",
                "--cells",
                str(tmp_path / "g" / "cells.gpkg"),
                "--out",
                str(tmp_path / "c"),
                "--no-map",
                "-q",
            ]
        )
        == 0
    )
    rolled = gpd.read_file(tmp_path / "c" / "cells.gpkg")
    assert rolled["population"].sum() == pytest.approx(cells["population"].sum())
    assert "station_5min_responsible_id" in rolled.columns
    assert (
        main(["grid", "demo", "--kind", "h3", "--h3-res", "99", "--out", str(tmp_path / "x")]) == 2
    )
    assert "from 0 to 15" in capsys.readouterr().err


def test_governance_grids_never_cut_a_building(demo_area):
    """Every footprint that lies inside one street block lies inside one grid."""
    from servicecircle.demand import demand_from_buildings
    from servicecircle.governance import street_blocks

    demand = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    grids = governance_grid(
        demo_area.edges,
        demo_area.boundary,
        demand,
        params=GovernanceParams(households_min=100, households_max=150),
    )
    blocks = street_blocks(demo_area.edges, demo_area.boundary)
    fp = gpd.GeoSeries(demand["footprint"].to_numpy(), crs=demo_area.crs).make_valid()
    in_block = fp.sindex.query(blocks.geometry.to_numpy(), predicate="contains_properly")[1]
    split = 0
    for f in fp.iloc[np.unique(in_block)]:
        shares = grids.geometry.intersection(f).area / f.area
        split += int((shares > 1e-6).sum() > 1)
    assert len(in_block) > 50 and split == 0
    assert (grids["households"] > 150).sum() < len(grids)  # the small range forced splits


def test_coverage_rolls_up_governance_micro_grids_from_the_cli(tmp_path):
    """``coverage --cells cells.gpkg`` of a governance run rolls up both levels: grids and
    their micro-grids (微网格), whose residents add up to their grid's, tower shares included."""
    import json

    from servicecircle.cli import main

    grid_out, cov_out = tmp_path / "g", tmp_path / "c"
    assert main(["grid", "demo", "--kind", "governance", "--out", str(grid_out), "-q"]) == 0
    micro_in = gpd.read_file(grid_out / "cells.gpkg", layer="micro_grids")
    assert len(micro_in) > 0
    args = ["coverage", "demo", "--cells", str(grid_out / "cells.gpkg"), "--out", str(cov_out)]
    assert main([*args, "-q"]) == 0
    grids = gpd.read_file(cov_out / "cells.gpkg", layer="cells")
    micro = gpd.read_file(cov_out / "cells.gpkg", layer="micro_grids")
    assert set(micro["cell_id"]) == set(micro_in["cell_id"])
    per_grid = micro.groupby("grid_id")["population"].sum()
    by_id = grids.set_index("cell_id")["population"]
    assert per_grid.to_numpy() == pytest.approx(by_id.loc[per_grid.index].to_numpy(), rel=1e-9)
    for tier in ("centre_15min", "station_5min"):
        got = micro.groupby("grid_id")[f"{tier}_covered_residents"].sum()
        want = grids.set_index("cell_id")[f"{tier}_covered_residents"].loc[got.index]
        assert got.to_numpy() == pytest.approx(want.to_numpy(), rel=1e-9)
    table = pd.read_csv(cov_out / "micro_grids.csv")
    assert len(table) == len(micro)
    summary = json.loads((cov_out / "summary.json").read_text())
    assert summary["micro_grids"]["count"] == len(micro)
    assert "micro_grids.csv" in summary["files"]
    page = (cov_out / "coverage_map.html").read_text()
    assert str(micro["cell_id"].iloc[0]) in page  # the micro-grid layer is on the map
