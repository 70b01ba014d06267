// The four-step FFT's column stages (hyenadna/ops/fourstep.py) as CUDA kernels, one thread per
// column: no shared memory at all. Under Nsight Compute the Triton column kernels were bound by
// L1/TEX throughput (85-95%) while DRAM ran at 35-50%: their tensor-core DFT needs the tile
// re-laid out through shared memory around each tl.dot. A column of N1 points is small enough to
// transform in one thread's registers with a direct DFT whose coefficients are compile-time
// constants, and neighbouring threads take neighbouring columns, so every global load and store
// of a warp is contiguous. hyenadna/ops/columns.py compiles this file with NVRTC, one module per
// (N1, ROWS), and fourstep.py's torch twins (rfft4_cols_torch, irfft4_cols_torch) are what the
// GPU tests hold both kernels to.
//
//   COLS_N1    N1, a power of two (32 or 64): the column length, n = N1 * N2
//   COLS_ROWS  rows of the (N1, N2) signal tile that hold samples (forward: loaded, inverse:
//              written), a power of two <= N1; the rest are zero (forward) or past L (inverse)
//
// Index maps (t = j1 * N2 + j2, f = k1 + N1 * k2, H = N1 / 2, w_m = exp(-2 pi i / m)):
//   forward  P[k1, j2] = w_N^(j2 k1) * sum_j1 w_N1^(j1 k1) x[j1, j2],  k1 = 0 .. H
//   inverse  y[j1, j2] = scale * sum_k1 c_k1 Re(w_N1^(-j1 k1) w_N^(-j2 k1) Q[k1, j2]),
//            c_0 = c_H = 1, c_k1 = 2 otherwise (the rows k1 > H of a real signal's spectrum)
// Arithmetic is float32 throughout (the Triton kernels' column DFT is TF32).

#ifndef COLS_N1
#error "COLS_N1 must be defined"
#endif
#ifndef COLS_ROWS
#error "COLS_ROWS must be defined"
#endif

#define N1_ COLS_N1
#define H_ (COLS_N1 / 2)
#define ROWS_ COLS_ROWS
#define THREADS 128

// cos and sin of 2 pi m / N1, m = 0 .. N1 - 1 (COLS_COS and COLS_SIN: brace lists that
// columns.py writes in front of this file, from float64 values rounded once)
__constant__ float kCos[N1_] = COLS_COS;
__constant__ float kSin[N1_] = COLS_SIN;

// I/O words: bf16 (raw 16-bit, round to nearest even) or float32, one type per call (template
// argument: no per-value branch)
template <bool BF16>
__device__ __forceinline__ float load_io(const void* p, long long i) {
    if (BF16) return __uint_as_float(((unsigned int)((const unsigned short*)p)[i]) << 16);
    return ((const float*)p)[i];
}
__device__ __forceinline__ unsigned short bf16_bits(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)0x7fc0;  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
template <bool BF16>
__device__ __forceinline__ void store_io(void* p, long long i, float v) {
    if (BF16) ((unsigned short*)p)[i] = bf16_bits(v);
    else ((float*)p)[i] = v;
}

// The grid: one thread per column, col = r * n2 + j2 for (B, C) row r = b * C + c (n2 = 2^log2_n2)
struct Column {
    long long r;
    int j2, bi, ci;
    __device__ __forceinline__ Column(long long col, int log2_n2, int channels)
        : r(col >> log2_n2), j2((int)(col & ((1LL << log2_n2) - 1))),
          bi((int)(r / channels)), ci((int)(r - (long long)bi * channels)) {}
};

// The twiddle w_N^(j2 k) of output row k, k = 0 .. H: Rotor (rotor.cuh), one step per row.

