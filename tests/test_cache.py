"""The on-disk area cache: a hit gives the area the file gives; a changed file, boundary or format
never hits an old entry; a broken entry or an unusable folder never fails a run."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from geopandas.testing import assert_geodataframe_equal

import servicecircle.area as area_module
from conftest import NANJING, shared_file
from servicecircle import InputError
from servicecircle import cache as cache_module
from servicecircle.area import CACHED_FIELDS, demo_path, load_area
from servicecircle.cache import ENV_VAR, AreaCache, default_folder
from servicecircle.cli.commands import parse_cache
from servicecircle.cli.options import build_parser
from servicecircle.network import WalkNetwork

# A 3 × 3 street grid (100 m) with a building, a café and a landuse polygon, near Xinjiekou.
# Coordinates have a fixed width, so one digit can change without changing the file's size.
NODES = {
    1: (32.0400000, 118.7800000),
    2: (32.0400000, 118.7810000),
    3: (32.0400000, 118.7820000),
    4: (32.0410000, 118.7800000),
    5: (32.0410000, 118.7810000),
    6: (32.0410000, 118.7820000),
    7: (32.0420000, 118.7800000),
    8: (32.0420000, 118.7810000),
    9: (32.0420000, 118.7820000),
    11: (32.0403000, 118.7803000),
    12: (32.0403000, 118.7806000),
    13: (32.0406000, 118.7806000),
    14: (32.0406000, 118.7803000),
    21: (32.0401000, 118.7811000),
    22: (32.0401000, 118.7819000),
    23: (32.0409000, 118.7819000),
    24: (32.0409000, 118.7811000),
}
STREETS = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 4, 7], [2, 5, 8], [3, 6, 9]]


def tiny_osm() -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<osm version="0.6" generator="test">',
        '  <bounds minlat="32.0395000" minlon="118.7795000" maxlat="32.0425000" '
        'maxlon="118.7825000"/>',
    ]
    for nid, (lat, lon) in NODES.items():
        lines.append(f'  <node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}" version="1"/>')
    lines.append(
        '  <node id="31" lat="32.0415000" lon="118.7815000" version="1">'
        '<tag k="amenity" v="cafe"/><tag k="name" v="Cafe"/></node>'
    )
    for i, refs in enumerate(STREETS, start=101):
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        lines.append(f'  <way id="{i}">{nds}<tag k="highway" v="residential"/></way>')
    building = "".join(f'<nd ref="{r}"/>' for r in (11, 12, 13, 14, 11))
    lines.append(f'  <way id="201">{building}<tag k="building" v="residential"/></way>')
    landuse = "".join(f'<nd ref="{r}"/>' for r in (21, 22, 23, 24, 21))
    lines.append(f'  <way id="202">{landuse}<tag k="landuse" v="residential"/></way>')
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.osm"
    path.write_text(tiny_osm(), encoding="utf-8")
    return path


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """Every file the XML and PBF readers really read (a hit reads none)."""
    seen: list[Path] = []
    for name in ("read_xml", "read_pbf"):
        real = getattr(area_module, name)

        def counting(path, boundary=None, _real=real):
            seen.append(Path(path))
            return _real(path, boundary)

        monkeypatch.setattr(area_module, name, counting)
    return seen


def assert_same_area(a, b) -> None:
    for frame in ("nodes", "edges", "buildings", "pois", "landuse"):
        assert_geodataframe_equal(getattr(a, frame), getattr(b, frame), check_less_precise=False)
    assert a.crs.equals(b.crs)
    assert a.boundary.equals_exact(b.boundary, 0.0)
    assert a.report == b.report


def entries(cache: AreaCache) -> list[Path]:
    return sorted((cache.folder / "areas").iterdir()) if (cache.folder / "areas").is_dir() else []


# --------------------------------------------------------------------------- hits
@pytest.mark.parametrize("which", ["nanjing", "demo"])
def test_a_miss_then_a_hit_gives_the_same_area(which, tmp_path, reads):
    if which == "nanjing":
        source = tmp_path / "xinjiekou.osm.bz2"
        shutil.copy(shared_file(NANJING), source)
    else:
        source = "demo"
    cache = AreaCache(tmp_path / "cache")
    first = load_area(source, cache=cache)
    assert len(reads) == 1 and len(entries(cache)) == 1
    second = load_area(source, cache=cache)
    assert len(reads) == 1  # read from the cache, not the file
    assert_same_area(first, second)
    assert (second.name, second.source) == (first.name, first.source)
    fresh = load_area(source)  # the uncached path is as it was
    assert_same_area(fresh, second)


def test_the_same_bytes_elsewhere_hit_with_the_call_s_name_and_source(tiny, tmp_path, reads):
    cache = AreaCache(tmp_path / "cache")
    first = load_area(tiny, cache=cache)
    copy = tmp_path / "other" / "renamed.osm"
    copy.parent.mkdir()
    shutil.copy(tiny, copy)
    second = load_area(copy, name="Xinjiekou", cache=cache)
    assert len(reads) == 1
    assert (second.name, second.source) == ("Xinjiekou", str(copy))
    assert_same_area(first, second)


def test_a_touched_file_is_hashed_again_and_still_hits(tiny, tmp_path, reads, monkeypatch):
    monkeypatch.setattr(cache_module, "RACY_S", 0.05)
    time.sleep(0.1)  # the file is no longer "racy": its hash is memoised
    cache = AreaCache(tmp_path / "cache")
    first = load_area(tiny, cache=cache)
    assert len(list((cache.folder / "hashes").iterdir())) == 1
    hashed: list[object] = []
    real_digest = cache_module.hashlib.file_digest

    def counting(fh, name):
        hashed.append(fh)
        return real_digest(fh, name)

    monkeypatch.setattr(cache_module.hashlib, "file_digest", counting)
    load_area(tiny, cache=cache)
    assert hashed == []  # unchanged file: the memo answers
    st = tiny.stat()
    os.utime(tiny, ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    second = load_area(tiny, cache=cache)
    assert len(hashed) == 1  # touched: hashed again …
    assert len(reads) == 1  # … and the same bytes still hit
    assert_same_area(first, second)


def test_new_bytes_with_the_old_size_and_mtime_are_never_served_stale(
    tiny, tmp_path, reads, monkeypatch
):
    monkeypatch.setattr(cache_module, "RACY_S", 0.05)
    time.sleep(0.1)
    cache = AreaCache(tmp_path / "cache")
    first = load_area(tiny, cache=cache)
    assert len(list((cache.folder / "hashes").iterdir())) == 1  # a memo exists for the old bytes
    st = tiny.stat()
    text = tiny.read_text(encoding="utf-8")
    changed = text.replace(
        'lat="32.0410000" lon="118.7810000"', 'lat="32.0411000" lon="118.7810000"'
    )
    assert changed != text and len(changed) == len(text)
    tiny.write_text(changed, encoding="utf-8")
    os.utime(tiny, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before
    assert (tiny.stat().st_size, tiny.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = load_area(tiny, cache=cache)
    assert len(reads) == 2  # a miss: the new bytes were read
    assert_same_area(second, load_area(tiny))
    assert not first.nodes.geometry.geom_equals(second.nodes.geometry).all()
    assert len(entries(cache)) == 2


def test_a_file_modified_just_now_gets_no_hash_memo(tiny, tmp_path):
    cache = AreaCache(tmp_path / "cache")
    load_area(tiny, cache=cache)
    hashes = cache.folder / "hashes"
    assert not hashes.exists() or list(hashes.iterdir()) == []  # changed within RACY_S
    assert len(entries(cache)) == 1


def test_a_changed_boundary_misses(tiny, tmp_path, reads):
    cache = AreaCache(tmp_path / "cache")
    east = (118.7815, 32.0395, 118.7825, 32.0425)
    whole = load_area(tiny, cache=cache)
    half = load_area(tiny, boundary=east, cache=cache)
    assert len(reads) == 2 and len(entries(cache)) == 2
    assert len(half.edges) < len(whole.edges)
    again = load_area(tiny, boundary=east, cache=cache)
    assert len(reads) == 2
    assert_same_area(half, again)


def test_a_new_cache_format_misses(tiny, tmp_path, reads, monkeypatch):
    cache = AreaCache(tmp_path / "cache")
    load_area(tiny, cache=cache)
    monkeypatch.setattr(cache_module, "CACHE_FORMAT", cache_module.CACHE_FORMAT + 1)
    load_area(tiny, cache=cache)
    assert len(reads) == 2 and len(entries(cache)) == 2


def test_a_changed_reader_filter_misses(tiny, tmp_path, reads, monkeypatch):
    cache = AreaCache(tmp_path / "cache")
    load_area(tiny, cache=cache)
    import servicecircle.osm as osm

    monkeypatch.setattr(osm, "FOOT_ALLOWED", osm.FOOT_ALLOWED | {"customers"})
    load_area(tiny, cache=cache)
    assert len(reads) == 2


# --------------------------------------------------------------------------- failures
def _truncate(entry: Path) -> None:
    payload = entry / "area.pkl"
    payload.write_bytes(payload.read_bytes()[:100])


def _flip_a_byte(entry: Path) -> None:
    payload = entry / "area.pkl"
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))


def _garble_manifest(entry: Path) -> None:
    (entry / "manifest.json").write_text("{not json", encoding="utf-8")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _garble_manifest])
def test_a_broken_entry_is_a_miss_with_a_warning_and_is_replaced(
    damage, tiny, tmp_path, reads, caplog
):
    cache = AreaCache(tmp_path / "cache")
    first = load_area(tiny, cache=cache)
    (entry,) = entries(cache)
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="servicecircle.cache"):
        second = load_area(tiny, cache=cache)
    assert "is broken and is removed" in caplog.text
    assert len(reads) == 2
    assert_same_area(first, second)
    load_area(tiny, cache=cache)  # stored again, whole
    assert len(reads) == 2 and entries(cache) == [entry]


def test_an_entry_others_may_write_is_not_loaded(tiny, tmp_path, reads, caplog):
    cache = AreaCache(tmp_path / "cache")
    load_area(tiny, cache=cache)
    (entry,) = entries(cache)
    os.chmod(entry / "area.pkl", 0o666)
    with caplog.at_level(logging.WARNING, logger="servicecircle.cache"):
        load_area(tiny, cache=cache)
    assert "writable by group or others" in caplog.text
    assert len(reads) == 2 and (entry / "area.pkl").exists()  # left as it is, not unpickled


def test_an_unusable_cache_folder_never_fails_the_run(tiny, tmp_path, caplog):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the folder should be", encoding="utf-8")
    cache = AreaCache(not_a_folder)
    with caplog.at_level(logging.WARNING, logger="servicecircle.cache"):
        first = load_area(tiny, cache=cache)
        second = load_area(tiny, cache=cache)
        WalkNetwork.from_area(second)  # (its network is not stored either)
    said = [r.getMessage() for r in caplog.records]
    assert said == [  # one plain line, once
        f"area cache: --cache-dir {not_a_folder} cannot be used: it is a file, not a folder; "
        "the run goes on without the cache (give another folder, or --no-cache)"
    ]
    assert_same_area(first, load_area(tiny))
    assert_same_area(second, first)
    under = AreaCache(not_a_folder / "sub")
    with caplog.at_level(logging.WARNING, logger="servicecircle.cache"):
        load_area(tiny, cache=under)
    assert "sub cannot be used: it cannot be made (Not a directory)" in caplog.text


def test_a_file_that_changes_while_it_is_read_is_not_stored(tiny, tmp_path, monkeypatch):
    real = area_module.read_xml

    def read_then_edit(path, boundary=None):
        frames = real(path, boundary)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("<!-- edited -->\n")
        return frames

    monkeypatch.setattr(area_module, "read_xml", read_then_edit)
    cache = AreaCache(tmp_path / "cache")
    load_area(tiny, cache=cache)
    assert entries(cache) == []


def test_two_runs_storing_the_same_key_keep_one_whole_entry(tiny, tmp_path):
    folder = tmp_path / "cache"
    one, two = AreaCache(folder), AreaCache(folder)
    area = load_area(tiny)
    key = one.key(tiny, reader="xml", boundary=None)
    assert key is not None and key == two.key(tiny, reader="xml", boundary=None)
    payload = {f: getattr(area, f) for f in CACHED_FIELDS}
    one.store(key, payload)
    two.store(key, payload)  # finds the entry there and drops its own
    assert len(entries(one)) == 1
    assert list((folder / "tmp").iterdir()) == []
    assert set(two.load(key, fields=CACHED_FIELDS) or {}) == set(CACHED_FIELDS)


def test_the_least_recently_used_entries_go_first(tmp_path):
    cache = AreaCache(tmp_path / "cache", max_entries=2)
    keys = []
    for i in range(3):
        path = tmp_path / f"f{i}.osm"
        path.write_text(f"file {i}", encoding="utf-8")
        key = cache.key(path, reader="xml", boundary=None)
        assert key is not None
        keys.append(key)
        cache.store(key, {"n": i})
        time.sleep(0.05)  # past the filesystem's timestamp tick
        if i == 1:
            assert cache.load(keys[0], fields=["n"]) == {"n": 0}  # f0 used after f1
            time.sleep(0.05)
    assert {e.name for e in entries(cache)} == {keys[0].digest, keys[2].digest}


# --------------------------------------------------------------------------- where, and off
def test_the_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "here"))
    assert AreaCache().folder == tmp_path / "here" == default_folder()
    monkeypatch.delenv(ENV_VAR)
    import platformdirs

    assert default_folder() == Path(platformdirs.user_cache_dir("servicecircle", appauthor=False))


def test_no_cache_reads_the_file_and_stores_nothing(tiny, tmp_path, monkeypatch, reads):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache"))
    load_area(tiny)
    load_area(tiny, cache=False)
    assert len(reads) == 2 and not (tmp_path / "cache").exists()
    load_area(tiny, cache=True)  # the default folder
    assert len(entries(AreaCache())) == 1


def test_a_cache_of_another_type_is_refused(tiny):
    with pytest.raises(InputError, match="pass an AreaCache"):
        load_area(tiny, cache="/tmp/somewhere")


def test_the_command_line_options(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    parser = build_parser()
    for command in (
        ["grid", "demo", "--kind", "h3"],
        ["propose", "demo", "--tier", "x", "--new", "1"],
    ):
        base = [*command, "--out", str(tmp_path / "out")]
        assert parse_cache(parser.parse_args(base)).folder == tmp_path / "env"
        args = parser.parse_args([*base, "--cache-dir", str(tmp_path / "mine")])
        assert parse_cache(args).folder == tmp_path / "mine"
        assert parse_cache(parser.parse_args([*base, "--no-cache"])) is None
    with pytest.raises(SystemExit):
        parser.parse_args(["coverage", "demo", "--out", "o", "--no-cache", "--cache-dir", "d"])


def test_the_demo_file_is_keyed_by_its_content(tmp_path):
    cache = AreaCache(tmp_path / "cache")
    key = cache.key(demo_path(), reader="pbf", boundary=None)
    assert key is not None and key.options["content"].startswith("sha256:")
    assert key.options["boundary"] == "None" and "pyrosm" in key.options["libraries"]


def test_the_walk_network_is_cached_beside_its_area_per_fragment_rule(tmp_path):
    """A second run restores the network's arrays — equal to a fresh conversion, with no line
    made until one is asked for — and another fragment rule is another entry, never a stale
    one."""
    import numpy as np

    from servicecircle.area import load_area
    from servicecircle.cache import AreaCache
    from servicecircle.network import FragmentRule, WalkNetwork

    cache = AreaCache(tmp_path / "c")
    first = WalkNetwork.from_area(load_area("demo", cache=cache))
    area = load_area("demo", cache=cache)
    again = WalkNetwork.from_area(area)
    assert "edge_geometry" not in vars(again)  # the lines are made on first use
    before = area.edges.geometry.to_numpy().copy()
    fresh = WalkNetwork.from_frames(area.nodes, area.edges)
    import shapely

    # the conversion leaves the area's frame as it was (it reverses copies of the lines)
    assert all(a is b for a, b in zip(area.edges.geometry.to_numpy(), before, strict=True))
    for net in (first, again):
        assert np.array_equal(net.edge_u, fresh.edge_u)
        assert np.array_equal(net.fragment_edge, fresh.fragment_edge)
        assert (net.csr != fresh.csr).nnz == 0
        assert shapely.equals_exact(net.edge_geometry, fresh.edge_geometry, 0).all()
    pts = np.random.default_rng(0).uniform(fresh.node_xy.min(0), fresh.node_xy.max(0), (300, 2))
    a, b = again.snap(pts), fresh.snap(pts)
    assert np.array_equal(a.edge, b.edge) and np.array_equal(a.tie_edge, b.tie_edge)
    kept = WalkNetwork.from_area(load_area("demo", cache=cache), fragments=FragmentRule(keep=True))
    assert kept.main_segments is None and again.main_segments is not None
    assert len(cache.entries()) == 3  # the area, and a network per fragment rule


def test_a_stored_network_keeps_its_lines_from_u_to_v():
    """Lines drawn from v to u are reversed copies in the network; the stored network comes
    back with the same lines, each from u to v, and the frame it was made of is left as it
    was."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from servicecircle.network import WalkNetwork

    xy = {1: (0.0, 0.0), 2: (100.0, 0.0), 3: (100.0, 80.0), 4: (0.0, 80.0)}
    nodes = gpd.GeoDataFrame(
        geometry=[shapely.Point(p) for p in xy.values()], index=list(xy), crs=32650
    )
    pairs = [(1, 2), (2, 3), (3, 4), (4, 1), (2, 1)]  # (2, 1) repeats (1, 2) the other way
    lines = [shapely.LineString([xy[v], xy[u]]) for u, v in pairs[:2]]  # drawn v → u
    lines += [shapely.LineString([xy[u], (50.0, 120.0), xy[v]]) for u, v in pairs[2:3]]
    lines += [shapely.LineString([xy[u], xy[v]]) for u, v in pairs[3:]]
    edges = gpd.GeoDataFrame(
        {"u": [p[0] for p in pairs], "v": [p[1] for p in pairs]}, geometry=lines, crs=32650
    )
    before = edges.geometry.to_numpy().copy()
    net = WalkNetwork.from_frames(nodes, edges)
    assert all(a is b for a, b in zip(edges.geometry.to_numpy(), before, strict=True))
    assert net.n_edges == 4
    back = WalkNetwork.from_stored(net.stored(), fragments=net.fragments)
    assert shapely.equals_exact(back.edge_geometry, net.edge_geometry, 0).all()
    start = shapely.get_coordinates(shapely.get_point(back.edge_geometry, 0))
    assert np.allclose(start, net.node_xy[net.edge_u])  # every line runs from u to v
    assert np.array_equal(back.edge_length_m, net.edge_length_m)


