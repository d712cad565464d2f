// Reference kernels. Plain loops on NCHW float32 (and the small integer tensors
// that shape computations use). Correctness over speed: these are the oracle.
#include "engine/cpu/ref_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>

#include "core/half.h"

namespace yoloc {
namespace {

using Kernel = std::function<std::vector<Tensor>(const Node&, const std::vector<Tensor>&, int64_t)>;

int64_t norm_axis(int64_t axis, size_t rank, const Node& n) {
    int64_t r = int64_t(rank);
    if (axis < 0) axis += r;
    YOLOC_CHECK(axis >= 0 && axis < r, "node ", n.label(), ": axis out of range for rank ", rank);
    return axis;
}

const Tensor& in(const std::vector<Tensor>& ins, size_t i, const Node& n) {
    YOLOC_CHECK(i < ins.size() && !ins[i].empty(), "node ", n.label(), ": missing input ", i);
    return ins[i];
}

bool has_in(const std::vector<Tensor>& ins, size_t i) { return i < ins.size() && !ins[i].empty(); }

std::vector<int64_t> strides_of(const Shape& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
    return st;
}

Shape broadcast_shape(const Shape& a, const Shape& b, const Node& n) {
    size_t r = std::max(a.size(), b.size());
    Shape out(r);
    for (size_t k = 0; k < r; ++k) {
        int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
        int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
        YOLOC_CHECK(da == db || da == 1 || db == 1, "node ", n.label(), ": shapes ", shape_str(a), " and ",
                    shape_str(b), " do not broadcast");
        out[k] = da == 1 ? db : da;
    }
    return out;
}

// Element strides of `s` seen through broadcasting into `out` (0 on broadcast dims).
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
    std::vector<int64_t> st = strides_of(s);
    std::vector<int64_t> r(out.size(), 0);
    size_t off = out.size() - s.size();
    for (size_t k = 0; k < s.size(); ++k) r[k + off] = s[k] == 1 ? 0 : st[k];
    return r;
}

// Calls f(out_index, index_a, index_b) for every element of the broadcast result.
template <typename F>
void for_each_broadcast(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F f) {
    int64_t total = shape_numel(out);
    size_t r = out.size();
    std::vector<int64_t> idx(r, 0);
    int64_t ia = 0, ib = 0;
    for (int64_t o = 0; o < total; ++o) {
        f(o, ia, ib);
        for (size_t k = r; k-- > 0;) {
            idx[k]++;
            ia += sa[k];
            ib += sb[k];
            if (idx[k] < out[k]) break;
            ia -= sa[k] * out[k];
            ib -= sb[k] * out[k];
            idx[k] = 0;
        }
    }
}

Tensor to_f32(const Tensor& t) {
    if (t.dtype() == DType::Float32) return t;
    Tensor r(DType::Float32, t.shape());
    if (t.dtype() == DType::Float16) {
        for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = half_to_float(t.data<uint16_t>()[i]);
    } else {
        for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = float(t.at_f64(i));
    }
    return r;
}

bool is_int_type(DType d) {
    return d == DType::Int64 || d == DType::Int32 || d == DType::Int8 || d == DType::UInt8 || d == DType::Int16 ||
           d == DType::UInt16 || d == DType::UInt32 || d == DType::UInt64 || d == DType::Bool;
}

// Writes value v (double) into element i of an int or float tensor.
void store(Tensor& t, int64_t i, double v) {
    switch (t.dtype()) {
        case DType::Float32: t.data<float>()[i] = float(v); break;
        case DType::Float64: t.data<double>()[i] = v; break;
        case DType::Int64: t.data<int64_t>()[i] = int64_t(v); break;
        case DType::Int32: t.data<int32_t>()[i] = int32_t(v); break;
        case DType::Int8: t.data<int8_t>()[i] = int8_t(v); break;
        case DType::UInt8: t.data<uint8_t>()[i] = uint8_t(v); break;
        case DType::Bool: t.data<uint8_t>()[i] = v != 0; break;
        case DType::Float16: t.data<uint16_t>()[i] = float_to_half(float(v)); break;
        default: fail("cannot store into a ", dtype_name(t.dtype()), " tensor");
    }
}

std::vector<Tensor> binary(const Node& n, const std::vector<Tensor>& ins, char op) {
    const Tensor& a = in(ins, 0, n);
    const Tensor& b = in(ins, 1, n);
    Shape out = broadcast_shape(a.shape(), b.shape(), n);
    auto sa = broadcast_strides(a.shape(), out), sb = broadcast_strides(b.shape(), out);
    bool cmp = op == '=' || op == '<' || op == '>';
    if (a.dtype() == DType::Float32 && b.dtype() == DType::Float32 && !cmp) {
        Tensor r(DType::Float32, out);
        const float* pa = a.data<float>();
        const float* pb = b.data<float>();
        float* pr = r.data<float>();
        switch (op) {
            case '+': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] + pb[j]; }); break;
            case '-': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] - pb[j]; }); break;
            case '*': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] * pb[j]; }); break;
            case '/': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = pa[i] / pb[j]; }); break;
            case 'p': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = std::pow(pa[i], pb[j]); }); break;
            case 'm': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = std::min(pa[i], pb[j]); }); break;
            case 'M': for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) { pr[o] = std::max(pa[i], pb[j]); }); break;
            default: fail("node ", n.label(), ": bad binary op");
        }
        return {r};
    }
    YOLOC_CHECK(a.dtype() == b.dtype() || op == 'p', "node ", n.label(), ": operand types differ (", dtype_name(a.dtype()),
                " vs ", dtype_name(b.dtype()), ")");
    Tensor r(cmp ? DType::Bool : a.dtype(), out);
    bool integer = is_int_type(a.dtype());
    for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) {
        if (integer && op != 'p') {
            int64_t x = a.at_i64(i), y = b.at_i64(j), v = 0;
            switch (op) {
                case '+': v = x + y; break;
                case '-': v = x - y; break;
                case '*': v = x * y; break;
                case '/':
                    YOLOC_CHECK(y != 0, "node ", n.label(), ": integer division by zero");
                    v = x / y;  // ONNX integer Div truncates
                    break;
                case 'm': v = std::min(x, y); break;
                case 'M': v = std::max(x, y); break;
                case '=': v = x == y; break;
                case '<': v = x < y; break;
                case '>': v = x > y; break;
            }
            store(r, o, double(v));
        } else {
            double x = a.at_f64(i), y = b.at_f64(j), v = 0;
            switch (op) {
                case '+': v = x + y; break;
                case '-': v = x - y; break;
                case '*': v = x * y; break;
                case '/': v = x / y; break;
                case 'p': v = std::pow(x, y); break;
                case 'm': v = std::min(x, y); break;
                case 'M': v = std::max(x, y); break;
                case '=': v = x == y; break;
                case '<': v = x < y; break;
                case '>': v = x > y; break;
            }
            store(r, o, v);
        }
    });
    return {r};
}

