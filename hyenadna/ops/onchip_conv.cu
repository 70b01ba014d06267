// One-kernel gated FFT long convolution for FFT lengths n <= 16384: each (batch, channel) row is
// transformed, multiplied and transformed back in shared memory, so HBM sees the bf16 inputs and
// outputs and the filter's spectrum once. hyenadna/ops/onchip.py compiles this file with NVRTC
// (one module per M and I/O type, set by the two macros below) and holds the torch twin of every
// step (onchip.py: stockham_torch, pair_*_torch); the tests compare the two.
//
//   ONCHIP_M    M = n / 2, a power of two in [512, 8192]: the real length-n signal is packed
//               as M complex values z[m] = x[2m] + i x[2m+1] (zero past L)
//   ONCHIP_BF16 1: I/O in bfloat16 (raw 16-bit words), 0: float32
//   ONCHIP_R    the stages' radix, 8 or 16 (M / ONCHIP_R threads per row)
//
// Per row the forward runs: pack w = v * pre -> Stockham FFT_M -> "pair pass" (unpack the real
// spectrum X at k and M-k, multiply by the filter spectrum K'/n, repack for the real inverse) ->
// inverse FFT_M -> z = the first L reals; y = post * z. The backward runs the same on g = dy * post
// and on w, and its pair pass forms both G conj(K') and G conj(W). Arithmetic is float32.
//
// The FFT is a mixed-radix Stockham autosort (radix R, the last stage whatever is left), one
// shared-memory buffer in place: each thread holds its E = R values of a stage in registers
// between two barriers. The first forward stage reads the row from global memory and the last
// inverse stage writes it there, so neither passes through shared memory. The backward runs its
// two transforms (of g and of w) interleaved, sharing every barrier. Shared indices are padded
// by one complex per 16 (PAD) so the first stage's stride-R scatter does not hit one bank.
//
// The same stages also run the four-step engine's row stage (rows_fwd, rows_bwd at the end of
// this file): M is then the row length N2 and the rows complex, float32 or, with
// ONCHIP_ROWS_PACKED 1, packed bf16 pairs (spectrum_io.cuh, which onchip.py puts in front).

#ifndef ONCHIP_M
#error "ONCHIP_M must be defined"
#endif
#ifndef ONCHIP_R
#define ONCHIP_R 16
#endif
#ifndef ONCHIP_ROWS_PACKED
#define ONCHIP_ROWS_PACKED 0
#endif
// ONCHIP_SHARED_TWIDDLE 1: a stage on two rows at once (the backward's g and w) computes each
// item's twiddles once for both rows (the same values, so the same results bit for bit)
#ifndef ONCHIP_SHARED_TWIDDLE
#define ONCHIP_SHARED_TWIDDLE 0
#endif

#define M_ ONCHIP_M
#define R_MAX ONCHIP_R  // radix of every stage but the last: 8 or 16
#define THREADS (M_ / R_MAX)
#define E_ R_MAX  // values per thread and stage

#if ONCHIP_BF16
typedef unsigned short io_t;
__device__ __forceinline__ float io_load(const io_t* p) {
    return __uint_as_float(((unsigned int)(*p)) << 16);
}
__device__ __forceinline__ io_t to_io(float f) {  // round to nearest even, NaN stays NaN
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (io_t)0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (io_t)(u >> 16);
}
#else
typedef float io_t;
__device__ __forceinline__ float io_load(const io_t* p) { return *p; }
__device__ __forceinline__ io_t to_io(float f) { return f; }
#endif

// a product of two I/O values rounds to the I/O dtype first, as torch's bf16 a * b does
__device__ __forceinline__ float io_round(float f) {
#if ONCHIP_BF16
    return __uint_as_float(((unsigned int)to_io(f)) << 16);
#else
    return f;
#endif
}

__device__ __forceinline__ int PAD(int i) { return i + (i >> 4); }
#define SMEM_LEN (M_ + M_ / 16)

__device__ __forceinline__ float2 cmul(float2 a, float2 b) {
    return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}
