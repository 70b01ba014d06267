"""Genome reader (pyfaidx, BGZF, index placement, contig filter, soft-mask) and the
train/valid/test splits, whose defining property is that no training window can overlap a
held-out interval."""

import gzip
import itertools

import numpy as np
import pytest

from hyenadna.genome import (
    Genome,
    Interval,
    WindowSampler,
    build_splits,
    ensure_index,
    merge,
    subtract,
    tile_windows,
)

SLICE = "hg19_chr22_30.0-30.2Mb.fa.gz"
CHROM = "chr22_30000000_30200000"



@pytest.fixture
def sequence(data_dir):
    with gzip.open(data_dir / SLICE, "rt") as fh:
        return "".join(line.strip() for line in fh if not line.startswith(">"))


@pytest.fixture
def multi_fasta(tmp_path, sequence):
    """Three 'chromosomes' and a short scaffold cut from the real slice (plain FASTA)."""
    path = tmp_path / "multi.fa"
    records = {"chrA": sequence[:60_000], "chrB": sequence[60_000:120_000],
               "chrC": sequence[120_000:180_000], "chrUn_x": sequence[180_000:181_000]}
    path.write_text("".join(f">{k}\n" + "\n".join(v[i:i + 60] for i in range(0, len(v), 60))
                            + "\n" for k, v in records.items()))
    return path


def assert_no_train_overlap(splits, length=257, draws=3000):
    """Held-out sets are disjoint, and random training windows never touch them."""
    held = merge(splits.valid + splits.test)
    assert subtract(splits.valid, splits.test) == splits.valid
    assert subtract(splits.train, held) == splits.train
    sampler, rng = WindowSampler(splits.train), np.random.default_rng(0)
    for _ in range(draws):
        w = sampler.sample(length, rng)
        assert any(r.chrom == w.chrom and r.start <= w.start and w.end <= r.end
                   for r in splits.train)
        assert not any(h.chrom == w.chrom and h.start < w.end and w.start < h.end for h in held)


def test_genome_reads_bgzf_like_plain(genome_file, sequence, tmp_path):
    plain = tmp_path / "plain.fa"
    with gzip.open(genome_file, "rt") as src:
        plain.write_text(src.read())
    bgzf, flat = Genome(genome_file), Genome(plain)
    assert bgzf.contigs == flat.contigs == {CHROM: 200_000}
    for start, end in [(0, 60), (59, 61), (123_456, 125_000), (199_990, 200_000)]:
        iv = Interval(CHROM, start, end)
        assert bgzf.fetch(iv) == flat.fetch(iv) == sequence[start:end]


