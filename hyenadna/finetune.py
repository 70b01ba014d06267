"""Fine-tuning: a pretrained (or random) backbone + classification head on a GUE-style task.

Pipeline position: tasks.py (validated splits) → this module (Lightning training, model
selection on dev MCC, test evaluation) → ``out_dir`` (best.ckpt, metrics.json, config.yaml,
logs/metrics.csv). The recipe follows the official HyenaDNA fine-tuning (mean pooling, one
Linear head, whole backbone trained, AdamW lr 6e-4, weight decay 0.1, cosine schedule) with two
fixes: right padding + masked pooling (padding never reaches the prediction), and early
stopping / checkpoint selection on dev MCC, the metric GUE reports.

The checkpoint is a Lightning checkpoint whose state dict keys are ``model.backbone.*`` and
``model.head.*`` with ``ckpt["hyenadna"] = classifier_metadata(...)``, so
``hyenadna.checkpoint.load_classifier`` (and ``hyenadna score``) read it back without Lightning.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

from hyenadna import __version__
from hyenadna.checkpoint import atomic_checkpoint_io, classifier_metadata
from hyenadna.config import (
    FinetuneConfig,
    FinetuneTrainConfig,
    HeadConfig,
    atomic_write_text,
    save_config,
    to_dict,
)
from hyenadna.heads import HyenaDNAClassifier
from hyenadna.metrics import classification_metrics
from hyenadna.optim import build_optimizer
from hyenadna.pretrain_callbacks import StderrProgressBar
from hyenadna.tasks import (
    ClassificationDataset,
    TaskData,
    TaskSpec,
    class_weights,
    collate,
    embedded_sample_dir,
    get_task,
    load_task_data,
)

log = logging.getLogger(__name__)

MONITOR = "val_mcc"


class FinetuneModule(pl.LightningModule):
    """Lightning wrapper: ``self.model`` is the HyenaDNAClassifier (checkpoint keys ``model.*``).

    Validation and test collect class probabilities (B, K) — averaged over both strands when
    ``cfg.rc_average`` — and compute the metrics over the whole split at the epoch's end
    (MCC is not an average of per-batch values). ``results[stage]`` holds the last ones.
    """

    def __init__(self, model: HyenaDNAClassifier, cfg: FinetuneTrainConfig,
                 task_meta: dict[str, Any], total_steps: int,
                 weights: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.task_meta = task_meta
        self.total_steps = total_steps
        # non-persistent: the checkpoint holds only model.* weights (the contract)
        self.register_buffer("class_weights", weights, persistent=False)
        self.results: dict[str, dict[str, float]] = {}
        self._collected: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"val": [],
                                                                                "test": []}
        if cfg.freeze_backbone:
            self.model.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> FinetuneModule:
        """Lightning switches modes around validation; a frozen backbone must stay in eval
        mode so its dropout stays off and the head sees the features it will be tested on."""
        super().train(mode)
        if self.cfg.freeze_backbone:
            self.model.backbone.eval()
        return self

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self.model(batch["input_ids"], batch["mask"])  # (B, K) float32
        loss = F.cross_entropy(logits, batch["labels"], weight=self.class_weights)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _collect(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        probs = self.model.predict_proba(batch["input_ids"], batch["mask"],
                                         rc_average=self.cfg.rc_average)  # (B, K)
        self._collected[stage].append((batch["labels"].cpu(), probs.float().cpu()))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch, "test")

    def _summarise(self, stage: str) -> None:
        labels = torch.cat([lab for lab, _ in self._collected[stage]]).numpy()
        probs = torch.cat([p for _, p in self._collected[stage]]).numpy()
        self._collected[stage].clear()
        self.results[stage] = classification_metrics(labels, probs)
        for key in ("mcc", "f1", "accuracy", "auroc"):
            self.log(f"{stage}_{key}", self.results[stage][key], prog_bar=key == "mcc")

    def on_validation_epoch_end(self) -> None:
        self._summarise("val")

    def on_test_epoch_end(self) -> None:
        self._summarise("test")

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.cfg
        overrides = None
        if cfg.backbone_lr_scale != 1.0 and not cfg.freeze_backbone:
            overrides = {"backbone.": cfg.lr * cfg.backbone_lr_scale}
        optimizer, scheduler = build_optimizer(
            self.model, lr=cfg.lr, weight_decay=cfg.weight_decay, total_steps=self.total_steps,
            warmup_steps=int(cfg.warmup_fraction * self.total_steps),
            min_lr_ratio=cfg.min_lr_ratio, lr_overrides=overrides)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hyenadna"] = classifier_metadata(self.model.config, self.model.head_config,
                                                     self.task_meta)


def resolve_data_dir(cfg: FinetuneConfig) -> tuple[Path, bool]:
    """(task folder, whether it is the embedded sample) for ``cfg.data``; checks the task."""
    get_task(cfg.data.task, cfg.data.num_classes)  # a bad task name fails before anything else
    if cfg.data.path is None:
        return embedded_sample_dir(cfg.data.task), True
    return Path(cfg.data.path), False


def build_classifier(cfg: FinetuneConfig, task: TaskSpec) -> HyenaDNAClassifier:
    """The classifier to train: backbone from ``train.pretrained`` (its own model config, never
    the YAML's) or random init from ``cfg.model``; head from ``cfg.head`` with the task's K."""
    if cfg.head.n_classes not in (HeadConfig.n_classes, task.n_classes):
        raise ValueError(f"head.n_classes: {cfg.head.n_classes} contradicts task "
                         f"{task.name!r} ({task.n_classes} classes); set data.num_classes")
    head_cfg = HeadConfig(**{**to_dict(cfg.head), "n_classes": task.n_classes})
    return HyenaDNAClassifier.from_backbone(cfg.train.pretrained, head_cfg, cfg.model)


def make_loaders(data: TaskData, cfg: FinetuneConfig, pin_memory: bool
                 ) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train (shuffled, optionally RC-augmented), validation and test DataLoaders.

    Only the training loader gets worker processes: evaluation splits are small, and starting
    workers for each of them costs more than collating their batches in the main process.
    """
    workers = cfg.data.num_workers
    train = DataLoader(ClassificationDataset(data.train, cfg.data.rc_aug), shuffle=True,
                       batch_size=cfg.data.batch_size, collate_fn=collate, num_workers=workers,
                       persistent_workers=workers > 0, pin_memory=pin_memory)
    evals = [DataLoader(ClassificationDataset(split), batch_size=2 * cfg.data.batch_size,
                        collate_fn=collate, pin_memory=pin_memory)
             for split in (data.val, data.test)]
    return train, evals[0], evals[1]


def schedule(cfg: FinetuneTrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total optimiser steps for the LR schedule, validate every this many steps)."""
    total = cfg.max_epochs * steps_per_epoch
    if cfg.max_steps > 0:
        total = min(total, cfg.max_steps)
    every = cfg.val_every_steps or steps_per_epoch
    return total, max(1, min(every, total))  # at least one validation before the step budget


def resolve_hardware(cfg: FinetuneTrainConfig) -> tuple[str, str]:
    """(Lightning accelerator, precision): bf16-mixed on a GPU that supports it, else fp32."""
    accelerator = cfg.accelerator.replace("cuda", "gpu")
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    precision = cfg.precision
    if precision == "auto":
        gpu_bf16 = accelerator == "gpu" and torch.cuda.is_bf16_supported()
        precision = "bf16-mixed" if gpu_bf16 else ("16-mixed" if accelerator == "gpu"
                                                   else "32-true")
    return accelerator, precision


def device_name(trainer: pl.Trainer) -> str:
    """Human-readable device of a run, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu (x86_64, 2 threads)'."""
    device = trainer.strategy.root_device
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def build_trainer(cfg: FinetuneTrainConfig, out_dir: Path, accelerator: str, precision: str,
                  val_every: int) -> tuple[pl.Trainer, ModelCheckpoint]:
    """Trainer with dev-MCC checkpointing and early stopping, atomic checkpoint writes."""
    best = ModelCheckpoint(dirpath=out_dir, filename="best", monitor=MONITOR, mode="max",
                           save_top_k=1, save_weights_only=True, auto_insert_metric_name=False,
                           enable_version_counter=False)
    callbacks: list[pl.Callback] = [best]
    if cfg.patience > 0:
        callbacks.append(EarlyStopping(monitor=MONITOR, mode="max", patience=cfg.patience,
                                       check_on_train_epoch_end=False))
    if cfg.progress_bar:
        callbacks.append(StderrProgressBar())
    trainer = pl.Trainer(
        accelerator=accelerator, devices=cfg.devices, precision=precision,
        max_epochs=cfg.max_epochs, max_steps=cfg.max_steps,
        max_time=datetime.timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
        val_check_interval=val_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        gradient_clip_val=cfg.grad_clip or None, callbacks=callbacks,
        logger=CSVLogger(out_dir, name="logs", version=""), log_every_n_steps=min(50, val_every),
        plugins=[atomic_checkpoint_io()], enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False, default_root_dir=out_dir)
    return trainer, best


def _task_metadata(task: TaskSpec, data: TaskData, cfg: FinetuneConfig) -> dict[str, Any]:
    """``ckpt["hyenadna"]["task"]``: what a scorer needs to use the classifier correctly."""
    longest = max(int(split.lengths.max()) for split in (data.train, data.val, data.test))
    return {"name": task.name, "class_names": list(task.class_names),
            "seq_len": task.seq_len or longest, "rc_average": cfg.train.rc_average,
            "protocol": data.protocol}


def _evaluate_best(trainer: pl.Trainer, module: FinetuneModule, best: ModelCheckpoint,
                   loaders: tuple[DataLoader, DataLoader], out_dir: Path) -> Path:
    """Load the best-dev-MCC weights and evaluate them on dev and test; returns their path.

    If training stopped before any validation (time budget), the final weights are saved and
    used instead, so a run always leaves a checkpoint.
    """
    path = Path(best.best_model_path) if best.best_model_path else out_dir / "best.ckpt"
    if not best.best_model_path:
        log.warning("no validation ran before training stopped; keeping the final weights")
        trainer.save_checkpoint(path, weights_only=True)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    trainer.validate(module, loaders[0], verbose=False)
    trainer.test(module, loaders[1], verbose=False)
    return path


def finetune(cfg: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune a classifier as ``cfg`` says; write out_dir/{best.ckpt, metrics.json,
    config.yaml, logs/} and return the metrics.json content.

    Raises:
        ValueError / FileNotFoundError: bad task, data (file and line named) or checkpoint.
    """
    start = time.time()
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    task = get_task(cfg.data.task, cfg.data.num_classes)
    folder, embedded = resolve_data_dir(cfg)
    model = build_classifier(cfg, task)
    data = load_task_data(folder, task, model.config.l_max, cfg.data.dev_train_fraction,
                          cfg.data.split_seed)
    cfg = FinetuneConfig(model=model.config, head=model.head_config, data=cfg.data,
                         train=cfg.train)  # as run: the checkpoint's model section
    out_dir = Path(cfg.train.out_dir)
    save_config(cfg, out_dir / "config.yaml")

    accelerator, precision = resolve_hardware(cfg.train)
    loaders = make_loaders(data, cfg, pin_memory=accelerator == "gpu")
    total_steps, val_every = schedule(cfg.train, len(loaders[0]))
    weights = class_weights(data.train.labels, task.n_classes, cfg.train.class_weights)
    module = FinetuneModule(model, cfg.train, _task_metadata(task, data, cfg), total_steps,
                            weights)
    trainer, best = build_trainer(cfg.train, out_dir, accelerator, precision, val_every)
    with warnings.catch_warnings():  # out_dir already holds config.yaml: expected, not news
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* not empty")
        trainer.fit(module, loaders[0], loaders[1])
    train_minutes = (time.time() - start) / 60
    best_path = _evaluate_best(trainer, module, best, loaders[1:], out_dir)

    result = {
        "task": module.task_meta, "protocol": data.protocol,
        "protocol_detail": data.protocol_detail, "data": str(folder),
        "embedded_sample": embedded, "init": cfg.train.pretrained or "random",
        "dev": module.results["val"], "test": module.results["test"],
        "best_checkpoint": str(best_path), "steps": trainer.global_step,
        "epochs": trainer.current_epoch, "n_params": model.num_parameters(),
        "n_trainable_params": model.num_parameters(trainable_only=True),
        "minutes": (time.time() - start) / 60, "train_minutes": train_minutes,
        "device": device_name(trainer), "precision": precision, "seed": cfg.train.seed,
        "version": __version__,
    }
    atomic_write_text(out_dir / "metrics.json", json.dumps(_json_safe(result), indent=2) + "\n")
    return _json_safe(result)


def _json_safe(value: Any) -> Any:
    """NaN → None (e.g. AUROC of a one-class split): strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
