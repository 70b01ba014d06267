"""Embed FASTA files: mean-pooled (and optionally per-token) hidden states to HDF5.

Sits beside ``score.py`` and reuses its pipeline (FASTA → windows → batches across records →
model → writer); the model here is the backbone alone, so any checkpoint with backbone weights
works: an official release directory, a pretraining checkpoint, or a fine-tuned classifier
(its head is ignored).

What is stored per record (layout in ``writers.H5Writer``):

* ``window_mean`` (n_windows, D): mean of the final hidden states (after ``ln_f``) over each
  window's positions;
* ``mean`` (D,): mean over the record's positions, each position counted once, its hidden state
  taken from the window that *owns* it under the "causal" rule (``score.own_spans``): the first
  window containing it, where this left-to-right model has seen the most context;
* ``tokens`` (length, D), with ``per_token``: exactly those per-position states, chunked and
  gzip-compressed. So ``mean == tokens.mean(0)``.

The same windows as ``score``: full-length windows, the last right-aligned to the record end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from hyenadna.config import EmbedConfig, to_dict
from hyenadna.score import (
    Progress,
    RunSummary,
    Window,
    autocast,
    collate,
    iter_windows,
    resolve_device,
    resolve_window,
    window_batches,
)
from hyenadna.writers import H5Writer, RecordEmbedding, RunMetadata, h5_output

log = logging.getLogger(__name__)


def load_backbone(path: str) -> tuple[torch.nn.Module, dict | None]:
    """Load the backbone of any checkpoint this project reads.

    Returns:
        (HyenaDNA in eval mode on the CPU, the task dict of a fine-tuned classifier or None).
    """
    from hyenadna.checkpoint import backbone_state_dict, load_backbone_weights, read_model_config
    from hyenadna.model import HyenaDNA

    cfg, ckpt, source = read_model_config(path)  # read once: weights and metadata
    model = HyenaDNA(cfg)
    state = ckpt.get("state_dict", ckpt)
    load_backbone_weights(model.backbone, backbone_state_dict(state, source), source)
    meta = ckpt.get("hyenadna") if isinstance(ckpt.get("hyenadna"), dict) else {}
    return model.eval(), meta.get("task")


def pool_windows(hidden: torch.Tensor, mask: torch.Tensor, own: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked means and owned sums of hidden states.

    Args:
        hidden: (B, L, D) final hidden states.
        mask: (B, L) bool, True on real tokens (right padding).
        own: (B, L) bool, True on the positions each window owns (a subset of ``mask``).

    Returns:
        window_mean (B, D) float32 over real positions; own_sum (B, D) float32 over owned ones.
    """
    hidden = hidden.float()
    weights = mask.unsqueeze(-1).float()  # (B, L, 1)
    window_mean = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D)
    own_sum = (hidden * own.unsqueeze(-1).float()).sum(1)  # (B, D)
    return window_mean, own_sum


def owned_mask(batch: list[Window], width: int, device: torch.device) -> torch.Tensor:
    """(B, width) bool: True where window b owns position t (relative to its start)."""
    positions = torch.arange(width, device=device)  # (L,)
    lo = torch.tensor([w.own_start - w.start for w in batch], device=device)[:, None]  # (B, 1)
    hi = torch.tensor([w.own_end - w.start for w in batch], device=device)[:, None]
    return (positions >= lo) & (positions < hi)  # (B, L)


@dataclass
class _Pending:
    """A record under construction: per-window rows and the running sum of owned states."""

    windows: list[Window] = field(default_factory=list)
    window_means: list[np.ndarray] = field(default_factory=list)
    own_sum: np.ndarray | None = None
    tokens: object = None  # the record's HDF5 'tokens' dataset when per_token