// x = a * b * scale (+ bias * scale at t = 0), zero-padded to n = N1 * n2; out: the twiddled column
// DFT, complex float32 rows k1 = 0 .. H of length n2 (row stride so_k, (b, c) row stride so_r, in
// complex values). a and b share one I/O type; a bf16 product is rounded to bf16 first, as
// torch's bf16 a * b is.
template <bool BF16, bool HAS_B>
__device__ __forceinline__ void fwd_body(
        float2* __restrict__ out, const void* __restrict__ a, const void* __restrict__ b,
        const float* __restrict__ bias, bool has_bias, const Column& col, int length, int n2,
        float scale, int sa_b, int sa_c, int sa_l, int sb_b, int sb_c, int sb_l, int so_r,
        int so_k) {
    const long long a0 = (long long)col.bi * sa_b + (long long)col.ci * sa_c;
    const long long b0 = (long long)col.bi * sb_b + (long long)col.ci * sb_c;
    // every load first, unconditional (a sample past L reads t = 0 and is zeroed after): a load
    // inside `if (t < L)` whose value the same block uses serialises the rows' memory latencies
    // (Nsight Compute: 71% of the stalls on L1TEX scoreboard, DRAM at 49%)
    float x[ROWS_], y[ROWS_];
#pragma unroll
    for (int j1 = 0; j1 < ROWS_; ++j1) {
        const int t = j1 * n2 + col.j2;
        const long long ts = t < length ? t : 0;
        x[j1] = load_io<BF16>(a, a0 + ts * sa_l);
        if (HAS_B) y[j1] = load_io<BF16>(b, b0 + ts * sb_l);
    }
#pragma unroll
    for (int j1 = 0; j1 < ROWS_; ++j1) {
        float v = x[j1];
        if (HAS_B) {
            v *= y[j1];
            if (BF16) v = __uint_as_float(((unsigned int)bf16_bits(v)) << 16);
        }
        x[j1] = j1 * n2 + col.j2 < length ? v * scale : 0.0f;
    }
    if (has_bias && col.j2 == 0) x[0] += bias[col.ci] * scale;

    float re[H_ + 1], im[H_ + 1];
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1) {
        re[k1] = 0.0f;
        im[k1] = 0.0f;
#pragma unroll
        for (int j1 = 0; j1 < ROWS_; ++j1) {  // w_N1^(j1 k1) = cos - i sin
            re[k1] += x[j1] * kCos[(j1 * k1) % N1_];
            im[k1] -= x[j1] * kSin[(j1 * k1) % N1_];
        }
    }
    Rotor w(col.j2, N1_ * n2);
    float2* o = out + col.r * so_r + col.j2;
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1, w.step())  // times w_N^(j2 k1) = c - i s
        o[(long long)k1 * so_k] = make_float2(re[k1] * w.c + im[k1] * w.s,
                                              im[k1] * w.c - re[k1] * w.s);
}

// bias: float32 (C,), read when has_bias
extern "C" __global__ void __launch_bounds__(THREADS)
cols_fwd(float2* __restrict__ out, const void* __restrict__ a, const void* __restrict__ b,
         const float* __restrict__ bias, int total, int channels, int length, int log2_n2,
         double scale_d, int sa_b, int sa_c, int sa_l, int sb_b, int sb_c, int sb_l, int so_r,
         int so_k, int bf16, int has_b, int has_bias) {
    const long long c = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (c >= total) return;
    const Column col(c, log2_n2, channels);
    const int n2 = 1 << log2_n2;
    const float scale = (float)scale_d;
#define FWD(BF, HB) fwd_body<BF, HB>(out, a, b, bias, has_bias, col, length, n2, scale, sa_b, \
                                     sa_c, sa_l, sb_b, sb_c, sb_l, so_r, so_k)
    if (bf16) {
        if (has_b) FWD(true, true); else FWD(true, false);
    } else {
        if (has_b) FWD(false, true); else FWD(false, false);
    }
#undef FWD
}

