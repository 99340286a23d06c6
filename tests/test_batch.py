"""Batch runs on a real Dask LocalCluster: merged results equal one whole-area run, also when
each task reads its own extract of a PBF; the PBF split checked against a brute-force oracle."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from conftest import NANJING, shared_file

distributed = pytest.importorskip("dask.distributed", reason="batch runs need dask[distributed]")

from servicecircle.batch import BATCH_UNSUPPORTED, run_batch, tile_partitions  # noqa: E402
from servicecircle.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster with 2 worker processes, shared by the tests."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c.scheduler_address


def scenario(tmp_path, source, facilities):
    path = tmp_path / "plan.toml"
    path.write_text(
        f'[area]\nsource = "{source}"\n[facilities]\nsource = "{facilities}"\n'
        f'[output]\ndir = "out"\n'
    )
    return path


def assert_equal_to_single(area, single, out):
    merged = pd.read_csv(out / "coverage.csv", dtype={"demand_id": str}).set_index("demand_id")
    one = single.set_index("demand_id")
    assert sorted(merged.index) == sorted(one.index)  # every resident, counted once
    for tier in ("centre_15min", "station_5min"):
        got = merged.loc[one.index, f"{tier}_walk_m"].to_numpy(float)
        want = one[f"{tier}_walk_m"].round(1).to_numpy(float)
        np.testing.assert_allclose(
            np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), atol=0.051
        )
        assert (
            merged.loc[one.index, f"{tier}_covered"].to_numpy() == one[f"{tier}_covered"].to_numpy()
        ).all()


@pytest.mark.slow
def test_batch_equals_single_run_on_the_demo(tmp_path, demo_area, cluster, monkeypatch):
    """The demo is a PBF: every task reads its extract, with the default buffer."""
    import servicecircle.batch as batch
    from servicecircle.area import demo_path
    from servicecircle.plan import run_coverage

    single = run_coverage(demo_area, facilities="demo", out_dir=None).coverage.points
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.6)
    assert 4 <= len(parts) <= 9
    joined = []
    real_join = batch.joined_csv
    monkeypatch.setattr(batch, "joined_csv", lambda o: joined.append(real_join(o)) or joined[-1])
    s = run_batch(scenario(tmp_path, "demo", "demo"), parts, scheduler=cluster)
    assert s["failed"] == {}
    assert joined and joined[0] is not None  # the workers' lines, joined
    monkeypatch.setattr(batch, "joined_csv", lambda ordered: None)  # the table merged here
    here = tmp_path / "here"
    run_batch(scenario(tmp_path, "demo", "demo"), parts, scheduler=cluster, out_dir=here)
    assert (here / "coverage.csv").read_bytes() == joined[0]
    written = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert written["attribution"] == "Map data © OpenStreetMap contributors (ODbL)"
    assert s["split"][str(demo_path())]["extracts"] == len(parts)
    assert_equal_to_single(demo_area, single, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "partitions.csv")
    assert (table["status"] == "ok").all() and table["demand_points"].sum() == len(single)
    assert (table["worker_peak_rss_mb"] > 0).all() and (table["extract_mb"] > 0).all()
    figures = table[["residents", *table.columns[table.columns.str.endswith("_residents")]]]
    assert figures.notna().all().all() and np.allclose(figures, figures.round(2))
    assert not list(tmp_path.glob(".servicecircle-extracts-*"))  # removed at the end


def test_joined_lines_are_the_merged_table_s_csv(tmp_path):
    """The workers' lines joined give the bytes of the merged table written here: points on
    borders kept where first owned (also when an id holds a line break), partitions without
    points skipped; tables of other dtypes are merged here instead."""
    from servicecircle.batch import _merged_points, joined_csv
    from servicecircle.batch_task import PartitionResult, coverage_rows, csv_rows
    from servicecircle.outputs import write_csv
    from servicecircle.tiers import DEFAULT_TIERS

    rng = np.random.default_rng(5)

    def points(ids, households=None, file_rows=None):
        n = len(ids)
        frame = pd.DataFrame(
            {"demand_id": pd.Series(ids, dtype=str), "population": rng.integers(1, 90, n) * 1.0}
        )
        if households is not None:
            frame["households"] = households
        frame["snapped"] = rng.random(n) > 0.1
        for tier in DEFAULT_TIERS:
            walk = np.where(rng.random(n) > 0.3, rng.uniform(0, 2000, n), np.nan)
            frame[f"{tier.name}_facility_id"] = np.where(np.isnan(walk), None, "站点,1")
            frame[f"{tier.name}_walk_m"] = walk
            frame[f"{tier.name}_covered"] = walk < tier.target_m
            frame[f"{tier.name}_status"] = np.where(walk < tier.target_m, "covered", "too_far")
        frame["lon"], frame["lat"] = rng.uniform(118, 119, n), rng.uniform(32, 33, n)
        if file_rows is not None:  # (read from a demand file: its rows)
            frame["_row"] = file_rows
        return frame

    def result(i, pts):
        return PartitionResult(f"p{i}", i, pts, pd.DataFrame(), csv=csv_rows(pts, DEFAULT_TIERS))

    def merged_here(ordered):
        path = tmp_path / "here.csv"
        write_csv(coverage_rows(_merged_points(ordered)[0], DEFAULT_TIERS), path)
        return path.read_bytes()

    cases = {
        "apart": [points(["a", "b"]), points([]), points(["c", "d", "e"])],
        "borders": [points(["a", "b", "c"]), points(["c", "d"]), points(["a", "e", "d"])],
        "line break": [points(["x\ny", "b"]), points(["b", "z"])],
        "households": [points(["a", "b"], [1, 2]), points(["c"], [3])],
        "file order": [points(["a", "b", "c"], None, [5, 1, 9]), points(["d", "b"], None, [0, 1])],
    }
    for name, frames in cases.items():
        ordered = [result(i, f) for i, f in enumerate(frames)]
        got = joined_csv(ordered)
        assert got is not None and got == merged_here(ordered), name
    ordered = [result(i, f) for i, f in enumerate(cases["file order"])]
    ids = [line.split(b",")[0] for line in joined_csv(ordered).splitlines()[1:]]
    assert ids == [b"d", b"b", b"a", b"c"]  # the file's order, b where first owned
    ordered = [result(0, points(["a", "b"], [1, 2])), result(1, points(["c"], [np.nan]))]
    assert joined_csv(ordered) is None  # int households and float ones: merged here
    assert b"1.0" in merged_here(ordered).split(b"\n")[1]  # (they would read otherwise)
    ordered = [result(0, points(["a", "x\ny"])), result(1, points(["b", "x\ny"]))]
    assert ordered[1].csv.ends is None and joined_csv(ordered) is None  # lines not told apart


def test_batch_runs_the_largest_extracts_first(tmp_path, demo_area):
    """One worker thread: partitions finish in the order of their extracts' sizes, largest
    first (submitted in the order of the tiles, the small edge tiles went first); the run's
    phases are timed."""
    from servicecircle.area import demo_path

    parts = tile_partitions(demo_area.boundary_wgs84(), 0.6)
    done: list[str] = []
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as one:
        s = run_batch(
            scenario(tmp_path, "demo", "demo"),
            parts,
            scheduler=one.scheduler_address,
            buffer_m=100,  # extracts of different sizes (the default buffer holds the demo)
            on_done=lambda name, status: done.append(name),
        )
    sizes = s["split"][str(demo_path())]["nodes_written"]
    table = pd.DataFrame(s["partition_table"]).set_index("partition")
    assert len(sizes) == len(parts) and table["extract_mb"].nunique() > 2, (sizes, table)
    assert table.loc[done, "extract_mb"].is_monotonic_decreasing
    assert set(s["seconds"]) == {"cluster", "split", "tasks", "merge"}


def test_batch_keeps_dasks_info_lines_to_itself(tmp_path, demo_area, caplog):
    """The LocalCluster batch starts logs nothing of Dask's own below a warning (its
    scheduler's and nannies' start and close), and leaves Dask's log level as it found it."""
    import logging

    parts = tile_partitions(demo_area.boundary_wgs84(), 2.0)[:2]
    before = logging.getLogger("distributed").level
    with caplog.at_level(logging.INFO):
        run_batch(scenario(tmp_path, "demo", "demo"), parts, n_workers=1, buffer_m=100)
    chatter = [r for r in caplog.records if r.name.startswith("distributed")]
    assert not [r for r in chatter if r.levelno < logging.WARNING], chatter[:3]
    assert logging.getLogger("distributed").level == before


