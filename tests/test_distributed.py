"""Distributed pretraining on CPU (issue 7): Lightning's own DDP strategy with two gloo
processes, then a resume of that run on one device through the CLI.

The two-process run executes this file as a script (Lightning's launcher starts rank 1 by
running the same command again), with a probe callback that saves, per rank, the sample keys
and windows it trained on and its parameters after every optimizer step.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from hyenadna.config import PretrainConfig, load_config
from hyenadna.pretrain import pretrain
from hyenadna.pretrain_callbacks import read_metrics
from hyenadna.pretrain_data import IGNORE_INDEX, PretrainDataModule

SLICE = "hg19_chr22_30.0-30.2Mb.fa.gz"
CONTIG = "chr22_30000000_30200000"  # the slice's one contig, 200,000 bp
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


def eval_split_main(out: str, genome: str, windows: str) -> None:
    """Two gloo ranks, validation (only at the last step) on a split of ``windows`` windows."""
    torch.set_num_threads(1)
    end = 103_000 + int(windows) * 65  # exactly that many 65-base windows, all without N
    cfg = load_config(PretrainConfig, None, [
        "model.d_model=16", "model.n_layer=1", "model.l_max=66", "data.seq_len=64",
        f"data.genome={genome}", "data.num_workers=0", "data.max_eval_windows=4",
        f"data.valid_ranges=[{CONTIG}:103000-{end}]", "train.global_batch_size=2",
        "train.seqlen_warmup_stages=0", "train.max_steps=2", "train.val_every_steps=2",
        "train.log_every_steps=1", "train.progress_bar=false", "train.accelerator=cpu",
        "train.devices=2", "train.strategy=ddp", f"train.out_dir={out}"])
    pretrain(cfg)


class SigtermAtStep1(pl.Callback):
    """Rank 0 sends itself SIGTERM when step 1 starts (as `kill <pid>` would); with ``stuck``
    rank 1 then blocks for ever, like a rank waiting in a collective nobody else joins."""

    def __init__(self, stuck: bool):
        self.stuck = stuck

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step != 1:
            return
        if trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        elif self.stuck:
            threading.Event().wait()


def sigterm_main(out: str, genome: str, stuck: str) -> None:
    torch.set_num_threads(1)
    cfg = load_config(PretrainConfig, None, [
        "model.d_model=16", "model.n_layer=1", "model.l_max=66", "data.seq_len=64",
        f"data.genome={genome}", "data.num_workers=0", "data.max_eval_windows=2",
        "train.global_batch_size=2", "train.seqlen_warmup_stages=0", "train.max_steps=20",
        "train.val_every_steps=10", "train.stop_grace_seconds=3", "train.progress_bar=false",
        "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp", f"train.out_dir={out}"])
    result = pretrain(cfg, callbacks=[SigtermAtStep1(stuck)])
    if result.is_global_zero:
        print(f"stopped at step {result.global_step} ({result.stop_reason})")


def _run_group(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``args`` in its own session; on a timeout kill the whole group (both ranks)."""
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{args[1:]} hung (killed after {timeout} s)")
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


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


@pytest.mark.parametrize("windows", [1, 3])
def test_ddp_validation_with_fewer_or_uneven_windows_than_ranks(tmp_path, data_dir, windows):
    # 1 window on 2 ranks left rank 1 without a batch: it skipped validation while rank 0 waited
    # in DDP's forward (buffer broadcast), then in the epoch-end reduce: a hang. 3 windows gave
    # 2 batches against 1. Each rank must run as many batches; padding must not count.
    genome = tmp_path / SLICE
    shutil.copy(data_dir / SLICE, genome)
    out = tmp_path / "run"
    proc = _run_group([sys.executable, __file__, "eval-split", str(out), str(genome),
                       str(windows)], timeout=90)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert read_metrics(out)["val/tokens"] == {1: 64.0 * windows}


def test_eval_loaders_give_every_rank_as_many_batches(tmp_path, data_dir):
    cfg = load_config(PretrainConfig, None, [
        "model.l_max=66", "data.seq_len=64", f"data.genome={data_dir / SLICE}",
        f"data.index_cache_dir={tmp_path}", "data.num_workers=0", "data.max_eval_windows=8",
        f"data.valid_ranges=[{CONTIG}:103000-103325]", "train.global_batch_size=4",
        "train.seqlen_warmup_stages=0"])  # 5 windows, 3 ranks, 1 window per batch
    batches = []
    for rank in range(3):
        data = PretrainDataModule(cfg)
        data.trainer = SimpleNamespace(world_size=3, global_rank=rank)
        data.setup("fit")
        batches.append(list(data.val_dataloader()))
    assert [len(b) for b in batches] == [2, 2, 2]
    real = sorted(int(x["window"][0, 1]) for b in batches for x in b if x["sample"][0, 1] >= 0)
    assert real == [103_000 + 65 * i for i in range(5)]  # each window once, over all ranks
    pads = [x for b in batches for x in b if x["sample"][0, 1] < 0]
    assert len(pads) == 1 and (pads[0]["targets"] == IGNORE_INDEX).all()


@pytest.mark.parametrize("stuck", [False, True])
def test_ddp_sigterm_to_rank_zero_stops_or_exits(tmp_path, data_dir, stuck):
    # The stop request is a flag every rank learns of at the next step boundary (no collective
    # inside a signal handler); when a rank can never get there, the watchdog ends the run
    # train.stop_grace_seconds after the signal instead of leaving it hung for ever.
    genome = tmp_path / SLICE
    shutil.copy(data_dir / SLICE, genome)
    out = tmp_path / "run"
    proc = _run_group([sys.executable, __file__, "sigterm", str(out), str(genome),
                       str(int(stuck))], timeout=90)  # (returns once rank 1 is gone too)
    if stuck:
        assert proc.returncode == 128 + signal.SIGTERM, proc.stderr[-4000:]
        assert "no clean stop 3 s after SIGTERM" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "stopped at step 2 (signal)" in proc.stdout
        assert torch.load(out / "last.ckpt", weights_only=True)["global_step"] == 2


if __name__ == "__main__":
    if sys.argv[1] == "eval-split":
        eval_split_main(*sys.argv[2:])
    elif sys.argv[1] == "sigterm":
        sigterm_main(sys.argv[2], sys.argv[3], bool(int(sys.argv[4])))
    else:
        probe_main(*sys.argv[1:])
