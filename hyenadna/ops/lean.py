"""Memory-lean autograd nodes for the Hyena block: the order-2 mixer and the MLP's GELU → fc2.

HyenaDNA's operator (Poli et al. 2023, eq. 7, order 2; see ``HyenaOperator``) up to ``out_proj``:

    proj = in_proj(x)                                  (B, L, 3D)
    x0, x1, v = split(short_conv(proj))                3 × (B, D, L)
    y = x0 · (k ∗ (v · x1) + D · (v · x1))             (B, L, D), out_proj's input

``hyena_mixer`` computes this as ONE autograd node that saves only x (bf16, 2 bytes per element
of (B, L, D)), z = k ∗ (v·x1) + D·(v·x1) (2 bytes) and the filter's spectrum K'/n (8 bytes
per (D, L) tap); the backward recomputes proj and the short conv (a 2·L·D·3D-FLOP matmul and a
3-tap depthwise conv, ~1 ms per layer at 1M tokens on an H100), runs the FFT backward of
``fftconv_fast`` and then the short conv's and in_proj's backward, written out here. Up to
L = ``KEEP_PREFIX_MAX_LEN`` (short rows, where the recompute costs more than the memory), and
beyond it while they fit ``KEEP_PREFIX_MAX_BYTES`` per layer (1 GiB: up to 1 × 256k at
D = 256; not at 1M), proj and the short conv's output are kept instead, and the mixer is two
nodes, prefix then convolution, so that the filter's backward can run beside the prefix's
(``filter_stream``, up to 8k).
The layout changes between (B, L, ·) and (B, ·, L) happen inside the short conv and the gate
kernels (``hyenadna.ops.layout``), never as separate strided copies; at B = 1 y stays in the
convolution's (1, D, L) memory and out_proj (``dense``) reads it transposed.
``hyena_mixer_ref`` is the plain composition it is tested against.

Activation memory per layer and token, bf16 autocast, D = 256 (bytes; E = B·L·D elements):

    plain path (autograd):  in_proj in 2E + out 6E, short-conv out 6E, v·x1 2E, fp32 copy of
                            v·x1 4E, its spectrum 8E, k's spectrum 8E·D·L/E, fftconv out 2E,
                            gated out 2E  → ~40E, plus ~3 GB per layer for the filter net at 1M
    lean path:              x 2E + z 2E + K'/n 8·D·L  (+ out_proj's input 2E, outside)

``gelu_mlp`` is the block's MLP, fc2(gelu(fc1(x))), saving only x (2E): plain autograd keeps
fc1's input, its output and the GELU's output (2E + 8E + 8E at d_inner = 4D). The backward
recomputes fc1 (2·N·D·4D FLOPs, ~1 ms per layer at 1M tokens on an H100) and the GELU. The model
uses both only on its fast path (``hyenadna.ops.use_fast_ops``).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from hyenadna.ops import onchip
from hyenadna.ops.fftconv import fftconv_ref
from hyenadna.ops.fftconv_fast import (
    CHUNK_ELEMS,
    conv_fft_size,
    gated_conv_backward,
    gated_conv_forward,
    needs_grad,
    onchip_filter_spectrum,
    pick_fourstep_n1,
    pick_onchip,
)
from hyenadna.ops.layout import (
    short_conv_t,
    short_conv_t_backward,
    short_conv_t_torch,
)
from hyenadna.ops.reduce import column_sum


def _proj(x, in_w, in_b) -> torch.Tensor:
    """in_proj in x's dtype: (B, L, D) → (B, L, 3D)."""
    return F.linear(x, in_w.to(x.dtype), _cast(in_b, x.dtype))


KEEP_PREFIX_MAX_LEN = 1 << 13
"""Up to this L the mixer keeps proj and the short conv's output for its backward (12 more
bytes per token and channel) instead of recomputing them: at these lengths the recompute's
GEMM and conv are a visible share of the step and the memory is small (predicted ~0.12 ms of
the graphed operator's ~1.9 ms at 8 × 8k on an H100; measured 1.98 → 1.91 ms across two runs,
benchmarks/NOTES_gpu.md). Beyond it they are recomputed."""


