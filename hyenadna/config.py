"""Typed configuration: the single source of truth for every run.

Each section is a dataclass whose fields carry a one-line docstring and a default that runs the
tiny demo. YAML files in ``configs/`` are flat data with one top-level key per section (``model``,
``data``, ``train``, ...); an unknown key anywhere is an error that names it. Precedence is
dataclass default < YAML < command-line ``--set section.key=value``.

This module holds the model section and the generic load/override/save machinery; the run
configs of pretraining, fine-tuning and scoring live beside it below.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from hyenadna.atomic import atomic_write_text

T = TypeVar("T")


@dataclass
class ModelConfig:
    """HyenaDNA architecture. Field names follow the official release so configs line up."""

    d_model: int = 128
    """Width of the residual stream."""
    n_layer: int = 2
    """Number of Hyena blocks."""
    d_inner: int | None = None
    """Hidden width of each block's MLP; None means 4 · d_model (all official releases)."""
    vocab_size: int = 12
    """Tokenizer vocabulary size (official: 12)."""
    pad_vocab_size_multiple: int = 8
    """Embedding rows are padded to a multiple of this (12 → 16) for efficient matmuls."""
    l_max: int = 1026
    """Longest sequence the implicit filters are built for (official: max length + 2)."""
    order: int = 2
    """Hyena order N: number of gates; N - 1 long convolutions per operator."""
    filter_order: int = 64
    """Width of the implicit filter's FFN."""
    emb_dim: int = 5
    """Positional feature size of the implicit filter (t plus (emb_dim-1)/2 cos/sin bands)."""
    short_filter_order: int = 3
    """Kernel size of the causal depthwise short convolution (official 'local_order')."""
    w: float = 10.0
    """Initial frequency of the sine activations in the implicit filter."""
    shift: float = 0.0
    """Additive shift of the exponential decay window (training code 0.0; standalone file 0.05)."""
    modulate: bool = True
    """Apply the exponential decay window to the implicit filter."""
    embed_dropout: float = 0.1
    """Dropout on the token embeddings (applied at the first block's residual)."""
    resid_dropout: float = 0.0
    """Dropout on each block's outputs before the residual add."""
    layer_norm_epsilon: float = 1e-5
    """LayerNorm epsilon."""
    initializer_range: float = 0.02
    """Std of the normal init of Linear and Embedding weights (GPT-2 scheme)."""
    gradient_checkpointing: bool = False
    """Recompute each block in the backward pass instead of storing its activations."""

    def __post_init__(self) -> None:
        if self.d_inner is None:
            self.d_inner = 4 * self.d_model
        for name in ("d_model", "n_layer", "l_max", "filter_order", "short_filter_order"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.order < 2:
            raise ValueError(f"model.order must be >= 2, got {self.order}")
        if self.emb_dim < 3 or self.emb_dim % 2 == 0:
            raise ValueError(f"model.emb_dim must be odd and >= 3, got {self.emb_dim}")
        if self.vocab_size < 12:
            raise ValueError(f"model.vocab_size must be >= 12, got {self.vocab_size}")

    @property
    def padded_vocab_size(self) -> int:
        """Embedding rows: vocab_size rounded up to pad_vocab_size_multiple."""
        m = self.pad_vocab_size_multiple
        return (self.vocab_size + m - 1) // m * m

    @property
    def max_seq_len(self) -> int:
        """Longest input the model accepts (its filters are l_max long)."""
        return self.l_max


# --------------------------------------------------------------------------------------------
# Generic machinery: dict <-> dataclass with strict keys, dotted overrides, atomic save.
# --------------------------------------------------------------------------------------------


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys raise ValueError naming them."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown config key {where + unknown[0]!r} (known in this section: "
            f"{', '.join(sorted(known))})"
        )
    kwargs = {}
    for name, value in data.items():
        sub = _dataclass_type(hints[name])
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value, f"{where}{name}.")
        kwargs[name] = _as_number(value, hints[name], f"{where}{name}")
    try:
        return cls(**kwargs)
    except TypeError as err:  # e.g. a required field missing
        raise ValueError(f"config section {where or cls.__name__}: {err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass → plain nested dict (YAML/JSON-serialisable)."""
    return dataclasses.asdict(cfg)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML raises an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of sections at the top level")
    return loaded or {}


def load_config(cls: type[T], path: str | os.PathLike | None = None,
                overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None, prefix: str = "") -> T:
    """Build ``cls`` from ``base`` (or a YAML file) plus ``section.key=value`` overrides.

    Args:
        cls: the dataclass to build.
        path: YAML file to read (its top-level keys are ``cls``'s fields).
        overrides: ``a.b=value`` strings; the value is parsed as YAML (``1e-3``, ``[chr1]``).
        base: a dict to start from instead of a file.
        prefix: dotted prefix the overrides carry for this section (``"model."``), stripped.
    """
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        data = read_yaml(path)
    for item in overrides:
        if prefix and not item.startswith(prefix):
            raise ValueError(f"override {item!r} must start with {prefix!r}")
        _set_dotted(data, item[len(prefix):])
    try:
        return from_dict(cls, data, prefix)
    except ValueError as err:
        raise ValueError(f"{path}: {err}" if path is not None else str(err)) from None


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _set_dotted(data: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override to a nested dict; the value is parsed as YAML."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like section.key=value")
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {item!r}: {key!r} is not a section")
    node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else None


def _as_number(value: Any, hint: Any, key: str) -> Any:
    """Parse a number given as a string for an int/float field, or raise ValueError naming
    the key. YAML 1.1 reads ``6e-4`` (no dot) as a string, so ``--set train.lr=6e-4`` and
    ``lr: 6e-4`` in a file need this. Fields that also accept strings are left alone."""
    options = set(get_args(hint)) if get_origin(hint) is not None else {hint}
    want = int if int in options and float not in options else float if float in options else None
    if want is None or str in options or isinstance(value, bool):
        return value
    if not isinstance(value, str) and not (want is int and isinstance(value, float)):
        return value
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if want is int and not number.is_integer():
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return want(number)


def _dataclass_type(hint: Any) -> type | None:
    """The dataclass in a type hint (``X`` or ``X | None``), else None."""
    if is_dataclass(hint):
        return hint
    if get_origin(hint) is not None:
        for arg in get_args(hint):
            if is_dataclass(arg):
                return arg
    return None


__all__ = [
    "ModelConfig",
    "atomic_write_text",
    "from_dict",
    "load_config",
    "read_yaml",
    "save_config",
    "to_dict",
]


# --------------------------------------------------------------------------------------------
# Pretraining run config (issue 3): sections model / data / train.
# --------------------------------------------------------------------------------------------

SOFT_MASK_MODES = ("keep", "drop")
PRETRAIN_PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")


@dataclass
class GenomeDataConfig:
    """Reference genome, its train/valid/test split and the windows cut from it."""

    genome: str | None = None
    """FASTA, plain or BGZF ``.fa.gz``; None: the embedded demo (1.5 Mb of hg19 chr22, data/)."""
    bed: str | None = None
    """BED of ``chrom start end split`` rows, split in train/valid/test (official layout)."""
    valid_chroms: list[str] = dataclasses.field(default_factory=list)
    """Contigs held out whole for validation (without a bed)."""
    test_chroms: list[str] = dataclasses.field(default_factory=list)
    """Contigs held out whole for testing (without a bed)."""
    valid_ranges: list[str] = dataclasses.field(default_factory=list)
    """Validation ranges ``chrom:start-end`` (0-based, end-exclusive, as in BED)."""
    test_ranges: list[str] = dataclasses.field(default_factory=list)
    """Test ranges ``chrom:start-end`` (0-based, end-exclusive, as in BED)."""
    valid_fraction: float = 0.05
    """No valid chroms/ranges: hold out this share of each contig, just before its test part."""
    test_fraction: float = 0.05
    """No test chroms/ranges: hold out this share at the end of each contig."""
    contig_pattern: str | None = None
    """Regex a contig name must match in full to be used (e.g. ``chr[0-9XY]+``); None: all."""
    min_contig_length: int = 0
    """Contigs shorter than this are not used (drops unplaced scaffolds)."""
    max_n_fraction: float = 0.5
    """Windows with a larger share of N are skipped (train: resampled; valid/test: dropped)."""
    soft_mask: str = "keep"
    """'keep': lowercase (repeat-masked) bases are ordinary bases; 'drop': they count as N."""
    ignore_n_in_loss: bool = True
    """Leave N targets out of the loss and the metrics (ignore_index)."""
    rc_aug: bool = False
    """Reverse-complement each training window with probability 1/2 (official: off)."""
    seq_len: int = 1024
    """Tokens per window in the final stage (a window spans seq_len + 1 bases)."""
    max_eval_windows: int = 64
    """Most fixed validation/test windows, spread evenly over the held-out intervals."""
    num_workers: int = 2
    """DataLoader worker processes per device (0: read in the training process)."""
    index_cache_dir: str | None = None
    """Folder for .fai/.gzi when the genome's own folder is read-only; None: ~/.cache/hyenadna."""

    def __post_init__(self) -> None:
        for name in ("valid_chroms", "test_chroms", "valid_ranges", "test_ranges"):
            value = getattr(self, name)
            if isinstance(value, str):  # from --set data.valid_chroms=chr21,chr22
                setattr(self, name, [v for v in value.split(",") if v])
            elif not isinstance(value, list):
                raise ValueError(f"data.{name} must be a list, got {value!r}")
        for name in ("valid_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ValueError(f"data.{name} must be in [0, 0.5), got {getattr(self, name)}")
        if not 0.0 < self.max_n_fraction <= 1.0:
            raise ValueError(f"data.max_n_fraction must be in (0, 1], got {self.max_n_fraction}")
        if self.soft_mask not in SOFT_MASK_MODES:
            raise ValueError(f"data.soft_mask must be one of {SOFT_MASK_MODES}, "
                             f"got {self.soft_mask!r}")
        if self.bed is not None and (self.valid_chroms or self.test_chroms
                                     or self.valid_ranges or self.test_ranges):
            raise ValueError("data.bed sets the splits: drop data.valid_chroms/test_chroms/"
                             "valid_ranges/test_ranges, or drop data.bed")
        for name in ("seq_len", "max_eval_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_contig_length", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class TrainConfig:
    """Optimisation, schedule, checkpointing and hardware of a pretraining run."""

    out_dir: str = "runs/pretrain"
    """Where config.yaml, last.ckpt, best.ckpt, CSV logs and the curve plot go."""
    seed: int = 0
    """Seed of the weight init and of every training window (the data order)."""
    max_steps: int = 200
    """Optimizer steps of the run; the cosine schedule ends here."""
    max_time: str | None = None
    """Wall-clock budget of this invocation, [[DD:]HH:]MM:SS; at expiry last.ckpt is saved."""
    global_batch_size: int = 16
    """Windows per optimizer step in the final stage, over all devices and accumulation."""
    accumulate_grad_batches: int = 1
    """Micro-batches per optimizer step on each device (must stay the same on resume)."""
    seqlen_warmup_stages: int = 2
    """Stages before the final one, each half as long with twice the batch (0: no warm-up)."""
    seqlen_warmup_steps: int = 40
    """Optimizer steps spent in each warm-up stage."""
    lr: float = 6e-4
    """Peak learning rate (official 6e-4)."""
    weight_decay: float = 0.1
    """AdamW weight decay (norms, biases and implicit-filter parameters get none)."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.999
    """AdamW beta2."""
    warmup_fraction: float = 0.01
    """Share of max_steps spent in the linear learning-rate warm-up (official 1%)."""
    min_lr_ratio: float = 0.1
    """Cosine floor as a fraction of lr."""
    gradient_clip_val: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""
    precision: str = "auto"
    """'auto' (bf16-mixed on GPU, 32-true on CPU), '32-true', 'bf16-mixed' or '16-mixed'."""
    compile: bool = False
    """torch.compile each Hyena block (the FFT mixer and MLP ops stay opaque kernels). On an H100
    it made the small-32k step 1.11x and the large-1m step at 131k 1.18x faster, tiny-1k 0.94x
    (benchmarks/results/train); the first step of every new length compiles (~10-25 s)."""
    val_every_steps: int = 50
    """Validate every this many optimizer steps (and at the end)."""
    checkpoint_every_steps: int = 50
    """Write last.ckpt every this many optimizer steps (and at the end, or when stopped)."""
    log_every_steps: int = 10
    """Write training metrics to the CSV log every this many optimizer steps."""
    accelerator: str = "auto"
    """Lightning accelerator: 'auto' (GPU if present), 'cpu' or 'gpu'."""
    devices: int | str = "auto"
    """Devices per node (Lightning): a count, 'auto' or a list string like '0,1'."""
    num_nodes: int = 1
    """Machines of a multi-node run (Lightning; e.g. SLURM)."""
    strategy: str = "auto"
    """Lightning strategy: 'auto', 'ddp', 'ddp_spawn' or 'fsdp' (FSDP wraps each block)."""
    progress_bar: bool = True
    """Show Lightning's progress bar on stderr."""
    stop_grace_seconds: float = 120.0
    """After SIGTERM or Ctrl-C, exit at once (code 128 + signal, no new checkpoint) if the clean
    stop has not finished within this many seconds, e.g. a rank waits forever in a collective
    (0: wait for ever)."""

    def __post_init__(self) -> None:
        if isinstance(self.devices, str) and self.devices.strip().isdigit():
            self.devices = int(self.devices)  # --devices 2 arrives as a string
        for name in ("max_steps", "global_batch_size", "accumulate_grad_batches",
                     "val_every_steps", "checkpoint_every_steps", "log_every_steps", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("seqlen_warmup_stages", "seqlen_warmup_steps", "weight_decay",
                     "gradient_clip_val", "stop_grace_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        for name in ("beta1", "beta2", "warmup_fraction", "min_lr_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"train.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.precision not in PRETRAIN_PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRETRAIN_PRECISIONS}, "
                             f"got {self.precision!r}")
        if self.accelerator not in ("auto", "cpu", "gpu", "cuda"):
            raise ValueError("train.accelerator must be auto, cpu or gpu, "
                             f"got {self.accelerator!r}")
        if self.max_time is not None:
            self.max_time_seconds  # noqa: B018 (validates the format)

    @property
    def warmup_steps(self) -> int:
        """Learning-rate warm-up steps: warmup_fraction of max_steps, rounded up."""
        import math

        return math.ceil(self.warmup_fraction * self.max_steps)

    @property
    def max_time_seconds(self) -> float | None:
        """max_time in seconds (None: no budget)."""
        if self.max_time is None:
            return None
        parts = str(self.max_time).split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if not 1 <= len(values) <= 4 or any(v < 0 for v in values):
            raise ValueError(f"train.max_time must look like [[DD:]HH:]MM:SS or seconds, "
                             f"got {self.max_time!r}")
        scale = (1, 60, 3600, 86400)
        return sum(v * s for v, s in zip(reversed(values), scale))


@dataclass
class PretrainConfig:
    """One complete pretraining run: the model, the genome data and the training recipe."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    """Architecture (the ``model:`` section)."""
    data: GenomeDataConfig = dataclasses.field(default_factory=GenomeDataConfig)
    """Genome, splits and windows (the ``data:`` section)."""
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    """Optimisation and hardware (the ``train:`` section)."""

    def __post_init__(self) -> None:
        stages = self.train.seqlen_warmup_stages
        if self.model.l_max < self.data.seq_len:
            raise ValueError(f"model.l_max ({self.model.l_max}) must be >= data.seq_len "
                             f"({self.data.seq_len})")
        if self.data.seq_len % 2**stages or self.data.seq_len >> stages < 2:
            raise ValueError(f"data.seq_len ({self.data.seq_len}) must be divisible by "
                             f"2**train.seqlen_warmup_stages ({2**stages}) with a quotient >= 2")
        if stages and self.train.seqlen_warmup_steps < 1:
            raise ValueError("train.seqlen_warmup_steps must be >= 1 when "
                             "train.seqlen_warmup_stages > 0")

    @property
    def seqlen_stages(self) -> list[tuple[int, int, int]]:
        """Sequence-length warm-up as (first step, seq_len, global batch) per stage: each stage
        doubles the length and halves the batch, so tokens per step stay constant."""
        n = self.train.seqlen_warmup_stages
        return [(k * self.train.seqlen_warmup_steps, self.data.seq_len >> (n - k),
                 self.train.global_batch_size << (n - k)) for k in range(n + 1)]

    @property
    def tokens_per_step(self) -> int:
        """Input tokens per optimizer step over all devices (the same in every stage)."""
        return self.data.seq_len * self.train.global_batch_size


__all__ += ["GenomeDataConfig", "PretrainConfig", "TrainConfig"]


# --------------------------------------------------------------------------------------------
# Fine-tuning run config (issue 4).
# --------------------------------------------------------------------------------------------

HEAD_POOLINGS = ("mean", "last")
FINETUNE_PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")


@dataclass
class HeadConfig:
    """Classification head on top of the backbone (re-exported by ``hyenadna.heads``)."""

    n_classes: int = 2
    """Number of output classes; ``finetune`` takes it from the task (leave it unset in YAML)."""
    pooling: str = "mean"
    """'mean' over real tokens, or 'last' real token (the causal model's summary)."""
    hidden_dim: int = 0
    """0: a single Linear layer (official); > 0: Linear → GELU → Linear with this width."""
    dropout: float = 0.0
    """Dropout on the pooled vector."""

    def __post_init__(self) -> None:
        if self.pooling not in HEAD_POOLINGS:
            raise ValueError(f"head.pooling must be one of {HEAD_POOLINGS}, got {self.pooling!r}")
        if self.n_classes < 2:
            raise ValueError(f"head.n_classes must be >= 2, got {self.n_classes}")
        if self.hidden_dim < 0:
            raise ValueError(f"head.hidden_dim must be >= 0, got {self.hidden_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"head.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class FinetuneDataConfig:
    """Which task and CSV folder to fine-tune on, and how batches are built."""

    task: str = "tf"
    """'promoter', 'core-promoter', 'splice', 'tf' or 'custom' (see hyenadna/tasks.py)."""
    path: str | None = None
    """Folder with train/dev/test.csv[.gz]; None: the embedded GUE sample in data/gue/."""
    num_classes: int | None = None
    """Classes of a 'custom' task (labels 0..K-1); for a named task None or its own count."""
    batch_size: int = 32
    """Training sequences per step (evaluation uses twice as many)."""
    num_workers: int = 0
    """Worker processes of the training DataLoader (0: load in the main process, fine on CPU)."""
    rc_aug: bool = False
    """Reverse-complement each training sequence with probability 1/2 (strand-free tasks)."""
    dev_train_fraction: float = 0.8
    """Reduced protocol (no train.csv): share of dev.csv trained on; the rest validates."""
    split_seed: int = 0
    """Seed of the reduced protocol's dev split (fixed so every run sees the same split)."""

    def __post_init__(self) -> None:
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"data.num_classes must be >= 2, got {self.num_classes}")
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")
        if not 0.0 < self.dev_train_fraction < 1.0:
            raise ValueError(f"data.dev_train_fraction must be in (0, 1), "
                             f"got {self.dev_train_fraction}")


@dataclass
class FinetuneTrainConfig:
    """Optimisation, stopping, evaluation and hardware of a fine-tuning run."""

    pretrained: str | None = None
    """Backbone: a hyenadna .ckpt or an official release folder; None: random init from model."""
    out_dir: str = "runs/finetune"
    """Where config.yaml, metrics.json, best.ckpt and the CSV logs go."""
    seed: int = 0
    """Seed of weights init, shuffling and augmentation."""
    max_epochs: int = 3
    """Upper bound on passes over the training split."""
    max_steps: int = -1
    """Upper bound on optimiser steps (-1: none); whichever bound comes first stops training."""
    max_minutes: float = 0.0
    """Wall-clock bound on training in minutes (0: none); the best checkpoint so far is kept."""
    lr: float = 6e-4
    """Peak learning rate of the head (and of the backbone unless scaled; official: 6e-4)."""
    backbone_lr_scale: float = 1.0
    """Backbone learning rate = lr · this (official: 1.0, the whole model at one lr)."""
    freeze_backbone: bool = False
    """Train only the head; the backbone stays in eval mode (no dropout) and gets no gradient."""
    weight_decay: float = 0.1
    """AdamW decay on matrices; norms, biases and implicit-filter parameters get none."""
    warmup_fraction: float = 0.05
    """Share of the total steps spent in linear warm-up before the cosine decay."""
    min_lr_ratio: float = 0.1
    """Floor of the cosine schedule as a fraction of the peak learning rate."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""
    class_weights: str | list[float] = "none"
    """Cross-entropy class weights: 'none', 'balanced' (inverse train frequency) or K floats."""
    rc_average: bool = False
    """Evaluate on both strands and average the probabilities (only for strand-free tasks)."""
    patience: int = 5
    """Early stopping: validations without a better dev MCC before training stops (0: off)."""
    val_every_steps: int = 0
    """Validate every this many steps (0: once per epoch, or at the end if max_steps is sooner)."""
    accelerator: str = "auto"
    """Lightning accelerator: 'auto', 'cpu' or 'gpu'."""
    devices: int | list[int] = 1
    """Number of devices, or a list of CUDA indices such as [1]; one device per run."""
    precision: str = "auto"
    """'auto' (bf16-mixed on GPU, 32-true on CPU), '32-true', 'bf16-mixed' or '16-mixed'."""
    progress_bar: bool = True
    """Show a progress bar on stderr."""

    def __post_init__(self) -> None:
        positive = {"max_epochs": self.max_epochs, "lr": self.lr}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"train.{name} must be > 0, got {value}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"train.max_steps must be -1 (none) or >= 1, got {self.max_steps}")
        for name in ("max_minutes", "backbone_lr_scale", "weight_decay", "grad_clip",
                     "patience", "val_every_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("warmup_fraction", "min_lr_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"train.{name} must be in [0, 1], got {getattr(self, name)}")
        if isinstance(self.class_weights, str) and self.class_weights not in ("none", "balanced"):
            raise ValueError("train.class_weights must be 'none', 'balanced' or a list of floats,"
                             f" got {self.class_weights!r}")
        if self.accelerator not in ("auto", "cpu", "gpu", "cuda"):
            raise ValueError(f"train.accelerator must be 'auto', 'cpu' or 'gpu', "
                             f"got {self.accelerator!r}")
        if self.precision not in FINETUNE_PRECISIONS:
            raise ValueError(f"train.precision must be one of {FINETUNE_PRECISIONS}, "
                             f"got {self.precision!r}")


@dataclass
class FinetuneConfig:
    """``hyenadna finetune``: one complete run (sections model / head / data / train)."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    """Architecture for random init; with train.pretrained the checkpoint's config is used."""
    head: HeadConfig = dataclasses.field(default_factory=HeadConfig)
    """Pooling and classifier on top of the backbone."""
    data: FinetuneDataConfig = dataclasses.field(default_factory=FinetuneDataConfig)
    """Task, CSV folder and batching."""
    train: FinetuneTrainConfig = dataclasses.field(default_factory=FinetuneTrainConfig)
    """Optimisation, stopping and hardware."""


def replace_dotted(cfg: T, values: dict[str, Any]) -> T:
    """A copy of dataclass ``cfg`` with ``{"section.key": value}`` set, re-validated.

    None values are skipped, so unset command-line flags leave the config alone. Values keep
    their Python type (unlike ``--set``, which parses YAML), so a path stays a string.
    """
    data = to_dict(cfg)
    for dotted, value in values.items():
        if value is None:
            continue
        node = data
        *sections, key = dotted.split(".")
        for section in sections:
            node = node[section]
        if key not in node:
            raise ValueError(f"unknown config key {dotted!r}")
        node[key] = value
    return from_dict(type(cfg), data)


__all__ += ["FinetuneConfig", "FinetuneDataConfig", "FinetuneTrainConfig", "HeadConfig",
            "replace_dotted"]


# --------------------------------------------------------------------------------------------
# Scoring / embedding / variant-effect config (issue 5).
# --------------------------------------------------------------------------------------------

DEVICES_HELP = "'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'"
PRECISIONS = ("auto", "fp32", "bf16")
AGGREGATES = ("max", "mean")
SCORE_FORMATS = ("tsv", "bedgraph", "h5")


@dataclass
class InferenceConfig:
    """Options shared by ``score``, ``embed`` and ``variant-effect`` (model, batching, device)."""

    model: str = ""
    """Checkpoint file or official release directory (what each command accepts differs)."""
    output: str = "-"
    """Output path; '-' writes TSV/bedGraph to stdout (HDF5 needs a file)."""
    window: int | None = None
    """Window length in nucleotides; None: the task's seq_len, else the model's l_max - 2."""
    batch_size: int = 32
    """Windows (sequences) per forward pass; with the window it bounds memory."""
    device: str = "auto"
    """Compute device: 'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    precision: str = "auto"
    """'auto' (bf16 autocast on CUDA, fp32 on CPU; variant-effect: fp32), 'fp32' or 'bf16'."""
    progress: bool = False
    """Show a progress bar (records/s, nucleotides/s) on stderr."""

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be {DEVICES_HELP}, got {self.device!r}")


@dataclass
class WindowedInputConfig(InferenceConfig):
    """A FASTA input cut into sliding windows (``score`` and ``embed``)."""

    input: str = "-"
    """FASTA file (plain, gzip or BGZF; '-' = stdin). With a .fai index it is read via pyfaidx."""
    stride: int | None = None
    """Step between window starts; None: the window (no overlap). Must be <= window."""
    min_length: int = 1
    """Records shorter than this are an error (a 0-length record always is)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.min_length < 1:
            raise ValueError(f"min_length must be >= 1, got {self.min_length}")


@dataclass
class ScoreConfig(WindowedInputConfig):
    """``hyenadna score``: class probabilities per window of every FASTA record."""

    format: str | None = None
    """'tsv', 'bedgraph' or 'h5'; None: from the output's extension (stdout: tsv)."""
    aggregate: str | None = None
    """Per-record aggregate row over its windows: 'max' or 'mean' per class; None: none."""
    rc_average: bool | None = None
    """Average probabilities over both strands; None: the task's setting (else off)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format is not None and self.format not in SCORE_FORMATS:
            raise ValueError(f"format must be one of {SCORE_FORMATS}, got {self.format!r}")
        if self.aggregate is not None and self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")


@dataclass
class EmbedConfig(WindowedInputConfig):
    """``hyenadna embed``: mean-pooled (and optionally per-token) hidden states to HDF5."""

    per_token: bool = False
    """Also store every nucleotide's hidden state (length, d_model), chunked and compressed."""


@dataclass
class VariantEffectConfig(InferenceConfig):
    """``hyenadna variant-effect``: zero-shot log-likelihood ratio alt vs ref per variant."""

    genome: str = ""
    """Reference FASTA (plain or BGZF) read through pyfaidx; its .fai is built when missing."""
    variants: str = "-"
    """VCF (plain/gzip) or TSV with columns chrom, pos (1-based), ref, alt; '-' = stdin."""
