"""Lean FFT long convolution with the Hyena gates fused around it: a custom autograd Function.

Same maths as ``fftconv`` (Poli et al. 2023, eq. 3) with HyenaDNA's order-2 gating (eq. 7) folded
in, per channel d:

    w = v · pre                                      (input gate, x_1 in the operator)
    z[t] = sum_{s<=t} k[d, s] · w[t - s] + D[d] · w[t]
    y = post · z                                     (output gate, x_0 in the operator)

``pre``/``post`` may be None (no gate), so ``fftconv_fast(u, k, D)`` is a drop-in for
``fftconv``. ``gated_fftconv_ref`` (direct convolution, O(L·L_k)) is the slow twin the tests use.

Why it is cheaper than autograd through ``fftconv`` (which saves a float32 copy of u and both
complex spectra, and runs ~12 elementwise passes per direction: its 68.9 ms at L = 1M on an H100
(BASELINES.md) is ~770 bytes moved per element of (D, L) at 2.9 TB/s, against a floor of 22):

1. I/O stays in the input dtype (bf16 under autocast); only the per-chunk FFT buffers are float32
   (float64 for float64 inputs). bf16/fp16 FFTs are too coarse for 1M-long sums.
2. The backward is written out below; it saves only v, pre, post (the operator keeps them anyway),
   z in the I/O dtype (only when ``post`` is given: dpost = dy · z) and the filter's spectrum
   K'/n (8 bytes per tap, independent of B: it spares the backward an rfft of the filter; k
   itself is not kept). w = v · pre and its spectrum (8 bytes per element of (B, D, L)) are
   recomputed, never stored. Products with a conjugate are one pass, and the backward's two share
   their read of G (``hyenadna.ops.spectral``).
3. D is folded into tap 0 of the filter (k'[0] = k[0] + D), so the skip term costs nothing in
   either direction and dD = dk'[0] comes for free.
4. Channels are processed in chunks so the float32/complex buffers of one chunk (a few times
   ``chunk_elems`` · 4 bytes) bound the transient memory whatever B · L is.
5. On the cuFFT engine every even-length inverse runs packed, as a complex inverse of half the
   length whose input the spectral product writes (``spectral.packed_product``): torch's irfft
   would clone its input first. The formulas below say irfft; the packed form is the same sum.
6. Three engines run the transforms (``pick_onchip``, ``pick_fourstep_n1``): up to n = 16384 the
   on-chip engine (``hyenadna.ops.onchip``: the whole row in one CUDA kernel per direction),
   from n = 65536 the four-step engine (``hyenadna.ops.fourstep``, its row stage on chip where
   the rows fit: ``fourstep.row_conv_forward``), cuFFT otherwise.

Backward, per channel, with n >= L + L_k - 1 and zero padding (so circular = linear):
    forward:  z = irfft(K' · W)[:L]            (K' = rfft(k', n), W = rfft(w, n); 1/n in irfft)
    the adjoint of circular convolution by k' is circular correlation with k':
              dw[s]  = sum_t k'[t - s] g[t]        = irfft(conj(K') · G)[s],   s < L,  g = dy · post
    and, by the symmetry of k' and w in the product:
              dk'[s] = sum_b sum_t w[t - s] g[t]  = irfft(sum_b conj(W) · G)[s],  s < L_k
    A negative lag wraps to n + (t - s), past the end of the zero-padded partner (k' has L_k
    taps, w has L samples, and n >= L + L_k - 1): the forward's padding condition suffices.
    irfft's 1/n is the right scale in all three because F^-1 = F^H / n (unnormalised DFT F).
    The code moves that 1/n onto an input each time (k' for z and dw, w for dk) so the inverse
    transforms run unscaled (norm="forward"): cuFFT's C2R has no scaling, torch adds a pass.
"""

from __future__ import annotations

import torch

from hyenadna.ops import fourstep, onchip, rowsplit
from hyenadna.ops.fftconv import fft_size, fftconv_ref
from hyenadna.ops.layout import padded_mul, strided_mul, use_triton
from hyenadna.ops.spectral import (
    backward_products,
    mul_spectra,
    packed_backward_products,
    packed_product,
    unpacked_inverse,
)

CHUNK_ELEMS = 1 << 26
"""Float32 elements per (B, chunk, n) FFT buffer: 256 MiB; at n = 2^21 that is 32 channels of
batch 1, still enough rows to fill an H100."""