FILTER_STREAM_MAX_LEN = 1 << 18
"""Up to this L the model builds the long filter on a side stream (``filter_stream``). Past 8k
the mixer is still two autograd nodes while proj and u3 fit ``KEEP_PREFIX_MAX_BYTES`` (64k and
256k at batch 1), so the filter's backward runs beside the prefix's there too; at 1M (one node)
it would have nothing to run beside, and the caching allocator would hold a second pool of
large buffers. On an H100 (s19d, step-graphed operator at batch 1, 8k against 256k here,
alternating): 64k 1.917 / 1.929 → 1.908 / 1.908 ms, 256k 7.386 → 7.346 / 7.363; with
``implicit_filter.BWD_SM_SHARE`` 0.5 as well (s19e, against both defaults before): 64k
1.916 / 1.909 → 1.881 / 1.873, 1M 33.47 → 33.47 / 33.49, the LM step at 1 × 131k 63.1 / 63.2 →
62.1 / 62.4 and at 8 × 32k 55.0 / 55.0 → 55.0 / 55.4, peak memory unchanged."""

KEEP_PREFIX_MAX_BYTES = 1 << 30
"""Beyond ``KEEP_PREFIX_MAX_LEN`` the mixer still keeps proj and the short conv's output when the
two take at most this many bytes (6 · B · L · D values in the compute dtype: 12 · B · L · D in
bf16, per layer), instead of recomputing in_proj's GEMM and the short conv in the backward.
Measured on an H100 (s16c/s16d, benchmarks/NOTES_gpu.md), 0 against 1 GiB in one call each:
operator at batch 1 64k 2.34 → 2.19 ms, 256k 9.66 → 9.11, 1M unchanged (its 3.2 GB per layer is
over the budget, so the 8-layer LM step at 1M keeps its memory); LM step small-32k (8 × 32k)
61.2 → 58.3 ms for 6.3 → 9.3 GiB, large-1m at 131k 71.7 → 69.4 ms for 7.7 → 10.4 GiB.
0: never (the memory-leanest mixer)."""


KEEP_U3_MAX_BYTES = 1 << 31
"""Where proj and u3 are over ``KEEP_PREFIX_MAX_BYTES`` (the one-node mixer), it still keeps u3
alone when its 3 · B · L · D values in the compute dtype take at most this many bytes per
layer; the backward then recomputes only in_proj's GEMM (proj: the short conv's weight
gradient reads it), not the short conv. At 1 × 1M, D = 256 u3 is 1.6 GB per layer. On an H100
(s18b, 0 against 2 GiB in one call, alternating, twice): the step-graphed operator at batch 1
went 36.77 → 35.82 / 35.85 ms at 1M (predicted −1.3), 256k unchanged (two nodes there); the
8-layer LM step at 1M (large-1m, batch 1) 525 → 515 ms for a peak of 57.2 → 69.2 GiB.
``HYENADNA_LEAN_MIXER=1`` (``lean_mixer``) turns this and ``KEEP_PREFIX_MAX_BYTES`` off."""


LEAN_ENV = "HYENADNA_LEAN_MIXER"


def lean_mixer() -> bool:
    """``HYENADNA_LEAN_MIXER`` set to 1: the memory-leanest mixer past ``KEEP_PREFIX_MAX_LEN``,
    keeping neither proj nor u3 whatever their size (both byte budgets read as 0): the 8-layer
    LM step at 1 × 1M peaked at 57.2 GiB that way against 69.2 with the defaults (H100, s18b),
    for ~2% more time."""
    return onchip._env_on(LEAN_ENV, "0")


