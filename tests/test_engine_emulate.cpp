// Runs engine plans on the CPU with the very element functions the CUDA kernels
// use (engine/cuda/element_ops.h) and the same argument builder, over one arena
// laid out by the memory planner and poisoned with NaN. Matching the reference
// executor here checks lowering, views, in-place concat, liveness and kernel
// indexing on machines without a GPU; the GPU run then only adds the device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/cpu/executor.h"
#include "engine/cuda/launch_args.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"
#include "gpu/models.h"
#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/input_size.h"

using namespace yoloc;
using namespace yoloc::engine;

namespace {

// Runs the ops in `order` (default: plan order) over the arena `given` (default: the
// plan's own memory plan). The runtime's streams may run the ops in any topological
// order of op_dag(plan, &memory plan).
std::vector<std::vector<float>> emulate(const Plan& p, const Tensor& x, std::vector<size_t> order = {},
                                        const MemoryPlan* given = nullptr) {
    EXPECT_EQ(p.precision, Precision::FP32) << "the host emulation runs float32 plans";
    const MemoryPlan mp = given ? *given : plan_memory(p);
    std::vector<float> arena_f(size_t(mp.arena_bytes / 4 + 1), std::nanf(""));
    auto* arena = reinterpret_cast<uint8_t*>(arena_f.data());
    std::memcpy(arena + mp.offsets[size_t(p.input_buf)], x.raw(), x.nbytes());
    if (order.empty())
        for (size_t i = 0; i < p.ops.size(); ++i) order.push_back(i);
    for (size_t i : order) {
        const PlanOp& op = p.ops[i];
        const void* w = op.kind == OpKind::Conv ? p.weights.data() + op.w_off : nullptr;
        const float* b = op.kind == OpKind::Conv ? p.weights.data() + op.b_off : nullptr;
        cuda::OpArgs a = cuda::make_op_args(p, i, arena, mp.offsets, w, b);
        switch (a.kind) {
            case OpKind::InputPack:
                for (long long k = 0; k < cuda::pack_items(a.pack); ++k) cuda::pack_at<float>(a.pack, k);
                break;
            case OpKind::Conv:
                for (long long k = 0; k < cuda::conv_items(a.conv); ++k) cuda::conv_at<float>(a.conv, k);
                break;
            case OpKind::MaxPool:
                for (long long k = 0; k < cuda::pool_items(a.pool); ++k) cuda::maxpool_at<float>(a.pool, k);
                break;
            case OpKind::Resize:
                for (long long k = 0; k < cuda::resize_items(a.resize); ++k) cuda::resize_at<float>(a.resize, k);
                break;
            case OpKind::Copy:
                for (long long k = 0; k < cuda::copy_items(a.copy); ++k) cuda::copy_at<float>(a.copy, k);
                break;
            case OpKind::Detect:
                for (long long k = 0; k < cuda::detect_items(a.detect); ++k) cuda::detect_at<float>(a.detect, k);
                break;
            case OpKind::OutputUnpack:
                for (long long k = 0; k < cuda::unpack_items(a.unpack); ++k) cuda::unpack_at<float>(a.unpack, k);
                break;
        }
    }
    std::vector<std::vector<float>> out;
    for (int32_t o : p.output_bufs) {
        const float* f = reinterpret_cast<const float*>(arena + mp.offsets[size_t(o)]);
        out.emplace_back(f, f + p.buffers[size_t(o)].bytes() / 4);
    }
    return out;
}

Tensor random_input(Shape s, uint32_t seed, float lo, float hi) {
    auto v = yoloc_test::random_floats(size_t(shape_numel(s)), seed, 1.0f);
    for (auto& x : v) x = lo + (x + 1.f) * 0.5f * (hi - lo);
    return Tensor::from_floats(s, v);
}

// A topological order of `dag` (Kahn; default: the DAG of the data alone): `latest`
// picks the ready op with the highest index first (runs each branch as early as it
// can: the head of a level before the rest of the neck), else a seeded random ready op.
std::vector<size_t> other_order(const Plan& p, bool latest, uint32_t seed, const MemoryPlan* mp = nullptr) {
    const OpDag dag = op_dag(p, mp);
    const size_t n = p.ops.size();
    std::vector<size_t> order;
    std::vector<bool> done(n, false);
    uint32_t r = seed;
    while (order.size() < n) {
        std::vector<size_t> ready;
        for (size_t i = 0; i < n; ++i) {
            if (done[i]) continue;
            bool ok = true;
            for (int d : dag.deps[i]) ok = ok && done[size_t(d)];
            if (ok) ready.push_back(i);
        }
        r = r * 1664525u + 1013904223u;
        const size_t pick = latest ? ready.back() : ready[(r >> 8) % ready.size()];
        done[pick] = true;
        order.push_back(pick);
    }
    return order;
}

double max_rel(const std::vector<float>& a, const Tensor& b) {
    EXPECT_EQ(int64_t(a.size()), b.numel());
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        double d = std::fabs(double(a[i]) - double(b.data<float>()[i])) / (1.0 + std::fabs(double(b.data<float>()[i])));
        if (!(d <= e)) e = std::isnan(d) ? 1e30 : d;
    }
    return e;
}

}  // namespace

