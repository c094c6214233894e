"""The gpu-hedge command's errors: ``backends`` never fails on a backend that cannot start, an error a
user can cause is one line on stderr and a non-zero exit, and ``--debug`` shows the traceback."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

import gpu_hedge.cli as cli
from gpu_hedge.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.setitem(cli._STATE, "debug", False)


def _run(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """The console script's entry point, as the installed ``gpu-hedge`` calls it."""
    monkeypatch.setattr(sys, "argv", ["gpu-hedge", *argv])
    with pytest.raises(SystemExit) as exit_:
        cli.run()
    out = capsys.readouterr()
    code = exit_.value.code
    return (0 if code is None else int(code)), out.out, out.err


def test_backends_lists_a_backend_that_fails_to_start_as_unusable(monkeypatch):
    real = cli.get_backend

    def flaky(name="auto"):
        if name == "jax":
            raise RuntimeError("XLA could not initialise (simulated)")
        return real(name)

    monkeypatch.setattr(cli, "get_backend", flaky)
    result = runner.invoke(app, ["backends"], terminal_width=200)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("│ jax")]
    assert "no" in row and "RuntimeError: XLA could not initialise (simulated)" in row
    assert '"auto" picks: numpy' in result.output
    assert "compiled CPU kernels cached in:" in result.output


def test_backends_with_a_bad_backend_setting_says_so_in_one_line(monkeypatch):
    monkeypatch.setenv("GPU_HEDGE_BACKEND", "tpu")
    result = runner.invoke(app, ["backends"], terminal_width=200)
    assert result.exit_code == 1
    assert "│ numpy" in result.output  # the table is still printed first
    assert "GPU_HEDGE_BACKEND='tpu' is not a backend" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unexpected_error_is_one_line_and_exit_1(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise KeyError("strike")

    monkeypatch.setattr(cli, "get_backend", boom)  # demo calls it first
    code, out, err = _run(monkeypatch, capsys, "demo", "--n", "10")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: KeyError: 'strike'") and "--debug" in lines[0]
    assert "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise KeyError("strike")

    monkeypatch.setattr(cli, "get_backend", boom)
    monkeypatch.setattr(sys, "argv", ["gpu-hedge", "--debug", "demo", "--n", "10"])
    with pytest.raises(KeyError, match="strike"):
        cli.run()


def test_debug_on_a_reported_error_prints_its_traceback_then_the_line(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "prices.csv"
    bad.write_text("a,b\n1,2\n")
    code, out, err = _run(monkeypatch, capsys, "--debug", "backtest", str(bad), "--expiry-days", "30", "--column", "zz")
    assert code == 2
    assert "Traceback" in err
    assert err.strip().splitlines()[-1] == "error: price column 'zz' not found; the file has columns ['a', 'b']"


@pytest.mark.parametrize(
    "argv, names",
    [
        (["risk", "{tmp}/nope.parquet", "--market", "{tmp}/market.csv", "--out", "{tmp}/out"], "nope.parquet"),
        (["risk", "{tmp}/garbage.parquet", "--market", "{tmp}/market.csv", "--out", "{tmp}/out"], "garbage.parquet"),
        (["risk", "{tmp}/wrong.csv", "--market", "{tmp}/market.csv", "--out", "{tmp}/out"], "missing column"),
        (["risk", "{tmp}/wrong.csv", "--market", "{tmp}/wrong.csv", "--out", "{tmp}/out"], "market data"),
        (["risk", "{tmp}/wrong.csv", "--market", "{tmp}/market.csv", "--out", "{tmp}/out", "--backend", "tpu"], "unknown backend"),
        (["risk", "{tmp}/wrong.csv", "--market", "{tmp}/market.csv", "--out", "{tmp}/out", "--scenarios", "spot=x"], "scenario"),
        (["quotes", "{tmp}/wrong.csv"], "unrecognised quote file layout"),
        (["quotes", "{tmp}/nope.csv"], "nope.csv"),
        (["backtest", "{tmp}/nope.csv", "--expiry-days", "30"], "nope.csv"),
        (["simulate-hedge", "--model", "sabr"], "--model 'sabr'"),
        (["demo", "--dtype", "float16"], "--dtype 'float16'"),
    ],
)
def test_user_errors_are_one_clear_line(monkeypatch, capsys, tmp_path, argv, names):
    (tmp_path / "garbage.parquet").write_bytes(b"not a parquet file at all")
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    (tmp_path / "market.csv").write_text("underlying,spot,vol,rate,div\nXYZ,100,0.2,0.01,0\n")
    code, out, err = _run(monkeypatch, capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and names in lines[0], lines[0]
    assert "Traceback" not in err
