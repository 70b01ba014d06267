"""Packed half-length inverses against torch's irfft in the cuFFT path of the long conv (GPU).

``fftconv_fast.PACK_INVERSES`` on: the spectral products write the packed form and each real
inverse of length n runs as a complex inverse of length n/2 (``hyenadna.ops.spectral``); off:
the products in place and ``torch.fft.irfft``, which clones its input first. For each (B, L):
forward+backward of ``gated_fftconv`` (bf16 value and gates, float32 filter, skip; cuFFT
engine), both settings side by side, each checked against float32 ``gated_fftconv_ref``-style
autograd through ``fftconv``. Writes JSON, prints a table.

    PYTHONPATH=. python benchmarks/bench_packed_inverse.py --out packed.json    # GPU only
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_operator import median_ms, rel_err

from hyenadna.ops import fftconv, fftconv_fast, gated_fftconv


def inputs(batch, width, seqlen):
    g = torch.Generator(device="cuda").manual_seed(0)
    v, pre, post, dy = (torch.randn(batch, width, seqlen, device="cuda", generator=g).bfloat16()
                        for _ in range(4))
    decay = torch.exp(-torch.arange(seqlen, device="cuda") / (0.1 * seqlen + 1))
    k = torch.randn(width, seqlen, device="cuda", generator=g) * decay
    skip = torch.randn(width, device="cuda", generator=g)
    return [t.requires_grad_() for t in (v, pre, post, k, skip)], dy


def reference(leaves, dy) -> list[torch.Tensor]:
    """y and the gradients of (v, pre, post, k, skip) by autograd through float32 ``fftconv``."""
    ref_leaves = [t.detach().float().requires_grad_() for t in leaves]
    v, pre, post, k, skip = ref_leaves
    ref = fftconv(v * pre, k, skip) * post
    return [ref.detach(), *(g.detach() for g in torch.autograd.grad(
        ref, ref_leaves, dy.float()))]


def measure(batch: int, seqlen: int, width: int) -> dict:
    """Both settings on the same inputs: median fwd+bwd ms and the worst relative error."""
    leaves, dy = inputs(batch, width, seqlen)
    expected = reference(leaves, dy)

    def fn():
        return gated_fftconv(*leaves, fft_engine="cufft")

    def step():
        for t in leaves:
            t.grad = None
        fn().backward(dy)

    rec = {"B": batch, "L": seqlen, "width": width}
    try:
        for name, packed in (("irfft", False), ("packed", True)):
            fftconv_fast.PACK_INVERSES = packed
            out = fn()
            grads = torch.autograd.grad(out, leaves, dy)
            rec[f"err_{name}"] = max(rel_err(a, b) for a, b in zip((out, *grads), expected))
            del out, grads
            rec[f"ms_{name}"] = median_ms(step, reps=30, warmup=5)
    finally:
        fftconv_fast.PACK_INVERSES = True
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["1:8192", "1:16384", "8:8192", "8:16384",
                                                   "256:1024"], help="B:L")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    print(f"{torch.cuda.get_device_name()}")
    print(f"{'B':>4} {'L':>7} {'irfft ms':>9} {'packed ms':>10} {'ratio':>6} {'err irfft':>10} "
          f"{'err packed':>10}")
    for case in args.cases:
        batch, seqlen = map(int, case.split(":"))
        width = 128 if batch > 8 else args.width  # 256 × 1k at width 128: tiny-1k's shape
        rec = measure(batch, seqlen, width)
        rows.append(rec)
        print(f"{batch:>4} {seqlen:>7,} {rec['ms_irfft']:9.3f} {rec['ms_packed']:10.3f} "
              f"{rec['ms_irfft'] / rec['ms_packed']:6.2f} {rec['err_irfft']:10.1e} "
              f"{rec['err_packed']:10.1e}")
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