__device__ __forceinline__ float2 cmulc(float2 a, float2 b) {  // a * conj(b)
    return make_float2(a.x * b.x + a.y * b.y, a.y * b.x - a.x * b.y);
}
__device__ __forceinline__ float2 cadd(float2 a, float2 b) { return make_float2(a.x + b.x, a.y + b.y); }
__device__ __forceinline__ float2 csub(float2 a, float2 b) { return make_float2(a.x - b.x, a.y - b.y); }
__device__ __forceinline__ float2 conjf2(float2 a) { return make_float2(a.x, -a.y); }
__device__ __forceinline__ float2 times_i(float2 a) { return make_float2(-a.y, a.x); }

// e^(SIGN 2 pi i m / 16); m is a compile-time constant after unrolling, so this folds
template <int SIGN>
__device__ __forceinline__ float2 root16(int m) {
    const float c1 = 0.92387953251128674f, c2 = 0.70710678118654752f, c3 = 0.38268343236508977f;
    float c, s;
    switch (m & 15) {
        case 0: c = 1.f; s = 0.f; break;
        case 1: c = c1; s = c3; break;
        case 2: c = c2; s = c2; break;
        case 3: c = c3; s = c1; break;
        case 4: c = 0.f; s = 1.f; break;
        case 5: c = -c3; s = c1; break;
        case 6: c = -c2; s = c2; break;
        case 7: c = -c1; s = c3; break;
        case 8: c = -1.f; s = 0.f; break;
        case 9: c = -c1; s = -c3; break;
        case 10: c = -c2; s = -c2; break;
        case 11: c = -c3; s = -c1; break;
        case 12: c = 0.f; s = -1.f; break;
        case 13: c = c3; s = -c1; break;
        case 14: c = c2; s = -c2; break;
        default: c = c1; s = -c3; break;
    }
    return make_float2(c, SIGN * s);
}

__host__ __device__ constexpr int ilog2(int r) { return r <= 1 ? 0 : 1 + ilog2(r / 2); }
__host__ __device__ constexpr int bitrev(int i, int bits) {
    return bits == 0 ? 0 : ((i & 1) << (bits - 1)) | bitrev(i >> 1, bits - 1);
}

// one radix-2 level of the in-register DFT: butterflies of span LEN / 2, then the next level
// (a template recursion, so every index is a compile-time constant and a[] stays in registers)
template <int R, int SIGN, int LEN>
__device__ __forceinline__ void dft_levels(float2* a) {
    if constexpr (LEN <= R) {
#pragma unroll
        for (int i = 0; i < R; i += LEN) {
#pragma unroll
            for (int j = 0; j < LEN / 2; ++j) {
                const int m = j * (16 / LEN);  // a constant after unrolling: the branches fold
                const float2 u = a[i + j];
                float2 t = a[i + j + LEN / 2];
                if (m == 4) t = SIGN > 0 ? times_i(t) : make_float2(t.y, -t.x);  // * (SIGN i)
                else if (m != 0) t = cmul(t, root16<SIGN>(m));
                a[i + j] = cadd(u, t);
                a[i + j + LEN / 2] = csub(u, t);
            }
        }
        dft_levels<R, SIGN, 2 * LEN>(a);
    }
}

// in-register DFT of R values (R in 2, 4, 8, 16), natural order in and out: radix-2 DIT
// the bit-reversal permutation, one compile-time swap at a time (a runtime bitrev() would index
// a[] dynamically and push it to local memory)
template <int R, int I>
__device__ __forceinline__ void bitrev_permute(float2* a) {
    if constexpr (I < R) {
        constexpr int J = bitrev(I, ilog2(R));
        if constexpr (I < J) { const float2 t = a[I]; a[I] = a[J]; a[J] = t; }
        bitrev_permute<R, I + 1>(a);
    }
}

template <int R, int SIGN>
__device__ __forceinline__ void dft(float2* a) {
    bitrev_permute<R, 0>(a);
    dft_levels<R, SIGN, 2>(a);
}

