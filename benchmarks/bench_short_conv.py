"""The short conv's Triton kernels (hyenadna.ops.layout) against copy bandwidth, per launch shape.

The mixer's short conv reads proj (B, L, 3D) and writes its output (B, 3D, L); its backward reads
dout and proj and writes dproj, with the weight and bias sums on the way. Both are pure streams
(three taps per element), so the measure is bytes moved over time, next to a device-to-device
copy timed in the same run. Each row is one launch shape (``layout.BLOCK_C``, ``BLOCK_L``,
``SHIFT_WARPS``, ``DW_WARPS``), bf16, median of CUDA-event-timed calls. Prints a markdown table,
writes JSON.

    PYTHONPATH=. python benchmarks/bench_short_conv.py --lengths 65536 1048576 --out sc.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from unittest import mock

import torch
from bench_operator import copy_bandwidth, median_ms  # this folder is on sys.path as a script
from triton.errors import TritonError

from hyenadna.ops import layout

LAUNCHES = [(64, 64, 4), (64, 64, 8), (32, 128, 4), (64, 128, 8), (128, 64, 8), (32, 128, 8),
            (16, 256, 4), (32, 256, 4), (32, 256, 8), (16, 128, 4)]
"""(BLOCK_C, BLOCK_L, warps) per row; the first is the shipped channels-last default
(``layout.TIME_MAJOR_TILE`` is the time-major one)."""


def shape(block_c: int, block_l: int, warps: int):
    """The launch shape's knobs, for either layout, set for a ``with`` block (and restored
    after it)."""
    return mock.patch.multiple(layout, BLOCK_C=block_c, BLOCK_L=block_l, SHIFT_WARPS=warps,
                               DW_WARPS=warps, TIME_MAJOR_TILE=(block_c, block_l, warps))


def cell(seqlen: int, channels: int, reps: int, time_major: bool = False) -> dict:
    """Forward and backward ms and TB/s at the current launch shape, batch 1, bf16; time_major:
    proj and dproj (B, C, L), in_proj's bias added in the kernels (lean.TIME_MAJOR_PROJ)."""
    torch.manual_seed(0)
    proj = torch.randn(1, seqlen, channels, device="cuda", dtype=torch.bfloat16)
    if time_major:
        proj = proj.transpose(1, 2).contiguous()
    dout = torch.randn(1, channels, seqlen, device="cuda", dtype=torch.bfloat16)
    weight = torch.randn(channels, 1, 3, device="cuda")
    bias = torch.randn(channels, device="cuda")
    tm = {"in_bias": torch.randn(channels, device="cuda"), "time_major": True} if time_major \
        else {}
    ref = layout.short_conv_t_torch(proj, weight, bias, **tm).float()
    got = layout.short_conv_t_triton(proj, weight, bias, **tm).float()
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    if err > 1e-2:  # a bf16 rounding or two apart at most; more is a kernel bug
        raise SystemExit(f"short conv at L={seqlen}: Triton differs from its torch twin "
                         f"(max error {err:.3g} of the largest value)")
    fwd = median_ms(lambda: layout.short_conv_t_triton(proj, weight, bias, **tm), reps, 3)
    bwd = median_ms(lambda: layout.short_conv_t_backward_triton(
        dout, proj, weight, need_dproj_sum=True, **tm), reps, 3)
    element = 2 * seqlen * channels  # bytes of one bf16 (L, C) tensor
    return {"fwd_ms": fwd, "bwd_ms": bwd, "fwd_tbs": 2 * element / fwd / 1e9,
            "bwd_tbs": 3 * element / bwd / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[65536, 1 << 20])
    ap.add_argument("--channels", type=int, default=768, help="3 · d_model")
    ap.add_argument("--dw-targets", type=int, nargs="*", default=[],
                    help="also time the backward at the default shape with these "
                         "layout.DW_TARGET_PROGRAMS (its weight-sum programs per call)")
    ap.add_argument("--time-major", action="store_true",
                    help="also time every row with proj and dproj time-major (B, C, L) and "
                         "in_proj's bias added in the kernels (lean.TIME_MAJOR_PROJ)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    copy = copy_bandwidth(torch.device("cuda")) / 1e12
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "copy_tbs": copy, "rows": []}
    plan = [(seqlen, launch, None) for seqlen, launch in itertools.product(args.lengths, LAUNCHES)]
    plan += [(seqlen, LAUNCHES[0], target)
             for seqlen, target in itertools.product(args.lengths, args.dw_targets)]
    layouts = [False, True] if args.time_major else [False]
    for (seqlen, (block_c, block_l, warps), target), time_major in itertools.product(plan,
                                                                                     layouts):
        row = {"L": seqlen, "BLOCK_C": block_c, "BLOCK_L": block_l, "warps": warps,
               "dw_target": target or layout.DW_TARGET_PROGRAMS,
               "proj": "B,C,L" if time_major else "B,L,C"}
        with shape(block_c, block_l, warps), mock.patch.object(
                layout, "DW_TARGET_PROGRAMS", row["dw_target"]):
            try:
                row.update(cell(seqlen, args.channels, args.reps, time_major))
            except (RuntimeError, TritonError) as e:  # a shape that does not build: record it
                row["error"] = type(e).__name__
        result["rows"].append(row)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    print(f"{result['device']}, torch {result['torch']}, C = {args.channels}, bf16; "
          f"copy {copy:.2f} TB/s\n")
    cols = ["L", "proj", "BLOCK_C", "BLOCK_L", "warps", "dw_target", "fwd_ms", "fwd_tbs",
            "bwd_ms", "bwd_tbs"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in result["rows"]:
        print("| " + " | ".join(row.get("error", "") if c not in row else
                                f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c])
                                for c in cols) + " |")


if __name__ == "__main__":
    main()
