"""Training-step throughput of this project's HyenaDNA vs the official implementation's numbers.

One step = forward of the LM loss (next-token cross-entropy) under bf16 autocast, backward, AdamW
step. Random A/C/G/T tokens (throughput does not depend on them); weights from seed 0, so every
variant's first-step loss is printed as a cross-check (same weights, data and dropout mask).

Variants (``HYENADNA_OPS`` picks the path; ``gradient_checkpointing`` the per-block recompute):
    plain          plain torch path, no checkpointing (what the official model does below 1M)
    plain+ckpt     plain path + per-block gradient checkpointing (the official recipe at 1M)
    fast           lean fast path (hyenadna.ops: hyena_mixer, gelu_mlp), no checkpointing
    fast+compile   fast path with every Block torch.compile'd (the fused ops stay opaque)
    plain+compile  plain path with every Block torch.compile'd
Compiled variants (not at 1M) run last, each only if 60 s of --budget-s are left.

Official numbers (BASELINES.md): the official standalone HyenaDNA, measured on an H100 80GB HBM3
with torch 2.11 in another session, same configs and batches. Ratios against them are only fair
when this run's card is also an H100 80GB HBM3 (printed in the header).

    PYTHONPATH=. python benchmarks/bench_train.py --out benchmarks/results/train   # GPU, < 4 min
    python benchmarks/bench_train.py --quick --out /tmp/bench_train                # CPU smoke
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from hyenadna import HyenaDNA, ModelConfig
from hyenadna.model import compile_blocks
from hyenadna.ops import OPS_ENV

OFFICIAL_NOTE = ("official standalone HyenaDNA, measured on an H100 80GB HBM3 with torch 2.11 "
                 "in another session (BASELINES.md)")
# name → model config, batch, length, official (ms/step, tokens/s, peak GiB, how)
CONFIGS = {
    "tiny-1k": (dict(d_model=128, n_layer=2, l_max=1026), 256, 1024, (37.4, 7.0e6, 4.7, "")),
    "small-32k": (dict(d_model=256, n_layer=4, l_max=32770), 8, 32768, (150, 1.75e6, 18.7, "")),
    "large-1m@131k": (dict(d_model=256, n_layer=8, l_max=1_000_002), 1, 131072,
                      (175, 0.75e6, 23.3, "")),
    "large-1m@1M": (dict(d_model=256, n_layer=8, l_max=1_048_578), 1, 1_048_576,
                    (2450, 1_048_576 / 2.45, 42.9, "per-block checkpointing; without: OOM")),
}
QUICK = {"quick": (dict(d_model=32, n_layer=2, l_max=258), 2, 256, None)}
VARIANTS = {  # name → (HYENADNA_OPS, gradient_checkpointing, compile)
    "plain": ("ref", False, False), "plain+ckpt": ("ref", True, False),
    "fast": ("fast", False, False), "fast+compile": ("fast", False, True),
    "plain+compile": ("ref", False, True),
}
COMPILE_RESERVE_S = 60.0  # a compiled cell starts only with this much budget left
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def plan(configs: dict, quick: bool) -> list[tuple[str, str]]:
    """(config, variant) in priority order: eager variants first, compiled ones last."""
    cells = []
    for name in configs:
        if name == "large-1m@1M":  # plain without checkpointing needs ~200 GiB here: not tried
            cells += [(name, "plain+ckpt"), (name, "fast")]
        else:
            cells += [(name, "plain"), (name, "fast")] + ([(name, "plain+ckpt")] if quick else [])
    if not quick:
        cells += [(n, v) for v in ("fast+compile", "plain+compile") for n in configs
                  if n in ("tiny-1k", "small-32k", "large-1m@131k")]
    return cells


def build(name: str, variant: str, configs: dict, device: torch.device):
    model_kw, batch, seqlen, _ = configs[name]
    _, ckpt, compiled = VARIANTS[variant]
    torch.manual_seed(0)
    model = HyenaDNA(ModelConfig(**model_kw, gradient_checkpointing=ckpt)).to(device).train()
    if compiled:
        compile_blocks(model)  # what train.compile does
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.999), weight_decay=0.1)
    g = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(7, 11, (batch, seqlen + 1), device=device, generator=g)  # A, C, G, T
    return model, opt, ids


def train_step(model, opt, ids, device) -> torch.Tensor:
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits = model(ids[:, :-1])  # (B, L, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
    loss.backward()
    opt.step()
    return loss.detach()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_cell(name, variant, configs, args, device) -> dict:
    """Build, warm up, time one (config, variant); failures are recorded, never raised."""
    _, batch, seqlen, _ = configs[name]
    rec = {"config": name, "variant": variant, "batch": batch, "L": seqlen, "status": "ok"}
    os.environ[OPS_ENV] = VARIANTS[variant][0]
    model = opt = ids = None
    _free(device)
    try:
        model, opt, ids = build(name, variant, configs, device)
        torch.manual_seed(1)  # same dropout mask in every variant's first step
        t = time.perf_counter()
        rec["loss0"] = train_step(model, opt, ids, device).item()
        rec["first_step_s"] = time.perf_counter() - t  # includes compilation and cuFFT plans
        for _ in range(args.warmup - 1):
            train_step(model, opt, ids, device)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        reps = args.reps if rec["first_step_s"] < 1.0 else max(3, args.reps // 2)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            train_step(model, opt, ids, device)
            _sync(device)
            times.append((time.perf_counter() - t) * 1e3)
        rec["ms"] = statistics.median(times)
        rec["reps"] = reps
        rec["tokens_per_s"] = batch * seqlen / (rec["ms"] * 1e-3)
        if device.type == "cuda":
            rec["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    except torch.cuda.OutOfMemoryError:
        rec["status"] = "OOM"
    except Exception as err:  # noqa: BLE001 - one failing variant must not stop the run
        rec["status"] = f"error: {type(err).__name__}: {str(err).splitlines()[0][:160]}"
        traceback.print_exc(file=sys.stderr)
    finally:
        model = opt = ids = None
        os.environ.pop(OPS_ENV, None)
        if VARIANTS[variant][2]:
            torch._dynamo.reset()  # compiled graphs hold the model's tensors
        _free(device)
    return rec


def markdown(records: list[dict], meta: dict, configs: dict) -> str:
    lines = [f"# Training step ({meta['device']}, torch {meta['torch']}, {meta['date']})", "",
             ("LM loss forward+backward under bf16 autocast + AdamW step; median ms/step; "
              "peak GiB = max_memory_allocated (weights, grads, Adam state included)."),
             f"Official: {OFFICIAL_NOTE}.", "",
             ("| config | B × L | variant | ms/step | tokens/s | peak GiB | loss0 | official "
              "ms | official tokens/s | official GiB | speed-up vs official |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        _, batch, seqlen, official = configs[rec["config"]]
        off = ["–"] * 4
        if official is not None:
            o_ms, o_tok, o_gib, how = official
            ratio = f"{o_ms / rec['ms']:.2f}x" if "ms" in rec else "–"
            off = [f"{o_ms:g}", f"{o_tok / 1e6:.2f}M", f"{o_gib:g}" + (f" ({how})" if how
                                                                        else ""), ratio]
        vals = ([f"{rec['ms']:.1f}", f"{rec['tokens_per_s'] / 1e6:.3g}M",
                 f"{rec.get('peak_gib', float('nan')):.1f}"] if "ms" in rec
                else [rec["status"], "–", "–"])
        loss0 = f"{rec['loss0']:.4f}" if "loss0" in rec else "–"
        lines.append(f"| {rec['config']} | {batch} × {seqlen:,} | {rec['variant']} | "
                     + " | ".join(vals + [loss0] + off) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for results.json/.md")
    p.add_argument("--quick", action="store_true", help="CPU smoke test: one tiny config")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--reps", type=int, default=10, help="timed steps (halved for slow steps)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps, the first included")
    p.add_argument("--budget-s", type=float, default=180.0, help="start no cell after this")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                   help="run only these variants (default: the plan's, see above)")
    args = p.parse_args(argv)
    configs = QUICK if args.quick else {k: CONFIGS[k] for k in args.configs}
    if args.quick:
        args.reps, args.warmup = 2, 1
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
            "official": OFFICIAL_NOTE}
    log(f"{meta['device']}, torch {meta['torch']}; official numbers: {OFFICIAL_NOTE}")
    records = []
    for name, variant in plan(configs, args.quick):
        if args.variants and variant not in args.variants:
            continue
        left = args.budget_s - (time.perf_counter() - T0)
        if left < (COMPILE_RESERVE_S if VARIANTS[variant][2] else 0):
            rec = {"config": name, "variant": variant, "status": "skipped: time budget"}
        else:
            rec = run_cell(name, variant, configs, args, device)
        records.append(rec)
        log(f"{name:<14} {variant:<14} " + (
            f"{rec['ms']:9.1f} ms/step {rec['tokens_per_s'] / 1e6:7.3g}M tok/s "
            f"{rec.get('peak_gib', float('nan')):5.1f} GiB loss0 {rec['loss0']:.4f} "
            f"(first step {rec['first_step_s']:.1f} s)" if "ms" in rec else rec["status"]))
        (args.out / "results.json").write_text(json.dumps({"meta": meta, "records": records},
                                                          indent=1))
    table = markdown([r for r in records if "batch" in r], meta, configs)
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
