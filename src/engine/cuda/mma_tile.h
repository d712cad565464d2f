// Accumulator-tile helpers shared by the tensor-core conv kernels (conv_mma.cu,
// conv_int8.cu): a warp's MT x NT mma accumulators (m16n8 fragments, 4 values each:
// rows lane/4 and lane/4 + 8, columns 2 * (lane % 4) + {0, 1}) stored to and added from
// a BM x BN row-major tile in shared memory, to sum the partial sums of in-block split-K
// warp groups. C++14, no architecture-specific instructions.
#pragma once

namespace yoloc {
namespace cuda {

template <typename T>
struct Pair;
template <>
struct Pair<float> {
    using type = float2;
};
template <>
struct Pair<int> {
    using type = int2;
};

template <int MT, int NT, int WM, int WN, int BN, typename T>
__device__ __forceinline__ void store_acc_tile(T* tile, const T (&acc)[MT][NT][4], int wm, int wn, int lane) {
    using P = typename Pair<T>::type;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = wm * WM + mt * 16 + (lane >> 2) + h * 8;
                const int col = wn * WN + nt * 8 + (lane & 3) * 2;
                P v;
                v.x = acc[mt][nt][2 * h];
                v.y = acc[mt][nt][2 * h + 1];
                *reinterpret_cast<P*>(tile + row * BN + col) = v;
            }
}

template <int MT, int NT, int WM, int WN, int BN, typename T>
__device__ __forceinline__ void add_acc_tile(T (&acc)[MT][NT][4], const T* tile, int wm, int wn, int lane) {
    using P = typename Pair<T>::type;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = wm * WM + mt * 16 + (lane >> 2) + h * 8;
                const int col = wn * WN + nt * 8 + (lane & 3) * 2;
                const P v = *reinterpret_cast<const P*>(tile + row * BN + col);
                acc[mt][nt][2 * h] += v.x;
                acc[mt][nt][2 * h + 1] += v.y;
            }
}

}  // namespace cuda
}  // namespace yoloc
