"""Solvers on the coverage matrix: lazy greedy with a bound, and exact models by HiGHS."""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError

if TYPE_CHECKING:
    import scipy.sparse as sp

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 60.0
_TOL = 1e-9


# --------------------------------------------------------------------------- solutions
@dataclass(frozen=True)
class Solution:
    """Picked columns of a siting model and how good the answer is.

    Attributes
    ----------
    picks
        Columns chosen, in rank order (largest marginal gain first).
    gains
        Marginal covered weight of each pick, in that order.
    value
        Covered weight by the picks (beyond what was covered before).
    bound
        Proven upper bound on the best possible value.
    optimal
        Whether ``value`` is proven optimal.
    gap
        ``(bound − value) / bound`` (0 when optimal).
    method
        ``"greedy"``, ``"exact"`` (HiGHS) or ``"greedy (optimal by bound)"``.
    seconds
        Solve time.
    """

    picks: tuple[int, ...]
    gains: tuple[float, ...]
    value: float
    bound: float
    optimal: bool
    gap: float
    method: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def rank_picks(
    a: sp.csr_matrix, weight: np.ndarray, picks: list[int]
) -> tuple[list[int], list[float]]:
    """Order picks greedily by marginal gain (ties by column) and return the gains."""
    csc = a.tocsc()
    covered = np.zeros(a.shape[0], dtype=bool)
    left = sorted(set(picks))
    order, gains = [], []
    while left:
        best, best_gain = -1, -1.0
        for j in left:
            rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
            g = float(weight[rows[~covered[rows]]].sum())
            if g > best_gain + _TOL:
                best, best_gain = j, g
        order.append(best)
        gains.append(best_gain)
        rows = csc.indices[csc.indptr[best] : csc.indptr[best + 1]]
        covered[rows] = True
        left.remove(best)
    return order, gains


def greedy_max_cover(
    a: sp.csr_matrix, weight: np.ndarray, k: int, *, with_bound: bool = True
) -> Solution:
    """Lazy greedy maximal coverage with an online upper bound.

    The bound is the smallest, over the steps, of the value so far plus the ``k`` largest
    (possibly stale, hence still valid) marginal gains — valid because coverage is submodular.
    Ties go to the lower column, so the result is deterministic.
    """
    t0 = time.perf_counter()
    n_cols = a.shape[1]
    csc = a.tocsc()
    w = np.asarray(weight, dtype="float64")
    covered = np.zeros(a.shape[0], dtype=bool)
    gains0 = np.asarray(csc.T @ w).ravel() if n_cols else np.zeros(0)
    heap = [(-float(g), j) for j, g in enumerate(gains0)]
    heapq.heapify(heap)
    upper = np.asarray(gains0, dtype="float64").copy()
    total_coverable = float(w[np.diff(a.indptr) > 0].sum())
    value = 0.0
    bound = total_coverable
    picks: list[int] = []
    gains: list[float] = []
    k = min(k, n_cols)
    for _ in range(k):
        if with_bound:
            live = upper[np.isfinite(upper)]
            top = float(np.sort(live)[::-1][:k].sum()) if len(live) else 0.0
            bound = min(bound, value + top)
        while heap:
            neg, j = heapq.heappop(heap)
            rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
            g = float(w[rows[~covered[rows]]].sum())
            upper[j] = g
            if g >= -neg - _TOL:
                # still the best (ties: the heap orders by column)
                if not heap or g >= -heap[0][0] - _TOL:
                    break
            heapq.heappush(heap, (-g, j))
        else:
            break
        if g <= _TOL:
            break
        picks.append(j)
        gains.append(g)
        value += g
        upper[j] = -np.inf
        covered[rows] = True
    bound = max(value, min(bound, total_coverable))
    optimal = value >= bound - 1e-9 * max(1.0, bound)
    gap = 0.0 if optimal or bound <= 0 else (bound - value) / bound
    return Solution(
        tuple(picks), tuple(gains), value, bound, optimal, gap, "greedy", time.perf_counter() - t0
    )


