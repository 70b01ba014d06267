"""Throughput of ``hyenadna score``: records/s and nucleotides/s on CPU and CUDA.

Runs the real ``hyenadna.score.score`` (FASTA streaming, windowing, batching across records,
TSV writer) with random-weight classifier checkpoints built here for two released shapes:

    tiny   d_model 128, 2 layers, l_max 1,026   (window 1,024)
    small  d_model 256, 4 layers, l_max 32,770  (window 32,768)

Inputs are SYNTHETIC: uniform random A/C/G/T records written to a temp folder (throughput does
not depend on the bases). Two workloads per config: "long" records cut into several full windows,
and "short" 300-bp records (one partial window each, what promoter scoring looks like; the
records/s number that matters there). Each timed run follows an untimed warm-up run (CUDA
context, cuFFT plans, the eval-mode filter cache). Times are the scoring loop only (model loading
excluded), as reported by ``score``'s summary.

    python benchmarks/bench_score.py --devices cpu --quick            # smoke test, ~1 min
    python benchmarks/bench_score.py --devices cuda --out benchmarks/results/score_h100.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hyenadna import __version__
from hyenadna.checkpoint import atomic_torch_save, classifier_metadata
from hyenadna.config import ModelConfig, ScoreConfig
from hyenadna.heads import HeadConfig, HyenaDNAClassifier
from hyenadna.score import score

CONFIGS = {
    "tiny": {"model": {"d_model": 128, "n_layer": 2, "l_max": 1026}, "window": 1024},
    "small": {"model": {"d_model": 256, "n_layer": 4, "l_max": 32770}, "window": 32768},
}
# (config, device, workload) -> (records, record length, batch size). CUDA sizes give ~10-20 s
# runs on an H100; CPU sizes ~10-60 s on 2 cores. --quick divides the record counts.
WORKLOADS = {
    ("tiny", "cpu", "long"): (16, 8192, 16),
    ("tiny", "cpu", "short"): (512, 300, 64),
    ("small", "cpu", "long"): (2, 65536, 2),
    ("small", "cpu", "short"): (64, 300, 64),
    ("tiny", "cuda", "long"): (4096, 8192, 256),
    ("tiny", "cuda", "short"): (65536, 300, 1024),
    ("small", "cuda", "long"): (128, 131072, 16),
    ("small", "cuda", "short"): (65536, 300, 1024),
}


def make_checkpoint(name: str, path: Path) -> None:
    """Random-weight 2-class classifier of config ``name`` (official init, seed 0)."""
    torch.manual_seed(0)
    spec = CONFIGS[name]
    model_cfg = ModelConfig(**spec["model"])
    head_cfg = HeadConfig(n_classes=2)
    model = HyenaDNAClassifier.from_backbone(None, head_cfg, model_cfg)
    task = {"name": f"bench-{name}", "class_names": ["neg", "pos"], "seq_len": spec["window"]}
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    atomic_torch_save({"state_dict": state,
                       "hyenadna": classifier_metadata(model_cfg, head_cfg, task)}, path)


def make_fasta(path: Path, records: int, length: int, seed: int = 0) -> int:
    """SYNTHETIC uniform random DNA, 80-column FASTA; returns the nucleotide count."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "w") as fh:
        for i in range(records):
            seq = alphabet[rng.integers(0, 4, length)].tobytes().decode()
            lines = "\n".join(seq[j:j + 80] for j in range(0, length, 80))
            fh.write(f">synthetic_{i}\n{lines}\n")
    return records * length


def run_one(ckpt: Path, fasta: Path, out: Path, device: str, batch: int,
            precision: str) -> dict:
    """One score run; loop time from the summary, peak CUDA memory when on CUDA."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    summary = score(ScoreConfig(model=str(ckpt), input=str(fasta), output=str(out),
                                batch_size=batch, device=device, precision=precision))
    wall = time.perf_counter() - start
    result = {"records": summary.records, "windows": summary.windows,
              "nucleotides": summary.nucleotides, "seconds": round(summary.seconds, 4),
              "wall_seconds_with_load": round(wall, 4),
              "records_per_s": round(summary.records / summary.seconds, 2),
              "nt_per_s": round(summary.nucleotides / summary.seconds, 1)}
    if device == "cuda":
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def environment(devices: list[str]) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    env = {"hyenadna": __version__, "commit": commit, "torch": torch.__version__,
           "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(),
           "load_avg_1min": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M")}
    if "cuda" in devices:
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu"], choices=["cpu", "cuda"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--workloads", nargs="+", default=["long", "short"],
                        choices=["long", "short"])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="auto = bf16 autocast on CUDA, fp32 on CPU")
    parser.add_argument("--quick", action="store_true", help="divide record counts by 8")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda given but CUDA is not available")
    env = environment(args.devices)  # before the runs: the load average is the machine's own
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for name in args.configs:
            make_checkpoint(name, tmp / f"{name}.ckpt")
            for device in args.devices:
                for workload in args.workloads:
                    records, length, batch = WORKLOADS[name, device, workload]
                    records = max(1, records // 8) if args.quick else records
                    fasta = tmp / f"{name}-{workload}-{records}.fa"
                    make_fasta(fasta, records, length)
                    warm = tmp / "warm.fa"
                    make_fasta(warm, min(records, batch), length, seed=1)
                    run_one(tmp / f"{name}.ckpt", warm, tmp / "out.tsv", device, batch,
                            args.precision)
                    result = run_one(tmp / f"{name}.ckpt", fasta, tmp / "out.tsv", device,
                                     batch, args.precision)
                    row = {"config": name, "device": device, "workload": workload,
                           "record_length": length, "batch_size": batch,
                           "window": CONFIGS[name]["window"], "precision": args.precision,
                           **result}
                    rows.append(row)
                    print(_table_row(row), file=sys.stderr, flush=True)
    report = {"benchmark": "hyenadna score throughput (synthetic random DNA, random weights)",
              "environment": {**env, "load_avg_1min_after": os.getloadavg()[0]},
              "results": rows}
    print(_table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


HEADER = ("| config | device | workload | records × length | batch | s | records/s | nt/s "
          "| peak GPU GiB |")


def _table_row(r: dict) -> str:
    return (f"| {r['config']} | {r['device']} | {r['workload']} | {r['records']:,} × "
            f"{r['record_length']:,} | {r['batch_size']} | {r['seconds']:.2f} | "
            f"{r['records_per_s']:,.1f} | {r['nt_per_s']:,.0f} | "
            f"{r.get('peak_gpu_mem_gib', '-')} |")


def _table(rows: list[dict]) -> str:
    return "\n".join([HEADER, "|" + "---|" * 9, *map(_table_row, rows)])


if __name__ == "__main__":
    main()
