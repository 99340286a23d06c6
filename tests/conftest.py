"""Shared fixtures: paths to the shared OSM extracts, the demo area, small hand-built networks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Reproducible by default (CI and `make test`): the same examples on every run. `make fuzz`
# runs the random search longer (HYPOTHESIS_PROFILE=fuzz); every counterexample it finds
# becomes an @example next to its test.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("fuzz", max_examples=2000, derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
NANJING = SHARED_DATA / "nanjing_xinjiekou_2021.osm.bz2"
BEIJING = SHARED_DATA / "beijing_wudaokou_2017.osm.bz2"


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory):
    """The CLI caches parsed areas by default: keep the suite's entries out of the user's cache
    folder (and start every session with an empty one)."""
    old = os.environ.get("SERVICECIRCLE_CACHE_DIR")
    os.environ["SERVICECIRCLE_CACHE_DIR"] = str(tmp_path_factory.mktemp("area-cache"))
    yield
    if old is None:
        os.environ.pop("SERVICECIRCLE_CACHE_DIR", None)
    else:
        os.environ["SERVICECIRCLE_CACHE_DIR"] = old


def shared_file(path: Path) -> Path:
    """Skip with a clear reason when a ../shared/data file is absent."""
    if not path.exists():
        pytest.skip(
            f"{path} is absent: the shared OSM extracts live in ../shared/data beside "
            "the repository"
        )
    return path


@pytest.fixture(scope="session")
def demo_area():
    from servicecircle.area import load_area

    return load_area("demo")


@pytest.fixture(scope="session")
def demo_network(demo_area):
    from servicecircle.network import WalkNetwork

    return WalkNetwork.from_area(demo_area)


@pytest.fixture(scope="session")
def nanjing_area():
    from servicecircle.area import load_area

    return load_area(shared_file(NANJING))


@pytest.fixture(scope="session")
def beijing_area():
    from servicecircle.area import load_area

    return load_area(shared_file(BEIJING))
