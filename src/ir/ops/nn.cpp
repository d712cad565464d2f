// Neural-network ops: Conv, ConvTranspose, MaxPool, Resize, Softmax, MatMul.
#include <limits>

#include "ir/ops/common.h"

namespace yoloc {
namespace ops {
namespace {

struct ConvWindow {
    std::vector<int64_t> k, s, d, p;  // kernel, strides, dilations, pads (t, l, b, r)
};

ConvWindow conv_window(const Node& n, const Shape& x, const Shape& w) {
    ConvWindow c;
    YOLOC_CHECK(x.size() == 4 && w.size() == 4, "node ", n.label(), ": only 2-D convolution (4-D tensors) is supported");
    c.k = n.attr_ints("kernel_shape", {w[2], w[3]});
    c.s = n.attr_ints("strides", {1, 1});
    c.d = n.attr_ints("dilations", {1, 1});
    c.p = n.attr_ints("pads", {0, 0, 0, 0});
    YOLOC_CHECK(c.k.size() == 2 && c.s.size() == 2 && c.d.size() == 2 && c.p.size() == 4, "node ", n.label(),
                ": bad conv attributes");
    YOLOC_CHECK(c.k[0] == w[2] && c.k[1] == w[3], "node ", n.label(), ": kernel_shape does not match the weight");
    for (int a = 0; a < 2; ++a)
        YOLOC_CHECK(c.s[size_t(a)] > 0 && c.d[size_t(a)] > 0, "node ", n.label(), ": strides and dilations must be positive");
    const std::string auto_pad = n.attr_s("auto_pad", "NOTSET");
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        for (size_t a = 0; a < 2; ++a) {
            int64_t insz = x[2 + a], outsz = (insz + c.s[a] - 1) / c.s[a];
            int64_t total = std::max<int64_t>(0, (outsz - 1) * c.s[a] + (c.k[a] - 1) * c.d[a] + 1 - insz);
            int64_t small = total / 2, big = total - small;
            c.p[a] = auto_pad == "SAME_UPPER" ? small : big;
            c.p[a + 2] = auto_pad == "SAME_UPPER" ? big : small;
        }
    } else if (auto_pad == "VALID") {
        c.p = {0, 0, 0, 0};
    } else {
        YOLOC_CHECK(auto_pad == "NOTSET", "node ", n.label(), ": auto_pad '", auto_pad, "' is not supported");
    }
    return c;
}

Tensors conv(const Node& n, const Tensors& ins, int64_t) {
    const Tensor& x = in(ins, 0, n);
    const Tensor& w = in(ins, 1, n);
    ConvWindow c = conv_window(n, x.shape(), w.shape());
    Tensor b = has_in(ins, 2) ? to_f32(ins[2]) : Tensor();
    return {ref_conv2d(to_f32(x), to_f32(w), b, c.s, c.p, c.d, n.attr_i("group", 1))};
}

std::vector<ValueType> conv_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(in.types.size() >= 2 && in.types[0] && in.types[1], "node ", n.label(), ": Conv needs X and W");
    const Shape& x = in.types[0]->shape;
    const Shape& w = in.types[1]->shape;
    ConvWindow c = conv_window(n, x, w);
    const int64_t group = n.attr_i("group", 1);
    YOLOC_CHECK(group >= 1 && x[1] == w[1] * group, "node ", n.label(), ": input has ", x[1],
                " channels, the weight expects ", w[1] * group, " (wrong model or input?)");
    Shape out{x[0], w[0], 0, 0};
    for (size_t a = 0; a < 2; ++a) {
        out[2 + a] = (x[2 + a] + c.p[a] + c.p[a + 2] - c.d[a] * (w[2 + a] - 1) - 1) / c.s[a] + 1;
        YOLOC_CHECK(out[2 + a] > 0, "node ", n.label(), ": input ", shape_str(x), " is too small for the kernel");
    }
    return {{DType::Float32, out}};
}

// ConvTranspose, 2-D: y[n, g*Mg + m, ih*s - pad + kh*d, ...] += x[n, g*Cg + c, ih, iw] * w[g*Cg + c, m, kh, kw].
struct ConvTWindow {
    std::vector<int64_t> s, d, p, op;
};
ConvTWindow convt_window(const Node& n) {
    ConvTWindow c;
    c.s = n.attr_ints("strides", {1, 1});
    c.d = n.attr_ints("dilations", {1, 1});
    c.p = n.attr_ints("pads", {0, 0, 0, 0});
    c.op = n.attr_ints("output_padding", {0, 0});
    YOLOC_CHECK(c.s.size() == 2 && c.d.size() == 2 && c.p.size() == 4 && c.op.size() == 2, "node ", n.label(),
                ": bad ConvTranspose attributes");
    YOLOC_CHECK(n.attr_s("auto_pad", "NOTSET") == "NOTSET" && !n.has("output_shape"), "node ", n.label(),
                ": ConvTranspose with auto_pad or output_shape is not supported");
    return c;
}

Shape convt_out(const Node& n, const Shape& x, const Shape& w, const ConvTWindow& c) {
    YOLOC_CHECK(x.size() == 4 && w.size() == 4, "node ", n.label(), ": only 2-D ConvTranspose is supported");
    const int64_t group = n.attr_i("group", 1);
    YOLOC_CHECK(group >= 1 && w[0] == x[1], "node ", n.label(), ": input has ", x[1], " channels, the weight ", w[0]);
    Shape out{x[0], w[1] * group, 0, 0};
    for (size_t a = 0; a < 2; ++a) {
        out[2 + a] = c.s[a] * (x[2 + a] - 1) + c.op[a] + (w[2 + a] - 1) * c.d[a] + 1 - c.p[a] - c.p[a + 2];
        YOLOC_CHECK(out[2 + a] > 0, "node ", n.label(), ": output would be empty");
    }
    return out;
}

Tensors conv_transpose(const Node& n, const Tensors& ins, int64_t) {
    const Tensor x = to_f32(in(ins, 0, n));
    const Tensor w = to_f32(in(ins, 1, n));
    ConvTWindow c = convt_window(n);
    Shape out = convt_out(n, x.shape(), w.shape(), c);
    const int64_t group = n.attr_i("group", 1);
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    const int64_t Cg = C / group, Mg = w.dim(1), KH = w.dim(2), KW = w.dim(3), OH = out[2], OW = out[3];
    Tensor y(DType::Float32, out);
    float* py = y.data<float>();
    if (has_in(ins, 2)) {
        const Tensor b = to_f32(ins[2]);
        YOLOC_CHECK(b.numel() == out[1], "node ", n.label(), ": bias has ", b.numel(), " values for ", out[1], " channels");
        for (int64_t i = 0; i < y.numel(); ++i) py[i] = b.data<float>()[(i / (OH * OW)) % out[1]];
    }
    const float* px = x.data<float>();
    const float* pw = w.data<float>();
    for (int64_t b = 0; b < N; ++b)
        for (int64_t ci = 0; ci < C; ++ci) {
            const int64_t g = ci / Cg;
            for (int64_t m = 0; m < Mg; ++m) {
                float* plane = py + (b * out[1] + g * Mg + m) * OH * OW;
                for (int64_t kh = 0; kh < KH; ++kh)
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        const float wv = pw[((ci * Mg + m) * KH + kh) * KW + kw];
                        for (int64_t ih = 0; ih < H; ++ih) {
                            const int64_t oh = ih * c.s[0] - c.p[0] + kh * c.d[0];
                            if (oh < 0 || oh >= OH) continue;
                            for (int64_t iw = 0; iw < W; ++iw) {
                                const int64_t ow = iw * c.s[1] - c.p[1] + kw * c.d[1];
                                if (ow < 0 || ow >= OW) continue;
                                plane[oh * OW + ow] += wv * px[((b * C + ci) * H + ih) * W + iw];
                            }
                        }
                    }
            }
        }
    return {y};
}