@pytest.mark.slow
def test_batch_on_extracts_equals_whole_area_run_on_a_real_pbf(tmp_path, cluster):
    """Nanjing as a PBF, tiers short enough that each extract is a part of the file (with ways
    leaving its box, relations, tagged nodes): every resident walks as in one run on the file."""
    import osmium

    from servicecircle.area import load_area
    from servicecircle.plan import run_coverage
    from servicecircle.scenario import load_scenario

    pbf = tmp_path / "nanjing.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(shared_file(NANJING))):
            writer.add(obj)
    nodes = sum(1 for _ in osmium.FileProcessor(str(pbf), osmium.osm.NODE))
    plan = scenario(tmp_path, pbf.name, "osm")
    plan.write_text(
        plan.read_text() + '[[tiers.tier]]\nname = "centre_15min"\nmetres = 300\n'
        '[[tiers.tier]]\nname = "station_5min"\nmetres = 150\n'
    )
    area = load_area(pbf)
    tiers = load_scenario(plan).tiers
    single = run_coverage(area, facilities="osm", tiers=tiers, out_dir=None).coverage.points
    parts = tile_partitions(area.boundary_wgs84(), 1.5)
    s = run_batch(plan, parts, scheduler=cluster)
    assert s["failed"] == {} and s["buffer_m"] == 600
    split = s["split"][str(pbf.resolve())]
    assert split["extracts"] == len(parts) >= 9 and sum(split["relations_written"]) > 0
    assert max(split["nodes_written"]) < nodes  # no task reads the whole file
    assert min(split["nodes_written"]) < nodes / 4
    assert_equal_to_single(area, single, tmp_path / "out")