def embed(cfg: EmbedConfig) -> RunSummary:
    """Embed every record of ``cfg.input`` into the HDF5 file ``cfg.output``.

    Raises:
        ValueError / FileNotFoundError: bad input FASTA, options or checkpoint.
    """
    if not cfg.model:
        raise ValueError("embed needs --model: a checkpoint or an official release directory")
    if cfg.output == "-" or not cfg.output.lower().endswith((".h5", ".hdf5")):
        raise ValueError(f"embed writes HDF5: give an output file ending in .h5 (got "
                         f"{cfg.output!r})")
    model, task = load_backbone(cfg.model)
    window, stride = resolve_window(cfg.window, cfg.stride, task, model.config.l_max)
    device = resolve_device(cfg.device)
    backbone = model.backbone.to(device)
    options = {"window": window, "stride": stride, "per_token": cfg.per_token,
               "min_length": cfg.min_length, "precision": cfg.precision,
               "device": str(device), "pooling": "mean", "ownership": "causal"}
    meta = RunMetadata("embed", to_dict(model.config), cfg.input, str(cfg.model), task,
                       [str(c) for c in (task or {}).get("class_names", [])], options)
    log.info("embed: d_model %d, window %d, stride %d, per_token %s, device %s",
             model.config.d_model, window, stride, cfg.per_token, device)
    windows = iter_windows(cfg.input, window, stride, cfg.min_length, rule="causal")
    summary = RunSummary("embed", cfg.output)
    with h5_output(cfg.output, meta) as writer:
        for rec in _embed_records(backbone, windows, cfg, device, writer, summary):
            writer.write(rec)
    return summary


def _embed_records(backbone: torch.nn.Module, windows: Iterable[Window], cfg: EmbedConfig,
                   device: torch.device, writer: H5Writer, summary: RunSummary
                   ) -> Iterator[RecordEmbedding]:
    """Run the batches; stream per-token states into ``writer``; yield finished records."""
    progress = Progress(cfg.progress, "embed")
    pending = _Pending()
    try:
        for batch in window_batches(windows, cfg.batch_size, device):
            ids, mask = collate([w.ids for w in batch], device)
            own = owned_mask(batch, ids.shape[1], device)
            with torch.inference_mode(), autocast(device, cfg.precision):
                hidden = backbone(ids)  # (B, L, D)
                window_mean, own_sum = (t.cpu().numpy() for t in pool_windows(hidden, mask, own))
            done = 0
            for row, w in enumerate(batch):
                if cfg.per_token:
                    _write_tokens(pending, w, hidden[row], writer)
                pending.windows.append(w)
                pending.window_means.append(window_mean[row])
                pending.own_sum = own_sum[row] + (0 if pending.own_sum is None
                                                  else pending.own_sum)
                if w.last:
                    done += 1
                    yield _finish(pending)
                    pending = _Pending()
            summary.records += done
            summary.windows += len(batch)
            nts = sum(w.own_end - w.own_start for w in batch)
            summary.nucleotides += nts
            progress.update(nts, done)
    finally:
        summary.seconds = progress.close()


def _write_tokens(pending: _Pending, w: Window, hidden: torch.Tensor, writer: H5Writer) -> None:
    """Copy the owned slice of one window's states (L, D) into the record's token dataset."""
    if pending.tokens is None:
        pending.tokens = writer.token_dataset(w.record, w.length, hidden.shape[-1])
    lo, hi = w.own_start - w.start, w.own_end - w.start
    pending.tokens[w.own_start:w.own_end] = hidden[lo:hi].float().cpu().numpy()


def _finish(pending: _Pending) -> RecordEmbedding:
    """A record's windows → RecordEmbedding; the owned parts partition the record, so the
    owned sum over its length is the per-position mean."""
    first = pending.windows[0]
    starts = np.array([w.start for w in pending.windows], dtype=np.int64)
    ends = np.array([w.end for w in pending.windows], dtype=np.int64)
    mean = (pending.own_sum / first.length).astype(np.float32)
    return RecordEmbedding(first.record, first.length, starts, ends,
                           np.stack(pending.window_means).astype(np.float32), mean)
