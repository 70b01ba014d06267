"""Pretraining throughput on 1 and N devices through ``hyenadna.pretrain`` (Lightning DDP).

Weak scaling: each device keeps the same batch (``--per-device-batch`` windows of the config's
final ``seq_len``), so the global batch grows with the device count. Each device count runs as
its own process tree (``--worker`` mode of this file; Lightning's launcher starts the other
ranks by re-running the same command) for a fixed number of optimizer steps, with validation
and the sequence-length warm-up off. Throughput is ``PretrainResult.tokens_per_s``: input tokens
per second over all devices, averaged over every step but the first (start-up). Scaling
efficiency = tokens/s(N) / (N · tokens/s(1)). The 1-device run uses Lightning's default
single-device strategy, the others ``--strategy`` (default ddp).

GPU (issue 7; the card and count are recorded in the JSON)::

    PYTHONPATH=. python benchmarks/ddp_scaling.py --genome /data/hg19_chr22.fa.gz \\
        --devices-list 1,2 --steps 40 --out benchmarks/results/ddp_scaling_small32k.json

CPU smoke test (tiny model; gloo)::

    python benchmarks/ddp_scaling.py --genome tests/data/hg19_chr22_30.0-30.2Mb.fa.gz \\
        --config configs/pretrain/tiny-1k.yaml --accelerator cpu --devices-list 1,2 --steps 4 \\
        --per-device-batch 2 --set data.seq_len=128 --set data.num_workers=0 --out /tmp/ddp.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def worker(run_dir: Path, config: str, overrides: list[str]) -> None:
    """One device count: pretrain for the fixed step count; rank 0 writes run_dir/bench.json."""
    import torch

    from hyenadna.config import PretrainConfig, load_config
    from hyenadna.pretrain import pretrain

    cfg = load_config(PretrainConfig, config, overrides)
    start = time.perf_counter()
    result = pretrain(cfg)
    if not result.is_global_zero:
        return
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() and \
        cfg.train.accelerator != "cpu" else "cpu"
    bench = {"devices": cfg.train.devices, "strategy": cfg.train.strategy, "card": card,
             "seq_len": cfg.data.seq_len, "global_batch": cfg.train.global_batch_size,
             "steps": result.global_step, "tokens_per_step": cfg.tokens_per_step,
             "tokens_per_s": result.tokens_per_s, "wall_s": time.perf_counter() - start,
             "torch": torch.__version__}
    (run_dir / "bench.json").write_text(json.dumps(bench, indent=2))


def run_devices(n: int, args: argparse.Namespace, work: Path) -> dict:
    """Run the worker for ``n`` devices in a fresh process; return its bench.json."""
    run_dir = work / f"devices{n}"
    overrides = [
        *args.set, f"data.genome={args.genome}", f"train.out_dir={run_dir}",
        f"train.devices={n}", f"train.strategy={args.strategy if n > 1 else 'auto'}",
        f"train.accelerator={args.accelerator}", f"train.max_steps={args.steps}",
        "train.seqlen_warmup_stages=0", f"train.global_batch_size={args.per_device_batch * n}",
        "data.valid_fraction=0", f"train.checkpoint_every_steps={10**9}",
        "train.log_every_steps=5", "train.progress_bar=false"]
    cmd = [sys.executable, str(HERE), "--worker", str(run_dir), "--config", args.config]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not (run_dir / "bench.json").is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"devices": n, "status": "failed", "stderr_tail": tail}
    return {**json.loads((run_dir / "bench.json").read_text()), "status": "ok"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/pretrain/small-32k.yaml")
    parser.add_argument("--genome", help="Reference FASTA (plain or BGZF).")
    parser.add_argument("--devices-list", default="1,2", help="Comma-separated device counts.")
    parser.add_argument("--per-device-batch", type=int, default=8,
                        help="Windows per device per step (small-32k official: 8 at 32,768).")
    parser.add_argument("--steps", type=int, default=40, help="Optimizer steps per run.")
    parser.add_argument("--strategy", default="ddp", help="Lightning strategy for N > 1.")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="Where the runs go (default: a temporary folder).")
    parser.add_argument("--out", type=Path, help="JSON output path.")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker, args.config, args.set)
    if not args.genome or not args.out:
        parser.error("--genome and --out are required")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ddp_scaling_"))
    rows = [run_devices(int(n), args, work) for n in args.devices_list.split(",")]
    base = next((r["tokens_per_s"] for r in rows if r["status"] == "ok" and r["devices"] == 1),
                None)
    print(f"{'devices':>7} {'global batch':>12} {'tokens/s':>14} {'efficiency':>10}  card")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['devices']:>7} failed:\n{r['stderr_tail']}")
            continue
        r["efficiency"] = r["tokens_per_s"] / (r["devices"] * base) if base else None
        eff = f"{r['efficiency']:.1%}" if r["efficiency"] is not None else "-"
        print(f"{r['devices']:>7} {r['global_batch']:>12} {r['tokens_per_s']:>14,.0f} "
              f"{eff:>10}  {r['card']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": args.config, "argv": sys.argv[1:], "runs": rows},
                                   indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
