"""The Hyena implicit filter as one fused op: Triton forward and backward, torch elsewhere.

HyenaDNA's long filter (``HyenaFilter``; Poli et al. 2023, §3.3) for taps l < L, channels-first:

    a0 = z[l]                                        positional features (L, E)
    a_i = sin(freq · (a_{i-1} W_iᵀ + b_i)),  i = 1..3   FFN with one shared sine frequency (L, F)
    k[d, l] = (W_4 a_3[l])[d] · (exp(−t_l |δ_d|) + shift)   window; no bias on W_4   (D, L)

Plain autograd runs this as ~20 kernels forward and ~30 backward, each a pass over an (L, F) or
(D, L) tensor, and keeps every activation (~3 KB per position: the model checkpointed it from
256k on). On an H100 the filter's kernels were ~0.2 ms of the operator's 0.76 ms at L = 8k
(benchmarks/results/operator/profile_session5_before_b1.json), where the operator is compared
with flash attention. Here:

- forward: one kernel, per tile of positions: the three small FFN layers on chip (tensor-core
  dots: TF32 when training under autocast, three-pass TF32 otherwise, ``pick_precision``), then
  W_4, the window, one float32 store of k;
- backward: one persistent kernel recomputes the FFN per tile from z (nothing but the
  parameters is saved), backpropagates dk through window, W_4, the sines and W_1..3, and keeps
  every weight gradient in registers; one ``sum`` over the programs' partial rows finishes it.

``implicit_filter_ref`` is the plain composition the tests hold it to (float64 on the CPU; the
Triton kernels also run in Triton's interpreter there). The fused op covers F a power of two
in [16, 128] and D <= 256 (every released config); other shapes take the torch path.
"""

from __future__ import annotations

import torch

from hyenadna.ops.layout import triton, use_triton

if triton is not None:
    import triton.language as tl

MAX_WIDTH = 256  # D the backward keeps whole on chip (its dW_4 accumulator is D × F floats)
# Launch shapes, tuned on an H100 (benchmarks/bench_filter.py --tune;
# benchmarks/results/filter/tune_h100.txt). Forward: a program per FWD_BLOCK_L positions ×
# FWD_D_BLOCKS blocks of FWD_BLOCK_D channels (a program recomputes its tile's FFN, so splitting
# D buys parallelism at short L; it measured no faster than short tiles over all of D).
# Backward: a persistent grid of BWD_PROGRAMS_PER_SM programs per SM over tiles of BWD_BLOCK_L
# positions; 64-position tiles spill the (D, F) accumulator and ran 3x slower at 1M. Holding
# W_2..4 in registers for the whole program instead of reloading them per tile (second round,
# tune2_h100.txt) took the forward+backward from 6.95 to 4.32 ms at 1M, 1.18 to 0.82 at 131k.
FWD_BLOCK_L, FWD_BLOCK_D, FWD_D_BLOCKS, FWD_WARPS = 32, 64, 4, 4
BWD_BLOCK_L, BWD_WARPS, BWD_PROGRAMS_PER_SM = 16, 8, 1
SHORT_MAX_LEN = 8192
"""Up to this L, 16-position backward tiles and 8-warp forward programs: on kernel time (the
event-timed tune above was launch-bound there) they measured 0.069 vs 0.076 ms forward+backward
at 8k and 0.039 vs 0.047 at 1k, and the same as the defaults at 16k
(benchmarks/results/filter/tune_short_h100.json, ``bench_filter.py --tune --device-time``)."""
SHORT_BWD_BLOCK_L, SHORT_FWD_WARPS = 16, 8
BWD_STAGES = 3
"""Software-pipelining depth of the backward's loop over tiles past SHORT_MAX_LEN, TF32 only
(``tl.range``'s num_stages; 1: a plain loop, as at short L). At 1M the backward ran ~10x the
time its read of dk needs, one 8-warp program per SM, each tile's loads and chain of small dots
in series. Kernel time of the filter's forward + backward on an H100 (s16d, ``bench_filter.py
--tune --tune-round 3 --device-time``; benchmarks/results/filter/tune3_h100.txt): 64k 0.325 ms
(tiles of 32, one stage: the previous default) → 0.295 (tiles of 16, 3 stages); 1M 4.27 → 4.09.
Tiles of 32 with 2 or 3 stages need more shared memory than the H100 has."""
BWD_SM_SHARE = 0.5
"""Share of the SMs the backward's persistent grid covers (at least one program) when the filter
ran on the model's side stream (``lean.filter_stream``; elsewhere every SM gets a program). Each
program is 8 warps with the D × F weight-gradient sum in registers; below 1.0 the prefix's
backward on the main stream (short conv and GEMMs: bandwidth-bound, where the filter's is
compute-bound) can have the other SMs. On an H100 (s19d, filter stream up to 256k, step-graphed
operator at batch 1, 1.0 against 0.5, alternating): 8k 0.303 / 0.302 → 0.304 / 0.296 ms, 64k
1.917 / 1.905 → 1.886 / 1.888, 256k 7.353 / 7.334 → 7.269 / 7.365; see
``lean.FILTER_STREAM_MAX_LEN`` for the two together."""
BWD_HOIST_WEIGHTS = True  # load W_2..4 once per program instead of once per tile (TF32 only:
# with TF32x3/IEEE operands the hoisted kernel needs 304 KiB of shared memory, over an H100's)
PRECISIONS = ("tf32", "tf32x3", "ieee")


