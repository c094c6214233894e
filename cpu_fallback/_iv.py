"""The NumPy backend's native implied-volatility kernels: ``gpu_hedge._pricing.implied_vol``'s
``lognormal_kernel`` (bsm, black76: Jäckel's "Let's Be Rational") and ``bachelier_kernel`` (Jäckel's
"Implied Normal Volatility"), one option at a time in a Numba loop, float64.

The generic kernels are branch-free array code: every option evaluates every branch (the four
initial-guess branches, the four regions of the normalised Black function, the three Householder
objectives). Here each option takes only the branch it needs, with the same branch conditions,
constants, order of operations and status rules:

- the option-level transcendentals (forward, discount factor, ``ln(F/K)``, the normalisation, the
  intrinsic value ``2 sinh(|x|/2)``, the bound ``e^{-|x|/2}``; bachelier: ``e^{rT}``) are the generic
  kernel's own NumPy calls on the chunk (:func:`_lognormal_prelude`), so the price bounds and the
  normalised problem are bit for bit the generic kernel's (the bounds checks compare prices that sit
  on the bounds to within ulps; the intrinsic value subtracted from in-the-money prices is where
  ulps matter most);
- the solver runs in the compiled loop, without FMA contraction, so its arithmetic rounds exactly as
  the generic kernel's NumPy calls do. It differs only in its special functions: ``exp``/``log``
  from libm instead of NumPy's, and ``ndtr``, ``erfcx``, ``ndtri`` below instead of the generic
  kernel's vectorised ``ndtr`` and SciPy's ``erfcx`` / ``ndtri``: a few ulps, which the conditioning of
  the inverse problem magnifies near the identifiability limit (``tests/test_iv_native.py``: same
  status codes, vols within 1e-13 relative or 10x the vol change of a 4-ulp price change; seen: 5e-15).

Speed per core (1e6 random realistic options, ``benchmarks/implied_vol.py``'s mix; shared 2-vCPU
AMD EPYC VM, so +-5 %): bsm 2.6 M options/s against 1.65-1.7 M/s for the generic kernel, bachelier
9.3 M/s against 7.8-8.2 M/s. Scalar code gains less than the branch count suggests: the generic kernel
runs every branch in SIMD, while here each option is one long chain of dependent divisions and libm
calls (a Householder step is about 80 ns of the about 380 ns an option takes).

Special functions (Numba has no ``erfcx`` and no ``ndtri``), compiled with FMA contraction:

- :func:`ndtr`: :func:`cpu_fallback._ndtr_kernel.ndtr_from_exp` (what the generic kernel's
  ``special.ndtr`` computes) taking only its branch, bit for bit the same given the same exponential.
- :func:`erfcx`: piecewise polynomials fitted here (:func:`fit_erfcx`, mpmath): ``x`` in ``[0, 4)``:
  32 pieces of width 1/8 in ``x``; ``x >= 4``: ``x erfcx(x)`` in ``w = 4 / x``, 8 pieces of width 1/8
  in ``w`` (the first one expanded about ``w = 0``, ``x = inf``), so no piece ends at a singularity and
  the tail needs no continued fraction; degree 9 (a table of 40 x 10 coefficients). ``x < 0``:
  ``2 exp(x^2) - erfcx(-x)``, as SciPy (Faddeeva) computes it. Against mpmath: <= 1 ulp on ``[0, 4)``,
  <= 2 ulps beyond (SciPy's: up to 6 ulps near 0); for ``x < 0`` the rounding of ``x^2`` inside ``exp``
  dominates, as in SciPy (within 8 eps of SciPy's).
- :func:`ndtri` (only for the outer initial guesses, which two fourth-order steps then refine): a
  guess from the inverse series (centre) or Abramowitz & Stegun 26.2.23 (tails), then two Halley steps
  on ``Phi(x) - p``, ``Phi`` from its Taylor series or from :func:`erfcx`: <= 2 ulps against mpmath.

Regenerate the erfcx table with ``python -m cpu_fallback._iv`` (prints it; a test checks that the
committed coefficients are the fit's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gpu_hedge._pricing._normalised_black import (
    _ASYMPTOTIC,
    _RC_MAX,
    _RC_MIN,
    ETA,
    INV_SQRT2,
    INV_SQRT_2PI,
    SQRT3,
    SQRT_2PI,
    SQRT_PI_OVER_2,
    TAU,
    TWO_PI_OVER_SQRT27,
    limits,
    small_t_series,
)
from gpu_hedge._pricing.implied_vol import _NEAR, CONVERGED, IVStatus, vol_tol

from ._black import _full
from ._jit import njit
from ._ndtr import CENTRAL, T_MAX
from ._ndtr_kernel import JIT, TAIL, TAYLOR

#: no FMA contraction: between special functions the arithmetic rounds as the generic kernel's NumPy calls do
_PLAIN = {"error_model": "numpy", "cache": True}

#: the native names this module serves
MODELS = ("bsm", "black76", "bachelier")
NAMES = ("vol", "status")

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_X_MAX, _S_MIN, _S_MAX = limits(np, np.float64)
_VOL_TOL = vol_tol(_EPS)
_OK = float(IVStatus.OK)
_BELOW = float(IVStatus.BELOW_INTRINSIC)
_ABOVE = float(IVStatus.ABOVE_MAX)
_NOT_IDENTIFIABLE = float(IVStatus.NOT_IDENTIFIABLE)

# ---- erfcx --------------------------------------------------------------------------------------------

#: erfcx pieces: x in [0, ERFCX_SPLIT) in PIECES_X pieces of x, then x erfcx(x) in w = ERFCX_SPLIT / x in
#: PIECES_W pieces of w in [0, 1]; each a polynomial of degree ERFCX_DEGREE in t in [-1, 1] on its piece
ERFCX_SPLIT, PIECES_X, PIECES_W, ERFCX_DEGREE = 4.0, 32, 8, 9


def fit_erfcx(dps: int = 40) -> tuple[tuple[float, ...], ...]:
    """The erfcx table: one row of monomial coefficients (lowest order first) in ``t`` per piece, the
    Chebyshev interpolant at ``ERFCX_DEGREE + 1`` first-kind nodes, computed in ``dps`` digits (mpmath)."""
    import mpmath as mp

    with mp.workdps(dps):

        def erfcx_mp(x: Any) -> Any:
            return mp.exp(x * x) * mp.erfc(x)

        def tail(w: Any) -> Any:  # x erfcx(x), x = SPLIT / w; -> 1 / sqrt(pi) as w -> 0
            return 1 / mp.sqrt(mp.pi) if w == 0 else (ERFCX_SPLIT / w) * erfcx_mp(ERFCX_SPLIT / w)

        n = ERFCX_DEGREE + 1
        nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
        # monomial coefficients of the Chebyshev polynomials T_0 ... T_{n-1}
        cheb = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
        while len(cheb) < n:
            nxt = [mp.mpf(0)] + [2 * c for c in cheb[-1]]
            for i, c in enumerate(cheb[-2]):
                nxt[i] -= c
            cheb.append(nxt)
        rows = []
        pieces = [(erfcx_mp, mp.mpf(ERFCX_SPLIT) * i / PIECES_X, mp.mpf(ERFCX_SPLIT) * (i + 1) / PIECES_X) for i in range(PIECES_X)]
        pieces += [(tail, mp.mpf(i) / PIECES_W, mp.mpf(i + 1) / PIECES_W) for i in range(PIECES_W)]
        for f, a, b in pieces:
            values = [f((a + b) / 2 + (b - a) / 2 * t) for t in nodes]
            coef = [2 * mp.fsum(v * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k, v in enumerate(values)) / n for j in range(n)]
            coef[0] /= 2
            mono = [mp.fsum(coef[j] * cheb[j][i] for j in range(i, n) if i < len(cheb[j])) for i in range(n)]
            if a == 0 and f is tail:  # w -> 0: in tau = t + 1 = 2 PIECES_W w, so that x erfcx(x) -> 1/sqrt(pi) rounds once
                mono = [mp.fsum(mp.binomial(j, i) * (-1) ** (j - i) * mono[j] for j in range(i, n)) for i in range(n)]
            rows.append(tuple(float(m) for m in mono))
    return tuple(rows)


def table_source(rows: tuple[tuple[float, ...], ...]) -> str:
    """The ``ERFCX_TABLE = (...)`` text of this module for :func:`fit_erfcx`'s rows."""
    lines = ["# fmt: off", "ERFCX_TABLE = ("]
    for row in rows:
        half = (len(row) + 1) // 2
        lines.append("    (" + ", ".join(repr(c) for c in row[:half]) + ",")
        lines.append("     " + ", ".join(repr(c) for c in row[half:]) + "),")
    return "\n".join([*lines, ")", "# fmt: on"])


