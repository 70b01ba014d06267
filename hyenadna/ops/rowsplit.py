"""One more four-step level for long rows, so that the on-chip row kernels take them.

The four-step engine's rows have N2 = n / 32 points; past N2 = onchip.MAX_M (8192, L > 128k)
they go to cuFFT: a transform, the product with the filter and an inverse, each a pass (or
several) over every row, which at L = 1M was the largest cost left in the long convolution
(benchmarks/NOTES_gpu.md). Splitting a row as N2 = P · M with M <= 8192 turns its DFT into a
P-point DFT across the row's P parts with twiddles (``split``), then P DFTs of length M, and
the inverse into the inverse DFTs of length M, then the P-point step back (``merge``). The
middle, DFT_M · filter · IDFT_M, is exactly what ``onchip``'s row kernels do in shared memory.
A spectrum in "split order" holds X[k1 + P·k2] at [k1, k2] of its (P, M) view; the filter's
spectrum must be in the same order (``fourstep.rfft4(..., split_rows=True)``).

On CUDA the split and the merge run inside the column kernels (``columns.cu``'s
``cols_fwd_split``, ``cols_inv_merge``: no pass of their own); this module's kernels
(``split_rows``, ``merge_rows``) run where those do not build (Triton's column kernels).

On by default; ``HYENADNA_SPLIT_ROWS=0`` turns it off. Measured, step-graphed operator, batch 1:
on an H200, with the split as separate kernels, 1M 46.2 -> 43.1 ms and 256k 10.05 -> 9.81 ms
(benchmarks/results/fourstep/s14_h200/); on an H100, separate -> fused, 1M 51.5 -> 45.7 ms and
256k 11.9 -> 10.4 ms (s14_h100_fused/). The twins (``split_rows_torch``, ``merge_rows_torch``)
are held to ``torch.fft`` in float64 on a CPU.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from hyenadna.ops import onchip

ENV = "HYENADNA_SPLIT_ROWS"
PARTS = 8
THREADS = 128  # rowsplit.cu's THREADS
_SOURCE = Path(__file__).with_name("rowsplit.cu")
_ROTOR = Path(__file__).with_name("rotor.cuh")  # shared twiddle rotation
_modules: dict = {}
_failed: list[str] = []


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false")


def row_length(n2: int) -> int | None:
    """M for rows of n2 points: n2 / PARTS where the row kernels hold it and n2 is past what
    they hold unsplit; None otherwise (the rows stay as they are)."""
    m = n2 // PARTS
    if n2 <= onchip.MAX_M or n2 % PARTS or not onchip.MIN_M <= m <= onchip.MAX_M or m & (m - 1):
        return None
    return m


def used(spec: torch.Tensor) -> bool:
    """Whether the four-step rows of ``spec`` (..., N2), and the spectra that meet them, are
    split: enabled, CUDA complex64, N2 = P · M with M a length the row kernels take, and both
    modules build. The forward, its filter's spectrum and the backward all ask this, so they
    agree on the order (the switch must not change inside a training step)."""
    m = row_length(spec.shape[-1])
    return (m is not None and enabled() and spec.is_cuda and spec.dtype == torch.complex64
            and onchip.rows_supported(torch.empty(0, m, dtype=spec.dtype, device=spec.device))
            and _module(spec.device) is not None)


# ------------------------------------------------------------------------------------------
# torch twins
# ------------------------------------------------------------------------------------------

def _twiddles(n2: int, m: int, sign: int, dtype, device) -> torch.Tensor:
    """exp(sign · 2πi · j2 · k1 / n2) as (P, M), from exact integer products."""
    k1 = torch.arange(PARTS, dtype=torch.int64)[:, None]
    j2 = torch.arange(m, dtype=torch.int64)[None, :]
    angle = sign * 2 * math.pi * ((k1 * j2) % n2).to(torch.float64) / n2
    return torch.polar(torch.ones((), dtype=torch.float64), angle).to(device, dtype)


def split_rows_torch(x: torch.Tensor) -> torch.Tensor:
    """``split_rows``' maths: x (..., N2) complex → (..., N2) with [k1·M + j2] =
    ω_N2^(j2·k1) · Σ_j1 ω_P^(j1·k1) · x[j1·M + j2] (ω_m = exp(−2πi/m))."""
    n2 = x.shape[-1]
    m = n2 // PARTS
    parts = x.reshape(*x.shape[:-1], PARTS, m)
    s = torch.fft.fft(parts, dim=-2) * _twiddles(n2, m, -1, x.dtype, x.device)
    return s.reshape(x.shape)


def merge_rows_torch(q: torch.Tensor) -> torch.Tensor:
    """``merge_rows``' maths: q (..., N2) → y[j1·M + j2] = Σ_k1 ω_P^(−j1·k1) · ω_N2^(−j2·k1)
    · q[k1·M + j2] (the unscaled inverse DFT_N2 of a split-order spectrum, given q = the
    unscaled inverse DFT_M of its rows)."""
    n2 = q.shape[-1]
    m = n2 // PARTS
    parts = q.reshape(*q.shape[:-1], PARTS, m) * _twiddles(n2, m, 1, q.dtype, q.device)
    return torch.fft.ifft(parts, dim=-2, norm="forward").reshape(q.shape)


def to_split_order(spec: torch.Tensor) -> torch.Tensor:
    """A row spectrum (..., N2) in natural order → split order: [k1·M + k2] = X[k1 + P·k2]."""
    n2 = spec.shape[-1]
    return spec.reshape(*spec.shape[:-1], n2 // PARTS, PARTS).transpose(-1, -2).reshape(
        spec.shape)


# ------------------------------------------------------------------------------------------
# the CUDA kernels
# ------------------------------------------------------------------------------------------

def source() -> str:
    """rowsplit.cu with its macros defined."""
    cos = ", ".join(f"{math.cos(2 * math.pi * i / PARTS):.9e}f" for i in range(PARTS))
    sin = ", ".join(f"{math.sin(2 * math.pi * i / PARTS):.9e}f" for i in range(PARTS))
    return (f"#define SPLIT_P {PARTS}\n#define SPLIT_COS {{{cos}}}\n#define SPLIT_SIN {{{sin}}}\n"
            + _ROTOR.read_text() + _SOURCE.read_text())


def _module(device: torch.device):
    key = device.index if device.index is not None else torch.cuda.current_device()

    def build():
        compile_kernel = torch.cuda._compile_kernel  # NVRTC, in torch >= 2.8
        with torch.cuda.device(device):
            src = source()
            return compile_kernel(src, "split_rows"), compile_kernel(src, "merge_rows")

    return onchip.cached_build(_modules, key, build, _failed, "the row-split kernels",
                               "cuFFT's rows")


def _run(which: int, x: torch.Tensor) -> None:
    if not (x.is_contiguous() and x.dtype == torch.complex64):
        raise ValueError("the row-split kernels need contiguous complex64 rows")
    n2 = x.shape[-1]
    m = n2 // PARTS
    total = x.numel() // PARTS
    if total >= 2**31:
        raise ValueError("too many rows for the row-split kernels")
    if total:
        onchip.launch(_module(x.device)[which], ((total + THREADS - 1) // THREADS, 1, 1),
                      (THREADS, 1, 1), [x, total, m.bit_length() - 1], x.device)


def split_rows(x: torch.Tensor) -> None:
    """In place: x ← ``split_rows_torch(x)`` (CUDA)."""
    _run(0, x)


def merge_rows(q: torch.Tensor) -> None:
    """In place: q ← ``merge_rows_torch(q)`` (CUDA)."""
    _run(1, q)
