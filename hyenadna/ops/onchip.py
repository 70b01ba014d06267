"""The on-chip engine: the whole gated long convolution of one row in one CUDA kernel.

For FFT lengths n = 2M <= 16384 (L <= 8192) a row's transform fits in one SM's shared memory
(M complex float32 values, 64 KiB at M = 8192). ``onchip_conv.cu`` then runs, per (batch,
channel) row and in one kernel: w = v · pre packed as M complex values, a Stockham FFT of length
M, the "pair pass" (the real spectrum at bins k and M − k unpacked, multiplied by the filter's
spectrum K'/n, repacked for the real inverse, ``spectral``'s packing), the inverse FFT, and
z = the first L reals, y = post · z. HBM sees the bf16 inputs and outputs and K'/n once; the
cuFFT engine moves each row's float32 spectrum through ~10 kernels (padding, rfft, product,
packing, inverse, gate), and at L = 8k its ~40 kernels around the conv were most of the
operator's time on an H100 (benchmarks/NOTES_gpu.md, sixth session). The backward kernel does
the same for g = dy · post and the recomputed w, and its pair pass forms both G·conj(K'/n)
(for dw) and G·conj(W) (for the filter's gradient, per row; the caller sums over the batch).

The kernels are compiled at first use with NVRTC (through torch, no compiler needed at install
time): one module per M and I/O dtype (bf16 or float32), cached per process. Where that fails
(no NVRTC, an old torch) ``available`` says so once and the cuFFT engine runs instead.

The same source holds the four-step engine's row stage (``rows_fwd``, ``rows_bwd``; used by
``fourstep.row_conv_forward`` / ``row_conv_backward``): rows of N2 <= MAX_M complex float32
values, each transformed, multiplied by the filter's row and transformed back in one kernel.
Their twins are ``row_conv_forward_torch`` and ``row_conv_backward_torch``.

The torch functions below are the kernel's twins, step for step with the same index maps
(``stockham_torch``, ``pair_forward_torch``, ``pair_backward_torch``, ``conv_forward_torch``,
``conv_backward_torch``): the CPU tests hold them to ``torch.fft`` in float64, and the GPU tests
hold the kernels to them.
"""

from __future__ import annotations

import ctypes
import math
import os
import warnings
from pathlib import Path

import torch

MIN_M, MAX_M = 512, 8192
"""Packed lengths the kernels are built for: n = 2M from 1024 to 16384 (the backward keeps two
padded rows of M complex float32 in shared memory: 139 KiB at M = 8192; M = 16384 would not
fit an H100's 227 KiB)."""

STAGE_RADIX = {"fwd": 8, "bwd": 8}
"""Radix of the kernels' FFT stages (8 or 16; M / radix threads per row), per kernel. Radix 16
keeps 16 values per thread: fewer stages and barriers, but ~128 registers in the backward (which
holds two rows) and fewer threads per row. Radix 8 measured faster on an H100 in 14 of the 18
(shape, kernel) cells of benchmarks/bench_onchip.py, e.g. 0.036 / 0.062 ms against 0.043 /
0.080 for the forward / backward at 1 × 256 × 8k (benchmarks/results/onchip/)."""
ROW_RADIX = 8
"""Radix of the four-step row kernels' stages (``rows_fwd``, ``rows_bwd``)."""
ROW_SM_THREADS = 1024
"""Threads per SM the row kernels' register budget is set for (``__launch_bounds__``'s
minimum blocks = ROW_SM_THREADS / threads per block; 0: no bound)."""
SHARED_TWIDDLES = False
"""Whether the kernels' stages on two rows at once (the backward's g and w: ``onchip_bwd`` and
``rows_bwd``) compute each item's twiddles once for both rows instead of once per row (the same
products in the same order: results equal bit for bit, which a GPU test checks). Off: on an
H100 (s18a, off against on in one call, alternating, twice) the step-graphed operator at batch
1 moved 0.309 → 0.306 ms at 8k and 1.979 → 1.969 at 64k, but went 38.77 → 39.47 at 1M, where
``rows_bwd`` rose 6.3 → 7.1 ms in the profile: the twiddles held for two rows cost registers
that the 1M row kernels (the longest rows) did not have spare."""
ENV = "HYENADNA_ONCHIP"
ROWS_ENV = "HYENADNA_ONCHIP_ROWS"
_SOURCE = Path(__file__).with_name("onchip_conv.cu")
_SPECTRUM_IO = Path(__file__).with_name("spectrum_io.cuh")  # the rows' storage (packed or not)
_modules: dict = {}
_failed: list[str] = []


