#include "yolo/recognize.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "yolo/generate.h"

namespace yoloc {

namespace {

// Connectivity of the graph, built once (Graph::producer/consumers scan every node).
class GraphIndex {
public:
    explicit GraphIndex(const Graph& g) : g_(g) {
        for (size_t i = 0; i < g.nodes.size(); ++i) {
            const Node& n = g.nodes[i];
            by_name_[n.name] = int(i);
            for (const auto& o : n.outputs)
                if (!o.empty()) producer_[o] = int(i);
            for (const auto& in : n.inputs)
                if (!in.empty()) consumers_[in].push_back(int(i));
        }
    }
    const Node& node(int i) const { return g_.nodes[size_t(i)]; }

    // Quantized graphs put QuantizeLinear -> DequantizeLinear pairs between layers;
    // structure is read through them. up(): the float value a Q/DQ pair re-creates.
    std::string up(std::string v) const {
        for (;;) {
            int d = raw_producer(v);
            if (d < 0 || node(d).op_type != "DequantizeLinear") return v;
            int q = raw_producer(node(d).inputs[0]);
            if (q < 0 || node(q).op_type != "QuantizeLinear") return v;
            v = node(q).inputs[0];
        }
    }
    int raw_producer(const std::string& v) const {
        auto it = producer_.find(v);
        return it == producer_.end() ? -1 : it->second;
    }
    int producer(const std::string& v) const { return raw_producer(up(v)); }
    const Node* producer_node(const std::string& v) const {
        int i = producer(v);
        return i < 0 ? nullptr : &node(i);
    }
    const std::vector<int>& raw_consumers(const std::string& v) const {
        static const std::vector<int> none;
        auto it = consumers_.find(v);
        return it == consumers_.end() ? none : it->second;
    }
    // Readers of `v`, looking through Q/DQ pairs (the pairs themselves left out).
    std::vector<int> consumers(const std::string& v) const {
        std::vector<int> r;
        for (int c : raw_consumers(v)) {
            const Node& n = node(c);
            if (n.op_type == "QuantizeLinear" && !n.outputs.empty()) {
                for (int d : raw_consumers(n.outputs[0])) {
                    if (node(d).op_type != "DequantizeLinear") continue;
                    auto more = consumers(node(d).outputs[0]);
                    r.insert(r.end(), more.begin(), more.end());
                }
            } else {
                r.push_back(c);
            }
        }
        return r;
    }
    std::vector<int> consumers_of_type(const std::string& v, const std::string& op) const {
        std::vector<int> r;
        for (int c : consumers(v))
            if (node(c).op_type == op) r.push_back(c);
        return r;
    }
    std::vector<std::string> up_all(const std::vector<std::string>& vs) const {
        std::vector<std::string> r;
        for (const auto& v : vs) r.push_back(up(v));
        return r;
    }
    int index_of(const std::string& node_name) const {
        auto it = by_name_.find(node_name);
        return it == by_name_.end() ? -1 : it->second;
    }
    // A constant tensor: initializer, Constant node, or (for quantized weights) the
    // integer initializer behind a DequantizeLinear, whose shape is what we need.
    const Tensor* constant(const std::string& v) const {
        if (const Tensor* t = g_.find_initializer(v)) return t;
        int pi = raw_producer(v);
        if (pi < 0) return nullptr;
        const Node* p = &node(pi);
        if (p->op_type == "Constant") {
            auto it = p->attrs.find("value");
            if (it != p->attrs.end() && it->second.kind == Attribute::Kind::Tensor) return &it->second.t;
            return nullptr;
        }
        if (p->op_type == "DequantizeLinear" || p->op_type == "Identity") return constant(p->inputs[0]);
        return nullptr;
    }

private:
    const Graph& g_;
    std::map<std::string, int> by_name_;
    std::map<std::string, int> producer_;
    std::map<std::string, std::vector<int>> consumers_;
};

bool same_set(std::vector<std::string> a, std::vector<std::string> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
}

class Recognizer {
public:
    explicit Recognizer(const Model& m) : g_(m.graph), ix_(m.graph) {}

