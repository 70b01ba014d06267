"""Pointwise products of spectra for the long convolution: Triton on CUDA, torch elsewhere.

    mul_spectra(out, a, b, conj_b)    out = a · conj(b) (or a · b), b broadcast over a's batch
    backward_products(g, w, k)        w ← g · conj(w) and g ← g · conj(k) in one pass
    packed_product(a, b, conj_b)      pack(a · b): the product ready for a half-length C2C inverse
    packed_backward_products(g, w, k) pack(g · conj(k)), pack(g · conj(w)) in one pass
    unpacked_inverse(z)               the real signal from a packed half spectrum

The backward needs products with a conjugate (conj(K') · G for the input gradient, conj(W) · G
for the filter's). torch materialises a lazy conj before multiplying: a conj pass (read 8, write
8 bytes per complex value) plus the product; on an H100 the forward's stored conj(K') and the
backward's conj(W) were 2.9 ms of the long conv's 61 ms at L = 1M
(benchmarks/results/fourstep/sweep_h100.json). The kernel conjugates on the fly: one pass.
``out`` may be ``a`` or ``b`` (in place); each value is read before it is written.

The backward needs both of its products from the same G (conj(W) · G for dk, conj(K') · G for
dw): ``backward_products`` reads G, W and K' once and writes both results over G and W, five
passes over the spectrum instead of two ``mul_spectra`` calls' six (1/6 of their traffic: ~0.75
of 4.5 ms per 1M-long layer on an H100).

Packed inverse. torch's irfft clones its input first (cuFFT's C2R overwrites it): one more read
and write of the spectrum per inverse, 0.03 ms of the 0.54 ms of kernels in the 8k operator on an
H100. The real inverse of length n = 2M can instead run as a complex inverse of length M on

    Z[k] = (X[k] + conj(X[M−k])) + i · (X[k] − conj(X[M−k])) · e^(2πik/n),   k = 0 .. M−1

(X[M+k] = conj(X[M−k]) for a real signal, so X[k] + X[k+M] transforms to y's even samples and
(X[k] − X[k+M]) · e^(2πik/n) to its odd ones): then y[2m] = Re z[m], y[2m+1] = Im z[m] for
z = unscaled inverse DFT_M(Z), i.e. y is z's memory read as reals. The kernels build Z from the
product itself, so the product's pass writes Z and nothing is cloned. X[0] and X[M] must be real
(they are, up to rounding, for spectra of real signals; irfft drops their imaginary parts, the
packed form does not). ``unpacked_inverse`` needs n even; the callers fall back to irfft
otherwise.
"""

from __future__ import annotations

import math

import torch

from hyenadna.ops.layout import triton, use_triton

if triton is not None:
    import triton.language as tl

BLOCK = 1024  # complex values per program
PACK_BLOCK = 512  # mirrored pairs per program of the packing kernel


def mul_spectra(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, conj_b: bool) -> None:
    """out = a · conj(b) if conj_b else a · b; a and out (..., *b.shape), all contiguous."""
    if out.shape != a.shape or a.shape[a.dim() - b.dim():] != b.shape:
        raise ValueError(f"mul_spectra needs out {tuple(out.shape)} == a {tuple(a.shape)} "
                         f"ending in b {tuple(b.shape)}")
    if use_triton(out) and out.dtype == a.dtype == b.dtype == torch.complex64:
        mul_spectra_triton(out, a, b, conj_b)
    else:
        mul_spectra_torch(out, a, b, conj_b)


def _check_contiguous(op: str, **tensors: torch.Tensor) -> None:
    # the kernels index every operand as one flat run of complex values
    for name, t in tensors.items():
        if not t.is_contiguous():
            raise ValueError(f"{op} needs a contiguous {name}")


def backward_products(g: torch.Tensor, w: torch.Tensor, k: torch.Tensor) -> None:
    """In place: w ← g · conj(w), g ← g · conj(k); g and w (..., *k.shape), k broadcast over
    the leading dims; all contiguous."""
    if g.shape != w.shape or g.shape[g.dim() - k.dim():] != k.shape:
        raise ValueError(f"backward_products needs g {tuple(g.shape)} == w {tuple(w.shape)} "
                         f"ending in k {tuple(k.shape)}")
    if use_triton(g) and g.dtype == w.dtype == k.dtype == torch.complex64:
        backward_products_triton(g, w, k)
    else:
        backward_products_torch(g, w, k)


def backward_products_torch(g: torch.Tensor, w: torch.Tensor, k: torch.Tensor) -> None:
    """Torch twin of ``backward_products``."""
    torch.mul(g, w.conj(), out=w)
    torch.mul(g, k.conj(), out=g)


def backward_products_triton(g: torch.Tensor, w: torch.Tensor, k: torch.Tensor) -> None:
    """Triton ``backward_products`` (complex64; CUDA, or any device under TRITON_INTERPRET=1)."""
    _check_contiguous("backward_products_triton", g=g, w=w, k=k)
    total = g.numel()
    if total == 0:
        return
    _backward_products_kernel[(triton.cdiv(total, BLOCK),)](
        torch.view_as_real(g), torch.view_as_real(w), torch.view_as_real(k), total, k.numel(),
        BLOCK=BLOCK)


