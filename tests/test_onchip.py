"""The on-chip engine (hyenadna.ops.onchip): its torch twins against torch.fft in float64 on the
CPU, the CUDA kernels against the twins on a GPU (marked `gpu`, skipped without CUDA), and the
kernel source against nvcc where one is installed.

All data here is synthetic (seeded random signals and filters).
"""

import shutil
import subprocess

import pytest
import torch

from hyenadna.ops import fourstep, gated_fftconv, hyena_mixer, onchip
from hyenadna.ops.fftconv_fast import conv_fft_size, pick_fourstep_n1, pick_onchip

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


@pytest.mark.parametrize("m", [2, 16, 32, 64, 512, 1024, 2048, 8192])
@pytest.mark.parametrize("sign", [-1, 1])
@pytest.mark.parametrize("radix", [8, 16])
def test_stockham_twin_is_the_dft(m, sign, radix):
    assert all(r <= radix for r in onchip.radices(m, radix))
    assert torch.tensor(onchip.radices(m, radix)).prod().item() == m
    x = torch.randn(3, m, dtype=torch.complex128, generator=torch.Generator().manual_seed(m))
    ref = torch.fft.fft(x) if sign < 0 else torch.fft.ifft(x, norm="forward")
    torch.testing.assert_close(onchip.stockham_torch(x, sign, radix), ref, rtol=1e-11,
                               atol=1e-11)


def _rfft_conv(w, k_spec, n):
    return torch.fft.irfft(torch.fft.rfft(w, n=n) * k_spec, n=n, norm="forward")


@pytest.mark.parametrize("seqlen,m,taps", [(1024, 1024, 1024), (1000, 1024, 1000),
                                           (777, 512, 300), (1, 512, 1), (8192, 8192, 8192)])
def test_conv_twins_match_rfft_formulas(seqlen, m, taps):
    g = torch.Generator().manual_seed(seqlen)
    n = 2 * m
    w, dy = (torch.randn(2, 3, seqlen, dtype=torch.float64, generator=g) for _ in range(2))
    k_spec = torch.fft.rfft(torch.randn(3, taps, dtype=torch.float64, generator=g), n=n) / n
    z = onchip.conv_forward_torch(w, k_spec)
    torch.testing.assert_close(z, _rfft_conv(w, k_spec, n)[..., :seqlen], rtol=1e-10,
                               atol=1e-10)
    dw, dk = onchip.conv_backward_torch(dy, w, k_spec, taps)
    G, W = torch.fft.rfft(dy, n=n), torch.fft.rfft(w, n=n)
    dw_ref = torch.fft.irfft(G * k_spec.conj(), n=n, norm="forward")[..., :seqlen]
    dk_ref = torch.fft.irfft(G * W.conj(), n=n, norm="forward")[..., :taps] / n
    torch.testing.assert_close(dw, dw_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dk, dk_ref, rtol=1e-10, atol=1e-10)


def test_pick_onchip_needs_cuda_and_a_known_engine():
    cpu = torch.zeros(1, 1, 1000)
    assert not pick_onchip(cpu, 2048)
    assert not onchip.supported(cpu, 2048)
    with pytest.raises(ValueError, match="fft engine"):
        pick_onchip(cpu, 2048, "fast")
    # the four-step engine never takes a call the on-chip engine was asked for
    assert pick_fourstep_n1(cpu, 1 << 16, "onchip") is None


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv(onchip.ENV, "0")
    assert not onchip.enabled()
    monkeypatch.setenv(onchip.ENV, "1")
    assert onchip.enabled()


