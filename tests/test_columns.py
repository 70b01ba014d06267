"""The CUDA column kernels of the four-step engine (hyenadna.ops.columns) against the torch twins.

On a CPU machine: the generated source (its DFT tables), the row counts the kernels are built
for, the switch and the dispatch's fallback. On a GPU (marked `gpu`, skipped without CUDA):
``fourstep.rfft4_cols`` / ``irfft4_cols`` through the CUDA kernels against the float64 twins
(float32 arithmetic: a tight tolerance, not TF32's), over strided bf16 views, gates, a bias,
ragged lengths and partial tiles, and against the Triton kernels. Inputs are synthetic.
"""

import math
import re
import shutil
import subprocess

import pytest
import torch
from numerics import max_rel

from hyenadna.ops import columns, fourstep, rowsplit

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


def _rand(shape, seed, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(device, dtype)


@pytest.mark.parametrize("n1", [32, 64])
def test_source_tables_are_the_unit_circle(n1):
    src = columns.source(n1, 16)
    assert f"#define COLS_N1 {n1}\n" in src and "#define COLS_ROWS 16\n" in src
    cos = [float(v) for v in re.findall(r"([-+.\de]+)f", re.search(r"COLS_COS \{(.*)\}", src)[1])]
    sin = [float(v) for v in re.findall(r"([-+.\de]+)f", re.search(r"COLS_SIN \{(.*)\}", src)[1])]
    assert len(cos) == len(sin) == n1
    for m in range(n1):
        assert abs(cos[m] - math.cos(2 * math.pi * m / n1)) < 1e-9
        assert abs(sin[m] - math.sin(2 * math.pi * m / n1)) < 1e-9
    # the quarter turns exactly: the Nyquist row's sines must vanish, not be 1e-16
    for m in range(0, n1, n1 // 4):
        assert (cos[m], sin[m]) in ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))