std::vector<Tensor> unary_f(const Node& n, const std::vector<Tensor>& ins, float (*f)(float)) {
    const Tensor& x = in(ins, 0, n);
    YOLOC_CHECK(x.dtype() == DType::Float32, "node ", n.label(), ": expects float32, got ", dtype_name(x.dtype()));
    Tensor r(DType::Float32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) r.data<float>()[i] = f(x.data<float>()[i]);
    return {r};
}

float sigmoidf(float v) { return 1.0f / (1.0f + std::exp(-v)); }

std::vector<Tensor> op_conv(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const Tensor& w = in(ins, 1, n);
    YOLOC_CHECK(x.rank() == 4 && w.rank() == 4, "node ", n.label(), ": only 2-D convolution (4-D tensors) is supported");
    std::string auto_pad = n.attr_s("auto_pad", "NOTSET");
    auto k = n.attr_ints("kernel_shape", {w.dim(2), w.dim(3)});
    auto s = n.attr_ints("strides", {1, 1});
    auto d = n.attr_ints("dilations", {1, 1});
    auto p = n.attr_ints("pads", {0, 0, 0, 0});
    YOLOC_CHECK(k.size() == 2 && s.size() == 2 && d.size() == 2 && p.size() == 4, "node ", n.label(), ": bad conv attributes");
    YOLOC_CHECK(k[0] == w.dim(2) && k[1] == w.dim(3), "node ", n.label(), ": kernel_shape does not match the weight");
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        for (int a = 0; a < 2; ++a) {
            int64_t insz = x.dim(2 + a), outsz = (insz + s[a] - 1) / s[a];
            int64_t total = std::max<int64_t>(0, (outsz - 1) * s[a] + (k[a] - 1) * d[a] + 1 - insz);
            int64_t small = total / 2, big = total - small;
            p[a] = auto_pad == "SAME_UPPER" ? small : big;
            p[a + 2] = auto_pad == "SAME_UPPER" ? big : small;
        }
    } else if (auto_pad == "VALID") {
        p = {0, 0, 0, 0};
    }
    Tensor b = has_in(ins, 2) ? to_f32(ins[2]) : Tensor();
    return {ref_conv2d(to_f32(x), to_f32(w), b, s, p, d, n.attr_i("group", 1))};
}

std::vector<Tensor> op_concat(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    YOLOC_CHECK(!ins.empty(), "node ", n.label(), ": Concat needs inputs");
    const Tensor& first = in(ins, 0, n);
    int64_t axis = norm_axis(n.attr_i("axis", 0), first.rank(), n);
    Shape out = first.shape();
    out[size_t(axis)] = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
        const Tensor& t = in(ins, i, n);
        YOLOC_CHECK(t.rank() == first.rank() && t.dtype() == first.dtype(), "node ", n.label(), ": inputs differ in rank or type");
        for (size_t k = 0; k < t.rank(); ++k)
            YOLOC_CHECK(int64_t(k) == axis || t.dim(k) == first.dim(k), "node ", n.label(), ": input ", i, " has shape ",
                        shape_str(t.shape()), ", which does not fit ", shape_str(first.shape()), " on axis ", k);
        out[size_t(axis)] += t.dim(size_t(axis));
    }
    Tensor r(first.dtype(), out);
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= out[size_t(k)];
    for (size_t k = size_t(axis) + 1; k < out.size(); ++k) inner *= out[k];
    size_t es = dtype_size(first.dtype());
    int64_t off = 0;
    for (const auto& t : ins) {
        int64_t chunk = t.dim(size_t(axis)) * inner;
        for (int64_t o = 0; o < outer; ++o)
            std::memcpy(r.raw() + size_t((o * out[size_t(axis)] * inner + off) * int64_t(es)),
                        t.raw() + size_t(o * chunk * int64_t(es)), size_t(chunk) * es);
        off += chunk;
    }
    return {r};
}

