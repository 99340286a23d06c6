"""outputs.write_csv writes what pandas' to_csv writes, byte for byte (pandas is the oracle)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from servicecircle.outputs import write_csv

TEXT = st.one_of(
    st.none(),
    st.text(alphabet="aZ09 ,;\"'\n\r\t社区é€", max_size=8),
    st.sampled_from(["a,b", 'say "hi"', "two\nlines", "cr\rhere", " lead", "社区", ""]),
)
FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([np.nan, 0.0, -0.0, np.inf, 1e-300, 1e20, 75.19, 1217.6, 118.6990781]),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 6))
    columns: dict[str, object] = {}
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["float", "int", "bool", "object", "string", "nullable"]))
        name = draw(st.sampled_from(["id", "名称", "a,b", 'q"t', f"c{i}"])) + str(i)
        if kind == "float":
            columns[name] = np.array(draw(st.lists(FLOAT, min_size=n, max_size=n)), "float64")
        elif kind == "int":
            columns[name] = np.array(
                draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
            )
        elif kind == "bool":
            columns[name] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
        elif kind == "object":
            cells = st.one_of(TEXT, FLOAT, st.integers(-5, 5), st.booleans())
            columns[name] = pd.Series(draw(st.lists(cells, min_size=n, max_size=n)), dtype=object)
        elif kind == "string":
            columns[name] = pd.array(draw(st.lists(TEXT, min_size=n, max_size=n)), dtype="string")
        else:  # left to pandas
            cells = st.one_of(st.none(), st.integers(-5, 5))
            columns[name] = pd.array(draw(st.lists(cells, min_size=n, max_size=n)), dtype="Int64")
    return pd.DataFrame(columns)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames(), float_format=st.sampled_from([None, None, "%.4f"]))
@example(
    frame=pd.DataFrame({"walk_m": [np.nan, 1217.6], "id": pd.array(["r0", None], "string")}),
    float_format=None,
)
def test_write_csv_is_pandas_to_csv_byte_for_byte(tmp_path, frame, float_format):
    ours, theirs = tmp_path / "ours.csv", tmp_path / "pandas.csv"
    write_csv(frame, ours, float_format=float_format)
    frame.to_csv(theirs, index=False, na_rep="", float_format=float_format)
    assert ours.read_bytes() == theirs.read_bytes()


def test_write_csv_with_duplicate_column_names_and_no_columns(tmp_path):
    dup = pd.DataFrame([[1.5, "x"], [np.nan, None]], columns=["a", "a"])
    empty = pd.DataFrame(index=range(3))
    for i, frame in enumerate((dup, empty)):
        ours, theirs = tmp_path / f"ours{i}.csv", tmp_path / f"pandas{i}.csv"
        write_csv(frame, ours)
        frame.to_csv(theirs, index=False, na_rep="")
        assert ours.read_bytes() == theirs.read_bytes()


def test_write_csv_leaves_labels_it_cannot_write_to_pandas_and_writes_in_chunks(
    tmp_path, monkeypatch
):
    from servicecircle import outputs

    frames = [
        pd.DataFrame([[1.5, "x"]], columns=[None, np.nan]),
        pd.DataFrame([[1.5, "x"]], columns=pd.to_datetime(["2020-01-01", "2021-01-01"])),
        pd.DataFrame([[1.5, "x"]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
        pd.DataFrame({3: [1.0, 2.0], "b": ["驿站", None]}),
    ]
    monkeypatch.setattr(outputs, "CSV_CHUNK_ROWS", 2)
    frames.append(pd.DataFrame({"a": np.arange(7) / 3, "b": [str(i) for i in range(7)]}))
    for i, frame in enumerate(frames):
        ours, theirs = tmp_path / f"ours{i}.csv", tmp_path / f"pandas{i}.csv"
        outputs.write_csv(frame, ours)
        frame.to_csv(theirs, index=False, na_rep="")
        assert ours.read_bytes() == theirs.read_bytes(), i


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames(), cut=st.floats(0, 1))
def test_the_text_of_pieces_is_the_text_of_the_whole(tmp_path, frame, cut):
    """csv_text of a frame's rows cut in two, the second without its header, is what pandas
    writes for the whole frame (the batch joins its partitions' rows so)."""
    from servicecircle.outputs import csv_text

    k = int(cut * len(frame))
    first, second = csv_text(frame.iloc[:k]), csv_text(frame.iloc[k:], header=False)
    theirs = tmp_path / "pandas.csv"
    frame.to_csv(theirs, index=False, na_rep="")
    if first is None:  # (a column only pandas writes)
        assert second is None and csv_text(frame) is None
        return
    assert second is not None
    assert (first + second).encode("utf-8") == theirs.read_bytes()


def test_lon_lat_at_zero_are_written_without_a_sign():
    import numpy as np
    import pandas as pd
    import shapely

    from servicecircle.outputs import with_lonlat

    pts = [shapely.Point(-1e-9, -1e-9), shapely.Point(0.5, 0.5)]
    out = with_lonlat(pd.DataFrame({"a": [1, 2]}), pts, 4326, "wgs84")
    assert [str(v) for v in out["lon"]] == ["0.0", "0.5"]
    assert not np.signbit(out["lat"].to_numpy()).any()
