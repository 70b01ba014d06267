"""Next-nucleotide pretraining on a reference genome with PyTorch Lightning.

Pipeline stage: ``pretrain_data.PretrainDataModule`` batches → ``PretrainModule`` (HyenaDNA + LM
loss) → checkpoints, CSV metrics and a curve plot in ``train.out_dir``. Entry points are
``pretrain(cfg)`` and ``evaluate(checkpoint, ...)``; the CLI commands are thin wrappers.

Official recipe (HyenaDNA §A.1): AdamW (0.9, 0.999), lr 6e-4, weight decay 0.1 except norms,
biases and filter parameters, cosine decay after a 1% linear warm-up, gradient clipping 1.0,
bf16, and a sequence-length warm-up that doubles the window while halving the batch.

Scaling out is Lightning's job: ``train.devices`` / ``num_nodes`` / ``strategy`` go to the
Trainer unchanged (``fsdp`` becomes an FSDPStrategy that shards each Hyena block). Per-rank data
sharding is by construction (see ``pretrain_data``); logging and checkpoint files come from rank
zero only (Lightning's loggers and ``save_checkpoint`` see to that).

Checkpoints hold the Lightning state (model as ``model.backbone.*``, optimizer, scheduler,
loops, callbacks) plus ``ckpt["hyenadna"]`` with the model and run config, so
``HyenaDNA.from_pretrained(out_dir / "last.ckpt")`` works. They are written atomically.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities.exceptions import SIGTERMException

from hyenadna.checkpoint import atomic_checkpoint_io, checkpoint_metadata, read_model_config
from hyenadna.config import PretrainConfig, load_config, replace_dotted, save_config, to_dict
from hyenadna.model import Block, HyenaDNA, compile_blocks
from hyenadna.optim import build_optimizer, cosine_with_warmup, is_no_decay
from hyenadna.pretrain_callbacks import RunControl, SeqLenWarmup, StderrProgressBar, plot_metrics
from hyenadna.pretrain_data import IGNORE_INDEX, PretrainDataModule

log = logging.getLogger(__name__)

LAST, BEST = "last.ckpt", "best.ckpt"
# Prefixes FSDP puts into parameter names; stripped to recover the model's own names.
_WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


class PretrainModule(pl.LightningModule):
    """HyenaDNA (``self.model``) trained with the next-token cross-entropy.

    Batches are dicts from ``pretrain_data``: ``input_ids`` (B, L) int64 and ``targets``
    (B, L) int64 with IGNORE_INDEX where a target is left out. Validation and test accumulate
    token-weighted sums and reduce them over ranks once per epoch, so perplexity and accuracy
    are exact whatever the batch size or device count.
    """

    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg
        self.model = HyenaDNA(cfg.model)
        if cfg.train.compile:
            compile_blocks(self.model)
        # Decided here, on the unwrapped model: under FSDP the parameters are flat 1-D shards.
        self._no_decay = {n for n, p in self.model.named_parameters() if is_no_decay(n, p)}
        self._sums: torch.Tensor | None = None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 → logits (B, L, padded_vocab)."""
        return self.model(input_ids)

    def _nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Summed NLL, correct predictions and counted targets of a batch (0-d tensors)."""
        logits = self.model(batch["input_ids"])  # (B, L, V)
        targets = batch["targets"]  # (B, L)
        # float32 log-softmax: bf16 would round the loss of a 4-letter alphabet visibly.
        nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(),
                              ignore_index=IGNORE_INDEX, reduction="sum")
        counted = targets != IGNORE_INDEX
        correct = ((logits.argmax(-1) == targets) & counted).sum()
        return nll, correct, counted.sum()

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        # Dropout masks as a function of (seed, step, rank, micro-batch), like the data: a
        # resumed run then repeats exactly what an uninterrupted one would have done.
        micro = batch_idx % self.trainer.accumulate_grad_batches
        seed = np.random.SeedSequence([self.cfg.train.seed, self.global_step, self.global_rank,
                                       micro]).generate_state(1)[0]
        torch.manual_seed(int(seed))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        nll, correct, count = self._nll(batch)
        loss = nll / count.clamp_min(1)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/perplexity", loss.detach().exp())
        self.log("train/accuracy", correct / count.clamp_min(1))
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        return loss

    def _eval_step(self, batch: dict) -> None:
        nll, correct, count = self._nll(batch)
        sums = torch.stack([nll.detach(), correct.float(), count.float()]).double()
        self._sums = sums if self._sums is None else self._sums + sums

    def _eval_epoch_end(self, prefix: str) -> None:
        sums = self._sums if self._sums is not None else torch.zeros(3, dtype=torch.float64,
                                                                      device=self.device)
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        self._sums = None
        nll, correct, count = (float(v) for v in sums)
        if count == 0:
            return
        loss = nll / count
        self.log(f"{prefix}/loss", loss, sync_dist=False)
        self.log(f"{prefix}/perplexity", float(np.exp(loss)), sync_dist=False)
        self.log(f"{prefix}/accuracy", correct / count, sync_dist=False)
        self.log(f"{prefix}/tokens", count, sync_dist=False)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        t = self.cfg.train
        names = [n for n, _ in self.model.named_parameters()]
        if any(p in n for n in names for p in _WRAPPER_PREFIXES):
            optimizer, scheduler = self._fsdp_optimizer()
        else:
            optimizer, scheduler = build_optimizer(
                self.model, t.lr, t.weight_decay, (t.beta1, t.beta2), t.max_steps,
                t.warmup_steps, t.min_lr_ratio)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _fsdp_optimizer(self):
        """The same two AdamW groups as ``optim.param_groups``, matched by unwrapped name."""
        t = self.cfg.train
        groups = {True: [], False: []}
        for name, param in self.model.named_parameters():
            for prefix in _WRAPPER_PREFIXES:
                name = name.replace(prefix, "")
            groups[name in self._no_decay].append(param)
        optimizer = torch.optim.AdamW(
            [{"params": groups[False], "weight_decay": t.weight_decay},
             {"params": groups[True], "weight_decay": 0.0}], lr=t.lr, betas=(t.beta1, t.beta2))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(
            s, t.max_steps, t.warmup_steps, t.min_lr_ratio))
        return optimizer, scheduler

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None) -> None:
        # Lightning cannot clip by norm under FSDP (each rank holds a shard); the root FSDP
        # module computes the global norm across shards itself.
        if gradient_clip_val and _is_fsdp(self.trainer.strategy):
            self.trainer.model.clip_grad_norm_(gradient_clip_val)
        else:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hyenadna"] = checkpoint_metadata(self.cfg.model, pretrain=to_dict(self.cfg))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("hyenadna", {}).get("pretrain", {}).get("train", {})
        ours = self.cfg.train.accumulate_grad_batches
        accumulate = saved.get("accumulate_grad_batches", ours)
        if accumulate != ours:
            # Lightning counts micro-batches across a resume; another grouping would misalign
            # optimizer steps with the data (change devices instead: the batch per device adapts).
            raise ValueError(f"train.accumulate_grad_batches={ours} differs from the "
                             f"checkpoint's {accumulate}; resume with the same")


@dataclass
class PretrainResult:
    """What a pretraining run produced."""

    out_dir: Path
    """The run folder."""
    last_checkpoint: Path
    """Checkpoint to resume from or load with ``HyenaDNA.from_pretrained``."""
    best_checkpoint: Path | None
    """Lowest validation loss (None without a validation split)."""
    plot: Path | None
    """PNG of the training and validation curves."""
    global_step: int
    """Optimizer steps done."""
    stop_reason: str
    """'max_steps', 'max_time' or 'signal'."""
    metrics: dict[str, float]
    """Last logged metrics (val/loss, val/perplexity, val/accuracy, train/loss, ...)."""
    tokens_per_s: float | None
    """Mean training throughput over all devices (tokens per second)."""
    is_global_zero: bool
    """True in the process of global rank 0 (the one that writes files and should report)."""


def resolve_accelerator(name: str) -> str:
    """'auto' → 'gpu' when CUDA is available, else 'cpu'."""
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if name == "cuda" else name


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' → bf16-mixed on a GPU that has bf16 (else 16-mixed), 32-true on CPU."""
    if precision != "auto":
        return precision
    if accelerator == "gpu":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def build_strategy(name: str):
    """Lightning strategy for a name; 'fsdp' shards each Hyena block (full-state checkpoints,
    so last.ckpt stays one ordinary file), anything else goes to Lightning as is."""
    if name == "fsdp":
        from pytorch_lightning.strategies import FSDPStrategy

        return FSDPStrategy(auto_wrap_policy={Block}, use_orig_params=True,
                            state_dict_type="full")
    return name


