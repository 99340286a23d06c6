"""The life-circle standard as data: the packaged preset, user files, POI matching and reading."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from servicecircle import InputError
from servicecircle.osmtags import name_matches
from servicecircle.standard import (
    LEVELS,
    SEGMENTS,
    TYPE_KINDS,
    load_standard,
    match_pois,
    read_pois,
)

CRS = "EPSG:32650"

# The distances of GB 50180-2018 appendix C, as the preset records them (see its header).
CLAUSE_DISTANCES = {
    "kindergarten": 300,
    "nursery": 300,
    "primary_school": 500,
    "middle_school": 1000,
    "clinic_station": 300,
    "health_centre": 1000,
    "elderly_day_care": 300,
    "market": 500,
    "supermarket": 500,
    "community_service_station": 300,
    "culture_station": 500,
    "small_sports_ground": 300,
    "fitness_outdoor": 300,
    "sports_centre": 1000,
    "bus_stop": 500,
    "metro_station": 800,
    "waste_collection": 70,
}
CONVENTIONS = {
    "nursing_home": 1000,
    "culture_centre": 1000,
    "community_canteen": 300,
    "pharmacy": 300,
    "public_toilet": 300,
    "post_express": 200,
    "play_area": 200,
}
REQUIRED_IDS = {
    "kindergarten",
    "primary_school",
    "middle_school",
    "clinic_station",
    "health_centre",
    "elderly_day_care",
    "nursing_home",
    "market",
    "supermarket",
    "community_service_station",
    "culture_station",
    "small_sports_ground",
    "fitness_outdoor",
    "bus_stop",
    "metro_station",
    "pharmacy",
    "public_toilet",
    "waste_collection",
}


@pytest.fixture(scope="module")
def std():
    return load_standard()


# --------------------------------------------------------------------------- the preset
def test_preset_has_the_required_types_each_with_a_source(std):
    assert std.name == "gb50180"
    assert len(std.types) >= 18
    assert REQUIRED_IDS <= set(std.ids)
    for t in std.types:
        assert t.source.strip(), t.id
        assert "GB 50180" in t.source or "TD/T 1062" in t.source, t.id
        assert t.level in LEVELS and t.kind in TYPE_KINDS and t.segment in SEGMENTS
        assert t.rules or t.name_patterns, f"{t.id} can never match a POI"
        assert t.name_zh and t.name_en
    assert len({t.name_zh for t in std.types}) == len(std.types)


def test_preset_distances_are_the_standards(std):
    for type_id, metres in CLAUSE_DISTANCES.items():
        t = std.by_id(type_id)
        assert t.max_walk_m == metres, type_id
        assert not t.convention, type_id
    for type_id, metres in CONVENTIONS.items():
        t = std.by_id(type_id)
        assert t.max_walk_m == metres, type_id
        assert t.convention and "convention" in t.note, type_id
    assert set(CLAUSE_DISTANCES) | set(CONVENTIONS) == set(std.ids)


def test_preset_levels_kinds_segments_and_groups(std):
    assert std.levels() == LEVELS
    assert std.by_id("kindergarten").level == "5min"
    assert std.by_id("primary_school").level == "10min"
    assert std.by_id("middle_school").level == "15min"
    assert std.by_id("waste_collection").level == "block"
    assert std.by_id("metro_station").kind == "quality"
    assert {t.id for t in std.types if t.segment == "children"} >= {
        "kindergarten",
        "primary_school",
        "middle_school",
    }
    assert {t.id for t in std.types if t.segment == "elderly"} == {
        "elderly_day_care",
        "nursing_home",
    }
    # 菜市场或生鲜超市: one requirement of two types
    ten = std.requirements("10min")
    assert ("market", "supermarket") in [tuple(m.id for m in r) for r in ten]
    assert all(t.basic for t in std.basic_types("5min"))
    assert "pharmacy" not in {t.id for t in std.basic_types()}


def test_load_by_name_by_path_and_unknown_names(std):
    assert load_standard("GB50180").ids == std.ids
    assert load_standard(std.path).ids == std.ids
    with pytest.raises(InputError, match="did you mean 'gb50180'"):
        load_standard("gb5018")
    with pytest.raises(InputError, match="no such file"):
        load_standard("missing_rules.toml")
    with pytest.raises(InputError, match="no facility type 'kindergarden'.*'kindergarten'"):
        std.by_id("kindergarden")
    with pytest.raises(InputError, match="unknown level"):
        std.basic_types("20min")


# --------------------------------------------------------------------------- user files
def write(tmp_path, text, name="rules.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_citys_own_file_loads(tmp_path):
    path = write(
        tmp_path,
        """
