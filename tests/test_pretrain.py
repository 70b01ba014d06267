"""Pretraining: data order and sharding, sequence-length warm-up, a real training run whose loss
falls, exact resume, stop-on-signal checkpoints, evaluation, and the CLI's one-line errors.

All runs use a tiny model on the real 200-kb chr22 slice in tests/data, one CPU thread."""

import copy
import gzip
import os
import signal
from statistics import mean

import pytest
import pytorch_lightning as pl
import torch
from click.testing import CliRunner

from cli import main
from hyenadna import HyenaDNA
from hyenadna.config import PretrainConfig, load_config
from hyenadna.pretrain import PretrainModule, evaluate, pretrain
from hyenadna.pretrain_callbacks import SeqLenWarmup, read_metrics
from hyenadna.pretrain_data import (
    IGNORE_INDEX,
    PretrainDataModule,
    StepBatchSampler,
    encode_window,
)
from hyenadna.tokenizer import A_ID, C_ID, G_ID, N_ID, T_ID

SLICE = "hg19_chr22_30.0-30.2Mb.fa.gz"


@pytest.fixture(autouse=True)
def one_thread():
    """Two shared cores: several OpenMP threads per test process slow everyone down a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



def tiny_cfg(out, genome, *overrides) -> PretrainConfig:
    """A tiny model on 64-token windows; warm-up stage 32×16 → 64×8 at step 4; 8 steps."""
    return load_config(PretrainConfig, None, [
        "model.d_model=32", "model.n_layer=2", "model.l_max=66", "data.seq_len=64",
        f"data.genome={genome}", "data.num_workers=0", "data.max_eval_windows=16",
        "train.global_batch_size=8", "train.seqlen_warmup_stages=1",
        "train.seqlen_warmup_steps=4", "train.max_steps=8", "train.val_every_steps=4",
        "train.checkpoint_every_steps=4", "train.log_every_steps=1", "train.lr=0.005",
        "train.progress_bar=false", "train.accelerator=cpu", f"train.out_dir={out}", *overrides])


class StopAt(pl.Callback):
    """Simulates an interruption: stop once ``step`` optimizer steps are done."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


class Record(pl.Callback):
    """What a (resumed) run starts from: step, optimizer state, first batch's sample keys."""

    def on_train_start(self, trainer, pl_module):
        self.start_step = trainer.global_step
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.samples = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.samples is None:
            self.samples = batch["sample"].tolist()


class SendSignal(pl.Callback):
    def __init__(self, signum, at_step):
        self.signum, self.at_step, self.sent = signum, at_step, False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


def test_seqlen_stages_double_length_and_halve_batch():
    cfg = load_config(PretrainConfig, None, [
        "data.seq_len=1024", "train.global_batch_size=16", "train.seqlen_warmup_stages=3",
        "train.seqlen_warmup_steps=100"])
    assert cfg.seqlen_stages == [(0, 128, 128), (100, 256, 64), (200, 512, 32), (300, 1024, 16)]
    assert {length * batch for _, length, batch in cfg.seqlen_stages} == {cfg.tokens_per_step}
    with pytest.raises(ValueError, match="data.seq_len .* divisible by 2\\*\\*train"):
        load_config(PretrainConfig, None, ["data.seq_len=1000", "train.seqlen_warmup_stages=4"])


@pytest.mark.parametrize("world, accumulate", [(1, 1), (2, 1), (2, 2), (4, 1)])
def test_step_batch_sampler_shards_are_disjoint_and_device_count_free(world, accumulate):
    stages = [(0, 32, 16), (3, 64, 8)]
    per_rank = [list(StepBatchSampler(stages, 6, 2, world, rank, accumulate))
                for rank in range(world)]
    for rank_batches in per_rank:
        assert len(rank_batches) == (6 - 2) * accumulate  # resumed at step 2
    for step in range(2, 6):
        keys = [k for batches in per_rank for b in batches for k in b if k[0] == step]
        length, batch = (32, 16) if step < 3 else (64, 8)
        assert sorted(p for _, p, _ in keys) == list(range(batch))  # disjoint and complete
        assert {n for _, _, n in keys} == {length}
    with pytest.raises(ValueError, match="not divisible by devices × accumulation = 3 × 1"):
        StepBatchSampler(stages, 6, 0, 3, 0, 1)


