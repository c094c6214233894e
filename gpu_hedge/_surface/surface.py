"""``VolSurface``: fitted slices, evaluated between and beyond them, checked for arbitrage, saved.

Conventions: ``k = ln(K / F(T))``, ``w = vol^2 T``, ``T`` in years. Evaluation is on the host
(NumPy); the fit itself runs on any backend.

Between and beyond the slices of a group (expiries ``T_1 < ... < T_n``):

- **SVI**: between ``T_i`` and ``T_{i+1}`` the total variance is linear in ``T`` at fixed ``k``,
  ``w = (1 - a) w_i(k) + a w_{i+1}(k)``, ``a = (T - T_i) / (T_{i+1} - T_i)``; a convex combination
  of ordered slices, so calendar-free whenever the slices are (butterfly-freeness of the blend is
  not guaranteed in general; check with the report grid if it matters). Before the first slice
  ``w = w_1(k) T / T_1`` and after the last ``w = w_n(k) T / T_n``: the nearest slice's implied
  vol at each ``k`` held flat in ``T``.
- **SSVI**: the same rules applied to ``theta(T)``, then the group's SSVI formula: an SSVI surface
  at every ``T``, arbitrage-free under the fitted parameter constraints.
- **Forward**: ``ln F`` linear in ``T`` between slices; before the first and after the last, the
  nearest two slices' ``ln F`` slope continued (flat for a one-slice group).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .fit import N_CHECK, check_grids
from .svi import durrleman_g_from_w, raw_svi_derivatives, ssvi_derivatives

SVI_COLUMNS = ("a", "b", "rho", "m", "sigma")
SSVI_COLUMNS = ("theta", "rho", "eta", "gamma")
MODEL_COLUMNS = {"svi": SVI_COLUMNS, "ssvi": SSVI_COLUMNS}
G_TOL = 1e-9  # butterfly_ok: min g >= -G_TOL on the report grid and Lee's wing slope <= 2
CAL_TOL = 1e-10  # calendar_ok: w_{i-1}(k) - w_i(k) <= CAL_TOL on the report grid
META_KEY = b"gpu_hedge.surface"
FORMAT = 1


class VolSurface:
    """An implied-vol surface: one fitted slice per ``(group, expiry_years)``.

    Build with :func:`gpu_hedge._surface.fit_surface`, :meth:`from_params` or :meth:`load`.
    ``params`` has one row per slice: ``group, expiry_years, forward, model``, the model's
    parameters (SVI: ``a, b, rho, m, sigma``; SSVI: ``theta, rho, eta, gamma``), ``rmse_vol``,
    ``n_quotes``, ``status``, ``butterfly_ok``, ``calendar_ok``, ``k_min``, ``k_max`` (the quotes'
    log-moneyness span, which sets the check grids).
    """

    def __init__(self, params: pd.DataFrame, model: str):
        self._model = model
        self._p = params
        codes, uniques = pd.factorize(params["group"], sort=False)
        self._codes = codes
        self._groups = list(uniques)
        self._rows = {g: np.flatnonzero(codes == i) for i, g in enumerate(self._groups)}

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: pd.DataFrame, model: str | None = None) -> VolSurface:
        """A surface from a params table (columns as in :attr:`params`; only ``group,
        expiry_years, forward`` and the model's parameters are required). ``butterfly_ok`` and
        ``calendar_ok`` are recomputed from :meth:`arbitrage_report`."""
        if model is None:
            if "model" not in params or params["model"].nunique() != 1:
                raise ValueError("from_params needs model= or a 'model' column with one value ('svi' or 'ssvi')")
            model = str(params["model"].iloc[0])
        model = model.lower()
        if model not in MODEL_COLUMNS:
            raise ValueError(f"model must be 'svi' or 'ssvi', got {model!r}")
        need = ["group", "expiry_years", "forward", *MODEL_COLUMNS[model]]
        missing = [c for c in need if c not in params]
        if missing:
            raise ValueError(f"params table is missing column(s) {missing}")
        p = params.copy()
        codes, _ = pd.factorize(p["group"], sort=False)
        p = p.assign(_code=codes).sort_values(["_code", "expiry_years"], kind="stable").drop(columns="_code").reset_index(drop=True)
        dup = p.duplicated(["group", "expiry_years"])
        if dup.any():
            r = p[dup].iloc[0]
            raise ValueError(f"group {r['group']!r}, expiry {r['expiry_years']!r}: more than one slice")
        p["model"] = model
        for col, default in (("rmse_vol", np.nan), ("n_quotes", 0), ("status", "given")):
            if col not in p:
                p[col] = default
        if "k_min" not in p or "k_max" not in p:
            sl = cls(p, model)
            w0 = sl._slice_w(np.zeros((len(p), 1)))[:, 0]
            half = np.maximum(1.0, 3.0 * np.sqrt(np.maximum(w0, 0.0)))
            p["k_min"], p["k_max"] = -half, half
        surface = cls(p, model)
        rep = surface.arbitrage_report()
        surface._p["butterfly_ok"] = rep["butterfly_ok"].to_numpy()
        surface._p["calendar_ok"] = rep["calendar_ok"].to_numpy()
        cols = ["group", "expiry_years", "forward", "model", *MODEL_COLUMNS[model], "rmse_vol", "n_quotes", "status"]
        cols += ["butterfly_ok", "calendar_ok", "k_min", "k_max"]
        surface._p = surface._p[cols + [c for c in surface._p.columns if c not in cols]]
        return surface

    # introspection ------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self._model

    @property
    def params(self) -> pd.DataFrame:
        """One row per slice (a copy)."""
        return self._p.copy()

    @property
    def groups(self) -> list:
        return list(self._groups)

    def expiries(self, group: Any) -> np.ndarray:
        return self._p["expiry_years"].to_numpy(float)[self._group_rows(group)]

    def _group_rows(self, group: Any) -> np.ndarray:
        if group is None:
            if len(self._groups) != 1:
                raise ValueError(f"the surface has {len(self._groups)} groups; pass group= (one of {self._groups[:5]}...)")
            group = self._groups[0]
        try:
            return self._rows[group]
        except (KeyError, TypeError):
            raise ValueError(f"group {group!r} is not in the surface; groups are {self._groups[:10]}") from None

    # slice evaluation ---------------------------------------------------------------------------
    def _cols(self, rows: Any, names: tuple[str, ...]) -> list[np.ndarray]:
        return [self._p[c].to_numpy(float)[rows] for c in names]

    def _slice_derivs(self, k: np.ndarray, rows: Any = slice(None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``w, w', w''`` of slices ``rows`` at ``k`` (rows on axis 0)."""
        cols = [c[:, None] for c in self._cols(rows, MODEL_COLUMNS[self._model])]
        if self._model == "svi":
            return raw_svi_derivatives(k, *cols, xp=np)
        return ssvi_derivatives(k, *cols, xp=np)

    def _slice_w(self, k: np.ndarray, rows: Any = slice(None)) -> np.ndarray:
        return self._slice_derivs(k, rows)[0]

    # evaluation ---------------------------------------------------------------------------------
    def _bracket(self, T: np.ndarray, Ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lower/upper slice positions and blend weight; ``scale`` multiplies the blend outside the slices."""
        n = len(Ts)
        j = np.clip(np.searchsorted(Ts, T, side="right"), 1, max(n - 1, 1))
        i = j - 1
        if n == 1:
            return np.zeros_like(T, dtype=int), np.zeros_like(T, dtype=int), np.zeros_like(T), T / Ts[0]
        alpha = np.clip((T - Ts[i]) / (Ts[j] - Ts[i]), 0.0, 1.0)
        scale = np.where(T < Ts[0], T / Ts[0], np.where(T > Ts[-1], T / Ts[-1], 1.0))
        return i, j, alpha, scale

    def total_variance(self, k: Any, expiry_years: Any, group: Any = None) -> np.ndarray:
        """Total variance ``w(k, T)`` at log-moneyness ``k = ln(K/F(T))``; inputs broadcast."""
        k, T, garr = self._broadcast(k, expiry_years, group)
        out = np.empty(k.shape)
        for g, sel in self._split(garr, group, k.shape):
            rows = self._group_rows(g)
            out[sel] = self._group_w(k[sel], T[sel], rows)
        return out

    def _group_w(self, k: np.ndarray, T: np.ndarray, rows: np.ndarray) -> np.ndarray:
        Ts = self._p["expiry_years"].to_numpy(float)[rows]
        i, j, alpha, scale = self._bracket(T, Ts)
        if self._model == "ssvi":
            th = self._p["theta"].to_numpy(float)[rows]
            theta = ((1.0 - alpha) * th[i] + alpha * th[j]) * scale
            r0 = rows[0]
            rho, eta, gamma = (float(self._p[c].iloc[r0]) for c in ("rho", "eta", "gamma"))
            return ssvi_derivatives(k, theta, rho, eta, gamma, xp=np)[0]
        cols = self._cols(rows, SVI_COLUMNS)
        wi = raw_svi_derivatives(k, *(c[i] for c in cols), xp=np)[0]
        wj = raw_svi_derivatives(k, *(c[j] for c in cols), xp=np)[0]
        return ((1.0 - alpha) * wi + alpha * wj) * scale

    def forward(self, expiry_years: Any, group: Any = None) -> np.ndarray:
        """``F(T)``: ``ln F`` linear in ``T`` between slices, the end slopes continued beyond."""
        T = np.asarray(expiry_years, dtype=float)
        rows = self._group_rows(group)
        Ts = self._p["expiry_years"].to_numpy(float)[rows]
        lf = np.log(self._p["forward"].to_numpy(float)[rows])
        if len(Ts) == 1:
            return np.full(T.shape, np.exp(lf[0]))
        j = np.clip(np.searchsorted(Ts, T, side="right"), 1, len(Ts) - 1)
        i = j - 1
        return np.exp(lf[i] + (T - Ts[i]) * (lf[j] - lf[i]) / (Ts[j] - Ts[i]))

    def vol(self, strike: Any, expiry_years: Any, group: Any = None) -> np.ndarray:
        """Implied vol (decimal) at ``strike`` and ``expiry_years`` (> 0); inputs broadcast."""
        K, T, garr = self._broadcast(strike, expiry_years, group)
        if not (np.all(T > 0) and np.all(K > 0)):
            raise ValueError("vol needs strikes > 0 and expiry_years > 0")
        out = np.empty(K.shape)
        for g, sel in self._split(garr, group, K.shape):
            rows = self._group_rows(g)
            k = np.log(K[sel] / self.forward(T[sel], g))
            out[sel] = np.sqrt(np.maximum(self._group_w(k, T[sel], rows), 0.0) / T[sel])
        return out

    @staticmethod
    def _broadcast(x: Any, T: Any, group: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Broadcast inputs; ``group`` may be one label (a scalar or tuple) or an array of labels."""
        if group is not None and not np.isscalar(group) and not isinstance(group, tuple):
            x, T, garr = np.broadcast_arrays(np.asarray(x, float), np.asarray(T, float), np.asarray(group, dtype=object))
            return np.array(x), np.array(T), garr
        x, T = np.broadcast_arrays(np.asarray(x, float), np.asarray(T, float))
        return np.array(x, dtype=float), np.array(T, dtype=float), None

    @staticmethod
    def _split(garr: np.ndarray | None, group: Any, shape: tuple) -> list[tuple[Any, np.ndarray]]:
        if garr is None:
            return [(group, np.ones(shape, bool))]
        return [(g, garr == g) for g in pd.unique(garr.ravel())]

    # arbitrage ----------------------------------------------------------------------------------
    def arbitrage_report(self) -> pd.DataFrame:
        """Per slice on a dense grid: ``g_min`` and ``g_min_k`` (Durrleman), ``lee_slope`` (the
        wings' ``w`` slope, ``b (1 + |rho|)`` for SVI, ``theta phi (1 + |rho|) / 2`` for SSVI; Lee:
        <= 2), ``calendar_max`` = max ``w_{i-1}(k) - w_i(k)`` against the previous slice (NaN for a
        group's first) and ``calendar_k`` where, ``butterfly_ok``, ``calendar_ok``."""
        p = self._p
        codes = self._codes
        kmin, kmax = p["k_min"].to_numpy(float), p["k_max"].to_numpy(float)
        S = len(p)
        has_prev = np.concatenate([[False], codes[1:] == codes[:-1]])
        prev = np.where(has_prev, np.arange(S) - 1, -1)
        grid, cgrid = check_grids(kmin, kmax, prev, N_CHECK)
        w, w1, w2 = self._slice_derivs(grid)
        g = durrleman_g_from_w(grid, w, w1, w2)
        g = np.where(w > 0, g, -np.inf)
        at = np.argmin(g, axis=1)
        if self._model == "svi":
            b, rho = p["b"].to_numpy(float), p["rho"].to_numpy(float)
            lee = b * (1.0 + np.abs(rho))
        else:
            th, rho = p["theta"].to_numpy(float), p["rho"].to_numpy(float)
            phi = p["eta"].to_numpy(float) * th ** -p["gamma"].to_numpy(float) * (1 + th) ** (p["gamma"].to_numpy(float) - 1)
            lee = 0.5 * th * phi * (1.0 + np.abs(rho))
        diff = self._slice_w(cgrid, np.where(has_prev, prev, np.arange(S))) - self._slice_w(cgrid)
        cal_at = np.argmax(diff, axis=1)
        cal = np.where(has_prev, diff[np.arange(S), cal_at], np.nan)
        g_min = g[np.arange(S), at]
        return pd.DataFrame(
            {
                "group": p["group"].to_numpy(),
                "expiry_years": p["expiry_years"].to_numpy(float),
                "g_min": g_min,
                "g_min_k": grid[np.arange(S), at],
                "lee_slope": lee,
                "calendar_max": cal,
                "calendar_k": np.where(has_prev, cgrid[np.arange(S), cal_at], np.nan),
                "butterfly_ok": (g_min >= -G_TOL) & (lee <= 2.0 + 1e-12),
                "calendar_ok": ~(cal > CAL_TOL),
            }
        )

    # persistence --------------------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write the params table as Parquet, with ``{"model", "version", "format"}`` in the schema metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from gpu_hedge import __version__

        table = pa.Table.from_pandas(self._p, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[META_KEY] = json.dumps({"model": self._model, "version": __version__, "format": FORMAT}).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)

    @classmethod
    def load(cls, path: Any) -> VolSurface:
        """Read a surface written by :meth:`save`."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise ValueError(f"{path}: not a gpu_hedge vol surface (no {META_KEY.decode()} metadata)")
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: surface format {meta.get('format')!r}, this version reads {FORMAT}")
        params = table.to_pandas()
        if "group" in meta.get("object_columns", ["group"]):
            params["group"] = params["group"].astype(object)  # as fitted (pandas may read strings back as StringDtype)
        return cls.from_params(params, model=meta["model"])

    def __repr__(self) -> str:
        return f"VolSurface(model={self._model!r}, groups={len(self._groups)}, slices={len(self._p)})"
