"""The output folder after a second run: what the earlier run wrote and this one did not is
removed (its summary listed it), what another command or the user put there stays."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from servicecircle.outputs import RunOutput


def _run(out_dir, names, *, summary="summary.json"):
    with RunOutput(out_dir) as out:
        for name in names:
            out.text(name, name)
        out.json(summary, {"files": sorted({*names, summary})})
    return out


def test_files_of_an_earlier_run_not_written_again_are_removed(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "cells.csv", "coverage_map.html"])
    (out_dir / "notes.txt").write_text("mine")  # the user's, listed by no summary
    out = _run(out_dir, ["coverage.csv"])
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "coverage.csv",
        "notes.txt",
        "summary.json",
    ]
    assert out.removed == ["cells.csv", "coverage_map.html"]


def test_files_another_summary_still_lists_stay(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "cells.csv"])
    _run(out_dir, ["audit.csv", "cells.csv"], summary="audit_summary.json")  # another command
    out = _run(out_dir, ["coverage.csv"])
    assert (out_dir / "cells.csv").exists() and (out_dir / "audit.csv").exists()
    assert out.removed == []


def test_a_failed_run_removes_nothing(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "cells.csv"])
    with pytest.raises(ValueError), RunOutput(out_dir) as out:
        out.text("coverage.csv", "new")
        out.json("summary.json", {"files": ["coverage.csv", "summary.json"]})
        raise ValueError("a later step")
    assert (out_dir / "cells.csv").read_text() == "cells.csv"
    assert (out_dir / "coverage.csv").read_text() == "coverage.csv"


@pytest.mark.parametrize(
    "files",
    [["../outside.txt"], ["sub/x.txt"], "not a list", [3, None]],
    ids=["parent", "subfolder", "text", "numbers"],
)
def test_a_summary_listing_other_paths_removes_nothing_outside(tmp_path, files):
    out_dir = tmp_path / "out"
    (out_dir / "sub").mkdir(parents=True)
    (out_dir / "sub" / "x.txt").write_text("x")
    (tmp_path / "outside.txt").write_text("x")
    (out_dir / "summary.json").write_text(json.dumps({"files": files}))
    out = _run(out_dir, ["coverage.csv"])
    assert out.removed == []
    assert (tmp_path / "outside.txt").exists() and (out_dir / "sub" / "x.txt").exists()


def test_cli_run_without_the_map_removes_the_earlier_map(tmp_path):
    out_dir = tmp_path / "out"
    box = "24.935,60.165,24.945,60.170"
    base = [sys.executable, "-m", "servicecircle", "coverage", "demo", "--boundary", box]
    base += ["--no-cache", "--out", str(out_dir)]
    subprocess.run(base, check=True, capture_output=True)
    assert (out_dir / "coverage_map.html").exists()
    run = subprocess.run([*base, "--no-map"], check=True, capture_output=True, text=True)
    assert not (out_dir / "coverage_map.html").exists()
    assert not (out_dir / "report.html").exists()
    assert "coverage_map.html" in run.stderr and "earlier run" in run.stderr
    listed = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))["files"]
    assert sorted(p.name for p in out_dir.iterdir()) == listed
