"""The row split (hyenadna.ops.rowsplit): long four-step rows as P rows the on-chip kernels hold.

On a CPU machine: the torch twins against ``torch.fft`` in float64 (a row's DFT is the split,
then DFTs of length M, in split order; the merge inverts it), the filter's spectrum in split
order from ``fourstep.rfft4``, a whole row convolution through split → on-chip row twin →
merge, the switch, and the kernels' source building where nvcc is at hand. On a GPU (marked
`gpu`): the kernels against the twins, and the long convolution with the split on against the
float32 reference. Inputs are synthetic.
"""

import re
import shutil
import subprocess

import pytest
import torch
from numerics import max_rel

from hyenadna.ops import fftconv, fourstep, onchip, rowsplit
from hyenadna.ops.fftconv_fast import conv_fft_size, gated_fftconv

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
P = rowsplit.PARTS


def _crand(shape, seed, dtype=torch.complex128, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.complex128).to(device, dtype)


@pytest.mark.parametrize("m", [16, 512])
def test_split_then_dfts_of_m_is_the_rows_dft_in_split_order(m):
    x = _crand((3, 2, P * m), 0)
    s = rowsplit.split_rows_torch(x).reshape(3, 2, P, m)
    spec = torch.fft.fft(s, dim=-1).reshape(3, 2, P * m)
    assert max_rel(spec, rowsplit.to_split_order(torch.fft.fft(x))) < 1e-13
    # split order: [k1·M + k2] holds X[k1 + P·k2]
    assert torch.equal(rowsplit.to_split_order(torch.arange(P * m))[: 3 * m: m],
                       torch.arange(3))


@pytest.mark.parametrize("m", [16, 512])
def test_merge_after_inverse_dfts_of_m_is_the_rows_inverse_dft(m):
    y = _crand((2, P * m), 1)  # a row spectrum in natural order
    q = torch.fft.ifft(rowsplit.to_split_order(y).reshape(2, P, m), dim=-1, norm="forward")
    out = rowsplit.merge_rows_torch(q.reshape(2, P * m))
    assert max_rel(out, torch.fft.ifft(y, norm="forward")) < 1e-13


