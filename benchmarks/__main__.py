"""``python -m benchmarks``: run every benchmark in turn, print one summary table, write ``suite-<device>.json``.

    python -m benchmarks                      # full sizes (book_job at 1e7 takes minutes)
    python -m benchmarks --quick              # small sizes, about 2 minutes on 2 cores -> benchmarks/results/quick/
    python -m benchmarks --only greeks,hedging --backends numpy
    python -m benchmarks --skip book_job --out-dir /tmp/bench
    python -m benchmarks --quick --dry-run    # print the command line each benchmark gets

Run from the repository root. Options, the command lines per benchmark and the JSON layout are
described in ``benchmarks/suite.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts import _common etc. as top-level modules
from suite import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
