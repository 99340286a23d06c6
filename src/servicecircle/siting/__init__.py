"""Siting: where new stations and centres should go.

The array core works on a sparse coverage matrix (demand rows × candidate columns, ``True``
where the candidate is within the tier's walking distance) and a weight per row, so a 3×3 test
matrix and a city both fit. Existing facilities stay fixed: demand they already cover leaves the
model (maximal coverage, set cover), or they enter as fixed columns (capacity).

* :func:`greedy_max_cover` — lazy greedy with an online upper bound (fast, ≥ (1 − 1/e) OPT);
* :func:`solve_max_cover` — MCLP, exact by HiGHS, warm-started from greedy, with a time limit;
* :func:`solve_set_cover` — the fewest facilities that reach a covered weight (LSCP to a goal);
* :func:`solve_capacitated` — MCLP where each facility serves at most ``C`` residents.
"""

from __future__ import annotations

from .matrix import ReducedProblem, coverage_matrix, reduce_problem
from .solve import (
    DEFAULT_TIME_LIMIT_S,
    GoalUnreachableError,
    Solution,
    greedy_max_cover,
    rank_picks,
    solve_capacitated,
    solve_max_cover,
    solve_set_cover,
)

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "GoalUnreachableError",
    "ReducedProblem",
    "Solution",
    "coverage_matrix",
    "greedy_max_cover",
    "rank_picks",
    "reduce_problem",
    "solve_capacitated",
    "solve_max_cover",
    "solve_set_cover",
]