def _row_operands(m, dtype, seed=0):
    """(g, w, k): (2, 3, 5, M) rows and (3, 5, M) filter rows (broadcast over the batch)."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randn(2, 3, 5, m, dtype=torch.complex128, generator=g) for _ in range(2)]
    k = torch.randn(3, 5, m, dtype=torch.complex128, generator=g) / m
    return [t.to(dtype) for t in (*rows, k)]


@pytest.mark.parametrize("m", [512, 4096])
def test_row_conv_twins_are_fft_products(m):
    g, w, k = _row_operands(m, torch.complex128, seed=m)
    G, W = torch.fft.fft(g), torch.fft.fft(w)
    torch.testing.assert_close(onchip.row_conv_forward_torch(g, k),
                               torch.fft.ifft(G * k, norm="forward"), rtol=1e-10, atol=1e-10)
    dg, dw = onchip.row_conv_backward_torch(g, w, k)
    torch.testing.assert_close(dg, torch.fft.ifft(G * k.conj(), norm="forward"), rtol=1e-10,
                               atol=1e-10)
    torch.testing.assert_close(dw, torch.fft.ifft(G * W.conj(), norm="forward"), rtol=1e-10,
                               atol=1e-10)
    assert onchip.row_conv_backward_torch(g, None, k)[1] is None


def _rows_by_twins(monkeypatch):
    """Make the four-step row stage take its on-chip branch on the CPU, the kernels replaced by
    their twins (in place, as the kernels write), so the branch's bookkeeping is tested here."""
    def fwd(x, k):
        onchip._row_counts(x, k)
        x.copy_(onchip.row_conv_forward_torch(x, k))

    def bwd(g, w, k):
        onchip._row_counts(g, k, w)
        dg, dw = onchip.row_conv_backward_torch(g, w, k)
        g.copy_(dg)
        if w is not None:
            w.copy_(dw)

    monkeypatch.setattr(onchip, "rows_supported", lambda x: True)
    monkeypatch.setattr(onchip, "rows_forward", fwd)
    monkeypatch.setattr(onchip, "rows_backward", bwd)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("need_cross", [True, False])