def make_pbf(path, n=12, seed=1, dense=True):
    """A lattice of ``n`` × ``n`` nodes 0.001° apart with sparse random ids, short ways along
    rows and columns, tagged nodes, a way with a missing node and three relations; nodes as
    dense blocks (what every common tool writes) or one message each (``dense=False``)."""
    import osmium

    rng = np.random.default_rng(seed)
    grid = (rng.choice(10**10, n * n, replace=False) + 1).reshape(n, n)
    xy = {int(grid[i, j]): (0.001 * i, 0.001 * j) for i in range(n) for j in range(n)}
    ways, wid = {}, 100
    for i in range(n):
        for s in range(0, n - 1, 3):
            ways[wid], ways[wid + 1] = grid[i, s : s + 4].tolist(), grid[s : s + 4, i].tolist()
            wid += 2
    ways[wid] = [int(grid[0, 0]), 99_999_999_999]  # a node that is not in the file
    rels = {1: [100, 101], 2: [150, 151], 3: [wid]}
    mutable = osmium.osm.mutable
    target = osmium.io.File(str(path), "pbf" if dense else "pbf,pbf_dense_nodes=false")
    with osmium.SimpleWriter(target, overwrite=True) as w:
        for nid in sorted(xy):
            tags = {"amenity": "cafe"} if nid % 7 == 0 else {}
            w.add_node(mutable.Node(id=nid, location=xy[nid], tags=tags))
        for k in sorted(ways):
            w.add_way(mutable.Way(id=k, nodes=ways[k], tags={"highway": "footway"}))
        for r, members in rels.items():
            w.add_relation(
                mutable.Relation(
                    id=r,
                    members=[("w", m, "outer") for m in members] + [("n", int(grid[5, 5]), "")],
                    tags={"type": "multipolygon", "building": "yes"},
                )
            )
    return xy, ways, rels


