import csv
import gzip
import shutil
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from inference_fixtures import make_classifier, make_lm

from cli import main
from hyenadna.config import ScoreConfig
from hyenadna.fasta import iter_fasta
from hyenadna.score import iter_windows, own_spans, prefetch, score, window_batches, window_spans
from hyenadna.tokenizer import CharTokenizer, reverse_complement

# chrM_regions.fa: records of 1000, 120, 2500 and 64 bp (real chrM, see tests/data/README.md)
REGIONS = "chrM_regions.fa"


@pytest.fixture
def clf(tmp_path):
    """A random-weight 2-class classifier trained length 256 (l_max 258), its checkpoint path."""
    path = tmp_path / "clf.ckpt"
    return make_classifier(path), path


def _fasta(path, records):
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in records))
    return path


def _tsv(path):
    return list(csv.DictReader(Path(path).read_text().splitlines(), delimiter="\t"))


def _probs(rows):
    return np.array([[float(r["prob_neg"]), float(r["prob_pos"])] for r in rows])


def _run(model_path, fasta, out, **options):
    return score(ScoreConfig(model=str(model_path), input=str(fasta), output=str(out),
                             **options))


@pytest.mark.parametrize("length", [1, 5, 63, 64, 65, 100, 127, 128, 129, 1000])
@pytest.mark.parametrize(("window", "stride"), [(64, 64), (64, 16), (64, 1), (64, 50),
                                                (1, 1), (7, 3)])
def test_window_spans_tile_the_record_exactly(length, window, stride):
    spans = window_spans(length, window, stride)
    starts, ends = spans[:, 0], spans[:, 1]
    assert starts[0] == 0 and ends[-1] == length
    assert np.all(ends - starts == min(window, length))  # every window has the trained length
    assert np.all(np.diff(starts) > 0) and np.all(starts[1:] <= ends[:-1])  # ordered, no gaps
    assert np.all(np.diff(starts)[:-1] == stride)  # only the last step may be shorter
    for rule in ("centre", "causal"):
        own = own_spans(spans, length, rule)
        assert own[0, 0] == 0 and own[-1, 1] == length
        assert np.all(own[1:, 0] == own[:-1, 1]) and np.all(own[:, 1] > own[:, 0])  # partition
        assert np.all(own[:, 0] >= starts) and np.all(own[:, 1] <= ends)  # inside the window


def test_window_spans_right_align_the_last_window():
    np.testing.assert_array_equal(window_spans(10, 4, 4), [[0, 4], [4, 8], [6, 10]])
    np.testing.assert_array_equal(window_spans(8, 4, 2), [[0, 4], [2, 6], [4, 8]])
    np.testing.assert_array_equal(window_spans(3, 4, 4), [[0, 3]])
    spans = window_spans(10, 4, 4)
    np.testing.assert_array_equal(own_spans(spans, 10, "causal"), [[0, 4], [4, 8], [8, 10]])
    np.testing.assert_array_equal(own_spans(spans, 10, "centre"), [[0, 4], [4, 7], [7, 10]])


def test_record_alone_and_in_any_batch_give_the_same_probabilities(clf, data_dir, tmp_path):
    model, path = clf
    records = list(iter_fasta(data_dir / REGIONS))
    together = {}
    for batch_size in (3, 16):  # 3 splits records across batches
        out = tmp_path / f"b{batch_size}.tsv"
        _run(path, data_dir / REGIONS, out, batch_size=batch_size, stride=200)
        together[batch_size] = _probs(_tsv(out))
    alone = []
    for i, rec in enumerate(records):
        out = tmp_path / f"alone{i}.tsv"
        _run(path, _fasta(tmp_path / f"alone{i}.fa", [rec]), out, batch_size=1, stride=200)
        alone.append(_probs(_tsv(out)))
    for probs in together.values():
        np.testing.assert_allclose(probs, np.concatenate(alone), atol=1e-5, rtol=0)
    # slow twin: the first window of the 2500-bp record, straight through the model
    rows = _tsv(tmp_path / "b16.tsv")
    name, seq = records[2]
    i = next(i for i, r in enumerate(rows) if r["record"] == name and r["start"] == "400")
    ids = CharTokenizer().encode(seq[400:656]).unsqueeze(0)
    with torch.no_grad():
        direct = torch.softmax(model(ids), -1).numpy()[0]
    np.testing.assert_allclose(together[16][i], direct, atol=1e-5, rtol=0)


