"""The four-step FFT engine (hyenadna.ops.fourstep) against torch.fft and the direct convolution.

Three layers: the torch twins against ``torch.fft.rfft``/``irfft`` in float64 (the index maths);
the Triton column kernels against the twins (interpreted on a CPU machine, compiled on CUDA with
the `gpu` marker, where their TF32 dots set the tolerance); the whole gated convolution and the
mixer on the engine against the float64 direct-convolution references. Inputs are synthetic.
"""

import importlib

import pytest
import torch
from numerics import max_rel

from hyenadna import ops
from hyenadna.ops import fourstep, gated_fftconv, gated_fftconv_ref, hyena_mixer, hyena_mixer_ref
from hyenadna.ops.fftconv_fast import pick_fourstep_n1

needs_triton = pytest.mark.skipif(fourstep.triton is None, reason="triton not installed")

# (signal length, FFT length, N1): the convolution's L_k = L case (signal in the first half),
# a short filter's case (signal past n/2), and several splits
SIZES = [(1024, 2048, 32), (1000, 2048, 64), (1500, 2048, 32), (3000, 4096, 128),
         (700, 1024, 32)]


def _rand(shape, seed, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(device, dtype)


@pytest.mark.parametrize("seqlen,n,n1", SIZES)
def test_torch_twins_equal_torch_fft_in_float64(seqlen, n, n1):
    a, b, bias = _rand((2, 3, seqlen), 0), _rand((2, 3, seqlen), 1), _rand((3,), 2)
    spec = fourstep.rfft4(a, b, n, n1, scale=0.25, bias=bias)
    x = a * b * 0.25
    x[..., 0] += bias * 0.25
    assert spec.shape == (2, 3, n1 // 2 + 1, n // n1)
    assert max_rel(spec, fourstep.rfft4_ref(x, n, n1)) < 1e-13
    # inverse: the first samples of irfft of the half spectrum
    out = fourstep.irfft4(spec, n, n1, seqlen // 2)
    assert max_rel(out, x[..., : seqlen // 2]) < 1e-13
    assert max_rel(out, fourstep.irfft4_ref(spec, n, n1, seqlen // 2)) < 1e-13


def test_split_size_and_support():
    assert fourstep.split_size(1 << 21) == (32, 65536)  # the sweep's fastest split
    assert fourstep.split_size(1 << 21, 256) == (256, 8192)
    assert fourstep.split_size(4096, 64) == (64, 64)
    assert not fourstep.supported(3 * 1024) and not fourstep.supported(256)
    for n, n1 in [(3 * 1024, None), (256, None), (4096, 48), (4096, 512), (2048, 16)]:
        with pytest.raises(ValueError):
            fourstep.split_size(n, n1)


@needs_triton
@pytest.mark.parametrize("seqlen,n,n1", SIZES)
def test_triton_columns_match_twins(seqlen, n, n1, device):
    # float32 signal, a bias on tap 0 and a scale: the filter's transform in the conv
    a, bias = _rand((2, 3, seqlen), 3, torch.float32, device), _rand((3,), 4, torch.float32,
                                                                    device)
    cols = torch.empty(2, 3, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=device)
    fourstep.rfft4_cols_triton(cols, a, None, n, n1, 0.5, bias)
    ref = fourstep.rfft4_cols_torch(a.double().cpu(), None, n, n1, 0.5, bias.double().cpu())
    tol = 2e-3 if device.type == "cuda" else 1e-6  # TF32 dots on CUDA, exact fp32 interpreted
    assert max_rel(cols, ref) < tol
    q = torch.fft.ifft(torch.fft.fft(cols, dim=-1), dim=-1, norm="forward")
    out = torch.empty(2, 3, seqlen, device=device)
    fourstep.irfft4_cols_triton(q, n, n1, seqlen, out, scale=1.0 / n)
    expect = a.double().cpu() * 0.5
    expect[..., 0] += bias.double().cpu() * 0.5
    assert max_rel(out, expect) < tol


@needs_triton
@pytest.mark.parametrize("block_j,num_warps", [(16, 2), (32, 8), (512, 4)])
def test_triton_column_tilings_agree(block_j, num_warps, device):
    # the tuning knobs (tile width, warps) change no result
    seqlen, n, n1 = 1500, 2048, 32
    a = _rand((2, 3, seqlen), 9, torch.float32, device)
    tiling = dict(block_j=block_j, num_warps=num_warps)
    cols = torch.empty(2, 3, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=device)
    fourstep.rfft4_cols_triton(cols, a, None, n, n1, 0.5, **tiling)
    ref = fourstep.rfft4_cols_torch(a.double().cpu(), None, n, n1, 0.5)
    tol = 2e-3 if device.type == "cuda" else 1e-6
    assert max_rel(cols, ref) < tol
    out = torch.empty(2, 3, seqlen, device=device)
    q = torch.fft.ifft(torch.fft.fft(cols, dim=-1), dim=-1, norm="forward")
    fourstep.irfft4_cols_triton(q, n, n1, seqlen, out, scale=1.0 / n, **tiling)
    assert max_rel(out, a.double().cpu() * 0.5) < tol


@needs_triton
def test_triton_columns_fuse_bf16_gates_over_strided_views(device):
    # bf16 value and gate as (B, L, C)-transposed views, two gated bf16 outputs, one of them
    # transposed too: the kernels take any strides
    batch, channels, seqlen, n, n1 = 2, 5, 900, 2048, 32
    v = _rand((batch, seqlen, channels), 5, torch.bfloat16, device).transpose(1, 2)
    gate = _rand((batch, channels, seqlen), 6, torch.bfloat16, device)
    cols = torch.empty(batch, channels, 17, 64, dtype=torch.complex64, device=device)
    fourstep.rfft4_cols_triton(cols, v, gate, n, n1)
    w = (v * gate).double().cpu()  # the product rounded to bf16, as torch rounds it
    # Triton's interpreter truncates to bf16 where CUDA rounds: allow one bf16 step there
    tol = 2e-3 if device.type == "cuda" else 2**-7
    assert max_rel(cols, fourstep.rfft4_cols_torch(w, None, n, n1)) < tol
    q = torch.fft.ifft(torch.fft.fft(cols, dim=-1), dim=-1, norm="forward")
    g1, g2 = (_rand((batch, channels, seqlen), s, torch.bfloat16, device) for s in (7, 8))
    o1 = torch.empty(batch, seqlen, channels, dtype=torch.bfloat16, device=device)
    o2 = torch.empty(batch, channels, seqlen, dtype=torch.bfloat16, device=device)
    fourstep.irfft4_cols_triton(q, n, n1, seqlen, o1.transpose(1, 2), g1, o2, g2, 1.0 / n)
    for out, g in ((o1.transpose(1, 2), g1), (o2, g2)):
        assert max_rel(out, w * g.double().cpu()) < 1e-2  # one bf16 rounding


@pytest.mark.parametrize("gates", [True, False])
@pytest.mark.parametrize("seqlen,taps", [(1024, 1024), (1000, 1000), (1000, 300), (2048, 2048)])
def test_gated_conv_on_fourstep_is_exact_in_float64(gates, seqlen, taps):
    # the engine's torch twins, float64: forward and every gradient to rounding, chunked
    batch, width = 2, 3
    v, pre, post = (_rand((batch, width, seqlen), s).requires_grad_() for s in (0, 1, 2))
    k = (_rand((width, taps), 3) / taps**0.5).requires_grad_()
    skip = _rand((width,), 4).requires_grad_()
    pre, post = (pre, post) if gates else (None, None)
    inputs = [t for t in (v, pre, post, k, skip) if t is not None]
    dy = _rand((batch, width, seqlen), 5)
    y = gated_fftconv(v, pre, post, k, skip, fft_engine="fourstep", chunk_elems=seqlen * 4)
    grads = torch.autograd.grad(y, inputs, dy)
    y_ref = gated_fftconv_ref(v, pre, post, k, skip)
    grads_ref = torch.autograd.grad(y_ref, inputs, dy)
    for a, b in zip((y, *grads), (y_ref, *grads_ref)):
        assert max_rel(a, b) < 1e-12


@needs_triton
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)])
def test_gated_conv_through_the_triton_columns_matches_float64(dtype, tol, device, monkeypatch):
    # the column kernels for every float32/bf16 tensor (interpreted on a CPU machine)
    monkeypatch.setattr(fourstep, "use_triton", lambda t: t.dtype != torch.float64)
    batch, width, seqlen = 2, 4, 1500
    v, pre, post = (_rand((batch, width, seqlen), s, dtype, device).requires_grad_()
                    for s in (0, 1, 2))
    k = (_rand((width, seqlen), 3, torch.float32, device) / seqlen**0.5).requires_grad_()
    skip = _rand((width,), 4, torch.float32, device).requires_grad_()
    inputs = [v, pre, post, k, skip]
    dy = _rand((batch, width, seqlen), 5, dtype, device)
    y = gated_fftconv(v, pre, post, k, skip, fft_engine="fourstep")
    grads = torch.autograd.grad(y, inputs, dy)
    ref_inputs = [t.detach().cpu().double().requires_grad_() for t in inputs]
    y_ref = gated_fftconv_ref(*ref_inputs)
    grads_ref = torch.autograd.grad(y_ref, ref_inputs, dy.cpu().double())
    if device.type == "cuda":
        tol = max(tol, 4e-3)  # TF32 column DFTs
    for a, b in zip((y, *grads), (y_ref, *grads_ref)):
        err = ((a.detach().cpu().double() - b).norm() / b.norm()).item()
        assert err < tol, err


def test_hyena_mixer_on_fourstep_is_exact_in_float64():
    g = torch.Generator().manual_seed(0)
    batch, seqlen, width = 2, 1024, 4
    x = torch.randn(batch, seqlen, width, generator=g, dtype=torch.float64)
    params = [torch.randn(3 * width, width, generator=g, dtype=torch.float64) / 2,
              torch.randn(3 * width, generator=g, dtype=torch.float64),
              torch.randn(3 * width, 1, 3, generator=g, dtype=torch.float64),
              torch.randn(3 * width, generator=g, dtype=torch.float64),
              torch.randn(width, seqlen, generator=g, dtype=torch.float64) / 32,
              torch.randn(width, generator=g, dtype=torch.float64)]
    inputs = [t.requires_grad_() for t in [x] + params]
    y = hyena_mixer(*inputs, fft_engine="fourstep")
    y_ref = hyena_mixer_ref(*inputs)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad(y, inputs, dy)
    grads_ref = torch.autograd.grad(y_ref, inputs, dy)
    for a, b in zip((y, *grads), (y_ref, *grads_ref)):
        assert max_rel(a, b) < 1e-11


def test_auto_engine_takes_fourstep_only_where_measured_faster(monkeypatch):
    # H100 sweeps (benchmarks/results/fourstep/sweep_*session6*): four-step (N1 = 32) faster
    # than cuFFT from L = 32k (n = 2^16) up; slower at 16k and below, where cuFFT stays.
    # Triton is faked on so that the rule is checked on CPU tensors too.
    # (the package re-exports a function named fftconv_fast, hence import_module)
    fast_module = importlib.import_module("hyenadna.ops.fftconv_fast")
    monkeypatch.setattr(fast_module, "use_triton", lambda x: True)
    bf16, fp32 = torch.zeros(1, dtype=torch.bfloat16), torch.zeros(1)
    for n in (4096, 1 << 14, 1 << 15):
        assert pick_fourstep_n1(bf16, n) is None
    for n in (1 << 16, 1 << 17, 1 << 21):
        assert pick_fourstep_n1(bf16, n) == 32
        assert pick_fourstep_n1(fp32, n) is None  # float32 I/O: exact cuFFT path
        assert pick_fourstep_n1(bf16, n, "cufft") is None
    assert pick_fourstep_n1(bf16, 3 << 16) is None  # not a power of two


def test_engine_choice(monkeypatch):
    cpu = torch.zeros(1, dtype=torch.bfloat16)
    assert pick_fourstep_n1(cpu, 4096) is None
    assert pick_fourstep_n1(cpu, 4096, "cufft") is None
    assert pick_fourstep_n1(cpu, 4096, "fourstep") == 32
    assert pick_fourstep_n1(cpu, 4096, "fourstep", 64) == 64
    assert pick_fourstep_n1(cpu, 3 * 1024, "fourstep") is None  # not a power of two
    with pytest.raises(ValueError, match="engine"):
        pick_fourstep_n1(cpu, 4096, "fast")
    monkeypatch.setenv(ops.FFT_ENGINE_ENV, "FourStep")
    assert ops.fft_engine() == "fourstep"
    monkeypatch.setenv(ops.FFT_ENGINE_ENV, "vkfft")
    with pytest.raises(ValueError, match=ops.FFT_ENGINE_ENV):
        ops.fft_engine()


@pytest.mark.gpu
def test_auto_engine_on_cuda_bf16_matches_reference():
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    v, pre, post = (_rand((1, 8, 1 << 16), s, torch.bfloat16, "cuda") for s in (0, 1, 2))
    k = _rand((8, 2048), 3, torch.float32, "cuda") / 64  # n = 2^17: L + taps - 1 > 2^16
    assert pick_fourstep_n1(v, 1 << 17) == 32
    y = gated_fftconv(v, pre, post, k)
    y_ref = gated_fftconv_ref(*(t.double() for t in (v, pre, post, k)))
    assert ((y.double() - y_ref).norm() / y_ref.norm()).item() < 1e-2


@needs_triton
def test_triton_columns_refuse_spectra_they_cannot_address():
    # the kernels hard-code each row's N2 complex values side by side and one (B, C) row stride
    a = torch.zeros(2, 3, 1024)
    n, n1 = 2048, 32
    wide = torch.zeros(2, 3, n1 // 2 + 1, 2 * (n // n1), dtype=torch.complex64)
    with pytest.raises(ValueError, match="N2 complex values contiguous"):
        fourstep.rfft4_cols_triton(wide[..., ::2], a, None, n, n1)
    split = torch.zeros(3, 2, n1 // 2 + 1, n // n1, dtype=torch.complex64).transpose(0, 1)
    with pytest.raises(ValueError, match="evenly strided"):
        fourstep.irfft4_cols_triton(split, n, n1, 1024, a)


# ------------------------------------------------------------------------------------------
# packed spectra (fourstep.PACKED: bf16 pairs between the engine's kernels)
# ------------------------------------------------------------------------------------------

def _ulp_close(packed: torch.Tensor, want: torch.Tensor, ulps: float = 1.0) -> float:
    """Fraction of values of a packed spectrum further than ``ulps`` bf16 ulps (2^-8 relative)
    from the complex64 values ``want`` (both parts, each against its own magnitude, plus 1e-6
    of their rms: a part that cancels to ~0 differs in float32's last bits between builds)."""
    got = torch.view_as_real(fourstep.unpack_spectrum(packed)).float()
    ref = torch.view_as_real(want).float()
    floor = 1e-6 * ref.pow(2).mean().sqrt()
    bad = (got - ref).abs() > ulps * 2.0**-8 * ref.abs() + floor
    return bad.float().mean().item()


def test_packed_spectrum_layout_and_round_trip():
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(3, 5, 7, dtype=torch.complex64, generator=g)
    packed = fourstep.pack_spectrum(spec)
    assert packed.dtype == torch.int32 and packed.shape == spec.shape
    # the memory of a (..., 2) bf16 tensor: real part in the low 16 bits
    re_bits = (packed & 0xFFFF).to(torch.int16).view(torch.bfloat16)
    im_bits = ((packed >> 16) & 0xFFFF).to(torch.int16).view(torch.bfloat16)
    assert torch.equal(re_bits, spec.real.to(torch.bfloat16))
    assert torch.equal(im_bits, spec.imag.to(torch.bfloat16))
    back = fourstep.unpack_spectrum(packed)
    assert back.dtype == torch.complex64
    assert torch.equal(fourstep.pack_spectrum(back), packed)  # exact once rounded


def test_packed_spectra_cost_little_accuracy(monkeypatch):
    # the engine's packed twin path (each stage computes in float32, its output rounded to
    # bf16 pairs) against the float64 direct convolution: about the bf16 I/O's own error,
    # measured 2.4e-3 unpacked against 3.0e-3 packed for y here, 2.3e-3 / 3.7e-3 for dk
    fast_module = importlib.import_module("hyenadna.ops.fftconv_fast")
    batch, width, seqlen = 2, 4, 4096
    v, pre, post = (_rand((batch, width, seqlen), s, torch.bfloat16).requires_grad_()
                    for s in (0, 1, 2))
    k = (_rand((width, seqlen), 3, torch.float32) / seqlen**0.5).requires_grad_()
    skip = _rand((width,), 4, torch.float32).requires_grad_()
    inputs = [v, pre, post, k, skip]
    dy = _rand((batch, width, seqlen), 5, torch.bfloat16)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    y_ref = gated_fftconv_ref(*ref_inputs)
    want = (y_ref, *torch.autograd.grad(y_ref, ref_inputs, dy.double()))
    errors, calls = {}, []
    unpack = fourstep.unpack_spectrum
    monkeypatch.setattr(fourstep, "unpack_spectrum", lambda p: calls.append(1) or unpack(p))
    for packed in (False, True):
        monkeypatch.setattr(fast_module, "PACKED_SPECTRA", packed)
        calls.clear()
        y = gated_fftconv(v, pre, post, k, skip, fft_engine="fourstep")
        got = (y, *torch.autograd.grad(y, inputs, dy))
        assert bool(calls) == packed  # the packed path ran (its twin: this is a CPU)
        errors[packed] = [((a.detach().double() - b).norm() / b.norm()).item()
                          for a, b in zip(got, want)]
    for unpacked_err, packed_err in zip(errors[False], errors[True]):
        assert packed_err < 6e-3 and packed_err < 2 * unpacked_err, errors
    monkeypatch.setenv(fast_module.PACKED_ENV, "0")
    assert not fast_module.packed_spectra(v)
    monkeypatch.setenv(fast_module.PACKED_ENV, "1")
    assert fast_module.packed_spectra(v) and not fast_module.packed_spectra(v.float())


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1 << 17, 1 << 19])  # rows of 4096; rows of 16384, split in 8
def test_packed_kernels_round_as_the_twin(n):
    # each CUDA stage on packed spectra equals the complex64 stage on the same (unpacked)
    # input, rounded once: within one bf16 ulp everywhere (float32 arithmetic may differ in
    # its last bits between the two builds)
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    from hyenadna.ops import rowsplit

    n1, seqlen, width = 32, n // 2, 4
    n2 = n // n1
    a, b, gate = (_rand((1, width, seqlen), s, torch.bfloat16, "cuda") for s in (0, 1, 2))
    k = _rand((width, seqlen), 3, torch.float32, "cuda") / seqlen**0.5
    split = rowsplit.used(torch.empty(0, n2, dtype=torch.complex64, device="cuda"))
    assert split == (n2 > 8192)
    k_spec = fourstep.rfft4(k.unsqueeze(0), None, n, n1, 1.0 / n, split_rows=split)[0]
    shape = (1, width, n1 // 2 + 1, n2)
    cols_c = torch.empty(shape, dtype=torch.complex64, device="cuda")
    cols_p = torch.empty(shape, dtype=fourstep.PACKED, device="cuda")
    for out in (cols_c, cols_p):
        fourstep.rfft4_cols(out, a, b, n, n1, split=split)
    # (s17b, H100: 1.1e-5 of the values were off by more than an ulp with no rms floor: parts
    # that cancel to ~1e-9, where float32's last bits differ between the two builds)
    assert _ulp_close(cols_p, cols_c) < 1e-4
    # the row stage, forward: the same packed input both ways
    x_c = fourstep.unpack_spectrum(cols_p)
    x_p = cols_p.clone()
    fourstep.row_conv_forward(x_c, k_spec, split)
    fourstep.row_conv_forward(x_p, k_spec, split)
    assert _ulp_close(x_p, x_c) < 1e-4
    # the inverse column stage with a gate, bf16 outputs
    y_c, y_p = (torch.empty_like(a) for _ in range(2))
    fourstep.irfft4_cols(fourstep.unpack_spectrum(x_p), n, n1, seqlen, y_c, gate, merge=split)
    fourstep.irfft4_cols(x_p, n, n1, seqlen, y_p, gate, merge=split)
    assert ((y_p.float() - y_c.float()).abs() <= 2.0**-7 * y_c.float().abs() + 1e-6).all()
    # the row stage, backward: g's rows and the cross rows
    both_p = torch.stack([cols_p, cols_p.flip(1)])
    both_c = fourstep.unpack_spectrum(both_p)
    q_c, cross_c = fourstep.row_conv_backward(both_c, k_spec, True, split)
    q_p, cross_p = fourstep.row_conv_backward(both_p, k_spec, True, split)
    assert q_p.dtype == cross_p.dtype == fourstep.PACKED
    assert _ulp_close(q_p, q_c) < 1e-4 and _ulp_close(cross_p, cross_c) < 1e-4


@pytest.mark.gpu
@pytest.mark.parametrize("seqlen", [1 << 16, 1 << 18])
def test_packed_gated_conv_on_cuda_matches_float64(seqlen, monkeypatch):
    # the whole convolution, forward and gradients, packed against unpacked and float64
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    fast_module = importlib.import_module("hyenadna.ops.fftconv_fast")
    width = 4
    v, pre, post = (_rand((1, width, seqlen), s, torch.bfloat16, "cuda").requires_grad_()
                    for s in (0, 1, 2))
    k = (_rand((width, seqlen), 3, torch.float32, "cuda") / seqlen**0.5).requires_grad_()
    inputs = [v, pre, post, k]
    dy = _rand((1, width, seqlen), 5, torch.bfloat16, "cuda")
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    y_ref = gated_fftconv(*ref_inputs, fft_engine="cufft")  # float64 cuFFT: exact, and fast
    want = (y_ref, *torch.autograd.grad(y_ref, ref_inputs, dy.double()))
    errors = {}
    for packed in (False, True):
        monkeypatch.setattr(fast_module, "PACKED_SPECTRA", packed)
        y = gated_fftconv(v, pre, post, k, fft_engine="fourstep")
        got = (y, *torch.autograd.grad(y, inputs, dy))
        errors[packed] = [((a.detach().double() - b).norm() / b.norm()).item()
                          for a, b in zip(got, want)]
    for unpacked_err, packed_err in zip(errors[False], errors[True]):
        assert packed_err < 1e-2 and packed_err < 2 * unpacked_err + 1e-4, errors


def test_packed_cross_rows_sum_over_the_batch_in_float32():
    # the row kernels leave each batch row's cross spectrum in place; packed, the batch's sum
    # is taken in float32 and rounded once (small-32k's batch of 8 runs this on CUDA)
    g = torch.Generator().manual_seed(3)
    full = torch.randn(2, 3, 2, 5, 8, dtype=torch.complex64, generator=g)  # (parts, B, C, H, N2)
    packed = fourstep.pack_spectrum(full)
    q, cross = fourstep._backward_results(packed, True)
    assert torch.equal(q, packed[0])
    want = fourstep.pack_spectrum(fourstep.unpack_spectrum(packed[1]).sum(0))
    assert cross.dtype == fourstep.PACKED and torch.equal(cross, want)
    q1, cross1 = fourstep._backward_results(packed[:, :1], True)  # batch 1: the row itself
    assert torch.equal(cross1, packed[1, 0])
    assert fourstep._backward_results(packed, False)[1] is None


def test_packed_chunk_scale_gives_the_same_numbers_in_fewer_chunks(monkeypatch):
    # fftconv_fast.PACKED_CHUNK_SCALE: packed, the engine's channel chunks may be larger;
    # chunking never changes a channel's arithmetic, so the results are bit-equal
    fast_module = importlib.import_module("hyenadna.ops.fftconv_fast")
    monkeypatch.setattr(fast_module, "PACKED_SPECTRA", True)
    v, pre, post = (_rand((1, 8, 1024), s, torch.bfloat16).requires_grad_() for s in (0, 1, 2))
    k = (_rand((8, 1024), 3, torch.float32) / 32).requires_grad_()
    inputs = [v, pre, post, k]
    dy = _rand((1, 8, 1024), 5, torch.bfloat16)
    calls, results, counts = [], [], []
    cols = fourstep.rfft4_cols
    monkeypatch.setattr(fourstep, "rfft4_cols", lambda *a, **kw: calls.append(1) or cols(*a, **kw))
    for scale in (1, 2):
        monkeypatch.setattr(fast_module, "PACKED_CHUNK_SCALE", scale)
        calls.clear()
        y = gated_fftconv(v, pre, post, k, fft_engine="fourstep", chunk_elems=2 * 2048)
        results.append((y, *torch.autograd.grad(y, inputs, dy)))
        counts.append(len(calls))
    assert counts[1] < counts[0], counts  # fewer column-stage calls: fewer, larger chunks
    for a, b in zip(*results):
        assert torch.equal(a, b)
