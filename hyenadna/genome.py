"""Reference-genome access on pyfaidx, held-out splits and window geometry (no torch).

Pipeline stage: genome FASTA → intervals → windows; ``pretrain_data.py`` turns windows into
token tensors. Coordinates are 0-based and end-exclusive everywhere, as in BED.

* **Index**: pyfaidx reads plain FASTA and BGZF ``.fa.gz`` (through biopython) by random access.
  The ``.fai`` (and for BGZF the ``.gzi``) is used beside the genome when present and fresh,
  built there when the folder is writable, and otherwise built in a cache folder. A file is
  validated with ``hyenadna.fasta.check_fasta`` only when its index has to be built, so an empty
  file, sequence before the first header or a duplicate record name gives one clear error.
  Indexes are built under temporary names and renamed, so concurrent ranks never read half an
  index.
* **Splits** (HyenaDNA §4.1 trains on hg38 with the Basenji/Enformer ``sequences_human.bed``):
  a BED with a split column; else held-out contigs by name plus held-out ranges; else, for each
  contig, a tail share for test and the share just before it for validation. Training regions
  are always what is left after subtracting every valid/test interval, and training windows are
  drawn wholly inside them, so no training window can overlap held-out sequence.
* **Windows**: uniform over all start positions that keep a window inside a training region;
  fixed validation/test windows tile the held-out intervals without overlap and are spread
  evenly when capped. Mostly-N windows are skipped by the caller's ``accept`` test.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyenadna.fasta import GZIP_MAGIC, check_fasta

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
# Soft-mask 'drop': lowercase (repeat-masked) letters become N, i.e. hard-masked.
_SOFT_TO_N = str.maketrans({c: "N" for c in "abcdefghijklmnopqrstuvwxyz"})


@dataclass(frozen=True, order=True)
class Interval:
    """A 0-based, end-exclusive genomic interval."""

    chrom: str
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{self.chrom}:{self.start}-{self.end}"


@dataclass
class Splits:
    """Disjoint train / valid / test intervals, each list sorted and merged."""

    train: list[Interval]
    valid: list[Interval]
    test: list[Interval]

    def __getitem__(self, split: str) -> list[Interval]:
        if split not in SPLITS:
            raise KeyError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, split)


# ------------------------------------------------------------------------------------------
# Index: .fai/.gzi beside the genome or in a cache folder, built atomically.
# ------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hyenadna/fai`` (default ``~/.cache/hyenadna/fai``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "hyenadna" / "fai"


def is_bgzf(path: Path) -> bool | None:
    """True for BGZF, False for plain gzip, None for an uncompressed file."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] != GZIP_MAGIC:
        return None
    # BGZF = gzip with the FEXTRA flag and a 'BC' subfield (SAM spec §4.1).
    return len(head) >= 14 and bool(head[3] & 4) and head[12:14] == b"BC"


