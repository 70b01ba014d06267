"""Layout changes around the FFT, fused with the work beside them: Triton on CUDA, torch elsewhere.

The projections work on (B, L, C) rows (channels contiguous), the FFT on (B, C, L) rows (time
contiguous). On an H100 torch's strided copies between the two run ~20x below memory bandwidth
(benchmarks/results/operator/profile_*.json: three transposes and the cuDNN depthwise short conv
were 101 ms of the operator's 198 ms forward+backward at L = 1M). The kernels here read one
layout and write the other in tiles, doing the arithmetic that sits at the boundary on the way:

    strided_mul(out, a, b)        out = a · b elementwise over (B, C, L) with ANY strides in each
                                  (the gates around the long conv; the transposed output y)
    short_conv_t(proj, w, bias)   (B, L, C) → (B, C, L): transpose + causal depthwise K-tap conv
    short_conv_t_backward(...)    its input gradient (B, C, L) → (B, L, C) and weight/bias grads
                                  (both also take a time-major (B, C, L) proj, ``time_major``, and
                                  in_proj's bias to add on the way, ``in_bias``)

Each has a plain torch twin (``*_torch``) that the CPU uses and the tests hold the Triton kernels
to (the kernels also run on the CPU under ``TRITON_INTERPRET=1``; see tests/test_layout.py).
Arithmetic is float32 in the kernels, one rounding on store; a product of two bf16 inputs is
rounded to bf16 first, as torch's ``a * b`` would (so both paths see the same values).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

try:  # Triton ships with CUDA builds of torch; CPU-only installs use the torch twins
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None

BLOCK_C, BLOCK_L = 64, 64  # a 64 × 64 tile: 128-byte rows in either layout for bf16
DW_L_PER_PROGRAM = 4096  # most time steps one weight-gradient program sums over
DW_TARGET_PROGRAMS = 2048  # ~16 per SM on an H100: the partial sums are cheap, idle SMs are not
SUMS_BLOCK_C, SUMS_BLOCK_R = 16, 64  # the partial rows' sum: 48 programs at C = 768
SHIFT_WARPS, DW_WARPS = 4, 4
"""Warps per program of the short conv's kernels (forward / input gradient, and the backward
with the weight sums; Triton's default, 4). ``benchmarks/bench_short_conv.py`` times them with
the tile shape, side by side: on an H100 (s16c, 1 × L × 768, bf16) these defaults with 64 × 64
tiles were the fastest backward at 64k and 1M (0.228 / 2.535 ms, 1.33 / 1.91 TB/s against a
copy's 2.98); 64 × 128 tiles with 8 warps ran the forward 4% faster and the backward 28% slower
(benchmarks/results/fourstep/s16_h100_c/)."""
TIME_MAJOR_TILE = (16, 256, 4)
"""(BLOCK_C, BLOCK_L, warps) of both kernels when proj is time-major (lean.TIME_MAJOR_PROJ):
every load and store then runs along time, and a tile long in time and narrow in channels
keeps more bytes in flight per row. On an H100 (s19b, 1 × L × 768, bf16) it ran the forward
in 1.225 ms and the backward in 1.775 at 1M, against 1.574 / 2.067 for the 64 × 64 tile with 4
warps and 1.305 / 1.830 for 32 × 128 (the fastest of 10 shapes at 1M; at 64k all ten were
within 0.30-0.44 ms). In the step-graphed operator at batch 1 (off / on / off / on against
64 × 64; the first off timed out compiling): 1.944 / 1.948 → 1.914 / 1.917 ms at 64k,
7.458 → 7.341 / 7.353 at 256k, 33.99 → 33.50 / 33.50 at 1M."""
TRITON_ENV = "HYENADNA_TRITON"


def use_triton(t: torch.Tensor) -> bool:
    """Whether the Triton kernels handle ``t``: CUDA, Triton importable, not float64, and
    ``HYENADNA_TRITON`` not set to 0 (the escape hatch for a GPU machine where Triton cannot
    build its kernels, e.g. no C compiler or a pre-Volta card: the torch twins then run).
    """
    return t.is_cuda and t.dtype != torch.float64 and triton_enabled()


def triton_enabled() -> bool:
    """Triton is importable and ``HYENADNA_TRITON`` does not switch it off."""
    return triton is not None and os.environ.get(TRITON_ENV, "1").strip().lower() not in (
        "0", "off", "false")


def _round_code(a: torch.dtype, b: torch.dtype) -> int:
    """0: keep float32; 1/2: round a product to bf16/fp16 (torch's promoted dtype of a · b)."""
    return {torch.bfloat16: 1, torch.float16: 2}.get(torch.promote_types(a, b), 0)


# ------------------------------------------------------------------------------------------
# out = a · b over (B, C, L), any strides
# ------------------------------------------------------------------------------------------


def strided_mul(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None = None,
                scale: float = 1.0) -> None:
    """out[...] = a · b (or a), times ``scale`` after the product's rounding; all three
    (B, C, L) with any strides; writes into ``out``."""
    if use_triton(out):
        strided_mul_triton(out, a, b, scale)
    else:
        strided_mul_torch(out, a, b, scale)


def strided_mul_torch(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None = None,
                      scale: float = 1.0) -> None:
    """Torch twin of ``strided_mul``."""
    if b is None:
        out.copy_(a)
    else:
        torch.mul(a, b, out=out)
    if scale != 1.0:
        out.mul_(scale)


def strided_mul_triton(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None = None,
                       scale: float = 1.0, pad: bool = False) -> None:
    """Triton ``strided_mul`` (CUDA, or any device under TRITON_INTERPRET=1); pad: ``padded_mul``
    (out may be longer than a along L; its tail is zeroed by the same programs)."""
    same = out.shape == a.shape or (pad and out.shape[:-1] == a.shape[:-1]
                                    and out.shape[-1] >= a.shape[-1])
    if not same or (b is not None and b.shape != a.shape) or a.dim() != 3:
        raise ValueError(f"strided_mul needs three equal (B, C, L) shapes, got "
                         f"{tuple(out.shape)}, {tuple(a.shape)}, "
                         f"{None if b is None else tuple(b.shape)}")
    batch, channels, seqlen = a.shape
    if out.numel() == 0:
        return
    bb = a if b is None else b
    grid = (triton.cdiv(out.shape[-1], BLOCK_L), triton.cdiv(channels, BLOCK_C), batch)
    _mul_kernel[grid](out, a, bb, float(scale), channels, seqlen, out.shape[-1], *out.stride(),
                      *a.stride(), *bb.stride(), HAS_B=b is not None,
                      ROUND=0 if b is None else _round_code(a.dtype, b.dtype),
                      SCALE=scale != 1.0, BLOCK_C=BLOCK_C, BLOCK_L=BLOCK_L)


def padded_mul(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None = None,
               scale: float = 1.0) -> None:
    """out[..., :L] = a · b (or a) · scale and out[..., L:] = 0 in one pass: the zero-padded
    FFT input; a, b (B, C, L), out (B, C, n >= L), any strides."""
    if use_triton(out):
        strided_mul_triton(out, a, b, scale, pad=True)
    else:
        strided_mul_torch(out[..., : a.shape[-1]], a, b, scale)
        out[..., a.shape[-1]:].zero_()


# ------------------------------------------------------------------------------------------
# causal depthwise short conv with a layout change
# ------------------------------------------------------------------------------------------


def short_conv_t(proj: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 in_bias: torch.Tensor | None = None, time_major: bool = False) -> torch.Tensor:
    """Causal depthwise conv of (B, L, C) → (B, C, L); weight (C, 1, K) as nn.Conv1d's.

    out[b, c, l] = bias[c] + sum_j weight[c, 0, j] · p[b, l + j − (K − 1), c] (zero before 0),
    the official layout's result (pad K − 1 on both sides, keep the first L), where p = proj, or
    proj + in_bias (in float32, zero outside [0, L) as the padding is) when in_bias (C,) is given:
    in_proj's bias, added here instead of by the GEMM. time_major: proj is (B, C, L) (any
    strides) instead. Weights and biases in any float dtype, rounded to proj's; the output takes
    proj's. Forward only: the Triton path records no autograd graph; gradients come from
    ``short_conv_t_backward`` (the mixer's hand-written backward).
    """
    if use_triton(proj):
        return short_conv_t_triton(proj, weight, bias, in_bias, time_major)
    return short_conv_t_torch(proj, weight, bias, in_bias, time_major)


def _as_bcl(proj: torch.Tensor, time_major: bool) -> torch.Tensor:
    """proj as a (B, C, L) view: itself when time-major, else its transpose."""
    return proj if time_major else proj.transpose(1, 2)


def _with_in_bias(p: torch.Tensor, in_bias: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """p (B, C, L) + in_bias rounded to ``dtype`` (the GEMM's bias), in the accumulation dtype."""
    acc = _acc_dtype(p)
    return p.to(acc) + in_bias.to(dtype).to(acc)[:, None]


def short_conv_t_torch(proj: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       in_bias: torch.Tensor | None = None, time_major: bool = False
                       ) -> torch.Tensor:
    """Torch twin of ``short_conv_t``: left padding doubles as the transpose copy cuDNN needs."""
    p = _as_bcl(proj, time_major)
    taps, dt = weight.shape[-1], proj.dtype
    if in_bias is None:
        x = F.pad(p, (taps - 1, 0))  # (B, C, L + K - 1)
        return F.conv1d(x, weight.to(dt), None if bias is None else bias.to(dt),
                        groups=x.shape[1])
    x = F.pad(_with_in_bias(p, in_bias, dt), (taps - 1, 0))  # float32: the kernel's sums
    acc = x.dtype
    out = F.conv1d(x, weight.to(dt).to(acc), None if bias is None else bias.to(dt).to(acc),
                   groups=x.shape[1])
    return out.to(dt)


def short_conv_t_triton(proj: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        in_bias: torch.Tensor | None = None, time_major: bool = False
                        ) -> torch.Tensor:
    """Triton ``short_conv_t``; weights rounded to proj's dtype first, as conv1d sees them."""
    inp = _as_bcl(proj, time_major)
    batch, channels, seqlen = inp.shape
    out = torch.empty(batch, channels, seqlen, dtype=proj.dtype, device=proj.device)
    # weights and biases rounded to proj's dtype inside the kernel (no cast kernels)
    _launch_shift_conv(out, inp, weight.reshape(channels, -1), bias, sign=1, in_bias=in_bias,
                       tile=_tile(time_major))
    return out


def short_conv_t_backward(dout: torch.Tensor, proj: torch.Tensor, weight: torch.Tensor,
                          need_weight: bool = True, need_bias: bool = True,
                          need_dproj_sum: bool = False, in_bias: torch.Tensor | None = None,
                          time_major: bool = False):
    """Gradients of ``short_conv_t`` given dout (B, C, L) and its input proj (B, L, C), or
    (B, C, L) when time_major; in_bias as given to ``short_conv_t`` (the weight gradient reads
    proj + in_bias).

    Returns:
        dproj (B, L, C) contiguous in dout's dtype ((B, C, L) when time_major); dweight
        (C, 1, K), dbias (C,) and dproj_sum = sum over (b, l) of dproj (C,) (in_proj's bias
        gradient, see ``short_conv_t_dproj_sum``) in float32 (float64 for float64 inputs), or
        None where not needed.
    """
    impl = short_conv_t_backward_triton if use_triton(dout) else short_conv_t_backward_torch
    return impl(dout, proj, weight, need_weight, need_bias, need_dproj_sum, in_bias, time_major)


def _tile(time_major: bool, weight_sums: bool = False) -> tuple[int, int, int]:
    """(BLOCK_C, BLOCK_L, warps) of the shift conv (weight_sums: of the backward's weight-sum
    kernel) in proj's layout: ``TIME_MAJOR_TILE`` for both when time-major."""
    if time_major:
        return TIME_MAJOR_TILE
    return BLOCK_C, BLOCK_L, DW_WARPS if weight_sums else SHIFT_WARPS


def _acc_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def short_conv_t_backward_torch(dout, proj, weight, need_weight=True, need_bias=True,
                                need_dproj_sum=False, in_bias=None, time_major=False):
    """Torch twin of ``short_conv_t_backward`` (shifted multiply-adds, float32 accumulation)."""
    taps, seqlen = weight.shape[-1], dout.shape[-1]
    acc = _acc_dtype(dout)
    g = F.pad(dout.to(acc), (0, taps - 1))  # (B, C, L + K - 1): g[l] for l >= L is 0
    w = weight.to(dout.dtype).to(acc).reshape(weight.shape[0], taps)  # (C, K)
    # dproj[l] = sum_j w[j] · g[l + K - 1 - j]
    dproj_t = sum(w[:, j, None] * g[..., taps - 1 - j: taps - 1 - j + seqlen]
                  for j in range(taps))  # (B, C, L)
    dproj = dproj_t.to(dout.dtype)  # (B, C, L)
    if not time_major:
        dproj = dproj.transpose(1, 2).contiguous()  # (B, L, C)
    dweight = dbias = None
    if need_weight:
        p = _as_bcl(proj, time_major)
        p = p.to(acc) if in_bias is None else _with_in_bias(p, in_bias, dout.dtype)
        x = F.pad(p, (taps - 1, 0))  # (B, C, L + K - 1)
        dweight = torch.stack([(dout.to(acc) * x[..., j: j + seqlen]).sum((0, 2))
                               for j in range(taps)], dim=-1).unsqueeze(1)  # (C, 1, K)
    if need_bias or need_dproj_sum:
        dbias = dout.to(acc).sum((0, 2))  # (C,)
    dproj_sum = short_conv_t_dproj_sum(dout, weight, dbias) if need_dproj_sum else None
    return dproj, dweight, dbias if need_bias else None, dproj_sum


def short_conv_t_backward_triton(dout, proj, weight, need_weight=True, need_bias=True,
                                 need_dproj_sum=False, in_bias=None, time_major=False):
    """Triton ``short_conv_t_backward``: one kernel reads dout and proj once, writing dproj
    (transposed) and partial weight/bias sums (one row per DW_L_PER_PROGRAM time steps); one
    more adds the partial rows up and forms dproj_sum (the ~15 small torch kernels it replaces
    were ~0.03 ms of the 8k operator's step on an H100)."""
    batch, channels, seqlen = dout.shape
    taps = weight.shape[-1]
    dproj = torch.empty(*((batch, channels, seqlen) if time_major else (batch, seqlen, channels)),
                        dtype=dout.dtype, device=dout.device)
    w = weight.reshape(channels, taps)  # (C, K), rounded to dout's dtype by the kernels
    sums = need_weight or need_bias or need_dproj_sum
    if not (sums and dout.numel()):
        _launch_shift_conv(_as_bcl(dproj, time_major), dout, w, None, sign=-1,
                           tile=_tile(time_major))
        if not sums:
            return dproj, None, None, None
        dweight = torch.zeros(channels, 1, taps, device=dout.device) if need_weight else None
        zeros = torch.zeros(channels, device=dout.device)
        return dproj, dweight, zeros if need_bias else None, zeros if need_dproj_sum else None
    dweight = torch.empty(channels, taps, device=dout.device)
    dbias, dproj_sum = torch.empty(2, channels, device=dout.device)
    # Enough programs to fill the GPU at any (B, C, L): each sums a stretch of time that is
    # a power of two between one tile and DW_L_PER_PROGRAM (at most 7 compiled variants).
    block_c, block_l, warps = _tile(time_major, weight_sums=True)
    programs = batch * triton.cdiv(channels, block_c)
    per_program = min(DW_L_PER_PROGRAM, max(block_l, triton.next_power_of_2(
        triton.cdiv(seqlen * programs, DW_TARGET_PROGRAMS))))
    parts = triton.cdiv(seqlen, per_program)
    kpow = triton.next_power_of_2(taps)
    pw = torch.empty(batch * parts, channels, kpow, dtype=torch.float32, device=dout.device)
    pb = torch.empty(batch * parts, channels, dtype=torch.float32, device=dout.device)
    x, dp = _as_bcl(proj, time_major), _as_bcl(dproj, time_major)  # (B, C, L) views
    grid = (parts, triton.cdiv(channels, block_c), batch)
    _short_conv_dw_kernel[grid](pw, pb, dp, dout, x, w, w if in_bias is None else in_bias,
                                channels, seqlen, parts,
                                *dp.stride(), *dout.stride(), *x.stride(), *w.stride(),
                                K=taps, KPOW=kpow, IN_BIAS=in_bias is not None,
                                W_ROUND=_round_code(dout.dtype, dout.dtype),
                                L_PER_PROGRAM=per_program, BLOCK_C=block_c,
                                BLOCK_L=block_l, num_warps=warps)
    _short_conv_sums_kernel[(triton.cdiv(channels, SUMS_BLOCK_C),)](
        dweight, dbias, dproj_sum, pw, pb, dout, w, channels, batch * parts, batch, seqlen,
        *dout.stride(), *w.stride(), K=taps, KPOW=kpow, NEED_SUM=need_dproj_sum,
        W_ROUND=_round_code(dout.dtype, dout.dtype), BLOCK_C=SUMS_BLOCK_C,
        BLOCK_R=SUMS_BLOCK_R)
    return (dproj, dweight.unsqueeze(1) if need_weight else None, dbias if need_bias else None,
            dproj_sum if need_dproj_sum else None)


def short_conv_t_dproj_sum(dout: torch.Tensor, weight: torch.Tensor, dbias: torch.Tensor
                           ) -> torch.Tensor:
    """sum over (b, l) of ``short_conv_t_backward``'s dproj (C,), without a pass over dproj.

    dproj[s] = sum_j w_j · dout[s + K − 1 − j] with dout zero from L on, so summed over s:
    sum_j w_j · (S − sum_{t < K − 1 − j} dout[t]), S = sum_t dout[t] = ``dbias``. Only the first
    K − 1 steps of dout are read (in_proj's bias gradient; the (B, L, C) reduction it replaces
    ran at ~1.3 TB/s, 75 µs per layer at L = 64k on an H100). Float32 (float64 for float64),
    with the weights rounded to dout's dtype as the backward kernel uses them.
    """
    taps = weight.shape[-1]
    acc = _acc_dtype(dout)
    w = weight.to(dout.dtype).to(acc).reshape(weight.shape[0], taps)  # (C, K)
    head = dout[..., : taps - 1].to(acc).sum(0)  # (C, <= K - 1), over the batch
    head = F.pad(head, (0, taps - 1 - head.shape[-1]))  # L < K - 1: the rest is zero
    before = torch.cumsum(head, -1)  # before[:, m - 1] = sum_{t < m} dout[t]
    out = w.sum(1) * dbias.to(acc)
    for j in range(taps - 1):  # j = K - 1 has no t < 0 term
        out = out - w[:, j] * before[:, taps - 2 - j]
    return out


def _launch_shift_conv(out: torch.Tensor, inp: torch.Tensor, w: torch.Tensor,
                       bias: torch.Tensor | None, sign: int,
                       in_bias: torch.Tensor | None = None,
                       tile: tuple[int, int, int] | None = None) -> None:
    """out[b, c, l] = bias[c] + sum_j w[c, j] · inp[b, c, l + sign·(j − (K − 1))] (zero outside
    [0, L)); out and inp are (B, C, L) views with any strides. sign = 1: the causal forward;
    sign = −1: its adjoint (the input gradient). w and bias (any float dtype) are rounded to
    out's dtype first, as conv1d would see them after a cast; so is in_bias (C,), added to
    every inp value inside [0, L) first (sign = 1 only). tile: (BLOCK_C, BLOCK_L, warps),
    ``_tile(False)`` if not given."""
    if in_bias is not None and sign != 1:
        raise ValueError("in_bias applies to the forward (sign = 1) only")
    batch, channels, seqlen = inp.shape
    if out.numel() == 0:
        return
    block_c, block_l, warps = tile or _tile(False)
    grid = (triton.cdiv(seqlen, block_l), triton.cdiv(channels, block_c), batch)
    _shift_conv_kernel[grid](out, inp, w, w if bias is None else bias,
                             w if in_bias is None else in_bias, channels, seqlen,
                             *out.stride(), *inp.stride(), *w.stride(), SIGN=sign,
                             K=w.shape[-1], HAS_BIAS=bias is not None,
                             IN_BIAS=in_bias is not None,
                             W_ROUND=_round_code(out.dtype, out.dtype), BLOCK_C=block_c,
                             BLOCK_L=block_l, num_warps=warps)


if triton is not None:

    @triton.jit
    def _rounded(x, ROUND: tl.constexpr):
        """x as float32 after rounding to bf16 (ROUND 1) or fp16 (2) (``_round_code``), to
        nearest even as torch's cast. bf16 by hand on the bits: Triton's interpreter (the CPU
        tests) truncates in ``.to(tl.bfloat16)``."""
        x = x.to(tl.float32)
        if ROUND == 1:
            u = x.to(tl.uint32, bitcast=True)
            u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
            x = tl.where(x == x, u.to(tl.float32, bitcast=True), x)  # NaN stays NaN
        if ROUND == 2:
            x = x.to(tl.float16).to(tl.float32)
        return x

    @triton.jit
    def _mul_kernel(out_ptr, a_ptr, b_ptr, scale, C, L, N, so_b, so_c, so_l, sa_b, sa_c, sa_l,
                    sb_b, sb_c, sb_l, HAS_B: tl.constexpr, ROUND: tl.constexpr,
                    SCALE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr):
        # out has N >= L steps: from L on the masked loads give 0, so the tail is stored zero
        pid_b = tl.program_id(2).to(tl.int64)
        c = (tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)[:, None]
        t = (tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)).to(tl.int64)[None, :]
        mask = (c < C) & (t < L)
        val = tl.load(a_ptr + pid_b * sa_b + c * sa_c + t * sa_l, mask=mask, other=0.0)
        val = val.to(tl.float32)
        if HAS_B:
            other = tl.load(b_ptr + pid_b * sb_b + c * sb_c + t * sb_l, mask=mask, other=0.0)
            val = val * other.to(tl.float32)
        if ROUND == 1:
            val = val.to(tl.bfloat16).to(tl.float32)
        if ROUND == 2:
            val = val.to(tl.float16).to(tl.float32)
        if SCALE:
            val = val * scale
        tl.store(out_ptr + pid_b * so_b + c * so_c + t * so_l,
                 val.to(out_ptr.dtype.element_ty), mask=(c < C) & (t < N))

    @triton.jit
    def _shift_conv_kernel(out_ptr, in_ptr, w_ptr, bias_ptr, ib_ptr, C, L, so_b, so_c, so_l,
                           si_b, si_c, si_l, sw_c, sw_k, SIGN: tl.constexpr, K: tl.constexpr,
                           HAS_BIAS: tl.constexpr, IN_BIAS: tl.constexpr, W_ROUND: tl.constexpr,
                           BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr):
        pid_b = tl.program_id(2).to(tl.int64)
        c = (tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)[:, None]
        t = (tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)).to(tl.int64)[None, :]
        cmask = c < C
        if IN_BIAS:  # in_proj's bias, added to the inputs inside [0, L) (the padding stays 0)
            ib = _rounded(tl.load(ib_ptr + c, mask=cmask, other=0.0), W_ROUND)
        acc = tl.zeros((BLOCK_C, BLOCK_L), dtype=tl.float32)
        for j in tl.static_range(K):
            src = t + SIGN * (j - (K - 1))
            m = cmask & (src >= 0) & (src < L)
            x = tl.load(in_ptr + pid_b * si_b + c * si_c + src * si_l, mask=m,
                        other=0.0).to(tl.float32)
            if IN_BIAS:
                x = tl.where(m, x + ib, 0.0)
            w = _rounded(tl.load(w_ptr + c * sw_c + j * sw_k, mask=cmask, other=0.0), W_ROUND)
            acc += w * x
        if HAS_BIAS:
            acc += _rounded(tl.load(bias_ptr + c, mask=cmask, other=0.0), W_ROUND)
        tl.store(out_ptr + pid_b * so_b + c * so_c + t * so_l,
                 acc.to(out_ptr.dtype.element_ty), mask=cmask & (t < L))

    @triton.jit
    def _short_conv_dw_kernel(pw_ptr, pb_ptr, dp_ptr, g_ptr, x_ptr, w_ptr, ib_ptr, C, L, P,
                              sd_b, sd_c, sd_l, sg_b, sg_c, sg_l, sx_b, sx_c, sx_l, sw_c, sw_k,
                              K: tl.constexpr, KPOW: tl.constexpr, IN_BIAS: tl.constexpr,
                              W_ROUND: tl.constexpr, L_PER_PROGRAM: tl.constexpr,
                              BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr):
        # For one stretch of time and one (batch item, channel block), reading g = dout and
        # x = proj once: the input gradient (the causal conv's adjoint, written transposed)
        #   dp[b, c, t] = sum_j w[c, j] · g[b, c, t + K − 1 − j]
        # and the partial sums (g zero from L on)
        #   pw[row, c, j] = sum_t x[b, c, t] · g[b, c, t + K − 1 − j],  pb[row, c] = sum_t g
        # i.e. sum_t g[t] · x[t + j − (K − 1)] with the sum shifted onto x's steps: both sums
        # use the same shifted tiles of g (L2 hits past the tile's end), and x, the transposed
        # operand, is loaded once per tile (one shifted load per tap cost ~3× its bytes).
        pid_p = tl.program_id(0)
        pid_b = tl.program_id(2).to(tl.int64)
        cr = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        c = cr.to(tl.int64)[:, None]
        cmask = c < C
        taps = tl.arange(0, KPOW)[None, :]
        w_all = _rounded(tl.load(w_ptr + c * sw_c + taps * sw_k, mask=cmask & (taps < K),
                                 other=0.0), W_ROUND)  # (BLOCK_C, KPOW)
        if IN_BIAS:  # x = proj + in_proj's bias inside [0, L), as the forward saw it
            ib = _rounded(tl.load(ib_ptr + c, mask=cmask, other=0.0), W_ROUND)
        acc_w = tl.zeros((BLOCK_C, KPOW), dtype=tl.float32)
        acc_b = tl.zeros((BLOCK_C,), dtype=tl.float32)
        start = pid_p.to(tl.int64) * L_PER_PROGRAM
        for off in range(0, L_PER_PROGRAM, BLOCK_L):
            t = start + off + tl.arange(0, BLOCK_L).to(tl.int64)[None, :]
            m = cmask & (t < L)
            x = tl.load(x_ptr + pid_b * sx_b + c * sx_c + t * sx_l, mask=m,
                        other=0.0).to(tl.float32)
            if IN_BIAS:
                x = tl.where(m, x + ib, 0.0)
            dp = tl.zeros((BLOCK_C, BLOCK_L), dtype=tl.float32)
            for j in tl.static_range(K):
                src = t + (K - 1 - j)
                gs = tl.load(g_ptr + pid_b * sg_b + c * sg_c + src * sg_l,
                             mask=cmask & (src < L), other=0.0).to(tl.float32)
                if j == K - 1:
                    acc_b += tl.sum(gs, axis=1)  # the unshifted tile
                wj = tl.sum(tl.where(taps == j, w_all, 0.0), axis=1)[:, None]
                dp += wj * gs
                acc_w += tl.where(taps == j, tl.sum(gs * x, axis=1)[:, None], 0.0)
            tl.store(dp_ptr + pid_b * sd_b + c * sd_c + t * sd_l,
                     dp.to(dp_ptr.dtype.element_ty), mask=m)
        row = pid_b * P + pid_p
        tl.store(pw_ptr + (row * C + c) * KPOW + taps, acc_w, mask=cmask & (taps < KPOW))
        tl.store(pb_ptr + row * C + cr, acc_b, mask=cr < C)

    @triton.jit
    def _short_conv_sums_kernel(dw_ptr, db_ptr, ds_ptr, pw_ptr, pb_ptr, g_ptr, w_ptr, C, R, B,
                                L, sg_b, sg_c, sg_l, sw_c, sw_k, K: tl.constexpr,
                                KPOW: tl.constexpr, NEED_SUM: tl.constexpr,
                                W_ROUND: tl.constexpr, BLOCK_C: tl.constexpr,
                                BLOCK_R: tl.constexpr):
        # dweight (C, K) and dbias (C,) = the R partial rows of _short_conv_dw_kernel added up;
        # with NEED_SUM also sum_{b,l} dproj (short_conv_t_dproj_sum's formula):
        #   S · sum_j w_j − sum_{t < K−1} head_t · sum_{j < K−1−t} w_j,  head_t = sum_b g[b, :, t]
        # Rows (and batch items) are summed BLOCK_R at a time as 2-D tiles: a loop of one row
        # per step ran at load latency (32 µs for 128 rows at 1 × 8k on an H100).
        # while loops: Triton's interpreter (the CPU tests) rejects range() over a runtime bound
        c0 = tl.program_id(0) * BLOCK_C
        cr = c0 + tl.arange(0, BLOCK_C)
        cmask = cr < C
        f = tl.arange(0, BLOCK_C * KPOW)  # this block's (channel, tap) pairs, flat as in pw
        cf, kf = c0 + f // KPOW, f % KPOW
        rr = tl.arange(0, BLOCK_R).to(tl.int64)[:, None]
        acc_w = tl.zeros((BLOCK_C * KPOW,), dtype=tl.float32)
        acc_b = tl.zeros((BLOCK_C,), dtype=tl.float32)
        r0 = 0
        while r0 < R:
            rows = r0 + rr
            rmask = rows < R
            acc_w += tl.sum(tl.load(pw_ptr + (rows * C + c0) * KPOW + f[None, :],
                                    mask=rmask & (cf < C)[None, :], other=0.0), axis=0)
            acc_b += tl.sum(tl.load(pb_ptr + rows * C + cr[None, :],
                                    mask=rmask & cmask[None, :], other=0.0), axis=0)
            r0 += BLOCK_R
        tl.store(dw_ptr + cf * K + kf, acc_w, mask=(cf < C) & (kf < K))
        tl.store(db_ptr + cr, acc_b, mask=cmask)
        if NEED_SUM:
            w_all = tl.zeros((BLOCK_C,), dtype=tl.float32)
            for j in tl.static_range(K):
                w_all += _rounded(tl.load(w_ptr + cr * sw_c + j * sw_k, mask=cmask, other=0.0),
                                  W_ROUND)
            out = acc_b * w_all
            for t in tl.static_range(K - 1):
                head = tl.zeros((BLOCK_C,), dtype=tl.float32)
                at = cr.to(tl.int64)[None, :] * sg_c + t * sg_l
                # t < L as a tensor: Triton 3.9's interpreter widens a constexpr-vs-scalar
                # comparison to int64 and then refuses it as a load mask
                tmask = cmask & (tl.full((BLOCK_C,), t, tl.int32) < L)
                b0 = 0
                while b0 < B:
                    bb = b0 + rr
                    head += tl.sum(tl.load(g_ptr + at + bb * sg_b,
                                           mask=(bb < B) & tmask[None, :],
                                           other=0.0).to(tl.float32), axis=0)
                    b0 += BLOCK_R
                w_part = tl.zeros((BLOCK_C,), dtype=tl.float32)
                for j in tl.static_range(K - 1 - t):
                    w_part += _rounded(tl.load(w_ptr + cr * sw_c + j * sw_k, mask=cmask,
                                               other=0.0), W_ROUND)
                out -= head * w_part
            tl.store(ds_ptr + cr, out, mask=cmask)
