"""Torch datasets and the LightningDataModule of next-nucleotide pretraining.

Pipeline stage: genome windows (``genome.py``) → token tensors → ``pretrain.PretrainModule``.

Data order is a pure function, not a stream. Sample ``p`` of the global batch of optimizer
step ``s`` is the window drawn by ``numpy.random.default_rng([seed, s, p])``. Rank ``r`` of ``W``
ranks, in micro-batch ``j`` of ``A`` accumulation steps, takes the ``b = G / (W·A)`` positions
``p = (j·W + r)·b + i``. Hence:

* ranks never share a window within a step, and no sampler state needs to be synchronised;
* resuming at step ``s`` is exact: the sampler simply starts at ``s`` (Lightning has restored
  ``global_step`` before it asks for the train loader);
* the set of windows of a step does not depend on ``W`` or ``A``, so a run resumed on a different
  number of devices sees the same data it would have seen on the old count;
* sequence-length warm-up is part of the same function: the stage of step ``s`` fixes the
  window length and the global batch ``G`` of that step (``PretrainConfig.seqlen_stages``).

Every sample is a dict: ``input_ids`` (L,) int64, ``targets`` (L,) int64 (the next base;
``IGNORE_INDEX`` where it is N and N is left out of the loss), ``window`` (3,) int64 = contig
index, start, reverse-complemented flag, and ``sample`` (2,) int64 = step, position.
Validation/test windows are split over ranks with padding items (all targets IGNORE_INDEX,
``sample`` (-1, -1)), so every rank runs the same number of evaluation batches.
A window spans L + 1 bases: the model reads bases 0..L-1 and predicts bases 1..L.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hyenadna.config import PretrainConfig
from hyenadna.genome import (
    Genome,
    Interval,
    Splits,
    WindowSampler,
    build_splits,
    n_fraction,
    tile_windows,
)
from hyenadna.tokenizer import A_ID, N_ID, T_ID, CharTokenizer, reverse_complement_ids

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
MAX_DRAWS = 32  # redraws of a mostly-N training window before keeping the last one
_TOKENIZER = CharTokenizer(strict=False)  # stray characters become [UNK], never an error
DEMO_GENOME = Path(__file__).resolve().parent.parent / "data" / "hg19_chr22_26.5-28Mb.fa.gz"


def resolve_genome(path: str | None) -> Path:
    """The genome FASTA of a run: ``path``, or the embedded demo genome when None."""
    if path is not None:
        return Path(path)
    if not DEMO_GENOME.is_file():
        raise FileNotFoundError(f"embedded demo genome not found at {DEMO_GENOME} (it ships with "
                                "the source tree); pass --genome")
    return DEMO_GENOME


def encode_window(seq: str, rc: bool, ignore_n: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Bases of one window (L + 1 characters) → input_ids (L,), targets (L,), both int64.

    Targets that are not A/C/G/T (N, and [UNK] for stray characters) become IGNORE_INDEX when
    ``ignore_n``; reverse complementing happens before the shift, so an RC window is simply the
    other strand read 5'→3'.
    """
    ids = _TOKENIZER.encode_numpy(seq)  # (L + 1,) int64; numpy: half the cost of torch here
    if rc:
        ids = reverse_complement_ids(torch.from_numpy(ids)).numpy()
    targets = ids[1:].copy()
    if ignore_n:
        targets[(targets < A_ID) | (targets > T_ID)] = IGNORE_INDEX
    return torch.from_numpy(ids[:-1].copy()), torch.from_numpy(targets)


