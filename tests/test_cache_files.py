"""The files of an area-cache entry: a part gives back what was written, its arrays in place and
writable; any damaged byte or a short file is refused, never read as other data; a frame stored
apart is read only when used, still when its entry is gone, and made from the OSM file when its
part turns out damaged."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from servicecircle import cache_files
from servicecircle.cache import AreaCache
from servicecircle.cache_files import CacheError, open_part, read_part, write_part

DTYPES = st.sampled_from(["int64", "float64", "int32", "bool", "uint8", "float32"])
ARRAYS = DTYPES.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=40))
)


def roundtrip(tmp: Path, value):
    path = tmp / f"part-{np.random.default_rng().integers(1 << 62)}.pkl"
    info = write_part(path, value)
    with open_part(path, info) as fh:
        return read_part(fh, info), info, path


@settings(max_examples=60, deadline=None)
@given(arrays=st.lists(ARRAYS, max_size=6), fortran=st.booleans())
def test_a_part_gives_back_its_arrays_aligned_and_writable(tmp_path_factory, arrays, fortran):
    tmp = tmp_path_factory.mktemp("parts")
    value = {
        "arrays": [np.asfortranarray(a) if fortran else a for a in arrays],
        "strided": np.arange(30)[::3],  # not contiguous: pickled in band
        "text": np.array(["中山路", None], dtype=object),
    }
    back, info, _ = roundtrip(tmp, value)
    assert len(back["arrays"]) == len(arrays)
    for a, b in zip(value["arrays"], back["arrays"], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert b.flags.writeable and b.ctypes.data % 16 == 0
    np.testing.assert_array_equal(back["strided"], value["strided"])
    assert list(back["text"]) == ["中山路", None]
    for start, _ in info["buffers"]:
        assert start % cache_files.ALIGN == 0


def test_a_part_s_arrays_are_not_copied_out_of_the_buffer_read(tmp_path):
    back, info, _ = roundtrip(tmp_path, [np.arange(1000), np.ones(500)])
    assert len(info["buffers"]) == 2
    a, b = back
    assert a.base is not None and b.base is not None  # views into the one buffer read
    a[0] = 7  # and writable without touching the file
    again, _, _ = roundtrip(tmp_path, [np.arange(3)])
    assert again[0][0] == 0


def test_pandas_frames_come_back_equal(tmp_path):
    frame = pd.DataFrame(
        {
            "u": np.arange(5, dtype="int64"),
            "name": pd.array(["a", pd.NA, "丁", "b", "c"], dtype="string"),
            "length_m": np.linspace(0, 1, 5),
        },
        index=pd.Index([9, 7, 5, 3, 1], name="edge"),
    )
    back, _, _ = roundtrip(tmp_path, frame)
    pd.testing.assert_frame_equal(back, frame)


@settings(max_examples=40, deadline=None)
@given(where=st.floats(0, 1, exclude_max=True))
def test_any_damaged_byte_is_refused(tmp_path_factory, where):
    tmp = tmp_path_factory.mktemp("damage")
    path = tmp / "part.pkl"
    info = write_part(path, {"xy": np.arange(600, dtype="float64"), "n": 3})
    data = bytearray(path.read_bytes())
    data[int(where * len(data))] ^= 0xFF
    path.write_bytes(bytes(data))
    with open_part(path, info) as fh, pytest.raises(CacheError, match="checksum"):
        read_part(fh, info)


def test_a_short_or_long_part_is_refused_when_opened(tmp_path):
    path = tmp_path / "part.pkl"
    info = write_part(path, np.arange(100))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(CacheError, match="bytes"):
        open_part(path, info)
    path.write_bytes(path.read_bytes() + bytes(16))
    with pytest.raises(CacheError, match="bytes"):
        open_part(path, info)


# --------------------------------------------------------------------------- frames apart
@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """The part files read."""
    seen: list[str] = []
    real = cache_files.read_part

    def counting(fh, info):
        seen.append(info["file"])
        return real(fh, info)

    monkeypatch.setattr(cache_files, "read_part", counting)
    import servicecircle.cache as cache_module

    monkeypatch.setattr(cache_module, "read_part", counting)
    return seen


def test_the_network_from_the_cache_reads_no_frame(tmp_path, counted):
    from geopandas.testing import assert_geodataframe_equal

    from servicecircle.area import load_area
    from servicecircle.network import WalkNetwork

    cache = AreaCache(tmp_path / "c")
    first = load_area("demo", cache=cache)
    WalkNetwork.from_area(first)
    counted.clear()
    again = load_area("demo", cache=cache)
    WalkNetwork.from_area(again)
    assert counted == ["area.pkl", "area.pkl"]  # the area's small part, then the network
    assert_geodataframe_equal(again.edges, first.edges)
    assert counted[2:] == ["edges.pkl"]
    assert_geodataframe_equal(again.buildings, first.buildings)
    assert counted[3:] == ["buildings.pkl"]
    for name in ("nodes", "edges", "buildings", "pois"):  # no part's buffer is held
        frame = getattr(again, name)
        for values in [frame.index, *(frame[c] for c in frame.columns if c != "geometry")]:
            base = values.to_numpy()
            while base is not None and not isinstance(base, memoryview | bytearray):
                base = getattr(base, "base", None)
            assert base is None, (name, values.name)


def test_a_frame_whose_entry_was_removed_is_made_from_the_file(tmp_path, caplog):
    from geopandas.testing import assert_geodataframe_equal

    from servicecircle.area import load_area

    cache = AreaCache(tmp_path / "c")
    first = load_area("demo", cache=cache)
    again = load_area("demo", cache=cache)
    cache.clear()  # (another run pruned it)
    with caplog.at_level(logging.INFO, logger="servicecircle"):
        assert_geodataframe_equal(again.edges, first.edges)
    gone = [r for r in caplog.records if "is gone" in r.getMessage()]
    assert gone and gone[0].levelno == logging.INFO  # (nothing wrong: no warning)
    assert "made from the file instead" in caplog.text
    assert_geodataframe_equal(again.nodes, first.nodes)


def test_a_frame_read_later_keeps_no_file_open(tmp_path):
    import os

    from servicecircle.area import load_area

    cache = AreaCache(tmp_path / "c")
    load_area("demo", cache=cache)
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    areas = [load_area("demo", cache=cache) for _ in range(5)]
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
    assert all(len(a.edges) for a in areas)


def test_a_damaged_frame_is_made_from_the_file_and_its_entry_removed(tmp_path, caplog):
    from geopandas.testing import assert_geodataframe_equal

    from servicecircle.area import load_area

    cache = AreaCache(tmp_path / "c")
    first = load_area("demo", cache=cache)
    (entry,) = (cache.folder / "areas").iterdir()
    again = load_area("demo", cache=cache)
    part = entry / "edges.pkl"
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0x01
    part.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="servicecircle"):
        edges = again.edges
    assert "checksum" in caplog.text and "made from the file instead" in caplog.text
    assert_geodataframe_equal(edges, first.edges)
    assert_geodataframe_equal(again.nodes, first.nodes)  # (from the file read again too)
    assert entry.is_dir() and part.read_bytes() != bytes(data)  # stored again, whole
    assert_geodataframe_equal(load_area("demo", cache=cache).edges, first.edges)


@pytest.mark.parametrize("what", ["touched", "changed", "gone"])
def test_a_frame_needed_after_its_entry_went_reads_the_file_if_it_is_the_same(tmp_path, what):
    import shutil

    from geopandas.testing import assert_geodataframe_equal

    from servicecircle import InputError
    from servicecircle.area import demo_path, load_area

    source = tmp_path / "helsinki.osm.pbf"
    shutil.copy(demo_path(), source)
    cache = AreaCache(tmp_path / "c")
    first = load_area(source, cache=cache)
    again = load_area(source, cache=cache)
    cache.clear()
    if what == "touched":  # the same bytes, a new mtime: the same file
        source.write_bytes(source.read_bytes())
        assert_geodataframe_equal(again.edges, first.edges)
        return
    if what == "changed":
        source.write_bytes(source.read_bytes()[:-1])
    else:
        source.unlink()
    with pytest.raises(InputError, match=f"{what}.* edges are no longer in the cache"):
        _ = again.edges


def test_an_area_from_the_cache_pickles_with_its_frames(tmp_path):
    import pickle

    from geopandas.testing import assert_geodataframe_equal

    from servicecircle.area import load_area

    cache = AreaCache(tmp_path / "c")
    first = load_area("demo", cache=cache)
    again = load_area("demo", cache=cache)
    back = pickle.loads(pickle.dumps(again))
    cache.clear()  # (what was pickled holds its frames' arrays)
    for name in ("nodes", "edges", "buildings", "pois", "landuse"):
        assert_geodataframe_equal(getattr(back, name), getattr(first, name))