def test_row_conv_through_the_split_equals_the_rows_conv():
    # the engine's row stage with the split, on the twins: split, the on-chip kernel's maths
    # on rows of M with the filter's spectrum in split order, merge
    n, n1, seqlen = 1 << 14, 32, 5000  # N2 = 512 = 8 × 64
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2, 3, seqlen, generator=g, dtype=torch.float64)
    k = torch.randn(1, 3, seqlen, generator=g, dtype=torch.float64)
    n2 = n // n1
    k_nat = fourstep.rfft4(k, None, n, n1, 1.0 / n)[0]
    k_split = fourstep.rfft4(k, None, n, n1, 1.0 / n, split_rows=True)[0]
    assert max_rel(k_split, rowsplit.to_split_order(k_nat)) < 1e-13
    into = torch.zeros(2, 3, n1 // 2 + 1, n // n1, dtype=torch.complex128)  # a chunk's buffer
    spec = fourstep.rfft4(k, None, n, n1, 1.0 / n, out=into[1:], split_rows=True)
    assert spec.data_ptr() == into[1].data_ptr() and torch.equal(into[1], k_split)
    cols = torch.empty(2, 3, n1 // 2 + 1, n2, dtype=torch.complex128)
    fourstep.rfft4_cols(cols, a, None, n, n1)
    expect = torch.fft.ifft(torch.fft.fft(cols, dim=-1) * k_nat, dim=-1, norm="forward")
    parts = (2, 3, n1 // 2 + 1, P, n2 // P)
    rows = onchip.row_conv_forward_torch(rowsplit.split_rows_torch(cols).reshape(parts),
                                         k_split.reshape(parts[1:]))
    got = rowsplit.merge_rows_torch(rows.reshape(cols.shape))
    assert max_rel(got, expect) < 1e-12
    # and to the end: the causal convolution's first samples
    y = fourstep.irfft4_cols_torch(got, n, n1, seqlen)
    ref = torch.fft.irfft(torch.fft.rfft(a, n) * torch.fft.rfft(k, n), n)[..., :seqlen]
    assert max_rel(y, ref) < 1e-12


def test_row_length_and_switch(monkeypatch):
    assert rowsplit.row_length(onchip.MAX_M) is None  # held unsplit already
    assert rowsplit.row_length(65536) == 8192 and rowsplit.row_length(16384) == 2048
    assert rowsplit.row_length(onchip.MAX_M * P * 2) is None  # M past what a row kernel holds
    monkeypatch.delenv(rowsplit.ENV, raising=False)
    assert rowsplit.enabled()  # on by default (measured faster at 256k and 1M)
    monkeypatch.setenv(rowsplit.ENV, "0")
    assert not rowsplit.enabled()
    monkeypatch.setenv(rowsplit.ENV, "1")
    assert rowsplit.enabled()
    assert not rowsplit.used(torch.empty(0, 65536, dtype=torch.complex64))  # CPU: never


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_source_builds_for_sm90_without_spills(tmp_path):
    src = tmp_path / "rowsplit.cu"
    src.write_text(rowsplit.source())
    done = subprocess.run(["nvcc", "-arch=sm_90a", "-cubin", "-Xptxas", "-v", "-o",
                           str(tmp_path / "rs.cubin"), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert re.findall(r"(\d+) bytes spill stores", done.stderr) == ["0", "0"]


@gpu
@pytest.mark.gpu
def test_kernels_match_twins():
    dev = torch.device("cuda")
    x = _crand((5, P * 2048), 3, torch.complex64, dev)
    ref = rowsplit.split_rows_torch(x.cpu().to(torch.complex128))
    rowsplit.split_rows(x)
    assert max_rel(x, ref) < 1e-6
    ref = rowsplit.merge_rows_torch(x.cpu().to(torch.complex128))
    rowsplit.merge_rows(x)
    assert max_rel(x, ref) < 1e-6


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("seqlen", [150_000, 1 << 19])
def test_long_conv_with_split_rows_matches_reference(seqlen, monkeypatch):
    # L > 128k: four-step rows past 8192 points; with the split on, against the float32
    # reference (value and gradients) and against the split off
    dev = torch.device("cuda")
    monkeypatch.setenv(rowsplit.ENV, "1")
    g = torch.Generator().manual_seed(4)
    v, pre, post = (torch.randn(1, 4, seqlen, generator=g).to(dev, torch.bfloat16)
                    .requires_grad_() for _ in range(3))
    k = (torch.randn(4, seqlen, generator=g) / seqlen ** 0.5).to(dev).requires_grad_()
    D = torch.randn(4, generator=g).to(dev).requires_grad_()
    n2 = conv_fft_size(seqlen, seqlen) // 32
    assert rowsplit.used(torch.empty(0, n2, dtype=torch.complex64, device=dev))
    dy = torch.randn(1, 4, seqlen, generator=g).to(dev, torch.bfloat16)
    leaves = (v, pre, post, k, D)
    results = {}
    for mode in ("1", "0"):
        monkeypatch.setenv(rowsplit.ENV, mode)
        y = gated_fftconv(*leaves, fft_engine="fourstep")
        results[mode] = [y.detach(), *torch.autograd.grad(y, leaves, dy)]
    # float32 reference on torch.fft (the direct convolution is too slow at this length)
    ref_leaves = [t.detach().float().requires_grad_() for t in leaves]
    rv, rpre, rpost, rk, rD = ref_leaves
    y_ref = fftconv(rv * rpre, rk, rD) * rpost
    ref = [y_ref.detach(), *torch.autograd.grad(y_ref, ref_leaves, dy.float())]
    for got, want, off in zip(results["1"], ref, results["0"]):
        assert max_rel(got.float(), want.double()) < 2e-2
        assert max_rel(got.float(), off.double()) < 1e-2  # the row stage is all that differs


@pytest.mark.parametrize("batch", [1, 2])
def test_whole_convolution_with_split_rows_on_the_twins(batch, monkeypatch):
    # The engine's plumbing with the split forced on a CPU, in float64: the column stages
    # store and read split order (split=/merge=), the filter's spectrum comes in that order,
    # and the row stage runs the row kernels' twins on rows of M. The row kernels' limits are
    # shrunk so that a short signal has split rows (N2 = 512 = 8 × 64).
    monkeypatch.setattr(onchip, "MIN_M", 16)
    monkeypatch.setattr(onchip, "MAX_M", 64)
    monkeypatch.setattr(rowsplit, "used",
                        lambda spec: rowsplit.row_length(spec.shape[-1]) is not None)
    splits = []
    real_split = rowsplit.split_rows_torch
    monkeypatch.setattr(rowsplit, "split_rows_torch",
                        lambda x: splits.append(x.shape) or real_split(x))
    seqlen = 5000
    assert conv_fft_size(seqlen, seqlen) // 32 == 512
    g = torch.Generator().manual_seed(5)
    v, pre, post = (torch.randn(batch, 3, seqlen, generator=g, dtype=torch.float64)
                    .requires_grad_() for _ in range(3))
    k = (torch.randn(3, seqlen, generator=g, dtype=torch.float64) / seqlen ** 0.5
         ).requires_grad_()
    D = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_()
    dy = torch.randn(batch, 3, seqlen, generator=g, dtype=torch.float64)
    leaves = (v, pre, post, k, D)
    y = gated_fftconv(*leaves, fft_engine="fourstep")
    got = [y.detach(), *torch.autograd.grad(y, leaves, dy)]
    assert len(splits) == 4  # the filter, the signal, and the backward's g and w
    y_ref = fftconv(v * pre, k, D) * post
    want = [y_ref.detach(), *torch.autograd.grad(y_ref, leaves, dy)]
    for a, b in zip(got, want):
        assert max_rel(a, b) < 1e-10
