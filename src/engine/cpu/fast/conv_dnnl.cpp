// oneDNN convolution with fused post-ops (swish, binary add for the residual).
// Weights are reordered once into the layout the primitive picked (format any).
#include "engine/cpu/fast/conv.h"

#if defined(YOLOC_HAVE_DNNL)
#include <dlfcn.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace yoloc {
namespace fast {

#if defined(YOLOC_HAVE_DNNL)

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine() {
    static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    return eng;
}

class DnnlConv : public ConvKernel {
public:
    DnnlConv(const ConvSpec& s, const Tensor& w, const Tensor& b) : s_(s), stream_(cpu_engine()) {
        auto& eng = cpu_engine();
        using dims = dnnl::memory::dims;
        dnnl::memory::desc src_md({s.in.n, s.in.c, s.in.h, s.in.w}, dt::f32, s.src_plain ? tag::nchw : tag::nChw16c);
        dnnl::memory::desc dst_md({s.out.n, s.out.c, s.out.h, s.out.w}, dt::f32, tag::nChw16c);
        dnnl::memory::desc w_any({s.out.c, s.in.c, s.kh, s.kw}, dt::f32, tag::any);
        dnnl::memory::desc b_md({s.out.c}, dt::f32, tag::x);
        dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                          src_md, w_any, b_md, dst_md, dims{s.sh, s.sw}, dims{s.dh - 1, s.dw - 1},
                                          dims{s.pt, s.pl}, dims{s.pb, s.pr});
        dnnl::post_ops po;
        if (s.silu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.f, 0.f);
        if (s.residual) po.append_binary(dnnl::algorithm::binary_add, dst_md);
        dnnl::primitive_attr attr;
        attr.set_post_ops(po);
        pd_ = dnnl::convolution_forward::primitive_desc(d, attr, eng);
        impl_ = pd_.impl_info_str();
        // oneDNN falls back to its reference loops ("ref:any") for shapes its JIT kernels
        // do not take, e.g. a pruned 8-channel tensor in the 16-blocked layout: 7x slower
        // than our direct kernel on a pruned 64-pixel YOLOv8n (6.8 vs 0.8 ms, 1 thread).
        // Decline, so the caller uses the direct kernel.
        if (impl_.compare(0, 3, "ref") == 0) throw NotFast();
        prim_ = dnnl::convolution_forward(pd_);

        // Weights: user OIHW -> the primitive's layout, once.
        dnnl::memory::desc w_user({s.out.c, s.in.c, s.kh, s.kw}, dt::f32, tag::oihw);
        dnnl::memory wu(w_user, eng, const_cast<float*>(w.data<float>()));
        weights_ = dnnl::memory(pd_.weights_desc(), eng);
        dnnl::reorder(wu, weights_).execute(stream_, wu, weights_);
        bias_ = dnnl::memory(b_md, eng);
        float* bp = static_cast<float*>(bias_.get_data_handle());
        for (int64_t o = 0; o < s.out.c; ++o) bp[o] = b.empty() ? 0.f : b.data<float>()[o];
        stream_.wait();
        src_ = dnnl::memory(src_md, eng, nullptr);
        dst_ = dnnl::memory(dst_md, eng, nullptr);
        res_ = dnnl::memory(dst_md, eng, nullptr);
    }
    struct NotFast {};

    void run(const float* src, float* dst, const float* residual) override {
        src_.set_data_handle(const_cast<float*>(src));
        dst_.set_data_handle(dst);
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst_}};
        if (s_.residual) {
            res_.set_data_handle(const_cast<float*>(residual));
            args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(s_.silu ? 1 : 0) | DNNL_ARG_SRC_1] = res_;
        }
        prim_.execute(stream_, args);
        stream_.wait();
    }
    const char* name() const override { return impl_.c_str(); }

private:
    ConvSpec s_;
    dnnl::stream stream_;
    dnnl::convolution_forward::primitive_desc pd_;
    dnnl::convolution_forward prim_;
    dnnl::memory weights_, bias_, src_, dst_, res_;
    std::string impl_;
};

}  // namespace

std::unique_ptr<ConvKernel> make_dnnl_conv(const ConvSpec& s, const Tensor& w, const Tensor& b) {
    try {
        return std::unique_ptr<ConvKernel>(new DnnlConv(s, w, b));
    } catch (const dnnl::error&) {
        return nullptr;  // no implementation for this spec: the caller uses the direct kernel
    } catch (const DnnlConv::NotFast&) {
        return nullptr;  // only the reference implementation: same
    }
}

// Built in, and with a JIT kernel for the 16-channel blocked layout on this CPU. oneDNN
// 2.6 has those for AVX-512 only: on an AVX2 machine every conv would get its reference
// loops (declined above), so the executor plans with its own kernels from the start.
bool dnnl_available() {
    static const bool fast = [] {
        ConvSpec s;
        s.in = {1, 16, 8, 8};
        s.out = {1, 16, 8, 8};
        s.kh = s.kw = 3;
        s.pt = s.pl = s.pb = s.pr = 1;
        Tensor w(DType::Float32, {16, 16, 3, 3}), b(DType::Float32, {16});
        return make_dnnl_conv(s, w, b) != nullptr;
    }();
    return fast;
}

void dnnl_set_threads(int threads) {
    // Debian's oneDNN threads with OpenMP; libgomp is loaded with it. Looked up at
    // run time so that the library does not need -fopenmp itself.
    using SetFn = void (*)(int);
    static SetFn fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    if (fn && threads > 0) fn(threads);
}

#else

std::unique_ptr<ConvKernel> make_dnnl_conv(const ConvSpec&, const Tensor&, const Tensor&) { return nullptr; }
bool dnnl_available() { return false; }
void dnnl_set_threads(int) {}

#endif

}  // namespace fast
}  // namespace yoloc
