"""Score FASTA files with a fine-tuned classifier: class probabilities per sliding window.

Pipeline: FASTA records (streamed) → windows → batches across records → model → writers.
The window/batch machinery here is shared with ``embed.py`` and ``variant_effect.py``.

Windows (``window_spans``): a record no longer than the window is one (shorter) window
[0, length). A longer record gets windows of exactly ``window`` nucleotides starting at
0, stride, 2·stride, ... and a final window **right-aligned to the record end** ([length −
window, length)), so every window has the length the model was trained on and together they
cover the record with no base left out (the last one may overlap its neighbour more than the
stride). ``stride`` must be ≤ ``window``: a gap would leave bases unscored.

Each window also *owns* a part of the record (``own_spans``); the owned parts partition
[0, length) without overlap. Rule "centre": a base belongs to the window whose centre is nearest
(bedGraph tracks of window scores). Rule "causal": a base belongs to the first window that
contains it, where it has the most left context (per-token embeddings of this causal model).

Batching: windows of consecutive records share batches (a file of 300-bp promoters fills a
batch as well as one chromosome does), right-padded with a mask. Because the model is causal
and right padding never enters the masked pooling, a window gets the same output alone or in a
batch. Memory is bounded by ``batch_size × window`` on the device and by the longest record on
the host (one record string at a time; a FASTA with a ``.fai`` index is read window by window
through pyfaidx instead, bounding even that).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hyenadna.config import ScoreConfig, to_dict
from hyenadna.fasta import iter_fasta
from hyenadna.tokenizer import PAD_ID, UNK_ID, CharTokenizer
from hyenadna.writers import RecordScores, RunMetadata, output_format, score_writer

log = logging.getLogger(__name__)

Fetch = Callable[[int, int], str]
"""fetch(start, end) → the record's bases [start, end) as text."""


@dataclass
class Window:
    """One window of one record, tokenised.

    Attributes:
        record: record name. length: record length.
        start, end: window coordinates in the record, 0-based half-open.
        own_start, own_end: the part of the record this window stands for (see module doc).
        last: True for the record's final window.
        ids: (end - start,) int64 token ids.
    """

    record: str
    length: int
    start: int
    end: int
    own_start: int
    own_end: int
    last: bool
    ids: np.ndarray


@dataclass
class RunSummary:
    """What a run did, for the CLI's one-line summary and the benchmark."""

    command: str
    output: str
    records: int = 0
    windows: int = 0
    nucleotides: int = 0
    seconds: float = 0.0
    """Wall time of the scoring loop (model loading excluded)."""

    def line(self) -> str:
        rate = max(self.seconds, 1e-9)
        return (f"{self.command}: {self.records:,} records, {self.windows:,} windows, "
                f"{self.nucleotides:,} nt in {self.seconds:.1f} s ({self.records / rate:,.1f} "
                f"records/s, {self.nucleotides / rate:,.0f} nt/s) -> {self.output}")


# ---- windows ------------------------------------------------------------------------------


def window_spans(length: int, window: int, stride: int) -> np.ndarray:
    """Window coordinates (n, 2) int64 covering [0, length): see the module docstring."""
    if length <= window:
        return np.array([[0, length]], dtype=np.int64)
    starts = np.arange(0, length - window + 1, stride, dtype=np.int64)
    if starts[-1] != length - window:  # right-align a final window to the record end
        starts = np.append(starts, length - window)
    return np.stack([starts, starts + window], axis=1)


def own_spans(spans: np.ndarray, length: int, rule: str) -> np.ndarray:
    """Partition [0, length) among windows (n, 2) by rule 'centre' or 'causal' → (n, 2)."""
    starts, ends = spans[:, 0], spans[:, 1]
    if rule == "causal":  # a base goes to the first window containing it
        bounds = ends[:-1]
    elif rule == "centre":  # midpoint between neighbouring centres, rounded down
        bounds = (starts[:-1] + ends[:-1] + starts[1:] + ends[1:]) // 4
    else:
        raise ValueError(f"unknown ownership rule {rule!r}")
    own_starts = np.concatenate([[0], bounds]).astype(np.int64)
    own_ends = np.concatenate([bounds, [length]]).astype(np.int64)
    return np.stack([own_starts, own_ends], axis=1)


def check_window(window: int, stride: int, l_max: int) -> None:
    """Window/stride sanity against each other and the model's longest input."""
    if window > l_max:
        raise ValueError(f"window {window} exceeds the model's maximum input length {l_max} "
                         "(l_max); use a smaller --window")
    if stride > window:
        raise ValueError(f"stride {stride} is larger than the window {window}: bases between "
                         "windows would never be scored")


# ---- reading records ------------------------------------------------------------------------