std::vector<Tensor> op_split(const Node& n, const std::vector<Tensor>& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    int64_t axis = norm_axis(n.attr_i("axis", 0), x.rank(), n);
    int64_t len = x.dim(size_t(axis));
    std::vector<int64_t> sizes;
    if (has_in(ins, 1)) sizes = ins[1].to_int64s();
    else if (n.has("split")) sizes = n.attr_ints("split");
    size_t nout = n.outputs.size();
    if (sizes.empty()) {
        int64_t parts = n.has("num_outputs") ? n.attr_i("num_outputs", 1) : int64_t(nout);
        YOLOC_CHECK(parts > 0, "node ", n.label(), ": bad number of outputs");
        int64_t each = (len + parts - 1) / parts;
        for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(each, len - each * i));
    }
    YOLOC_CHECK(sizes.size() == nout, "node ", n.label(), ": ", sizes.size(), " split sizes for ", nout, " outputs");
    int64_t sum = 0;
    for (int64_t s : sizes) {
        YOLOC_CHECK(s >= 0, "node ", n.label(), ": negative split size");
        sum += s;
    }
    YOLOC_CHECK(sum == len, "node ", n.label(), ": split sizes add up to ", sum, " but the axis has ", len);
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= x.dim(size_t(k));
    for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) inner *= x.dim(k);
    size_t es = dtype_size(x.dtype());
    std::vector<Tensor> outs;
    int64_t off = 0;
    for (int64_t s : sizes) {
        Shape sh = x.shape();
        sh[size_t(axis)] = s;
        Tensor r(x.dtype(), sh);
        for (int64_t o = 0; o < outer; ++o)
            std::memcpy(r.raw() + size_t(o * s * inner) * es, x.raw() + size_t((o * len + off) * inner) * es,
                        size_t(s * inner) * es);
        off += s;
        outs.push_back(r);
    }
    return outs;
}

std::vector<Tensor> op_maxpool(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor x = to_f32(in(ins, 0, n));
    YOLOC_CHECK(x.rank() == 4, "node ", n.label(), ": only 2-D pooling is supported");
    YOLOC_CHECK(n.outputs.size() == 1 || n.outputs[1].empty(), "node ", n.label(), ": MaxPool indices output is not supported");
    auto k = n.attr_ints("kernel_shape");
    YOLOC_CHECK(k.size() == 2, "node ", n.label(), ": kernel_shape must have 2 values");
    auto s = n.attr_ints("strides", {1, 1});
    auto p = n.attr_ints("pads", {0, 0, 0, 0});
    auto d = n.attr_ints("dilations", {1, 1});
    int64_t ceil_mode = n.attr_i("ceil_mode", 0);
    YOLOC_CHECK(n.attr_s("auto_pad", "NOTSET") == "NOTSET", "node ", n.label(), ": auto_pad is not supported for MaxPool");
    int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    auto outdim = [&](int64_t in_sz, int a) {
        double v = double(in_sz + p[size_t(a)] + p[size_t(a) + 2] - ((k[size_t(a)] - 1) * d[size_t(a)] + 1)) / double(s[size_t(a)]);
        return int64_t(ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
    };
    int64_t OH = outdim(H, 0), OW = outdim(W, 1);
    Tensor r(DType::Float32, {N, C, OH, OW});
    const float* px = x.data<float>();
    float* pr = r.data<float>();
    for (int64_t nc = 0; nc < N * C; ++nc)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                float m = -std::numeric_limits<float>::infinity();
                for (int64_t i = 0; i < k[0]; ++i)
                    for (int64_t j = 0; j < k[1]; ++j) {
                        int64_t ih = oh * s[0] - p[0] + i * d[0], iw = ow * s[1] - p[1] + j * d[1];
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        m = std::max(m, px[(nc * H + ih) * W + iw]);
                    }
                pr[(nc * OH + oh) * OW + ow] = m;
            }
    return {r};
}

