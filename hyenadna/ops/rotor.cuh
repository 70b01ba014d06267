// (cos, sin)(2 pi j2 k / n) for k = 0, 1, 2, ... by rotating k times from (cos, sin)(2 pi j2 / n),
// itself from sincospif of an exact argument: ~1 ulp per step (2^-19 relative at k = 16, far
// below the bf16 I/O's 2^-9), and just two twiddle values live. Shared by columns.cu and
// rowsplit.cu (their .py files put this text in front of them).
struct Rotor {
    float c1, s1, c, s;
    __device__ __forceinline__ Rotor(int j2, int n) : c(1.0f), s(0.0f) {
        sincospif(2.0f * (float)j2 / (float)n, &s1, &c1);
    }
    __device__ __forceinline__ void step() {
        const float c_next = c * c1 - s * s1;
        s = s * c1 + c * s1;
        c = c_next;
    }
};