def iter_records(path: str) -> Iterator[tuple[str, int, Fetch]]:
    """Yield (name, length, fetch) per FASTA record, in file order.

    A file with a ``.fai`` index beside it is read through pyfaidx, window by window (memory
    independent of record length); anything else (gzip, stdin, unindexed) streams through
    ``iter_fasta``, one record in memory at a time.
    """
    if path != "-" and Path(f"{path}.fai").is_file():
        yield from _iter_indexed(path)
        return
    for name, seq in iter_fasta(path):
        yield name, len(seq), lambda s, e, seq=seq: seq[s:e]


def _iter_indexed(path: str) -> Iterator[tuple[str, int, Fetch]]:
    # Through the genome reader of pretraining: it validates the index and works around
    # pyfaidx's BGZF block-boundary bug.
    from hyenadna.genome import Genome, Interval

    with Genome(path) as genome:
        for name, length in genome.contigs.items():
            yield name, length, lambda s, e, n=name: (
                genome.fetch(Interval(n, s, e)) if e > s else "")


def encode_window(tokenizer: CharTokenizer, text: str, name: str, offset: int) -> np.ndarray:
    """Tokenise a window → (L,) int64; a non-DNA character raises ValueError naming the record
    and its 0-based position in the record (not in the window)."""
    ids = tokenizer.encode_numpy(text)  # non-strict: bad characters became [UNK]
    bad = np.flatnonzero(ids == UNK_ID)
    if bad.size:
        pos = int(bad[0])
        raise ValueError(f"{name}: invalid character {text[pos]!r} at position {offset + pos} "
                         "(expected A, C, G, T, N or an IUPAC code)")
    return ids


def iter_windows(path: str, window: int, stride: int, min_length: int,
                 rule: str = "centre") -> Iterator[Window]:
    """Every window of every record of the FASTA at ``path``, in order.

    Raises:
        ValueError: a record shorter than ``min_length``, non-DNA characters, bad FASTA.
    """
    tokenizer = CharTokenizer(strict=False)
    for name, length, fetch in iter_records(path):
        if length < min_length:
            raise ValueError(f"{name}: record length {length} is below the minimum {min_length}"
                             " (--min-length)")
        spans = window_spans(length, window, stride)
        owned = own_spans(spans, length, rule)
        for i, ((s, e), (os_, oe)) in enumerate(zip(spans.tolist(), owned.tolist())):
            ids = encode_window(tokenizer, fetch(s, e), name, s)
            yield Window(name, length, s, e, os_, oe, i == len(spans) - 1, ids)


# ---- batching and device ------------------------------------------------------------------


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


PREFETCH_BATCHES = 4
"""Batches read ahead by the background thread on CUDA (host memory: 4 × batch × window)."""


class _Raised:
    """An exception raised in the producer thread, carried to the consumer."""

    def __init__(self, err: BaseException):
        self.err = err


_END = object()


def prefetch(items: Iterable, depth: int) -> Iterator:
    """Yield ``items`` in order, produced by a background thread up to ``depth`` ahead.

    On CUDA the host side (FASTA parsing and tokenising, single-threaded Python) would otherwise
    idle the GPU between batches; the thread prepares the next batches while the GPU runs.
    An exception in the producer is re-raised here; if the consumer stops early, so does the
    producer (after the item it is working on).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
            put(_Raised(err))

    thread = threading.Thread(target=produce, name="hyenadna-prefetch", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.err
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)  # daemon: a producer stuck reading stdin cannot block exit


def window_batches(windows: Iterable[Window], batch_size: int, device: torch.device
                   ) -> Iterator[list[Window]]:
    """Batches of windows; read ahead in a background thread when the model runs on CUDA
    (on CPU the thread would only compete with the model for the same cores)."""
    batches = batched(windows, batch_size)
    return prefetch(batches, PREFETCH_BATCHES) if device.type == "cuda" else batches


def collate(seqs: list[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token arrays → ids (B, L) int64 and mask (B, L) bool on ``device``."""
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=bool)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = s
        mask[row, :len(s)] = True
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
    if device.type == "cuda":  # pinned host memory lets the copy overlap with compute
        ids_t, mask_t = ids_t.pin_memory(), mask_t.pin_memory()
    return ids_t.to(device, non_blocking=True), mask_t.to(device, non_blocking=True)


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when available, else CPU; an unavailable CUDA request is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here")
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA for 'auto', everywhere for 'bf16'; fp32 otherwise. The FFT long
    convolution and the residual stream stay in fp32 inside the model either way."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Progress:
    """tqdm bar on stderr counting nucleotides (each base once), with records/s beside it."""

    def __init__(self, enabled: bool, desc: str, unit: str = "nt"):
        from tqdm.auto import tqdm

        self.bar = tqdm(desc=desc, unit=unit, unit_scale=unit == "nt", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True)
        self.t0 = time.perf_counter()
        self.records = 0

    def update(self, nucleotides: int, records: int) -> None:
        self.records += records
        self.bar.update(nucleotides)
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{self.records:,} records, {self.records / elapsed:,.1f} rec/s",
                                 refresh=False)

    def close(self) -> float:
        """Close the bar; return the seconds since it started."""
        self.bar.close()
        return time.perf_counter() - self.t0


