"""Four-step (Bailey / Monarch) real FFT whose outer stage is a small dense DFT on tensor cores.

A length-n transform, n = N1 · N2 (powers of two), with t = j1·N2 + j2 and f = k1 + N1·k2:

    X[k1 + N1·k2] = sum_j2 ω_N2^(j2·k2) · [ ω_n^(j2·k1) · sum_j1 ω_N1^(j1·k1) · a[j1·N2 + j2] ]
                    \\___ row FFT: cuFFT ___/   \\twiddle/   \\___ column DFT: a matmul ___/

(ω_m = exp(-2πi/m)). The column stage is an (N1 × N1) complex matrix times an (N1 × N2) tile,
done here as ``tl.dot`` on tensor cores, fused with what surrounds the transform in the long
convolution: reading the bf16 input in place (no float32 zero-padded copy: rows past the signal
are simply not loaded), the gate product, the scale, the skip weight on tap 0, the twiddles.
The row stage is a batched cuFFT of length N2 on contiguous rows. The inverse runs the same steps
backwards and its column stage writes the real output with the gates and dtype cast fused in.

Real signals: only rows k1 = 0 .. N1/2 of the (N1, N2) spectrum are kept ("half spectrum",
(N1/2 + 1) · N2 complex values, like rfft's n/2 + 1): row N1 − k1 is ω_N2^(j2) · conj(row k1)
before the row FFT. Products of half spectra of real signals are half spectra of real signals,
so the convolution never needs the other rows. The inverse folds the missing rows back in:

    n · y[j1·N2 + j2] = sum_{k1=0}^{N1/2} c_k1 · Re[ ω_N1^(−j1·k1) · ω_n^(−j2·k1) · Q[k1, j2] ],
    Q = unscaled inverse row FFT of Y,  c_0 = c_{N1/2} = 1, c_k1 = 2 otherwise.

Two implementations of the column stage: on CUDA, where they build and take the call (N1 = 32,
one I/O type per call), ``hyenadna.ops.columns``' kernels, one thread per column with a direct
float32 DFT in registers; otherwise (and under ``HYENADNA_COLUMNS=triton``) the Triton kernels
below, whose column DFT is a ``tl.dot`` on tensor cores. Nsight Compute found the Triton ones
bound by L1/TEX throughput (the tile's re-layouts through shared memory around each dot).

Precision: the Triton column DFT runs in TF32 (10-bit mantissa) with float32 accumulation. Its
inputs are bf16 signals (exact in TF32) or float32 spectra; the rounding of the DFT matrix and of
the spectra costs ~2^-11 relative to a row's rms, below the final bf16 rounding (2^-9): the
engine suits bf16/fp16 I/O, not float32. The CUDA kernels are float32 throughout.

Status (H100): with N1 = 32 the long convolution's forward+backward took 2.68 / 10.4 / 52.1 ms
at L = 64k / 256k / 1M against cuFFT's 3.85 / 15.0 / 60.2 ms (benchmarks/results/fourstep/
sweep_h100.txt). After the sixth session's retiling: 21.3 / 47.4 ms at 512k / 1M against
cuFFT's 28.9 / 57.6, and at batch 8 7.08 / 13.9 ms at 32k / 64k against 7.65 / 21.8, but 3.59
against 3.32 at 16k (sweep_*session6_h100.txt), so ``fftconv_fast.pick_fourstep_n1`` picks it
from L = 32k for bf16/fp16 and cuFFT stays below. Larger N1 are slower (the dense column DFT
costs more than the shorter rows save: 112.6 ms at N1 = 128, 1M).

The row stage (``row_conv_forward``, ``row_conv_backward``): where N2 <= onchip.MAX_M (8192)
one kernel per direction transforms a row in shared memory, multiplies it by the filter's row
and transforms it back (``onchip``'s row kernels), so a row crosses HBM once per direction.
Longer rows (N2 = 8 · M, L > 128k) are split (``rowsplit``): the column stages then store and
read their rows in split order (``split=True``: on CUDA one fused kernel each, elsewhere the
column stage and ``rowsplit``'s step apart), and the row kernels take rows of M. Otherwise
cuFFT's transform, the product and cuFFT's inverse each read and write every row.

Layout: a half spectrum is a complex tensor (..., N1/2 + 1, N2), row k1 contiguous (what cuFFT's
batched row transform wants), or the same shape packed (``PACKED``: bf16 pairs in int32 words),
which the CUDA column and row kernels read and write natively and every other stage unpacks
(``fftconv_fast.PACKED_SPECTRA`` says when the convolution uses it). ``rfft4_ref`` gives the
same thing from ``torch.fft.rfft`` and the tests hold both implementations (Triton and the torch
twin) to it.
"""

