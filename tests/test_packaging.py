"""A plain (non-editable) install carries what the demo reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_runs_the_demo_without_the_checkout(tmp_path):
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (test extra)")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("servicecircle-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "servicecircle/_data/demo_facilities.geojson",
        "servicecircle/_data/demo_scenario.toml",
        "servicecircle/_data/life_circle_gb50180.toml",
        "servicecircle/js/map.js",
        "servicecircle/js/whatif.js",
        "servicecircle/_vendor/leaflet/leaflet.js",
    ):
        assert shipped in names, shipped
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import servicecircle, sys; from servicecircle.cli import main; "
        "assert servicecircle.__file__.startswith(sys.argv[1]), servicecircle.__file__; "
        "sys.exit(main(['-q', 'coverage', 'demo', '--out', 'cov', '--no-map']) or "
        "main(['-q', 'demo']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((work / "cov" / "summary.json").read_text())["facility_source"] == (
        "demo facility file"
    )
    # outside a checkout the demo writes to ./maps
    assert (work / "maps" / "coverage_map.html").exists()
