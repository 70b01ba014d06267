"""Shared fixtures: the compute device (cuda marked `gpu`, skipped without CUDA) and data paths."""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    # Without a GPU the Triton kernels (hyenadna.ops.layout) run in Triton's interpreter, so
    # tests/test_layout.py can hold them to their torch twins. Triton reads this when a kernel
    # is defined, i.e. before hyenadna is first imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")

DATA = Path(__file__).parent / "data"
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
GENOME_SLICE = "hg19_chr22_30.0-30.2Mb.fa.gz"
"""Real 200-kb slice of hg19 chr22 (BGZF), see tests/data/README.md."""


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return torch.device(request.param)


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def official_tiny() -> Path:
    """Official-layout checkpoint of the tiny-1k model (copied from the project's fixtures)."""
    return DATA / "official-tiny"


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def genome_file(tmp_path) -> Path:
    """A private copy of the real chr22 slice (BGZF), so its indexes land in tmp_path."""
    path = tmp_path / "genome" / GENOME_SLICE
    path.parent.mkdir()
    shutil.copy(DATA / GENOME_SLICE, path)
    return path


@pytest.fixture
def benchmarks_dir() -> Path:
    """The project's benchmarks/ folder (scripts, run as subprocesses or via load_benchmark)."""
    return BENCHMARKS


@pytest.fixture
def load_benchmark():
    """load_benchmark("gue") imports benchmarks/gue.py (a script, not a package module)."""
    def load(name: str):
        sys.path.insert(0, str(BENCHMARKS))  # a script's own imports are relative to its folder
        try:
            spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(BENCHMARKS))
        return module
    return load
