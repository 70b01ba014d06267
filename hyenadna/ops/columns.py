"""The four-step engine's column stages as CUDA kernels, one thread per column (``columns.cu``).

``fourstep.rfft4_cols`` and ``fourstep.irfft4_cols`` run these on CUDA where they build (NVRTC,
through torch, as ``onchip`` does) and take the operands; the Triton kernels run otherwise, and
on a CPU machine under Triton's interpreter. Why a second implementation: Nsight Compute on an
H100 found the Triton kernels bound by L1/TEX throughput (85-95%, their tensor-core DFT re-lays
the tile out through shared memory) with DRAM at 35-50% (benchmarks/NOTES_gpu.md, thirteenth
session). The kernels' twins are ``fourstep.rfft4_cols_torch`` and ``irfft4_cols_torch``; the
GPU tests hold the kernels to them.

``HYENADNA_COLUMNS``: ``cuda`` (default) or ``triton`` (the escape hatch, and the A/B switch
of benchmarks/tune_fourstep.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from hyenadna.ops import dftgen, onchip

ENV = "HYENADNA_COLUMNS"
N1S = (32,)
"""Column lengths the kernels take: a direct DFT of N1 points per thread builds to 72 / 126
registers (forward / inverse, sm_90a, nvcc 13) at N1 = 32; the first version built to 157 / 168
at N1 = 64, where Triton's kernels run instead."""
THREADS = 128  # columns.cu's THREADS
MIN_BLOCKS = (0, 0)
"""Blocks per SM (forward, inverse) the plain column kernels are built for (``__launch_bounds__``'s
second argument, which caps their registers); 0 leaves it to the compiler (72 / 108 registers
at ROWS = 16: 7 / 4 blocks of 128 threads). Capped at 8 / 6 on an H100 (s15d) the kernels alone
ran 5-16% faster in graph replays, but the operator's step did not move (64k 2.342 → 2.336 ms,
1M 42.15 → 42.14, two runs each), so the default stays. benchmarks/tune_fourstep.py
--cols-configs times others."""
FFT_COLUMNS = True
"""Whether the kernels' column DFTs are the radix-2 FFTs ``dftgen`` writes (zeros, ±1 and ±i
folded away as traced: 274 / 292 operations per column for the forward / inverse at ROWS =
16, against 544 products of the direct DFT, whose coefficients sit in constant memory) instead
of the direct DFTs (N1 = 32 only). In PTX (nvcc 13, sm_90a) the float operations of the
packed build fell 39-43% (forward kernels) and 46-47% (inverse); the fused inverse's spills
went 328 → 40 bytes. On an H100 (s17c/s17d, direct against FFT in one call, alternating):
the step-graphed operator at batch 1 went 2.08 → 1.97 ms at 64k, 8.85 → 8.30 at 256k, 40.65 →
38.59 at 1M; the NVRTC build of a module also went from ~30 s to a few."""
FFT_SPLIT = True
"""Whether the fused split kernels' 8-point DFTs across a row's parts (``cols_fwd_split``,
``cols_inv_merge``: L > 128k) are ``dftgen``'s generated FFTs (56 operations per 8 bins)
instead of direct DFTs (64 complex products with coefficients in constant memory). On an H100
(s18a, direct against FFT in one call, alternating, twice): the step-graphed operator at batch
1 went 8.31 → 7.92 ms at 256k and 38.78 → 37.08 at 1M; in the profile at 1M the two kernels
went 8.0 → 6.5 ms (forward) and 6.5 → 4.6 (inverse)."""
SPLIT_TILE = 16
"""Columns per part in a block of the fused split kernels (``cols_fwd_split``,
``cols_inv_merge``): a block is one thread per (part, column), 8 parts (rowsplit.PARTS), so
8 · SPLIT_TILE threads; each (k1, part) run it stores or loads is SPLIT_TILE consecutive complex
values (128 bytes at 16). On an H100 at 1M (s15b): 16 beats 8 and 32 in both kernels, by 3-9%.
benchmarks/tune_fourstep.py --split-configs times others."""
SPLIT_MIN_BLOCKS = (9, 6)
"""Blocks per SM (forward, inverse) the fused split kernels are built for (``__launch_bounds__``'s
second argument, which caps their registers; 0 leaves it to the compiler). Left to nvcc the
direct-DFT builds took 72 / 128 registers, 7 / 4 blocks of 128 threads per SM, and Nsight
Compute found both latency-bound (s15b). Capped at 8 / 6 blocks (64 / 80 registers; the inverse
spills 328 bytes) with the carveout below, on an H100 at 1M (s15c, 32 channels, graph replays):
forward 0.298 → 0.265 ms, inverse 0.247 → 0.224, the long conv's forward+backward 25.47 →
24.43 ms. With the generated FFTs (``FFT_SPLIT``) the forward needs only 56 registers
uncapped (nvcc 13: 9 blocks fit) and the inverse 72 at 7 blocks (252 bytes spilled); re-tuned
on an H100 (s18d, same measure): forward 0.214 ms at 8 blocks → 0.185 at 9 or 10, inverse
0.175 at 6 / 0.178 at 7; the long conv's forward+backward 19.84 ms at (8, 6), 19.70 at (9, 6),
19.62 at (9, 7), 19.87 at (10, 6), 20.03 at (9, 5). The inverse stays at 6: at 7 its direct-DFT
build (FFT_SPLIT off) spills 548 bytes, and 6 against 7 was within the run's noise."""
SPLIT_CARVEOUT = 100
"""The split kernels' preferred shared-memory carveout in percent of the unified L1/shared
memory (CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT); -1 leaves the driver's choice,
which held them to 7 blocks of 17 KB per SM on an H100 (s15b)."""

