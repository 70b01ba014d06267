"""hyenadna — HyenaDNA, the character-level long-convolution DNA language model.

Public API::

    from hyenadna import HyenaDNA, CharTokenizer, ModelConfig
    model = HyenaDNA.from_pretrained("hyenadna-tiny-1k-seqlen")  # official release dir or .ckpt
    ids = CharTokenizer().encode("ACGTN").unsqueeze(0)            # (1, L) int64
    hidden = model.backbone(ids)                                  # (1, L, d_model)
    logits = model(ids)                                           # (1, L, vocab)
"""

__version__ = "0.1.0"

from hyenadna.config import ModelConfig  # noqa: E402
from hyenadna.model import HyenaDNA  # noqa: E402
from hyenadna.tokenizer import CharTokenizer, reverse_complement, reverse_complement_ids  # noqa: E402

__all__ = [
    "CharTokenizer",
    "HyenaDNA",
    "ModelConfig",
    "__version__",
    "reverse_complement",
    "reverse_complement_ids",
]
