#include "engine/plan.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "ir/shape_inference.h"
#include "quant/fake_quant.h"
#include "yolo/input_size.h"
#include "yolo/recognize.h"

namespace yoloc {
namespace engine {

const char* precision_name(Precision p) {
    switch (p) {
        case Precision::FP32: return "fp32";
        case Precision::FP16: return "fp16";
        case Precision::INT8: return "int8";
    }
    return "?";
}

Precision parse_precision(const std::string& s) {
    if (s == "fp32") return Precision::FP32;
    if (s == "fp16") return Precision::FP16;
    if (s == "int8" || s == "best") return Precision::INT8;
    fail("unknown precision '", s, "' (expected fp32, fp16, int8 or best)");
}

const char* op_kind_name(OpKind k) {
    switch (k) {
        case OpKind::InputPack: return "InputPack";
        case OpKind::Conv: return "Conv";
        case OpKind::MaxPool: return "MaxPool";
        case OpKind::Resize: return "Resize";
        case OpKind::Copy: return "Copy";
        case OpKind::Detect: return "Detect";
        case OpKind::OutputUnpack: return "OutputUnpack";
        case OpKind::FakeQuant: return "FakeQuant";
        case OpKind::Generic: return "Generic";
    }
    return "?";
}

const char* generic_kind_name(GenericKind k) {
    switch (k) {
        case GenericKind::Unary: return "Unary";
        case GenericKind::Binary: return "Binary";
        case GenericKind::Where: return "Where";
        case GenericKind::Softmax: return "Softmax";
        case GenericKind::MatMul: return "MatMul";
        case GenericKind::Copy: return "Copy";
        case GenericKind::Gather: return "Gather";
        case GenericKind::GatherElements: return "GatherElements";
        case GenericKind::TopK: return "TopK";
        case GenericKind::Reduce: return "Reduce";
        case GenericKind::Cast: return "Cast";
        case GenericKind::Const: return "Const";
        case GenericKind::FakeQuant: return "FakeQuant";
        case GenericKind::ConvTranspose: return "ConvTranspose";
    }
    return "?";
}

int64_t PlanBuffer::bytes() const { return shape_numel(shape) * elem_bytes; }

int int8_weight_stride(const PlanOp& op) {
    const int k = op.kh * op.kw * int(op.in.empty() ? 0 : op.in[0].c);
    return (k + 15) / 16 * 16;
}

DeviceWeightLayout device_weight_layout(const Plan& p) {
    auto align256 = [](int64_t x) { return (x + 255) / 256 * 256; };
    DeviceWeightLayout L;
    const size_t n = p.ops.size();
    L.w.assign(n, -1);
    L.b.assign(n, -1);
    L.s.assign(n, -1);
    L.y.assign(n, -1);
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
        const PlanOp& op = p.ops[i];
        if (op.kind != OpKind::Conv) continue;
        L.w[i] = total;
        total = align256(total + (op.int8() ? int64_t(op.out.c) * int8_weight_stride(op)
                                            : op.w_count * precision_bytes(p.precision)));
        L.b[i] = total;
        total = align256(total + op.b_count * 4);
        if (op.int8()) {
            L.s[i] = total;
            total = align256(total + op.s_count * 4);
        }
        if (op.ys_count > 0) {
            L.y[i] = total;
            total = align256(total + op.ys_count * 4);
        }
    }
    L.bytes = total;
    return L;
}

int64_t Plan::device_weight_bytes() const { return device_weight_layout(*this).bytes; }

void Plan::validate() const {
    auto nb = int32_t(buffers.size());
    for (const auto& b : buffers) {
        YOLOC_CHECK(b.elem_bytes == 2 || b.elem_bytes == 4 ||
                        (b.elem_bytes == 1 && b.kind == BufferKind::Activation && precision == Precision::INT8),
                    "plan: buffer ", b.name, " has element size ", b.elem_bytes);
        YOLOC_CHECK(!b.shape.empty() && b.shape.size() <= 4, "plan: buffer ", b.name, " has rank ", b.shape.size());
        for (int64_t d : b.shape) YOLOC_CHECK(d > 0 && d < (int64_t(1) << 24), "plan: buffer ", b.name, " has dim ", d);
        shape_numel(b.shape, int64_t(1) << 34);
    }
    YOLOC_CHECK(input_buf >= 0 && input_buf < nb && buffers[size_t(input_buf)].kind == BufferKind::Input,
                "plan: bad input buffer");
    YOLOC_CHECK(input_shape.size() == 4 && buffers[size_t(input_buf)].shape == input_shape, "plan: bad input shape");
    YOLOC_CHECK(output_bufs.size() == output_names.size() && output_shapes.size() == output_names.size() &&
                    !output_bufs.empty(), "plan: outputs disagree");
    for (size_t i = 0; i < output_bufs.size(); ++i) {
        int32_t o = output_bufs[i];
        YOLOC_CHECK(o >= 0 && o < nb && buffers[size_t(o)].kind == BufferKind::Output &&
                        buffers[size_t(o)].shape == output_shapes[i], "plan: bad output buffer");
    }
    auto check_view = [&](const View& v, const PlanOp& op, bool nhwc) {
        YOLOC_CHECK(v.buf >= 0 && v.buf < nb, "plan: op ", op.name, " uses buffer ", v.buf, " of ", nb);
        const PlanBuffer& b = buffers[size_t(v.buf)];
        if (nhwc) {
            YOLOC_CHECK(b.kind == BufferKind::Activation && b.shape.size() == 4 && v.c > 0 && v.c_off >= 0 &&
                            v.c_off + v.c <= b.shape[3], "plan: op ", op.name, " has a view outside buffer ", b.name);
        }
    };
    auto wrange = [&](int64_t off, int64_t n, const PlanOp& op) {
        YOLOC_CHECK(off >= 0 && n >= 0 && off + n <= int64_t(weights.size()), "plan: op ", op.name,
                    " reads weights outside the blob");
    };
    auto i8 = [&](const View& v) { return buffers[size_t(v.buf)].elem_bytes == 1; };
    for (const auto& op : ops) {
        switch (op.kind) {
            case OpKind::InputPack:
                YOLOC_CHECK(op.in.size() == 1 && op.in[0].buf == input_buf, "plan: bad InputPack");
                check_view(op.out, op, true);
                break;
            case OpKind::Conv: {
                YOLOC_CHECK(op.in.size() == 1 || op.in.size() == 2, "plan: conv ", op.name, " arity");
                if (op.in[0].buf == input_buf) {  // the stem reading the NCHW float32 input itself
                    YOLOC_CHECK(op.in.size() == 1 && op.in[0].c_off == 0 && op.in[0].c == input_shape[1] &&
                                    op.in[0].c <= kMaxStemChannels && op.group == 1,
                                "plan: conv ", op.name, " reads the input in an unsupported way");
                } else {
                    check_view(op.in[0], op, true);
                }
                for (size_t k = 1; k < op.in.size(); ++k) check_view(op.in[k], op, true);
                check_view(op.out, op, true);
                YOLOC_CHECK(op.kh > 0 && op.kw > 0 && op.sh > 0 && op.sw > 0 && op.group > 0 && op.ph >= 0 &&
                                op.pw >= 0 && op.in[0].c % op.group == 0 && op.out.c % op.group == 0,
                            "plan: conv ", op.name, " has a bad window");
                YOLOC_CHECK(op.w_count == int64_t(op.kh) * op.kw * (op.in[0].c / op.group) * op.out.c &&
                                op.b_count == op.out.c, "plan: conv ", op.name, " has bad weight counts");
                wrange(op.w_off, op.w_count, op);
                wrange(op.b_off, op.b_count, op);
                if (op.in.size() == 2) YOLOC_CHECK(op.in[1].c == op.out.c, "plan: residual width");
                YOLOC_CHECK(op.tactic >= 0 && op.tactic < 4096, "plan: conv ", op.name, " has tactic ", op.tactic);
                YOLOC_CHECK(op.in_scale >= 0.f && op.res_scale >= 0.f && std::isfinite(op.in_scale) &&
                                std::isfinite(op.res_scale), "plan: conv ", op.name, " has bad scales");
                if (op.int8()) {
                    YOLOC_CHECK(precision == Precision::INT8 && op.group == 1 && op.s_count == op.out.c,
                                "plan: INT8 conv ", op.name, " is inconsistent");
                    wrange(op.s_off, op.s_count, op);
                    for (int64_t k = 0; k < op.w_count; ++k) {
                        const float v = weights[size_t(op.w_off + k)];
                        YOLOC_CHECK(v >= -128.f && v <= 127.f && v == std::nearbyint(v), "plan: INT8 conv ", op.name,
                                    " has a weight that is not an int8 value");
                    }
                    for (int64_t k = 0; k < op.s_count; ++k) {
                        const float v = weights[size_t(op.s_off + k)];
                        YOLOC_CHECK(v > 0.f && std::isfinite(v), "plan: INT8 conv ", op.name, " has a bad weight scale");
                    }
                } else {
                    YOLOC_CHECK(op.res_scale == 0.f, "plan: residual fake-quant on a float conv ", op.name);
                }
                if (op.res_scale > 0.f) YOLOC_CHECK(op.in.size() == 2, "plan: conv ", op.name, " res_scale without residual");
                break;
            }
            case OpKind::FakeQuant:
                YOLOC_CHECK(op.in.size() == 1, "plan: op ", op.name, " arity");
                check_view(op.in[0], op, true);
                check_view(op.out, op, true);
                YOLOC_CHECK(op.in[0].c == op.out.c && op.in_scale > 0.f && std::isfinite(op.in_scale),
                            "plan: bad FakeQuant ", op.name);
                break;
            case OpKind::MaxPool:
                for (const auto& v : op.more_out) {
                    check_view(v, op, true);
                    YOLOC_CHECK(v.c == op.out.c && op.sh == 1 && op.sw == 1 && op.kh % 2 == 1 && op.kw % 2 == 1 &&
                                    op.ph == op.kh / 2 && op.pw == op.kw / 2 && op.more_out.size() < 4,
                                "plan: bad MaxPool chain ", op.name);
                }
                [[fallthrough]];
            case OpKind::Resize:
            case OpKind::Copy:
                YOLOC_CHECK(op.in.size() == 1, "plan: op ", op.name, " arity");
                check_view(op.in[0], op, true);
                check_view(op.out, op, true);
                YOLOC_CHECK(op.in[0].c == op.out.c, "plan: op ", op.name, " changes the channel count");
                YOLOC_CHECK(op.kh > 0 && op.kw > 0 && op.sh > 0 && op.sw > 0 && op.fy > 0 && op.fx > 0,
                            "plan: op ", op.name, " has a bad window");
                break;
            case OpKind::Detect:
                YOLOC_CHECK(!op.in.empty() && op.in.size() == op.strides.size() && op.reg_max > 0 && op.nc > 0,
                            "plan: bad Detect");
                for (const auto& v : op.in) {
                    check_view(v, op, true);
                    YOLOC_CHECK(v.c == 4 * op.reg_max + op.nc, "plan: Detect level width");
                }
                YOLOC_CHECK(op.out.buf >= 0 && op.out.buf < nb && buffers[size_t(op.out.buf)].kind == BufferKind::Output,
                            "plan: Detect must write an output buffer");
                break;
            case OpKind::OutputUnpack:
                YOLOC_CHECK(op.in.size() == 1, "plan: bad OutputUnpack");
                check_view(op.in[0], op, true);
                YOLOC_CHECK(op.out.buf >= 0 && op.out.buf < nb && buffers[size_t(op.out.buf)].kind == BufferKind::Output,
                            "plan: OutputUnpack must write an output buffer");
                break;
            default:
                fail("plan: unknown op kind ", int(op.kind));
        }
        // (after the switch: the views are checked)
        // int8 buffers: only INT8 convs (with the matching scales) and the ops that move
        // values unchanged touch them.
        if (op.kind == OpKind::Conv) {
            YOLOC_CHECK(!i8(op.in[0]) || op.int8(), "plan: float conv ", op.name, " reads an int8 buffer");
            YOLOC_CHECK(op.in.size() < 2 || !i8(op.in[1]) || op.res_scale > 0.f, "plan: conv ", op.name,
                        " reads an int8 residual without its scale");
            YOLOC_CHECK(i8(op.out) == (op.ys_count > 0) && (op.ys_count == 0 || op.ys_count == op.out.c),
                        "plan: conv ", op.name, " output scales do not match its buffer");
            if (op.ys_count > 0) {
                YOLOC_CHECK(op.int8(), "plan: float conv ", op.name, " writes an int8 buffer");
                wrange(op.ys_off, op.ys_count, op);
                for (int64_t k = 0; k < op.ys_count; ++k) {
                    const float v = weights[size_t(op.ys_off + k)];
                    YOLOC_CHECK(v > 0.f && std::isfinite(v), "plan: conv ", op.name, " has a bad output scale");
                }
            }
        } else if (op.kind == OpKind::MaxPool || op.kind == OpKind::Resize || op.kind == OpKind::Copy) {
            bool same = i8(op.in[0]) == i8(op.out);
            for (const auto& v : op.more_out) same = same && i8(v) == i8(op.out);
            YOLOC_CHECK(same, "plan: op ", op.name, " mixes int8 and float buffers");
        } else {
            for (const auto& v : op.in)
                YOLOC_CHECK(!i8(v), "plan: op ", op.name, " cannot read an int8 buffer");
            YOLOC_CHECK(!i8(op.out), "plan: op ", op.name,
                        " cannot write an int8 buffer");
        }
    }
}

namespace {

// An op before buffers are assigned: reads and writes IR values by name.
struct LOp {
    LOp(OpKind k, std::string n, std::vector<std::string> i, std::string o)
        : kind(k), name(std::move(n)), in(std::move(i)), out(std::move(o)) {}
    OpKind kind;
    std::string name;
    std::vector<std::string> in;  // IR values
    std::string out;
    PlanOp p;  // window/weights/params
    // Concat marker (kind == Copy with concat = true): `in` are the concat inputs.
    bool concat = false;
    int64_t nodes = 1;
    std::vector<std::string> more;  // MaxPool chain: outputs of the later pools
};

struct Place {
    std::string parent;  // empty: the value is a root (owns a buffer)
    int64_t off = 0;
};

bool all_ones(const std::vector<int64_t>& v) {
    for (int64_t x : v)
        if (x != 1) return false;
    return true;
}

// Drops buffer `b` (no op may use it any more) and renumbers the later ones.
void erase_buffer(Plan& plan, int32_t b) {
    plan.buffers.erase(plan.buffers.begin() + b);
    auto fix = [&](int32_t& x) {
        if (x > b) --x;
    };
    fix(plan.input_buf);
    for (auto& o : plan.output_bufs) fix(o);
    for (auto& op : plan.ops) {
        for (auto& v : op.in) fix(v.buf);
        fix(op.out.buf);
        for (auto& v : op.more_out) fix(v.buf);
    }
}

// The stem conv reads the NCHW float32 input itself when InputPack's only reader is
// one plain conv over a few channels (YOLOv8's 3-channel stem): one kernel and one
// buffer fewer, and the stem's output is written without the packed copy in between.
void fold_input_pack(Plan& plan) {
    if (plan.ops.empty() || plan.ops[0].kind != OpKind::InputPack) return;
    const int32_t packed = plan.ops[0].out.buf;
    const int64_t c = plan.input_shape[1];
    if (c > kMaxStemChannels || plan.ops[0].out.c_off != 0 || plan.buffers[size_t(packed)].shape[3] != c) return;
    int readers = 0;
    size_t reader = 0;
    for (size_t i = 1; i < plan.ops.size(); ++i) {
        const PlanOp& op = plan.ops[i];
        bool writes = op.out.buf == packed;
        for (const auto& v : op.more_out) writes = writes || v.buf == packed;
        if (writes) return;
        for (const auto& v : op.in)
            if (v.buf == packed) {
                ++readers;
                reader = i;
            }
    }
    for (int32_t o : plan.output_bufs)
        if (o == packed) return;
    if (readers != 1) return;
    PlanOp& conv = plan.ops[reader];
    if (conv.kind != OpKind::Conv || conv.in.size() != 1 || conv.group != 1 || conv.in[0].c_off != 0 ||
        conv.in[0].c != c)
        return;
    conv.in[0] = View{plan.input_buf, 0, c};
    plan.ops.erase(plan.ops.begin());
    erase_buffer(plan, packed);
}

// Horizontal fusion (as TensorRT does): two convs that read the same view with the same
// window, both plain (groups 1, no residual, the same SiLU and, for INT8, the same input
// scale), each writing a buffer of its own, become one conv whose output channels are
// the first's then the second's, in one new buffer that their readers see as two views.
// YOLOv8's Detect heads start this way at every level (box cv2.x.0 and class cv3.x.0):
// one kernel instead of two, with wider tiles, and one op fewer beside the neck.
void fuse_sibling_convs(Plan& plan) {
    auto whole_own = [&](const PlanOp& op) {
        const PlanBuffer& b = plan.buffers[size_t(op.out.buf)];
        if (b.kind != BufferKind::Activation || op.out.c_off != 0 || b.shape.size() != 4 || b.shape[3] != op.out.c)
            return false;
        for (int32_t o : plan.output_bufs)
            if (o == op.out.buf) return false;
        int writers = 0;
        for (const PlanOp& q : plan.ops) {
            writers += q.out.buf == op.out.buf;
            for (const auto& v : q.more_out) writers += v.buf == op.out.buf;
        }
        return writers == 1;
    };
    auto plain = [&](const PlanOp& op) {
        return op.kind == OpKind::Conv && op.in.size() == 1 && op.group == 1 && op.res_scale == 0.f &&
               plan.buffers[size_t(op.in[0].buf)].kind == BufferKind::Activation && whole_own(op);
    };
    bool merged = true;
    while (merged) {
        merged = false;
        for (size_t i = 0; i < plan.ops.size() && !merged; ++i) {
            if (!plain(plan.ops[i])) continue;
            for (size_t j = i + 1; j < plan.ops.size() && !merged; ++j) {
                const PlanOp& a = plan.ops[i];
                const PlanOp& b = plan.ops[j];
                if (!plain(b) || b.in[0].buf != a.in[0].buf || b.in[0].c_off != a.in[0].c_off || b.in[0].c != a.in[0].c ||
                    b.kh != a.kh || b.kw != a.kw || b.sh != a.sh || b.sw != a.sw || b.ph != a.ph || b.pw != a.pw ||
                    b.silu != a.silu || b.in_scale != a.in_scale || b.int8() != a.int8())
                    continue;
                const PlanBuffer& ba = plan.buffers[size_t(a.out.buf)];
                const PlanBuffer& bb = plan.buffers[size_t(b.out.buf)];
                if (ba.elem_bytes != bb.elem_bytes || ba.shape[0] != bb.shape[0] || ba.shape[1] != bb.shape[1] ||
                    ba.shape[2] != bb.shape[2])
                    continue;
                const int64_t m1 = a.out.c, m2 = b.out.c, k = a.w_count / m1;
                PlanOp f = a;
                f.name = a.name + " & " + b.name;
                f.tactic = 0;
                f.w_off = int64_t(plan.weights.size());
                f.w_count = k * (m1 + m2);
                std::vector<float> w(size_t(f.w_count));
                for (int64_t r = 0; r < k; ++r) {
                    for (int64_t m = 0; m < m1; ++m) w[size_t(r * (m1 + m2) + m)] = plan.weights[size_t(a.w_off + r * m1 + m)];
                    for (int64_t m = 0; m < m2; ++m)
                        w[size_t(r * (m1 + m2) + m1 + m)] = plan.weights[size_t(b.w_off + r * m2 + m)];
                }
                plan.weights.insert(plan.weights.end(), w.begin(), w.end());
                auto append = [&](int64_t off1, int64_t off2) {
                    std::vector<float> v(plan.weights.begin() + off1, plan.weights.begin() + off1 + m1);
                    v.insert(v.end(), plan.weights.begin() + off2, plan.weights.begin() + off2 + m2);
                    const int64_t at = int64_t(plan.weights.size());
                    plan.weights.insert(plan.weights.end(), v.begin(), v.end());
                    return at;
                };
                f.b_off = append(a.b_off, b.b_off);
                f.b_count = m1 + m2;
                if (a.int8()) {
                    f.s_off = append(a.s_off, b.s_off);
                    f.s_count = m1 + m2;
                }
                PlanBuffer nb = ba;
                nb.name = ba.name + " & " + bb.name;
                nb.shape[3] = m1 + m2;
                plan.buffers.push_back(nb);
                const int32_t fb = int32_t(plan.buffers.size() - 1), oa = a.out.buf, ob = b.out.buf;
                f.out = View{fb, 0, m1 + m2};
                for (auto& op : plan.ops)
                    for (auto& v : op.in) {
                        if (v.buf == oa) v.buf = fb;
                        else if (v.buf == ob) {
                            v.buf = fb;
                            v.c_off += m1;
                        }
                    }
                plan.ops[i] = f;
                plan.ops.erase(plan.ops.begin() + std::ptrdiff_t(j));
                erase_buffer(plan, std::max(oa, ob));
                erase_buffer(plan, std::min(oa, ob));
                --plan.stats.convs;
                if (f.silu) --plan.stats.convs_silu;
                if (f.int8()) --plan.stats.convs_int8;
                ++plan.stats.convs_fused_siblings;
                merged = true;
            }
        }
    }
    if (plan.stats.convs_fused_siblings == 0) return;
    // Keep only the weights some op still uses (the fused convs' old copies go).
    std::vector<float> kept;
    auto move = [&](int64_t& off, int64_t count) {
        if (off < 0) return;
        const int64_t at = int64_t(kept.size());
        kept.insert(kept.end(), plan.weights.begin() + off, plan.weights.begin() + off + count);
        off = at;
    };
    for (auto& op : plan.ops) {
        move(op.w_off, op.w_count);
        move(op.b_off, op.b_count);
        move(op.s_off, op.s_count);
    }
    plan.weights.swap(kept);
}

// INT8 storage (see plan.h). Every channel of every activation buffer is a slot;
// MaxPool / Resize / Copy tie their input slots to their output slots (same values,
// so the same storage). A slot class is int8 when its readers all ask for one scale
// and nothing forces float (a float reader or writer); a buffer is int8 when all its
// slots are. Iterated: a float buffer forces the classes of all its slots to float.
void assign_int8_storage(Plan& plan) {
    const size_t nb = plan.buffers.size();
    std::vector<int64_t> base(nb + 1, 0);
    for (size_t b = 0; b < nb; ++b) {
        const PlanBuffer& pb = plan.buffers[b];
        base[b + 1] = base[b] + (pb.kind == BufferKind::Activation ? pb.shape[3] : 0);
    }
    std::vector<int64_t> parent(static_cast<size_t>(base[nb]));
    for (size_t i = 0; i < parent.size(); ++i) parent[i] = int64_t(i);
    auto root = [&](int64_t i) -> int64_t {
        while (parent[size_t(i)] != i) i = parent[size_t(i)] = parent[size_t(parent[size_t(i)])];
        return i;
    };
    auto act = [&](const View& v) { return plan.buffers[size_t(v.buf)].kind == BufferKind::Activation; };
    auto slot = [&](const View& v, int64_t ch) { return base[size_t(v.buf)] + v.c_off + ch; };
    auto link = [&](const View& a, const View& b) {
        for (int64_t ch = 0; ch < a.c; ++ch) {
            int64_t ra = root(slot(a, ch)), rb = root(slot(b, ch));
            if (ra != rb) parent[size_t(ra)] = rb;
        }
    };
    for (const auto& op : plan.ops) {
        if (op.kind == OpKind::MaxPool || op.kind == OpKind::Resize || op.kind == OpKind::Copy) {
            link(op.in[0], op.out);
            for (const auto& v : op.more_out) link(op.in[0], v);
        }
    }
    // Per class: the scale its readers ask for (0: none yet), and whether it must be float.
    std::vector<float> want(parent.size(), 0.f);
    std::vector<char> is_float(parent.size(), 0);
    auto force = [&](const View& v) {
        if (!act(v)) return;
        for (int64_t ch = 0; ch < v.c; ++ch) is_float[size_t(root(slot(v, ch)))] = 1;
    };
    auto require = [&](const View& v, float s) {
        for (int64_t ch = 0; ch < v.c; ++ch) {
            const size_t r = size_t(root(slot(v, ch)));
            if (want[r] == 0.f)
                want[r] = s;
            else if (want[r] != s)
                is_float[r] = 1;  // two scales: keep float (the readers quantize on load)
        }
    };
    for (const auto& op : plan.ops) {
        switch (op.kind) {
            case OpKind::Conv:
                if (!act(op.in[0])) {
                } else if (op.int8()) {
                    require(op.in[0], op.in_scale);
                } else {
                    force(op.in[0]);
                }
                if (op.in.size() == 2) {
                    if (op.int8() && op.res_scale > 0.f)
                        require(op.in[1], op.res_scale);
                    else
                        force(op.in[1]);
                }
                if (!op.int8()) force(op.out);
                break;
            case OpKind::MaxPool:
            case OpKind::Resize:
            case OpKind::Copy:
                break;  // linked above
            default:  // InputPack, FakeQuant, Detect, OutputUnpack: float in and out
                for (const auto& v : op.in) force(v);
                force(op.out);
                break;
        }
    }
    std::vector<char> int8_buf(nb, 0);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t b = 0; b < nb; ++b) {
            if (plan.buffers[b].kind != BufferKind::Activation) continue;
            bool ok = true;
            for (int64_t i = base[b]; i < base[b + 1] && ok; ++i) {
                const size_t r = size_t(root(i));
                ok = !is_float[r] && want[r] > 0.f;
            }
            if (ok) {
                int8_buf[b] = 1;
                continue;
            }
            for (int64_t i = base[b]; i < base[b + 1]; ++i) {
                const size_t r = size_t(root(i));
                if (!is_float[r]) {
                    is_float[r] = 1;
                    changed = true;
                }
            }
            int8_buf[b] = 0;
        }
    }
    for (size_t b = 0; b < nb; ++b)
        if (int8_buf[b]) {
            plan.buffers[b].elem_bytes = 1;
            ++plan.stats.int8_buffers;
        }
    for (auto& op : plan.ops) {
        if (op.kind != OpKind::Conv || !int8_buf[size_t(op.out.buf)]) continue;
        op.ys_off = int64_t(plan.weights.size());
        op.ys_count = op.out.c;
        for (int64_t ch = 0; ch < op.out.c; ++ch) plan.weights.push_back(want[size_t(root(slot(op.out, ch)))]);
    }
}

}  // namespace