    YoloArch run() {
        YoloArch a;
        find_input(a);
        find_units();
        find_head(a);
        find_c2f(a);
        find_sppf(a);
        find_layers_and_neck(a);
        find_strides(a);
        guess_scale(a);
        if (a.c2f.empty()) fail("no C2f block (Conv -> Split -> bottlenecks -> Concat -> Conv) found");
        if (a.sppf.empty()) fail("no SPPF block (Conv -> 3 chained MaxPool -> Concat -> Conv) found");
        a.recognised = true;
        return a;
    }

private:
    void find_input(YoloArch& a) {
        for (const ValueInfo& v : g_.inputs) {
            if (g_.is_initializer(v.name)) continue;
            if (v.shape.size() != 4) continue;
            a.input = v.name;
            a.imgsz_h = v.shape[2].known() ? v.shape[2].value : 0;
            a.imgsz_w = v.shape[3].known() ? v.shape[3].value : 0;
            a.imgsz = std::max(a.imgsz_h, a.imgsz_w);
            return;
        }
        fail("no 4-D image input (N, 3, H, W)");
    }

    // Every Conv, with its SiLU (Sigmoid + Mul reading the conv output) when present.
    void find_units() {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (n.op_type != "Conv" || n.inputs.size() < 2 || n.outputs.empty()) continue;
            ConvUnit u;
            u.conv = n.name;
            u.input = ix_.up(n.inputs[0]);
            u.output = n.outputs[0];
            const Tensor* w = ix_.constant(n.inputs[1]);
            if (!w || w->rank() != 4) continue;  // not a 2-D conv with constant weights
            u.group = n.attr_i("group", 1);
            u.c_out = w->dim(0);
            u.c_in = w->dim(1) * u.group;
            u.kernel = w->dim(2);
            auto st = n.attr_ints("strides", {1, 1});
            u.stride = st.empty() ? 1 : st[0];
            const std::string y = n.outputs[0];
            auto sig = ix_.consumers_of_type(y, "Sigmoid");
            auto mul = ix_.consumers_of_type(y, "Mul");
            if (ix_.consumers(y).size() == 2 && sig.size() == 1 && mul.size() == 1) {
                const Node& s = ix_.node(sig[0]);
                const Node& m = ix_.node(mul[0]);
                if (m.inputs.size() == 2 && same_set(ix_.up_all(m.inputs), {y, s.outputs[0]})) {
                    u.sigmoid = s.name;
                    u.mul = m.name;
                    u.output = m.outputs[0];
                }
            }
            by_output_[u.output] = u;
            by_conv_[u.conv] = u;
        }
    }

    const ConvUnit* unit_producing(const std::string& v) const {
        auto it = by_output_.find(v);
        return it == by_output_.end() ? nullptr : &it->second;
    }
    // The only conv unit reading `v` (nullptr when none or several).
    const ConvUnit* single_unit_reading(const std::string& v) const {
        auto convs = ix_.consumers_of_type(v, "Conv");
        if (convs.size() != 1) return nullptr;
        auto it = by_conv_.find(ix_.node(convs[0]).name);
        return it == by_conv_.end() ? nullptr : &it->second;
    }

    void claim(const ConvUnit& u) { claimed_convs_.insert(u.conv); }

    void find_head(YoloArch& a) {
        // The DFL conv is the anchor: reads a Softmax, weight [1, reg_max, 1, 1], no bias.
        int dfl = -1;
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (n.op_type != "Conv" || (n.inputs.size() > 2 && !n.inputs[2].empty())) continue;
            const Node* p = ix_.producer_node(n.inputs[0]);
            const Tensor* w = ix_.constant(n.inputs[1]);
            if (p && p->op_type == "Softmax" && w && w->rank() == 4 && w->dim(0) == 1 && w->dim(2) == 1 &&
                w->dim(3) == 1) {
                dfl = int(i);
                break;
            }
        }
        if (dfl < 0) fail("no DFL (Softmax -> 1x1 Conv with reg_max inputs and one output) found: not a YOLOv8 detect head");
        const Node& dfl_conv = ix_.node(dfl);
        a.reg_max = ix_.constant(dfl_conv.inputs[1])->dim(1);
        a.head.dfl_conv = dfl_conv.name;
        claimed_convs_.insert(dfl_conv.name);

