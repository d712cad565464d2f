#include "engine/plan.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <cstdlib>
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
        if (op.kind == OpKind::Generic) {
            // Generic ops with data (Const, ConvTranspose) keep it in float32.
            if (op.w_count > 0) {
                L.w[i] = total;
                total = align256(total + op.w_count * 4);
            }
            if (op.b_count > 0) {
                L.b[i] = total;
                total = align256(total + op.b_count * 4);
            }
            continue;
        }
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

namespace {

// Whether every offset base + sum_k idx_k * strides_k over idx in dims lies in [0, numel).
bool strided_in_bounds(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, int64_t base,
                       int64_t numel) {
    if (dims.size() != strides.size()) return false;
    int64_t lo = base, hi = base;
    for (size_t k = 0; k < dims.size(); ++k) {
        if (dims[k] < 1 || dims[k] > (int64_t(1) << 31)) return false;
        const int64_t span = (dims[k] - 1) * strides[k];
        if (std::llabs(strides[k]) > (int64_t(1) << 40)) return false;
        (span < 0 ? lo : hi) += span;
    }
    return lo >= 0 && hi < numel;
}

std::vector<int64_t> part(const std::vector<int64_t>& v, size_t at, size_t n) {
    return std::vector<int64_t>(v.begin() + std::ptrdiff_t(at), v.begin() + std::ptrdiff_t(at + n));
}

int64_t product(const std::vector<int64_t>& v) {
    int64_t p = 1;
    for (int64_t x : v) p *= x;
    return p;
}

// The generic op's parameters agree with its buffers: every index its kernel can form
// lies inside them (a crafted engine file must not make a kernel read or write outside).
void validate_generic(const Plan& p, const PlanOp& op) {
    const auto nb = int32_t(p.buffers.size());
    auto buf = [&](const View& v) -> const PlanBuffer& {
        YOLOC_CHECK(v.buf >= 0 && v.buf < nb, "plan: op ", op.name, " uses buffer ", v.buf, " of ", nb);
        const PlanBuffer& b = p.buffers[size_t(v.buf)];
        YOLOC_CHECK((b.kind == BufferKind::Tensor || b.kind == BufferKind::Output) && v.c_off == 0 && v.c == 0,
                    "plan: generic op ", op.name, " uses ", b.name, ", which is not a whole tensor");
        return b;
    };
    for (const auto& v : op.in) buf(v);
    const PlanBuffer& out = buf(op.out);
    for (const auto& v : op.more_out) buf(v);
    auto numel = [&](const View& v) { return shape_numel(buf(v).shape); };
    auto is_int = [&](const View& v) { return buf(v).integer; };
    auto arity = [&](size_t in, size_t ints, size_t more = 0) {
        YOLOC_CHECK(op.in.size() == in && op.ints.size() == ints && op.more_out.size() == more, "plan: generic op ",
                    op.name, " has ", op.in.size(), " inputs and ", op.ints.size(), " parameters");
    };
    const size_t R = size_t(kGenericRank);
    auto dims_at = [&](size_t at) {
        auto d = part(op.ints, at, R);
        for (int64_t x : d) YOLOC_CHECK(x >= 1 && x < (int64_t(1) << 31), "plan: op ", op.name, " has a bad dim");
        return d;
    };
    auto check = [&](bool ok, const char* what) { YOLOC_CHECK(ok, "plan: generic op ", op.name, ": ", what); };
    switch (GenericKind(op.gop)) {
        case GenericKind::Unary:
            arity(1, 0);
            check(op.sub >= 0 && op.sub < 64 && op.floats.size() == 2, "bad unary op");
            check(!is_int(op.in[0]) && !out.integer && numel(op.in[0]) == numel(op.out), "shapes");
            break;
        case GenericKind::Binary: {
            arity(2, 3 * R);
            const auto d = dims_at(0);
            check(op.sub >= 0 && op.sub <= 16, "bad binary op");
            check(is_int(op.in[0]) == is_int(op.in[1]), "operand types differ");
            check(out.integer == (op.sub >= 9 || is_int(op.in[0])), "output type");
            check(product(d) == numel(op.out), "output size");
            check(strided_in_bounds(d, part(op.ints, R, R), 0, numel(op.in[0])), "first operand out of bounds");
            check(strided_in_bounds(d, part(op.ints, 2 * R, R), 0, numel(op.in[1])), "second operand out of bounds");
            break;
        }
        case GenericKind::Where: {
            arity(3, 4 * R);
            const auto d = dims_at(0);
            check(is_int(op.in[0]) && is_int(op.in[1]) == is_int(op.in[2]) && out.integer == is_int(op.in[1]), "types");
            check(product(d) == numel(op.out), "output size");
            for (size_t k = 0; k < 3; ++k)
                check(strided_in_bounds(d, part(op.ints, (k + 1) * R, R), 0, numel(op.in[k])), "operand out of bounds");
            break;
        }
        case GenericKind::Softmax:
            arity(1, 3);
            check(op.ints[0] >= 1 && op.ints[1] >= 1 && op.ints[2] >= 1 &&
                      product(op.ints) == numel(op.in[0]) && numel(op.in[0]) == numel(op.out) && !out.integer &&
                      !is_int(op.in[0]),
                  "shapes");
            break;
        case GenericKind::MatMul: {
            arity(2, 3 + 3 * 4);
            const int64_t m = op.ints[0], n = op.ints[1], k = op.ints[2];
            const auto batch = part(op.ints, 3, 4);
            check(m >= 1 && n >= 1 && k >= 1 && product(batch) >= 1, "bad sizes");
            check(strided_in_bounds(batch, part(op.ints, 7, 4), 0, numel(op.in[0]) - m * k + 1), "A out of bounds");
            check(strided_in_bounds(batch, part(op.ints, 11, 4), 0, numel(op.in[1]) - k * n + 1), "B out of bounds");
            check(product(batch) * m * n == numel(op.out) && !out.integer, "output size");
            break;
        }
        case GenericKind::Copy: {
            arity(1, 3 * R + 2);
            const auto d = dims_at(0);
            check(is_int(op.in[0]) == out.integer, "types differ");
            check(strided_in_bounds(d, part(op.ints, R, R), op.ints[3 * R], numel(op.in[0])), "source out of bounds");
            check(strided_in_bounds(d, part(op.ints, 2 * R, R), op.ints[3 * R + 1], numel(op.out)), "target out of bounds");
            break;
        }
        case GenericKind::Gather:
            arity(2, 4);
            check(op.ints[0] >= 1 && op.ints[1] >= 1 && op.ints[2] >= 1 && op.ints[3] >= 1, "bad sizes");
            check(op.ints[0] * op.ints[1] * op.ints[2] == numel(op.in[0]) && is_int(op.in[1]) &&
                      numel(op.in[1]) == op.ints[3] && op.ints[0] * op.ints[3] * op.ints[2] == numel(op.out) &&
                      out.integer == is_int(op.in[0]),
                  "shapes");
            break;
        case GenericKind::GatherElements: {
            arity(2, 2 * R + 2);
            auto d = dims_at(0);
            const int64_t axis = op.ints[2 * R], len = op.ints[2 * R + 1];
            check(axis >= 0 && axis < int64_t(R) && len >= 1, "bad axis");
            check(is_int(op.in[1]) && numel(op.in[1]) == product(d) && numel(op.out) == product(d) &&
                      out.integer == is_int(op.in[0]),
                  "shapes");
            d[size_t(axis)] = len;  // the kernel reads any index in [0, len) along the axis
            check(strided_in_bounds(d, part(op.ints, R, R), 0, numel(op.in[0])), "data out of bounds");
            break;
        }
        case GenericKind::TopK:
            arity(1, 4, 1);
            check(op.ints[0] >= 1 && op.ints[1] >= 1 && op.ints[2] >= 1 && op.ints[3] >= 1 && op.ints[3] <= op.ints[1],
                  "bad sizes");
            check(op.ints[0] * op.ints[1] * op.ints[2] == numel(op.in[0]) &&
                      op.ints[0] * op.ints[3] * op.ints[2] == numel(op.out) && numel(op.more_out[0]) == numel(op.out) &&
                      out.integer == is_int(op.in[0]) && is_int(op.more_out[0]),
                  "shapes");
            break;
        case GenericKind::Reduce: {
            arity(1, 4 * R);
            const auto d = dims_at(0);
            const auto rd = dims_at(2 * R);
            check(op.sub >= 0 && op.sub <= 3 && product(d) == numel(op.out) && out.integer == is_int(op.in[0]),
                  "shapes");
            std::vector<int64_t> all = d, st = part(op.ints, R, R);
            all.insert(all.end(), rd.begin(), rd.end());
            auto rs = part(op.ints, 3 * R, R);
            st.insert(st.end(), rs.begin(), rs.end());
            check(strided_in_bounds(all, st, 0, numel(op.in[0])), "input out of bounds");
            break;
        }
        case GenericKind::Cast:
            arity(1, 0);
            check(op.sub >= 0 && op.sub <= 3 && numel(op.in[0]) == numel(op.out), "shapes");
            check(is_int(op.in[0]) == (op.sub == 1 || op.sub == 3) && out.integer == (op.sub != 1), "types");
            break;
        case GenericKind::Const:
            arity(0, 0);
            check(op.b_off >= 0 && op.b_count == numel(op.out) && op.b_off + op.b_count <= int64_t(p.weights.size()),
                  "data outside the weights");
            break;
        case GenericKind::FakeQuant:
            arity(1, 0);
            check(op.floats.size() == 1 && op.floats[0] > 0.f && std::isfinite(op.floats[0]), "bad scale");
            check(!is_int(op.in[0]) && !out.integer && numel(op.in[0]) == numel(op.out), "shapes");
            break;
        case GenericKind::ConvTranspose: {
            arity(1, 7);
            const Shape& xs = buf(op.in[0]).shape;
            const Shape& ys = out.shape;
            const int64_t kh = op.ints[0], kw = op.ints[1], g = op.ints[6];
            check(xs.size() == 4 && ys.size() == 4 && xs[0] == ys[0] && kh >= 1 && kw >= 1 && kh <= 64 && kw <= 64 &&
                      op.ints[2] >= 1 && op.ints[3] >= 1 && op.ints[4] >= 0 && op.ints[5] >= 0 && g >= 1 &&
                      xs[1] % g == 0 && ys[1] % g == 0,
                  "bad window");
            check(op.w_count == xs[1] * (ys[1] / g) * kh * kw && op.b_count == ys[1] && op.w_off >= 0 &&
                      op.b_off >= 0 && op.w_off + op.w_count <= int64_t(p.weights.size()) &&
                      op.b_off + op.b_count <= int64_t(p.weights.size()),
                  "weights");
            check(!is_int(op.in[0]) && !out.integer, "types");
            break;
        }
        default:
            fail("plan: generic op ", op.name, " has unknown kind ", op.gop);
    }
}

}  // namespace

