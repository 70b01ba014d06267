"""Step (1) of the cluster plan: a 64k-point complex FFT per 8-CTA cluster, against cuFFT.

``probe_cluster_fft.cu`` transforms each row of 65,536 complex float32 values inside one
thread-block cluster (benchmarks/NOTES_gpu.md, the cluster plan): an 8-point DFT across the
cluster's CTAs through distributed shared memory, then an 8192-point Stockham FFT per CTA in
shared memory (hyenadna/ops/onchip_conv.cu's stages). ``cluster_fft_torch`` is its twin, step
for step; the CPU tests hold it to torch.fft in float64. On a GPU this checks the kernel against
torch.fft.fft and times both (median of CUDA-event-timed calls) for a few row counts, with the
bytes moved (one read and one write of the rows) per second. Prints a table, writes JSON.

    PYTHONPATH=. python benchmarks/probe_cluster_fft.py --out cluster_fft.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from bench_operator import copy_bandwidth, median_ms  # this folder is on sys.path as a script

from hyenadna.ops import onchip

HERE = Path(__file__).parent
CLUSTER, M = 8, 8192  # CTAs per cluster, points per CTA (ONCHIP_M below)
POINTS = CLUSTER * M
THREADS = M // 8  # radix-8 stages: M / 8 threads per CTA
SMEM = (M + M // 16) * 8  # one padded row of complex float32 (PAD in onchip_conv.cu)


def cluster_source(probe: str, bf16: bool) -> str:
    """A cluster probe's source as NVRTC gets it: onchip_conv.cu built for M = 8192, radix 8
    and the I/O type; the cluster operations; the probe's own .cu."""
    return (onchip.source(M, bf16, 8) + (HERE / "cluster_ops.cuh").read_text()
            + (HERE / probe).read_text())


def source() -> str:
    """This probe's kernel source (float32)."""
    return cluster_source("probe_cluster_fft.cu", bf16=False)


def roots(n: int, exponent: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """e^(-2 pi i exponent / n), computed in float64."""
    return torch.polar(torch.ones((), dtype=torch.float64),
                       -2 * math.pi * exponent.double() / n).to(dtype)


def cluster_fft_torch(x: torch.Tensor, cluster: int = CLUSTER) -> torch.Tensor:
    """The kernel's steps in torch: rows (..., cluster · Q) → their DFT in the kernel's
    CTA-major layout out[..., k1, k2] = X[k1 + cluster · k2]."""
    q_len = x.shape[-1] // cluster
    parts = x.unflatten(-1, (cluster, q_len))  # parts[..., p, q] = x[Q p + q]
    p = torch.arange(cluster)
    y = torch.einsum("...pq,pk->...kq", parts, roots(cluster, p[:, None] * p[None, :], x.dtype))
    y = y * roots(x.shape[-1], p[:, None] * torch.arange(q_len)[None, :], x.dtype)
    return onchip.stockham_torch(y, -1, radix=8)  # over q: [..., k1, k2]


def natural_order(out: torch.Tensor) -> torch.Tensor:
    """(..., cluster, Q) in the kernel's layout → (..., cluster · Q), X[k1 + cluster · k2]."""
    return out.transpose(-1, -2).flatten(-2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[32, 256],
                    help="rows per call (256: one per channel at d_model 256, batch 1)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device("cuda")
    kernel = torch.cuda._compile_kernel(source(), "cluster_fft")
    onchip._allow_smem(kernel, SMEM)
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "copy_tbs": copy_bandwidth(device) / 1e12, "rows": []}
    for rows in args.rows:
        torch.manual_seed(0)
        x = torch.randn(rows, POINTS, dtype=torch.complex64, device=device)
        out = torch.empty_like(x)

        def run(x=x, out=out, rows=rows) -> None:
            onchip.launch(kernel, (rows * CLUSTER, 1, 1), (THREADS, 1, 1), [x, out], device,
                          shared_mem=SMEM)

        run()
        want = torch.fft.fft(x)
        got = natural_order(out.view(rows, CLUSTER, M))
        err = ((got - want).abs().max() / want.abs().max()).item()
        ms = median_ms(run, args.reps, 3)
        cufft = median_ms(lambda x=x: torch.fft.fft(x), args.reps, 3)
        moved = 2 * rows * POINTS * 8
        if err > 1e-4:  # float32 rounding is ~1e-6 here: more is a wrong kernel, said loudly
            print(f"CHECK: the cluster FFT of {rows} rows is off by {err:.2e} of the largest "
                  f"value")
        result["rows"].append({"rows": rows, "max_err": err, "cluster_ms": ms, "cufft_ms": cufft,
                               "cluster_tbs": moved / (ms * 1e-3) / 1e12,
                               "cufft_tbs": moved / (cufft * 1e-3) / 1e12})
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    print(f"{result['device']}, torch {result['torch']}; copy {result['copy_tbs']:.2f} TB/s; "
          f"65,536-point complex64 rows, median of {args.reps}\n")
    print("| rows | max error | cluster ms (TB/s) | cuFFT ms (TB/s) |\n|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['rows']} | {r['max_err']:.1e} | {r['cluster_ms']:.4f} "
              f"({r['cluster_tbs']:.2f}) | {r['cufft_ms']:.4f} ({r['cufft_tbs']:.2f}) |")


if __name__ == "__main__":
    main()
