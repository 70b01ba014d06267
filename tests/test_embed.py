import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from inference_fixtures import make_classifier, make_lm

from cli import main
from hyenadna import HyenaDNA
from hyenadna.config import EmbedConfig
from hyenadna.embed import embed
from hyenadna.fasta import iter_fasta
from hyenadna.tokenizer import CharTokenizer

REGIONS = "chrM_regions.fa"


def _hidden(model, seq):
    """Reference: the backbone's hidden states (L, D) of one unpadded sequence."""
    with torch.no_grad():
        return model.backbone(CharTokenizer().encode(seq).unsqueeze(0))[0].numpy()


def _embed(model_path, fasta, out, **options):
    return embed(EmbedConfig(model=str(model_path), input=str(fasta), output=str(out),
                             **options))


def test_embed_pretrained_checkpoint_matches_the_backbone(tmp_path, data_dir):
    model = make_lm(tmp_path / "lm.ckpt")
    summary = _embed(tmp_path / "lm.ckpt", data_dir / REGIONS, tmp_path / "e.h5",
                     per_token=True, window=200, stride=150, batch_size=3)
    assert summary.records == 4
    records = dict(iter_fasta(data_dir / REGIONS))
    with h5py.File(tmp_path / "e.h5") as f:
        assert f.attrs["command"] == "embed"
        assert json.loads(f.attrs["model_config"])["d_model"] == 16
        assert json.loads(f.attrs["options"])["window"] == 200
        for name, seq in records.items():
            grp = f["records"][name]
            windows, tokens = grp["windows"][:], grp["tokens"]
            assert tokens.shape == (len(seq), 16) and tokens.compression == "gzip"
            assert grp["window_mean"].shape == (len(windows), 16)
            for i in (0, len(windows) - 1):  # a window's mean, recomputed alone
                s, e = windows[i]
                np.testing.assert_allclose(grp["window_mean"][i],
                                           _hidden(model, seq[s:e]).mean(0), atol=1e-5)
            # a base's state comes from the first window containing it (most left context)
            first = {}
            for s, e in windows[::-1]:
                first.update({p: (s, e) for p in range(s, e)})
            for p in (0, len(seq) // 2, len(seq) - 1):
                s, e = first[p]
                np.testing.assert_allclose(tokens[p], _hidden(model, seq[s:e])[p - s],
                                           atol=1e-5)
            np.testing.assert_allclose(grp["mean"][:], tokens[:].mean(0), atol=1e-5)


def test_embed_official_release_directory(tmp_path, data_dir, official_tiny):
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a\n" + "ACGTTGCA" * 40 + "\n>b\n" + "GGGCCCAT" * 10 + "\n")
    _embed(official_tiny, fasta, tmp_path / "e.h5")
    model = HyenaDNA.from_pretrained(official_tiny)
    with h5py.File(tmp_path / "e.h5") as f:
        assert json.loads(f.attrs["options"])["window"] == 1024  # l_max 1026 - 2
        assert f.attrs["task"] == "null" and list(f.attrs["class_names"]) == []
        assert "tokens" not in f["records/a"]
        np.testing.assert_allclose(f["records/a/mean"][:],
                                   _hidden(model, "ACGTTGCA" * 40).mean(0), atol=1e-5)


def test_embed_uses_a_classifiers_backbone_and_task(tmp_path, data_dir):
    clf = make_classifier(tmp_path / "clf.ckpt", seq_len=128)
    _embed(tmp_path / "clf.ckpt", data_dir / REGIONS, tmp_path / "e.h5")
    seq = dict(iter_fasta(data_dir / REGIONS))["chrM_9001_9064"]
    with torch.no_grad():
        expected = clf.backbone(CharTokenizer().encode(seq).unsqueeze(0))[0].mean(0).numpy()
    with h5py.File(tmp_path / "e.h5") as f:
        assert json.loads(f.attrs["task"])["seq_len"] == 128
        assert list(f.attrs["class_names"]) == ["neg", "pos"]
        assert f["records/chrM_4001_5000/windows"].shape == (8, 2)  # 1000 bp / 128, rounded up
        np.testing.assert_allclose(f["records/chrM_9001_9064/mean"][:], expected, atol=1e-5)


@pytest.mark.parametrize(("output", "message"), [("e.tsv", "embed writes HDF5"),
                                                 ("-", "embed writes HDF5")])
def test_cli_embed_rejects_non_hdf5_output(tmp_path, data_dir, output, message):
    make_lm(tmp_path / "lm.ckpt")
    result = CliRunner().invoke(main, ["embed", "--model", str(tmp_path / "lm.ckpt"),
                                       str(data_dir / REGIONS), "-o", output])
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_embed_writes_h5_and_a_summary(tmp_path, data_dir):
    make_lm(tmp_path / "lm.ckpt")
    out = tmp_path / "e.h5"
    result = CliRunner().invoke(main, ["embed", "--model", str(tmp_path / "lm.ckpt"),
                                       str(data_dir / REGIONS), "-o", str(out), "--per-token"])
    assert result.exit_code == 0, result.output
    assert "embed: 4 records" in result.output and str(out) in result.output
    with h5py.File(out) as f:
        assert f["records/chrM_6001_8500/tokens"].shape == (2500, 16)
