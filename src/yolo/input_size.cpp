#include "yolo/input_size.h"

#include <set>

#include "core/limits.h"

namespace yoloc {
namespace {

// Anchor centres and strides in Ultralytics' make_anchors order (level by level,
// row-major, centre offset 0.5).
void make_anchors(int64_t h, int64_t w, const std::vector<int64_t>& strides, std::vector<float>& xy,
                  std::vector<float>& st) {
    std::vector<float> xs, ys;
    for (int64_t s : strides)
        for (int64_t y = 0; y < h / s; ++y)
            for (int64_t x = 0; x < w / s; ++x) {
                xs.push_back(float(x) + 0.5f);
                ys.push_back(float(y) + 0.5f);
                st.push_back(float(s));
            }
    xy = xs;
    xy.insert(xy.end(), ys.begin(), ys.end());
}

int64_t anchor_count(int64_t h, int64_t w, const std::vector<int64_t>& strides) {
    int64_t a = 0;
    for (int64_t s : strides) a += (h / s) * (w / s);
    return a;
}

}  // namespace

std::vector<int64_t> checked_input_dims(const Model& model, const std::string& source, int64_t batch, int64_t imgsz) {
    const Graph& g = model.graph;
    YOLOC_CHECK(g.inputs.size() == 1, source, ": a YOLOv8 detector has one input (images); this model has ",
                g.inputs.size());
    const ValueInfo& in = g.inputs[0];
    YOLOC_CHECK(in.shape.size() == 4, source, ": input '", in.name, "' must be [N,3,H,W]");
    auto declared = [&](size_t k, int64_t dflt) { return in.shape[k].value > 0 ? in.shape[k].value : dflt; };
    std::vector<int64_t> dims = {batch > 0 ? batch : declared(0, 1), declared(1, 3), imgsz > 0 ? imgsz : declared(2, 640),
                                 imgsz > 0 ? imgsz : declared(3, 640)};
    // The bytes first: they also cover dims too large for any later int arithmetic.
    limits::check(cat(source, ": input '", in.name, "'"), limits::input_problem(dims));
    const char* side[] = {"height", "width"};
    for (size_t k = 2; k < 4; ++k)
        limits::check(cat(source, ": input '", in.name, "' ", side[k - 2]), limits::imgsz_problem(dims[k]));
    return dims;
}

void check_declared_inputs(const Model& model, const std::string& source) {
    for (const auto& in : model.graph.inputs) {
        if (model.graph.is_initializer(in.name)) continue;
        std::vector<int64_t> dims;
        for (const auto& d : in.shape) dims.push_back(d.value > 0 ? d.value : 1);
        limits::check(cat(source, ": input '", in.name, "'"), limits::input_problem(dims));
    }
}

void set_input_size(Model& model, int64_t batch, int64_t imgsz) {
    Graph& g = model.graph;
    YOLOC_CHECK(g.inputs.size() == 1 && g.inputs[0].shape.size() == 4, "the model input must be [N,3,H,W]");
    YOLOC_CHECK(imgsz >= 32 && imgsz % 32 == 0, "input size ", imgsz, " must be a positive multiple of 32");
    YOLOC_CHECK(batch >= 1, "batch must be at least 1");
    ValueInfo& in = g.inputs[0];
    int64_t b0 = in.shape[0].known() ? in.shape[0].value : -1;
    int64_t h0 = in.shape[2].known() ? in.shape[2].value : -1;
    int64_t w0 = in.shape[3].known() ? in.shape[3].value : -1;
    const std::vector<int64_t> strides = {8, 16, 32};
    int64_t a0 = (h0 > 0 && w0 > 0) ? anchor_count(h0, w0, strides) : -1;
    int64_t a1 = anchor_count(imgsz, imgsz, strides);
    in.shape = {Dim{batch, ""}, Dim{3, ""}, Dim{imgsz, ""}, Dim{imgsz, ""}};

    // Reshape targets: batch entry -> 0 (copy the input's dim), anchor count -> -1.
    std::set<std::string> targets;
    for (const auto& n : g.nodes)
        if (n.op_type == "Reshape" && n.inputs.size() > 1) targets.insert(n.inputs[1]);
    auto rewrite = [&](Tensor& t) {
        if (t.dtype() != DType::Int64 || t.rank() != 1) return;
        std::vector<int64_t> v = t.to_int64s();
        bool has_infer = false;
        for (int64_t d : v) has_infer = has_infer || d == -1;
        bool changed = false;
        if (!v.empty() && b0 > 0 && v[0] == b0 && v.size() >= 3) {
            v[0] = 0;
            changed = true;
        }
        // The head flattens H*W last: per level ([1,144,6400]) or all levels ([1,4,8400]).
        if (v.size() >= 2 && !has_infer && h0 > 0 && w0 > 0) {
            int64_t last = v.back();
            bool spatial = last == a0;
            for (int64_t s : strides) spatial = spatial || last == (h0 / s) * (w0 / s);
            if (spatial) {
                v.back() = -1;
                changed = true;
            }
        }
        if (changed) t = Tensor::from_int64s(t.shape(), v);
    };
    for (auto& n : g.nodes)
        if (n.op_type == "Constant" && targets.count(n.outputs[0]) && n.has("value")) rewrite(n.attrs["value"].t);
    for (const auto& name : targets) {
        auto it = g.initializers.find(name);
        if (it != g.initializers.end()) rewrite(it->second);
    }
    // Decode tables: anchors [1,2,A] / [2,A] and strides [1,A] / [A,1].
    if (a0 > 0 && a0 != a1) {
        std::vector<float> xy, st;
        make_anchors(imgsz, imgsz, strides, xy, st);
        for (auto& kv : g.initializers) {
            Tensor& t = kv.second;
            if (t.dtype() != DType::Float32 || t.rank() < 1) continue;
            Shape sh = t.shape();
            int64_t lead = 1;
            for (size_t k = 0; k + 1 < sh.size(); ++k) lead *= sh[k];
            // Tables laid out [..., A] (anchors: 2 rows x,y; strides: 1 row) or [A, 1].
            if (sh.back() == a0 && (lead == 1 || lead == 2)) {
                sh.back() = a1;
                t = Tensor::from_floats(sh, lead == 2 ? xy : st);
            } else if (sh.size() == 2 && sh[0] == a0 && sh[1] == 1) {
                t = Tensor::from_floats({a1, 1}, st);
            }
        }
    }
    for (auto& o : g.outputs)
        if (o.shape.size() == 3) {
            o.shape[0] = Dim{batch, ""};
            o.shape[2] = Dim{a1, ""};
        }
    g.value_info.clear();  // stale after the change
}

}  // namespace yoloc