# fmt: off
ERFCX_TABLE = (
    (0.9332062486492742, -0.06323302412589708, 0.0033983329082938837, -0.0001558195083791592, 6.333033988670492e-06,
     -2.3357261635680006e-07, 7.941994500622578e-09, -2.5181955536910427e-10, 7.524216715045211e-12, -2.1244136912531188e-13),
    (0.819181308058672, -0.05132413603584441, 0.0025984722654338165, -0.00011335603968629932, 4.410945600941845e-06,
     -1.564425045813042e-07, 5.1323080679134405e-09, -1.5741673949469895e-10, 4.559009330071159e-12, -1.2499986151707067e-13),
    (0.7260859551237695, -0.042160965321447294, 0.0020128169082675217, -8.35856270315287e-05, 3.11501713646286e-06,
     -1.0626647090586819e-07, 3.3641687415267237e-09, -9.982758456809535e-11, 2.8026265807151647e-12, -7.46279579911982e-14),
    (0.6491932500538647, -0.03502094208114881, 0.0015783072479913873, -6.24291441281441e-05, 2.2291078897294357e-06,
     -7.3164670186589e-08, 2.2356163027678963e-09, -6.419116846464299e-11, 1.7472068423308668e-12, -4.518811128258075e-14),
    (0.5849986214749657, -0.029390982371011006, 0.0012518741411556642, -4.719821640783558e-05, 1.6154105346721206e-06,
     -5.103050251280547e-08, 1.5053839722291018e-09, -4.1832593050688326e-11, 1.104101057217705e-12, -2.7738846202264558e-14),
    (0.5308708724175545, -0.02490198234508595, 0.0010037072914906209, -3.6096880569500896e-05, 1.1848468855228258e-06,
     -3.6036820057452964e-08, 1.0266161279126691e-09, -2.7616088279303464e-11, 7.069075555036426e-13, -1.7254702727576988e-14),
    (0.4848108285616202, -0.021285098167679983, 0.0008129084077413057, -2.790960642458982e-05, 8.790693834388666e-07,
     -2.575266319549489e-08, 7.087035752832782e-10, -1.8459262302373812e-11, 4.583664214231511e-13, -1.0871700683385816e-14),
    (0.4452822731368817, -0.018342181560241214, 0.0006646466786455454, -2.1803336928535637e-05, 6.593684077715114e-07,
     -1.861376689907562e-08, 4.950021431776908e-10, -1.2487414355890097e-11, 3.008638474486542e-13, -6.935495536692594e-15),
    (0.4110920544448305, -0.015925534462515486, 0.0005482733147736906, -1.7200229456673207e-05, 4.99744949314255e-07,
     -1.3600883313470113e-08, 3.4964813885080523e-10, -8.545599791607177e-12, 1.9982454877276685e-13, -4.477854320551752e-15),
    (0.3813040589667179, -0.013923876690597348, 0.0004560562572084639, -1.369481198863639e-05, 3.8252896376748535e-07,
     -1.0041815122797252e-08, 2.4965413176282756e-10, -5.913372342968729e-12, 1.342357237662638e-13, -2.9248322620546405e-15),
    (0.3551767864976341, -0.012252506408701434, 0.00038232090591759, -1.0999394230291494e-05, 2.9557349042437335e-07,
     -7.488048331905262e-09, 1.801099076139584e-10, -4.135867101001719e-12, 9.116981734882327e-14, -1.9319704006968356e-15),
    (0.33211756272837234, -0.010846323390715132, 0.00032285986227313933, -8.907673329252217e-06, 2.3043628068480673e-07,
     -5.6369357409557566e-09, 1.3123270241365877e-10, -2.9225237939999878e-12, 6.25785830861597e-14, -1.2900380155103941e-15),
    (0.31164860864813004, -0.009654829066881634, 0.0002745229764690967, -7.270194414463969e-06, 1.8118772678565816e-07,
     -4.282033195799413e-09, 9.653238085914458e-11, -2.085627373455523e-12, 4.3393515593821626e-14, -8.704530818120529e-16),
    (0.2933816487652772, -0.008638506407043868, 0.0002349295928714551, -5.9776234362357895e-06, 1.4362062519058279e-07,
     -3.281041494421661e-09, 7.165688279197235e-11, -1.502572089420355e-12, 3.038688628464894e-14, -5.932963941479759e-16),
    (0.27699873067305275, -0.007766173025356022, 0.0002022645036629997, -4.9492250498151164e-06, 1.147206586354946e-07,
     -2.5348842962872225e-09, 5.365755389677016e-11, -1.0924268874678761e-12, 2.1480909681823266e-14, -4.0834635537538926e-16),
    (0.2622376065503814, -0.0070130276070490315, 0.0001751318387963334, -4.1248453238611395e-06, 9.230787843491847e-08,
     -1.9739079571043516e-09, 4.051656666089725e-11, -8.01220836973643e-13, 1.5324002661863397e-14, -2.837056614948105e-16),
    (0.24888049618416236, -0.006359195020990177, 0.00015244945504486887, -3.4592786575768e-06, 7.479152216060434e-08,
     -1.5486850412445722e-09, 3.0839726485103105e-11, -5.926045745744415e-13, 1.1028030946184158e-14, -1.9890512904670203e-16),
    (0.23674537874014628, -0.005788633444210785, 0.000133371907003003, -2.9182726539210165e-06, 6.100071116548794e-08,
     -1.2238246300230893e-09, 2.3654746188020137e-11, -4.4186188686869986e-13, 8.003652292142415e-15, -1.4067715179084168e-16),
    (0.22567919160681937, -0.005288306619623307, 0.00011723377609670695, -2.475669020950892e-06, 5.0066449848034703e-08,
     -9.73766213493187e-10, 1.8277470228479176e-11, -3.3203083268341956e-13, 5.8560707658570985e-15, -1.0033820425207365e-16),
    (0.21555247915117748, -0.004847551952095145, 0.00010350762898229222, -2.1113396400670395e-06, 4.133863871122618e-08,
     -7.798948912099554e-10, 1.4222312473284371e-11, -2.5136670519694065e-13, 4.318378786027973e-15, -7.21513433735407e-17),
    (0.2062551523865009, -0.004457594444668467, 9.177257873083492e-05, -1.8096841580839358e-06, 3.43272036127465e-08,
     -6.285450156162932e-10, 1.1141740332405752e-11, -1.9166692195860138e-13, 3.208521118421477e-15, -5.2291678502496414e-17),
    (0.19769310614997299, -0.00411117009621299, 8.169059380005619e-05, -1.558527507319195e-06, 2.8659982393687614e-08,
     -5.096066631485242e-10, 8.785019377403205e-12, -1.4715486213989362e-13, 2.401248770695801e-15, -3.818651513659359e-17),
    (0.18978550290899462, -0.0038022320770261134, 7.298851344851369e-05, -1.3483046141744677e-06, 2.4052355099283465e-08,
     -4.155447417575936e-10, 6.969845057440012e-12, -1.13729531042049e-13, 1.8096751422812705e-15, -2.809056003650919e-17),
    (0.18246257834403473, -0.003525719957769288, 6.544429815968038e-05, -1.1714529798549702e-06, 2.0285172083242588e-08,
     -3.407029561814654e-10, 5.562672687929768e-12, -8.845680730517695e-14, 1.3730397223192017e-15, -2.0809980529660138e-17),
    (0.17566385800258433, -0.00327737730185522, 5.8876446139369334e-05, -1.0219568776721908e-06, 1.7188592057660102e-08,
     -2.808060419641481e-10, 4.464968259734698e-12, -6.92216148021033e-14, 1.0485205596425143e-15, -1.5521585228652522e-17),
    (0.16933669983724775, -0.0030536066020661304, 5.313579348388716e-05, -8.950029541351145e-07, 1.4630161763793712e-08,
     -2.3260110029587857e-10, 3.6035226188296966e-12, -5.4488196221615666e-14, 8.057103396417015e-16, -1.165332748427216e-17),
    (0.1634350966466223, -0.0028513532382274825, 4.809912117408492e-05, -7.867182708358878e-07, 1.2505962538733759e-08,
     -1.93597275451377e-10, 2.9235764775894315e-12, -4.313359903802527e-14, 6.22859519294135e-16, -8.804682142374042e-18),
    (0.1579186869907276, -0.0026680121271412663, 4.366414061702327e-05, -6.939697739713174e-07, 1.0733990329369371e-08,
     -1.618754779070405e-10, 2.383904807296026e-12, -3.433113863624231e-14, 4.843013029280293e-16, -6.693165269559495e-18),
    (0.1527519342528475, -0.002501352221498385, 3.974553760718579e-05, -6.142098382520679e-07, 9.24917348993182e-09,
     -1.3594835832722081e-10, 1.9532772801752716e-12, -2.7468240126368345e-14, 3.7867331108014537e-16, -5.118133609490636e-18),
    (0.14790344203959, -0.002349455128346024, 3.6271833856150665e-05, -5.453565907112881e-07, 7.999599617588123e-09,
     -1.1465658324417506e-10, 1.6078920836973745e-12, -2.208810538754792e-14, 2.9768043567065415e-16, -3.936095454858442e-18),
    (0.14334538069033212, -0.002210664958233142, 3.318288374261898e-05, -4.857006508681858e-07, 6.9436407024905064e-09,
     -9.709151252867525e-11, 1.3295030900990464e-12, -1.7848011068132527e-14, 2.3522805931503743e-16, -3.0437489195892187e-18),
    (0.13905300477781452, -0.0020835471543889502, 3.042786738793228e-05, -4.338320545552504e-07, 6.047749904225189e-09,
     -8.253720404796128e-11, 1.104044270409862e-12, -1.4489297143848177e-14, 1.8681057010275001e-16, -2.3662460620588404e-18),
    (0.5641895835477563, -2.610361567506534e-18, -6.887079877287637e-05, -2.762133301889231e-16, 2.5221240684545567e-08,
     -1.684205263740647e-15, -1.5391900886732824e-11, -1.3606066813774879e-15, 1.3737938945486615e-14, -1.3975191913928338e-16),
    (0.5635717781425851, -0.00041052311559804544, -6.752729101467824e-05, 2.9451750072295364e-07, 2.3215505185975055e-08,
     -2.580526169071274e-10, -1.231235560377386e-11, 2.7238593597626313e-13, 8.003417513150007e-15, -3.3083046649645223e-16),
    (0.5624833413264874, -0.0006763780522138608, -6.522641723015815e-05, 4.681145162385974e-07, 1.9980095097989752e-08,
     -3.800266036055436e-10, -7.834863287981878e-12, 3.502566792740762e-13, 1.7046372515938248e-15, -3.3965555756553693e-16),
    (0.5608737315336054, -0.0009310587324276877, -6.197025345048375e-05, 6.116980575665963e-07, 1.580839817594988e-08,
     -4.4451167565009403e-10, -2.953588161139906e-12, 3.333320215899869e-13, -3.4133355780038123e-15, -2.1613530056235284e-16),
    (0.5587688652020621, -0.0011711294834578353, -5.795671639931052e-05, 7.2009167585532e-07, 1.1274787939555587e-08,
     -4.5386588885989205e-10, 1.2093062296016373e-12, 2.5468177381886636e-13, -5.929067196969226e-15, -6.672547861992057e-17),
    (0.5562007060843008, -0.0013939904249237027, -5.3401430209081676e-05, 7.924605425466558e-07, 6.873156881773965e-09,
     -4.2070803060169495e-10, 4.084965948160635e-12, 1.5575364160840122e-13, -6.094425378050947e-15, 3.850898970970226e-17),
    (0.5532055559856462, -0.0015978994869224156, -4.851429349085574e-05, 8.313476166108979e-07, 2.948150836639974e-09,
     -3.612351148621684e-10, 5.618560248576326e-12, 6.656740820458685e-14, -4.90349147597419e-15, 8.504534192168956e-17),
    (0.5498223865965578, -0.0017819139437058075, -4.348296618126376e-05, 8.41411345558662e-07, -3.1358823447232416e-10,
     -2.902407748506764e-10, 6.060611613362592e-12, 9.18919385282576e-16, -3.2906168234940527e-15, 8.904613852563323e-17),
)
# fmt: on
_ERFCX = np.array(ERFCX_TABLE, dtype=np.float64)
_TAYLOR = np.array(TAYLOR, dtype=np.float64)  # Phi(x) - 1/2 = x sum_n TAYLOR[n] (x^2/2)^n, |x| < 1
_SQRT_HALF, _U_SCALE = math.sqrt(0.5), 2.0 / T_MAX  # the constants _ndtr_kernel.py was generated with
assert _ERFCX.shape == (PIECES_X + PIECES_W, ERFCX_DEGREE + 1) == (40, 10)  # _erfcx_nonneg is written out for degree 9