PACK_INVERSES = True
"""Whether even-length inverses run packed (``_product_inverse``); off, every inverse is
torch's irfft. benchmarks/bench_packed_inverse.py times both."""

PACKED_SPECTRA = True
"""Default of ``HYENADNA_PACKED_SPECTRA``: whether the four-step engine stores the spectra it
passes between its kernels as packed bf16 pairs (``fourstep.PACKED``: 4 bytes a complex value
instead of 8) when the I/O is bf16. Every kernel still computes in float32; each stored
spectrum is rounded once to bf16 (relative error 2^-9 per value, as the bf16 output's own
rounding). The filter's spectrum K'/n stays complex64. On an H100 (s17b, one call, off / on
alternating): the step-graphed operator at batch 1 went 2.18 → 2.06 ms at 64k, 9.10 → 8.81 at
256k and 41.9 → 40.7 at 1M, the gated conv alone 1.86 → 1.64 ms at 64k and 28.4 → 27.0 at 1M,
its relative error against float64 2.9e-3 → 3.7e-3. Less than the halved bytes predicted:
the engine's kernels are bound by latency and arithmetic more than by HBM
(benchmarks/NOTES_gpu.md, seventeenth session)."""
PACKED_ENV = "HYENADNA_PACKED_SPECTRA"


def packed_spectra(v: torch.Tensor) -> bool:
    """Whether the four-step engine packs its intermediate spectra for this bf16 call
    (``HYENADNA_PACKED_SPECTRA`` 1/0, default ``PACKED_SPECTRA``)."""
    return v.dtype == torch.bfloat16 and onchip._env_on(PACKED_ENV, str(int(PACKED_SPECTRA)))


PACKED_CHUNK_SCALE = 4
"""Packed, the four-step engine's spectra take half the bytes, so its channel chunks may hold
this many times ``chunk_elems`` (2: the chunks' buffers as large as before packing; fewer
launches, shorter tails at 1M, where the backward ran 16 chunks of 16 channels). On an H100,
the step-graphed operator at batch 1 (one call per pair, alternating, twice): 1 → 2 (s18b)
256k 7.87 / 7.89 → 7.82 / 7.75 ms, 1M 36.83 / 37.14 → 36.54 / 36.53; 2 → 4 (s18d) 1M
35.43 / 35.39 → 35.10 / 35.14. 1: chunks as unpacked."""


def _fourstep_chunk_elems(v: torch.Tensor, chunk_elems: int) -> int:
    return chunk_elems * (PACKED_CHUNK_SCALE if packed_spectra(v) else 1)


FFT_POLICIES = ("pow2", "smooth")
FFT_ENGINES = ("auto", "cufft", "fourstep", "onchip")
FOURSTEP_MIN_N = 1 << 16
"""Shortest FFT the "auto" engine gives the four-step engine (L >= 32k in the model)."""


def conv_fft_size(seqlen: int, taps: int, policy: str = "pow2") -> int:
    """FFT length for a causal conv of ``seqlen`` inputs with ``taps`` taps.

    Any n >= seqlen + taps - 1 is exact. "pow2" rounds up to a power of two (cuFFT's fastest
    kernels); "smooth" to a 7-smooth size (``fft_size``: smaller, e.g. 2,000,376 instead of
    2,097,152 for L = 1,000,002, and what pocketfft likes).
    """
    need = seqlen + taps - 1
    if policy == "pow2":
        return 1 << (need - 1).bit_length()
    if policy == "smooth":
        return fft_size(need)
    raise ValueError(f"fft policy must be one of {FFT_POLICIES}, got {policy!r}")


def pick_onchip(v: torch.Tensor, n: int, engine: str = "auto", *gates: torch.Tensor | None
                ) -> bool:
    """Whether this call runs on the on-chip engine (``hyenadna.ops.onchip``): one CUDA kernel
    per direction, each row's FFT in shared memory. "auto" and "onchip" take it wherever it
    applies: CUDA, bf16 or float32 I/O, a power-of-two n from 1024 to 16384 (L <= 8192), v and
    the gates time-contiguous, and the kernels built; "cufft" and "fourstep" never do.
    """
    if engine not in FFT_ENGINES:
        raise ValueError(f"fft engine must be one of {FFT_ENGINES}, got {engine!r}")
    if engine not in ("auto", "onchip"):
        return False
    if any(t is not None and t.stride(-1) != 1 and t.shape[-1] > 1 for t in (v, *gates)):
        return False
    return onchip.supported(v, n)


