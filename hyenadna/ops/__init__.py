"""Numerical kernels. Each fast op sits beside its slow reference twin (``*_ref``).

``use_fast_ops`` is the ONE place that picks between them: the lean custom-backward ops
(``fftconv_fast``, ``hyena_mixer``, ``gelu_mlp``) for CUDA tensors, the plain torch path (autograd
through ``fftconv``) elsewhere. The environment variable ``HYENADNA_OPS`` overrides it:
``auto`` (default), ``ref`` (plain path everywhere, for debugging a suspected fast-path bug) or
``fast`` (fast path on any device; the CPU tests use it). ``HYENADNA_FFT_POLICY`` picks the fast
path's FFT length rounding, ``pow2`` (default) or ``smooth`` (see ``conv_fft_size``);
``HYENADNA_FFT_ENGINE`` its transform: ``auto`` (default: the on-chip engine of
``hyenadna.ops.onchip`` for bf16/float32 on CUDA up to an FFT of 2^14 points (L = 8k), the
four-step engine of ``hyenadna.ops.fourstep`` for bf16/fp16 from 2^16 points (L = 32k), where
each measured faster; cuFFT otherwise), ``cufft``, ``fourstep`` or ``onchip``.
``HYENADNA_FILTER_STREAM=0`` keeps the implicit filter on the current CUDA stream (by default it
runs on a side stream while training at L <= 8k; ``hyenadna.ops.lean.filter_stream``).
"""

from __future__ import annotations

import os

import torch

from hyenadna.ops.fftconv import fft_size, fftconv, fftconv_ref
from hyenadna.ops.fftconv_fast import (
    FFT_ENGINES,
    conv_fft_size,
    fftconv_fast,
    gated_fftconv,
    gated_fftconv_ref,
)
from hyenadna.ops.layout import short_conv_t, short_conv_t_backward, strided_mul
from hyenadna.ops.lean import (
    dense,
    gelu_mlp,
    gelu_mlp_ref,
    hyena_mixer,
    hyena_mixer_ref,
)

OPS_ENV = "HYENADNA_OPS"
FFT_POLICY_ENV = "HYENADNA_FFT_POLICY"
FFT_ENGINE_ENV = "HYENADNA_FFT_ENGINE"


def use_fast_ops(x: torch.Tensor) -> bool:
    """True when the fast ops should handle ``x``: on CUDA, unless ``HYENADNA_OPS`` says otherwise.

    Raises:
        ValueError: ``HYENADNA_OPS`` is set to something other than auto/ref/fast.
    """
    mode = os.environ.get(OPS_ENV, "auto").strip().lower() or "auto"
    if mode == "auto":
        return x.is_cuda
    if mode in ("ref", "fast"):
        return mode == "fast"
    raise ValueError(f"{OPS_ENV} must be auto, ref or fast, got {mode!r}")


def fft_policy() -> str:
    """The fast path's FFT length policy (``HYENADNA_FFT_POLICY``, default ``pow2``)."""
    return os.environ.get(FFT_POLICY_ENV, "pow2").strip().lower() or "pow2"


def fft_engine() -> str:
    """The fast path's transform engine (``HYENADNA_FFT_ENGINE``, default ``auto``).

    Raises:
        ValueError: set to something other than auto/cufft/fourstep.
    """
    engine = os.environ.get(FFT_ENGINE_ENV, "auto").strip().lower() or "auto"
    if engine not in FFT_ENGINES:
        raise ValueError(f"{FFT_ENGINE_ENV} must be one of {', '.join(FFT_ENGINES)}, "
                         f"got {engine!r}")
    return engine


def long_conv(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
    """``fftconv(u, k, D)`` through the path ``use_fast_ops`` picks (same contract)."""
    if use_fast_ops(u) and k.dim() == 2:
        return fftconv_fast(u, k, D, fft_policy=fft_policy(), fft_engine=fft_engine())
    return fftconv(u, k, D)


__all__ = [
    "FFT_ENGINE_ENV",
    "FFT_POLICY_ENV",
    "OPS_ENV",
    "conv_fft_size",
    "fft_engine",
    "fft_policy",
    "fft_size",
    "fftconv",
    "fftconv_fast",
    "fftconv_ref",
    "gated_fftconv",
    "gated_fftconv_ref",
    "dense",
    "gelu_mlp",
    "gelu_mlp_ref",
    "hyena_mixer",
    "hyena_mixer_ref",
    "long_conv",
    "short_conv_t",
    "short_conv_t_backward",
    "strided_mul",
    "use_fast_ops",
]
