"""Steps every workflow shares: packaged data, demand and facilities from what the user gave,
the staged output folder, and the head of every summary."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._errors import InputError
from ..outputs import RunOutput

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area
    from ..demand import BuildingPopulation
    from ..network import WalkNetwork

log = logging.getLogger(__name__)

FACILITIES_FROM_OSM = "osm"
DEMO_FACILITIES = "demo"
ATTRIBUTION = "Map data © OpenStreetMap contributors (ODbL)"

OutDir = str | Path | RunOutput | None
Step = Callable[[str], None] | None


def packaged_data(name: str) -> Path:
    """Path of a file in the project's ``data/`` folder (shipped as ``servicecircle/_data``)."""
    here = Path(__file__).resolve().parents[1]
    for folder in (here / "_data", here.parents[1] / "data"):
        path = folder / name
        if path.exists():
            return path
    raise InputError(f"packaged data file {name!r} is missing; reinstall servicecircle")


def demo_facilities_path() -> Path:
    """The example facility file for the demo area (see ``data/README.md``)."""
    return packaged_data("demo_facilities.geojson")


@contextlib.contextmanager
def output_for(out_dir: OutDir, *, lang: str = "zh") -> Iterator[RunOutput]:
    """The run's writer: ``out_dir`` itself when it already is one (a workflow inside a
    scenario writes into the scenario's staging), else a new staged folder committed when the
    block succeeds."""
    if isinstance(out_dir, RunOutput):
        yield out_dir
        return
    with RunOutput(out_dir, lang=lang) as out:
        yield out


def ticker(step: Step, what: str = "step") -> Callable[[str], None]:
    """A callback that logs each step and hands it to ``step`` (a progress bar)."""

    def tick(name: str) -> None:
        log.info("%s: %s", what, name)
        if step is not None:
            step(name)

    return tick


def source_label(source: object, default: str) -> str:
    """How a demand or facility source is named in summaries."""
    if source is None:
        return default
    if type(source).__name__ == "GeoDataFrame":
        return "GeoDataFrame"
    return {
        FACILITIES_FROM_OSM: "OSM tags (preset 'default')",
        DEMO_FACILITIES: "demo facility file",
    }.get(str(source), str(source))


def resolve_demand(
    area: Area,
    demand: str | Path | gpd.GeoDataFrame | None,
    *,
    params: BuildingPopulation | None = None,
    required: bool = True,
) -> gpd.GeoDataFrame:
    """Demand from a frame, a file, or (``None`` / ``"buildings"``) the area's residential
    buildings; validated. ``attrs["counts"]`` says what was read and left out, with the
    source."""
    import geopandas as gpd

    from ..demand import demand_from_buildings, read_demand, validate_demand

    if demand is None or str(demand) == "buildings":
        gdf = demand_from_buildings(area.buildings, landuse=area.landuse, params=params)
        if required and len(gdf) == 0:
            raise InputError(
                f"area {area.name}: no residential building found to estimate residents from; "
                "give a demand file with --demand"
            )
    elif isinstance(demand, gpd.GeoDataFrame):
        counts = dict(demand.attrs.get("counts", {}))
        gdf = validate_demand(demand.to_crs(area.crs))
        gdf.attrs["counts"] = counts or {"features": len(gdf)}
    else:
        gdf = read_demand(demand, crs=area.crs)
    counts = {"source": source_label(demand, "buildings"), **gdf.attrs.get("counts", {})}
    gdf.attrs["counts"] = counts
    return gdf


def resolve_facilities(
    area: Area, facilities: str | Path | gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """Existing facilities from a frame, a file, ``"osm"`` or ``"demo"`` (empty when None),
    validated."""
    import geopandas as gpd

    from ..facilities import facilities_from_pois, read_facilities, validate_facilities

    if facilities is None:
        return gpd.GeoDataFrame(
            {"facility_id": [], "kind": [], "name": []}, geometry=[], crs=area.crs
        )
    if isinstance(facilities, gpd.GeoDataFrame):
        gdf = facilities.to_crs(area.crs)
    elif str(facilities) == FACILITIES_FROM_OSM:
        gdf = facilities_from_pois(area.pois)
    elif str(facilities) == DEMO_FACILITIES:
        gdf = read_facilities(demo_facilities_path(), crs=area.crs)
    else:
        gdf = read_facilities(facilities, crs=area.crs)
    return validate_facilities(gdf)


def area_summary(area: Area, network: WalkNetwork | None = None) -> dict[str, Any]:
    """The ``area`` block of every summary."""
    out: dict[str, Any] = {
        "name": area.name,
        "source": area.source,
        "crs": area.crs.to_string(),
        "read": area.report,
    }
    if network is not None:
        out["walk_nodes"] = network.n_nodes
        out["walk_edges"] = network.n_edges
        out["network"] = network.fragment_summary()
    return out


def summary_head(**fields: Any) -> dict[str, Any]:
    """The first keys of every summary: the version, then ``fields``, then the attribution."""
    return {"servicecircle": __version__, **fields, "attribution": ATTRIBUTION}


def finish_summary(
    out: RunOutput, summary: dict[str, Any], started: float, *, name: str = "summary.json"
) -> None:
    """Add the run time and the file list, and write the summary last."""
    summary["seconds"] = round(time.perf_counter() - started, 3)
    if out.active:
        summary["files"] = sorted({*out.files, name})
        out.json(name, summary)
