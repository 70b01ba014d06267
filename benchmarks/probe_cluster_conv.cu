// Steps (2) and (3) of the cluster plan (benchmarks/NOTES_gpu.md): the gated long convolution's
// forward, y = post * (k' * (v * pre))[:L], and its backward, one (batch, channel) row per
// 8-CTA cluster, for FFT length
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
// 8 - k1 at k2' = Q - 1 - k2. One thread takes each pair, reads both bins (the partner's
// through distributed shared memory) and writes both results in place: CTA k1 takes its bins
// k2 < Q/2 (CTA 0 also Q/2), so its partner takes the rest as mirrors of its own. The inverse
// runs the
// split the other way: each CTA's Q-point inverse FFT, then per point q an exchange, the
// twiddles e^(2 pi i k1 q / MT) and an 8-point inverse DFT that gives z at m = Q p + q for all
// 8 p; the thread writes y for those m < L / 2 itself. Unscaled throughout: the 1/n rides on K'.
// The backward does the same for g = dy * post and w = v * pre (two buffers: 136 KiB), its pair
// pass forming G conj(K') (for dw) and G conj(W) (the filter's gradient per row), as
// onchip_bwd.

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

__device__ __forceinline__ unsigned smem_at(const float2* p) {
    return (unsigned)__cvta_generic_to_shared(p);
}

// Step 1 for one signal: load(m) gives the packed value m; thread t of CTA `rank` takes point
// q = rank Q/8 + t of all 8 slices, transforms across them, twiddles, and stores value k1 at q
// in CTA k1's buffer s. The caller syncs the cluster before (every CTA running) and after.
template <class Load>
__device__ __forceinline__ void spread(float2* s, unsigned rank, Load load) {
    const int q = rank * THREADS + threadIdx.x;
    float2 a[CL];
#pragma unroll
    for (int p = 0; p < CL; ++p) a[p] = load(p * M_ + q);
    dft<CL, -1>(a);
    twiddle<CL, -1>(a, q, MT);
    const unsigned at = smem_at(s + PAD(q));
#pragma unroll
    for (int k1 = 0; k1 < CL; ++k1) store_cluster(map_rank(at, k1), a[k1]);
}

// Step 5 for one signal: point q of every CTA's inverse, twiddled, 8-point inverse DFT:
// a[p] = the packed value at m = Q p + q
__device__ __forceinline__ void gather(const float2* s, unsigned rank, float2* a) {
    const int q = rank * THREADS + threadIdx.x;
    const unsigned at = smem_at(s + PAD(q));
#pragma unroll
    for (int k1 = 0; k1 < CL; ++k1) a[k1] = load_cluster(map_rank(at, k1));
    twiddle<CL, 1>(a, q, MT);
    dft<CL, 1>(a);
}

