"""Pointwise products of spectra for the long convolution: Triton on CUDA, torch elsewhere.

    mul_spectra(out, a, b, conj_b)    out = a · conj(b) (or a · b), b broadcast over a's batch

The backward needs products with a conjugate (conj(K') · G for the input gradient, conj(W) · G
for the filter's). torch materialises a lazy conj before multiplying: a conj pass (read 8, write
8 bytes per complex value) plus the product; on an H100 the forward's stored conj(K') and the
backward's conj(W) were 2.9 ms of the long conv's 61 ms at L = 1M
(benchmarks/results/fourstep/sweep_h100.json). The kernel conjugates on the fly: one pass.
``out`` may be ``a`` or ``b`` (in place); each value is read before it is written.
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


def mul_spectra_torch(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, conj_b: bool
                      ) -> None:
    """Torch twin of ``mul_spectra``."""
    torch.mul(a, b.conj() if conj_b else b, out=out)


def mul_spectra_triton(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, conj_b: bool
                       ) -> None:
    """Triton ``mul_spectra`` (complex64; CUDA, or any device under TRITON_INTERPRET=1)."""
    for t, name in ((out, "out"), (a, "a"), (b, "b")):
        if not t.is_contiguous():
            raise ValueError(f"mul_spectra_triton needs a contiguous {name}")
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
