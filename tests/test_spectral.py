"""mul_spectra and backward_products (hyenadna.ops.spectral): the Triton kernels against their
torch twins and against float64 complex products. Spectra are synthetic random complex values."""

import pytest
import torch

from hyenadna.ops import spectral

needs_triton = pytest.mark.skipif(spectral.triton is None, reason="triton not installed")


def _spectrum(shape, seed, device, dtype=torch.complex64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 2, generator=g, dtype=torch.float64).view(
        torch.complex128).squeeze(-1).to(device, dtype)


@needs_triton
@pytest.mark.parametrize("conj_b", [False, True])
@pytest.mark.parametrize("a_shape,b_shape", [((3, 5, 1000), (5, 1000)), ((2, 7, 33), (2, 7, 33)),
                                             ((4, 17, 64), (17, 64))])
def test_triton_product_matches_float64(a_shape, b_shape, conj_b, device):
    a, b = _spectrum(a_shape, 0, device), _spectrum(b_shape, 1, device)
    out = torch.empty_like(a)
    spectral.mul_spectra_triton(out, a, b, conj_b)
    bb = b.cpu().to(torch.complex128)
    expect = a.cpu().to(torch.complex128) * (bb.conj() if conj_b else bb)
    assert ((out.cpu() - expect).abs().max() / expect.abs().max()).item() < 1e-6


@needs_triton
def test_in_place_into_either_operand(device):
    # the backward writes conj(W) · G over W, and G · conj(K') over G
    a, b = _spectrum((2, 3, 100), 2, device), _spectrum((2, 3, 100), 3, device)
    expect = a.cpu() * b.cpu().conj()
    a1, b1 = a.clone(), b.clone()
    spectral.mul_spectra_triton(a1, a1, b1, True)
    spectral.mul_spectra_triton(b, a, b, True)
    for got in (a1, b):
        assert torch.allclose(got.cpu(), expect, rtol=1e-6, atol=1e-6)


def test_dispatch_float64_uses_torch_and_checks_shapes():
    a, b = _spectrum((2, 3, 8), 4, "cpu", torch.complex128), _spectrum((3, 8), 5, "cpu",
                                                                      torch.complex128)
    out = torch.empty_like(a)
    spectral.mul_spectra(out, a, b, True)
    assert torch.equal(out, a * b.conj())
    with pytest.raises(ValueError, match="ending in b"):
        spectral.mul_spectra(out, a, b[:, :4], False)


@needs_triton
@pytest.mark.parametrize("shape,k_shape", [((3, 5, 1000), (5, 1000)), ((2, 4, 17, 64), (4, 17, 64)),
                                           ((7, 33), (7, 33))])
def test_backward_products_match_float64(shape, k_shape, device):
    # both results from the ORIGINAL g: w ← g · conj(w) must not see the updated g, nor g see w
    g, w, k = (_spectrum(s, seed, device) for s, seed in ((shape, 6), (shape, 7), (k_shape, 8)))
    g64, w64, k64 = (t.cpu().to(torch.complex128) for t in (g, w, k))
    spectral.backward_products_triton(g, w, k)
    for got, expect in ((w, g64 * w64.conj()), (g, g64 * k64.conj())):
        assert ((got.cpu() - expect).abs().max() / expect.abs().max()).item() < 1e-6


def test_backward_products_torch_twin_and_dispatch():
    g, w, k = (_spectrum(s, seed, "cpu", torch.complex128)
               for s, seed in (((2, 3, 8), 9), ((2, 3, 8), 10), ((3, 8), 11)))
    expect_w, expect_g = g * w.conj(), g * k.conj()
    spectral.backward_products(g, w, k)
    assert torch.equal(w, expect_w) and torch.equal(g, expect_g)
    with pytest.raises(ValueError, match="ending in k"):
        spectral.backward_products(g, w, k[:, :4])


@needs_triton
def test_triton_kernels_refuse_strided_spectra():
    # both kernels index their operands as flat runs of complex values
    a = _spectrum((3, 8), 12, "cpu")
    strided = _spectrum((3, 16), 13, "cpu")[:, ::2]
    with pytest.raises(ValueError, match="contiguous b"):
        spectral.mul_spectra_triton(torch.empty_like(a), a, strided, True)
    with pytest.raises(ValueError, match="contiguous w"):
        spectral.backward_products_triton(a.clone(), strided, a[0].clone())


def _half_spectrum_of_real(shape, n, seed, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    return torch.fft.rfft(torch.randn(*shape, n, generator=g, dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize("n", [16, 6, 1026, 2048])  # M even and odd
def test_packed_inverse_equals_irfft_in_float64(n):
    x = _half_spectrum_of_real((2, 3), n, 14)
    y = spectral.unpacked_inverse(spectral.pack_torch(x))
    assert torch.allclose(y, torch.fft.irfft(x, n=n, norm="forward"), rtol=1e-12, atol=1e-12)


@needs_triton
@pytest.mark.parametrize("n", [16, 6, 2050, 4096])
def test_triton_packing_matches_float64(n, device):
    # forward: pack(S · K'), K' broadcast over the batch; backward: pack(G · conj(K')) and
    # pack(G · conj(W)); each checked through the inverse against irfft of the product
    s_, k_, w_ = (_half_spectrum_of_real(shape, n, seed) for shape, seed in
                  (((2, 3), 15), ((3,), 16), ((2, 3), 17)))
    dev = [t.to(device, torch.complex64) for t in (s_, k_, w_)]
    got = spectral._packed_triton(dev[0], dev[1], None, False)[0]
    z_gk, z_gw = spectral._packed_triton(dev[0], dev[1], dev[2], True)
    for z, x in ((got, s_ * k_), (z_gk, s_ * k_.conj()), (z_gw, s_ * w_.conj())):
        y = spectral.unpacked_inverse(z.cpu().to(torch.complex128))
        expect = torch.fft.irfft(x, n=n, norm="forward")
        assert ((y - expect).abs().max() / expect.abs().max()).item() < 1e-5


def test_packing_dispatch_and_shapes():
    x, k = _half_spectrum_of_real((2, 3), 8, 18), _half_spectrum_of_real((3,), 8, 19)
    z = spectral.packed_product(x, k, False)
    assert torch.allclose(spectral.unpacked_inverse(z),
                          torch.fft.irfft(x * k, n=8, norm="forward"), atol=1e-12)
    zg, zw = spectral.packed_backward_products(x, x.flip(0), k)
    assert torch.allclose(spectral.unpacked_inverse(zw),
                          torch.fft.irfft(x * x.flip(0).conj(), n=8, norm="forward"), atol=1e-12)
    with pytest.raises(ValueError, match="ending in b"):
        spectral.packed_product(x, k[..., :3], False)