def _is_fsdp(strategy) -> bool:
    from pytorch_lightning.strategies import FSDPStrategy

    return isinstance(strategy, FSDPStrategy)


def build_trainer(cfg: PretrainConfig, callbacks: Sequence[pl.Callback] = (),
                  logger: bool = True) -> pl.Trainer:
    """The Lightning Trainer of a run (also used, with logger=False, by ``evaluate``)."""
    t = cfg.train
    accelerator = resolve_accelerator(t.accelerator)
    loggers = [pl.loggers.CSVLogger(t.out_dir, name="logs")] if logger else False
    if t.progress_bar:
        callbacks = [*callbacks, StderrProgressBar()]
    return pl.Trainer(
        accelerator=accelerator, devices=t.devices, num_nodes=t.num_nodes,
        strategy=build_strategy(t.strategy), precision=resolve_precision(t.precision, accelerator),
        max_steps=t.max_steps, max_epochs=-1, accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val or None,
        # validation every N optimizer steps counted over the whole run (not per epoch)
        val_check_interval=t.val_every_steps * t.accumulate_grad_batches,
        check_val_every_n_epoch=None, num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_steps, logger=loggers, callbacks=list(callbacks),
        plugins=[atomic_checkpoint_io()], use_distributed_sampler=False,
        enable_progress_bar=t.progress_bar, enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        default_root_dir=t.out_dir)