// a[r] *= w^r, w = e^(SIGN 2 pi i k / NSR), by repeated products (r < 16: a few ulps); with
// NB = 2 also b[r] *= w^r, the same products (the two rows of the backward share them)
template <int R, int SIGN, int NB>
__device__ __forceinline__ void twiddle_rows(float2* a, float2* b, int k, int nsr) {
    float sn, cs;  // 2 k / NSR is exact in float32: NSR is a power of two
    sincospif((float)(2 * k) / (float)nsr, &sn, &cs);
    const float2 w = make_float2(cs, SIGN * sn);
    float2 wr = w;
#pragma unroll
    for (int r = 1; r < R; ++r) {
        a[r] = cmul(a[r], wr);
        if constexpr (NB == 2) b[r] = cmul(b[r], wr);
        wr = cmul(wr, w);
    }
}
template <int R, int SIGN>
__device__ __forceinline__ void twiddle(float2* a, int k, int nsr) {
    twiddle_rows<R, SIGN, 1>(a, a, k, nsr);
}

// One Stockham stage of radix R at sub-transform size NS (onchip.py: stockham_torch), on NB
// rows at once (s0, and s1 when NB = 2) in place: item j reads s[j + r M/R], is twiddled by
// e^(SIGN 2 pi i (j mod NS) r / (NS R)), DFT_R, and written to s[(j / NS) NS R + j mod NS + r NS].
template <int R>
__device__ __forceinline__ void stage_load(const float2* s, float2* a) {
#pragma unroll
    for (int it = 0; it < E_ / R; ++it) {
        const int j = threadIdx.x + it * THREADS;
#pragma unroll
        for (int r = 0; r < R; ++r) a[it * R + r] = s[PAD(j + r * (M_ / R))];
    }
}

// the stage's second half on one row (NB = 1: s0, a0) or on two with shared twiddles
template <int R, int NS, int SIGN, int NB>
__device__ __forceinline__ void stage_store(float2* s0, float2* a0, float2* s1, float2* a1) {
#pragma unroll
    for (int it = 0; it < E_ / R; ++it) {
        const int j = threadIdx.x + it * THREADS;
        const int k = j % NS;
        if (NS > 1) twiddle_rows<R, SIGN, NB>(a0 + it * R, a1 + it * R, k, NS * R);
        dft<R, SIGN>(a0 + it * R);
        if constexpr (NB == 2) dft<R, SIGN>(a1 + it * R);
        const int base = (j / NS) * NS * R + k;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            s0[PAD(base + r * NS)] = a0[it * R + r];
            if constexpr (NB == 2) s1[PAD(base + r * NS)] = a1[it * R + r];
        }
    }
}

template <int R, int NS, int SIGN, int NB>
__device__ __forceinline__ void stage(float2* s0, float2* s1) {
    float2 a0[E_], a1[E_];  // two named arrays (not a[NB][E]): both stay in registers
    stage_load<R>(s0, a0);
    if constexpr (NB == 2) stage_load<R>(s1, a1);
    __syncthreads();
    if constexpr (NB == 2 && ONCHIP_SHARED_TWIDDLE) {
        stage_store<R, NS, SIGN, 2>(s0, a0, s1, a1);
    } else {
        stage_store<R, NS, SIGN, 1>(s0, a0, s0, a0);
        if constexpr (NB == 2) stage_store<R, NS, SIGN, 1>(s1, a1, s1, a1);
    }
    __syncthreads();
}

// the last stage's radix: what is left of M after the radix-R_MAX stages (radices() in onchip.py)
__host__ __device__ constexpr int last_radix() {
    int rest = M_, last = 1;
    while (rest % R_MAX == 0 && rest > 1) { last = R_MAX; rest /= R_MAX; }
    return rest > 1 ? rest : last;
}
#define NS_LAST (M_ / last_radix())

// The first stage (NS = 1, radix R_MAX, one item per thread) from load(m) = the packed row's
// value m, into s. No barrier: the caller's, once for every row it starts.
template <int SIGN, class Load>
__device__ __forceinline__ void first_stage(float2* s, Load load) {
    float2 a[R_MAX];
    const int j = threadIdx.x;
#pragma unroll
    for (int r = 0; r < R_MAX; ++r) a[r] = load(j + r * THREADS);
    dft<R_MAX, SIGN>(a);
#pragma unroll
    for (int r = 0; r < R_MAX; ++r) s[PAD(j * R_MAX + r)] = a[r];
}

