// How the engine launches its kernels.
//
// Shared-memory carveout: every kernel of the engine asks for the same L1 / shared
// memory split of the SM (the most shared memory). The driver otherwise picks a split
// per kernel from its shared-memory use; an SM must drain before it switches splits,
// and blocks of kernels with different splits cannot share an SM, which serialized
// consecutive kernels of different tile shapes and the Detect heads beside the neck.
//
// Programmatic dependent launch (PDL, sm_90+ with CUDA 12.3+): a kernel launched with
// the programmatic-serialization attribute may start while the kernel before it in
// the stream still runs. It must wait (griddepcontrol.wait) before it reads anything
// that kernel wrote; work that needs no such data (index math, weight loads) goes
// before the wait and so overlaps the previous kernel's tail. After its own wait a
// kernel lets its successor launch (griddepcontrol.launch_dependents), so that the
// successor's launch latency and prologue hide under this kernel's run. Below sm_90,
// and in CUDA 10.2 builds for the Jetson Nano, both are no-ops and launches are plain.
#pragma once

#include <cuda_runtime.h>

namespace yoloc {
namespace cuda {

// Whether launches use PDL here (sm_90+ device, CUDA 12.3+ runtime; YOLOC_PDL=0 turns
// it off). Cached; the first call must happen outside stream capture.
bool pdl_enabled();

// The carveout every kernel asks for, in percent of the maximum shared memory, or -1 to
// leave the driver's choice per kernel: YOLOC_CARVEOUT (0-100 or -1) if set, else what
// the engine being launched asked for on this thread (set_launch_carveout), else 100.
// Passed as a launch attribute (CUDA 12.8+), so no kernel is loaded before it is used:
// setting it as a function attribute on every kernel up front loaded them all (lazy
// module loading is the default) and cost 6 MB of device memory.
int kernel_carveout();
// The carveout for this thread's launches until reset (kCarveoutUnset); returns the
// previous one. The runtime sets it around each engine's launches and graph capture
// (engine_carveout in runtime.cpp).
constexpr int kCarveoutUnset = -2;
int set_launch_carveout(int pct);

#if defined(__CUDACC__)
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Launches `fn` with the engine's launch attributes: programmatic dependent launch when
// `pdl` and pdl_enabled() (the kernel must then call pdl_wait() before it reads its
// inputs), and the shared-memory carveout. Plain <<<>>> where neither applies.
// cluster_z > 1: thread-block clusters of (1, 1, cluster_z) (sm_90, CUDA 12; the grid's z
// must be a multiple; the conv kernels split K across a cluster, conv_mma.cu).
template <typename... KArgs, typename... Args>
void launch_kernel_ex(void (*fn)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, bool pdl,
                      int cluster_z, Args... args) {
#if CUDART_VERSION >= 12030
    cudaLaunchAttribute attr[3];
    unsigned n = 0;
    if (cluster_z > 1) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = 1;
        attr[n].val.clusterDim.y = 1;
        attr[n].val.clusterDim.z = unsigned(cluster_z);
        ++n;
    }
    if (pdl && pdl_enabled()) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n].val.programmaticStreamSerializationAllowed = 1;
        ++n;
    }
#if CUDART_VERSION >= 12080
    const int pct = kernel_carveout();
    if (pct >= 0) {
        attr[n].id = cudaLaunchAttributePreferredSharedMemoryCarveout;
        attr[n].val.sharedMemCarveout = unsigned(pct);
        ++n;
    }
#endif
    if (n > 0) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.dynamicSmemBytes = smem;
        cfg.stream = s;
        cfg.attrs = attr;
        cfg.numAttrs = n;
        cudaLaunchKernelEx(&cfg, fn, args...);
        return;
    }
#endif
    (void)pdl;
    (void)cluster_z;
    fn<<<grid, block, smem, s>>>(args...);
}

template <typename... KArgs, typename... Args>
void launch_kernel(void (*fn)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, bool pdl,
                   Args... args) {
    launch_kernel_ex(fn, grid, block, smem, s, pdl, 1, args...);
}

// A kernel that waits for its predecessor with pdl_wait().
template <typename... KArgs, typename... Args>
void launch_pdl(void (*fn)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args... args) {
    launch_kernel(fn, grid, block, smem, s, true, args...);
}
#endif

// The element-wise kernels (kernels.cu, generic.cu) are grid-stride loops: this many
// threads per block, the grid capped so that huge tensors do not overflow it.
constexpr int kGridStrideThreads = 256;
inline unsigned grid_stride_blocks(long long n) {
    long long b = (n + kGridStrideThreads - 1) / kGridStrideThreads;
    if (b < 1) b = 1;
    if (b > 65535LL * 8) b = 65535LL * 8;
    return unsigned(b);
}

// NAME_kernel<T>(ARGS a) runs BODY<T>(a, i) for every i below ITEMS(a). Each waits for the
// kernel before it (a no-op without PDL), then lets the next one launch.
#define YOLOC_GRID_STRIDE_KERNEL(NAME, ARGS, BODY, ITEMS)                                       \
    template <typename T>                                                                         \
    __global__ void NAME##_kernel(ARGS a) {                                                       \
        pdl_wait();                                                                               \
        pdl_launch_dependents();                                                                  \
        const long long total = ITEMS(a);                                                         \
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;           \
             i += (long long)gridDim.x * blockDim.x)                                              \
            BODY<T>(a, i);                                                                        \
    }

}  // namespace cuda
}  // namespace yoloc
