"""Near-minimax polynomial fits for the SIMD math in simd_math_*.h.
Lawson's iteratively-reweighted least squares on a dense grid, in mpmath-free
double precision (targets are ~1e-8 relative, far above double noise).
Run: python3 docs/tools/fit_simd_math.py   (prints coefficients and the float32-evaluated error)."""
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

# erf(t), t in [0, 4): pieces of width 4 / pieces, one vpermps table of as many entries per
# coefficient (AVX-512: 16 pieces of degree 5, simd_math_avx512.h; AVX2: 8 of degree 6,
# simd_math_avx2.h), each P_i(v) in v = t * pieces / 4 - i in [0, 1); absolute error, float32
# evaluation as the kernels do it (tp = t * pieces / 4, v = tp - trunc(tp)).
def erf_table(deg, pieces):
    v = np.linspace(0, 1, 4001)
    table = []
    for i in range(pieces):
        c = lawson(np.vander(v, deg + 1, increasing=True), erf((i + v) * 4 / pieces),
                   np.ones_like(v))
        table.append(c.astype(np.float32))
    return np.array(table)

for deg, pieces in ((5, 16), (6, 8)):
    table = erf_table(deg, pieces)
    t = np.linspace(0, 4, 400001)[:-1]
    tp = (t.astype(np.float32) * np.float32(pieces / 4)).astype(np.float32)
    i = np.minimum(tp.astype(np.int32), pieces - 1)
    v = (tp - i.astype(np.float32)).astype(np.float32)
    r = np.zeros_like(v) + table[i, -1]
    for j in range(table.shape[1] - 2, -1, -1):
        r = (r * v + table[i, j]).astype(np.float32)
    err = np.max(np.abs(r - erf(tp.astype(np.float64) * 4 / pieces)))
    print(f"erf table ({pieces} x deg {deg}, abs, f32 eval): max err {err:.3e}")
    for j in range(table.shape[1]):
        print(f"  c{j}: " + ", ".join(f"{x:.9g}f" for x in table[:, j].tolist()))
