"""Where the Hyena operator's forward+backward time goes: a CUDA kernel breakdown per length.

For each L: one HyenaOperator (d_model 256, bf16 autocast, fast path), forward+backward under
torch.profiler; CUDA time summed by kernel name, top rows printed, all rows written to JSON.
Also times the pieces on their own (median of CUDA-event-timed calls): the filter net, the
short conv as the model runs it (Triton on CUDA; torch shifted multiply-adds beside it)
and the whole operator.

    PYTHONPATH=. python benchmarks/profile_operator.py --lengths 8192 65536 1048576 --out prof.json
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_operator import median_ms  # this folder is on sys.path when run as a script
from torch.profiler import ProfilerActivity, profile

from hyenadna.config import ModelConfig
from hyenadna.model import HyenaOperator
from hyenadna.ops import short_conv_t, short_conv_t_backward

COPY_OPS = ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::mul", "aten::mul_",
            "aten::add", "aten::add_", "aten::sum", "aten::fill_", "aten::zero_")
"""torch ops whose CUDA time ``profile_rows`` also reports per input shape: the casts, copies
and elementwise passes between the package's own kernels (which shape each one moves says
where it comes from)."""


def _device_ms(ev) -> float:
    return (getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)) / 1e3


def profile_rows(step) -> tuple[list[dict], list[dict]]:
    """CUDA time per kernel name of one call of step (after one warm-up call), largest first;
    and per (torch op in ``COPY_OPS``, input shapes and dtypes), largest first."""
    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                 record_shapes=True) as prof:
        step()
        torch.cuda.synchronize()
    rows = []
    for ev in prof.key_averages():
        if ev.device_type != torch.autograd.DeviceType.CPU and _device_ms(ev) > 0:  # kernels
            rows.append({"kernel": ev.key[:110], "calls": ev.count, "ms": _device_ms(ev)})
    ops = [{"op": ev.key, "shapes": str(ev.input_shapes)[:160], "calls": ev.count,
            "ms": _device_ms(ev)}
           for ev in prof.key_averages(group_by_input_shape=True)
           if ev.key in COPY_OPS and _device_ms(ev) > 0]
    return sorted(rows, key=lambda r: -r["ms"]), sorted(ops, key=lambda r: -r["ms"])


def operator_step(op, u, dy):
    def step():
        for p in (u, *op.parameters()):  # as a training step after zero_grad(): no += kernels
            p.grad = None
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = op(u)
        y.backward(dy)
    return step


def short_conv_step(batch, width, seqlen):
    """The model's short conv, forward and its hand-written backward (Triton on CUDA)."""
    x = torch.randn(batch, seqlen, width, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(width, 1, 3, device="cuda")
    b = torch.randn(width, device="cuda")
    dy = torch.randn(batch, width, seqlen, device="cuda", dtype=torch.bfloat16)
    return lambda: (short_conv_t(x, w, b), short_conv_t_backward(dy, x, w))


def shift_conv(proj, w, b):
    """Comparison only: the 3-tap causal depthwise conv as shifted torch multiply-adds."""
    xp = torch.nn.functional.pad(proj.transpose(1, 2), (2, 0))  # (B, C, L + 2)
    seqlen = proj.shape[1]
    w = w[:, 0]
    return (xp[..., :seqlen] * w[:, 0, None] + xp[..., 1:seqlen + 1] * w[:, 1, None]
            + xp[..., 2:] * w[:, 2, None] + b[:, None])


def shift_conv_step(batch, width, seqlen):
    x = torch.randn(batch, seqlen, width, device="cuda", dtype=torch.bfloat16,
                    requires_grad=True)
    w = torch.randn(width, 1, 3, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    b = torch.randn(width, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dy = torch.randn(batch, width, seqlen, device="cuda", dtype=torch.bfloat16)
    return lambda: shift_conv(x, w, b).backward(dy)


def filter_step(op, seqlen):
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = op.filter_fn.filter(seqlen)
        h.float().sum().backward()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[8192, 65536, 1 << 20])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cells": []}
    for seqlen in args.lengths:
        cfg = ModelConfig(d_model=256, n_layer=1, l_max=seqlen + 2, vocab_size=16)
        op = HyenaOperator(cfg).cuda()
        u = torch.randn(args.batch, seqlen, 256, device="cuda", requires_grad=True)
        # bf16 as the operator's output (and bench_operator's dy): a float32 dy cost one cast
        # kernel more, 0.53 ms at 1M, in the profiles up to s18a
        dy = torch.randn(args.batch, seqlen, 256, device="cuda", dtype=torch.bfloat16)
        step = operator_step(op, u, dy)
        cell = {"L": seqlen, "batch": args.batch,
                "operator_ms": median_ms(step, warmup=3),
                "filter_ms": median_ms(filter_step(op, seqlen), warmup=3),
                "short_conv_ms": median_ms(short_conv_step(args.batch, 768, seqlen),
                                           warmup=3),
                "shift_conv_ms": median_ms(shift_conv_step(args.batch, 768, seqlen),
                                           warmup=3)}
        rows, ops = profile_rows(step)
        cell["kernels"], cell["copy_ops"] = rows, ops
        cell["kernel_ms_total"] = sum(r["ms"] for r in rows)
        results["cells"].append(cell)
        print(f"\n== L={seqlen} B={args.batch}: operator {cell['operator_ms']:.2f} ms, filter "
              f"{cell['filter_ms']:.2f} ms, short conv (768 ch) {cell['short_conv_ms']:.2f} ms "
              f"(torch shifts {cell['shift_conv_ms']:.2f} ms), "
              f"kernels sum {cell['kernel_ms_total']:.2f} ms over {len(rows)} names")
        for r in rows[: args.top]:
            print(f"{r['ms']:9.3f} ms {r['calls']:4d}x  {r['kernel']}")
        print("  casts, copies and elementwise torch ops, by input shape:")
        for r in ops[: args.top]:
            print(f"{r['ms']:9.3f} ms {r['calls']:4d}x  {r['op']} {r['shapes']}")
        del op, u, dy
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
