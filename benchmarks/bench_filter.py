"""The implicit filter fused (hyenadna.ops.implicit_filter) vs plain autograd, side by side.

Three parts, all d_model 256 (filter order 64, emb_dim 5, w = 10: the released configs):

- accuracy: the taps and every parameter gradient of each path against float64 (relative
  error: norm of the difference over the norm of the float64 value), at L = 8k;
- tune (--tune): the fused kernels' launch shapes and dot precisions, forward+backward time;
- time: per L, forward+backward time (median of CUDA-event-timed calls) and peak memory of
  ``HyenaFilter.filter_t`` under bf16 autocast, plain (torch ops, ~50 kernels) and fused; then
  the whole Hyena operator (batch 1, fast path) with either filter, eager and as CUDA graphs.

Prints markdown tables, writes JSON.

    PYTHONPATH=. python benchmarks/bench_filter.py --tune --out filter.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import time

import torch
from bench_operator import median_ms  # this folder is on sys.path when run as a script
from profile_operator import profile_rows
from triton.errors import TritonError

from hyenadna.config import ModelConfig
from hyenadna.model import HyenaOperator
from hyenadna.ops import implicit_filter as imf

FWD_KNOBS = {"FWD_BLOCK_L": [32, 64, 128], "FWD_D_BLOCKS": [1, 2, 4], "FWD_WARPS": [4, 8]}
BWD_KNOBS = {"BWD_BLOCK_L": [16, 32, 64], "BWD_WARPS": [4, 8], "BWD_PROGRAMS_PER_SM": [1, 2, 4]}
# second round (after the first's table, benchmarks/results/filter/tune_h100.txt): more warps
# per program and loop-invariant weights held in registers
BWD_KNOBS_2 = {"BWD_BLOCK_L": [16, 32], "BWD_WARPS": [8, 16], "BWD_HOIST_WEIGHTS": [False, True]}
# third round (sixteenth session): the backward's loop software-pipelined (imf.BWD_STAGES)
BWD_KNOBS_3 = {"BWD_STAGES": [1, 2, 3], "BWD_BLOCK_L": [16, 32]}


@contextlib.contextmanager
def filter_kind(kind: str):
    """'plain': the torch ops (the fused op switched off for the block); 'fused': as shipped."""
    saved = imf.use_triton
    if kind == "plain":
        imf.use_triton = lambda x: False
    try:
        yield
    finally:
        imf.use_triton = saved


@contextlib.contextmanager
def knobs(values: dict):
    saved = {k: getattr(imf, k) for k in values}
    for k, v in values.items():
        setattr(imf, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(imf, k, v)


def peak_gib(fn) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**30


def filter_args(op, seqlen, dtype=torch.float32):
    """The fused op's inputs from a model filter: (z, t, params..., deltas, shift, modulate)."""
    f = op.filter_fn
    ffn, mod = f.implicit_filter, f.modulation
    params = [ffn[0].weight, ffn[0].bias, ffn[2].weight, ffn[2].bias, ffn[4].weight,
              ffn[4].bias, ffn[1].freq, ffn[6].weight]
    params = [p.detach().to(dtype).requires_grad_() for p in params]
    z, t = f.pos_emb(seqlen)
    return (z[0].to(dtype), t[0, :, 0].to(dtype), params, mod.deltas[0, 0].to(dtype),
            mod.shift, mod.modulate)


def rel(a, b) -> float:
    return ((a.double() - b).norm() / b.norm()).item()


def accuracy(op, seqlen) -> dict:
    """Taps and gradients of each path vs float64 (the torch twin on the GPU in float64)."""
    z, t, p64, deltas, shift, modulate = filter_args(op, seqlen, torch.float64)
    ref = imf.implicit_filter_ref(z, t, *p64, deltas, shift, modulate)
    dk = torch.randn(ref.shape, device="cuda", dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, p64, dk)
    out = {}
    z, t, p32, deltas, shift, modulate = filter_args(op, seqlen)
    paths = {"plain_fp32": None, "plain_bf16_autocast": None,
             **{f"fused_{p}": p for p in imf.PRECISIONS}}
    for name, precision in paths.items():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=name.endswith("autocast")):
            if precision is None:
                k = imf.implicit_filter_ref(z, t, *p32, deltas, shift, modulate)
            else:
                k = imf._fused(z, t, *p32, deltas, shift, modulate, precision)
        grads = torch.autograd.grad(k, p32, dk.float())
        out[name] = {"taps": rel(k, ref),
                     "grads_worst": max(rel(g, r) for g, r in zip(grads, ref_grads))}
    return out


def fused_step(op, seqlen, precision):
    z, t, p32, deltas, shift, modulate = filter_args(op, seqlen)
    dk = torch.randn(op.filter_fn.bias.shape[0], seqlen, device="cuda")

    def step():
        imf._fused(z, t, *p32, deltas, shift, modulate, precision).backward(dk)
    return step


def device_ms(step, reps: int) -> float:
    """GPU kernel time of one step (torch.profiler, summed over kernels, mean of ``reps``): at
    short L the event-timed step is bound by host-side launches, which this leaves out."""
    rows, _ = profile_rows(lambda: [step() for _ in range(reps)])
    return sum(r["ms"] for r in rows) / reps


