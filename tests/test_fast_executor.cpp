// The fast CPU executor against the reference: every fast kernel on random inputs
// (conv 1x1/3x3, stride 1/2, odd sizes, with and without fused SiLU/residual, plain
// and blocked input), a small YOLO-like model built here, and the real YOLOv8n.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "core/npy.h"
#include "engine/cpu/executor.h"
#include "engine/cpu/fast/blocked.h"
#include "engine/cpu/fast/conv.h"
#include "engine/cpu/fast_executor.h"
#include "ir/op_table.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"

using namespace yoloc;

namespace {

Tensor random_tensor(Shape s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    Tensor t(DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
    return t;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.shape(), b.shape());
    if (a.shape() != b.shape()) return INFINITY;
    float m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
    return m;
}

struct ConvCase {
    int64_t n, ic, h, w, oc, k, stride, pad;
    bool silu, residual, plain;
};

std::string case_name(const ConvCase& c) {
    return cat("n", c.n, " ic", c.ic, " ", c.h, "x", c.w, " oc", c.oc, " k", c.k, " s", c.stride, " p", c.pad,
               c.silu ? " silu" : "", c.residual ? " res" : "", c.plain ? " plain" : "");
}

// Runs one conv kernel (direct or oneDNN) through the blocked layout and compares
// with ref_conv2d followed by the same epilogue in plain loops.
// Returns false when oneDNN declined the spec (it only had its reference loops for it:
// make_dnnl_conv returns null and the executor runs the direct kernel instead).
bool check_conv(const ConvCase& c, bool dnnl) {
    SCOPED_TRACE(case_name(c) + (dnnl ? " dnnl" : " direct"));
    fast::ThreadPool pool(2);
    Tensor x = random_tensor({c.n, c.ic, c.h, c.w}, 1);
    Tensor w = random_tensor({c.oc, c.ic, c.k, c.k}, 2, -0.3f, 0.3f);
    Tensor b = random_tensor({c.oc}, 3);
    Tensor want = ref_conv2d(x, w, b, {c.stride, c.stride}, {c.pad, c.pad, c.pad, c.pad}, {1, 1}, 1);
    fast::ConvSpec s;
    s.in = {c.n, c.ic, c.h, c.w};
    s.out = {c.n, c.oc, want.dim(2), want.dim(3)};
    s.kh = s.kw = c.k;
    s.sh = s.sw = c.stride;
    s.pt = s.pl = s.pb = s.pr = c.pad;
    s.src_plain = c.plain;
    s.silu = c.silu;
    s.residual = c.residual;
    Tensor res = random_tensor(want.shape(), 4);
    float* wp = want.data<float>();
    for (int64_t i = 0; i < want.numel(); ++i) {
        if (c.silu) wp[i] = wp[i] / (1.f + std::exp(-wp[i]));
        if (c.residual) wp[i] += res.data<float>()[i];
    }
    std::unique_ptr<fast::ConvKernel> k =
        dnnl ? fast::make_dnnl_conv(s, w, b) : fast::make_direct_conv(s, w, b, &pool);
    if (!k) {
        EXPECT_TRUE(dnnl) << "the direct kernel must take every spec";
        return false;
    }
    std::vector<float> xin(size_t(c.plain ? x.numel() : s.in.floats()));
    if (c.plain)
        std::copy(x.data<float>(), x.data<float>() + x.numel(), xin.begin());
    else
        fast::nchw_to_blocked(x.data<float>(), xin.data(), s.in, &pool);
    std::vector<float> rb(size_t(s.out.floats())), yb(size_t(s.out.floats()));
    fast::nchw_to_blocked(res.data<float>(), rb.data(), s.out, &pool);
    k->run(xin.data(), yb.data(), c.residual ? rb.data() : nullptr);
    Tensor got(DType::Float32, want.shape());
    fast::blocked_to_nchw(yb.data(), got.data<float>(), s.out, &pool);
    EXPECT_LE(max_abs_diff(got, want), 1e-4f);
    // Padding channels stay zero (later kernels rely on it).
    for (int64_t n = 0; n < s.out.n; ++n)
        for (int64_t cc = s.out.c; cc < s.out.cp(); ++cc)
            for (int64_t p = 0; p < s.out.h * s.out.w; ++p)
                if (yb[size_t(n * s.out.image_floats() + ((cc / 16) * s.out.h * s.out.w + p) * 16 + cc % 16)] != 0.f) {
                    ADD_FAILURE() << "padding channel " << cc << " is not zero";
                    return true;
                }
    return true;
}

const std::vector<ConvCase> kConvCases = {
    {1, 16, 20, 20, 32, 1, 1, 0, false, false, false},  // 1x1
    {1, 32, 17, 19, 16, 3, 1, 1, true, false, false},   // 3x3 s1, odd sizes
    {1, 16, 21, 23, 32, 3, 2, 1, true, false, false},   // 3x3 s2, odd sizes
    {1, 32, 12, 12, 32, 3, 1, 1, true, true, false},    // SiLU + residual (bottleneck)
    {1, 3, 33, 31, 16, 3, 2, 1, true, false, true},     // the first conv: plain input
    {2, 5, 9, 7, 7, 3, 1, 1, true, true, false},        // channels not multiples of 16, batch 2
    {1, 48, 10, 10, 20, 1, 1, 0, false, false, false},  // 1x1, odd output channels
    {1, 16, 13, 13, 16, 5, 1, 2, false, false, false},  // 5x5
    {1, 16, 9, 30, 48, 3, 1, 1, true, true, false},     // 3 output blocks (one group of 3); 2.5 row tiles
    // Row tiles of the AVX2 kernel (6 pixels, then a 1..5-pixel remainder; tiles whose
    // input lies inside the row skip the padding checks) and its compile-time shapes.
    {1, 16, 5, 26, 16, 3, 1, 1, false, true, false},    // residual without SiLU; 26 = 4 x 6 + 2
    {1, 32, 6, 15, 32, 3, 2, 1, true, false, false},    // stride 2, 8 wide = 6 + 2
    {1, 16, 9, 29, 16, 5, 2, 2, true, true, false},     // 5x5 stride 2: 15 = 2 x 6 + 3
    {1, 32, 8, 16, 16, 3, 1, 0, true, false, false},    // no padding: 14 = 2 x 6 + 2, full tiles unchecked
    {1, 16, 9, 22, 16, 1, 2, 0, false, false, false},   // 1x1 stride 2 (kernel size read at run time): 11 = 6 + 5
    {1, 3, 10, 28, 32, 3, 1, 1, true, false, true},     // plain input, stride 1, 2 output blocks: 28 = 4 x 6 + 4
    {1, 16, 4, 4, 16, 3, 1, 1, true, true, false},      // a row narrower than one tile
    {2, 16, 7, 9, 40, 3, 1, 1, true, true, false},      // batch 2, 3 output blocks (the last partial)
};

// Channel counts of channel-pruned models (C2f bottlenecks 32 -> 24, 64 -> 56,
// 128 -> 112), not multiples of 16: the last output block is partly padding (its
// lanes must come out zero) and the input's last block is partly padding (not read).
// 112 and 80 (the class head) are odd block counts, which the AVX-512 tile computes
// as pairs plus one group of three; 13 and 45 are odd partial blocks. Widths 13 and 23
// leave partial row tiles; 5x5 takes the generic kernel-size path.
const std::vector<ConvCase> kPrunedConvCases = {
    {1, 32, 14, 13, 24, 3, 1, 1, true, false, false},   // bottleneck cv1 32 -> 24
    {1, 24, 14, 13, 32, 3, 1, 1, true, true, false},    // bottleneck cv2 24 -> 32 + residual
    {1, 24, 12, 23, 24, 3, 1, 1, true, true, false},    // 24 -> 24 + residual
    {1, 64, 10, 11, 56, 3, 1, 1, true, false, false},   // 64 -> 56
    {1, 56, 10, 11, 64, 3, 1, 1, true, true, false},    // 56 -> 64 + residual
    {1, 128, 6, 7, 112, 3, 1, 1, true, false, false},   // 128 -> 112: 7 blocks (2 + 2 + 3)
    {1, 112, 6, 7, 128, 3, 1, 1, true, true, false},    // 112 -> 128 + residual
    {1, 112, 9, 13, 112, 1, 1, 0, false, false, false}, // 1x1, odd width
    {2, 13, 9, 13, 13, 3, 1, 1, true, true, false},     // odd: one partial block of 13, batch 2
    {1, 45, 8, 9, 45, 3, 2, 1, true, false, false},     // 45 = 32 + 13 (3 blocks), stride 2
    {1, 13, 11, 13, 24, 3, 1, 1, true, true, false},    // odd input, 24 out
    {1, 16, 11, 25, 20, 1, 1, 0, false, true, false},   // 20 = 16 + 4
    {1, 24, 9, 12, 40, 3, 2, 1, true, false, false},    // 40: 3 blocks, the last partial
    {1, 40, 9, 9, 80, 3, 1, 1, true, true, false},      // 80: 5 blocks (2 + 3), the YOLOv8 class head
    {1, 3, 33, 31, 24, 3, 2, 1, true, false, true},     // plain input, 24 out
    {1, 24, 13, 13, 56, 5, 1, 2, true, true, false},    // 5x5
};

}  // namespace

