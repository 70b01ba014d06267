"""The layout kernels (hyenadna.ops.layout) against their torch twins and a float64 reference.

On a machine without CUDA the Triton kernels run under TRITON_INTERPRET=1 (set in conftest), on
CPU tensors; with the `gpu` marker they run compiled on CUDA. Inputs are synthetic random
tensors. Strided layouts are the point: every case mixes (B, C, L) and transposed (B, L, C) views.
"""

import pytest
import torch
import torch.nn.functional as F

from hyenadna.ops import layout

pytestmark = pytest.mark.skipif(layout.triton is None, reason="triton not installed")

BF16_REL = 1e-2  # one bf16 rounding of O(1) values: relative error <= 2^-8 per element


def _rand(shape, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(device, dtype)


def _transposed(batch, channels, seqlen, dtype, device, seed):
    """A (B, C, L) view of a contiguous (B, L, C) tensor."""
    return _rand((batch, seqlen, channels), dtype, device, seed).transpose(1, 2)


def _ref_short_conv(proj64, w64, b64):
    """float64 reference: the official layout (pad K-1 on both sides, keep the first L)."""
    seqlen, taps = proj64.shape[1], w64.shape[-1]
    out = F.conv1d(proj64.transpose(1, 2), w64, b64, padding=taps - 1,
                   groups=proj64.shape[-1])
    return out[..., :seqlen]


@pytest.mark.parametrize("dtypes", [
    (torch.float32, torch.bfloat16, torch.bfloat16),   # out, a, b: the FFT buffer fill
    (torch.bfloat16, torch.float32, torch.bfloat16),   # the output gate on z
    (torch.bfloat16, torch.bfloat16, torch.bfloat16),  # dpost = dy · z
    (torch.float32, torch.float32, None),              # plain copy
])
@pytest.mark.parametrize("shape", [(1, 3, 1), (2, 70, 130), (3, 64, 64)])
def test_strided_mul_equals_torch_bitwise(dtypes, shape, device):
    out_dt, a_dt, b_dt = dtypes
    batch, channels, seqlen = shape
    a = _transposed(batch, channels, seqlen, a_dt, device, 0)
    b = None if b_dt is None else _rand(shape, b_dt, device, 1)
    # the output is itself a strided slice: every other row of a padded buffer
    buf = torch.full((batch, 2 * channels, seqlen + 5), 7.0, dtype=out_dt, device=device)
    out = buf[:, ::2, :seqlen]
    expect = buf.clone()
    layout.strided_mul_torch(expect[:, ::2, :seqlen], a, b)
    layout.strided_mul_triton(out, a, b)
    # Compiled kernels round float32 → bf16 to nearest-even, as torch does: the same bits. The
    # interpreter truncates instead (triton 3.6), so on the CPU allow one bf16 step.
    exact = device.type == "cuda" or torch.bfloat16 not in dtypes
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=2**-7, atol=1e-30)
    torch.testing.assert_close(buf, expect, **tol)  # untouched elements included


@pytest.mark.parametrize("seqlen,n", [(1, 1), (5, 8), (70, 256), (130, 259)])
@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_padded_mul_zeroes_the_tail_in_the_same_pass(seqlen, n, scale, device, monkeypatch):
    # the FFT input buffer: out[..., :L] = a · b · scale, out[..., L:] = 0, out's rows strided
    a = _transposed(2, 9, seqlen, torch.bfloat16, device, 0)
    b = _rand((2, 9, seqlen), torch.bfloat16, device, 1)
    results = []
    for triton_on in (False, True):
        monkeypatch.setattr(layout, "use_triton", lambda t, on=triton_on: on)
        buf = torch.full((2, 18, n), 7.0, device=device)  # garbage the tail must lose
        layout.padded_mul(buf[:, ::2], a, b, scale)
        results.append(buf)
    twin, kernel = results
    assert (twin[:, ::2, seqlen:] == 0).all() and (kernel[:, ::2, seqlen:] == 0).all()
    assert (kernel[:, 1::2] == 7.0).all()  # rows in between untouched
    # the interpreter truncates the bf16 product where CUDA rounds: one bf16 step on the CPU
    tol = 0 if device.type == "cuda" else 2**-7
    torch.testing.assert_close(kernel, twin, rtol=tol, atol=1e-30 if tol else 0)
    with pytest.raises(ValueError, match="three equal"):
        layout.strided_mul_triton(buf[:, :, : seqlen - 1], a, b, pad=True)


