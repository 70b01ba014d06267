"""GUE benchmark: fine-tune HyenaDNA on every GUE task folder given, from random init and/or
pretrained backbones, and write a JSON file plus a markdown table (task, protocol, init,
dev/test MCC, F1, AUROC, the k-mer baseline, steps, minutes, card) with the command that made it.

Each run is ``hyenadna.finetune.finetune`` with the task family's YAML in configs/finetune/
plus the overrides given here. A wall-clock budget keeps the whole sweep bounded: every run may
train for ``0.7 · budget · n_devices / n_runs`` minutes (the rest is left for data loading and
evaluation), on top of the max-steps cap of its YAML (or ``--max-steps``). Runs are
sequential on one device; ``--devices 0,1`` splits the tasks between GPUs, one child process per
GPU, and merges their results. Per-run folders go to runs/gue/ (git-ignored); the table to
benchmarks/results/gue.md and every row, with all metrics, to benchmarks/results/gue.json.

Usage (GPU; GUE root laid out like path/to/GUE):
    python benchmarks/gue.py path/to/GUE --pretrained none --pretrained PRETRAIN.ckpt
    python benchmarks/gue.py path/to/GUE --pretrained none --pretrained PRETRAIN.ckpt \\
        --devices 0,1 --budget-minutes 8
CPU smoke test on the fixtures:
    python benchmarks/gue.py tests/data/gue --accelerator cpu --max-steps 2 --batch-size 8
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import re
import shlex
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from hyenadna.config import FinetuneConfig, load_config, replace_dotted  # noqa: E402

# GUE folder → config file of its task family (configs/finetune/<family>.yaml), in table order.
GUE_TASKS = {
    "prom/prom_core_all": "core_promoter",
    "prom/prom_core_notata": "core_promoter",
    "prom/prom_core_tata": "core_promoter",
    "prom/prom_300_all": "promoter",
    "prom/prom_300_notata": "promoter",
    "prom/prom_300_tata": "promoter",
    "splice/reconstructed": "splice",
    **{f"tf/{i}": "tf" for i in range(5)},
}

# Test MCC of a 1-6-mer bag + logistic regression (BASELINES.md, measured 2026-11-25): the
# floor a fine-tuned model must clear row by row. Reduced-protocol rows trained on dev too.
KMER_TEST_MCC = {
    "prom/prom_core_all": 0.596, "prom/prom_core_notata": 0.641, "prom/prom_core_tata": 0.501,
    "prom/prom_300_all": 0.734, "prom/prom_300_notata": 0.838, "prom/prom_300_tata": 0.370,
    "splice/reconstructed": 0.034, "tf/0": 0.650, "tf/1": 0.703, "tf/2": 0.587,
    "tf/3": 0.462, "tf/4": 0.735,
}
TRAIN_SHARE = 0.7  # of each run's time slot spent training; the rest loads data and evaluates


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="GUE root (prom/, splice/, tf/ folders inside).")
    p.add_argument("--tasks", default=None,
                   help="Comma-separated GUE folders, e.g. tf/0,prom/prom_core_all "
                        "(default: every known task present under root).")
    p.add_argument("--pretrained", action="append", default=None,
                   help="Backbone per init: 'none' (random init), a hyenadna .ckpt or an official "
                        "release folder. Repeatable (default: none).")
    p.add_argument("--devices", default="",
                   help="CUDA indices, e.g. '0' or '0,1' (one process per GPU; default: let "
                        "Lightning pick one device).")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--budget-minutes", type=float, default=8.0,
                   help="Wall-clock target for the whole sweep (0: no time cap per run).")
    p.add_argument("--max-steps", type=int, default=None, help="Override every YAML's max_steps.")
    p.add_argument("--max-epochs", type=int, default=None, help="Override every YAML's max_epochs.")
    p.add_argument("--batch-size", type=int, default=None, help="Override the YAMLs' batch size.")
    p.add_argument("--num-workers", type=int, default=None,
                   help="Worker processes of each run's training DataLoader.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="Extra override for every run (repeatable).")
    p.add_argument("--config-dir", type=Path, default=REPO / "configs" / "finetune")
    p.add_argument("--out-dir", type=Path, default=REPO / "runs" / "gue",
                   help="Per-run folders (checkpoints, metrics.json, logs); git-ignored default.")
    p.add_argument("--md", type=Path, default=REPO / "benchmarks" / "results" / "gue.md",
                   help="Markdown table to write; the JSON of all rows goes beside it.")
    p.add_argument("--part", type=Path, default=None, help=argparse.SUPPRESS)  # child mode
    return p.parse_args(argv)


def select_tasks(root: Path, tasks: str | None) -> list[str]:
    """GUE folders to run: the ones asked for (must exist), or every known one under root."""
    if tasks is None:
        found = [t for t in GUE_TASKS if (root / t).is_dir()]
        if not found:
            raise SystemExit(f"no GUE task folders under {root} (expected e.g. tf/0)")
        return found
    chosen = [t.strip().strip("/") for t in tasks.split(",") if t.strip()]
    for task in chosen:
        if task not in GUE_TASKS:
            raise SystemExit(f"unknown GUE task {task!r}; known: {', '.join(GUE_TASKS)}")
        if not (root / task).is_dir():
            raise SystemExit(f"task folder not found: {root / task}")
    return chosen


def init_label(init: str) -> str:
    """Short name of an init for tables and folder names: 'random', a release folder's name,
    or a checkpoint's folder/file (``runs/pretrain/best.ckpt`` → ``pretrain/best.ckpt``)."""
    if init == "none":
        return "random"
    path = Path(init)
    return "/".join(path.parts[-2:]) if path.suffix == ".ckpt" else path.name or init