def test_row_stage_on_chip_branch_matches_cufft_branch(batch, need_cross, monkeypatch):
    g, w, k = _row_operands(512, torch.complex64, seed=batch)
    cols = torch.stack([g[:batch], w[:batch]])  # (parts, B, C, H, N2)
    q_ref = fourstep.row_conv_forward(cols[0].clone(), k)
    qg_ref, qc_ref = fourstep.row_conv_backward(cols.clone(), k, need_cross)
    _rows_by_twins(monkeypatch)
    q = fourstep.row_conv_forward(cols[0].clone(), k)
    qg, qc = fourstep.row_conv_backward(cols.clone(), k, need_cross)
    torch.testing.assert_close(q, q_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(qg, qg_ref, rtol=1e-4, atol=1e-5)
    if need_cross:  # the batch summed after the per-row inverses, not before the one inverse
        assert qc.shape == k.shape
        torch.testing.assert_close(qc, qc_ref, rtol=1e-4, atol=1e-5)
    else:
        assert qc is None and qc_ref is None


def test_four_step_conv_through_the_on_chip_row_branch(monkeypatch):
    # the whole gated conv on the four-step engine, rows through the on-chip branch (twins),
    # against the float64 reference
    g = torch.Generator().manual_seed(3)
    seqlen = 5000
    v, pre, post, dy = (torch.randn(2, 3, seqlen, generator=g) for _ in range(4))
    k = torch.randn(3, seqlen, generator=g) * torch.exp(-torch.arange(seqlen) / 300.0)
    skip = torch.randn(3, generator=g)
    ref_leaves = [t.double().requires_grad_() for t in (v, pre, post, k, skip)]
    ref = gated_fftconv(*ref_leaves, fft_engine="cufft")
    ref_grads = torch.autograd.grad(ref, ref_leaves, dy.double())
    _rows_by_twins(monkeypatch)
    leaves = [t.clone().requires_grad_() for t in (v, pre, post, k, skip)]
    y = gated_fftconv(*leaves, fft_engine="fourstep")
    grads = torch.autograd.grad(y, leaves, dy)
    for a, b in zip((y, *grads), (ref, *ref_grads)):
        assert _rel(a, b) < 1e-3  # the column DFT's TF32-like tolerance is not at play on CPU


def test_rows_disabled_by_environment(monkeypatch):
    monkeypatch.delenv(onchip.ROWS_ENV, raising=False)
    monkeypatch.delenv(onchip.ENV, raising=False)
    assert onchip.rows_enabled()  # on by default
    monkeypatch.setenv(onchip.ROWS_ENV, "0")
    assert not onchip.rows_enabled() and onchip.enabled()
    monkeypatch.setenv(onchip.ROWS_ENV, "1")
    monkeypatch.setenv(onchip.ENV, "0")
    assert not onchip.rows_enabled()
    assert not onchip.rows_supported(torch.zeros(2, 512, dtype=torch.complex64))


def test_launcher_passes_each_argument_as_the_kernel_declares_it(monkeypatch):
    # a C-callable stand-in for cuLaunchKernel (same signature) reads back what the launcher
    # passes: grid, block, shared memory, stream, and the argument array (tensor → pointer,
    # float → double, int → int)
    import ctypes

    seen = {}
    uint = ctypes.c_uint
    proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, uint, uint, uint, uint, uint, uint,
                             uint, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                             ctypes.c_void_p)

    def fake_launch(func, gx, gy, gz, bx, by, bz, smem, stream, args, extra):
        seen.update(func=func, grid=(gx, gy, gz), block=(bx, by, bz), smem=smem, stream=stream,
                    extra=extra, ptr=ctypes.c_void_p.from_address(args[0]).value,
                    dbl=ctypes.c_double.from_address(args[1]).value,
                    int=ctypes.c_int.from_address(args[2]).value,
                    neg=ctypes.c_int.from_address(args[3]).value)
        return 0

    monkeypatch.setenv(onchip.LAUNCHER_ENV, "driver")
    c_launch = proto(fake_launch)
    monkeypatch.setattr(onchip, "_driver_api", [None, c_launch])
    monkeypatch.setattr(onchip, "_ensure_context", lambda device: None)

    class Stream:
        cuda_stream = 0x1234

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())

    class Kernel:
        func = ctypes.c_void_p(0xBEEF)

    t = torch.zeros(4)
    onchip.launch(Kernel(), (3, 2, 1), (128, 1, 1), [t, 0.25, 7, -5], torch.device("cpu"), 512)
    assert seen == dict(func=0xBEEF, grid=(3, 2, 1), block=(128, 1, 1), smem=512, stream=0x1234,
                        extra=None, ptr=t.data_ptr(), dbl=0.25, int=7, neg=-5)
    with pytest.raises(TypeError, match="str"):
        onchip.launch(Kernel(), (1, 1, 1), (1, 1, 1), ["x"], torch.device("cpu"))
    failing = proto(lambda *args: 700)
    monkeypatch.setattr(onchip, "_driver_api", [None, failing])
    with pytest.raises(RuntimeError, match="CUDA error 700"):
        onchip.launch(Kernel(), (1, 1, 1), (1, 1, 1), [], torch.device("cpu"))
    monkeypatch.setenv(onchip.LAUNCHER_ENV, "ctypes")
    with pytest.raises(ValueError, match="HYENADNA_LAUNCHER"):
        onchip.launch(Kernel(), (1, 1, 1), (1, 1, 1), [], torch.device("cpu"))


def test_cached_build_warns_once_and_remembers_failures():
    cache, failed, calls = {}, [], []

    def broken():
        calls.append(1)
        raise RuntimeError("nvrtc: no such header")

    with pytest.warns(UserWarning, match="the kernels did not build .*no such header.*using cuFFT"):
        assert onchip.cached_build(cache, "a", broken, failed, "the kernels", "cuFFT") is None
    assert onchip.cached_build(cache, "a", broken, failed, "the kernels", "cuFFT") is None
    assert len(calls) == 1 and failed == ["nvrtc: no such header"]  # built once per key
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second failing key adds no second warning
        assert onchip.cached_build(cache, "b", broken, failed, "the kernels", "cuFFT") is None
        assert onchip.cached_build(cache, "c", lambda: ("fwd", "bwd"), failed, "x", "y") == (
            "fwd", "bwd")
    assert cache["c"] == ("fwd", "bwd") and len(failed) == 2