@njit(**JIT)
def _erfcx_nonneg(x: float) -> float:  # pragma: no cover - compiled
    """erfcx for ``x >= 0`` (inf included): the table, with fused multiply-adds."""
    if x < ERFCX_SPLIT:
        u = x * (PIECES_X / ERFCX_SPLIT)  # exact
        i = int(u)
        t = 2.0 * u - (2 * i + 1)  # exact
        c = _ERFCX[i]
        # Horner in two halves joined by t^5 (a dependency chain of six instead of nine; the high half is
        # below 3e-7 of the result, so this rounds as Horner does)
        high = c[5] + t * (c[6] + t * (c[7] + t * (c[8] + t * c[9])))
        low = c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * c[4])))
        return low + (t * t) * (t * t) * t * high
    u = (ERFCX_SPLIT * PIECES_W) / x  # PIECES_W w
    i = min(int(u), PIECES_W - 1)
    t = 2.0 * u - (2 * i + 1) if i else 2.0 * u  # the first piece is expanded about w = 0 (x = inf)
    p = _ERFCX[PIECES_X + i, ERFCX_DEGREE]
    for j in range(ERFCX_DEGREE - 1, -1, -1):
        p = p * t + _ERFCX[PIECES_X + i, j]
    return p / x


@njit(**_PLAIN)
def erfcx(x: float) -> float:  # pragma: no cover - compiled
    """``exp(x^2) erfc(x)``, float64 (see the module docstring). NaN in, NaN out."""
    if x >= 0.0:
        return _erfcx_nonneg(x)
    if x != x:
        return x
    if x < -6.1:  # erfcx(-x) is below an ulp of 2 exp(x^2); below -26.7 this overflows to inf
        return 2.0 * math.exp(x * x)
    return 2.0 * math.exp(x * x) - _erfcx_nonneg(-x)


