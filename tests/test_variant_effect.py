import csv
import gzip
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from inference_fixtures import make_lm

from cli import main
from hyenadna.config import VariantEffectConfig
from hyenadna.fasta import iter_fasta
from hyenadna.tokenizer import CharTokenizer
from hyenadna.variant_effect import Variant, build_pair, open_genome, read_variants, variant_effect

# Expected status of each row of tests/data/chrM_variants.vcf (750 has two ALTs: two rows).
VCF_STATUS = [("73", "G", "ok"), ("263", "G", "ok"), ("310", "TC", "ok"), ("513", "G", "ok"),
              ("750", "G", "ok"), ("750", "C", "ok"), ("1438", "A", "ref_mismatch"),
              ("3010", "A", "ok"), ("3500", "<DEL>", "symbolic_alt"),
              ("5000", "G", "out_of_range"), ("1000", "G", "unknown_chrom")]


@pytest.fixture
def genome(tmp_path, data_dir):
    """A copy of chrM_4k.fa (pyfaidx writes its .fai beside it: never into tests/data)."""
    return shutil.copy(data_dir / "chrM_4k.fa", tmp_path / "chrM_4k.fa")


@pytest.fixture
def lm(tmp_path):
    return make_lm(tmp_path / "lm.ckpt"), tmp_path / "lm.ckpt"


def _run(lm_path, genome, variants, out, **options):
    cfg = VariantEffectConfig(model=str(lm_path), genome=str(genome), variants=str(variants),
                              output=str(out), **options)
    return variant_effect(cfg)


def _rows(path):
    return list(csv.DictReader(Path(path).read_text().splitlines(), delimiter="\t"))


def _loglik_by_hand(model, seq):
    """Σ_{t≥1} log p(s_t | s_<t), one position at a time, from the unpadded sequence."""
    ids = CharTokenizer().encode(seq)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids.unsqueeze(0))[0].double(), dim=-1)  # (L, V)
    return sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)))


def test_snv_score_equals_the_two_log_likelihoods_by_hand(lm, genome, data_dir, tmp_path):
    model, path = lm
    _run(path, genome, data_dir / "chrM_variants.vcf", tmp_path / "v.tsv", window=64,
         batch_size=4)
    row = _rows(tmp_path / "v.tsv")[0]
    assert (row["pos"], row["ref"], row["alt"], row["status"]) == ("73", "A", "G", "ok")
    seq = dict(iter_fasta(genome))["chrM"]
    p = 72  # 0-based position of m.73A>G; window 64 = 31 bases left, the SNV, 32 right
    assert seq[p] == "A" and (row["window_start"], row["window_end"]) == ("41", "105")
    ref_ll = _loglik_by_hand(model, seq[p - 31:p] + "A" + seq[p + 1:p + 33])
    alt_ll = _loglik_by_hand(model, seq[p - 31:p] + "G" + seq[p + 1:p + 33])
    assert float(row["ref_loglik"]) == pytest.approx(ref_ll, abs=1e-3)
    assert float(row["alt_loglik"]) == pytest.approx(alt_ll, abs=1e-3)
    assert float(row["llr"]) == pytest.approx(alt_ll - ref_ll, abs=1e-3)


def test_vcf_statuses_multiallelic_split_and_ref_mismatch_reported(lm, genome, data_dir,
                                                                   tmp_path):
    _, path = lm
    summary = _run(path, genome, data_dir / "chrM_variants.vcf", tmp_path / "v.tsv",
                   window=64, batch_size=3)
    rows = _rows(tmp_path / "v.tsv")
    assert [(r["pos"], r["alt"], r["status"]) for r in rows] == VCF_STATUS
    mismatch = rows[6]
    assert (mismatch["ref"], mismatch["genome_ref"], mismatch["llr"]) == ("G", "A", "NA")
    assert all(r["llr"] != "NA" for r in rows if r["status"] == "ok")
    assert summary.records == len(VCF_STATUS) and summary.windows == 2 * 7


