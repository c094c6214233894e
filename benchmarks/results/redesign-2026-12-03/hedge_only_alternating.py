"""gh.hedge alone, 1e5 x 252 GBM paths on NumPy, best and median of 7 after a warm call.

Run from the tree to measure, alternating trees (``PYTHONPATH=<worktree> python hedge_only_alternating.py``);
``prof`` as argument profiles one call instead (run with GPU_HEDGE_NUM_THREADS=1 so the work is on the
profiled thread)."""

import sys
import time

import numpy as np

import gpu_hedge as gh

paths = gh.simulate(gh.GBM(100.0, 0.2), n_paths=100000, n_steps=252, horizon=1.0, seed=1, backend="numpy")
spot, times = np.asarray(paths.spot), np.asarray(paths.times)
opt = gh.Option(100.0, 1.0, quantity=-1)


def go() -> gh.HedgeResult:
    return gh.hedge(spot, times, opt, vol=0.2, strategy=gh.Periodic(), costs=gh.Costs(proportional=1e-3), backend="numpy")


go()
if len(sys.argv) > 1 and sys.argv[1] == "prof":
    import cProfile
    import pstats

    cProfile.run("go()", "/tmp/hedge_only.prof")
    pstats.Stats("/tmp/hedge_only.prof").sort_stats("tottime").print_stats(18)
else:
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        go()
        ts.append(time.perf_counter() - t0)
    print(gh.__file__, f"best {min(ts):.4f} med {sorted(ts)[3]:.4f}")