def test_seqlen_warmup_state_is_restored_and_checked():
    callback = SeqLenWarmup([(0, 32, 16), (3, 64, 8)])
    callback.load_state_dict({"stage": 1, "stages": [[0, 32, 16], [3, 64, 8]]})
    assert callback.stage == 1 and callback.stage_at(2) == 0 and callback.stage_at(7) == 1
    with pytest.raises(ValueError, match="differs from the checkpoint's"):
        callback.load_state_dict({"stage": 1, "stages": [[0, 32, 16], [5, 64, 8]]})


def test_encode_window_targets_skip_n_and_rc_reads_other_strand():
    ids, targets = encode_window("ACgtNA", rc=False, ignore_n=True)
    assert ids.tolist() == [A_ID, C_ID, G_ID, T_ID, N_ID]
    assert targets.tolist() == [C_ID, G_ID, T_ID, IGNORE_INDEX, A_ID]
    ids, targets = encode_window("ACGTNA", rc=True, ignore_n=False)  # RC = TNACGT
    assert ids.tolist() == [T_ID, N_ID, A_ID, C_ID, G_ID]
    assert targets.tolist() == [N_ID, A_ID, C_ID, G_ID, T_ID]


def test_train_windows_reproducible_and_mostly_n_skipped(tmp_path, genome_file):
    cfg = tiny_cfg(tmp_path, genome_file, "data.max_n_fraction=0.1", "data.rc_aug=true")
    data = PretrainDataModule(cfg)
    data.setup("fit")
    windows = data.train_dataset()
    keys = [(s, p, 64) for s in range(3) for p in range(30)]
    first = [windows.window(*k)[:2] for k in keys]
    assert first == [windows.window(*k)[:2] for k in keys]
    assert all(windows[k]["input_ids"].eq(N_ID).float().mean() <= 0.1 for k in keys)
    assert 20 < sum(rc for _, rc in first) < 70  # RC augmentation about half the time
    cfg.train.seed = 1
    assert [data.train_dataset().window(*k)[:2] for k in keys] != first


def test_loss_falls_over_50_steps(tmp_path, genome_file):
    cfg = tiny_cfg(tmp_path / "run", genome_file, "train.max_steps=50",
                   "train.seqlen_warmup_stages=0", "train.global_batch_size=16",
                   "train.val_every_steps=25", "train.checkpoint_every_steps=25")
    result = pretrain(cfg)
    losses = [v for _, v in sorted(read_metrics(result.out_dir)["train/loss"].items())]
    assert len(losses) == 50 and mean(losses[-10:]) < mean(losses[:5]) - 0.6
    assert result.metrics["val/loss"] < 1.42  # ≈ ln 4: the model has learnt base composition
    assert result.plot.stat().st_size > 10_000 and result.best_checkpoint.is_file()
    scores = evaluate(result.last_checkpoint, overrides=["data.max_eval_windows=8"])
    assert scores["windows"] == 8 and 0 < scores["tokens"] <= 8 * 64
    assert 1 < scores["perplexity"] < 4.5 and 0.25 < scores["accuracy"] < 1


