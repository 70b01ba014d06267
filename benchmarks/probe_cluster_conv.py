"""Steps (2)-(3) of the cluster plan: the gated long conv at 64k per 8-CTA cluster, fwd and bwd.

``probe_cluster_conv.cu`` computes y = post · (k' ∗ (v · pre))[:L] for each (batch, channel) row
inside one thread-block cluster, and its gradients (dv, dpre, dpost, the row's dk), for FFT
length n = 131,072 (L <= 65,536): the packed real transform split 8 × 8192 across the cluster's
CTAs, the real spectrum's pair pass between mirrored CTAs, the inverse split the other way
(benchmarks/NOTES_gpu.md, the cluster plan). ``cluster_conv_forward_torch`` and
``cluster_conv_backward_torch`` are the twins, step for step; the CPU tests hold them to the
on-chip engine's twins in float64. On a GPU this compares the kernels' outputs with the four-step
engine's (the default at 64k) and times both, with the filter spectrum the kernels read timed on
its own. Prints a table, writes JSON.

    PYTHONPATH=. python benchmarks/probe_cluster_conv.py --out cluster_conv.json
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_operator import median_ms  # this folder is on sys.path as a script
from probe_cluster_fft import CLUSTER, SMEM, THREADS, M, cluster_fft_torch, cluster_source, roots

from hyenadna.ops import onchip
from hyenadna.ops.fftconv_fast import (
    gated_conv_backward,
    gated_conv_forward,
    onchip_filter_spectrum,
    pick_fourstep_n1,
)

N = 2 * CLUSTER * M  # the real FFT length: 131,072


def source() -> str:
    """The kernels' source as NVRTC gets it (bf16 I/O)."""
    return cluster_source("probe_cluster_conv.cu", bf16=True)


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


