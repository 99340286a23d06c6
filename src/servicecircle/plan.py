"""The workflows under the names the notebook, the README and scripts use.

``from servicecircle.plan import run_coverage, run_propose, tier_by_name`` keeps working; the
code lives in :mod:`servicecircle.workflows` (one module per command).
"""

from __future__ import annotations

from .tiers import tier_by_name
from .workflows import (
    PlanResult,
    SitingResult,
    demo_facilities_path,
    packaged_data,
    run_coverage,
    run_grid,
    run_propose,
    run_scenario,
    run_two_level,
)
from .workflows.common import DEMO_FACILITIES, FACILITIES_FROM_OSM

__all__ = [
    "DEMO_FACILITIES",
    "FACILITIES_FROM_OSM",
    "PlanResult",
    "SitingResult",
    "demo_facilities_path",
    "packaged_data",
    "run_coverage",
    "run_grid",
    "run_propose",
    "run_scenario",
    "run_two_level",
    "tier_by_name",
]
