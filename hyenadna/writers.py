"""Output files of ``score``, ``embed`` and ``variant-effect``: TSV, bedGraph and HDF5.

Last stage of the inference pipeline (FASTA → windows → model → *writers*). The scoring code
hands over one finished record at a time (``RecordScores``, ``RecordEmbedding``); the writers
know nothing about models or windows.

Formats:

* **TSV** — for people and pandas: one header row, then one row per window (and per record
  aggregate): ``record start end kind prob_<class>... label``. Coordinates are 0-based,
  half-open (BED convention). ``kind`` is ``window`` or the aggregate (``max``/``mean``).
* **bedGraph** — one ``track type=bedGraph`` section per class probability, loadable in IGV and
  the UCSC browser. A bedGraph must not overlap itself, so each window's value covers the part of
  the record it stands for (``own_start``/``own_end``, a partition of the record chosen by the
  scoring code), not the whole, possibly overlapping, window.
* **HDF5** (h5py) — root attrs hold the run metadata (hyenadna version, command, model config and
  task as JSON, class names); ``/records/<name>`` holds one group per FASTA record (see
  ``H5Writer``). Names are stored with '/' and '%' percent-escaped; the group's ``name`` attr
  keeps the original.

Atomicity: every file is written to a temp file in the target folder and renamed into place
(``os.replace``) only after the last byte, so an interrupted or failed run never leaves a
truncated file that looks complete. ``-`` writes TSV/bedGraph to stdout instead (not atomic).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from hyenadna import __version__
from hyenadna.atomic import atomic_path

FORMAT_BY_SUFFIX = {".tsv": "tsv", ".txt": "tsv", ".bedgraph": "bedgraph", ".bg": "bedgraph",
                    ".h5": "h5", ".hdf5": "h5"}
TOKEN_CHUNK = 4096
"""Per-token datasets are chunked by this many positions (x d_model): ~1-4 MB chunks."""


@dataclass
class RecordScores:
    """Class probabilities of one FASTA record, one row per window.

    Attributes:
        name: record name (first word of the FASTA header).
        length: record length in nucleotides.
        starts, ends: (n,) int64 window coordinates, 0-based half-open.
        own_starts, own_ends: (n,) int64 non-overlapping part of the record each window stands
            for (they partition [0, length)); used by bedGraph.
        probs: (n, n_classes) float32 class probabilities per window.
        aggregate: (n_classes,) float32 per-record aggregate, or None.
    """

    name: str
    length: int
    starts: np.ndarray
    ends: np.ndarray
    own_starts: np.ndarray
    own_ends: np.ndarray
    probs: np.ndarray
    aggregate: np.ndarray | None = None


@dataclass
class RecordEmbedding:
    """Mean-pooled hidden states of one record (per-token states are streamed separately).

    Attributes:
        name, length: as in ``RecordScores``.
        starts, ends: (n,) int64 window coordinates.
        window_mean: (n, d_model) float32 mean hidden state over each window's positions.
        mean: (d_model,) float32 mean over the record's positions (each position once).
    """

    name: str
    length: int
    starts: np.ndarray
    ends: np.ndarray
    window_mean: np.ndarray
    mean: np.ndarray


@dataclass
class RunMetadata:
    """What produced an output file; HDF5 stores it as root attrs."""

    command: str
    model_config: dict[str, Any]
    source: str
    checkpoint: str
    task: dict[str, Any] | None = None
    class_names: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    """Run options (window, stride, aggregate, ...), JSON-serialisable."""


def output_format(path: str, explicit: str | None = None) -> str:
    """'tsv' / 'bedgraph' / 'h5' from ``explicit`` or the extension; stdout defaults to tsv.

    Raises:
        ValueError: unknown extension, or HDF5 requested on stdout.
    """
    if explicit is None:
        if path == "-":
            explicit = "tsv"
        else:
            suffix = Path(path).suffix.lower()
            if suffix not in FORMAT_BY_SUFFIX:
                raise ValueError(f"{path}: cannot tell the output format from the extension "
                                 f"{suffix or '(none)'!r}; use .tsv, .bedgraph or .h5")
            explicit = FORMAT_BY_SUFFIX[suffix]
    if explicit == "h5" and path == "-":
        raise ValueError("HDF5 output cannot go to stdout; give a file name ending in .h5")
    return explicit


@contextmanager
def text_output(path: str | os.PathLike) -> Iterator[TextIO]:
    """A text handle: stdout for ``-`` (left open), else an atomically written file."""
    if str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp, open(tmp, "x", encoding="utf-8", newline="\n") as fh:
        yield fh


def _column_name(name: str) -> str:
    """Class name → a TSV column name without whitespace."""
    return "prob_" + "_".join(str(name).split())


def _fmt(x: float) -> str:
    return f"{x:.6g}"


class TsvWriter:
    """Tab-separated rows under one header row."""

    def __init__(self, fh: TextIO, columns: Sequence[str]):
        self.fh = fh
        self.n_columns = len(columns)
        fh.write("\t".join(columns) + "\n")

    def write_row(self, values: Sequence[Any]) -> None:
        assert len(values) == self.n_columns, "row width differs from the header"
        self.fh.write("\t".join(_fmt(v) if isinstance(v, float) else str(v) for v in values)
                      + "\n")


class TsvScoreWriter:
    """``record start end kind prob_<class>... label``; one row per window, then the aggregate."""

    def __init__(self, fh: TextIO, meta: RunMetadata):
        self.class_names = list(meta.class_names)
        self.aggregate = meta.options.get("aggregate")
        self.table = TsvWriter(fh, ["record", "start", "end", "kind",
                                    *map(_column_name, self.class_names), "label"])

    def write(self, rec: RecordScores) -> None:
        for start, end, p in zip(rec.starts.tolist(), rec.ends.tolist(), rec.probs):
            self._row(rec.name, start, end, "window", p)
        if rec.aggregate is not None:
            self._row(rec.name, 0, rec.length, str(self.aggregate), rec.aggregate)

    def _row(self, name: str, start: int, end: int, kind: str, p: np.ndarray) -> None:
        label = self.class_names[int(np.argmax(p))]
        self.table.write_row([name, start, end, kind, *map(float, p), label])

    def finish(self) -> None:
        """Nothing buffered: rows were written as they came."""


class BedGraphScoreWriter:
    """One bedGraph track per class. Track 0 and the others are spooled to anonymous temp files
    (in memory up to 16 MB each, then on disk) and concatenated at ``finish``, so memory stays
    bounded however many windows the input has."""

    SPOOL_BYTES = 16 << 20

    def __init__(self, fh: TextIO, meta: RunMetadata):
        self.fh = fh
        task = (meta.task or {}).get("name", "classifier")
        self.tracks = []
        for name in meta.class_names:
            spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in close()
                self.SPOOL_BYTES, mode="w+", encoding="utf-8")
            label = " ".join(str(name).split()).replace('"', "'")
            spool.write(f'track type=bedGraph name="P({label})" description="hyenadna score: '
                        f'{task}, probability of class {label}" visibility=full '
                        "autoScale=off viewLimits=0:1\n")
            self.tracks.append(spool)

    def write(self, rec: RecordScores) -> None:
        own = list(zip(rec.own_starts.tolist(), rec.own_ends.tolist()))
        for k, spool in enumerate(self.tracks):
            spool.writelines(f"{rec.name}\t{s}\t{e}\t{_fmt(float(p))}\n"
                             for (s, e), p in zip(own, rec.probs[:, k]) if e > s)

    def finish(self) -> None:
        for spool in self.tracks:
            spool.seek(0)
            shutil.copyfileobj(spool, self.fh)

    def close(self) -> None:
        for spool in self.tracks:
            spool.close()


class H5Writer:
    """HDF5 layout (one group per record, in input order)::

        /                      attrs: hyenadna_version, command, source, checkpoint,
                               model_config (JSON), task (JSON), class_names, options (JSON)
        /records/<name>        attrs: name (original), length
          windows  (n, 2) int64       window start, end (0-based half-open)
          probs    (n, K) float32     score: class probabilities per window
          aggregate (K,) float32      score --aggregate: attr 'method' = max | mean
          window_mean (n, D) float32  embed: mean hidden state per window
          mean     (D,) float32       embed: mean hidden state over the record
          tokens   (length, D) float32  embed --per-token: chunked, gzip + shuffle
    """

    def __init__(self, f: Any, meta: RunMetadata):
        import h5py

        self.f = f
        self.aggregate = meta.options.get("aggregate")
        attrs = f.attrs
        attrs["hyenadna_version"] = __version__
        attrs["command"] = meta.command
        attrs["source"] = meta.source
        attrs["checkpoint"] = meta.checkpoint
        attrs["model_config"] = json.dumps(meta.model_config, sort_keys=True)
        attrs["task"] = json.dumps(meta.task, sort_keys=True)
        # an explicit string dtype: an empty list would otherwise be stored as float64
        attrs["class_names"] = np.array([str(c) for c in meta.class_names],
                                        dtype=h5py.string_dtype())
        attrs["options"] = json.dumps(meta.options, sort_keys=True)
        self.records = f.create_group("records", track_order=True)

    def group(self, name: str, length: int) -> Any:
        """The record's group, created on first use."""
        key = h5_key(name)
        if key not in self.records:
            grp = self.records.create_group(key)
            grp.attrs["name"], grp.attrs["length"] = name, length
        return self.records[key]

    def write(self, rec: RecordScores | RecordEmbedding) -> None:
        grp = self.group(rec.name, rec.length)
        grp["windows"] = np.stack([rec.starts, rec.ends], axis=1).astype(np.int64)
        if isinstance(rec, RecordScores):
            grp["probs"] = rec.probs.astype(np.float32)
            if rec.aggregate is not None:
                grp["aggregate"] = rec.aggregate.astype(np.float32)
                grp["aggregate"].attrs["method"] = str(self.aggregate)
        else:
            grp["window_mean"] = rec.window_mean.astype(np.float32)
            grp["mean"] = rec.mean.astype(np.float32)

    def token_dataset(self, name: str, length: int, dim: int) -> Any:
        """An empty (length, dim) float32 dataset for per-token states, filled window by window.
        Chunks span TOKEN_CHUNK positions so a slice of the genome reads few chunks."""
        chunk = (max(1, min(length, TOKEN_CHUNK)), dim)
        return self.group(name, length).create_dataset(
            "tokens", shape=(length, dim), dtype="float32", chunks=chunk,
            compression="gzip", compression_opts=4, shuffle=True)

    def finish(self) -> None:
        """Nothing buffered: h5py writes through."""


