// Runs an FP32 engine plan on the host with the very element functions the CUDA kernels
// use (engine/cuda/element_ops.h, generic_ops.h) and the runtime's argument builder
// (engine/cuda/launch_args.h: make_op_args and write_generic_weights), over one arena laid
// out by the memory planner and poisoned with NaN. What differs from the GPU is only the
// loop that runs each element function.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/tensor.h"
#include "engine/cuda/launch_args.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"

namespace yoloc_test {

// One generic op, element by element (each launcher of generic.cu, as a host loop).
inline void emulate_generic(const yoloc::cuda::GenericArgs& g) {
    using namespace yoloc::cuda;
    using yoloc::engine::GenericKind;
    if (g.none) return;
    switch (g.kind) {
        case GenericKind::Unary:
            for (long long i = 0; i < unary_items(g.unary); ++i) unary_at<float>(g.unary, i);
            break;
        case GenericKind::Binary:
            for (long long i = 0; i < binary_items(g.binary); ++i)
                g.int32 ? binary_at<int>(g.binary, i) : binary_at<float>(g.binary, i);
            break;
        case GenericKind::Where:
            EXPECT_EQ(g.elem_bytes, 4);
            for (long long i = 0; i < where_items(g.where); ++i) where_at<uint32_t>(g.where, i);
            break;
        case GenericKind::Softmax:
            for (long long i = 0; i < softmax_items(g.softmax); ++i) softmax_at<float>(g.softmax, i);
            break;
        case GenericKind::MatMul:
            for (long long i = 0; i < matmul_items(g.matmul); ++i) matmul_at<float>(g.matmul, i);
            break;
        case GenericKind::Copy:
        case GenericKind::Const:
            EXPECT_EQ(g.elem_bytes, 4);
            for (long long i = 0; i < strided_copy_items(g.copy); ++i) strided_copy_at<uint32_t>(g.copy, i);
            break;
        case GenericKind::Gather:
            for (long long i = 0; i < gather_items(g.gather); ++i) gather_at<uint32_t>(g.gather, i);
            break;
        case GenericKind::GatherElements:
            for (long long i = 0; i < gather_elements_items(g.gather_elements); ++i)
                gather_elements_at<uint32_t>(g.gather_elements, i);
            break;
        case GenericKind::TopK:
            // The radix-select kernel's algorithm, one row per work item (topk_row_at).
            for (long long i = 0; i < topk_row_items(g.topk); ++i)
                g.int32 ? topk_row_at<int>(g.topk, i) : topk_row_at<float>(g.topk, i);
            break;
        case GenericKind::Reduce:
            for (long long i = 0; i < reduce_items(g.reduce); ++i)
                g.int32 ? reduce_at<int>(g.reduce, i) : reduce_at<float>(g.reduce, i);
            break;
        case GenericKind::Cast:
            for (long long i = 0; i < cast_items(g.cast); ++i) cast_at<float>(g.cast, i);
            break;
        case GenericKind::FakeQuant:
            for (long long i = 0; i < fake_quant_items(g.fake_quant); ++i) fake_quant_at<float>(g.fake_quant, i);
            break;
        case GenericKind::ConvTranspose:
            for (long long i = 0; i < conv_transpose_items(g.conv_transpose); ++i)
                conv_transpose_at<float>(g.conv_transpose, i);
            break;
    }
}

// The host image of the engine's device weight block for the ops the emulation takes
// from it (generic ops' data; convs read the plan's float32 weights, their FP32 layout).
inline std::vector<uint8_t> emulated_weights(const yoloc::engine::Plan& p, yoloc::engine::DeviceWeightLayout* L) {
    *L = yoloc::engine::device_weight_layout(p);
    std::vector<uint8_t> image(size_t(L->bytes + 4), 0xFF);
    for (size_t i = 0; i < p.ops.size(); ++i) yoloc::cuda::write_generic_weights(p, i, *L, image.data());
    return image;
}

// Runs the ops in `order` (default: plan order) over the arena `given` (default: the
// plan's own memory plan); returns every output buffer's floats. The runtime's streams
// may run the ops in any topological order of op_dag(plan, &memory plan).
inline std::vector<std::vector<float>> emulate_plan(const yoloc::engine::Plan& p, const yoloc::Tensor& x,
                                                    std::vector<size_t> order = {},
                                                    const yoloc::engine::MemoryPlan* given = nullptr) {
    using namespace yoloc;
    using namespace yoloc::engine;
    EXPECT_EQ(p.precision, Precision::FP32) << "the host emulation runs float32 plans";
    const MemoryPlan mp = given ? *given : plan_memory(p);
    std::vector<float> arena_f(size_t(mp.arena_bytes / 4 + 1), std::nanf(""));
    auto* arena = reinterpret_cast<uint8_t*>(arena_f.data());
    EXPECT_EQ(x.nbytes(), size_t(p.buffers[size_t(p.input_buf)].bytes()));
    std::memcpy(arena + mp.offsets[size_t(p.input_buf)], x.raw(), x.nbytes());
    DeviceWeightLayout L;
    const std::vector<uint8_t> image = emulated_weights(p, &L);
    const std::vector<int64_t> resident = cuda::weight_resident_buffers(p, L);
    if (order.empty())
        for (size_t i = 0; i < p.ops.size(); ++i) order.push_back(i);
    for (size_t i : order) {
        const PlanOp& op = p.ops[i];
        const void* w = nullptr;
        const void* b = nullptr;
        if (op.kind == OpKind::Conv) {
            w = p.weights.data() + op.w_off;
            b = p.weights.data() + op.b_off;
        } else if (op.kind == OpKind::Generic) {
            if (L.w[i] >= 0) w = image.data() + L.w[i];
            if (L.b[i] >= 0) b = image.data() + L.b[i];
        }
        cuda::OpArgs a =
            cuda::make_op_args(p, i, arena, mp.offsets, w, static_cast<const float*>(b), nullptr, nullptr, image.data(),
                               &resident);
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
            case OpKind::FakeQuant:
                for (long long k = 0; k < cuda::copy_items(a.copy); ++k) cuda::copy_at<float>(a.copy, k);
                break;
            case OpKind::Detect:
                for (long long k = 0; k < cuda::detect_items(a.detect); ++k) cuda::detect_at<float>(a.detect, k);
                break;
            case OpKind::OutputUnpack:
                for (long long k = 0; k < cuda::unpack_items(a.unpack); ++k) cuda::unpack_at<float>(a.unpack, k);
                break;
            case OpKind::Generic:
                emulate_generic(a.generic);
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

}  // namespace yoloc_test