@pytest.mark.parametrize(("jobs", "dense"), [(1, True), (3, True), (2, False)])
def test_split_pbf_keeps_complete_ways_and_their_relations(tmp_path, jobs, dense):
    """Oracle: nodes in the box, ways with a node in it with all their nodes, relations with such
    a way, with their tags and locations; sorted; one scan and write job or several (block
    ranges); nodes read as arrays or (plain nodes) by pyosmium; an empty box gives a valid
    file."""
    import osmium

    import servicecircle.osm_split as split

    xy, ways, rels = make_pbf(tmp_path / "src.osm.pbf", dense=dense)
    _, writes, node_jobs, way_jobs = split._layout(tmp_path / "src.osm.pbf", jobs)
    assert (len(writes) == 1) == (len(way_jobs) == 1) == (len(node_jobs) == 0) == (jobs == 1)
    boxes = [
        (0.0, 0.0, 0.0035, 0.0035),
        (0.004, 0.004, 0.0115, 0.0115),
        (0.0052, 0.0, 0.0079, 0.003),
        (5.0, 5.0, 6.0, 6.0),
    ]
    result = split.split_pbf(tmp_path / "src.osm.pbf", boxes, tmp_path, jobs=jobs)
    for (w, s, e, n), ex in zip(boxes, result.extracts, strict=True):
        inside = {k for k, (x, y) in xy.items() if w <= x <= e and s <= y <= n}
        want_ways = {k for k, nodes in ways.items() if inside & set(nodes)}
        want_nodes = inside | {m for k in want_ways for m in ways[k] if m in xy}
        want_rels = {r for r, members in rels.items() if want_ways & set(members)}
        got, order = {"n": set(), "w": set(), "r": set()}, []
        for o in osmium.FileProcessor(str(ex.path)):
            got[o.type_str()].add(o.id)
            order.append(("nwr".index(o.type_str()), o.id))
            if o.type_str() == "n":
                assert (o.location.lon, o.location.lat) == pytest.approx(xy[o.id], abs=1e-9)
                assert dict(o.tags) == ({"amenity": "cafe"} if o.id % 7 == 0 else {})
            elif o.type_str() == "w":
                assert [n.ref for n in o.nodes] == ways[o.id] and o.tags["highway"] == "footway"
            else:
                assert [m.ref for m in o.members if m.type == "w"] == rels[o.id]
        assert got == {"n": want_nodes, "w": want_ways, "r": want_rels}
        assert order == sorted(order)
        assert (ex.nodes, ex.ways, ex.relations) == (
            len(want_nodes),
            len(want_ways),
            len(want_rels),
        )
    assert result.extracts[3].nodes == 0 and result.extracts[1].ways > result.extracts[0].ways


@pytest.mark.parametrize("unknown_block", [False, True])
def test_split_pbf_node_jobs_and_way_jobs_equal_one_pass(tmp_path, monkeypatch, unknown_block):
    """Several node blocks shared out to node jobs, then way jobs reading all their tables,
    write the same extracts as one job reading the file once; so does a node block whose
    content the census cannot tell (it is read by every way job instead)."""
    import osmium

    import servicecircle.osm_split as split

    make_pbf(tmp_path / "src.osm.pbf", n=100)  # 10,000 nodes: two dense blocks or more
    census = split._census
    seen = []

    def census_unsure_of_the_first(blob):
        kinds, count = census(blob)
        if unknown_block and kinds == {2} and not seen:
            seen.append(bytes(blob))
        return ({0} if seen and bytes(blob) == seen[0] else kinds), count

    monkeypatch.setattr(split, "_census", census_unsure_of_the_first)
    _, _, node_jobs, way_jobs = split._layout(tmp_path / "src.osm.pbf", 3)
    assert len(node_jobs) == (1 if unknown_block else 2) and len(way_jobs) >= 2
    boxes = [(0.0, 0.0, 0.03, 0.03), (0.02, 0.05, 0.07, 0.099), (0.06, 0.0, 0.099, 0.05)]
    got = []
    for jobs in (1, 3):
        (out := tmp_path / f"jobs{jobs}").mkdir()
        result = split.split_pbf(tmp_path / "src.osm.pbf", boxes, out, jobs=jobs)
        got.append([
            sorted((o.type_str(), o.id) for o in osmium.FileProcessor(str(e.path)))
            for e in result.extracts
        ])  # fmt: skip
        assert not list(out.glob("nodes-*.npy"))  # the node tables are gone
    assert got[0] == got[1] and all(len(g) > 1000 for g in got[0])


