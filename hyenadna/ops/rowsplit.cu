// One more four-step level for the four-step engine's long rows (hyenadna/ops/fourstep.py): a
// complex row of N2 = P * M values (M <= 8192, what the on-chip row kernels hold) is split so that
// its length-N2 DFT becomes P DFTs of length M, which onchip_conv.cu's rows_fwd / rows_bwd then
// run in shared memory instead of cuFFT's three passes per transform (at L = 1M, N2 = 65536).
// hyenadna/ops/rowsplit.py compiles this file with NVRTC; its torch twins (split_rows_torch,
// merge_rows_torch) are what the GPU tests hold these kernels to.
//
//   SPLIT_P  P, the number of parts (8)
//
// With w_m = exp(-2 pi i / m), t = j1 * M + j2 and f = k1 + P * k2 (j1, k1 < P; j2, k2 < M):
//   split   S[k1, j2] = w_N2^(j2 k1) * sum_j1 w_P^(j1 k1) x[j1 * M + j2]
//           then DFT_M over j2 gives X[k1 + P k2] at [k1, k2] ("split order")
//   merge   y[j1 * M + j2] = sum_k1 w_P^(-j1 k1) w_N2^(-j2 k1) Q[k1, j2], the unscaled inverse
//           DFT_N2 when Q is the unscaled inverse DFT_M of a split-order spectrum's rows
// One thread per (row, j2): it reads and writes the same P values, so both run in place.

#ifndef SPLIT_P
#error "SPLIT_P must be defined"
#endif
#define P_ SPLIT_P
#define THREADS 128

// cos and sin of 2 pi m / P (SPLIT_COS, SPLIT_SIN: brace lists rowsplit.py writes in front)
__constant__ float kCos[P_] = SPLIT_COS;
__constant__ float kSin[P_] = SPLIT_SIN;

// the twiddles w_N2^(j2 k1): Rotor (rotor.cuh), one step per k1

// x: (rows, N2) complex float32, contiguous, N2 = P * 2^log2_m; total = rows * M
extern "C" __global__ void __launch_bounds__(THREADS)
split_rows(float2* x, int total, int log2_m) {
    const long long c = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (c >= total) return;
    const int m = 1 << log2_m;
    const long long r = c >> log2_m;
    const int j2 = (int)(c & (m - 1));
    float2* row = x + r * (long long)(P_ * m) + j2;
    float2 v[P_];
#pragma unroll
    for (int j1 = 0; j1 < P_; ++j1) v[j1] = row[(long long)j1 * m];
    Rotor w(j2, P_ * m);
#pragma unroll
    for (int k1 = 0; k1 < P_; ++k1, w.step()) {
        float re = 0.0f, im = 0.0f;
#pragma unroll
        for (int j1 = 0; j1 < P_; ++j1) {  // * w_P^(j1 k1) = cos - i sin
            const float co = kCos[(j1 * k1) % P_], si = kSin[(j1 * k1) % P_];
            re += v[j1].x * co + v[j1].y * si;
            im += v[j1].y * co - v[j1].x * si;
        }
        // * w_N2^(j2 k1) = c - i s
        row[(long long)k1 * m] = make_float2(re * w.c + im * w.s, im * w.c - re * w.s);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
merge_rows(float2* q, int total, int log2_m) {
    const long long c = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (c >= total) return;
    const int m = 1 << log2_m;
    const long long r = c >> log2_m;
    const int j2 = (int)(c & (m - 1));
    float2* row = q + r * (long long)(P_ * m) + j2;
    float2 v[P_];
    Rotor w(j2, P_ * m);
#pragma unroll
    for (int k1 = 0; k1 < P_; ++k1, w.step()) {  // * w_N2^(-j2 k1) = c + i s
        const float2 u = row[(long long)k1 * m];
        v[k1] = make_float2(u.x * w.c - u.y * w.s, u.x * w.s + u.y * w.c);
    }
#pragma unroll
    for (int j1 = 0; j1 < P_; ++j1) {
        float re = 0.0f, im = 0.0f;
#pragma unroll
        for (int k1 = 0; k1 < P_; ++k1) {  // * w_P^(-j1 k1) = cos + i sin
            const float co = kCos[(j1 * k1) % P_], si = kSin[(j1 * k1) % P_];
            re += v[k1].x * co - v[k1].y * si;
            im += v[k1].y * co + v[k1].x * si;
        }
        row[(long long)j1 * m] = make_float2(re, im);
    }
}
