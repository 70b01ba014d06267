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

// COLS_PACKED 1: the spectra between kernels are packed bf16 pairs (spectrum_io.cuh, which
// columns.py puts in front of this file), 0: complex float32
#ifndef COLS_PACKED
#define COLS_PACKED 0
#endif
#if COLS_PACKED
typedef unsigned int spec_t;
#else
typedef float2 spec_t;
#endif

// COLS_FFT 1: the column DFTs as the radix-2 FFTs columns.py writes in front of this file
// (hyenadna/ops/dftgen.py: cols_fft_fwd, cols_fft_inv; N1 = 32), 0: direct DFTs
#ifndef COLS_FFT
#define COLS_FFT 0
#endif
#if COLS_FFT && COLS_N1 != 32
#error "the generated column FFTs are N1 = 32 points"
#endif
// COLS_FFT_SPLIT 1: the split and merge kernels' P-point DFTs across a row's parts as the
// generated FFTs (split_fft_fwd, split_fft_inv), 0: direct DFTs
#ifndef COLS_FFT_SPLIT
#define COLS_FFT_SPLIT 0
#endif

#define N1_ COLS_N1
#define H_ (COLS_N1 / 2)
#define ROWS_ COLS_ROWS
#define THREADS 128
// blocks per SM the plain column kernels are built for (__launch_bounds__'s second argument:
// caps their registers at 65536 / (blocks * 128)); 0 leaves the cap to the compiler
#ifndef COLS_MINB_FWD
#define COLS_MINB_FWD 0
#endif
#ifndef COLS_MINB_INV
#define COLS_MINB_INV 0
#endif
#if COLS_MINB_FWD > 0
#define COLS_BOUNDS_FWD __launch_bounds__(THREADS, COLS_MINB_FWD)
#else
#define COLS_BOUNDS_FWD __launch_bounds__(THREADS)
#endif
#if COLS_MINB_INV > 0
#define COLS_BOUNDS_INV __launch_bounds__(THREADS, COLS_MINB_INV)
#else
#define COLS_BOUNDS_INV __launch_bounds__(THREADS)
#endif

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

// x = a * b * scale (+ bias * scale at t = 0), zero-padded to n = N1 * n2; (re, im)[k1], k1 = 0 .. H:
// the twiddled column DFT of column j2. a and b share one I/O type; a bf16 product is rounded to
// bf16 first, as torch's bf16 a * b is.
template <bool BF16, bool HAS_B>
__device__ __forceinline__ void fwd_column(
        float* re, float* im, const void* __restrict__ a, const void* __restrict__ b,
        const float* __restrict__ bias, bool has_bias, const Column& col, int length, int n2,
        float scale, int sa_b, int sa_c, int sa_l, int sb_b, int sb_c, int sb_l) {
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

    Rotor w(col.j2, N1_ * n2);
#if COLS_FFT
    float fr[H_ + 1], fi[H_ + 1];
    cols_fft_fwd(x, fr, fi);
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1, w.step()) {
        re[k1] = fr[k1] * w.c + fi[k1] * w.s;  // times w_N^(j2 k1) = c - i s
        im[k1] = fi[k1] * w.c - fr[k1] * w.s;
    }
#else
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1, w.step()) {
        float sr = 0.0f, si = 0.0f;
#pragma unroll
        for (int j1 = 0; j1 < ROWS_; ++j1) {  // w_N1^(j1 k1) = cos - i sin
            sr += x[j1] * kCos[(j1 * k1) % N1_];
            si -= x[j1] * kSin[(j1 * k1) % N1_];
        }
        re[k1] = sr * w.c + si * w.s;  // times w_N^(j2 k1) = c - i s
        im[k1] = si * w.c - sr * w.s;
    }
#endif
}

