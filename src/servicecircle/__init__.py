"""servicecircle: plan community service circles (一中心多站点).

Build grids over an area, place centres and stations, measure walking coverage of residents
against the 15-minute and 5-minute targets, propose new sites, and write maps.

The heavy parts (osmnx, pyrosm, folium) are imported inside the functions that need them, so
``import servicecircle`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._errors import (
    CRSError,
    EmptyAreaError,
    InputError,
    InputFileNotFoundError,
    ServiceCircleError,
)

__all__ = [
    "CRSError",
    "EmptyAreaError",
    "InputError",
    "InputFileNotFoundError",
    "ServiceCircleError",
    "__version__",
]