// oneDNN runs each case it accepts; the cases it declines are counted and must stay a
// minority (they run on the direct kernel, tested above on every case).
void check_dnnl_cases(const std::vector<ConvCase>& cases) {
    size_t ran = 0;
    std::string declined;
    for (const auto& c : cases) {
        if (check_conv(c, true))
            ++ran;
        else
            declined += " [" + case_name(c) + "]";
    }
    EXPECT_GE(ran * 2, cases.size()) << "oneDNN declined:" << declined;
    if (!declined.empty()) std::printf("oneDNN declined (reference-only):%s\n", declined.c_str());
}

TEST(FastConv, DirectKernelMatchesReference) {
    for (const auto& c : kConvCases) EXPECT_TRUE(check_conv(c, false));
}

TEST(FastConv, DnnlKernelMatchesReference) {
    if (!fast::dnnl_available()) GTEST_SKIP() << "no oneDNN JIT kernel for the 16-channel blocked layout here (built without oneDNN, or a CPU without AVX-512)";
    check_dnnl_cases(kConvCases);
}

TEST(FastConv, DirectKernelMatchesReferenceForPrunedChannelCounts) {
    for (const auto& c : kPrunedConvCases) EXPECT_TRUE(check_conv(c, false));
}

TEST(FastConv, DnnlKernelMatchesReferenceForPrunedChannelCounts) {
    if (!fast::dnnl_available()) GTEST_SKIP() << "no oneDNN JIT kernel for the 16-channel blocked layout here (built without oneDNN, or a CPU without AVX-512)";
    check_dnnl_cases(kPrunedConvCases);
}

