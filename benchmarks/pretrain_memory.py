"""Peak memory and time of one pretraining step at a given context length.

One step = forward of the next-token LM loss exactly as ``PretrainModule`` computes it (fp32
cross-entropy over bf16-autocast logits) plus backward, batch of random A/C/G/T tokens (speed and
memory do not depend on the bases). Reported per case: peak ``torch.cuda.max_memory_allocated``
over the timed steps, the median step time and tokens/s. The AdamW update is not timed (it is
the same at every length; BASELINES.md's official numbers are forward+backward too).

A length above the config's ``l_max - 2`` raises ``model.l_max`` to length + 2 (e.g. large-1m,
l_max 1,000,002, at 1,048,576 nucleotides runs with l_max 1,048,578: the implicit filter is
evaluated on more positions; the parameter count is unchanged).

``--find-max-length`` doubles the length (batch 1) from ``--start-length`` until a step runs out
of memory (``torch.cuda.OutOfMemoryError``) or ``--max-length`` is reached, and reports the
longest power of two that fits.

GPU (the issue's two measurements)::

    PYTHONPATH=. python benchmarks/pretrain_memory.py --config configs/pretrain/large-1m.yaml \\
        --length 1048576 --batch 1 --checkpointing on \\
        --out benchmarks/results/pretrain_memory_1m.json
    PYTHONPATH=. python benchmarks/pretrain_memory.py --config configs/pretrain/small-32k.yaml \\
        --find-max-length --checkpointing off --out benchmarks/results/pretrain_maxlen_small32k.json

CPU smoke test (no memory figures on CPU)::

    python benchmarks/pretrain_memory.py --config configs/pretrain/tiny-1k.yaml --length 256 \\
        --batch 2 --checkpointing both --repeats 2 --out /tmp/mem.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from hyenadna.atomic import atomic_write_text
from hyenadna.config import PretrainConfig, load_config, read_yaml
from hyenadna.pretrain import PretrainModule


def build_module(config: str, length: int, checkpointing: bool, device: torch.device
                 ) -> tuple[PretrainModule, int]:
    """The PretrainModule of ``config`` able to take ``length`` tokens; returns (module, l_max)."""
    model = dict(read_yaml(config).get("model") or {})
    model["l_max"] = max(int(model.get("l_max", 0)), length + 2)
    model["gradient_checkpointing"] = checkpointing
    cfg = load_config(PretrainConfig, None, [], base={
        "model": model, "data": {"seq_len": length}, "train": {"seqlen_warmup_stages": 0}})
    torch.manual_seed(0)
    return PretrainModule(cfg).to(device).train(), model["l_max"]


def one_step(module: PretrainModule, batch: dict, device: torch.device) -> None:
    """Forward (bf16 autocast on CUDA) + backward of the LM loss; gradients dropped after."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        nll, _, count = module._nll(batch)
    (nll / count).backward()
    module.zero_grad(set_to_none=True)


def run_case(config: str, length: int, batch: int, checkpointing: bool, repeats: int,
             device: torch.device) -> dict:
    """Measure one (length, batch, checkpointing) case; status 'ok' or 'oom'."""
    case = {"config": Path(config).name, "length": length, "batch": batch,
            "checkpointing": checkpointing}
    module = None
    try:
        module, case["l_max"] = build_module(config, length, checkpointing, device)
        gen = torch.Generator().manual_seed(1)
        ids = torch.randint(7, 11, (batch, length + 1), generator=gen).to(device)  # A,C,G,T
        data = {"input_ids": ids[:, :-1], "targets": ids[:, 1:]}
        one_step(module, data, device)  # warm-up: cuFFT plans, allocator, autotuning
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            one_step(module, data, device)
            _sync(device)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        case.update(status="ok", step_ms=median * 1e3, step_ms_all=[t * 1e3 for t in times],
                    tokens_per_s=batch * length / median,
                    peak_gib=(torch.cuda.max_memory_allocated(device) / 2**30
                              if device.type == "cuda" else None))
    except torch.cuda.OutOfMemoryError:
        case.update(status="oom", peak_gib=None, step_ms=None, tokens_per_s=None)
    finally:
        del module
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return case


def find_max_length(config: str, checkpointing: bool, start: int, stop: int, repeats: int,
                    device: torch.device) -> tuple[list[dict], int | None]:
    """Double the length (batch 1) until out of memory or ``stop``; the cases and the longest
    length that fitted."""
    cases, best, length = [], None, start
    while length <= stop:
        case = run_case(config, length, 1, checkpointing, repeats, device)
        cases.append(case)
        _print_row(case)
        if case["status"] != "ok":
            break
        best, length = length, length * 2
    return cases, best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _print_row(case: dict) -> None:
    peak = f"{case['peak_gib']:.2f}" if case.get("peak_gib") is not None else "-"
    ms = f"{case['step_ms']:.1f}" if case.get("step_ms") is not None else "-"
    tps = f"{case['tokens_per_s']:,.0f}" if case.get("tokens_per_s") else "-"
    print(f"{case['config']:<18} {case['length']:>9,} {case['batch']:>5} "
          f"{'on' if case['checkpointing'] else 'off':>5} {case['status']:>6} {peak:>9} "
          f"{ms:>10} {tps:>13}", flush=True)


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="Run YAML whose model section is used.")
    parser.add_argument("--length", type=int, action="append", default=[],
                        help="Context length in tokens (repeatable).")
    parser.add_argument("--batch", type=int, default=1, help="Windows per step.")
    parser.add_argument("--checkpointing", choices=["on", "off", "both"], default="off",
                        help="Per-block gradient checkpointing.")
    parser.add_argument("--find-max-length", action="store_true",
                        help="Double the length (batch 1) until out of memory.")
    parser.add_argument("--start-length", type=int, default=32768)
    parser.add_argument("--max-length", type=int, default=2**24)
    parser.add_argument("--repeats", type=int, default=5, help="Timed steps per case.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", required=True, type=Path, help="JSON output path.")
    args = parser.parse_args(argv)
    if not args.length and not args.find_max_length:
        parser.error("give --length (repeatable) or --find-max-length")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU {platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    print(f"device: {name} · torch {torch.__version__}")
    print(f"{'config':<18} {'length':>9} {'batch':>5} {'ckpt':>5} {'status':>6} {'peak GiB':>9} "
          f"{'step ms':>10} {'tokens/s':>13}")
    flags = {"on": [True], "off": [False], "both": [False, True]}[args.checkpointing]
    payload = {"device": name, "torch": torch.__version__, "argv": sys.argv[1:], "cases": []}
    for ckpt in flags:
        for length in args.length:
            case = run_case(args.config, length, args.batch, ckpt, args.repeats, device)
            payload["cases"].append(case)
            _print_row(case)
        if args.find_max_length:
            cases, best = find_max_length(args.config, ckpt, args.start_length, args.max_length,
                                          args.repeats, device)
            payload["cases"] += cases
            payload.setdefault("max_length", {})["on" if ckpt else "off"] = best
            print(f"longest power-of-two length that fits (checkpointing "
                  f"{'on' if ckpt else 'off'}): {best}")
    _write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
