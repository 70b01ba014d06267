"""Shared fixtures: the compute device (cuda marked `gpu`, skipped without CUDA) and data paths."""

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


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