// Blocked -> NCHW against the layout's definition (channel c of pixel p at
// ((c / 16) * H * W + p) * 16 + c % 16): partial channel blocks (3, 20, 45) and pixel
// counts that leave a remainder after the 8-pixel transposes and the 64-pixel tiles.
TEST(FastKernels, BlockedToNchwFollowsTheLayout) {
    fast::ThreadPool pool(2);
    for (fast::BlockedShape s : {fast::BlockedShape{1, 16, 8, 8}, fast::BlockedShape{1, 3, 5, 7},
                                 fast::BlockedShape{2, 20, 9, 11}, fast::BlockedShape{1, 45, 13, 13},
                                 fast::BlockedShape{1, 144, 10, 10}}) {
        SCOPED_TRACE(cat("n", s.n, " c", s.c, " ", s.h, "x", s.w));
        const int64_t hw = s.h * s.w;
        std::vector<float> blocked(size_t(s.floats()));
        for (size_t i = 0; i < blocked.size(); ++i) blocked[i] = float(i);
        std::vector<float> got(size_t(s.n * s.c * hw), -1.f);
        fast::blocked_to_nchw(blocked.data(), got.data(), s, &pool);
        int64_t bad = 0;
        for (int64_t n = 0; n < s.n; ++n)
            for (int64_t c = 0; c < s.c; ++c)
                for (int64_t p = 0; p < hw; ++p) {
                    const int64_t at = n * s.image_floats() + ((c / 16) * hw + p) * 16 + c % 16;
                    if (got[size_t((n * s.c + c) * hw + p)] != float(at)) ++bad;
                }
        EXPECT_EQ(bad, 0);
    }
}