def implicit_filter_ref(z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas, shift: float,
                        modulate: bool = True) -> torch.Tensor:
    """The filter taps (D, L) by plain torch ops (autograd, autocast as the ops see it).

    Args:
        z: positional features (L, E); t: positions in [0, 1] (L,).
        w1 (F, E), b1 (F,), w2, w3 (F, F), b2, b3 (F,): the FFN's Linears; freq (1, F) or (F,):
            the shared sine frequency; w4 (D, F): the last Linear (no bias).
        deltas (D,): the window's decay rates (their absolute value is used); shift: its floor.
    """
    a = z
    for w, b in ((w1, b1), (w2, b2), (w3, b3)):
        a = torch.sin(freq.reshape(-1) * torch.nn.functional.linear(a, w, b))  # (L, F)
    h = torch.mm(w4, a.t())  # (D, L)
    if not modulate:
        return h
    return h * (torch.exp(-t[None, :] * deltas.abs()[:, None]) + shift)


def fused_supported(z: torch.Tensor, w4: torch.Tensor) -> bool:
    """Whether ``implicit_filter`` runs the Triton kernels for these shapes on this device."""
    feat = w4.shape[1]
    return (use_triton(z) and w4.shape[0] <= MAX_WIDTH and 16 <= feat <= 128
            and feat & (feat - 1) == 0 and z.shape[-1] <= 64)


def pick_precision(device_type: str, training: bool) -> str:
    """The fused op's dot precision: "tf32" when training under autocast (where the plain
    path's matmuls run in bf16/fp16), "tf32x3" otherwise: in float32, and for inference, where
    the model computes the filter once per length and caches it (``HyenaFilter``), so
    near-float32 taps cost nothing per batch.

    The sines (w = 10 in the released configs) amplify rounding about tenfold per layer. On an
    H100 at L = 8k, d_model 256 (benchmarks/results/filter/tune_h100.txt), against float64
    (norm of the difference over the norm, taps / worst parameter gradient): plain bf16
    autocast 0.19 / 0.19, fused TF32 0.038 / 0.047, fused TF32x3 6.9e-6 / 8.8e-6, plain float32
    5.0e-6 / 6.0e-6. TF32x3 took 2-3x TF32's time (13.6 vs 6.8 ms forward+backward at 1M).
    """
    return "tf32" if training and torch.is_autocast_enabled(device_type) else "tf32x3"