_TAIL = np.array(TAIL, dtype=np.float64)


@njit(**JIT)
def ndtr(x: float) -> float:  # pragma: no cover - compiled
    """Standard normal CDF: :func:`cpu_fallback._ndtr_kernel.ndtr_from_exp` (what the generic kernel's
    ``special.ndtr`` computes, with the same flags: FMA contraction) taking only the branch ``x`` needs."""
    if abs(x) < CENTRAL:
        s = 0.5 * x * x
        p = _TAYLOR[_TAYLOR.shape[0] - 1]
        for j in range(_TAYLOR.shape[0] - 2, -1, -1):
            p = p * s + _TAYLOR[j]
        return 0.5 + x * p
    t = 2.0 / (2.0 + abs(x) * _SQRT_HALF)
    u = t * _U_SCALE - 1.0
    f = _TAIL[_TAIL.shape[0] - 1]
    for j in range(_TAIL.shape[0] - 2, -1, -1):
        f = f * u + _TAIL[j]
    lower = 0.5 * math.exp(-0.5 * (x * x)) * t * f
    return 1.0 - lower if x > 0.0 else lower


# Abramowitz & Stegun 26.2.23: |error| < 4.5e-4 for the tail guess
_AS_C = (2.515517, 0.802853, 0.010328)
_AS_D = (1.432788, 0.189269, 0.001308)