// the stages from NS up to (not including) the last, radix R_MAX each
template <int NS, int SIGN, int NB>
__device__ __forceinline__ void middle_stages(float2* s0, float2* s1) {
    if constexpr (NS < NS_LAST) {
        stage<R_MAX, NS, SIGN, NB>(s0, s1);
        middle_stages<NS * R_MAX, SIGN, NB>(s0, s1);
    }
}

// The last stage, out of s into store(m, value): nothing writes s afterwards, so no barrier.
template <int SIGN, class Store>
__device__ __forceinline__ void last_stage(const float2* s, Store store) {
    constexpr int R = last_radix(), ITEMS = E_ / R;
    float2 a[E_];
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
        const int j = threadIdx.x + it * THREADS;
#pragma unroll
        for (int r = 0; r < R; ++r) a[it * R + r] = s[PAD(j + r * NS_LAST)];
    }
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
        const int j = threadIdx.x + it * THREADS;  // j < NS_LAST: j mod NS = j, j / NS = 0
        twiddle<R, SIGN>(a + it * R, j, M_);
        dft<R, SIGN>(a + it * R);
#pragma unroll
        for (int r = 0; r < R; ++r) store(j + r * NS_LAST, a[it * R + r]);
    }
}

// forward FFT of NB rows from global memory (load0, load1) into s0, s1, natural order
template <int NB, class Load0, class Load1>
__device__ __forceinline__ void forward_fft(float2* s0, float2* s1, Load0 load0, Load1 load1) {
    first_stage<-1>(s0, load0);
    if constexpr (NB == 2) first_stage<-1>(s1, load1);
    __syncthreads();
    middle_stages<R_MAX, -1, NB>(s0, s1);
    stage<last_radix(), NS_LAST, -1, NB>(s0, s1);
}

// Unpack the real spectrum at bins k and M-k from the packed transform Z (Z[M] = Z[0]):
//   X[k] = (Z[k] + conj Z[M-k]) / 2 - i (Z[k] - conj Z[M-k]) e^(-i pi k / M) / 2
__device__ __forceinline__ void unpack_pair(float2 zk, float2 zm, float2 e, float2& xk, float2& xm) {
    const float2 ek = e, em = make_float2(-e.x, e.y);  // e^(-i pi (M-k)/M) = -conj(e)
    xk = csub(cadd(zk, conjf2(zm)), times_i(cmul(csub(zk, conjf2(zm)), ek)));
    xm = csub(cadd(zm, conjf2(zk)), times_i(cmul(csub(zm, conjf2(zk)), em)));
    xk = make_float2(0.5f * xk.x, 0.5f * xk.y);
    xm = make_float2(0.5f * xm.x, 0.5f * xm.y);
}

// Pack the half spectrum Y at k and M-k for the real inverse (spectral.py's packing):
//   Zy[k] = (Y[k] + conj Y[M-k]) + i (Y[k] - conj Y[M-k]) e^(i pi k / M)
__device__ __forceinline__ void pack_pair(float2 yk, float2 ym, float2 e, float2& zk, float2& zm) {
    const float2 ik = conjf2(e), im = make_float2(-e.x, -e.y);  // e^(i pi (M-k)/M) = -e
    zk = cadd(cadd(yk, conjf2(ym)), times_i(cmul(csub(yk, conjf2(ym)), ik)));
    zm = cadd(cadd(ym, conjf2(yk)), times_i(cmul(csub(ym, conjf2(yk)), im)));
}

__device__ __forceinline__ float2 twiddle_n(int k) {  // e^(-i pi k / M) = e^(-2 pi i k / n)
    float sn, cs;
    sincospif((float)k / (float)M_, &sn, &cs);
    return make_float2(cs, -sn);
}

// the packed row's value m: (x[2m], x[2m+1]) with x = a (* b, rounded to the I/O dtype), zero
// past L; a's time stride is a_st (b's is 1)
__device__ __forceinline__ float2 packed_value(const io_t* a, const io_t* b, int L, int m,
                                               int a_st = 1) {
    float x[2] = {0.f, 0.f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int t = 2 * m + h;
        if (t < L) {
            const float at = io_load(a + (long long)t * a_st);
            x[h] = b ? io_round(at * io_load(b + t)) : at;
        }
    }
    return make_float2(x[0], x[1]);
}

