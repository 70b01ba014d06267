"""Fine-tuning tasks and their data: GUE-style CSV folders → validated, tokenised splits.

Sits between the tokenizer and ``finetune.py``. A task is plain data (``TaskSpec``: classes,
sequence length, class names). A task folder follows the GUE layout of DNABERT-2 (Zhou et al.
2023): ``DIR/train.csv``, ``DIR/dev.csv``, ``DIR/test.csv`` (each may be gzipped, ``.csv.gz``),
header ``sequence,label``, labels the integers 0..K-1.

Validation is strict because a silently skipped or truncated row changes the benchmark: a missing
column, a label that is not an integer in 0..K-1, an empty split, a sequence longer than the task
or model allows, or a character outside DNA raises ``ValueError`` naming the file and line
(line 1 is the header). IUPAC ambiguity codes become N and lowercase is accepted (CharTokenizer).

Protocols: ``full`` trains on train.csv, selects on dev.csv and reports test.csv. Where train.csv
is missing (some GUE tasks in this project's copy), the ``reduced`` protocol trains on a
stratified ``dev_train_fraction`` of dev.csv, selects on the rest of dev and reports test.csv; its
numbers are not comparable with published full-train results, and every output says so.

Batches are right-padded with a mask: for this causal model, right padding leaves every real
position's hidden state unchanged (see tokenizer.py), so results do not depend on batching.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hyenadna.tokenizer import PAD_ID, CharTokenizer, reverse_complement_ids

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
EMBEDDED_DATA = Path(__file__).resolve().parent.parent / "data" / "gue"


@dataclass(frozen=True)
class TaskSpec:
    """A classification task: what the labels mean and how long its sequences are."""

    name: str
    """Task name as given to ``--task``."""
    n_classes: int
    """Number of classes; labels are 0..n_classes-1."""
    seq_len: int | None
    """Longest sequence the task has (GUE: all rows this long); None: the data decides."""
    class_names: tuple[str, ...]
    """Meaning of label i, in label order."""
    gue: str
    """Which GUE folders hold this task (a hint for users; nothing reads it)."""


# Label meanings were checked on the data, not only taken from docs. GUE promoter and TF sets
# use 1 = positive (promoter windows carry more TATA boxes and CpGs; bound TF windows more CpGs).
# splice/reconstructed has 3 labels with the site between positions 199 and 200 (0-based):
# label 0 has 'AG' at 198-199 in 997/1001 dev rows (intron end → acceptor), label 1 has 'GT'
# at 200-201 in 974/987 (intron start → donor), label 2 has neither consensus enriched beyond
# background (decoys).
TASKS: dict[str, TaskSpec] = {
    "promoter": TaskSpec("promoter", 2, 300, ("non-promoter", "promoter"),
                         "prom/prom_300_{all,notata,tata}"),
    "core-promoter": TaskSpec("core-promoter", 2, 70, ("non-promoter", "promoter"),
                              "prom/prom_core_{all,notata,tata}"),
    "splice": TaskSpec("splice", 3, 400, ("acceptor", "donor", "neither"),
                       "splice/reconstructed"),
    "tf": TaskSpec("tf", 2, 101, ("unbound", "bound"), "tf/0 .. tf/4"),
}
TASK_NAMES = (*TASKS, "custom")


def get_task(name: str, num_classes: int | None = None) -> TaskSpec:
    """The TaskSpec for ``name``; 'custom' needs ``num_classes`` and gets class names '0'..'K-1'.

    Raises:
        ValueError: unknown task, custom without a class count, or a count that contradicts a
            named task.
    """
    if name == "custom":
        if num_classes is None:
            raise ValueError("data.num_classes: --task custom needs --num-classes K")
        return TaskSpec("custom", num_classes, None, tuple(str(i) for i in range(num_classes)),
                        "any folder in the GUE layout")
    if name not in TASKS:
        raise ValueError(f"data.task: unknown task {name!r} (choose from {', '.join(TASK_NAMES)})")
    spec = TASKS[name]
    if num_classes is not None and num_classes != spec.n_classes:
        raise ValueError(f"data.num_classes: task {name!r} has {spec.n_classes} classes, got "
                         f"{num_classes} (use --task custom for another label set)")
    return spec


def embedded_sample_dir(task: str) -> Path:
    """Folder of the small real GUE sample shipped in data/gue/ for a named task."""
    if task not in TASKS:
        raise ValueError(f"data.path: the embedded sample covers {', '.join(TASKS)}; "
                         f"task {task!r} needs --data DIR")
    folder = EMBEDDED_DATA / task
    if not folder.is_dir():
        raise FileNotFoundError(f"embedded sample {folder} not found (it ships with the git "
                                "repository, not the wheel); pass --data DIR")
    return folder


def split_path(folder: Path, split: str) -> Path | None:
    """``folder/split.csv`` or ``folder/split.csv.gz``; None if neither exists."""
    found = [p for p in (folder / f"{split}.csv", folder / f"{split}.csv.gz") if p.is_file()]
    if len(found) > 1:
        raise ValueError(f"{folder}: both {split}.csv and {split}.csv.gz exist; keep one")
    return found[0] if found else None


@dataclass
class EncodedSplit:
    """A tokenised split: right-padded tokens (N, L) uint8, lengths (N,), labels (N,) int64."""

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray, source: str) -> EncodedSplit:
        """The rows at ``index`` (numpy int array), relabelled with ``source``."""
        return EncodedSplit(self.tokens[index], self.lengths[index], self.labels[index], source)


def _open_text(path: Path) -> io.TextIOBase:
    """Open plain or gzipped CSV as text; utf-8-sig drops a spreadsheet's byte-order mark."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _header_columns(header: list[str] | None, path: Path) -> tuple[int, int]:
    """Indices of the ``sequence`` and ``label`` columns; a missing one is an error."""
    names = [h.strip().lower() for h in header or []]
    missing = [c for c in ("sequence", "label") if c not in names]
    if missing:
        raise ValueError(f"{path}, line 1: missing column {missing[0]!r} (header must name "
                         f"'sequence' and 'label', got {','.join(header or []) or 'nothing'!r})")
    return names.index("sequence"), names.index("label")