def test_rc_average_is_symmetric(clf, tmp_path):
    _, path = clf
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 200))  # shorter than the window: one window each
    long_seq = "".join(rng.choice(list("ACGT"), 512))  # two windows that swap under RC
    fasta = _fasta(tmp_path / "x.fa", [("fwd", seq), ("rev", reverse_complement(seq)),
                                       ("long", long_seq), ("long_rc",
                                                            reverse_complement(long_seq))])
    _run(path, fasta, tmp_path / "avg.tsv", rc_average=True, aggregate="mean")
    rows = _tsv(tmp_path / "avg.tsv")
    by = {(r["record"], r["kind"], r["start"]): _probs([r])[0] for r in rows}
    np.testing.assert_allclose(by["fwd", "window", "0"], by["rev", "window", "0"], atol=1e-6)
    np.testing.assert_allclose(by["long", "window", "0"], by["long_rc", "window", "256"],
                               atol=1e-6)
    np.testing.assert_allclose(by["long", "mean", "0"], by["long_rc", "mean", "0"], atol=1e-6)
    _run(path, fasta, tmp_path / "plain.tsv", rc_average=False)
    plain = _probs([r for r in _tsv(tmp_path / "plain.tsv") if r["record"] in ("fwd", "rev")])
    assert np.abs(plain[0] - plain[1]).max() > 1e-3  # averaging actually did something


def test_rc_average_defaults_to_the_tasks_setting(tmp_path, data_dir):
    make_classifier(tmp_path / "rc.ckpt", rc_average=True)
    _run(tmp_path / "rc.ckpt", data_dir / REGIONS, tmp_path / "o.h5")
    with h5py.File(tmp_path / "o.h5") as f:
        assert '"rc_average": true' in f.attrs["options"]


def test_score_writes_all_formats_with_expected_rows(clf, data_dir, tmp_path):
    _, path = clf
    for out in ("o.tsv", "o.bedgraph", "o.h5"):
        summary = _run(path, data_dir / REGIONS, tmp_path / out, aggregate="max")
    assert (summary.records, summary.nucleotides) == (4, 1000 + 120 + 2500 + 64)
    windows = {"chrM_4001_5000": 4, "chrM_5001_5120": 1, "chrM_6001_8500": 10,
               "chrM_9001_9064": 1}  # ceil(length / 256), the last one right-aligned
    rows = _tsv(tmp_path / "o.tsv")
    assert len(rows) == sum(windows.values()) + 4
    assert rows[3]["start"] == "744" and rows[3]["end"] == "1000"  # 1000 - 256
    with h5py.File(tmp_path / "o.h5") as f:
        assert list(f.attrs["class_names"]) == ["neg", "pos"]
        for name, n in windows.items():
            assert f["records"][name]["probs"].shape == (n, 2)
        np.testing.assert_allclose(f["records/chrM_4001_5000/probs"][:], _probs(rows[:4]),
                                   atol=1e-6)
    tracks = (tmp_path / "o.bedgraph").read_text().split("track ")[1:]
    assert [len(t.strip().splitlines()) - 1 for t in tracks] == [sum(windows.values())] * 2


def test_indexed_fasta_reads_through_pyfaidx_with_the_same_result(clf, data_dir, tmp_path):
    import pyfaidx

    _, path = clf
    shutil.copy(data_dir / REGIONS, tmp_path / "in.fa")
    _run(path, tmp_path / "in.fa", tmp_path / "stream.tsv", stride=100)
    pyfaidx.Faidx(str(tmp_path / "in.fa")).close()  # writes in.fa.fai
    assert (tmp_path / "in.fa.fai").is_file()
    _run(path, tmp_path / "in.fa", tmp_path / "indexed.tsv", stride=100)
    assert (tmp_path / "stream.tsv").read_text() == (tmp_path / "indexed.tsv").read_text()


def test_soft_masked_bases_score_as_upper_case(clf, tmp_path):
    _, path = clf
    seq = "ACGTTGCAAC" * 20
    fasta = _fasta(tmp_path / "x.fa", [("upper", seq), ("lower", seq.lower())])
    probs = _probs(_tsv(_run(path, fasta, tmp_path / "o.tsv").output))
    np.testing.assert_array_equal(probs[0], probs[1])


def test_cli_reads_stdin_and_writes_stdout(clf, data_dir):
    _, path = clf
    text = (data_dir / REGIONS).read_text()
    result = CliRunner().invoke(main, ["score", "--model", str(path), "-", "-o", "-"],
                                input=text)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("record\tstart\tend") and len(lines) == 1 + 16
    assert "score: 4 records" in result.stderr  # the summary stays out of the TSV


def _invalid_char(tmp_path):
    seq = "ACGT" * 40
    return _fasta(tmp_path / "bad.fa", [("ok", seq), ("second", seq[:150] + "X" + seq[151:])])