def test_frames_come_back_from_the_entry_exactly():
    """Lines and points are stored as coordinate arrays, mixed polygon kinds as they are: each
    frame comes back with its columns, order, index, CRS and geometries unchanged."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    from servicecircle.cache_files import pack

    lines = gpd.GeoDataFrame(
        {"u": [1, 2], "name": pd.array(["中山路", pd.NA], dtype="string")},
        geometry=[
            shapely.LineString([(0, 0), (1, 1)]),
            shapely.LineString([(1, 1), (2, 0), (3, 3)]),
        ],
        crs=32650,
        index=pd.Index([7, 9], name="edge"),
    )
    mixed = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 1, 1), shapely.MultiPolygon([shapely.box(2, 2, 3, 3)])],
        crs=32650,
    ).assign(building=["yes", "school"])
    points = gpd.GeoDataFrame(
        {"n": [1]}, geometry=gpd.GeoSeries([shapely.Point(5, 5)]), crs=32650
    ).rename_geometry("where")
    payload = {"edges": lines, "buildings": mixed, "pois": points, "crs": "EPSG:32650"}
    packed = {name: pack(value) for name, value in payload.items()}
    assert type(packed["edges"]).__name__ == "PackedFrame"
    assert packed["buildings"] is mixed  # would come back as two MultiPolygons
    back = {n: v.build() if hasattr(v, "build") else v for n, v in packed.items()}
    for name in ("edges", "buildings", "pois"):
        a, b = payload[name], back[name]
        assert list(a.columns) == list(b.columns) and a.index.equals(b.index)
        assert a.geometry.name == b.geometry.name and a.crs == b.crs
        assert a.drop(columns=a.geometry.name).equals(b.drop(columns=b.geometry.name))
        assert np.all(shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0))
        assert list(a.geom_type) == list(b.geom_type)
    assert back["crs"] == "EPSG:32650"


def test_an_area_from_the_cache_makes_its_frames_when_first_read(tmp_path):
    """From the cache, an area's frames stay arrays until read (the network from the cache
    reads none of them), then come back equal to the first run's, made once."""
    from geopandas.testing import assert_geodataframe_equal

    from servicecircle.area import load_area
    from servicecircle.cache import AreaCache
    from servicecircle.cache_files import DeferredFrame
    from servicecircle.network import WalkNetwork

    cache = AreaCache(tmp_path / "c")
    first = load_area("demo", cache=cache)
    WalkNetwork.from_area(first)  # stores the network beside the area
    again = load_area("demo", cache=cache)
    net = WalkNetwork.from_area(again)
    assert all(isinstance(vars(again)[f], DeferredFrame) for f in ("nodes", "edges"))
    assert net.snap(net.node_xy[:5]).ok.all()  # snapping makes no frame either
    assert isinstance(vars(again)["edges"], DeferredFrame)
    assert_geodataframe_equal(again.edges, first.edges)
    assert_geodataframe_equal(again.nodes, first.nodes)
    assert vars(again)["edges"] is again.edges  # made once, then kept


def test_an_area_s_repr_makes_no_frame(tmp_path):
    from servicecircle.area import load_area
    from servicecircle.cache import AreaCache
    from servicecircle.cache_files import DeferredFrame

    cache = AreaCache(tmp_path / "c")
    load_area("demo", cache=cache)
    area = load_area("demo", cache=cache)
    assert "edges" in repr(area) and area.name in repr(area)
    assert isinstance(vars(area)["edges"], DeferredFrame)  # repr made no frame
    assert hasattr(area, "edges")
