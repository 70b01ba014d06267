import numpy as np
import pytest
import torch

from hyenadna.tokenizer import (
    N_ID,
    PAD_ID,
    UNK_ID,
    CharTokenizer,
    reverse_complement,
    reverse_complement_ids,
)


def test_encode_official_vocabulary():
    tok = CharTokenizer()
    assert tok.encode("ACGTN").tolist() == [7, 8, 9, 10, 11]
    assert tok.vocab["[CLS]"] == 0 and tok.vocab["[PAD]"] == 4 and tok.vocab["[UNK]"] == 6
    assert len(tok.vocab) == 12


def test_encode_softmask_maps_to_uppercase_ids():
    tok = CharTokenizer()
    assert tok.encode("acgtn").tolist() == tok.encode("ACGTN").tolist()


@pytest.mark.parametrize("code", list("RYSWKMBDHVryswkmbdhv"))
def test_encode_iupac_maps_to_n(code):
    assert CharTokenizer().encode(code).tolist() == [N_ID]


def test_encode_raises_on_invalid_character_with_position():
    with pytest.raises(ValueError, match=r"chr1: invalid character 'X' at position 3"):
        CharTokenizer().encode("ACGXT", name="chr1")


def test_encode_lenient_mode_uses_unk():
    assert CharTokenizer(strict=False).encode("AX-").tolist() == [7, UNK_ID, UNK_ID]


def test_encode_is_vectorised_on_chromosome_sized_input():
    seq = "ACGTNacgtn" * 2_000_000  # 20 Mb in one call: a Python loop would take many seconds
    ids = CharTokenizer().encode_numpy(seq)
    assert ids.shape == (20_000_000,) and ids.dtype == np.int64
    assert ids[:10].tolist() == [7, 8, 9, 10, 11] * 2


def test_decode_round_trip():
    tok = CharTokenizer()
    seq = "ACGTNNACGTTGCA"
    assert tok.decode(tok.encode(seq)) == seq


def test_reverse_complement_string_twice_is_identity():
    seq = "ACGTNRYKMacgtn"
    assert reverse_complement(reverse_complement(seq)) == seq
    assert reverse_complement("AACGTt") == "aACGTT"


def test_reverse_complement_ids_matches_string_version(rng):
    tok = CharTokenizer()
    seq = "".join(np.random.default_rng(0).choice(list("ACGTN"), 200))
    ids = tok.encode(seq)
    assert tok.decode(reverse_complement_ids(ids)) == reverse_complement(seq)
    batch = torch.stack([ids, ids.flip(0)])
    assert torch.equal(reverse_complement_ids(reverse_complement_ids(batch)), batch)


def test_encode_batch_left_and_right_padding():
    tok = CharTokenizer()
    ids, mask = tok.encode_batch(["ACG", "A"], padding_side="left")
    assert ids.tolist() == [[7, 8, 9], [PAD_ID, PAD_ID, 7]]
    assert mask.tolist() == [[True] * 3, [False, False, True]]
    ids, mask = tok.encode_batch(["ACG", "A"], padding_side="right")
    assert ids.tolist() == [[7, 8, 9], [7, PAD_ID, PAD_ID]]


def test_encode_batch_raises_when_longer_than_max_length():
    with pytest.raises(ValueError, match="rec2: length 4 exceeds max_length 3"):
        CharTokenizer().encode_batch(["ACG", "ACGT"], max_length=3, names=["rec1", "rec2"])