def run_one(args: argparse.Namespace, task: str, init: str, run_minutes: float,
            device: str | None) -> dict[str, Any]:
    """One fine-tuning run; returns a table row (an 'error' row if it failed)."""
    from hyenadna.finetune import finetune

    slug = f"{task.replace('/', '_')}__{re.sub(r'[^A-Za-z0-9_.-]', '_', init_label(init))}"
    row: dict[str, Any] = {"task": task, "init": init_label(init), "init_path": init,
                           "kmer_test_mcc": KMER_TEST_MCC.get(task)}
    try:
        cfg = load_config(FinetuneConfig, args.config_dir / f"{GUE_TASKS[task]}.yaml",
                          args.overrides)
        cfg = replace_dotted(cfg, {
            "data.path": str(args.root / task), "train.out_dir": str(args.out_dir / slug),
            "train.pretrained": None if init == "none" else init, "train.seed": args.seed,
            "train.max_steps": args.max_steps, "train.max_epochs": args.max_epochs,
            "data.batch_size": args.batch_size, "data.num_workers": args.num_workers,
            "train.accelerator": args.accelerator, "train.max_minutes": run_minutes,
            "train.devices": [int(device)] if device and args.accelerator != "cpu" else None,
            "train.progress_bar": False})
        result = finetune(cfg)
    except Exception as err:  # noqa: BLE001 — one broken task must not lose the whole sweep
        traceback.print_exc()
        return {**row, "error": f"{type(err).__name__}: {err}"}
    return {**row, "protocol": result["protocol"], "protocol_detail": result["protocol_detail"],
            "dev": result["dev"], "test": result["test"], "steps": result["steps"],
            "epochs": result["epochs"], "minutes": result["minutes"], "card": result["device"],
            "n_params": result["n_params"], "out_dir": cfg.train.out_dir}


def run_sequential(args: argparse.Namespace, tasks: list[str], inits: list[str],
                   device: str | None) -> list[dict[str, Any]]:
    """All (task, init) runs one after the other on one device."""
    n_runs = len(tasks) * len(inits)
    run_minutes = TRAIN_SHARE * args.budget_minutes / n_runs if args.budget_minutes else 0.0
    rows = []
    for task in tasks:
        for init in inits:
            print(f"[gue] {task} · init {init_label(init)} · device {device or 'auto'}",
                  file=sys.stderr, flush=True)
            rows.append(run_one(args, task, init, run_minutes, device))
    return rows


