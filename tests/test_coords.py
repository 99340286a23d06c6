"""WGS84 ↔ GCJ-02 ↔ BD-09: published reference points, round trips, identity outside China."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from servicecircle import coords
from servicecircle._errors import InputError

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance on WGS84, in metres."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def china_grid(step: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Every ``step`` degrees over lon 73.75–135, lat 18–53.5: inside CHINA_BOX."""
    lon, lat = np.meshgrid(np.arange(73.75, 135.0, step), np.arange(18.0, 53.5, step))
    return lon.ravel(), lat.ravel()


# --- published reference points -------------------------------------------------------------
# wandergis/coordtransform, test/app.js (the widely copied JavaScript implementation; its README
# repeats these): all four at input (116.404, 39.915). Its gcj02towgs84 and bd09togcj02 are the
# closed-form approximations, ours iterate to the exact inverse, so those two agree to < 1 m.
WANDERGIS = {
    "wgs84_to_gcj02": (116.41024449916938, 39.91640428150164),
    "gcj02_to_bd09": (116.41036949371029, 39.92133699351021),
    "gcj02_to_wgs84": (116.39775550083061, 39.91359571849836),  # one-step approximation
    "bd09_to_gcj02": (116.39762729119315, 39.90865673957631),  # closed-form approximation
}

# googollee/eviltransform, python/test.py (same vectors in go/transform_test.go):
# (wgs lat, wgs lng, gcj lat, gcj lng); it checks its exact inverse to < 0.5 m.
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize("name", ["wgs84_to_gcj02", "gcj02_to_bd09"])
def test_forward_transforms_match_wandergis_coordtransform(name):
    lon, lat = getattr(coords, name)(116.404, 39.915)
    assert metres(lon, lat, *WANDERGIS[name]) < 0.001


@pytest.mark.parametrize("name", ["gcj02_to_wgs84", "bd09_to_gcj02"])
def test_inverses_agree_with_published_approximations_within_a_metre(name):
    lon, lat = getattr(coords, name)(116.404, 39.915)
    assert metres(lon, lat, *WANDERGIS[name]) < 1.0


@pytest.mark.parametrize(("wlat", "wlng", "glat", "glng"), EVILTRANSFORM)
def test_eviltransform_vectors(wlat, wlng, glat, glng):
    lon, lat = coords.wgs84_to_gcj02(wlng, wlat)
    assert metres(lon, lat, glng, glat) < 0.01
    lon, lat = coords.gcj02_to_wgs84(glng, glat)
    assert metres(lon, lat, wlng, wlat) < 0.05  # eviltransform's own bound for exact: 0.5 m


def test_amap_web_service_example():
    # Amap's coordinate-convert web service (restapi.amap.com/v3/assistant/coordinate/convert,
    # coordsys=gps) answered 116.487585177952,39.991754014757 for 116.481499,39.990475, as
    # recorded in the README of the R package womeimingzi11/amapGeocode (convertCoord example).
    # The service prints 12 decimals; the formulas reproduce it to a few centimetres.
    lon, lat = coords.wgs84_to_gcj02(116.481499, 39.990475)
    assert metres(lon, lat, 116.487585177952, 39.991754014757) < 0.1


def test_baidu_web_service_example():
    # Baidu's geoconv v1 documentation example (lbsyun.baidu.com webapi/guide/changeposition,
    # request quoted in Rechtl/vuepress-blog docs/IT/BMap.md): coords=114.21892734521,
    # 29.575429778924 from=1 (WGS84) to=5 (BD-09); the service's answer
    # {"x":114.2307519546763,"y":29.57908428837437} is recorded by many projects that call it.
    # Baidu's own implementation differs from the published formulas by about 0.7 m here.
    lon, lat = coords.wgs84_to_bd09(114.21892734521, 29.575429778924)
    assert metres(lon, lat, 114.2307519546763, 29.57908428837437) < 1.0
    lon, lat = coords.bd09_to_wgs84(114.2307519546763, 29.57908428837437)
    assert metres(lon, lat, 114.21892734521, 29.575429778924) < 1.0


# --- round trips ----------------------------------------------------------------------------
def test_round_trips_over_china_stay_below_half_a_metre():
    lon, lat = china_grid()
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    back = coords.gcj02_to_wgs84(glon, glat)
    assert metres(lon, lat, *back).max() < 0.5
    blon, blat = coords.wgs84_to_bd09(lon, lat)
    back = coords.bd09_to_wgs84(blon, blat)
    assert metres(lon, lat, *back).max() < 0.5


def test_inverses_converge_to_the_stated_tolerance():
    lon, lat = china_grid()
    for forward, inverse in [
        (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (coords.gcj02_to_bd09, coords.bd09_to_gcj02),
    ]:
        x, y = inverse(lon, lat)
        fx, fy = forward(x, y)
        assert np.abs(fx - lon).max() <= coords.INVERSE_TOL_DEG
        assert np.abs(fy - lat).max() <= coords.INVERSE_TOL_DEG


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    lon=st.floats(73.7, 135.0, allow_nan=False),
    lat=st.floats(18.0, 53.5, allow_nan=False),
    system=st.sampled_from(["gcj02", "bd09"]),
)
@example(lon=105.0, lat=35.0, system="gcj02")  # the formulas' origin: sqrt(|x|) is steepest
def test_round_trip_property(lon, lat, system):
    there = coords.from_wgs84(lon, lat, system)
    back = coords.to_wgs84(*there, system)
    assert metres(lon, lat, *back) < 0.5


