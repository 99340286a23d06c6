"""Edge arrays of the walk network: one undirected edge per way segment, the CSR of least
weights (what :meth:`servicecircle.network.WalkNetwork.from_arrays` builds on)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp


def first_of_each(a: np.ndarray, b: np.ndarray, length: np.ndarray, n: int) -> np.ndarray:
    """The edges to keep, in their order: the first of each (unordered pair, length to the
    millimetre), so that the reverse copy of a way is dropped. One sort of the pairs; the
    lengths are compared only where a pair comes twice."""
    pair = a.astype(np.int64) * n + b
    order = np.argsort(pair, kind="stable")
    sp_ = pair[order]
    again = np.zeros(len(order), dtype=bool)
    again[1:] = sp_[1:] == sp_[:-1]
    keep = np.ones(len(order), dtype=bool)
    if again.any():
        grouped = again.copy()
        grouped[:-1] |= again[1:]
        rows = order[grouped]  # by pair, then as given
        key = np.round(length[rows] * 1000).astype("int64")
        sub = rows[np.lexsort((key, pair[rows]))]
        dup = np.zeros(len(sub), dtype=bool)
        dup[1:] = (pair[sub][1:] == pair[sub][:-1]) & (
            np.round(length[sub][1:] * 1000) == np.round(length[sub][:-1] * 1000)
        )
        keep[sub[dup]] = False
    return np.flatnonzero(keep)


def csr_min(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR matrix keeping the minimum weight of duplicate (row, col) pairs."""
    import scipy.sparse as sp

    cell = rows.astype(np.int64) * n + cols
    order = np.argsort(cell)
    cell = cell[order]
    starts = np.flatnonzero(np.concatenate([[True], cell[1:] != cell[:-1]]))
    weights = np.minimum.reduceat(weights[order], starts) if len(starts) else weights[:0]
    rows, cols = cell[starts] // n, cell[starts] % n
    indptr = np.zeros(n + 1, dtype="int64")
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sp.csr_matrix(
        (weights, cols.astype("int32"), indptr.astype("int32") if len(rows) < 2**31 else indptr),
        shape=(n, n),
    )
