"""One module per command workflow, each reading load → compute → write.

* :mod:`.coverage` — ``run_coverage``: walking coverage, tables, cells, service areas, map;
* :mod:`.grid` — ``run_grid``: regular or governance grids;
* :mod:`.propose` — ``run_propose`` and ``run_two_level``: siting;
* :mod:`.scenario` — ``run_scenario``: a whole plan from a TOML file;
* :mod:`.common` — the steps they share (demand and facilities from what the user gave, the
  staged output folder, the summary head).

Every workflow writes through :class:`servicecircle.outputs.RunOutput`, so a failed run leaves
its output folder as it was.
"""

from __future__ import annotations

from .common import demo_facilities_path, packaged_data
from .coverage import PlanResult, run_coverage
from .grid import run_grid
from .propose import SitingResult, run_propose, run_two_level
from .scenario import run_scenario

__all__ = [
    "PlanResult",
    "SitingResult",
    "demo_facilities_path",
    "packaged_data",
    "run_coverage",
    "run_grid",
    "run_propose",
    "run_scenario",
    "run_two_level",
]