class TrainWindows(Dataset):
    """Random training windows keyed by ``(step, position, length)`` (see module docstring).

    Args:
        genome: where bases come from.
        regions: training intervals; windows lie wholly inside one of them.
        seed: run seed; with the key it fixes the window.
        max_n_fraction: a window with more N is redrawn (up to MAX_DRAWS times).
        rc_aug: reverse-complement with probability 1/2.
        ignore_n: leave N targets out of the loss.
    """

    def __init__(self, genome: Genome, regions: Sequence[Interval], seed: int,
                 max_n_fraction: float, rc_aug: bool, ignore_n: bool):
        self.genome = genome
        self.sampler = WindowSampler(regions)
        self.seed, self.max_n_fraction = seed, max_n_fraction
        self.rc_aug, self.ignore_n = rc_aug, ignore_n
        self.contig_index = {name: i for i, name in enumerate(genome.contigs)}

    def window(self, step: int, position: int, length: int) -> tuple[Interval, bool, str]:
        """The window (``length`` + 1 bases), its strand flag and its bases for one key."""
        rng = np.random.default_rng([self.seed, step, position])
        for _ in range(MAX_DRAWS):
            iv = self.sampler.sample(length + 1, rng)
            seq = self.genome.fetch(iv)
            if n_fraction(seq) <= self.max_n_fraction:
                break
        rc = bool(self.rc_aug and rng.random() < 0.5)
        return iv, rc, seq

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        step, position, length = key
        iv, rc, seq = self.window(step, position, length)
        input_ids, targets = encode_window(seq, rc, self.ignore_n)
        return {"input_ids": input_ids, "targets": targets,
                "window": torch.tensor([self.contig_index[iv.chrom], iv.start, int(rc)]),
                "sample": torch.tensor([step, position])}


class FixedWindows(Dataset):
    """Fixed validation/test windows (each ``length + 1`` bases), forward strand, followed by
    ``padding`` dummy items that count nothing: ``length`` N inputs whose targets are all
    IGNORE_INDEX, ``window`` (-1, -1, 0) and ``sample`` (-1, -1). The padding gives every rank
    as many batches (see ``PretrainDataModule.eval_dataloader``)."""

    def __init__(self, genome: Genome, windows: Sequence[Interval], ignore_n: bool,
                 padding: int = 0, length: int | None = None):
        if padding and length is None:
            raise ValueError("padding items need the input length")
        self.genome, self.windows, self.ignore_n = genome, list(windows), ignore_n
        self.padding, self.length = padding, length
        self.contig_index = {name: i for i, name in enumerate(genome.contigs)}

    def __len__(self) -> int:
        return len(self.windows) + self.padding

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        if i >= len(self.windows):
            return {"input_ids": torch.full((self.length,), N_ID, dtype=torch.int64),
                    "targets": torch.full((self.length,), IGNORE_INDEX, dtype=torch.int64),
                    "window": torch.tensor([-1, -1, 0]), "sample": torch.tensor([-1, -1])}
        iv = self.windows[i]
        input_ids, targets = encode_window(self.genome.fetch(iv), False, self.ignore_n)
        return {"input_ids": input_ids, "targets": targets,
                "window": torch.tensor([self.contig_index[iv.chrom], iv.start, 0]),
                "sample": torch.tensor([-1, i])}


class StepBatchSampler(Sampler):
    """This rank's micro-batches of ``TrainWindows`` keys, from ``start_step`` to ``total_steps``.

    ``len()`` counts micro-batches from step 0, not from ``start_step``: Lightning restores how
    many batches of the (single, run-long) epoch were done and stops the epoch at ``len()``,
    so the remaining ones must add up to it.
    """

    def __init__(self, stages: Sequence[tuple[int, int, int]], total_steps: int,
                 start_step: int, world_size: int, rank: int, accumulate: int):
        for _, length, batch in stages:
            if batch % (world_size * accumulate):
                raise ValueError(
                    f"global batch {batch} (at length {length}) is not divisible by devices × "
                    f"accumulation = {world_size} × {accumulate}; change train.global_batch_size"
                    " or train.accumulate_grad_batches")
        self.stages, self.total_steps, self.start_step = list(stages), total_steps, start_step
        self.world_size, self.rank, self.accumulate = world_size, rank, accumulate

    def stage_at(self, step: int) -> tuple[int, int]:
        """(seq_len, global batch) of optimizer step ``step``."""
        stage = [s for s in self.stages if s[0] <= step][-1]
        return stage[1], stage[2]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start_step, self.total_steps):
            length, batch = self.stage_at(step)
            local = batch // (self.world_size * self.accumulate)
            for j in range(self.accumulate):
                first = (j * self.world_size + self.rank) * local
                yield [(step, first + i, length) for i in range(local)]

    def __len__(self) -> int:
        return self.total_steps * self.accumulate


class StepDataLoader(DataLoader):
    """The training DataLoader, resumable in Lightning's sense: its position is the restored
    ``global_step`` (read when the loader is built), so its state only carries the seed, to warn
    when a resumed run would draw different windows than the interrupted one."""

    def state_dict(self) -> dict:
        return {"seed": self.dataset.seed}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("seed", self.dataset.seed) != self.dataset.seed:
            log.warning("resuming with train.seed=%s, the checkpoint's was %s: the data order "
                        "changes from here on", self.dataset.seed, state_dict["seed"])


