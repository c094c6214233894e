"""The smile tools are public names of ``gpu_hedge``, and importing it still loads neither pandas nor pyarrow."""

from __future__ import annotations

import subprocess
import sys

import gpu_hedge as gh
from gpu_hedge import _surface
from gpu_hedge._hedging import marks_study, smile


def test_smile_names_are_public_and_the_ones_documented():
    assert gh.fit_surface is _surface.fit_surface and gh.VolSurface is _surface.VolSurface
    assert gh.hedge_gain_study is marks_study.hedge_gain_study and gh.StudyResult is marks_study.StudyResult
    assert gh.fit_minimum_variance is smile.fit_minimum_variance and gh.MinimumVariance is smile.MinimumVariance
    assert gh.MVCoefficients is smile.MVCoefficients
    names = ("fit_surface", "VolSurface", "hedge_gain_study", "StudyResult", "fit_minimum_variance", "MinimumVariance")
    assert set(names) <= set(gh.__all__) and len(set(gh.__all__)) == len(gh.__all__)


def test_import_loads_no_pandas():
    code = "import sys, gpu_hedge; print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
