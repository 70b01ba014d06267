"""Column sums of a (N, C) matrix in float32: the bias gradients of the dense layers.

torch's ``x.sum(0)`` over the rows of a tall, narrow bf16 matrix runs far below memory bandwidth
on an H100 (out_proj's bias gradient at 1 × 8k × 256: 16.7 µs for 4 MB,
``benchmarks/results/onchip/profile_8k_s8b_h100.json``). ``column_sum`` does it in two Triton
passes over 2-D tiles: partial sums of row stretches, then the sum of the partial rows.

    column_sum(x)         (N, C) any float dtype and strides → (C,) float32 (float64 stays)
    column_sum_torch(x)   its torch twin (the CPU path; the tests hold the kernel to it)
"""

from __future__ import annotations

import torch

from hyenadna.ops.layout import triton, use_triton

if triton is not None:
    import triton.language as tl

COLSUM_BLOCK_N, COLSUM_BLOCK_C = 32, 64
COLSUM_TARGET_PROGRAMS = 512  # ~4 per SM on an H100 in the first pass


def column_sum(x: torch.Tensor) -> torch.Tensor:
    """sum over the rows of a 2-D ``x``, accumulated and returned in float32 (float64 for
    float64 input)."""
    if x.dim() != 2:
        raise ValueError(f"column_sum needs a 2-D tensor, got shape {tuple(x.shape)}")
    if use_triton(x) and x.numel():
        return column_sum_triton(x)
    return column_sum_torch(x)


def column_sum_torch(x: torch.Tensor) -> torch.Tensor:
    """Torch twin of ``column_sum``."""
    return x.sum(0, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)


def column_sum_triton(x: torch.Tensor) -> torch.Tensor:
    """Triton ``column_sum`` (CUDA, or any device under TRITON_INTERPRET=1)."""
    rows, cols = x.shape
    col_blocks = triton.cdiv(cols, COLSUM_BLOCK_C)
    programs = max(1, min(triton.cdiv(rows, COLSUM_BLOCK_N), COLSUM_TARGET_PROGRAMS // col_blocks))
    per_program = COLSUM_BLOCK_N * triton.cdiv(triton.cdiv(rows, programs), COLSUM_BLOCK_N)
    programs = triton.cdiv(rows, per_program)
    out = torch.empty(cols, dtype=torch.float32, device=x.device)
    if programs == 1:
        _colsum_kernel[(1, col_blocks)](out, x, rows, cols, *x.stride(), per_program,
                                        BLOCK_N=COLSUM_BLOCK_N, BLOCK_C=COLSUM_BLOCK_C)
        return out
    part = torch.empty(programs, cols, dtype=torch.float32, device=x.device)
    _colsum_kernel[(programs, col_blocks)](part, x, rows, cols, *x.stride(), per_program,
                                           BLOCK_N=COLSUM_BLOCK_N, BLOCK_C=COLSUM_BLOCK_C)
    _colsum_kernel[(1, col_blocks)](out, part, programs, cols, *part.stride(), programs,
                                    BLOCK_N=COLSUM_BLOCK_N, BLOCK_C=COLSUM_BLOCK_C)
    return out


if triton is not None:

    @triton.jit
    def _colsum_kernel(out_ptr, x_ptr, N, C, sx_n, sx_c, per_program, BLOCK_N: tl.constexpr,
                       BLOCK_C: tl.constexpr):
        # out[p, c] = sum of x[r, c] over this program's stretch of per_program rows, summed as
        # (BLOCK_N, BLOCK_C) tiles and reduced once at the end
        p = tl.program_id(0)
        c = (tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)[None, :]
        start = p.to(tl.int64) * per_program
        end = tl.minimum(start + per_program, N)
        acc = tl.zeros((BLOCK_N, BLOCK_C), dtype=tl.float32)
        rr = tl.arange(0, BLOCK_N).to(tl.int64)[:, None]
        r0 = start
        # a while loop: Triton's interpreter (the CPU tests) rejects range() over a runtime bound
        while r0 < end:
            r = r0 + rr
            acc += tl.load(x_ptr + r * sx_n + c * sx_c, mask=(r < end) & (c < C),
                           other=0.0).to(tl.float32)
            r0 += BLOCK_N
        tl.store(out_ptr + p * C + c, tl.sum(acc, axis=0)[None, :], mask=c < C)
