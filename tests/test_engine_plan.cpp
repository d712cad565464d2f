// The GPU engine's plan and memory plan: CPU-side, so CI tests them without a GPU.
#include <gtest/gtest.h>

#include <set>

#include "engine/memory_plan.h"
#include "engine/plan.h"
#include "gpu/models.h"
#include "onnx/onnx_io.h"
#include "test_util.h"

using namespace yoloc;
using namespace yoloc::engine;

namespace {

int count(const Plan& p, OpKind k) {
    int n = 0;
    for (const auto& op : p.ops) n += op.kind == k;
    return n;
}

// Independent check of the arena: at every op, the byte ranges of the buffers in
// use (read or written at or around it) must be disjoint.
void expect_no_live_overlap(const Plan& p, const MemoryPlan& mp) {
    for (size_t a = 0; a < p.buffers.size(); ++a)
        for (size_t b = a + 1; b < p.buffers.size(); ++b) {
            bool live_together = mp.first[a] <= mp.last[b] && mp.first[b] <= mp.last[a];
            bool disjoint = mp.offsets[a] + p.buffers[a].bytes() <= mp.offsets[b] ||
                            mp.offsets[b] + p.buffers[b].bytes() <= mp.offsets[a];
            EXPECT_TRUE(!live_together || disjoint) << p.buffers[a].name << " and " << p.buffers[b].name;
        }
    // And every view read/written by an op is inside a buffer that is live then.
    for (size_t i = 0; i < p.ops.size(); ++i) {
        std::vector<View> vs = p.ops[i].in;
        vs.push_back(p.ops[i].out);
        for (const auto& v : vs) {
            EXPECT_LE(mp.first[size_t(v.buf)], int(i));
            EXPECT_GE(mp.last[size_t(v.buf)], int(i));
        }
    }
}

}  // namespace

TEST(EnginePlan, TinyModelFusesAndPlacesEverything) {
    Model m = yoloc_test::tiny_engine_model();
    Plan p = build_plan(m, {});
    EXPECT_EQ(p.stats.convs, 4);
    EXPECT_EQ(p.stats.convs_silu, 3);
    EXPECT_EQ(p.stats.convs_residual, 1);
    EXPECT_EQ(p.stats.split_views, 2);
    EXPECT_EQ(p.stats.maxpools, 2);
    EXPECT_EQ(p.stats.resizes, 1);
    // s0 is already inside `cat`, so Concat(u, x, s0) copies it; everything else is in place.
    EXPECT_EQ(p.stats.copies, 1) << describe_plan(p);
    EXPECT_EQ(count(p, OpKind::Copy), 1);
    EXPECT_EQ(count(p, OpKind::OutputUnpack), 2);
    EXPECT_EQ(count(p, OpKind::InputPack), 1);
    EXPECT_EQ(p.stats.maxpool_chains, 1);  // the two pools are one op
    EXPECT_EQ(p.ops.size(), size_t(1 + 4 + 1 + 1 + 1 + 2)) << describe_plan(p);
    // The first conv writes straight into the nested concat buffer (cat inside sp).
    const PlanOp& c1 = p.ops[1];
    ASSERT_EQ(c1.kind, OpKind::Conv);
    EXPECT_EQ(p.buffers[size_t(c1.out.buf)].shape, (Shape{1, 10, 12, 36}));
    EXPECT_EQ(c1.out.c_off, 0);
    EXPECT_EQ(p.output_names, (std::vector<std::string>{"y", "d"}));
    EXPECT_EQ(p.output_shapes[0], (Shape{1, 6, 5, 6}));
    EXPECT_NO_THROW(p.validate());
}

TEST(EnginePlan, UnsupportedOpIsNamed) {
    Model m = yoloc_test::tiny_engine_model();
    m.graph.nodes[0].op_type = "ConvTranspose";
    try {
        build_plan(m, {});
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("ConvTranspose"), std::string::npos) << e.what();
    }
}

TEST(EnginePlan, Fp16BuffersAreHalfTheSize) {
    Model m = yoloc_test::tiny_engine_model(2);
    PlanOptions o;
    o.precision = Precision::FP16;
    Plan p = build_plan(m, o);
    EXPECT_EQ(p.batch, 2);
    for (const auto& b : p.buffers) EXPECT_EQ(b.elem_bytes, b.kind == BufferKind::Activation ? 2 : 4) << b.name;
    Plan p32 = build_plan(m, {});
    EXPECT_LT(p.device_weight_bytes(), p32.device_weight_bytes());
}