name = "nanjing-local"
source = "南京市社区生活圈规划导则（示例）"

[types.kindergarten]
name_zh = "幼儿园"
level = "5min"
max_walk_m = 250
kind = "basic"
segment = "children"
source = "local rule"
osm = [{amenity = "school", "isced:level" = 0}, {amenity = ["kindergarten", 7]}]
name_patterns = ["幼儿园"]

[types.canteen]
name_zh = "长者食堂"
level = "5min"
max_walk_m = 300
kind = "quality"
source = "local rule"
""",
    )
    std = load_standard(path)
    assert std.name == "nanjing-local" and std.ids == ("kindergarten", "canteen")
    k = std.by_id("kindergarten")
    assert k.max_walk_m == 250.0 and isinstance(k.max_walk_m, float)
    assert k.rules == (
        {"amenity": "school", "isced:level": "0"},
        {"amenity": ["kindergarten", "7"]},
    )
    canteen = std.by_id("canteen")
    assert canteen.segment == "all" and canteen.rules == () and canteen.group is None
    assert std.resolve("长者食堂") == "canteen" and std.resolve("幼儿园") == "kindergarten"


def test_a_broken_file_reports_every_problem_at_once(tmp_path):
    path = write(
        tmp_path,
        """
nmae = "typo"

[types.kindergarten]
name_zh = "幼儿园"
level = "5min"
max_walk = 300
kind = "basic"
source = "x"

[types.school]
name_zh = "学校"
level = "20min"
max_walk_m = -5
kind = "basic2"
segment = "kids"
source = "x"
name_patterns = ["小学(", 3]
osm = [{amenity = false}, {}]

[types.clinic]
name_zh = "学校"
level = "5min"
max_walk_m = "300"
kind = "basic"
source = "x"

[types.toilet]
name_zh = "公厕"
level = "5min"
max_walk_m = 300
kind = "basic"
source = "x"
convention = true

[types.Bad-Id]
name_zh = "坏"
level = "5min"
max_walk_m = 300
kind = "basic"
source = "x"

[types.market]
name_zh = "菜市场"
level = "10min"
max_walk_m = 500
kind = "basic"
source = "x"
group = "fresh"

[types.supermarket]
name_zh = "超市"
level = "5min"
max_walk_m = 500
kind = "basic"
source = "x"
group = "fresh"
""",
    )
    with pytest.raises(InputError) as info:
        load_standard(path)
    msg = str(info.value)
    for expected in (
        "unknown key 'nmae' (did you mean 'name'?)",
        "unknown key 'types.kindergarten.max_walk' (did you mean 'max_walk_m'?)",
        "'types.school.level' = '20min' is not allowed",
        "'types.school.max_walk_m' must be a positive number of metres; got -5",
        "'types.school.kind' = 'basic2' is not allowed",
        "'types.school.segment' = 'kids' is not allowed; use one of all, children, elderly",
        "'types.school.name_patterns[0]' = '小学(' is not a valid regular expression",
        "'types.school.name_patterns[1]' must be a regular expression",
        "'types.school.osm[0].amenity' must be true, a value",
        "'types.school.osm[1]' must be a non-empty table",
        "'types.clinic.max_walk_m' must be a walking distance in metres",
        "'types.toilet.note' is missing",
        "'types.Bad-Id': a type id may hold lower-case letters",
        "group 'fresh' mixes levels or kinds",
    ):
        assert expected in msg, f"{expected!r} not in {msg}"
    assert msg.startswith(f"standard {path}: ")


def test_duplicate_names_and_ids_and_missing_keys(tmp_path):
    path = write(
        tmp_path,
        """
