"""Task heads and the classifier that composes a backbone with one.

Contract: ``ClassifierHead``: hidden states (B, L, D) float + mask (B, L) bool → logits
(B, n_classes) float32. ``HyenaDNAClassifier``: input_ids (B, L) int64 + mask (B, L) bool →
logits (B, n_classes); ``predict_proba`` → class probabilities (B, n_classes), optionally
averaged over both strands.

Pooling is masked: padding never enters the pooled value (the official fine-tuning averaged the
pad positions too). With right padding — what this project's data loaders produce — a causal
backbone's hidden states at real positions do not depend on padding at all, so a sequence gives
the same logits alone or inside any batch.

Test-time reverse-complement averaging scores each sequence and its reverse complement and
averages the two probability vectors. RC is an involution, so a sequence and its RC get the
same averaged prediction: useful where the label does not depend on the strand (TF binding), and
wrong where it does (splice donor vs acceptor, oriented promoters).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from hyenadna.config import HEAD_POOLINGS, HeadConfig, ModelConfig
from hyenadna.model import Backbone
from hyenadna.tokenizer import reverse_complement_ids

POOLINGS = HEAD_POOLINGS  # public name kept from the first version of this module


def masked_pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool (B, L, D) over the positions where ``mask`` (B, L) is True → (B, D) float32."""
    hidden = hidden.float()
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    # last real token: index of the last True in each row (works for left or right padding)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, -1).amax(dim=1).clamp_min(0)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def reverse_complement_right_padded(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reverse-complement the real tokens of each right-padded row; padding stays at the right.

    Args:
        input_ids: (B, L) int64, real tokens first, then padding.
        mask: (B, L) bool, True on real tokens.

    Returns:
        (B, L) int64: row b holds RC(real tokens of b) followed by the same padding.
    """
    lengths = mask.sum(1, keepdim=True)  # (B, 1)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (L,)
    # real position t reads source position len-1-t; padding positions read themselves
    source = torch.where(mask, lengths - 1 - positions, positions)  # (B, L)
    flipped = input_ids.gather(1, source)  # (B, L) reversed real part
    # reverse_complement_ids flips too; flip back so only the complement is applied here
    complemented = reverse_complement_ids(flipped).flip(-1)
    return torch.where(mask, complemented, input_ids)


class ClassifierHead(nn.Module):
    """Masked pooling → Linear (or a small MLP). (B, L, D), (B, L) → (B, n_classes)."""

    def __init__(self, d_model: int, cfg: HeadConfig):
        super().__init__()
        self.config = cfg
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.hidden_dim > 0:
            self.proj = nn.Sequential(nn.Linear(d_model, cfg.hidden_dim), nn.GELU(),
                                      nn.Linear(cfg.hidden_dim, cfg.n_classes))
        else:
            self.proj = nn.Linear(d_model, cfg.n_classes)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = self.dropout(masked_pool(hidden, mask, self.config.pooling))  # (B, D)
        return self.proj(pooled.to(self.proj_dtype)).float()

    @property
    def proj_dtype(self) -> torch.dtype:
        return next(self.proj.parameters()).dtype


class HyenaDNAClassifier(nn.Module):
    """Backbone + classification head. Keys: ``backbone.*`` (same as HyenaDNA) and ``head.*``."""

    def __init__(self, model_cfg: ModelConfig, head_cfg: HeadConfig):
        super().__init__()
        self.config = model_cfg
        self.head_config = head_cfg
        self.backbone = Backbone(model_cfg)
        self.head = ClassifierHead(model_cfg.d_model, head_cfg)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, L) int64, mask (B, L) bool (None: all real) → logits (B, n_classes)."""
        if mask is None:
            mask = torch.ones_like(input_ids, dtype=torch.bool)
        return self.head(self.backbone(input_ids), mask)

    def predict_proba(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None,
                      rc_average: bool = False) -> torch.Tensor:
        """Class probabilities (B, n_classes) float32 for right-padded input_ids (B, L).

        With ``rc_average`` the forward and reverse-complement strands are scored in one batch
        of 2B rows and their probabilities averaged.
        """
        if mask is None:
            mask = torch.ones_like(input_ids, dtype=torch.bool)
        if not rc_average:
            return self(input_ids, mask).softmax(-1)
        both = torch.cat([input_ids, reverse_complement_right_padded(input_ids, mask)])  # (2B, L)
        probs = self(both, torch.cat([mask, mask])).softmax(-1)  # (2B, C)
        forward, reverse = probs.chunk(2)
        return (forward + reverse) / 2

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameter count (shared tensors once); ``trainable_only`` counts requires_grad ones."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @classmethod
    def from_backbone(cls, pretrained: str | os.PathLike | None, head_cfg: HeadConfig,
                      model_cfg: ModelConfig | None = None, **overrides) -> HyenaDNAClassifier:
        """A classifier whose backbone comes from ``pretrained`` (official release directory or
        hyenadna checkpoint, pretraining or fine-tuned), or is randomly initialised from
        ``model_cfg`` when None. ``overrides`` are ModelConfig fields (e.g. dropouts)."""
        from hyenadna.checkpoint import load_pretrained
        from hyenadna.model import HyenaDNA, _init_weights

        if pretrained is None:
            model = cls(model_cfg or ModelConfig(**overrides), head_cfg)
            _init_weights(model, model.config)
            return model
        lm = load_pretrained(pretrained, model_cls=HyenaDNA, **overrides)
        model = cls(lm.config, head_cfg)
        model.backbone.load_state_dict(lm.backbone.state_dict())
        return model


__all__ = ["POOLINGS", "ClassifierHead", "HeadConfig", "HyenaDNAClassifier", "masked_pool",
           "reverse_complement_right_padded"]
