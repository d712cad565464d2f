// Plan op -> kernel arguments, shared by the CUDA runtime and the CPU emulation
// test, so that what the test checks is exactly what the GPU is given.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "engine/cuda/element_ops.h"
#include "engine/plan.h"

namespace yoloc {
namespace cuda {

struct OpArgs {
    engine::OpKind kind = engine::OpKind::Conv;
    ConvArgs conv;
    PoolArgs pool;
    ResizeArgs resize;
    CopyArgs copy;
    PackArgs pack;
    UnpackArgs unpack;
    DetectArgs detect;
};

// `arena` + `offsets` (from the memory plan) locate every buffer; `w`/`b` are the
// op's weights (in the activation precision, or int8 [m][wk] for an INT8 conv) and
// float bias when it is a Conv; `qs` an INT8 conv's per-channel s_in * s_w; `ysc` its
// output scales (PlanOp::ys_off) when it writes an int8 buffer.
inline OpArgs make_op_args(const engine::Plan& p, size_t i, uint8_t* arena, const std::vector<int64_t>& offsets,
                           const void* w, const float* b, const float* qs = nullptr,
                           const float* ysc = nullptr) {
    using engine::OpKind;
    const engine::PlanOp& op = p.ops[i];
    auto buf = [&](int32_t id) -> const engine::PlanBuffer& { return p.buffers[size_t(id)]; };
    auto base = [&](int32_t id) { return arena + offsets[size_t(id)]; };
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
    }
    return a;
}

}  // namespace cuda
}  // namespace yoloc