std::vector<Tensor> op_resize(const Node& n, const std::vector<Tensor>& ins, int64_t opset) {
    const Tensor x = to_f32(in(ins, 0, n));
    std::string mode = n.attr_s("mode", "nearest");
    YOLOC_CHECK(x.rank() == 4, "node ", n.label(), ": only 4-D Resize is supported");
    // Inputs: X, roi, scales, sizes (opset >= 11); opset 10: X, scales.
    Tensor scales_t, sizes_t;
    if (opset < 11) scales_t = has_in(ins, 1) ? ins[1] : Tensor();
    else {
        if (has_in(ins, 2)) scales_t = ins[2];
        if (has_in(ins, 3)) sizes_t = ins[3];
    }
    std::vector<double> scales(4, 1.0);
    Shape out = x.shape();
    if (!sizes_t.empty() && sizes_t.numel() > 0) {
        auto sz = sizes_t.to_int64s();
        YOLOC_CHECK(sz.size() == 4, "node ", n.label(), ": sizes must have 4 values");
        for (size_t a = 0; a < 4; ++a) {
            out[a] = sz[a];
            scales[a] = double(sz[a]) / double(x.dim(a));
        }
    } else {
        YOLOC_CHECK(!scales_t.empty() && scales_t.numel() == 4, "node ", n.label(), ": Resize needs 4 scales or sizes");
        for (size_t a = 0; a < 4; ++a) {
            scales[a] = scales_t.at_f64(int64_t(a));
            out[a] = int64_t(std::floor(double(x.dim(a)) * scales[a]));
        }
    }
    YOLOC_CHECK(out[0] == x.dim(0) && out[1] == x.dim(1), "node ", n.label(), ": Resize over batch/channels is not supported");
    std::string ctm = n.attr_s("coordinate_transformation_mode", "half_pixel");
    std::string nearest_mode = n.attr_s("nearest_mode", "round_prefer_floor");
    auto src_coord = [&](int64_t o, int a) {
        double sc = scales[size_t(a)];
        double in_len = double(x.dim(size_t(a))), out_len = double(out[size_t(a)]);
        if (ctm == "asymmetric") return double(o) / sc;
        if (ctm == "half_pixel") return (double(o) + 0.5) / sc - 0.5;
        if (ctm == "pytorch_half_pixel") return out_len > 1 ? (double(o) + 0.5) / sc - 0.5 : 0.0;
        if (ctm == "align_corners") return out_len > 1 ? double(o) * (in_len - 1) / (out_len - 1) : 0.0;
        if (ctm == "tf_half_pixel_for_nn") return (double(o) + 0.5) / sc;
        fail("node ", n.label(), ": coordinate_transformation_mode '", ctm, "' is not supported");
    };
    int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), OH = out[2], OW = out[3];
    Tensor r(DType::Float32, out);
    const float* px = x.data<float>();
    float* pr = r.data<float>();
    if (mode == "nearest") {
        auto pick = [&](double c, int64_t len) {
            int64_t i;
            if (nearest_mode == "floor") i = int64_t(std::floor(c));
            else if (nearest_mode == "ceil") i = int64_t(std::ceil(c));
            else if (nearest_mode == "round_prefer_ceil") i = int64_t(std::floor(c + 0.5));
            else i = (c - std::floor(c) == 0.5) ? int64_t(std::floor(c)) : int64_t(std::round(c));
            return std::min(std::max<int64_t>(i, 0), len - 1);
        };
        std::vector<int64_t> ys(static_cast<size_t>(OH)), xs(static_cast<size_t>(OW));
        for (int64_t o = 0; o < OH; ++o) ys[size_t(o)] = pick(src_coord(o, 2), H);
        for (int64_t o = 0; o < OW; ++o) xs[size_t(o)] = pick(src_coord(o, 3), W);
        for (int64_t nc = 0; nc < N * C; ++nc)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow)
                    pr[(nc * OH + oh) * OW + ow] = px[(nc * H + ys[size_t(oh)]) * W + xs[size_t(ow)]];
    } else if (mode == "linear") {
        for (int64_t nc = 0; nc < N * C; ++nc)
            for (int64_t oh = 0; oh < OH; ++oh) {
                double cy = std::min(std::max(src_coord(oh, 2), 0.0), double(H - 1));
                int64_t y0 = int64_t(std::floor(cy)), y1 = std::min(y0 + 1, H - 1);
                double fy = cy - double(y0);
                for (int64_t ow = 0; ow < OW; ++ow) {
                    double cx = std::min(std::max(src_coord(ow, 3), 0.0), double(W - 1));
                    int64_t x0 = int64_t(std::floor(cx)), x1 = std::min(x0 + 1, W - 1);
                    double fx = cx - double(x0);
                    const float* b = px + nc * H * W;
                    double v = (1 - fy) * ((1 - fx) * b[y0 * W + x0] + fx * b[y0 * W + x1]) +
                               fy * ((1 - fx) * b[y1 * W + x0] + fx * b[y1 * W + x1]);
                    pr[(nc * OH + oh) * OW + ow] = float(v);
                }
            }
    } else {
        fail("node ", n.label(), ": Resize mode '", mode, "' is not supported (nearest, linear)");
    }
    return {r};
}

std::vector<Tensor> op_reshape(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto target = in(ins, 1, n).to_int64s();
    bool allowzero = n.attr_i("allowzero", 0) != 0;
    Shape out(target.size());
    int64_t known = 1, infer = -1;
    for (size_t k = 0; k < target.size(); ++k) {
        int64_t v = target[k];
        if (v == 0 && !allowzero) {
            YOLOC_CHECK(k < x.rank(), "node ", n.label(), ": reshape 0 refers to a missing input dim");
            v = x.dim(k);
        }
        if (v == -1) {
            YOLOC_CHECK(infer < 0, "node ", n.label(), ": more than one -1 in the target shape");
            infer = int64_t(k);
            out[k] = 1;
            continue;
        }
        YOLOC_CHECK(v >= 0, "node ", n.label(), ": bad target dim ", v);
        out[k] = v;
        known *= v;
    }
    if (infer >= 0) {
        YOLOC_CHECK(known > 0 && x.numel() % known == 0, "node ", n.label(), ": cannot reshape ", shape_str(x.shape()),
                    " to ", shape_str(target));
        out[size_t(infer)] = x.numel() / known;
    }
    YOLOC_CHECK(shape_numel(out) == x.numel(), "node ", n.label(), ": cannot reshape ", shape_str(x.shape()), " to ",
                shape_str(out), " (element counts differ; wrong input size for this model?)");
    return {x.reshaped(out)};
}

