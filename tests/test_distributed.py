"""Distributed pretraining on CPU (issue 7): Lightning's own DDP strategy with two gloo
processes, then a resume of that run on one device through the CLI.

The two-process run executes this file as a script (Lightning's launcher starts rank 1 by
running the same command again), with a probe callback that saves, per rank, the sample keys
and windows it trained on and its parameters after every optimizer step.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from hyenadna.config import PretrainConfig, load_config
from hyenadna.pretrain import pretrain

SLICE = "hg19_chr22_30.0-30.2Mb.fa.gz"
GLOBAL_BATCH = 8


class Probe(pl.Callback):
    """Per rank: sample keys, windows, and the flat parameter vector after each step."""

    def __init__(self, out: Path):
        self.out, self.samples, self.windows, self.params = out, [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.samples += batch["sample"].tolist()
        self.windows += batch["window"].tolist()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            flat = torch.cat([p.detach().flatten() for p in pl_module.model.parameters()])
            self.params.append(flat.clone())

    def on_train_end(self, trainer, pl_module):
        torch.save({"world": trainer.world_size, "samples": self.samples,
                    "windows": self.windows, "params": torch.stack(self.params)},
                   self.out / f"probe_rank{trainer.global_rank}.pt")


def probe_main(out: str, genome: str, devices: str, steps: str) -> None:
    """Entry point of the subprocess (and of Lightning's relaunch of it for rank 1)."""
    torch.set_num_threads(1)
    cfg = load_config(PretrainConfig, None, [
        "model.d_model=32", "model.n_layer=2", "model.l_max=66", "data.seq_len=64",
        f"data.genome={genome}", "data.num_workers=0", "data.max_eval_windows=8",
        f"train.global_batch_size={GLOBAL_BATCH}", "train.seqlen_warmup_stages=0",
        f"train.max_steps={steps}", "train.val_every_steps=2", "train.log_every_steps=1",
        "train.progress_bar=false", "train.accelerator=cpu", f"train.devices={devices}",
        "train.strategy=ddp", f"train.out_dir={out}"])
    pretrain(cfg, callbacks=[Probe(Path(out))])


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _cli() -> list[str]:
    exe = Path(sys.executable).parent / "hyenadna"
    return [str(exe)] if exe.is_file() else [sys.executable, "-c", "from cli import main; main()"]


def test_ddp_two_processes_then_resume_on_one_device(tmp_path, data_dir):
    genome = tmp_path / SLICE
    shutil.copy(data_dir / SLICE, genome)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, __file__, str(out), str(genome), "2", "3"],
                          check=False, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(out / f"probe_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]

    # gradients were averaged: both ranks hold the same parameters after every step
    torch.testing.assert_close(ranks[0]["params"], ranks[1]["params"], rtol=0, atol=0)
    assert ranks[0]["params"].shape[0] == 3 and not torch.equal(*ranks[0]["params"][[0, -1]])

    # the data shards are disjoint and together make the whole global batch of each step
    for step in range(3):
        keys = [{p for s, p in r["samples"] if s == step} for r in ranks]
        assert not keys[0] & keys[1] and keys[0] | keys[1] == set(range(GLOBAL_BATCH))
        where = [{(w[0], w[1]) for (s, _), w in zip(r["samples"], r["windows"]) if s == step}
                 for r in ranks]
        assert not where[0] & where[1]

    # resume the two-device run on one device, through the CLI (config from out/config.yaml)
    resumed = subprocess.run([*_cli(), "pretrain", "--resume", "--out-dir", str(out),
                              "--devices", "1", "--strategy", "auto", "--max-steps", "5"],
                             check=False, env=_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert resumed.stdout.startswith("step 5 (max_steps)")
    ckpt = torch.load(out / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 5 and ckpt["hyenadna"]["pretrain"]["train"]["devices"] == 1


if __name__ == "__main__":
    probe_main(*sys.argv[1:])
