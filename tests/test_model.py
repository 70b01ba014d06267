import numpy as np
import pytest
import torch

from hyenadna import CharTokenizer, HyenaDNA, ModelConfig
from hyenadna.model import HyenaOperator
from hyenadna.ops.fftconv import fftconv_ref


def _tiny(**kw):
    torch.manual_seed(0)
    cfg = dict(d_model=32, n_layer=2, l_max=258, embed_dropout=0.0)
    cfg.update(kw)
    return HyenaDNA(ModelConfig(**cfg)).eval()


def test_official_parity_hidden_states(official_tiny):
    model = HyenaDNA.from_pretrained(official_tiny)
    expected = np.load(official_tiny / "expected.npz")
    with torch.no_grad():
        hidden = model.backbone(torch.from_numpy(expected["input_ids"]))
    torch.testing.assert_close(hidden, torch.from_numpy(expected["hidden_states"]),
                               rtol=0, atol=1e-4)


def test_official_parity_tokenizer_matches_expected_ids(official_tiny):
    seqs = (official_tiny / "sequences.txt").read_text().split()
    ids, _ = CharTokenizer().encode_batch(seqs)
    assert torch.equal(ids, torch.from_numpy(np.load(official_tiny / "expected.npz")["input_ids"]))


@pytest.mark.parametrize("name,cfg,count", [
    ("tiny-1k", dict(d_model=128, n_layer=2, l_max=1026), 436_096),
    ("small-32k", dict(d_model=256, n_layer=4, l_max=32770), 3_277_568),
    ("large-1m", dict(d_model=256, n_layer=8, l_max=1_000_002), 6_550_528),
])
def test_parameter_count_matches_official(name, cfg, count):
    assert HyenaDNA(ModelConfig(**cfg)).num_parameters() == count


def test_logits_shape_and_tied_head():
    model = _tiny()
    ids = torch.randint(7, 12, (2, 100))
    assert model(ids).shape == (2, 100, 16)
    assert model.lm_head.weight is model.backbone.embeddings.word_embeddings.weight


def test_model_is_causal():
    model = _tiny()
    ids = torch.randint(7, 12, (1, 200))
    ids2 = ids.clone()
    ids2[0, 120:] = torch.randint(7, 12, (80,))
    with torch.no_grad():
        a, b = model(ids), model(ids2)
    torch.testing.assert_close(a[:, :120], b[:, :120], rtol=1e-5, atol=1e-5)


def test_right_padding_leaves_real_positions_unchanged():
    model = _tiny()
    tok = CharTokenizer()
    ids, _ = tok.encode_batch(["ACGTACGTTTGACN" * 5, "ACG"], padding_side="right")
    with torch.no_grad():
        batched = model.backbone(ids)
        alone = model.backbone(tok.encode("ACG")[None])
    torch.testing.assert_close(batched[1:, :3], alone, rtol=1e-5, atol=1e-5)


def test_operator_matches_direct_convolution_reference(monkeypatch):
    # Same operator with the long conv swapped for the float64 reference: fast path == slow twin.
    torch.manual_seed(0)
    op = HyenaOperator(ModelConfig(d_model=16, l_max=300)).double()
    u = torch.randn(2, 300, 16, dtype=torch.float64)
    fast = op(u)
    monkeypatch.setattr("hyenadna.model.fftconv", fftconv_ref)
    torch.testing.assert_close(fast, op(u), rtol=1e-9, atol=1e-9)


def test_gradient_checkpointing_gives_same_gradients():
    model = _tiny()
    model_ckpt = _tiny(gradient_checkpointing=True)
    ids = torch.randint(7, 12, (2, 64))
    grads = []
    for m in (model.train(), model_ckpt.train()):
        m.zero_grad()
        m(ids).float().logsumexp(-1).mean().backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for g1, g2 in zip(*grads):
        torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-6)


def test_forward_raises_when_longer_than_l_max():
    with pytest.raises(ValueError, match="exceeds the model's l_max 258"):
        _tiny()(torch.randint(7, 12, (1, 300)))


def test_bf16_autocast_close_to_fp32(device):
    model = _tiny().to(device)
    ids = torch.randint(7, 12, (2, 256), device=device)
    with torch.no_grad():
        ref = model.backbone(ids)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low = model.backbone(ids)
    assert (low.float() - ref).abs().max() < 0.15  # LayerNorm output, O(1) values