def test_tsv_and_gzipped_vcf_inputs_give_the_vcf_scores(lm, genome, data_dir, tmp_path):
    _, path = lm
    _run(path, genome, data_dir / "chrM_variants.vcf", tmp_path / "vcf.tsv", window=64)
    with gzip.open(tmp_path / "v.vcf.gz", "wb") as fh:
        fh.write((data_dir / "chrM_variants.vcf").read_bytes())
    _run(path, genome, tmp_path / "v.vcf.gz", tmp_path / "gz.tsv", window=64)
    assert (tmp_path / "gz.tsv").read_text() == (tmp_path / "vcf.tsv").read_text()
    _run(path, genome, data_dir / "chrM_variants.tsv", tmp_path / "tsv.tsv", window=64)
    by_vcf = {(r["pos"], r["alt"]): r["llr"] for r in _rows(tmp_path / "vcf.tsv")}
    rows = _rows(tmp_path / "tsv.tsv")
    assert [(r["pos"], r["status"]) for r in rows] == [("73", "ok"), ("310", "ok"),
                                                       ("1438", "ref_mismatch")]
    assert all(r["llr"] == by_vcf[r["pos"], r["alt"]] for r in rows)


@pytest.mark.parametrize(("pos", "ref", "alt"), [(310, "T", "TC"), (513, "GCA", "G")])
def test_indel_sequences_share_both_flanks(genome, pos, ref, alt):
    with open_genome(str(genome)) as fasta:
        pair = build_pair(Variant("chrM", pos, ".", ref, alt), fasta, window=64)
    assert pair.status == "ok"
    m = max(len(ref), len(alt))
    left, right = (64 - m) // 2, 64 - m - (64 - m) // 2
    assert pair.ref_seq[left:left + len(ref)] == ref and pair.alt_seq[left:left + len(alt)] == alt
    assert pair.ref_seq[:left] == pair.alt_seq[:left]
    assert pair.ref_seq[-right:] == pair.alt_seq[-right:] and max(map(len, (
        pair.ref_seq, pair.alt_seq))) == 64
    assert pair.window == (pos - 1 - left, pos - 1 + len(ref) + right)


def test_window_is_clipped_at_the_chromosome_start(genome):
    with open_genome(str(genome)) as fasta:
        pair = build_pair(Variant("chrM", 2, ".", "A", "T"), fasta, window=64)
    assert pair.status == "ok" and pair.window == (0, 34) and pair.alt_seq[:2] == "GT"


def test_read_variants_raises_on_a_bad_row(tmp_path):
    bad = tmp_path / "v.tsv"
    bad.write_text("chrom\tpos\tref\talt\nchrM\tten\tA\tG\n")
    with pytest.raises(ValueError, match="line 2: position 'ten' is not an integer"):
        list(read_variants(str(bad)))
    bad.write_text("chrM\t10\tA\n")
    with pytest.raises(ValueError, match="needs 4 tab-separated columns"):
        list(read_variants(str(bad)))


def test_cli_variant_effect_to_stdout(lm, genome, data_dir):
    _, path = lm
    result = CliRunner().invoke(main, ["variant-effect", "--model", str(path), "--genome",
                                       str(genome), str(data_dir / "chrM_variants.tsv"),
                                       "--window", "32"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[-3:] == ["alt_loglik", "llr", "status"] and len(lines) == 4
    assert "variant-effect: 3 records" in result.stderr


@pytest.mark.parametrize(("case", "message"), [
    ("no_genome", "genome FASTA not found"),
    ("empty", "no variants (empty file)"),
    ("window_too_large", "exceeds the model's maximum input length 258"),
])
def test_cli_variant_effect_bad_input_is_one_error_line(lm, genome, data_dir, tmp_path, case,
                                                        message):
    _, path = lm
    variants, extra = data_dir / "chrM_variants.vcf", []
    if case == "no_genome":
        genome = tmp_path / "missing.fa"
    elif case == "empty":
        variants = tmp_path / "empty.vcf"
        variants.write_text("")
    else:
        extra = ["--window", "1000"]
    out = tmp_path / "v.tsv"
    result = CliRunner().invoke(main, ["variant-effect", "--model", str(path), "--genome",
                                       str(genome), str(variants), "-o", str(out), *extra])
    assert result.exit_code == 1 and result.output.startswith("Error:")
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_variant_effect_on_device_matches_cpu(lm, genome, data_dir, tmp_path, device):
    _, path = lm
    for name, dev in (("cpu.tsv", "cpu"), ("dev.tsv", str(device))):
        _run(path, genome, data_dir / "chrM_variants.vcf", tmp_path / name, window=64,
             device=dev, precision="fp32")
    cpu, dev = _rows(tmp_path / "cpu.tsv"), _rows(tmp_path / "dev.tsv")
    assert [r["status"] for r in cpu] == [r["status"] for r in dev]
    for a, b in zip(cpu, dev):
        if a["status"] == "ok":
            assert float(a["llr"]) == pytest.approx(float(b["llr"]), abs=1e-2)