def check_resumable(path: Path, cfg: PretrainConfig) -> None:
    """The checkpoint at ``path`` must hold the same model architecture as ``cfg``."""
    saved, _, source = read_model_config(path)
    for key, value in to_dict(saved).items():
        if key != "gradient_checkpointing" and getattr(cfg.model, key) != value:
            raise ValueError(f"{source}: model.{key} is {value!r} in the checkpoint but "
                             f"{getattr(cfg.model, key)!r} in this run's config")


def pretrain(cfg: PretrainConfig, resume: bool = False,
             callbacks: Sequence[pl.Callback] = ()) -> PretrainResult:
    """Run (or with ``resume`` continue) pretraining; see the module docstring.

    Args:
        cfg: the resolved run config; ``cfg.train.out_dir`` receives every output.
        resume: continue from ``out_dir/last.ckpt`` (same step, optimizer, scheduler, warm-up
            stage and data position); otherwise ``out_dir`` must not already hold a run.
        callbacks: extra Lightning callbacks (tests use them to observe ranks).

    Raises:
        FileNotFoundError: ``resume`` without a last.ckpt, or a missing genome/BED file.
        ValueError: a bad genome, split or config, or an existing run without ``resume``.
    """
    out = Path(cfg.train.out_dir)
    ckpt_path = out / LAST
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist")
        check_resumable(ckpt_path, cfg)
    elif ckpt_path.exists():
        raise ValueError(f"{out} already holds a run ({LAST}); pass --resume to continue it "
                         "or choose another --out-dir")
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    module, data = PretrainModule(cfg), PretrainDataModule(cfg)
    control = RunControl(out / LAST, cfg.train.checkpoint_every_steps,
                         cfg.train.max_time_seconds, cfg.tokens_per_step)
    own = [control, SeqLenWarmup(cfg.seqlen_stages)]
    if _has_validation(cfg):
        own.append(pl.callbacks.ModelCheckpoint(
            dirpath=out, filename=BEST.removesuffix(".ckpt"), monitor="val/loss", mode="min",
            save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False))
    trainer = build_trainer(cfg, [*own, *callbacks])
    if not _has_validation(cfg):
        trainer.limit_val_batches = 0
    if trainer.local_rank == 0:
        # Fail fast, before Lightning starts processes: bad FASTA/BED/splits/empty eval split.
        # (Other local ranks wait for this index at Lightning's prepare_data barrier.)
        data.setup("fit")
        if _has_validation(cfg):
            data.fixed_windows("valid", check=True)
    if trainer.is_global_zero:
        save_config(cfg, out / "config.yaml")
    try:
        with _graceful_signals(control, cfg.train.stop_grace_seconds, trainer), \
                warnings.catch_warnings():
            # config.yaml (and on resume last.ckpt) are meant to be there
            warnings.filterwarnings("ignore", "Checkpoint directory .* is not empty")
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path if resume else None)
    except SIGTERMException:
        # Lightning's own SIGTERM path won the race against RunControl's (the signal landed
        # between its step-end check and Lightning's); RunControl.on_exception saved if clean.
        control.stop_reason = "signal"
    if _has_validation(cfg) and control.stop_reason != "signal" \
            and control.validated_step != trainer.global_step:
        trainer.validate(module, datamodule=data, verbose=False)  # final numbers for the plot
    plot = plot_metrics(out, cfg.seqlen_stages) if trainer.is_global_zero else None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    best = out / BEST
    return PretrainResult(out, ckpt_path, best if best.is_file() else None, plot,
                          trainer.global_step, control.stop_reason or "max_steps", metrics,
                          control.mean_tokens_per_s(), trainer.is_global_zero)