std::vector<ValueType> conv_transpose_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(in.types.size() >= 2 && in.types[0] && in.types[1], "node ", n.label(), ": needs X and W");
    return {{DType::Float32, convt_out(n, in.types[0]->shape, in.types[1]->shape, convt_window(n))}};
}

struct PoolWindow {
    std::vector<int64_t> k, s, p, d;
    bool ceil_mode = false;
};

PoolWindow pool_window(const Node& n, const Shape& x) {
    YOLOC_CHECK(x.size() == 4, "node ", n.label(), ": only 2-D pooling is supported");
    PoolWindow w;
    w.k = n.attr_ints("kernel_shape");
    w.s = n.attr_ints("strides", {1, 1});
    w.p = n.attr_ints("pads", {0, 0, 0, 0});
    w.d = n.attr_ints("dilations", {1, 1});
    w.ceil_mode = n.attr_i("ceil_mode", 0) != 0;
    YOLOC_CHECK(w.k.size() == 2 && w.s.size() == 2 && w.p.size() == 4 && w.d.size() == 2, "node ", n.label(),
                ": kernel_shape, strides, pads and dilations must have 2, 2, 4 and 2 values");
    YOLOC_CHECK(n.attr_s("auto_pad", "NOTSET") == "NOTSET", "node ", n.label(), ": auto_pad is not supported for pooling");
    return w;
}