@njit(**JIT)
def ndtri(p: float) -> float:  # pragma: no cover - compiled
    """Inverse of the standard normal CDF, float64: -inf at 0, inf at 1, NaN outside [0, 1]."""
    if not (p > 0.0 and p < 1.0):
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        return math.nan
    y = p - 0.5  # exact for p >= 1/4
    if abs(y) <= 0.3:
        # inverse series x = sqrt(2 pi) (y + pi/3 y^3 + 7 pi^2/30 y^5), then Halley on x S(x^2/2) - y
        y2 = y * y
        x = SQRT_2PI * y * (1.0 + y2 * (math.pi / 3.0 + y2 * (7.0 * math.pi * math.pi / 30.0)))
        for _ in range(2):
            s = 0.5 * x * x
            acc = _TAYLOR[_TAYLOR.shape[0] - 1]
            for j in range(_TAYLOR.shape[0] - 2, -1, -1):
                acc = acc * s + _TAYLOR[j]
            u = (x * acc - y) * SQRT_2PI * math.exp(s)  # (Phi(x) - p) / phi(x)
            x = x - u / (1.0 + 0.5 * x * u)
        return x
    tail = p if y < 0.0 else 1.0 - p  # 1 - p exact here
    lp = math.log(tail)
    t = math.sqrt(-2.0 * lp)
    x = -(t - (_AS_C[0] + t * (_AS_C[1] + t * _AS_C[2])) / (1.0 + t * (_AS_D[0] + t * (_AS_D[1] + t * _AS_D[2]))))
    for _ in range(2):
        # (Phi(x) - tail) / phi(x) = sqrt(2 pi) (erfcx(-x / sqrt2) / 2 - tail e^{x^2/2}), x < 0
        u = SQRT_2PI * (0.5 * erfcx(-INV_SQRT2 * x) - math.exp(lp + 0.5 * x * x))
        x = x - u / (1.0 + 0.5 * x * u)
    return x if y < 0.0 else -x