// the inverse FFT of NB rows in place up to its last stage (which the caller runs into global)
template <int NB>
__device__ __forceinline__ void inverse_fft_but_last(float2* s0, float2* s1) {
    stage<R_MAX, 1, 1, NB>(s0, s1);
    middle_stages<R_MAX, 1, NB>(s0, s1);
}

extern "C" __global__ void __launch_bounds__(THREADS) onchip_fwd(
    const io_t* v, const io_t* pre, const io_t* post, const float2* kspec, io_t* z_out,
    io_t* y_out, int L, int D, int v_sb, int v_sd, int pre_sb, int pre_sd, int post_sb,
    int post_sd, int z_sb, int z_sd, int y_sb, int y_sd, int y_st, int flags) {
    // flags: 1 pre given, 2 post given (y = post * round(z)), 4 write z, 8 write y
    // y's time stride y_st may be the channel count: y written straight into the (B, L, D)
    // layout out_proj reads (2-byte stores a row apart; neighbouring channels' rows run at
    // the same time, so L2 merges them into whole sectors)
    extern __shared__ float2 s[];
    const int b = blockIdx.x / D, d = blockIdx.x % D;
    const io_t* vr = v + (long long)b * v_sb + (long long)d * v_sd;
    const io_t* pr = (flags & 1) ? pre + (long long)b * pre_sb + (long long)d * pre_sd : nullptr;
    auto load_w = [=](int m) { return packed_value(vr, pr, L, m); };
    forward_fft<1>(s, s, load_w, load_w);
    const float2* kr = kspec + (long long)d * (M_ + 1);
    for (int k = threadIdx.x; k <= M_ / 2; k += THREADS) {
        const int km = (M_ - k) & (M_ - 1);
        const float2 e = twiddle_n(k);
        float2 xk, xm, zk, zm;
        unpack_pair(s[PAD(k)], s[PAD(km)], e, xk, xm);
        pack_pair(cmul(xk, kr[k]), cmul(xm, kr[M_ - k]), e, zk, zm);
        s[PAD(k)] = zk;
        if (k != 0 && km != k) s[PAD(km)] = zm;
    }
    __syncthreads();
    inverse_fft_but_last<1>(s, s);  // unscaled: the 1/n rides on K'
    io_t* zr = z_out + (long long)b * z_sb + (long long)d * z_sd;
    io_t* yr = y_out + (long long)b * y_sb + (long long)d * y_sd;
    const io_t* qr = (flags & 2) ? post + (long long)b * post_sb + (long long)d * post_sd : nullptr;
    auto store_z = [=](int m, float2 c) {  // z[2m] = Re, z[2m+1] = Im; y = post * round(z)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 2 * m + h;
            if (t >= L) break;
            const float zt = h ? c.y : c.x;
            const io_t zq = to_io(zt);
            if (flags & 4) zr[t] = zq;
            if (flags & 8) {
#if ONCHIP_BF16
                const float zf = __uint_as_float(((unsigned int)zq) << 16);
#else
                const float zf = zt;
#endif
                yr[(long long)t * y_st] = (flags & 2) ? to_io(io_load(qr + t) * zf) : zq;
            }
        }
    };
    last_stage<1>(s, store_z);
}

// The backward's pair pass and inverse for NB = 2 (dk wanted: both transforms interleaved) or
// NB = 1 (dw only); the forward transforms are already in sg (and sw).
template <int NB, class StoreDw, class StoreDk>
__device__ __forceinline__ void backward_rest(float2* sg, float2* sw, const float2* kr,
                                              StoreDw store_dw, StoreDk store_dk) {
    for (int k = threadIdx.x; k <= M_ / 2; k += THREADS) {
        const int km = (M_ - k) & (M_ - 1);
        const float2 e = twiddle_n(k);
        float2 gk, gm, zk, zm;
        unpack_pair(sg[PAD(k)], sg[PAD(km)], e, gk, gm);
        if constexpr (NB == 2) {
            float2 wk, wm;
            unpack_pair(sw[PAD(k)], sw[PAD(km)], e, wk, wm);
            pack_pair(cmulc(gk, wk), cmulc(gm, wm), e, zk, zm);
            sw[PAD(k)] = zk;
            if (k != 0 && km != k) sw[PAD(km)] = zm;
        }
        pack_pair(cmulc(gk, kr[k]), cmulc(gm, kr[M_ - k]), e, zk, zm);
        sg[PAD(k)] = zk;
        if (k != 0 && km != k) sg[PAD(km)] = zm;
    }
    __syncthreads();
    inverse_fft_but_last<NB>(sg, sw);
    last_stage<1>(sg, store_dw);
    if constexpr (NB == 2) last_stage<1>(sw, store_dk);
}

