// In-block split-K of the tensor-core conv kernels (fp16 in conv_mma.cu, INT8 in
// conv_int8.cu): SK warp groups each sum part of K for the same BM x BN output tile,
// in the mma.sync accumulator layout (warp tile WM x WN, MT x NT fragments of 16 x 8).
#pragma once

#include <cuda_runtime.h>

namespace yoloc {
namespace cuda {

#if defined(__CUDACC__)
template <typename T>
struct SplitkPair;
template <>
struct SplitkPair<float> {
    using type = float2;
    static __device__ __forceinline__ float2 make(float a, float b) { return make_float2(a, b); }
};
template <>
struct SplitkPair<int> {
    using type = int2;
    static __device__ __forceinline__ int2 make(int a, int b) { return make_int2(a, b); }
};

// Groups 1.. leave their sums in `red` ((SK - 1) x BM x BN values of shared memory that is
// free by now) and group 0 adds them up, in group order. Every thread of the block calls
// it; afterwards only group 0 (kg == 0) holds the totals.
template <typename T, int MT, int NT, int WM, int WN, int BM, int BN, int SK>
__device__ __forceinline__ void splitk_sum(T (&acc)[MT][NT][4], T* red, int kg, int wm, int wn, int lane) {
    using P = typename SplitkPair<T>::type;
    if (kg > 0) {
        T* r = red + (kg - 1) * BM * BN;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = wm * WM + mt * 16 + (lane >> 2) + h * 8;
                    const int col = wn * WN + nt * 8 + (lane & 3) * 2;
                    *reinterpret_cast<P*>(r + row * BN + col) = SplitkPair<T>::make(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
                }
    }
    __syncthreads();
    if (kg > 0) return;
#pragma unroll
    for (int g = 0; g < SK - 1; ++g) {
        const T* r = red + g * BM * BN;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = wm * WM + mt * 16 + (lane >> 2) + h * 8;
                    const int col = wn * WN + nt * 8 + (lane & 3) * 2;
                    const P v = *reinterpret_cast<const P*>(r + row * BN + col);
                    acc[mt][nt][2 * h] += v.x;
                    acc[mt][nt][2 * h + 1] += v.y;
                }
    }
}
#endif

}  // namespace cuda
}  // namespace yoloc