        // Softmax <- Transpose <- Reshape <- Split(box, cls) <- Concat(axis 2) of levels.
        const Node* sm = ix_.producer_node(dfl_conv.inputs[0]);
        const Node* tr = ix_.producer_node(sm->inputs[0]);
        YOLOC_CHECK(tr && tr->op_type == "Transpose", "DFL Softmax does not read a Transpose");
        const Node* rs = ix_.producer_node(tr->inputs[0]);
        YOLOC_CHECK(rs && rs->op_type == "Reshape", "DFL Transpose does not read a Reshape");
        int split_i = ix_.producer(rs->inputs[0]);
        YOLOC_CHECK(split_i >= 0 && ix_.node(split_i).op_type == "Split" && ix_.node(split_i).outputs.size() == 2,
                    "DFL does not read the box half of a 2-way Split");
        const Node& split = ix_.node(split_i);
        a.head.split = split.name;
        const Node* cat = ix_.producer_node(split.inputs[0]);
        YOLOC_CHECK(cat && cat->op_type == "Concat", "head Split does not read a Concat of levels");
        a.head.concat = cat->name;

        for (const std::string& lv : cat->inputs) {
            DetectLevel L;
            const Node* r = ix_.producer_node(lv);
            YOLOC_CHECK(r && r->op_type == "Reshape", "head level is not a Reshape");
            L.reshape = r->name;
            const Node* c = ix_.producer_node(r->inputs[0]);
            YOLOC_CHECK(c && c->op_type == "Concat" && c->inputs.size() == 2, "head level is not Concat(box, cls)");
            L.concat = c->name;
            L.box = branch(c->inputs[0]);
            L.cls = branch(c->inputs[1]);
            YOLOC_CHECK(L.box.front().input == L.cls.front().input, "box and class branches read different features");
            L.input = L.box.front().input;
            YOLOC_CHECK(L.box.back().c_out == 4 * a.reg_max, "box branch has ", L.box.back().c_out,
                        " outputs, expected 4*reg_max = ", 4 * a.reg_max);
            int64_t nc = L.cls.back().c_out;
            YOLOC_CHECK(a.nc == 0 || a.nc == nc, "levels disagree on the number of classes");
            a.nc = nc;
            for (const auto& u : L.box) claim(u);
            for (const auto& u : L.cls) claim(u);
            a.head.levels.push_back(L);
        }
        YOLOC_CHECK(!a.head.levels.empty(), "head has no levels");

        // Decode: everything downstream of the Split, in graph order.
        std::set<int> seen;
        std::vector<int> stack{split_i};
        while (!stack.empty()) {
            int i = stack.back();
            stack.pop_back();
            for (const auto& o : ix_.node(i).outputs)
                for (int c : ix_.raw_consumers(o))
                    if (seen.insert(c).second) stack.push_back(c);
        }
        for (int i : seen) a.head.decode.push_back(ix_.node(i).name);
        std::sort(a.head.decode.begin(), a.head.decode.end(),
                  [&](const std::string& x, const std::string& y) { return ix_.index_of(x) < ix_.index_of(y); });
        for (const ValueInfo& o : g_.outputs) {
            int p = ix_.raw_producer(o.name);
            if (p == split_i || seen.count(p)) {
                a.head.output = o.name;
                break;
            }
        }
        YOLOC_CHECK(!a.head.output.empty(), "the Detect head does not reach a graph output");
    }

