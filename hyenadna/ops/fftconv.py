"""Causal long convolution: the FFT fast path and its direct-convolution reference.

This is the inner loop of the Hyena operator (Poli et al. 2023, eq. 3; HyenaDNA §3.1): for every
channel d, ``y[b, d, t] = sum_{s<=t} k[d, s] · u[b, d, t - s] + D[d] · u[b, d, t]``.

Two implementations with one signature:

* ``fftconv`` — O(L log L). Zero-pads input and filter to an FFT length ``n >= L + L_k - 1`` so
  the circular convolution the FFT computes equals the linear (causal) one on the first L
  outputs, multiplies the spectra, and transforms back. It always computes in float32 (bf16/fp16
  FFTs lose too much precision over 1M-long sums, and cuFFT only takes power-of-two half sizes),
  and casts the result back to the input dtype.
* ``fftconv_ref`` — O(L · L_k) direct convolution via ``conv1d``; obviously correct, used by the
  tests (in float64) and nowhere else.

The official code pads to exactly 2L. Any n >= L + L_k - 1 gives the same first L outputs, so we
round n up to a 7-smooth size (2^a 3^b 5^c 7^d), which FFT libraries (cuFFT, pocketfft) handle
fast; 2·1,000,002 = 4·3·166,667 has a large prime factor and is several times slower.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=256)
def fft_size(n: int) -> int:
    """Smallest 7-smooth integer >= n (n >= 1)."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()  # next power of two is always a candidate
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                m = p3
                while m < n:  # multiply by 2 until we pass n
                    m *= 2
                best = min(best, m)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


def fftconv(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
    """Causal long convolution by FFT, plus the per-channel skip term.

    Args:
        u: input (B, D, L), any float dtype.
        k: filter (D, L_k) or (B, D, L_k); L_k <= L is allowed (the rest is zero).
        D: per-channel skip weights (D,), or None for no skip term.

    Returns:
        y (B, D, L) in ``u``'s dtype: ``causal_conv(u, k) + u * D[:, None]``, computed in
        float32 (float64 if ``u`` is float64).
    """
    seqlen = u.shape[-1]
    compute_dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    n = fft_size(seqlen + k.shape[-1] - 1)
    u_c = u.to(compute_dtype)
    # rfft zero-pads to n; the product of spectra is the circular convolution of length n, and
    # because n >= L + L_k - 1 no output among the first L wraps around.
    k_f = torch.fft.rfft(k.to(compute_dtype), n=n)
    u_f = torch.fft.rfft(u_c, n=n)
    y = torch.fft.irfft(u_f * k_f, n=n)[..., :seqlen]  # (B, D, L); default norm puts 1/n here
    if D is not None:
        y = y + u_c * D.to(compute_dtype).unsqueeze(-1)
    return y.to(u.dtype)


def fftconv_ref(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
    """Direct causal convolution (slow reference twin of ``fftconv``), in ``u``'s dtype.

    Same arguments and result as ``fftconv``; k must be (D, L_k) here.
    """
    channels, seqlen = u.shape[-2], u.shape[-1]
    taps = k.shape[-1]
    # conv1d computes a correlation, so flip the filter; left padding by taps-1 keeps it causal.
    weight = k.to(u.dtype).flip(-1).unsqueeze(1)  # (D, 1, L_k)
    y = F.conv1d(F.pad(u, (taps - 1, 0)), weight, groups=channels)[..., :seqlen]  # (B, D, L)
    if D is not None:
        y = y + u * D.to(u.dtype).unsqueeze(-1)
    return y