def pick_fourstep_n1(v: torch.Tensor, n: int, engine: str = "auto", n1: int | None = None
                ) -> int | None:
    """N1 of the four-step engine (``hyenadna.ops.fourstep``) for this call, or None for cuFFT.

    "auto": the four-step engine for bf16/fp16 I/O on CUDA with Triton and a power-of-two
    n >= FOURSTEP_MIN_N, cuFFT otherwise. On an H100 (N1 = 32; benchmarks/results/fourstep/
    sweep_*session6*, forward+backward of the long conv): batch 8, 7.08 / 13.9 ms at L = 32k /
    64k against cuFFT's 7.65 / 21.8, but 3.59 against 3.32 at 16k and slower below; batch 1,
    47.4 against 57.6 ms at 1M; the graphed operator at 32k 1.92 against 2.11 ms (batch 1) and
    10.8 against 11.6 (batch 8). So from L = 32k; below, the exact float32 cuFFT path stays, and
    float32 I/O keeps it everywhere (the column DFT runs in TF32).
    "fourstep" forces it wherever n allows (the CPU tests run its torch twins), "cufft" never
    uses it; n1 overrides the split (the sweep varies it).
    """
    if engine not in FFT_ENGINES:
        raise ValueError(f"fft engine must be one of {FFT_ENGINES}, got {engine!r}")
    if engine in ("cufft", "onchip") or not fourstep.supported(n):
        return None
    if engine == "auto" and not (use_triton(v) and n >= FOURSTEP_MIN_N
                                 and v.dtype in (torch.bfloat16, torch.float16)):
        return None
    return fourstep.split_size(n, n1)[0]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _chunks(channels: int, rows: int, n: int, chunk_elems: int) -> list[slice]:
    """Channel slices with rows · len · n <= chunk_elems (at least one channel each)."""
    step = max(1, chunk_elems // max(1, rows * n))
    return [slice(c, min(c + step, channels)) for c in range(0, channels, step)]


def _spectrum_buffer(for_backward: bool, chunks: list[slice], shape: tuple, dtype, device
                     ) -> torch.Tensor | None:
    """The (D, ...) buffer the forward writes the filter's spectrum into chunk by chunk, or None
    when nothing is kept or one chunk covers every channel: that chunk's spectrum is then kept
    as it is. (torch.fft with ``out=`` transforms into a temporary and copies it over with a
    scaling pass: one more read and write of the spectrum, 0.1 ms at L = 64k on an H100.)"""
    return torch.empty(shape, dtype=dtype, device=device) if for_backward and len(chunks) > 1 \
        else None


def _filter_spectrum(k: torch.Tensor, D: torch.Tensor | None, n: int,
                     dtype: torch.dtype, out: torch.Tensor | None = None) -> torch.Tensor:
    """rfft of k'/n (k with D added to tap 0, zero-padded to n): (c, L_k) → (c, n//2 + 1),
    into ``out`` when given.

    The inverse transform's 1/n rides on the filter (free: the copy into the padded buffer
    scales), so every irfft below runs with norm="forward", which skips its scaling pass.
    """
    kp = torch.empty(k.shape[0], n, dtype=dtype, device=k.device)  # (c, n)
    padded_mul(kp[None], k[None], None, 1.0 / n)
    if D is not None:
        kp[:, 0].add_(D, alpha=1.0 / n)  # one kernel, no D / n temporary
    return torch.fft.rfft(kp, out=out)


def gated_conv_forward(v, pre, post, k, D, n: int, chunk_elems: int = CHUNK_ELEMS,
                       for_backward: bool = True, out: torch.Tensor | None = None,
                       n1: int | None = None, use_onchip: bool = False,
                       k_spec: torch.Tensor | None = None):
    """y = post · (k' ∗ (v · pre))[:L], chunk by chunk; n1: the four-step engine's split
    (``pick_fourstep_n1``), None for cuFFT; use_onchip: the on-chip engine (``pick_onchip``).

    Shapes: v, pre, post (B, D, L) in one I/O dtype (any strides); k (D, L_k); D (D,).
    ``out``: optional (B, D, L) buffer for y, any strides (the mixer passes a transposed view
    of a (B, L, D) tensor, so y lands in the layout out_proj reads).
    ``k_spec``: on the on-chip engine only, K'/n already computed (``onchip_filter_spectrum``;
    the mixer builds it on the filter's side stream).

    Returns:
        y (B, D, L) and, when ``for_backward`` (else None): z (B, D, L) in the I/O dtype (None
        when post is None) and K'/n (D, n//2+1) complex, what the backward needs of the
        filter (8 bytes per tap; spares it an rfft). With n1 it is the four-step half spectrum
        (D, N1/2 + 1, N2), the same size.
    """
    if use_onchip:
        return _forward_onchip(v, pre, post, k, D, n, for_backward, out, k_spec)
    if k_spec is not None:
        raise ValueError("a precomputed k_spec is for the on-chip engine only")
    if n1 is not None:
        return _forward_fourstep(v, pre, post, k, D, n, n1, chunk_elems, for_backward, out)
    batch, channels, seqlen = v.shape
    cdt = _compute_dtype(v)
    y = torch.empty_like(v) if out is None else out  # (B, D, L)
    z_keep = torch.empty_like(v) if post is not None and for_backward else None
    chunks = _chunks(channels, batch, n, chunk_elems)
    k_spec = _spectrum_buffer(for_backward, chunks, (channels, n // 2 + 1), _complex(cdt),
                              v.device)
    for sl in chunks:
        buf = torch.empty(batch, sl.stop - sl.start, n, dtype=cdt, device=v.device)  # (B, c, n)
        # w = v · pre zero-padded to n, one pass (the product rounds to bf16 before it widens,
        # like the plain path's v * x1 followed by fftconv's cast: both see the same w)
        padded_mul(buf, v[:, sl], None if pre is None else pre[:, sl])
        spec = torch.fft.rfft(buf)  # (B, c, n//2+1)
        del buf
        k_f = _filter_spectrum(k[sl], None if D is None else D[sl], n, cdt,
                               None if k_spec is None else k_spec[sl])  # (c, n//2+1)
        if for_backward and k_spec is None:  # one chunk: keep the spectrum itself
            k_spec = k_f
        z = _product_inverse(spec, k_f, n)[..., :seqlen]  # (B, c, L); 1/n in K
        del spec, k_f
        # the gate in float32, one rounding to the I/O dtype
        strided_mul(y[:, sl], z, None if post is None else post[:, sl])
        if post is not None and for_backward:
            z_keep[:, sl].copy_(z)
    return y, z_keep, k_spec


def _product_inverse(spec: torch.Tensor, k_f: torch.Tensor, n: int) -> torch.Tensor:
    """irfft(spec · K'/n, n) unscaled (the 1/n rides on K'): (B, c, n//2+1) → (B, c, n).

    For even n the product is written packed for a half-length complex inverse
    (``spectral.packed_product``): torch's irfft would first clone its input. Odd n (the
    7-smooth policy) takes the product in place and irfft.
    """
    if PACK_INVERSES and n % 2 == 0:
        return unpacked_inverse(packed_product(spec, k_f, conj_b=False))
    spec.mul_(k_f)
    return torch.fft.irfft(spec, n=n, norm="forward")


def _backward_inverses(spec: torch.Tensor, k_f: torch.Tensor, n: int
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """From spec = (G[, W/n]) stacked (parts, B, c, n//2+1) and K'/n: dw = irfft(conj(K'/n)·G)
    (B, c, n) and, when W is there, the filter's sum_b irfft(conj(W/n)·G) (c, n), else None.

    Both products come from one read of G (``spectral``; torch's mul would first materialise
    each lazy conj), packed for half-length complex inverses when n is even (see
    ``_product_inverse``); ``spec`` is overwritten for odd n.
    """
    g_f = spec[0]
    batch = g_f.shape[0]
    if PACK_INVERSES and n % 2 == 0:
        if spec.shape[0] == 1:
            return unpacked_inverse(packed_product(g_f, k_f, conj_b=True)), None
        z_dw, z_cross = packed_backward_products(g_f, spec[1], k_f)
        cross = z_cross[0] if batch == 1 else z_cross.sum(0)
        return unpacked_inverse(z_dw), unpacked_inverse(cross)
    cross = None
    if spec.shape[0] == 2:
        w_f = spec[1]
        backward_products(g_f, w_f, k_f)  # G · conj(W) over W, G · conj(K'/n) over G
        cross = torch.fft.irfft(w_f[0] if batch == 1 else w_f.sum(0), n=n, norm="forward")
    else:
        mul_spectra(g_f, g_f, k_f, conj_b=True)
    return torch.fft.irfft(g_f, n=n, norm="forward"), cross


def _forward_fourstep(v, pre, post, k, D, n, n1, chunk_elems, for_backward, out):
    """``gated_conv_forward`` on the four-step engine: the column stages fuse the gate product
    in, and the gate and the dtype cast out; no padded float32 copies, no separate scaling."""
    batch, channels, seqlen = v.shape
    y = torch.empty_like(v) if out is None else out  # (B, D, L)
    z_keep = torch.empty_like(v) if post is not None and for_backward else None
    half, n2 = n1 // 2 + 1, n // n1
    cdt = _complex(_compute_dtype(v))
    cols_dtype = fourstep.PACKED if packed_spectra(v) else cdt
    chunks = _chunks(channels, batch, n, _fourstep_chunk_elems(v, chunk_elems))
    # the filter's spectrum in the order the row stage reads it (rowsplit: rows past 8192)
    split = rowsplit.used(torch.empty(0, n2, dtype=cdt, device=v.device))

    def filter_spectrum(sl: slice) -> torch.Tensor:  # K'/n: D on tap 0, the inverse's 1/n
        return fourstep.rfft4(k[sl].unsqueeze(0), None, n, n1, 1.0 / n,
                              None if D is None else D[sl], split_rows=split)[0]

    # Kept for the backward: every channel's spectrum from one call. (Chunk by chunk into one
    # buffer, torch.fft's out= added a scaling pass over the whole spectrum: 1.58 ms of the
    # operator's 46 at 1M on an H100, s14e. At once, the column stage's temporary covers every
    # channel for a moment: ~2 GB more at 1M, d_model 256.)
    k_spec = filter_spectrum(slice(None)) if for_backward and len(chunks) > 1 else None
    for sl in chunks:
        k_f = filter_spectrum(sl) if k_spec is None else k_spec[sl]
        if for_backward and k_spec is None:  # one chunk: keep the spectrum itself
            k_spec = k_f
        cols = torch.empty(batch, sl.stop - sl.start, half, n2, dtype=cols_dtype,
                           device=v.device)
        fourstep.rfft4_cols(cols, v[:, sl], None if pre is None else pre[:, sl], n, n1,
                            split=split)
        q = fourstep.row_conv_forward(cols, k_f, split)  # unscaled; 1/n rode on K'
        del k_f, cols
        y_sl = y[:, sl]
        if post is None:
            fourstep.irfft4_cols(q, n, n1, seqlen, y_sl, merge=split)
        elif y_sl.stride(-1) == 1:  # y time-contiguous: gate and z in one pass
            fourstep.irfft4_cols(q, n, n1, seqlen, y_sl, post[:, sl],
                                 None if z_keep is None else z_keep[:, sl], merge=split)
        else:
            # y in (B, L, D) layout (the mixer's): write z time-contiguous, then the tiled
            # transposing product; y = post · round(z), the plain path's rounding.
            z = z_keep[:, sl] if z_keep is not None else torch.empty_like(v[:, sl])
            fourstep.irfft4_cols(q, n, n1, seqlen, z, merge=split)
            strided_mul(y_sl, z, post[:, sl])
    return y, z_keep, k_spec


def onchip_filter_spectrum(k: torch.Tensor, D: torch.Tensor | None, n: int) -> torch.Tensor:
    """K'/n as the on-chip engine reads it: (D, n//2+1) complex64, no autograd graph."""
    with torch.no_grad():
        return _filter_spectrum(k, D, n, torch.float32)


def _forward_onchip(v, pre, post, k, D, n, for_backward, out, k_spec=None):
    """``gated_conv_forward`` on the on-chip engine: one kernel for every row (no chunks: it
    allocates nothing but K'/n, z and y)."""
    y = torch.empty_like(v) if out is None else out  # (B, D, L)
    z_keep = torch.empty_like(v) if post is not None and for_backward else None
    if k_spec is None:
        k_spec = _filter_spectrum(k, D, n, torch.float32)  # (D, n//2+1) complex64, K'/n
    if y.stride(-1) == 1:  # z, y = post · round(z) and the gate in the kernel
        onchip.forward(v, pre, post, k_spec, z_keep, y)
    else:
        # y in (B, L, D) layout (the mixer's): z time-contiguous, then the tiled transposing
        # product. (The kernel can write y strided, but at 1 × 256 × 8k on an H100 that took
        # it from 0.032 to 0.065 ms, more than the product's 0.007: benchmarks/NOTES_gpu.md.)
        z = z_keep if z_keep is not None else torch.empty_like(v)
        onchip.forward(v, pre, None, k_spec, z, None)
        strided_mul(y, z, post)
    return y, z_keep, k_spec if for_backward else None


def _backward_onchip(dy, v, pre, post, k_spec, z, n, taps, need_cross, outs):
    """``gated_conv_backward`` on the on-chip engine; returns dk (float32) or None."""
    dv, dpre, dpost = outs
    dk_rows = (torch.empty(v.shape[0], v.shape[1], taps, dtype=torch.float32, device=v.device)
               if need_cross else None)  # (B, D, L_k)
    if dy.stride(-1) != 1:  # dy in (B, L, D) layout: one tiled transposing copy (reading it
        dy_t = torch.empty_like(v)  # strided in the kernel was slower, as y in the forward)
        strided_mul(dy_t, dy, None)
        dy = dy_t
    # g = dy · post and dpost = dy · z in the same kernel
    onchip.backward(dy, post, v, pre, k_spec, dv, dpre, dk_rows, n,
                    z if post is not None else None, dpost)
    if dk_rows is None:
        return None
    return dk_rows[0] if dk_rows.shape[0] == 1 else dk_rows.sum(0)


def _backward_fourstep(dy, v, pre, post, k_spec, z, n, taps, chunk_elems, need_cross, outs):
    """``gated_conv_backward`` on the four-step engine; returns dk (compute dtype) or None."""
    batch, channels, seqlen = v.shape
    dv, dpre, dpost = outs
    n1, n2 = 2 * (k_spec.shape[1] - 1), k_spec.shape[2]
    split = rowsplit.used(k_spec)  # as the forward asked: k_spec is in the order it chose
    dk = (torch.empty(channels, taps, dtype=_compute_dtype(v), device=v.device)
          if need_cross else None)
    parts = 2 if need_cross else 1
    for sl in _chunks(channels, parts * batch, n, _fourstep_chunk_elems(v, chunk_elems)):
        if post is not None:
            strided_mul(dpost[:, sl], dy[:, sl], z[:, sl])
        cols = torch.empty(parts, batch, sl.stop - sl.start, n1 // 2 + 1, n2,
                           dtype=fourstep.PACKED if packed_spectra(v) else k_spec.dtype,
                           device=v.device)
        g, gate = dy[:, sl], None if post is None else post[:, sl]
        if g.stride(-1) != 1:  # dy in (B, L, D) layout: the tiled kernel transposes it
            g_t = torch.empty_like(v[:, sl])
            strided_mul(g_t, g, gate)
            g, gate = g_t, None
        fourstep.rfft4_cols(cols[0], g, gate, n, n1, split=split)
        if need_cross:  # w/n: the 1/n of dk's inverse transform
            fourstep.rfft4_cols(cols[1], v[:, sl], None if pre is None else pre[:, sl], n, n1,
                                1.0 / n, split=split)
        q, q_cross = fourstep.row_conv_backward(cols, k_spec[sl], need_cross, split)
        del cols
        if need_cross:
            fourstep.irfft4_cols(q_cross.unsqueeze(0), n, n1, taps, dk[sl].unsqueeze(0),
                                 merge=split)
            del q_cross
        if pre is None:
            fourstep.irfft4_cols(q, n, n1, seqlen, dv[:, sl], merge=split)
        else:
            fourstep.irfft4_cols(q, n, n1, seqlen, dv[:, sl], pre[:, sl], dpre[:, sl], v[:, sl],
                                 merge=split)
    return dk


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def gated_conv_backward(dy, v, pre, post, k_spec, z, n: int, taps: int,
                        chunk_elems: int = CHUNK_ELEMS, dk_dtype=None, dD_dtype=None, out=None,
                        use_onchip: bool = False):
    """Gradients of ``gated_conv_forward`` from its saved tensors (see the module docstring).

    Args:
        dy: (B, D, L) gradient of y. v, pre, post: the forward's inputs. k_spec, z: the
            forward's K'/n and z (z needed only when post is given). taps: L_k.
        dk_dtype, dD_dtype: dtypes of the filter and skip gradients; None = not wanted.
        out: optional (dv, dpre, dpost) buffers to write into (the mixer passes views of one
            (B, 3D, L) tensor so no concatenation is needed).
        use_onchip: the forward ran the on-chip engine (its K'/n is the cuFFT engine's, so
            either backward is correct; this one is the on-chip kernel).

    Returns:
        dv, dpre, dpost (B, D, L) in the I/O dtype (dpre/dpost None where the gate is None);
        dk (D, L_k) and dD (D,) (None where not wanted).
    """
    batch, channels, seqlen = v.shape
    cdt = _compute_dtype(v)
    dv, dpre, dpost = out if out is not None else (
        torch.empty_like(v), None if pre is None else torch.empty_like(v),
        None if post is None else torch.empty_like(v))
    need_cross = dk_dtype is not None or dD_dtype is not None
    if use_onchip or k_spec.dim() == 3:  # the forward ran the on-chip or four-step engine
        if use_onchip:
            dk = _backward_onchip(dy, v, pre, post, k_spec, z, n, taps, need_cross,
                                  (dv, dpre, dpost))
        else:
            dk = _backward_fourstep(dy, v, pre, post, k_spec, z, n, taps, chunk_elems,
                                    need_cross, (dv, dpre, dpost))
        dD = dk[:, 0].to(dD_dtype) if dD_dtype is not None else None
        dk = dk.to(dk_dtype) if dk_dtype is not None else None
        return dv, dpre, dpost, dk, dD
    dk = torch.empty(channels, taps, dtype=cdt, device=v.device) if need_cross else None
    parts = 2 if need_cross else 1  # g, and w only when dk or dD is wanted
    for sl in _chunks(channels, parts * batch, n, chunk_elems):
        if post is not None:
            strided_mul(dpost[:, sl], dy[:, sl], z[:, sl])
        # g = dy · post and the recomputed w = v · pre, stacked so one rfft call does both.
        buf = torch.empty(parts, batch, sl.stop - sl.start, n, dtype=cdt, device=v.device)
        padded_mul(buf[0], dy[:, sl], None if post is None else post[:, sl])
        if need_cross:  # w/n: the 1/n of dk's inverse transform (dw's rides on K'/n)
            padded_mul(buf[1], v[:, sl], None if pre is None else pre[:, sl], 1.0 / n)
        spec = torch.fft.rfft(buf)  # (parts, B, c, n//2+1)
        del buf
        dw, cross = _backward_inverses(spec, k_spec[sl], n)  # (B, c, n), (c, n) or None
        del spec
        dw = dw[..., :seqlen]
        if need_cross:
            dk[sl] = cross[:, :taps]  # (c, L_k)
            del cross
        strided_mul(dv[:, sl], dw, None if pre is None else pre[:, sl])
        if pre is not None:
            strided_mul(dpre[:, sl], dw, v[:, sl])
    # D sits on tap 0 of k', so its gradient is dk'[0] = sum_{b,t} g · w.
    dD = dk[:, 0].to(dD_dtype) if dD_dtype is not None else None
    dk = dk.to(dk_dtype) if dk_dtype is not None else None
    return dv, dpre, dpost, dk, dD


class _GatedFFTConv(torch.autograd.Function):
    """One autograd node for y = post · (k ∗ (v · pre) + D · v · pre); see the module docstring."""

    @staticmethod
    def forward(ctx, v, pre, post, k, D, n, chunk_elems, n1, use_onchip):
        y, z, k_spec = gated_conv_forward(v, pre, post, k, D, n, chunk_elems, n1=n1,
                                          use_onchip=use_onchip)
        ctx.save_for_backward(v, pre, post, k_spec, z)
        ctx.n, ctx.chunk_elems, ctx.taps = n, chunk_elems, k.shape[-1]
        ctx.use_onchip = use_onchip
        ctx.dk_dtype = k.dtype if ctx.needs_input_grad[3] else None
        ctx.dD_dtype = D.dtype if ctx.needs_input_grad[4] else None
        return y

    @staticmethod
    def backward(ctx, dy):
        v, pre, post, k_spec, z = ctx.saved_tensors
        dv, dpre, dpost, dk, dD = gated_conv_backward(
            dy.contiguous(), v, pre, post, k_spec, z, ctx.n, ctx.taps, ctx.chunk_elems,
            ctx.dk_dtype, ctx.dD_dtype, use_onchip=ctx.use_onchip)
        return dv, dpre, dpost, dk, dD, None, None, None, None


def _check(v: torch.Tensor, k: torch.Tensor, gates: tuple) -> None:
    if k.dim() != 2 or k.shape[0] != v.shape[1] or k.shape[1] > v.shape[-1]:
        raise ValueError(f"k must be (D, L_k <= L) for v {tuple(v.shape)}, got {tuple(k.shape)}")
    for g in gates:
        if g is not None and (g.shape != v.shape or g.dtype != v.dtype):
            raise ValueError(f"gates must match v {tuple(v.shape)} {v.dtype}")


@torch.compiler.disable  # opaque to dynamo: the backward is hand-written, nothing to trace
def gated_fftconv(v: torch.Tensor, pre: torch.Tensor | None, post: torch.Tensor | None,
                  k: torch.Tensor, D: torch.Tensor | None = None, *, fft_policy: str = "pow2",
                  chunk_elems: int = CHUNK_ELEMS, fft_engine: str = "auto",
                  fourstep_n1: int | None = None) -> torch.Tensor:
    """y = post · (causal_conv(v · pre, k) + D · (v · pre)) as one lean autograd node.

    Args:
        v: value (B, D, L), any float dtype (bf16 under autocast).
        pre: input gate (B, D, L) like v, or None.
        post: output gate (B, D, L) like v, or None.
        k: filter (D, L_k), L_k <= L, any float dtype (float32 in the model).
        D: skip weights (D,) or None.
        fft_policy: "pow2" or "smooth" (see ``conv_fft_size``).
        chunk_elems: float32 elements per FFT buffer (bounds transient memory).
        fft_engine, fourstep_n1: "auto", "cufft", "fourstep" or "onchip" (``pick_onchip``,
            ``pick_fourstep_n1``) and the four-step split.

    Returns:
        y (B, D, L) in v's dtype; FFT math in float32 (float64 for float64 inputs; the
        four-step engine's column DFTs in TF32).
    """
    _check(v, k, (pre, post))
    n = conv_fft_size(v.shape[-1], k.shape[-1], fft_policy)
    use_onchip = pick_onchip(v, n, fft_engine, pre, post)
    n1 = None if use_onchip else pick_fourstep_n1(v, n, fft_engine, fourstep_n1)
    if not needs_grad(v, pre, post, k, D):  # inference: keep nothing for a backward
        return gated_conv_forward(v, pre, post, k, D, n, chunk_elems, for_backward=False,
                                  n1=n1, use_onchip=use_onchip)[0]
    return _GatedFFTConv.apply(v, pre, post, k, D, n, chunk_elems, n1, use_onchip)


def needs_grad(*tensors) -> bool:
    """Whether autograd will want a backward through an op on these tensors."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def fftconv_fast(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None, *,
                 fft_policy: str = "pow2", chunk_elems: int = CHUNK_ELEMS,
                 fft_engine: str = "auto", fourstep_n1: int | None = None) -> torch.Tensor:
    """Drop-in for ``fftconv(u, k, D)`` (k must be (D, L_k)) with the lean backward."""
    return gated_fftconv(u, None, None, k, D, fft_policy=fft_policy, chunk_elems=chunk_elems,
                         fft_engine=fft_engine, fourstep_n1=fourstep_n1)


def gated_fftconv_ref(v: torch.Tensor, pre: torch.Tensor | None, post: torch.Tensor | None,
                      k: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
    """Slow twin of ``gated_fftconv``: the plain composition over the direct convolution."""
    w = v if pre is None else v * pre  # (B, D, L)
    z = fftconv_ref(w, k, D)  # (B, D, L)
    return z if post is None else z * post