_SOURCE = Path(__file__).with_name("columns.cu")
_ROTOR = Path(__file__).with_name("rotor.cuh")  # shared twiddle rotation
_SPECTRUM_IO = Path(__file__).with_name("spectrum_io.cuh")  # the spectra's storage
_modules: dict = {}
_failed: list[str] = []


def split_build() -> tuple[int, tuple[int, int], int]:
    """The fused split kernels' build-time knobs (tile, min blocks, carveout): one module each."""
    return SPLIT_TILE, tuple(SPLIT_MIN_BLOCKS), SPLIT_CARVEOUT


def enabled() -> bool:
    value = os.environ.get(ENV, "cuda").strip().lower()
    if value not in ("cuda", "triton"):
        raise ValueError(f"{ENV} must be cuda or triton, got {value!r}")
    return value == "cuda"


def _table(n1: int) -> tuple[str, str]:
    """C brace lists of cos and sin(2π m / N1), m < N1; exact at the quarter turns."""
    exact = {0: (1.0, 0.0), 1: (0.0, 1.0), 2: (-1.0, 0.0), 3: (0.0, -1.0)}
    cos, sin = [], []
    for m in range(n1):
        q, rem = divmod(4 * m, n1)
        c, s = exact[q] if rem == 0 else (math.cos(2 * math.pi * m / n1),
                                          math.sin(2 * math.pi * m / n1))
        cos.append(f"{c:.9e}f")
        sin.append(f"{s:.9e}f")
    return "{" + ", ".join(cos) + "}", "{" + ", ".join(sin) + "}"


def source(n1: int, rows: int, split: bool = False, packed: bool = False) -> str:
    """columns.cu with its macros defined for (N1, ROWS); split: with the fused split and
    merge kernels (``COLS_SPLIT_TM``) in; packed: spectra as packed bf16 pairs."""
    cos, sin = _table(n1)
    bounds = f"#define COLS_MINB_FWD {MIN_BLOCKS[0]}\n#define COLS_MINB_INV {MIN_BLOCKS[1]}\n"
    tile = (f"#define COLS_SPLIT_TM {SPLIT_TILE}\n#define COLS_SPLIT_MINB_FWD "
            f"{SPLIT_MIN_BLOCKS[0]}\n#define COLS_SPLIT_MINB_INV {SPLIT_MIN_BLOCKS[1]}\n"
            if split else "")  # read at build time
    fft = FFT_COLUMNS and n1 == dftgen.N1
    dfts = dftgen.forward(rows) + dftgen.inverse(rows) if fft else ""
    fft_split = split and FFT_SPLIT
    if fft_split:
        dfts += dftgen.split(-1) + dftgen.split(1)
    return (f"#define COLS_N1 {n1}\n#define COLS_ROWS {rows}\n#define COLS_COS {cos}\n"
            f"#define COLS_SIN {sin}\n#define COLS_PACKED {int(packed)}\n"
            f"#define COLS_FFT {int(fft)}\n#define COLS_FFT_SPLIT {int(fft_split)}\n"
            f"{bounds}{tile}"
            + _ROTOR.read_text() + _SPECTRUM_IO.read_text() + dfts + _SOURCE.read_text())


def _module(n1: int, rows: int, device: torch.device, split: bool = False,
            packed: bool = False):
    """(cols_fwd, cols_inv) for (N1, ROWS) on this device, or with split (cols_fwd_split,
    cols_inv_merge); packed: their spectra as packed bf16 pairs; None where they do not
    build."""
    key = (n1, rows, split_build() if split else tuple(MIN_BLOCKS), packed, FFT_COLUMNS,
           FFT_SPLIT and split,
           device.index if device.index is not None else torch.cuda.current_device())
    names = ("cols_fwd_split", "cols_inv_merge") if split else ("cols_fwd", "cols_inv")

    def build():
        compile_kernel = torch.cuda._compile_kernel  # NVRTC, in torch >= 2.8
        with torch.cuda.device(device):
            src = source(n1, rows, split, packed)
            kernels = tuple(compile_kernel(src, name) for name in names)
            if split and SPLIT_CARVEOUT >= 0:
                for kernel in kernels:
                    _set_carveout(kernel, SPLIT_CARVEOUT)
            return kernels

    return onchip.cached_build(_modules, key, build, _failed, "the CUDA column kernels",
                               "Triton's")