def _keeps_u3(x: torch.Tensor, width: int, dtype: torch.dtype) -> bool:
    """Whether the one-node mixer keeps u3 for its backward (``KEEP_U3_MAX_BYTES``)."""
    return 3 * x.shape[0] * x.shape[1] * width * (torch.finfo(dtype).bits // 8) \
        <= (0 if lean_mixer() else KEEP_U3_MAX_BYTES)


def _keeps_prefix(x: torch.Tensor, width: int, dtype: torch.dtype) -> bool:
    """Whether the mixer keeps proj and u3 for its backward (two nodes) or recomputes them."""
    batch, seqlen = x.shape[0], x.shape[1]
    if seqlen <= KEEP_PREFIX_MAX_LEN:
        return True
    return 6 * batch * seqlen * width * (torch.finfo(dtype).bits // 8) <= (
        0 if lean_mixer() else KEEP_PREFIX_MAX_BYTES)


def _matmul_in(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """a @ b (2-D, or a batch: a (B, m, k) with b (B, k, n) or one (k, n) for all) in
    ``dtype``: a weight gradient in its parameter's dtype, an input gradient in the input's.
    For half-precision inputs and float32 out on CUDA, cuBLAS writes float32 itself
    (``out_dtype``): no cast kernel after it, and no rounding to half precision in between
    (autocast's Linear rounds)."""
    mm = torch.mm
    if a.dim() == 3:
        mm, b = torch.bmm, b.expand(a.shape[0], *b.shape[-2:])
    if a.is_cuda and dtype == torch.float32 and a.dtype in (torch.bfloat16, torch.float16):
        return mm(a, b, out_dtype=torch.float32)
    return mm(a, b).to(dtype)


TIME_MAJOR_PROJ = True
"""Whether the mixer's in_proj GEMM writes proj time-major, (B, 3D, L), without its bias, the
short conv adding the bias on the way (``short_conv_t``'s ``in_bias``), and its backward's
GEMMs read dproj (B, 3D, L) as transposed operands. cuBLAS takes either layout at no cost, and
the short conv's kernels then read and write time-contiguous rows only: no transposing tile
on either side. Off: the channels-last proj (B, L, 3D), the bias in the GEMM's epilogue. proj
and dproj round to bf16 without the bias (the conv adds it in float32), a rounding unlike the
plain path's; the tests hold both layouts to the same float64 references. On an H100 (s19a,
off / on / off / on, one process each; the first off timed out compiling) the step-graphed
operator at batch 1 went 1.974 → 1.947 ms at 64k, 7.595 → 7.507 / 7.515 at 256k and 34.43 →
34.16 / 34.17 at 1M, and the LM step (AdamW included) 56.5 → 56.1 ms for small-32k at batch 8
and 504.7 → 503.4 for large-1m at 1 × 1M, at the same peak memory."""


def _proj_for_conv(x, w_c, in_b, time_major):
    """in_proj(x) as the short conv takes it: (B, L, 3D) with its bias, or time-major (B, 3D, L)
    without it (``TIME_MAJOR_PROJ``: the conv adds it). x and w_c in the compute dtype."""
    if not time_major:
        return _proj(x, w_c, in_b)
    if x.shape[0] == 1:
        return torch.mm(w_c, x[0].t()).unsqueeze(0)  # (1, 3D, L): the same GEMM, C transposed
    return torch.matmul(w_c, x.transpose(1, 2))


def _prefix_forward(x, w_c, in_b, sc_w, sc_b, time_major=False):
    """proj = in_proj(x) (B, L, 3D), or (B, 3D, L) without its bias when time_major, and u3 =
    short_conv(in_proj(x)) (B, 3D, L), in x's dtype; w_c: in_proj's weight already in x's
    dtype (the backward reuses it)."""
    # Explicit dtypes instead of autocast, so the backward's recompute (which runs with
    # autocast off) reproduces exactly the same proj and gates.
    with torch.autocast(x.device.type, enabled=False):
        proj = _proj_for_conv(x, w_c, in_b, time_major)
        # weights in x's dtype
        return proj, short_conv_t(proj, sc_w, sc_b, in_b if time_major else None, time_major)


def _prefix_backward(du3, x, proj, w_c, w_dtype, in_b, sc_w, sc_b, need, dx_dtype=None,
                     time_major=False):
    """Gradients of ``_prefix_forward`` for (x, in_w, in_b, sc_w, sc_b) given du3 (B, 3D, L);
    w_c: in_proj's weight in x's dtype, w_dtype: its parameter's; need: which are wanted;
    dx_dtype: dx's dtype (default x's: the caller's input before its cast to x's dtype);
    time_major: proj as ``_prefix_forward`` gave it with that flag."""
    dx_dtype = dx_dtype or x.dtype
    with torch.autocast(x.device.type, enabled=False):
        # in_proj's bias gradient from the short conv's (no reduction over dproj)
        dproj, dsc_w, dsc_b, din_b = short_conv_t_backward(
            du3, proj, sc_w, bool(need[3]), sc_b is not None and bool(need[4]),
            bool(need[2]) and in_b is not None, in_b if time_major else None, time_major)
        din_b = None if din_b is None else din_b.to(in_b.dtype)
        # The same matmuls autocast's autograd runs: in x's dtype with float32 accumulation;
        # weight gradients widen to the parameters' dtype.
        dx = din_w = None
        if time_major and x.shape[0] > 1:  # dproj (B, 3D, L): a batch of transposed operands
            if need[0]:
                dx = _matmul_in(dproj.transpose(1, 2), w_c, dx_dtype)  # (B, L, D)
            if need[1]:  # float32 per item (float64 for float64), summed in that dtype
                acc = torch.float64 if x.dtype == torch.float64 else torch.float32
                din_w = _matmul_in(dproj, x, acc).sum(0).to(w_dtype)  # (3D, D)
        else:
            if time_major:  # B = 1: dproj[0] (3D, L) is dproj2ᵀ, a transposed GEMM operand
                dproj2, x2 = dproj[0].t(), x[0]
            else:
                dproj2, x2 = dproj.reshape(-1, dproj.shape[-1]), x.reshape(-1, x.shape[-1])
            if need[0]:
                dx = _matmul_in(dproj2, w_c, dx_dtype).view(x.shape)  # (B, L, D)
            if need[1]:
                din_w = _matmul_in(dproj2.t(), x2, w_dtype)  # (3D, D)
    return dx, din_w, din_b, _as(dsc_w, sc_w), _as(dsc_b, sc_b)


def _conv_forward(u3, k, D, n, chunk_elems, for_backward, n1, use_onchip, k_spec=None):
    """y = x0 · (k ∗ (v·x1) + D·v·x1) as (B, L, D), and z, K'/n when for_backward (else None);
    u3 = (x0, x1, v) stacked (B, 3D, L). See ``gated_conv_forward``.

    At B = 1, y is a (1, L, D) view of a time-contiguous (1, D, L) tensor: the convolution's
    last kernel stores the gated output in its own layout (no transposing product after it),
    ``dense`` (out_proj) reads the view as one transposed GEMM operand and hands the gradient
    back in the same layout, which the backward's first kernel then reads as it is. At B > 1,
    y is (B, L, D) contiguous, written through a transposed view (a batch of such views is
    not one GEMM operand)."""
    x0, x1, v = u3.split(k.shape[0], dim=1)  # 3 × (B, D, L)
    batch, width, seqlen = u3.shape[0], k.shape[0], u3.shape[2]
    if batch == 1:
        y_t = torch.empty(1, width, seqlen, dtype=u3.dtype, device=u3.device)
        y = y_t.transpose(1, 2)
    else:
        y = torch.empty(batch, seqlen, width, dtype=u3.dtype, device=u3.device)
        y_t = y.transpose(1, 2)
    _, z, k_spec = gated_conv_forward(v, x1, x0, k, D, n, chunk_elems, for_backward, out=y_t,
                                      n1=n1, use_onchip=use_onchip, k_spec=k_spec)
    return y, z, k_spec


def _conv_backward(dy, u3, k_spec, z, n, taps, chunk_elems, dk_dtype, dD_dtype, use_onchip):
    """du3 (B, 3D, L), dk and dD of ``_conv_forward`` from dy (B, L, D)."""
    width = k_spec.shape[0]
    x0, x1, v = u3.split(width, dim=1)
    du3 = torch.empty_like(u3)  # the FFT backward writes its three slices
    dx0, dx1, dv = du3.split(width, dim=1)
    _, _, _, dk, dD = gated_conv_backward(
        dy.transpose(1, 2), v, x1, x0, k_spec, z, n, taps, chunk_elems, dk_dtype, dD_dtype,
        out=(dv, dx1, dx0), use_onchip=use_onchip)
    return du3, dk, dD


def _mixer_forward(x, in_w, in_b, sc_w, sc_b, k, D, n, chunk_elems, for_backward, n1,
                   use_onchip, time_major=False):
    """y (B, L, D) [, z, K'/n when for_backward], proj, u3."""
    proj, u3 = _prefix_forward(x, in_w.to(x.dtype), in_b, sc_w, sc_b, time_major)
    with torch.autocast(x.device.type, enabled=False):
        y, z, k_spec = _conv_forward(u3, k, D, n, chunk_elems, for_backward, n1, use_onchip)
    return y, z, k_spec, proj, u3


class _HyenaMixer(torch.autograd.Function):
    """x → y = x0 · (k ∗ (v·x1) + D·v·x1) as one node that saves x, k's spectrum and z and
    recomputes proj and u3 in the backward (L > ``KEEP_PREFIX_MAX_LEN`` and the two over
    ``KEEP_PREFIX_MAX_BYTES``), or only proj where it keeps u3 (``KEEP_U3_MAX_BYTES``)."""

    @staticmethod
    def forward(ctx, x, in_w, in_b, sc_w, sc_b, k, D, n, chunk_elems, n1, use_onchip, dtype):
        # x is cast here (as in _MixerPrefix) so that the backward's GEMM writes dx in x's
        # own dtype: no cast kernel after it (0.6 ms at 1 x 1M on an H100)
        x_c = x.to(dtype)
        ctx.time_major = TIME_MAJOR_PROJ
        y, z, k_spec, _, u3 = _mixer_forward(x_c, in_w, in_b, sc_w, sc_b, k, D, n, chunk_elems,
                                             True, n1, use_onchip, ctx.time_major)
        kept_u3 = u3 if _keeps_u3(x, k.shape[0], dtype) else None
        ctx.save_for_backward(x_c, in_w, in_b, sc_w, sc_b, k_spec, z, kept_u3)
        ctx.x_dtype = x.dtype
        ctx.n, ctx.chunk_elems, ctx.taps = n, chunk_elems, k.shape[-1]
        ctx.use_onchip = use_onchip
        ctx.dk_dtype = k.dtype if ctx.needs_input_grad[5] else None
        ctx.dD_dtype = D.dtype if ctx.needs_input_grad[6] else None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, in_w, in_b, sc_w, sc_b, k_spec, z, u3 = ctx.saved_tensors
        w_c = in_w.to(x.dtype)
        tm = ctx.time_major
        if u3 is None:  # the cheap prefix, recomputed
            proj, u3 = _prefix_forward(x, w_c, in_b, sc_w, sc_b, tm)
        else:  # u3 kept: only proj, for the short conv's weight gradient
            with torch.autocast(x.device.type, enabled=False):
                proj = _proj_for_conv(x, w_c, in_b, tm)
        with torch.autocast(x.device.type, enabled=False):
            du3, dk, dD = _conv_backward(dy, u3, k_spec, z, ctx.n, ctx.taps, ctx.chunk_elems,
                                         ctx.dk_dtype, ctx.dD_dtype, ctx.use_onchip)
        del u3
        grads = _prefix_backward(du3, x, proj, w_c, in_w.dtype, in_b, sc_w, sc_b,
                                 ctx.needs_input_grad, ctx.x_dtype, tm)
        return (*grads, dk, dD, None, None, None, None, None)


class _MixerPrefix(torch.autograd.Function):
    """x → u3 = short_conv(in_proj(x)) (B, 3D, L); keeps x and proj (L <= KEEP_PREFIX_MAX_LEN)."""

    @staticmethod
    def forward(ctx, x, in_w, in_b, sc_w, sc_b, dtype):
        # dtype: the compute dtype. x is cast here rather than by the caller so that the
        # backward's GEMM can write dx in x's own dtype (no cast kernel either way).
        x_c = x.to(dtype)
        w_c = in_w.to(dtype)  # kept for the backward's dx: one cast per step, not two
        ctx.time_major = TIME_MAJOR_PROJ
        proj, u3 = _prefix_forward(x_c, w_c, in_b, sc_w, sc_b, ctx.time_major)
        ctx.save_for_backward(x_c, proj, w_c, in_b, sc_w, sc_b)
        ctx.w_dtype, ctx.x_dtype = in_w.dtype, x.dtype
        return u3

    @staticmethod
    def backward(ctx, du3):
        x_c, proj, w_c, in_b, sc_w, sc_b = ctx.saved_tensors
        grads = _prefix_backward(du3, x_c, proj, w_c, ctx.w_dtype, in_b, sc_w, sc_b,
                                 ctx.needs_input_grad, ctx.x_dtype, ctx.time_major)
        return (*grads, None)


class _MixerConv(torch.autograd.Function):
    """u3 → y = x0 · (k ∗ (v·x1) + D·v·x1) (B, L, D); keeps u3, z and k's spectrum."""

    @staticmethod
    def forward(ctx, u3, k, D, n, chunk_elems, n1, use_onchip, k_spec):
        # k_spec: K'/n precomputed (on-chip engine, filter on a side stream), else None
        with torch.autocast(u3.device.type, enabled=False):
            y, z, k_spec = _conv_forward(u3, k, D, n, chunk_elems, True, n1, use_onchip,
                                         k_spec)
        ctx.save_for_backward(u3, k_spec, z)
        ctx.n, ctx.chunk_elems, ctx.taps = n, chunk_elems, k.shape[-1]
        ctx.use_onchip = use_onchip
        ctx.dk_dtype = k.dtype if ctx.needs_input_grad[1] else None
        ctx.dD_dtype = D.dtype if ctx.needs_input_grad[2] else None
        return y

    @staticmethod
    def backward(ctx, dy):
        u3, k_spec, z = ctx.saved_tensors
        with torch.autocast(u3.device.type, enabled=False):
            du3, dk, dD = _conv_backward(dy, u3, k_spec, z, ctx.n, ctx.taps, ctx.chunk_elems,
                                         ctx.dk_dtype, ctx.dD_dtype, ctx.use_onchip)
        return (du3 if ctx.needs_input_grad[0] else None, dk, dD, None, None, None, None,
                None)


def _as(grad: torch.Tensor | None, like: torch.Tensor | None) -> torch.Tensor | None:
    return None if grad is None or like is None else grad.to(like.dtype)


FILTER_STREAM_ENV = "HYENADNA_FILTER_STREAM"
_SIDE_STREAMS: dict[int, torch.cuda.Stream] = {}


def on_filter_stream(device: torch.device) -> bool:
    """Whether ``device``'s current stream is the side stream ``filter_stream`` hands out."""
    side = _SIDE_STREAMS.get(device.index if device.index is not None
                             else torch.cuda.current_device())
    return side is not None and torch.cuda.current_stream(device) == side


@torch.compiler.disable  # creates and hands out a CUDA stream: not for a compiled graph
def filter_stream(x: torch.Tensor) -> torch.cuda.Stream | None:
    """The side stream the model builds the long filter on, or None (CPU, no grad, L above
    ``FILTER_STREAM_MAX_LEN``, or ``HYENADNA_FILTER_STREAM=0``).

    Why: at short L every kernel of the operator is small and the GPU runs them one after
    another half empty. The filter's net depends only on its parameters, so its forward can run
    beside in_proj and the short conv; and since autograd runs a node's backward on the stream
    its forward ran on, the filter's backward then runs beside the prefix's backward (the
    mixer is two nodes there, conv then prefix, so dk is ready before the prefix's gradients).
    ``hyena_mixer(..., k_stream=)`` joins the stream before the convolution reads k. Beyond
    ``FILTER_STREAM_MAX_LEN`` the mixer is one node (nothing for the filter's backward to run
    beside) and a second stream would only hold a second pool of large buffers.
    """
    if not (x.is_cuda and torch.is_grad_enabled() and x.dim() == 3
            and x.shape[1] <= FILTER_STREAM_MAX_LEN):
        return None
    if os.environ.get(FILTER_STREAM_ENV, "1").strip().lower() in ("0", "off", "false"):
        return None
    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    if index not in _SIDE_STREAMS:
        _SIDE_STREAMS[index] = torch.cuda.Stream(device=index)
    return _SIDE_STREAMS[index]


def _join(k_stream: torch.cuda.Stream | None, *made_there: torch.Tensor | None) -> None:
    """Make the current stream wait for ``k_stream`` and tell the caching allocator that the
    tensors made there are used here too (so their memory is not handed out again while this
    stream still reads them)."""
    if k_stream is not None:
        current = torch.cuda.current_stream(k_stream.device)
        current.wait_stream(k_stream)
        for t in made_there:
            if t is not None:
                t.record_stream(current)


@torch.compiler.disable  # opaque to dynamo: hand-written backwards with a recompute
def hyena_mixer(x: torch.Tensor, in_w: torch.Tensor, in_b: torch.Tensor | None,
                sc_w: torch.Tensor, sc_b: torch.Tensor | None, k: torch.Tensor,
                D: torch.Tensor | None, *, fft_policy: str = "pow2",
                chunk_elems: int = CHUNK_ELEMS, fft_engine: str = "auto",
                k_stream: torch.cuda.Stream | None = None,
                compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Order-2 Hyena mixer up to out_proj, as memory-lean autograd nodes.

    Up to L = ``KEEP_PREFIX_MAX_LEN``, or while proj and u3 fit ``KEEP_PREFIX_MAX_BYTES``, two
    nodes: the prefix (in_proj and the short conv, keeping x and proj) and the gated
    convolution (keeping u3, z and K'/n). Otherwise one node that keeps x, z and K'/n and
    recomputes the prefix in its backward.

    Args:
        x: (B, L, D) normalised input.
        in_w, in_b: in_proj weight (3D, D) and bias (3D,), any float dtype (cast to x's).
        sc_w, sc_b: short_filter weight (3D, 1, K) and bias (3D,).
        k: long filter (D, L_k), L_k <= L (float32 in the model). D: skip weights (D,) or None.
        fft_policy, chunk_elems, fft_engine: as in ``gated_fftconv``.
        k_stream: the CUDA stream k was computed on when not the current one
            (``filter_stream``); the convolution waits for it, the prefix does not.
        compute_dtype: the dtype everything runs in (bf16 under autocast); default x's.

    Returns:
        y (B, L, D) in the compute dtype: x0 · (k ∗ (v · x1) + D · (v · x1)), in out_proj's
        layout.
    """
    dtype = compute_dtype or x.dtype
    if k.dim() != 2 or 3 * k.shape[0] != in_w.shape[0] or k.shape[1] > x.shape[1]:
        raise ValueError(f"k must be (D, L_k <= L) with 3D = {in_w.shape[0]}, got "
                         f"{tuple(k.shape)}")
    n = conv_fft_size(x.shape[1], k.shape[-1], fft_policy)
    # a stand-in for v (its device and dtype; time-contiguous, as the short conv writes v and
    # the gates)
    v_like = x if x.dtype == dtype else x.new_empty(0, dtype=dtype)
    use_onchip = pick_onchip(v_like, n, fft_engine)
    n1 = None if use_onchip else pick_fourstep_n1(v_like, n, fft_engine)
    if not needs_grad(x, in_w, in_b, sc_w, sc_b, k, D):  # inference: keep nothing
        _join(k_stream, k)
        return _mixer_forward(x.to(dtype), in_w, in_b, sc_w, sc_b, k, D, n, chunk_elems, False,
                              n1, use_onchip, TIME_MAJOR_PROJ)[0]
    if _keeps_prefix(x, k.shape[0], dtype):
        k_spec = None
        if k_stream is not None and use_onchip:  # K'/n on the filter's stream too
            with torch.cuda.stream(k_stream):
                k_spec = onchip_filter_spectrum(k, D, n)
        u3 = _MixerPrefix.apply(x, in_w, in_b, sc_w, sc_b, dtype)  # (B, 3D, L)
        _join(k_stream, k, k_spec)
        return _MixerConv.apply(u3, k, D, n, chunk_elems, n1, use_onchip, k_spec)
    _join(k_stream, k)
    return _HyenaMixer.apply(x, in_w, in_b, sc_w, sc_b, k, D, n, chunk_elems, n1, use_onchip,
                             dtype)


def hyena_mixer_ref(x: torch.Tensor, in_w: torch.Tensor, in_b: torch.Tensor | None,
                    sc_w: torch.Tensor, sc_b: torch.Tensor | None, k: torch.Tensor,
                    D: torch.Tensor | None) -> torch.Tensor:
    """Slow twin of ``hyena_mixer``: plain autograd over the direct convolution."""
    proj = _proj(x, in_w, in_b)  # (B, L, 3D)
    u3 = short_conv_t_torch(proj, sc_w, sc_b)  # (B, 3D, L), autograd through conv1d
    x0, x1, v = u3.split(k.shape[0], dim=1)  # 3 × (B, D, L)
    return (x0 * fftconv_ref(v * x1, k, D)).transpose(1, 2)  # (B, L, D)


class _GeluMlp(torch.autograd.Function):
    """out = fc2(gelu_tanh(fc1(x))), saving x only: fc1 and the GELU are recomputed."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2):
        with torch.autocast(x.device.type, enabled=False):
            h = F.linear(x, w1.to(x.dtype), _cast(b1, x.dtype))  # (..., d_inner)
            out = F.linear(F.gelu(h, approximate="tanh"), w2.to(x.dtype), _cast(b2, x.dtype))
        ctx.save_for_backward(x, w1, b1, w2, b2)
        return out  # (..., d_out)

    @staticmethod
    def backward(ctx, dout):
        x, w1, b1, w2, b2 = ctx.saved_tensors
        need = ctx.needs_input_grad
        dt = x.dtype
        x2, dout2 = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])  # (N, d), (N, o)
        # Same kernels as autocast's autograd: bf16 matmuls with float32 accumulation, then the
        # weight grads widen to the parameters' dtype (what ToCopyBackward does).
        with torch.autocast(x.device.type, enabled=False):
            h = F.linear(x2, w1.to(dt), _cast(b1, dt))  # (N, d_inner), bitwise the forward's
            act = F.gelu(h, approximate="tanh")  # (N, d_inner)
            dw2 = _matmul_in(dout2.t(), act, w2.dtype) if need[3] else None  # (o, d_inner)
            db2 = column_sum(dout2).to(b2.dtype) if need[4] and b2 is not None else None
            del act
            dh = torch.ops.aten.gelu_backward(dout2 @ w2.to(dt), h, approximate="tanh")
            del h
            dw1 = _matmul_in(dh.t(), x2, w1.dtype) if need[1] else None  # (d_inner, d)
            db1 = column_sum(dh).to(b1.dtype) if need[2] and b1 is not None else None
            dx = (dh @ w1.to(dt)).reshape(x.shape) if need[0] else None  # (..., d)
        return dx, dw1, db1, dw2, db2


def _time_major_view(x: torch.Tensor) -> bool:
    """Whether x (1, L, d) views a (1, d, L) tensor: the mixer's output at batch 1
    (``_conv_forward``), which ``dense`` takes as one transposed GEMM operand."""
    return (x.dim() == 3 and x.shape[0] == 1 and x.shape[1] > 1 and x.stride(1) == 1
            and x.stride(2) == x.shape[1])


class _Dense(torch.autograd.Function):
    """out = x · wᵀ + b in x's dtype, as autocast's Linear, with the bias gradient summed in
    float32 by ``column_sum`` (torch's bf16 ``sum(0)`` over the rows ran at ~0.25 TB/s).
    For x a (1, L, d) view of a (1, d, L) tensor (``_time_major_view``), dx comes back in that
    layout, straight out of the GEMM."""

    @staticmethod
    def forward(ctx, x, w, b):
        with torch.autocast(x.device.type, enabled=False):
            wc = w.to(x.dtype)
            if _time_major_view(x):  # one GEMM with x[0] transposed, the bias in its epilogue
                bc = _cast(b, x.dtype)
                out = (torch.mm(x[0], wc.t()) if bc is None else torch.addmm(bc, x[0], wc.t())
                       ).unsqueeze(0)
            else:
                out = F.linear(x, wc, _cast(b, x.dtype))
        ctx.save_for_backward(x, wc)
        ctx.w_dtype, ctx.b_dtype = w.dtype, None if b is None else b.dtype
        return out

    @staticmethod
    def backward(ctx, dout):
        x, wc = ctx.saved_tensors
        need = ctx.needs_input_grad
        x2, dout2 = x.reshape(-1, x.shape[-1]), dout.reshape(-1, dout.shape[-1])  # (N, d), (N, o)
        with torch.autocast(x.device.type, enabled=False):
            if need[0] and _time_major_view(x):  # dxᵀ = wᵀ · doutᵀ: (1, d, L) memory
                dx = torch.mm(wc.t(), dout2.t()).t().unsqueeze(0)
            else:
                dx = (dout @ wc) if need[0] else None  # (..., d)
            dw = _matmul_in(dout2.t(), x2, ctx.w_dtype) if need[1] else None  # (o, d)
            db = (column_sum(dout2).to(ctx.b_dtype) if need[2] and ctx.b_dtype is not None
                  else None)
        return dx, dw, db


@torch.compiler.disable
def dense(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, w, b)`` computed in x's dtype (weights cast as autocast would), with a
    fast float32 bias gradient. x (..., d), w (o, d), b (o,) or None → (..., o)."""
    return _Dense.apply(x, w, b)


def _cast(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if t is None else t.to(dtype)


@torch.compiler.disable
def gelu_mlp(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
             b2: torch.Tensor | None) -> torch.Tensor:
    """fc2(gelu_tanh(fc1(x))) that keeps only x for the backward (recomputes fc1 and the GELU).

    Args:
        x: (..., d) input in the compute dtype (bf16 under autocast: cast it first).
        w1, b1: fc1 weight (d_inner, d) and bias; w2, b2: fc2 weight (d_out, d_inner) and bias.

    Returns:
        (..., d_out) in x's dtype.
    """
    return _GeluMlp.apply(x, w1, b1, w2, b2)


def gelu_mlp_ref(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor | None, w2: torch.Tensor,
                 b2: torch.Tensor | None) -> torch.Tensor:
    """Slow twin of ``gelu_mlp``: plain autograd, weights cast to x's dtype as autocast would."""
    h = F.linear(x, w1.to(x.dtype), _cast(b1, x.dtype))  # (..., d_inner)
    return F.linear(F.gelu(h, approximate="tanh"), w2.to(x.dtype), _cast(b2, x.dtype))
