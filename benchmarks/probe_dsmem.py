"""How fast 8-CTA clusters exchange data through distributed shared memory, vs shared memory.

The cluster plan for 64k (benchmarks/NOTES_gpu.md) needs each channel's data to cross the
SM-to-SM network three times per forward; whether that costs about as much as an HBM pass
(published microbenchmarks: ~3 TB/s in aggregate on an H100) or far less decides whether the
plan can beat the four-step engine. ``probe_dsmem.cu`` runs the exchange's access pattern for a
number of rounds; this times 0 and ``--rounds`` rounds with CUDA events (median of ``--reps``),
remote and local, and reports bytes moved per second (each round every thread reads 8 complex
float32 values and writes 8: 128 KiB per CTA). Prints a table, writes JSON.

    PYTHONPATH=. python benchmarks/probe_dsmem.py --out dsmem.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from bench_operator import copy_bandwidth, median_ms  # this folder is on sys.path as a script

from hyenadna.ops import onchip

HERE = Path(__file__).parent


def source() -> str:
    """The kernel's source as NVRTC gets it: the cluster operations, then the probe."""
    return (HERE / "cluster_ops.cuh").read_text() + (HERE / "probe_dsmem.cu").read_text()
CLUSTER, POINTS = 8, 8192  # CTAs per cluster, complex values per CTA (as in the .cu)
THREADS = POINTS // CLUSTER


def bytes_per_round(ctas: int) -> int:
    """Shared-memory bytes one round moves: every thread reads and writes 8 complex64."""
    return ctas * THREADS * CLUSTER * 8 * 2


def time_ms(kernel, out: torch.Tensor, rounds: int, remote: int, reps: int) -> float:
    """Median ms of one launch over out's CTAs (one per THREADS of out's rows)."""
    ctas = out.shape[0] // THREADS
    return median_ms(lambda: onchip.launch(kernel, (ctas, 1, 1), (THREADS, 1, 1),
                                           [out, rounds, remote], out.device,
                                           shared_mem=POINTS * 8), reps, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, nargs="+", default=[32, 256],
                    help="clusters per launch (256: one per channel at d_model 256)")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device("cuda")
    kernel = torch.cuda._compile_kernel(source(), "dsmem_exchange")
    onchip._allow_smem(kernel, POINTS * 8)
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "copy_tbs": copy_bandwidth(device) / 1e12, "rows": []}
    for clusters in args.clusters:
        ctas = clusters * CLUSTER
        out = torch.empty(ctas * THREADS, 2, device=device)
        for remote in (1, 0):
            base, full = (time_ms(kernel, out, rounds, remote, args.reps)
                          for rounds in (0, args.rounds))
            per_round = (full - base) / args.rounds
            result["rows"].append({
                "clusters": clusters, "mode": "remote" if remote else "local",
                "launch_ms": base, "us_per_round": 1e3 * per_round,
                "tbs": bytes_per_round(ctas) / (per_round * 1e-3) / 1e12})
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)
    print(f"{result['device']}, torch {result['torch']}; copy {result['copy_tbs']:.2f} TB/s "
          f"(read+write); {args.rounds} rounds, median of {args.reps}\n")
    print("| clusters | mode | µs per round | TB/s (read+write) |\n|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['clusters']} | {r['mode']} | {r['us_per_round']:.2f} | {r['tbs']:.2f} |")


if __name__ == "__main__":
    main()
