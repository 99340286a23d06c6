"""Siting speed: servicecircle versus spopt, on the full coverage matrix and on the reduced one.

    python benchmarks/bench_siting.py                  # 2,000 candidates × 50,000 demand, K = 20
    python benchmarks/bench_siting.py --no-spopt       # servicecircle only
    python benchmarks/bench_siting.py --no-spopt-full  # spopt on the reduced matrix only
    python benchmarks/bench_siting.py --no-spopt-reduced --spopt-full-limit-s 1800

On a seeded 100 k-node street lattice with the 5-minute tier (300 m), it builds the sparse
coverage matrix (batched limited Dijkstra), reduces it (``reduce_problem``: identical rows
merged, useless and dominated candidates dropped, covered demand removed), then solves the
maximal covering problem on the reduced matrix exactly (HiGHS, warm-started from greedy) and
greedily. spopt's MCLP (PuLP + CBC, the default) gets, as a dense cost matrix:

* the full matrix (what a user of spopt would hand it), and
* the same reduced matrix ours solves (``red.a``, ``red.weight``, same K), so that the
  solvers are compared on the same model and spopt is not charged for a reduction it never
  got to do.

Each spopt run happens in a subprocess with a wall-clock budget for build + solve
(``--spopt-full-limit-s``, ``--spopt-reduced-limit-s``); a run that does not finish is
reported as such, and the ratios then become lower bounds. CBC gets the same time limit as
HiGHS (``--time-limit-s``, wall clock). For each spopt run it prints model build time (dense
cost matrix + ``MCLP.from_cost_matrix``), solve time (``MCLP.solve``: MPS write + CBC +
read back; spopt's own result tables are not built), the status (PuLP's status and solution
status, and CBC's result line: optimal, or stopped at the limit), the objective, the coverage
of spopt's picks and ours. Targets: ≥ 10× faster than spopt end to end, proven optimal within
60 s, greedy under 1 s. Asserts nothing (these machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lattice import lattice_network

from servicecircle.siting import (
    coverage_matrix,
    greedy_max_cover,
    reduce_problem,
    solve_max_cover,
)

_IMPORT_LIMIT_S = 300.0  # time for the worker to import spopt and load the matrix (not charged)


def _emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def _spopt_worker(job_dir: Path) -> None:
    """Build and solve spopt's MCLP on the matrix in ``job_dir``; report JSON lines."""
    import warnings

    warnings.filterwarnings("ignore")
    import pulp
    import scipy.sparse as sp
    from spopt.locate import MCLP

    job = json.loads((job_dir / "job.json").read_text())
    a = sp.load_npz(job_dir / "a.npz").tocsr()
    weight = np.load(job_dir / "weight.npy")
    _emit(event="ready")
    t = time.perf_counter()
    dense = a.toarray()
    cost = np.where(dense > 0, dense, 1e9)
    del dense
    model = MCLP.from_cost_matrix(cost, weight, job["radius"], job["k"])
    del cost
    _emit(event="built", seconds=time.perf_counter() - t)
    log_path = job_dir / "cbc.log"
    solver = pulp.PULP_CBC_CMD(
        msg=False, timeLimit=job["time_limit_s"], timeMode="elapsed", logPath=str(log_path)
    )
    error = None
    t = time.perf_counter()
    try:
        model.solve(solver, results=False)
    except RuntimeError as exc:  # spopt raises when PuLP's status is not 1
        error = str(exc)
    t_solve = time.perf_counter() - t
    cbc: dict[str, str] = {}
    if log_path.exists():
        for line in log_path.read_text(errors="replace").splitlines():
            for key in ("Result", "Objective value", "Lower bound", "Upper bound", "Gap"):
                if line.startswith(key) and key not in cbc:
                    cbc[key] = line.split(":", 1)[-1].strip(" -") if ":" in line else line
    picks = [j for j, v in enumerate(model.fac_vars) if (v.value() or 0.0) > 0.5]
    objective = pulp.value(model.problem.objective)
    _emit(
        event="solved",
        seconds=t_solve,
        status=pulp.LpStatus[model.problem.status],
        sol_status=pulp.LpSolution[model.problem.sol_status],
        optimal=model.problem.sol_status == pulp.LpSolutionOptimal,
        cbc=cbc,
        error=error,
        objective=None if objective is None else float(objective),
        picks=picks,
    )


