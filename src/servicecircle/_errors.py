"""Semantic exceptions: each names the input at fault and the fix.

Every error a user can cause by handing in a bad file or value subclasses
:class:`ServiceCircleError`; the CLI turns these into a one-line message and exit code 2.
"""

from __future__ import annotations


class ServiceCircleError(Exception):
    """Base class for errors caused by user input; the message names the input and the fix."""


class InputError(ServiceCircleError, ValueError):
    """An input file or value cannot be used as it is."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """An input file does not exist."""


class CRSError(ServiceCircleError, ValueError):
    """Data are in a geographic CRS (degrees) where metres are needed, or have no CRS."""


class EmptyAreaError(ServiceCircleError, ValueError):
    """Nothing usable is left inside the area (for example after clipping to the boundary)."""


class MissingDependencyError(ServiceCircleError, ImportError):
    """An optional dependency needed for this step is not installed."""


def require(module: str, extra_hint: str | None = None) -> object:
    """Import ``module`` or raise :class:`MissingDependencyError` with an install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - only without the dependency
        hint = extra_hint or f"pip install {module.split('.')[0]}"
        message = f"{module} is needed for this step; install it: {hint}"
        raise MissingDependencyError(message) from err