// fwd_column for each I/O type and operand set (runtime flags: one branch per thread)
#define FWD_COLUMN(re, im, col, n2)                                                            \
    do {                                                                                       \
        if (bf16) {                                                                            \
            if (has_b) fwd_column<true, true>(re, im, a, b, bias, has_bias, col, length, n2,   \
                                              scale, sa_b, sa_c, sa_l, sb_b, sb_c, sb_l);      \
            else fwd_column<true, false>(re, im, a, b, bias, has_bias, col, length, n2,        \
                                         scale, sa_b, sa_c, sa_l, sb_b, sb_c, sb_l);           \
        } else {                                                                               \
            if (has_b) fwd_column<false, true>(re, im, a, b, bias, has_bias, col, length, n2,  \
                                               scale, sa_b, sa_c, sa_l, sb_b, sb_c, sb_l);     \
            else fwd_column<false, false>(re, im, a, b, bias, has_bias, col, length, n2,       \
                                          scale, sa_b, sa_c, sa_l, sb_b, sb_c, sb_l);          \
        }                                                                                      \
    } while (0)

// bias: float32 (C,), read when has_bias
// out: complex rows k1 = 0 .. H of length n2 (row stride so_k, (b, c) row stride so_r, in
// complex values; spec_t)
extern "C" __global__ void COLS_BOUNDS_FWD
cols_fwd(spec_t* __restrict__ out, const void* __restrict__ a, const void* __restrict__ b,
         const float* __restrict__ bias, int total, int channels, int length, int log2_n2,
         double scale_d, int sa_b, int sa_c, int sa_l, int sb_b, int sb_c, int sb_l, int so_r,
         int so_k, int bf16, int has_b, int has_bias) {
    const long long c = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (c >= total) return;
    const Column col(c, log2_n2, channels);
    const int n2 = 1 << log2_n2;
    const float scale = (float)scale_d;
    float re[H_ + 1], im[H_ + 1];
    FWD_COLUMN(re, im, col, n2);
    spec_t* o = out + col.r * so_r + col.j2;
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1)
        spec_store(o + (long long)k1 * so_k, make_float2(re[k1], im[k1]));
}

// src: column j2 of the unscaled inverse row FFT of a half spectrum, its rows k1 = 0 .. H at
// src[k1 * sk] (global memory as spec_t, or a float2 tile in shared memory). y = the real signal's first `length`
// samples times scale; out1 = y * gate1 (or y), and with O2, out2 = y * gate2 (or y); one
// rounding per output. All four signals share one I/O type.
template <bool BF16, bool G1, bool O2, bool G2, class S>
__device__ __forceinline__ void inv_body(
        const S* src, long long sk, void* o1, const void* g1, void* o2, const void* g2,
        const Column& col, int length, int n2, float scale,
        int so1_b, int so1_c, int so1_l, int sg1_b, int sg1_c, int sg1_l,
        int so2_b, int so2_c, int so2_l, int sg2_b, int sg2_c, int sg2_l) {
    Rotor w(col.j2, N1_ * n2);
    float rr[H_ + 1], ri[H_ + 1];  // c_k1 * w_N^(-j2 k1) * Q[k1] * scale, w_N^(-j2 k1) = c + i s
#pragma unroll
    for (int k1 = 0; k1 <= H_; ++k1, w.step()) {
        const float2 v = spec_load(src + k1 * sk);
        const float ck = (k1 == 0 || k1 == H_) ? scale : 2.0f * scale;
        rr[k1] = (v.x * w.c - v.y * w.s) * ck;
        ri[k1] = (v.x * w.s + v.y * w.c) * ck;
    }
    const long long o1_0 = (long long)col.bi * so1_b + (long long)col.ci * so1_c;
    const long long g1_0 = (long long)col.bi * sg1_b + (long long)col.ci * sg1_c;
    const long long o2_0 = (long long)col.bi * so2_b + (long long)col.ci * so2_c;
    const long long g2_0 = (long long)col.bi * sg2_b + (long long)col.ci * sg2_c;
    // the gates' loads all first, unconditional (see fwd_column), then the rows
    float gate1[ROWS_], gate2[ROWS_];
#pragma unroll
    for (int j1 = 0; j1 < ROWS_; ++j1) {
        const int t = j1 * n2 + col.j2;
        const long long ts = t < length ? t : 0;
        if (G1) gate1[j1] = load_io<BF16>(g1, g1_0 + ts * sg1_l);
        if (G2) gate2[j1] = load_io<BF16>(g2, g2_0 + ts * sg2_l);
    }
#if COLS_FFT
    float ys[ROWS_];
    cols_fft_inv(rr, ri, ys);
#endif
#pragma unroll
    for (int j1 = 0; j1 < ROWS_; ++j1) {
        const int t = j1 * n2 + col.j2;
#if COLS_FFT
        const float y = ys[j1];
#else
        float y = 0.0f;
#pragma unroll
        for (int k1 = 0; k1 <= H_; ++k1)  // Re(w_N1^(-j1 k1) R) = Rr cos - Ri sin
            y += rr[k1] * kCos[(j1 * k1) % N1_] - ri[k1] * kSin[(j1 * k1) % N1_];
#endif
        if (t < length) {
            store_io<BF16>(o1, o1_0 + (long long)t * so1_l, G1 ? y * gate1[j1] : y);
            if (O2) store_io<BF16>(o2, o2_0 + (long long)t * so2_l, G2 ? y * gate2[j1] : y);
        }
    }
}

