"""Steps every workflow shares: packaged data, demand and facilities from what the user gave,
the staged output folder, and the head of every summary."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .._errors import InputError
from ..files import DEFAULT_FILES, FileOptions
from ..outputs import RunOutput

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area
    from ..demand import BuildingPopulation
    from ..network import WalkNetwork
    from ..segments import Segment

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
def output_for(
    out_dir: OutDir, *, lang: str = "zh", coords: str = "wgs84", command: str | None = None
) -> Iterator[RunOutput]:
    """The run's writer: ``out_dir`` itself when it already is one (a workflow inside a
    scenario writes into the scenario's staging), else a new staged folder committed when the
    block succeeds, recording the files of ``command``'s run there (see
    :mod:`~servicecircle.run_manifest`)."""
    if isinstance(out_dir, RunOutput):
        yield out_dir
        return
    with RunOutput(out_dir, lang=lang, coords=coords, command=command) as out:
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
    files: FileOptions = DEFAULT_FILES,
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
        gdf = read_demand(demand, crs=area.crs, files=files)
    counts = {"source": source_label(demand, "buildings"), **gdf.attrs.get("counts", {})}
    check_placement(gdf, area, "demand", counts)
    gdf = _leave_out_far(gdf, area, counts)
    gdf.attrs["counts"] = counts
    return gdf


#: Demand points farther than this outside the boundary are left out of the run (counted): no
#: street of the area is within the snap limit of them, so they would only lower the shares.
FAR_OUTSIDE_M = 300.0


def _leave_out_far(gdf: gpd.GeoDataFrame, area: Area, counts: dict[str, Any]) -> gpd.GeoDataFrame:
    """Points just outside the boundary are kept (walking from the nearest street; counted);
    those more than :data:`FAR_OUTSIDE_M` outside are left out (counted)."""
    if len(gdf) == 0:
        return gdf
    import shapely

    pts = gdf.geometry.to_numpy()
    outside = ~shapely.within(pts, area.boundary)
    if not outside.any():
        return gdf
    far = outside & ~shapely.dwithin(pts, area.boundary, FAR_OUTSIDE_M)
    pop = gdf["population"].to_numpy(dtype=float)
    near = outside & ~far
    if near.any():
        counts["outside_boundary"] = int(near.sum())
        counts["residents_outside_boundary"] = float(pop[near].sum())
    if far.any():
        counts["far_outside_boundary"] = int(far.sum())
        counts["residents_far_outside_boundary"] = float(pop[far].sum())
        kept = gdf.loc[~far].copy()
        kept.attrs = dict(gdf.attrs)
        return kept
    return gdf


def with_segments(
    area: Area,
    demand: gpd.GeoDataFrame,
    segments: tuple[Segment, ...] | None,
    *,
    workers: str | Path | gpd.GeoDataFrame | None = None,
    files: FileOptions = DEFAULT_FILES,
) -> gpd.GeoDataFrame:
    """Demand with a count column per segment (the file's own, else a share of the population)
    and, with ``workers`` (``"buildings"`` or a file with a ``workers`` column), worker points
    appended (population 0)."""
    import geopandas as gpd
    import pandas as pd

    from ..segments import add_segments, workers_from_buildings

    if not segments:
        return demand
    names = {s.name for s in segments}
    if workers is not None and "workers" in names:
        if isinstance(workers, gpd.GeoDataFrame):
            extra = workers.to_crs(area.crs)
        elif str(workers) == "buildings":
            extra = workers_from_buildings(area.buildings, landuse=area.landuse)
        else:
            extra = files.read(workers, "worker file", to_crs=area.crs)
            if "workers" not in extra.columns:
                raise InputError(f"worker file {workers}: needs a 'workers' column (people)")
        extra = extra.assign(population=0.0)
        if "demand_id" not in extra:
            extra["demand_id"] = [f"w{i}" for i in range(len(extra))]
        counts = dict(demand.attrs.get("counts", {}))
        counts["worker_points"] = len(extra)
        joined = pd.concat([demand, extra[["demand_id", "population", "workers", "geometry"]]],
                           ignore_index=True)  # fmt: skip
        demand = gpd.GeoDataFrame(joined, geometry="geometry", crs=area.crs)
        demand.attrs["counts"] = counts
        if demand["demand_id"].duplicated().any():
            raise InputError("worker points repeat a demand id; give workers their own ids")
    return add_segments(demand, segments)


def resolve_facilities(
    area: Area,
    facilities: str | Path | gpd.GeoDataFrame | None,
    *,
    files: FileOptions = DEFAULT_FILES,
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
        gdf = read_facilities(facilities, crs=area.crs, files=files)
        check_placement(gdf, area, "facility file", {})
    return validate_facilities(gdf)


def check_placement(gdf: gpd.GeoDataFrame, area: Area, what: str, counts: dict[str, Any]) -> None:
    """Refuse a file whose points all lie more than 2 km outside the area, saying what is
    likely wrong (lon and lat swapped, metres taken as degrees, another place)."""
    if len(gdf) == 0:
        return
    import shapely

    reach = shapely.buffer(area.boundary, 2000.0)
    pts = gdf.geometry.to_numpy()
    near = shapely.intersects(reach, pts)
    if near.any():
        return
    ll = gdf.to_crs(4326).geometry
    x, y = ll.x.to_numpy(), ll.y.to_numpy()
    import geopandas as gpd

    swapped = gpd.GeoSeries(gpd.points_from_xy(y, x), crs=4326).to_crs(area.crs)
    hint = "check that they are of this area"
    if shapely.intersects(reach, swapped.to_numpy()).mean() >= 0.5:
        hint = "lon and lat look swapped: lon is the east-west number (about 73–135 in China)"
    elif not (np.isfinite(x).all() and np.isfinite(y).all()) or (abs(x) > 180).any():
        hint = "the coordinates look like metres read as degrees: give the file its CRS"
    raise InputError(
        f"{what}: {int((~near).sum())} of {len(gdf)} points lie more than 2 km outside the area "
        f"(first at lon {x[0]:.5f}, lat {y[0]:.5f}); {hint}"
    )


def input_summary(files: FileOptions, **frames: gpd.GeoDataFrame) -> dict[str, Any]:
    """The ``input`` block of a summary: the coordinates files were read in, and per file its
    encoding or sheet where those apply."""
    out: dict[str, Any] = {"coords": files.coords}
    for name, gdf in frames.items():
        about = gdf.attrs.get("file") or {
            k: v for k, v in gdf.attrs.get("counts", {}).items() if k in ("encoding", "sheet")
        }
        if about:
            out[name] = {k: v for k, v in about.items() if k != "coords"}
    return out


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


def siting_weights(
    area: Area,
    demand: gpd.GeoDataFrame,
    tier: Any,
    segment: str | None,
    weights: dict[str, float] | None,
    files: FileOptions,
) -> tuple[Any, np.ndarray, gpd.GeoDataFrame]:
    """Who the sites are for: the residents; one segment at its own pace (the tier's metres
    become the segment's); or residents with segments counted ``weights`` times. A tier for
    workers sites for the workers of the area's workplace buildings."""
    from dataclasses import replace

    from ..segments import choose_segments

    segment = segment or (tier.segment if tier.segment != "residents" else None)
    names = sorted({*([segment] if segment else []), *(weights or {})})
    if not names:
        return tier, demand["population"].to_numpy(dtype=float), demand
    bad = [w for w in (weights or {}).values() if not (w >= 0 and np.isfinite(w))]
    if bad:
        raise InputError(f"--weights: a weight must be a number ≥ 0; got {bad[0]}")
    segs = choose_segments(names)
    workers = "buildings" if "workers" in names and "workers" not in demand else None
    demand = with_segments(area, demand, segs, workers=workers, files=files)
    pop = demand["population"].to_numpy(dtype=float).copy()
    for name, w in (weights or {}).items():
        pop += (w - 1.0) * demand[name].to_numpy(dtype=float)
    if segment:
        seg = next(s for s in segs if s.name == segment)
        tier = replace(tier, target_m=tier.metres_at(seg.speed_m_per_min))
        pop = demand[segment].to_numpy(dtype=float)
    return tier, pop, demand
