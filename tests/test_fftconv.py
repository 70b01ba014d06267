"""fftconv (FFT fast path) against fftconv_ref (direct causal convolution, float64)."""

import pytest
import torch

from hyenadna.ops.fftconv import fft_size, fftconv, fftconv_ref

LENGTHS = [1, 2, 7, 64, 1000, 1026, 3001, 4096]
# fp32 FFT over L terms: relative error ~1e-6·log L; bf16 inputs round the output to 8 bits.
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


def _inputs(seqlen, dtype, device, batch=2, channels=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, channels, seqlen, generator=g)
    # decaying filter like the implicit filter's window keeps output magnitudes O(1)
    k = torch.randn(channels, seqlen, generator=g) * torch.exp(-torch.arange(seqlen) / 50.0)
    skip = torch.randn(channels, generator=g)
    return u.to(device, dtype), k.to(device, dtype), skip.to(device, dtype)


@pytest.mark.parametrize("seqlen", LENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fftconv_matches_ref_forward_and_grads(seqlen, dtype, device):
    u, k, skip = _inputs(seqlen, dtype, device)
    u.requires_grad_(), k.requires_grad_(), skip.requires_grad_()
    y = fftconv(u, k, skip)
    assert y.dtype == dtype and y.shape == u.shape
    # the reference sees the same (possibly bf16-rounded) values, in float64
    u64, k64, s64 = (t.detach().double().cpu().requires_grad_() for t in (u, k, skip))
    y64 = fftconv_ref(u64, k64, s64)
    torch.testing.assert_close(y.float().cpu(), y64.float(), **TOL[dtype])
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    y.backward(grad.to(device, dtype))
    y64.backward(grad.double())
    for fast, ref in ((u, u64), (k, k64), (skip, s64)):
        scale = ref.grad.abs().max().clamp_min(1.0)  # grads of k and D sum over B·L terms
        torch.testing.assert_close(fast.grad.float().cpu() / scale, ref.grad.float() / scale,
                                   **TOL[dtype])


def test_fftconv_float64_is_exact_to_rounding():
    u, k, skip = _inputs(777, torch.float64, "cpu")
    torch.testing.assert_close(fftconv(u, k, skip), fftconv_ref(u, k, skip), rtol=1e-10,
                               atol=1e-10)


def test_fftconv_shorter_filter_and_no_skip():
    u, k, _ = _inputs(300, torch.float64, "cpu")
    k = k[:, :17]
    torch.testing.assert_close(fftconv(u, k), fftconv_ref(u, k), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("t", [0, 10, 499])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_fftconv_is_causal(t, dtype, tol):
    # FFT rounding is global (an fp32 error of ~1e-7 · max|y| reaches every position), so the
    # perturbation keeps the same scale as the input; in float64 causality is exact to 1e-10.
    u, k, skip = _inputs(500, dtype, "cpu")
    u2 = u.clone()
    u2[..., t + 1:] = torch.randn_like(u2[..., t + 1:])
    y, y2 = fftconv(u, k, skip), fftconv(u2, k, skip)
    torch.testing.assert_close(y[..., : t + 1], y2[..., : t + 1], rtol=tol, atol=tol)
    if t + 1 < 500:
        assert not torch.allclose(y[..., t + 1:], y2[..., t + 1:])


@pytest.mark.parametrize("n", [1, 2, 3, 11, 1023, 2049, 2_000_003, 2 * 1_000_002])
def test_fft_size_is_smooth_and_large_enough(n):
    m = fft_size(n)
    assert m >= n and m <= 1 << (n - 1).bit_length()
    for p in (2, 3, 5, 7):
        while m % p == 0:
            m //= p
    assert m == 1