def h5_key(name: str) -> str:
    """Record name → HDF5 link name: '/' is the path separator and '.' a reserved name."""
    key = name.replace("%", "%25").replace("/", "%2F")
    return "%2E" if key == "." else key


@contextmanager
def score_writer(path: str, fmt: str, meta: RunMetadata) -> Iterator[Any]:
    """Open the writer for ``fmt``; it is finished and the file renamed into place only when
    the block completes without an error."""
    if fmt == "h5":
        with h5_output(path, meta) as writer:
            yield writer
        return
    with text_output(path) as fh:
        if fmt == "tsv":
            writer = TsvScoreWriter(fh, meta)
            yield writer
            writer.finish()
            return
        writer = BedGraphScoreWriter(fh, meta)
        try:
            yield writer
            writer.finish()
        finally:
            writer.close()


@contextmanager
def h5_output(path: str, meta: RunMetadata) -> Iterator[H5Writer]:
    """An ``H5Writer`` on an atomically written HDF5 file."""
    import h5py

    if path == "-":
        raise ValueError("HDF5 output cannot go to stdout; give a file name ending in .h5")
    # A 64 MB chunk cache holds a few (TOKEN_CHUNK, D) chunks, so per-token states written
    # window by window are compressed once per chunk, not once per partial write. The file is
    # closed (inner context) before atomic_path renames it.
    with atomic_path(path) as tmp, h5py.File(tmp, "x", rdcc_nbytes=64 << 20) as f:
        writer = H5Writer(f, meta)
        yield writer
        writer.finish()