TEST(FastKernels, SiluMatchesExp) {
    Tensor x = random_tensor({1000}, 7, -100.f, 100.f);
    std::vector<float> y(x.data<float>(), x.data<float>() + 1000);
    fast::silu_inplace(y.data(), 1000);
    for (int i = 0; i < 1000; ++i) {
        float v = x.data<float>()[i];
        EXPECT_NEAR(y[size_t(i)], v / (1.f + std::exp(-v)), 1e-5f * std::max(1.f, std::fabs(v)));
    }
}

// ---- a YOLO-like model built here -------------------------------------------------

namespace {

struct GraphBuilder {
    Model m;
    int id = 0;
    uint32_t seed = 100;
    std::string add(const std::string& op, std::vector<std::string> in, std::map<std::string, Attribute> attrs = {},
                    int outs = 1, std::vector<std::string>* all_outs = nullptr) {
        Node n;
        n.name = cat(op, "_", id++);
        n.op_type = op;
        n.inputs = std::move(in);
        n.attrs = std::move(attrs);
        for (int i = 0; i < outs; ++i) n.outputs.push_back(cat(n.name, "_out", i));
        if (all_outs) *all_outs = n.outputs;
        m.graph.nodes.push_back(n);
        return n.outputs[0];
    }
    std::string init(const std::string& base, Tensor t) {
        std::string name = cat(base, "_", id++);
        m.graph.initializers[name] = t;
        return name;
    }
    // Conv + SiLU like Ultralytics' Conv block.
    std::string conv(const std::string& x, int64_t ic, int64_t oc, int64_t k, int64_t s, bool act = true) {
        std::string w = init("w", random_tensor({oc, ic, k, k}, seed++, -0.4f, 0.4f));
        std::string b = init("b", random_tensor({oc}, seed++, -0.2f, 0.2f));
        std::string y = add("Conv", {x, w, b},
                            {{"kernel_shape", Attribute::of_ints({k, k})},
                             {"strides", Attribute::of_ints({s, s})},
                             {"pads", Attribute::of_ints({k / 2, k / 2, k / 2, k / 2})}});
        if (!act) return y;
        std::string sg = add("Sigmoid", {y});
        return add("Mul", {y, sg});
    }
};

// images [1,3,H,W] -> conv s2 -> conv s2 -> C2f-like (split, bottleneck with residual,
// concat) -> SPPF-like maxpools -> upsample + concat -> detect-like tail (Reshape,
// Softmax, Sigmoid) so that blocked and plain paths and their seams are covered.
// h, w < 0: symbolic (any size), and then a symbolic batch too. hidden: the
// bottleneck's inner width (16; a channel-pruned model has e.g. 24 of 32, here 8 or 13).
Model build_mini_yolo(int64_t h, int64_t w, bool tail = true, int64_t hidden = 16) {
    GraphBuilder b;
    b.m.graph.name = "mini_yolo";
    ValueInfo in;
    in.name = "images";
    if (h > 0)
        in.shape = {Dim{1, ""}, Dim{3, ""}, Dim{h, ""}, Dim{w, ""}};
    else
        in.shape = {Dim{-1, "batch"}, Dim{3, ""}, Dim{-1, "height"}, Dim{-1, "width"}};
    b.m.graph.inputs.push_back(in);
    std::string x = b.conv("images", 3, 16, 3, 2);
    x = b.conv(x, 16, 32, 3, 2);
    std::string c1 = b.conv(x, 32, 32, 1, 1);
    std::vector<std::string> parts;
    b.add("Split", {c1, b.init("split", Tensor::from_int64s({2}, {16, 16}))}, {{"axis", Attribute::of_int(1)}}, 2,
          &parts);
    std::string m1 = b.conv(b.conv(parts[1], 16, hidden, 3, 1), hidden, 16, 3, 1);
    std::string r = b.add("Add", {parts[1], m1});
    std::string cat3 = b.add("Concat", {parts[0], parts[1], r}, {{"axis", Attribute::of_int(1)}});
    std::string c2 = b.conv(cat3, 48, 32, 1, 1);
    std::map<std::string, Attribute> mp{{"kernel_shape", Attribute::of_ints({5, 5})},
                                        {"strides", Attribute::of_ints({1, 1})},
                                        {"pads", Attribute::of_ints({2, 2, 2, 2})}};
    std::string p1 = b.add("MaxPool", {c2}, mp);
    std::string p2 = b.add("MaxPool", {p1}, mp);
    std::string sp = b.add("Concat", {c2, p1, p2}, {{"axis", Attribute::of_int(1)}});
    std::string down = b.conv(sp, 96, 32, 3, 2);
    std::string up = b.add("Resize",
                           {down, "", b.init("scales", Tensor::from_floats({4}, {1, 1, 2, 2}))},
                           {{"mode", Attribute::of_string("nearest")},
                            {"coordinate_transformation_mode", Attribute::of_string("asymmetric")},
                            {"nearest_mode", Attribute::of_string("floor")}});
    std::string head = b.add("Concat", {up, c2}, {{"axis", Attribute::of_int(1)}});
    std::string box = b.conv(b.conv(head, 64, 16, 3, 1), 16, 16, 1, 1, false);
    std::string cls = b.conv(head, 64, 20, 1, 1, false);  // 20 channels: not a multiple of 16
    std::string both = b.add("Concat", {box, cls}, {{"axis", Attribute::of_int(1)}});
    std::string out = both;
    if (tail) {
    std::string flat = b.add("Reshape", {both, b.init("shape", Tensor::from_int64s({3}, {1, 36, -1}))});
    std::vector<std::string> bc;
    b.add("Split", {flat, b.init("split", Tensor::from_int64s({2}, {16, 20}))}, {{"axis", Attribute::of_int(1)}}, 2,
          &bc);
    std::string sm = b.add("Softmax", {bc[0]}, {{"axis", Attribute::of_int(1)}});
    std::string sg = b.add("Sigmoid", {bc[1]});
    out = b.add("Concat", {sm, sg}, {{"axis", Attribute::of_int(1)}});
    }
    ValueInfo o;
    o.name = out;
    o.has_shape = false;
    o.shape.clear();
    b.m.graph.outputs.push_back(o);
    ValueInfo o2;  // an intermediate blocked value as a second output
    o2.name = c2;
    o2.has_shape = false;
    b.m.graph.outputs.push_back(o2);
    return b.m;
}

void check_model(const Model& m, const Tensor& x, bool dnnl, float tol) {
    SCOPED_TRACE(dnnl ? "dnnl" : "direct");
    ReferenceExecutor ref(m);
    FastExecutorOptions fo;
    fo.conv = dnnl ? ConvKernels::Dnnl : ConvKernels::Own;
    FastExecutor fastx(m, ExecutorOptions{2}, fo);
    TensorMap want = ref.run({{"images", x}});
    for (int rep = 0; rep < 2; ++rep) {  // a second run reuses the buffers
        TensorMap got = fastx.run({{"images", x}});
        ASSERT_EQ(got.size(), want.size());
        for (const auto& kv : want) {
            SCOPED_TRACE(kv.first);
            ASSERT_TRUE(got.count(kv.first));
            EXPECT_LE(max_abs_diff(got.at(kv.first), kv.second), tol);
        }
    }
}

}  // namespace

