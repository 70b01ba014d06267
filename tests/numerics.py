"""Error measures the FFT-engine tests share (imported as a plain module: tests/ is on sys.path)."""

import torch


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|, with a taken to b's dtype on the CPU (b: the float64 twin)."""
    a, b = a.detach().cpu().to(b.dtype), b.detach().cpu()
    return ((a - b).abs().max() / b.abs().max()).item()