class PretrainDataModule(pl.LightningDataModule):
    """Genome, splits and loaders of a pretraining run; rank-aware through ``self.trainer``.

    Lightning runs ``prepare_data`` on one process per node (it builds the FASTA index once)
    and ``setup`` on every rank. The Trainer must be built with ``use_distributed_sampler=False``:
    the loaders shard by rank themselves.
    """

    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.genome: Genome | None = None
        self.splits: Splits | None = None
        self._fixed: dict[str, list[Interval]] = {}  # split → its fixed windows

    def prepare_data(self) -> None:
        self._open_genome()

    def setup(self, stage: str | None = None) -> None:
        if self.genome is None:
            self.genome = self._open_genome()
            d = self.cfg.data
            self.splits = build_splits(self.genome.contigs, d.bed, d.valid_chroms, d.test_chroms,
                                       d.valid_ranges, d.test_ranges, d.valid_fraction,
                                       d.test_fraction)

    def _open_genome(self) -> Genome:
        d = self.cfg.data
        return Genome(resolve_genome(d.genome), d.index_cache_dir, d.soft_mask,
                      d.contig_pattern, d.min_contig_length)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataset(self) -> TrainWindows:
        d = self.cfg.data
        return TrainWindows(self.genome, self.splits.train, self.cfg.train.seed,
                            d.max_n_fraction, d.rc_aug, d.ignore_n_in_loss)

    def fixed_windows(self, split: str, check: bool = False) -> list[Interval]:
        """All fixed windows of ``split``, at most data.max_eval_windows (every rank computes
        the same list).

        Raises:
            ValueError: with ``check``, when the split has intervals but no acceptable window.
        """
        d = self.cfg.data
        if split not in self._fixed:
            def accept(iv: Interval) -> bool:
                return self.genome.n_fraction(iv) <= d.max_n_fraction

            self._fixed[split] = tile_windows(self.splits[split], d.seq_len + 1,
                                              d.max_eval_windows, accept)
        windows = self._fixed[split]
        if check and not windows and self.splits[split]:
            raise ValueError(f"no {split} window of {d.seq_len + 1} bases with at most "
                             f"{d.max_n_fraction:.0%} N in the {split} split; hold out more "
                             f"(data.{split}_fraction / _ranges / _chroms)")
        return windows

    def train_dataloader(self) -> DataLoader:
        world, rank = self._world()
        start = self.trainer.global_step if self.trainer is not None else 0
        sampler = StepBatchSampler(self.cfg.seqlen_stages, self.cfg.train.max_steps, start,
                                   world, rank, self.cfg.train.accumulate_grad_batches)
        return self._loader(self.train_dataset(), StepDataLoader, batch_sampler=sampler)

    def eval_dataloader(self, split: str) -> DataLoader:
        """This rank's share of the fixed ``split`` windows, at the final stage's batch size.

        Every rank gets the same number of items, hence of batches: the ranks that hold one
        window fewer than others (or none, with fewer windows than ranks) get a padding item
        that counts no token. Under DDP each evaluation batch runs collectives (the forward's
        buffer broadcast) and the epoch ends in a reduce; a rank with fewer batches, or one
        that Lightning lets skip the loop for having none, would leave the others waiting.
        """
        world, rank = self._world()
        windows = self.fixed_windows(split, check=True)
        batch = max(1, self.cfg.train.global_batch_size
                    // (world * self.cfg.train.accumulate_grad_batches))
        share = windows[rank::world]
        per_rank = -(-len(windows) // world)
        dataset = FixedWindows(self.genome, share, self.cfg.data.ignore_n_in_loss,
                               padding=per_rank - len(share), length=self.cfg.data.seq_len)
        return self._loader(dataset, DataLoader, batch_size=batch, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("valid")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def _loader(self, dataset: Dataset, cls: type[DataLoader], **kwargs) -> DataLoader:
        workers = self.cfg.data.num_workers
        return cls(dataset, num_workers=workers, persistent_workers=workers > 0,
                   pin_memory=torch.cuda.is_available(), **kwargs)
