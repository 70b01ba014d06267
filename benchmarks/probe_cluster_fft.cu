// Step (1) of the cluster plan (benchmarks/NOTES_gpu.md): a complex FFT of MT = 8 * M_ points
// (65,536 at M_ = 8192), one row per 8-CTA cluster, float32, no convolution yet.
// benchmarks/probe_cluster_fft.py compiles it with NVRTC after the ONCHIP_* defines (M = 8192,
// radix 8, float32), hyenadna/ops/onchip_conv.cu (its Stockham stages, PAD, dft, twiddle) and
// cluster_ops.cuh; its torch twin (cluster_fft_torch) does the same steps.
//
// With x[Q p + q] (p < 8 the CTA, q < Q = M_) and w_N = e^(-2 pi i / N), the four-step split
//   X[k1 + 8 k2] = sum_q w_Q^(q k2) w_MT^(q k1) sum_p x[Q p + q] w_8^(p k1):
// CTA s loads its slice x[Q s + q]; thread t takes point q = s Q/8 + t, reads it from all 8
// CTAs, forms the 8-point DFT over p and the twiddles, and stores value k1 to CTA k1 (through
// distributed shared memory, a cluster barrier on each side); each CTA k1 then transforms its
// Q points in shared memory and writes X[k1 + 8 k2] to out[k1 Q + k2] (CTA-major: coalesced;
// the caller reorders, and a convolution would not need to).

#define CL 8
#define MT (CL * M_)
static_assert(R_MAX == CL && THREADS == M_ / CL, "one exchange point per thread");

extern "C" __global__ void __cluster_dims__(CL, 1, 1) __launch_bounds__(THREADS)
    cluster_fft(const float2* x, float2* out) {
    extern __shared__ float2 s[];
    const unsigned rank = cluster_rank();
    const long long row = blockIdx.x / CL;
    const float2* xr = x + row * MT + (long long)rank * M_;
    for (int q = threadIdx.x; q < M_; q += THREADS) s[PAD(q)] = xr[q];
    cluster_sync();
    const int q = rank * THREADS + threadIdx.x;
    const unsigned at = (unsigned)__cvta_generic_to_shared(s + PAD(q));
    float2 v[CL];
#pragma unroll
    for (int p = 0; p < CL; ++p) v[p] = load_cluster(map_rank(at, p));
    dft<CL, -1>(v);             // v[k1] = sum_p x[Q p + q] w_8^(p k1)
    twiddle<CL, -1>(v, q, MT);  // v[k1] *= w_MT^(q k1)
    cluster_sync();             // every CTA has read its points before any is overwritten
#pragma unroll
    for (int k1 = 0; k1 < CL; ++k1) store_cluster(map_rank(at, k1), v[k1]);
    cluster_sync();
    stage<R_MAX, 1, -1, 1>(s, s);  // the local FFT, in place: its first stage
    middle_stages<R_MAX, -1, 1>(s, s);
    stage<last_radix(), NS_LAST, -1, 1>(s, s);
    float2* outr = out + row * MT + (long long)rank * M_;
    for (int k2 = threadIdx.x; k2 < M_; k2 += THREADS) outr[k2] = s[PAD(k2)];
}
