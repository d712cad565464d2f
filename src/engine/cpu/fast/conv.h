// Fused 2-D convolution for the fast executor: conv + bias, then optionally
// SiLU (x * sigmoid(x)), then optionally + a residual tensor. Output is always
// blocked (see blocked.h); input is blocked or plain NCHW (the graph input).
// Two implementations: oneDNN (when built with it) and our own direct kernel.
#pragma once

#include <memory>

#include "core/tensor.h"
#include "engine/cpu/fast/blocked.h"
#include "engine/cpu/fast/thread_pool.h"

namespace yoloc {
namespace fast {

struct ConvSpec {
    BlockedShape in, out;
    int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
    int64_t pt = 0, pl = 0, pb = 0, pr = 0;
    bool src_plain = false;  // input is NCHW, not blocked
    bool silu = false;
    bool residual = false;   // dst = epilogue(conv) + residual (blocked, same geometry as dst)
};

class ConvKernel {
public:
    virtual ~ConvKernel() = default;
    virtual void run(const float* src, float* dst, const float* residual) = 0;
    virtual const char* name() const = 0;
};

// Our own kernel: always available. w: [OC, IC, KH, KW], b: [OC] or empty.
std::unique_ptr<ConvKernel> make_direct_conv(const ConvSpec& s, const Tensor& w, const Tensor& b, ThreadPool* pool);

// True when the direct kernel uses its AVX-512 register tile (24 accumulators), the
// one that is competitive with oneDNN.
bool direct_conv_wide();

// The direct kernel's AVX2 + FMA form (fast/conv_avx2.cpp), which make_direct_conv
// picks on an x86-64 CPU with AVX2 and FMA but without AVX-512. direct_conv_avx2():
// this CPU can run it; make_direct_conv_avx2 returns nullptr on other architectures.
bool direct_conv_avx2();
std::unique_ptr<ConvKernel> make_direct_conv_avx2(const ConvSpec& s, const Tensor& w, const Tensor& b,
                                                  ThreadPool* pool);

// oneDNN kernel; nullptr when yoloc was built without oneDNN or oneDNN has no
// implementation for this spec.
std::unique_ptr<ConvKernel> make_dnnl_conv(const ConvSpec& s, const Tensor& w, const Tensor& b);
// oneDNN is built in and has a JIT (not reference) kernel for the blocked layout on this CPU.
bool dnnl_available();
// Sets oneDNN's (OpenMP) thread count for the calling thread; no-op without oneDNN.
void dnnl_set_threads(int threads);

// SiLU on plain floats with the same exp approximation as the direct kernel.
void silu_inplace(float* x, int64_t n);

}  // namespace fast
}  // namespace yoloc
