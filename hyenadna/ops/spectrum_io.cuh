// How the four-step engine's intermediate spectra are stored between its kernels (columns.cu and
// onchip_conv.cu's row kernels; hyenadna/ops/fourstep.py says when). Between two kernels a complex
// value is either a float2 or, "packed", two bfloat16 in one 32-bit word: the real part in the
// low half, the imaginary part in the high half, which is what a (..., 2) bfloat16 tensor holds
// in memory (fourstep.pack_spectrum, the torch twin). Every kernel still computes in float32;
// packing rounds each stored value once, to nearest even, as torch's float -> bf16 cast does.
// Why: at L >= 64k the engine's kernels run near HBM bandwidth and the spectra are most of
// their bytes (8 bytes a complex value against the signals' 2 a sample), so halving the
// spectra's bytes is what is left to take.
//
// Both overloads are always defined: a kernel picks one by the pointer type it was given
// (spec_t below is the one its macro chose), and a shared-memory float2 tile reads as float2.

#ifndef SPECTRUM_IO_CUH
#define SPECTRUM_IO_CUH

__device__ __forceinline__ unsigned int spec_bf16_bits(float f) {  // NaN stays a NaN
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}
__device__ __forceinline__ float2 spec_load(const float2* p) { return *p; }
__device__ __forceinline__ float2 spec_load(const unsigned int* p) {
    const unsigned int u = *p;
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
}
__device__ __forceinline__ void spec_store(float2* p, float2 v) { *p = v; }
__device__ __forceinline__ void spec_store(unsigned int* p, float2 v) {
    *p = spec_bf16_bits(v.x) | (spec_bf16_bits(v.y) << 16);
}

#endif  // SPECTRUM_IO_CUH
