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