def test_wgs84_is_the_identity_and_returns_copies():
    lon = np.array([116.4, 121.5])
    x, y = coords.to_wgs84(lon, [39.9, 31.2], "wgs84")
    assert np.array_equal(x, lon) and np.array_equal(y, [39.9, 31.2])
    x[0] = 0
    assert lon[0] == 116.4


# --- where the shift applies ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("lon", "lat"),
    [(24.94, 60.17), (151.21, -33.87), (-74.0, 40.7), (139.69, 35.69)],
    ids=["Helsinki", "Sydney", "New York", "Tokyo"],
)
def test_identity_outside_china(lon, lat):
    for name in ("wgs84_to_gcj02", "gcj02_to_wgs84", "wgs84_to_bd09", "bd09_to_wgs84"):
        x, y = getattr(coords, name)(lon, lat)
        assert (float(x), float(y)) == (lon, lat), name


CITIES = {
    "Beijing": (116.40, 39.90),
    "Shanghai": (121.47, 31.23),
    "Guangzhou": (113.26, 23.13),
    "Nanjing": (118.78, 32.04),
    "Chengdu": (104.07, 30.57),
    "Wuhan": (114.31, 30.59),
    "Xi'an": (108.94, 34.34),
    "Harbin": (126.63, 45.75),
    "Kunming": (102.83, 24.88),
    "Lhasa": (91.13, 29.65),
    "Urumqi": (87.62, 43.83),
    "Kashgar": (75.99, 39.47),
    "Haikou": (110.35, 20.02),
}


def test_gcj02_shifts_chinese_cities_by_100_to_700_m():
    lon, lat = np.array(list(CITIES.values())).T
    shift = metres(lon, lat, *coords.wgs84_to_gcj02(lon, lat))
    assert shift.min() > 100 and shift.max() < 700, dict(zip(CITIES, shift.round(), strict=True))


def test_gcj02_shift_over_the_whole_box():
    # 100–700 m holds for 99 % of the box; in Qinghai (96–99° E, 35–39° N) it falls to ~27 m.
    lon, lat = china_grid()
    shift = metres(lon, lat, *coords.wgs84_to_gcj02(lon, lat))
    assert np.quantile(shift, 0.01) > 95
    assert 20 < shift.min() and shift.max() < 710


def test_nan_passes_through_without_holding_up_the_others():
    x, y = coords.bd09_to_wgs84([np.nan, 116.41036949371029], [39.9, 39.92133699351021])
    assert np.isnan(x[0]) and y[0] == 39.9
    assert metres(x[1], y[1], *coords.gcj02_to_wgs84(116.404, 39.915)) < 0.01


def test_in_china_box_edges():
    west, _south, east, north = coords.CHINA_BOX
    inside = coords.in_china([west + 0.01, east + 0.01, 100.0, 100.0], [30, 30, north - 0.01, 60])
    assert inside.tolist() == [True, False, True, False]


# --- names ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given_name", "canonical"), [("GCJ-02", "gcj02"), ("bd_09", "bd09"), ("WGS84", "wgs84")]
)
def test_coords_names_are_forgiving(given_name, canonical):
    assert coords.check_coords(given_name) == canonical


def test_unknown_coords_name_lists_the_allowed_ones():
    with pytest.raises(InputError, match="'cgcs2000'.*use one of wgs84, gcj02, bd09"):
        coords.to_wgs84(116.4, 39.9, "cgcs2000")
    with pytest.raises(InputError, match="use one of wgs84, gcj02, bd09"):
        coords.from_wgs84(116.4, 39.9, "mars")


# --- GeoDataFrames --------------------------------------------------------------------------
def test_geometries_to_wgs84_moves_every_vertex():
    square = shapely.Polygon(
        [(118.78, 32.04), (118.79, 32.04), (118.79, 32.05), (118.78, 32.05)],
        holes=[[(118.783, 32.043), (118.786, 32.043), (118.786, 32.046)]],
    )
    gdf = gpd.GeoDataFrame(
        {"name": ["square", "centre"]},
        geometry=[square, shapely.Point(118.785, 32.045, 12.0)],
        crs=4326,
        index=[10, 20],
    )
    out = coords.geometries_to_wgs84(gdf, "gcj02")
    assert (
        out is not gdf
        and out.index.tolist() == [10, 20]
        and out["name"].tolist()
        == [
            "square",
            "centre",
        ]
    )
    assert out.crs == gdf.crs
    before = shapely.get_coordinates(gdf.geometry.to_numpy())
    after = shapely.get_coordinates(out.geometry.to_numpy())
    expected = np.column_stack(coords.gcj02_to_wgs84(before[:, 0], before[:, 1]))
    np.testing.assert_allclose(after, expected, rtol=0, atol=1e-12)
    assert metres(before[:, 0], before[:, 1], after[:, 0], after[:, 1]).min() > 100
    assert out.geometry.iloc[1].has_z and out.geometry.iloc[1].z == 12.0
    assert out.geometry.iloc[0].geom_type == "Polygon" and len(out.geometry.iloc[0].interiors) == 1
    # the input is left as it was
    assert shapely.get_coordinates(gdf.geometry.to_numpy()).tolist() == before.tolist()


def test_geometries_to_wgs84_refuses_projected_frames():
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(500000, 3500000)], crs=32650)
    with pytest.raises(InputError, match="EPSG:32650.*gcj02 coordinates.*are lon/lat degrees"):
        coords.geometries_to_wgs84(gdf, "gcj02", what="candidate file c.gpkg")
    with pytest.raises(InputError, match="no CRS"):
        coords.geometries_to_wgs84(gpd.GeoDataFrame(geometry=[shapely.Point(1, 2)]), "bd09")