def test_resume_continues_at_the_next_step_with_the_same_optimizer_state(tmp_path, genome_file):
    straight = pretrain(tiny_cfg(tmp_path / "a", genome_file))
    cfg = tiny_cfg(tmp_path / "b", genome_file)
    assert pretrain(cfg, callbacks=[StopAt(5)]).global_step == 5
    saved = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 5 and saved["callbacks"]["SeqLenWarmup"]["stage"] == 1
    record = Record()
    resumed = pretrain(cfg, resume=True, callbacks=[record])
    assert record.start_step == 5 and resumed.global_step == 8
    assert {tuple(s) for s in record.samples} == {(5, p) for p in range(8)}  # step 5, stage 1
    saved_optimizer = saved["optimizer_states"][0]
    torch.testing.assert_close(record.optimizer["state"], saved_optimizer["state"], rtol=0, atol=0)
    assert record.optimizer["param_groups"] == saved_optimizer["param_groups"]
    # resumed = uninterrupted: same data, dropout, schedule and optimizer trajectory
    a = torch.load(straight.last_checkpoint, weights_only=True)["state_dict"]
    b = torch.load(resumed.last_checkpoint, weights_only=True)["state_dict"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sorted(p.parent.name for p in (tmp_path / "b" / "logs").glob("*/metrics.csv")) == [
        "version_0", "version_1"]
    model = HyenaDNA.from_pretrained(resumed.last_checkpoint)
    assert model.config.d_model == 32 and all(k.startswith("model.") for k in b)


def test_gradient_accumulation_splits_each_step_into_micro_batches(tmp_path, genome_file):
    record = Record()
    cfg = tiny_cfg(tmp_path, genome_file, "train.accumulate_grad_batches=2",
                   "train.max_steps=3", "train.seqlen_warmup_stages=0")
    result = pretrain(cfg, callbacks=[record])
    assert result.global_step == 3  # 6 micro-batches of 4 windows, 3 optimizer steps
    assert record.samples == [[0, p] for p in range(4)]
    saved = torch.load(result.last_checkpoint, weights_only=True)
    assert saved["hyenadna"]["pretrain"]["train"]["accumulate_grad_batches"] == 2
    with pytest.raises(ValueError, match="accumulate_grad_batches=1 differs from the checkpoint"):
        pretrain(tiny_cfg(tmp_path, genome_file, "train.max_steps=4",
                          "train.seqlen_warmup_stages=0"), resume=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_at_step_boundary(tmp_path, genome_file, signum):
    before = signal.getsignal(signal.SIGINT)
    cfg = tiny_cfg(tmp_path, genome_file, "train.max_steps=40")
    result = pretrain(cfg, callbacks=[SendSignal(signum, at_step=2)])
    assert result.stop_reason == "signal" and result.global_step == 3
    assert torch.load(result.last_checkpoint, weights_only=True)["global_step"] == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_fsdp_wrapped_names_get_the_same_weight_decay_groups(tmp_path, genome_file):
    # Under FSDP (GPU only, so not run here) parameter names carry "_fsdp_wrapped_module." and
    # the tensors are flat 1-D shards: groups must come from the unwrapped names.
    module = PretrainModule(tiny_cfg(tmp_path, genome_file))
    plain = module.configure_optimizers()["optimizer"].param_groups
    layers = module.model.backbone.layers
    for i, block in enumerate(list(layers)):
        wrapper = torch.nn.Module()
        wrapper._fsdp_wrapped_module = block
        layers[i] = wrapper
    wrapped = module.configure_optimizers()["optimizer"].param_groups

    def by_decay(groups):
        return {g["weight_decay"]: {id(p) for p in g["params"]} for g in groups}

    assert by_decay(wrapped) == by_decay(plain) and set(by_decay(plain)) == {0.0, 0.1}


def test_max_time_saves_validates_once_and_stops(tmp_path, genome_file):
    cfg = tiny_cfg(tmp_path, genome_file, "train.max_steps=40", "train.max_time=00:00")
    result = pretrain(cfg)  # a zero budget runs out at the first step boundary
    assert result.stop_reason == "max_time" and result.global_step == 1
    assert torch.load(result.last_checkpoint, weights_only=True)["global_step"] == 1
    assert list(read_metrics(tmp_path)["val/loss"]) == [0]  # one validation, at the stop


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path, genome_file):
    cfg = tiny_cfg(tmp_path, genome_file, "train.max_steps=1")
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        pretrain(cfg, resume=True)
    pretrain(cfg)
    with pytest.raises(ValueError, match="already holds a run"):
        pretrain(cfg)
    bigger = tiny_cfg(tmp_path, genome_file, "model.d_model=48")
    with pytest.raises(ValueError, match="model.d_model is 32 in the checkpoint but 48"):
        pretrain(bigger, resume=True)


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, content, message", [
    ("empty.fa", "", "no FASTA records"),
    ("no_header.fa", "ACGTACGTAC\nACGT\n", "line 1: sequence before the first '>' header"),
    ("seq_first.fa", "ACGT\n>chr1\nACGT\n", "line 1: sequence before the first '>' header"),
    ("dup.fa", ">chr1\nACGT\n>chr2\nAC\n>chr1\nGG\n", "line 5: duplicate record name 'chr1'"),
    ("missing.fa", None, "genome FASTA not found"),
    ("plain_gzip.fa.gz", b">chr1\nACGT\n", "gzip-compressed but not BGZF"),
])
def test_pretrain_cli_bad_fasta_is_one_line_error(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(gzip.compress(content))
    result = CliRunner().invoke(main, ["pretrain", "--genome", str(path), "--accelerator", "cpu",
                                       "--out-dir", str(tmp_path / "out")])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("Error:") and name in lines[0], lines
    assert message in lines[0]


def test_cli_pretrain_evaluate_and_resume(tmp_path, genome_file):
    out = tmp_path / "cli"
    args = ["pretrain", "--genome", str(genome_file), "--out-dir", str(out), "--max-steps", "2",
            "--accelerator", "cpu", "--set", "data.seq_len=64", "--set", "model.l_max=66",
            "--set", "model.d_model=16", "--set", "train.seqlen_warmup_stages=0",
            "--set", "data.num_workers=0", "--set", "train.progress_bar=false",
            "--set", "train.global_batch_size=4", "--set", "data.max_eval_windows=4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"checkpoint: {out}/last.ckpt" in result.stdout and f"plot: {out}/curves.png" in \
        result.stdout
    resumed = CliRunner().invoke(main, ["pretrain", "--resume", "--out-dir", str(out),
                                        "--max-steps", "3"])  # config from out/config.yaml
    assert resumed.exit_code == 0 and resumed.stdout.startswith("step 3 (max_steps)")
    scored = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(out / "last.ckpt")])
    assert scored.exit_code == 0 and scored.stdout.startswith("test perplexity ")
    bad = CliRunner().invoke(main, ["pretrain", "--resume", "--out-dir", str(tmp_path / "x")])
    assert bad.exit_code == 1 and bad.output.strip().startswith("Error: nothing to resume")


def test_compile_flag_compiles_blocks_and_keeps_parameter_names(tmp_path, genome_file):
    plain = PretrainModule(tiny_cfg(tmp_path, genome_file))
    compiled = PretrainModule(tiny_cfg(tmp_path, genome_file, "train.compile=true"))
    assert all(layer._compiled_call_impl is not None for layer in compiled.model.backbone.layers)
    assert all(layer._compiled_call_impl is None for layer in plain.model.backbone.layers)
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints interchange


@pytest.mark.slow  # inductor compiles C++ for the CPU: ~1-2 min on a small machine
def test_compiled_pretraining_matches_eager_losses(tmp_path, genome_file):
    runs = {}
    for flag in ("false", "true"):
        cfg = tiny_cfg(tmp_path / flag, genome_file, "train.max_steps=3",
                       "train.seqlen_warmup_stages=0", f"train.compile={flag}",
                       "model.embed_dropout=0.0")
        runs[flag] = pretrain(cfg)
    eager, compiled = (torch.load(r.last_checkpoint, weights_only=False)["state_dict"]
                       for r in (runs["false"], runs["true"]))
    for name, value in eager.items():
        torch.testing.assert_close(compiled[name], value, rtol=1e-3, atol=1e-4)
