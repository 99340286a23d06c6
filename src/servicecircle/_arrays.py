"""Array helpers shared across the layers."""

from __future__ import annotations

import numpy as np


def index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The position in ``ids`` (unique) of each of ``wanted``, -1 where it is not there: a
    hash lookup (pandas), 4x faster than a binary search of the sorted ids at 300 k ids."""
    import pandas as pd

    return np.asarray(pd.Index(np.asarray(ids)).get_indexer(np.asarray(wanted)), dtype=np.int64)


def ends_index(ids: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`index_of` for both ends of edges at once (one hash of ``ids``)."""
    both = index_of(ids, np.concatenate([np.asarray(u), np.asarray(v)]))
    return both[: len(u)], both[len(u) :]


def isin_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each of ``a`` is among ``b`` (ids over a wide range, as OSM's): a hash lookup,
    6x faster than ``np.isin``'s sort at 300 k of a and 1 M of b."""
    import pandas as pd

    return np.asarray(pd.Series(np.asarray(a)).isin(np.asarray(b)).to_numpy(), dtype=bool)


def first_seen(a: np.ndarray) -> np.ndarray:
    """Whether each of ``a`` is the first of its value (as the sorted ``return_index`` of
    ``np.unique``; a hash, not a sort)."""
    import pandas as pd

    return ~np.asarray(pd.Series(np.asarray(a)).duplicated().to_numpy(), dtype=bool)
