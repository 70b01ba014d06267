"""Step (2) of the cluster plan: the gated long convolution's forward at 64k per 8-CTA cluster.

``probe_cluster_conv.cu`` computes y = post · (k' ∗ (v · pre))[:L] for each (batch, channel) row
inside one thread-block cluster, for FFT length n = 131,072 (L <= 65,536): the packed real
transform split 8 × 8192 across the cluster's CTAs, the real spectrum's pair pass between
mirrored CTAs, the inverse split the other way (benchmarks/NOTES_gpu.md, the cluster plan).
``cluster_conv_forward_torch`` is its twin, step for step; the CPU tests hold it to the on-chip
engine's twin in float64. On a GPU this compares the kernel's y with the four-step engine's (the
default at 64k) and times both, with the filter spectrum the kernel reads timed on its own.
Prints a table, writes JSON.

    PYTHONPATH=. python benchmarks/probe_cluster_conv.py --out cluster_conv.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from bench_operator import median_ms  # this folder is on sys.path as a script
from probe_cluster_fft import CLUSTER, SMEM, THREADS, M, cluster_fft_torch, roots

from hyenadna.ops import onchip
from hyenadna.ops.fftconv_fast import gated_conv_forward, onchip_filter_spectrum, pick_fourstep_n1

HERE = Path(__file__).parent
N = 2 * CLUSTER * M  # the real FFT length: 131,072


def source() -> str:
    """The kernel's source as NVRTC gets it (bf16 I/O)."""
    return ("#define ONCHIP_M 8192\n#define ONCHIP_R 8\n#define ONCHIP_BF16 1\n"
            + (HERE.parent / "hyenadna" / "ops" / "onchip_conv.cu").read_text()
            + (HERE / "cluster_ops.cuh").read_text()
            + (HERE / "probe_cluster_conv.cu").read_text())


def cluster_major(x: torch.Tensor, cluster: int = CLUSTER) -> torch.Tensor:
    """(..., cluster · Q) natural order → (..., cluster, Q) with [k1, k2] = x[k1 + cluster · k2]
    (the layout in which CTA k1 holds its bins)."""
    return x.unflatten(-1, (-1, cluster)).transpose(-1, -2)


def cluster_ifft_torch(spec: torch.Tensor) -> torch.Tensor:
    """The kernel's inverse: spec (..., cluster, Q) in the cluster-major layout → the unscaled
    inverse DFT in natural order (..., cluster · Q). Each CTA's Q-point inverse, the twiddles
    e^(2 pi i k1 q / MT), then the 8-point inverse DFT across the CTAs for every q."""
    cluster, q_len = spec.shape[-2:]
    k1 = torch.arange(cluster)
    vals = onchip.stockham_torch(spec, 1, radix=8)  # [..., k1, q]
    vals = vals * roots(cluster * q_len, -(k1[:, None] * torch.arange(q_len)[None, :]),
                         spec.dtype)
    z = torch.einsum("...kq,kp->...pq", vals,
                     roots(cluster, -(k1[:, None] * k1[None, :]), spec.dtype))
    return z.flatten(-2)  # [p, q] → m = Q p + q


def cluster_pair_forward_torch(spec: torch.Tensor, k_spec: torch.Tensor) -> torch.Tensor:
    """The kernel's pair pass on the cluster-major spectrum (..., cluster, Q): CTA k1's bin
    k = k1 + cluster · k2 beside bin MT − k, which CTA (cluster − k1) mod cluster holds at
    (Q − k2) mod Q (k1 = 0) or Q − 1 − k2 (otherwise); the same index maps as the .cu."""
    cluster, q_len = spec.shape[-2:]
    mt = cluster * q_len
    rank = torch.arange(cluster)[:, None]
    k2 = torch.arange(q_len)[None, :]
    k = rank + cluster * k2  # (cluster, Q)
    partner = ((cluster - rank) % cluster).expand(-1, q_len)
    k2m = torch.where(rank == 0, (q_len - k2) % q_len, q_len - 1 - k2)
    zm = spec[..., partner, k2m]
    e = torch.polar(torch.ones((), dtype=torch.float64), -torch.pi * k.double() / mt)
    e = e.to(spec.dtype)
    # onchip_conv.cu's unpack_pair and pack_pair, keeping bin k's value
    zk = spec
    xk = 0.5 * ((zk + zm.conj()) - 1j * (zk - zm.conj()) * e)
    xm = 0.5 * ((zm + zk.conj()) - 1j * (zm - zk.conj()) * (-e.conj()))
    yk, ym = xk * k_spec[..., k], xm * k_spec[..., mt - k]
    return (yk + ym.conj()) + 1j * (yk - ym.conj()) * e.conj()


def cluster_conv_forward_torch(w: torch.Tensor, k_spec: torch.Tensor) -> torch.Tensor:
    """z = (k' ∗ w)[:L] by the kernel's steps: w (..., L) real, k_spec (..., MT + 1) =
    rfft(k', n) / n."""
    mt = k_spec.shape[-1] - 1
    spec = cluster_fft_torch(onchip.pack_real_torch(w, mt))  # (..., cluster, Q)
    packed = cluster_pair_forward_torch(spec, k_spec)
    return torch.view_as_real(cluster_ifft_torch(packed)).flatten(-2)[..., : w.shape[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--length", type=int, default=65536, help="L <= 65,536")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device("cuda")
    kernel = torch.cuda._compile_kernel(source(), "cluster_conv_fwd")
    onchip._allow_smem(kernel, 2 * SMEM)
    torch.manual_seed(0)
    shape = (args.batch, args.channels, args.length)
    v, pre, post = (torch.randn(shape, device=device).bfloat16() for _ in range(3))
    k = torch.randn(args.channels, args.length, device=device) / args.length**0.5
    y = torch.empty_like(v)
    rows = args.batch * args.channels

    def spectrum() -> torch.Tensor:
        return onchip_filter_spectrum(k, None, N)  # (D, MT + 1) complex64, rfft(k) / n

    k_spec = spectrum()

    def cluster() -> None:
        onchip.launch(kernel, (rows * CLUSTER, 1, 1), (THREADS, 1, 1),
                      [v, pre, post, k_spec, y, args.length, args.channels], device,
                      shared_mem=2 * SMEM)

    def fourstep() -> torch.Tensor:
        return gated_conv_forward(v, pre, post, k, None, N, for_backward=False,
                                  n1=pick_fourstep_n1(v, N))[0]

    cluster()
    want = fourstep().float()
    err = ((y.float() - want).norm() / want.norm()).item()
    if err > 2e-2:  # both round to bf16 (and the four-step's column DFTs run in TF32)
        print(f"CHECK: the cluster convolution is {err:.2e} (relative norm) off the four-step's")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "shape": list(shape), "rel_err_vs_fourstep": err,
              "cluster_ms": median_ms(cluster, args.reps, 3),
              "spectrum_ms": median_ms(spectrum, args.reps, 3),
              "fourstep_ms": median_ms(fourstep, args.reps, 3)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{result['device']}, torch {result['torch']}; forward of the gated long conv at "
          f"{' × '.join(map(str, shape))}, bf16, median of {args.reps}\n")
    print("| cluster kernel | + its filter spectrum | four-step forward (spectrum included) "
          "| rel. error vs four-step |\n|---|---|---|---|")
    print(f"| {result['cluster_ms']:.3f} ms | {result['cluster_ms'] + result['spectrum_ms']:.3f} "
          f"| {result['fourstep_ms']:.3f} | {err:.1e} |")


if __name__ == "__main__":
    main()
