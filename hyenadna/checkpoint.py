"""Checkpoints: official HyenaDNA releases and this project's own files.

Two formats load through one entry point, ``load_pretrained``:

* an **official release directory** (``LongSafari/hyenadna-*``): ``config.json`` plus
  ``weights.ckpt``, a Lightning checkpoint whose ``state_dict`` keys are the official names
  prefixed ``model.``; gradient-checkpointed releases (``"checkpoint_mixer": true``) insert
  ``.layer`` after ``mixer``/``mlp``. ``layer.shift`` is honoured when stated, else 0.0 (the
  official training code's value — the standalone inference file's 0.05 is not what the
  released weights were trained with).
* a **hyenadna checkpoint file** (``*.ckpt``): a Lightning checkpoint with the same ``model.``
  key layout and the resolved config stored under ``ckpt["hyenadna"]``.

Everything is read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from hyenadna import __version__
from hyenadna.atomic import atomic_path
from hyenadna.config import ModelConfig, from_dict, to_dict

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

# config.json keys of the official releases that have no counterpart here: they either describe
# the fused CUDA kernels, the training optimiser, or are fixed true in every release.
_OFFICIAL_IGNORED = {
    "fused_mlp", "fused_dropout_add_ln", "residual_in_fp32", "return_hidden_state",
    "checkpoint_mixer", "checkpoint_mlp", "use_head", "n_classes", "process_group",
    "fused_bias_fc", "sequence_parallel", "device", "dtype", "initializer_cfg", "attn_layer_idx",
    "attn_cfg", "max_position_embeddings", "_name_",
}
_OFFICIAL_LAYER_IGNORED = {"_name_", "lr", "wd", "lr_pos_emb", "fused_fft_conv", "dropout",
                           "filter_dropout", "bidirectional", "num_inner_mlps", "normalized",
                           "inner_factor", "num_heads", "num_blocks", "outer_mixing",
                           "post_order_ffn", "jit_filter", "short_filter_order_dilation",
                           "activation", "return_state", "l_max_conv"}
_OFFICIAL_TOP = {"d_model", "n_layer", "d_inner", "vocab_size", "resid_dropout",
                 "embed_dropout", "pad_vocab_size_multiple", "layer_norm_epsilon"}
_OFFICIAL_LAYER = {"emb_dim": "emb_dim", "filter_order": "filter_order",
                   "local_order": "short_filter_order", "short_filter_order": "short_filter_order",
                   "l_max": "l_max", "w": "w", "shift": "shift", "modulate": "modulate",
                   "order": "order"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the offending key."""


def official_config(raw: dict[str, Any], source: str = "config.json") -> ModelConfig:
    """Translate an official release ``config.json`` into a ModelConfig."""
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _OFFICIAL_TOP:
            kwargs[key] = value
        elif key == "layer":
            if value.get("_name_", "hyena") != "hyena":
                raise CheckpointError(f"{source}: layer {value['_name_']!r} is not a Hyena layer")
            for lkey, lval in value.items():
                if lkey in _OFFICIAL_LAYER:
                    kwargs[_OFFICIAL_LAYER[lkey]] = lval
                elif lkey not in _OFFICIAL_LAYER_IGNORED:
                    log.warning("%s: ignoring unknown key layer.%s", source, lkey)
        elif key not in _OFFICIAL_IGNORED:
            log.warning("%s: ignoring unknown key %s", source, key)
    if raw.get("residual_in_fp32") is False:
        log.warning("%s: residual_in_fp32=false; this implementation always keeps it in fp32",
                    source)
    kwargs.setdefault("shift", 0.0)  # official training code's value when unstated
    try:
        return ModelConfig(**kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: {err}") from None


def official_key(key: str) -> str:
    """Map an official (or this project's) state-dict key to this project's module name."""
    key = key.removeprefix("model.")
    return re.sub(r"\.(mixer|mlp)\.layer\.", r".\1.", key)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True; anything else raises CheckpointError naming path."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (top level is {type(ckpt).__name__})")
    return ckpt


