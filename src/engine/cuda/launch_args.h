// Plan op -> kernel arguments, shared by the CUDA runtime and the CPU emulation
// test, so that what the test checks is exactly what the GPU is given.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "engine/cuda/element_ops.h"
#include "engine/cuda/generic_ops.h"
#include "engine/plan.h"

namespace yoloc {
namespace cuda {

// A Generic op's arguments: the struct of generic_ops.h that `kind` names is filled.
struct GenericArgs {
    engine::GenericKind kind = engine::GenericKind::Unary;
    bool none = false;   // nothing to launch: a Const whose buffer is its data in the device weights
    bool int32 = false;  // Binary, TopK, Reduce: the operands are int32
    int elem_bytes = 4;  // ops that move elements unchanged: their size
    UnaryArgs unary;
    BinaryArgs binary;
    WhereArgs where;
    SoftmaxArgs softmax;
    MatMulArgs matmul;
    StridedCopyArgs copy;  // Copy, and Const (from the op's data in the device weights)
    GatherArgs gather;
    GatherElementsArgs gather_elements;
    TopKArgs topk;
    ReduceArgs reduce;
    CastArgs cast;
    FakeQuantArgs fake_quant;
    ConvTransposeArgs conv_transpose;
};

// A generic op's data in the host image of the device weight block (`image`, laid out
// by `L` = device_weight_layout): float32 at L.w / L.b, except that a Const writing an
// int32 buffer gets its values as int32 there, so that running it moves bits unchanged.
inline void write_generic_weights(const engine::Plan& p, size_t i, const engine::DeviceWeightLayout& L,
                                  uint8_t* image) {
    const engine::PlanOp& op = p.ops[i];
    if (op.kind != engine::OpKind::Generic) return;
    if (L.w[i] >= 0) std::memcpy(image + L.w[i], p.weights.data() + op.w_off, size_t(op.w_count) * 4);
    if (L.b[i] < 0) return;
    const float* src = p.weights.data() + op.b_off;
    const bool ints = engine::GenericKind(op.gop) == engine::GenericKind::Const && p.buffers[size_t(op.out.buf)].integer;
    if (!ints) {
        std::memcpy(image + L.b[i], src, size_t(op.b_count) * 4);
        return;
    }
    // Integers travel as floats in the blob (exact below 2^24, build_plan clamps them).
    for (int64_t k = 0; k < op.b_count; ++k) {
        const int32_t v = float_to_int(src[k]);
        std::memcpy(image + L.b[i] + k * 4, &v, 4);
    }
}

// Buffers whose bytes are the device weight block's rather than the arena's: the Tensor
// buffer of a Const op, whose data write_generic_weights puts there once at load. Its
// readers read the weights and the Const op launches nothing (a copy on every run
// otherwise: up to 67k values per run in a pose model's decode tables). Per buffer: the
// byte offset in the weight block, or -1. The Const must be the buffer's only writer
// (a graph output buffer is the runtime's to copy out, and stays in the arena).
inline std::vector<int64_t> weight_resident_buffers(const engine::Plan& p, const engine::DeviceWeightLayout& L) {
    std::vector<int64_t> at(p.buffers.size(), -1);
    std::vector<int> writers(p.buffers.size(), 0);
    for (const auto& op : p.ops) {
        ++writers[size_t(op.out.buf)];
        for (const auto& v : op.more_out) ++writers[size_t(v.buf)];
    }
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const engine::PlanOp& op = p.ops[i];
        if (op.kind != engine::OpKind::Generic || engine::GenericKind(op.gop) != engine::GenericKind::Const) continue;
        const size_t b = size_t(op.out.buf);
        if (p.buffers[b].kind == engine::BufferKind::Tensor && writers[b] == 1 && L.b[i] >= 0) at[b] = L.b[i];
    }
    return at;
}

// The kernel arguments of generic op i (its PlanOp fields as plan.h documents them per
// GenericKind): `at(view)` locates a buffer; `w` / `b` the op's data in the device
// weights (write_generic_weights). Plan::validate has bounded every index; what is
// narrowed to int here is checked to fit, so a crafted plan throws instead of wrapping.
template <typename At>
GenericArgs make_generic_args(const engine::Plan& p, size_t i, At at, const void* w, const void* b) {
    using engine::GenericKind;
    const engine::PlanOp& op = p.ops[i];
    auto buf = [&](const engine::View& v) -> const engine::PlanBuffer& { return p.buffers[size_t(v.buf)]; };
    auto numel = [&](const engine::View& v) { return shape_numel(buf(v).shape); };
    auto narrow = [&](int64_t v) {
        YOLOC_CHECK(v >= INT32_MIN && v <= INT32_MAX, "generic op ", op.name, ": parameter ", v,
                    " does not fit the kernels' 32-bit indices");
        return int(v);
    };
    auto ints = [&](size_t at_k, int* dst, size_t n) {
        YOLOC_CHECK(at_k + n <= op.ints.size(), "generic op ", op.name, " has too few parameters");
        for (size_t k = 0; k < n; ++k) dst[k] = narrow(op.ints[at_k + k]);
    };
    auto in = [&](size_t k) { return static_cast<const void*>(at(op.in.at(k))); };
    void* out = at(op.out);
    const size_t R = size_t(kGenericRank);
    YOLOC_CHECK(op.gop >= 0 && op.gop <= int32_t(GenericKind::ConvTranspose), "generic op ", op.name,
                " has unknown kind ", op.gop);
    GenericArgs g;
    g.kind = GenericKind(op.gop);
    g.elem_bytes = buf(op.out).elem_bytes;
    switch (g.kind) {
        case GenericKind::Unary: {
            UnaryArgs& a = g.unary;
            a.x = static_cast<const float*>(in(0));
            a.y = static_cast<float*>(out);
            a.n = numel(op.out);
            a.op = op.sub;
            a.alpha = op.floats.at(0);
            a.beta = op.floats.at(1);
            break;
        }
        case GenericKind::Binary: {
            BinaryArgs& a = g.binary;
            a.a = in(0);
            a.b = in(1);
            a.y = out;
            a.op = op.sub;
            ints(0, a.dims, R);
            ints(R, a.as, R);
            ints(2 * R, a.bs, R);
            g.int32 = buf(op.in[0]).integer;
            break;
        }
        case GenericKind::Where: {
            WhereArgs& a = g.where;
            a.c = static_cast<const int*>(in(0));
            a.a = in(1);
            a.b = in(2);
            a.y = out;
            ints(0, a.dims, R);
            ints(R, a.cs, R);
            ints(2 * R, a.as, R);
            ints(3 * R, a.bs, R);
            break;
        }
        case GenericKind::Softmax: {
            SoftmaxArgs& a = g.softmax;
            a.x = static_cast<const float*>(in(0));
            a.y = static_cast<float*>(out);
            a.outer = narrow(op.ints.at(0));
            a.len = narrow(op.ints.at(1));
            a.inner = narrow(op.ints.at(2));
            a.log = op.sub;
            break;
        }
        case GenericKind::MatMul: {
            MatMulArgs& a = g.matmul;
            a.a = static_cast<const float*>(in(0));
            a.b = static_cast<const float*>(in(1));
            a.y = static_cast<float*>(out);
            a.m = narrow(op.ints.at(0));
            a.n = narrow(op.ints.at(1));
            a.k = narrow(op.ints.at(2));
            ints(3, a.batch, size_t(kMatMulBatchRank));
            ints(3 + size_t(kMatMulBatchRank), a.as, size_t(kMatMulBatchRank));
            ints(3 + 2 * size_t(kMatMulBatchRank), a.bs, size_t(kMatMulBatchRank));
            break;
        }
        case GenericKind::Copy: {
            StridedCopyArgs& a = g.copy;
            a.x = in(0);
            a.y = out;
            ints(0, a.dims, R);
            ints(R, a.xs, R);
            ints(2 * R, a.ys, R);
            a.x_off = op.ints.at(3 * R);
            a.y_off = op.ints.at(3 * R + 1);
            break;
        }
        case GenericKind::Gather: {
            GatherArgs& a = g.gather;
            a.x = in(0);
            a.idx = static_cast<const int*>(in(1));
            a.y = out;
            a.outer = narrow(op.ints.at(0));
            a.len = narrow(op.ints.at(1));
            a.inner = narrow(op.ints.at(2));
            a.count = narrow(op.ints.at(3));
            break;
        }
        case GenericKind::GatherElements: {
            GatherElementsArgs& a = g.gather_elements;
            a.x = in(0);
            a.idx = static_cast<const int*>(in(1));
            a.y = out;
            ints(0, a.dims, R);
            ints(R, a.xs, R);
            a.axis = narrow(op.ints.at(2 * R));
            a.len = narrow(op.ints.at(2 * R + 1));
            break;
        }
        case GenericKind::TopK: {
            TopKArgs& a = g.topk;
            a.x = in(0);
            a.values = out;
            a.indices = static_cast<int*>(at(op.more_out.at(0)));
            a.outer = narrow(op.ints.at(0));
            a.len = narrow(op.ints.at(1));
            a.inner = narrow(op.ints.at(2));
            a.k = narrow(op.ints.at(3));
            a.largest = op.sub;
            g.int32 = buf(op.in[0]).integer;
            break;
        }
        case GenericKind::Reduce: {
            ReduceArgs& a = g.reduce;
            a.x = in(0);
            a.y = out;
            a.op = op.sub;
            ints(0, a.dims, R);
            ints(R, a.xs, R);
            ints(2 * R, a.rdims, R);
            ints(3 * R, a.rs, R);
            g.int32 = buf(op.in[0]).integer;
            break;
        }
        case GenericKind::Cast: {
            CastArgs& a = g.cast;
            a.x = in(0);
            a.y = out;
            a.n = numel(op.out);
            a.kind = op.sub;
            break;
        }
        case GenericKind::Const: {
            // Where the buffer is not the weights' own bytes (weight_resident_buffers), each
            // run copies the data from the device weights into it.
            YOLOC_CHECK(b != nullptr, "Const ", op.name, " has no data on the device");
            g.none = out == b;
            StridedCopyArgs& a = g.copy;
            a.x = b;
            a.y = out;
            a.dims[R - 1] = narrow(op.b_count);
            a.xs[R - 1] = 1;
            a.ys[R - 1] = 1;
            break;
        }
        case GenericKind::FakeQuant: {
            FakeQuantArgs& a = g.fake_quant;
            a.x = static_cast<const float*>(in(0));
            a.y = static_cast<float*>(out);
            a.n = numel(op.out);
            a.scale = op.floats.at(0);
            break;
        }
        case GenericKind::ConvTranspose: {
            YOLOC_CHECK(w != nullptr && b != nullptr, "ConvTranspose ", op.name, " has no weights on the device");
            ConvTransposeArgs& a = g.conv_transpose;
            const Shape& xs = buf(op.in.at(0)).shape;
            const Shape& ys = buf(op.out).shape;
            a.x = static_cast<const float*>(in(0));
            a.wt = static_cast<const float*>(w);
            a.bias = static_cast<const float*>(b);
            a.y = static_cast<float*>(out);
            a.n = narrow(xs.at(0));
            a.c = narrow(xs.at(1));
            a.h = narrow(xs.at(2));
            a.w = narrow(xs.at(3));
            a.m = narrow(ys.at(1));
            a.oh = narrow(ys.at(2));
            a.ow = narrow(ys.at(3));
            a.kh = narrow(op.ints.at(0));
            a.kw = narrow(op.ints.at(1));
            a.sh = narrow(op.ints.at(2));
            a.sw = narrow(op.ints.at(3));
            a.ph = narrow(op.ints.at(4));
            a.pw = narrow(op.ints.at(5));
            a.group = narrow(op.ints.at(6));
            break;
        }
    }
    return g;
}

struct OpArgs {
    engine::OpKind kind = engine::OpKind::Conv;
    GenericArgs generic;
    ConvArgs conv;
    PoolArgs pool;
    ResizeArgs resize;
    CopyArgs copy;
    PackArgs pack;
    UnpackArgs unpack;
    DetectArgs detect;
};

// `arena` + `offsets` (from the memory plan) locate every buffer, except those at
// `resident` offsets (weight_resident_buffers) into the device `weights` block; `w`/`b`
// are the op's weights (in the activation precision, or int8 [m][wk] for an INT8 conv)
// and float bias when it is a Conv, its data (write_generic_weights) when it is Generic; `qs` an INT8 conv's per-channel s_in * s_w; `ysc` its
// output scales (PlanOp::ys_off) when it writes an int8 buffer.
inline OpArgs make_op_args(const engine::Plan& p, size_t i, uint8_t* arena, const std::vector<int64_t>& offsets,
                           const void* w, const float* b, const float* qs = nullptr,
                           const float* ysc = nullptr, const uint8_t* weights = nullptr,
                           const std::vector<int64_t>* resident = nullptr) {
    using engine::OpKind;
    const engine::PlanOp& op = p.ops[i];
    auto buf = [&](int32_t id) -> const engine::PlanBuffer& { return p.buffers[size_t(id)]; };
    auto base = [&](int32_t id) {
        // Kernels only read resident buffers (their one writer, the Const op, launches nothing).
        if (resident && weights && (*resident)[size_t(id)] >= 0)
            return const_cast<uint8_t*>(weights) + (*resident)[size_t(id)];
        return arena + offsets[size_t(id)];
    };
    auto at = [&](const engine::View& v) { return static_cast<void*>(base(v.buf) + v.c_off * buf(v.buf).elem_bytes); };
    auto cs = [&](const engine::View& v) { return int(buf(v.buf).shape[3]); };
    auto i8 = [&](const engine::View& v) { return buf(v.buf).elem_bytes == 1 ? 1 : 0; };
    auto dim = [&](const engine::View& v, int d) { return int(buf(v.buf).shape[size_t(d)]); };
    // An NHWC channel-slice input: pointer, batch, height, width, channel stride, channels.
    auto set_input = [&](auto& c, const engine::View& v) {
        c.x = at(v);
        c.n = dim(v, 0);
        c.h = dim(v, 1);
        c.w = dim(v, 2);
        c.xs = cs(v);
        c.c = int(v.c);
    };
    OpArgs a;
    a.kind = op.kind;
    switch (op.kind) {
        case OpKind::InputPack: {
            const auto& ib = buf(op.in[0].buf);
            a.pack.x = reinterpret_cast<const float*>(base(op.in[0].buf));
            a.pack.n = int(ib.shape[0]);
            a.pack.c = int(ib.shape[1]);
            a.pack.h = int(ib.shape[2]);
            a.pack.w = int(ib.shape[3]);
            a.pack.y = at(op.out);
            a.pack.ys = cs(op.out);
            break;
        }
        case OpKind::Conv: {
            ConvArgs& c = a.conv;
            if (buf(op.in[0].buf).kind == engine::BufferKind::Input) {  // the stem: NCHW float32
                const auto& ib = buf(op.in[0].buf);
                c.x = base(op.in[0].buf);
                c.nchw = 1;
                c.n = int(ib.shape[0]);
                c.c = int(ib.shape[1]);
                c.h = int(ib.shape[2]);
                c.w = int(ib.shape[3]);
                c.xs = c.c;
            } else {
                set_input(c, op.in[0]);
            }
            c.y = at(op.out);
            c.oh = dim(op.out, 1);
            c.ow = dim(op.out, 2);
            c.ys = cs(op.out);
            c.m = int(op.out.c);
            if (op.in.size() == 2) {
                c.res = at(op.in[1]);
                c.rs = cs(op.in[1]);
            }
            c.wt = w;
            c.bias = b;
            c.kh = op.kh;
            c.kw = op.kw;
            c.sh = op.sh;
            c.sw = op.sw;
            c.ph = op.ph;
            c.pw = op.pw;
            c.group = op.group;
            c.silu = op.silu ? 1 : 0;
            if (op.int8()) {
                YOLOC_CHECK(qs != nullptr, "INT8 conv ", op.name, " has no scales on the device");
                c.qscale = qs;
                c.in_scale = op.in_scale;
                c.res_scale = op.res_scale;
                c.wk = engine::int8_weight_stride(op);
                c.x_i8 = c.nchw ? 0 : i8(op.in[0]);
                if (op.in.size() == 2) c.res_i8 = i8(op.in[1]);
                if (op.ys_count > 0) {
                    YOLOC_CHECK(ysc != nullptr, "INT8 conv ", op.name, " has no output scales on the device");
                    c.ysc = ysc;
                }
            }
            break;
        }
        case OpKind::MaxPool: {
            PoolArgs& c = a.pool;
            set_input(c, op.in[0]);
            c.i8 = i8(op.in[0]);
            c.y = at(op.out);
            c.oh = dim(op.out, 1);
            c.ow = dim(op.out, 2);
            c.ys = cs(op.out);
            c.kh = op.kh;
            c.kw = op.kw;
            c.sh = op.sh;
            c.sw = op.sw;
            c.ph = op.ph;
            c.pw = op.pw;
            YOLOC_CHECK(op.more_out.size() <= 3, "MaxPool chain ", op.name, " is too long");
            c.chain = 1 + int(op.more_out.size());
            for (size_t j = 0; j < op.more_out.size(); ++j) {
                c.ym[j] = at(op.more_out[j]);
                c.yms[j] = cs(op.more_out[j]);
            }
            break;
        }
        case OpKind::Resize: {
            ResizeArgs& c = a.resize;
            set_input(c, op.in[0]);
            c.i8 = i8(op.in[0]);
            c.y = at(op.out);
            c.ys = cs(op.out);
            c.fy = op.fy;
            c.fx = op.fx;
            YOLOC_CHECK(dim(op.out, 1) == c.h * c.fy && dim(op.out, 2) == c.w * c.fx, "Resize ", op.name,
                        ": output size is not input * factor");
            break;
        }
        case OpKind::Copy:
        case OpKind::FakeQuant: {
            CopyArgs& c = a.copy;
            if (op.kind == OpKind::FakeQuant) c.scale = op.in_scale;
            set_input(c, op.in[0]);
            c.i8 = i8(op.in[0]);
            c.y = at(op.out);
            c.ys = cs(op.out);
            break;
        }
        case OpKind::Detect: {
            DetectArgs& c = a.detect;
            YOLOC_CHECK(op.in.size() <= size_t(kMaxDetectLevels), "Detect has too many levels");
            c.levels = int(op.in.size());
            c.anchors = 0;
            for (size_t l = 0; l < op.in.size(); ++l) {
                c.x[l] = at(op.in[l]);
                c.h[l] = dim(op.in[l], 1);
                c.w[l] = dim(op.in[l], 2);
                c.xs[l] = cs(op.in[l]);
                c.stride[l] = op.strides[l];
                c.anchors += c.h[l] * c.w[l];
            }
            c.n = dim(op.in[0], 0);
            c.reg_max = op.reg_max;
            c.nc = op.nc;
            c.xyxy = op.xyxy ? 1 : 0;
            c.out = reinterpret_cast<float*>(base(op.out.buf));
            const auto& ob = buf(op.out.buf);
            YOLOC_CHECK(ob.shape.size() == 3 && ob.shape[0] == c.n && ob.shape[1] == 4 + c.nc &&
                            ob.shape[2] == c.anchors, "Detect ", op.name, ": output shape does not match the levels");
            break;
        }
        case OpKind::OutputUnpack: {
            UnpackArgs& c = a.unpack;
            set_input(c, op.in[0]);
            c.y = reinterpret_cast<float*>(base(op.out.buf));
            break;
        }
        case OpKind::Generic:
            a.generic = make_generic_args(p, i, [&](const engine::View& v) { return at(v); }, w, b);
            break;
    }
    return a;
}

}  // namespace cuda
}  // namespace yoloc