void Plan::validate() const {
    auto nb = int32_t(buffers.size());
    for (const auto& b : buffers) {
        YOLOC_CHECK(b.elem_bytes == 2 || b.elem_bytes == 4 ||
                        (b.elem_bytes == 1 && b.kind == BufferKind::Activation && precision == Precision::INT8),
                    "plan: buffer ", b.name, " has element size ", b.elem_bytes);
        const size_t max_rank = b.kind == BufferKind::Tensor || b.kind == BufferKind::Output ? size_t(kGenericRank) : 4;
        YOLOC_CHECK(!b.shape.empty() && b.shape.size() <= max_rank, "plan: buffer ", b.name, " has rank ",
                    b.shape.size());
        YOLOC_CHECK(!b.integer || (b.kind == BufferKind::Tensor && b.elem_bytes == 4), "plan: buffer ", b.name,
                    " is integer but not a generic tensor");
        YOLOC_CHECK(b.kind != BufferKind::Tensor || b.elem_bytes == 4, "plan: tensor ", b.name, " has element size ",
                    b.elem_bytes);
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
    auto float_tensor = [&](const View& v) {
        if (v.buf < 0 || v.buf >= nb) return false;
        const PlanBuffer& b = buffers[size_t(v.buf)];
        return (b.kind == BufferKind::Output || b.kind == BufferKind::Tensor) && !b.integer;
    };
    for (const auto& op : ops) {
        switch (op.kind) {
            case OpKind::InputPack: {
                YOLOC_CHECK(op.in.size() == 1 && op.in[0].buf >= 0 && op.in[0].buf < nb, "plan: bad InputPack");
                const PlanBuffer& ib = buffers[size_t(op.in[0].buf)];
                YOLOC_CHECK((op.in[0].buf == input_buf || (ib.kind == BufferKind::Tensor && !ib.integer)) &&
                                ib.shape.size() == 4, "plan: InputPack ", op.name, " reads ", ib.name,
                            ", which is not a float NCHW tensor");
                check_view(op.out, op, true);
                YOLOC_CHECK(op.out.c == ib.shape[1], "plan: InputPack ", op.name, " channel count");
                break;
            }
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
                YOLOC_CHECK(float_tensor(op.out), "plan: Detect must write a float output or tensor");
                break;
            case OpKind::OutputUnpack:
                YOLOC_CHECK(op.in.size() == 1, "plan: bad OutputUnpack");
                check_view(op.in[0], op, true);
                YOLOC_CHECK(float_tensor(op.out), "plan: OutputUnpack must write a float output or tensor");
                YOLOC_CHECK(buffers[size_t(op.out.buf)].shape.size() == 4 &&
                                buffers[size_t(op.out.buf)].shape[1] == op.in[0].c,
                            "plan: OutputUnpack ", op.name, " channel count");
                break;
            case OpKind::Generic:
                validate_generic(*this, op);
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
        if (op.kind == OpKind::Generic) os << " " << generic_kind_name(GenericKind(op.gop)) << " sub " << op.sub;
        if (op.kind == OpKind::Detect) os << " reg_max " << op.reg_max << (op.xyxy ? " xyxy" : " xywh");
        os << "\n";
    }
    return os.str();
}

}  // namespace engine
}  // namespace yoloc