TEST(EngineEmulate, TinyModelMatchesReference) {
    for (int64_t batch : {1, 3}) {
        Model m = yoloc_test::tiny_engine_model(batch);
        Plan p = build_plan(m, {});
        Tensor x = random_input({batch, 6, 10, 12}, 21, -1.f, 1.f);
        auto got = emulate(p, x);
        TensorMap ref = ReferenceExecutor(m).run({{"x", x}});
        ASSERT_EQ(got.size(), 2u);
        EXPECT_LE(max_rel(got[0], ref.at("y")), 1e-5) << "batch " << batch;
        EXPECT_LE(max_rel(got[1], ref.at("d")), 1e-5) << "batch " << batch;
    }
}

TEST(EngineEmulate, Yolov8nMatchesReference) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    // 320x320 keeps the plain loops quick; the plan is the same op for op.
    Model m320 = m;
    set_input_size(m320, 1, 320);  // re-targets the exported anchors/reshapes too
    Tensor x = random_input({1, 3, 320, 320}, 5, 0.f, 1.f);
    TensorMap ref = ReferenceExecutor(m320).run({{m.graph.inputs[0].name, x}});
    for (SiblingFusion fusion : {SiblingFusion::Off, SiblingFusion::On}) {
        PlanOptions o;
        o.fuse_siblings = fusion;
        Plan p = build_plan(m320, o);
        EXPECT_EQ(p.stats.convs_fused_siblings, fusion == SiblingFusion::On ? 3 : 0);
        auto got = emulate(p, x);
        const Tensor& r = ref.at(p.output_names[0]);
        ASSERT_EQ(got[0].size(), size_t(r.numel()));
        double e = max_rel(got[0], r);
        std::printf("yolov8n 320 emulated plan (horizontal fusion %s) vs reference: max rel diff %.3g\n",
                    fusion == SiblingFusion::On ? "on" : "off", e);
        EXPECT_LE(e, 1e-4);
    }
}

