"""Where the four-step forward column kernel's time goes: an ablation on the GPU (issue 6).

``fourstep._rfft4_cols_kernel`` writes the (N1/2 + 1, N2) float32 half spectrum of a gated bf16
row; on an H100 it ran at 24-29% of copy bandwidth after tuning (results/fourstep/tune_h100.txt),
and its 4 calls were 0.87 ms of the 3.8 ms of kernels in the 64k operator. This script times a
copy of that kernel with single pieces switched off or swapped, side by side in one run:

    full        the kernel as it was at the start of the sixth session (twiddles by sin/cos in
                the kernel, two strided stores, rows on grid axis 0)
    tw_table    twiddles read from a precomputed (N1/2 + 1, N2) complex table (L2-resident)
    no_twiddle  twiddle product skipped (wrong output: timing only)
    no_dot      column DFT skipped, x stored as if it were the spectrum (timing only)
    pairs       real and imaginary parts stored as one joined pair
    *_swap      column blocks on grid axis 0
    *_cs        streaming stores (cache_modifier ".cs")
    *_dfttab    the column DFT block read from a small cos/sin table instead of sin/cos per program

and the package's kernels themselves (``rfft4_cols_triton``; ``irfft4_cols_triton`` with a
gated bf16 output) at the same tilings,

plus a torch copy of the same bytes (the floor). Writes JSON, prints a table.

    PYTHONPATH=. python benchmarks/probe_cols.py --out probe_cols.json     # GPU only
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import triton
import triton.language as tl
from bench_operator import copy_bandwidth, median_ms

from hyenadna.ops import conv_fft_size, fourstep

VARIANTS = ("full", "pairs_swap", "pairs_swap_dfttab", "no_twiddle", "no_dot")
FLAGS = {  # variant: (TW, DOT, PAIRS, SWAP, CS)
    "full": (0, True, False, False, False), "tw_table": (1, True, False, False, False),
    "no_twiddle": (2, True, True, False, False), "no_dot": (0, False, True, False, False),
    "pairs": (0, True, True, False, False), "pairs_swap": (0, True, True, True, False),
    "pairs_cs": (0, True, True, False, True), "pairs_swap_cs": (0, True, True, True, True),
    "pairs_swap_dfttab": (0, True, True, True, False)}


@triton.jit
def _angle(m, period: tl.constexpr):
    m = tl.where(m > period // 2, m - period, m)
    return m.to(tl.float32) * (6.283185307179586 / period)


@triton.jit
def _probe_kernel(out_ptr, a_ptr, b_ptr, tw_ptr, dft_ptr, L, sa_c, sb_c, so_r, so_k,
                  N: tl.constexpr, N2: tl.constexpr, HALF: tl.constexpr, ROWS: tl.constexpr,
                  BJ: tl.constexpr, TW: tl.constexpr, DOT: tl.constexpr, PAIRS: tl.constexpr,
                  SWAP: tl.constexpr, CS: tl.constexpr, DFTTAB: tl.constexpr = False,
                  N1: tl.constexpr = 32):
    # a copy of fourstep._rfft4_cols_kernel (time-contiguous a and b, no bias, bf16 rounding)
    # with TW: 0 sin/cos, 1 table, 2 none; DOT: column DFT on/off; PAIRS: joined stores;
    # SWAP: column blocks on grid axis 0 (rows on axis 1); CS: streaming stores
    if SWAP:
        r = tl.program_id(1).to(tl.int64)
        jb = tl.program_id(0)
    else:
        r = tl.program_id(0).to(tl.int64)
        jb = tl.program_id(1)
    j1 = tl.arange(0, ROWS)[:, None]
    j2 = jb * BJ + tl.arange(0, BJ)[None, :]
    t = (j1 * N2 + j2).to(tl.int64)
    mask = t < L
    x = tl.load(a_ptr + r * sa_c + t, mask=mask, other=0.0).to(tl.float32)
    x = x * tl.load(b_ptr + r * sb_c + t, mask=mask, other=0.0).to(tl.float32)
    x = x.to(tl.bfloat16).to(tl.float32)
    k1 = tl.arange(0, HALF)[:, None]
    if DOT and DFTTAB:  # the (HALF, ROWS) DFT block read from a (2, HALF, N1) cos/sin table
        at = dft_ptr + k1 * N1 + tl.arange(0, ROWS)[None, :]
        sr = tl.dot(tl.load(at), x, input_precision="tf32")
        si = -tl.dot(tl.load(at + HALF * N1), x, input_precision="tf32")
    elif DOT:
        ph = _angle((k1 * tl.arange(0, ROWS)[None, :]) % (2 * HALF), 2 * HALF)
        sr = tl.dot(tl.cos(ph), x, input_precision="tf32")
        si = -tl.dot(tl.sin(ph), x, input_precision="tf32")
    else:
        sr = x
        si = x * 0.5
    if TW == 0:
        th = _angle((k1 * j2) % N, N)
        c = tl.cos(th)
        s = tl.sin(th)
        pr = sr * c + si * s
        pi = si * c - sr * s
    elif TW == 1:
        tw = tw_ptr + 2 * (k1 * N2 + j2)
        c = tl.load(tw)
        s = -tl.load(tw + 1)
        pr = sr * c + si * s
        pi = si * c - sr * s
    else:
        pr = sr
        pi = si
    base = out_ptr + r * so_r + 2 * j2
    if PAIRS:
        part = tl.arange(0, 2)[None, None, :]
        ptr = base[:, :, None] + k1[:, :, None] * so_k + part
        if CS:
            tl.store(ptr, tl.join(pr, pi), cache_modifier=".cs")
        else:
            tl.store(ptr, tl.join(pr, pi))
    else:
        tl.store(base + k1 * so_k, pr)
        tl.store(base + k1 * so_k + 1, pi)
    sgn = tl.where(j1 % 2 == 0, 1.0, -1.0)
    nyq = tl.sum(x * sgn, axis=0)[None, :]
    th = _angle((HALF * j2) % N, N)
    tl.store(base + HALF * so_k, nyq * tl.cos(th))
    tl.store(base + HALF * so_k + 1, -nyq * tl.sin(th))


def probe(seqlen: int, channels: int, n1: int, bw: float, tilings) -> list[dict]:
    dev = torch.device("cuda")
    n = conv_fft_size(seqlen, seqlen)
    half, n2 = n1 // 2, n // n1
    a = torch.randn(1, channels, seqlen, device=dev).bfloat16()
    b = torch.randn_like(a)
    spec = torch.empty(1, channels, half + 1, n2, dtype=torch.complex64, device=dev)
    sv = torch.view_as_real(spec)
    _, tw, _ = fourstep._dft_tables(n, n1, torch.float32, dev)
    twv = torch.view_as_real(tw.contiguous())
    ang = 2 * torch.pi * ((torch.arange(half)[:, None] * torch.arange(n1)[None, :]) % n1) / n1
    dft = torch.stack([ang.double().cos(), ang.double().sin()]).float().to(dev)  # (2, HALF, N1)
    rows_in = min(fourstep._rows_pow2(seqlen, n2), max(16, n1))
    moved = 2 * a.numel() * 2 + spec.numel() * 8
    ref = torch.empty_like(spec)
    fourstep.rfft4_cols_triton(ref, a, b, n, n1)
    out = []
    for name in VARIANTS:
        tw_mode, dot, pairs, swap, cs = FLAGS[name]
        for bj, warps in tilings:
            bj = min(bj, n2)
            grid = (n2 // bj, channels) if swap else (channels, n2 // bj)
            table = name.endswith("dfttab")

            def run(bj=bj, warps=warps, tw_mode=tw_mode, dot=dot, pairs=pairs, swap=swap, cs=cs,
                    grid=grid, dfttab=table):
                _probe_kernel[grid](
                    sv, a, b, twv, dft, seqlen, a.stride(1), b.stride(1), sv.stride(1),
                    sv.stride(2), N=n, N2=n2, HALF=half, ROWS=rows_in, BJ=bj, TW=tw_mode,
                    DOT=dot, PAIRS=pairs, SWAP=swap, CS=cs, DFTTAB=dfttab, N1=n1,
                    num_warps=warps)
            try:
                ms = median_ms(run, reps=20, warmup=3)
            except Exception as err:  # a tiling Triton cannot build
                out.append({"L": seqlen, "variant": name, "block_j": bj, "num_warps": warps,
                            "error": str(err).splitlines()[0][:120]})
                continue
            err = None
            if FLAGS[name][:2] in ((0, True), (1, True)):
                err = ((spec - ref).abs().max() / ref.abs().max()).item()
            out.append({"L": seqlen, "variant": name, "block_j": bj, "num_warps": warps,
                        "ms": ms, "of_copy_bw": moved / (ms * 1e-3) / bw, "max_rel_err": err})
    for bj, warps in tilings:  # the package's kernel, for an A/B against the copies above
        bj = min(bj, n2)
        ms = median_ms(lambda bj=bj, warps=warps: fourstep.rfft4_cols_triton(
            spec, a, b, n, n1, block_j=bj, num_warps=warps), reps=20, warmup=3)
        out.append({"L": seqlen, "variant": "rfft_shipped", "block_j": bj, "num_warps": warps,
                    "ms": ms, "of_copy_bw": moved / (ms * 1e-3) / bw,
                    "max_rel_err": ((spec - ref).abs().max() / ref.abs().max()).item()})
    y = torch.empty_like(a)
    for bj, warps in tilings:
        bj = min(bj, n2)
        ms = median_ms(lambda bj=bj, warps=warps: fourstep.irfft4_cols_triton(
            spec, n, n1, seqlen, y, b, block_j=bj, num_warps=warps), reps=20, warmup=3)
        out.append({"L": seqlen, "variant": "irfft_shipped", "block_j": bj, "num_warps": warps,
                    "ms": ms, "of_copy_bw": moved / (ms * 1e-3) / bw, "max_rel_err": None})
    src = torch.empty(moved // 4, device=dev)
    dst = torch.empty_like(src)
    out.append({"L": seqlen, "variant": "copy_same_bytes",
                "ms": median_ms(lambda: dst.copy_(src), reps=20, warmup=3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n1", type=int, default=32)
    ap.add_argument("--cases", nargs="+", default=["65536:256", "1048576:32"],
                    help="L:channels (the conv runs 32-channel chunks at 1M)")
    ap.add_argument("--tilings", nargs="+", default=["16:1", "16:2", "16:4", "32:1", "32:2",
                                                     "32:4", "64:4"], help="BJ:warps")
    args = ap.parse_args()
    bw = copy_bandwidth(torch.device("cuda"))
    tilings = [tuple(map(int, t.split(":"))) for t in args.tilings]
    rows = []
    for seqlen, channels in (tuple(map(int, c.split(":"))) for c in args.cases):
        rows += probe(seqlen, channels, args.n1, bw, tilings)
    best = {}
    for r in rows:
        if "ms" in r and "block_j" in r:
            key = (r["L"], r["variant"])
            if key not in best or r["ms"] < best[key]["ms"]:
                best[key] = r
    print(f"{torch.cuda.get_device_name()}  copy {bw / 1e9:.0f} GB/s")
    print(f"{'L':>9} {'variant':>16} {'best ms':>8} {'of copy bw':>10} {'BJ':>4} {'warps':>5} err")
    for r in rows:
        if r["variant"] == "copy_same_bytes":
            print(f"{r['L']:>9,} {'copy_same_bytes':>16} {r['ms']:8.3f}")
    for (seqlen, name), r in sorted(best.items()):
        print(f"{seqlen:>9,} {name:>16} {r['ms']:8.3f} {r['of_copy_bw']:10.0%} {r['block_j']:>4} "
              f"{r['num_warps']:>5} {r['max_rel_err']}")
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "date": time.strftime("%Y-%m-%d %H:%M"), "copy_bytes_per_s": bw,
                   "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