Shape pool_out(const Shape& x, const PoolWindow& w) {
    Shape out{x[0], x[1], 0, 0};
    for (size_t a = 0; a < 2; ++a) {
        double v = double(x[2 + a] + w.p[a] + w.p[a + 2] - ((w.k[a] - 1) * w.d[a] + 1)) / double(w.s[a]);
        out[2 + a] = int64_t(w.ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
    }
    return out;
}

Tensors maxpool(const Node& n, const Tensors& ins, int64_t) {
    const Tensor x = to_f32(in(ins, 0, n));
    YOLOC_CHECK(n.outputs.size() == 1 || n.outputs[1].empty(), "node ", n.label(),
                ": MaxPool indices output is not supported");
    PoolWindow w = pool_window(n, x.shape());
    Shape os = pool_out(x.shape(), w);
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), OH = os[2], OW = os[3];
    Tensor r(DType::Float32, os);
    const float* px = x.data<float>();
    float* pr = r.data<float>();
    for (int64_t nc = 0; nc < N * C; ++nc)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                float m = -std::numeric_limits<float>::infinity();
                for (int64_t i = 0; i < w.k[0]; ++i)
                    for (int64_t j = 0; j < w.k[1]; ++j) {
                        int64_t ih = oh * w.s[0] - w.p[0] + i * w.d[0], iw = ow * w.s[1] - w.p[1] + j * w.d[1];
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        m = std::max(m, px[(nc * H + ih) * W + iw]);
                    }
                pr[(nc * OH + oh) * OW + ow] = m;
            }
    return {r};
}

std::vector<ValueType> pool_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    return {{in.types[0]->dtype, pool_out(in.types[0]->shape, pool_window(n, in.types[0]->shape))}};
}

// Resize's output size and per-axis scales from its scales or sizes input.
struct ResizeSize {
    Shape out;
    std::vector<double> scales;
};
ResizeSize resize_size(const Node& n, const Shape& x, const Tensor* scales_t, const Tensor* sizes_t) {
    ResizeSize r;
    r.out = x;
    r.scales.assign(x.size(), 1.0);
    if (sizes_t && sizes_t->numel() > 0) {
        auto sz = sizes_t->to_int64s();
        YOLOC_CHECK(sz.size() == x.size(), "node ", n.label(), ": sizes must have ", x.size(), " values");
        for (size_t a = 0; a < x.size(); ++a) {
            r.out[a] = sz[a];
            r.scales[a] = double(sz[a]) / double(x[a]);
        }
    } else {
        YOLOC_CHECK(scales_t && scales_t->numel() == int64_t(x.size()), "node ", n.label(), ": Resize needs ",
                    x.size(), " scales or sizes");
        for (size_t a = 0; a < x.size(); ++a) {
            r.scales[a] = scales_t->at_f64(int64_t(a));
            r.out[a] = int64_t(std::floor(double(x[a]) * r.scales[a]));
        }
    }
    return r;
}

Tensors resize(const Node& n, const Tensors& ins, int64_t opset) {
    const Tensor x = to_f32(in(ins, 0, n));
    const std::string mode = n.attr_s("mode", "nearest");
    YOLOC_CHECK(x.rank() == 4, "node ", n.label(), ": only 4-D Resize is supported");
    // Inputs: X, roi, scales, sizes (opset >= 11); opset 10: X, scales.
    const Tensor* scales_t = nullptr;
    const Tensor* sizes_t = nullptr;
    if (opset < 11 || n.op_type == "Upsample") {
        if (has_in(ins, 1)) scales_t = &ins[1];
    } else {
        if (has_in(ins, 2)) scales_t = &ins[2];
        if (has_in(ins, 3)) sizes_t = &ins[3];
    }
    ResizeSize rs = resize_size(n, x.shape(), scales_t, sizes_t);
    const Shape& out = rs.out;
    const std::vector<double>& scales = rs.scales;
    YOLOC_CHECK(out[0] == x.dim(0) && out[1] == x.dim(1), "node ", n.label(), ": Resize over batch/channels is not supported");
    const std::string ctm = n.attr_s("coordinate_transformation_mode", "half_pixel");
    const std::string nearest_mode = n.attr_s("nearest_mode", "round_prefer_floor");
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
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), OH = out[2], OW = out[3];
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