// The runtime runs independent branches on several streams, so ops may run in any order
// the data allows. The Concurrent arena (no shared bytes between them) must give the same outputs in
// such orders; the Sequential arena, which lets a later branch reuse bytes an earlier
// one still needs, must not (so the check can fail), which is why the runtime then adds
// the arena's own order to the DAG.
TEST(EngineEmulate, ConcurrentArenaGivesTheSameOutputsInAnyOrderTheDataAllows) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    set_input_size(m, 1, 160);
    Plan p = build_plan(m, {});
    p.memory_mode = Plan::MemoryMode::Concurrent;
    Tensor x = random_input({1, 3, 160, 160}, 9, 0.f, 1.f);
    const std::vector<float> ref = emulate(p, x)[0];
    const Tensor ref_t = Tensor::from_floats(p.output_shapes[0], ref);
    const std::vector<size_t> latest = other_order(p, true, 0);
    size_t moved = 0;
    for (size_t i = 0; i < latest.size(); ++i) moved += latest[i] != i;
    EXPECT_GT(moved, 10u) << "the data DAG should allow another order";
    EXPECT_EQ(max_rel(emulate(p, x, latest)[0], ref_t), 0.0);
    for (uint32_t seed : {1u, 2u, 3u}) EXPECT_EQ(max_rel(emulate(p, x, other_order(p, false, seed))[0], ref_t), 0.0);

    Plan seq = p;
    seq.memory_mode = Plan::MemoryMode::Sequential;
    EXPECT_LT(plan_memory(seq).arena_bytes, plan_memory(p).arena_bytes);
    EXPECT_EQ(max_rel(emulate(seq, x)[0], ref_t), 0.0);
    EXPECT_GT(max_rel(emulate(seq, x, latest)[0], ref_t), 1e-3) << "the sequential arena should break this order";
    std::printf("arena at 160: sequential %s, concurrent %s; ops moved by the other order: %zu of %zu\n",
                format_bytes(plan_memory(seq).arena_bytes).c_str(), format_bytes(plan_memory(p).arena_bytes).c_str(),
                moved, p.ops.size());
}

// The Bounded arena (the default) keeps independent branches apart only while the arena
// stays under a cap; the buffers past it share bytes in op order, and the runtime's DAG
// (op_dag with the memory plan) orders the ops that share. Any order of that DAG must
// give the same outputs. Here the cap is the Sequential arena itself, the tightest, so
// that many buffers share; an order of the data DAG alone must then break it.
TEST(EngineEmulate, BoundedArenaGivesTheSameOutputsInAnyOrderItsDagAllows) {
    REQUIRE_SHARED();
    Model m = load_onnx(yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx");
    set_input_size(m, 1, 160);
    Plan p = build_plan(m, {});
    ASSERT_EQ(p.memory_mode, Plan::MemoryMode::Bounded);
    Plan seq = p, conc = p;
    seq.memory_mode = Plan::MemoryMode::Sequential;
    conc.memory_mode = Plan::MemoryMode::Concurrent;
    const MemoryPlan ms = plan_memory(seq), mc = plan_memory(conc);
    MemoryPlan mb = plan_memory_bounded(p, ms.arena_bytes);
    EXPECT_LT(mb.arena_bytes, mc.arena_bytes);
    EXPECT_NO_THROW(verify_memory_plan(p, mb));
    EXPECT_THROW(verify_memory_plan(conc, mb), Error) << "some independent buffers should share bytes";

    Tensor x = random_input({1, 3, 160, 160}, 11, 0.f, 1.f);
    const std::vector<float> ref = emulate(p, x, {}, &mb)[0];
    const Tensor ref_t = Tensor::from_floats(p.output_shapes[0], ref);
    EXPECT_EQ(max_rel(emulate(conc, x)[0], ref_t), 0.0);
    EXPECT_EQ(max_rel(emulate(p, x, other_order(p, true, 0, &mb), &mb)[0], ref_t), 0.0);
    for (uint32_t seed : {1u, 2u, 3u})
        EXPECT_EQ(max_rel(emulate(p, x, other_order(p, false, seed, &mb), &mb)[0], ref_t), 0.0);
    EXPECT_GT(max_rel(emulate(p, x, other_order(p, true, 0), &mb)[0], ref_t), 1e-3)
        << "the data DAG alone should allow an order that the shared bytes break";
    std::printf("arena at 160: sequential %s, bounded at the sequential size %s, concurrent %s\n",
                format_bytes(ms.arena_bytes).c_str(), format_bytes(mb.arena_bytes).c_str(),
                format_bytes(mc.arena_bytes).c_str());
}