// q: the unscaled inverse row FFT of a half spectrum, complex float32 rows k1 = 0 .. H (strides as
// cols_fwd's out). y = the real signal's first `length` samples times scale;
// out1 = y * gate1 (or y), and with O2, out2 = y * gate2 (or y); one rounding per output. All
// four signals share one I/O type.
template <bool BF16, bool G1, bool O2, bool G2>
__device__ __forceinline__ void inv_body(
        const float2* __restrict__ q, void* o1, const void* g1, void* o2, const void* g2,
        const Column& col, int length, int n2, float scale, int sq_r, int sq_k,
        int so1_b, int so1_c, int so1_l, int sg1_b, int sg1_c, int sg1_l,
        int so2_b, int so2_c, int so2_l, int sg2_b, int sg2_c, int sg2_l) {
    Rotor w(col.j2, N1_ * n2);
    const float2* src = q + col.r * sq_r + col.j2;
    float rr[H_ + 1], ri[H_ + 1];  // c_k1 * w_N^(-j2 k1) * Q[k1] * scale, w_N^(-j2 k1) = c + i s
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1, w.step()) {
        const float2 v = src[(long long)k1 * sq_k];
        const float ck = (k1 == 0 || k1 == H_) ? scale : 2.0f * scale;
        rr[k1] = (v.x * w.c - v.y * w.s) * ck;
        ri[k1] = (v.x * w.s + v.y * w.c) * ck;
    }
    const long long o1_0 = (long long)col.bi * so1_b + (long long)col.ci * so1_c;
    const long long g1_0 = (long long)col.bi * sg1_b + (long long)col.ci * sg1_c;
    const long long o2_0 = (long long)col.bi * so2_b + (long long)col.ci * so2_c;
    const long long g2_0 = (long long)col.bi * sg2_b + (long long)col.ci * sg2_c;
    // the gates' loads all first, unconditional (see fwd_body), then the rows
    float gate1[ROWS_], gate2[ROWS_];
#pragma unroll
    for (int j1 = 0; j1 < ROWS_; ++j1) {
        const int t = j1 * n2 + col.j2;
        const long long ts = t < length ? t : 0;
        if (G1) gate1[j1] = load_io<BF16>(g1, g1_0 + ts * sg1_l);
        if (G2) gate2[j1] = load_io<BF16>(g2, g2_0 + ts * sg2_l);
    }
#pragma unroll
    for (int j1 = 0; j1 < ROWS_; ++j1) {
        const int t = j1 * n2 + col.j2;
        float y = 0.0f;
#pragma unroll
        for (int k1 = 0; k1 <= H_; ++k1)  // Re(w_N1^(-j1 k1) R) = Rr cos - Ri sin
            y += rr[k1] * kCos[(j1 * k1) % N1_] - ri[k1] * kSin[(j1 * k1) % N1_];
        if (t < length) {
            store_io<BF16>(o1, o1_0 + (long long)t * so1_l, G1 ? y * gate1[j1] : y);
            if (O2) store_io<BF16>(o2, o2_0 + (long long)t * so2_l, G2 ? y * gate2[j1] : y);
        }
    }
}

// mode: bit 0 gate1 given, bit 1 out2 given, bit 2 gate2 given (only with out2)
extern "C" __global__ void __launch_bounds__(THREADS)
cols_inv(const float2* __restrict__ q, void* o1, const void* g1, void* o2, const void* g2,
         int total, int channels, int length, int log2_n2, double scale_d, int sq_r, int sq_k,
         int so1_b, int so1_c, int so1_l, int sg1_b, int sg1_c, int sg1_l,
         int so2_b, int so2_c, int so2_l, int sg2_b, int sg2_c, int sg2_l, int bf16, int mode) {
    const long long c = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (c >= total) return;
    const Column col(c, log2_n2, channels);
    const int n2 = 1 << log2_n2;
    const float scale = (float)scale_d;
#define INV(BF, A, B, C) inv_body<BF, A, B, C>(q, o1, g1, o2, g2, col, length, n2, scale, sq_r, \
        sq_k, so1_b, so1_c, so1_l, sg1_b, sg1_c, sg1_l, so2_b, so2_c, so2_l, sg2_b, sg2_c, sg2_l)
#define INV_MODES(BF)                                    \
    switch (mode) {                                      \
        case 0: INV(BF, false, false, false); break;     \
        case 1: INV(BF, true, false, false); break;      \
        case 2: INV(BF, false, true, false); break;      \
        case 3: INV(BF, true, true, false); break;       \
        case 6: INV(BF, false, true, true); break;       \
        default: INV(BF, true, true, true); break;       \
    }
    if (bf16) {
        INV_MODES(true)
    } else {
        INV_MODES(false)
    }
#undef INV_MODES
#undef INV
}