def packed_product(a: torch.Tensor, b: torch.Tensor, conj_b: bool) -> torch.Tensor:
    """pack(a · b) (or a · conj(b)): a (..., M+1) half spectrum, b (..., M+1) broadcast over
    a's leading dims → Z (..., M) for ``unpacked_inverse`` (see the module docstring)."""
    _check_half_spectra(a, b)
    if use_triton(a) and a.dtype == b.dtype == torch.complex64:
        return _packed_triton(a, b, None, conj_b)[0]
    return pack_torch(a * (b.conj() if conj_b else b))


def packed_backward_products(g: torch.Tensor, w: torch.Tensor, k: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(pack(g · conj(k)), pack(g · conj(w))): the backward's two products (``backward_products``)
    packed for ``unpacked_inverse``, in one pass; g and w (..., M+1), k broadcast."""
    _check_half_spectra(g, k)
    if g.shape != w.shape:
        raise ValueError(f"packed_backward_products needs g {tuple(g.shape)} == w "
                         f"{tuple(w.shape)}")
    if use_triton(g) and g.dtype == w.dtype == k.dtype == torch.complex64:
        return _packed_triton(g, k, w, True)
    return pack_torch(g * k.conj()), pack_torch(g * w.conj())


def pack_torch(x: torch.Tensor) -> torch.Tensor:
    """Torch twin of the packing: x (..., M+1) half spectrum → Z (..., M)."""
    m = x.shape[-1] - 1
    k = torch.arange(m, device=x.device)
    e = torch.polar(torch.ones((), dtype=torch.float64, device=x.device),
                    math.pi * k.double() / m).to(x.dtype)  # e^(2πik/n), n = 2M
    mirror = x[..., m - k].conj()  # conj(X[M − k]): X[M], X[M−1], ..., X[1]
    return (x[..., :m] + mirror) + 1j * (x[..., :m] - mirror) * e


def unpacked_inverse(z: torch.Tensor) -> torch.Tensor:
    """The real signal y (..., 2M) whose half spectrum packed to z (..., M): unscaled, like
    ``torch.fft.irfft(x, n=2M, norm="forward")``."""
    return torch.view_as_real(torch.fft.ifft(z, norm="forward")).flatten(-2)


def _check_half_spectra(a: torch.Tensor, b: torch.Tensor) -> None:
    # the length n = 2M is the caller's to know (n and n + 1 share M + 1 bins): it must be even
    if a.shape[a.dim() - b.dim():] != b.shape or a.shape[-1] < 2:
        raise ValueError(f"packing needs a (..., M+1) half spectrum ending in b's shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def _packed_triton(a, b, c, conj_b):
    """Triton packing of a·b (a·conj(b)) and, when c is given, of a·conj(c) (complex64; CUDA,
    or any device under TRITON_INTERPRET=1). Returns (Z_ab, Z_ac or None), (..., M) each."""
    _check_contiguous("the packing kernel", a=a, b=b, **({} if c is None else {"c": c}))
    m = a.shape[-1] - 1
    rows, b_rows = a.numel() // (m + 1), b.numel() // (m + 1)
    out1 = torch.empty(*a.shape[:-1], m, dtype=a.dtype, device=a.device)
    out2 = None if c is None else torch.empty_like(out1)
    if rows:
        grid = (rows, triton.cdiv(m // 2 + 1, PACK_BLOCK))
        _packed_kernel[grid](
            torch.view_as_real(a), torch.view_as_real(b),
            torch.view_as_real(a if c is None else c), torch.view_as_real(out1),
            torch.view_as_real(out1 if out2 is None else out2), b_rows, M=m,
            CONJ_B=conj_b, HAS_C=c is not None, BLOCK=PACK_BLOCK)
    return out1, out2


def mul_spectra_torch(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, conj_b: bool
                      ) -> None:
    """Torch twin of ``mul_spectra``."""
    torch.mul(a, b.conj() if conj_b else b, out=out)


def mul_spectra_triton(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, conj_b: bool
                       ) -> None:
    """Triton ``mul_spectra`` (complex64; CUDA, or any device under TRITON_INTERPRET=1)."""
    _check_contiguous("mul_spectra_triton", out=out, a=a, b=b)
    total = out.numel()
    if total == 0:
        return
    grid = (triton.cdiv(total, BLOCK),)
    _mul_spectra_kernel[grid](torch.view_as_real(out), torch.view_as_real(a),
                              torch.view_as_real(b), total, b.numel(), CONJ_B=conj_b,
                              BLOCK=BLOCK)


if triton is not None:

    @triton.jit
    def _mul_spectra_kernel(out_ptr, a_ptr, b_ptr, total, period, CONJ_B: tl.constexpr,
                            BLOCK: tl.constexpr):
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = (i < total)[:, None]
        part = tl.arange(0, 2)[None, :]  # real, imaginary: side by side in memory
        ar, ai = tl.split(tl.load(a_ptr + 2 * i[:, None] + part, mask=mask, other=0.0))
        br, bi = tl.split(tl.load(b_ptr + 2 * (i % period)[:, None] + part, mask=mask,
                                  other=0.0))
        if CONJ_B:
            bi = -bi
        tl.store(out_ptr + 2 * i[:, None] + part, tl.join(ar * br - ai * bi, ar * bi + ai * br),
                 mask=mask)

    @triton.jit
    def _backward_products_kernel(g_ptr, w_ptr, k_ptr, total, period, BLOCK: tl.constexpr):
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = (i < total)[:, None]
        part = tl.arange(0, 2)[None, :]
        at = 2 * i[:, None] + part
        gr, gi = tl.split(tl.load(g_ptr + at, mask=mask, other=0.0))
        wr, wi = tl.split(tl.load(w_ptr + at, mask=mask, other=0.0))
        kr, ki = tl.split(tl.load(k_ptr + 2 * (i % period)[:, None] + part, mask=mask,
                                  other=0.0))
        # g · conj(x) = (gr·xr + gi·xi) + i·(gi·xr − gr·xi)
        tl.store(w_ptr + at, tl.join(gr * wr + gi * wi, gi * wr - gr * wi), mask=mask)
        tl.store(g_ptr + at, tl.join(gr * kr + gi * ki, gi * kr - gr * ki), mask=mask)

    @triton.jit
    def _pack_pair(xr, xi, yr, yi, c, s):
        # Z at k and at M − k from X (x at k) and Y (y at M − k); (c, s) = cos, sin of 2πk/n:
        # P = X + conj(Y), Q = X − conj(Y), Z[k] = P + i·Q·e^(iθ) and, as e^(iπ(M−k)/M) =
        # −e^(−iθ), Z[M − k] = conj(P) + i·conj(Q)·e^(−iθ)
        pr = xr + yr
        pi = xi - yi
        qr = xr - yr
        qi = xi + yi
        a = qr * s + qi * c
        b = qr * c - qi * s
        return pr - a, pi + b, pr + a, b - pi

    @triton.jit
    def _packed_kernel(a_ptr, b_ptr, c_ptr, o1_ptr, o2_ptr, b_rows, M: tl.constexpr,
                       CONJ_B: tl.constexpr, HAS_C: tl.constexpr, BLOCK: tl.constexpr):
        # one row r, pairs (k, M − k) for k in this block of [0, M//2]: each value read once
        r = tl.program_id(0).to(tl.int64)
        k = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        valid = k <= M // 2
        km = M - k
        mirror = valid & (k > 0) & (km > k)  # Z[M − k] is its own value (Z has no index M)
        part = tl.arange(0, 2)[None, :]
        at_k = 2 * k[:, None] + part
        at_m = 2 * km[:, None] + part
        row = r * (2 * (M + 1))
        brow = (r % b_rows) * (2 * (M + 1))
        ar, ai = tl.split(tl.load(a_ptr + row + at_k, mask=valid[:, None], other=0.0))
        mr, mi = tl.split(tl.load(a_ptr + row + at_m, mask=valid[:, None], other=0.0))
        br, bi = tl.split(tl.load(b_ptr + brow + at_k, mask=valid[:, None], other=0.0))
        nr, ni = tl.split(tl.load(b_ptr + brow + at_m, mask=valid[:, None], other=0.0))
        if CONJ_B:
            bi = -bi
            ni = -ni
        th = k.to(tl.float32) * (3.141592653589793 / M)  # 2πk/n, n = 2M: within [0, π/2]
        c = tl.cos(th)
        s = tl.sin(th)
        orow = r * (2 * M)
        # X = a·b at k, Y = a·b at M − k
        z1r, z1i, z2r, z2i = _pack_pair(ar * br - ai * bi, ar * bi + ai * br,
                                        mr * nr - mi * ni, mr * ni + mi * nr, c, s)
        tl.store(o1_ptr + orow + at_k, tl.join(z1r, z1i), mask=valid[:, None])
        tl.store(o1_ptr + orow + at_m, tl.join(z2r, z2i), mask=mirror[:, None])
        if HAS_C:  # X = a·conj(c) at k, Y = a·conj(c) at M − k
            cr, ci = tl.split(tl.load(c_ptr + row + at_k, mask=valid[:, None], other=0.0))
            dr, di = tl.split(tl.load(c_ptr + row + at_m, mask=valid[:, None], other=0.0))
            z1r, z1i, z2r, z2i = _pack_pair(ar * cr + ai * ci, ai * cr - ar * ci,
                                            mr * dr + mi * di, mi * dr - mr * di, c, s)
            tl.store(o2_ptr + orow + at_k, tl.join(z1r, z1i), mask=valid[:, None])
            tl.store(o2_ptr + orow + at_m, tl.join(z2r, z2i), mask=mirror[:, None])
