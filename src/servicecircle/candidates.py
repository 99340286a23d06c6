"""Candidates: places where a new facility may go.

Along the walk network at a spacing, from OSM features that can host a station (a documented
tag preset), or from a user file; minus exclusions (near an existing facility, outside the
boundary). Every candidate is snapped like any facility.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .files import DEFAULT_FILES, FileOptions, id_texts
from .osmtags import first_match

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

    from .network import WalkNetwork

log = logging.getLogger(__name__)

DEFAULT_SPACING_M = 100.0
DEFAULT_EXCLUSION_M = 50.0
"""Candidates closer than this to an existing facility are dropped (it is already there)."""

#: OSM features that can host a station: community and public buildings, vacant shops.
#: A rule matches when every tag in it matches (``True`` = any value; a list = any of them).
HOST_PRESET: list[dict[str, Any]] = [
    {
        "amenity": [
            "community_centre",
            "social_centre",
            "social_facility",
            "library",
            "townhall",
            "post_office",
            "public_building",
            "arts_centre",
        ]
    },
    {"building": ["public", "civic", "government", "community_centre"]},
    {"office": ["government", "association", "ngo"]},
    {"shop": ["vacant"]},
    {"disused:shop": True},
    {"disused:amenity": True},
    {"vacant": ["yes"]},
]


def candidates_along_network(
    network: WalkNetwork, *, spacing_m: float = DEFAULT_SPACING_M
) -> gpd.GeoDataFrame:
    """Candidate points along the walk network, about ``spacing_m`` apart.

    Points are laid every ``spacing_m`` along each edge (the middle of shorter edges), then
    thinned to at most one per square of ``spacing_m / 2`` side, keeping the first in edge
    order, so the result is the same on every run.
    """
    import geopandas as gpd
    import shapely

    if not np.isfinite(spacing_m) or spacing_m <= 0:
        raise InputError(f"candidate spacing must be positive metres; got {spacing_m}")
    length = network.edge_length_m
    n_per = np.maximum(1, np.round(length / spacing_m)).astype("int64")
    edge = np.repeat(np.arange(network.n_edges), n_per)
    first = np.cumsum(n_per) - n_per
    k = np.arange(int(n_per.sum())) - np.repeat(first, n_per)
    offset = (k + 0.5) * length[edge] / n_per[edge]
    pts = shapely.line_interpolate_point(network.edge_geometry[edge], offset)
    xy = shapely.get_coordinates(pts)
    cell = np.floor(xy / (spacing_m / 2.0)).astype("int64")
    _, keep = np.unique(cell, axis=0, return_index=True)
    keep.sort()
    return gpd.GeoDataFrame(
        {"candidate_id": [f"n{i:06d}" for i in range(len(keep))], "source": "network"},
        geometry=pts[keep],
        crs=network.crs,
    )


def candidates_from_features(
    features: gpd.GeoDataFrame, *, preset: list[dict[str, Any]] | None = None
) -> gpd.GeoDataFrame:
    """Candidates from OSM buildings/POIs that can host a station (:data:`HOST_PRESET`)."""
    import geopandas as gpd

    crs = require_metric(features.crs, "features")
    hit, why = first_match(features, HOST_PRESET if preset is None else preset)
    chosen = features.loc[hit]
    ids = chosen["osm_id"].astype(str).to_numpy() if "osm_id" in chosen else np.arange(len(chosen))
    out = gpd.GeoDataFrame(
        {
            "candidate_id": [f"osm{i}" for i in ids],
            "source": "osm",
            "rule": why[hit],
            "name": chosen["name"].astype("string").to_numpy()
            if "name" in chosen
            else pd.array([pd.NA] * len(chosen), dtype="string"),
        },
        geometry=chosen.geometry.representative_point().to_numpy(),
        crs=crs,
    )
    return out.drop_duplicates("candidate_id").reset_index(drop=True)


def read_candidates(
    path: str | Path, *, crs: Any, files: FileOptions = DEFAULT_FILES
) -> gpd.GeoDataFrame:
    """Candidates from a file (points or polygons; ``id`` optional: rows without one get
    ``c<row>``)."""
    gdf = files.read(path, "candidate file", to_crs=crs)
    generated = pd.Series([f"c{i:05d}" for i in range(len(gdf))], index=gdf.index)
    ids = id_texts(gdf["id"]) if "id" in gdf.columns else generated
    ids = ids.where(ids.notna(), generated).astype(str)
    if ids.duplicated().any():
        raise InputError(f"candidate file {path}: id {ids[ids.duplicated()].iloc[0]!r} repeats")
    out = gdf.drop(columns=[c for c in ("id",) if c in gdf.columns]).copy()
    out.insert(0, "candidate_id", ids.to_numpy())
    out["source"] = "file"
    if set(out.geom_type) - {"Point"}:
        out = out.set_geometry(out.geometry.representative_point())
    return out


def exclude(
    candidates: gpd.GeoDataFrame,
    *,
    boundary: BaseGeometry | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    exclusion_m: float = DEFAULT_EXCLUSION_M,
) -> gpd.GeoDataFrame:
    """Drop candidates outside the boundary or within ``exclusion_m`` of a facility.

    ``attrs["excluded"]`` counts what was dropped and why.
    """
    import shapely
    from scipy.spatial import cKDTree

    keep = np.ones(len(candidates), dtype=bool)
    counts = {"outside_boundary": 0, "near_existing_facility": 0}
    pts = candidates.geometry.to_numpy()
    if boundary is not None:
        inside = shapely.covers(boundary, pts)
        counts["outside_boundary"] = int((~inside).sum())
        keep &= inside
    if facilities is not None and len(facilities) and exclusion_m > 0:
        fxy = shapely.get_coordinates(facilities.geometry.representative_point().to_numpy())
        d, _ = cKDTree(fxy).query(shapely.get_coordinates(pts), k=1)
        near = d < exclusion_m
        counts["near_existing_facility"] = int((near & keep).sum())
        keep &= ~near
    out = candidates.loc[keep].reset_index(drop=True)
    out.attrs["excluded"] = counts
    return out