std::vector<ValueType> resize_shape(const Node& n, const ShapeInputs& in, int64_t opset) {
    YOLOC_CHECK(!in.types.empty() && in.types[0], "node ", n.label(), ": missing input 0");
    auto value = [&](size_t i) -> const Tensor* {
        if (i >= in.values.size() || i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
        YOLOC_CHECK(in.values[i], "node ", n.label(), ": Resize ", i == 3 ? "sizes" : "scales",
                    " must be a constant (computed at load time); this graph computes it from data, which yoloc "
                    "does not support");
        return in.values[i];
    };
    const bool old = opset < 11 || n.op_type == "Upsample";
    const Tensor* sizes = old ? nullptr : value(3);
    const Tensor* scales = sizes && sizes->numel() > 0 ? nullptr : value(old ? 1 : 2);
    return {{in.types[0]->dtype, resize_size(n, in.types[0]->shape, scales, sizes).out}};
}

Tensors softmax(const Node& n, const Tensors& ins, int64_t opset) {
    const Tensor& x = in(ins, 0, n);
    YOLOC_CHECK(x.dtype() == DType::Float32, "node ", n.label(), ": ", n.op_type, " expects float32");
    const bool log = n.op_type == "LogSoftmax";
    int64_t axis = norm_axis(n.attr_i("axis", opset >= 13 ? -1 : 1), x.rank(), n);
    Tensor r(DType::Float32, x.shape());
    AxisSplit s = split_at(x.shape(), axis);
    if (opset < 13) {  // coerced to 2-D at `axis`
        s.len = x.numel() / std::max<int64_t>(s.outer, 1);
        s.inner = 1;
    }
    const float* px = x.data<float>();
    float* pr = r.data<float>();
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            const float* b = px + o * s.len * s.inner + i;
            float* c = pr + o * s.len * s.inner + i;
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t k = 0; k < s.len; ++k) m = std::max(m, b[k * s.inner]);
            double sum = 0;
            for (int64_t k = 0; k < s.len; ++k) sum += std::exp(double(b[k * s.inner] - m));
            for (int64_t k = 0; k < s.len; ++k)
                c[k * s.inner] = log ? float(double(b[k * s.inner] - m) - std::log(sum))
                                     : float(std::exp(double(b[k * s.inner] - m)) / sum);
        }
    return {r};
}

// numpy matmul: 1-D operands get a dim prepended (a) or appended (b), batch dims broadcast.
struct MatMulDims {
    Shape out, a, b;  // a, b as 2+-D; out with the 1-D dims dropped again
    int64_t M = 1, K = 1, N = 1;
    Shape batch;
};
MatMulDims matmul_dims(const Node& n, const Shape& a0, const Shape& b0) {
    YOLOC_CHECK(!a0.empty() && !b0.empty(), "node ", n.label(), ": MatMul of a scalar");
    MatMulDims d;
    d.a = a0.size() == 1 ? Shape{1, a0[0]} : a0;
    d.b = b0.size() == 1 ? Shape{b0[0], 1} : b0;
    d.M = d.a[d.a.size() - 2];
    d.K = d.a.back();
    d.N = d.b.back();
    YOLOC_CHECK(d.b[d.b.size() - 2] == d.K, "node ", n.label(), ": MatMul of ", shape_str(a0), " and ", shape_str(b0),
                ": inner dimensions differ");
    Shape ba(d.a.begin(), d.a.end() - 2), bb(d.b.begin(), d.b.end() - 2);
    d.batch = broadcast_shape(ba, bb, n);
    d.out = d.batch;
    if (a0.size() > 1) d.out.push_back(d.M);
    if (b0.size() > 1) d.out.push_back(d.N);
    return d;
}