def _has_validation(cfg: PretrainConfig) -> bool:
    d = cfg.data
    return bool(d.bed or d.valid_chroms or d.valid_ranges or d.valid_fraction > 0)


class _graceful_signals:
    """SIGTERM and the first Ctrl-C ask ``control`` to save and stop at the next optimizer
    step; a second Ctrl-C interrupts at once. The handler only sets a flag: every rank learns
    of the request in ``RunControl``'s step-boundary reduce, which it joins anyway.

    Lightning installs its own SIGTERM handler during ``fit``, which forwards the signal to the
    other local ranks and broadcasts between ranks from inside the handler: a collective at a
    random point of each rank's program that can pair with an unrelated one and hang the run.
    ``RunControl.on_train_start`` puts this handler back over it (Lightning restores it after
    ``fit``).

    A Python handler runs only when the main thread executes Python code; a rank blocked in a
    collective (another rank never joins) would ignore signals for ever. So a watchdog thread
    learns of each signal through ``signal.set_wakeup_fd`` (written by the C-level handler) and,
    when the run has not left this block ``grace_s`` seconds after the first SIGTERM/SIGINT,
    kills the other local ranks Lightning started and exits with 128 + the signal number.
    Checkpoints are written atomically, so this leaves the previous last.ckpt intact.
    """

    def __init__(self, control: RunControl, grace_s: float = 0.0,
                 trainer: pl.Trainer | None = None):
        self.control, self.grace_s, self.trainer = control, grace_s, trainer
        self.saved: dict[int, object] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._old_wakeup_fd = -1

    def _handler(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.control.stop_requested:
            raise KeyboardInterrupt
        self.control.request_stop(signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.saved[sig] = signal.signal(sig, self._handler)
            self.control.sigterm_handler = self._handler
            if self.grace_s > 0:
                self._start_watchdog()
        return self

    def __exit__(self, *exc) -> None:
        self.control.sigterm_handler = None
        if self._thread is not None:
            self._done.set()
            signal.set_wakeup_fd(self._old_wakeup_fd)
            reader, writer = self._sockets
            writer.send(b"\0")  # wake the watchdog
            self._thread.join(timeout=5)
            reader.close()
            writer.close()
            self._thread = None
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)

    def _start_watchdog(self) -> None:
        reader, writer = socket.socketpair()
        writer.setblocking(False)  # required by set_wakeup_fd
        self._sockets = reader, writer
        self._old_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="hyenadna-stop-watchdog",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        reader = self._sockets[0]
        first: int | None = None
        deadline = None
        while not self._done.is_set():
            # (a timeout of 0 would make recv non-blocking: BlockingIOError, not TimeoutError)
            reader.settimeout(None if deadline is None else
                              max(1e-3, deadline - time.monotonic()))
            try:
                data = reader.recv(64)
            except TimeoutError:
                data = None
            except OSError:
                return
            if self._done.is_set() or data == b"":
                return
            if data is None:  # the deadline passed inside the with-block
                self._hard_exit(first)
                return
            for signum in data:
                if first is None and signum in (signal.SIGTERM, signal.SIGINT):
                    first, deadline = signum, time.monotonic() + self.grace_s

    def _hard_exit(self, signum: int) -> None:
        name = signal.Signals(signum).name
        msg = (f"hyenadna: no clean stop {self.grace_s:g} s after {name} (a rank waiting in a "
               f"collective?); exiting without a new checkpoint (train.stop_grace_seconds)\n")
        try:
            os.write(2, msg.encode())
            launcher = getattr(getattr(self.trainer, "strategy", None), "launcher", None)
            if launcher is not None:
                launcher.kill(signal.SIGKILL)  # the other local ranks, stuck with this one
        finally:
            os._exit(128 + signum)


def evaluate(checkpoint: str | Path, genome: str | None = None, overrides: Sequence[str] = (),
             split: str = "test", accelerator: str = "auto",
             values: dict[str, Any] | None = None) -> dict[str, float]:
    """Perplexity and accuracy of a checkpoint on a held-out split of a genome.

    The split is rebuilt from the run config stored in the checkpoint, so the windows are the
    ones the run held out. ``genome`` (e.g. the same FASTA on another machine), ``overrides``
    (``data.key=value`` strings, parsed as YAML) and ``values`` (``{"data.key": value}``, None
    skipped) change it; ``data.max_eval_windows`` large enough covers the whole split. Official
    release folders work too (their data settings come from the defaults and the overrides).

    Returns:
        dict with loss (nats per base), perplexity, accuracy, tokens (bases scored) and windows.
    """
    model_cfg, ckpt, _ = read_model_config(checkpoint)
    run = (ckpt.get("hyenadna") or {}).get("pretrain") or {}
    base = {"data": dict(run.get("data") or {}), "train": dict(run.get("train") or {})}
    if genome is not None:
        base["data"]["genome"] = str(genome)
    base["train"].update(devices=1, num_nodes=1, strategy="auto", accelerator=accelerator)
    base["model"] = to_dict(model_cfg)
    cfg = replace_dotted(load_config(PretrainConfig, None, list(overrides), base=base),
                         values or {})
    module = PretrainModule(cfg)
    module.model = HyenaDNA.from_pretrained(checkpoint)
    data = PretrainDataModule(cfg)
    data.setup("test")
    loader = data.eval_dataloader(split)
    trainer = build_trainer(cfg, logger=False)
    trainer.test(module, dataloaders=loader, verbose=False)
    m = trainer.callback_metrics
    if "test/loss" not in m:
        raise ValueError(f"the {split} split has no windows to evaluate")
    return {"loss": float(m["test/loss"]), "perplexity": float(m["test/perplexity"]),
            "accuracy": float(m["test/accuracy"]), "tokens": float(m["test/tokens"]),
            "windows": float(len(data.fixed_windows(split)))}


__all__ = ["PretrainModule", "PretrainResult", "build_trainer", "evaluate", "pretrain"]
