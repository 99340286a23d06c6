"""The output folder after a second run: what the same command's last run wrote there and
this one did not is removed; what another command's run wrote, what was changed since, what
the user put there, and anything a stray summary names, stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from servicecircle.outputs import RunOutput
from servicecircle.run_manifest import MANIFEST


def _run(out_dir, names, *, command="coverage"):
    with RunOutput(out_dir, command=command) as out:
        for name in names:
            out.text(name, name)
        out.json("summary.json", {"files": sorted({*names, "summary.json"})})
    return out


def _listing(out_dir):
    return sorted(p.name for p in out_dir.iterdir() if p.name != MANIFEST)


def test_files_of_the_last_run_not_written_again_are_removed(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "cells.csv", "coverage_map.html"])
    (out_dir / "notes.txt").write_text("mine")  # the user's
    out = _run(out_dir, ["coverage.csv"])
    assert _listing(out_dir) == ["coverage.csv", "notes.txt", "summary.json"]
    assert out.removed == ["cells.csv", "coverage_map.html"]
    runs = json.loads((out_dir / MANIFEST).read_text())["runs"]
    assert runs["coverage"]["files"] == ["coverage.csv", "summary.json"]


def test_another_commands_files_stay(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "facilities.csv", "cells.csv"])
    _run(out_dir, ["partitions.csv", "coverage.csv"], command="batch")  # same summary name
    out = _run(out_dir, ["audit.csv"], command="audit")
    assert out.removed == []
    out = _run(out_dir, ["partitions.csv"], command="batch")
    assert out.removed == []  # coverage.csv: the last coverage run wrote it too
    assert _listing(out_dir) == [
        "audit.csv", "cells.csv", "coverage.csv", "facilities.csv", "partitions.csv",
        "summary.json",
    ]  # fmt: skip


def test_a_file_changed_since_the_last_run_stays(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "facilities.csv"])
    later = time.time() + 10
    os.utime(out_dir / "facilities.csv", (later, later))  # edited (and read as an input)
    out = _run(out_dir, ["coverage.csv"])
    assert out.removed == [] and (out_dir / "facilities.csv").exists()


def test_a_stray_summary_or_record_removes_nothing(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name in ("minutes.docx", "survey.xlsx"):
        (out_dir / name).write_text("mine")
    (out_dir / "summary.json").write_text(json.dumps({"files": ["minutes.docx", "survey.xlsx"]}))
    out = _run(out_dir, ["coverage.csv"])
    assert out.removed == [] and (out_dir / "minutes.docx").exists()
    (tmp_path / "outside.txt").write_text("x")
    (out_dir / "sub").mkdir()
    (out_dir / "sub" / "x.txt").write_text("x")
    os.symlink(tmp_path / "outside.txt", out_dir / "link.txt")
    record = {"files": ["../outside.txt", "sub/x.txt", "sub", "link.txt", 3], "written_at": 1e12}
    (out_dir / MANIFEST).write_text(json.dumps({"runs": {"coverage": record}}))
    out = _run(out_dir, ["coverage.csv"])
    assert out.removed == []
    assert (tmp_path / "outside.txt").exists() and (out_dir / "sub" / "x.txt").exists()
    assert (out_dir / "link.txt").is_symlink()


def test_a_failed_run_removes_nothing(tmp_path):
    out_dir = tmp_path / "out"
    _run(out_dir, ["coverage.csv", "cells.csv"])
    with pytest.raises(ValueError), RunOutput(out_dir, command="coverage") as out:
        out.text("coverage.csv", "new")
        raise ValueError("a later step")
    assert (out_dir / "cells.csv").read_text() == "cells.csv"
    assert (out_dir / "coverage.csv").read_text() == "coverage.csv"


def test_a_library_call_without_a_command_keeps_no_record(tmp_path):
    with RunOutput(tmp_path / "o") as out:
        out.text("a.csv", "a")
    assert not (tmp_path / "o" / MANIFEST).exists()


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
    assert "coverage_map.html" in run.stderr and "last coverage run" in run.stderr
    listed = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))["files"]
    assert _listing(out_dir) == listed


def test_a_run_never_overwrites_a_file_it_read(tmp_path, capsys):
    """cells.gpkg from `grid`, read back by `coverage --cells` with the same --out: refused
    with the fix, and the grid's file left as it was."""
    from servicecircle.cli import main

    out = tmp_path / "GG"
    assert main(["grid", "demo", "--kind", "hex", "--size-m", "300", "--out", str(out)]) == 0
    before = (out / "cells.gpkg").read_bytes()
    listing = _listing(out)
    argv = ["coverage", "demo", "--cells", str(out / "cells.gpkg"), "--no-map", "--no-cache"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "this run read cells.gpkg from there and would overwrite it" in err
    assert (out / "cells.gpkg").read_bytes() == before and _listing(out) == listing
    assert main([*argv, "--out", str(tmp_path / "other")]) == 0  # another folder: fine
