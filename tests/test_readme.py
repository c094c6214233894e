"""README's promises: its test command is what CI runs, and its API tour runs."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest

import gpu_hedge

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, flags=re.S)]


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = bash_blocks()[:2]
    assert "pip install" in demo and demo.endswith("gpu-hedge demo")
    assert "pip install" in tests and "pytest" in tests
    assert README.index(demo) < 1200  # at the very top


def test_ci_runs_both_readme_commands_in_order_and_ends_with_the_tests():
    """What a newcomer does: the demo command, then the test command, verbatim, in the same clone, with
    nothing between them that cleans up (no ``rm -rf .venv``, no fresh clone)."""
    demo, tests = bash_blocks()[:2]
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().strip().splitlines()]
    assert lines[-1] == tests
    assert lines.count(demo) == 1 and lines.count(tests) == 1
    between = lines[lines.index(demo) + 1 : -1]
    assert lines.index(demo) < len(lines) - 1
    assert not any(word in line for line in between for word in ("rm ", "git clone", "git clean", "pip uninstall"))
    assert "gpu-hedge backends" in " ".join(between)  # the regular install, used from another directory


def test_api_tour_runs(bk, monkeypatch):
    monkeypatch.setenv("GPU_HEDGE_BACKEND", bk)
    code = re.findall(r"```python\n(.*?)```", README, flags=re.S)[0]
    if "jax" not in gpu_hedge.available_backends():
        code = code.replace('backend="jax", method="autodiff"', 'backend="numpy"')
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert np.isnan(gpu_hedge.to_numpy(ns["gh"].greeks(ns["spot"], 100.0, 0.5, [0.2, -0.1, 0.3], on_invalid="nan")["price"])[1])


@pytest.mark.parametrize("module", ["gpu_hedge._pricing.api", "gpu_hedge._pricing.implied_vol"])
def test_docstring_examples(module):
    mod = __import__(module, fromlist=["_"])
    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def _block(marker: str) -> str:
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", README, flags=re.S) if marker in c]
    return "import gpu_hedge as gh\n" + code


def test_market_maker_example_says_what_it_prints():
    ns: dict = {}
    exec(compile(_block("gh.rebalance("), "README.md", "exec"), ns)
    assert float(ns["trades"]) == -500.0 and float(ns["cost"]) == 50.0


def test_backtest_example_runs_on_the_shipped_series():
    ns: dict = {}
    exec(compile(_block("gh.load_wti()"), "README.md", "exec"), ns)
    res = ns["res"]
    assert res.n_paths == 1 and res.ledger(0)["pnl"].iloc[-1] == pytest.approx(float(res.pnl[0]), rel=1e-12)


def test_american_example_says_what_it_prints():
    ns: dict = {}
    exec(compile(_block('exercise="american"'), "README.md", "exec"), ns)
    gh = ns["gh"]
    assert float(ns["call"]) == pytest.approx(float(gh.price(100.0, 100.0, 1.0, 0.25, 0.05, 0.0, call=True)), rel=1e-14)
    am, eu = (float(x) for x in gh.to_numpy(ns["both"]))
    assert (round(am, 3), round(eu, 3)) == (7.974, 7.459) and eu == pytest.approx(float(gh.price(100.0, 100.0, 1.0, 0.25, 0.05, call=False)))
    assert round(float(ns["vol"]), 4) == 0.2242 and int(ns["st"]) == int(gh.IVStatus.OK)
    assert float(gh.price(100.0, 100.0, 1.0, float(ns["vol"]), 0.05, call=False, exercise="american")) == pytest.approx(7.0, rel=1e-10)
    g = ns["g"]
    assert float(gh.to_numpy(g["price"])[0]) >= 10.0 and -1.0 <= float(gh.to_numpy(g["delta"])[0]) <= 0.0