def tune(op, seqlen, reps, tables, timer=median_ms) -> list[dict]:
    """Each forward shape (backward at its default) and each backward shape, then each
    precision at the defaults: fused forward+backward ms (``timer``: median_ms or device_ms)."""
    time_it = (lambda step: timer(step, reps, 3)) if timer is median_ms else (
        lambda step: timer(step, reps))
    rows = []
    for table in tables:
        for combo in itertools.product(*table.values()):
            values = dict(zip(table, combo))
            with knobs({**values, "SHORT_MAX_LEN": 0}):  # the knobs, not the short-L overrides
                try:
                    ms = time_it(fused_step(op, seqlen, "tf32"))
                except (RuntimeError, TritonError) as e:  # a shape that does not fit: record,
                    # go on (anything else, e.g. a slip in this script, stops the sweep)
                    ms = f"error: {type(e).__name__}"
            rows.append({"L": seqlen, "precision": "tf32", **values, "ms": ms})
    for precision in imf.PRECISIONS:
        rows.append({"L": seqlen, "precision": precision,
                     "ms": time_it(fused_step(op, seqlen, precision))})
    return rows


def filter_cell(op, seqlen, kind, reps) -> dict:
    filt = op.filter_fn
    dk = torch.randn(filt.bias.shape[0], seqlen, device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            k = filt.filter_t(seqlen)
        k.backward(dk)

    with filter_kind(kind):
        step()
        return {"ms": median_ms(step, reps, 3), "peak_gib": peak_gib(step)}


def operator_cell(op, seqlen, kind, graphed, reps) -> dict:
    op = copy.deepcopy(op)  # graphing replaces the module's forward: one copy per cell
    u = torch.randn(1, seqlen, op.d_model, device="cuda", requires_grad=True)
    dy = torch.randn(1, seqlen, op.d_model, device="cuda").bfloat16()
    leaves = [u, *op.parameters()]
    with filter_kind(kind), torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
        fn = torch.cuda.make_graphed_callables(op, (u,), num_warmup_iters=3) if graphed else op

        def step():
            for p in leaves:
                p.grad = None
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                y = fn(u)
            y.backward(dy)

        step()
        return {"ms": median_ms(step, reps, 3)}


def markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c, "–")
            cells.append(f"{v:,}" if isinstance(v, int) else f"{v:.3g}" if isinstance(v, float)
                         else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+",
                    default=[1024, 8192, 65536, 262144, 1 << 20])
    ap.add_argument("--op-lengths", type=int, nargs="+", default=[1024, 8192, 65536])
    ap.add_argument("--tune", action="store_true", help="sweep launch shapes and precisions")
    ap.add_argument("--tune-round", type=int, default=1, choices=[1, 2, 3],
                    help="1: forward and backward shapes; 2: the backward's second round; "
                         "3: the backward's loop pipelined")
    ap.add_argument("--tune-lengths", type=int, nargs="+", default=[8192, 65536, 1 << 20])
    ap.add_argument("--device-time", action="store_true",
                    help="tune on summed kernel time (torch.profiler) instead of event time")
    ap.add_argument("--tune-only", action="store_true", help="stop after the tuning sweep")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M")}
    result = {"meta": meta}

    def save():
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)

    def model(seqlen):
        torch.manual_seed(0)
        return HyenaOperator(ModelConfig(d_model=256, l_max=seqlen)).cuda()

    print(f"{meta['device']}, torch {meta['torch']}, d_model 256, forward+backward, "
          f"median of {args.reps}", flush=True)
    result["accuracy_8k"] = accuracy(model(8192), 8192)
    print("\n## accuracy vs float64, L = 8192 (norm of difference / norm)\n")
    print(markdown([{"path": k, **v} for k, v in result["accuracy_8k"].items()],
                   ["path", "taps", "grads_worst"]), flush=True)
    save()
    if args.tune:
        result["tune"] = []
        for seqlen in args.tune_lengths:
            tables = {1: [FWD_KNOBS, BWD_KNOBS], 2: [BWD_KNOBS_2],
                      3: [BWD_KNOBS_3]}[args.tune_round]
            result["tune"] += tune(model(seqlen), seqlen, args.reps, tables,
                                   device_ms if args.device_time else median_ms)
            save()
        print(f"\n## fused filter, launch shapes and precisions "
              f"({'kernel ' if args.device_time else ''}ms)\n")
        print(markdown(result["tune"], ["L", "precision", *FWD_KNOBS, *BWD_KNOBS,
                                        "BWD_HOIST_WEIGHTS", "BWD_STAGES", "ms"]), flush=True)
        if args.tune_only:
            return
    rows = result["time"] = []
    for seqlen in sorted(set(args.lengths) | set(args.op_lengths)):
        op, row = model(seqlen), {"L": seqlen}
        if seqlen in args.lengths:
            for kind in ("plain", "fused"):
                cell = filter_cell(op, seqlen, kind, args.reps)
                row[f"filter_{kind}_ms"], row[f"filter_{kind}_gib"] = cell["ms"], cell["peak_gib"]
        if seqlen in args.op_lengths:
            for kind in ("plain", "fused"):
                for graphed in (False, True):
                    name = f"op_{kind}{'_graphed' if graphed else ''}_ms"
                    row[name] = operator_cell(op, seqlen, kind, graphed, args.reps)["ms"]
        rows.append(row)
        save()
        del op
        torch.cuda.empty_cache()
    print("\n## filter and operator, plain vs fused filter (bf16 autocast, batch 1)\n")
    print(markdown(rows, ["L", "filter_plain_ms", "filter_fused_ms", "filter_plain_gib",
                          "filter_fused_gib", "op_plain_ms", "op_fused_ms",
                          "op_plain_graphed_ms", "op_fused_graphed_ms"]))


if __name__ == "__main__":
    main()