def implicit_filter(z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas, shift: float,
                    modulate: bool = True, precision: str | None = None) -> torch.Tensor:
    """``implicit_filter_ref`` as one fused autograd node where ``fused_supported``; float32
    taps (D, L). precision: the dots' input precision (Triton's ``input_precision``): "tf32"
    (one tensor-core pass, 10-bit mantissas), "tf32x3" (three passes, ~float32) or "ieee"
    (float32 FMA); None: ``pick_precision``.
    """
    if not fused_supported(z, w4):
        return implicit_filter_ref(z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas, shift,
                                   modulate)
    if precision is None:
        training = torch.is_grad_enabled() and any(
            p.requires_grad for p in (w1, b1, w2, b2, w3, b3, freq, w4))
        precision = pick_precision(z.device.type, training)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return _fused(z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas, shift, modulate, precision)


@torch.compiler.disable  # opaque to dynamo: Triton kernels with a hand-written backward
def _fused(*args):
    return _ImplicitFilter.apply(*args)


def _pow2(n: int, least: int = 16) -> int:
    return max(least, 1 << (n - 1).bit_length())


class _ImplicitFilter(torch.autograd.Function):
    """Saves only the inputs (parameters and buffers); the backward recomputes the FFN."""

    @staticmethod
    def forward(ctx, z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas, shift, modulate, precision):
        ins = [x.contiguous() for x in (z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas)]
        z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas = ins
        seqlen, emb = z.shape
        width, feat = w4.shape
        k = torch.empty(width, seqlen, dtype=torch.float32, device=z.device)
        if seqlen:
            grid = (triton.cdiv(seqlen, FWD_BLOCK_L),
                    triton.cdiv(width, FWD_BLOCK_D * FWD_D_BLOCKS))
            _filter_fwd_kernel[grid](
                k, z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas, float(shift),
                seqlen, emb, width, EP=_pow2(emb), F=feat, BL=FWD_BLOCK_L, BD=FWD_BLOCK_D,
                ND=FWD_D_BLOCKS, MODULATE=bool(modulate), PREC=precision,
                num_warps=SHORT_FWD_WARPS if seqlen <= SHORT_MAX_LEN else FWD_WARPS)
        ctx.save_for_backward(*ins)
        ctx.shift, ctx.modulate, ctx.precision = float(shift), bool(modulate), precision
        ctx.sm_share = BWD_SM_SHARE if _beside_prefix(z) else 1.0  # autograd: same stream
        return k

    @staticmethod
    def backward(ctx, dk):
        z, t, w1, b1, w2, b2, w3, b3, freq, w4, deltas = ctx.saved_tensors
        seqlen, emb = z.shape
        width, feat = w4.shape
        sizes = [width * feat, feat * feat, feat * feat, feat * emb, feat, feat, feat, feat]
        short = seqlen <= SHORT_MAX_LEN
        block_l = SHORT_BWD_BLOCK_L if short else BWD_BLOCK_L
        hoist = BWD_HOIST_WEIGHTS and ctx.precision == "tf32"
        # pipelined only as measured: long L, TF32 with hoisted weights (the TF32x3 / IEEE
        # builds reload the weights per tile; their shared memory with stages is unmeasured)
        tiles = triton.cdiv(seqlen, block_l) if seqlen else 0
        programs = max(1, min(tiles, int(BWD_PROGRAMS_PER_SM * _sm_count(z.device)
                                          * ctx.sm_share)))
        # every program writes its whole row; with no taps at all no program runs: zeros
        alloc = torch.empty if tiles else torch.zeros
        part = alloc(programs, sum(sizes), dtype=torch.float32, device=z.device)
        if tiles:
            _filter_bwd_kernel[(programs,)](
                part, dk.float().contiguous(), z, t, w1, b1, w2, b2, w3, b3, freq, w4,
                deltas, ctx.shift, seqlen, emb, width, tiles, programs, part.shape[1],
                EP=_pow2(emb), F=feat, DP=_pow2(width), BL=block_l,
                MODULATE=ctx.modulate, PREC=ctx.precision,
                HOIST=hoist, STAGES=BWD_STAGES if hoist and not short else 1,
                num_warps=BWD_WARPS)
        dw4, dw3, dw2, dw1, db3, db2, db1, dfreq = part.sum(0).split(sizes)
        need = ctx.needs_input_grad

        def grad(g, like, i):
            return g.view(like.shape).to(like.dtype) if need[i] else None

        return (None, None, grad(dw1, w1, 2), grad(db1, b1, 3), grad(dw2, w2, 4),
                grad(db2, b2, 5), grad(dw3, w3, 6), grad(db3, b3, 7), grad(dfreq, freq, 8),
                grad(dw4, w4, 9), None, None, None, None)