// inv_body for each I/O type and gate mode. mode: bit 0 gate1 given, bit 1 out2 given, bit 2
// gate2 given (only with out2)
#define INV(BF, A, B, C) inv_body<BF, A, B, C>(src, sk, o1, g1, o2, g2, col, length, n2, scale, \
        so1_b, so1_c, so1_l, sg1_b, sg1_c, sg1_l, so2_b, so2_c, so2_l, sg2_b, sg2_c, sg2_l)
#define INV_MODES(BF)                                    \
    switch (mode) {                                      \
        case 0: INV(BF, false, false, false); break;     \
        case 1: INV(BF, true, false, false); break;      \
        case 2: INV(BF, false, true, false); break;      \
        case 3: INV(BF, true, true, false); break;       \
        case 6: INV(BF, false, true, true); break;       \
        default: INV(BF, true, true, true); break;       \
    }
#define INV_COLUMN()                                     \
    do {                                                 \
        if (bf16) {                                      \
            INV_MODES(true)                              \
        } else {                                         \
            INV_MODES(false)                             \
        }                                                \
    } while (0)

// q: rows k1 = 0 .. H (strides as cols_fwd's out)
extern "C" __global__ void COLS_BOUNDS_INV
cols_inv(const spec_t* __restrict__ q, void* o1, const void* g1, void* o2, const void* g2,
         int total, int channels, int length, int log2_n2, double scale_d, int sq_r, int sq_k,
         int so1_b, int so1_c, int so1_l, int sg1_b, int sg1_c, int sg1_l,
         int so2_b, int so2_c, int so2_l, int sg2_b, int sg2_c, int sg2_l, int bf16, int mode) {
    const long long c = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (c >= total) return;
    const Column col(c, log2_n2, channels);
    const int n2 = 1 << log2_n2;
    const float scale = (float)scale_d;
    const spec_t* src = q + col.r * sq_r + col.j2;
    const long long sk = sq_k;
    INV_COLUMN();
}

#ifdef COLS_SPLIT_TM
// ---------------------------------------------------------------------------------------------
// The column stages with rowsplit.cu's split and merge fused in (built when COLS_SPLIT_TM is
// defined: columns.py's split module). Rows of N2 = P * M (M = 2^log2_m) in "split order": the
// forward stores S[k1][k1p * M + j2p] = w_N2^(j2p k1p) * sum_p w_P^(p k1p) C[k1][p * M + j2p],
// C the twiddled column DFT, which is what cols_fwd followed by split_rows stores; the inverse
// reads q in split order and merges each row (rowsplit.cu's merge_rows) before its column
// inverse. Apart, at L = 1M on an H100, the split and merge kernels took 10.7 of the operator's
// 51.8 ms of kernels: each is one more pass over every spectrum (benchmarks/NOTES_gpu.md).
//
// A block (SPLIT_THREADS = P * TM threads) takes TM consecutive j2p of one (b, c) row and all P parts: thread (p, jm) transforms
// column p * M + j2p as cols_fwd does and leaves its H + 1 values in shared memory; then the
// block's threads take the (k1, j2p) pairs, each an P-point DFT across the parts, and store
// runs of TM consecutive values. The inverse runs the same two steps the other way round.