[types.a]
name_zh = "同名"
level = "5min"
max_walk_m = 300
kind = "basic"
source = "x"

[types.b]
name_zh = "同名"
level = "5min"
kind = "basic"
""",
    )
    with pytest.raises(InputError) as info:
        load_standard(path)
    msg = str(info.value)
    assert "'types.b.max_walk_m' is missing" in msg and "'types.b.source' is missing" in msg
    dup = write(
        tmp_path,
        '[types.a]\nname_zh = "甲"\n[types.a]\nname_zh = "乙"\n',
        name="dup.toml",
    )
    with pytest.raises(InputError, match="not valid TOML"):
        load_standard(dup)
    empty = write(tmp_path, 'name = "nothing"\n', name="empty.toml")
    with pytest.raises(InputError, match=r"no facility types: add one \[types.<id>\] table"):
        load_standard(empty)
    wrong = write(tmp_path, 'name_zh = "甲"\ntypes = 3\n', name="wrong.toml")
    with pytest.raises(InputError, match="unknown key 'name_zh'.*'types' must be one"):
        load_standard(wrong)


def test_max_walk_m_of_true_is_refused(tmp_path):
    path = write(
        tmp_path,
        '[types.a]\nname_zh = "甲"\nlevel = "5min"\nmax_walk_m = true\nkind = "basic"\n'
        'source = "x"\n',
    )
    with pytest.raises(InputError, match="'types.a.max_walk_m' must be a walking distance"):
        load_standard(path)


# --------------------------------------------------------------------------- matching
def poi_frame(rows, geometries=None, crs=CRS):
    frame = pd.DataFrame(rows)
    geoms = geometries or [shapely.Point(i * 10.0, 0.0) for i in range(len(frame))]
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=crs)


def matched(result):
    return {(r.poi_id, r.type) for r in result.itertuples()}


def test_match_pois_by_tags_and_chinese_names(std):
    rows = [
        {"osm_id": 1, "amenity": "kindergarten", "name": None},
        {"osm_id": 2, "amenity": "school", "isced:level": "1", "name": "Some school"},
        {"osm_id": 3, "amenity": "school", "name": "石鼓路小学"},
        {"osm_id": 4, "amenity": "school", "name": "南京五中"},
        {"osm_id": 5, "amenity": "school", "name": "秦淮区教师进修学校"},
        {"osm_id": 6, "amenity": "school", "name": "某某九年一贯制学校"},
        {"osm_id": 7, "amenity": "clinic", "name": "玄武区某某社区卫生服务中心"},
        {"osm_id": 8, "name": "梅园社区卫生服务站"},
        {"osm_id": 9, "amenity": "social_facility", "social_facility": "day_care"},
        {"osm_id": 10, "name": "五道口养老服务驿站"},
        {"osm_id": 11, "name": "科巷菜市场"},
        {"osm_id": 12, "shop": "greengrocer"},
        {"osm_id": 13, "shop": "convenience", "name": "便利蜂"},
        {"osm_id": 14, "amenity": "restaurant", "name": "清华附中食堂"},
        {"osm_id": 15, "amenity": "hospital", "name": "江苏省口腔医院"},
        {"osm_id": 16, "amenity": "school", "name": "南京幼儿高等师范学校"},
        {"osm_id": 17, "amenity": "school", "name": "南京市第三高级中学文昌初中"},
        {"osm_id": 18, "name": "红色驿站"},
        {"osm_id": 19, "name": "菜鸟驿站"},
        {"osm_id": 20, "amenity": "toilets"},
        {"osm_id": 21, "leisure": "pitch", "name:zh": "北操场"},
        {"osm_id": 22, "railway": "station", "station": "subway", "name": "新街口"},
        {"osm_id": 23, "highway": "bus_stop", "name": "珠江路南站"},
    ]
    got = matched(match_pois(poi_frame(rows), std))
    want = {
        ("1", "kindergarten"),
        ("2", "primary_school"),
        ("3", "primary_school"),
        ("4", "middle_school"),
        ("6", "primary_school"),
        ("6", "middle_school"),
        ("7", "health_centre"),
        ("8", "clinic_station"),
        ("9", "elderly_day_care"),
        ("10", "elderly_day_care"),
        ("11", "market"),
        ("12", "supermarket"),
        ("17", "middle_school"),
        ("18", "community_service_station"),
        ("19", "post_express"),
        ("20", "public_toilet"),
        ("21", "small_sports_ground"),
        ("22", "metro_station"),
        ("23", "bus_stop"),
    }
    assert got == want


def test_match_pois_columns_names_rules_and_points(std):
    square = shapely.box(100, 100, 160, 140)
    frame = poi_frame(
        [
            {"element": "node", "osm_id": 5.0, "amenity": "kindergarten", "name": None},
            {"element": "way", "osm_id": 5.0, "amenity": "school", "name": "汉中门小学"},
            {"element": "way", "osm_id": 6.0, "amenity": "toilets", "name": " "},
        ],
        [shapely.Point(1, 2), square, shapely.Point(3, 4)],
    )
    out = match_pois(frame, std)
    assert list(out.columns) == ["poi_id", "type", "name", "rule", "geometry"]
    assert out.crs == frame.crs
    rows = {r.type: r for r in out.itertuples()}
    # a node and a way share a number: the element tells them apart
    assert rows["kindergarten"].poi_id == "node/5" and rows["primary_school"].poi_id == "way/5"
    assert rows["public_toilet"].poi_id == "6"
    assert rows["kindergarten"].name == "" and rows["public_toilet"].name == ""
    assert rows["primary_school"].name == "汉中门小学"
    assert rows["kindergarten"].rule == "amenity=kindergarten"
    assert rows["primary_school"].rule == "name~小学"
    assert set(out.geom_type) == {"Point"}
    assert square.contains(rows["primary_school"].geometry)
    assert "nan" not in set(out["name"])


def test_match_pois_without_names_or_ids_and_empty(std):
    frame = poi_frame([{"amenity": "toilets"}, {"amenity": "bank"}, {"amenity": "pharmacy"}])
    out = match_pois(frame, std)
    assert out[["poi_id", "type"]].values.tolist() == [["2", "pharmacy"], ["0", "public_toilet"]]
    assert out["name"].tolist() == ["", ""]
    empty = match_pois(gpd.GeoDataFrame(geometry=[], crs=CRS), std)
    assert len(empty) == 0 and list(empty.columns) == ["poi_id", "type", "name", "rule", "geometry"]


def test_name_matches_searches_every_name_column():
    frame = pd.DataFrame(
        {
            "name": ["A School", None, None],
            "name:zh": [None, "某小学", None],
            "alt_name": [None, None, "x"],
        }
    )
    hit, why = name_matches(frame, ["小学", "(?i)school"])
    assert hit.tolist() == [True, True, False]
    assert why.tolist() == ["name~(?i)school", "name~小学", ""]


def counts_of(area, std):
    out = match_pois(area.pois, std)
    return out["type"].value_counts().to_dict(), out


@pytest.mark.parametrize("fixture", ["nanjing_area", "beijing_area"])
def test_real_extracts_have_schools_kindergartens_clinics_and_markets(fixture, std, request):
    area = request.getfixturevalue(fixture)
    counts, out = counts_of(area, std)
    print(fixture, json.dumps(counts, ensure_ascii=False, sort_keys=True))
    assert counts.get("kindergarten", 0) >= 1
    assert counts.get("primary_school", 0) >= 1 and counts.get("middle_school", 0) >= 1
    assert counts.get("clinic_station", 0) + counts.get("health_centre", 0) >= 1
    assert counts.get("market", 0) + counts.get("supermarket", 0) >= 1
    assert out["poi_id"].map(type).eq(str).all()
    assert not out[["poi_id", "type"]].duplicated().any()


def test_nanjing_specifics(nanjing_area, std):
    _counts, out = counts_of(nanjing_area, std)
    by_type = out.groupby("type")["name"].apply(set).to_dict()
    assert "科巷菜市场" in by_type["market"]
    assert "五老村幼儿园" in by_type["kindergarten"]  # amenity=school, its name decides
    assert "南京五中" in by_type["middle_school"]
    assert "江苏省口腔医院" not in by_type["health_centre"]  # a dental hospital is not a 社区医院
    assert not {"秦淮区教师进修学校", "秦淮区委党校"} & (
        by_type["primary_school"] | by_type["middle_school"]
    )


# --------------------------------------------------------------------------- user POI files
def geojson(tmp_path, features, name="pois.geojson"):
    gdf = gpd.GeoDataFrame(
        [f[0] for f in features], geometry=[shapely.Point(f[1]) for f in features], crs=4326
    )
    path = tmp_path / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def test_read_pois_accepts_ids_and_chinese_type_names(tmp_path, std):
    path = geojson(
        tmp_path,
        [
            ({"id": "k1", "type": "kindergarten", "name": "甲幼儿园"}, (118.78, 32.04)),
            ({"id": None, "type": "幼儿园", "name": None}, (118.781, 32.04)),
            ({"id": "m1", "type": " 菜市场 ", "name": "乙菜场"}, (118.782, 32.04)),
            ({"id": None, "type": "Bus stop", "name": "站"}, (118.783, 32.04)),
        ],
    )
    out = read_pois(path, crs=CRS, standard=std)
    assert out["poi_id"].tolist() == ["k1", "p00001", "m1", "p00002"]
    assert out["type"].tolist() == ["kindergarten", "kindergarten", "market", "bus_stop"]
    assert out["name"].tolist() == ["甲幼儿园", "", "乙菜场", "站"]
    assert set(out["rule"]) == {"file"} and out.crs == CRS


def test_read_pois_csv_without_id_or_name(tmp_path):
    path = tmp_path / "pois.csv"
    path.write_text(
        "lon,lat,type\n118.78,32.04,toilets\n118.78,32.05,public_toilet\n", encoding="utf-8"
    )
    with pytest.raises(
        InputError, match=r"unknown type \('toilets'\); use a type id .*kindergarten"
    ):
        read_pois(path, crs=CRS)
    path.write_text(
        "lon,lat,type\n118.78,32.04,公共厕所\n118.78,32.05,public_toilet\n", encoding="utf-8"
    )
    out = read_pois(path, crs=CRS)
    assert out["poi_id"].tolist() == ["p00001", "p00002"] and out["name"].tolist() == ["", ""]


def test_read_pois_bad_files(tmp_path):
    many = geojson(
        tmp_path,
        [({"id": str(i), "type": f"type{i}"}, (118.78, 32.04)) for i in range(7)],
        name="many.geojson",
    )
    with pytest.raises(InputError, match=r"7 rows have an unknown type \('type0', .*'type4', …\)"):
        read_pois(many, crs=CRS)
    dup = geojson(
        tmp_path,
        [
            ({"id": "a", "type": "market"}, (118.78, 32.04)),
            ({"id": "a", "type": "market"}, (118.78, 32.05)),
        ],
        name="dup.geojson",
    )
    with pytest.raises(InputError, match="id 'a' appears more than once"):
        read_pois(dup, crs=CRS)
    untyped = geojson(tmp_path, [({"id": "a"}, (118.78, 32.04))], name="untyped.geojson")
    with pytest.raises(InputError, match=r"has no 'type' \(or 类型\) column"):
        read_pois(untyped, crs=CRS)
    from servicecircle import CRSError

    with pytest.raises(CRSError):
        read_pois(dup, crs=4326)
