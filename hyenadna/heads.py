"""Task heads and the classifier that composes a backbone with one.

Contract: ``ClassifierHead``: hidden states (B, L, D) float + mask (B, L) bool → logits
(B, n_classes) float32. ``HyenaDNAClassifier``: input_ids (B, L) int64 + mask (B, L) bool →
logits (B, n_classes).

Pooling is masked: padding never enters the pooled value (the official fine-tuning averaged the
pad positions too). With right padding — what this project's data loaders produce — a causal
backbone's hidden states at real positions do not depend on padding at all, so a sequence gives
the same logits alone or inside any batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn

from hyenadna.config import ModelConfig
from hyenadna.model import Backbone

POOLINGS = ("mean", "last")


@dataclass
class HeadConfig:
    """Classification head on top of the backbone."""

    n_classes: int = 2
    """Number of output classes."""
    pooling: str = "mean"
    """'mean' over real tokens, or 'last' real token (the causal model's summary)."""
    hidden_dim: int = 0
    """0: a single Linear layer (official); > 0: Linear → GELU → Linear with this width."""
    dropout: float = 0.0
    """Dropout on the pooled vector."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"head.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.n_classes < 2:
            raise ValueError(f"head.n_classes must be >= 2, got {self.n_classes}")


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

    @classmethod
    def from_backbone(cls, pretrained: str | os.PathLike | None, head_cfg: HeadConfig,
                      model_cfg: ModelConfig | None = None, **overrides) -> HyenaDNAClassifier:
        """A classifier whose backbone comes from ``pretrained`` (official release directory or
        hyenadna checkpoint), or is randomly initialised from ``model_cfg`` when None."""
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
