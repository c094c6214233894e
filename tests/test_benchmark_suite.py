"""The benchmark suite (``python -m benchmarks``): a real quick run, failure handling, and extraction from real outputs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))
import suite  # noqa: E402


def _out_arg(argv: list[str]) -> Path:
    return Path(argv[argv.index("--out") + 1])


def test_quick_run_greeks_and_simulation(tmp_path: Path) -> None:
    """The real thing on small sizes: both benchmarks run, their JSON is read back, the combined JSON holds real figures."""
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--only", "greeks,simulation", "--out-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    combined = list(tmp_path.glob("suite-*.json"))
    assert len(combined) == 1
    data = json.loads(combined[0].read_text())
    assert data["device"] == combined[0].stem.removeprefix("suite-")
    assert data["failed"] == [] and data["settings"]["mode"] == "quick"
    assert {"machine", "versions", "date", "command"} <= set(data)
    assert set(data["benchmarks"]) == {"greeks", "simulation"}
    for name, rec in data["benchmarks"].items():
        assert rec["status"] == "ok" and rec["return_code"] == 0, rec
        assert Path(rec["json"]).is_file() and Path(rec["json"]).parent == tmp_path
        assert json.loads(Path(rec["json"]).read_text())["benchmark"] == name
        assert rec["rows"], name
        for row in rec["rows"]:
            assert row["ours"]["throughput"] > 0
            assert row["ours"]["implementation"].startswith("gpu_hedge")

    greeks = data["benchmarks"]["greeks"]
    assert "--sizes 1e5" in greeks["command"]
    (row,) = greeks["rows"]
    assert row["size"] == 100_000 and row["unit"] == "options/s"
    (peer,) = row["peers"]
    assert peer["implementation"] == "plain numpy+scipy" and peer["throughput"] > 0
    assert peer["ratio"] == pytest.approx(row["ours"]["throughput"] / peer["throughput"])
    assert 0 <= row["ours"]["accuracy"] < 1e-9  # max rel diff vs the plain peer

    sim = data["benchmarks"]["simulation"]
    assert {r["case"].split(",")[0] for r in sim["rows"]} == {"GBM", "Heston QE", "Heston Euler", "Merton"}
    assert all(r["size"] == 10_000 * 64 for r in sim["rows"])
    # one row per model and dtype, its peers beside it: the plain NumPy loop (GBM, Heston full-truncation Euler,
    # Merton) and pfhedge (GBM, Heston QE, Merton) where torch and pfhedge are installed
    sim_json = json.loads(Path(sim["json"]).read_text())
    has_pfhedge = importlib.util.find_spec("pfhedge") is not None and importlib.util.find_spec("torch") is not None
    expected = {"GBM": {"plain", "pfhedge"}, "Heston QE": {"pfhedge"}, "Heston Euler": {"plain"}, "Merton": {"plain", "pfhedge"}}
    assert len(sim["rows"]) == 4 * 2
    for row in sim["rows"]:
        model, dtype = (s.strip() for s in row["case"].split(",")[:2])
        assert dtype in ("float64", "float32") and row["ours"]["implementation"].endswith(dtype)
        kinds = {"plain" if p["implementation"].startswith("plain numpy") else "pfhedge" for p in row["peers"]}
        assert kinds == (expected[model] if has_pfhedge else expected[model] - {"pfhedge"}), row
        for p in row["peers"]:
            assert p["throughput"] > 0 and p["ratio"] > 0
            assert p["ratio"] == pytest.approx(row["ours"]["throughput"] / p["throughput"])
            (rec,) = [r for r in sim_json["peers"] if r["model"] == model and r["dtype"] == dtype
                      and p["implementation"] == f"{r['label']} {dtype}"]  # fmt: skip
            assert rec["ratio_ours_over_peer_median"] == pytest.approx(p["ratio"])  # the script's ratio (medians) is the suite's
            # the terminal-spot check against E[S_T] = S0 exp((r - q) T): a wrong drift or rate convention is 2-3 % off
            assert rec["check"]["ok"] and p["accuracy"] < 0.015, rec["check"]
            if p["implementation"].startswith("pfhedge"):  # it materialises (paths, steps + 1): >= 2.5 MB in float32
                assert p["peak_mb"] > 1.0
        assert row["ours"]["accuracy"] < 0.015
    if has_pfhedge:
        assert sim_json["settings"]["torch_threads"] >= 1
    assert "ours/peer" in proc.stdout and "FAILED" not in proc.stdout


def _fake_greeks_json(n: int = 1000) -> dict:
    return {
        "benchmark": "greeks",
        "results": [
            {"n": n, "implementation": "plain numpy+scipy", "options_per_s": 2e6, "peak_extra_mb": 1.0},
            {"n": n, "implementation": "gpu_hedge numpy", "options_per_s": 5e6, "max_rel_diff": {"price": 1e-15, "rho": 3e-14}},
        ],
    }


def test_failures_are_recorded_and_the_suite_goes_on(tmp_path: Path) -> None:
    ran: list[str] = []

    def ok(argv: list[str]) -> int:
        ran.append("ok")
        _out_arg(argv).write_text(json.dumps(_fake_greeks_json()))
        return 0

    def boom(argv: list[str]) -> int:
        ran.append("boom")
        raise RuntimeError("kernel exploded")

    def bad_rc(argv: list[str]) -> int:
        ran.append("bad_rc")
        return 3

    def silent(argv: list[str]) -> int:  # returns 0 but writes nothing; an old file at its path must not be read
        ran.append("silent")
        return 0

    def bad_args(argv: list[str]) -> int:
        import argparse

        ran.append("bad_args")
        argparse.ArgumentParser().parse_args(["--no-such-flag"])
        return 0

    mk = lambda name, fn: suite.Benchmark(name, name, ("--tiny",), (), suite.extract_greeks, entry=fn)
    registry = {b.name: b for b in (mk("boom", boom), mk("bad_rc", bad_rc), mk("silent", silent), mk("bad_args", bad_args), mk("ok", ok))}
    stale = tmp_path / "silent-cpu.json"
    stale.write_text(json.dumps(_fake_greeks_json()))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    rc = suite.main(["--quick", "--backends", "numpy", "--out-dir", str(tmp_path)], registry=registry)
    assert rc != 0
    assert ran == ["boom", "bad_rc", "silent", "bad_args", "ok"]  # every benchmark ran despite the failures
    data = json.loads((tmp_path / "suite-cpu.json").read_text())
    recs = data["benchmarks"]
    assert sorted(data["failed"]) == ["bad_args", "bad_rc", "boom", "silent"]
    assert recs["boom"]["status"] == "failed" and "RuntimeError: kernel exploded" in recs["boom"]["error"]
    assert "kernel exploded" in recs["boom"]["traceback"]
    assert recs["bad_rc"]["return_code"] == 3 and recs["bad_rc"]["rows"] == []
    assert recs["silent"]["status"] == "failed" and "no JSON" in recs["silent"]["error"] and recs["silent"]["rows"] == []
    assert recs["bad_args"]["return_code"] == 2
    assert recs["ok"]["status"] == "ok" and recs["ok"]["argv"] == ["--tiny", "--backends", "numpy", "--out", str(tmp_path / "ok-cpu.json")]
    (row,) = recs["ok"]["rows"]
    assert row["ours"]["throughput"] == 5e6 and row["ours"]["accuracy"] == 3e-14
    assert row["peers"][0]["ratio"] == pytest.approx(2.5)


def test_all_ok_exits_zero_and_extraction_error_fails(tmp_path: Path) -> None:
    def ok(argv: list[str]) -> int:
        _out_arg(argv).write_text(json.dumps(_fake_greeks_json()))
        return 0

    def garbage(argv: list[str]) -> int:
        _out_arg(argv).write_text("{not json")
        return 0

    args = ["--out-dir", str(tmp_path), "--backends", "numpy"]
    assert suite.main(args, registry={"a": suite.Benchmark("a", "a", (), (), suite.extract_greeks, entry=ok)}) == 0
    assert json.loads((tmp_path / "suite-cpu.json").read_text())["failed"] == []
    assert suite.main(args, registry={"g": suite.Benchmark("g", "g", (), (), suite.extract_greeks, entry=garbage)}) == 1
    rec = json.loads((tmp_path / "suite-cpu.json").read_text())["benchmarks"]["g"]
    assert rec["status"] == "failed" and "JSONDecodeError" in rec["extract_error"]


def test_selection_and_dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert suite.main(["--quick", "--dry-run", "--skip", "book-job,hedging", "--backends", "numpy", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "greeks.py --sizes 1e5" in out and "simulation.py --paths 1e4" in out and "--backends numpy" in out
    assert "hedging" not in out and "book_job" not in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing
    with pytest.raises(SystemExit):
        suite.main(["--only", "nonsense", "--dry-run"])
    quick = {n: b.argv(True, None, Path("x.json")) for n, b in suite.BENCHMARKS.items()}
    assert "--quick" in quick["hedging"] and "--quick" in quick["book_job"]  # never a full-size run in quick mode


@pytest.mark.parametrize(
    ("name", "filename"),
    [("greeks", "greeks.json"), ("implied_vol", "implied_vol.json"), ("simulation", "simulation.json"),
     ("hedging", "hedging-cpu.json"), ("book_job", "book_job-cpu.json"),
     ("surface_fit", "surface-fit-2026-12-03/surface_fit-cpu.json")],
)  # fmt: skip
def test_extraction_on_recorded_results(name: str, filename: str) -> None:
    """Each extractor on the full-size JSON the scripts wrote into benchmarks/results/ (real outputs, with every peer)."""
    path = BENCH / "results" / filename
    if not path.is_file():
        pytest.skip(f"{path} not present")
    rows = suite.BENCHMARKS[name].extract(json.loads(path.read_text()))
    assert rows
    for row in rows:
        assert row["ours"]["throughput"] > 0
        for p in row["peers"]:
            if p["throughput"] is not None:
                assert p["ratio"] == pytest.approx(row["ours"]["throughput"] / p["throughput"])
    if name != "simulation":
        assert any(p["ratio"] for r in rows for p in r["peers"])