Plan build_plan(const Model& original, const PlanOptions& opts) {
    // A static export (batch and size baked into its constants) is re-targeted when
    // another batch or size is asked for, as the CPU path does.
    Model retargeted;
    const Model* src = &original;
    {
        const Graph& og = original.graph;
        if (og.inputs.size() == 1 && og.inputs[0].shape.size() == 4) {
            const auto& d = og.inputs[0].shape;
            bool batch_differs = opts.batch > 0 && d[0].known() && d[0].value != opts.batch;
            bool size_differs = opts.imgsz > 0 && ((d[2].known() && d[2].value != opts.imgsz) ||
                                                   (d[3].known() && d[3].value != opts.imgsz));
            if (batch_differs || size_differs) {
                retargeted = original;
                int64_t sz = opts.imgsz > 0 ? opts.imgsz : (d[2].known() ? d[2].value : 640);
                set_input_size(retargeted, opts.batch > 0 ? opts.batch : (d[0].known() ? d[0].value : 1), sz);
                src = &retargeted;
            }
        }
    }
    const Model& source = *src;
    const Graph& sg = source.graph;
    YOLOC_CHECK(sg.inputs.size() == 1, "the GPU engine needs a model with one input, this one has ", sg.inputs.size());
    const ValueInfo& in0 = sg.inputs[0];
    YOLOC_CHECK(in0.shape.size() == 4, "the GPU engine needs a 4-D NCHW input, ", in0.name, " has rank ",
                in0.shape.size());
    Shape ishape(4);
    for (size_t i = 0; i < 4; ++i) {
        if (in0.shape[i].known()) {
            ishape[i] = in0.shape[i].value;
        } else if (i == 0) {
            ishape[i] = opts.batch > 0 ? opts.batch : 1;
        } else if (i >= 2 && opts.imgsz > 0) {
            ishape[i] = opts.imgsz;
        } else {
            fail("input ", in0.name, " dim ", i, " is symbolic: give the image size");
        }
    }

    // The recogniser reads the model as exported (its tests use that form); node names
    // survive folding, so its answers apply to the folded graph too.
    YoloArch arch = recognize_yolo(source);
    Model model = source;
    std::map<std::string, Shape> shapes{{in0.name, ishape}};
    fold_constants(model, shapes);
    ShapeInfo info = infer_shapes(model, shapes);
    const Graph& g = model.graph;

    Plan plan;
    plan.precision = opts.precision;
    plan.batch = ishape[0];
    plan.input_name = in0.name;
    plan.input_shape = ishape;
    const int32_t act_bytes = int32_t(precision_bytes(opts.precision));

    std::map<std::string, int> node_index;
    for (size_t i = 0; i < g.nodes.size(); ++i) node_index[g.nodes[i].name] = int(i);
    std::map<std::string, std::vector<int>> cons;
    for (size_t i = 0; i < g.nodes.size(); ++i)
        for (const auto& v : g.nodes[i].inputs)
            if (!v.empty()) cons[v].push_back(int(i));
    std::set<std::string> graph_outs;
    for (const auto& o : g.outputs) graph_outs.insert(o.name);
    auto shape_of = [&](const std::string& v) -> const Shape& { return info.at(v).shape; };
    auto is4d = [&](const std::string& v) {
        const ValueType& t = info.at(v);
        return t.dtype == DType::Float32 && t.shape.size() == 4;
    };

    // Nodes the Detect op replaces.
    std::set<std::string> detect_nodes;
    std::string detect_anchor;  // the node at whose position the Detect op runs
    // The fused decode takes the YOLOv8 form (DFL bins, centre and size boxes); the recogniser
    // confirmed by evaluation that the decode nodes compute exactly that.
    const bool fuse_detect = arch.recognised && arch.head.fused && arch.reg_max > 1 && !arch.head.xyxy;
    if (fuse_detect) {
        // Every decode node but the per-level Concat(box, cls) of older exports, which
        // stays: the Detect op reads it.
        std::set<std::string> level_concats;
        for (const auto& L : arch.head.levels) level_concats.insert(L.concat);
        for (const auto& d : arch.head.decode)
            if (!level_concats.count(d)) detect_nodes.insert(d);
        int last = -1;
        for (const auto& n : detect_nodes) {
            auto it = node_index.find(n);
            if (it != node_index.end()) last = std::max(last, it->second);
        }
        if (last >= 0) detect_anchor = g.nodes[size_t(last)].name;
    }

    std::vector<LOp> lops;
    std::map<std::string, Place> place;           // value -> where it lives
    std::map<std::string, std::string> produced;  // value -> kind of producer ("op", "view")
    std::set<int> done;

    // The input arrives NCHW float32; InputPack makes the NHWC activation tensor.
    const std::string packed = in0.name + "#nhwc";
    {
        LOp l{OpKind::InputPack, "input " + in0.name, {in0.name}, packed};
        l.nodes = 0;
        lops.push_back(l);
        produced[packed] = "op";
    }
    std::map<std::string, std::string> rename{{in0.name, packed}};  // IR value -> plan value
    std::map<std::string, Shape> nhwc;  // plan value -> [N,H,W,C]
    auto to_nhwc = [](const Shape& s) { return Shape{s[0], s[2], s[3], s[1]}; };
    nhwc[packed] = to_nhwc(ishape);

    // Q/DQ (models from `yoloc quantize`): per-tensor int8 Q -> DQ pairs on activations
    // (fq: the DQ output -> the Q input and scale) and DequantizeLinear of constant int8
    // conv weights (wdq: the DQ output -> the DQ node).
    struct FakeQ {
        std::string x;
        float scale = 0.f;
        bool materialized = false;
    };
    std::map<std::string, FakeQ> fq;
    std::map<std::string, int> wdq;
    bool any_qdq = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        if (n.op_type == "QuantizeLinear" && (n.domain.empty() || n.domain == "ai.onnx")) {
            any_qdq = true;
            float sc = 0.f;
            const int d = qdq_pair(g, int(i), &sc);
            YOLOC_CHECK(d >= 0 && sc > 0.f && std::isfinite(sc), "node ", n.label(),
                        ": the GPU engine takes QuantizeLinear only as a per-tensor int8 QuantizeLinear -> "
                        "DequantizeLinear pair with zero point 0");
            YOLOC_CHECK(is4d(n.inputs[0]), "node ", n.label(), ": the GPU engine quantizes 4-D activations only");
            const std::string& dout = g.nodes[size_t(d)].outputs[0];
            for (int c : cons[dout])
                YOLOC_CHECK(!detect_nodes.count(g.nodes[size_t(c)].name), "node ", n.label(),
                            ": Q/DQ inside the Detect decode (`yoloc quantize --quantize-dfl`) is not supported by "
                            "the GPU engine");
            fq[dout] = FakeQ{n.inputs[0], sc, false};
            done.insert(int(i));
            done.insert(d);
            plan.stats.ir_nodes += 2;
        } else if (n.op_type == "DequantizeLinear" && !done.count(int(i))) {
            any_qdq = true;
            const Tensor* q = n.inputs.empty() ? nullptr : g.find_initializer(n.inputs[0]);
            const Tensor* sc = n.inputs.size() < 2 ? nullptr : g.find_initializer(n.inputs[1]);
            const Tensor* zp = n.inputs.size() < 3 || n.inputs[2].empty() ? nullptr : g.find_initializer(n.inputs[2]);
            bool ok = q && q->dtype() == DType::Int8 && q->rank() == 4 && sc && sc->dtype() == DType::Float32 &&
                      (sc->numel() == 1 || (sc->numel() == q->dim(0) && n.attr_i("axis", 1) % 4 == 0)) &&
                      (n.inputs.size() < 3 || n.inputs[2].empty() || zp) && n.outputs.size() == 1 &&
                      !graph_outs.count(n.outputs[0]) && !cons[n.outputs[0]].empty();
            if (ok && zp) {
                ok = zp->numel() == sc->numel() && zp->dtype() == DType::Int8;
                for (int64_t k = 0; ok && k < zp->numel(); ++k) ok = zp->at_i64(k) == 0;
            }
            if (ok)
                for (int k = 0; k < sc->numel(); ++k) ok = ok && sc->data<float>()[k] > 0.f && std::isfinite(sc->data<float>()[k]);
            for (int c : cons[n.outputs[0]]) {
                const Node& u = g.nodes[size_t(c)];
                ok = ok && u.op_type == "Conv" && u.inputs.size() > 1 && u.inputs[1] == n.outputs[0] &&
                     u.inputs[0] != n.outputs[0];
                YOLOC_CHECK(!detect_nodes.count(u.name), "node ", n.label(),
                            ": a quantized DFL conv (`yoloc quantize --quantize-dfl`) is not supported by the GPU engine");
            }
            YOLOC_CHECK(ok, "node ", n.label(), ": the GPU engine takes DequantizeLinear only on constant int8 conv "
                        "weights (per tensor or per output channel, zero point 0) or after a QuantizeLinear");
            wdq[n.outputs[0]] = int(i);
            done.insert(int(i));
            plan.stats.ir_nodes += 1;
        }
    }
    if (opts.precision == Precision::INT8 && !any_qdq) {
        YOLOC_CHECK(!opts.int8_requires_qdq, "--precision int8 needs a Q/DQ model (from `yoloc quantize`); this model "
                    "has no QuantizeLinear/DequantizeLinear nodes: quantize it first, or use --precision fp16 or best");
        plan.precision = Precision::FP16;
    }
    const bool int8_convs = plan.precision == Precision::INT8;

    // IR value -> plan value. A Q -> DQ output that is read by anything other than an
    // INT8 conv's input (or its fused residual) becomes a FakeQuant op, emitted before
    // its first such reader.
    std::function<std::string(const std::string&)> pv = [&](const std::string& v) -> std::string {
        auto f = fq.find(v);
        if (f != fq.end()) {
            if (!f->second.materialized) {
                f->second.materialized = true;
                LOp l{OpKind::FakeQuant, "fakequant " + f->second.x, {pv(f->second.x)}, v};
                l.p.in_scale = f->second.scale;
                l.nodes = 0;
                nhwc[v] = to_nhwc(shape_of(v));
                produced[v] = "op";
                lops.push_back(l);
            }
            return v;
        }
        auto it = rename.find(v);
        return it == rename.end() ? v : it->second;
    };

    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (done.count(int(i))) continue;
        const Node& n = g.nodes[i];
        if (detect_nodes.count(n.name)) {
            done.insert(int(i));
            if (n.name != detect_anchor) continue;
            LOp l{OpKind::Detect, "Detect", {}, arch.head.output};
            for (size_t li = 0; li < arch.head.levels.size(); ++li) {
                const DetectLevel& L = arch.head.levels[li];
                // The Detect op reads box and class channels side by side, one buffer per
                // level: the Concat(box, cls) of older exports, else a concat made here that
                // the two convs write in place.
                std::string level_value;
                if (!L.concat.empty()) {
                    int c = node_index.count(L.concat) ? node_index[L.concat] : -1;
                    YOLOC_CHECK(c >= 0, "Detect level concat ", L.concat, " vanished while folding");
                    level_value = pv(g.nodes[size_t(c)].outputs[0]);
                } else {
                    level_value = "detect level " + std::to_string(li);
                    LOp cl{OpKind::Copy, level_value, {pv(L.box.back().output), pv(L.cls.back().output)}, level_value};
                    cl.concat = true;
                    cl.nodes = 0;
                    const Shape& bs = nhwc.at(cl.in[0]);
                    nhwc[level_value] = Shape{bs[0], bs[1], bs[2], bs[3] + nhwc.at(cl.in[1])[3]};
                    produced[level_value] = "concat";
                    lops.push_back(cl);
                }
                l.in.push_back(level_value);
                l.p.strides.push_back(int32_t(L.stride));
            }
            l.p.reg_max = int32_t(arch.reg_max);
            l.p.nc = int32_t(arch.nc);
            l.nodes = int64_t(detect_nodes.size());
            const Shape& os = shape_of(arch.head.output);
            int64_t anchors = 0;
            for (const auto& v : l.in) anchors += nhwc.at(v)[1] * nhwc.at(v)[2];
            YOLOC_CHECK(os.size() == 3 && os[0] == ishape[0] && os[1] == 4 + arch.nc && os[2] == anchors,
                        "Detect output ", arch.head.output, " has shape ", shape_str(os), ", expected [",
                        ishape[0], ", ", 4 + arch.nc, ", ", anchors, "]");
            lops.push_back(l);
            produced[l.out] = "op";
            continue;
        }
        const std::string& op = n.op_type;
        YOLOC_CHECK(n.domain.empty() || n.domain == "ai.onnx", "node ", n.label(), ": domain ", n.domain,
                    " is not supported by the GPU engine");
        if (op == "Conv") {
            YOLOC_CHECK(n.inputs.size() >= 2 && is4d(n.inputs[0]) &&
                            (g.is_initializer(n.inputs[1]) || wdq.count(n.inputs[1])) &&
                            (n.inputs.size() < 3 || n.inputs[2].empty() || g.is_initializer(n.inputs[2])),
                        "node ", n.label(), ": the GPU engine needs constant weights and bias");
            YOLOC_CHECK(n.attr_s("auto_pad", "NOTSET") == "NOTSET" && all_ones(n.attr_ints("dilations", {1, 1})),
                        "node ", n.label(), ": auto_pad and dilation are not supported by the GPU engine");
            // Weights: a float initializer, or int8 + scales behind a DequantizeLinear
            // (kept as integers for an INT8 conv, else dequantized as the reference does).
            auto wq_it = wdq.find(n.inputs[1]);
            const Tensor& w = wq_it == wdq.end() ? *g.find_initializer(n.inputs[1])
                                                 : *g.find_initializer(g.nodes[size_t(wq_it->second)].inputs[0]);
            YOLOC_CHECK(w.rank() == 4 && (w.dtype() == DType::Float32 || wq_it != wdq.end()), "node ", n.label(),
                        ": weights must be 4-D float");
            const Shape& xs = shape_of(n.inputs[0]);
            const int64_t M = w.dim(0), Cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
            const int64_t group = n.attr_i("group", 1);
            YOLOC_CHECK(Cg * group == xs[1], "node ", n.label(), ": weights do not match the input channels");
            std::vector<float> wvals(size_t(w.numel())), wscale;
            if (wq_it == wdq.end()) {
                std::copy(w.data<float>(), w.data<float>() + w.numel(), wvals.begin());
            } else {
                const Tensor& sct = *g.find_initializer(g.nodes[size_t(wq_it->second)].inputs[1]);
                const int64_t per = w.numel() / M;
                wscale.resize(size_t(M));
                for (int64_t m = 0; m < M; ++m) wscale[size_t(m)] = sct.data<float>()[sct.numel() == 1 ? 0 : m];
                for (int64_t k = 0; k < w.numel(); ++k) wvals[size_t(k)] = float(w.data<int8_t>()[k]);
                if (!(int8_convs && fq.count(n.inputs[0]) && group == 1))  // dequantize: (q - 0) * scale
                    for (int64_t k = 0; k < w.numel(); ++k)
                        wvals[size_t(k)] = float(int64_t(w.data<int8_t>()[k])) * wscale[size_t(k / per)];
            }
            const bool conv_int8 = int8_convs && wq_it != wdq.end() && fq.count(n.inputs[0]) && group == 1;
            auto st = n.attr_ints("strides", {1, 1});
            auto pd = n.attr_ints("pads", {0, 0, 0, 0});
            LOp l{OpKind::Conv, n.name, {conv_int8 ? pv(fq.at(n.inputs[0]).x) : pv(n.inputs[0])}, n.outputs[0]};
            if (conv_int8) {
                l.p.in_scale = fq.at(n.inputs[0]).scale;
                l.name += "+int8";
                ++plan.stats.qdq_folded;
            }
            l.p.kh = int32_t(kh);
            l.p.kw = int32_t(kw);
            l.p.sh = int32_t(st.at(0));
            l.p.sw = int32_t(st.at(1));
            l.p.ph = int32_t(pd.at(0));
            l.p.pw = int32_t(pd.at(1));
            l.p.group = int32_t(group);
            // Weights OIHW -> [kh][kw][C/group][M]: neighbouring threads (output channels)
            // then read neighbouring weights.
            l.p.w_off = int64_t(plan.weights.size());
            l.p.w_count = M * Cg * kh * kw;
            plan.weights.resize(plan.weights.size() + size_t(l.p.w_count));
            float* wd = plan.weights.data() + l.p.w_off;
            const float* ws = wvals.data();
            for (int64_t m = 0; m < M; ++m)
                for (int64_t c = 0; c < Cg; ++c)
                    for (int64_t y = 0; y < kh; ++y)
                        for (int64_t x = 0; x < kw; ++x)
                            wd[((y * kw + x) * Cg + c) * M + m] = ws[((m * Cg + c) * kh + y) * kw + x];
            l.p.b_off = int64_t(plan.weights.size());
            l.p.b_count = M;
            if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
                const Tensor& b = *g.find_initializer(n.inputs[2]);
                YOLOC_CHECK(b.numel() == M && b.dtype() == DType::Float32, "node ", n.label(), ": bad bias");
                plan.weights.insert(plan.weights.end(), b.data<float>(), b.data<float>() + M);
            } else {
                plan.weights.insert(plan.weights.end(), size_t(M), 0.0f);
            }
            if (conv_int8) {
                l.p.s_off = int64_t(plan.weights.size());
                l.p.s_count = M;
                plan.weights.insert(plan.weights.end(), wscale.begin(), wscale.end());
            }
            std::string out = n.outputs[0];
            done.insert(int(i));
            // SiLU: Sigmoid(out) and Mul(out, sigmoid) are the only readers.
            auto cs = cons[out];
            if (cs.size() == 2 && !graph_outs.count(out)) {
                int si = -1, mi = -1;
                for (int c : cs) {
                    if (g.nodes[size_t(c)].op_type == "Sigmoid") si = c;
                    if (g.nodes[size_t(c)].op_type == "Mul") mi = c;
                }
                if (si >= 0 && mi >= 0 && !detect_nodes.count(g.nodes[size_t(mi)].name)) {
                    const Node& s = g.nodes[size_t(si)];
                    const Node& m = g.nodes[size_t(mi)];
                    const std::string& so = s.outputs[0];
                    bool ok = m.inputs.size() == 2 && cons[so].size() == 1 && !graph_outs.count(so) &&
                              ((m.inputs[0] == out && m.inputs[1] == so) || (m.inputs[1] == out && m.inputs[0] == so));
                    if (ok) {
                        l.p.silu = true;
                        l.name += "+silu";
                        l.nodes += 2;
                        done.insert(si);
                        done.insert(mi);
                        out = m.outputs[0];
                    }
                }
            }
            // Residual: one Add reading `out` and a value that already exists.
            auto ca = cons[out];
            if (ca.size() == 1 && !graph_outs.count(out) && g.nodes[size_t(ca[0])].op_type == "Add") {
                const Node& a = g.nodes[size_t(ca[0])];
                if (a.inputs.size() == 2 && !detect_nodes.count(a.name)) {
                    const std::string& r = a.inputs[0] == out ? a.inputs[1] : a.inputs[0];
                    int rp = g.producer(r);
                    bool exists = (rp >= 0 && rp < int(i) && done.count(rp)) || r == in0.name;
                    if (exists && r != out && is4d(r) && shape_of(r) == shape_of(a.outputs[0]) &&
                        shape_of(out) == shape_of(a.outputs[0])) {
                        // A Q -> DQ residual of an INT8 conv: fake-quantized in its epilogue.
                        auto rq = fq.find(r);
                        if (l.p.in_scale > 0.f && rq != fq.end()) {
                            l.in.push_back(pv(rq->second.x));
                            l.p.res_scale = rq->second.scale;
                            ++plan.stats.qdq_folded;
                        } else {
                            l.in.push_back(pv(r));
                        }
                        l.name += "+add";
                        l.nodes += 1;
                        done.insert(ca[0]);
                        out = a.outputs[0];
                    }
                }
            }
            l.out = out;
            nhwc[out] = to_nhwc(shape_of(out));
            produced[out] = "op";
            lops.push_back(l);
            continue;
        }
        if (op == "Split") {
            YOLOC_CHECK(is4d(n.inputs[0]), "node ", n.label(), ": only 4-D splits are supported");
            int64_t axis = n.attr_i("axis", 0);
            if (axis < 0) axis += 4;
            YOLOC_CHECK(axis == 1, "node ", n.label(), ": only channel splits are supported by the GPU engine");
            int64_t off = 0;
            const std::string src = pv(n.inputs[0]);
            for (const auto& o : n.outputs) {
                place[o] = Place{src, off};
                nhwc[o] = to_nhwc(shape_of(o));
                produced[o] = "view";
                off += shape_of(o)[1];
                ++plan.stats.split_views;
            }
            plan.stats.ir_nodes += 1;
            done.insert(int(i));
            continue;
        }
        if (op == "Concat") {
            YOLOC_CHECK(is4d(n.outputs[0]), "node ", n.label(), ": only 4-D concats are supported");
            int64_t axis = n.attr_i("axis", 0);
            if (axis < 0) axis += 4;
            YOLOC_CHECK(axis == 1, "node ", n.label(), ": only channel concats are supported by the GPU engine");
            LOp l{OpKind::Copy, n.name, {}, n.outputs[0]};
            for (const auto& v : n.inputs) l.in.push_back(pv(v));
            l.concat = true;
            nhwc[l.out] = to_nhwc(shape_of(l.out));
            produced[l.out] = "concat";
            lops.push_back(l);
            done.insert(int(i));
            continue;
        }
        if (op == "MaxPool") {
            YOLOC_CHECK(is4d(n.inputs[0]) && n.outputs.size() == 1 && n.attr_i("ceil_mode", 0) == 0 &&
                            n.attr_s("auto_pad", "NOTSET") == "NOTSET" && n.attr_i("storage_order", 0) == 0 &&
                            all_ones(n.attr_ints("dilations", {1, 1})) && n.attr_ints("kernel_shape").size() == 2,
                        "node ", n.label(), ": this MaxPool form is not supported by the GPU engine");
            auto k = n.attr_ints("kernel_shape");
            auto s = n.attr_ints("strides", {1, 1});
            auto pd = n.attr_ints("pads", {0, 0, 0, 0});
            LOp l{OpKind::MaxPool, n.name, {pv(n.inputs[0])}, n.outputs[0]};
            l.p.kh = int32_t(k[0]);
            l.p.kw = int32_t(k[1]);
            l.p.sh = int32_t(s[0]);
            l.p.sw = int32_t(s[1]);
            l.p.ph = int32_t(pd[0]);
            l.p.pw = int32_t(pd[1]);
            nhwc[l.out] = to_nhwc(shape_of(l.out));
            produced[l.out] = "op";
            done.insert(int(i));
            // SPPF: pools of the same stride-1 "same" window chained on each other's
            // output are one pass over the input (windows k, 2k-1, 3k-2 ...).
            const bool same = s[0] == 1 && s[1] == 1 && k[0] % 2 == 1 && k[1] % 2 == 1 && pd[0] == k[0] / 2 &&
                              pd[1] == k[1] / 2 && pd[2] == pd[0] && pd[3] == pd[1] &&
                              shape_of(n.outputs[0]) == shape_of(n.inputs[0]);
            std::string last = n.outputs[0];
            while (same && l.more.size() < 3 && !graph_outs.count(last)) {
                int next = -1;
                for (int c : cons[last]) {
                    const Node& q = g.nodes[size_t(c)];
                    if (q.op_type == "MaxPool" && !done.count(c) && q.outputs.size() == 1 && q.inputs[0] == last &&
                        q.attr_ints("kernel_shape") == k && q.attr_ints("strides", {1, 1}) == s &&
                        q.attr_ints("pads", {0, 0, 0, 0}) == pd && q.attr_i("ceil_mode", 0) == 0 &&
                        q.attr_s("auto_pad", "NOTSET") == "NOTSET" && all_ones(q.attr_ints("dilations", {1, 1})) &&
                        q.attr_i("storage_order", 0) == 0)
                        next = c;
                }
                if (next < 0) break;
                const Node& q = g.nodes[size_t(next)];
                done.insert(next);
                last = q.outputs[0];
                l.more.push_back(last);
                l.name += "+" + q.name;
                l.nodes += 1;
                nhwc[last] = to_nhwc(shape_of(last));
                produced[last] = "op";
            }
            lops.push_back(l);
            continue;
        }
        if (op == "Resize") {
            YOLOC_CHECK(is4d(n.inputs[0]) && n.attr_s("mode", "nearest") == "nearest",
                        "node ", n.label(), ": only nearest Resize is supported by the GPU engine");
            const Shape& is = shape_of(n.inputs[0]);
            const Shape& os = shape_of(n.outputs[0]);
            YOLOC_CHECK(os[0] == is[0] && os[1] == is[1] && os[2] % is[2] == 0 && os[3] % is[3] == 0,
                        "node ", n.label(), ": only integer up-sampling is supported by the GPU engine");
            // With an integer factor, asymmetric/floor (what exporters write) and
            // the other common modes all map output y to input y / f; anything else is refused.
            std::string ctm = n.attr_s("coordinate_transformation_mode", "half_pixel");
            std::string nm = n.attr_s("nearest_mode", "round_prefer_floor");
            YOLOC_CHECK(ctm == "asymmetric" && nm == "floor", "node ", n.label(), ": Resize with ",
                        ctm, "/", nm, " is not supported by the GPU engine (asymmetric/floor is)");
            LOp l{OpKind::Resize, n.name, {pv(n.inputs[0])}, n.outputs[0]};
            l.p.fy = int32_t(os[2] / is[2]);
            l.p.fx = int32_t(os[3] / is[3]);
            nhwc[l.out] = to_nhwc(os);
            produced[l.out] = "op";
            lops.push_back(l);
            done.insert(int(i));
            continue;
        }
        if (op == "Identity" && is4d(n.inputs[0])) {
            rename[n.outputs[0]] = pv(n.inputs[0]);
            done.insert(int(i));
            continue;
        }
        fail("node ", n.label(), ": op ", op, " is not supported by the GPU engine");
    }

    // Concat placement, outermost first (reverse order) so that a concat that is
    // itself placed in another resolves to the outer buffer.
    auto placed = [&](const std::string& v) { return place.count(v) != 0; };
    std::map<size_t, std::vector<std::pair<std::string, int64_t>>> copies;  // lop index -> (value, offset)
    std::map<std::string, std::string> split_of;  // split output -> split input
    for (const auto& kv : place) split_of[kv.first] = kv.second.parent;
    for (size_t li = lops.size(); li-- > 0;) {
        LOp& l = lops[li];
        if (!l.concat) continue;
        int64_t off = 0;
        for (size_t k = 0; k < l.in.size(); ++k) {
            const std::string& v = l.in[k];
            const int64_t c = nhwc.at(v)[3];
            ++plan.stats.concat_inputs;
            bool in_place = false;
            const std::string pr = produced.count(v) ? produced[v] : "";
            if (!graph_outs.count(v) && !placed(v) && (pr == "op" || pr == "concat")) {
                place[v] = Place{l.out, off};
                in_place = true;
            } else if (pr == "view" && split_of.count(v)) {
                // A Split output: place the split's input when this concat holds all
                // its outputs in order, starting here (C2f: Concat(split0, split1, ...)).
                const std::string& u = split_of[v];
                std::vector<std::string> outs;
                for (const auto& kv : split_of)
                    if (kv.second == u) outs.push_back(kv.first);
                std::sort(outs.begin(), outs.end(),
                          [&](const std::string& a, const std::string& b) { return place[a].off < place[b].off; });
                bool ok = !graph_outs.count(u) && !placed(u) && (produced[u] == "op" || produced[u] == "concat") &&
                          !outs.empty() && outs[0] == v && k + outs.size() <= l.in.size();
                for (size_t j = 0; ok && j < outs.size(); ++j) ok = l.in[k + j] == outs[j];
                if (ok) {
                    place[u] = Place{l.out, off};
                    for (size_t j = 0; j < outs.size(); ++j) {
                        off += nhwc.at(l.in[k + j])[3];
                        ++plan.stats.concat_in_place;
                        if (j > 0) ++plan.stats.concat_inputs;
                    }
                    k += outs.size() - 1;
                    continue;
                }
            }
            if (in_place) {
                ++plan.stats.concat_in_place;
            } else {
                copies[li].push_back({v, off});
                ++plan.stats.copies;
            }
            off += c;
        }
        YOLOC_CHECK(off == nhwc.at(l.out)[3], "concat ", l.name, " input widths do not add up");
    }

    // Buffers: one per root value.
    std::map<std::string, int32_t> buf_of;
    auto resolve = [&](const std::string& v0) {
        std::string v = v0;
        int64_t off = 0;
        for (int guard = 0; guard < 1000; ++guard) {
            auto it = place.find(v);
            if (it == place.end()) break;
            off += it->second.off;
            v = it->second.parent;
        }
        auto b = buf_of.find(v);
        if (b == buf_of.end()) {
            PlanBuffer pb;
            pb.name = v;
            pb.kind = BufferKind::Activation;
            pb.shape = nhwc.at(v);
            pb.elem_bytes = act_bytes;
            plan.buffers.push_back(pb);
            b = buf_of.emplace(v, int32_t(plan.buffers.size() - 1)).first;
        }
        return View{b->second, off, nhwc.at(v0)[3]};
    };
    {
        PlanBuffer ib;
        ib.name = in0.name;
        ib.kind = BufferKind::Input;
        ib.shape = ishape;
        ib.elem_bytes = 4;
        plan.buffers.push_back(ib);
        plan.input_buf = int32_t(plan.buffers.size() - 1);
    }
    std::map<std::string, int32_t> out_buf;
    for (const auto& o : g.outputs) {
        PlanBuffer ob;
        ob.name = o.name;
        ob.kind = BufferKind::Output;
        ob.shape = shape_of(o.name);
        ob.elem_bytes = 4;
        YOLOC_CHECK(info.at(o.name).dtype == DType::Float32, "output ", o.name, " is not float32");
        plan.buffers.push_back(ob);
        out_buf[o.name] = int32_t(plan.buffers.size() - 1);
        plan.output_names.push_back(o.name);
        plan.output_shapes.push_back(ob.shape);
        plan.output_bufs.push_back(out_buf[o.name]);
    }

    for (size_t li = 0; li < lops.size(); ++li) {
        const LOp& l = lops[li];
        plan.stats.ir_nodes += int(l.nodes);
        if (l.concat) {
            plan.stats.ir_nodes += 0;  // counted with its inputs' producers below
            for (const auto& cp : copies[li]) {
                PlanOp op;
                op.kind = OpKind::Copy;
                op.name = l.name + " <- " + cp.first;
                op.in.push_back(resolve(cp.first));
                View o = resolve(l.out);
                o.c_off += cp.second;
                o.c = op.in[0].c;
                op.out = o;
                plan.ops.push_back(op);
            }
            continue;
        }
        PlanOp op = l.p;
        op.kind = l.kind;
        op.name = l.name;
        if (l.kind == OpKind::InputPack) {
            op.in.push_back(View{plan.input_buf, 0, ishape[1]});
            op.out = resolve(l.out);
        } else if (l.kind == OpKind::Detect) {
            for (const auto& v : l.in) op.in.push_back(resolve(v));
            YOLOC_CHECK(out_buf.count(l.out), "the Detect output ", l.out, " is not a graph output");
            op.out = View{out_buf[l.out], 0, 0};
            ++plan.stats.detects;
        } else {
            for (const auto& v : l.in) op.in.push_back(resolve(v));
            op.out = resolve(l.out);
            if (l.kind == OpKind::FakeQuant) ++plan.stats.fake_quants;
            if (l.kind == OpKind::Conv) {
                if (op.int8()) ++plan.stats.convs_int8;
                ++plan.stats.convs;
                if (op.silu) ++plan.stats.convs_silu;
                if (op.in.size() == 2) ++plan.stats.convs_residual;
            }
            if (l.kind == OpKind::MaxPool) {
                for (const auto& v : l.more) op.more_out.push_back(resolve(v));
                plan.stats.maxpools += 1 + int(l.more.size());
                if (!l.more.empty()) ++plan.stats.maxpool_chains;
            }
            if (l.kind == OpKind::Resize) ++plan.stats.resizes;
        }
        plan.ops.push_back(op);
    }
    // Graph outputs not written by Detect: unpack the NHWC value into ONNX layout.
    for (const auto& o : g.outputs) {
        bool by_detect = false;
        for (const auto& op : plan.ops)
            if (op.kind == OpKind::Detect && op.out.buf == out_buf[o.name]) by_detect = true;
        if (by_detect) continue;
        YOLOC_CHECK(nhwc.count(pv(o.name)), "output ", o.name, " is not a 4-D tensor the GPU engine produces");
        PlanOp op;
        op.kind = OpKind::OutputUnpack;
        op.name = "output " + o.name;
        op.in.push_back(resolve(pv(o.name)));
        op.out = View{out_buf[o.name], 0, 0};
        plan.ops.push_back(op);
    }
    fold_input_pack(plan);
    if (opts.fuse_siblings) fuse_sibling_convs(plan);
    if (opts.int8_storage && plan.precision == Precision::INT8) assign_int8_storage(plan);
    plan.validate();
    return plan;
}

