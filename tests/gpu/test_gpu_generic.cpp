// The generic tier's CUDA kernels (engine/cuda/generic.h) on the cases the host test runs
// through the element functions (generic_op_cases.h), against the reference kernels;
// every kernel variant of MatMul and TopK. Then GPU time per op at YOLO shapes (the
// lines starting PERF), like ggml's test-backend-ops perf mode.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/cuda/generic.h"
#include "generic_op_cases.h"

using namespace yoloc;
using namespace yoloc_test;

namespace {

#define CUDA_OK(call)                                                                     \
    do {                                                                                  \
        const cudaError_t e_ = (call);                                                    \
        ASSERT_EQ(e_, cudaSuccess) << #call << ": " << cudaGetErrorString(e_);            \
    } while (0)

// Launches on the default stream; remembers the last launch so that it can be timed.
class GpuBackend : public GenericBackend {
public:
    ~GpuBackend() override {
        for (void* p : blocks_) cudaFree(p);
    }
    void* alloc(size_t bytes) override {
        void* p = nullptr;
        EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
        EXPECT_EQ(cudaMemset(p, 0xFF, bytes), cudaSuccess);
        blocks_.push_back(p);
        return p;
    }
    void upload(void* dst, const void* src, size_t bytes) override {
        EXPECT_EQ(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    }
    void download(void* dst, const void* src, size_t bytes) override {
        const cudaError_t e = cudaDeviceSynchronize();
        EXPECT_EQ(e, cudaSuccess) << cudaGetErrorString(e);
        EXPECT_EQ(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    void unary(const cuda::UnaryArgs& a) override { go([=] { cuda::unary(a, nullptr); }); }
    void binary(const cuda::BinaryArgs& a, bool int32) override { go([=] { cuda::binary(a, int32, nullptr); }); }
    void where(const cuda::WhereArgs& a) override { go([=] { cuda::where(a, 4, nullptr); }); }
    void softmax(const cuda::SoftmaxArgs& a) override { go([=] { cuda::softmax(a, nullptr); }); }
    void matmul(const cuda::MatMulArgs& a) override { go([=] { cuda::matmul(a, nullptr); }); }
    void strided_copy(const cuda::StridedCopyArgs& a) override { go([=] { cuda::strided_copy(a, 4, nullptr); }); }
    void gather(const cuda::GatherArgs& a) override { go([=] { cuda::gather(a, 4, nullptr); }); }
    void gather_elements(const cuda::GatherElementsArgs& a) override {
        go([=] { cuda::gather_elements(a, 4, nullptr); });
    }
    void topk(const cuda::TopKArgs& a, bool int32) override { go([=] { cuda::topk(a, int32, nullptr); }); }
    void reduce(const cuda::ReduceArgs& a, bool int32) override { go([=] { cuda::reduce(a, int32, nullptr); }); }
    void cast(const cuda::CastArgs& a) override { go([=] { cuda::cast(a, nullptr); }); }
    void fake_quant(const cuda::FakeQuantArgs& a) override { go([=] { cuda::fake_quant(a, nullptr); }); }
    void conv_transpose(const cuda::ConvTransposeArgs& a) override {
        go([=] { cuda::conv_transpose(a, nullptr); });
    }

    std::function<void()> last;

private:
    void go(std::function<void()> f) {
        f();
        const cudaError_t e = cudaGetLastError();
        EXPECT_EQ(e, cudaSuccess) << "launch: " << cudaGetErrorString(e);
        last = std::move(f);
    }
    std::vector<void*> blocks_;
};

bool have_gpu() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define REQUIRE_GPU()                                        \
    do {                                                     \
        if (!have_gpu()) GTEST_SKIP() << "no CUDA device";   \
    } while (0)

void check_family(const std::vector<OpCase>& cases, int matmul_kernel = 0, int topk_kernel = 0) {
    GpuBackend be;
    be.matmul_kernel = matmul_kernel;
    be.topk_kernel = topk_kernel;
    const CaseTally t = check_cases(cases, be, true);
    std::string missing;
    for (const auto& op : t.no_oracle) missing += " " + op;
    EXPECT_TRUE(t.no_oracle.empty()) << "no oracle for:" << missing;
    EXPECT_GT(t.ran, 0);
}

}  // namespace

TEST(GpuGeneric, UnaryOpsMatchTheReference) {
    REQUIRE_GPU();
    check_family(unary_cases());
}

TEST(GpuGeneric, BinaryOpsBroadcastLikeTheReference) {
    REQUIRE_GPU();
    check_family(binary_cases());
}

TEST(GpuGeneric, WhereBroadcastsItsThreeOperands) {
    REQUIRE_GPU();
    check_family(where_cases());
}

TEST(GpuGeneric, SoftmaxAndLogSoftmaxMatchTheReference) {
    REQUIRE_GPU();
    check_family(softmax_cases());
}

TEST(GpuGeneric, MatMulEveryKernelMatchesTheReference) {
    REQUIRE_GPU();
    for (int kernel : {0, 1, 2, 3}) {
        SCOPED_TRACE("matmul kernel " + std::to_string(kernel));
        check_family(matmul_cases(), kernel);
    }
}

TEST(GpuGeneric, StridedCopiesAreTransposeSliceExpandConcatAndSplit) {
    REQUIRE_GPU();
    check_family(copy_cases());
}

TEST(GpuGeneric, GatherAndGatherElementsMatchTheReference) {
    REQUIRE_GPU();
    check_family(gather_cases());
}

TEST(GpuGeneric, TopKEveryKernelMatchesTheReference) {
    REQUIRE_GPU();
    for (int kernel : {0, 1, 2}) {
        SCOPED_TRACE("topk kernel " + std::to_string(kernel));
        check_family(topk_cases(), 0, kernel);
    }
}

TEST(GpuGeneric, ReduceOpsMatchTheReference) {
    REQUIRE_GPU();
    check_family(reduce_cases());
}

TEST(GpuGeneric, CastMatchesTheReference) {
    REQUIRE_GPU();
    check_family(cast_cases());
}

TEST(GpuGeneric, FakeQuantIsQuantizeThenDequantize) {
    REQUIRE_GPU();
    check_family(fake_quant_cases());
}

TEST(GpuGeneric, ConvTransposeMatchesTheReference) {
    REQUIRE_GPU();
    check_family(conv_transpose_cases());
}

// GPU time per launch (CUDA events around `iters` back-to-back launches, after a warm-up),
// median of 5 such runs, in microseconds.
double gpu_us(const std::function<void()>& launch, int iters = 100) {
    for (int i = 0; i < 10; ++i) launch();
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    std::vector<double> runs;
    for (int r = 0; r < 5; ++r) {
        cudaEventRecord(a);
        for (int i = 0; i < iters; ++i) launch();
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        runs.push_back(double(ms) * 1000.0 / iters);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(runs.begin(), runs.end());
    return runs[2];
}

// The ops the generic tier adds to YOLO11 (C2PSA) and YOLO26 (end-to-end head) at 640,
// batch 1 and 32: each kernel variant checked against the reference, then timed.
TEST(GpuGeneric, PerfAtYoloShapes) {
    REQUIRE_GPU();
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("PERF device: %s\n", prop.name);
    Rng r(99);
    struct Variant {
        std::string name;
        int matmul_kernel, topk_kernel;
    };
    struct P {
        std::string what;
        OpCase c;
        std::vector<Variant> variants;
        double flops;  // per launch (MatMul), for GFLOP/s
    };
    const std::vector<Variant> plain = {{"", 0, 0}};
    const std::vector<Variant> mm = {{"auto", 0, 0}, {"simple", 1, 0}, {"tile64", 2, 0}, {"tile32", 3, 0}};
    std::vector<P> ps;
    for (int64_t b : {1, 32}) {
        const std::string bs = "batch " + std::to_string(b);
        for (int64_t len : {8400, 24000}) {  // 8400 anchors; then 300 boxes x 80 classes
            Node n = make_node("TopK", 2, 2);
            n.attrs["axis"] = Attribute::of_int(1);
            std::vector<Variant> v = {{"radix", 0, 2}};
            if (b == 1 && len == 8400) v.push_back({"rank", 0, 1});  // O(len^2): the fallback, timed once
            ps.push_back({"TopK " + bs + " [" + std::to_string(len) + "] k 300",
                          make_case(n, {rand_floats({b, len}, r, 0.f, 1.f), ints({300})}), v, 0});
        }
        ps.push_back({"MatMul " + bs + " C2PSA q^T k [2,400,32]x[2,32,400]",
                      make_case(make_node("MatMul", 2), {rand_floats({b, 2, 400, 32}, r, -1.f, 1.f),
                                                         rand_floats({b, 2, 32, 400}, r, -1.f, 1.f)}, "", 1e-5),
                      mm, 2.0 * b * 2 * 400 * 400 * 32});
        ps.push_back({"MatMul " + bs + " C2PSA v attn^T [2,64,400]x[2,400,400]",
                      make_case(make_node("MatMul", 2), {rand_floats({b, 2, 64, 400}, r, -1.f, 1.f),
                                                         rand_floats({b, 2, 400, 400}, r, -1.f, 1.f)}, "", 1e-5),
                      mm, 2.0 * b * 2 * 64 * 400 * 400});
        Node sm = make_node("Softmax", 1);
        sm.attrs["axis"] = Attribute::of_int(-1);
        ps.push_back({"Softmax " + bs + " C2PSA [2,400,400] axis -1",
                      make_case(sm, {rand_floats({b, 2, 400, 400}, r, -8.f, 8.f)}, "", 1e-6), plain, 0});
        Node tr = make_node("Transpose", 1);
        tr.attrs["perm"] = Attribute::of_ints({0, 2, 1});
        ps.push_back({"Transpose " + bs + " [11,8400] -> [8400,11]", make_case(tr, {rand_floats({b, 11, 8400}, r)}),
                      plain, 0});
        Node rm = make_node("ReduceMax", 2);
        rm.attrs["keepdims"] = Attribute::of_int(0);
        ps.push_back({"ReduceMax " + bs + " [8400,80] axis -1",
                      make_case(rm, {rand_floats({b, 8400, 80}, r), ints({-1})}, "", 0, 0, 18), plain, 0});
        Node ge = make_node("GatherElements", 2);
        ge.attrs["axis"] = Attribute::of_int(1);
        ps.push_back({"GatherElements " + bs + " [8400,80] -> [300,80]",
                      make_case(ge, {rand_floats({b, 8400, 80}, r), rand_ints({b, 300, 80}, r, 0, 8399)}), plain, 0});
    }
    for (const P& p : ps) {
        SCOPED_TRACE(p.what);
        const std::vector<Tensor> want = ref_eval(p.c.node, p.c.inputs, p.c.opset);
        for (const Variant& v : p.variants) {
            GpuBackend be;
            be.matmul_kernel = v.matmul_kernel;
            be.topk_kernel = v.topk_kernel;
            const std::vector<Tensor> got = run_generic(p.c.node, p.c.inputs, p.c.opset, be);
            ASSERT_EQ(got.size(), want.size());
            for (size_t o = 0; o < got.size(); ++o) expect_matches(got[o], want[o], p.c.device_tol, p.what + " " + v.name);
            const double us = gpu_us(be.last);
            const std::string what = p.what + (v.name.empty() ? "" : " (" + v.name + ")");
            if (p.flops > 0)
                std::printf("PERF %-62s %9.2f us  %7.0f GFLOP/s\n", what.c_str(), us, p.flops / us * 1e-3);
            else
                std::printf("PERF %-62s %9.2f us\n", what.c_str(), us);
        }
    }
}
