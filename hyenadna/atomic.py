"""Atomic file output: write to a temp file beside the target, then rename onto it.

Every file the project writes (configs, checkpoints, TSV/bedGraph/HDF5 results, benchmark JSON)
goes through here, so an interrupted run never leaves a truncated file that looks complete.
The temp name is made here rather than by ``tempfile.mkstemp`` so the final file gets the
user's umask permissions (mkstemp creates 0600 files that other users cannot read).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path``; rename it onto ``path`` if the block succeeds,
    delete it if the block raises (also on KeyboardInterrupt)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "x", encoding="utf-8") as fh:
        fh.write(text)
