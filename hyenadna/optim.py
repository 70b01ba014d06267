"""Optimiser parameter groups and the learning-rate schedule shared by pretraining and
fine-tuning. Official HyenaDNA recipe: AdamW (0.9, 0.999), weight decay 0.1 except on norms,
biases and the implicit-filter parameters; cosine decay after a linear warm-up, down to a floor
of ``min_lr_ratio`` · lr.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Parameters exempt from weight decay: 1-D tensors (norms, biases, the filter's skip term
    and sine frequencies) and everything in the implicit filter (official: filter wd 0)."""
    return param.ndim < 2 or ".filter_fn." in f".{name}"


def param_groups(model: nn.Module, weight_decay: float, lr: float,
                 lr_overrides: dict[str, float] | None = None) -> list[dict]:
    """Split ``model``'s trainable parameters into AdamW groups, built explicitly here (never as
    attributes hidden on the parameters).

    Args:
        model: the module to optimise.
        weight_decay: decay of the decayed group.
        lr: base learning rate.
        lr_overrides: name prefix → learning rate, e.g. ``{"backbone.": 1e-4}`` to fine-tune the
            backbone slower than a new head. The first matching prefix wins.

    Returns:
        A list of param-group dicts with keys params, weight_decay, lr, name.
    """
    lr_overrides = lr_overrides or {}
    groups: dict[tuple[float, float], dict] = {}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:  # tied weights appear twice
            continue
        seen.add(id(param))
        group_lr = next((v for k, v in lr_overrides.items() if name.startswith(k)), lr)
        wd = 0.0 if is_no_decay(name, param) else weight_decay
        group = groups.setdefault((group_lr, wd), {"params": [], "weight_decay": wd,
                                                   "lr": group_lr, "name": f"lr{group_lr}_wd{wd}"})
        group["params"].append(param)
    return list(groups.values())


def cosine_with_warmup(step: int, total_steps: int, warmup_steps: int,
                       min_lr_ratio: float = 0.1) -> float:
    """LR multiplier: linear warm-up 0→1 over ``warmup_steps``, then cosine 1→``min_lr_ratio``
    at ``total_steps`` (flat after)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, lr: float, weight_decay: float,
                    betas: tuple[float, float] = (0.9, 0.999), total_steps: int = 1000,
                    warmup_steps: int = 10, min_lr_ratio: float = 0.1,
                    lr_overrides: dict[str, float] | None = None):
    """AdamW over ``param_groups`` plus a per-step LambdaLR (cosine with warm-up).

    Returns (optimizer, scheduler) — for Lightning, return the scheduler with
    ``{"interval": "step"}``.
    """
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay, lr, lr_overrides),
                                  lr=lr, betas=betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_with_warmup(s, total_steps, warmup_steps, min_lr_ratio))
    return optimizer, scheduler