def folder_is_writable(folder: Path) -> bool:
    """Writable for us *and* not marked read-only: as root ``os.access`` ignores the mode bits,
    but a ``dr-xr-xr-x`` folder (a shared reference genome) still must not get our files."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _fresh(index: Path, fasta: Path) -> bool:
    return index.is_file() and index.stat().st_size > 0 and \
        index.stat().st_mtime >= fasta.stat().st_mtime


def index_paths(fasta: Path, cache_dir: str | os.PathLike | None = None
                ) -> tuple[Path, Path | None]:
    """Where the .fai (and .gzi for BGZF) of ``fasta`` live: beside it when fresh there or
    when its folder is writable, else in ``cache_dir`` under a name keyed by the full path."""
    bgzf = is_bgzf(fasta) is True
    fai, gzi = Path(f"{fasta}.fai"), Path(f"{fasta}.gzi") if bgzf else None
    beside_ok = _fresh(fai, fasta) and (gzi is None or _fresh(gzi, fasta))
    if beside_ok or folder_is_writable(fasta.parent):
        return fai, gzi
    key = hashlib.sha256(str(fasta.resolve()).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    fai = folder / f"{fasta.name}.{key}.fai"
    return fai, (folder / f"{fasta.name}.{key}.gzi" if bgzf else None)


def ensure_index(fasta: str | os.PathLike, cache_dir: str | os.PathLike | None = None
                 ) -> tuple[Path, Path | None]:
    """Return (fai, gzi) paths of ``fasta``, building them first if missing or stale.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed FASTA (from ``check_fasta``), plain gzip instead of BGZF, or a
            file pyfaidx cannot index (e.g. ragged line lengths), naming the file.
    """
    import pyfaidx

    fasta = Path(fasta)
    if not fasta.is_file():
        raise FileNotFoundError(f"genome FASTA not found: {fasta}")
    if is_bgzf(fasta) is False:
        raise ValueError(f"{fasta}: gzip-compressed but not BGZF, so it cannot be read by "
                         f"random access; recompress it: gunzip -c {fasta.name} | bgzip > "
                         f"{fasta.stem}.bgz.fa.gz (or gunzip it)")
    fai, gzi = index_paths(fasta, cache_dir)
    if _fresh(fai, fasta) and (gzi is None or _fresh(gzi, fasta)):
        return fai, gzi
    check_fasta(fasta)  # clear, line-numbered errors before pyfaidx sees the file
    fai.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.{os.urandom(4).hex()}.tmp"
    tmp_fai, tmp_gzi = Path(f"{fai}{suffix}"), Path(f"{gzi}{suffix}") if gzi else None
    log.info("indexing %s → %s", fasta, fai)
    try:
        pyfaidx.Faidx(str(fasta), indexname=str(tmp_fai),
                      gzi_indexname=str(tmp_gzi) if tmp_gzi else None).close()
        if gzi is not None:
            os.replace(tmp_gzi, gzi)
        os.replace(tmp_fai, fai)
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat) as err:
        raise ValueError(f"{fasta}: cannot be indexed ({err})") from None
    finally:
        for tmp in (tmp_fai, tmp_gzi):
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    return fai, gzi


def read_fai(fai: Path) -> dict[str, int]:
    """Record name → length, in file order, from a .fai."""
    lengths = {}
    for line in fai.read_text().splitlines():
        name, length = line.split("\t")[:2]
        lengths[name] = int(length)
    return lengths


class Genome:
    """Random access to a FASTA's contigs through pyfaidx.

    Args:
        path: plain or BGZF FASTA.
        index_cache_dir: folder for the index when the genome's folder is read-only.
        soft_mask: 'keep' (lowercase bases returned as they are) or 'drop' (returned as N).
        contig_pattern: regex a contig name must match in full to be used; None keeps all.
        min_contig_length: contigs shorter than this are not used.

    The pyfaidx handle is opened lazily and re-opened in each process (DataLoader workers,
    DDP ranks), since a file offset shared across a fork would interleave reads.
    """

    def __init__(self, path: str | os.PathLike, index_cache_dir: str | os.PathLike | None = None,
                 soft_mask: str = "keep", contig_pattern: str | None = None,
                 min_contig_length: int = 0):
        if soft_mask not in ("keep", "drop"):
            raise ValueError(f"soft_mask must be 'keep' or 'drop', got {soft_mask!r}")
        self.path = Path(path)
        self.soft_mask = soft_mask
        self.fai, self.gzi = ensure_index(self.path, index_cache_dir)
        all_contigs = read_fai(self.fai)
        try:
            pattern = re.compile(contig_pattern) if contig_pattern else None
        except re.error as err:
            raise ValueError(f"data.contig_pattern {contig_pattern!r} is not a regex ({err})") \
                from None
        self.contigs = {name: n for name, n in all_contigs.items()
                        if n >= min_contig_length and (pattern is None or pattern.fullmatch(name))}
        if not self.contigs:
            raise ValueError(f"{self.path}: none of its {len(all_contigs)} contigs matches "
                             f"data.contig_pattern={contig_pattern!r} with length >= "
                             f"{min_contig_length}")
        self._faidx = None
        self._pid: int | None = None

    def close(self) -> None:
        """Close the pyfaidx handle (it reopens on the next fetch)."""
        if self._faidx is not None:
            self._faidx.close()
            self._faidx = None

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_faidx": None, "_pid": None}

    def _handle(self):
        if self._faidx is None or self._pid != os.getpid():
            import pyfaidx

            self._faidx = pyfaidx.Faidx(str(self.path), indexname=str(self.fai), as_raw=True,
                                        gzi_indexname=str(self.gzi) if self.gzi else None,
                                        build_index=False, rebuild=False)
            self._pid = os.getpid()
        return self._faidx

    def fetch(self, interval: Interval) -> str:
        """The bases of ``interval`` (case kept; lowercase → N with soft_mask='drop')."""
        length = self.contigs.get(interval.chrom)
        if length is None:
            raise KeyError(f"contig {interval.chrom!r} is not in {self.path} (or was filtered)")
        if not 0 <= interval.start < interval.end <= length:
            raise ValueError(f"{interval} lies outside {interval.chrom} (length {length})")
        try:
            seq = str(self._handle().fetch(interval.chrom, interval.start + 1, interval.end))
        except ValueError as err:
            # pyfaidx 0.9 bug: a read that starts exactly on a BGZF block boundary gets a
            # within-block offset of 2**16 and raises. Starting one base earlier lands inside
            # the previous block; drop that base. (A contig's first base never starts a block
            # here, since its header line precedes it in the same file.)
            if "within_block_offset" not in str(err) or interval.start == 0:
                raise
            seq = str(self._handle().fetch(interval.chrom, interval.start, interval.end))[1:]
        return seq.translate(_SOFT_TO_N) if self.soft_mask == "drop" else seq

    def n_fraction(self, interval: Interval) -> float:
        """Share of N (or n) among the bases of ``interval``."""
        return n_fraction(self.fetch(interval))


def n_fraction(seq: str) -> float:
    """Share of N/n in ``seq`` (0 for an empty string)."""
    return (seq.count("N") + seq.count("n")) / len(seq) if seq else 0.0


# ------------------------------------------------------------------------------------------
# Interval algebra and the train / valid / test split.
# ------------------------------------------------------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and merge overlapping or touching intervals."""
    out: list[Interval] = []
    for iv in sorted(intervals):
        if out and out[-1].chrom == iv.chrom and iv.start <= out[-1].end:
            out[-1] = Interval(iv.chrom, out[-1].start, max(out[-1].end, iv.end))
        else:
            out.append(iv)
    return out