// The pair pass over this CTA's share of the pairs (bin k = rank + 8 k2, bin MT - k in CTA
// partner at k2m): op(k, zk, zm, out_k, out_m) for each, written in place (out_m not where the
// pair is one bin). Ranges: CTA 0 k2 in [0, Q/2], the others [0, Q/2).
template <class Op>
__device__ __forceinline__ void pair_pass(unsigned rank, Op op) {
    const unsigned partner = (CL - rank) % CL;
    const int end = rank == 0 ? M_ / 2 + 1 : M_ / 2;
    for (int k2 = threadIdx.x; k2 < end; k2 += THREADS) {
        const int k2m = rank == 0 ? (M_ - k2) & (M_ - 1) : M_ - 1 - k2;
        op(rank + CL * k2, k2, k2m, partner, !(rank == 0 && k2m == k2));
    }
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
    cluster_sync();  // every CTA of the cluster runs before any touches another's memory
    spread(s, rank, [=](int m) { return packed_value(vr, pr, L, m); });
    cluster_sync();
    local_fft<-1>(s);  // Z[rank + 8 k2] at k2
    cluster_sync();
    pair_pass(rank, [&](int k, int k2, int k2m, unsigned partner, bool both) {
        const unsigned at_m = map_rank(smem_at(s + PAD(k2m)), partner);
        const float2 e = half_turn(k);
        float2 xk, xm, zk, zm;
        unpack_pair(s[PAD(k2)], load_cluster(at_m), e, xk, xm);
        pack_pair(cmul(xk, kr[k]), cmul(xm, kr[MT - k]), e, zk, zm);
        s[PAD(k2)] = zk;
        if (both) store_cluster(at_m, zm);
    });
    cluster_sync();
    local_fft<1>(s);
    cluster_sync();  // every CTA's inverse is complete before the gather reads it
    float2 a[CL];
    gather(s, rank, a);
    const int q = rank * THREADS + threadIdx.x;
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

extern "C" __global__ void __cluster_dims__(CL, 1, 1) __launch_bounds__(THREADS)
    cluster_conv_bwd(const io_t* dy, const io_t* post, const io_t* z, const io_t* v,
                     const io_t* pre, const float2* kspec, io_t* dv, io_t* dpre, io_t* dpost,
                     float* dk, int L, int D, int taps, double inv_n) {
    // all (B, D, L) contiguous; dk: (B, D, taps) float32, this row's sum_t w[t - s] g[t] (the
    // caller sums over B); the forward's g = dy * post, w = v * pre; dw = dv / pre
    extern __shared__ float2 s[];
    float2* sg = s;
    float2* sw = s + SMEM_LEN;
    const unsigned rank = cluster_rank();
    const long long row = blockIdx.x / CL;
    const long long off = row * L;
    const float2* kr = kspec + (row % D) * (MT + 1);
    cluster_sync();
    spread(sg, rank, [=](int m) {  // g, and dpost = dy * z on the way (each m once)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 2 * m + h;
            if (t < L) dpost[off + t] = to_io(io_load(dy + off + t) * io_load(z + off + t));
        }
        return packed_value(dy + off, post + off, L, m);
    });
    spread(sw, rank, [=](int m) { return packed_value(v + off, pre + off, L, m); });
    cluster_sync();
    local_fft<-1>(sg);
    local_fft<-1>(sw);
    cluster_sync();
    pair_pass(rank, [&](int k, int k2, int k2m, unsigned partner, bool both) {
        const unsigned gm_at = map_rank(smem_at(sg + PAD(k2m)), partner);
        const unsigned wm_at = map_rank(smem_at(sw + PAD(k2m)), partner);
        const float2 e = half_turn(k);
        float2 gk, gm, wk, wm, zk, zm;
        unpack_pair(sg[PAD(k2)], load_cluster(gm_at), e, gk, gm);
        unpack_pair(sw[PAD(k2)], load_cluster(wm_at), e, wk, wm);
        pack_pair(cmulc(gk, wk), cmulc(gm, wm), e, zk, zm);  // G conj(W): the filter's
        sw[PAD(k2)] = zk;
        if (both) store_cluster(wm_at, zm);
        pack_pair(cmulc(gk, kr[k]), cmulc(gm, kr[MT - k]), e, zk, zm);  // G conj(K'): dw
        sg[PAD(k2)] = zk;
        if (both) store_cluster(gm_at, zm);
    });
    cluster_sync();
    local_fft<1>(sg);
    local_fft<1>(sw);
    cluster_sync();
    const int q = rank * THREADS + threadIdx.x;
    const float scale = (float)inv_n;
    float2 a[CL];
    gather(sg, rank, a);
#pragma unroll
    for (int p = 0; p < CL; ++p) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 2 * (p * M_ + q) + h;
            if (t < L) {
                const float dw = h ? a[p].y : a[p].x;
                dv[off + t] = to_io(dw * io_load(pre + off + t));
                dpre[off + t] = to_io(dw * io_load(v + off + t));
            }
        }
    }
    gather(sw, rank, a);
    float* dkr = dk + row * taps;
#pragma unroll
    for (int p = 0; p < CL; ++p) {
        const int t = 2 * (p * M_ + q);
        if (t < taps) dkr[t] = scale * a[p].x;
        if (t + 1 < taps) dkr[t + 1] = scale * a[p].y;
    }
    cluster_sync();
}
