// Step (2) of the cluster plan (benchmarks/NOTES_gpu.md): the gated long convolution's forward,
// y = post * (k' * (v * pre))[:L], one (batch, channel) row per 8-CTA cluster, for FFT length
// n = 2 MT = 131,072 (L <= 65,536), bf16 I/O, float32 inside; HBM sees v, pre, post, y and the
// filter's spectrum K'/n once. benchmarks/probe_cluster_conv.py compiles it with NVRTC after
// the ONCHIP_* defines (M = 8192, radix 8, bf16), hyenadna/ops/onchip_conv.cu (Stockham
// stages, PAD, dft, twiddle, packed_value, unpack_pair, pack_pair) and cluster_ops.cuh; its
// torch twin (cluster_conv_forward_torch) does the same steps.
//
// The real signal is packed as MT complex values z[m] = w[2m] + i w[2m+1] (onchip_conv.cu), and
// transformed as in probe_cluster_fft.cu, except that each thread's 8 points come straight from
// global memory (no shared-memory copy first). CTA k1 then holds Z[k1 + 8 k2] at k2. The pair
// pass needs bin MT - k beside bin k: CTA 0's own bins mirror onto CTA 0, CTA k1's onto CTA
// 8 - k1 at k2' = Q - 1 - k2, read through distributed shared memory. The inverse runs the
// split the other way: each CTA's Q-point inverse FFT, then per point q an exchange, the
// twiddles e^(2 pi i k1 q / MT) and an 8-point inverse DFT that gives z at m = Q p + q for all
// 8 p; the thread writes y for those m < L / 2 itself. Unscaled throughout: the 1/n rides on K'.
// Shared memory: two padded buffers of Q complex (136 KiB): the pair pass writes the second
// while the partner CTA still reads the first.

#define CL 8
#define MT (CL * M_)
static_assert(R_MAX == CL && THREADS == M_ / CL, "one exchange point per thread");

// every CTA's Q points transformed in place, natural order (SIGN -1 forward, +1 inverse)
template <int SIGN>
__device__ __forceinline__ void local_fft(float2* s) {
    stage<R_MAX, 1, SIGN, 1>(s, s);
    middle_stages<R_MAX, SIGN, 1>(s, s);
    stage<last_radix(), NS_LAST, SIGN, 1>(s, s);
}

__device__ __forceinline__ float2 half_turn(int k) {  // e^(-i pi k / MT) = e^(-2 pi i k / n)
    float sn, cs;
    sincospif((float)k / (float)MT, &sn, &cs);
    return make_float2(cs, -sn);
}

extern "C" __global__ void __cluster_dims__(CL, 1, 1) __launch_bounds__(THREADS)
    cluster_conv_fwd(const io_t* v, const io_t* pre, const io_t* post, const float2* kspec,
                     io_t* y, int L, int D) {
    // v, pre, post, y: contiguous (B, D, L); kspec: (D, MT + 1) complex, rfft(k', n) / n
    extern __shared__ float2 s[];
    const unsigned rank = cluster_rank();
    const long long row = blockIdx.x / CL;  // b * D + d
    const io_t* vr = v + row * L;
    const io_t* pr = pre + row * L;
    const io_t* qr = post + row * L;
    io_t* yr = y + row * L;
    const float2* kr = kspec + (row % D) * (MT + 1);
    const int t = threadIdx.x;
    const int q = rank * THREADS + t;
    const unsigned at = (unsigned)__cvta_generic_to_shared(s + PAD(q));

    // 1. point q of all 8 CTAs' slices, 8-point DFT across them, twiddles; value k1 to CTA k1
    float2 a[CL];
#pragma unroll
    for (int p = 0; p < CL; ++p) a[p] = packed_value(vr, pr, L, p * M_ + q);
    dft<CL, -1>(a);
    twiddle<CL, -1>(a, q, MT);
    cluster_sync();  // every CTA of the cluster runs before any touches another's memory
#pragma unroll
    for (int k1 = 0; k1 < CL; ++k1) store_cluster(map_rank(at, k1), a[k1]);
    cluster_sync();

    // 2. this CTA's Q-point FFT: Z[rank + 8 k2] at k2
    local_fft<-1>(s);
    cluster_sync();  // the partner's Z is complete before the pair pass reads it

    // 3. the pair pass for this CTA's bins k = rank + 8 k2 into the second buffer (the partner
    // may still be reading the first)
    float2* sy = s + SMEM_LEN;
    const unsigned partner = (CL - rank) % CL;
    for (int k2 = t; k2 < M_; k2 += THREADS) {
        const int k = rank + CL * k2;
        const int k2m = rank == 0 ? (M_ - k2) & (M_ - 1) : M_ - 1 - k2;
        const float2 zm = load_cluster(map_rank((unsigned)__cvta_generic_to_shared(s + PAD(k2m)),
                                                partner));
        const float2 e = half_turn(k);
        float2 xk, xm, zk, unused;
        unpack_pair(s[PAD(k2)], zm, e, xk, xm);
        pack_pair(cmul(xk, kr[k]), cmul(xm, kr[MT - k]), e, zk, unused);
        sy[PAD(k2)] = zk;
    }
    __syncthreads();

    // 4. this CTA's Q-point inverse FFT: V_rank[q] at q
    local_fft<1>(sy);
    cluster_sync();  // every CTA's V is complete before the exchange reads it

    // 5. point q from all CTAs, twiddles, 8-point inverse DFT: a[p] = z at m = Q p + q
    const unsigned at_y = (unsigned)__cvta_generic_to_shared(sy + PAD(q));
#pragma unroll
    for (int k1 = 0; k1 < CL; ++k1) a[k1] = load_cluster(map_rank(at_y, k1));
    twiddle<CL, 1>(a, q, MT);
    dft<CL, 1>(a);
#pragma unroll
    for (int p = 0; p < CL; ++p) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int tt = 2 * (p * M_ + q) + h;
            if (tt < L) {  // y = post * round(z), onchip_fwd's rounding
                const float zf = io_round(h ? a[p].y : a[p].x);
                yr[tt] = to_io(io_load(qr + tt) * zf);
            }
        }
    }
    cluster_sync();  // no CTA leaves while another may still read its shared memory
}