std::vector<Tensor> op_transpose(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    std::vector<int64_t> perm = n.attr_ints("perm");
    if (perm.empty())
        for (size_t k = x.rank(); k-- > 0;) perm.push_back(int64_t(k));
    YOLOC_CHECK(perm.size() == x.rank(), "node ", n.label(), ": perm has the wrong length");
    Shape out(x.rank());
    for (size_t k = 0; k < perm.size(); ++k) out[k] = x.dim(size_t(norm_axis(perm[k], x.rank(), n)));
    Tensor r(x.dtype(), out);
    auto ist = strides_of(x.shape());
    std::vector<int64_t> st(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) st[k] = ist[size_t(perm[k])];
    std::vector<int64_t> zero(perm.size(), 0);
    size_t es = dtype_size(x.dtype());
    for_each_broadcast(out, st, zero, [&](int64_t o, int64_t i, int64_t) {
        std::memcpy(r.raw() + size_t(o) * es, x.raw() + size_t(i) * es, es);
    });
    return {r};
}

std::vector<Tensor> op_softmax(const Node& n, const std::vector<Tensor>& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    YOLOC_CHECK(x.dtype() == DType::Float32, "node ", n.label(), ": Softmax expects float32");
    int64_t axis = norm_axis(n.attr_i("axis", opset >= 13 ? -1 : 1), x.rank(), n);
    Tensor r(DType::Float32, x.shape());
    int64_t outer = 1, len, inner = 1;
    if (opset >= 13) {
        for (int64_t k = 0; k < axis; ++k) outer *= x.dim(size_t(k));
        len = x.dim(size_t(axis));
        for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) inner *= x.dim(k);
    } else {  // opset < 13: coerce to 2-D at `axis`
        for (int64_t k = 0; k < axis; ++k) outer *= x.dim(size_t(k));
        len = x.numel() / std::max<int64_t>(outer, 1);
    }
    const float* px = x.data<float>();
    float* pr = r.data<float>();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            const float* b = px + o * len * inner + i;
            float* c = pr + o * len * inner + i;
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t k = 0; k < len; ++k) m = std::max(m, b[k * inner]);
            double sum = 0;
            for (int64_t k = 0; k < len; ++k) sum += std::exp(double(b[k * inner] - m));
            for (int64_t k = 0; k < len; ++k) c[k * inner] = float(std::exp(double(b[k * inner] - m)) / sum);
        }
    return {r};
}

std::vector<Tensor> op_shape(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t r = int64_t(x.rank());
    int64_t start = n.attr_i("start", 0), end = n.attr_i("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::min(std::max<int64_t>(start, 0), r);
    end = std::min(std::max<int64_t>(end, start), r);
    std::vector<int64_t> v(x.shape().begin() + start, x.shape().begin() + end);
    return {Tensor::from_int64s({int64_t(v.size())}, v)};
}

std::vector<Tensor> op_gather(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const Tensor& idx = in(ins, 1, n);
    int64_t axis = norm_axis(n.attr_i("axis", 0), x.rank(), n);
    Shape out;
    for (int64_t k = 0; k < axis; ++k) out.push_back(x.dim(size_t(k)));
    for (int64_t d : idx.shape()) out.push_back(d);
    for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) out.push_back(x.dim(k));
    Tensor r(x.dtype(), out);
    int64_t outer = 1, inner = 1, len = x.dim(size_t(axis));
    for (int64_t k = 0; k < axis; ++k) outer *= x.dim(size_t(k));
    for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) inner *= x.dim(k);
    size_t es = dtype_size(x.dtype());
    int64_t ni = idx.numel();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < ni; ++j) {
            int64_t id = idx.at_i64(j);
            if (id < 0) id += len;
            YOLOC_CHECK(id >= 0 && id < len, "node ", n.label(), ": gather index out of range");
            std::memcpy(r.raw() + size_t((o * ni + j) * inner) * es, x.raw() + size_t((o * len + id) * inner) * es,
                        size_t(inner) * es);
        }
    return {r};
}

std::vector<int64_t> axes_from(const Node& n, const std::vector<Tensor>& ins, size_t input_index) {
    if (has_in(ins, input_index)) return ins[input_index].to_int64s();
    return n.attr_ints("axes");
}

std::vector<Tensor> op_unsqueeze(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto axes = axes_from(n, ins, 1);
    size_t r = x.rank() + axes.size();
    std::vector<bool> ins_at(r, false);
    for (int64_t a : axes) ins_at[size_t(norm_axis(a, r, n))] = true;
    Shape out;
    size_t k = 0;
    for (size_t i = 0; i < r; ++i) out.push_back(ins_at[i] ? 1 : x.dim(k++));
    return {x.reshaped(out)};
}

std::vector<Tensor> op_squeeze(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    auto axes = axes_from(n, ins, 1);
    std::vector<bool> drop(x.rank(), false);
    if (axes.empty())
        for (size_t k = 0; k < x.rank(); ++k) drop[k] = x.dim(k) == 1;
    for (int64_t a : axes) {
        size_t k = size_t(norm_axis(a, x.rank(), n));
        YOLOC_CHECK(x.dim(k) == 1, "node ", n.label(), ": cannot squeeze a dimension of size ", x.dim(k));
        drop[k] = true;
    }
    Shape out;
    for (size_t k = 0; k < x.rank(); ++k)
        if (!drop[k]) out.push_back(x.dim(k));
    return {x.reshaped(out)};
}

std::vector<Tensor> op_flatten(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t axis = n.attr_i("axis", 1);
    if (axis < 0) axis += int64_t(x.rank());
    int64_t a = 1;
    for (int64_t k = 0; k < axis; ++k) a *= x.dim(size_t(k));
    return {x.reshaped({a, x.numel() / std::max<int64_t>(a, 1)})};
}