@njit(**_PLAIN)
def _fmax(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.maximum``: NaN if either is NaN."""
    return a if (a >= b or a != a) else b


@njit(**_PLAIN)
def _fmin(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.minimum``: NaN if either is NaN."""
    return a if (a <= b or a != a) else b


@njit(**_PLAIN)
def _clip(a: float, lo: float, hi: float) -> float:  # pragma: no cover - compiled
    return _fmin(_fmax(a, lo), hi)


# ---- the normalised Black function (gpu_hedge._pricing._normalised_black, one lane) --------------------

_N_ASYM = len(_ASYMPTOTIC)
_ASYM = np.zeros((_N_ASYM, _N_ASYM + 1))
for _k, _row in enumerate(_ASYMPTOTIC):
    _ASYM[_k, : len(_row)] = _row  # row k has k + 2 coefficients


@njit(**_PLAIN)
def _asym_horner(k: int, e: float) -> float:  # pragma: no cover - compiled
    p = _ASYM[k, k + 1]
    for j in range(k, -1, -1):
        p = p * e + _ASYM[k, j]
    return p


@njit(**_PLAIN)
def _asymptotic_region(h: float, t: float) -> float:  # pragma: no cover - compiled
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    acc = _asym_horner(_N_ASYM - 1, e)
    for k in range(_N_ASYM - 1, 0, -1):
        acc = _asym_horner(k - 1, e) + (2 * k + 1) * q * acc
    return (t / r) * (2.0 + q * acc)


_small_t_series = njit(**_PLAIN)(small_t_series)


@njit(**_PLAIN)
def _small_t_region(h: float, t: float) -> float:  # pragma: no cover - compiled
    return _small_t_series(1.0 + h * SQRT_PI_OVER_2 * erfcx(-INV_SQRT2 * h), h, t)


@njit(**_PLAIN)
def _black_plain(x: float, s: float, b_max: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """``black_and_vega(..., accurate=False)``; ``b_max = exp(x / 2)``."""
    h = x / s
    t = 0.5 * s
    expo = math.exp(-0.5 * (h * h + t * t))
    second = 0.5 * expo * erfcx(INV_SQRT2 * (t - h))
    b = ndtr(h + t) * b_max - second
    return _fmax(b, 0.0), INV_SQRT_2PI * expo


@njit(**_PLAIN)
def _black_accurate(x: float, s: float, b_max: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """``black_and_vega(..., accurate=True)``: only the region the lane is in."""
    h = x / s
    t = 0.5 * s
    expo = math.exp(-0.5 * (h * h + t * t))
    if (x < s * ETA) and (0.5 * s * s + x < s * (TAU + ETA)):
        b = INV_SQRT_2PI * expo * _asymptotic_region(h, t)
    elif t < TAU:
        b = INV_SQRT_2PI * expo * _small_t_region(h, t)
    else:
        second = 0.5 * expo * erfcx(INV_SQRT2 * (t - h))
        if x + 0.5 * s * s > 0.85 * s:  # h + t > 0.85: b is mostly the first term
            b = ndtr(h + t) * b_max - second
        else:
            z = _fmax(-INV_SQRT2 * (h + t), -0.7)
            b = 0.5 * expo * erfcx(z) - second
    return _fmax(b, 0.0), INV_SQRT_2PI * expo


@njit(**_PLAIN)
def _rational_cubic(  # pragma: no cover - compiled
    z: float, zl: float, zr: float, yl: float, yr: float, dl: float, dr: float, r: float
) -> float:
    width = zr - zl
    if width == 0:
        return 0.5 * (yl + yr)
    u = (z - zl) / width
    v = 1.0 - u
    if r >= _RC_MAX:
        return yr * u + yl * v
    return (yr * u * u * u + (r * yr - width * dr) * u * u * v + (r * yl + width * dl) * u * v * v + yl * v * v * v) / (
        1.0 + (r - 3.0) * u * v
    )


@njit(**_PLAIN)
def _control_parameter(  # pragma: no cover - compiled
    zl: float, zr: float, yl: float, yr: float, dl: float, dr: float, d2: float, at_right: bool, prefer_shape: bool
) -> float:
    width = zr - zl
    if width == 0:
        width = 1.0
    secant = (yr - yl) / width
    num = 0.5 * width * d2 + (dr - dl)
    den = dr - secant if at_right else secant - dl
    if abs(den) < _TINY:
        fit = _RC_MAX if num > 0 else _RC_MIN
    else:
        fit = num / den
    if abs(num) < _TINY:
        fit = 0.0
    # Minimum for shape preservation (Delbourgo & Gregory 1985, (3.8) and (3.18)).
    monotonic = (dl * secant >= 0) and (dr * secant >= 0)
    convex = (dl <= secant) and (secant <= dr)
    concave = (dl >= secant) and (secant >= dr)
    if abs(secant) < _TINY:
        r1 = _RC_MAX if prefer_shape else -math.inf
    else:
        r1 = (dr + dl) / secant
    if not monotonic:
        r1 = -math.inf
    if convex or concave:
        dd = dr - dl
        a, c = dr - secant, secant - dl
        if (abs(a) < _TINY) or (abs(c) < _TINY):
            r2 = _RC_MAX if prefer_shape else -math.inf
        else:
            r2 = _fmax(abs(dd / a), abs(dd / c))
    else:
        r2 = _RC_MAX if (monotonic and prefer_shape) else -math.inf
    r_min = _fmax(_fmax(r1, r2), _RC_MIN) if (monotonic or convex or concave) else _RC_MIN
    return _fmax(fit, r_min)


@njit(**_PLAIN)
def _householder(newton: float, halley: float, hh3: float) -> float:  # pragma: no cover - compiled
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


@njit(**_PLAIN)
def implied_total_vol(beta: float, x: float, b_max: float) -> tuple[float, float, float]:  # pragma: no cover - compiled
    """``(s, ds, vega)`` of ``_normalised_black.implied_total_vol`` for one lane (``x <= 0``,
    ``|x| <= x_max``, ``0 < beta < b_max = e^{x/2}``), computing only the branch the lane is in."""
    ax = -x
    # The inflexion point s_c and the tangents there, which cut b = 0 at s_l and b = b_max at s_h.
    s_c = math.sqrt(2.0 * ax)
    b_c = 0.5 * b_max * (1.0 - erfcx(math.sqrt(ax)))
    v_c = INV_SQRT_2PI * b_max
    low = beta < b_c
    s_n = s_c - b_c / v_c if low else s_c + (b_max - b_c) / v_c
    s_n = _clip(s_n, _S_MIN, _S_MAX)
    b_n, v_n = _black_plain(x, s_n, b_max)
    outer = (beta < b_n) if low else (beta > b_n)
    lower = low and outer
    upper = outer and not low
    inv_v_c = 1.0 / v_c
    inv_v_n = 1.0 / _fmax(v_n, _TINY)
    # Each branch's rational cubic: nodes, slopes and curvature (outer: lower f = c |x| Phi(-z)^3, upper f = Phi(-s/2)).
    f_lo = cdf_n = 0.0
    if lower:
        z = ax / (SQRT3 * s_n)
        cdf_n = ndtr(-z)
        y = z * z
        s2 = s_n * s_n
        ratio = cdf_n / _fmax(INV_SQRT_2PI * math.exp(-0.5 * y), _TINY)  # Phi(-z) / phi(z); guess only
        e_lo = _fmin(y + 0.125 * s2, 300.0)
        f_lo = TWO_PI_OVER_SQRT27 * ax * cdf_n * cdf_n * cdf_n
        fp_lo = 2.0 * math.pi * y * cdf_n * cdf_n * math.exp(e_lo)
        fpp_lo = (math.pi / 6.0) * y / (s2 * s_n) * cdf_n * (
            8.0 * SQRT3 * s_n * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * ax * ax) * ratio
        ) * math.exp(2.0 * e_lo)  # fmt: skip
        zl, zr, yl, yr, dl, dr, d2 = 0.0, b_n, 0.0, f_lo, 1.0, fp_lo, fpp_lo
    elif upper:
        cdf_n = ndtr(-0.5 * s_n)
        s2 = s_n * s_n
        w = _fmin((x / s_n) * (x / s_n), 600.0)
        fp_hi = -0.5 * math.exp(0.5 * w)
        fpp_hi = SQRT_PI_OVER_2 * math.exp(_fmin(w + 0.125 * s2, 600.0)) * w / s_n
        zl, zr, yl, yr, dl, dr, d2 = b_n, b_max, cdf_n, 0.0, fp_hi, -0.5, fpp_hi
    elif low:
        zl, zr, yl, yr, dl, dr, d2 = b_n, b_c, s_n, s_c, inv_v_n, inv_v_c, 0.0
    else:
        zl, zr, yl, yr, dl, dr, d2 = b_c, b_n, s_c, s_n, inv_v_c, inv_v_n, 0.0
    if not math.isfinite(d2):
        d2 = 0.0
    r = _control_parameter(zl, zr, yl, yr, dl, dr, d2, low, outer)
    g = _rational_cubic(beta, zl, zr, yl, yr, dl, dr, r)
    # Round-off guard (extreme |x|): the quadratic through the same end data; outer maps inverted with one ndtri.
    if lower:
        u_lo = beta / (b_n if b_n > 0 else 1.0)
        f = g if g > 0 else (f_lo * u_lo + b_n * (1.0 - u_lo)) * u_lo
        cube = _fmax(f / (TWO_PI_OVER_SQRT27 * _fmax(ax, _TINY)), 0.0) ** (1.0 / 3.0)
        s = ax / (SQRT3 * _fmax(abs(ndtri(_clip(cube, _TINY, 0.5))), _S_MIN))
        s_lo, s_hi = _S_MIN, s_n
    elif upper:
        width_hi = b_max - b_n if b_max > b_n else 1.0
        u_hi = (beta - b_n) / width_hi
        f = g if g > 0 else (cdf_n * (1.0 - u_hi) + 0.5 * width_hi * u_hi) * (1.0 - u_hi)
        s = -2.0 * ndtri(_clip(f, _TINY, 0.5))
        s_lo, s_hi = s_n, _S_MAX
    else:
        s = g
        s_lo, s_hi = (s_n, s_c) if low else (s_c, s_n)
    use_gap = upper and beta > 0.5 * b_max
    ln_beta = math.log(beta) if lower else 0.0
    gap_beta = b_max - beta if use_gap else 1.0
    ds = 0.0
    bp = 0.0
    for step in range(2):
        if step:  # the first step left the bracket: restart from its middle (extreme |x| only)
            if not ((s >= s_lo) and (s <= s_hi)):
                s = 0.5 * (s_lo + s_hi)
        s = _clip(s, _S_MIN, _S_MAX)
        if step:
            b, bp = _black_accurate(x, s, b_max)
        else:
            b, bp = _black_plain(x, s, b_max)
        if (b > beta) and (s < s_hi):
            s_hi = s
        if (b < beta) and (s > s_lo):
            s_lo = s
        h = x / s
        halley = h * h / s - 0.25 * s  # b''/b'
        hh3 = halley * halley - 3.0 * (h / s) * (h / s) - 0.25  # b'''/b'
        bp_safe = _fmax(bp, _TINY)
        underflow = False  # bisect instead
        if lower:  # g = 1/ln b - 1/ln beta
            if (b > 0) and (bp > 0):
                ln_b = math.log(b)
                bpob = bp_safe / b
            else:
                ln_b = ln_beta
                bpob = bp_safe
                underflow = True
            k = 1.0 + 2.0 / ln_b
            n = (ln_beta - ln_b) * ln_b / ln_beta / bpob
            hl = halley - bpob * k
            h3 = hh3 + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b)) - 3.0 * halley * bpob * k
        elif use_gap:  # g = ln(b_max - beta) - ln(b_max - b)
            gap = b_max - b
            if not ((gap > 0) and (bp > _TINY)):
                gap = gap_beta
                underflow = True
            gp = bp_safe / gap
            n = -math.log(gap_beta / gap) / gp
            hl = halley + gp
            h3 = hh3 + gp * (2.0 * gp + 3.0 * halley)
        else:  # g = b - beta
            n = (beta - b) / bp_safe
            hl = halley
            h3 = hh3
        ds = _householder(n, hl, h3)
        if underflow:
            ds = 0.5 * (s_lo + s_hi) - s
        ds = _fmax(ds, -0.5 * s)
        s = s + ds
    return s, ds, bp


