"""The four-step FFT engine's split N1 × N2, against the cuFFT engine, in one run (GPU).

For each L (B = 1, d_model 256, bf16 value, float32 filter, skip term): forward+backward time of
``fftconv_fast`` on the cuFFT engine and on the four-step engine at every valid N1, its row stage
on chip (``onchip``'s row kernels, where N2 <= onchip.MAX_M) and on cuFFT side by side, each
checked against the plain float32 ``fftconv`` (relative error of y and every gradient), and the
bytes floor of the long conv (bench_operator.floor_bytes) at the copy bandwidth measured here.
Then a per-kernel CUDA profile of both engines at each --profile-lengths L. Writes JSON, prints
a table.

    PYTHONPATH=. python benchmarks/sweep_fourstep.py --out sweep.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_operator import copy_bandwidth, env_set, floor_bytes, median_ms, rel_err
from profile_operator import profile_rows

from hyenadna.ops import conv_fft_size, fftconv, fftconv_fast, onchip
from hyenadna.ops.fftconv_fast import pick_fourstep_n1


def inputs(batch, width, seqlen):
    g = torch.Generator(device="cuda").manual_seed(0)
    u = torch.randn(batch, width, seqlen, device="cuda", generator=g).bfloat16()
    decay = torch.exp(-torch.arange(seqlen, device="cuda") / (0.1 * seqlen + 1))
    k = torch.randn(width, seqlen, device="cuda", generator=g) * decay
    skip = torch.randn(width, device="cuda", generator=g)
    dy = torch.randn(batch, width, seqlen, device="cuda", generator=g).bfloat16()
    return [t.requires_grad_() for t in (u, k, skip)], dy


def cell(fn, leaves, dy, reference):
    out = fn()
    grads = torch.autograd.grad(out, leaves, dy)
    err = max(rel_err(a, b) for a, b in zip((out, *grads), reference))

    def step():
        for t in leaves:
            t.grad = None
        fn().backward(dy)

    def forward():
        with torch.no_grad():
            fn()
    ms, fwd = median_ms(step), median_ms(forward)
    return {"ms": ms, "fwd_ms": fwd, "rel_err": err}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[8192, 65536, 1 << 20])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--n1", type=int, nargs="+", default=[32, 64, 128, 256], help="splits")
    ap.add_argument("--rows", nargs="+", default=["onchip", "cufft"],
                    choices=["onchip", "cufft"], help="four-step row stages to time")
    ap.add_argument("--row-sm-threads", type=int, nargs="+", default=[onchip.ROW_SM_THREADS],
                    help="onchip.ROW_SM_THREADS values to time the row kernels at")
    ap.add_argument("--profile-lengths", type=int, nargs="*", default=[65536, 1 << 20])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    bw = copy_bandwidth(torch.device("cuda"))
    default_sm_threads = onchip.ROW_SM_THREADS
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M"), "copy_bytes_per_s": bw, "cells": []}
    print(f"{res['device']}  copy {bw / 1e9:.0f} GB/s")
    print(f"{'L':>9} {'engine':>29} {'fwd+bwd ms':>10} {'fwd ms':>8} {'x floor':>8} {'rel err':>8}")
    for seqlen in args.lengths:
        leaves, dy = inputs(args.batch, args.width, seqlen)
        ref_leaves = [t.detach().float().requires_grad_() for t in leaves]
        ref_out = fftconv(*ref_leaves)
        reference = [ref_out.detach(), *(g.detach() for g in torch.autograd.grad(
            ref_out, ref_leaves, dy.float()))]
        del ref_out, ref_leaves
        n = conv_fft_size(seqlen, seqlen)
        floor_ms = floor_bytes("conv", args.batch, seqlen, args.width) / bw * 1e3
        engines = [("cufft", None, "cufft", None)]
        for n1 in (n1 for n1 in args.n1 if n1 <= n // 16):
            if "onchip" in args.rows and onchip.MIN_M <= n // n1 <= onchip.MAX_M:
                engines += [("fourstep", n1, "onchip", t) for t in args.row_sm_threads]
            if "cufft" in args.rows:
                engines.append(("fourstep", n1, "cufft", None))
        default_n1 = pick_fourstep_n1(leaves[0], n, "fourstep")
        for engine, n1, rows, sm_threads in engines:
            fn = lambda e=engine, s=n1, x=leaves: fftconv_fast(*x, fft_engine=e, fourstep_n1=s)
            onchip.ROW_SM_THREADS = default_sm_threads if sm_threads is None else sm_threads
            try:
                with env_set(onchip.ROWS_ENV, "1" if rows == "onchip" else "0"):
                    rec = cell(fn, leaves, dy, reference)
            except torch.cuda.OutOfMemoryError:
                rec = {"status": "OOM"}
            onchip.ROW_SM_THREADS = default_sm_threads
            rec.update(L=seqlen, engine=engine, n1=n1, rows=rows, row_sm_threads=sm_threads,
                       default=n1 == default_n1, floor_ms=floor_ms)
            res["cells"].append(rec)
            name = engine if n1 is None else f"4step {n1}x{n // n1} {rows}"
            name += "" if sm_threads is None else f" {sm_threads}"
            if "ms" in rec:
                print(f"{seqlen:>9,} {name:>29} {rec['ms']:>10.3f} {rec['fwd_ms']:>8.3f} "
                      f"{rec['ms'] / floor_ms:>8.1f} {rec['rel_err']:>8.1e}"
                      + ("  (default split)" if rec["default"] and n1 else ""))
            torch.cuda.empty_cache()
        del reference
    # where each engine's time goes (the four-step at its default split), per length
    res["profiles"] = []
    for seqlen in args.profile_lengths:
        leaves, dy = inputs(args.batch, args.width, seqlen)
        n = conv_fft_size(seqlen, seqlen)
        for engine in ("cufft", "fourstep"):
            rows, _ = profile_rows(lambda e=engine, x=leaves, g=dy:
                                fftconv_fast(*x, fft_engine=e).backward(g))
            n1 = pick_fourstep_n1(leaves[0], n, engine)
            res["profiles"].append({"L": seqlen, "engine": engine, "n1": n1, "kernels": rows})
            print(f"\nprofile at L={seqlen:,}, {engine}" + (f" N1={n1}" if n1 else "")
                  + f": {sum(r['ms'] for r in rows):.3f} ms of kernels")
            for r in rows[:10]:
                print(f"{r['ms']:9.3f} ms {r['calls']:4d}x  {r['kernel']}")
        del leaves, dy
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