# ------------------------------------------------------------------------------------------
# torch twins of the kernel's steps
# ------------------------------------------------------------------------------------------

def radices(m: int, radix: int = 16) -> list[int]:
    """The kernel's stage radices for an M-point FFT: ``radix`` while the rest divides by it,
    then the rest (M = 8192, radix 16 → 16, 16, 16, 2)."""
    out = []
    while m % radix == 0 and m > 1:
        out.append(radix)
        m //= radix
    if m > 1:
        out.append(m)
    return out


def stockham_torch(x: torch.Tensor, sign: int, radix: int = 16) -> torch.Tensor:
    """Unscaled DFT of x (..., M) along the last dim, e^(sign·2πi·jk/M), by the kernel's
    Stockham stages: item j reads x[j + r·M/R], is twiddled by e^(sign·2πi·(j mod NS)·r/(NS·R)),
    transformed by a length-R DFT, and written to (j // NS)·NS·R + j mod NS + r·NS."""
    m = x.shape[-1]
    ns = 1
    for r_ in radices(m, radix):
        j = torch.arange(m // r_, device=x.device)
        r = torch.arange(r_, device=x.device)
        a = x[..., j[None, :] + r[:, None] * (m // r_)]  # (..., R, M/R)
        k = j % ns
        tw = torch.polar(torch.ones((), dtype=torch.float64, device=x.device),
                         sign * 2 * math.pi * (k[None, :] * r[:, None]).double() / (ns * r_))
        a = a * tw.to(x.dtype)
        f = torch.polar(torch.ones((), dtype=torch.float64, device=x.device),
                        sign * 2 * math.pi * (r[:, None] * r[None, :]).double() / r_)
        b = torch.einsum("qr,...rj->...qj", f.to(x.dtype), a)  # DFT_R over r
        dest = ((j // ns) * ns * r_ + k)[None, :] + r[:, None] * ns  # (R, M/R)
        out = torch.empty_like(x)
        out[..., dest.flatten()] = b.flatten(-2)
        x, ns = out, ns * r_
    return x


def pack_real_torch(x: torch.Tensor, m: int) -> torch.Tensor:
    """Real x (..., L), L <= 2M, zero-padded to 2M, read as M complex values x[2m] + i x[2m+1]."""
    padded = x.new_zeros(*x.shape[:-1], 2 * m)
    padded[..., :x.shape[-1]] = x
    return torch.view_as_complex(padded.unflatten(-1, (m, 2)).contiguous())


def _pair_index(m: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = torch.arange(m // 2 + 1, device=device)
    e = torch.polar(torch.ones((), dtype=torch.float64, device=device),
                    -math.pi * k.double() / m)  # e^(-2πik/n)
    return k, (m - k) % m, e


def unpack_values(zk: torch.Tensor, zm: torch.Tensor, e: torch.Tensor):
    """The kernel's unpack_pair: the real spectrum at bins k and M − k from the packed
    transform's values there, e = e^(−2πik/n) in their dtype."""
    xk = 0.5 * ((zk + zm.conj()) - 1j * (zk - zm.conj()) * e)
    xm = 0.5 * ((zm + zk.conj()) - 1j * (zm - zk.conj()) * (-e.conj()))
    return xk, xm


def pack_values(yk: torch.Tensor, ym: torch.Tensor, e: torch.Tensor):
    """The kernel's pack_pair: the packed inverse input at bins k and M − k from the half
    spectrum there."""
    zk = (yk + ym.conj()) + 1j * (yk - ym.conj()) * e.conj()
    zm = (ym + yk.conj()) + 1j * (ym - yk.conj()) * (-e)
    return zk, zm


def _unpack_pair(z: torch.Tensor, k, km, e):
    """Real spectrum at bins k and M − k from the packed transform z (..., M)."""
    return unpack_values(z[..., k], z[..., km], e.to(z.dtype))


def _pack_pair(yk, ym, k, km, e, m: int) -> torch.Tensor:
    """The packed inverse input Z (..., M) from the half spectrum at bins k and M − k."""
    zk, zm = pack_values(yk, ym, e.to(yk.dtype))
    out = torch.empty(*yk.shape[:-1], m, dtype=yk.dtype, device=yk.device)
    out[..., km] = zm  # k = 0 and k = M/2 map onto themselves: zk, written last, wins there
    out[..., k] = zk
    return out


def pair_forward_torch(z: torch.Tensor, k_spec: torch.Tensor) -> torch.Tensor:
    """The forward's pair pass: packed transform z (..., M) of w, filter spectrum (..., M+1)
    → the packed input of the real inverse of W · K."""
    m = z.shape[-1]
    k, km, e = _pair_index(m, z.device)
    xk, xm = _unpack_pair(z, k, km, e)
    return _pack_pair(xk * k_spec[..., k], xm * k_spec[..., m - k], k, km, e, m)


def pair_backward_torch(zg: torch.Tensor, zw: torch.Tensor, k_spec: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward's pair pass: packed transforms of g and w → the packed inputs of the real
    inverses of G · conj(K) (dw) and G · conj(W) (the filter's gradient)."""
    m = zg.shape[-1]
    k, km, e = _pair_index(m, zg.device)
    gk, gm = _unpack_pair(zg, k, km, e)
    wk, wm = _unpack_pair(zw, k, km, e)
    dw = _pack_pair(gk * k_spec[..., k].conj(), gm * k_spec[..., m - k].conj(), k, km, e, m)
    dk = _pack_pair(gk * wk.conj(), gm * wm.conj(), k, km, e, m)
    return dw, dk


def _unpack_real(z: torch.Tensor, length: int) -> torch.Tensor:
    return torch.view_as_real(z).flatten(-2)[..., :length]


def conv_forward_torch(w: torch.Tensor, k_spec: torch.Tensor) -> torch.Tensor:
    """The forward kernel's maths: z = irfft(rfft(w, n) · K'/n, n)[:L] unscaled, through the
    packed transforms. w (..., L) real; k_spec (..., M+1) = rfft(k', n) / n."""
    m = k_spec.shape[-1] - 1
    spec = stockham_torch(pack_real_torch(w, m), -1)
    return _unpack_real(stockham_torch(pair_forward_torch(spec, k_spec), 1), w.shape[-1])


def conv_backward_torch(g: torch.Tensor, w: torch.Tensor, k_spec: torch.Tensor, taps: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward kernel's maths: dw (..., L) = irfft(G · conj(K'/n))[:L] and the per-row
    filter gradient (..., taps) = irfft(G · conj(W))[:taps] / n."""
    m = k_spec.shape[-1] - 1
    zg = stockham_torch(pack_real_torch(g, m), -1)
    zw = stockham_torch(pack_real_torch(w, m), -1)
    dw, dk = pair_backward_torch(zg, zw, k_spec)
    dw = _unpack_real(stockham_torch(dw, 1), g.shape[-1])
    dk = _unpack_real(stockham_torch(dk, 1), taps) / (2 * m)
    return dw, dk


def row_conv_forward_torch(x: torch.Tensor, k_spec: torch.Tensor) -> torch.Tensor:
    """``rows_fwd``'s maths: the unscaled inverse DFT of DFT(x) · k_spec along the last dim
    (k_spec broadcast over x's leading dims), by the kernel's Stockham stages."""
    return stockham_torch(stockham_torch(x, -1, ROW_RADIX) * k_spec, 1, ROW_RADIX)


def row_conv_backward_torch(g: torch.Tensor, w: torch.Tensor | None, k_spec: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``rows_bwd``'s maths: with G, W the DFTs of g, w, the unscaled inverse DFTs of
    G · conj(k_spec) and (w given) G · conj(W)."""
    spec_g = stockham_torch(g, -1, ROW_RADIX)
    dg = stockham_torch(spec_g * k_spec.conj(), 1, ROW_RADIX)
    if w is None:
        return dg, None
    return dg, stockham_torch(spec_g * stockham_torch(w, -1, ROW_RADIX).conj(), 1, ROW_RADIX)


# ------------------------------------------------------------------------------------------
# the CUDA kernels
# ------------------------------------------------------------------------------------------

def _env_on(name: str, default: str = "1") -> bool:
    return os.environ.get(name, default).strip().lower() not in ("0", "off", "false")


def enabled() -> bool:
    """``HYENADNA_ONCHIP`` not set to 0 (the escape hatch: the cuFFT engine then runs)."""
    return _env_on(ENV)


ROWS_DEFAULT = "1"
"""``HYENADNA_ONCHIP_ROWS`` when unset: on. On an H100 the row kernels took the long conv's
forward+backward at 64k from 2.46 to 1.91 ms (batch 1) and from 14.6 to 11.8 ms (batch 8), and
the step-graphed operator from 3.43 to 2.95 ms (benchmarks/results/fourstep/
rows_session11_h100/, benchmarks/NOTES_gpu.md)."""


def rows_enabled() -> bool:
    """``HYENADNA_ONCHIP`` not 0 and ``HYENADNA_ONCHIP_ROWS`` on (default ``ROWS_DEFAULT``;
    off keeps the on-chip engine but runs the four-step engine's rows on cuFFT)."""
    return enabled() and _env_on(ROWS_ENV, ROWS_DEFAULT)


def rows_supported(x: torch.Tensor) -> bool:
    """Whether the row kernels take x's rows: CUDA, complex64 or packed (int32: bf16 pairs,
    ``fourstep.pack_spectrum``), M = x.shape[-1] a power of two in [MIN_M, MAX_M], and the
    module compiles."""
    m = x.shape[-1]
    if not (x.is_cuda and x.dtype in (torch.complex64, torch.int32) and rows_enabled()
            and MIN_M <= m <= MAX_M and m & (m - 1) == 0):
        return False
    return _module(m, False, ROW_RADIX, x.device, ROW_KERNELS, x.dtype == torch.int32) \
        is not None


def supported(v: torch.Tensor, n: int) -> bool:
    """Whether the kernels take a conv of FFT length n on v's device and dtype: CUDA, bf16 or
    float32 I/O, n = 2M a power of two with MIN_M <= M <= MAX_M, and the module compiles."""
    m = n // 2
    if not (v.is_cuda and v.dtype in (torch.bfloat16, torch.float32) and enabled()
            and n % 2 == 0 and MIN_M <= m <= MAX_M and m & (m - 1) == 0):
        return False
    bf16 = v.dtype == torch.bfloat16
    return all(_module(m, bf16, STAGE_RADIX[k], v.device) is not None for k in ("fwd", "bwd"))


CONV_KERNELS = ("onchip_fwd", "onchip_bwd")
ROW_KERNELS = ("rows_fwd", "rows_bwd")


def cached_build(cache: dict, key, build, failed: list[str], what: str, fallback: str):
    """``build()``'s kernels, built once per key and kept in ``cache``; None (and one warning
    per ``failed`` list) where building raises: the caller then runs ``fallback``."""
    if key in cache:
        return cache[key]
    kernels = None
    try:
        kernels = build()
    except Exception as exc:  # noqa: BLE001 - any failure means: use the fallback
        if not failed:
            warnings.warn(f"hyenadna: {what} did not build ({exc}); using {fallback}",
                          stacklevel=4)
        failed.append(str(exc))
    cache[key] = kernels
    return kernels


def source(m: int, bf16: bool, radix: int, packed_rows: bool = False) -> str:
    """onchip_conv.cu with its macros defined, the rows' storage helpers in front."""
    return (f"#define ONCHIP_M {m}\n#define ONCHIP_R {radix}\n#define ONCHIP_BF16 {int(bf16)}\n"
            f"#define ONCHIP_ROWS_PACKED {int(packed_rows)}\n"
            f"#define ONCHIP_ROW_SM_THREADS {ROW_SM_THREADS}\n"
            f"#define ONCHIP_SHARED_TWIDDLE {int(SHARED_TWIDDLES)}\n"
            + _SPECTRUM_IO.read_text() + _SOURCE.read_text())


def _module(m: int, bf16: bool, radix: int, device: torch.device, names=CONV_KERNELS,
            packed_rows: bool = False):
    """The compiled (forward, backward) kernels ``names`` for (M, dtype, radix) on this
    device, or None. The backward of either pair keeps two rows in shared memory.
    packed_rows: the row kernels' rows as packed bf16 pairs."""
    key = (m, bf16, radix, names, ROW_SM_THREADS, packed_rows, SHARED_TWIDDLES,
           device.index if device.index is not None else torch.cuda.current_device())

    def build():
        compile_kernel = torch.cuda._compile_kernel  # NVRTC, in torch >= 2.8
        with torch.cuda.device(device):
            src = source(m, bf16, radix, packed_rows)
            fwd = compile_kernel(src, names[0])
            bwd = compile_kernel(src, names[1])
            for kernel, rows in ((fwd, 1), (bwd, 2)):
                _allow_smem(kernel, rows * _row_bytes(m))
        return fwd, bwd

    return cached_build(_modules, key, build, _failed, "the on-chip FFT kernels", "cuFFT")


_driver_api: list = []


def _driver():
    """(libcuda, cuLaunchKernel with its argument types), loaded once. torch's launcher for
    compiled kernels opens libcuda and looks each function up again on every launch, which
    costs more than a column kernel runs (benchmarks/NOTES_gpu.md, thirteenth session)."""
    if not _driver_api:
        from torch.cuda._utils import _get_gpu_runtime_library

        lib = _get_gpu_runtime_library()
        launch = lib.cuLaunchKernel
        uint = ctypes.c_uint
        launch.argtypes = [ctypes.c_void_p, uint, uint, uint, uint, uint, uint, uint,
                           ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        launch.restype = ctypes.c_int
        _driver_api.extend((lib, launch))
    return _driver_api


def _ensure_context(device: torch.device) -> None:
    """Make the device's primary CUDA context current in this thread. The kernels launch
    through the driver API, which needs one; autograd runs the backward in its own thread,
    where no runtime call may have set it yet ("invalid device context" otherwise)."""
    lib = _driver()[0]
    index = device.index if device.index is not None else torch.cuda.current_device()
    ctx, current = ctypes.c_void_p(), ctypes.c_int(-1)
    lib.cuCtxGetCurrent(ctypes.byref(ctx))
    if ctx.value and lib.cuCtxGetDevice(ctypes.byref(current)) == 0 and current.value == index:
        return
    dev = ctypes.c_int()
    if (lib.cuDeviceGet(ctypes.byref(dev), index)
            or lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev)
            or lib.cuCtxSetCurrent(ctx)):
        raise RuntimeError(f"could not make cuda:{index}'s primary context current")


def _kernel_arg(value):
    """A kernel argument as the C value the kernel's parameter holds: a tensor's data pointer,
    a Python float as double, a Python int as int (every parameter in these .cu files)."""
    if isinstance(value, torch.Tensor):
        return ctypes.c_void_p(value.data_ptr())
    if isinstance(value, float):
        return ctypes.c_double(value)
    if isinstance(value, int):
        return ctypes.c_int(value)
    raise TypeError(f"kernel argument of type {type(value).__name__}")


LAUNCHER_ENV = "HYENADNA_LAUNCHER"
"""``driver`` (default): ``launch``'s own call of cuLaunchKernel, resolved once; ``torch``: torch's
launcher for compiled kernels, which opens libcuda and resolves the launch function again on
every call. On an H100 (benchmarks/results/fourstep/s14_h100/eager_*.json, one call) the eager
forward+backward at 1 x 64k took 1.74 -> 1.56 ms for the long convolution and 5.13 -> 3.52 ms
for the operator with the driver launcher; the GPU tests pass with it."""


def launch(kernel, grid: tuple[int, int, int], block: tuple[int, int, int], args: list,
           device: torch.device, shared_mem: int = 0) -> None:
    """Launch a kernel built by ``torch.cuda._compile_kernel`` on the device's current stream."""
    _ensure_context(device)
    mode = os.environ.get(LAUNCHER_ENV, "driver").strip().lower()
    if mode == "torch":
        kernel(grid=grid, block=block, args=args, shared_mem=shared_mem,
               stream=torch.cuda.current_stream(device))
        return
    if mode != "driver":
        raise ValueError(f"{LAUNCHER_ENV} must be torch or driver, got {mode!r}")
    values = [_kernel_arg(a) for a in args]
    pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
    stream = ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream)
    err = _driver()[1](kernel.func, *grid, *block, shared_mem, stream, pointers, None)
    if err:
        raise RuntimeError(f"cuLaunchKernel failed with CUDA error {err}")


def _row_bytes(m: int) -> int:
    return (m + m // 16) * 8  # one padded row of complex float32 (PAD in onchip_conv.cu)


def _allow_smem(kernel, nbytes: int) -> None:
    """Let the kernel use more than 48 KiB of dynamic shared memory."""
    if hasattr(kernel, "set_shared_memory_config"):
        kernel.set_shared_memory_config(nbytes)
        return
    from torch.cuda._utils import _get_gpu_runtime_library

    max_dynamic_smem = 8  # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    if _get_gpu_runtime_library().cuFuncSetAttribute(kernel.func, max_dynamic_smem, nbytes):
        raise RuntimeError(f"cuFuncSetAttribute({nbytes} bytes of shared memory) failed")


def _rows(t: torch.Tensor | None, like: torch.Tensor, any_time_stride: bool = False) -> tuple:
    """(tensor, batch stride, channel stride) for a (B, D, L) operand with time stride 1 (any
    time stride where the kernel takes one); a missing operand passes ``like`` (never read:
    its flag is off)."""
    if t is None:
        return like, 0, 0
    if not any_time_stride and t.stride(-1) != 1 and t.shape[-1] > 1:
        raise ValueError("the on-chip kernels need time-contiguous rows")
    return t, t.stride(0), t.stride(1)


def int32_addressable(*tensors: torch.Tensor | None) -> bool:
    """Whether every element offset of the given tensors fits an int32 (kernel strides)."""
    return all(t is None or max((s * (d - 1) for s, d in zip(t.stride(), t.shape)),
                                default=0) < 2**31 for t in tensors)


def _check_int32(*tensors: torch.Tensor | None) -> None:
    if not int32_addressable(*tensors):
        raise ValueError("the on-chip kernels index rows with int32 strides")


def forward(v: torch.Tensor, pre: torch.Tensor | None, post: torch.Tensor | None,
            k_spec: torch.Tensor, z_out: torch.Tensor | None, y_out: torch.Tensor | None
            ) -> None:
    """Launch the forward kernel: z_out = (k' ∗ (v · pre))[:L], y_out = post · z_out.

    v, pre, post, z_out: (B, D, L), time-contiguous rows, any batch/channel strides; y_out
    likewise with any time stride (the mixer's (B, L, D) layout); k_spec: (D, M+1) complex64
    contiguous, rfft(k', n) / n. z_out or y_out may be None.
    """
    batch, channels, seqlen = v.shape
    m = k_spec.shape[-1] - 1
    radix = STAGE_RADIX["fwd"]
    fwd = _module(m, v.dtype == torch.bfloat16, radix, v.device)[0]
    _check_int32(v, pre, post, z_out, y_out)
    flags = ((pre is not None) | (post is not None) << 1 | (z_out is not None) << 2
             | (y_out is not None) << 3)
    y_st = 1 if y_out is None else y_out.stride(-1)
    args = [v, _rows(pre, v)[0], _rows(post, v)[0], k_spec, _rows(z_out, v)[0],
            _rows(y_out, v, True)[0], seqlen, channels,
            *_rows(v, v)[1:], *_rows(pre, v)[1:], *_rows(post, v)[1:], *_rows(z_out, v)[1:],
            *_rows(y_out, v, True)[1:], y_st, flags]
    if batch * channels:
        launch(fwd, (batch * channels, 1, 1), (m // radix, 1, 1), args, v.device,
               _row_bytes(m))


def backward(dy: torch.Tensor, post: torch.Tensor | None, v: torch.Tensor,
             pre: torch.Tensor | None, k_spec: torch.Tensor, dv: torch.Tensor,
             dpre: torch.Tensor | None, dk_rows: torch.Tensor | None, n: int,
             z: torch.Tensor | None = None, dpost: torch.Tensor | None = None) -> None:
    """Launch the backward kernel: with g = dy · post and w = v · pre,
    dw = irfft(G · conj(K'/n))[:L] → dv = dw · pre (dw when pre is None), dpre = dw · v,
    dk_rows (B, D, taps) float32 = irfft(G · conj(W))[:taps] / n per row (None: not wanted),
    and, when z and dpost are given (with post), dpost = dy · z.

    dy may have any time stride (the mixer's (B, L, D) layout); every other operand has
    time-contiguous rows.
    """
    batch, channels, seqlen = v.shape
    m = k_spec.shape[-1] - 1
    radix = STAGE_RADIX["bwd"]
    bwd = _module(m, v.dtype == torch.bfloat16, radix, v.device)[1]
    _check_int32(dy, post, z, v, pre, dv, dpre, dpost)
    if dk_rows is not None and not dk_rows.is_contiguous():
        raise ValueError("dk_rows must be contiguous")
    if (z is None) != (dpost is None) or (dpost is not None and post is None):
        raise ValueError("dpost needs z and post")
    flags = ((pre is not None) | (post is not None) << 1 | (dk_rows is not None) << 2
             | (dpost is not None) << 3)
    taps = 0 if dk_rows is None else dk_rows.shape[-1]
    args = [_rows(dy, v, True)[0], _rows(post, v)[0], _rows(z, v)[0], v, _rows(pre, v)[0],
            k_spec, dv, _rows(dpre, v)[0], _rows(dpost, v)[0],
            v if dk_rows is None else dk_rows, seqlen, channels, taps, 1.0 / n,
            *_rows(dy, v, True)[1:], dy.stride(-1), *_rows(post, v)[1:], *_rows(z, v)[1:],
            *_rows(v, v)[1:], *_rows(pre, v)[1:], *_rows(dv, v)[1:], *_rows(dpre, v)[1:],
            *_rows(dpost, v)[1:], flags]
    if batch * channels:
        launch(bwd, (batch * channels, 1, 1), (m // radix, 1, 1), args, v.device,
               (2 if dk_rows is not None else 1) * _row_bytes(m))


def _row_counts(x: torch.Tensor, k_spec: torch.Tensor, *others: torch.Tensor | None
                ) -> tuple[int, int]:
    """(rows of x, rows of k_spec) for the row kernels: contiguous operands of one row length,
    k_spec complex64, x (and the others) complex64 or packed (int32), x's rows a whole number of
    k_spec's (the batch repeats the filter)."""
    m = x.shape[-1]
    for t in (x, k_spec, *others):
        if t is not None and (not t.is_contiguous() or t.shape[-1] != m
                              or t.dtype != (torch.complex64 if t is k_spec else x.dtype)
                              or t.dtype not in (torch.complex64, torch.int32)):
            raise ValueError("the row kernels need contiguous complex64 (or packed) rows of "
                             "one length")
    rows, k_rows = x.numel() // m, k_spec.numel() // m
    if k_rows == 0 or rows % k_rows or rows >= 2**31:
        raise ValueError(f"{rows} rows do not repeat {k_rows} filter rows")
    if any(t is not None and t.shape != x.shape for t in others):
        raise ValueError("g and w must have one shape")
    return rows, k_rows


def rows_forward(x: torch.Tensor, k_spec: torch.Tensor) -> None:
    """In place: each row of x (..., M) ← the unscaled inverse FFT of FFT(row) · k_spec's row;
    k_spec (..., M) holds the rows of x's trailing dims (broadcast over the leading ones)."""
    rows, k_rows = _row_counts(x, k_spec)
    m = x.shape[-1]
    if rows:
        fwd = _module(m, False, ROW_RADIX, x.device, ROW_KERNELS, x.dtype == torch.int32)[0]
        launch(fwd, (rows, 1, 1), (m // ROW_RADIX, 1, 1), [x, k_spec, k_rows], x.device,
               _row_bytes(m))


def rows_backward(g: torch.Tensor, w: torch.Tensor | None, k_spec: torch.Tensor) -> None:
    """In place, with G, W the row FFTs of g, w: g ← IFFT(G · conj(k_spec)) and, when w is
    given, w ← IFFT(G · conj(W)), both unscaled (``rows_forward``'s layout)."""
    rows, k_rows = _row_counts(g, k_spec, w)
    m = g.shape[-1]
    if rows:
        bwd = _module(m, False, ROW_RADIX, g.device, ROW_KERNELS, g.dtype == torch.int32)[1]
        launch(bwd, (rows, 1, 1), (m // ROW_RADIX, 1, 1),
               [g, g if w is None else w, k_spec, k_rows, int(w is not None)], g.device,
               (1 if w is None else 2) * _row_bytes(m))