def _highs() -> Any:
    try:
        import highspy
    except ImportError as err:  # pragma: no cover
        raise InputError("exact siting needs HiGHS: pip install highspy") from err
    return highspy


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """File descriptor 1 to /dev/null for a moment (what C++ code prints goes there)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _new_highs(time_limit_s: float) -> tuple[Any, Any]:
    highspy = _highs()
    with _stdout_to_devnull():  # HiGHS ≥ 1.16 prints its licence banner as it is built
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-6)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    return highspy, h


def _pass_model(
    highspy: Any,
    h: Any,
    *,
    cost: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    integer: np.ndarray,
    a_csc: sp.csc_matrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    maximize: bool,
) -> None:
    lp = highspy.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = len(row_lower)
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(lower, dtype=float)
    lp.col_upper_ = np.asarray(upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lower, dtype=float)
    lp.row_upper_ = np.asarray(row_upper, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a_csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a_csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = a_csc.data.astype(float)
    lp.a_matrix_.num_col_ = len(cost)
    lp.a_matrix_.num_row_ = len(row_lower)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in integer
    ]
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    status = h.passModel(lp)
    if status != highspy.HighsStatus.kOk:  # pragma: no cover - a bug in the model
        raise RuntimeError(f"HiGHS refused the model: {status}")


def _result(highspy: Any, h: Any, maximize: bool) -> tuple[np.ndarray | None, float, float, bool]:
    status = h.getModelStatus()
    info = h.getInfo()
    sol = h.getSolution()
    x = np.asarray(sol.col_value) if sol.value_valid else None
    value = float(info.objective_function_value)
    bound = float(info.mip_dual_bound)
    optimal = status == highspy.HighsModelStatus.kOptimal
    if optimal:
        bound = value
    return x, value, bound, optimal


def _warm_start(highspy: Any, h: Any, a: sp.csr_matrix, picks: list[int]) -> None:
    """Start HiGHS from a known solution: x = the picked columns, y = the rows they cover."""
    x0 = np.zeros(a.shape[1])
    x0[picks] = 1
    y0 = np.minimum(1.0, np.asarray(a @ x0).ravel())
    start = highspy.HighsSolution()
    start.col_value = list(np.concatenate([x0, y0]))
    h.setSolution(start)


def _cover_constraints(a: sp.csr_matrix) -> sp.csc_matrix:
    """Rows y_i − Σ_{j∈N_i} x_j ≤ 0, columns [x (cands), y (rows)]."""
    import scipy.sparse as sp

    return sp.hstack([-a.astype(float), sp.identity(a.shape[0], format="csr")]).tocsc()


def solve_max_cover(
    a: sp.csr_matrix,
    weight: np.ndarray,
    k: int,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    method: str = "exact",
) -> Solution:
    """Maximal covering (MCLP): ``k`` columns that cover the most weight.

    ``method="greedy"`` returns the lazy greedy answer with its bound. ``"exact"`` checks the
    greedy answer against its bound first (when they meet, greedy is proven optimal and the
    solver is not needed); otherwise HiGHS solves the MILP with a time limit, warm-started from
    greedy, and reports proven optimality or the remaining gap.
    """
    import scipy.sparse as sp

    if k <= 0:
        raise InputError(f"the number of new facilities must be at least 1; got {k}")
    if method not in ("exact", "greedy"):
        raise InputError(f"unknown method {method!r}; use exact or greedy")
    greedy = greedy_max_cover(a, weight, k)
    if method == "greedy" or greedy.optimal:
        if greedy.optimal and method == "exact":
            return Solution(
                greedy.picks,
                greedy.gains,
                greedy.value,
                greedy.bound,
                True,
                0.0,
                "greedy (optimal by bound)",
                greedy.seconds,
            )
        return greedy
    t0 = time.perf_counter()
    r, c = a.shape
    cons = sp.vstack(
        [
            _cover_constraints(a),
            sp.hstack([sp.csr_matrix(np.ones((1, c))), sp.csr_matrix((1, r))]),
        ]
    ).tocsc()

    def model(integer: bool) -> tuple[Any, Any]:
        highspy, h = _new_highs(time_limit_s)
        _pass_model(
            highspy,
            h,
            cost=np.concatenate([np.zeros(c), weight]),
            lower=np.zeros(c + r),
            upper=np.ones(c + r),
            integer=np.concatenate([np.full(c, integer), np.zeros(r, bool)]),
            a_csc=cons,
            row_lower=np.full(r + 1, -highspy.kHighsInf),
            row_upper=np.concatenate([np.zeros(r), [float(k)]]),
            maximize=True,
        )
        return highspy, h

    # The LP relaxation's bound first (primal simplex: seconds where dual simplex takes
    # minutes on these models); when greedy meets it, greedy is proven optimal.
    highspy, h = model(False)
    h.setOptionValue("simplex_strategy", 4)
    h.run()
    lp_bound = greedy.bound
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        lp_bound = min(lp_bound, float(h.getInfo().objective_function_value))
    if greedy.value >= lp_bound - 1e-9 * max(1.0, lp_bound):
        return Solution(
            greedy.picks,
            greedy.gains,
            greedy.value,
            lp_bound,
            True,
            0.0,
            "greedy (optimal by LP bound)",
            time.perf_counter() - t0 + greedy.seconds,
            {"greedy_bound": greedy.bound, "lp_bound": lp_bound},
        )
    highspy, h = model(True)
    h.setOptionValue("mip_lp_solver", "ipm")
    _warm_start(highspy, h, a, list(greedy.picks))
    h.run()
    x, value, bound, optimal = _result(highspy, h, True)
    picks = [j for j in range(c) if x is not None and x[j] > 0.5]
    if x is None or value < greedy.value - 1e-9:
        picks, value = list(greedy.picks), greedy.value
    order, gains = rank_picks(a, weight, picks)
    value = float(sum(gains))
    bound = max(min(bound, greedy.bound, lp_bound), value)
    gap = 0.0 if optimal else (bound - value) / bound if bound > 0 else 0.0
    return Solution(
        tuple(order),
        tuple(gains),
        value,
        bound,
        optimal or gap <= 1e-12,
        gap,
        "exact",
        time.perf_counter() - t0 + greedy.seconds,
        {"greedy_value": greedy.value, "greedy_bound": greedy.bound, "lp_bound": lp_bound},
    )


def solve_set_cover(
    a: sp.csr_matrix,
    weight: np.ndarray,
    need: float,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    method: str = "exact",
) -> Solution:
    """Set cover to a goal (LSCP): the fewest columns whose rows weigh at least ``need``.

    Raises :class:`InputError` when even every column together falls short (the message says
    how much they reach).
    """
    import scipy.sparse as sp

    coverable = float(np.asarray(weight)[np.diff(a.indptr) > 0].sum())
    if need <= _TOL:
        return Solution((), (), 0.0, 0.0, True, 0.0, "none needed", 0.0)
    if coverable + 1e-9 < need:
        raise GoalUnreachableError(coverable, need)
    t0 = time.perf_counter()
    # greedy: pick until the need is met
    g = greedy_max_cover(a, weight, a.shape[1], with_bound=False)
    cum = np.cumsum(g.gains)
    n_greedy = int(np.searchsorted(cum, need - 1e-9)) + 1
    greedy_picks = list(g.picks[:n_greedy])
    if method == "greedy":
        order, gains = rank_picks(a, weight, greedy_picks)
        return Solution(
            tuple(order),
            tuple(gains),
            float(sum(gains)),
            float("nan"),
            False,
            float("nan"),
            "greedy",
            time.perf_counter() - t0,
        )
    r, c = a.shape
    highspy, h = _new_highs(time_limit_s)
    cons = sp.vstack(
        [
            _cover_constraints(a),
            sp.hstack([sp.csr_matrix((1, c)), sp.csr_matrix(np.asarray(weight)[None, :])]),
        ]
    ).tocsc()
    _pass_model(
        highspy,
        h,
        cost=np.concatenate([np.ones(c), np.zeros(r)]),
        lower=np.zeros(c + r),
        upper=np.ones(c + r),
        integer=np.concatenate([np.ones(c, bool), np.zeros(r, bool)]),
        a_csc=cons,
        row_lower=np.concatenate([np.full(r, -highspy.kHighsInf), [need - 1e-7]]),
        row_upper=np.concatenate([np.zeros(r), [highspy.kHighsInf]]),
        maximize=False,
    )
    _warm_start(highspy, h, a, greedy_picks)
    h.run()
    x, _count, bound, optimal = _result(highspy, h, False)
    picks = [j for j in range(c) if x is not None and x[j] > 0.5]
    if x is None or len(picks) > len(greedy_picks):
        picks = greedy_picks
    order, gains = rank_picks(a, weight, picks)
    n = len(order)
    lower = max(0.0, np.ceil(bound - 1e-6)) if np.isfinite(bound) else 0.0
    optimal = optimal or n <= lower
    gap = 0.0 if optimal else (n - lower) / n
    return Solution(
        tuple(order),
        tuple(gains),
        float(sum(gains)),
        float(lower),
        optimal,
        gap,
        "exact",
        time.perf_counter() - t0,
        {"greedy_count": len(greedy_picks)},
    )


class GoalUnreachableError(InputError):
    """A coverage goal that no choice of candidates can reach."""

    def __init__(
        self,
        coverable: float,
        need: float,
        *,
        share: float | None = None,
        goal: float | None = None,
    ) -> None:
        self.coverable = coverable
        self.need = need
        reach = ""
        if share is not None and goal is not None:
            reach = f" (every candidate together reaches {share:.1%}, the goal is {goal:.0%})"
        super().__init__(
            f"the goal cannot be reached{reach}: all candidates together cover "
            f"{coverable:,.0f} more residents, {need:,.0f} are needed; the rest live beyond the "
            "tier's distance of every candidate — add candidates (--candidates, a smaller "
            "spacing) or lower the goal"
        )


def solve_capacitated(
    matrix: sp.csr_matrix,
    population: np.ndarray,
    existing: sp.csr_matrix,
    k: int,
    capacity: float,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> Solution:
    """Capacitated MCLP: ``k`` new facilities, each existing and new one serving at most
    ``capacity`` residents, every resident assigned only within the tier's distance.

    ``matrix``: demand × candidates within distance; ``existing``: demand × existing facilities
    within distance. Residents may be split between facilities (fractional assignment). The
    value counts all served residents (existing included); ``extra["served_before"]`` is what
    the existing facilities alone can serve under the capacity.
    """
    import scipy.sparse as sp

    if capacity <= 0:
        raise InputError(f"capacity must be a positive number of residents; got {capacity}")
    if k <= 0:
        raise InputError(f"the number of new facilities must be at least 1; got {k}")
    t0 = time.perf_counter()
    pop = np.asarray(population, dtype=float)
    both = sp.hstack([(existing > 0), (matrix > 0)]).tocsr().astype(bool)
    reach = np.flatnonzero(np.diff(both.indptr) > 0)
    sub = both[reach].tocoo()
    w = pop[reach]
    n_exist = existing.shape[1]
    n_cand = matrix.shape[1]
    n_fac = n_exist + n_cand
    pairs_i, pairs_j = sub.row, sub.col
    p = len(pairs_i)

    def solve(k_new: int) -> tuple[np.ndarray | None, float, float, bool]:
        highspy, h = _new_highs(time_limit_s)
        # columns: x (n_cand new, binary) then z (p pairs, fraction of row i served by j)
        rows_assign = sp.csr_matrix((np.ones(p), (pairs_i, np.arange(p))), shape=(len(w), p))
        cap = sp.csr_matrix((w[pairs_i], (pairs_j, np.arange(p))), shape=(n_fac, p))
        x_cap = sp.vstack(
            [sp.csr_matrix((n_exist, n_cand)), -capacity * sp.identity(n_cand, format="csr")]
        )
        top = sp.hstack([sp.csr_matrix((len(w), n_cand)), rows_assign])
        mid = sp.hstack([x_cap, cap])
        budget = sp.hstack([sp.csr_matrix(np.ones((1, n_cand))), sp.csr_matrix((1, p))])
        cons = sp.vstack([top, mid, budget]).tocsc()
        cap_upper = np.concatenate([np.full(n_exist, capacity), np.zeros(n_cand)])
        _pass_model(
            highspy,
            h,
            cost=np.concatenate([np.zeros(n_cand), w[pairs_i]]),
            lower=np.zeros(n_cand + p),
            upper=np.ones(n_cand + p),
            integer=np.concatenate([np.ones(n_cand, bool), np.zeros(p, bool)]),
            a_csc=cons,
            row_lower=np.full(len(w) + n_fac + 1, -highspy.kHighsInf),
            row_upper=np.concatenate([np.ones(len(w)), cap_upper, [float(k_new)]]),
            maximize=True,
        )
        h.run()
        return _result(highspy, h, True)

    _, before, _, _ = solve(0)
    x, value, bound, optimal = solve(k)
    if x is None:  # pragma: no cover - the model always has the all-zero solution
        raise InputError("the capacitated plan has no solution; check the capacity")
    picks = [j for j in range(n_cand) if x[j] > 0.5]
    served = np.zeros(n_fac)
    np.add.at(served, pairs_j, w[pairs_i] * x[n_cand:])
    order = sorted(picks, key=lambda j: (-served[n_exist + j], j))
    gains = [float(served[n_exist + j]) for j in order]
    gap = 0.0 if optimal else (bound - value) / bound if bound > 0 else 0.0
    return Solution(
        tuple(order),
        tuple(gains),
        float(value),
        float(max(bound, value)),
        optimal,
        gap,
        "exact (capacitated)",
        time.perf_counter() - t0,
        {
            "served_before": float(before),
            "served_by_existing": served[:n_exist].tolist(),
            "capacity": capacity,
        },
    )