# ---- scoring --------------------------------------------------------------------------------


def aggregate_probs(probs: np.ndarray, method: str | None) -> np.ndarray | None:
    """Per-record aggregate over windows (n, K) → (K,): 'max' per class (the rows need not sum
    to 1 then) or 'mean' (unweighted over windows); None → None."""
    if method is None:
        return None
    return probs.max(axis=0) if method == "max" else probs.mean(axis=0)


def resolve_window(cfg_window: int | None, cfg_stride: int | None, task: dict | None,
                   l_max: int) -> tuple[int, int]:
    """Window (default: the task's seq_len, else the model's l_max - 2, the releases'
    training length) and stride (default: the window), checked."""
    default = int(task["seq_len"]) if task and "seq_len" in task else max(1, l_max - 2)
    window = cfg_window or min(default, l_max)
    stride = cfg_stride or window
    check_window(window, stride, l_max)
    return window, stride


def score(cfg: ScoreConfig) -> RunSummary:
    """Score every window of every record of ``cfg.input`` and write ``cfg.output``.

    Returns:
        RunSummary with record/window/nucleotide counts and the loop's wall time.

    Raises:
        CheckpointError: ``cfg.model`` is not a fine-tuned classifier checkpoint.
        ValueError / FileNotFoundError: bad input (see ``iter_windows``), bad options.
    """
    from hyenadna.checkpoint import load_classifier

    if not cfg.model:
        raise ValueError("score needs --model: a fine-tuned classifier checkpoint")
    fmt = output_format(cfg.output, cfg.format)  # fail on a bad extension before loading
    model, task = load_classifier(cfg.model)
    class_names = [str(c) for c in task["class_names"]]
    if len(class_names) != model.head_config.n_classes:
        raise ValueError(f"{cfg.model}: task lists {len(class_names)} class names but the head "
                         f"has {model.head_config.n_classes} outputs")
    window, stride = resolve_window(cfg.window, cfg.stride, task, model.config.l_max)
    rc_average = bool(task.get("rc_average", False)) if cfg.rc_average is None else cfg.rc_average
    device = resolve_device(cfg.device)
    model.to(device)
    options = {"window": window, "stride": stride, "aggregate": cfg.aggregate,
               "rc_average": rc_average, "min_length": cfg.min_length,
               "precision": cfg.precision, "device": str(device)}
    meta = RunMetadata("score", to_dict(model.config), cfg.input, str(cfg.model), task,
                       class_names, options)
    log.info("score: %s, window %d, stride %d, rc_average %s, device %s, precision %s",
             task.get("name", "classifier"), window, stride, rc_average, device, cfg.precision)
    windows = iter_windows(cfg.input, window, stride, cfg.min_length, rule="centre")
    summary = RunSummary("score", cfg.output)
    with score_writer(cfg.output, fmt, meta) as writer:
        for rec in _score_records(model, windows, cfg, device, rc_average, summary):
            writer.write(rec)
    return summary


def _score_records(model: torch.nn.Module, windows: Iterable[Window], cfg: ScoreConfig,
                   device: torch.device, rc_average: bool, summary: RunSummary
                   ) -> Iterator[RecordScores]:
    """Run the batches and reassemble windows into finished records, in input order."""
    progress = Progress(cfg.progress, "score")
    pending: list[tuple[Window, np.ndarray]] = []
    try:
        for batch in window_batches(windows, cfg.batch_size, device):
            ids, mask = collate([w.ids for w in batch], device)
            with torch.inference_mode(), autocast(device, cfg.precision):
                # rc_average: both strands in one 2B-row pass, probabilities averaged, so a
                # window and its reverse complement get identical results
                probs = model.predict_proba(ids, mask, rc_average).float().cpu().numpy()  # (B, K)
            done = 0
            for w, p in zip(batch, probs):
                pending.append((w, p))
                if w.last:
                    done += 1
                    summary.records += 1
                    yield _assemble(pending, cfg.aggregate)
                    pending = []
            summary.windows += len(batch)
            nts = sum(w.own_end - w.own_start for w in batch)
            summary.nucleotides += nts
            progress.update(nts, done)
    finally:
        summary.seconds = progress.close()


def _assemble(pending: list[tuple[Window, np.ndarray]], aggregate: str | None) -> RecordScores:
    """One record's windows (in order) → RecordScores."""
    first = pending[0][0]
    col = {k: np.array([getattr(w, k) for w, _ in pending], dtype=np.int64)
           for k in ("start", "end", "own_start", "own_end")}
    probs = np.stack([p for _, p in pending]).astype(np.float32)  # (n, K)
    return RecordScores(first.record, first.length, col["start"], col["end"],
                        col["own_start"], col["own_end"], probs,
                        aggregate_probs(probs, aggregate))
