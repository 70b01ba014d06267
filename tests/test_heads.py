import pytest
import torch

from hyenadna import HyenaDNA
from hyenadna.config import ModelConfig
from hyenadna.heads import (
    HeadConfig,
    HyenaDNAClassifier,
    masked_pool,
    reverse_complement_right_padded,
)
from hyenadna.tokenizer import CharTokenizer, reverse_complement

SEQS = ["ACGTTGACNACGGTAC" * 4, "ACGTA", "TTGACCA" * 3]


def _classifier(pooling="mean", n_classes=3, hidden_dim=0):
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, n_layer=2, l_max=130)
    return HyenaDNAClassifier.from_backbone(None, HeadConfig(n_classes, pooling, hidden_dim),
                                            cfg).eval()


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_classifier_logits_are_padding_invariant(pooling):
    # right padding + masked pooling: a sequence gets the same logits alone and in a batch
    model = _classifier(pooling, hidden_dim=16)
    tok = CharTokenizer()
    ids, mask = tok.encode_batch(SEQS, padding_side="right")
    with torch.no_grad():
        batched = model(ids, mask)
        for row, seq in enumerate(SEQS):
            alone = model(tok.encode(seq)[None])
            torch.testing.assert_close(batched[row:row + 1], alone, rtol=1e-5, atol=1e-5)


def test_masked_pool_matches_manual_mean_and_last():
    hidden = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    pooled = masked_pool(hidden, mask, "mean")
    torch.testing.assert_close(pooled[0], hidden[0, :3].mean(0))
    torch.testing.assert_close(pooled[1], hidden[1].mean(0))
    last = masked_pool(hidden, mask, "last")
    torch.testing.assert_close(last, torch.stack([hidden[0, 2], hidden[1, 4]]))


def test_reverse_complement_right_padded_matches_string_version():
    tok = CharTokenizer()
    ids, mask = tok.encode_batch(SEQS, padding_side="right")
    rc = reverse_complement_right_padded(ids, mask)
    for row, seq in enumerate(SEQS):
        assert tok.decode(rc[row, : len(seq)]) == reverse_complement(seq)
    assert torch.equal(rc[~mask], ids[~mask])  # padding untouched
    assert torch.equal(reverse_complement_right_padded(rc, mask), ids)  # involution


def test_rc_averaged_prediction_is_strand_symmetric():
    model = _classifier()
    tok = CharTokenizer()
    forward = tok.encode_batch(SEQS, padding_side="right")
    reverse = tok.encode_batch([reverse_complement(s) for s in SEQS], padding_side="right")
    with torch.no_grad():
        p_fwd = model.predict_proba(*forward, rc_average=True)
        p_rev = model.predict_proba(*reverse, rc_average=True)
        plain_fwd = model.predict_proba(*forward)
        plain_rev = model.predict_proba(*reverse)
    torch.testing.assert_close(p_fwd, p_rev, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p_fwd.sum(-1), torch.ones(len(SEQS)))
    assert not torch.allclose(plain_fwd, plain_rev, atol=1e-4)  # without averaging it differs


def test_from_backbone_loads_official_release(official_tiny):
    model = HyenaDNAClassifier.from_backbone(official_tiny, HeadConfig(n_classes=2))
    reference = HyenaDNA.from_pretrained(official_tiny)
    for (name, a), b in zip(model.backbone.state_dict().items(),
                            reference.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    assert model.head.proj.out_features == 2


def test_num_parameters_counts_trainable_only_on_request():
    model = _classifier(n_classes=2)
    model.backbone.requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == 32 * 2 + 2
    assert model.num_parameters() > model.num_parameters(trainable_only=True)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_classes": 1}, "head.n_classes must be >= 2"),
    ({"pooling": "max"}, "head.pooling must be one of"),
    ({"hidden_dim": -1}, "head.hidden_dim must be >= 0"),
    ({"dropout": 1.0}, r"head.dropout must be in \[0, 1\)"),
])
def test_head_config_raises_naming_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HeadConfig(**kwargs)
