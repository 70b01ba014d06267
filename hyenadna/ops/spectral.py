"""Pointwise products of spectra for the long convolution: Triton on CUDA, torch elsewhere.

    mul_spectra(out, a, b, conj_b)    out = a · conj(b) (or a · b), b broadcast over a's batch
    backward_products(g, w, k)        w ← g · conj(w) and g ← g · conj(k) in one pass

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
"""

from __future__ import annotations

import torch

from hyenadna.ops.layout import triton, use_triton

if triton is not None:
    import triton.language as tl

BLOCK = 1024  # complex values per program


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