def test_the_census_tells_a_block_by_its_first_bytes_as_by_all_of_them(tmp_path):
    """A block of a string table and one group is told by the bytes up to the group's first
    field; any other (two groups, a field after the group, an empty group, no string table
    first, an uncompressed blob, no size given) is read in full: the same kinds and weight."""
    import zlib

    import servicecircle.osm_split as split
    import servicecircle.pbf_blocks as pb

    make_pbf(tmp_path / "src.osm.pbf", n=100)
    blobs = [
        b for _, k, b in pb.iter_blobs(str(tmp_path / "src.osm.pbf"), [(0, None)]) if k == "OSMData"
    ]
    table = pb.message_field(1, pb.message_field(1, b"") + pb.message_field(1, b"highway"))
    ways = pb.message_field(2, pb.message_field(3, pb.varint_field(1, 7)))
    nodes = pb.message_field(2, pb.message_field(2, pb.message_field(1, b"\x02")))

    def blob(block, raw_size=True):
        return pb.varint_field(2, len(block)) * raw_size + pb.message_field(3, zlib.compress(block))

    crafted = {
        "nodes": (blob(table + nodes), {2}),
        "ways": (blob(table + ways), {3}),
        "nodes then ways": (blob(table + nodes + ways), {2, 3}),
        "a field after the group": (blob(table + ways + pb.varint_field(17, 1000)), {3}),
        "an empty group": (blob(table + pb.message_field(2, b"")), {0}),
        "no string table first": (blob(ways + table), {3}),
        "no size given": (blob(table + ways, raw_size=False), {3}),
        "uncompressed": (pb.varint_field(2, 9) + pb.message_field(1, table + nodes), {2}),
    }
    quick = 0
    for name, (b, kinds) in crafted.items():
        assert split._census(b) == split._census_all(b), name
        assert split._census(b)[0] == kinds, name
        quick += split._one_group(b) is not None
    assert quick == 3  # nodes, ways, the empty group
    assert blobs and all(split._one_group(b) is not None for b in blobs)  # as osmium writes
    assert [split._census(b) for b in blobs] == [split._census_all(b) for b in blobs]


def test_split_pbf_refuses_a_broken_file(tmp_path):
    from servicecircle._errors import InputError
    from servicecircle.osm_split import split_pbf

    make_pbf(tmp_path / "src.osm.pbf")
    data = (tmp_path / "src.osm.pbf").read_bytes()
    (tmp_path / "cut.osm.pbf").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.osm\.pbf: cannot be split as an OSM PBF file"):
        split_pbf(tmp_path / "cut.osm.pbf", [(0.0, 0.0, 1.0, 1.0)], tmp_path)


