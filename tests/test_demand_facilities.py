"""Demand from buildings and files; facilities from files and OSM tags."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from servicecircle import CRSError, InputError, InputFileNotFoundError
from servicecircle.demand import BuildingPopulation, demand_from_buildings, read_demand
from servicecircle.facilities import facilities_from_pois, read_facilities

CRS = "EPSG:32650"


def buildings(**cols):
    n = len(next(iter(cols.values())))
    geoms = [shapely.box(i * 100, 0, i * 100 + 20, 10) for i in range(n)]  # 200 m² each
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=CRS)


def test_population_is_footprint_times_levels_over_floor_area():
    b = buildings(
        building=["residential", "apartments", "yes", "school", "yes"],
        **{"building:levels": ["3", None, "2;3", "4", "5"]},
        amenity=[None, None, None, None, "cafe"],
    )
    d = demand_from_buildings(b)
    # school and the cafe are not homes; "2;3" reads as 2 levels; None → default 6
    assert d["population"].round(6).tolist() == [200 * 3 / 40, 200 * 6 / 40, 200 * 2 / 40]
    assert d["levels_source"].tolist() == ["tag", "default", "tag"]
    np.testing.assert_allclose(d["households"], d["population"] / 2.62)
    assert d.attrs["counts"]["not_residential"] == 2 and d.attrs["counts"]["used"] == 3


def test_parameters_are_overridable():
    b = buildings(building=["yes", "yes"], **{"building:levels": [None, "2"]})
    p = BuildingPopulation(
        floor_area_per_resident_m2=20, default_levels=1, unspecified_is_residential=True
    )
    assert demand_from_buildings(b, params=p)["population"].tolist() == [10.0, 20.0]
    p2 = BuildingPopulation(unspecified_is_residential=False)
    assert len(demand_from_buildings(b, params=p2)) == 0


def test_unspecified_buildings_in_commercial_landuse_are_not_homes():
    b = buildings(building=["yes", "yes"])
    landuse = gpd.GeoDataFrame(
        {"landuse": ["commercial"]}, geometry=[shapely.box(-10, -10, 50, 50)], crs=CRS
    )
    d = demand_from_buildings(b, landuse=landuse)
    assert len(d) == 1


def test_buildings_in_degrees_are_refused():
    b = buildings(building=["yes"]).set_crs(4326, allow_override=True)
    with pytest.raises(CRSError, match="geographic CRS.*reproject"):
        demand_from_buildings(b)


def test_demo_demand_is_plausible(demo_area):
    d = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    c = d.attrs["counts"]
    assert c["used"] + c["not_residential"] + c["too_small"] + c["not_polygons"] == c["buildings"]
    assert 5_000 < d["population"].sum() < 100_000
    assert d["demand_id"].is_unique


def write_geojson(path, features):
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": props,
                        "geometry": {"type": "Point", "coordinates": list(xy)},
                    }
                    for props, xy in features
                ],
            }
        )
    )
    return path


def test_read_demand_file_with_households(tmp_path):
    path = write_geojson(
        tmp_path / "d.geojson",
        [
            ({"id": "a", "population": 100, "households": 40}, (118.78, 32.04)),
            ({"id": "b", "population": 262}, (118.781, 32.04)),
        ],
    )
    d = read_demand(path, crs=CRS)
    assert d.crs == CRS and d["demand_id"].tolist() == ["a", "b"]
    assert d["households"].tolist() == [40, 100]


def test_demand_file_without_population(tmp_path):
    """The message names the columns that would do and the file's own (not the id copy read
    makes); a file of coordinates alone says so."""
    path = write_geojson(tmp_path / "d.geojson", [({"id": "a", "people": 3}, (118.78, 32.04))])
    with pytest.raises(
        InputError,
        match=r"no population column \(population or 人口 or 常住人口\).*coordinates: id, people$",
    ):
        read_demand(path, crs=CRS)
    (tmp_path / "d.csv").write_text("经度,纬度\n118.78,32.04\n", encoding="gbk")
    with pytest.raises(InputError, match="besides the coordinates: none$"):
        read_demand(tmp_path / "d.csv", crs=CRS)


def test_demand_file_with_negative_population(tmp_path):
    path = write_geojson(tmp_path / "d.geojson", [({"population": -3}, (118.78, 32.04))])
    with pytest.raises(InputError, match="a negative population"):
        read_demand(path, crs=CRS)


def test_read_facilities_csv(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,kind,name,lon,lat\n1,centre,A,118.78,32.04\n2,驿站,B,118.79,32.045\n")
    f = read_facilities(path, crs=CRS)
    assert f["facility_id"].tolist() == ["1", "2"]
    assert f["kind"].tolist() == ["centre", "station"]
    assert f.crs == CRS


def test_facility_file_without_kind(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,lon,lat\n1,118.78,32.04\n")
    with pytest.raises(InputError, match="no 'kind' column; set kind to 'centre' or 'station'"):
        read_facilities(path, crs=CRS)


def test_facility_file_with_unknown_kind(tmp_path):
    path = tmp_path / "f.csv"
    rows = "1,centre,118.78,32.04\n7,hospital,118.78,32.04\n8,公园,118.78,32.04\n9,公园,118.7,32.0"
    path.write_text("id,kind,lon,lat\n" + rows + "\n")
    match = r"3 facilities are of unknown kind \('hospital', '公园'; the first: id '7'\)"
    with pytest.raises(InputError, match=match):
        read_facilities(path, crs=CRS)


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("红色驿站", "station"),
        ("党群服务站", "station"),
        ("社区党群服务中心", "centre"),
        ("街道党群服务中心", "centre"),
        ("Center", "centre"),
        ("暖新驿站", "worker_station"),
        ("快递小哥之家", "worker_station"),
        ("户外劳动者服务站", "worker_station"),
        ("户外劳动者服务站点", "worker_station"),
        ("环卫工人驿站", "worker_station"),
    ],
)
def test_facility_kinds_as_planners_write_them(tmp_path, word, kind):
    path = tmp_path / "f.csv"
    path.write_text(f"id,kind,lon,lat\n1,{word},118.78,32.04\n", encoding="utf-8")
    assert read_facilities(path, crs=CRS)["kind"].tolist() == [kind]


def test_facility_file_with_duplicate_ids(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,kind,lon,lat\n1,centre,118.78,32.04\n1,station,118.79,32.04\n")
    with pytest.raises(InputError, match="id '1' appears more than once"):
        read_facilities(path, crs=CRS)


def test_facility_csv_without_lonlat(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,kind,x_m\n1,centre,5\n")
    with pytest.raises(InputError, match="needs 'lon' and 'lat'"):
        read_facilities(path, crs=CRS)


def test_facility_file_missing(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="facility file .* no such file"):
        read_facilities(tmp_path / "none.geojson", crs=CRS)


def test_facility_file_into_degrees_is_refused(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,kind,lon,lat\n1,centre,118.78,32.04\n")
    with pytest.raises(CRSError, match="geographic CRS"):
        read_facilities(path, crs=4326)


def test_facilities_from_osm_tags():
    pois = gpd.GeoDataFrame(
        {
            "osm_id": [1, 2, 3, 4, 5],
            "name": ["南湖街道党群服务中心", "红色驿站", "社区服务站", "咖啡馆", None],
            "amenity": [None, None, None, "cafe", "community_centre"],
        },
        geometry=[shapely.Point(i * 10, 0) for i in range(5)],
        crs=CRS,
    )
    f = facilities_from_pois(pois)
    assert dict(zip(f["facility_id"], f["kind"], strict=True)) == {
        "osm1": "centre",
        "osm2": "station",
        "osm3": "station",
        "osm5": "centre",
    }


def test_a_facility_mapped_as_node_and_outline_counts_once():
    """南京图书馆 is both an OSM node and a building outline: one facility (the node); the same
    name 500 m away is another place; an unnamed pair is never merged."""
    outline = shapely.box(20, -20, 60, 20)
    pois = gpd.GeoDataFrame(
        {
            "osm_id": [1, 2, 3, 4, 5],
            "name": ["红色驿站", "红色驿站", "红色驿站", None, None],
            "amenity": [None, None, None, "community_centre", "community_centre"],
        },
        geometry=[outline, *shapely.points([(30, 0), (530, 0), (0, 5), (0, 6)])],
        crs=CRS,
    )
    f = facilities_from_pois(pois)
    assert sorted(f["facility_id"]) == ["osm2", "osm3", "osm4", "osm5"]
    assert f.attrs["osm_duplicates_merged"] == 1


def test_demo_facility_file_matches_the_preset(demo_area):
    from servicecircle.plan import demo_facilities_path

    shipped = read_facilities(demo_facilities_path(), crs=demo_area.crs)
    derived = facilities_from_pois(demo_area.pois)
    assert sorted(shipped["facility_id"]) == sorted(derived["facility_id"])
    assert set(shipped["kind"]) == {"centre", "station"}


@pytest.mark.parametrize(
    "word",
    ["社区卫生服务中心", "物业服务中心", "汽车服务中心", "家政服务中心", "菜鸟驿站",
     "社区卫生服务站", "警务工作站", "中国邮政服务点", "妇女之家", "公园"],
)  # fmt: skip
def test_other_services_are_not_taken_for_centres_or_stations(tmp_path, word):
    path = tmp_path / "f.csv"
    path.write_text(f"id,kind,lon,lat\n1,{word},118.78,32.04\n", encoding="utf-8")
    with pytest.raises(InputError, match="1 facility is of unknown kind"):
        read_facilities(path, crs=CRS)


def test_kinds_read_from_names_are_said(tmp_path, caplog):
    caplog.set_level("WARNING", logger="servicecircle")
    path = tmp_path / "f.csv"
    rows = "1,红色驿站,118.78,32.04\n2,红色驿站,118.7,32.0\n3,centre,118.7,32.1\n"
    path.write_text("id,kind,lon,lat\n" + rows, encoding="utf-8")
    assert read_facilities(path, crs=CRS)["kind"].tolist() == ["station", "station", "centre"]
    assert "kinds read from their names: 红色驿站 → station (2)" in caplog.text


def test_osm_names_of_other_services_are_not_stations_or_centres():
    """The OSM preset by name: 红色驿站 and 社区服务中心 count, a parcel point, a clinic or a
    police post that also say 驿站/服务站/服务中心 do not (the same as in facility files)."""
    import geopandas as gpd
    import shapely

    from servicecircle.facilities import facilities_from_pois

    names = {
        "红色驿站": "station", "XX社区居委会": "station", "社区服务中心": "centre",
        "党群服务中心": "centre", "暖新驿站": "worker_station", "菜鸟驿站": None,
        "社区卫生服务站": None, "社区卫生服务中心": None, "警务工作站": None, "物业服务中心": None,
    }  # fmt: skip
    pois = gpd.GeoDataFrame(
        {"id": range(len(names)), "name": list(names)},
        geometry=[shapely.Point(500_000 + 50 * i, 3_500_000) for i in range(len(names))],
        crs=32650,
    )
    fac = facilities_from_pois(pois)
    got = dict(zip(fac["name"], fac["kind"], strict=True))
    assert got == {n: k for n, k in names.items() if k is not None}


def test_facilities_drawn_as_areas_are_placed_inside_them_and_counted(tmp_path, caplog):
    caplog.set_level("WARNING", logger="servicecircle")
    import geopandas as gpd
    import shapely

    path = tmp_path / "f.geojson"
    gpd.GeoDataFrame(
        {"id": ["a", "b"], "kind": ["centre", "station"]},
        geometry=[shapely.box(118.78, 32.04, 118.781, 32.041), shapely.Point(118.79, 32.05)],
        crs=4326,
    ).to_file(path)
    fac = read_facilities(path, crs=CRS)
    assert set(fac.geom_type) == {"Point"}
    box_m = gpd.GeoSeries([shapely.box(118.78, 32.04, 118.781, 32.041)], crs=4326).to_crs(CRS)
    assert fac.geometry.iloc[0].within(box_m.iloc[0])
    assert (
        "1 facility is drawn as areas or lines; each is placed at a point inside it" in caplog.text
    )