    // A head branch ending at `v`: conv units back to the level's feature, first conv first.
    std::vector<ConvUnit> branch(const std::string& v) const {
        std::vector<ConvUnit> r;
        const ConvUnit* u = unit_producing(ix_.up(v));
        YOLOC_CHECK(u && !u->act(), "head branch does not end in a plain Conv");
        r.push_back(*u);
        for (int k = 0; k < 2; ++k) {
            const ConvUnit* p = unit_producing(r.back().input);
            YOLOC_CHECK(p && p->act(), "head branch: expected Conv+SiLU before ", r.back().conv);
            r.push_back(*p);
        }
        std::reverse(r.begin(), r.end());
        return r;
    }

    std::vector<int64_t> split_sizes(const Node& s) const {
        if (s.inputs.size() > 1 && !s.inputs[1].empty()) {
            const Tensor* t = ix_.constant(s.inputs[1]);
            if (!t) return {};
            return t->to_int64s();
        }
        return s.attr_ints("split", {});
    }

    void find_c2f(YoloArch& a) {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& s = g_.nodes[i];
            if (s.op_type != "Split" || s.outputs.size() != 2 || s.attr_i("axis", 0) != 1) continue;
            const ConvUnit* cv1 = unit_producing(ix_.up(s.inputs[0]));
            if (!cv1 || !cv1->act() || claimed_convs_.count(cv1->conv)) continue;
            auto sizes = split_sizes(s);
            if (sizes.empty()) sizes = {cv1->c_out / 2, cv1->c_out - cv1->c_out / 2};
            if (sizes.size() != 2) continue;
            C2fBlock b;
            b.cv1 = *cv1;
            b.split = s.name;
            b.split_sizes = sizes;
            b.c = sizes[1];
            std::vector<std::string> expect{s.outputs[0], s.outputs[1]};
            std::string cur = s.outputs[1];
            for (;;) {
                const ConvUnit* u1 = single_unit_reading(cur);
                if (!u1 || !u1->act()) break;
                const ConvUnit* u2 = single_unit_reading(u1->output);
                if (!u2 || !u2->act()) break;
                Bottleneck bn{*u1, *u2, ""};
                std::string next = u2->output;
                for (int c : ix_.consumers_of_type(u2->output, "Add")) {
                    const Node& add = ix_.node(c);
                    if (add.inputs.size() == 2 && same_set(ix_.up_all(add.inputs), {cur, u2->output})) {
                        bn.add = add.name;
                        next = add.outputs[0];
                        break;
                    }
                }
                b.bottlenecks.push_back(bn);
                expect.push_back(next);
                cur = next;
            }
            const Node* cat = nullptr;
            for (int c : ix_.consumers_of_type(s.outputs[0], "Concat"))
                if (ix_.up_all(ix_.node(c).inputs) == expect) cat = &ix_.node(c);
            if (!cat) continue;
            const ConvUnit* cv2 = single_unit_reading(cat->outputs[0]);
            if (!cv2 || !cv2->act()) continue;
            b.concat = cat->name;
            b.cv2 = *cv2;
            b.c_in = cv1->c_in;
            b.c_out = cv2->c_out;
            b.n = int(b.bottlenecks.size());
            claim(b.cv1);
            claim(b.cv2);
            for (const auto& bn : b.bottlenecks) {
                claim(bn.cv1);
                claim(bn.cv2);
            }
            claimed_nodes_.insert(b.concat);
            a.c2f.push_back(b);
        }
    }

    void find_sppf(YoloArch& a) {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& c = g_.nodes[i];
            if (c.op_type != "Concat" || c.inputs.size() != 4) continue;
            const ConvUnit* cv1 = unit_producing(ix_.up(c.inputs[0]));
            if (!cv1) continue;
            std::vector<std::string> pools;
            bool ok = true;
            for (int k = 1; k < 4 && ok; ++k) {
                const Node* p = ix_.producer_node(c.inputs[size_t(k)]);
                ok = p && p->op_type == "MaxPool" && ix_.up(p->inputs[0]) == ix_.up(c.inputs[size_t(k - 1)]);
                if (ok) pools.push_back(p->name);
            }
            if (!ok) continue;
            const ConvUnit* cv2 = single_unit_reading(c.outputs[0]);
            if (!cv2) continue;
            SppfBlock b;
            b.cv1 = *cv1;
            b.pools = pools;
            b.concat = c.name;
            b.cv2 = *cv2;
            claim(b.cv1);
            claim(b.cv2);
            claimed_nodes_.insert(b.concat);
            a.sppf.push_back(b);
        }
    }

    // Layer indices follow graph order of each module's first node, as in Ultralytics'
    // export (modules are traced in forward order).
    void find_layers_and_neck(YoloArch& a) {
        for (const auto& l : a.head.levels) claimed_nodes_.insert(l.concat);
        claimed_nodes_.insert(a.head.concat);
        for (const auto& d : a.head.decode) claimed_nodes_.insert(d);

        struct Item {
            int pos;
            int kind;  // 0 conv, 1 c2f, 2 sppf, 3 neck
            size_t idx;
        };
        std::vector<Item> items;
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (n.op_type == "Conv" && !claimed_convs_.count(n.name) && by_conv_.count(n.name)) {
                a.convs.push_back({-1, by_conv_.at(n.name)});
                items.push_back({int(i), 0, a.convs.size() - 1});
            } else if ((n.op_type == "Resize" || n.op_type == "Upsample" || n.op_type == "Concat") &&
                       !claimed_nodes_.count(n.name)) {
                a.neck.push_back({-1, n.name, n.op_type});
                items.push_back({int(i), 3, a.neck.size() - 1});
            }
        }
        for (size_t k = 0; k < a.c2f.size(); ++k) items.push_back({ix_.index_of(a.c2f[k].cv1.conv), 1, k});
        for (size_t k = 0; k < a.sppf.size(); ++k) items.push_back({ix_.index_of(a.sppf[k].cv1.conv), 2, k});
        std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) { return x.pos < y.pos; });
        int layer = 0;
        for (const Item& it : items) {
            switch (it.kind) {
                case 0: a.convs[it.idx].index = layer; break;
                case 1: a.c2f[it.idx].index = layer; break;
                case 2: a.sppf[it.idx].index = layer; break;
                default: a.neck[it.idx].index = layer; break;
            }
            ++layer;
        }
        a.head.index = layer;
        auto by_index = [](const auto& x, const auto& y) { return x.index < y.index; };
        std::sort(a.convs.begin(), a.convs.end(), by_index);
        std::sort(a.c2f.begin(), a.c2f.end(), by_index);
        std::sort(a.sppf.begin(), a.sppf.end(), by_index);
        std::sort(a.neck.begin(), a.neck.end(), by_index);
    }

    // Downsampling factor of every 4-D value, propagated from the input through the
    // ops that keep the NCHW layout; a level's stride is the factor of its feature.
    void find_strides(YoloArch& a) {
        static const std::set<std::string> keep{"Sigmoid", "Mul", "Add", "Sub", "Div", "Concat", "Split",
                                                "Relu", "LeakyRelu", "Clip", "HardSwish", "HardSigmoid",
                                                "QuantizeLinear", "DequantizeLinear", "Identity",
                                                "BatchNormalization", "Sum"};
        std::map<std::string, double> f;
        f[a.input] = 1.0;
        for (const Node& n : g_.nodes) {
            double in = -1;
            for (const auto& v : n.inputs) {
                auto it = f.find(v);
                if (it != f.end()) {
                    in = it->second;
                    break;
                }
            }
            if (in < 0) continue;
            double out = -1;
            if (n.op_type == "Conv" || n.op_type == "MaxPool" || n.op_type == "AveragePool") {
                auto st = n.attr_ints("strides", {1, 1});
                out = in * double(st.empty() ? 1 : st[0]);
            } else if (n.op_type == "Resize" || n.op_type == "Upsample") {
                const Tensor* sc = n.inputs.size() > 2 && !n.inputs[2].empty() ? ix_.constant(n.inputs[2])
                                   : n.op_type == "Upsample" && n.inputs.size() > 1 ? ix_.constant(n.inputs[1])
                                                                                    : nullptr;
                if (sc && sc->numel() == 4 && sc->at_f64(3) > 0) out = in / sc->at_f64(3);
            } else if (keep.count(n.op_type)) {
                out = in;
            }
            if (out > 0)
                for (const auto& o : n.outputs) f[o] = out;
        }
        for (auto& L : a.head.levels) {
            auto it = f.find(L.input);
            YOLOC_CHECK(it != f.end(), "cannot trace the stride of head level reading ", L.input);
            L.stride = int64_t(std::lround(it->second));
            a.strides.push_back(L.stride);
        }
    }

    void guess_scale(YoloArch& a) {
        a.scale = "custom";
        if (a.c2f.size() != 8) return;
        for (const char* s : {"n", "s", "m", "l", "x"}) {
            auto spec = yolov8_c2f_specs(s);
            bool ok = true;
            for (size_t k = 0; k < 8 && ok; ++k)
                ok = spec[k].c_in == a.c2f[k].c_in && spec[k].c_out == a.c2f[k].c_out && spec[k].n == a.c2f[k].n &&
                     spec[k].shortcut == a.c2f[k].shortcut() && a.c2f[k].split_sizes[0] == a.c2f[k].c &&
                     a.c2f[k].c * 2 == spec[k].c_out;
            if (ok) {
                a.scale = s;
                return;
            }
        }
    }

    const Graph& g_;
    GraphIndex ix_;
    std::map<std::string, ConvUnit> by_output_;
    std::map<std::string, ConvUnit> by_conv_;
    std::set<std::string> claimed_convs_;
    std::set<std::string> claimed_nodes_;
};

}  // namespace

