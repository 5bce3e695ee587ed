"""Near-minimax polynomial fits for the SIMD math in simd_math_*.h.
Lawson's iteratively-reweighted least squares on a dense grid, in mpmath-free
double precision (targets are ~1e-8 relative, far above double noise).
Run: python3 fit_math.py   (prints coefficients and the float32-evaluated error)."""
import numpy as np
from scipy.special import erf, erfc

def lawson(basis, f, w, iters=200):
    """Minimise max |w * (basis @ c - f)|; returns c."""
    lam = np.ones(len(f)) / len(f)
    for _ in range(iters):
        sw = np.sqrt(lam) * w
        c, *_ = np.linalg.lstsq(basis * sw[:, None], f * sw, rcond=None)
        e = np.abs(w * (basis @ c - f))
        lam = lam * e
        lam /= lam.sum()
    return c

def horner32(c, x):
    x = np.float32(x); r = np.float32(c[-1]) * np.ones_like(x)
    for ci in c[-2::-1]:
        r = (r * x + np.float32(ci)).astype(np.float32)
    return r

def show(name, c, err):
    print(f"{name}: max err {err:.3e}")
    for i, ci in enumerate(c):
        print(f"   c{i} = {np.float32(ci)!r:>20}  ({ci:.17g})")

# erf(t) = t * P(t^2), t in [0, 1]; relative error
t = np.linspace(0, 1, 20001); s = t * t
for deg in (5, 6):
    B = np.vander(s, deg + 1, increasing=True)
    f = np.where(t > 0, erf(t) / np.where(t > 0, t, 1), 2 / np.sqrt(np.pi))
    c = lawson(B, f, np.ones_like(t))
    r = t.astype(np.float32) * horner32(c, (t * t).astype(np.float32))
    show(f"erf small deg {deg} (rel, f32 eval)", c, np.max(np.abs(r - erf(t)) / np.maximum(erf(t), 1e-30)))

# erfc(t) = exp(Q(t)), t in [1, 4]; abs error in erfc (what erf/GELU sees)
t = np.linspace(1, 4, 20001)
for deg in (7, 8, 9):
    B = np.vander(t, deg + 1, increasing=True)
    c = lawson(B, np.log(erfc(t)), erfc(t))
    q = horner32(c, t.astype(np.float32)).astype(np.float64)
    show(f"erfc large deg {deg} (abs, exp exact)", c, np.max(np.abs(np.exp(q) - erfc(t))))

# exp(r), r in [-ln2/2, ln2/2]; relative
r = np.linspace(-np.log(2) / 2, np.log(2) / 2, 20001)
for deg in (5, 6):
    B = np.vander(r, deg + 1, increasing=True)
    c = lawson(B, np.exp(r), np.exp(-r))
    show(f"exp deg {deg} (rel)", c, np.max(np.abs(horner32(c, r.astype(np.float32)) / np.exp(r) - 1)))

# tanh(x) = x + x^3 P(x^2), x in [0, 0.625]; relative
x = np.linspace(1e-4, 0.625, 20001); s = x * x
for deg in (4, 5, 6):
    B = np.vander(s, deg + 1, increasing=True)
    c = lawson(B, (np.tanh(x) - x) / x**3, x**3 / np.tanh(x))
    xf = x.astype(np.float32)
    v = xf + xf * xf * xf * horner32(c, (xf * xf))
    show(f"tanh small deg {deg} (rel)", c, np.max(np.abs(v / np.tanh(x) - 1)))

# 2^f, f in [-1/2, 1/2]; relative (softmax: exp(x) = 2^(x log2 e), the scale folded in)
f = np.linspace(-0.5, 0.5, 20001)
for deg in (5, 6):
    B = np.vander(f, deg + 1, increasing=True)
    c = lawson(B, np.exp2(f), np.exp2(-f))
    show(f"exp2 deg {deg} (rel)", c, np.max(np.abs(horner32(c, f.astype(np.float32)) / np.exp2(f) - 1)))
