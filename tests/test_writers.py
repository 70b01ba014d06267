import csv
import json
import os

import h5py
import numpy as np
import pytest

from hyenadna import __version__
from hyenadna.writers import (
    RecordScores,
    RunMetadata,
    atomic_path,
    h5_key,
    output_format,
    score_writer,
    text_output,
)


@pytest.fixture
def meta():
    return RunMetadata("score", {"d_model": 16, "l_max": 258}, "in.fa", "clf.ckpt",
                       {"name": "toy", "seq_len": 4, "class_names": ["neg", "pos"]},
                       ["neg", "pos"], {"window": 4, "stride": 2, "aggregate": "mean"})


@pytest.fixture
def records():
    """Two records: 'r1' (length 10: windows 0-4, 2-6, 4-8, 6-10) and 'a/b' (length 3)."""
    starts = np.array([0, 2, 4, 6])
    own = np.array([[0, 3], [3, 5], [5, 7], [7, 10]])
    p1 = np.array([[0.9, 0.1], [0.4, 0.6], [0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    r1 = RecordScores("r1", 10, starts, starts + 4, own[:, 0], own[:, 1], p1, p1.mean(0))
    p2 = np.array([[0.2, 0.8]], dtype=np.float32)
    r2 = RecordScores("a/b", 3, np.array([0]), np.array([3]), np.array([0]), np.array([3]), p2,
                      p2.mean(0))
    return [r1, r2]


def _write(path, fmt, meta, records):
    with score_writer(str(path), fmt, meta) as writer:
        for rec in records:
            writer.write(rec)


def test_output_format_by_extension_and_explicit():
    assert output_format("x.tsv") == "tsv" and output_format("x.BedGraph") == "bedgraph"
    assert output_format("x.h5") == "h5" and output_format("-") == "tsv"
    assert output_format("-", "bedgraph") == "bedgraph"


@pytest.mark.parametrize(("path", "fmt", "match"), [("x.csv", None, "extension '.csv'"),
                                                     ("-", "h5", "cannot go to stdout")])
def test_output_format_raises_on_bad_target(path, fmt, match):
    with pytest.raises(ValueError, match=match):
        output_format(path, fmt)


def test_tsv_parses_back_with_header_windows_and_aggregates(tmp_path, meta, records):
    _write(tmp_path / "o.tsv", "tsv", meta, records)
    rows = list(csv.DictReader((tmp_path / "o.tsv").read_text().splitlines(), delimiter="\t"))
    assert list(rows[0]) == ["record", "start", "end", "kind", "prob_neg", "prob_pos", "label"]
    assert [(r["record"], int(r["start"]), int(r["end"]), r["kind"]) for r in rows] == [
        ("r1", 0, 4, "window"), ("r1", 2, 6, "window"), ("r1", 4, 8, "window"),
        ("r1", 6, 10, "window"), ("r1", 0, 10, "mean"), ("a/b", 0, 3, "window"),
        ("a/b", 0, 3, "mean")]
    assert float(rows[1]["prob_pos"]) == pytest.approx(0.6)
    assert [r["label"] for r in rows[:3]] == ["neg", "pos", "pos"]
    assert float(rows[4]["prob_neg"]) == pytest.approx(np.mean([0.9, 0.4, 0.25, 0.5]))


def test_bedgraph_has_one_non_overlapping_track_per_class(tmp_path, meta, records):
    _write(tmp_path / "o.bedgraph", "bedgraph", meta, records)
    lines = (tmp_path / "o.bedgraph").read_text().splitlines()
    tracks = [i for i, line in enumerate(lines) if line.startswith("track ")]
    assert len(tracks) == 2 and tracks[0] == 0
    assert 'type=bedGraph name="P(neg)"' in lines[0] and 'name="P(pos)"' in lines[tracks[1]]
    for k, (lo, hi) in enumerate([(1, tracks[1]), (tracks[1] + 1, len(lines))]):
        rows = [line.split("\t") for line in lines[lo:hi]]
        assert all(len(r) == 4 for r in rows)
        r1 = [(int(s), int(e)) for name, s, e, _ in rows if name == "r1"]
        assert r1 == [(0, 3), (3, 5), (5, 7), (7, 10)]  # the owned spans: no overlap, no gap
        values = [float(r[3]) for r in rows]
        expected = np.concatenate([records[0].probs[:, k], records[1].probs[:, k]])
        np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_h5_parses_back_with_attrs_and_escaped_names(tmp_path, meta, records):
    _write(tmp_path / "o.h5", "h5", meta, records)
    with h5py.File(tmp_path / "o.h5") as f:
        assert f.attrs["hyenadna_version"] == __version__ and f.attrs["command"] == "score"
        assert json.loads(f.attrs["model_config"]) == meta.model_config
        assert json.loads(f.attrs["task"])["name"] == "toy"
        assert list(f.attrs["class_names"]) == ["neg", "pos"]
        assert json.loads(f.attrs["options"])["stride"] == 2
        assert list(f["records"]) == ["r1", "a%2Fb"]  # input order, '/' escaped
        grp = f["records/a%2Fb"]
        assert grp.attrs["name"] == "a/b" and grp.attrs["length"] == 3
        r1 = f["records/r1"]
        np.testing.assert_array_equal(r1["windows"][:], [[0, 4], [2, 6], [4, 8], [6, 10]])
        np.testing.assert_allclose(r1["probs"][:], records[0].probs)
        assert r1["aggregate"].attrs["method"] == "mean"


def test_h5_key_escapes_separator_and_reserved_names():
    assert h5_key("chr1") == "chr1" and h5_key("a/b%c") == "a%2Fb%25c" and h5_key(".") == "%2E"


@pytest.mark.parametrize(("name", "fmt"), [("o.tsv", "tsv"), ("o.bedgraph", "bedgraph"),
                                           ("o.h5", "h5")])
def test_error_leaves_no_output_and_no_temp_file(tmp_path, meta, records, name, fmt):
    with pytest.raises(RuntimeError), score_writer(str(tmp_path / name), fmt, meta) as writer:
        writer.write(records[0])
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_the_previous_complete_file(tmp_path, meta, records):
    out = tmp_path / "o.tsv"
    out.write_text("previous complete result\n")
    with pytest.raises(KeyboardInterrupt), score_writer(str(out), "tsv", meta) as writer:
        writer.write(records[0])
        raise KeyboardInterrupt
    assert out.read_text() == "previous complete result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["o.tsv"]


def test_successful_write_leaves_no_temp_file_and_user_permissions(tmp_path):
    with atomic_path(tmp_path / "sub" / "x.txt") as tmp:
        tmp.write_text("done")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "sub" / "x.txt").stat().st_mode & 0o777 == 0o666 & ~umask  # not 0600


def test_dash_writes_stdout(capsys):
    with text_output("-") as fh:
        fh.write("a\tb\n")
    assert capsys.readouterr().out == "a\tb\n"