@pytest.mark.parametrize(("make_input", "extra", "message"), [
    (lambda p: _fasta(p / "e.fa", []), [], "no FASTA records"),
    (lambda p: (p / "blank.fa").write_text("\n\n") and p / "blank.fa", [], "no FASTA records"),
    (lambda p: (p / "t.fa").write_text("ACGT\n") and p / "t.fa", [], "before the first '>'"),
    (_invalid_char, [], "second: invalid character 'X' at position 150"),
    (lambda p: _fasta(p / "s.fa", [("tiny", "ACGT")]), ["--min-length", "10"],
     "tiny: record length 4 is below the minimum 10"),
    (lambda p: _fasta(p / "z.fa", [("empty", "")]), [], "empty: record length 0"),
    (lambda p: p / "missing.fa", [], "FASTA file not found"),
    (lambda p: _fasta(p / "w.fa", [("a", "ACGT")]), ["--window", "300"],
     "exceeds the model's maximum input length 258"),
    (lambda p: _fasta(p / "w.fa", [("a", "ACGT")]), ["--window", "10", "--stride", "11"],
     "stride 11 is larger than the window 10"),
    (lambda p: _fasta(p / "w.fa", [("a", "ACGT")]), ["-o", "out.csv"],
     "cannot tell the output format"),
])
def test_cli_bad_input_is_one_error_line(clf, tmp_path, make_input, extra, message):
    _, path = clf
    fasta = make_input(tmp_path)
    args = ["score", "--model", str(path), str(fasta), "-o", str(tmp_path / "o.tsv"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o.tsv").exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("which", ["pretrained", "official"])
def test_cli_score_rejects_a_checkpoint_without_a_classifier_head(which, tmp_path, data_dir):
    model = tmp_path / "lm.ckpt"
    make_lm(model)
    if which == "official":
        model = data_dir / "official-tiny"
    result = CliRunner().invoke(main, ["score", "--model", str(model),
                                       str(data_dir / REGIONS), "-o", str(tmp_path / "o.tsv")])
    assert result.exit_code == 1 and "not a classifier checkpoint" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_error_late_in_the_file_leaves_no_partial_output(clf, tmp_path, data_dir):
    _, path = clf
    records = list(iter_fasta(data_dir / REGIONS))
    fasta = _fasta(tmp_path / "in.fa", [*records[:2], ("bad", "ACGT" * 100 + "?")])
    for out in ("o.tsv", "o.bedgraph", "o.h5"):
        with pytest.raises(ValueError, match="bad: invalid character '\\?' at position 400"):
            _run(path, fasta, tmp_path / out, batch_size=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.ckpt", "in.fa"]


def test_gzip_input_scores_like_plain(clf, data_dir, tmp_path):
    _, path = clf
    with gzip.open(tmp_path / "in.fa.gz", "wb") as fh:
        fh.write((data_dir / REGIONS).read_bytes())
    _run(path, data_dir / REGIONS, tmp_path / "plain.tsv")
    _run(path, tmp_path / "in.fa.gz", tmp_path / "gz.tsv")
    assert (tmp_path / "gz.tsv").read_text() == (tmp_path / "plain.tsv").read_text()


# bf16 autocast keeps 8 mantissa bits through every layer of a random-weight model: on an H100
# (2026-11-25) probabilities moved by more than 0.03, so the bf16 bound is 0.06.
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("auto", 6e-2)])
def test_score_on_device_matches_cpu(clf, data_dir, tmp_path, device, precision, atol):
    _, path = clf
    _run(path, data_dir / REGIONS, tmp_path / "cpu.tsv", device="cpu", precision="fp32")
    _run(path, data_dir / REGIONS, tmp_path / "dev.tsv", device=str(device),
         precision=precision)  # auto = bf16 autocast on CUDA
    np.testing.assert_allclose(_probs(_tsv(tmp_path / "dev.tsv")),
                               _probs(_tsv(tmp_path / "cpu.tsv")), atol=atol, rtol=0)


def test_prefetch_keeps_order_and_reraises_producer_errors():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("rec: invalid character 'X' at position 7")

    with pytest.raises(ValueError, match="position 7"):
        list(prefetch(failing(), depth=2))


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    items = prefetch(iter(range(10**6)), depth=2)
    assert next(items) == 0
    items.close()  # the consumer's finally: stop + join
    assert not any(t.name == "hyenadna-prefetch" for t in threading.enumerate())


def test_window_batches_read_ahead_on_cuda_gives_the_same_batches(data_dir):
    def windows():
        return iter_windows(str(data_dir / REGIONS), 256, 200, 1)

    plain = list(window_batches(windows(), 3, torch.device("cpu")))
    ahead = list(window_batches(windows(), 3, torch.device("cuda")))  # only device.type is read
    assert [[(w.record, w.start) for w in b] for b in plain] == \
        [[(w.record, w.start) for w in b] for b in ahead]