@pytest.mark.parametrize(("section", "key"), [(s, k) for s, k, _ in BATCH_UNSUPPORTED])
def test_each_unsupported_scenario_key_is_refused_by_name(tmp_path, capsys, section, key):
    value = {"capacity": "1000", "centres": "1", "candidates": '"network"'}[key]
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[area]\nsource = "demo"\nboundary = [24.935, 60.164, 24.953, 60.179]\n'
        '[facilities]\nsource = "demo"\n'
        f'[siting]\ntier = "station_5min"\nnew = 1\n{key} = {value}\n'
    )
    assert main(["batch", str(plan), "--tile-km", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"'{section}.{key}' is not supported by batch" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_batch_honours_building_parameters_and_communities(tmp_path, demo_area, cluster):
    """``demand.*`` estimate residents as in a single run; ``grid.communities`` keeps every grid
    inside one community of the layer."""
    import shapely

    from servicecircle.demand import BuildingPopulation, demand_from_buildings

    params = BuildingPopulation(floor_area_per_resident_m2=20.0, default_levels=3.0)
    want = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse, params=params)
    west, south, east, north = demo_area.boundary_wgs84().bounds
    middle = (west + east) / 2
    halves = [shapely.box(west, south, middle, north), shapely.box(middle, south, east, north)]
    gpd.GeoDataFrame({"code": ["W", "E"]}, geometry=halves, crs=4326).to_file(
        tmp_path / "communities.geojson"
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[area]\nsource = "demo"\n[facilities]\nsource = "demo"\n'
        "[demand]\nfloor_area_per_resident_m2 = 20\ndefault_levels = 3\n"
        '[grid]\nkind = "governance"\ncommunities = "communities.geojson"\n[output]\ndir = "out"\n'
    )
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.9)
    s = run_batch(plan, parts, scheduler=cluster)
    assert s["failed"] == {}
    merged = pd.read_csv(tmp_path / "out" / "coverage.csv", dtype={"demand_id": str})
    assert sorted(merged["demand_id"]) == sorted(want["demand_id"])
    assert merged["population"].sum() == pytest.approx(want["population"].sum())
    cells = gpd.read_file(tmp_path / "out" / "cells.gpkg")
    assert set(cells["community"]) == {"W", "E"}
    for code, half in zip(["W", "E"], halves, strict=True):
        mine = cells[cells["community"] == code]
        assert mine.geometry.within(half.buffer(1e-7)).all()


@pytest.mark.slow
def test_batch_equals_single_run_on_nanjing(tmp_path, nanjing_area, cluster):
    from servicecircle.plan import run_coverage

    single = run_coverage(nanjing_area, facilities="osm", out_dir=None).coverage.points
    parts = tile_partitions(nanjing_area.boundary_wgs84(), 2.0)
    assert 4 <= len(parts) <= 9
    s = run_batch(scenario(tmp_path, shared_file(NANJING), "osm"), parts, scheduler=cluster)
    assert s["failed"] == {}
    assert_equal_to_single(nanjing_area, single, tmp_path / "out")