def run_parallel(args: argparse.Namespace, argv: list[str], tasks: list[str],
                 devices: list[str]) -> list[dict[str, Any]]:
    """One child process per GPU, each with every init of a share of the tasks."""
    procs = []
    for i, device in enumerate(devices):
        share = tasks[i::len(devices)]
        if not share:
            continue
        part = args.out_dir / f"part-{device}.json"
        part.unlink(missing_ok=True)
        # argparse keeps the last value of a repeated option, so appending overrides
        child = [sys.executable, str(Path(__file__).resolve()), *argv, "--tasks", ",".join(share),
                 "--devices", device, "--part", str(part)]
        procs.append((part, subprocess.Popen(child)))
    rows, failed = [], []
    for part, proc in procs:
        if proc.wait() != 0:
            failed.append(str(part))
        if part.is_file():
            rows += json.loads(part.read_text())["rows"]
    if failed:
        print(f"[gue] child process(es) failed: {', '.join(failed)}", file=sys.stderr)
    order = {t: i for i, t in enumerate(tasks)}
    return sorted(rows, key=lambda r: order[r["task"]])


def _fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.3f}"


def markdown(rows: list[dict[str, Any]], command: str, args: argparse.Namespace) -> str:
    """The results table plus the command, budget and per-init summary."""
    lines = [
        "# GUE fine-tuning results", "",
        f"Reproduce: `{command}`", "",
        (f"Written {datetime.datetime.now().isoformat(timespec='minutes')}; budget "
         f"{args.budget_minutes:g} min for the sweep; configs from configs/finetune/. "
         "Model selection on dev MCC; *reduced* = no train.csv: trained on 80% of dev.csv, "
         "validated on the rest, tested on test.csv (not comparable with published full-train "
         "numbers). k-mer = 1-6-mer logistic-regression baseline (BASELINES.md)."), "",
        ("| task | protocol | init | dev MCC | test MCC | test F1 | test AUROC | k-mer test MCC "
         "| steps | minutes | card |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | — | {r['init']} | error: {r['error'][:80]} "
                         "| | | | | | | |")
            continue
        lines.append(
            f"| {r['task']} | {r['protocol']} | {r['init']} | {_fmt(r['dev']['mcc'])} "
            f"| **{_fmt(r['test']['mcc'])}** | {_fmt(r['test']['f1'])} "
            f"| {_fmt(r['test']['auroc'])} | {_fmt(r['kmer_test_mcc'])} | {r['steps']} "
            f"| {r['minutes']:.2f} | {r['card']} |")
    lines += ["", *summary_lines(rows)]
    return "\n".join(lines) + "\n"


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Mean TF test MCC per init (the field quotes it) and how many tasks beat the k-mer row."""
    out = []
    for init in dict.fromkeys(r["init"] for r in rows):
        ok = [r for r in rows if r["init"] == init and "error" not in r]
        tf = [r["test"]["mcc"] for r in ok if r["task"].startswith("tf/")]
        beats = sum(r["test"]["mcc"] > r["kmer_test_mcc"] for r in ok
                    if r["kmer_test_mcc"] is not None)
        params = f"{ok[0]['n_params']:,} parameters" if ok else "no successful run"
        mean_tf = f"mean TF test MCC {sum(tf) / len(tf):.3f} (k-mer 0.627)" if tf else "no TF task"
        out.append(f"- init **{init}** ({params}): {mean_tf}; beats the k-mer baseline on "
                   f"{beats} of {len(ok)} tasks.")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # one line per run is enough
    tasks = select_tasks(args.root, args.tasks)
    inits = args.pretrained or ["none"]
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if len(devices) > 1:
        rows = run_parallel(args, argv, tasks, devices)
    else:
        rows = run_sequential(args, tasks, inits, devices[0] if devices else None)
    payload = {"command": shlex.join(["python", "benchmarks/gue.py", *argv]), "rows": rows}
    if args.part is not None:  # child of run_parallel: the parent writes the outputs
        args.part.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return 0
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    args.md.write_text(markdown(rows, payload["command"], args))
    print(f"[gue] wrote {args.md} and {args.md.with_suffix('.json')}", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