def subtract(intervals: Iterable[Interval], remove: Iterable[Interval]) -> list[Interval]:
    """The parts of ``intervals`` not covered by ``remove`` (both merged first)."""
    cuts: dict[str, list[Interval]] = {}
    for iv in merge(remove):
        cuts.setdefault(iv.chrom, []).append(iv)
    out = []
    for iv in merge(intervals):
        start = iv.start
        for cut in cuts.get(iv.chrom, []):
            if cut.end <= start or cut.start >= iv.end:
                continue
            if cut.start > start:
                out.append(Interval(iv.chrom, start, cut.start))
            start = max(start, cut.end)
        if start < iv.end:
            out.append(Interval(iv.chrom, start, iv.end))
    return out


def parse_region(text: str, contigs: dict[str, int], key: str = "region") -> Interval:
    """``chrom:start-end`` (0-based, end-exclusive; commas allowed) → Interval, checked."""
    chrom, _, span = text.strip().rpartition(":")
    start, _, end = span.replace(",", "").partition("-")
    try:
        iv = Interval(chrom, int(start), int(end))
    except ValueError:
        raise ValueError(f"{key} {text!r} must look like chrom:start-end") from None
    _check_interval(iv, contigs, key)
    return iv


def _check_interval(iv: Interval, contigs: dict[str, int], where: str) -> None:
    if iv.chrom not in contigs:
        known = ", ".join(list(contigs)[:5])
        raise ValueError(f"{where}: contig {iv.chrom!r} is not in the genome (or was filtered "
                         f"out); known: {known}{', ...' if len(contigs) > 5 else ''}")
    if not 0 <= iv.start < iv.end <= contigs[iv.chrom]:
        raise ValueError(f"{where}: {iv} is empty or past the end of {iv.chrom} "
                         f"(length {contigs[iv.chrom]})")


