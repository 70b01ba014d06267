"""The on-chip engine against the cuFFT engine: forward+backward of the gated long conv (GPU).

For each (B, L): ``gated_fftconv`` (bf16 value and gates, float32 filter, skip) on
``fft_engine="cufft"`` and ``"onchip"`` side by side, on the same inputs in the same run, each
checked against autograd through float32 ``fftconv``; and the on-chip kernels alone (forward,
backward) at stage radix 8 and 16, timed inside CUDA graphs, against the bytes they must move
(bf16 rows in and out, K'/n read, dk written) at the card's copy bandwidth. Writes JSON,
prints a table.

    PYTHONPATH=. python benchmarks/bench_onchip.py --out onchip.json    # GPU only
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_operator import copy_bandwidth, median_ms, rel_err
from bench_packed_inverse import inputs, reference

from hyenadna.ops import gated_fftconv, onchip
from hyenadna.ops.fftconv_fast import _filter_spectrum, conv_fft_size


def graph_ms(fn, calls: int = 20) -> float:
    """Device time of one fn() call: ``calls`` calls captured in one CUDA graph, replayed (the
    kernels are launched through ctypes, whose ~20 µs host cost would otherwise be timed)."""
    fn()  # compiles the module on first use
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    return median_ms(graph.replay, reps=20, warmup=3) / calls


def kernel_times(leaves, dy, n) -> dict:
    """The two kernels alone (no K'/n transform, no dk sum) at each stage radix, and the bytes
    they must move."""
    v, pre, post, k, skip = (t.detach() for t in leaves)
    k_spec = _filter_spectrum(k, skip, n, torch.float32)
    z, y = torch.empty_like(v), torch.empty_like(v)
    dv, dpre = torch.empty_like(v), torch.empty_like(v)
    dk = torch.empty(v.shape[0], v.shape[1], k.shape[1], device="cuda")
    rec = {}
    default = dict(onchip.STAGE_RADIX)
    try:
        for radix in (8, 16):
            onchip.STAGE_RADIX.update(fwd=radix, bwd=radix)
            rec[f"kernel_fwd_ms_r{radix}"] = graph_ms(
                lambda: onchip.forward(v, pre, post, k_spec, z, y))
            rec[f"kernel_bwd_ms_r{radix}"] = graph_ms(
                lambda: onchip.backward(dy, post, v, pre, k_spec, dv, dpre, dk, n))
    finally:
        onchip.STAGE_RADIX.update(default)
    row = v.numel() * 2  # one bf16 (B, D, L) tensor
    spec = k_spec.numel() * 8  # K'/n, read once (later batch rows may find it in L2)
    rec["fwd_bytes"] = 3 * row + 2 * row + spec  # v, pre, post in; z, y out
    rec["bwd_bytes"] = 4 * row + 2 * row + spec + dk.numel() * 4  # dy, post, v, pre; dv, dpre
    rec["kernel_fwd_ms"] = min(rec["kernel_fwd_ms_r8"], rec["kernel_fwd_ms_r16"])
    rec["kernel_bwd_ms"] = min(rec["kernel_bwd_ms_r8"], rec["kernel_bwd_ms_r16"])
    return rec


def measure(batch: int, seqlen: int, width: int) -> dict:
    leaves, dy = inputs(batch, width, seqlen)
    expected = reference(leaves, dy)
    rec = {"B": batch, "L": seqlen, "width": width}
    for engine in ("cufft", "onchip"):
        def fn(engine=engine):
            return gated_fftconv(*leaves, fft_engine=engine)

        def step(fn=fn):
            for t in leaves:
                t.grad = None
            fn().backward(dy)

        out = fn()
        grads = torch.autograd.grad(out, leaves, dy)
        rec[f"err_{engine}"] = max(rel_err(a, b) for a, b in zip((out, *grads), expected))
        del out, grads
        rec[f"ms_{engine}"] = median_ms(step, reps=30, warmup=5)
    rec.update(kernel_times(leaves, dy, conv_fft_size(seqlen, seqlen)))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=[
        "1:1024", "1:2048", "1:4096", "1:8192", "8:1024", "8:2048", "8:4096", "8:8192",
        "256:1024"], help="B:L")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    bandwidth = copy_bandwidth(torch.device("cuda"))
    print(f"{torch.cuda.get_device_name()}, copy bandwidth {bandwidth / 1e12:.2f} TB/s")
    print(f"{'B':>4} {'L':>6} {'cufft ms':>9} {'onchip ms':>10} {'ratio':>6} {'err cufft':>10} "
          f"{'err onchip':>10} | kernels ms: {'fwd r8':>7} {'fwd r16':>7} {'bwd r8':>7} "
          f"{'bwd r16':>7} | % of floor: {'fwd':>4} {'bwd':>4}")
    rows = []
    for case in args.cases:
        batch, seqlen = map(int, case.split(":"))
        width = 128 if batch > 8 else args.width  # 256 × 1k at width 128: tiny-1k's shape
        rec = measure(batch, seqlen, width)
        rec["fwd_floor_frac"] = rec["fwd_bytes"] / bandwidth / (rec["kernel_fwd_ms"] * 1e-3)
        rec["bwd_floor_frac"] = rec["bwd_bytes"] / bandwidth / (rec["kernel_bwd_ms"] * 1e-3)
        rows.append(rec)
        print(f"{batch:>4} {seqlen:>6,} {rec['ms_cufft']:9.3f} {rec['ms_onchip']:10.3f} "
              f"{rec['ms_cufft'] / rec['ms_onchip']:6.2f} {rec['err_cufft']:10.1e} "
              f"{rec['err_onchip']:10.1e} |             {rec['kernel_fwd_ms_r8']:7.4f} "
              f"{rec['kernel_fwd_ms_r16']:7.4f} {rec['kernel_bwd_ms_r8']:7.4f} "
              f"{rec['kernel_bwd_ms_r16']:7.4f} |             {100 * rec['fwd_floor_frac']:3.0f}% "
              f"{100 * rec['bwd_floor_frac']:3.0f}%")
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "copy_bandwidth": bandwidth, "date": time.strftime("%Y-%m-%d %H:%M"),
                   "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
