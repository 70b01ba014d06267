"""The column kernels' generated FFTs (hyenadna.ops.dftgen) against the direct DFT, float64.

The traced program is run in Python floats (``evaluate_*``): the same operations the emitted C
performs, so a wrong index map or a dropped term shows here; the GPU tests of the column kernels
(tests/test_columns.py) then hold the compiled code to the torch twins.
"""

import cmath
import random

import pytest

from hyenadna.ops import dftgen


@pytest.mark.parametrize("rows", [1, 2, 4, 8, 16, 32])
def test_traced_ffts_equal_the_direct_dft(rows):
    rng = random.Random(rows)
    n, half = dftgen.N1, dftgen.N1 // 2
    x = [rng.gauss(0, 1) for _ in range(rows)]
    want = [sum(x[j] * cmath.exp(-2j * cmath.pi * j * k / n) for j in range(rows))
            for k in range(half + 1)]
    assert max(abs(a - b) for a, b in zip(dftgen.evaluate_forward(x), want)) < 1e-13
    spec = [complex(rng.gauss(0, 1), rng.gauss(0, 1)) for _ in range(half + 1)]
    want_y = [sum((spec[k] * cmath.exp(2j * cmath.pi * j * k / n)).real for k in range(half + 1))
              for j in range(rows)]
    got_y = dftgen.evaluate_inverse(spec, rows)
    assert max(abs(a - b) for a, b in zip(got_y, want_y)) < 1e-13


@pytest.mark.parametrize("sign", [-1, 1])
def test_traced_split_dft_equals_the_direct_dft(sign):
    rng = random.Random(sign)
    p = dftgen.SPLIT_P
    x = [complex(rng.gauss(0, 1), rng.gauss(0, 1)) for _ in range(p)]
    want = [sum(x[j] * cmath.exp(sign * 2j * cmath.pi * j * k / p) for j in range(p))
            for k in range(p)]
    assert max(abs(a - b) for a, b in zip(dftgen.evaluate_split(x, sign), want)) < 1e-13
    assert sum(dftgen.flops("split").values()) <= 60  # 52 additions and 4 products at P = 8
    name = "split_fft_fwd" if sign < 0 else "split_fft_inv"
    assert name in dftgen.split(sign)


def test_trivial_factors_fold_away():
    # the forward at ROWS = 16: about half the direct DFT's 16 · 17 complex-by-real products
    # (544 multiply-adds); a single row needs no arithmetic at all (every bin is x[0])
    ops = dftgen.flops("forward", 16)
    assert sum(ops.values()) - ops.get("neg", 0) < 300, ops
    assert dftgen.flops("forward", 1) == {}
    text = dftgen.forward(16)
    assert "cols_fft_fwd" in text and "* 0.0" not in text and "* 1.0000" not in text