def read_split_bed(path: str | os.PathLike, contigs: dict[str, int]) -> dict[str, list[Interval]]:
    """Read a ``chrom start end split`` BED (official ``sequences_human.bed`` layout).

    Rows on contigs absent from ``contigs`` (filtered out, or another assembly's scaffolds)
    are skipped; header, ``track``/``browser`` and ``#`` lines are ignored.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed row (naming file and line), or no usable training row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BED file not found: {path}")
    rows: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    skipped = 0
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        cols = line.split()
        if len(cols) < 4 or cols[3] not in SPLITS:
            raise ValueError(f"{path}: line {lineno}: expected 'chrom start end split' with "
                             f"split in {SPLITS}, got {line.strip()[:60]!r}")
        try:
            iv = Interval(cols[0], int(cols[1]), int(cols[2]))
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: start/end are not integers") from None
        if iv.chrom not in contigs:
            skipped += 1
            continue
        _check_interval(iv, contigs, f"{path}: line {lineno}")
        rows[cols[3]].append(iv)
    if skipped:
        log.info("%s: skipped %d rows on contigs not used", path, skipped)
    if not rows["train"]:
        raise ValueError(f"{path}: no 'train' rows on the genome's (used) contigs")
    return rows


def build_splits(contigs: dict[str, int], bed: str | os.PathLike | None = None,
                 valid_chroms: Sequence[str] = (), test_chroms: Sequence[str] = (),
                 valid_ranges: Sequence[str] = (), test_ranges: Sequence[str] = (),
                 valid_fraction: float = 0.05, test_fraction: float = 0.05) -> Splits:
    """Split ``contigs`` (name → length) into disjoint train / valid / test intervals.

    With ``bed``: its rows, train minus every valid/test row and valid minus test. Otherwise
    valid/test are the named contigs plus the named ranges; a split left empty takes, on each
    contig, the last ``fraction`` of the contig's length from the end of what is still free
    (test first, so by default validation sits just before test at the end of each contig).
    Training gets everything that remains.
    """
    whole = [Interval(c, 0, n) for c, n in contigs.items()]
    if bed is not None:
        rows = read_split_bed(bed, contigs)
        test = merge(rows["test"])
        valid = subtract(rows["valid"], test)
        return Splits(subtract(rows["train"], valid + test), valid, test)
    held: dict[str, list[Interval]] = {}
    for split, chroms, ranges in (("test", test_chroms, test_ranges),
                                  ("valid", valid_chroms, valid_ranges)):
        ivs = [Interval(c, 0, contigs.get(c, 0)) for c in chroms]
        for iv in ivs:
            _check_interval(iv, contigs, f"data.{split}_chroms")
        ivs += [parse_region(r, contigs, f"data.{split}_ranges") for r in ranges]
        held[split] = merge(ivs)
    if subtract(held["valid"], held["test"]) != held["valid"]:
        raise ValueError("data.valid_chroms/valid_ranges overlap data.test_chroms/test_ranges")
    for split, fraction in (("test", test_fraction), ("valid", valid_fraction)):
        if not held[split] and fraction > 0:
            free = subtract(whole, held["test"] + held["valid"])
            held[split] = _tails(free, contigs, fraction)
    train = subtract(whole, held["valid"] + held["test"])
    if not train:
        raise ValueError("no sequence is left for training once valid/test are held out")
    return Splits(train, held["valid"], held["test"])


def _tails(free: list[Interval], contigs: dict[str, int], fraction: float) -> list[Interval]:
    """On each contig, the last fraction·length bases of its last free interval."""
    last: dict[str, Interval] = {}
    for iv in free:  # sorted, so the final one per contig wins
        last[iv.chrom] = iv
    out = []
    for chrom, iv in last.items():
        size = min(len(iv), max(1, round(fraction * contigs[chrom])))
        out.append(Interval(chrom, iv.end - size, iv.end))
    return merge(out)


# ------------------------------------------------------------------------------------------
# Windows: random training windows inside regions, fixed tiles of held-out intervals.
# ------------------------------------------------------------------------------------------


class WindowSampler:
    """Uniform random windows of a given length lying wholly inside ``regions``.

    Every valid start position in every region is equally likely (a region is picked with
    weight ``len - length + 1``), so long regions are not under-sampled.
    """

    def __init__(self, regions: Sequence[Interval]):
        self.regions = list(regions)
        self._tables: dict[int, tuple[list[Interval], np.ndarray]] = {}

    def _table(self, length: int) -> tuple[list[Interval], np.ndarray]:
        if length not in self._tables:
            fit = [iv for iv in self.regions if len(iv) >= length]
            if not fit:
                longest = max((len(iv) for iv in self.regions), default=0)
                raise ValueError(f"no training region holds a window of {length} bases (the "
                                 f"longest is {longest}); shorten data.seq_len or hold out less")
            cum = np.cumsum([len(iv) - length + 1 for iv in fit], dtype=np.int64)
            self._tables[length] = (fit, cum)
        return self._tables[length]

    def sample(self, length: int, rng: np.random.Generator) -> Interval:
        """One window of ``length`` bases drawn with ``rng``."""
        fit, cum = self._table(length)
        u = int(rng.integers(int(cum[-1])))  # a start position among all valid ones
        i = int(np.searchsorted(cum, u, side="right"))
        start = fit[i].start + u - (int(cum[i - 1]) if i else 0)
        return Interval(fit[i].chrom, start, start + length)


def tile_windows(regions: Sequence[Interval], length: int, max_windows: int,
                 accept: Callable[[Interval], bool] = lambda iv: True) -> list[Interval]:
    """Non-overlapping windows of ``length`` tiling ``regions``, at most ``max_windows`` of them
    spread evenly; a candidate ``accept`` rejects is replaced by the next one in its stretch.
    """
    counts = np.array([len(iv) // length for iv in regions], dtype=np.int64)
    cum = np.cumsum(counts)
    n = int(cum[-1]) if len(cum) else 0

    def candidate(j: int) -> Interval:  # the j-th tile over all regions, without a list of all
        r = int(np.searchsorted(cum, j, side="right"))
        start = regions[r].start + (j - (int(cum[r - 1]) if r else 0)) * length
        return Interval(regions[r].chrom, start, start + length)

    stretches = [(j, j + 1) for j in range(n)] if n <= max_windows else \
        [(i * n // max_windows, (i + 1) * n // max_windows) for i in range(max_windows)]
    picked = []
    for lo, hi in stretches:
        for j in range(lo, hi):
            if accept(window := candidate(j)):
                picked.append(window)
                break
    return picked
