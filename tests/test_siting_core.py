"""Siting models against brute force on tiny instances, and the greedy guarantee."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicecircle import InputError
from servicecircle.siting import (
    GoalUnreachableError,
    greedy_max_cover,
    reduce_problem,
    solve_capacitated,
    solve_max_cover,
    solve_set_cover,
)


def covered_weight(a: np.ndarray, w: np.ndarray, picks) -> float:
    if not picks:
        return 0.0
    return float(w[a[:, list(picks)].any(axis=1)].sum())


def brute_max_cover(a, w, k):
    best = 0.0
    for combo in itertools.combinations(range(a.shape[1]), min(k, a.shape[1])):
        best = max(best, covered_weight(a, w, combo))
    return best


@st.composite
def instances(draw):
    rows = draw(st.integers(1, 9))
    cols = draw(st.integers(1, 7))
    a = np.array(
        draw(
            st.lists(
                st.lists(st.booleans(), min_size=cols, max_size=cols), min_size=rows, max_size=rows
            )
        )
    )
    w = np.array(draw(st.lists(st.integers(0, 50), min_size=rows, max_size=rows)), float)
    k = draw(st.integers(1, cols))
    return a, w, k


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(instances())
def test_exact_mclp_equals_brute_force_and_greedy_keeps_its_guarantee(inst):
    a, w, k = inst
    m = sp.csr_matrix(a)
    opt = brute_max_cover(a, w, k)
    exact = solve_max_cover(m, w, k, method="exact")
    assert exact.value == pytest.approx(opt, abs=1e-6)
    assert exact.optimal and len(exact.picks) <= k
    assert covered_weight(a, w, exact.picks) == pytest.approx(exact.value)
    assert sum(exact.gains) == pytest.approx(exact.value)
    greedy = greedy_max_cover(m, w, k)
    assert greedy.value >= (1 - 1 / np.e) * opt - 1e-9
    assert greedy.bound >= opt - 1e-9  # the bound is a real upper bound
    assert covered_weight(a, w, greedy.picks) == pytest.approx(greedy.value)


@SETTINGS
@given(instances(), st.floats(0.05, 1.0))
def test_set_cover_reaches_the_goal_and_no_smaller_set_does(inst, share):
    a, w, _ = inst
    m = sp.csr_matrix(a)
    need = share * float(w.sum())
    coverable = float(w[a.any(axis=1)].sum())
    if coverable + 1e-9 < need:
        with pytest.raises(GoalUnreachableError, match="cannot be reached"):
            solve_set_cover(m, w, need)
        return
    sol = solve_set_cover(m, w, need)
    assert covered_weight(a, w, sol.picks) >= need - 1e-6
    n = len(sol.picks)
    for combo in itertools.combinations(range(a.shape[1]), max(n - 1, 0)):
        if n >= 1:
            assert covered_weight(a, w, combo) < need - 1e-7
    assert sol.optimal


def test_reduce_merges_rows_and_drops_useless_candidates():
    # rows 0 and 2 have the same set {1}; row 3 is already covered; column 2 covers only row 3
    a = sp.csr_matrix(np.array([[0, 1, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], float))
    red = reduce_problem(
        a,
        np.array([1.0, 2.0, 4.0, 8.0]),
        np.array([False, False, False, True]),
        drop_dominated=False,
    )
    assert red.columns.tolist() == [0, 1]
    assert sorted(red.weight.tolist()) == [2.0, 5.0]
    assert red.covered_before == 8 and red.total == 15
    assert red.row_of_demand[0] == red.row_of_demand[2] and red.row_of_demand[3] == -1


def test_dominated_candidates_are_dropped_without_changing_the_optimum():
    a = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]], float))
    w = np.array([5.0, 3.0, 1.0])
    red = reduce_problem(a, w, np.zeros(3, bool))
    # column 0 ⊂ column 1 = column 3 (the later copy goes)
    assert red.columns.tolist() == [1, 2]
    for k in (1, 2):
        assert solve_max_cover(red.a, red.weight, k).value == pytest.approx(
            brute_max_cover(a.toarray().astype(bool), w, k)
        )


@SETTINGS
@given(instances())
def test_reduction_keeps_the_optimum(inst):
    a, w, k = inst
    red = reduce_problem(sp.csr_matrix(a), w, np.zeros(len(w), bool))
    if red.a.shape[1] == 0:
        assert brute_max_cover(a, w, k) == 0
        return
    got = solve_max_cover(red.a, red.weight, min(k, red.a.shape[1])).value
    assert got == pytest.approx(brute_max_cover(a, w, k), abs=1e-6)


def test_greedy_optimal_by_bound_skips_the_solver():
    a = sp.csr_matrix(np.eye(3))
    sol = solve_max_cover(a, np.array([1.0, 2.0, 3.0]), 3)
    assert sol.method == "greedy (optimal by bound)" and sol.optimal
    assert list(sol.picks) == [2, 1, 0] and sol.gains == (3.0, 2.0, 1.0)


def test_capacity_limits_what_one_facility_serves():
    # three rows of 100 within reach of one existing facility (capacity 150) and of candidate 0
    matrix = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 1]], float))
    existing = sp.csr_matrix(np.array([[1], [1], [0]], float))
    pop = np.array([100.0, 100.0, 100.0])
    sol = solve_capacitated(matrix, pop, existing, 1, 150)
    assert sol.extra["served_before"] == pytest.approx(150)
    assert sol.value == pytest.approx(300)  # existing 150 + one new 150
    assert sol.optimal and len(sol.picks) == 1
    with pytest.raises(InputError, match="capacity must be a positive"):
        solve_capacitated(matrix, pop, existing, 1, 0)


def test_bad_k():
    a = sp.csr_matrix(np.eye(2))
    with pytest.raises(InputError, match="at least 1"):
        solve_max_cover(a, np.ones(2), 0)


def test_deterministic():
    rng = np.random.default_rng(3)
    a = sp.csr_matrix(rng.random((300, 40)) < 0.08)
    w = rng.integers(1, 100, 300).astype(float)
    runs = [solve_max_cover(a, w, 6) for _ in range(3)]
    assert len({r.picks for r in runs}) == 1


def test_milp_beats_greedy_where_greedy_is_not_optimal():
    # S0 = {a,b,c,d}, S1 = {a,b,e,f}, S2 = {c,d,g,h}; K = 2: greedy takes S0 (6 in all),
    # the optimum is S1 + S2 (8)
    a = np.zeros((8, 3), bool)
    a[[0, 1, 2, 3], 0] = True
    a[[0, 1, 4, 5], 1] = True
    a[[2, 3, 6, 7], 2] = True
    m, w = sp.csr_matrix(a), np.ones(8)
    assert greedy_max_cover(m, w, 2).value == 6
    sol = solve_max_cover(m, w, 2)
    assert sol.method == "exact" and sol.value == 8 and sol.optimal
    assert sorted(sol.picks) == [1, 2]