def _parse_label(raw: str, n_classes: int, where: str) -> int:
    """An integer label in 0..n_classes-1, else ValueError naming ``where``."""
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ValueError(f"{where}: label {raw!r} is not an integer "
                         f"(labels are 0..{n_classes - 1})")
    label = int(text)
    if not 0 <= label < n_classes:
        raise ValueError(f"{where}: unknown label {label} (this task has {n_classes} classes, "
                         f"labels 0..{n_classes - 1}; use --task custom --num-classes K)")
    return label


def read_split(path: str | Path, n_classes: int, max_len: int, limit_reason: str,
               tokenizer: CharTokenizer | None = None) -> EncodedSplit:
    """Read, validate and tokenise one GUE-style CSV.

    Args:
        path: ``.csv`` or ``.csv.gz`` with a ``sequence,label`` header.
        n_classes: labels must be integers in 0..n_classes-1.
        max_len: longest allowed sequence.
        limit_reason: what ``max_len`` is, for the error message ("the model's l_max").
        tokenizer: strict CharTokenizer (the default) — non-DNA characters are errors.

    Returns:
        EncodedSplit with tokens (N, longest) uint8 padded with [PAD] on the right.

    Raises:
        ValueError: naming the file and line of the first bad row, or an empty file.
    """
    path = Path(path)
    tokenizer = tokenizer or CharTokenizer(strict=True)
    encoded, labels = [], []
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        seq_col, label_col = _header_columns(next(reader, None), path)
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if not row or all(not cell.strip() for cell in row):
                continue  # a blank line (often the last one) carries no record
            if len(row) <= max(seq_col, label_col):
                raise ValueError(f"{where}: expected columns 'sequence' and 'label', "
                                 f"got {len(row)} field(s)")
            seq = row[seq_col].strip()
            if not seq:
                raise ValueError(f"{where}: empty sequence")
            if len(seq) > max_len:
                raise ValueError(f"{where}: sequence length {len(seq)} exceeds {max_len}, "
                                 f"{limit_reason}")
            labels.append(_parse_label(row[label_col], n_classes, where))
            encoded.append(tokenizer.encode_numpy(seq, name=where))
    if not encoded:
        raise ValueError(f"{path}: no data rows (empty split)")
    lengths = np.array([len(e) for e in encoded], dtype=np.int32)
    tokens = np.full((len(encoded), int(lengths.max())), PAD_ID, dtype=np.uint8)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = ids
    return EncodedSplit(tokens, lengths, np.array(labels, dtype=np.int64), str(path))