def run_spopt(
    a: Any, weight: np.ndarray, *, k: int, radius: float, time_limit_s: float, budget_s: float
) -> dict[str, Any]:
    """spopt's MCLP on ``a`` in a subprocess; build + solve get ``budget_s`` of wall clock."""
    import scipy.sparse as sp

    out: dict[str, Any] = {"finished": False}
    with tempfile.TemporaryDirectory(prefix="bench_siting_") as tmp:
        job_dir = Path(tmp)
        sp.save_npz(job_dir / "a.npz", sp.csr_matrix(a, dtype="float64"))
        np.save(job_dir / "weight.npy", np.asarray(weight, dtype="float64"))
        (job_dir / "job.json").write_text(
            json.dumps({"k": k, "radius": radius, "time_limit_s": time_limit_s})
        )
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--spopt-worker", str(job_dir)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # CBC runs as its child: the whole group is stopped
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + _IMPORT_LIMIT_S
        try:
            while True:
                try:
                    line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if line is None:
                    break
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                if event["event"] == "ready":
                    deadline = time.monotonic() + budget_s
                elif event["event"] == "built":
                    out["build_s"] = event["seconds"]
                elif event["event"] == "solved":
                    out.update(event)
                    out["finished"] = True
                    break
        finally:
            if proc.poll() is None and not out["finished"]:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out


def _covers(a: Any, weight: np.ndarray, picks: list[int]) -> float:
    if not picks:
        return 0.0
    return float(weight[a[:, picks].getnnz(axis=1) > 0].sum())


def _pct(text: str) -> str:
    try:
        return f"{float(text):.2%}"
    except ValueError:
        return text


def _status(run: dict[str, Any], time_limit_s: float) -> str:
    cbc = run.get("cbc", {})
    verdict = (
        "optimal"
        if run["optimal"]
        else f"NOT proven optimal within the {time_limit_s:g} s limit"
        + (f" (CBC gap {_pct(cbc['Gap'])})" if "Gap" in cbc else "")
    )
    text = (
        f"{verdict} (PuLP: {run['status']}, solution: {run['sol_status']}; "
        f"CBC: {cbc.get('Result', 'no result line')})"
    )
    return text + (f"; spopt: {run['error']}" if run.get("error") else "")


def report_spopt(
    label: str,
    run: dict[str, Any],
    a: Any,
    weight: np.ndarray,
    *,
    budget_s: float,
    time_limit_s: float,
    charged_s: float,
    charged_what: str,
    ours_total: float,
    t_exact: float,
    ours_value: float,
    ours_status: str,
) -> None:
    if not run["finished"]:
        phase = "solve" if "build_s" in run else "build"
        built = f"build {run['build_s']:.2f} s, " if "build_s" in run else ""
        print(
            f"spopt MCLP (PuLP + CBC) on the {label}: {built}{phase} not finished within "
            f"{budget_s:g} s (budget for build + solve); stopped"
        )
        lower = charged_s + budget_s
        print(
            f"spopt end to end ({charged_what} + build + solve): > {lower:.2f} s → servicecircle "
            f"is > {lower / ours_total:.1f}× faster (lower bound)"
        )
        return
    value = _covers(a, weight, run["picks"])
    objective = "none" if run["objective"] is None else f"{run['objective']:,.0f}"
    print(
        f"spopt MCLP (PuLP + CBC) on the {label}: build {run['build_s']:.2f} s, solve "
        f"{run['seconds']:.2f} s, covers {value:,.0f}"
    )
    print(f"  status: {_status(run, time_limit_s)}")
    print(
        f"  objective {objective} (PuLP); servicecircle on the reduced matrix covers "
        f"{ours_value:,.0f}, {ours_status} (ours − spopt {ours_value - value:+,.0f})"
    )
    spopt_total = charged_s + run["build_s"] + run["seconds"]
    print(
        f"spopt end to end ({charged_what} + build + solve): {spopt_total:.2f} s → servicecircle "
        f"is {spopt_total / ours_total:.1f}× faster; solve alone {run['seconds'] / t_exact:.1f}×"
    )