from __future__ import annotations

import math

import torch

from hyenadna.ops import columns, onchip, rowsplit
from hyenadna.ops.layout import triton, use_triton
from hyenadna.ops.spectral import backward_products, mul_spectra

if triton is not None:
    import triton.language as tl

MIN_N1 = 32  # tl.dot needs every dimension >= 16: N1/2 rows of the column DFT
MAX_N1 = 256


def split_size(n: int, n1: int | None = None) -> tuple[int, int]:
    """(N1, N2) for a power-of-two n: N1 = n1 if given, else 32, the fastest split of the H100
    sweep at L = 8k, 64k and 1M (benchmarks/sweep_fourstep.py; larger N1 shortens the cuFFT
    rows but the denser column DFT costs more than that saves)."""
    if n & (n - 1) or n < MIN_N1 * 16:
        raise ValueError(f"four-step FFT needs a power of two n >= {MIN_N1 * 16}, got {n}")
    if n1 is None:
        n1 = MIN_N1
    if n1 & (n1 - 1) or not MIN_N1 <= n1 <= min(MAX_N1, n // 16):
        raise ValueError(f"N1 must be a power of two in [{MIN_N1}, {min(MAX_N1, n // 16)}], "
                         f"got {n1}")
    return n1, n // n1


def supported(n: int) -> bool:
    return n >= MIN_N1 * 16 and not n & (n - 1)


# ------------------------------------------------------------------------------------------
# references and torch twins
# ------------------------------------------------------------------------------------------


PACKED = torch.int32
"""dtype of a packed spectrum: one 32-bit word per complex value holding its real and imaginary
parts as bfloat16 (real in the low half: the memory of a (..., 2) bfloat16 tensor). The CUDA
kernels read and write it natively (spectrum_io.cuh); elsewhere each stage unpacks, computes in
float32 and packs again, the same roundings at the same places (the twin)."""


def pack_spectrum(spec: torch.Tensor) -> torch.Tensor:
    """complex (..., N) → packed (..., N) int32: both parts rounded to bf16 (nearest even)."""
    pairs = torch.view_as_real(spec.to(torch.complex64)).to(torch.bfloat16).contiguous()
    return pairs.view(PACKED).squeeze(-1)


def unpack_spectrum(packed: torch.Tensor) -> torch.Tensor:
    """packed (..., N) int32 → complex64 (..., N), exact."""
    pairs = packed.contiguous().unsqueeze(-1).view(torch.bfloat16)  # (..., N, 2)
    return torch.view_as_complex(pairs.to(torch.float32))


def rfft4_ref(a: torch.Tensor, n: int, n1: int) -> torch.Tensor:
    """Half spectrum of a (..., L) real signal zero-padded to n, by torch.fft.rfft, in the
    four-step layout (..., N1/2 + 1, N2): out[..., k1, k2] = rfft(a, n)[k1 + N1·k2] (bins past
    n/2 taken from the Hermitian symmetry X[f] = conj(X[n − f]))."""
    n1, n2 = split_size(n, n1)
    spec = torch.fft.rfft(a, n=n)  # (..., n/2 + 1)
    f = torch.arange(n1 // 2 + 1)[:, None] + n1 * torch.arange(n2)[None, :]  # (H, N2)
    low = f <= n // 2
    idx = torch.where(low, f, n - f).to(spec.device)
    out = spec[..., idx]
    return torch.where(low.to(spec.device), out, out.conj())


def _dft_tables(n: int, n1: int, dtype: torch.dtype, device) -> tuple[torch.Tensor, ...]:
    """Column DFT (H, N1), twiddles (H, N2) and inverse column DFT (N1, H) in ``dtype``
    (complex); angles from exact integer products reduced mod the period."""
    n1, n2 = split_size(n, n1)
    half = n1 // 2
    k1 = torch.arange(half + 1, dtype=torch.int64)
    j1 = torch.arange(n1, dtype=torch.int64)
    j2 = torch.arange(n2, dtype=torch.int64)
    real = torch.float64
    dft = torch.polar(torch.ones((), dtype=real),
                      -2 * math.pi * ((k1[:, None] * j1[None, :]) % n1).to(real) / n1)
    tw = torch.polar(torch.ones((), dtype=real),
                     -2 * math.pi * ((k1[:, None] * j2[None, :]) % n).to(real) / n)
    idft = dft.conj().t()  # (N1, H)
    cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
    return tuple(t.to(device=device, dtype=cdt) for t in (dft, tw, idft))


def rfft4_cols_torch(a: torch.Tensor, b: torch.Tensor | None, n: int, n1: int, scale: float = 1.0,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """Torch twin of ``rfft4_cols``: (B, C, L) → (B, C, N1/2 + 1, N2) complex (returned)."""
    n1, n2 = split_size(n, n1)
    cdt = torch.float64 if a.dtype == torch.float64 else torch.float32
    x = (a if b is None else a * b).to(cdt) * scale  # (B, C, L); bf16 product like torch's
    if bias is not None:
        x = x.clone()
        x[..., 0] += bias.to(cdt) * scale
    x = torch.nn.functional.pad(x, (0, n - x.shape[-1])).reshape(*x.shape[:-1], n1, n2)
    dft, tw, _ = _dft_tables(n, n1, cdt, a.device)
    return torch.matmul(dft, x.to(dft.dtype)) * tw  # (B, C, H, N2)


def irfft4_cols_torch(q: torch.Tensor, n: int, n1: int, seqlen: int, scale: float = 1.0
                 ) -> torch.Tensor:
    """Torch twin of ``irfft4_cols``'s transform: q (B, C, H, N2), the unscaled inverse row FFT
    of a half spectrum → the real signal's first ``seqlen`` samples times ``scale``, float."""
    n1, n2 = split_size(n, n1)
    real = torch.float64 if q.dtype == torch.complex128 else torch.float32
    _, tw, idft = _dft_tables(n, n1, real, q.device)
    c = torch.full((n1 // 2 + 1, 1), 2.0, dtype=real, device=q.device)
    c[0] = c[-1] = 1.0
    y = torch.matmul(idft, q * tw.conj() * c).real  # (B, C, N1, N2)
    return y.reshape(*y.shape[:-2], n)[..., :seqlen] * scale


def irfft4_ref(spec: torch.Tensor, n: int, n1: int, seqlen: int) -> torch.Tensor:
    """Reference inverse: half spectrum (..., H, N2) → irfft(·, n)[..., :seqlen]."""
    n1, n2 = split_size(n, n1)
    full = torch.zeros(*spec.shape[:-2], n // 2 + 1, dtype=spec.dtype, device=spec.device)
    f = (torch.arange(n1 // 2 + 1)[:, None] + n1 * torch.arange(n2)[None, :]).to(spec.device)
    low = f <= n // 2  # bins past n/2 stand for their mirror images n − f
    full[..., f[low]] = spec[..., low]
    full[..., n - f[~low]] = spec[..., ~low].conj()
    return torch.fft.irfft(full, n=n)[..., :seqlen]


# ------------------------------------------------------------------------------------------
# the fused column stages
# ------------------------------------------------------------------------------------------


def rfft4_cols(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None, n: int, n1: int,
               scale: float = 1.0, bias: torch.Tensor | None = None, split: bool = False
               ) -> None:
    """Column stage of ``rfft4`` into ``out`` (B, C, N1/2 + 1, N2) complex: the twiddled
    column DFT of x = a · b · scale (+ bias · scale on tap 0), zero-padded to n.

    a, b: (B, C, L) with any strides (b may be None); bias (C,) or None. The product of two
    bf16 inputs is rounded to bf16 first, as torch's ``a * b`` would be. split: each row of
    out in ``rowsplit``'s split order (``rowsplit.split_rows_torch`` of the rows).
    """
    if a.shape[-1] > n:
        raise ValueError(f"signal of {a.shape[-1]} samples does not fit an FFT of {n}")
    if a.is_cuda and columns.supported(n1, out, a, b):
        _check_rows(out)
        if columns.rfft4_cols(out, a, b, n, n1, _rows_held(a.shape[-1], n, n1), scale, bias,
                              split):
            return
    if out.dtype == PACKED:  # the twin: the stage in complex64, then one rounding
        full = torch.empty(out.shape, dtype=torch.complex64, device=out.device)
        rfft4_cols(full, a, b, n, n1, scale, bias, split)
        out.copy_(pack_spectrum(full))
        return
    if use_triton(a):
        rfft4_cols_triton(out, a, b, n, n1, scale, bias)
    else:
        out.copy_(rfft4_cols_torch(a, b, n, n1, scale, bias))
    if split:
        _split_in_place(out)


def _split_in_place(cols: torch.Tensor) -> None:
    if cols.is_cuda and cols.dtype == torch.complex64 and cols.is_contiguous():
        rowsplit.split_rows(cols)
    else:
        cols.copy_(rowsplit.split_rows_torch(cols))


def _merged(q: torch.Tensor) -> torch.Tensor:
    """Rows in split order merged back (a new tensor: the caller's q is left as it is)."""
    if q.is_cuda and q.dtype == torch.complex64:
        q = q.clone(memory_format=torch.contiguous_format)
        rowsplit.merge_rows(q)
        return q
    return rowsplit.merge_rows_torch(q)


def rfft4(a: torch.Tensor, b: torch.Tensor | None, n: int, n1: int, scale: float = 1.0,
          bias: torch.Tensor | None = None, out: torch.Tensor | None = None,
          split_rows: bool = False) -> torch.Tensor:
    """Half spectrum (B, C, N1/2 + 1, N2) of x = a · b · scale (+ bias · scale on tap 0)
    zero-padded to n (see ``rfft4_cols``); complex64 (complex128 for float64 a); into ``out``
    (contiguous) when given. split_rows: each row in ``rowsplit``'s split order, as
    ``row_conv_forward`` reads a filter's spectrum where ``rowsplit.used``."""
    n1, n2 = split_size(n, n1)
    cdt = torch.complex128 if a.dtype == torch.float64 else torch.complex64
    cols = torch.empty(*a.shape[:2], n1 // 2 + 1, n2, dtype=cdt, device=a.device)
    rfft4_cols(cols, a, b, n, n1, scale, bias, split=split_rows)
    if not split_rows:
        return torch.fft.fft(cols, dim=-1, out=out)
    parts = (*cols.shape[:-1], rowsplit.PARTS, n2 // rowsplit.PARTS)
    spec = torch.fft.fft(cols.view(parts), dim=-1, out=None if out is None else out.view(parts))
    return spec.view(cols.shape)


def irfft4_cols(q: torch.Tensor, n: int, n1: int, seqlen: int, out1: torch.Tensor,
                gate1: torch.Tensor | None = None, out2: torch.Tensor | None = None,
                gate2: torch.Tensor | None = None, scale: float = 1.0, merge: bool = False
                ) -> None:
    """Inverse column stage with its epilogue. With y the first ``seqlen`` samples of the real
    signal whose half spectrum's unscaled inverse row FFT is q (B, C, N1/2 + 1, N2), times
    ``scale``: out1 = y · gate1 (or y), out2 = y · gate2 (or y), products in float32, one
    rounding to each output's dtype. Outputs and gates (B, C, seqlen), any strides. merge: q's
    rows are the row kernels' output in ``rowsplit``'s split order (merged first)."""
    if q.is_cuda and columns.supported(n1, q, out1, gate1, out2, gate2):
        _check_rows(q)
        if columns.irfft4_cols(q, n, n1, _rows_held(seqlen, n, n1), seqlen, out1, gate1, out2,
                               gate2, scale, merge):
            return
    if q.dtype == PACKED:
        q = unpack_spectrum(q)
    if merge:
        q = _merged(q)
    if use_triton(out1) and q.dtype == torch.complex64:
        irfft4_cols_triton(q, n, n1, seqlen, out1, gate1, out2, gate2, scale)
        return
    y = irfft4_cols_torch(q, n, n1, seqlen, scale)
    for o, g in ((out1, gate1), (out2, gate2)):
        if o is not None:
            o.copy_(y if g is None else y * g.to(y.dtype))


def irfft4(spec: torch.Tensor, n: int, n1: int, seqlen: int) -> torch.Tensor:
    """irfft(·, n)[..., :seqlen] of a half spectrum (B, C, N1/2 + 1, N2), float32/64."""
    q = torch.fft.ifft(spec, dim=-1, norm="forward")  # unscaled: 1/n applied below
    real = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    y = torch.empty(*spec.shape[:2], seqlen, dtype=real, device=spec.device)
    irfft4_cols(q, n, n1, seqlen, y, scale=1.0 / n)
    return y


# ------------------------------------------------------------------------------------------
# the row stage of a convolution: on chip (hyenadna.ops.onchip's row kernels) or cuFFT
# ------------------------------------------------------------------------------------------


def _parts(rows: torch.Tensor) -> torch.Tensor:
    """(..., N2) rows as (..., P, M): the split rows the on-chip row kernels take."""
    return rows.view(*rows.shape[:-1], rowsplit.PARTS, rows.shape[-1] // rowsplit.PARTS)


def row_conv_forward(cols: torch.Tensor, k_spec: torch.Tensor, split: bool = False
                     ) -> torch.Tensor:
    """The forward's row stage: the unscaled inverse row FFT of (row FFT of cols) · k_spec.

    cols (B, C, H, N2) complex, the column stage of the signal; k_spec (C, H, N2) the filter's
    half spectrum (K'/n). Where the row kernels take N2 (CUDA, N2 <= onchip.MAX_M) a row is
    transformed, multiplied and transformed back in one kernel, in place (cols returned);
    otherwise cuFFT's transform, the product and cuFFT's inverse, three passes over the rows.
    split (``rowsplit.used``): cols and k_spec in split order, N2 = P · M; the row kernels
    (their twins off CUDA) take the rows of M in place, and the result stays in split order
    (``irfft4_cols(..., merge=True)`` merges it). Packed cols (``PACKED``) stay packed: the
    result is rounded once more, into cols.
    """
    if cols.dtype == PACKED and not _packed_rows_on_chip(cols, split):
        cols.copy_(pack_spectrum(row_conv_forward(unpack_spectrum(cols), k_spec, split)))
        return cols
    if split or onchip.rows_supported(cols):
        x, k = (_parts(cols), _parts(k_spec)) if split else (cols, k_spec)
        if cols.is_cuda:
            onchip.rows_forward(x, k)
        else:  # split rows off CUDA (the tests): the row kernel's twin
            x.copy_(onchip.row_conv_forward_torch(x, k))
        return cols
    spec = torch.fft.fft(cols, dim=-1)
    spec.mul_(k_spec)
    return torch.fft.ifft(spec, dim=-1, norm="forward")


def row_conv_backward(cols: torch.Tensor, k_spec: torch.Tensor, need_cross: bool,
                      split: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The backward's row stage. cols (parts, B, C, H, N2): the column stages of g and, with
    need_cross, of w/n. Returns the unscaled inverse row FFTs of G · conj(k_spec) (B, C, H, N2)
    and of the batch's sum of G · conj(W) (C, H, N2; None without need_cross).

    On chip (``row_conv_forward``) each row is inverted in place and the batch summed after
    (the inverse is linear); on cuFFT the batch is summed before the one inverse. split: as in
    ``row_conv_forward`` (everything in split order, results too).
    """
    batch = cols.shape[1]
    if cols.dtype == PACKED and not _packed_rows_on_chip(cols, split):
        full = unpack_spectrum(cols)
        if split or onchip.rows_supported(full):  # in place in full, one rounding per row
            row_conv_backward(full, k_spec, need_cross, split)
            cols.copy_(pack_spectrum(full))
            return _backward_results(cols, need_cross)
        q, q_cross = row_conv_backward(full, k_spec, need_cross, split)
        return pack_spectrum(q), None if q_cross is None else pack_spectrum(q_cross)
    if split or onchip.rows_supported(cols):
        g, w, k = cols[0], cols[1] if need_cross else None, k_spec
        if split:
            g, w, k = _parts(g), None if w is None else _parts(w), _parts(k)
        if cols.is_cuda:
            onchip.rows_backward(g, w, k)
        else:  # split rows off CUDA (the tests): the row kernels' twins
            dg, dw = onchip.row_conv_backward_torch(g, w, k)
            g.copy_(dg)
            if w is not None:
                w.copy_(dw)
        return _backward_results(cols, need_cross)
    spec = torch.fft.fft(cols, dim=-1)
    g_f, q_cross = spec[0], None
    if need_cross:
        w_f = spec[1]
        backward_products(g_f, w_f, k_spec)  # W ← G · conj(W), G ← G · conj(K'/n)
        cross = w_f[0] if batch == 1 else w_f.sum(0)
        q_cross = torch.fft.ifft(cross, dim=-1, norm="forward")
    else:
        mul_spectra(g_f, g_f, k_spec, conj_b=True)
    return torch.fft.ifft(g_f, dim=-1, norm="forward"), q_cross


def _packed_rows_on_chip(cols: torch.Tensor, split: bool) -> bool:
    """Whether the row kernels take packed cols as they are (CUDA, and the packed build)."""
    rows = _parts(cols) if split else cols
    return cols.is_cuda and onchip.rows_supported(rows)


def _backward_results(cols: torch.Tensor, need_cross: bool):
    """The row kernels' in-place results: g's rows, and the batch's sum of the cross rows.
    (Packed cross rows are summed in float32 and packed again: one more rounding, only where
    the batch is > 1.)"""
    if not need_cross:
        return cols[0], None
    batch = cols.shape[1]
    if batch == 1:
        return cols[0], cols[1][0]
    if cols.dtype == PACKED:
        return cols[0], pack_spectrum(unpack_spectrum(cols[1]).sum(0))
    return cols[0], cols[1].sum(0)


# Tiles of the column kernels: (N1/2) x BJ values per program. H100, N1 = 32, L = 64k and 1M
# (benchmarks/results/fourstep/probe_cols{1..4}_h100.*, sixth session): both kernels are fastest
# with small tiles, the forward with 512 values on 4 warps (BJ = 32), the inverse with 1024 on
# 4 warps (BJ = 64). The first tuning (tune_h100.json) had picked 1024 / 4096-value tiles for the
# kernels as they were then (rows on the grid's first axis, each complex value two 4-byte stores
# at a stride the compiler did not know). Twelfth session (results/fourstep/s12_h100/tune.json,
# H100), on a variant of these kernels that reused its DFT matrix and twiddles over several
# signals per program (no faster for the forward, 1.4-1.7x slower for the inverse, so reverted):
# at one signal per program its inverse was fastest on 512 values (0.166 against 0.220 ms per
# call at 64k). Not yet timed on these kernels; gpu_session.sh s12b does.
RFFT_TILE, RFFT_WARPS = 512, 4
IRFFT_TILE, IRFFT_WARPS = 1024, 4


def _block_j(half: int, n2: int, tile: int) -> int:
    """Columns per program: a (N1/2, BJ) tile of about ``tile`` values, BJ in [16, N2]."""
    return max(16, min(n2, tile // half))


def _rows_held(seqlen: int, n: int, n1: int) -> int:
    """Rows of the (N1, N2) tile that hold the first ``seqlen`` samples, rounded up to a power of
    two (the CUDA kernels are built per row count: few builds, at most one idle row in two)."""
    n2 = n // n1
    return min(n1, 1 << max(0, (-(-seqlen // n2) - 1).bit_length()))


def _rows_pow2(seqlen: int, n2: int) -> int:
    """Rows of the (N1, N2) signal tile that hold samples, rounded up for tl.dot (>= 16)."""
    return max(16, triton.next_power_of_2(triton.cdiv(seqlen, n2)))


def _check_rows(spec: torch.Tensor) -> None:
    # the kernels address a spectrum row r = b·C + c with one stride, and each row's N2 complex
    # values side by side (a stride the compiler knows lets it store each pair as one 8 bytes)
    batch_stride, row_stride = spec.stride(0), spec.stride(1)
    if spec.shape[0] > 1 and batch_stride != spec.shape[1] * row_stride:
        raise ValueError("half spectrum must have its (B, C) rows evenly strided")
    if spec.stride(-1) != 1:
        raise ValueError("half spectrum must have its N2 complex values contiguous")


def _round_code(a: torch.dtype, b: torch.dtype) -> int:
    return {torch.bfloat16: 1, torch.float16: 2}.get(torch.promote_types(a, b), 0)


def rfft4_cols_triton(spec, a, b, n, n1, scale=1.0, bias=None, *, block_j=None,
                      num_warps=None) -> None:
    """Triton ``rfft4_cols`` (CUDA, or any device under TRITON_INTERPRET=1). block_j,
    num_warps: tile width and warps, None = the tuned defaults (benchmarks/tune_fourstep.py
    varies them)."""
    n1, n2 = split_size(n, n1)
    batch, channels, seqlen = a.shape
    half = n1 // 2
    bj = min(n2, block_j) if block_j else _block_j(half, n2, RFFT_TILE)
    rows_in = min(_rows_pow2(seqlen, n2), max(16, n1))
    sv = torch.view_as_real(spec)  # (B, C, H, N2, 2) float32
    _check_rows(spec)
    bb = a if b is None else b
    # one flat grid, column blocks fastest: neighbouring programs write neighbouring pieces of
    # each spectrum row (and no grid axis limits the number of rows)
    grid = (batch * channels * (n2 // bj),)
    _rfft4_cols_kernel[grid](
        sv, a, bb, a if bias is None else bias, channels, seqlen, float(scale), *a.stride(),
        *bb.stride(), sv.stride(1), sv.stride(2), N=n, N2=n2, HALF=half,
        ROWS=rows_in, BJ=bj, HAS_B=b is not None, HAS_BIAS=bias is not None,
        ROUND=0 if b is None else _round_code(a.dtype, b.dtype),
        num_warps=num_warps or RFFT_WARPS)


def irfft4_cols_triton(q, n, n1, seqlen, out1, gate1=None, out2=None, gate2=None,
                       scale=1.0, *, block_j=None, num_warps=None) -> None:
    """Triton ``irfft4_cols`` (complex64 q; CUDA, or any device under TRITON_INTERPRET=1);
    block_j, num_warps as in ``rfft4_cols_triton``."""
    n1, n2 = split_size(n, n1)
    batch, channels = q.shape[:2]
    half = n1 // 2
    bj = min(n2, block_j) if block_j else _block_j(half, n2, IRFFT_TILE)
    rows_out = min(_rows_pow2(seqlen, n2), max(16, n1))
    qv = torch.view_as_real(q)  # (B, C, H, N2, 2)
    _check_rows(q)
    g1 = out1 if gate1 is None else gate1
    o2 = out1 if out2 is None else out2
    g2 = o2 if gate2 is None else gate2
    grid = (batch * channels * (n2 // bj),)
    _irfft4_cols_kernel[grid](
        qv, out1, g1, o2, g2, channels, seqlen, float(scale), qv.stride(1), qv.stride(2),
        *out1.stride(), *g1.stride(), *o2.stride(), *g2.stride(), N=n, N2=n2,
        HALF=half, ROWS=rows_out, BJ=bj, HAS_G1=gate1 is not None, HAS_O2=out2 is not None,
        HAS_G2=gate2 is not None,
        num_warps=num_warps or IRFFT_WARPS)


if triton is not None:

    @triton.jit
    def _angle(m, period: tl.constexpr):
        # 2π·m/period for an integer m in [0, period), reduced to [-π, π] (accurate sin/cos)
        m = tl.where(m > period // 2, m - period, m)
        return m.to(tl.float32) * (6.283185307179586 / period)

    @triton.jit
    def _rfft4_cols_kernel(out_ptr, a_ptr, b_ptr, bias_ptr, C, L, scale,
                           sa_b, sa_c, sa_l, sb_b, sb_c, sb_l, so_r, so_k,
                           N: tl.constexpr, N2: tl.constexpr, HALF: tl.constexpr,
                           ROWS: tl.constexpr, BJ: tl.constexpr, HAS_B: tl.constexpr,
                           HAS_BIAS: tl.constexpr, ROUND: tl.constexpr):
        # One (row, block of BJ columns j2): x[j1, j2] = a·b·scale at t = j1·N2 + j2 (zero past
        # L), P[k1, j2] = ω_N^(j2·k1) · sum_j1 ω_N1^(j1·k1) · x[j1, j2] for k1 = 0 .. HALF.
        pid = tl.program_id(0).to(tl.int64)
        r = pid // (N2 // BJ)
        bi = r // C
        ci = r % C
        j1 = tl.arange(0, ROWS)[:, None]
        j2 = (pid % (N2 // BJ)).to(tl.int32) * BJ + tl.arange(0, BJ)[None, :]
        t = (j1 * N2 + j2).to(tl.int64)
        mask = t < L
        x = tl.load(a_ptr + bi * sa_b + ci * sa_c + t * sa_l, mask=mask, other=0.0)
        x = x.to(tl.float32)
        if HAS_B:
            x = x * tl.load(b_ptr + bi * sb_b + ci * sb_c + t * sb_l, mask=mask,
                            other=0.0).to(tl.float32)
            if ROUND == 1:
                x = x.to(tl.bfloat16).to(tl.float32)
            if ROUND == 2:
                x = x.to(tl.float16).to(tl.float32)
        x = x * scale
        if HAS_BIAS:
            x += tl.where(t == 0, tl.load(bias_ptr + ci).to(tl.float32) * scale, 0.0)
        # column DFT rows k1 < HALF on tensor cores (TF32, float32 accumulation)
        k1 = tl.arange(0, HALF)[:, None]
        ph = _angle((k1 * tl.arange(0, ROWS)[None, :]) % (2 * HALF), 2 * HALF)  # (HALF, ROWS)
        sr = tl.dot(tl.cos(ph), x, input_precision="tf32")  # (HALF, BJ)
        si = -tl.dot(tl.sin(ph), x, input_precision="tf32")
        th = _angle((k1 * j2) % N, N)  # twiddle ω_N^(j2·k1) = cos θ − i sin θ
        c = tl.cos(th)
        s = tl.sin(th)
        part = tl.arange(0, 2)[None, None, :]  # real, imaginary: side by side, one store
        base = out_ptr + r * so_r + 2 * j2  # (1, BJ)
        tl.store((base + k1 * so_k)[:, :, None] + part,
                 tl.join(sr * c + si * s, si * c - sr * s))
        # Nyquist row k1 = HALF: ω_N1^(j1·HALF) = (−1)^j1, real
        sgn = tl.where(j1 % 2 == 0, 1.0, -1.0)
        nyq = tl.sum(x * sgn, axis=0)[None, :]  # (1, BJ)
        th = _angle((HALF * j2) % N, N)
        tl.store((base + HALF * so_k)[:, :, None] + part,
                 tl.join(nyq * tl.cos(th), -nyq * tl.sin(th)))

    @triton.jit
    def _irfft4_cols_kernel(q_ptr, o1_ptr, g1_ptr, o2_ptr, g2_ptr, C, L, scale,
                            sq_r, sq_k, so1_b, so1_c, so1_l, sg1_b, sg1_c, sg1_l,
                            so2_b, so2_c, so2_l, sg2_b, sg2_c, sg2_l,
                            N: tl.constexpr, N2: tl.constexpr, HALF: tl.constexpr,
                            ROWS: tl.constexpr, BJ: tl.constexpr, HAS_G1: tl.constexpr,
                            HAS_O2: tl.constexpr, HAS_G2: tl.constexpr):
        # One (row, block of BJ columns j2): R[k1, j2] = c_k1 · ω_N^(−j2·k1) · Q[k1, j2],
        # y[j1, j2] = scale · sum_k1 Re(ω_N1^(−j1·k1) · R[k1, j2]) at t = j1·N2 + j2 < L.
        pid = tl.program_id(0).to(tl.int64)
        r = pid // (N2 // BJ)
        bi = r // C
        ci = r % C
        k1 = tl.arange(0, HALF)[:, None]
        j2 = (pid % (N2 // BJ)).to(tl.int32) * BJ + tl.arange(0, BJ)[None, :]
        base = q_ptr + r * sq_r + 2 * j2
        part = tl.arange(0, 2)[None, None, :]  # real, imaginary: side by side, one 8-byte load
        qr, qi = tl.split(tl.load((base + k1 * sq_k)[:, :, None] + part))
        th = _angle((k1 * j2) % N, N)
        c = tl.cos(th)
        s = tl.sin(th)
        w = tl.where(k1 == 0, 1.0, 2.0)
        rr = (qr * c - qi * s) * w
        ri = (qr * s + qi * c) * w
        j1 = tl.arange(0, ROWS)[:, None]
        ph = _angle((j1 * tl.arange(0, HALF)[None, :]) % (2 * HALF), 2 * HALF)  # (ROWS, HALF)
        y = tl.dot(tl.cos(ph), rr, input_precision="tf32")
        y -= tl.dot(tl.sin(ph), ri, input_precision="tf32")  # (ROWS, BJ)
        # Nyquist row k1 = HALF: (−1)^j1 · Re(ω_N^(−j2·HALF) · Q[HALF, j2])
        nr, ni = tl.split(tl.load((base + HALF * sq_k)[:, :, None] + part))
        th = _angle((HALF * j2) % N, N)
        y += tl.where(j1 % 2 == 0, 1.0, -1.0) * (nr * tl.cos(th) - ni * tl.sin(th))
        y = y * scale
        t = (j1 * N2 + j2).to(tl.int64)
        mask = t < L
        v1 = y
        if HAS_G1:
            v1 = y * tl.load(g1_ptr + bi * sg1_b + ci * sg1_c + t * sg1_l, mask=mask,
                             other=0.0).to(tl.float32)
        tl.store(o1_ptr + bi * so1_b + ci * so1_c + t * so1_l,
                 v1.to(o1_ptr.dtype.element_ty), mask=mask)
        if HAS_O2:
            v2 = y
            if HAS_G2:
                v2 = y * tl.load(g2_ptr + bi * sg2_b + ci * sg2_c + t * sg2_l, mask=mask,
                                 other=0.0).to(tl.float32)
            tl.store(o2_ptr + bi * so2_b + ci * so2_c + t * so2_l,
                     v2.to(o2_ptr.dtype.element_ty), mask=mask)
