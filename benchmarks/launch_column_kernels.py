"""Launch the four-step column kernels a fixed number of times, for a profiler to attach (GPU).

At B = 1, width 256, N1 = 32 (the 64k operator's shapes): ``rfft4_cols_triton`` (bf16 value
times bf16 gate) and ``irfft4_cols_triton`` (bf16 output times bf16 gate) at each tiling given,
and with ``--cuda`` the same two calls on the CUDA kernels (hyenadna.ops.columns); all once to
build them, then once more each: under ``ncu --launch-skip K --launch-count K`` (K = number of
launches) the profiler sees only the second, warm round. ``--split`` adds the fused split
kernels (``cols_fwd_split``, ``cols_inv_merge``) at the 1M conv's shapes (32 channels, rows of
N2 = 65536 = 8 × 8192) at each ``--split-configs`` build (tune_fourstep.py's
TILE/FWD_BLOCKS/INV_BLOCKS/CARVEOUT). Prints what it launched.

    ncu --clock-control none --kernel-name regex:cols --launch-skip 5 --launch-count 5 \\
        python benchmarks/launch_column_kernels.py --rfft 0 --irfft 0 32 --cuda
    ncu --clock-control none --kernel-name "regex:split|merge" --launch-skip 4 --launch-count 4 \\
        python benchmarks/launch_column_kernels.py --rfft --irfft --split \
        --split-configs 16/0/0/-1 16/8/5/100
"""

from __future__ import annotations

import argparse
import os

import torch
from tune_fourstep import split_build, use_split_build  # this folder is on sys.path

from hyenadna.ops import columns, conv_fft_size, fourstep


def split_launches(builds: list) -> list:
    """(name, build, launch) of the fused split kernels at each build, 1 × 32 × 1M."""
    dev, n1, seqlen = torch.device("cuda"), 32, 1 << 20
    n = conv_fft_size(seqlen, seqlen)
    v = torch.randn(1, 32, seqlen, device=dev).bfloat16()
    gate = torch.randn_like(v)
    cols = torch.empty(1, 32, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=dev)
    out = torch.empty_like(v)

    def at(build, fn):
        def launch():
            use_split_build(build)  # picks that build's module
            fn()
        return launch

    launches = []
    for build in builds:
        label = "/".join(str(x) for x in (build[0], *build[1], build[2]))
        launches += [
            ("rfft_split", label, at(build, lambda: fourstep.rfft4_cols(cols, v, gate, n, n1,
                                                                        split=True))),
            ("irfft_merge", label, at(build, lambda: fourstep.irfft4_cols(
                cols, n, n1, seqlen, out, gate, merge=True)))]
    return launches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=65536)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--rfft", type=int, nargs="*", default=[0],
                    help="block_j of each forward launch (0: the package default)")
    ap.add_argument("--irfft", type=int, nargs="*", default=[0],
                    help="block_j of each inverse launch (0: the package default)")
    ap.add_argument("--cuda", action="store_true", help="also the CUDA kernels, once each")
    ap.add_argument("--split", action="store_true",
                    help="also the fused split kernels at L = 1M, 32 channels")
    ap.add_argument("--split-configs", type=split_build, nargs="+",
                    default=[columns.split_build()])
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
    if args.split:
        launches += split_launches(args.split_configs)
    for _round in range(2):  # build, then the round a profiler skips to
        for _, _, launch in launches:
            launch()
        torch.cuda.synchronize()
    for kernel, knob, _ in launches:
        what = f"build={knob}" if "split" in kernel or "merge" in kernel else \
            f"block_j={knob or 'default'}"
        print(f"{kernel} {what}")


if __name__ == "__main__":
    main()
