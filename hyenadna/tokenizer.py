"""Character-level DNA tokenizer with the official HyenaDNA vocabulary.

First stage of the pipeline: text → token ids (int64). One nucleotide is one token, so a
1M-token context is a 1 Mb window of the genome.

Vocabulary (identical to the official release, so checkpoints line up)::

    [CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6 A=7 C=8 G=9 T=10 N=11

Differences from the official tokenizer, each deliberate:

* soft-masked (lowercase) bases map to their uppercase ids — the official one maps them to
  ``[UNK]``, which silently hides ~50% of a soft-masked human genome from the model;
* IUPAC ambiguity codes (R Y S W K M B D H V) map to ``N``;
* any other character is an error naming the character and its 0-based position, unless
  ``strict=False`` (then it becomes ``[UNK]``).

Encoding goes through a 256-entry byte lookup table, so a whole chromosome is tokenised by one
numpy gather rather than a Python loop.

Padding and a causal model: HyenaDNA is attention-free and causal (every convolution only looks
left). With *right* padding the outputs at real positions are exactly those of the unpadded
sequence, so right padding plus a mask is padding-invariant. With *left* padding (the official
choice) the pad tokens sit in the causal past of every real token and do change its hidden state;
the official fine-tuning then mean-pooled over the pads too. ``encode_batch`` supports both; this
project's fine-tuning and scoring use right padding and masked pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]")
NUCLEOTIDES = ("A", "C", "G", "T", "N")
IUPAC_AMBIGUOUS = "RYSWKMBDHV"

CLS_ID, SEP_ID, BOS_ID, MASK_ID, PAD_ID, RESERVED_ID, UNK_ID = range(7)
A_ID, C_ID, G_ID, T_ID, N_ID = range(7, 12)
VOCAB_SIZE = 12

_INVALID = -1
_COMPLEMENT_IDS = {A_ID: T_ID, C_ID: G_ID, G_ID: C_ID, T_ID: A_ID}


def _build_byte_lut() -> np.ndarray:
    """256-entry table byte → token id; -1 marks a byte that is not DNA."""
    lut = np.full(256, _INVALID, dtype=np.int64)
    for base, idx in zip("ACGTN", range(A_ID, N_ID + 1)):
        lut[ord(base)] = idx
        lut[ord(base.lower())] = idx
    for code in IUPAC_AMBIGUOUS:
        lut[ord(code)] = N_ID
        lut[ord(code.lower())] = N_ID
    return lut


def _build_id_complement() -> torch.Tensor:
    """Table id → id of the complementary base; specials, N and UNK map to themselves."""
    table = torch.arange(VOCAB_SIZE, dtype=torch.long)
    for src, dst in _COMPLEMENT_IDS.items():
        table[src] = dst
    return table


_BYTE_LUT = _build_byte_lut()
_ID_COMPLEMENT = _build_id_complement()
_STR_COMPLEMENT = str.maketrans(
    "ACGTNRYSWKMBDHVacgtnryswkmbdhv", "TGCANYRSWMKVHDBtgcanyrswmkvhdb"
)


class CharTokenizer:
    """Nucleotide-level tokenizer (official HyenaDNA vocabulary).

    Args:
        strict: if True (default) a character that is not a nucleotide or IUPAC code raises
            ``ValueError``; if False it becomes ``[UNK]``.
        add_special_tokens: if True, ``encode`` appends ``[SEP]`` as the official tokenizer does
            for fine-tuning. Off by default: the official pretrained models were trained on raw
            nucleotide ids.
    """

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + NUCLEOTIDES)}
    pad_id = PAD_ID
    unk_id = UNK_ID
    n_id = N_ID
    vocab_size = VOCAB_SIZE

    def __init__(self, strict: bool = True, add_special_tokens: bool = False):
        self.strict = strict
        self.add_special_tokens = add_special_tokens
        self._id_to_char = np.array(
            ["?"] * 7 + list(NUCLEOTIDES), dtype="<U1"
        )  # specials decode to '?', never appear in DNA text

    def encode_numpy(self, seq: str | bytes, name: str = "sequence") -> np.ndarray:
        """Tokenise one sequence into an int64 numpy array of shape (L,).

        Raises:
            ValueError: a non-DNA character (strict mode), naming ``name``, the character and
                its 0-based position.
        """
        raw = seq.encode("latin-1") if isinstance(seq, str) else bytes(seq)
        ids = _BYTE_LUT[np.frombuffer(raw, dtype=np.uint8)]
        bad = ids == _INVALID
        if bad.any():
            if self.strict:
                pos = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name}: invalid character {chr(raw[pos])!r} at position {pos} "
                    "(expected A, C, G, T, N or an IUPAC code)"
                )
            ids = np.where(bad, UNK_ID, ids)
        if self.add_special_tokens:
            ids = np.append(ids, SEP_ID)
        return ids

    def encode(self, seq: str | bytes, name: str = "sequence") -> torch.Tensor:
        """Tokenise one sequence → LongTensor (L,) (plus a trailing [SEP] if configured)."""
        return torch.from_numpy(self.encode_numpy(seq, name))

    def encode_batch(
        self,
        seqs: Sequence[str],
        max_length: int | None = None,
        padding_side: str = "left",
        names: Sequence[str] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise and pad a batch.

        Args:
            seqs: DNA strings.
            max_length: pad to this length (default: the longest sequence); longer sequences
                raise ValueError (truncating DNA silently changes the answer).
            padding_side: "left" (official HyenaDNA) or "right" (padding-invariant for this
                causal model, see the module docstring).
            names: per-sequence names for error messages.

        Returns:
            input_ids (B, L) int64 and attention_mask (B, L) bool, True on real tokens.
        """
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        names = names or [f"sequence {i}" for i in range(len(seqs))]
        encoded = [self.encode_numpy(s, n) for s, n in zip(seqs, names)]
        longest = max((len(e) for e in encoded), default=0)
        width = longest if max_length is None else max_length
        ids = np.full((len(encoded), width), PAD_ID, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=bool)
        for row, (e, n) in enumerate(zip(encoded, names)):
            if len(e) > width:
                raise ValueError(f"{n}: length {len(e)} exceeds max_length {width}")
            span = slice(0, len(e)) if padding_side == "right" else slice(width - len(e), width)
            ids[row, span] = e
            mask[row, span] = True
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def decode(self, ids: torch.Tensor | np.ndarray | Sequence[int]) -> str:
        """Ids → DNA string; special tokens decode to '?' (they are not DNA)."""
        arr = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids, dtype=np.int64)
        return "".join(self._id_to_char[arr].tolist())


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA string; IUPAC codes are complemented, case is kept."""
    return seq.translate(_STR_COMPLEMENT)[::-1]


def reverse_complement_ids(ids: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Reverse complement of token ids along ``dim``; specials and N map to themselves.

    Note: with padding, reverse the real tokens only (right-padded rows become left-padded).
    """
    return _ID_COMPLEMENT.to(ids.device)[ids].flip(dim)