std::vector<Tensor> op_slice(const Node& n, const std::vector<Tensor>& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    std::vector<int64_t> starts, ends, axes, steps;
    if (opset >= 10) {
        starts = in(ins, 1, n).to_int64s();
        ends = in(ins, 2, n).to_int64s();
        if (has_in(ins, 3)) axes = ins[3].to_int64s();
        if (has_in(ins, 4)) steps = ins[4].to_int64s();
    } else {
        starts = n.attr_ints("starts");
        ends = n.attr_ints("ends");
        axes = n.attr_ints("axes");
    }
    if (axes.empty())
        for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
    if (steps.empty()) steps.assign(starts.size(), 1);
    YOLOC_CHECK(starts.size() == ends.size() && axes.size() == starts.size() && steps.size() == starts.size(),
                "node ", n.label(), ": Slice inputs differ in length");
    size_t r = x.rank();
    std::vector<int64_t> st(r, 0), step(r, 1);
    Shape out = x.shape();
    for (size_t i = 0; i < axes.size(); ++i) {
        size_t a = size_t(norm_axis(axes[i], r, n));
        int64_t len = x.dim(a), s = starts[i], e = ends[i], p = steps[i];
        YOLOC_CHECK(p != 0, "node ", n.label(), ": slice step 0");
        if (s < 0) s += len;
        if (e < 0) e += len;
        if (p > 0) {
            s = std::min(std::max<int64_t>(s, 0), len);
            e = std::min(std::max<int64_t>(e, 0), len);
            out[a] = e > s ? (e - s + p - 1) / p : 0;
        } else {
            s = std::min(std::max<int64_t>(s, -1), len - 1);
            e = std::min(std::max<int64_t>(e, -1), len - 1);
            out[a] = s > e ? (s - e - p - 1) / (-p) : 0;
        }
        st[a] = s;
        step[a] = p;
    }
    Tensor res(x.dtype(), out);
    auto xs = strides_of(x.shape());
    std::vector<int64_t> mul(r), zero(r, 0);
    int64_t base = 0;
    for (size_t k = 0; k < r; ++k) {
        mul[k] = xs[k] * step[k];
        base += st[k] * xs[k];
    }
    size_t es = dtype_size(x.dtype());
    if (res.numel() > 0)
        for_each_broadcast(out, mul, zero, [&](int64_t o, int64_t i, int64_t) {
            std::memcpy(res.raw() + size_t(o) * es, x.raw() + size_t(base + i) * es, es);
        });
    return {res};
}

std::vector<Tensor> op_cast(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    int64_t to = n.attr_i("to", 1);
    YOLOC_CHECK(dtype_known(int32_t(to)), "node ", n.label(), ": cast to unsupported type ", to);
    DType dt = static_cast<DType>(to);
    if (dt == x.dtype()) return {x};
    Tensor r(dt, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        double v = x.dtype() == DType::Float16 ? half_to_float(x.data<uint16_t>()[i]) : x.at_f64(i);
        if (dt == DType::Int64 && x.dtype() == DType::Int64) r.data<int64_t>()[i] = x.data<int64_t>()[i];
        else store(r, i, v);
    }
    return {r};
}

std::vector<Tensor> op_constant(const Node& n, const std::vector<Tensor>&, int64_t) {
    if (n.has("value")) {
        const Attribute& a = n.attrs.at("value");
        YOLOC_CHECK(a.kind == Attribute::Kind::Tensor, "node ", n.label(), ": value must be a tensor");
        return {a.t};
    }
    if (n.has("value_float")) return {Tensor::scalar_f32(n.attr_f("value_float", 0))};
    if (n.has("value_int")) return {Tensor::from_int64s({}, {n.attr_i("value_int", 0)})};
    if (n.has("value_floats")) {
        const auto& v = n.attrs.at("value_floats").floats;
        return {Tensor::from_floats({int64_t(v.size())}, v)};
    }
    if (n.has("value_ints")) {
        auto v = n.attr_ints("value_ints");
        return {Tensor::from_int64s({int64_t(v.size())}, v)};
    }
    fail("node ", n.label(), ": Constant without a supported value attribute");
}

std::vector<Tensor> op_constant_of_shape(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    auto shape = in(ins, 0, n).to_int64s();
    Tensor value = n.has("value") ? n.attrs.at("value").t : Tensor::from_floats({1}, {0.f});
    Tensor r(value.dtype(), shape);
    size_t es = dtype_size(value.dtype());
    for (int64_t i = 0; i < r.numel(); ++i) std::memcpy(r.raw() + size_t(i) * es, value.raw(), es);
    return {r};
}

std::vector<Tensor> op_range(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& s = in(ins, 0, n);
    double start = s.at_f64(0), limit = in(ins, 1, n).at_f64(0), delta = in(ins, 2, n).at_f64(0);
    YOLOC_CHECK(delta != 0, "node ", n.label(), ": Range delta is 0");
    int64_t count = std::max<int64_t>(int64_t(std::ceil((limit - start) / delta)), 0);
    YOLOC_CHECK(count < (int64_t(1) << 31), "node ", n.label(), ": Range is too long");
    Tensor r(s.dtype(), {count});
    for (int64_t i = 0; i < count; ++i) store(r, i, start + double(i) * delta);
    return {r};
}

