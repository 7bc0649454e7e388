#!/usr/bin/python3
"""Validate ecrm's in-database BG/NBD and Gamma-Gamma fits against a direct numerical maximisation with
SciPy on the same summary data, and ecrm's closed forms against the same formulas evaluated with SciPy.

    PGHOST=... PGDATABASE=db_with_orders /usr/bin/python3 test/bench/analytics_clv_validate.py [AS_OF] [UNIT]

The `lifetimes` package is not available here (no PyPI); its likelihoods are the ones written below
(Fader, Hardie & Lee 2005; Fader & Hardie 2013), maximised with L-BFGS-B and Nelder-Mead from several starts.
Exits non-zero when ecrm's maximum is worse than SciPy's by more than 1e-6 relative, or a closed form differs.
"""
import sys
import time

import mpmath as mp
import numpy as np
import psycopg2
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

AS_OF = sys.argv[1] if len(sys.argv) > 1 else '2011-09-01 00:00+00'
UNIT = sys.argv[2] if len(sys.argv) > 2 else 'day'

conn = psycopg2.connect('')
cur = conn.cursor()
cur.execute('SELECT frequency, recency, t, monetary FROM ecrm.clv_summary(%s, %s)', (AS_OF, UNIT))
rows = np.array(cur.fetchall(), dtype=float)
x, tx, T, m = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
print(f'== data: {len(x)} customers as of {AS_OF} in {UNIT}s, {int((x > 0).sum())} repeat buyers, '
      f'mean frequency {x.mean():.3f}, mean T {T.mean():.1f}')


def bgnbd_ll(params):
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide='ignore', invalid='ignore'):
        a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + tx), -np.inf)
    return np.sum(a1 + a2 + np.logaddexp(a3, a4))


def gg_ll(params, xs, ms):
    p, q, v = params
    return np.sum(gammaln(p * xs + q) - gammaln(p * xs) - gammaln(q) + q * np.log(v)
                  + (p * xs - 1) * np.log(ms) + p * xs * np.log(xs) - (p * xs + q) * np.log(xs * ms + v))


def fit(ll, starts, bounds):
    def neg(u):
        v = -ll(np.exp(u))
        return v if np.isfinite(v) else 1e300
    best = None
    for s in starts:
        for method in ('L-BFGS-B', 'Nelder-Mead'):
            opts = {'maxiter': 20000, 'xatol': 1e-10, 'fatol': 1e-12} if method == 'Nelder-Mead' else {'maxiter': 20000}
            res = minimize(neg, np.log(s), method=method, bounds=bounds if method == 'L-BFGS-B' else None,
                           options=opts)
            if best is None or res.fun < best.fun:
                best = res
    return np.exp(best.x), -best.fun


t0 = time.time()
sp_bg, sp_bg_ll = fit(bgnbd_ll, [(1, 1, 1, 1), (0.5, T.mean() / 4, 0.8, 2.5), (2, T.mean(), 0.3, 1)],
                      [(-25, 25)] * 4)
rep = (x > 0) & (m > 0)
sp_gg, sp_gg_ll = fit(lambda p: gg_ll(p, x[rep], m[rep]), [(1, 1, 1), (5, 3, m[rep].mean()), (1, 5, 4 * m[rep].mean())],
                      [(-25, 25)] * 3)
sp_time = time.time() - t0

t0 = time.time()
cur.execute('SELECT r, alpha, a, b, bgnbd_log_likelihood, p, q, v, gamma_gamma_log_likelihood, bgnbd_converged, '
            'gamma_gamma_converged FROM ecrm.fit_clv(%s, %s)', (AS_OF, UNIT))
e = cur.fetchone()
ecrm_time = time.time() - t0
conn.rollback()   # leave no model row behind

print('== BG/NBD                 ecrm (C, Nelder-Mead)     SciPy (L-BFGS-B / Nelder-Mead)')
for name, a_, b_ in zip(('r', 'alpha', 'a', 'b'), e[0:4], sp_bg):
    print(f'   {name:<22}{a_:>24.6g}{b_:>24.6g}')
print(f'   {"log-likelihood":<22}{e[4]:>24.6f}{sp_bg_ll:>24.6f}')
print(f'   {"ll at own params (py)":<22}{bgnbd_ll(e[0:4]):>24.6f}{sp_bg_ll:>24.6f}')
print('== Gamma-Gamma')
for name, a_, b_ in zip(('p', 'q', 'v'), e[5:8], sp_gg):
    print(f'   {name:<22}{a_:>24.6g}{b_:>24.6g}')
print(f'   {"log-likelihood":<22}{e[8]:>24.6f}{sp_gg_ll:>24.6f}')
print(f'== time: ecrm.fit_clv {ecrm_time:.2f} s (both models, summary included); SciPy {sp_time:.2f} s (6 runs per model)')