#define TM_ COLS_SPLIT_TM
#define P_ 8
#if COLS_FFT_SPLIT && P_ != 8
#error "the generated split FFTs are 8 points (dftgen.SPLIT_P)"
#endif
#define SPLIT_THREADS (P_ * TM_)  // a block: one thread per (part, column) of its tile
// blocks per SM each split kernel is built for (__launch_bounds__'s second argument: caps its
// registers at 65536 / (blocks * threads)); 0 leaves the cap to the compiler
#ifndef COLS_SPLIT_MINB_FWD
#define COLS_SPLIT_MINB_FWD 0
#endif
#ifndef COLS_SPLIT_MINB_INV
#define COLS_SPLIT_MINB_INV 0
#endif
#if COLS_SPLIT_MINB_FWD > 0
#define SPLIT_BOUNDS_FWD __launch_bounds__(SPLIT_THREADS, COLS_SPLIT_MINB_FWD)
#else
#define SPLIT_BOUNDS_FWD __launch_bounds__(SPLIT_THREADS)
#endif
#if COLS_SPLIT_MINB_INV > 0
#define SPLIT_BOUNDS_INV __launch_bounds__(SPLIT_THREADS, COLS_SPLIT_MINB_INV)
#else
#define SPLIT_BOUNDS_INV __launch_bounds__(SPLIT_THREADS)
#endif
#if N1_ % P_ != 0
#error "the P-point DFT reads the N1-point tables at a stride of N1 / P"
#endif

struct SplitTile {
    long long r;  // (b, c) row
    int t0;       // first j2p of the tile
    int p, jm;    // this thread's part and column in the tile
    __device__ __forceinline__ SplitTile(int log2_m) {
        const int tiles = (1 << log2_m) / TM_;
        r = blockIdx.x / tiles;
        t0 = (int)(blockIdx.x - r * tiles) * TM_;
        p = threadIdx.x / TM_;
        jm = threadIdx.x - p * TM_;
    }
};

// out: rows k1 = 0 .. H of N2 = P * M values in split order (strides as cols_fwd's out);
// one block per TM columns of a part, (b, c) rows times M / TM blocks in all
extern "C" __global__ void SPLIT_BOUNDS_FWD
cols_fwd_split(spec_t* __restrict__ out, const void* __restrict__ a, const void* __restrict__ b,
               const float* __restrict__ bias, int channels, int length, int log2_m,
               double scale_d, int sa_b, int sa_c, int sa_l, int sb_b, int sb_c, int sb_l,
               int so_r, int so_k, int bf16, int has_b, int has_bias) {
    __shared__ float2 tile[(H_ + 1) * P_ * TM_];  // [k1][p][jm]
    const SplitTile st(log2_m);
    const int m = 1 << log2_m, n2 = P_ << log2_m;
    const float scale = (float)scale_d;
    {
        const Column col(st.r * n2 + (long long)st.p * m + st.t0 + st.jm, log2_m + 3, channels);
        float re[H_ + 1], im[H_ + 1];
        FWD_COLUMN(re, im, col, n2);
#pragma unroll
        for (int k1 = 0; k1 <= H_; ++k1)
            tile[(k1 * P_ + st.p) * TM_ + st.jm] = make_float2(re[k1], im[k1]);
    }
    __syncthreads();
    for (int task = threadIdx.x; task < (H_ + 1) * TM_; task += SPLIT_THREADS) {
        const int k1 = task / TM_, jj = task - (task / TM_) * TM_, j2p = st.t0 + jj;
        float2 v[P_];
#pragma unroll
        for (int p = 0; p < P_; ++p) v[p] = tile[(k1 * P_ + p) * TM_ + jj];
        spec_t* o = out + st.r * so_r + (long long)k1 * so_k + j2p;
        Rotor w(j2p, n2);
#if COLS_FFT_SPLIT
        float xr[P_], xi[P_], yr[P_], yi[P_];
#pragma unroll
        for (int p = 0; p < P_; ++p) { xr[p] = v[p].x; xi[p] = v[p].y; }
        split_fft_fwd(xr, xi, yr, yi);  // * w_P^(p kp) = cos - i sin, summed over p
#endif
#pragma unroll
        for (int kp = 0; kp < P_; ++kp, w.step()) {
#if COLS_FFT_SPLIT
            const float re = yr[kp], im = yi[kp];
#else
            float re = 0.0f, im = 0.0f;
#pragma unroll
            for (int p = 0; p < P_; ++p) {  // * w_P^(p kp) = cos - i sin
                const float co = kCos[((p * kp) % P_) * (N1_ / P_)];
                const float si = kSin[((p * kp) % P_) * (N1_ / P_)];
                re += v[p].x * co + v[p].y * si;
                im += v[p].y * co - v[p].x * si;
            }
#endif
            // * w_N2^(j2p kp) = c - i s
            spec_store(o + (long long)kp * m,
                       make_float2(re * w.c + im * w.s, im * w.c - re * w.s));
        }
    }
}