# ---- the kernels ----------------------------------------------------------------------------------------


@njit(nogil=True, **_PLAIN)
def _lognormal_loop(  # pragma: no cover - compiled
    K: Any, T: Any, P: Any, phi: Any, F: Any, D: Any, x: Any, norm: Any, b_max: Any, sinh2: Any, vol: Any, status: Any
) -> None:
    """``implied_vol.lognormal_kernel`` option by option, given its NumPy prelude (:func:`_lognormal_prelude`)."""
    for i in range(vol.shape[0]):
        Ki, Ti, Pi, p, Fi, Di = K[i], T[i], P[i], phi[i], F[i], D[i]
        # Bounds in price space: [D * intrinsic, D * (F for a call, K for a put)].
        itm = p * (Fi - Ki) > 0
        slack = 4.0 * _EPS * Di * _fmax(Fi, Ki) if itm else 0.0  # rounding of F - K
        below = Pi < Di * (p * (Fi - Ki) if itm else 0.0) - slack
        cap = Di * (Fi if p > 0 else Ki)
        above = Pi > cap * (1.0 + 8.0 * _EPS) + slack
        # Normalised out-of-the-money problem: x = ln(F/K) <= 0, beta = time value / (D sqrt(F K)).
        ax = abs(x[i])
        beta_otm = Pi * norm[i]
        if p * x[i] > 0:
            beta_otm = beta_otm - sinh2[i]
        ok = False
        v = math.nan
        if (Ti > 0) and (Ki > 0) and (ax <= _X_MAX) and (beta_otm > 0) and (beta_otm < b_max[i]) and not (below or above):
            s, ds, vega = implied_total_vol(beta_otm, -ax, b_max[i])
            sqrtT = math.sqrt(Ti)
            v = s / sqrtT
            identifiable = (4.0 * _EPS * Pi + _TINY) * norm[i] <= _VOL_TOL * sqrtT * vega
            ok = identifiable and (abs(ds) <= CONVERGED * s) and math.isfinite(v)
        vol[i] = v if ok else math.nan
        status[i] = _BELOW if below else (_ABOVE if above else (_OK if ok else _NOT_IDENTIFIABLE))