std::vector<Tensor> op_expand(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    Shape target = in(ins, 1, n).to_int64s();
    Shape out = broadcast_shape(x.shape(), target, n);
    auto sx = broadcast_strides(x.shape(), out);
    std::vector<int64_t> zero(out.size(), 0);
    Tensor r(x.dtype(), out);
    size_t es = dtype_size(x.dtype());
    for_each_broadcast(out, sx, zero, [&](int64_t o, int64_t i, int64_t) {
        std::memcpy(r.raw() + size_t(o) * es, x.raw() + size_t(i) * es, es);
    });
    return {r};
}

std::vector<Tensor> op_where(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& c = in(ins, 0, n);
    const Tensor& a = in(ins, 1, n);
    const Tensor& b = in(ins, 2, n);
    Shape out = broadcast_shape(broadcast_shape(c.shape(), a.shape(), n), b.shape(), n);
    Tensor r(a.dtype(), out);
    auto sc = broadcast_strides(c.shape(), out), sa = broadcast_strides(a.shape(), out),
         sb = broadcast_strides(b.shape(), out);
    size_t es = dtype_size(a.dtype());
    std::vector<int64_t> zero(out.size(), 0);
    // Two passes keep for_each_broadcast's two-operand form.
    std::vector<int64_t> ci(static_cast<size_t>(r.numel()));
    for_each_broadcast(out, sc, zero, [&](int64_t o, int64_t i, int64_t) { ci[size_t(o)] = i; });
    for_each_broadcast(out, sa, sb, [&](int64_t o, int64_t i, int64_t j) {
        bool take_a = c.at_i64(ci[size_t(o)]) != 0;
        std::memcpy(r.raw() + size_t(o) * es, take_a ? a.raw() + size_t(i) * es : b.raw() + size_t(j) * es, es);
    });
    return {r};
}

std::vector<Tensor> op_clip(const Node& n, const std::vector<Tensor>& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (opset >= 11) {
        if (has_in(ins, 1)) lo = float(ins[1].at_f64(0));
        if (has_in(ins, 2)) hi = float(ins[2].at_f64(0));
    } else {
        lo = n.attr_f("min", lo);
        hi = n.attr_f("max", hi);
    }
    Tensor r = to_f32(x).clone();
    for (int64_t i = 0; i < r.numel(); ++i) r.data<float>()[i] = std::min(std::max(r.data<float>()[i], lo), hi);
    return {r};
}

// Q/DQ: y = saturate(round_half_even(x / scale) + zero_point); x = (q - zero_point) * scale.
struct QParams {
    int64_t axis = -1;  // -1: per tensor
    Tensor scale, zp;
};

QParams qparams(const Node& n, const std::vector<Tensor>& ins, const Tensor& x) {
    QParams q;
    q.scale = to_f32(in(ins, 1, n));
    if (has_in(ins, 2)) q.zp = ins[2];
    if (q.scale.numel() > 1 || q.scale.rank() == 1) {
        if (q.scale.numel() > 1) {
            q.axis = norm_axis(n.attr_i("axis", 1), x.rank(), n);
            YOLOC_CHECK(q.scale.numel() == x.dim(size_t(q.axis)), "node ", n.label(), ": ", q.scale.numel(),
                        " scales for axis ", q.axis, " of size ", x.dim(size_t(q.axis)));
        }
    }
    if (!q.zp.empty()) YOLOC_CHECK(q.zp.numel() == q.scale.numel(), "node ", n.label(), ": zero point and scale sizes differ");
    return q;
}

int64_t channel_of(int64_t i, const Tensor& x, int64_t axis) {
    if (axis < 0) return 0;
    int64_t inner = 1;
    for (size_t k = size_t(axis) + 1; k < x.rank(); ++k) inner *= x.dim(k);
    return (i / inner) % x.dim(size_t(axis));
}

std::vector<Tensor> op_quantize(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor x = to_f32(in(ins, 0, n));
    QParams q = qparams(n, ins, x);
    DType out_t = q.zp.empty() ? DType::UInt8 : q.zp.dtype();
    YOLOC_CHECK(out_t == DType::Int8 || out_t == DType::UInt8, "node ", n.label(), ": only int8/uint8 quantization");
    double lo = out_t == DType::Int8 ? -128 : 0, hi = out_t == DType::Int8 ? 127 : 255;
    Tensor r(out_t, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t c = channel_of(i, x, q.axis);
        double s = q.scale.data<float>()[c];
        double z = q.zp.empty() ? 0 : double(q.zp.at_i64(c));
        // Divide in float32 like the spec's reference (x / y_scale), then round half to even.
        float d = x.data<float>()[i] / float(s);
        double v = std::nearbyint(double(d)) + z;
        v = std::min(std::max(v, lo), hi);
        store(r, i, v);
    }
    return {r};
}

std::vector<Tensor> op_dequantize(const Node& n, const std::vector<Tensor>& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    QParams q = qparams(n, ins, x);
    Tensor r(DType::Float32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t c = channel_of(i, x, q.axis);
        float s = q.scale.data<float>()[c];
        int64_t z = q.zp.empty() ? 0 : q.zp.at_i64(c);
        r.data<float>()[i] = float(x.at_i64(i) - z) * s;
    }
    return {r};
}

std::vector<Tensor> op_identity(const Node& n, const std::vector<Tensor>& ins, int64_t) { return {in(ins, 0, n)}; }