TEST(FastExecutor, MiniYoloMatchesReferenceWithDirectKernels) {
    Model m = build_mini_yolo(64, 48);
    Tensor x = random_tensor({1, 3, 64, 48}, 42, 0.f, 1.f);
    check_model(m, x, false, 1e-4f);
    FastExecutor f(m, ExecutorOptions{2}, FastExecutorOptions{ConvKernels::Own, false});
    FastPlanStats s = f.stats();
    EXPECT_EQ(s.fused_silu, 8);
    EXPECT_EQ(s.fused_residual, 1);
    EXPECT_GE(s.blocked_steps, 6);
}

// The bottleneck of a channel-pruned C2f: 16 -> hidden -> 16 with the residual, hidden
// not a multiple of 16 (a partial block in and out of the blocked layout).
TEST(FastExecutor, PrunedMiniYoloMatchesReference) {
    for (int64_t hidden : {8, 13, 24}) {
        SCOPED_TRACE(cat("hidden ", hidden));
        Model m = build_mini_yolo(64, 48, true, hidden);
        Tensor x = random_tensor({1, 3, 64, 48}, 42, 0.f, 1.f);
        check_model(m, x, false, 1e-4f);
        if (fast::dnnl_available()) check_model(m, x, true, 1e-4f);
        FastPlanStats s = FastExecutor(m, ExecutorOptions{1}, FastExecutorOptions{ConvKernels::Own, false}).stats();
        EXPECT_EQ(s.fused_silu, 8);
        EXPECT_EQ(s.fused_residual, 1);  // still fused: the residual is blocked like before
        EXPECT_EQ(s.ref_steps, 1);       // only the tail's Reshape
    }
}