extern "C" __global__ void __launch_bounds__(THREADS) onchip_bwd(
    const io_t* dy, const io_t* post, const io_t* z, const io_t* v, const io_t* pre,
    const float2* kspec, io_t* dv, io_t* dpre, io_t* dpost, float* dk, int L, int D, int taps,
    double inv_n, int dy_sb, int dy_sd, int dy_st, int post_sb, int post_sd, int z_sb, int z_sd,
    int v_sb, int v_sd, int pre_sb, int pre_sd, int dv_sb, int dv_sd, int dpre_sb, int dpre_sd,
    int dpost_sb, int dpost_sd, int flags) {
    // flags: 1 pre given (dpre = dw * v, dv = dw * pre), 2 post given (g = dy * post), 4 dk
    // wanted, 8 dpost = dy * z wanted (with post). dy's time stride dy_st may be the channel
    // count (dy in the (B, L, D) layout, read straight; see onchip_fwd's y)
    // dk: (B, D, taps) float32, this row's sum_t w[t - s] g[t] (the caller sums over B)
    extern __shared__ float2 s[];
    float2* sg = s;
    float2* sw = s + SMEM_LEN;
    const int b = blockIdx.x / D, d = blockIdx.x % D;
    const io_t* gr = dy + (long long)b * dy_sb + (long long)d * dy_sd;
    const io_t* qr = (flags & 2) ? post + (long long)b * post_sb + (long long)d * post_sd : nullptr;
    const io_t* vr = v + (long long)b * v_sb + (long long)d * v_sd;
    const io_t* pr = (flags & 1) ? pre + (long long)b * pre_sb + (long long)d * pre_sd : nullptr;
    const float2* kr = kspec + (long long)d * (M_ + 1);
    io_t* dvr = dv + (long long)b * dv_sb + (long long)d * dv_sd;
    io_t* dpr = (flags & 1) ? dpre + (long long)b * dpre_sb + (long long)d * dpre_sd : nullptr;
    float* dkr = dk + ((long long)b * D + d) * taps;
    const float scale = (float)inv_n;
    const io_t* zr = (flags & 8) ? z + (long long)b * z_sb + (long long)d * z_sd : nullptr;
    io_t* dqr = (flags & 8) ? dpost + (long long)b * dpost_sb + (long long)d * dpost_sd : nullptr;
    auto load_g = [=](int m) {  // g = dy * post, and dpost = dy * z on the way (each m once)
        if (flags & 8) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int t = 2 * m + h;
                if (t < L) dqr[t] = to_io(io_load(gr + (long long)t * dy_st) * io_load(zr + t));
            }
        }
        return packed_value(gr, qr, L, m, dy_st);
    };
    auto load_w = [=](int m) { return packed_value(vr, pr, L, m); };
    auto store_dw = [=](int m, float2 c) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 2 * m + h;
            if (t >= L) break;
            const float dw = h ? c.y : c.x;
            if (flags & 1) {
                dvr[t] = to_io(dw * io_load(pr + t));
                dpr[t] = to_io(dw * io_load(vr + t));
            } else {
                dvr[t] = to_io(dw);
            }
        }
    };
    auto store_dk = [=](int m, float2 c) {
        if (2 * m < taps) dkr[2 * m] = scale * c.x;
        if (2 * m + 1 < taps) dkr[2 * m + 1] = scale * c.y;
    };
    if (flags & 4) {
        forward_fft<2>(sg, sw, load_g, load_w);
        backward_rest<2>(sg, sw, kr, store_dw, store_dk);
    } else {
        forward_fft<1>(sg, sg, load_g, load_g);
        backward_rest<1>(sg, sg, kr, store_dw, store_dk);
    }
}