def test_torch_launcher_on_request(monkeypatch):
    # HYENADNA_LAUNCHER=torch: the kernels go through torch's launcher (the driver one is the
    # default: test_launcher_passes_each_argument_as_the_kernel_declares_it checks it)
    calls = []

    class Kernel:
        def __call__(self, **kw):
            calls.append(kw)

    monkeypatch.setenv(onchip.LAUNCHER_ENV, "torch")
    monkeypatch.setattr(onchip, "_ensure_context", lambda device: None)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: "stream")
    onchip.launch(Kernel(), (2, 1, 1), (64, 1, 1), [1, 2.0], torch.device("cpu"), 256)
    assert calls == [dict(grid=(2, 1, 1), block=(64, 1, 1), args=[1, 2.0], shared_mem=256,
                          stream="stream")]


def test_default_launcher_is_the_driver_call(monkeypatch):
    calls = []
    monkeypatch.delenv(onchip.LAUNCHER_ENV, raising=False)
    monkeypatch.setattr(onchip, "_driver_api", [None, lambda *args: calls.append(args) or 0])
    monkeypatch.setattr(onchip, "_ensure_context", lambda device: None)

    class Stream:
        cuda_stream = 0

    class Kernel:
        func = None

        def __call__(self, **kw):
            raise AssertionError("torch's launcher ran")

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    onchip.launch(Kernel(), (1, 1, 1), (32, 1, 1), [3], torch.device("cpu"))
    assert len(calls) == 1


def test_row_operands_are_checked():
    x = torch.zeros(2, 3, 512, dtype=torch.complex64)
    with pytest.raises(ValueError, match="repeat"):
        onchip._row_counts(x, torch.zeros(4, 512, dtype=torch.complex64))
    with pytest.raises(ValueError, match="contiguous complex64"):
        onchip._row_counts(x.transpose(0, 1), torch.zeros(3, 512, dtype=torch.complex64))
    with pytest.raises(ValueError, match="one shape"):
        onchip._row_counts(x, torch.zeros(3, 512, dtype=torch.complex64),
                           torch.zeros(1, 3, 512, dtype=torch.complex64))
    assert onchip._row_counts(x, torch.zeros(3, 512, dtype=torch.complex64)) == (6, 3)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("m,bf16,radix,packed", [(512, 0, 16, 0), (8192, 1, 8, 0),
                                                 (4096, 0, 8, 1)])
def test_kernel_source_compiles_with_nvcc(tmp_path, m, bf16, radix, packed):
    # NVRTC compiles the same source at run time on a GPU machine; nvcc catches a broken source
    # where there is no GPU (packed: the row kernels' rows as packed bf16 pairs)
    src = tmp_path / "k.cu"
    src.write_text(onchip.source(m, bool(bf16), radix, bool(packed)))
    out = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-o", str(tmp_path / "k.cubin"),
                          str(src)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------------------
# GPU: the kernels against the twins
# ------------------------------------------------------------------------------------------