def _beside_prefix(z: torch.Tensor) -> bool:
    """Whether this filter is being built on the model's side stream, its backward to run there
    beside the prefix's (``lean.filter_stream``)."""
    from hyenadna.ops.lean import on_filter_stream  # lean sits above this module

    return z.is_cuda and on_filter_stream(z.device)


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 2  # Triton's interpreter: a couple of programs exercise the partial sums
    return torch.cuda.get_device_properties(device).multi_processor_count


if triton is not None:

    @triton.jit
    def _ffn_forward(z_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr, freq, rows, rmask,
                     E, EP: tl.constexpr, F: tl.constexpr, PREC: tl.constexpr):
        """The three sine layers for one tile of positions: inputs and pre-activations."""
        fe = tl.arange(0, EP)
        ff = tl.arange(0, F)
        a0 = tl.load(z_ptr + rows[:, None] * E + fe[None, :],
                     mask=rmask[:, None] & (fe[None, :] < E), other=0.0).to(tl.float32)
        w1t = tl.load(w1_ptr + ff[None, :] * E + fe[:, None], mask=fe[:, None] < E,
                      other=0.0).to(tl.float32)  # (EP, F) = W1ᵀ
        h1 = tl.dot(a0, w1t, input_precision=PREC) + tl.load(b1_ptr + ff).to(tl.float32)[None, :]
        a1 = tl.sin(freq[None, :] * h1)
        w2t = tl.load(w2_ptr + ff[None, :] * F + ff[:, None]).to(tl.float32)
        h2 = tl.dot(a1, w2t, input_precision=PREC) + tl.load(b2_ptr + ff).to(tl.float32)[None, :]
        a2 = tl.sin(freq[None, :] * h2)
        w3t = tl.load(w3_ptr + ff[None, :] * F + ff[:, None]).to(tl.float32)
        h3 = tl.dot(a2, w3t, input_precision=PREC) + tl.load(b3_ptr + ff).to(tl.float32)[None, :]
        a3 = tl.sin(freq[None, :] * h3)
        return a0, h1, a1, h2, a2, h3, a3

    @triton.jit
    def _filter_fwd_kernel(k_ptr, z_ptr, t_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr,
                           freq_ptr, w4_ptr, deltas_ptr, shift, L, E, D, EP: tl.constexpr,
                           F: tl.constexpr, BL: tl.constexpr, BD: tl.constexpr,
                           ND: tl.constexpr, MODULATE: tl.constexpr, PREC: tl.constexpr):
        rows = tl.program_id(0) * BL + tl.arange(0, BL)
        rmask = rows < L
        ff = tl.arange(0, F)
        freq = tl.load(freq_ptr + ff).to(tl.float32)
        a0, h1, a1, h2, a2, h3, a3 = _ffn_forward(z_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr,
                                                  b3_ptr, freq, rows, rmask, E, EP, F, PREC)
        a3t = tl.trans(a3)  # (F, BL)
        t = tl.load(t_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
        for j in tl.static_range(ND):
            dd = (tl.program_id(1) * ND + j) * BD + tl.arange(0, BD)
            dmask = dd < D
            w4 = tl.load(w4_ptr + dd[:, None] * F + ff[None, :], mask=dmask[:, None],
                         other=0.0).to(tl.float32)
            h = tl.dot(w4, a3t, input_precision=PREC)  # (BD, BL)
            if MODULATE:
                rate = tl.abs(tl.load(deltas_ptr + dd, mask=dmask, other=0.0).to(tl.float32))
                h = h * (tl.exp(-t[None, :] * rate[:, None]) + shift)
            tl.store(k_ptr + dd.to(tl.int64)[:, None] * L + rows[None, :], h,
                     mask=dmask[:, None] & rmask[None, :])

    @triton.jit
    def _sine_backward(da, h, freq):
        """Through a = sin(freq · h): (dh, this layer's share of dfreq)."""
        c = tl.cos(freq[None, :] * h) * da
        return c * freq[None, :], tl.sum(c * h, axis=0)

    @triton.jit
    def _dense_backward(dh, a_in, w, PREC: tl.constexpr):
        """Through h = a_in Wᵀ + b: this tile's (dW, db) and da_in."""
        return (tl.dot(tl.trans(dh), a_in, input_precision=PREC), tl.sum(dh, axis=0),
                tl.dot(dh, w, input_precision=PREC))

    @triton.jit
    def _load_square(w_ptr, F: tl.constexpr):
        ff = tl.arange(0, F)
        return tl.load(w_ptr + ff[:, None] * F + ff[None, :]).to(tl.float32)  # (F_out, F_in)

    @triton.jit
    def _filter_bwd_tile(tile, acc4, acc3, acc2, acc1, db1, db2, db3, dfr, w4, w3, w2, dk_ptr,
                         z_ptr, t_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr, w4_ptr,
                         freq, rate, dd, dmask, ff, shift, L, E, EP: tl.constexpr,
                         F: tl.constexpr, BL: tl.constexpr, MODULATE: tl.constexpr,
                         PREC: tl.constexpr, HOIST: tl.constexpr):
        """One tile of BL positions of ``_filter_bwd_kernel``: its sums added to the acc*."""
        rows = tile * BL + tl.arange(0, BL)
        rmask = rows < L
        a0, h1, a1, h2, a2, h3, a3 = _ffn_forward(z_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr,
                                                  w3_ptr, b3_ptr, freq, rows, rmask, E, EP,
                                                  F, PREC)
        # g = dk · window (D, BL); zero outside the taps, so every gradient below is too
        g = tl.load(dk_ptr + dd.to(tl.int64)[:, None] * L + rows[None, :],
                    mask=dmask[:, None] & rmask[None, :], other=0.0)
        if MODULATE:
            t = tl.load(t_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
            g = g * (tl.exp(-t[None, :] * rate[:, None]) + shift)
        if not HOIST:
            w4 = tl.load(w4_ptr + dd[:, None] * F + ff[None, :], mask=dmask[:, None],
                         other=0.0).to(tl.float32)  # (DP, F)
        acc4 += tl.dot(g, a3, input_precision=PREC)
        da = tl.dot(tl.trans(g), w4, input_precision=PREC)  # (BL, F)
        dh, dfr_i = _sine_backward(da, h3, freq)
        dfr += dfr_i
        if not HOIST:
            w3 = _load_square(w3_ptr, F)
        dw, db, da = _dense_backward(dh, a2, w3, PREC)
        acc3 += dw
        db3 += db
        dh, dfr_i = _sine_backward(da, h2, freq)
        dfr += dfr_i
        if not HOIST:
            w2 = _load_square(w2_ptr, F)
        dw, db, da = _dense_backward(dh, a1, w2, PREC)
        acc2 += dw
        db2 += db
        dh, dfr_i = _sine_backward(da, h1, freq)
        dfr += dfr_i
        acc1 += tl.dot(tl.trans(dh), a0, input_precision=PREC)
        db1 += tl.sum(dh, axis=0)
        return acc4, acc3, acc2, acc1, db1, db2, db3, dfr

    @triton.jit
    def _filter_bwd_kernel(part_ptr, dk_ptr, z_ptr, t_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr,
                           w3_ptr, b3_ptr, freq_ptr, w4_ptr, deltas_ptr, shift, L, E, D, tiles,
                           programs, row_len, EP: tl.constexpr, F: tl.constexpr, DP: tl.constexpr,
                           BL: tl.constexpr, MODULATE: tl.constexpr, PREC: tl.constexpr,
                           HOIST: tl.constexpr, STAGES: tl.constexpr):
        pid = tl.program_id(0)
        ff = tl.arange(0, F)
        fe = tl.arange(0, EP)
        dd = tl.arange(0, DP)
        dmask = dd < D
        freq = tl.load(freq_ptr + ff).to(tl.float32)
        rate = tl.abs(tl.load(deltas_ptr + dd, mask=dmask, other=0.0).to(tl.float32))
        acc4 = tl.zeros((DP, F), dtype=tl.float32)
        acc3 = tl.zeros((F, F), dtype=tl.float32)
        acc2 = tl.zeros((F, F), dtype=tl.float32)
        acc1 = tl.zeros((F, EP), dtype=tl.float32)
        db1 = tl.zeros((F,), dtype=tl.float32)
        db2 = tl.zeros((F,), dtype=tl.float32)
        db3 = tl.zeros((F,), dtype=tl.float32)
        dfr = tl.zeros((F,), dtype=tl.float32)
        if HOIST:
            w4 = tl.load(w4_ptr + dd[:, None] * F + ff[None, :], mask=dmask[:, None],
                         other=0.0).to(tl.float32)  # (DP, F)
            w3 = _load_square(w3_ptr, F)
            w2 = _load_square(w2_ptr, F)
        if not HOIST:  # loaded per tile instead (placeholders here)
            w4 = 0.0
            w3 = 0.0
            w2 = 0.0
        # persistent: program p takes tiles p, p + programs, ... A while loop for STAGES = 1:
        # with tl.range(num_stages=1) instead, one of the precisions' builds needed 320 KiB of
        # shared memory on an H100 (s16c), over its 227. STAGES > 1: Triton loads the next
        # tiles' dk, z and t while this one computes (tl.range over a runtime bound runs in
        # Triton 3.9's interpreter, which the CPU tests use; 3.6's rejected it).
        if STAGES > 1:
            for tile in tl.range(pid, tiles, programs, num_stages=STAGES):
                acc4, acc3, acc2, acc1, db1, db2, db3, dfr = _filter_bwd_tile(
                    tile, acc4, acc3, acc2, acc1, db1, db2, db3, dfr, w4, w3, w2, dk_ptr, z_ptr,
                    t_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr, w4_ptr, freq, rate,
                    dd, dmask, ff, shift, L, E, EP, F, BL, MODULATE, PREC, HOIST)
        else:
            tile = pid
            while tile < tiles:
                acc4, acc3, acc2, acc1, db1, db2, db3, dfr = _filter_bwd_tile(
                    tile, acc4, acc3, acc2, acc1, db1, db2, db3, dfr, w4, w3, w2, dk_ptr, z_ptr,
                    t_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr, w4_ptr, freq, rate,
                    dd, dmask, ff, shift, L, E, EP, F, BL, MODULATE, PREC, HOIST)
                tile += programs
        # this program's partial sums, one row: dW4 | dW3 | dW2 | dW1 | db3 | db2 | db1 | dfreq
        out = part_ptr + pid.to(tl.int64) * row_len
        tl.store(out + dd[:, None] * F + ff[None, :], acc4, mask=dmask[:, None])
        out += D * F
        tl.store(out + ff[:, None] * F + ff[None, :], acc3)
        out += F * F
        tl.store(out + ff[:, None] * F + ff[None, :], acc2)
        out += F * F
        tl.store(out + ff[:, None] * E + fe[None, :], acc1, mask=fe[None, :] < E)
        out += F * E
        tl.store(out + ff, db3)
        tl.store(out + F + ff, db2)
        tl.store(out + 2 * F + ff, db1)
        tl.store(out + 3 * F + ff, dfr)