TEST(EnginePlan, Yolov8nFusedOpCounts) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    Plan p = build_plan(m, {});
    // yolov8n: 64 convs, the DFL one inside Detect; every conv but the 6 last head
    // convs has SiLU; 6 bottlenecks with shortcut (backbone C2f n = 1, 2, 2, 1).
    EXPECT_EQ(p.stats.convs, 63) << describe_plan(p);
    EXPECT_EQ(p.stats.convs_silu, 57);
    EXPECT_EQ(p.stats.convs_residual, 6);
    EXPECT_EQ(p.stats.split_views, 16);  // 8 C2f splits
    EXPECT_EQ(p.stats.maxpools, 3);
    EXPECT_EQ(p.stats.resizes, 2);
    EXPECT_EQ(p.stats.detects, 1);
    EXPECT_EQ(p.stats.copies, 0) << describe_plan(p);
    EXPECT_EQ(p.stats.concat_in_place, p.stats.concat_inputs);
    EXPECT_EQ(p.stats.maxpool_chains, 1);  // SPPF's three pools: one op
    EXPECT_EQ(p.ops.size(), size_t(1 + 63 + 1 + 2 + 1)) << describe_plan(p);
    EXPECT_EQ(p.output_shapes[0], (Shape{1, 84, 8400}));
    EXPECT_EQ(p.input_shape, (Shape{1, 3, 640, 640}));
    const PlanOp& det = p.ops.back();
    ASSERT_EQ(det.kind, OpKind::Detect);
    EXPECT_EQ(det.strides, (std::vector<int32_t>{8, 16, 32}));
    EXPECT_EQ(det.reg_max, 16);
    EXPECT_EQ(det.nc, 80);

    MemoryPlan mp = plan_memory(p);
    EXPECT_NO_THROW(verify_memory_plan(p, mp));
    expect_no_live_overlap(p, mp);
    EXPECT_LT(mp.arena_bytes, mp.unshared_bytes);
    EXPECT_EQ(mp.weight_bytes, p.device_weight_bytes());
    EXPECT_GT(mp.weight_bytes, 12000000);  // 3.2M params as float32 (incl. biases)
    EXPECT_LT(mp.weight_bytes, 14000000);
    std::printf("yolov8n fp32 b1: %zu ops, weights %s, arena %s (unshared %s)\n", p.ops.size(),
                format_bytes(mp.weight_bytes).c_str(), format_bytes(mp.arena_bytes).c_str(),
                format_bytes(mp.unshared_bytes).c_str());

    PlanOptions o16;
    o16.precision = Precision::FP16;
    Plan p16 = build_plan(m, o16);
    MemoryPlan mp16 = plan_memory(p16);
    expect_no_live_overlap(p16, mp16);
    EXPECT_LT(mp16.total_bytes(), 20 << 20) << "the issue's 20 MB target at batch 1 FP16";
    std::printf("yolov8n fp16 b1: weights %s, arena %s, total %s\n", format_bytes(mp16.weight_bytes).c_str(),
                format_bytes(mp16.arena_bytes).c_str(), format_bytes(mp16.total_bytes()).c_str());

    // A static export is re-targeted to the asked batch.
    PlanOptions o4;
    o4.batch = 4;
    Plan p4 = build_plan(m, o4);
    EXPECT_EQ(p4.input_shape, (Shape{4, 3, 640, 640}));
    EXPECT_EQ(p4.output_shapes[0], (Shape{4, 84, 8400}));
    EXPECT_EQ(p4.stats.convs, 63);
}

TEST(EngineMemory, TinyModelNoOverlapAndSharing) {
    Plan p = build_plan(yoloc_test::tiny_engine_model(3), {});
    MemoryPlan mp = plan_memory(p);
    EXPECT_NO_THROW(verify_memory_plan(p, mp));
    expect_no_live_overlap(p, mp);
    EXPECT_LE(mp.arena_bytes, mp.unshared_bytes);
    for (size_t b = 0; b < p.buffers.size(); ++b) EXPECT_EQ(mp.offsets[b] % kArenaAlignment, 0);
}

TEST(EngineMemory, CorruptedOffsetsAreCaught) {
    Plan p = build_plan(yoloc_test::tiny_engine_model(), {});
    MemoryPlan mp = plan_memory(p);
    // Put every buffer at offset 0: something live together must then collide.
    for (auto& o : mp.offsets) o = 0;
    EXPECT_THROW(verify_memory_plan(p, mp), Error);
}

TEST(EngineMemory, BudgetRefusalSaysWhatAndHowMuch) {
    Plan p = build_plan(yoloc_test::tiny_engine_model(), {});
    MemoryPlan ok = plan_memory(p, int64_t(1) << 30);
    EXPECT_GT(ok.total_bytes(), 0);
    try {
        plan_memory(p, 1000);
        FAIL() << "expected a budget error";
    } catch (const Error& e) {
        std::string w = e.what();
        EXPECT_NE(w.find("budget"), std::string::npos) << w;
        EXPECT_NE(w.find("weights"), std::string::npos) << w;
        EXPECT_NE(w.find("activations"), std::string::npos) << w;
    }
}

TEST(EngineMemory, ParseBytes) {
    EXPECT_EQ(parse_bytes("2GiB"), int64_t(2) << 30);
    EXPECT_EQ(parse_bytes("128MiB"), int64_t(128) << 20);
    EXPECT_EQ(parse_bytes("1.5 GB"), int64_t(1500000000));
    EXPECT_EQ(parse_bytes("4096"), 4096);
    EXPECT_THROW(parse_bytes("lots"), Error);
    EXPECT_THROW(parse_bytes("2XB"), Error);
}