def _ptxas(tmp_path, text: str) -> dict[str, tuple[int, int]]:
    """nvcc -Xptxas -v over a generated source for sm_90a: {kernel: (registers, spill bytes)}."""
    src = tmp_path / "cols.cu"
    src.write_text(text)
    done = subprocess.run(["nvcc", "-arch=sm_90a", "-cubin", "-Xptxas", "-v", "-o",
                           str(tmp_path / "cols.cubin"), str(src)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    found = re.findall(r"Compiling entry function '(\w+)'.*?(\d+) bytes spill stores.*?"
                       r"Used (\d+) registers", done.stderr, re.S)
    return {name: (int(regs), int(spill)) for name, spill, regs in found}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_source_builds_for_sm90_without_spills(tmp_path, monkeypatch):
    # where a CUDA compiler is at hand (no GPU needed): the generated source compiles, and
    # no kernel spills at the default builds but the fused inverse, whose 6-block register cap
    # (columns.SPLIT_MIN_BLOCKS, faster on an H100 for it) costs a few hundred bytes
    # (packed: the spectra as bf16 pairs, fourstep.PACKED; fft: the generated column FFTs,
    # whose forward kernels spill 20 / 8 bytes at their register caps, nvcc 13). The fused
    # forward's 9-block cap, tuned for the generated FFTs, costs the direct DFT's 24 bytes.
    plain = {"cols_fwd", "cols_inv"}
    for packed, fft in ((False, False), (True, False), (True, True), (True, "split")):
        monkeypatch.setattr(columns, "FFT_COLUMNS", bool(fft))
        monkeypatch.setattr(columns, "FFT_SPLIT", fft == "split")
        for split, names in ((False, plain),
                             (True, plain | {"cols_fwd_split", "cols_inv_merge"})):
            built = _ptxas(tmp_path, columns.source(32, 16, split, packed))
            assert set(built) == names, built
            for name, (_, spill) in built.items():
                allowed = (512 if name == "cols_inv_merge" else
                           32 if fft or name == "cols_fwd_split" else 0)
                assert spill <= allowed, (name, spill, packed, fft)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_split_min_blocks_reach_the_build(tmp_path, monkeypatch):
    # SPLIT_MIN_BLOCKS caps each split kernel's registers for that many 128-thread blocks per
    # SM (65536 / (8 * 128) = 64, 65536 / (5 * 128) = 102); the plain kernels keep theirs
    monkeypatch.setattr(columns, "SPLIT_MIN_BLOCKS", (8, 5))
    regs = {name: r for name, (r, _) in _ptxas(tmp_path, columns.source(32, 16, True)).items()}
    assert regs["cols_fwd_split"] <= 64 and regs["cols_inv_merge"] <= 102, regs
    assert regs["cols_inv"] > 102, regs


def test_rows_held_rounds_up_to_a_power_of_two():
    n, n1 = 1 << 17, 32  # N2 = 4096
    assert fourstep._rows_held(65536, n, n1) == 16
    assert fourstep._rows_held(65537, n, n1) == 32
    assert fourstep._rows_held(4096 * 3, n, n1) == 4
    assert fourstep._rows_held(1, n, n1) == 1
    assert fourstep._rows_held(n, n, n1) == 32


def test_switch_and_cpu_fallback(monkeypatch):
    spec = torch.zeros(1, 2, 17, 64, dtype=torch.complex64)
    a = torch.zeros(1, 2, 1000)
    assert not columns.supported(32, spec, a)  # a CPU tensor: never the CUDA kernels
    monkeypatch.setenv(columns.ENV, "Triton ")
    assert not columns.enabled()
    monkeypatch.setenv(columns.ENV, "cuda")
    assert columns.enabled()
    monkeypatch.setenv(columns.ENV, "cufft")
    with pytest.raises(ValueError, match="HYENADNA_COLUMNS"):
        columns.enabled()
    # the dispatch on a CPU tensor still gives the twins' answer
    monkeypatch.delenv(columns.ENV)
    a = _rand((1, 2, 1000), 0)
    fourstep.rfft4_cols(spec, a, None, 2048, 32)
    assert max_rel(spec, fourstep.rfft4_cols_torch(a.double(), None, 2048, 32)) < 1e-6


# (signal length, FFT length): full tiles, a ragged end (24 rows → 32), a short filter past n/2,
# a tile of one row
SIZES = [(1024, 2048), (1500, 2048), (3000, 4096), (40, 2048), (65536, 1 << 17)]


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("seqlen,n", SIZES)
@pytest.mark.parametrize("min_blocks", [None, (8, 6)])
def test_cuda_columns_match_twins_in_float32(seqlen, n, min_blocks, monkeypatch):
    # float32 signal with a bias on tap 0 and a scale (the filter's transform), batch 2; at the
    # default build and with the registers capped (columns.MIN_BLOCKS, tune_fourstep.py
    # --cols-configs; the inverse spills there)
    if min_blocks is not None:
        monkeypatch.setattr(columns, "MIN_BLOCKS", min_blocks)
    dev, n1 = torch.device("cuda"), 32
    a, bias = _rand((2, 3, seqlen), 3, device=dev), _rand((3,), 4, device=dev)
    cols = torch.empty(2, 3, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=dev)
    assert columns.supported(n1, cols, a)
    fourstep.rfft4_cols(cols, a, None, n, n1, 0.5, bias)
    assert not columns._failed and columns._module(n1, fourstep._rows_held(seqlen, n, n1), dev)
    ref = fourstep.rfft4_cols_torch(a.double().cpu(), None, n, n1, 0.5, bias.double().cpu())
    assert max_rel(cols, ref) < 2e-6
    q = torch.fft.ifft(torch.fft.fft(cols, dim=-1), dim=-1, norm="forward")
    out = torch.empty(2, 3, seqlen, device=dev)
    fourstep.irfft4_cols(q, n, n1, seqlen, out, scale=1.0 / n)
    assert max_rel(out, fourstep.irfft4_cols_torch(q.cpu().to(torch.complex128), n, n1, seqlen,
                                                1.0 / n)) < 2e-6
    expect = a.double().cpu() * 0.5
    expect[..., 0] += bias.double().cpu() * 0.5
    assert max_rel(out, expect) < 1e-5
    # fewer output samples than the spectrum holds: only the first seqlen // 3 are written
    short = torch.full((2, 3, seqlen), 7.0, device=dev)
    fourstep.irfft4_cols(q, n, n1, seqlen // 3, short[..., : seqlen // 3], scale=1.0 / n)
    assert max_rel(short[..., : seqlen // 3], expect[..., : seqlen // 3]) < 1e-5
    assert (short[..., seqlen // 3:] == 7.0).all()


@gpu
@pytest.mark.gpu
def test_cuda_columns_fuse_bf16_gates_over_strided_views():
    # bf16 value and gate as (B, L, C)-transposed views; two gated bf16 outputs, one of them
    # transposed: the kernels take any strides
    dev = torch.device("cuda")
    batch, channels, seqlen, n, n1 = 2, 5, 900, 2048, 32
    v = _rand((batch, seqlen, channels), 5, torch.bfloat16, dev).transpose(1, 2)
    gate = _rand((batch, channels, seqlen), 6, torch.bfloat16, dev)
    cols = torch.empty(batch, channels, 17, 64, dtype=torch.complex64, device=dev)
    fourstep.rfft4_cols(cols, v, gate, n, n1)
    w = (v * gate).double().cpu()  # the product rounded to bf16, as torch rounds it
    assert max_rel(cols, fourstep.rfft4_cols_torch(w, None, n, n1)) < 2e-6
    q = torch.fft.ifft(torch.fft.fft(cols, dim=-1), dim=-1, norm="forward")
    g1, g2 = (_rand((batch, channels, seqlen), s, torch.bfloat16, dev) for s in (7, 8))
    o1 = torch.empty(batch, seqlen, channels, dtype=torch.bfloat16, device=dev)
    o2 = torch.empty(batch, channels, seqlen, dtype=torch.bfloat16, device=dev)
    assert columns.supported(n1, q, o1, g1, o2, g2)
    fourstep.irfft4_cols(q, n, n1, seqlen, o1.transpose(1, 2), g1, o2, g2, 1.0 / n)
    for out, g in ((o1.transpose(1, 2), g1), (o2, g2)):
        assert max_rel(out, w * g.double().cpu()) < 2**-8  # one bf16 rounding
    # mixed I/O types are not the CUDA kernels' (one type per call): Triton's take them
    assert not columns.supported(n1, q, o1, g1, o2.float(), g2)


@gpu
@pytest.mark.gpu
def test_cuda_and_triton_columns_agree(monkeypatch):
    # the escape hatch gives the Triton kernels, which agree within their TF32 rounding
    dev, seqlen, n, n1 = torch.device("cuda"), 3000, 4096, 32
    v, gate = (_rand((2, 4, seqlen), s, torch.bfloat16, dev) for s in (1, 2))
    out = {}
    for engine in ("cuda", "triton"):
        monkeypatch.setenv(columns.ENV, engine)
        cols = torch.empty(2, 4, 17, n // n1, dtype=torch.complex64, device=dev)
        fourstep.rfft4_cols(cols, v, gate, n, n1)
        y = torch.empty(2, 4, seqlen, dtype=torch.bfloat16, device=dev)
        q = torch.fft.ifft(torch.fft.fft(cols, dim=-1), dim=-1, norm="forward")
        fourstep.irfft4_cols(q, n, n1, seqlen, y, gate, scale=1.0 / n)
        out[engine] = (cols, y)
    assert max_rel(out["triton"][0], out["cuda"][0].cpu().to(torch.complex128)) < 2e-3
    assert max_rel(out["triton"][1], out["cuda"][1].double().cpu()) < 2e-2


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("fft_split", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seqlen", [150_000, 1 << 17])
def test_fused_split_kernels_match_twins(seqlen, dtype, fft_split, monkeypatch):
    # cols_fwd_split = the column stage, then rowsplit's split; cols_inv_merge = the merge,
    # then the inverse column stage (with its gates). N2 = 8192 or 16384: M = 1024 or 2048.
    # (fft_split: the split and merge DFTs as dftgen's generated FFTs, columns.FFT_SPLIT)
    monkeypatch.setattr(columns, "FFT_SPLIT", fft_split)
    dev, n1 = torch.device("cuda"), 32
    n = 1 << (2 * seqlen - 1).bit_length()
    v, gate = (_rand((2, 3, seqlen), s, dtype, dev) for s in (11, 12))
    cols = torch.empty(2, 3, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=dev)
    fourstep.rfft4_cols(cols, v, gate, n, n1, 0.5, split=True)
    assert columns._module(n1, fourstep._rows_held(seqlen, n, n1), dev, True)
    w = (v * gate).double().cpu()  # the product rounded as torch rounds it
    ref = rowsplit.split_rows_torch(fourstep.rfft4_cols_torch(w, None, n, n1, 0.5))
    assert max_rel(cols, ref) < 2e-6
    g1 = _rand((2, 3, seqlen), 13, dtype, dev)
    o1 = torch.empty(2, 3, seqlen, dtype=dtype, device=dev)
    o2 = torch.empty(2, 3, seqlen, dtype=dtype, device=dev)
    before = cols.clone()
    fourstep.irfft4_cols(cols, n, n1, seqlen, o1, g1, o2, None, 1.0 / n, merge=True)
    assert torch.equal(cols, before)  # the merge reads q, it does not overwrite it
    y = fourstep.irfft4_cols_torch(rowsplit.merge_rows_torch(cols.cpu().to(torch.complex128)),
                                   n, n1, seqlen, 1.0 / n)
    tol = 2e-6 if dtype == torch.float32 else 2**-8  # one rounding to bf16
    assert max_rel(o2, y) < tol
    assert max_rel(o1, y * g1.double().cpu()) < tol


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("tile, min_blocks, carveout", [(8, (0, 0), -1), (32, (0, 0), -1),
                                                      (16, (0, 0), -1)])
def test_fused_split_kernels_at_other_builds(tile, min_blocks, carveout, monkeypatch):
    # the block tile, the register cap and the carveout are build-time knobs
    # (tune_fourstep.py --split-configs): every build the tune tries gives the twins' result
    # (the default build is tested above)
    monkeypatch.setattr(columns, "SPLIT_TILE", tile)
    monkeypatch.setattr(columns, "SPLIT_MIN_BLOCKS", min_blocks)
    monkeypatch.setattr(columns, "SPLIT_CARVEOUT", carveout)
    dev, n1, seqlen = torch.device("cuda"), 32, 1 << 17
    n = 2 * seqlen
    v = _rand((1, 2, seqlen), 14, torch.float32, dev)
    cols = torch.empty(1, 2, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=dev)
    fourstep.rfft4_cols(cols, v, None, n, n1, split=True)
    ref = rowsplit.split_rows_torch(fourstep.rfft4_cols_torch(v.double().cpu(), None, n, n1))
    assert max_rel(cols, ref) < 2e-6
    out = torch.empty_like(v)
    fourstep.irfft4_cols(cols, n, n1, seqlen, out, scale=1.0 / n, merge=True)
    y = fourstep.irfft4_cols_torch(rowsplit.merge_rows_torch(cols.cpu().to(torch.complex128)),
                                   n, n1, seqlen, 1.0 / n)
    assert max_rel(out, y) < 2e-6