def test_fetch_at_bgzf_block_boundaries(genome_file, sequence):
    # Regression: pyfaidx 0.9 computes a within-block offset of 2**16 (and raises ValueError)
    # for a fetch starting exactly where a BGZF block ends; it crashed a chr22 pretraining run at
    # step 29. Bio.bgzf writes 65,536 uncompressed bytes per block: try every start near there.
    genome = Genome(genome_file)
    with gzip.open(genome_file, "rt") as fh:
        header = len(fh.readline())  # bytes before the first base
    for block in (1, 2, 3):
        boundary = next(b for b in range(200_000) if header + b + b // 60 >= 65_536 * block)
        for start in range(boundary - 70, boundary + 70):
            iv = Interval(CHROM, start, start + 25)
            assert genome.fetch(iv) == sequence[start:start + 25], start


def test_index_built_beside_a_writable_genome(genome_file):
    fai, gzi = ensure_index(genome_file)
    assert fai == genome_file.parent / f"{SLICE}.fai" and gzi.name == f"{SLICE}.gzi"
    assert not list(genome_file.parent.glob("*.tmp"))


def test_index_goes_to_cache_when_folder_is_read_only(genome_file, tmp_path):
    folder = genome_file.parent
    folder.chmod(0o555)
    try:
        genome = Genome(genome_file, index_cache_dir=tmp_path / "cache")
        assert genome.fai.parent == tmp_path / "cache" and genome.gzi.is_file()
        assert sorted(p.name for p in folder.iterdir()) == [SLICE]  # nothing written there
        assert genome.fetch(Interval(CHROM, 0, 10))
    finally:
        folder.chmod(0o755)


def test_plain_gzip_raises_with_fix(genome_file, tmp_path, sequence):
    bad = tmp_path / "x.fa.gz"
    bad.write_bytes(gzip.compress(f">c\n{sequence[:600]}\n".encode()))
    with pytest.raises(ValueError, match="gzip-compressed but not BGZF"):
        Genome(bad)


def test_contig_filter_by_pattern_and_length(multi_fasta):
    assert list(Genome(multi_fasta).contigs) == ["chrA", "chrB", "chrC", "chrUn_x"]
    assert list(Genome(multi_fasta, contig_pattern=r"chr[A-Z]").contigs) == ["chrA", "chrB",
                                                                             "chrC"]
    assert list(Genome(multi_fasta, min_contig_length=5000).contigs) == ["chrA", "chrB", "chrC"]
    with pytest.raises(ValueError, match="none of its 4 contigs"):
        Genome(multi_fasta, contig_pattern="chr1")


def test_soft_mask_drop_turns_lowercase_into_n(genome_file, sequence):
    start = next(i for i, c in enumerate(sequence) if c.islower())
    iv = Interval(CHROM, start - 5, start + 5)
    kept, dropped = Genome(genome_file).fetch(iv), Genome(genome_file, soft_mask="drop").fetch(iv)
    assert kept == sequence[iv.start:iv.end]
    assert dropped == "".join("N" if c.islower() else c for c in kept) and "N" in dropped


def test_splits_from_bed_never_overlap(multi_fasta, tmp_path):
    bed = tmp_path / "seqs.bed"
    bed.write_text("track name=x\nchrA\t0\t30000\ttrain\nchrA\t20000\t40000\tvalid\n"
                   "chrA\t35000\t50000\ttest\nchrB\t0\t60000\ttrain\nchrC\t100\t9000\ttest\n"
                   "chrZ\t0\t10\ttrain\n")  # chrZ: another assembly's contig, skipped
    splits = build_splits(Genome(multi_fasta).contigs, bed=bed)
    assert splits.train == [Interval("chrA", 0, 20000), Interval("chrB", 0, 60000)]
    assert splits.valid == [Interval("chrA", 20000, 35000)]
    assert splits.test == [Interval("chrA", 35000, 50000), Interval("chrC", 100, 9000)]
    assert_no_train_overlap(splits)


def test_splits_from_held_out_chroms_never_overlap(multi_fasta):
    contigs = Genome(multi_fasta, min_contig_length=5000).contigs
    splits = build_splits(contigs, valid_chroms=["chrB"], test_chroms=["chrC"])
    assert splits.train == [Interval("chrA", 0, 60000)]
    assert splits.valid == [Interval("chrB", 0, 60000)]
    assert splits.test == [Interval("chrC", 0, 60000)]
    assert_no_train_overlap(splits)


def test_splits_from_held_out_range_of_one_chromosome(genome_file):
    contigs = Genome(genome_file).contigs
    splits = build_splits(contigs, test_ranges=[f"{CHROM}:150,000-170000"])
    # validation defaults to 5% taken from the end of the last free stretch
    assert splits.test == [Interval(CHROM, 150_000, 170_000)]
    assert splits.valid == [Interval(CHROM, 190_000, 200_000)]
    assert splits.train == [Interval(CHROM, 0, 150_000), Interval(CHROM, 170_000, 190_000)]
    assert_no_train_overlap(splits)
    default = build_splits(contigs)  # test = last 5%, valid = the 5% before it
    assert default.test == [Interval(CHROM, 190_000, 200_000)]
    assert default.valid == [Interval(CHROM, 180_000, 190_000)]
    assert_no_train_overlap(default)


@pytest.mark.parametrize("kwargs, message", [
    ({"test_chroms": ["chr9"]}, "contig 'chr9' is not in the genome"),
    ({"test_ranges": ["chrA:10-70000"]}, "past the end of chrA"),
    ({"test_ranges": ["chrA:10"]}, "must look like chrom:start-end"),
    ({"valid_ranges": ["chrA:0-100"], "test_ranges": ["chrA:50-200"]}, "overlap"),
    ({"valid_chroms": ["chrA", "chrB"], "test_chroms": ["chrC", "chrUn_x"]}, "nothing|no sequence"),
])
def test_build_splits_raises_on_bad_request(multi_fasta, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_splits(Genome(multi_fasta).contigs, **kwargs)


def test_read_split_bed_raises_on_bad_row(multi_fasta, tmp_path):
    bed = tmp_path / "bad.bed"
    bed.write_text("chrA\t0\t100\ttrain\nchrA\t0\t100\tholdout\n")
    with pytest.raises(ValueError, match=r"bad.bed: line 2: expected 'chrom start end split'"):
        build_splits(Genome(multi_fasta).contigs, bed=bed)


def test_window_sampler_is_uniform_over_start_positions():
    sampler = WindowSampler([Interval("a", 0, 10), Interval("a", 20, 40), Interval("b", 0, 3)])
    rng = np.random.default_rng(1)
    starts = [sampler.sample(5, rng) for _ in range(11_000)]
    counts = {}
    for w in starts:
        counts[(w.chrom, w.start)] = counts.get((w.chrom, w.start), 0) + 1
    assert len(counts) == 6 + 16  # every start that fits, none of chrom b (too short)
    assert max(counts.values()) < 1.3 * 500 and min(counts.values()) > 0.7 * 500


def test_tile_windows_caps_spreads_and_skips_rejected():
    regions = [Interval("a", 0, 1000), Interval("b", 10, 510)]
    every = tile_windows(regions, 100, 100)
    assert len(every) == 15 and every[10] == Interval("b", 10, 110)
    assert all(x.end <= y.start for x, y in itertools.pairwise(every) if x.chrom == y.chrom)
    capped = tile_windows(regions, 100, 5)
    assert [w.start for w in capped] == [0, 300, 600, 900, 210]  # one per stretch of three
    no_a = tile_windows(regions, 100, 5, accept=lambda w: w.chrom != "a" or w.start >= 800)
    assert no_a[:2] == [Interval("a", 800, 900), Interval("a", 900, 1000)]