std::string describe_plan(const Plan& p) {
    std::ostringstream os;
    auto view = [&](const View& v) {
        std::ostringstream s;
        s << "b" << v.buf;
        if (v.c) s << "[" << v.c_off << ":" << v.c_off + v.c << "]";
        return s.str();
    };
    for (size_t i = 0; i < p.ops.size(); ++i) {
        const PlanOp& op = p.ops[i];
        os << i << " " << op_kind_name(op.kind) << " " << op.name << " (";
        for (size_t k = 0; k < op.in.size(); ++k) os << (k ? ", " : "") << view(op.in[k]);
        os << ") -> " << view(op.out);
        for (const auto& v : op.more_out) os << ", " << view(v);
        if (op.kind == OpKind::Conv)
            os << " k" << op.kh << "x" << op.kw << " s" << op.sh << " p" << op.ph << " g" << op.group
               << (op.silu ? " silu" : "") << (op.in.size() == 2 ? " +res" : "")
               << (op.int8() ? " int8 s_in " + std::to_string(op.in_scale) : std::string())
               << (op.res_scale > 0 ? " res_fq " + std::to_string(op.res_scale) : std::string())
               << (op.tactic ? " tactic " + std::to_string(op.tactic) : std::string());
        if (op.kind == OpKind::FakeQuant) os << " scale " << op.in_scale;
        os << "\n";
    }
    return os.str();
}

}  // namespace engine
}  // namespace yoloc