TEST(FastExecutor, MiniYoloMatchesReferenceWithDnnl) {
    if (!fast::dnnl_available()) GTEST_SKIP() << "no oneDNN JIT kernel for the 16-channel blocked layout here (built without oneDNN, or a CPU without AVX-512)";
    Model m = build_mini_yolo(64, 48);
    Tensor x = random_tensor({1, 3, 64, 48}, 42, 0.f, 1.f);
    check_model(m, x, true, 1e-4f);
}

TEST(FastExecutor, NewInputShapeCompilesNewPlan) {
    Model m = build_mini_yolo(-1, -1);
    FastExecutor f(m, ExecutorOptions{2});
    EXPECT_THROW(f.stats(), Error);  // no concrete shape yet
    ReferenceExecutor ref(m);
    for (Shape s : {Shape{1, 3, 32, 32}, Shape{1, 3, 64, 40}, Shape{1, 3, 32, 32}}) {
        SCOPED_TRACE(shape_str(s));
        Tensor x = random_tensor(s, 5, 0.f, 1.f);
        TensorMap want = ref.run({{"images", x}}), got = f.run({{"images", x}});
        for (const auto& kv : want) EXPECT_LE(max_abs_diff(got.at(kv.first), kv.second), 1e-4f);
    }
}

TEST(FastExecutor, BatchOfTwoMatchesReference) {
    // Without the Reshape tail, whose target shape fixes batch 1.
    Model m = build_mini_yolo(-1, -1, false);
    check_model(m, random_tensor({2, 3, 32, 32}, 6, 0.f, 1.f), false, 1e-4f);
    if (fast::dnnl_available()) check_model(m, random_tensor({2, 3, 32, 32}, 6, 0.f, 1.f), true, 1e-4f);
}

TEST(FastExecutor, AutoPicksOneDnnWhenBuiltInAndTheEnvironmentOverrides) {
    Model m = build_mini_yolo(32, 32);
    ::unsetenv("YOLOC_CPU_CONV");
    FastPlanStats dflt = FastExecutor(m, ExecutorOptions{1}).stats();
    EXPECT_EQ(dflt.dnnl_convs, fast::dnnl_available() ? dflt.convs : 0);
    ::setenv("YOLOC_CPU_CONV", "own", 1);
    EXPECT_EQ(FastExecutor(m, ExecutorOptions{1}).stats().dnnl_convs, 0);
    ::setenv("YOLOC_CPU_CONV", "bogus", 1);
    EXPECT_THROW(FastExecutor(m, ExecutorOptions{1}), Error);
    ::unsetenv("YOLOC_CPU_CONV");
}

