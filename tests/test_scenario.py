"""Scenario files: validated with messages that name the key; failed runs leave nothing."""

from __future__ import annotations

import json
import os

import pytest

from servicecircle import InputError
from servicecircle.cli import main
from servicecircle.plan import packaged_data, run_scenario
from servicecircle.run_manifest import MANIFEST
from servicecircle.scenario import load_scenario

GOOD = """
[area]
source = "demo"
[facilities]
source = "demo"
[tiers]
preset = "default"
[output]
dir = "out"
map = false
report = false
"""


def write(tmp_path, text, name="plan.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_demo_scenario_is_valid():
    sc = load_scenario(packaged_data("demo_scenario.toml"))
    assert [t.name for t in sc.tiers] == ["centre_15min", "station_5min"]
    assert sc.grid["kind"] == "governance" and sc.siting["new"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD + "[grid]\nkind = 'hex'\nsise_m = 200\n",
            "unknown key 'grid.sise_m' (did you mean 'size_m'?)",
        ),
        (
            GOOD.replace(
                'source = "demo"\n[facilities]', 'source = "nowhere.osm.bz2"\n[facilities]'
            ),
            "'area.source' = 'nowhere.osm.bz2': no such file",
        ),
        (
            GOOD + "[[tiers.tier]]\nname = 'x'\nmetres = -300\n",
            "'tiers.tier[0].metres' must be a positive number; got -300",
        ),
        (
            GOOD + "[siting]\ntier = 'station_5min'\nnew = 3\ngoal = 0.9\n",
            "exactly one of 'siting.new' or 'siting.goal'",
        ),
        (
            GOOD + "[siting]\ntier = 'station_9min'\nnew = 3\n",
            "'siting.tier' = 'station_9min' is not one of the scenario's tiers",
        ),
        (GOOD + "[output2]\n", "unknown section [output2] (did you mean 'output'?)"),
        (GOOD.replace('preset = "default"', 'preset = "gb5018"'), "'tiers.preset' = 'gb5018'"),
        ("[area\n", "not valid TOML"),
    ],
)
def test_bad_scenarios_name_the_key(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=None) as exc:
        load_scenario(path)
    assert message in str(exc.value)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_all_problems_are_reported_at_once(tmp_path):
    path = write(tmp_path, GOOD + "[grid]\nkind = 'hexx'\n[siting]\nnew = 0\n")
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert "'grid.kind'" in msg and "'siting.new'" in msg and "'siting.tier'" in msg


def test_missing_scenario_file(capsys):
    assert main(["run", "no/such/plan.toml"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_failed_run_leaves_nothing_half_written(tmp_path):
    # valid file, but siting asks for more sites than there can be candidates
    path = write(tmp_path, GOOD + "[siting]\ntier = 'station_5min'\nnew = 100000\n")
    with pytest.raises(InputError, match="more than the"):
        run_scenario(path)
    # the output folder is not even created: no coverage.csv from the steps that did succeed
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]  # no staging left


def test_run_writes_everything(tmp_path):
    path = write(
        tmp_path,
        GOOD.replace("map = false", "map = true").replace("report = false", "report = true")
        + "[grid]\nkind = 'hex'\nsize_m = 300\n"
        "[siting]\ntier = 'station_5min'\nnew = 2\nmethod = 'greedy'\n",
    )
    summary = run_scenario(path)
    out = tmp_path / "out"
    for name in (
        "summary.json",
        "coverage.csv",
        "cells.gpkg",
        "grid_summary.json",
        "proposals.geojson",
        "siting.json",
        "coverage_map.html",
        "report.html",
    ):
        assert (out / name).exists(), name
    assert not [p for p in os.listdir(out) if p.startswith(".") and p != MANIFEST]  # no staging
    s = json.loads((out / "summary.json").read_text())
    assert s["siting"]["proposals"] == 2 and s["scenario"]["file"] == str(path)
    assert summary["files"] == s["files"]