fail = 0
if e[4] < sp_bg_ll - 1e-6 * abs(sp_bg_ll):
    print('FAIL: ecrm BG/NBD maximum is worse than SciPy\'s'); fail = 1
if e[8] < sp_gg_ll - 1e-6 * abs(sp_gg_ll):
    print('FAIL: ecrm Gamma-Gamma maximum is worse than SciPy\'s'); fail = 1
if abs(bgnbd_ll(e[0:4]) - e[4]) > 1e-6 * abs(e[4]):
    print('FAIL: ecrm\'s log-likelihood differs from the Python formula at the same parameters'); fail = 1

# closed forms against 30-digit mpmath (python3-mpmath): at the fitted parameters and at the textbook CDNOW
# ones (r 0.243, alpha 4.414, a 0.793, b 2.426), on 40 customers (scipy.special.hyp2f1 is left out: with b near
# 7e5 it runs for minutes)
mp.mp.dps = 30
idx = np.linspace(0, len(x) - 1, 40).astype(int)
horizon = 365.0 if UNIT == 'day' else 52.0


def mp_expected(r, alpha, a, b, xi, txi, Ti, t):
    r, alpha, a, b, xi, txi, Ti, t = (mp.mpf(v) for v in (r, alpha, a, b, xi, txi, Ti, t))
    # Euler's transformation 2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z) is exact; it keeps
    # mpmath's series short when b is large (the fitted parameters lie on the ridge where b -> infinity)
    A, B, C, z = r + xi, b + xi, a + b + xi - 1, t / (alpha + Ti + t)
    hyp = (1 - z) ** (C - A - B) * mp.hyp2f1(C - A, C - B, C, z, maxterms=10**6)
    numer = (a + b + xi - 1) / (a - 1) * (1 - hyp * ((alpha + Ti) / (alpha + Ti + t)) ** (r + xi))
    denom = 1 + (1 if xi > 0 else 0) * (a / (b + xi - 1)) * ((alpha + Ti) / (alpha + txi)) ** (r + xi)
    return numer / denom


def mp_palive(r, alpha, a, b, xi, txi, Ti):
    r, alpha, a, b, xi, txi, Ti = (mp.mpf(v) for v in (r, alpha, a, b, xi, txi, Ti))
    return 1 / (1 + (1 if xi > 0 else 0) * (a / (b + xi - 1)) * ((alpha + Ti) / (alpha + txi)) ** (r + xi))


for label, prm in (('fitted (ecrm)', tuple(e[0:4])), ('CDNOW textbook', (0.243, 4.414, 0.793, 2.426))):
    worst_e = worst_p = 0.0
    for i in idx:
        cur.execute('SELECT ecrm.bgnbd_expected_purchases(%s,%s,%s,%s,%s,%s,%s,%s), ecrm.bgnbd_p_alive(%s,%s,%s,%s,%s,%s,%s)',
                    prm + (x[i], tx[i], T[i], horizon) + prm + (x[i], tx[i], T[i]))
        ee, pa = cur.fetchone()
        if label.startswith('CDNOW'):   # (mpmath's 2F1 stalls on some customers at the ridge parameters, b ~ 7e5)
            truth = mp_expected(*prm, x[i], tx[i], T[i], horizon)
            worst_e = max(worst_e, float(abs(ee - truth) / abs(truth)))
        worst_p = max(worst_p, float(abs(pa - mp_palive(*prm, x[i], tx[i], T[i]))))
    print(f'== closed forms at {label} parameters, 40 customers, against mpmath: '
          + (f'expected purchases in {horizon:g} {UNIT}s max rel. error {worst_e:.1e}; ' if label.startswith('CDNOW') else '')
          + f'P(alive) max abs. error {worst_p:.1e}')
    if worst_e > 1e-8 or worst_p > 1e-12:
        print('FAIL: a closed form differs'); fail = 1
worst_h = 0.0
for (aa, bb, cc, zz) in [(0.5, 1.5, 2.5, 0.3), (20.7, 21.3, 22.1, 0.9), (3.2, 100.5, 104.1, 0.95), (1, 1, 2, -0.5),
                         (80.7, 80.9, 81.4, 0.7), (0.8, 0.2, 1.1, 0.999)]:
    cur.execute('SELECT ecrm.hyp2f1(%s,%s,%s,%s)', (aa, bb, cc, zz))
    truth = mp.hyp2f1(aa, bb, cc, zz, maxterms=10**7)
    worst_h = max(worst_h, float(abs(cur.fetchone()[0] - truth) / abs(truth)))
print(f'== ecrm.hyp2f1 against mpmath on 6 cases (z up to 0.999): max rel. error {worst_h:.1e}')
if worst_h > 1e-10:
    print('FAIL: hyp2f1 differs'); fail = 1
print('validation:', 'FAILED' if fail else 'ok')
sys.exit(fail)
