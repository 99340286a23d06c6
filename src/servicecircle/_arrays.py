"""Array helpers shared across the layers."""

from __future__ import annotations

import numpy as np


def index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The position in ``ids`` (unique) of each of ``wanted``, -1 where it is not there: a
    hash lookup (pandas), 4x faster than a binary search of the sorted ids at 300 k ids."""
    import pandas as pd

    return np.asarray(pd.Index(np.asarray(ids)).get_indexer(np.asarray(wanted)), dtype=np.int64)
