"""Launch the four-step column kernels a fixed number of times, for a profiler to attach (GPU).

At B = 1, width 256, N1 = 32 (the 64k operator's shapes): ``rfft4_cols_triton`` (bf16 value
times bf16 gate) and ``irfft4_cols_triton`` (bf16 output times bf16 gate) at each tiling given,
and with ``--cuda`` the same two calls on the CUDA kernels (hyenadna.ops.columns); all once to
build them, then once more each: under ``ncu --launch-skip K --launch-count K`` (K = number of
launches) the profiler sees only the second, warm round. Prints what it launched.

    ncu --clock-control none --kernel-name regex:cols --launch-skip 5 --launch-count 5 \\
        python benchmarks/launch_column_kernels.py --rfft 0 --irfft 0 32 --cuda
"""

from __future__ import annotations

import argparse
import os

import torch

from hyenadna.ops import columns, conv_fft_size, fourstep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=65536)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--rfft", type=int, nargs="*", default=[0],
                    help="block_j of each forward launch (0: the package default)")
    ap.add_argument("--irfft", type=int, nargs="*", default=[0],
                    help="block_j of each inverse launch (0: the package default)")
    ap.add_argument("--cuda", action="store_true", help="also the CUDA kernels, once each")
    args = ap.parse_args()
    dev, n1 = torch.device("cuda"), 32
    n = conv_fft_size(args.length, args.length)
    v = torch.randn(1, args.channels, args.length, device=dev).bfloat16()
    gate = torch.randn_like(v)
    cols = torch.empty(1, args.channels, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=dev)
    out = torch.empty_like(v)
    launches = [("rfft", bj, lambda bj=bj: fourstep.rfft4_cols_triton(
        cols, v, gate, n, n1, block_j=bj or None)) for bj in args.rfft]
    launches += [("irfft", bj, lambda bj=bj: fourstep.irfft4_cols_triton(
        cols, n, n1, args.length, out, gate, block_j=bj or None)) for bj in args.irfft]
    if args.cuda:
        os.environ[columns.ENV] = "cuda"
        launches += [("rfft_cuda", 0, lambda: fourstep.rfft4_cols(cols, v, gate, n, n1)),
                     ("irfft_cuda", 0, lambda: fourstep.irfft4_cols(cols, n, n1, args.length, out,
                                                                    gate))]
    for _round in range(2):  # build, then the round a profiler skips to
        for _, _, launch in launches:
            launch()
        torch.cuda.synchronize()
    for kernel, bj, _ in launches:
        print(f"{kernel} block_j={bj or 'default'} L={args.length} C={args.channels} N={n}")


if __name__ == "__main__":
    main()
