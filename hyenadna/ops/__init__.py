"""Numerical kernels. Each fast op sits beside its slow reference twin (``*_ref``)."""

from hyenadna.ops.fftconv import fft_size, fftconv, fftconv_ref

__all__ = ["fft_size", "fftconv", "fftconv_ref"]
