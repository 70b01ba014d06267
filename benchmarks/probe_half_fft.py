"""Would half-precision cuFFT pay for the long convolution? A probe, not a fast path (GPU).

The cuFFT path moves float32 complex spectra; cuFFT also runs float16 transforms of power-of-two
sizes (torch: complex32), half the bytes per pass. For L in --lengths (B = 1, width 256,
n = 2L): the forward long convolution y = irfft(rfft(u) · rfft(k)) in float32 and in float16
(inputs pre-scaled by 1/sqrt(n), so that no partial sum of the unnormalised transforms
overflows float16's 65504), its median time (CUDA events) and its error relative to float64.
Signals are synthetic: u ~ N(0, 1) in bf16, k ~ N(0, 1) under an exponential decay (the filter
net's window).

    PYTHONPATH=. python benchmarks/probe_half_fft.py --out probe_half_fft.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_operator import median_ms, rel_err  # this folder is on sys.path when run as a script


def conv(u: torch.Tensor, k: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Causal conv of u (B, D, L) with k (D, L) through transforms of length n in dtype."""
    scale = n ** -0.5  # so that DFT(u)·DFT(k) / n = DFT(u·s)·DFT(k·s)
    u_f = torch.fft.rfft(torch.nn.functional.pad(u.to(dtype) * scale, (0, n - u.shape[-1])))
    k_f = torch.fft.rfft(torch.nn.functional.pad(k.to(dtype) * scale, (0, n - k.shape[-1])))
    if dtype == torch.float16:  # complex32 arithmetic is sparse in torch: multiply as real pairs
        a, b = torch.view_as_real(u_f).unbind(-1)
        c, d = torch.view_as_real(k_f).unbind(-1)
        y_f = torch.view_as_complex(torch.stack((a * c - b * d, a * d + b * c), -1))
    else:
        y_f = u_f * k_f
    return torch.fft.irfft(y_f, n=n, norm="forward")[..., : u.shape[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[8192, 65536, 1 << 20])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dev = torch.device("cuda")
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M"), "cells": []}
    print(res["device"])
    print(f"{'L':>9} {'fp32 ms':>8} {'fp16 ms':>8} {'speed-up':>8} {'fp32 err':>9} {'fp16 err':>9}")
    for seqlen in args.lengths:
        g = torch.Generator(device=dev).manual_seed(0)
        u = torch.randn(1, args.width, seqlen, device=dev, generator=g).bfloat16()
        decay = torch.exp(-torch.arange(seqlen, device=dev) / (0.1 * seqlen + 1))
        k = torch.randn(args.width, seqlen, device=dev, generator=g) * decay
        n = 2 * seqlen
        ref = conv(u.double(), k.double(), n, torch.float64)
        rec = {"L": seqlen}
        for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            try:
                with torch.no_grad():
                    rec[f"{name}_err"] = rel_err(conv(u, k, n, dtype).double(), ref)
                    rec[f"{name}_ms"] = median_ms(
                        lambda d=dtype, a=u, b=k, m=n: conv(a, b, m, d))
            except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
                rec[f"{name}_error"] = str(err).splitlines()[0][:200]
        res["cells"].append(rec)
        if "fp16_ms" in rec and "fp32_ms" in rec:
            print(f"{seqlen:>9,} {rec['fp32_ms']:>8.3f} {rec['fp16_ms']:>8.3f} "
                  f"{rec['fp32_ms'] / rec['fp16_ms']:>7.2f}x {rec['fp32_err']:>9.1e} "
                  f"{rec['fp16_err']:>9.1e}")
        else:
            print(f"{seqlen:>9,} {rec}")
        del u, k, ref
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
