"""Real-marks hedging study: one-day delta hedges of every quoted contract, Hull-White's "Gain".

For every contract quoted on two consecutive trading days ``t`` and ``t+1`` of the file, the
one-day hedging error of a delta hedge set at ``t`` is (Hull & White 2017, J. Banking & Finance 82)::

    e = df - delta dS,   df = mid_{t+1} - mid_t,   dS = S_{t+1} - S_t

(per contract and day, currency per option; no financing of the one-day position). Deltas compared,
all set with day ``t``'s information only:

- ``bs``: Black-Scholes-Merton delta at the contract's own implied vol (``iv="ours"``: our IV of
  the mid at the study's ``rate``/``div`` and the vendor's ``expiry_years``; ``iv="vendor"``: the
  file's ``iv``);
- ``smile``: sticky-moneyness delta ``delta_BS - vega_BS (d sigma / dk) / S`` with the slope of day
  ``t``'s fitted surface at the contract's (strike, expiry) and ``delta_BS``, ``vega_BS`` as for
  ``bs`` (the surface supplies the smile's slope, not the level; see :mod:`.smile`);
- ``mv``: Hull-White minimum-variance delta ``delta_BS + vega_BS / (S sqrt T) (a + b D + c D^2)``,
  ``D`` the call delta (a put's delta + e^{-qT}), coefficients fitted **out of sample**: the pairs
  are split by the calendar month of ``t`` and each month's deltas use coefficients fitted on the
  other months' pairs (two months: fit on January, test on February, and vice versa), calls and
  puts fitted separately. ``mv_in`` (in-sample, fitted on all pairs) is reported beside it.

``Gain = 1 - SSE(e_model) / SSE(e_bs)`` over the pairs of a cell: overall and per delta bucket
(calls by delta, puts by |delta|: 0.1-0.2, ..., 0.8-0.9; the overall row covers the whole filter).

Filter, on day ``t`` and ``t+1``: a positive bid and a mid on both days, ``expiry_years`` at ``t``
at least ``min_days`` / 365, an implied vol and finite Greeks, ``min_abs_delta < |delta_BS| <
max_abs_delta`` at ``t``; ``t+1`` is the next trading date of the file (a contract missing a day
does not pair across the gap). With surfaces, pairs whose day has no fitted slice are dropped from
every model (so all gains are over the same pairs; ``StudyResult.dropped`` counts them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .smile import MinimumVariance, fit_minimum_variance, minimum_variance_delta, smile_delta, vol_and_slope

__all__ = ["DELTA_BUCKETS", "StudyResult", "fit_daily_surfaces", "hedge_gain_study", "hedge_pairs"]

DELTA_BUCKETS = tuple((round(0.1 * i, 1), round(0.1 * (i + 1), 1)) for i in range(1, 9))
ALL = "all"


@dataclass
class StudyResult:
    """``table``: one row per (``option`` in calls/puts/all, ``bucket``), columns ``n`` (pairs),
    ``rms_bs`` (root mean square BS hedging error, currency per option), ``gain_mv`` (out of
    sample), ``gain_mv_in`` (in sample), ``gain_smile`` (with surfaces). ``by_period``: the same
    gains overall per test month. ``coefficients``: ``{"fit <months> -> test <month>": MinimumVariance,
    ..., "all": MinimumVariance}``. ``pairs``: one row per (contract, day) with the deltas and
    errors. ``seconds``: runtime by stage. ``dropped``: pairs lost to each filter."""

    table: pd.DataFrame
    by_period: pd.DataFrame
    coefficients: dict[str, MinimumVariance]
    pairs: pd.DataFrame
    seconds: dict[str, float]
    dropped: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def plot(self, path: Any = None, *, title: str | None = None) -> Any:
        """Bar chart of the gains by delta bucket (calls and puts side by side; needs Matplotlib,
        ``pip install gpu_hedge[plot]``); saved to ``path`` when given. Returns the figure."""
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("StudyResult.plot needs Matplotlib: pip install 'gpu_hedge[plot]'") from exc
        cols = [c for c in ("gain_mv", "gain_mv_in", "gain_smile") if c in self.table]
        labels = {
            "gain_mv": "minimum variance (out of sample)", "gain_mv_in": "minimum variance (in sample)",
            "gain_smile": "smile (sticky moneyness)",
        }  # fmt: skip
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        buckets = [f"{lo:.1f}-{hi:.1f}" for lo, hi in DELTA_BUCKETS]
        x = np.arange(len(buckets))
        width = 0.8 / max(len(cols), 1)
        for ax, kind in zip(axes, ("calls", "puts"), strict=True):
            rows = self.table.loc[kind]
            for i, c in enumerate(cols):
                ax.bar(x + (i - (len(cols) - 1) / 2) * width, 100 * rows.loc[buckets, c].to_numpy(float), width, label=labels[c])
                ax.axhline(100 * float(rows.loc[ALL, c]), color=f"C{i}", lw=0.8, ls="--")
            ax.axhline(0.0, color="k", lw=0.6)
            ax.set_xticks(x, buckets, rotation=45)
            ax.set_title(f"{kind} (dashed: overall)")
            ax.set_xlabel("|BS delta|" if kind == "puts" else "BS delta")
        axes[0].set_ylabel("Gain = 1 - SSE / SSE(BS), %")
        axes[0].legend(fontsize=8)
        fig.suptitle(title or "One-day delta-hedging gain over Black-Scholes delta (real marks)")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def _gain(e: np.ndarray, e_bs: np.ndarray) -> float:
    sse = float(np.sum(e_bs**2))
    return 1.0 - float(np.sum(e**2)) / sse if sse > 0 else float("nan")


def hedge_pairs(
    quotes: pd.DataFrame, *, rate: float | None = None, div: float | None = None, iv: str = "ours", min_days: float = 7.0,
    min_abs_delta: float = 0.05, max_abs_delta: float = 0.95, backend: Any = "numpy",
) -> tuple[pd.DataFrame, dict[str, int]]:  # fmt: skip
    """The (contract, day) pairs of the study, filtered (see the module notes), with day ``t``'s
    ``spot, strike, call, expiry_years, iv, delta, vega`` (ours, BS at ``iv``), ``d_value``,
    ``d_spot`` and ``e_bs``; and the counts each filter dropped."""
    from .. import greeks, implied_vol

    if iv not in ("ours", "vendor"):
        raise ValueError(f"iv = {iv!r} must be 'ours' (from the mid) or 'vendor' (the file's iv)")
    r = float(quotes.attrs.get("rate", 0.0) if rate is None else rate)
    d_attr = quotes.attrs.get("div", 0.0)
    q = float(div if div is not None else d_attr if isinstance(d_attr, int | float) else 0.0)
    need = ("quote_date", "symbol", "underlying", "call", "strike", "bid", "mid", "underlying_price", "expiry_years")
    missing = [c for c in need if c not in quotes]
    if missing:
        raise ValueError(f"quotes lack the column(s) {missing} (read them with gpu_hedge.io.read_quotes)")
    df = quotes.loc[:, [*need, "iv"] if "iv" in quotes else list(need)].copy()
    dates = np.sort(df["quote_date"].unique())
    df["day"] = np.searchsorted(dates, df["quote_date"].to_numpy())
    dropped: dict[str, int] = {}
    usable = (df["bid"] > 0) & np.isfinite(df["mid"]) & (df["mid"] > 0) & (df["expiry_years"] > 0)
    nxt = df.loc[usable, ["symbol", "day", "mid", "underlying_price"]].rename(columns={"mid": "mid_1", "underlying_price": "spot_1"})
    nxt["day"] -= 1
    pairs = df.merge(nxt, on=["symbol", "day"], how="inner")
    dropped["quoted_next_day_with_bid"] = int(len(df) - len(pairs))
    ok = (pairs["bid"] > 0) & np.isfinite(pairs["mid"]) & (pairs["mid"] > 0)
    dropped["no_bid_or_mid"] = int((~ok).sum())
    pairs = pairs[ok]
    ok = pairs["expiry_years"] * 365.0 >= min_days
    dropped["short_expiry"] = int((~ok).sum())
    pairs = pairs[ok].reset_index(drop=True)
    S, K, T = (pairs[c].to_numpy(float) for c in ("underlying_price", "strike", "expiry_years"))
    call = pairs["call"].to_numpy(bool)
    if iv == "ours":
        vol = np.asarray(implied_vol(pairs["mid"].to_numpy(float), S, K, T, r, q, call=call, backend=backend, on_invalid="nan"))
    else:
        vol = pairs["iv"].to_numpy(float)
    good = np.isfinite(vol) & (vol > 0)
    safe = np.where(good, vol, 0.2)
    g = greeks(S, K, T, safe, r, q, call=call, greeks=("delta", "vega"), backend=backend)
    delta, vega = np.asarray(g["delta"], dtype=float), np.asarray(g["vega"], dtype=float)
    ok = good & np.isfinite(delta) & np.isfinite(vega)
    dropped["no_iv"] = int((~ok).sum())
    ad = np.abs(delta)
    in_band = ok & (ad > min_abs_delta) & (ad < max_abs_delta)
    dropped["delta_outside_band"] = int((ok & ~in_band).sum())
    pairs = pairs.assign(spot=S, iv_used=vol, delta=delta, vega=vega)[in_band].reset_index(drop=True)
    pairs["d_value"] = pairs["mid_1"] - pairs["mid"]
    pairs["d_spot"] = pairs["spot_1"] - pairs["spot"]
    pairs["e_bs"] = pairs["d_value"] - pairs["delta"] * pairs["d_spot"]
    pairs["period"] = pd.DatetimeIndex(pairs["quote_date"]).to_period("M").astype(str)
    pairs.attrs.update(rate=r, div=q)
    return pairs, dropped


def _fit(pairs: pd.DataFrame, div: float) -> MinimumVariance:
    coef = {}
    for kind, flag in (("calls", True), ("puts", False)):
        p = pairs[pairs["call"] == flag]
        coef[kind] = fit_minimum_variance(
            p["d_value"], p["d_spot"], p["spot"], p["delta"], p["vega"], p["expiry_years"], call=flag, div=div
        )
    return MinimumVariance(coef["calls"], coef["puts"])


def _mv(pairs: pd.DataFrame, mv: MinimumVariance, div: float) -> np.ndarray:
    out = np.empty(len(pairs))
    for flag in (True, False):
        sel = (pairs["call"] == flag).to_numpy()
        p = pairs[sel]
        out[sel] = minimum_variance_delta(
            p["delta"].to_numpy(), p["vega"].to_numpy(), p["spot"].to_numpy(), p["expiry_years"].to_numpy(), mv.of(flag), flag, div
        )
    return out


def _slopes(pairs: pd.DataFrame, surfaces: Any) -> np.ndarray:
    """d sigma / dk per pair from day t's surface: a VolSurface with groups ``"<underlying>
    <YYYY-MM-DD>"``, a mapping quote_date -> surface, or a callable quote_date -> surface (or
    ``(surface, group)``). NaN where the day has no surface or the surface no group for it."""
    out = np.full(len(pairs), np.nan)
    labels = pairs["underlying"].astype(str) + " " + pd.DatetimeIndex(pairs["quote_date"]).strftime("%Y-%m-%d")
    K, T = pairs["strike"].to_numpy(float), pairs["expiry_years"].to_numpy(float)
    if hasattr(surfaces, "vol") and hasattr(surfaces, "groups"):
        have = set(surfaces.groups)
        sel = labels.isin(have).to_numpy()
        if sel.any():
            out[sel] = vol_and_slope(surfaces, K[sel], T[sel], group=labels[sel].to_numpy(dtype=object))[1]
        return out
    get: Callable[[Any], Any] = surfaces.get if isinstance(surfaces, Mapping) else surfaces
    for day, idx in pairs.groupby("quote_date").indices.items():
        s = get(pd.Timestamp(day))
        if s is None:
            continue
        out[idx] = vol_and_slope(s, K[idx], T[idx])[1]
    return out


def fit_daily_surfaces(quotes: pd.DataFrame, *, rate: float | None = None, model: str = "svi", backend: Any = "numpy") -> Any:
    """Every day's surface in one batched fit: ``quote_surface`` (parity forward, Black-76 vols of
    OTM mids) then ``fit_surface`` over all ``"<underlying> <date>"`` groups at once."""
    from .._book.quote_surface import quote_surface
    from .._surface import fit_surface

    frame = quote_surface(quotes, rate=rate, backend=backend)
    return fit_surface(frame, model=model, backend=backend)


def hedge_gain_study(
    quotes: pd.DataFrame, *, surfaces: Any = None, rate: float | None = None, div: float | None = None, iv: str = "ours",
    min_days: float = 7.0, min_abs_delta: float = 0.05, max_abs_delta: float = 0.95, split: str = "month",
    min_train: int = 200, backend: Any = "numpy",
) -> StudyResult:  # fmt: skip
    """Hull-White's gain of the minimum-variance delta (out of sample) and of the smile delta over
    the Black-Scholes delta, for one-day hedges of every contract at its real marks (see the
    module notes for the error, the deltas, the filter and the out-of-sample split).

    ``quotes``: the long layout of :func:`gpu_hedge.io.read_quotes`. ``surfaces``: None (no smile
    delta), ``"fit"`` (fit every day's SVI surface here: :func:`fit_daily_surfaces`), a fitted
    ``VolSurface`` with one group per ``"<underlying> <YYYY-MM-DD>"``, a mapping or a callable
    ``quote_date -> surface``. ``rate``/``div`` default to ``quotes.attrs`` (the vendor's).

    ``split``: how the minimum-variance coefficients are kept out of sample. ``"month"`` (default):
    each calendar month of ``t`` is tested with coefficients fitted on the other months' pairs.
    ``"expanding"``: walk forward, the pairs starting on day ``t`` use coefficients fitted on every
    pair that ended by day ``t`` (the information a trader had), once at least ``min_train`` calls
    and ``min_train`` puts have ended; earlier pairs are dropped from every model
    (``dropped["no_mv_history"]``).

    >>> import gpu_hedge.io as gio                                                # doctest: +SKIP
    >>> from gpu_hedge._hedging.marks_study import hedge_gain_study              # doctest: +SKIP
    >>> res = hedge_gain_study(gio.read_quotes("spxw_eod.csv"), surfaces="fit")  # doctest: +SKIP
    >>> res.table.loc[("calls", "all"), "gain_mv"]                                # doctest: +SKIP
    """
    clock = time.perf_counter
    seconds: dict[str, float] = {}
    t0 = clock()
    pairs, dropped = hedge_pairs(
        quotes, rate=rate, div=div, iv=iv, min_days=min_days, min_abs_delta=min_abs_delta, max_abs_delta=max_abs_delta, backend=backend
    )
    q = float(pairs.attrs["div"])
    seconds["pairs_iv_greeks"] = clock() - t0
    if surfaces is not None:
        t1 = clock()
        if isinstance(surfaces, str):
            if surfaces != "fit":
                raise ValueError(f"surfaces = {surfaces!r}: expected None, 'fit', a VolSurface, a mapping or a callable")
            surfaces = fit_daily_surfaces(quotes, rate=pairs.attrs["rate"], backend=backend)
        seconds["surface_fit"] = clock() - t1
        t1 = clock()
        slope = _slopes(pairs, surfaces)
        ok = np.isfinite(slope)
        dropped["no_surface"] = int((~ok).sum())
        pairs = pairs.assign(dvol_dk=slope)[ok].reset_index(drop=True)
        pairs["delta_smile"] = smile_delta(pairs["delta"], pairs["vega"], pairs["spot"], pairs["dvol_dk"])
        pairs["e_smile"] = pairs["d_value"] - pairs["delta_smile"] * pairs["d_spot"]
        seconds["smile_deltas"] = clock() - t1
    t1 = clock()
    coefficients: dict[str, MinimumVariance] = {}
    periods = sorted(pairs["period"].unique())
    delta_mv = np.full(len(pairs), np.nan)
    if split not in ("month", "expanding"):
        raise ValueError(f"split = {split!r} must be 'month' or 'expanding'")
    if split == "expanding":
        day = pairs["day"].to_numpy()
        for t in np.unique(day):
            train = pairs[day + 1 <= t]
            if min(int(train["call"].sum()), int((~train["call"]).sum())) < min_train:
                continue
            test = day == t
            mv = _fit(train, q)
            coefficients[f"expanding: fit pairs ended by {pd.Timestamp(pairs.loc[test, 'quote_date'].iloc[0]):%Y-%m-%d}"] = mv
            delta_mv[test] = _mv(pairs[test], mv, q)
        ok = np.isfinite(delta_mv)
        dropped["no_mv_history"] = int((~ok).sum())
        pairs, delta_mv = pairs[ok].reset_index(drop=True), delta_mv[ok]
        periods = sorted(pairs["period"].unique())
    elif len(periods) >= 2:
        for p in periods:
            test = (pairs["period"] == p).to_numpy()
            train = pairs[~test]
            name = f"fit {'+'.join(x for x in periods if x != p)} -> test {p}"
            coefficients[name] = _fit(train, q)
            delta_mv[test] = _mv(pairs[test], coefficients[name], q)
    coefficients["all"] = _fit(pairs, q)
    pairs["delta_mv"] = delta_mv
    pairs["delta_mv_in"] = _mv(pairs, coefficients["all"], q)
    pairs["e_mv"] = pairs["d_value"] - pairs["delta_mv"] * pairs["d_spot"]
    pairs["e_mv_in"] = pairs["d_value"] - pairs["delta_mv_in"] * pairs["d_spot"]
    seconds["mv_fit"] = clock() - t1
    t1 = clock()
    models = {"gain_mv": "e_mv", "gain_mv_in": "e_mv_in"}
    if "e_smile" in pairs:
        models["gain_smile"] = "e_smile"
    ad = pairs["delta"].abs().to_numpy()
    rows = []
    for kind in ("calls", "puts", ALL):
        sel_kind = np.ones(len(pairs), bool) if kind == ALL else (pairs["call"] == (kind == "calls")).to_numpy()
        for bucket in (ALL, *DELTA_BUCKETS):
            sel = sel_kind if bucket == ALL else sel_kind & (ad >= bucket[0]) & (ad < bucket[1])
            p = pairs[sel]
            e_bs = p["e_bs"].to_numpy()
            row = {"option": kind, "bucket": bucket if bucket == ALL else f"{bucket[0]:.1f}-{bucket[1]:.1f}", "n": int(sel.sum()),
                   "rms_bs": float(np.sqrt(np.mean(e_bs**2))) if sel.any() else float("nan")}  # fmt: skip
            for col, err in models.items():
                row[col] = _gain(p[err].to_numpy(), e_bs) if sel.any() else float("nan")
            rows.append(row)
    table = pd.DataFrame(rows).set_index(["option", "bucket"])
    per = []
    for p in periods:
        for kind in ("calls", "puts", ALL):
            of_kind = np.ones(len(pairs), bool) if kind == ALL else (pairs["call"] == (kind == "calls")).to_numpy()
            sel = (pairs["period"] == p).to_numpy() & of_kind
            sub = pairs[sel]
            per.append({"period": p, "option": kind, "n": int(sel.sum()),
                        **{col: _gain(sub[err].to_numpy(), sub["e_bs"].to_numpy()) for col, err in models.items()}})  # fmt: skip
    by_period = pd.DataFrame(per).set_index(["period", "option"])
    seconds["tables"] = clock() - t1
    seconds["total"] = clock() - t0
    settings = dict(rate=pairs.attrs["rate"], div=q, iv=iv, split=split, min_days=min_days, min_abs_delta=min_abs_delta,
                    max_abs_delta=max_abs_delta, periods=periods, n_pairs=len(pairs))  # fmt: skip
    return StudyResult(table, by_period, coefficients, pairs, seconds, dropped, settings)