YoloArch recognize_yolov8(const Model& model) {
    try {
        return Recognizer(model).run();
    } catch (const Error& e) {
        YoloArch a;
        a.recognised = false;
        a.reason = e.what();
        return a;
    }
}

ConvPlace locate_conv(const YoloArch& a, const std::string& conv) {
    for (const auto& l : a.convs)
        if (l.unit.conv == conv) return {ConvRole::Layer, l.index, -1, -1};
    for (const auto& b : a.c2f) {
        if (b.cv1.conv == conv) return {ConvRole::C2fCv1, b.index, -1, -1};
        if (b.cv2.conv == conv) return {ConvRole::C2fCv2, b.index, -1, -1};
        for (size_t i = 0; i < b.bottlenecks.size(); ++i) {
            if (b.bottlenecks[i].cv1.conv == conv) return {ConvRole::BottleneckCv1, b.index, int(i), -1};
            if (b.bottlenecks[i].cv2.conv == conv) return {ConvRole::BottleneckCv2, b.index, int(i), -1};
        }
    }
    for (const auto& s : a.sppf) {
        if (s.cv1.conv == conv) return {ConvRole::SppfCv1, s.index, -1, -1};
        if (s.cv2.conv == conv) return {ConvRole::SppfCv2, s.index, -1, -1};
    }
    for (size_t l = 0; l < a.head.levels.size(); ++l) {
        const auto& L = a.head.levels[l];
        for (size_t p = 0; p < L.box.size(); ++p)
            if (L.box[p].conv == conv) return {ConvRole::DetectBox, a.head.index, int(l), int(p)};
        for (size_t p = 0; p < L.cls.size(); ++p)
            if (L.cls[p].conv == conv) return {ConvRole::DetectCls, a.head.index, int(l), int(p)};
    }
    if (a.head.dfl_conv == conv) return {ConvRole::Dfl, a.head.index, -1, -1};
    return {};
}

}  // namespace yoloc