@pytest.mark.slow
def test_a_corrupt_partition_is_named_and_the_rest_finish(tmp_path, demo_area, cluster, capsys):
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.9)
    bad = tmp_path / "broken.osm"
    bad.write_text("<osm><node id='1'")
    frame = gpd.GeoDataFrame(
        {"name": [p.name for p in parts], "source": ["demo"] * (len(parts) - 1) + [bad.name]},
        geometry=[p.polygon for p in parts],
        crs=4326,
    )
    frame.to_file(tmp_path / "parts.geojson")
    plan = scenario(tmp_path, "demo", "demo")
    code = main(
        [
            "-q",
            "batch",
            str(plan),
            "--partitions",
            str(tmp_path / "parts.geojson"),
            "--scheduler",
            cluster,
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"partition {parts[-1].name} failed" in err and "malformed OSM XML" in err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert list(s["failed"]) == [parts[-1].name]
    table = pd.read_csv(tmp_path / "o" / "partitions.csv")
    assert (table["status"] == "ok").sum() == len(parts) - 1
    assert s["demand_points"] == table["demand_points"].sum()


def test_batch_prints_each_tier_as_coverage_does_and_says_what_it_leaves_out(
    tmp_path, demo_area, cluster, capsys
):
    """The console: residents, per tier the covered residents, share, goal and verdict (the
    coverage command's lines), and that the elderly and children are not computed (also in
    summary.json)."""
    plan = scenario(tmp_path, "demo", "demo")
    out = tmp_path / "o"
    argv = ["batch", str(plan), "--tile-km", "2", "--scheduler", cluster, "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert f"partitions done: {s['residents']:,.0f} residents" in printed
    for name, t in s["tiers"].items():
        verdict = "PASS" if t["pass"] else "FAIL"
        line = next(x for x in printed.splitlines() if x.strip().startswith(name))
        assert f"covered {t['covered_residents']:>10,.0f}" in line and line.endswith(verdict)
    assert "一老一小" in printed and "not computed by batch" in s["not_computed"]["segments"]


def test_bad_batch_input(tmp_path, capsys):
    plan = scenario(tmp_path, "demo", "demo")
    assert main(["batch", str(plan), "--tile-km", "0", "--out", str(tmp_path)]) == 2
    assert "--tile-km must be positive" in capsys.readouterr().err
    assert (
        main(["batch", str(plan), "--tile-km", "1", "--buffer-m", "-5", "--out", str(tmp_path)])
        == 2
    )
    assert "--buffer-m must be zero or more" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_builds_grids_and_proposals_per_partition(tmp_path, demo_area, cluster):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[area]\nsource = "demo"\n[facilities]\nsource = "demo"\n'
        '[grid]\nkind = "governance"\n'
        '[siting]\ntier = "station_5min"\nnew = 1\nmethod = "greedy"\n'
        '[output]\ndir = "out"\n'
    )
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.9)
    s = run_batch(plan, parts, scheduler=cluster)
    assert s["failed"] == {}
    cells = gpd.read_file(tmp_path / "out" / "cells.gpkg")
    assert cells["cell_id"].is_unique and (cells["partition"].nunique() == len(parts))
    assert cells["population"].sum() == pytest.approx(s["residents"])
    props = gpd.read_file(tmp_path / "out" / "proposals.geojson")
    assert 1 <= len(props) <= len(parts) and props["id"].is_unique
    table = pd.read_csv(tmp_path / "out" / "partitions.csv")
    # one new station per partition at most (none where every resident is covered already)
    assert table["siting_proposals"].sum() == len(props)


def test_batch_writes_residents_of_a_file_in_its_order_as_run_does(tmp_path, demo_area, cluster):
    """Residents from a CSV (only lon, lat, population): batch's coverage.csv lists them in the
    file's order with the walks of one whole-area run."""
    rng = np.random.default_rng(3)
    w, s_, e, n = demo_area.boundary_wgs84().bounds
    k = 400
    pd.DataFrame(
        {
            "lon": rng.uniform(w, e, k).round(6),
            "lat": rng.uniform(s_, n, k).round(6),
            "population": rng.integers(1, 60, k),
        }
    ).to_csv(tmp_path / "residents.csv", index=False)
    for name in ("one", "many"):
        (tmp_path / f"{name}.toml").write_text(
            '[area]\nsource = "demo"\n[facilities]\nsource = "demo"\n'
            f'[demand]\nsource = "residents.csv"\n[output]\ndir = "{name}"\n'
        )
    assert main(["-q", "run", str(tmp_path / "one.toml")]) == 0
    plan = str(tmp_path / "many.toml")
    assert main(["-q", "batch", plan, "--tile-km", "0.6", "--scheduler", cluster]) == 0
    one = pd.read_csv(tmp_path / "one" / "coverage.csv", dtype={"demand_id": str})
    many = pd.read_csv(tmp_path / "many" / "coverage.csv", dtype={"demand_id": str})
    assert len(one) > 300 and list(many["demand_id"]) == list(one["demand_id"])
    for tier in ("centre_15min", "station_5min"):
        got, want = (f[f"{tier}_walk_m"].fillna(-1).to_numpy(float) for f in (many, one))
        np.testing.assert_allclose(got, want, atol=0.051)


@pytest.mark.slow
def test_batch_reads_files_as_run_does_gcj02_excel_and_boundary(tmp_path, cluster):
    """The same stations as a WGS84 CSV with a WGS84 boundary file, and as an Amap (GCJ-02)
    Excel sheet behind a notes sheet with the boundary box drawn in GCJ-02: the same walks."""
    import shapely

    from servicecircle.coords import gcj02_to_wgs84, wgs84_to_gcj02

    src = shared_file(NANJING)
    gcj_box = (118.770, 32.036, 118.790, 32.050)
    wgs_ring = np.array(shapely.box(*gcj_box).exterior.coords)
    wgs_ring = np.column_stack(gcj02_to_wgs84(wgs_ring[:, 0], wgs_ring[:, 1]))
    gpd.GeoDataFrame(geometry=[shapely.Polygon(wgs_ring)], crs=4326).to_file(
        tmp_path / "boundary.geojson"
    )
    lon, lat = np.meshgrid(np.linspace(118.772, 118.786, 3), np.linspace(32.039, 32.047, 2))
    ids = [f"s{i}" for i in range(lon.size)]
    kinds = ["centre"] + ["station"] * (lon.size - 1)
    wgs = pd.DataFrame({"id": ids, "kind": kinds, "lon": lon.ravel(), "lat": lat.ravel()})
    wgs.to_csv(tmp_path / "wgs.csv", index=False)
    glon, glat = wgs84_to_gcj02(wgs["lon"], wgs["lat"])
    with pd.ExcelWriter(tmp_path / "stations.xlsx") as xl:
        pd.DataFrame({"说明": ["驿站清单，高德坐标"]}).to_excel(xl, sheet_name="说明", index=False)
        gcj = pd.DataFrame({"编号": ids, "类型": kinds, "经度": glon, "纬度": glat})
        gcj.to_excel(xl, sheet_name="设施", index=False)
    plans = {
        "wgs": f'[area]\nsource = "{src}"\nboundary = "boundary.geojson"\n'
        '[facilities]\nsource = "wgs.csv"\n',
        "gcj": f'[input]\ncoords = "gcj02"\nsheet = "设施"\n[area]\nsource = "{src}"\n'
        f"boundary = {list(gcj_box)}\n"
        '[facilities]\nsource = "stations.xlsx"\n',
    }
    for name, text in plans.items():
        (tmp_path / f"{name}.toml").write_text(text + f'[output]\ndir = "{name}"\n')
        plan = str(tmp_path / f"{name}.toml")
        assert main(["-q", "batch", plan, "--tile-km", "1.5", "--scheduler", cluster]) == 0
    a = pd.read_csv(tmp_path / "wgs" / "coverage.csv", dtype={"demand_id": str})
    b = pd.read_csv(tmp_path / "gcj" / "coverage.csv", dtype={"demand_id": str})
    assert len(a) > 100 and sorted(a["demand_id"]) == sorted(b["demand_id"])
    a, b = a.set_index("demand_id"), b.set_index("demand_id").loc[a["demand_id"]]
    for tier in ("centre_15min", "station_5min"):
        got, want = b[f"{tier}_walk_m"].to_numpy(float), a[f"{tier}_walk_m"].to_numpy(float)
        np.testing.assert_allclose(np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), atol=1)


def test_batch_checks_workers_and_the_facility_file_before_any_work(tmp_path, capsys):
    plan = scenario(tmp_path, "demo", "demo")
    out = tmp_path / "o"
    assert main(["batch", str(plan), "--tile-km", "1", "--workers", "0", "--out", str(out)]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err
    with pd.ExcelWriter(tmp_path / "f.xlsx") as xl:
        pd.DataFrame({"说明": ["notes"]}).to_excel(xl, sheet_name="说明", index=False)
        pd.DataFrame({"id": ["a"], "kind": ["station"], "lon": [24.94], "lat": [60.17]}).to_excel(
            xl, sheet_name="设施", index=False
        )
    plan = scenario(tmp_path, "demo", "f.xlsx")
    assert main(["batch", str(plan), "--tile-km", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "facility file" in err and "Traceback" not in err
    assert not out.exists()