// ------------------------------------------------------------------------------------------
// The four-step engine's row stage on chip (hyenadna/ops/fourstep.py: row_conv_forward,
// row_conv_backward). Rows of M complex float32 values, contiguous, one block per row; the
// filter's rows (K'/n in the four-step layout) repeat every k_rows rows (batch broadcast).
// cuFFT runs this stage as three kernels per direction (transform, product, inverse), each a
// full read and write of the complex rows; here a row crosses HBM once per direction.
// ------------------------------------------------------------------------------------------

// Blocks per SM the row kernels are compiled for: ONCHIP_ROW_SM_THREADS / THREADS (at least 1;
// onchip.ROW_SM_THREADS). Unbounded (0), the backward takes 86-96 registers at M = 4096: one
// block of 512 threads per SM; bounded for 1024 threads it fits 64 registers, 32 bytes spilled.
#ifndef ONCHIP_ROW_SM_THREADS
#define ONCHIP_ROW_SM_THREADS 1024
#endif
#define ROW_MIN_BLOCKS (ONCHIP_ROW_SM_THREADS > THREADS ? ONCHIP_ROW_SM_THREADS / THREADS : 1)

#if ONCHIP_ROWS_PACKED
typedef unsigned int row_t;  // the rows (not the filter's spectrum): packed bf16 pairs
#else
typedef float2 row_t;
#endif

// x <- unscaled inverse FFT of FFT(x) * K, in place (the 1/n rides on K'/n)
extern "C" __global__ void __launch_bounds__(THREADS, ROW_MIN_BLOCKS) rows_fwd(
    row_t* x, const float2* kspec, int k_rows) {
    extern __shared__ float2 s[];
    row_t* xr = x + (long long)blockIdx.x * M_;
    const float2* kr = kspec + (long long)(blockIdx.x % k_rows) * M_;
    auto load = [=](int m) { return spec_load(xr + m); };
    forward_fft<1>(s, s, load, load);
    for (int m = threadIdx.x; m < M_; m += THREADS) s[PAD(m)] = cmul(s[PAD(m)], kr[m]);
    __syncthreads();
    inverse_fft_but_last<1>(s, s);
    auto store = [=](int m, float2 c) { spec_store(xr + m, c); };
    last_stage<1>(s, store);
}

// In place, with G = FFT(g) and W = FFT(w): g <- IFFT(G * conj(K)) and, when flags & 1,
// w <- IFFT(G * conj(W)) (unscaled; the filter's gradient, per row: the caller sums the batch)
extern "C" __global__ void __launch_bounds__(THREADS, ROW_MIN_BLOCKS) rows_bwd(
    row_t* g, row_t* w, const float2* kspec, int k_rows, int flags) {
    extern __shared__ float2 s[];
    float2* sg = s;
    float2* sw = s + SMEM_LEN;
    row_t* gr = g + (long long)blockIdx.x * M_;
    row_t* wr = w + (long long)blockIdx.x * M_;
    const float2* kr = kspec + (long long)(blockIdx.x % k_rows) * M_;
    auto load_g = [=](int m) { return spec_load(gr + m); };
    auto load_w = [=](int m) { return spec_load(wr + m); };
    auto store_g = [=](int m, float2 c) { spec_store(gr + m, c); };
    auto store_w = [=](int m, float2 c) { spec_store(wr + m, c); };
    if (flags & 1) {
        forward_fft<2>(sg, sw, load_g, load_w);
        for (int m = threadIdx.x; m < M_; m += THREADS) {
            const float2 gm = sg[PAD(m)];
            sw[PAD(m)] = cmulc(gm, sw[PAD(m)]);
            sg[PAD(m)] = cmulc(gm, kr[m]);
        }
        __syncthreads();
        inverse_fft_but_last<2>(sg, sw);
        last_stage<1>(sg, store_g);
        last_stage<1>(sw, store_w);
    } else {
        forward_fft<1>(sg, sg, load_g, load_g);
        for (int m = threadIdx.x; m < M_; m += THREADS) sg[PAD(m)] = cmulc(sg[PAD(m)], kr[m]);
        __syncthreads();
        inverse_fft_but_last<1>(sg, sg);
        last_stage<1>(sg, store_g);
    }
}