def pair_slots(cluster: int, q_len: int) -> tuple[torch.Tensor, ...]:
    """The kernel's pair pass assignment: one entry per pair (rank, k2, partner, k2m, both).
    CTA k1 takes its bins k = k1 + cluster · k2 for k2 < Q/2 (CTA 0 also Q/2); bin MT − k lies
    in CTA (cluster − k1) mod cluster at (Q − k2) mod Q (k1 = 0) or Q − 1 − k2; ``both`` is
    False where the pair is one bin (CTA 0's k2 = 0 and Q/2)."""
    parts = []
    for rank in range(cluster):
        k2 = torch.arange(q_len // 2 + 1 if rank == 0 else q_len // 2)
        k2m = (q_len - k2) % q_len if rank == 0 else q_len - 1 - k2
        partner = torch.full_like(k2, (cluster - rank) % cluster)
        parts.append((torch.full_like(k2, rank), k2, partner, k2m))
    rank, k2, partner, k2m = (torch.cat(t) for t in zip(*parts))
    return rank, k2, partner, k2m, ~((rank == 0) & (k2m == k2))


def pair_pass_torch(specs: list[torch.Tensor], op) -> list[torch.Tensor]:
    """Apply the kernel's pair pass to cluster-major spectra (..., cluster, Q): for each pair,
    op(k, e, [(zk, zm) per spectrum]) → [(out_k, out_m) per output]; outputs start as NaN, so
    a bin the assignment missed stays NaN."""
    cluster, q_len = specs[0].shape[-2:]
    mt = cluster * q_len
    rank, k2, partner, k2m, both = pair_slots(cluster, q_len)
    k = rank + cluster * k2
    e = torch.polar(torch.ones((), dtype=torch.float64), -torch.pi * k.double() / mt)
    pairs = op(k, e.to(specs[0].dtype), [(x[..., rank, k2], x[..., partner, k2m]) for x in specs])
    outs = []
    for out_k, out_m in pairs:
        out = torch.full_like(specs[0], complex("nan"))
        out[..., partner[both], k2m[both]] = out_m[..., both]
        out[..., rank, k2] = out_k
        outs.append(out)
    return outs


def _real(packed: torch.Tensor, length: int) -> torch.Tensor:
    return torch.view_as_real(cluster_ifft_torch(packed)).flatten(-2)[..., :length]


def cluster_conv_forward_torch(w: torch.Tensor, k_spec: torch.Tensor) -> torch.Tensor:
    """z = (k' ∗ w)[:L] by the forward kernel's steps: w (..., L) real, k_spec (..., MT + 1) =
    rfft(k', n) / n."""
    mt = k_spec.shape[-1] - 1
    spec = cluster_fft_torch(onchip.pack_real_torch(w, mt))  # (..., cluster, Q)

    def op(k, e, zs):
        xk, xm = onchip.unpack_values(*zs[0], e)
        return [onchip.pack_values(xk * k_spec[..., k], xm * k_spec[..., mt - k], e)]

    return _real(pair_pass_torch([spec], op)[0], w.shape[-1])


def cluster_conv_backward_torch(g: torch.Tensor, w: torch.Tensor, k_spec: torch.Tensor,
                                taps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward kernel's steps: dw (..., L) = irfft(G · conj(K'/n))[:L] and the row's
    filter gradient (..., taps) = irfft(G · conj(W))[:taps] / n, as onchip.conv_backward_torch."""
    mt = k_spec.shape[-1] - 1
    specs = [cluster_fft_torch(onchip.pack_real_torch(x, mt)) for x in (g, w)]

    def op(k, e, zs):
        gk, gm = onchip.unpack_values(*zs[0], e)
        wk, wm = onchip.unpack_values(*zs[1], e)
        return [onchip.pack_values(gk * k_spec[..., k].conj(), gm * k_spec[..., mt - k].conj(), e),
                onchip.pack_values(gk * wk.conj(), gm * wm.conj(), e)]

    dw, dk = pair_pass_torch(specs, op)
    return _real(dw, g.shape[-1]), _real(dk, taps) / (2 * mt)


def rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--length", type=int, default=65536, help="L <= 65,536")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device("cuda")
    src = source()
    fwd_kernel = torch.cuda._compile_kernel(src, "cluster_conv_fwd")
    bwd_kernel = torch.cuda._compile_kernel(src, "cluster_conv_bwd")
    onchip._allow_smem(fwd_kernel, SMEM)
    onchip._allow_smem(bwd_kernel, 2 * SMEM)
    torch.manual_seed(0)
    batch, channels, length = shape = (args.batch, args.channels, args.length)
    v, pre, post, dy = (torch.randn(shape, device=device).bfloat16() for _ in range(4))
    k = torch.randn(channels, length, device=device) / length**0.5
    rows = batch * channels
    n1 = pick_fourstep_n1(v, N)
    y = torch.empty_like(v)
    dv, dpre, dpost = (torch.empty_like(v) for _ in range(3))
    dk_rows = torch.empty(batch, channels, length, device=device)

    def spectrum() -> torch.Tensor:
        return onchip_filter_spectrum(k, None, N)  # (D, MT + 1) complex64, rfft(k) / n

    k_spec = spectrum()
    y4, z4, k_spec4 = gated_conv_forward(v, pre, post, k, None, N, for_backward=True, n1=n1)

    def cluster_fwd() -> None:
        onchip.launch(fwd_kernel, (rows * CLUSTER, 1, 1), (THREADS, 1, 1),
                      [v, pre, post, k_spec, y, length, channels], device, shared_mem=SMEM)

    def cluster_bwd() -> None:
        onchip.launch(bwd_kernel, (rows * CLUSTER, 1, 1), (THREADS, 1, 1),
                      [dy, post, z4, v, pre, k_spec, dv, dpre, dpost, dk_rows, length, channels,
                       length, 1.0 / N], device, shared_mem=2 * SMEM)

    def fourstep_fwd():  # as the cluster forward: y only (no z, no spectrum kept)
        return gated_conv_forward(v, pre, post, k, None, N, for_backward=False, n1=n1)

    def fourstep_bwd():
        return gated_conv_backward(dy, v, pre, post, k_spec4, z4, N, length,
                                   dk_dtype=torch.float32)

    cluster_fwd()
    cluster_bwd()
    dv4, dpre4, dpost4, dk4, _ = fourstep_bwd()
    errors = {"y": rel(y, y4), "dv": rel(dv, dv4), "dpre": rel(dpre, dpre4),
              "dpost": rel(dpost, dpost4), "dk": rel(dk_rows.sum(0), dk4)}
    for name, err in errors.items():
        if err > 2e-2:  # both round to bf16 (and the four-step's column DFTs run in TF32)
            print(f"CHECK: the cluster kernels' {name} is {err:.2e} (relative norm) off the "
                  f"four-step engine's")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "shape": list(shape), "rel_err_vs_fourstep": errors,
              "cluster_fwd_ms": median_ms(cluster_fwd, args.reps, 3),
              "cluster_bwd_ms": median_ms(cluster_bwd, args.reps, 3),
              "spectrum_ms": median_ms(spectrum, args.reps, 3),
              "fourstep_fwd_ms": median_ms(fourstep_fwd, args.reps, 3),
              "fourstep_bwd_ms": median_ms(fourstep_bwd, args.reps, 3)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{result['device']}, torch {result['torch']}; the gated long conv at "
          f"{' × '.join(map(str, shape))}, bf16, median of {args.reps} (ms); the four-step "
          f"forward includes its filter spectrum, the cluster one reads K'/n built apart "
          f"({result['spectrum_ms']:.3f} ms)\n")
    print("| | cluster kernels | four-step engine |\n|---|---|---|")
    print(f"| forward | {result['cluster_fwd_ms']:.3f} | {result['fourstep_fwd_ms']:.3f} |")
    print(f"| backward | {result['cluster_bwd_ms']:.3f} | {result['fourstep_bwd_ms']:.3f} |")
    print("\nrelative error vs the four-step engine: "
          + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))


if __name__ == "__main__":
    main()
