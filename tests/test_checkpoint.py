import json
import shutil

import numpy as np
import pytest
import torch

from hyenadna import HyenaDNA, ModelConfig
from hyenadna.checkpoint import CheckpointError, official_config, save_model


def _copy_release(src, dst, config_edit=None, state_edit=None):
    dst.mkdir()
    cfg = json.loads((src / "config.json").read_text())
    if config_edit:
        config_edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    ckpt = torch.load(src / "weights.ckpt", weights_only=True)
    if state_edit:
        ckpt["state_dict"] = state_edit(ckpt["state_dict"])
    torch.save(ckpt, dst / "weights.ckpt")
    return dst


def _hidden(model, official_tiny):
    ids = torch.from_numpy(np.load(official_tiny / "expected.npz")["input_ids"][:1, :256])
    with torch.no_grad():
        return model.backbone(ids)


def test_gradient_checkpointed_key_layout_loads(official_tiny, tmp_path):
    def rename(sd):
        return {k.replace(".mixer.", ".mixer.layer.").replace(".mlp.", ".mlp.layer."): v
                for k, v in sd.items()}

    def mark(cfg):
        cfg["checkpoint_mixer"] = True
        cfg["checkpoint_mlp"] = True

    ckpt_dir = _copy_release(official_tiny, tmp_path / "ckpt", mark, rename)
    torch.testing.assert_close(_hidden(HyenaDNA.from_pretrained(ckpt_dir), official_tiny),
                               _hidden(HyenaDNA.from_pretrained(official_tiny), official_tiny))


def test_shift_defaults_to_zero_when_config_is_silent(official_tiny, tmp_path):
    ckpt_dir = _copy_release(official_tiny, tmp_path / "noshift",
                             lambda c: c["layer"].pop("shift"))
    assert HyenaDNA.from_pretrained(ckpt_dir).config.shift == 0.0
    assert HyenaDNA.from_pretrained(official_tiny).config.shift == 0.05


def test_official_config_maps_local_order():
    cfg = official_config({"d_model": 64, "n_layer": 1, "layer": {"local_order": 5, "l_max": 9}})
    assert cfg.short_filter_order == 5 and cfg.l_max == 9 and cfg.shift == 0.0


def test_raises_on_missing_key(official_tiny, tmp_path):
    def drop(sd):
        sd.pop("model.backbone.layers.1.mlp.fc1.bias")
        return sd

    ckpt_dir = _copy_release(official_tiny, tmp_path / "x", state_edit=drop)
    with pytest.raises(CheckpointError, match="missing key backbone.layers.1.mlp.fc1.bias"):
        HyenaDNA.from_pretrained(ckpt_dir)


def test_raises_on_unexpected_key(official_tiny, tmp_path):
    def add(sd):
        sd["model.backbone.layers.0.mixer.extra"] = torch.zeros(1)
        return sd

    ckpt_dir = _copy_release(official_tiny, tmp_path / "x", state_edit=add)
    with pytest.raises(CheckpointError, match="unexpected key backbone.layers.0.mixer.extra"):
        HyenaDNA.from_pretrained(ckpt_dir)


def test_raises_on_shape_mismatch(official_tiny, tmp_path):
    ckpt_dir = _copy_release(official_tiny, tmp_path / "x", lambda c: c.update(d_inner=256))
    with pytest.raises(CheckpointError, match=r"layers.0.mlp.fc1.weight has shape \(512, 128\)"):
        HyenaDNA.from_pretrained(ckpt_dir)


def test_raises_on_file_that_is_not_a_checkpoint(official_tiny, tmp_path):
    ckpt_dir = tmp_path / "bad"
    shutil.copytree(official_tiny, ckpt_dir)
    (ckpt_dir / "weights.ckpt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        HyenaDNA.from_pretrained(ckpt_dir)
    with pytest.raises(FileNotFoundError):
        HyenaDNA.from_pretrained(tmp_path / "nope.ckpt")


def test_own_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = HyenaDNA(ModelConfig(d_model=32, n_layer=1, l_max=130, shift=0.1)).eval()
    save_model(model, tmp_path / "m.ckpt")
    loaded = HyenaDNA.from_pretrained(tmp_path / "m.ckpt")
    assert loaded.config == model.config
    ids = torch.randint(7, 12, (2, 128))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic save left no temp file
