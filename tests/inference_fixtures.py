"""Tiny random-weight checkpoints for the score / embed / variant-effect tests.

Built here rather than through fine-tuning so these tests depend only on the checkpoint contract
(``classifier_metadata`` + ``model.backbone.*`` / ``model.head.*`` keys). Weights use a large
init std (0.5 instead of 0.02) so outputs vary visibly with the input: with the official init a
random classifier prints ~0.5 for everything and invariance tests would pass trivially.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hyenadna import HyenaDNA, ModelConfig
from hyenadna.checkpoint import atomic_torch_save, classifier_metadata, save_model
from hyenadna.heads import HeadConfig, HyenaDNAClassifier


def tiny_config(l_max: int = 258) -> ModelConfig:
    return ModelConfig(d_model=16, n_layer=2, l_max=l_max, filter_order=16,
                       initializer_range=0.5)


def make_classifier(path: Path, class_names=("neg", "pos"), seq_len: int = 256,
                    l_max: int = 258, seed: int = 0, **task) -> HyenaDNAClassifier:
    """Write a classifier checkpoint at ``path``; return the model (eval, CPU)."""
    torch.manual_seed(seed)
    head_cfg = HeadConfig(n_classes=len(class_names))
    model = HyenaDNAClassifier.from_backbone(None, head_cfg, tiny_config(l_max)).eval()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta = classifier_metadata(model.config, head_cfg, {"name": "toy", "seq_len": seq_len,
                                                        "class_names": list(class_names), **task})
    atomic_torch_save({"state_dict": state, "hyenadna": meta}, path)
    return model


def make_lm(path: Path, l_max: int = 258, seed: int = 0) -> HyenaDNA:
    """Write a pretraining-style (LM, no head) checkpoint at ``path``; return the model."""
    torch.manual_seed(seed)
    model = HyenaDNA(tiny_config(l_max)).eval()
    save_model(model, path)
    return model