def _inputs(batch, channels, seqlen, taps, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    v, pre, post, dy = (torch.randn(batch, channels, seqlen, generator=g) for _ in range(4))
    k = torch.randn(channels, taps, generator=g) * torch.exp(-torch.arange(taps) / 50.0)
    skip = torch.randn(channels, generator=g)
    return [t.to("cuda", dtype) for t in (v, pre, post, dy)] + [k.cuda(), skip.cuda()]


def _rel(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _round(x, dtype):
    return x.to(dtype).double()


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("m", [512, 1024, 2048, 4096, 8192])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("gates", [True, False])
@pytest.mark.parametrize("radix", [8, 16])
def test_kernels_match_twins(m, dtype, gates, radix, monkeypatch):
    monkeypatch.setattr(onchip, "STAGE_RADIX", {"fwd": radix, "bwd": radix})
    seqlen, taps = m - 3, m // 2 + 1  # L < M, odd; fewer taps than samples
    v, pre, post, dy, k, skip = _inputs(2, 3, seqlen, taps, dtype, seed=m)
    n = 2 * m
    kp = torch.zeros(3, n, dtype=torch.float64, device="cuda")
    kp[:, :taps] = k.double() / n
    kp[:, 0] += skip.double() / n
    k_spec64 = torch.fft.rfft(kp)
    k_spec = k_spec64.to(torch.complex64)
    pre_, post_ = (pre, post) if gates else (None, None)
    # y and dy in the mixer's (B, L, D) layout: the kernels read and write them strided
    z, y = torch.empty_like(v), torch.empty(2, seqlen, 3, dtype=dtype, device="cuda")
    y = y.transpose(1, 2)
    dy = dy.transpose(1, 2).contiguous().transpose(1, 2)
    onchip.forward(v, pre_, post_, k_spec, z, y)
    w = _round(v.double() * pre.double(), dtype) if gates else v.double()
    z64 = onchip.conv_forward_torch(w, k_spec64)
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    assert _rel(z, z64) < tol
    y64 = _round(z.double() * post.double(), dtype) if gates else z.double()
    assert _rel(y, y64) < 1e-6  # y = post · z rounded once, from the kernel's own z
    dv = torch.empty_like(v)
    dpre = torch.empty_like(v) if gates else None
    dk_rows = torch.empty(2, 3, taps, device="cuda")
    dpost = torch.empty_like(v) if gates else None
    onchip.backward(dy, post_, v, pre_, k_spec, dv, dpre, dk_rows, n, z if gates else None,
                    dpost)
    if gates:  # dpost = dy · z, rounded once
        assert _rel(dpost, _round(dy.double() * z.double(), dtype)) < 1e-6
    g = _round(dy.double() * post.double(), dtype) if gates else dy.double()
    dw64, dk64 = onchip.conv_backward_torch(g, w, k_spec64, taps)
    assert _rel(dk_rows, dk64) < (1e-5 if dtype == torch.float32 else 1e-3)
    if gates:
        assert _rel(dv, dw64 * pre.double()) < tol
        assert _rel(dpre, dw64 * v.double()) < tol
    else:
        assert _rel(dv, dw64) < tol
    # no filter gradient wanted: one shared-memory row, the same dv
    dv2 = torch.empty_like(v)
    onchip.backward(dy, post_, v, pre_, k_spec, dv2, torch.empty_like(v) if gates else None,
                    None, n)
    torch.testing.assert_close(dv2, dv, rtol=0, atol=0)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("seqlen", [300, 1000, 4096, 8192])
def test_onchip_engine_matches_cufft_engine(seqlen):
    v, pre, post, dy, k, skip = _inputs(2, 8, seqlen, seqlen, torch.bfloat16, seed=seqlen)
    n = conv_fft_size(seqlen, seqlen)
    assert pick_onchip(v, n, "auto", pre, post)
    results = []
    for engine in ("onchip", "cufft"):
        leaves = [t.clone().requires_grad_() for t in (v, pre, post, k, skip)]
        y = gated_fftconv(*leaves, fft_engine=engine)
        results.append([y, *torch.autograd.grad(y, leaves, dy)])
    for a, b in zip(*results):
        assert _rel(a, b) < 1e-2


@gpu
@pytest.mark.gpu
def test_onchip_mixer_matches_cufft_mixer():
    g = torch.Generator().manual_seed(0)
    width, seqlen = 16, 2048
    x = torch.randn(2, seqlen, width, generator=g).cuda().bfloat16().requires_grad_()
    params = [torch.randn(3 * width, width, generator=g) / 4, torch.randn(3 * width, generator=g),
              torch.randn(3 * width, 1, 3, generator=g), torch.randn(3 * width, generator=g),
              torch.randn(width, seqlen, generator=g) * torch.exp(-torch.arange(seqlen) / 50.0),
              torch.randn(width, generator=g)]
    params = [p.cuda().requires_grad_() for p in params]
    dy = torch.randn(2, seqlen, width, generator=g).cuda().bfloat16()
    results = []
    for engine in ("onchip", "cufft"):
        y = hyena_mixer(x, *params, fft_engine=engine)
        results.append([y, *torch.autograd.grad(y, [x, *params], dy)])
    for a, b in zip(*results):
        assert _rel(a, b) < 1e-2


@gpu
@pytest.mark.gpu
def test_kernels_launch_from_a_fresh_thread():
    # autograd runs the backward in its own thread, where no CUDA runtime call may have made
    # a context current yet; the driver-API launch must set it ("invalid device context")
    import threading

    v, pre, post, _, k, skip = _inputs(1, 2, 1000, 1000, torch.bfloat16)
    k_spec = torch.fft.rfft(torch.nn.functional.pad(k, (0, 1048)) / 2048)
    z_main, z_thread = torch.empty_like(v), torch.empty_like(v)
    onchip.forward(v, pre, post, k_spec, z_main, None)
    errors = []

    def run():
        try:
            onchip.forward(v, pre, post, k_spec, z_thread, None)
            torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not errors, errors
    torch.testing.assert_close(z_thread, z_main, rtol=0, atol=0)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("m", [512, 1024, 2048, 4096, 8192])
def test_row_kernels_match_fft(m):
    g, w, k = (t.cuda() for t in _row_operands(m, torch.complex64, seed=m))
    G, W = torch.fft.fft(g.to(torch.complex128)), torch.fft.fft(w.to(torch.complex128))
    k64 = k.to(torch.complex128)
    x = g.clone()
    onchip.rows_forward(x, k)
    assert _rel(torch.view_as_real(x), torch.view_as_real(
        torch.fft.ifft(G * k64, norm="forward"))) < 1e-5
    dg, dw = g.clone(), w.clone()
    onchip.rows_backward(dg, dw, k)
    assert _rel(torch.view_as_real(dg), torch.view_as_real(
        torch.fft.ifft(G * k64.conj(), norm="forward"))) < 1e-5
    assert _rel(torch.view_as_real(dw), torch.view_as_real(
        torch.fft.ifft(G * W.conj(), norm="forward"))) < 1e-5
    dg2, w_before = g.clone(), w.clone()
    onchip.rows_backward(dg2, None, k)  # one shared-memory row: the same dg
    torch.testing.assert_close(dg2, dg, rtol=0, atol=0)
    torch.testing.assert_close(w, w_before, rtol=0, atol=0)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("m", [1024, 8192])
def test_shared_twiddles_change_no_bit(m, monkeypatch):
    # onchip.SHARED_TWIDDLES: the two-row stages form each twiddle once for both rows, the
    # same products in the same order, so the backward kernels' results are bit-identical
    g, w, k = (t.cuda() for t in _row_operands(m, torch.complex64, seed=m))
    v, pre, post, dy, kk, skip = _inputs(1, 3, m - 3, m // 2 + 1, torch.bfloat16, seed=m)
    n = 2 * m
    kp = torch.zeros(3, n, device="cuda")
    kp[:, : kk.shape[-1]] = kk / n
    k_spec = torch.fft.rfft(kp)
    results = []
    for shared in (False, True):
        monkeypatch.setattr(onchip, "SHARED_TWIDDLES", shared)
        dg, dw = g.clone(), w.clone()
        onchip.rows_backward(dg, dw, k)
        dv, dpre = torch.empty_like(v), torch.empty_like(v)
        dk_rows = torch.empty(1, 3, kk.shape[-1], device="cuda")
        onchip.backward(dy, post, v, pre, k_spec, dv, dpre, dk_rows, n)
        results.append((dg, dw, dv, dpre, dk_rows))
    for a, b in zip(*results):
        assert torch.equal(a, b)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("seqlen,batch", [(16384, 2), (32768, 1), (65536, 2), (131072, 1)])
def test_four_step_rows_on_chip_match_cufft_rows(seqlen, batch, monkeypatch):
    v, pre, post, dy, k, skip = _inputs(batch, 4, seqlen, seqlen, torch.bfloat16, seed=seqlen)
    n = conv_fft_size(seqlen, seqlen)
    results = []
    for rows in ("1", "0"):
        monkeypatch.setenv(onchip.ROWS_ENV, rows)
        assert onchip.rows_supported(
            torch.empty(1, n // 32, dtype=torch.complex64, device="cuda")) == (rows == "1")
        leaves = [t.clone().requires_grad_() for t in (v, pre, post, k, skip)]
        y = gated_fftconv(*leaves, fft_engine="fourstep", fourstep_n1=32)
        results.append([y, *torch.autograd.grad(y, leaves, dy)])
    for a, b in zip(*results):
        assert _rel(a, b) < 1e-2