def backbone_state_dict(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Keep the ``backbone.*`` entries of a state dict, with official names normalised."""
    out = {}
    for key, value in state.items():
        name = official_key(key)
        if name.startswith("backbone."):
            out[name.removeprefix("backbone.")] = value
    if not out:
        raise CheckpointError(f"{source}: no backbone weights found (keys look like "
                              f"{next(iter(state), '<none>')!r})")
    return out


def load_backbone_weights(backbone: torch.nn.Module, state: dict[str, torch.Tensor],
                          source: str) -> None:
    """Load into ``backbone`` strictly: every missing, unexpected or mis-shaped key is an error."""
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"{source}: missing key backbone.{missing[0]} "
                              f"({len(missing)} missing in all)")
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key backbone.{unexpected[0]} "
                              f"({len(unexpected)} unexpected in all)")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: key backbone.{key} has shape {tuple(tensor.shape)},"
                                  f" the model expects {tuple(expected[key].shape)}")
    backbone.load_state_dict(state, strict=True)


def read_model_config(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any], str]:
    """Resolve ``path`` to (model config, raw checkpoint dict, human-readable source)."""
    path = Path(path)
    if path.is_dir():
        cfg_path, weights = path / "config.json", path / "weights.ckpt"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{path}: no config.json (expected an official release "
                                    "directory with config.json and weights.ckpt)")
        try:
            raw = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{cfg_path}: not valid JSON ({err})") from None
        cfg = official_config(raw, str(cfg_path))
        return cfg, read_checkpoint(weights), str(weights)
    ckpt = read_checkpoint(path)
    meta = ckpt.get("hyenadna")
    if not isinstance(meta, dict) or "model" not in meta:
        raise CheckpointError(f"{path}: not a hyenadna checkpoint (no 'hyenadna' metadata); "
                              "for an official release pass its directory")
    try:
        cfg = from_dict(ModelConfig, meta["model"], "model.")
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return cfg, ckpt, str(path)


def load_pretrained(path: str | os.PathLike, model_cls: type | None = None, **overrides):
    """Build a model from an official release directory or a hyenadna checkpoint.

    Returns a ``HyenaDNA`` (or ``model_cls``) in eval mode on the CPU.
    """
    from hyenadna.model import HyenaDNA

    model_cls = model_cls or HyenaDNA
    cfg, ckpt, source = read_model_config(path)
    if overrides:
        try:
            cfg = from_dict(ModelConfig, {**to_dict(cfg), **overrides}, "model.")
        except ValueError as err:
            raise CheckpointError(f"{source}: {err}") from None
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: 'state_dict' is not a mapping")
    model = model_cls(cfg)
    load_backbone_weights(model.backbone, backbone_state_dict(state, source), source)
    return model.eval()


def checkpoint_metadata(model_cfg: ModelConfig, **extra: Any) -> dict[str, Any]:
    """The ``ckpt["hyenadna"]`` entry this project writes into every checkpoint."""
    return {"format_version": FORMAT_VERSION, "version": __version__,
            "model": to_dict(model_cfg), **extra}


def save_model(model: torch.nn.Module, path: str | os.PathLike, **extra: Any) -> None:
    """Save a bare model as a hyenadna checkpoint (keys ``model.*``), atomically."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    atomic_torch_save({"state_dict": state,
                       "hyenadna": checkpoint_metadata(model.config, **extra)}, Path(path))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the target folder, then rename: never a truncated file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_checkpoint_io():
    """A Lightning CheckpointIO whose saves are atomic (temp file + rename), so an interrupted
    run never leaves a truncated ``last.ckpt``. Pass as ``Trainer(plugins=[...])``."""
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None):
            atomic_torch_save(checkpoint, Path(path))

    return AtomicCheckpointIO()


def classifier_metadata(model_cfg: ModelConfig, head_cfg: Any, task: dict[str, Any]) -> dict:
    """``ckpt["hyenadna"]`` of a fine-tuned classifier: model + head config and the task, whose
    dict holds at least ``name``, ``class_names`` (list[str]) and ``seq_len`` (int)."""
    missing = {"name", "class_names", "seq_len"} - set(task)
    if missing:
        raise ValueError(f"task metadata lacks {sorted(missing)}")
    return checkpoint_metadata(model_cfg, head=to_dict(head_cfg), task=dict(task))


def load_classifier(path: str | os.PathLike):
    """Load a fine-tuned classifier checkpoint written by ``hyenadna finetune``.

    Returns:
        (HyenaDNAClassifier in eval mode on the CPU, task dict with name/class_names/seq_len).

    Raises:
        CheckpointError: not a checkpoint, or a pretraining-only checkpoint (no head).
    """
    from hyenadna.heads import HeadConfig, HyenaDNAClassifier

    cfg, ckpt, source = read_model_config(path)
    meta = ckpt.get("hyenadna") or {}
    if "head" not in meta or "task" not in meta:
        raise CheckpointError(f"{source}: not a classifier checkpoint (no task head); "
                              "fine-tune one with `hyenadna finetune`")
    try:
        head_cfg = from_dict(HeadConfig, meta["head"], "head.")
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None
    model = HyenaDNAClassifier(cfg, head_cfg)
    state = {k.removeprefix("model."): v for k, v in ckpt.get("state_dict", {}).items()
             if k.startswith("model.")}
    load_backbone_weights(model.backbone, backbone_state_dict(state, source), source)
    head_state = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    try:
        model.head.load_state_dict(head_state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{source}: head weights do not match its config "
                              f"({str(err).splitlines()[0]})") from None
    return model.eval(), dict(meta["task"])
