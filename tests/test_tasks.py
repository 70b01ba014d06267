import gzip

import numpy as np
import pytest
import torch

from hyenadna.tasks import (
    TASKS,
    ClassificationDataset,
    class_weights,
    collate,
    embedded_sample_dir,
    get_task,
    load_task_data,
    read_split,
    stratified_split,
)
from hyenadna.tokenizer import N_ID, PAD_ID, CharTokenizer, reverse_complement


@pytest.fixture
def gue(data_dir):
    return data_dir / "gue"


def _write(folder, split, text, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{split}.csv.gz" if gz else f"{split}.csv")
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _read(path, n_classes=2, max_len=10):
    return read_split(path, n_classes, max_len, "the test's limit")


def test_get_task_named_and_custom():
    assert get_task("splice").n_classes == 3
    assert get_task("splice").class_names == ("acceptor", "donor", "neither")
    assert get_task("tf", 2).seq_len == 101
    custom = get_task("custom", 4)
    assert custom.n_classes == 4 and custom.seq_len is None and custom.class_names[-1] == "3"


@pytest.mark.parametrize("name,k,match", [
    ("custom", None, "needs --num-classes"),
    ("splice", 2, "task 'splice' has 3 classes"),
    ("enhancer", None, "unknown task 'enhancer'"),
])
def test_get_task_raises(name, k, match):
    with pytest.raises(ValueError, match=match):
        get_task(name, k)


def test_read_split_plain_and_gzip_iupac_lowercase(tmp_path):
    text = "sequence,label\nACGTR,1\nacgt,0\n\n"
    for gz in (False, True):
        split = _read(_write(tmp_path / str(gz), "dev", text, gz))
        assert split.labels.tolist() == [1, 0] and split.lengths.tolist() == [5, 4]
        assert split.tokens[0, 4] == N_ID and split.tokens[1, 4] == PAD_ID  # IUPAC R → N


def test_read_split_ignores_extra_columns_and_order(tmp_path):
    split = _read(_write(tmp_path, "dev", "id,label,sequence\nr1,1,ACG\n"))
    assert split.labels.tolist() == [1]
    assert CharTokenizer().decode(split.tokens[0, :3]) == "ACG"


@pytest.mark.parametrize("text,match", [
    ("seq,label\nACGT,1\n", r"dev.csv, line 1: missing column 'sequence'"),
    ("sequence,class\nACGT,1\n", r"dev.csv, line 1: missing column 'label'"),
    ("", r"dev.csv, line 1: missing column 'sequence'"),
    ("sequence,label\nACGT,1\nACGT,2\n", r"dev.csv, line 3: unknown label 2"),
    ("sequence,label\nACGT,-1\n", r"dev.csv, line 2: unknown label -1"),
    ("sequence,label\nACGT,1.0\n", r"dev.csv, line 2: label '1.0' is not an integer"),
    ("sequence,label\nACGT,yes\n", r"dev.csv, line 2: label 'yes' is not an integer"),
    ("sequence,label\nACGT,\n", r"dev.csv, line 2: label '' is not an integer"),
    ("sequence,label\n", r"dev.csv: no data rows \(empty split\)"),
    ("sequence,label\nACGT,0\nACGTACGTACG,1\n", r"dev.csv, line 3: sequence length 11 exceeds 10"),
    ("sequence,label\nACGT,0\nAC-GT,1\n", r"dev.csv, line 3: invalid character '-' at position 2"),
    ("sequence,label\n,1\n", r"dev.csv, line 2: empty sequence"),
    ("sequence,label\nACGT\n", r"dev.csv, line 2: expected columns"),
])
def test_read_split_raises_naming_file_and_line(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        _read(_write(tmp_path, "dev", text))


def test_load_task_data_full_protocol(gue):
    data = load_task_data(gue / "tf" / "0", get_task("tf"), model_max_len=1026)
    assert data.protocol == "full"
    assert (len(data.train), len(data.val), len(data.test)) == (32, 16, 16)
    assert "train 32 rows of train.csv" in data.protocol_detail


def test_load_task_data_reduced_protocol_splits_dev(gue):
    data = load_task_data(gue / "splice" / "reconstructed", get_task("splice"), 1026,
                          dev_train_fraction=0.75, split_seed=3)
    assert data.protocol == "reduced" and "no train.csv" in data.protocol_detail
    assert len(data.train) + len(data.val) == 48 and len(data.test) == 24
    assert len(data.train) == 36
    assert set(data.train.labels) == set(data.val.labels) == {0, 1, 2}  # stratified
    again = load_task_data(gue / "splice" / "reconstructed", get_task("splice"), 1026,
                           dev_train_fraction=0.75, split_seed=3)
    assert np.array_equal(again.val.tokens, data.val.tokens)  # the split is reproducible


def test_load_task_data_raises_when_task_longer_than_model(gue):
    with pytest.raises(ValueError, match="needs sequences of 400 but the model's l_max is 258"):
        load_task_data(gue / "splice" / "reconstructed", get_task("splice"), 258)


def test_load_task_data_custom_limit_is_model_l_max(gue):
    with pytest.raises(ValueError, match=r"train.csv, line 2: sequence length 101 exceeds 64, "
                                         "the model's l_max"):
        load_task_data(gue / "tf" / "0", get_task("custom", 2), 64)


def test_load_task_data_raises_on_missing_split_or_ambiguous_file(tmp_path):
    _write(tmp_path, "test", "sequence,label\nACGT,0\n")
    with pytest.raises(FileNotFoundError, match="no dev.csv or dev.csv.gz"):
        load_task_data(tmp_path, get_task("custom", 2), 100)
    _write(tmp_path, "dev", "sequence,label\nACGT,0\n")
    _write(tmp_path, "dev", "sequence,label\nACGT,0\n", gz=True)
    with pytest.raises(ValueError, match="both dev.csv and dev.csv.gz exist"):
        load_task_data(tmp_path, get_task("custom", 2), 100)
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        load_task_data(tmp_path / "nope", get_task("custom", 2), 100)


def test_load_task_data_warns_when_train_lacks_a_class(tmp_path, caplog):
    for split in ("train", "dev", "test"):
        _write(tmp_path, split, "sequence,label\nACGT,0\nAAAA,0\n")
    load_task_data(tmp_path, get_task("custom", 2), 100)
    assert "no rows with label(s) [1]" in caplog.text


def test_stratified_split_is_a_partition():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    first, rest = stratified_split(labels, 0.8, seed=0)
    assert sorted(np.concatenate([first, rest]).tolist()) == list(range(17))
    assert np.bincount(labels[first]).tolist() == [8, 4, 1]


def test_collate_right_pads_with_mask():
    batch = collate([(torch.tensor([7, 8, 9]), 1), (torch.tensor([10]), 0)])
    assert batch["input_ids"].tolist() == [[7, 8, 9], [10, PAD_ID, PAD_ID]]
    assert batch["mask"].tolist() == [[True] * 3, [True, False, False]]
    assert batch["labels"].tolist() == [1, 0]


def test_dataset_rc_aug_yields_both_strands(gue):
    split = load_task_data(gue / "tf" / "0", get_task("tf"), 1026).train
    tok = CharTokenizer()
    seq = tok.decode(split.tokens[0, : split.lengths[0]])
    torch.manual_seed(0)
    seen = {tok.decode(ClassificationDataset(split, rc_aug=True)[0][0]) for _ in range(20)}
    assert seen == {seq, reverse_complement(seq)}
    assert tok.decode(ClassificationDataset(split)[0][0]) == seq


def test_class_weights_balanced_and_explicit():
    labels = np.array([0, 0, 0, 1])
    torch.testing.assert_close(class_weights(labels, 2, "balanced"), torch.tensor([4 / 6, 2.0]))
    assert class_weights(labels, 2, "none") is None
    assert class_weights(labels, 2, [1, 3]).tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="expected 2 non-negative numbers"):
        class_weights(labels, 2, [1.0])


@pytest.mark.parametrize("task", list(TASKS))
def test_embedded_sample_is_valid_real_gue(task):
    spec = get_task(task)
    data = load_task_data(embedded_sample_dir(task), spec, 1026)
    assert len(data.train) >= 1500 and len(data.test) >= 500
    assert set(data.train.labels) == set(range(spec.n_classes))
    assert data.protocol == ("reduced" if task == "splice" else "full")
    assert (data.test.lengths == spec.seq_len).all()  # GUE rows all have the task's length