// q: rows k1 = 0 .. H in split order (strides as cols_fwd's out), left unchanged; outputs as
// cols_inv's; blocks as cols_fwd_split's
extern "C" __global__ void SPLIT_BOUNDS_INV
cols_inv_merge(const spec_t* __restrict__ q, void* o1, const void* g1, void* o2, const void* g2,
               int channels, int length, int log2_m, double scale_d, int sq_r, int sq_k,
               int so1_b, int so1_c, int so1_l, int sg1_b, int sg1_c, int sg1_l,
               int so2_b, int so2_c, int so2_l, int sg2_b, int sg2_c, int sg2_l, int bf16,
               int mode) {
    __shared__ float2 tile[(H_ + 1) * P_ * TM_];  // [k1][p][jm]: the merged rows' values
    const SplitTile st(log2_m);
    const int m = 1 << log2_m, n2 = P_ << log2_m;
    const float scale = (float)scale_d;
    for (int task = threadIdx.x; task < (H_ + 1) * TM_; task += SPLIT_THREADS) {
        const int k1 = task / TM_, jj = task - (task / TM_) * TM_, j2p = st.t0 + jj;
        const spec_t* row = q + st.r * sq_r + (long long)k1 * sq_k + j2p;
        float2 v[P_];
        Rotor w(j2p, n2);
#pragma unroll
        for (int kp = 0; kp < P_; ++kp) v[kp] = spec_load(row + (long long)kp * m);
#pragma unroll
        for (int kp = 0; kp < P_; ++kp, w.step())  // * w_N2^(-j2p kp) = c + i s
            v[kp] = make_float2(v[kp].x * w.c - v[kp].y * w.s, v[kp].x * w.s + v[kp].y * w.c);
#if COLS_FFT_SPLIT
        float xr[P_], xi[P_], yr[P_], yi[P_];
#pragma unroll
        for (int kp = 0; kp < P_; ++kp) { xr[kp] = v[kp].x; xi[kp] = v[kp].y; }
        split_fft_inv(xr, xi, yr, yi);  // * w_P^(-p kp) = cos + i sin, summed over kp
#pragma unroll
        for (int p = 0; p < P_; ++p) tile[(k1 * P_ + p) * TM_ + jj] = make_float2(yr[p], yi[p]);
#else
#pragma unroll
        for (int p = 0; p < P_; ++p) {
            float re = 0.0f, im = 0.0f;
#pragma unroll
            for (int kp = 0; kp < P_; ++kp) {  // * w_P^(-p kp) = cos + i sin
                const float co = kCos[((p * kp) % P_) * (N1_ / P_)];
                const float si = kSin[((p * kp) % P_) * (N1_ / P_)];
                re += v[kp].x * co - v[kp].y * si;
                im += v[kp].y * co + v[kp].x * si;
            }
            tile[(k1 * P_ + p) * TM_ + jj] = make_float2(re, im);
        }
#endif
    }
    __syncthreads();
    const Column col(st.r * n2 + (long long)st.p * m + st.t0 + st.jm, log2_m + 3, channels);
    const float2* src = tile + st.p * TM_ + st.jm;
    const long long sk = P_ * TM_;
    INV_COLUMN();
}
#endif  // COLS_SPLIT_TM
