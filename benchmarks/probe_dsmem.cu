// The exchange a thread-block-cluster FFT would make (benchmarks/NOTES_gpu.md, the cluster plan):
// 8 CTAs of a cluster each hold Q = 8192 complex float32 values (64 KiB) in shared memory; per
// round, thread t of CTA s reads point q = s * Q/8 + t from all 8 CTAs (7 of them remote), mixes
// the 8 values (a length-8 sum and difference, so none is dead), waits for the cluster, and
// stores value p back to CTA p at q. With REMOTE = 0 the same code reads and writes its own
// CTA's buffer at 8 points a stride of Q/8 apart (plain shared memory: the reference).
// benchmarks/probe_dsmem.py compiles this with NVRTC (sm_90), cluster_ops.cuh's text in front,
// and times rounds per second.

#define P 8
#define Q 8192
#define THREADS (Q / P)

extern "C" __global__ void __cluster_dims__(P, 1, 1) __launch_bounds__(THREADS)
    dsmem_exchange(float2* out, int rounds, int remote) {
    extern __shared__ float2 buf[];
    const unsigned rank = cluster_rank();
    const int t = threadIdx.x;
    for (int i = t; i < Q; i += THREADS) buf[i] = make_float2((float)(rank * Q + i), 0.f);
    cluster_sync();
    const unsigned base = (unsigned)__cvta_generic_to_shared(buf);
    const int q = rank * THREADS + t;
    for (int r = 0; r < rounds; ++r) {
        float2 v[P];
#pragma unroll
        for (int p = 0; p < P; ++p)
            v[p] = remote ? load_cluster(map_rank(base + 8u * q, p)) : buf[p * THREADS + t];
        float2 w[P];
#pragma unroll
        for (int p = 0; p < P; ++p) {  // a sum and difference of neighbours, scaled to stay O(1)
            const float2 a = v[p], b = v[(p + 1) % P];
            w[p] = (p & 1) ? make_float2(0.5f * (a.x - b.x), 0.5f * (a.y - b.y))
                           : make_float2(0.5f * (a.x + b.x), 0.5f * (a.y + b.y));
        }
        cluster_sync();  // every CTA has read before any is overwritten
#pragma unroll
        for (int p = 0; p < P; ++p) {
            if (remote) store_cluster(map_rank(base + 8u * q, p), w[p]);
            else buf[p * THREADS + t] = w[p];
        }
        cluster_sync();
    }
    out[(long long)blockIdx.x * THREADS + t] = buf[q];
    cluster_sync();  // no CTA leaves while another may still read its shared memory
}