def test_strided_mul_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="three equal"):
        layout.strided_mul_triton(torch.empty(1, 2, 3), torch.empty(1, 2, 4))


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2, 5), (2, 130, 70), (1, 300, 24)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("time_major", [False, True])
def test_short_conv_t_forward_and_backward_match_float64(shape, dtype, time_major, device):
    # time_major: proj and dproj (B, C, L) (the GEMM writes proj that way, lean's
    # TIME_MAJOR_PROJ), with in_proj's bias added in the conv instead of by the GEMM, zero in
    # the causal padding as the official layout's padded proj is
    batch, seqlen, channels = shape
    proj = _rand((batch, seqlen, channels), dtype, device, 0)
    w = _rand((channels, 1, 3), torch.float32, device, 1)
    bias = _rand((channels,), torch.float32, device, 2)
    dout = _rand((batch, channels, seqlen), dtype, device, 3)
    in_bias = _rand((channels,), torch.float32, device, 4) if time_major else None
    # float64 reference over the inputs as the kernels see them (weights and in_bias rounded to
    # dtype), in the official layout
    p64 = proj.cpu().double()
    if time_major:
        p64 = p64 + in_bias.to(dtype).cpu().double()
        proj = proj.transpose(1, 2).contiguous()
    p64.requires_grad_()
    w64, b64 = (t.detach().to("cpu", torch.float64).requires_grad_()
                for t in (w.to(dtype), bias.to(dtype)))
    ref = _ref_short_conv(p64, w64, b64)
    ref.backward(dout.cpu().double())
    tol = 1e-5 if dtype == torch.float32 else BF16_REL
    kw = dict(in_bias=in_bias, time_major=time_major)
    for impl in (layout.short_conv_t_torch, layout.short_conv_t_triton):
        out = impl(proj, w, bias, **kw)
        assert out.shape == (batch, channels, seqlen) and out.dtype == dtype
        torch.testing.assert_close(out.cpu().double(), ref.detach(), rtol=tol, atol=tol)
    for impl in (layout.short_conv_t_backward_torch, layout.short_conv_t_backward_triton):
        dproj, dw, db, _ = impl(dout, proj, w, **kw)
        assert dproj.shape == proj.shape and dproj.is_contiguous() and dproj.dtype == dtype
        assert dw.shape == w.shape and db.shape == bias.shape
        want = p64.grad.transpose(1, 2) if time_major else p64.grad
        torch.testing.assert_close(dproj.cpu().double(), want, rtol=tol, atol=tol)
        # weight/bias grads sum B·L products in float32: relative to their scale
        scale = (batch * seqlen) ** 0.5
        torch.testing.assert_close(dw.cpu().double(), w64.grad, rtol=1e-4, atol=1e-4 * scale)
        torch.testing.assert_close(db.cpu().double(), b64.grad, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_short_conv_t_time_major_gives_the_channels_last_results(dtype, device):
    # without in_bias, time-major gives the channels-last results, transposed (the torch twin
    # against the kernel: on CUDA the kernel's fused multiply-adds round differently, up to
    # 9.5e-7 apart on these float32 values in s18f)
    proj_t = _rand((2, 70, 130), dtype, device, 0)
    w = _rand((70, 1, 3), torch.float32, device, 1)
    dout = _rand((2, 70, 130), dtype, device, 3)
    dproj_cl = layout.short_conv_t_backward_torch(dout, proj_t.transpose(1, 2).contiguous(),
                                                  w)[0]
    dproj_tm = layout.short_conv_t_backward_triton(dout, proj_t, w, time_major=True)[0]
    tol = dict(rtol=1e-5, atol=2e-6) if dtype == torch.float32 else dict(rtol=2**-7, atol=1e-30)
    torch.testing.assert_close(dproj_tm.transpose(1, 2).cpu(), dproj_cl.cpu(), **tol)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("block_c,block_l,warps", [(32, 128, 8), (128, 64, 8), (16, 256, 4)])
def test_short_conv_t_at_other_launch_shapes(block_c, block_l, warps, time_major, device,
                                             monkeypatch):
    # the shapes benchmarks/bench_short_conv.py times, in either layout's knobs: same results
    # as the torch twins
    for name, value in [("BLOCK_C", block_c), ("BLOCK_L", block_l), ("SHIFT_WARPS", warps),
                        ("DW_WARPS", warps), ("TIME_MAJOR_TILE", (block_c, block_l, warps))]:
        monkeypatch.setattr(layout, name, value)
    proj = _rand((2, 300, 70), torch.float32, device, 0)
    w = _rand((70, 1, 3), torch.float32, device, 1)
    bias = _rand((70,), torch.float32, device, 2)
    dout = _rand((2, 70, 300), torch.float32, device, 3)
    kw = {}
    if time_major:
        proj = proj.transpose(1, 2).contiguous()
        kw = dict(in_bias=_rand((70,), torch.float32, device, 4), time_major=True)
    torch.testing.assert_close(layout.short_conv_t_triton(proj, w, bias, **kw),
                               layout.short_conv_t_torch(proj, w, bias, **kw), rtol=1e-5,
                               atol=1e-5)
    got = layout.short_conv_t_backward_triton(dout, proj, w, need_dproj_sum=True, **kw)
    want = layout.short_conv_t_backward_torch(dout, proj, w, need_dproj_sum=True, **kw)
    for name, g, r in zip(["dproj", "dweight", "dbias", "dproj_sum"], got, want):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize("target_programs", [1, layout.DW_TARGET_PROGRAMS])
def test_short_conv_t_weight_grad_sums_across_programs(target_programs, device, monkeypatch):
    # One program per DW_L_PER_PROGRAM stretch (target 1: the inner loop runs 64 tiles) or one
    # per tile (the default at this small B·C); L has a ragged end, batch 2.
    monkeypatch.setattr(layout, "DW_TARGET_PROGRAMS", target_programs)
    seqlen = 2 * layout.DW_L_PER_PROGRAM + 37
    proj = _rand((2, seqlen, 5), torch.float32, device, 0)
    w = _rand((5, 1, 3), torch.float32, device, 1)
    dout = _rand((2, 5, seqlen), torch.float32, device, 3)
    _, dw, db, _ = layout.short_conv_t_backward_triton(dout, proj, w)
    _, dw_ref, db_ref, _ = layout.short_conv_t_backward_torch(dout.double(), proj.double(),
                                                           w.double())
    torch.testing.assert_close(dw.double(), dw_ref, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(db.double(), db_ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("taps", [1, 2, 3, 4])
@pytest.mark.parametrize("seqlen", [1, 2, 5, 64])
def test_dproj_sum_from_the_bias_gradient(taps, seqlen, device):
    # in_proj's bias gradient is sum_{b,l} dproj; short_conv_t_dproj_sum gets it from the conv's
    # bias gradient and dout's first K - 1 steps (L < K - 1 included), in float64 exactly
    dout = _rand((3, 7, seqlen), torch.float64, device, 0)
    w = _rand((7, 1, taps), torch.float64, device, 1)
    dproj, _, db, _ = layout.short_conv_t_backward_torch(dout, dout.transpose(1, 2), w)
    got = layout.short_conv_t_dproj_sum(dout, w, db)
    torch.testing.assert_close(got, dproj.sum((0, 1)), rtol=1e-12, atol=1e-12)
    # bf16 dout: float32 sums of the same values the kernel reads
    d16 = dout.bfloat16()
    dproj, _, db, _ = layout.short_conv_t_backward(d16, d16.transpose(1, 2), w.float())
    got = layout.short_conv_t_dproj_sum(d16, w.float(), db)
    want = layout.short_conv_t_backward_torch(d16.double(), d16.transpose(1, 2).double(),
                                              w.bfloat16().double())[0].sum((0, 1))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("taps", [1, 2, 3, 4])
@pytest.mark.parametrize("batch,seqlen", [(1, 1), (3, 2), (7, 3), (2, 700)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("block_r", [2, layout.SUMS_BLOCK_R])
def test_short_conv_t_backward_kernels_sum_like_the_torch_twin(taps, batch, seqlen, dtype,
                                                                block_r, device, monkeypatch):
    # the partial-sum kernel plus the kernel that adds the partial rows up and forms
    # dproj_sum, against the torch twin (which forms dproj_sum from short_conv_t_dproj_sum);
    # block_r = 2: the partial rows and batch items take several tiles
    monkeypatch.setattr(layout, "SUMS_BLOCK_R", block_r)
    proj = _rand((batch, seqlen, 6), dtype, device, 0)
    w = _rand((6, 1, taps), torch.float32, device, 1)
    dout = _rand((batch, 6, seqlen), dtype, device, 3)
    got = layout.short_conv_t_backward_triton(dout, proj, w, need_dproj_sum=True)
    want = layout.short_conv_t_backward_torch(dout, proj, w, need_dproj_sum=True)
    scale = (batch * seqlen) ** 0.5
    for a, b in zip(got[1:], want[1:]):
        assert a.dtype == torch.float32 and a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * scale)
    # and against the definition: the sum of the dproj the same call returned (rounded to
    # dtype before it is summed here)
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(got[3].double(), got[0].double().sum((0, 1)), rtol=tol,
                               atol=tol * scale)


def test_short_conv_t_without_bias_and_without_weight_grads(device):
    proj = _rand((1, 9, 4), torch.float32, device, 0)
    w = _rand((4, 1, 3), torch.float32, device, 1)
    torch.testing.assert_close(layout.short_conv_t_triton(proj, w, None),
                               layout.short_conv_t_torch(proj, w, None), rtol=1e-6, atol=1e-6)
    dproj, dw, db, ds = layout.short_conv_t_backward_triton(proj.transpose(1, 2).contiguous(),
                                                            proj, w, need_weight=False,
                                                            need_bias=False)
    assert dw is None and db is None and ds is None and dproj.shape == proj.shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_hyena_mixer_through_the_kernels_matches_ref(dtype, monkeypatch):
    # The whole lean mixer with every layout op on the Triton side (interpreted here): the
    # kernels see the real strides (transposed y and dy, row-strided FFT buffers, du3 slices).
    from hyenadna.ops import hyena_mixer, hyena_mixer_ref

    monkeypatch.setattr(layout, "use_triton", lambda t: t.dtype != torch.float64)
    g = torch.Generator().manual_seed(0)
    batch, seqlen, width = 2, 150, 8
    x = torch.randn(batch, seqlen, width, generator=g)
    params = [torch.randn(3 * width, width, generator=g) / width**0.5,
              torch.randn(3 * width, generator=g), torch.randn(3 * width, 1, 3, generator=g),
              torch.randn(3 * width, generator=g),
              torch.randn(width, seqlen, generator=g) * torch.exp(-torch.arange(seqlen) / 30.0),
              torch.randn(width, generator=g)]
    inputs = [x.to(dtype).requires_grad_()] + [p.requires_grad_() for p in params]
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    y, y_ref = hyena_mixer(*inputs), hyena_mixer_ref(*ref_inputs)
    assert y.shape == (batch, seqlen, width) and y.dtype == dtype
    dy = torch.randn(y.shape, generator=g)
    y.backward(dy.to(dtype))
    y_ref.backward(dy.double())
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    for fast, ref in [(y, y_ref)] + [(a.grad, b.grad) for a, b in zip(inputs, ref_inputs)]:
        err = ((fast.detach().double() - ref.detach()).norm() / ref.detach().norm()).item()
        assert err < tol, err


@pytest.mark.parametrize("value,enabled", [(None, True), ("1", True), ("0", False),
                                           ("off", False), ("FALSE", False)])
def test_triton_env_switch(value, enabled, monkeypatch):
    if value is None:
        monkeypatch.delenv(layout.TRITON_ENV, raising=False)
    else:
        monkeypatch.setenv(layout.TRITON_ENV, value)
    assert layout.triton_enabled() is enabled
    assert not layout.use_triton(torch.zeros(1))  # CPU tensors: always the torch twins
