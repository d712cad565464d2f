#include "yolo/generate.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"

namespace yoloc {

namespace {

// splitmix64: tiny, fast and identical on every platform, so a seed names one model.
class Rng {
public:
    explicit Rng(uint64_t seed) : s_(seed) {}
    uint64_t next() {
        uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in (0, 1): never 0, so log() below is safe.
    double uniform() { return (double(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        const double kTwoPi = 6.283185307179586;
        double r = std::sqrt(-2.0 * std::log(uniform()));
        double t = kTwoPi * uniform();
        spare_ = r * std::sin(t);
        has_spare_ = true;
        return r * std::cos(t);
    }

private:
    uint64_t s_;
    double spare_ = 0;
    bool has_spare_ = false;
};

// Random convs + SiLU have no stable scale: activations blow up or die within the
// 60-conv depth (measured: rms 50+ or 1e-3 at the head with plain fan-in gains). So,
// like a trained model's folded BatchNorm, every conv unit is normalised on a small
// deterministic probe batch (per-channel mean 0, layer std 1 before SiLU) and the
// statistics are folded into its weights and bias; filters are zero-sum so the
// SiLU's positive mean is not passed on. Result: rms 0.3..1.3 at every depth on
// images unlike the probe.
constexpr int kProbeSize = 64;
constexpr int kProbeBatch = 4;
// The head's last 1x1 convs start small (like a freshly initialised detector) so
// the DFL softmax is not saturated and class logits stay near their bias.
constexpr double kHeadOutGain = 0.1;

// A CHW float map of one probe image as it flows through the net.
struct Probe {
    int64_t c = 0, h = 0, w = 0;
    std::vector<float> d;
    float& at(int64_t ci, int64_t y, int64_t x) { return d[size_t((ci * h + y) * w + x)]; }
    float at(int64_t ci, int64_t y, int64_t x) const { return d[size_t((ci * h + y) * w + x)]; }
};

using Batch = std::vector<Probe>;

// The probe wraps around at its edges (a torus): a small probe then has no border
// pixels, whose zero padding would make its statistics unlike a large image's.
inline int64_t wrap(int64_t i, int64_t n) { return ((i % n) + n) % n; }

Probe probe_conv(const Probe& x, const float* w, int64_t cout, int64_t k, int64_t s) {
    const int64_t p = k / 2;
    // Circularly padded copy, so the inner loop has no bounds checks and vectorises.
    const int64_t ph = x.h + 2 * p, pw = x.w + 2 * p;
    std::vector<float> xp(static_cast<size_t>(x.c * ph * pw));
    for (int64_t ci = 0; ci < x.c; ++ci)
        for (int64_t yy = 0; yy < ph; ++yy)
            for (int64_t xx = 0; xx < pw; ++xx)
                xp[size_t((ci * ph + yy) * pw + xx)] = x.at(ci, wrap(yy - p, x.h), wrap(xx - p, x.w));
    Probe y;
    y.c = cout;
    y.h = (x.h - 1) / s + 1;
    y.w = (x.w - 1) / s + 1;
    y.d.assign(size_t(y.c * y.h * y.w), 0.f);
    for (int64_t co = 0; co < cout; ++co) {
        float* out = &y.d[size_t(co * y.h * y.w)];
        for (int64_t ci = 0; ci < x.c; ++ci)
            for (int64_t ky = 0; ky < k; ++ky)
                for (int64_t kx = 0; kx < k; ++kx) {
                    const float wv = w[((co * x.c + ci) * k + ky) * k + kx];
                    for (int64_t oy = 0; oy < y.h; ++oy) {
                        const float* in = &xp[size_t((ci * ph + oy * s + ky) * pw + kx)];
                        float* o = out + oy * y.w;
                        if (s == 1) {
                            for (int64_t ox = 0; ox < y.w; ++ox) o[ox] += wv * in[ox];
                        } else {
                            for (int64_t ox = 0; ox < y.w; ++ox) o[ox] += wv * in[ox * s];
                        }
                    }
                }
    }
    return y;
}

Probe probe_concat(const std::vector<const Probe*>& xs) {
    Probe y = *xs[0];
    for (size_t i = 1; i < xs.size(); ++i) {
        y.c += xs[i]->c;
        y.d.insert(y.d.end(), xs[i]->d.begin(), xs[i]->d.end());
    }
    return y;
}

Probe probe_maxpool5(const Probe& x) {
    Probe y = x;
    for (int64_t c = 0; c < x.c; ++c)
        for (int64_t oy = 0; oy < x.h; ++oy)
            for (int64_t ox = 0; ox < x.w; ++ox) {
                float m = -INFINITY;
                for (int64_t dy = -2; dy <= 2; ++dy)
                    for (int64_t dx = -2; dx <= 2; ++dx) m = std::max(m, x.at(c, wrap(oy + dy, x.h), wrap(ox + dx, x.w)));
                y.at(c, oy, ox) = m;
            }
    return y;
}

Probe probe_upsample2(const Probe& x) {
    Probe y;
    y.c = x.c;
    y.h = x.h * 2;
    y.w = x.w * 2;
    y.d.resize(size_t(y.c * y.h * y.w));
    for (int64_t c = 0; c < y.c; ++c)
        for (int64_t oy = 0; oy < y.h; ++oy)
            for (int64_t ox = 0; ox < y.w; ++ox) y.at(c, oy, ox) = x.at(c, oy / 2, ox / 2);
    return y;
}

const char* const kCocoNames[80] = {
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush"};

class Builder {
public:
    Builder(Graph& g, uint64_t seed, bool calibrate) : g_(g), rng_(seed), calibrate_(calibrate) {}

    // The probe batch: smooth, image-like pictures in 0..1 of different brightness,
    // contrast and detail, from their own stream so the weights of a seed do not
    // depend on the probe.
    void set_probe_input(const std::string& name) {
        Rng r(0x5EEDF00Dull);
        Batch batch;
        for (int img = 0; img < kProbeBatch; ++img) {
            Probe x;
            x.c = 3;
            x.h = x.w = kProbeSize;
            x.d.resize(size_t(3 * kProbeSize * kProbeSize));
            const double base = 0.2 + 0.6 * r.uniform(), amp = 0.05 + 0.3 * r.uniform(), noise = 0.3 * r.uniform();
            for (int64_t c = 0; c < 3; ++c) {
                double fy = 0.02 + 0.4 * r.uniform(), fx = 0.02 + 0.4 * r.uniform(), ph = 6.28 * r.uniform();
                for (int64_t y = 0; y < x.h; ++y)
                    for (int64_t xx = 0; xx < x.w; ++xx) {
                        double v = base + amp * std::sin(fy * double(y) + fx * double(xx) + ph) + noise * (r.uniform() - 0.5);
                        x.at(c, y, xx) = float(std::min(1.0, std::max(0.0, v)));
                    }
            }
            batch.push_back(std::move(x));
        }
        probes_[name] = std::move(batch);
    }
    const Batch& probe(const std::string& v) const {
        auto it = probes_.find(v);
        if (it == probes_.end()) fail("generate: internal: no probe for ", v);
        return it->second;
    }

    // Adds a node whose outputs are named like torch's exporter: "<node>_output_<i>".
    std::vector<std::string> node(const std::string& op, const std::string& name,
                                  std::vector<std::string> inputs, int n_out = 1,
                                  std::map<std::string, Attribute> attrs = {}) {
        Node n;
        n.name = name;
        n.op_type = op;
        n.inputs = std::move(inputs);
        for (int i = 0; i < n_out; ++i) n.outputs.push_back(name + "_output_" + std::to_string(i));
        n.attrs = std::move(attrs);
        g_.nodes.push_back(n);
        return g_.nodes.back().outputs;
    }
    std::string node1(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                      std::map<std::string, Attribute> attrs = {}) {
        return node(op, name, std::move(inputs), 1, std::move(attrs))[0];
    }

    std::string constant(const std::string& name, const Tensor& t) {
        return node1("Constant", name, {}, {{"value", Attribute::of_tensor(t)}});
    }

    // torch dedups identical Split sizes into one "onnx::Split_<n>" Constant; so do we.
    std::string split_sizes(const std::vector<int64_t>& sizes) {
        auto it = split_consts_.find(sizes);
        if (it != split_consts_.end()) return it->second;
        std::string node_name = "Constant_" + std::to_string(split_consts_.size());
        std::string out = "onnx::Split_" + std::to_string(split_consts_.size());
        Node n;
        n.name = node_name;
        n.op_type = "Constant";
        n.outputs = {out};
        n.attrs["value"] = Attribute::of_tensor(Tensor::from_int64s({int64_t(sizes.size())}, sizes));
        g_.nodes.push_back(n);
        split_consts_[sizes] = out;
        return out;
    }

    std::string weight(const std::string& name, const Shape& shape, double stddev) {
        Tensor t(DType::Float32, shape);
        float* p = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(rng_.normal() * stddev);
        g_.initializers[name] = t;
        return name;
    }
    std::string filled(const std::string& name, const Shape& shape, float v) {
        Tensor t(DType::Float32, shape);
        float* p = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) p[i] = v;
        g_.initializers[name] = t;
        return name;
    }

    // A bare Conv with bias (BN folded), weights ~ N(0, gain^2 / fan_in). `node_name` as torch
    // names it ("/model.2/cv1/conv/Conv"), `wname` the state-dict prefix ("model.2.cv1.conv").
    std::string conv(const std::string& node_name, const std::string& wname, const std::string& x,
                     int64_t cin, int64_t cout, int64_t k, int64_t s, double gain, float bias) {
        std::string w = weight(wname + ".weight", {cout, cin, k, k}, gain / std::sqrt(double(cin * k * k)));
        std::string b = filled(wname + ".bias", {cout}, bias);
        int64_t p = k / 2;
        return node1("Conv", node_name, {x, w, b},
                     {{"dilations", Attribute::of_ints({1, 1})},
                      {"group", Attribute::of_int(1)},
                      {"kernel_shape", Attribute::of_ints({k, k})},
                      {"pads", Attribute::of_ints({p, p, p, p})},
                      {"strides", Attribute::of_ints({s, s})}});
    }

    // Ultralytics' Conv module: conv + SiLU exported as Sigmoid and Mul.
    // Its weights get the probe batch's BatchNorm folded in (see kProbeSize).
    std::string conv_unit(const std::string& path, const std::string& wname, const std::string& x,
                          int64_t cin, int64_t cout, int64_t k, int64_t s) {
        std::string y = conv(path + "/conv/Conv", wname + ".conv", x, cin, cout, k, s, 1.0, 0.0f);
        Tensor& w = g_.initializers[wname + ".conv.weight"];
        Tensor& b = g_.initializers[wname + ".conv.bias"];
        // Zero-sum filters: SiLU outputs share one positive mean across a layer's
        // channels, and a zero-sum filter passes none of it on, so a brighter or
        // higher-contrast image does not shift every later layer's offset.
        {
            const int64_t per = cin * k * k;
            float* wp = w.data<float>();
            for (int64_t co = 0; co < cout; ++co) {
                double m = 0;
                for (int64_t i = 0; i < per; ++i) m += wp[co * per + i];
                m /= double(per);
                for (int64_t i = 0; i < per; ++i) wp[co * per + i] = float(wp[co * per + i] - m);
            }
        }
        std::string sg = node1("Sigmoid", path + "/act/Sigmoid", {y});
        std::string out = node1("Mul", path + "/act/Mul", {y, sg});
        if (!calibrate_) return out;
        Batch zs;
        for (const Probe& px : probe(x)) zs.push_back(probe_conv(px, w.data<float>(), cout, k, s));
        // Statistics over the whole batch (between-image spread included, so other
        // images land in the same range): per-channel mean, one std for the layer.
        const int64_t hw = zs[0].h * zs[0].w, per = cin * k * k, cnt = hw * int64_t(zs.size());
        std::vector<double> mean(static_cast<size_t>(cout), 0.0);
        double var = 0;
        for (int64_t co = 0; co < cout; ++co) {
            double& m = mean[size_t(co)];
            for (const Probe& z : zs)
                for (int64_t i = 0; i < hw; ++i) m += z.d[size_t(co * hw + i)];
            m /= double(cnt);
            for (const Probe& z : zs)
                for (int64_t i = 0; i < hw; ++i) var += std::pow(z.d[size_t(co * hw + i)] - m, 2);
        }
        const double inv = 1.0 / std::sqrt(var / double(cout * cnt) + 1e-6);
        for (int64_t co = 0; co < cout; ++co) {
            const double m = mean[size_t(co)];
            float* wc = w.data<float>() + co * per;
            for (int64_t i = 0; i < per; ++i) wc[i] = float(wc[i] * inv);
            b.data<float>()[co] = float(-m * inv);
            for (Probe& z : zs)
                for (int64_t i = 0; i < hw; ++i) {
                    float t = float((z.d[size_t(co * hw + i)] - m) * inv);
                    z.d[size_t(co * hw + i)] = t / (1.f + std::exp(-t));  // SiLU
                }
        }
        probes_[out] = std::move(zs);
        return out;
    }

    std::string c2f(int layer, const std::string& x, int64_t c1, int64_t c2, int n, bool shortcut) {
        std::string m = "/model." + std::to_string(layer);
        std::string wm = "model." + std::to_string(layer);
        int64_t c = c2 / 2;  // int(c2 * 0.5)
        std::string y = conv_unit(m + "/cv1", wm + ".cv1", x, c1, 2 * c, 1, 1);
        auto parts = node("Split", m + "/Split", {y, split_sizes({c, c})}, 2, {{"axis", Attribute::of_int(1)}});
        if (calibrate_) {
            Batch lo, hi;
            for (const Probe& py : probe(y)) {
                const size_t half = size_t(c * py.h * py.w);
                Probe a = py, bb = py;
                a.c = bb.c = c;
                a.d.assign(py.d.begin(), py.d.begin() + long(half));
                bb.d.assign(py.d.begin() + long(half), py.d.end());
                lo.push_back(std::move(a));
                hi.push_back(std::move(bb));
            }
            probes_[parts[0]] = std::move(lo);
            probes_[parts[1]] = std::move(hi);
        }
        std::vector<std::string> cat = parts;
        std::string cur = parts[1];
        for (int i = 0; i < n; ++i) {
            std::string b = m + "/m." + std::to_string(i);
            std::string wb = wm + ".m." + std::to_string(i);
            std::string h = conv_unit(b + "/cv1", wb + ".cv1", cur, c, c, 3, 1);
            h = conv_unit(b + "/cv2", wb + ".cv2", h, c, c, 3, 1);
            if (shortcut && !calibrate_) {
                h = node1("Add", b + "/Add", {cur, h});
            } else if (shortcut) {
                Batch sum = probe(cur);
                const Batch& ph = probe(h);
                for (size_t j = 0; j < sum.size(); ++j)
                    for (size_t e = 0; e < sum[j].d.size(); ++e) sum[j].d[e] += ph[j].d[e];
                h = node1("Add", b + "/Add", {cur, h});
                probes_[h] = std::move(sum);
            }
            cat.push_back(h);
            cur = h;
        }
        std::string z = concat(m + "/Concat", cat, 1);
        return conv_unit(m + "/cv2", wm + ".cv2", z, (2 + n) * c, c2, 1, 1);
    }

    std::string sppf(int layer, const std::string& x, int64_t c1, int64_t c2) {
        std::string m = "/model." + std::to_string(layer);
        std::string wm = "model." + std::to_string(layer);
        int64_t c = c1 / 2;
        std::string y = conv_unit(m + "/cv1", wm + ".cv1", x, c1, c, 1, 1);
        std::map<std::string, Attribute> pool{{"ceil_mode", Attribute::of_int(0)},
                                              {"kernel_shape", Attribute::of_ints({5, 5})},
                                              {"pads", Attribute::of_ints({2, 2, 2, 2})},
                                              {"strides", Attribute::of_ints({1, 1})}};
        auto pooled = [&](const std::string& v) {
            Batch r;
            if (!calibrate_) return r;
            for (const Probe& p : probe(v)) r.push_back(probe_maxpool5(p));
            return r;
        };
        std::string p1 = node1("MaxPool", m + "/m/MaxPool", {y}, pool);
        probes_[p1] = pooled(y);
        std::string p2 = node1("MaxPool", m + "/m_1/MaxPool", {p1}, pool);
        probes_[p2] = pooled(p1);
        std::string p3 = node1("MaxPool", m + "/m_2/MaxPool", {p2}, pool);
        probes_[p3] = pooled(p2);
        std::string z = concat(m + "/Concat", {y, p1, p2, p3}, 1);
        return conv_unit(m + "/cv2", wm + ".cv2", z, 4 * c, c2, 1, 1);
    }

    // nn.Upsample(scale_factor=2, mode="nearest") as torch 1.13 exports it at opset 17.
    std::string upsample(int layer, const std::string& x) {
        std::string m = "/model." + std::to_string(layer);
        std::string sc = constant(m + "/Constant", Tensor::from_floats({4}, {1.f, 1.f, 2.f, 2.f}));
        std::string y = node1("Resize", m + "/Resize", {x, "", sc},
                              {{"coordinate_transformation_mode", Attribute::of_string("asymmetric")},
                               {"cubic_coeff_a", Attribute::of_float(-0.75f)},
                               {"mode", Attribute::of_string("nearest")},
                               {"nearest_mode", Attribute::of_string("floor")}});
        if (calibrate_) {
            Batch r;
            for (const Probe& p : probe(x)) r.push_back(probe_upsample2(p));
            probes_[y] = std::move(r);
        }
        return y;
    }

    // Channel Concat; carries the probe along when all inputs have one.
    std::string concat(const std::string& name, std::vector<std::string> xs, int64_t axis) {
        std::vector<const Batch*> ps;
        for (const auto& x : xs) {
            auto it = probes_.find(x);
            if (it != probes_.end()) ps.push_back(&it->second);
        }
        std::string y = node1("Concat", name, xs, {{"axis", Attribute::of_int(axis)}});
        if (calibrate_ && axis == 1 && ps.size() == xs.size()) {
            Batch r;
            for (size_t j = 0; j < ps[0]->size(); ++j) {
                std::vector<const Probe*> one;
                for (const Batch* bt : ps) one.push_back(&(*bt)[j]);
                r.push_back(probe_concat(one));
            }
            probes_[y] = std::move(r);
        }
        return y;
    }

private:
    Graph& g_;
    Rng rng_;
    std::map<std::vector<int64_t>, std::string> split_consts_;
    bool calibrate_;
    std::map<std::string, Batch> probes_;  // probe activations by value name
};

int64_t channels(const YoloV8Scale& sc, int64_t x) {
    double v = double(std::min<int64_t>(x, sc.max_channels)) * sc.width;
    return int64_t(std::ceil(v / 8.0)) * 8;  // make_divisible(v, 8)
}

int depth(const YoloV8Scale& sc, int n) {
    // Python round() is banker's rounding; no yolov8 scale lands on a .5 tie.
    return std::max(int(std::lround(n * sc.depth)), 1);
}

std::string coco_style_names(int nc) {
    std::string s = "{";
    for (int i = 0; i < nc; ++i) {
        if (i) s += ", ";
        s += std::to_string(i) + ": '" + (nc == 80 ? std::string(kCocoNames[i]) : "class" + std::to_string(i)) + "'";
    }
    return s + "}";
}

}  // namespace

YoloV8Scale yolov8_scale(const std::string& scale) {
    if (scale == "n") return {0.33, 0.25, 1024};
    if (scale == "s") return {0.33, 0.50, 1024};
    if (scale == "m") return {0.67, 0.75, 768};
    if (scale == "l") return {1.00, 1.00, 512};
    if (scale == "x") return {1.00, 1.25, 512};
    fail("unknown YOLOv8 scale '", scale, "': expected one of n, s, m, l, x");
}

std::vector<C2fSpec> yolov8_c2f_specs(const std::string& scale) {
    YoloV8Scale sc = yolov8_scale(scale);
    auto c = [&](int64_t x) { return channels(sc, x); };
    auto n = [&](int x) { return depth(sc, x); };
    return {
        {2, c(128), c(128), n(3), true},
        {4, c(256), c(256), n(6), true},
        {6, c(512), c(512), n(6), true},
        {8, c(1024), c(1024), n(3), true},
        {12, c(1024) + c(512), c(512), n(3), false},
        {15, c(512) + c(256), c(256), n(3), false},
        {18, c(256) + c(512), c(512), n(3), false},
        {21, c(512) + c(1024), c(1024), n(3), false},
    };
}

Model generate_yolov8(const GenerateOptions& opts) {
    YoloV8Scale sc = yolov8_scale(opts.scale);
    YOLOC_CHECK(opts.nc >= 1, "generate: nc must be >= 1 (got ", opts.nc, ")");
    YOLOC_CHECK(opts.imgsz >= 32 && opts.imgsz % 32 == 0,
                "generate: imgsz must be a positive multiple of 32 (got ", opts.imgsz, ")");
    const int64_t nc = opts.nc;
    const int64_t reg_max = 16;
    auto c = [&](int64_t x) { return channels(sc, x); };
    auto n = [&](int x) { return depth(sc, x); };

    Model model;
    model.ir_version = 8;
    model.opsets = {{"", 17}};
    model.producer_name = "yoloc";
    model.producer_version = YOLOC_VERSION;
    model.doc_string = "";
    Graph& g = model.graph;
    g.name = "main_graph";

    const int64_t S = opts.imgsz;
    ValueInfo in;
    in.name = "images";
    in.dtype = DType::Float32;
    for (int64_t d : {int64_t(1), int64_t(3), S, S}) in.shape.push_back(Dim{d, ""});
    g.inputs.push_back(in);

    Builder b(g, opts.seed, opts.calibrate);
    if (opts.calibrate) b.set_probe_input("images");
    // Backbone.
    std::string x = b.conv_unit("/model.0", "model.0", "images", 3, c(64), 3, 2);
    x = b.conv_unit("/model.1", "model.1", x, c(64), c(128), 3, 2);
    x = b.c2f(2, x, c(128), c(128), n(3), true);
    x = b.conv_unit("/model.3", "model.3", x, c(128), c(256), 3, 2);
    std::string p3 = b.c2f(4, x, c(256), c(256), n(6), true);
    x = b.conv_unit("/model.5", "model.5", p3, c(256), c(512), 3, 2);
    std::string p4 = b.c2f(6, x, c(512), c(512), n(6), true);
    x = b.conv_unit("/model.7", "model.7", p4, c(512), c(1024), 3, 2);
    x = b.c2f(8, x, c(1024), c(1024), n(3), true);
    std::string p5 = b.sppf(9, x, c(1024), c(1024));
    // Neck (PAN).
    x = b.upsample(10, p5);
    x = b.concat("/Concat", {x, p4}, 1);
    std::string h12 = b.c2f(12, x, c(1024) + c(512), c(512), n(3), false);
    x = b.upsample(13, h12);
    x = b.concat("/Concat_1", {x, p3}, 1);
    std::string h15 = b.c2f(15, x, c(512) + c(256), c(256), n(3), false);
    x = b.conv_unit("/model.16", "model.16", h15, c(256), c(256), 3, 2);
    x = b.concat("/Concat_2", {x, h12}, 1);
    std::string h18 = b.c2f(18, x, c(256) + c(512), c(512), n(3), false);
    x = b.conv_unit("/model.19", "model.19", h18, c(512), c(512), 3, 2);
    x = b.concat("/Concat_3", {x, p5}, 1);
    std::string h21 = b.c2f(21, x, c(512) + c(1024), c(1024), n(3), false);

    // Detect head (layer 22).
    const std::vector<std::string> feats{h15, h18, h21};
    const std::vector<int64_t> ch{c(256), c(512), c(1024)};
    const std::vector<int64_t> strides{8, 16, 32};
    const int64_t c2 = std::max<int64_t>({16, ch[0] / 4, reg_max * 4});
    const int64_t c3 = std::max<int64_t>(ch[0], std::min<int64_t>(nc, 100));
    const int64_t no = nc + 4 * reg_max;
    std::vector<std::string> flat;
    int64_t A = 0;
    for (size_t i = 0; i < 3; ++i) {
        std::string li = std::to_string(i);
        std::string bm = "/model.22/cv2." + li, bw = "model.22.cv2." + li;
        std::string bx = b.conv_unit(bm + "/cv2." + li + ".0", bw + ".0", feats[i], ch[i], c2, 3, 1);
        bx = b.conv_unit(bm + "/cv2." + li + ".1", bw + ".1", bx, c2, c2, 3, 1);
        // Ultralytics bias_init: box logits 1.0, class logits log(5 / nc / (640 / s)^2).
        bx = b.conv(bm + "/cv2." + li + ".2/Conv", bw + ".2", bx, c2, 4 * reg_max, 1, 1, kHeadOutGain, 1.0f);
        std::string cm = "/model.22/cv3." + li, cw = "model.22.cv3." + li;
        std::string cx = b.conv_unit(cm + "/cv3." + li + ".0", cw + ".0", feats[i], ch[i], c3, 3, 1);
        cx = b.conv_unit(cm + "/cv3." + li + ".1", cw + ".1", cx, c3, c3, 3, 1);
        float cls_bias = float(std::log(5.0 / double(nc) / std::pow(640.0 / double(strides[i]), 2)));
        cx = b.conv(cm + "/cv3." + li + ".2/Conv", cw + ".2", cx, c3, nc, 1, 1, kHeadOutGain, cls_bias);
        std::string suffix = i == 0 ? "" : "_" + li;
        std::string cat = b.concat("/model.22/Concat" + suffix, {bx, cx}, 1);
        int64_t hw = (S / strides[i]) * (S / strides[i]);
        A += hw;
        std::string shp = b.constant("/model.22/Constant" + suffix, Tensor::from_int64s({3}, {1, no, hw}));
        flat.push_back(b.node1("Reshape", "/model.22/Reshape" + suffix, {cat, shp}, {{"allowzero", Attribute::of_int(0)}}));
    }
    std::string y = b.concat("/model.22/Concat_3", flat, 2);
    auto box_cls = b.node("Split", "/model.22/Split", {y, b.split_sizes({4 * reg_max, nc})}, 2,
                          {{"axis", Attribute::of_int(1)}});

    // DFL: expectation over reg_max bins, done as a fixed 1x1 conv like Ultralytics.
    std::string d = b.node1("Reshape", "/model.22/dfl/Reshape",
                            {box_cls[0], b.constant("/model.22/dfl/Constant", Tensor::from_int64s({4}, {1, 4, reg_max, A}))},
                            {{"allowzero", Attribute::of_int(0)}});
    d = b.node1("Transpose", "/model.22/dfl/Transpose", {d}, {{"perm", Attribute::of_ints({0, 2, 1, 3})}});
    d = b.node1("Softmax", "/model.22/dfl/Softmax", {d}, {{"axis", Attribute::of_int(1)}});
    {
        std::vector<float> bins(static_cast<size_t>(reg_max));
        for (int64_t i = 0; i < reg_max; ++i) bins[size_t(i)] = float(i);
        g.initializers["model.22.dfl.conv.weight"] = Tensor::from_floats({1, reg_max, 1, 1}, bins);
        d = b.node1("Conv", "/model.22/dfl/conv/Conv", {d, "model.22.dfl.conv.weight"},
                    {{"dilations", Attribute::of_ints({1, 1})},
                     {"group", Attribute::of_int(1)},
                     {"kernel_shape", Attribute::of_ints({1, 1})},
                     {"pads", Attribute::of_ints({0, 0, 0, 0})},
                     {"strides", Attribute::of_ints({1, 1})}});
    }
    d = b.node1("Reshape", "/model.22/dfl/Reshape_1",
                {d, b.constant("/model.22/dfl/Constant_1", Tensor::from_int64s({3}, {1, 4, A}))},
                {{"allowzero", Attribute::of_int(0)}});
    auto lt_rb = b.node("Split", "/model.22/Split_1", {d, b.split_sizes({2, 2})}, 2, {{"axis", Attribute::of_int(1)}});

    // Anchor centres (x + 0.5, y + 0.5) in grid units and per-anchor strides, level by level.
    {
        std::vector<float> anc(static_cast<size_t>(2 * A)), str(static_cast<size_t>(A));
        int64_t k = 0;
        for (int64_t s : strides) {
            int64_t h = S / s, w = S / s;
            for (int64_t yy = 0; yy < h; ++yy)
                for (int64_t xx = 0; xx < w; ++xx, ++k) {
                    anc[size_t(k)] = float(xx) + 0.5f;
                    anc[size_t(A + k)] = float(yy) + 0.5f;
                    str[size_t(k)] = float(s);
                }
        }
        g.initializers["model.22.anchors"] = Tensor::from_floats({1, 2, A}, anc);
        g.initializers["model.22.strides"] = Tensor::from_floats({1, 1, A}, str);
    }
    std::string x1y1 = b.node1("Sub", "/model.22/Sub", {"model.22.anchors", lt_rb[0]});
    std::string x2y2 = b.node1("Add", "/model.22/Add", {"model.22.anchors", lt_rb[1]});
    std::string sum = b.node1("Add", "/model.22/Add_1", {x1y1, x2y2});
    std::string cxy = b.node1("Div", "/model.22/Div", {sum, b.constant("/model.22/Constant_3", Tensor::scalar_f32(2.f))});
    std::string wh = b.node1("Sub", "/model.22/Sub_1", {x2y2, x1y1});
    std::string dbox = b.concat("/model.22/Concat_4", {cxy, wh}, 1);
    dbox = b.node1("Mul", "/model.22/Mul", {dbox, "model.22.strides"});
    std::string cls = b.node1("Sigmoid", "/model.22/Sigmoid", {box_cls[1]});
    Node& last = g.nodes.emplace_back();
    last.name = "/model.22/Concat_5";
    last.op_type = "Concat";
    last.inputs = {dbox, cls};
    last.outputs = {"output0"};
    last.attrs["axis"] = Attribute::of_int(1);

    ValueInfo out;
    out.name = "output0";
    out.dtype = DType::Float32;
    for (int64_t dd : {int64_t(1), 4 + nc, A}) out.shape.push_back(Dim{dd, ""});
    g.outputs.push_back(out);

    model.metadata = {
        {"description", "YOLOv8" + opts.scale + " generated by yoloc (deterministic weights, seed " +
                            std::to_string(opts.seed) + "; not trained)"},
        {"author", "yoloc generate"},
        {"version", YOLOC_VERSION},
        {"stride", "32"},
        {"task", "detect"},
        {"batch", "1"},
        {"imgsz", "[" + std::to_string(S) + ", " + std::to_string(S) + "]"},
        {"names", coco_style_names(opts.nc)},
    };
    return model;
}

}  // namespace yoloc