def _shape(a: Any) -> str:
    r, c = a.shape
    return f"{r:,} rows × {c:,} columns, {a.nnz:,} nonzeros, {r * c / 1e6:,.1f} M dense cells"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--demand", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--target-m", type=float, default=300.0)
    parser.add_argument(
        "--extent-km",
        type=float,
        default=5.0,
        help="demand and candidates lie in a square of this side (a district)",
    )
    parser.add_argument(
        "--time-limit-s", type=float, default=60.0, help="solver time limit, HiGHS and CBC"
    )
    parser.add_argument("--no-spopt", action="store_true")
    parser.add_argument(
        "--no-spopt-full", action="store_true", help="skip spopt on the full matrix"
    )
    parser.add_argument(
        "--no-spopt-reduced", action="store_true", help="skip spopt on the reduced matrix"
    )
    parser.add_argument(
        "--spopt-full-limit-s",
        type=float,
        default=120.0,
        help="wall-clock budget for spopt's build + solve on the full matrix",
    )
    parser.add_argument(
        "--spopt-reduced-limit-s",
        type=float,
        default=1800.0,
        help="wall-clock budget for spopt's build + solve on the reduced matrix",
    )
    parser.add_argument("--spopt-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spopt_worker is not None:
        _spopt_worker(args.spopt_worker)
        return

    net = lattice_network(100_000, seed=4)
    rng = np.random.default_rng(7)
    centre = net.node_xy.mean(axis=0)
    half = args.extent_km * 500.0

    def district(n: int) -> np.ndarray:
        return rng.uniform(centre - half, centre + half, size=(n, 2))

    dem = net.snap(district(args.demand))
    cand = net.snap(district(args.candidates))
    pop = rng.integers(1, 200, args.demand).astype(float)
    print(
        f"lattice {net.n_nodes:,} nodes; {args.candidates:,} candidates × {args.demand:,} "
        f"demand points in a {args.extent_km:g} km square; K = {args.k}; tier {args.target_m:.0f} m"
    )

    t = time.perf_counter()
    matrix = coverage_matrix(net, dem, cand, target_m=args.target_m)
    t_matrix = time.perf_counter() - t
    t = time.perf_counter()
    red = reduce_problem(matrix, pop, np.zeros(len(pop), dtype=bool))
    t_reduce = time.perf_counter() - t
    print(
        f"matrix: {t_matrix:.2f} s ({matrix.nnz:,} pairs within {args.target_m:.0f} m); "
        f"reduce: {t_reduce:.2f} s → {red.a.shape[0]:,} rows × {red.a.shape[1]:,} columns"
    )
    print(f"instances: full matrix {_shape(matrix)}; reduced {_shape(red.a)}")
    t = time.perf_counter()
    greedy = greedy_max_cover(red.a, red.weight, args.k)
    t_greedy = time.perf_counter() - t
    t = time.perf_counter()
    exact = solve_max_cover(red.a, red.weight, args.k, time_limit_s=args.time_limit_s)
    t_exact = time.perf_counter() - t
    ours_total = t_matrix + t_reduce + t_exact
    print(
        f"greedy: {t_greedy:.3f} s, covers {greedy.value:,.0f} (bound {greedy.bound:,.0f}, "
        f"gap {greedy.gap:.2%})"
    )
    print(
        f"exact (HiGHS) on the reduced matrix: {t_exact:.2f} s, covers {exact.value:,.0f}, "
        f"{'proven optimal' if exact.optimal else f'gap {exact.gap:.2%}'} ({exact.method}; "
        f"limit {args.time_limit_s:g} s)"
    )
    print(f"servicecircle end to end (matrix + reduce + exact): {ours_total:.2f} s")
    if args.no_spopt:
        return
    try:
        import pulp  # noqa: F401
        import spopt.locate  # noqa: F401
    except ImportError:
        print("spopt is not installed (pip install -e '.[test]'); skipping the comparison")
        return
    common = {
        "time_limit_s": args.time_limit_s,
        "ours_total": ours_total,
        "t_exact": t_exact,
        "ours_value": exact.value,
        "ours_status": "proven optimal" if exact.optimal else f"gap {exact.gap:.2%}",
    }
    if args.no_spopt_full:
        print("spopt on the full matrix: skipped (--no-spopt-full)")
    else:
        run = run_spopt(
            matrix,
            pop,
            k=args.k,
            radius=args.target_m,
            time_limit_s=args.time_limit_s,
            budget_s=args.spopt_full_limit_s,
        )
        report_spopt(
            "same (full) matrix",
            run,
            matrix,
            pop,
            budget_s=args.spopt_full_limit_s,
            charged_s=t_matrix,
            charged_what="same matrix",
            **common,
        )
    if args.no_spopt_reduced:
        print("spopt on the reduced matrix: skipped (--no-spopt-reduced)")
        return
    run = run_spopt(
        red.a,
        red.weight,
        k=args.k,
        radius=args.target_m,
        time_limit_s=args.time_limit_s,
        budget_s=args.spopt_reduced_limit_s,
    )
    report_spopt(
        "same reduced matrix",
        run,
        red.a,
        red.weight,
        budget_s=args.spopt_reduced_limit_s,
        charged_s=t_matrix + t_reduce,
        charged_what="same matrix + reduce",
        **common,
    )


if __name__ == "__main__":
    main()
