"""Streaming FASTA reading with structural checks (no torch).

Used wherever the project reads a user's FASTA: ``score``/``embed`` stream records from it, the
genome reader validates a file before pyfaidx indexes it. Plain, gzip and BGZF files and ``-``
(stdin) are accepted. A malformed file raises ``ValueError`` naming the file and the line:

* no records (empty file, or only blank lines);
* sequence lines before the first ``>`` header;
* a header with no name, or a record name seen twice (names must be unique: they key outputs
  and pyfaidx's index).

Memory is bounded by the longest record, not by the file.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a plain or gzip/BGZF-compressed text file (``-`` = stdin) for reading."""
    if str(path) == "-":
        raw = sys.stdin.buffer
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        stream = gzip.open(raw) if head == GZIP_MAGIC else raw
        return io.TextIOWrapper(stream, encoding="latin-1")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FASTA file not found: {path}")
    with open(path, "rb") as fh:
        compressed = fh.read(2) == GZIP_MAGIC
    if compressed:
        return io.TextIOWrapper(gzip.open(path), encoding="latin-1")
    return open(path, encoding="latin-1")


def record_name(header: str) -> str:
    """Record name = first whitespace-delimited word after '>' (samtools/pyfaidx convention)."""
    parts = header[1:].split(maxsplit=1)
    return parts[0] if parts else ""


def iter_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """Yield (name, sequence) per record, streaming; sequences keep their case.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a structural problem (see the module docstring), naming file and line.
    """
    source = "<stdin>" if str(path) == "-" else str(path)
    seen: set[str] = set()
    name: str | None = None
    chunks: list[str] = []
    with open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if line.startswith(">"):
                    if name is not None:
                        yield name, "".join(chunks)
                    name, chunks = record_name(line), []
                    if not name:
                        raise ValueError(f"{source}: line {lineno}: header has no record name")
                    if name in seen:
                        raise ValueError(f"{source}: line {lineno}: duplicate record name "
                                         f"{name!r}")
                    seen.add(name)
                elif line.strip():
                    if name is None:
                        raise ValueError(f"{source}: line {lineno}: sequence before the first "
                                         "'>' header (is this a FASTA file?)")
                    chunks.append(line.strip())
        except (EOFError, gzip.BadGzipFile, UnicodeDecodeError) as err:
            raise ValueError(f"{source}: unreadable or truncated file ({err})") from None
    if name is None:
        raise ValueError(f"{source}: no FASTA records (empty file or no '>' header)")
    yield name, "".join(chunks)


def check_fasta(path: str | os.PathLike) -> list[tuple[str, int]]:
    """Validate a FASTA file's structure; return [(record name, length)] in file order."""
    return [(name, len(seq)) for name, seq in iter_fasta(path)]