def _lognormal_prelude(S: Any, K: Any, T: Any, r: Any, q: Any, forward: bool) -> tuple[np.ndarray, ...]:
    """The generic kernel's option-level transcendentals, as the same NumPy calls (so the bounds and the
    normalisation are bit for bit the generic kernel's): ``F, D, x = ln(F/K), 1 / (D sqrt(F K)),
    e^{-|x|/2}, 2 sinh(|x|/2)``. Vectorised, they also cost a fraction of scalar ``libm`` calls."""
    Ks = np.where(K > 0, K, 1.0)
    x = np.divide(S, Ks)
    np.log(x, out=x)
    rT = np.multiply(r, T)
    if forward:  # carry 0: F = S, x = ln(S/K), e^{rT - carry T / 2} = e^{rT}
        F = S
        e = rT
    else:
        cT = np.subtract(r, q)
        cT *= T
        F = np.exp(cT)
        F *= S
        x += cT
        cT *= 0.5
        e = np.subtract(rT, cT, out=cT)
    norm = np.exp(e)
    root = np.sqrt(S)
    root *= np.sqrt(Ks)
    norm /= root
    D = np.negative(rT, out=rT)
    np.exp(D, out=D)
    half = np.abs(x)
    half *= 0.5
    sinh2 = np.expm1(half)
    b_max = np.negative(half, out=half)
    sinh2 -= np.expm1(b_max)
    np.exp(b_max, out=b_max)
    return F, D, x, norm, b_max, sinh2


@njit(nogil=True, **_PLAIN)
def _bachelier_loop(F: Any, K: Any, T: Any, Pf: Any, phi: Any, vol: Any, status: Any) -> None:  # pragma: no cover - compiled
    """``implied_vol.bachelier_kernel`` option by option, given the undiscounted prices ``Pf``."""
    for i in range(vol.shape[0]):
        Fi, Ki, Ti = F[i], K[i], T[i]
        delta = Fi - Ki
        ad = abs(delta)
        itm = phi[i] * delta > 0
        slack = 4.0 * _EPS * _fmax(abs(Fi), abs(Ki)) if itm else 0.0
        tv = Pf[i] - (ad if itm else 0.0)
        below = tv < -slack
        ok = False
        v = math.nan
        if (Ti > 0) and (tv > 0) and not below:
            if ad == 0:  # at the money
                v = SQRT_2PI * tv
                d = 0.0
                converged = True
            else:
                # ratio = time value / |F - K| = -Phi~(x*), x* = -|F - K| / v < 0.
                ratio = tv / ad
                if ratio > -_NEAR:
                    g = 1.0 / (-ratio - 0.5)
                    g2 = g * g
                    xi = (0.032114372355 - g2 * (0.016969777977 - g2 * (2.6207332461e-3 - 9.6066952861e-5 * g2))) / (
                        1.0 - g2 * (0.6635646938 - g2 * (0.14528712196 - 0.010472855461 * g2))
                    )
                    xb = g * (INV_SQRT_2PI + xi * g2)
                else:
                    hq = math.sqrt(-math.log(ratio))
                    xb = (9.4883409779 - hq * (9.6320903635 - hq * (0.58556997323 + 2.1464093351 * hq))) / (
                        1.0 - hq * (0.65174820867 + hq * (1.5120247828 + 6.6437847132e-5 * hq))
                    )
                xb = _fmin(xb, -_TINY)
                ln_ratio = math.log(ratio)
                step = 0.0
                for _ in range(2):
                    # q = (Phi~(xb) + ratio) / phi(xb), each term scaled by 1/phi(xb) so nothing under- or overflows.
                    qq = SQRT_PI_OVER_2 * erfcx(-INV_SQRT2 * xb) + 1.0 / xb
                    qq = qq + SQRT_2PI * math.exp(_fmin(ln_ratio + 0.5 * xb * xb, 700.0))
                    x2 = xb * xb
                    step = (
                        3.0 * qq * x2 * (2.0 - qq * xb * (2.0 + x2))
                        / (6.0 + qq * xb * (-12.0 + xb * (6.0 * qq + xb * (-6.0 + qq * xb * (3.0 + x2)))))
                    )  # fmt: skip
                    xb = _fmin(xb + step, -_TINY)
                v = ad / -xb
                d = xb
                converged = abs(step) <= CONVERGED * -xb
            sqrtT = math.sqrt(Ti)
            vi = v / sqrtT
            identifiable = 4.0 * _EPS * abs(Pf[i]) + _TINY <= _VOL_TOL * v * INV_SQRT_2PI * math.exp(-0.5 * d * d)
            ok = identifiable and converged and math.isfinite(vi) and (vi > 0)
            v = vi
        vol[i] = v if ok else math.nan
        status[i] = _BELOW if below else (_OK if ok else _NOT_IDENTIFIABLE)


def implied_vol_kernel(model: str) -> Any:
    """``kernel(S, K, T, price, r, q, phi, out=...)`` for :func:`cpu_fallback.run_chunked` with
    ``into=True``: writes ``out["vol"]`` and ``out["status"]`` (IVStatus codes as floats) of one
    chunk, as ``gpu_hedge._pricing.implied_vol``'s kernel for ``model`` does. Inputs are chunk
    slices or 0-d arrays, float64; ``phi`` is +1 (call) or -1 (put)."""
    if model not in MODELS:
        raise ValueError(f"no native implied-vol kernel for model {model!r}")
    forward = model == "black76"

    def kernel(S: Any, K: Any, T: Any, P: Any, r: Any, q: Any, phi: Any, out: Mapping[str, np.ndarray]) -> None:
        vol, status = out["vol"], out["status"]
        n = vol.shape[0]
        S, K, T, P, r, q, phi = (_full(a, n) for a in (S, K, T, P, r, q, phi))
        if model == "bachelier":
            Pf = np.multiply(r, T)
            np.exp(Pf, out=Pf)
            Pf *= P
            _bachelier_loop(S, K, T, Pf, phi, vol, status)
        else:
            _lognormal_loop(K, T, P, phi, *_lognormal_prelude(S, K, T, r, q, forward), vol, status)

    return kernel


if __name__ == "__main__":
    print(table_source(fit_erfcx()))
