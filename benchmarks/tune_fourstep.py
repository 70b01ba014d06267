"""Tile the four-step engine's Triton column kernels, time the CUDA ones, then the long conv (GPU).

For each L (B = 1, width 256, N1 = 32; at 1M the 32-channel chunk the conv runs per call):
``rfft4_cols_triton`` (bf16 value times bf16 gate, as the forward's first stage) and
``irfft4_cols_triton`` (bf16 output times bf16 gate) at every (block_j, num_warps), and the same
two calls on the CUDA kernels (hyenadna.ops.columns): median CUDA-event time of a graph replay
and effective bandwidth (bytes each call must move / time) against the copy bandwidth. Then
forward+backward of ``fftconv_fast`` on cuFFT and on the four-step engine with the Triton and
with the CUDA column kernels (``HYENADNA_COLUMNS``) side by side, checked against float32
``fftconv``. With ``--split-configs`` (lengths whose rows are split, L > 128k): the fused split
kernels (``cols_fwd_split``, ``cols_inv_merge``) and the conv at each build, written
TILE/FWD_BLOCKS/INV_BLOCKS/CARVEOUT (``columns.SPLIT_TILE``, ``SPLIT_MIN_BLOCKS``,
``SPLIT_CARVEOUT``; ``16/0/0/-1`` is the default build); ``--skip-triton`` leaves the Triton
sweep out (its builds take minutes). ``--cols-configs FWD_BLOCKS/INV_BLOCKS ...``: the plain
CUDA column kernels and the conv at each register cap (``columns.MIN_BLOCKS``; ``0/0`` is the
compiler's choice). Writes JSON, prints tables.

    PYTHONPATH=. python benchmarks/tune_fourstep.py --out tune.json
    PYTHONPATH=. python benchmarks/tune_fourstep.py --lengths 1048576 --skip-triton \
        --split-configs 16/0/0/-1 16/8/0/100 16/8/5/100 --out split.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

import torch
from bench_operator import copy_bandwidth, floor_bytes, median_ms
from sweep_fourstep import cell, inputs

from hyenadna.ops import columns, conv_fft_size, fftconv, fftconv_fast, fourstep, rowsplit

TILINGS = list(itertools.product((16, 32, 64, 128), (2, 4, 8)))  # (block_j, num_warps)


def graphed_ms(fn) -> float:
    """Median time of one call of fn replayed from a CUDA graph: the kernel's own time, not
    its Python launch (the CUDA kernels' ctypes launcher takes longer to launch than they run)."""
    fn()  # build
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return median_ms(graph.replay)


def _operands(seqlen: int, channels: int, n1: int):
    """bf16 value and gate, the spectrum buffer, an output, and the bytes each stage moves."""
    dev = torch.device("cuda")
    n = conv_fft_size(seqlen, seqlen)
    v = torch.randn(1, channels, seqlen, device=dev).bfloat16()
    gate = torch.randn_like(v)
    cols = torch.empty(1, channels, n1 // 2 + 1, n // n1, dtype=torch.complex64, device=dev)
    spec_bytes = cols.numel() * 8
    moved = {"rfft": 2 * v.numel() * 2 + spec_bytes, "irfft": spec_bytes + 2 * v.numel() * 2}
    return n, v, gate, cols, torch.empty_like(v), moved


def split_build(text: str) -> tuple[int, tuple[int, int], int]:
    """TILE/FWD_BLOCKS/INV_BLOCKS/CARVEOUT → (tile, (fwd, inv) min blocks, carveout)."""
    try:
        tile, fwd, inv, carveout = (int(p) for p in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"split config {text!r} is not "
                                         "TILE/FWD_BLOCKS/INV_BLOCKS/CARVEOUT") from None
    return tile, (fwd, inv), carveout


def use_split_build(build: tuple[int, tuple[int, int], int] | None) -> None:
    """Set the split kernels' build knobs (the module cache is keyed on them); None: defaults."""
    columns.SPLIT_TILE, columns.SPLIT_MIN_BLOCKS, columns.SPLIT_CARVEOUT = (
        build or _DEFAULT_SPLIT_BUILD)


_DEFAULT_SPLIT_BUILD = columns.split_build()


def tune_split(seqlen: int, channels: int, n1: int, bw: float, builds: list) -> list[dict]:
    """The fused split kernels at each build (graph replays), as ``tune`` times the plain
    CUDA column kernels."""
    n, v, gate, cols, out, moved = _operands(seqlen, channels, n1)
    rows = []
    for build in builds:
        use_split_build(build)
        label = "/".join(str(x) for x in (build[0], *build[1], build[2]))
        runs = {"rfft": lambda: fourstep.rfft4_cols(cols, v, gate, n, n1, split=True),
                "irfft": lambda: fourstep.irfft4_cols(cols, n, n1, seqlen, out, gate,
                                                      merge=True)}
        for kernel, fn in runs.items():
            ms = graphed_ms(fn)
            rows.append({"L": seqlen, "kernel": kernel, "split_build": label,
                         "split_tile": build[0], "ms": ms,
                         "of_copy_bw": moved[kernel] / (ms * 1e-3) / bw})
            print(f"L={seqlen:,} C={channels} {kernel:>5} split, build {label}: {ms:.3f} ms "
                  f"({rows[-1]['of_copy_bw']:.0%} of copy bw)")
    use_split_build(None)
    return rows


def cols_build(text: str) -> tuple[int, int]:
    """FWD_BLOCKS/INV_BLOCKS → ``columns.MIN_BLOCKS``."""
    try:
        fwd, inv = (int(p) for p in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"cols config {text!r} is not "
                                         "FWD_BLOCKS/INV_BLOCKS") from None
    return fwd, inv


def tune(seqlen: int, channels: int, n1: int, bw: float, triton: bool = True,
         cols_builds: list | None = None) -> list[dict]:
    n, v, gate, cols, out, moved = _operands(seqlen, channels, n1)
    rows = []
    for bj, warps in TILINGS if triton else []:
        tiling = dict(block_j=bj, num_warps=warps)
        runs = {"rfft": lambda t=tiling: fourstep.rfft4_cols_triton(cols, v, gate, n, n1, **t),
                "irfft": lambda t=tiling: fourstep.irfft4_cols_triton(cols, n, n1, seqlen, out,
                                                                      gate, **t)}
        for kernel, fn in runs.items():
            try:
                ms = graphed_ms(fn)
            except Exception as err:  # a tiling Triton cannot build (registers, shared memory)
                rows.append({"L": seqlen, "kernel": kernel, **tiling,
                             "error": str(err).splitlines()[0][:160]})
                continue
            rows.append({"L": seqlen, "kernel": kernel, **tiling, "ms": ms,
                         "of_copy_bw": moved[kernel] / (ms * 1e-3) / bw})
    # the CUDA kernels, through the dispatch that picks them
    runs = {"rfft": lambda: fourstep.rfft4_cols(cols, v, gate, n, n1),
            "irfft": lambda: fourstep.irfft4_cols(cols, n, n1, seqlen, out, gate)}
    os.environ[columns.ENV] = "cuda"
    default = tuple(columns.MIN_BLOCKS)
    for build in [None, *(cols_builds or [])]:
        columns.MIN_BLOCKS = default if build is None else build
        for kernel, fn in runs.items():
            ms = graphed_ms(fn)
            rows.append({"L": seqlen, "kernel": kernel, "engine": "cuda", "ms": ms,
                         "of_copy_bw": moved[kernel] / (ms * 1e-3) / bw}
                        | ({} if build is None else {"min_blocks": list(build)}))
            if build is not None:
                print(f"L={seqlen:,} C={channels} {kernel:>5} CUDA, min blocks {build}: "
                      f"{ms:.3f} ms ({rows[-1]['of_copy_bw']:.0%} of copy bw)")
    columns.MIN_BLOCKS = default
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[65536, 1 << 20])
    ap.add_argument("--n1", type=int, default=32)
    ap.add_argument("--out", required=True)
    ap.add_argument("--skip-triton", action="store_true", help="no Triton tiling sweep or conv")
    ap.add_argument("--cols-configs", type=cols_build, nargs="*", default=[],
                    help="time the plain CUDA column kernels and the conv at these register "
                         "caps (FWD_BLOCKS/INV_BLOCKS)")
    ap.add_argument("--split-configs", type=split_build, nargs="*", default=[],
                    help="time the fused split kernels and the conv at these builds "
                         "(TILE/FWD_BLOCKS/INV_BLOCKS/CARVEOUT)")
    args = ap.parse_args()
    bw = copy_bandwidth(torch.device("cuda"))
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M"), "copy_bytes_per_s": bw, "tilings": [],
           "conv": []}
    print(f"{res['device']}  copy {bw / 1e9:.0f} GB/s")
    for seqlen in args.lengths:
        channels = 256 if seqlen <= 1 << 17 else 32  # the conv's chunk at long L
        rows = tune(seqlen, channels, args.n1, bw, not args.skip_triton, args.cols_configs)
        res["tilings"] += rows
        knobs = ("block_j", "num_warps")
        n2 = conv_fft_size(seqlen, seqlen) // args.n1
        builds = args.split_configs if rowsplit.row_length(n2) else []
        if builds:
            res["tilings"] += tune_split(seqlen, channels, args.n1, bw, builds)
        for kernel in ("rfft", "irfft") if not args.skip_triton else ():
            ok = sorted((r for r in rows if r["kernel"] == kernel and "ms" in r
                         and "engine" not in r), key=lambda r: r["ms"])
            cuda = next(r for r in rows if r["kernel"] == kernel and r.get("engine") == "cuda"
                        and "min_blocks" not in r)
            tile, warps = ((fourstep.RFFT_TILE, fourstep.RFFT_WARPS) if kernel == "rfft"
                           else (fourstep.IRFFT_TILE, fourstep.IRFFT_WARPS))
            bj = fourstep._block_j(args.n1 // 2, 1 << 30, tile)
            dflt = next((r for r in ok if (r["block_j"], r["num_warps"]) == (bj, warps)), None)
            print(f"L={seqlen:,} C={channels} {kernel:>5}: CUDA {cuda['ms']:.3f} ms "
                  f"({cuda['of_copy_bw']:.0%} of copy bw); Triton best {ok[0]['ms']:.3f} ms "
                  f"({ok[0]['of_copy_bw']:.0%}) "
                  + " ".join(f"{k}={ok[0][k]}" for k in knobs)
                  + ("" if dflt is None else f", default {dflt['ms']:.3f} ms "
                     f"({dflt['of_copy_bw']:.0%})") + "; 5 best: "
                  + ", ".join(f"{r['ms']:.3f}" for r in ok[:5]))
        # the conv on cuFFT and on the four-step engine with either column kernels, same inputs
        leaves, dy = inputs(1, 256, seqlen)
        ref_leaves = [t.detach().float().requires_grad_() for t in leaves]
        ref_out = fftconv(*ref_leaves)
        reference = [ref_out.detach(), *(g.detach() for g in torch.autograd.grad(
            ref_out, ref_leaves, dy.float()))]
        del ref_out, ref_leaves
        floor_ms = floor_bytes("conv", 1, seqlen, 256) / bw * 1e3
        variants = [("cufft", "cufft", "cuda", None),
                    ("fourstep, Triton columns", "fourstep", "triton", None),
                    ("fourstep, CUDA columns", "fourstep", "cuda", None)]
        if args.skip_triton:
            del variants[1]
        variants += [(f"fourstep, CUDA columns, min blocks {c[0]}/{c[1]}", "fourstep", "cuda",
                      ("cols", c)) for c in args.cols_configs]
        variants += [("fourstep, CUDA columns, split build "
                      + "/".join(str(x) for x in (b[0], *b[1], b[2])), "fourstep", "cuda", b)
                     for b in builds]
        default_cols = tuple(columns.MIN_BLOCKS)
        for name, engine, cols, build in variants:
            os.environ[columns.ENV] = cols
            columns.MIN_BLOCKS = build[1] if build and build[0] == "cols" else default_cols
            use_split_build(None if build and build[0] == "cols" else build)
            rec = cell(lambda e=engine, x=leaves: fftconv_fast(*x, fft_engine=e), leaves, dy,
                       reference)
            rec.update(L=seqlen, variant=name, floor_ms=floor_ms)
            res["conv"].append(rec)
            print(f"   conv fwd+bwd {name:>26}: {rec['ms']:.3f} ms (fwd {rec['fwd_ms']:.3f}), "
                  f"{rec['ms'] / floor_ms:.1f}x floor, rel err {rec['rel_err']:.1e}")
        os.environ.pop(columns.ENV)
        use_split_build(None)
        columns.MIN_BLOCKS = default_cols
        del leaves, dy, reference
        torch.cuda.empty_cache()
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