def _set_carveout(kernel, percent: int) -> None:
    from torch.cuda._utils import _get_gpu_runtime_library

    preferred_carveout = 9  # CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT
    if _get_gpu_runtime_library().cuFuncSetAttribute(kernel.func, preferred_carveout, percent):
        raise RuntimeError(f"cuFuncSetAttribute(carveout {percent}%) failed")


def supported(n1: int, spec: torch.Tensor, *signals: torch.Tensor | None) -> bool:
    """Whether the kernels take this call: CUDA, enabled, N1 in ``N1S``, a complex64 or packed
    (int32: bf16 pairs) spectrum, signals all bf16 or all float32, int32-addressable operands,
    and the module builds (``rfft4_cols`` / ``irfft4_cols`` then check the build)."""
    sigs = [t for t in signals if t is not None]
    packed = spec.dtype == torch.int32
    return (spec.is_cuda and spec.dtype in (torch.complex64, torch.int32) and n1 in N1S
            and enabled() and sigs[0].dtype in (torch.bfloat16, torch.float32)
            and all(t.dtype == sigs[0].dtype for t in sigs)
            and onchip.int32_addressable(spec if packed else torch.view_as_real(spec), *sigs)
            and spec.shape[0] * spec.shape[1] * spec.shape[-1] < 2**31)


def _launch(kernel, total: int, args: list, device: torch.device, threads: int = THREADS
            ) -> None:
    """One thread per column, ``threads`` per block (the split kernels' blocks tile exactly)."""
    if total:
        onchip.launch(kernel, ((total + threads - 1) // threads, 1, 1), (threads, 1, 1), args,
                      device)


def _split_args(n2: int) -> int:
    """log2 M of rows of n2 = 8 · M values in split order; M must hold whole block tiles."""
    m = n2 // 8
    if n2 % 8 or m % SPLIT_TILE or m & (m - 1):
        raise ValueError(f"rows of {n2} values do not split into 8 tiled parts")
    return m.bit_length() - 1


def rfft4_cols(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None, n: int, n1: int,
               rows: int, scale: float, bias: torch.Tensor | None, split: bool = False) -> bool:
    """``fourstep.rfft4_cols`` on the CUDA kernel; False (nothing done) where it does not
    build. ``rows``: rows of the (N1, N2) tile that hold samples (a power of two <= N1).
    split: each row of ``out`` in ``rowsplit``'s split order (the fused ``cols_fwd_split``)."""
    kernels = _module(n1, rows, out.device, split, out.dtype == torch.int32)
    if kernels is None:
        return False
    batch, channels, seqlen = a.shape
    n2 = n // n1
    bb = a if b is None else b
    # a stands in for a missing bias (never read: its flag is off); every pointer argument
    # must be a tensor (the launcher passes a Python int as a 4-byte int)
    bias32 = a if bias is None else bias.to(torch.float32).contiguous()
    total = batch * channels * n2
    tail = [float(scale), *a.stride(), *bb.stride(), out.stride(1), out.stride(2),
            int(a.dtype == torch.bfloat16), int(b is not None), int(bias is not None)]
    # spectrum strides in complex values (fourstep checks the (B, C) rows are evenly strided)
    if split:
        _launch(kernels[0], total, [out, a, bb, bias32, channels, seqlen, _split_args(n2),
                                    *tail], out.device, 8 * SPLIT_TILE)
    else:
        _launch(kernels[0], total, [out, a, bb, bias32, total, channels, seqlen,
                                    n2.bit_length() - 1, *tail], out.device)
    return True


def irfft4_cols(q: torch.Tensor, n: int, n1: int, rows: int, seqlen: int, out1: torch.Tensor,
                gate1: torch.Tensor | None, out2: torch.Tensor | None,
                gate2: torch.Tensor | None, scale: float, merge: bool = False) -> bool:
    """``fourstep.irfft4_cols`` on the CUDA kernel; False (nothing done) where it does not
    build. ``rows``: rows of the (N1, N2) tile that hold output samples. merge: q's rows are
    in ``rowsplit``'s split order (the fused ``cols_inv_merge``; q is left as it is)."""
    kernels = _module(n1, rows, q.device, merge, q.dtype == torch.int32)
    if kernels is None:
        return False
    batch, channels = q.shape[:2]
    n2 = n // n1
    g1 = out1 if gate1 is None else gate1
    o2 = out1 if out2 is None else out2
    g2 = o2 if gate2 is None else gate2
    total = batch * channels * n2
    mode = int(gate1 is not None) | 2 * int(out2 is not None) | 4 * int(gate2 is not None)
    tail = [float(scale), q.stride(1), q.stride(2), *out1.stride(), *g1.stride(), *o2.stride(),
            *g2.stride(), int(out1.dtype == torch.bfloat16), mode]
    if merge:
        _launch(kernels[1], total, [q, out1, g1, o2, g2, channels, seqlen, _split_args(n2),
                                    *tail], q.device, 8 * SPLIT_TILE)
    else:
        _launch(kernels[1], total, [q, out1, g1, o2, g2, total, channels, seqlen,
                                    n2.bit_length() - 1, *tail], q.device)
    return True