// Auto keeps oneDNN except for convs whose blocked input is at least a quarter zero
// padding on a map at least 40 wide (oneDNN would multiply the padding too): here the
// bottleneck's second conv, 8 -> 16 channels at 40x40. Forcing oneDNN takes all the others.
TEST(FastExecutor, AutoRunsConvsOnPaddedInputsWithOwnKernel) {
    if (!fast::dnnl_available()) GTEST_SKIP() << "no oneDNN JIT kernel for the 16-channel blocked layout here (built without oneDNN, or a CPU without AVX-512)";
    ::unsetenv("YOLOC_CPU_CONV");
    Model m = build_mini_yolo(160, 160, true, 8);
    FastExecutor a(m, ExecutorOptions{1});
    FastPlanStats s = a.stats();
    EXPECT_EQ(s.dnnl_convs, fast::direct_conv_wide() ? s.convs - 1 : s.convs);
    FastExecutorOptions fo;
    fo.conv = ConvKernels::Dnnl;
    FastPlanStats d = FastExecutor(m, ExecutorOptions{1}, fo).stats();
    // Forced: oneDNN takes every conv it has a JIT kernel for; here the 8-channel input
    // has only its reference loops, so that one conv stays on ours.
    EXPECT_EQ(d.dnnl_convs, d.convs - 1);
    Tensor x = random_tensor({1, 3, 160, 160}, 9, 0.f, 1.f);
    TensorMap want = ReferenceExecutor(m).run({{"images", x}}), got = a.run({{"images", x}});
    for (const auto& kv : want) EXPECT_LE(max_abs_diff(got.at(kv.first), kv.second), 1e-4f);
}

TEST(FastExecutor, RejectsWrongDtype) {
    Model m = build_mini_yolo(32, 32);
    FastExecutor f(m, ExecutorOptions{1});
    EXPECT_THROW(f.run({{"images", Tensor(DType::Int64, {1, 3, 32, 32})}}), Error);
    EXPECT_THROW(f.run({}), Error);
}

// ---- the real model ------------------------------------------------------------------

namespace {

// Boxes (rows 0..3) within 1e-2 px, scores within 1e-4.
void expect_output0_close(const Tensor& got, const Tensor& want) {
    ASSERT_EQ(got.numel(), want.numel());
    const int64_t a = got.dim(got.rank() - 1);
    float box = 0, score = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
        float d = std::fabs(got.data<float>()[i] - want.data<float>()[i]);
        if ((i / a) % 84 < 4)
            box = std::max(box, d);
        else
            score = std::max(score, d);
    }
    EXPECT_LE(box, 1e-2f);
    EXPECT_LE(score, 1e-4f);
}

}  // namespace

TEST(FastExecutor, Yolov8nMatchesReferenceExecutorAndOnnxRuntime) {
    REQUIRE_SHARED();
    const std::string dir = yoloc_test::shared_dir();
    Model m = load_onnx(dir + "/models/yolov8n_coco.onnx");
    Tensor x = preprocess(load_image(dir + "/data/samples/dog.jpg"), 640);
    Tensor ort = load_npy(dir + "/data/reference/dog.npy");
    TensorMap want = ReferenceExecutor(m).run({{"images", x}});
    for (bool dnnl : {true, false}) {
        if (dnnl && !fast::dnnl_available()) continue;
        SCOPED_TRACE(dnnl ? "dnnl" : "direct");
        FastExecutorOptions fo;
        fo.conv = dnnl ? ConvKernels::Dnnl : ConvKernels::Own;
        FastExecutor f(m, ExecutorOptions{2}, fo);
        FastPlanStats s = f.stats();
        EXPECT_EQ(s.convs, 63);  // all but the DFL conv
        EXPECT_EQ(s.fused_silu, 57);
        EXPECT_EQ(s.fused_residual, 6);
        TensorMap got = f.run({{"images", x}});
        expect_output0_close(got.at("output0"), want.at("output0"));
        expect_output0_close(got.at("output0"), ort);
    }
}