Tensors matmul(const Node& n, const Tensors& ins, int64_t) {
    const Tensor a = to_f32(in(ins, 0, n));
    const Tensor b = to_f32(in(ins, 1, n));
    MatMulDims d = matmul_dims(n, a.shape(), b.shape());
    Shape ba(d.a.begin(), d.a.end() - 2), bb(d.b.begin(), d.b.end() - 2);
    auto sa = broadcast_strides(ba, d.batch), sb = broadcast_strides(bb, d.batch);
    Tensor r(DType::Float32, d.out);
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* pr = r.data<float>();
    const int64_t MK = d.M * d.K, KN = d.K * d.N, MN = d.M * d.N;
    for_each_broadcast(d.batch, sa, sb, [&](int64_t o, int64_t i, int64_t j) {
        const float* A = pa + i * MK;
        const float* B = pb + j * KN;
        float* C = pr + o * MN;
        for (int64_t m = 0; m < d.M; ++m)
            for (int64_t nn = 0; nn < d.N; ++nn) {
                double acc = 0;
                for (int64_t k = 0; k < d.K; ++k) acc += double(A[m * d.K + k]) * double(B[k * d.N + nn]);
                C[m * d.N + nn] = float(acc);
            }
    });
    return {r};
}

std::vector<ValueType> matmul_shape(const Node& n, const ShapeInputs& in, int64_t) {
    YOLOC_CHECK(in.types.size() == 2 && in.types[0] && in.types[1], "node ", n.label(), ": MatMul needs 2 inputs");
    return {{DType::Float32, matmul_dims(n, in.types[0]->shape, in.types[1]->shape).out}};
}

}  // namespace

void add_nn_ops(std::vector<OpSchema>& t) {
    OpSchema c = op("Conv", conv, ChannelFlow::Conv, QuantRole::Compute, CostKind::Conv, conv_shape);
    c.weight_inputs = {1, 2};
    t.push_back(c);
    OpSchema ct = op("ConvTranspose", conv_transpose, ChannelFlow::Pin, QuantRole::Compute, CostKind::ConvTranspose,
                     conv_transpose_shape);
    ct.weight_inputs = {1, 2};
    t.push_back(ct);
    t.push_back(op("MaxPool", maxpool, ChannelFlow::PassThrough, QuantRole::Commutes, CostKind::PerWindow, pool_shape));
    t.push_back(op("Resize", resize, ChannelFlow::PassThrough, QuantRole::Commutes, CostKind::Movement, resize_shape));
    t.push_back(op("Upsample", resize, ChannelFlow::PassThrough, QuantRole::Commutes, CostKind::Movement, resize_shape));
    t.push_back(op("Softmax", softmax, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, same_as_input));
    t.push_back(op("LogSoftmax", softmax, ChannelFlow::Pin, QuantRole::None, CostKind::PerOutput, same_as_input));
    OpSchema mm = op("MatMul", matmul, ChannelFlow::Pin, QuantRole::Compute, CostKind::MatMul, matmul_shape);
    mm.weight_inputs = {0, 1};
    t.push_back(mm);
}

Tensor ref_conv2d_impl(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& s,
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
    // Accumulated in double, so the reference is closer to the exact sum than any float
    // kernel it judges (float sums of 2000+ products in another order differ by ~1e-6
    // relative, which a stride-32 box scales to ~1e-3 px).
    std::vector<double> acc(size_t(OH * OW));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) {
            int64_t g = m / MG;
            float* out = py + (n * M + m) * OH * OW;
            std::fill(acc.begin(), acc.end(), b.empty() ? 0.0 : double(b.data<float>()[m]));
            for (int64_t c = 0; c < CG; ++c) {
                const float* plane = px + (n * C + g * CG + c) * H * W;
                for (int64_t kh = 0; kh < KH; ++kh)
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        const double wv = pw[((m * CG + c) * KH + kh) * KW + kw];
                        for (int64_t oh = 0; oh < OH; ++oh) {
                            int64_t ih = oh * s[0] - p[0] + kh * d[0];
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t ow = 0; ow < OW; ++ow) {
                                int64_t iw = ow * s[1] - p[1] + kw * d[1];
                                if (iw < 0 || iw >= W) continue;
                                acc[size_t(oh * OW + ow)] += wv * plane[ih * W + iw];
                            }
                        }
                    }
            }
            for (int64_t i = 0; i < OH * OW; ++i) out[i] = float(acc[size_t(i)]);
        }
    return y;
}

}  // namespace ops

Tensor ref_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const std::vector<int64_t>& s,
                  const std::vector<int64_t>& p, const std::vector<int64_t>& d, int64_t group) {
    return ops::ref_conv2d_impl(x, w, b, s, p, d, group);
}

}  // namespace yoloc