const std::unordered_map<std::string, Kernel>& registry() {
    static const std::unordered_map<std::string, Kernel> r = {
        {"Conv", op_conv},
        {"Add", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '+'); }},
        {"Sub", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '-'); }},
        {"Mul", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '*'); }},
        {"Div", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '/'); }},
        {"Pow", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, 'p'); }},
        {"Min", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, 'm'); }},
        {"Max", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, 'M'); }},
        {"Equal", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '='); }},
        {"Less", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '<'); }},
        {"Greater", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return binary(n, i, '>'); }},
        {"Sigmoid", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, sigmoidf); }},
        {"Relu", [](const Node& n, const std::vector<Tensor>& i, int64_t) {
             return unary_f(n, i, [](float v) { return v > 0 ? v : 0.0f; }); }},
        {"Exp", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return std::exp(v); }); }},
        {"Log", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return std::log(v); }); }},
        {"Sqrt", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return std::sqrt(v); }); }},
        {"Neg", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return -v; }); }},
        {"Floor", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return std::floor(v); }); }},
        {"Ceil", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return std::ceil(v); }); }},
        {"Tanh", [](const Node& n, const std::vector<Tensor>& i, int64_t) { return unary_f(n, i, [](float v) { return std::tanh(v); }); }},
        {"HardSwish", [](const Node& n, const std::vector<Tensor>& i, int64_t) {
             return unary_f(n, i, [](float v) { return v * std::min(std::max(v / 6.0f + 0.5f, 0.0f), 1.0f); }); }},
        {"Concat", op_concat},
        {"Split", op_split},
        {"MaxPool", op_maxpool},
        {"Resize", op_resize},
        {"Upsample", op_resize},
        {"Reshape", op_reshape},
        {"Transpose", op_transpose},
        {"Softmax", op_softmax},
        {"Shape", op_shape},
        {"Gather", op_gather},
        {"Unsqueeze", op_unsqueeze},
        {"Squeeze", op_squeeze},
        {"Flatten", op_flatten},
        {"Slice", op_slice},
        {"Cast", op_cast},
        {"Constant", op_constant},
        {"ConstantOfShape", op_constant_of_shape},
        {"Range", op_range},
        {"Expand", op_expand},
        {"Where", op_where},
        {"Clip", op_clip},
        {"QuantizeLinear", op_quantize},
        {"DequantizeLinear", op_dequantize},
        {"Identity", op_identity},
    };
    return r;
}

}  // namespace

Tensor ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& s,
                  const std::vector<int64_t>& p, const std::vector<int64_t>& d, int64_t group) {
    int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    int64_t M = w.dim(0), CG = w.dim(1), KH = w.dim(2), KW = w.dim(3);
    YOLOC_CHECK(group >= 1 && C % group == 0 && M % group == 0 && CG == C / group, "conv: input has ", C,
                " channels but the weight ", shape_str(w.shape()), " with group ", group, " expects ", CG * group);
    YOLOC_CHECK(b.empty() || b.numel() == M, "conv: bias has ", b.numel(), " values for ", M, " output channels");
    int64_t OH = (H + p[0] + p[2] - d[0] * (KH - 1) - 1) / s[0] + 1;
    int64_t OW = (W + p[1] + p[3] - d[1] * (KW - 1) - 1) / s[1] + 1;
    YOLOC_CHECK(OH > 0 && OW > 0, "conv: input ", shape_str(x.shape()), " is too small for the kernel");
    Tensor y(DType::Float32, {N, M, OH, OW});
    const float* px = x.data<float>();
    const float* pw = w.data<float>();
    float* py = y.data<float>();
    int64_t MG = M / group;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) {
            int64_t g = m / MG;
            float* out = py + (n * M + m) * OH * OW;
            float bias = b.empty() ? 0.0f : b.data<float>()[m];
            for (int64_t i = 0; i < OH * OW; ++i) out[i] = bias;
            for (int64_t c = 0; c < CG; ++c) {
                const float* plane = px + (n * C + g * CG + c) * H * W;
                for (int64_t kh = 0; kh < KH; ++kh)
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        float wv = pw[((m * CG + c) * KH + kh) * KW + kw];
                        for (int64_t oh = 0; oh < OH; ++oh) {
                            int64_t ih = oh * s[0] - p[0] + kh * d[0];
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t ow = 0; ow < OW; ++ow) {
                                int64_t iw = ow * s[1] - p[1] + kw * d[1];
                                if (iw < 0 || iw >= W) continue;
                                out[oh * OW + ow] += wv * plane[ih * W + iw];
                            }
                        }
                    }
            }
        }
    return y;
}

std::vector<Tensor> ref_eval(const Node& node, const std::vector<Tensor>& inputs, int64_t opset) {
    if (!node.domain.empty())
        fail("node ", node.label(), ": operator domain '", node.domain, "' is not supported (only ai.onnx)");
    auto it = registry().find(node.op_type);
    if (it == registry().end())
        fail("node ", node.label(), ": operator '", node.op_type, "' is not supported by yoloc; supported: see `yoloc check --help`");
    std::vector<Tensor> out = it->second(node, inputs, opset);
    YOLOC_CHECK(out.size() >= node.outputs.size() || node.op_type == "MaxPool", "node ", node.label(), ": produced ",
                out.size(), " outputs, expected ", node.outputs.size());
    return out;
}

bool ref_supports(const std::string& op_type) { return registry().count(op_type) != 0; }

}  // namespace yoloc