def stratified_split(labels: np.ndarray, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (first, rest) with ``fraction`` of every class in ``first``, shuffled by ``seed``.

    Stratifying keeps the class balance of the reduced protocol's train and validation halves
    equal to dev.csv's; each class with ≥ 2 rows puts at least one row on either side.
    """
    rng = np.random.default_rng(seed)
    first, rest = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        cut = round(fraction * len(rows))
        if len(rows) >= 2:
            cut = min(max(cut, 1), len(rows) - 1)
        first.append(rows[:cut])
        rest.append(rows[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(rest))


@dataclass
class TaskData:
    """The three splits of a run and how they were made."""

    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    protocol: str
    """'full' (train / dev / test) or 'reduced' (part of dev / rest of dev / test)."""
    protocol_detail: str
    """One human-readable line: which file and how many rows each split came from."""


def load_task_data(folder: str | Path, task: TaskSpec, model_max_len: int,
                   dev_train_fraction: float = 0.8, split_seed: int = 0) -> TaskData:
    """Read a GUE-style task folder into train/val/test splits (see the module docstring).

    Raises:
        FileNotFoundError: no folder, or no dev/test split.
        ValueError: any invalid row (file and line named), or a task longer than the model.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    if task.seq_len is not None and task.seq_len > model_max_len:
        raise ValueError(f"task {task.name!r} needs sequences of {task.seq_len} but the "
                         f"model's l_max is {model_max_len}")
    if task.seq_len is None:
        max_len, reason = model_max_len, "the model's l_max"
    else:
        max_len = task.seq_len
        reason = f"the longest task {task.name!r} allows (use --task custom for other lengths)"
    paths = {split: split_path(folder, split) for split in SPLITS}
    for split in ("dev", "test"):
        if paths[split] is None:
            raise FileNotFoundError(f"{folder}: no {split}.csv or {split}.csv.gz")
    read = {s: read_split(p, task.n_classes, max_len, reason) for s, p in paths.items() if p}
    dev, test = read["dev"], read["test"]
    _warn_missing_classes(read.get("train", dev), task)
    if "train" in read:
        detail = (f"full: train {len(read['train'])} rows of train.csv, val {len(dev)} of "
                  f"dev.csv, test {len(test)} of test.csv")
        return TaskData(read["train"], dev, test, "full", detail)
    first, rest = stratified_split(dev.labels, dev_train_fraction, split_seed)
    train = dev.subset(first, f"{dev.source} [reduced: train part]")
    val = dev.subset(rest, f"{dev.source} [reduced: validation part]")
    detail = (f"reduced (no train.csv): train {len(train)} rows = {dev_train_fraction:.0%} of "
              f"dev.csv, val {len(val)} = the rest of dev.csv, test {len(test)} of test.csv")
    return TaskData(train, val, test, "reduced", detail)


def _warn_missing_classes(split: EncodedSplit, task: TaskSpec) -> None:
    """Log a warning when the training rows lack a class: likely the wrong --task."""
    missing = sorted(set(range(task.n_classes)) - set(np.unique(split.labels).tolist()))
    if missing:
        log.warning("%s: no rows with label(s) %s of task %r (%s); is --task right?",
                    split.source, missing, task.name, ", ".join(task.class_names))


class ClassificationDataset(Dataset):
    """(token ids (L,) int64, label) pairs of one split, optionally RC-augmented.

    Args:
        split: the encoded split.
        rc_aug: replace a sequence by its reverse complement with probability 1/2. The draw
            uses torch's RNG, which Lightning/DataLoader seed per worker.
    """

    def __init__(self, split: EncodedSplit, rc_aug: bool = False):
        self.split = split
        self.rc_aug = rc_aug

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        ids = torch.from_numpy(self.split.tokens[index, : self.split.lengths[index]]).long()
        if self.rc_aug and torch.rand(()) < 0.5:
            ids = reverse_complement_ids(ids)
        return ids, int(self.split.labels[index])


def collate(items: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """Right-pad a list of (ids (L_i,), label) to a batch.

    Returns:
        input_ids (B, L) int64 padded with [PAD], mask (B, L) bool True on real tokens,
        labels (B,) int64; L is the longest sequence in the batch.
    """
    width = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.bool)
    for row, (ids, _) in enumerate(items):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = True
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return {"input_ids": input_ids, "mask": mask, "labels": labels}


def class_weights(labels: np.ndarray, n_classes: int,
                  spec: str | list[float]) -> torch.Tensor | None:
    """Cross-entropy weights (n_classes,) float32 from ``train.class_weights``, or None.

    'balanced' gives class k the weight N / (K · n_k) (scikit-learn's definition), so every
    class contributes equally to the loss; an absent class counts as one row.
    """
    if isinstance(spec, str):
        if spec == "none":
            return None
        counts = np.bincount(labels, minlength=n_classes).clip(min=1)
        return torch.tensor(len(labels) / (n_classes * counts), dtype=torch.float32)
    if len(spec) != n_classes or any(float(w) < 0 for w in spec):
        raise ValueError(f"train.class_weights: expected {n_classes} non-negative numbers, "
                         f"got {spec}")
    return torch.tensor([float(w) for w in spec], dtype=torch.float32)
