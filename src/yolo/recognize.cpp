#include "yolo/recognize.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "engine/cpu/executor.h"
#include "ir/shape_inference.h"
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

// The model with a concrete [1, 3, H, W] input (640 where symbolic) and its constant
// subgraphs folded, as every engine sees it: exporters differ most in how they spell
// constants (Constant nodes, Shape -> Gather chains of dynamic exports, Identity).
Model folded_for_recognition(const Model& m, Shape* input_shape) {
    Model r = m;
    const Graph& g = r.graph;
    std::string in;
    Shape s;
    for (const ValueInfo& v : g.inputs) {
        if (g.is_initializer(v.name) || v.shape.size() != 4) continue;
        in = v.name;
        s = {1, v.shape[1].known() ? v.shape[1].value : 3, v.shape[2].known() ? v.shape[2].value : 640,
             v.shape[3].known() ? v.shape[3].value : 640};
        break;
    }
    YOLOC_CHECK(!in.empty(), "no 4-D image input (N, 3, H, W)");
    // A static export keeps its declared batch (its constants may bake it in).
    for (const ValueInfo& v : g.inputs)
        if (v.name == in && v.shape[0].known()) s[0] = v.shape[0].value;
    *input_shape = s;
    fold_constants(r, {{in, s}});
    return r;
}

class Recognizer {
public:
    Recognizer(const Model& folded, const Shape& input_shape)
        : m_(folded), g_(folded.graph), ix_(folded.graph), ishape_(input_shape) {
        info_ = infer_shapes(m_, {{input_name(), ishape_}});
    }

    YoloArch run() {
        YoloArch a;
        find_input(a);
        find_units();
        find_head(a);
        find_sppf(a);
        find_split_blocks(a);
        find_c3_blocks(a);
        find_layers_and_neck(a);
        find_family_and_scale(a);
        a.recognised = true;
        return a;
    }

private:
    std::string input_name() const {
        for (const ValueInfo& v : g_.inputs)
            if (!g_.is_initializer(v.name) && v.shape.size() == 4) return v.name;
        fail("no 4-D image input (N, 3, H, W)");
    }

    const Shape* shape_of(const std::string& v) const {
        auto it = info_.values.find(v);
        return it == info_.values.end() ? nullptr : &it->second.shape;
    }

    void find_input(YoloArch& a) {
        for (const ValueInfo& v : g_.inputs) {
            if (g_.is_initializer(v.name) || v.shape.size() != 4) continue;
            a.input = v.name;
            a.imgsz_h = v.shape[2].known() ? v.shape[2].value : 0;
            a.imgsz_w = v.shape[3].known() ? v.shape[3].value : 0;
            a.imgsz = std::max(a.imgsz_h, a.imgsz_w);
            return;
        }
        fail("no 4-D image input (N, 3, H, W)");
    }

    // Every Conv with constant 4-D weights, with its SiLU (Sigmoid + Mul reading the conv
    // output) when present.
    void find_units() {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (n.op_type != "Conv" || n.inputs.size() < 2 || n.outputs.empty()) continue;
            ConvUnit u;
            u.conv = n.name;
            u.input = ix_.up(n.inputs[0]);
            u.output = n.outputs[0];
            const Tensor* w = ix_.constant(n.inputs[1]);
            if (!w || w->rank() != 4) continue;
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
        auto it = by_output_.find(ix_.up(v));
        return it == by_output_.end() ? nullptr : &it->second;
    }
    std::vector<const ConvUnit*> units_reading(const std::string& v) const {
        std::vector<const ConvUnit*> r;
        for (int c : ix_.consumers_of_type(v, "Conv")) {
            auto it = by_conv_.find(ix_.node(c).name);
            if (it != by_conv_.end()) r.push_back(&it->second);
        }
        return r;
    }
    // The only reader of `v`, when it is a conv unit.
    const ConvUnit* only_unit_reading(const std::string& v) const {
        auto cs = ix_.consumers(v);
        if (cs.size() != 1 || ix_.node(cs[0]).op_type != "Conv") return nullptr;
        auto it = by_conv_.find(ix_.node(cs[0]).name);
        return it == by_conv_.end() ? nullptr : &it->second;
    }
    // The only conv unit among the readers of `v` (others may be Adds, Concats...).
    const ConvUnit* single_unit_reading(const std::string& v) const {
        auto us = units_reading(v);
        return us.size() == 1 ? us[0] : nullptr;
    }
    // Add(a, b) in either order, or null.
    const Node* add_of(const std::string& a, const std::string& b) const {
        for (int c : ix_.consumers_of_type(b, "Add")) {
            const Node& add = ix_.node(c);
            if (add.inputs.size() == 2 && same_set(ix_.up_all(add.inputs), {a, b})) return &add;
        }
        return nullptr;
    }

    void claim(const ConvUnit& u) { claimed_convs_.insert(u.conv); }

    // ---- the head --------------------------------------------------------------------------

    // A level's last conv: plain (no activation), reshaped to [N, C, H*W] (directly, or after
    // the Concat(box, cls) of older exports).
    bool is_branch_end(const ConvUnit& u) const {
        if (u.act()) return false;
        const Shape* ys = shape_of(u.output);
        if (!ys || ys->size() != 4) return false;
        auto reshaped_flat = [&](const std::string& v, int64_t c) {
            for (int r : ix_.consumers_of_type(v, "Reshape")) {
                const Shape* s = shape_of(ix_.node(r).outputs[0]);
                if (s && s->size() == 3 && (*s)[1] == c && (*s)[2] == (*ys)[2] * (*ys)[3]) return true;
            }
            return false;
        };
        if (reshaped_flat(u.output, u.c_out)) return true;
        for (int c : ix_.consumers_of_type(u.output, "Concat")) {
            const Node& cat = ix_.node(c);
            const Shape* cs = shape_of(cat.outputs[0]);
            if (cs && cs->size() == 4 && (*cs)[2] == (*ys)[2] && reshaped_flat(cat.outputs[0], (*cs)[1])) return true;
        }
        return false;
    }

    // The branch ending at `end`: conv units back to the level's feature (the value that
    // other branches read too), first conv first.
    std::vector<ConvUnit> branch_to(const ConvUnit& end, std::string* feature) const {
        std::vector<ConvUnit> r{end};
        std::string v = end.input;
        for (int guard = 0; guard < 64; ++guard) {
            const ConvUnit* p = unit_producing(v);
            if (!p || !p->act() || ix_.consumers(v).size() != 1) break;
            r.insert(r.begin(), *p);
            v = p->input;
        }
        *feature = v;
        return r;
    }

    // DFL: a 1x1 conv with weights [1, reg_max, 1, 1] reading a Softmax (through Transposes).
    const Node* find_dfl() const {
        for (const Node& n : g_.nodes) {
            if (n.op_type != "Conv" || n.inputs.size() < 2) continue;
            const Tensor* w = ix_.constant(n.inputs[1]);
            if (!w || w->rank() != 4 || w->dim(0) != 1 || w->dim(1) < 2 || w->dim(2) != 1 || w->dim(3) != 1) continue;
            const Node* p = ix_.producer_node(n.inputs[0]);
            while (p && p->op_type == "Transpose") p = ix_.producer_node(p->inputs[0]);
            if (p && p->op_type == "Softmax") return &n;
        }
        return nullptr;
    }

    // Nodes reachable from `from` values, walking forward.
    std::set<int> forward_from(const std::vector<std::string>& from) const {
        std::set<int> seen;
        std::vector<std::string> stack(from);
        while (!stack.empty()) {
            std::string v = stack.back();
            stack.pop_back();
            for (int c : ix_.raw_consumers(v))
                if (seen.insert(c).second)
                    for (const auto& o : ix_.node(c).outputs)
                        if (!o.empty()) stack.push_back(o);
        }
        return seen;
    }
    // Nodes `to` depends on, walking backward (the producer of `to` included).
    std::set<int> backward_from(const std::string& to) const {
        std::set<int> seen;
        std::vector<std::string> stack{to};
        while (!stack.empty()) {
            int p = ix_.raw_producer(stack.back());
            stack.pop_back();
            if (p < 0 || !seen.insert(p).second) continue;
            for (const auto& i : ix_.node(p).inputs)
                if (!i.empty()) stack.push_back(i);
        }
        return seen;
    }

    void find_head(YoloArch& a) {
        // Levels: the branch ends grouped by the feature their branches start from.
        std::map<std::string, std::vector<std::vector<ConvUnit>>> by_feature;
        std::vector<std::string> feature_order;
        for (const auto& kv : by_conv_) {
            const ConvUnit& u = kv.second;
            if (!is_branch_end(u)) continue;
            std::string feature;
            auto br = branch_to(u, &feature);
            if (!by_feature.count(feature)) feature_order.push_back(feature);
            by_feature[feature].push_back(br);
        }
        struct RawLevel {
            std::string feature;
            std::vector<std::vector<ConvUnit>> branches;
            int64_t h = 0, w = 0;
        };
        std::vector<RawLevel> levels;
        for (const auto& f : feature_order) {
            if (by_feature[f].size() < 2) continue;  // a head level has a box and a class branch at least
            const Shape* s = shape_of(f);
            YOLOC_CHECK(s && s->size() == 4, "head level feature ", f, " has no 4-D shape");
            RawLevel L{f, by_feature[f], (*s)[2], (*s)[3]};
            // Branches in graph order of their first conv (box before class in every export).
            std::sort(L.branches.begin(), L.branches.end(), [&](const auto& x, const auto& y) {
                return ix_.index_of(x.front().conv) < ix_.index_of(y.front().conv);
            });
            levels.push_back(L);
        }
        if (levels.empty())
            fail("no detection head found (per level: conv branches ending in a 1x1 conv whose output is reshaped "
                 "to [N, C, H*W])");
        std::sort(levels.begin(), levels.end(), [](const RawLevel& x, const RawLevel& y) { return x.h > y.h; });
        const size_t nb = levels[0].branches.size();
        for (const auto& L : levels)
            YOLOC_CHECK(L.branches.size() == nb, "head levels differ in their number of branches");
        YOLOC_CHECK(nb <= 3, "a head level with ", nb, " branches is not a YOLO head");

        const Node* dfl = find_dfl();
        a.reg_max = dfl ? ix_.constant(dfl->inputs[1])->dim(1) : 1;
        if (dfl) a.head.dfl_conv = dfl->name;
        const int64_t box_c = 4 * a.reg_max;

        int64_t anchors = 0;
        for (const auto& L : levels) anchors += L.h * L.w;
        const int64_t batch = ishape_[0];

        // Which branch is which: the box branch has 4*reg_max channels; the class branch is
        // the one whose count c gives a [N, 4+c, anchors] value downstream (the decode),
        // which the mask-coefficient and keypoint branches of segment/pose heads do not.
        // Every assignment the counts allow is tried; the decode check settles ties.
        struct Assignment {
            size_t box, cls, extra;
        };
        std::vector<Assignment> tries;
        for (size_t b = 0; b < nb; ++b)
            for (size_t c = 0; c < nb; ++c) {
                if (b == c) continue;
                size_t e = nb == 3 ? 3 - b - c : size_t(-1);
                tries.push_back({b, c, e});
            }
        std::string last_reason = "no branch has 4*reg_max = " + std::to_string(box_c) + " channels";
        struct Candidate {
            Assignment t;
            int64_t nc = 0;
            std::string out;
            std::vector<int> dec;
            std::string why;  // "" = decode confirmed
            bool xyxy = false;
        };
        std::vector<Candidate> viable;
        for (const Assignment& t : tries) {
            bool ok = true;
            int64_t nc = -1;
            for (const auto& L : levels) {
                ok = ok && L.branches[t.box].back().c_out == box_c;
                int64_t c = L.branches[t.cls].back().c_out;
                ok = ok && (nc < 0 || nc == c);
                nc = c;
            }
            if (!ok) continue;
            // The decode value: [N, 4+nc, anchors], downstream of every box and class end,
            // the last such value in graph order.
            std::vector<std::string> ends;
            for (const auto& L : levels) {
                ends.push_back(L.branches[t.box].back().output);
                ends.push_back(L.branches[t.cls].back().output);
            }
            std::set<int> reach;
            for (size_t k = 0; k < ends.size(); ++k) {
                std::set<int> f = forward_from({ends[k]});
                if (k == 0) {
                    reach = f;
                    continue;
                }
                std::set<int> both;
                std::set_intersection(reach.begin(), reach.end(), f.begin(), f.end(), std::inserter(both, both.begin()));
                reach = both;
            }
            Candidate c;
            c.t = t;
            c.nc = nc;
            int out_pos = -1;
            for (int i : reach)
                for (const auto& o : ix_.node(i).outputs) {
                    const Shape* sh = shape_of(o);
                    if (sh && *sh == Shape{batch, 4 + nc, anchors} && i > out_pos) {
                        c.out = o;
                        out_pos = i;
                    }
                }
            if (c.out.empty() && t.extra != size_t(-1)) {
                // Segment and pose exports (onnxslim) join boxes, scores and the extra outputs
                // in one Concat: [N, 4, A], [N, nc, A], then mask coefficients or keypoints.
                for (int i : reach) {
                    const Node& n = ix_.node(i);
                    if (n.op_type != "Concat" || n.inputs.size() < 3) continue;
                    const Shape* s0 = shape_of(n.inputs[0]);
                    const Shape* s1 = shape_of(n.inputs[1]);
                    if (s0 && s1 && *s0 == Shape{batch, 4, anchors} && *s1 == Shape{batch, nc, anchors}) {
                        c.out = n.outputs[0];
                        c.why = "the boxes and scores share one Concat with the mask coefficients or keypoints";
                    }
                }
            }
            if (c.out.empty()) {
                last_reason = "no [N, 4+" + std::to_string(nc) + ", " + std::to_string(anchors) +
                              "] decode output downstream of the box and class branches";
                continue;
            }
            // The decode: every node between the branch ends and the decode output (the
            // nodes downstream of the ends are all outside the branches themselves).
            std::set<int> back = backward_from(c.out);
            for (int i : reach)
                if (back.count(i)) c.dec.push_back(i);
            for (const auto& L : levels)  // nodes reading only one end (a per-level Concat, a Reshape)
                for (size_t k : {t.box, t.cls}) {
                    std::set<int> f = forward_from({L.branches[k].back().output});
                    for (int i : f)
                        if (back.count(i) && !std::count(c.dec.begin(), c.dec.end(), i)) c.dec.push_back(i);
                }
            std::sort(c.dec.begin(), c.dec.end());
            if (c.why.empty()) c.why = check_decode(levels, t, nc, ends, c.dec, c.out, a.reg_max, &c.xyxy);
            viable.push_back(c);
            if (c.why.empty()) break;
        }
        if (viable.empty()) fail("the detection head's branches do not fit a YOLO decode: ", last_reason);
        const Candidate* pick = &viable.front();
        for (const auto& c : viable)
            if (c.why.empty()) pick = &c;
        const Assignment t = pick->t;
        a.nc = pick->nc;
        a.head.output = pick->out;
        a.head.fused = pick->why.empty();
        a.head.fused_reason = pick->why;
        a.head.xyxy = pick->xyxy;
        for (int i : pick->dec) a.head.decode.push_back(ix_.node(i).name);
        if (dfl) a.head.dfl_conv = dfl->name;
        for (size_t l = 0; l < levels.size(); ++l) {
            const RawLevel& R = levels[l];
            DetectLevel L;
            L.input = R.feature;
            L.h = R.h;
            L.w = R.w;
            L.box = R.branches[t.box];
            L.cls = R.branches[t.cls];
            if (t.extra != size_t(-1)) L.extra = R.branches[t.extra];
            // Older exports: Concat(box, cls) per level, then a Concat of levels and a Split.
            for (int c : ix_.consumers_of_type(L.box.back().output, "Concat"))
                if (same_set(ix_.up_all(ix_.node(c).inputs), {L.box.back().output, L.cls.back().output}))
                    L.concat = ix_.node(c).name;
            const std::string flat = L.concat.empty() ? L.box.back().output : ix_.node(ix_.index_of(L.concat)).outputs[0];
            for (int r : ix_.consumers_of_type(flat, "Reshape")) L.reshape = ix_.node(r).name;
            L.stride = ishape_[2] / R.h;
            a.strides.push_back(L.stride);
            for (const auto* br : {&L.box, &L.cls, &L.extra})
                for (const auto& u : *br) claim(u);
            a.head.levels.push_back(L);
        }
        for (int i : pick->dec) {
            const Node& n = ix_.node(i);
            if (n.op_type == "Split" && a.head.split.empty()) a.head.split = n.name;
            if (n.op_type == "Concat" && a.head.concat.empty()) {
                const Shape* sh = shape_of(n.outputs[0]);
                if (sh && sh->size() == 3 && (*sh)[2] == anchors && (*sh)[1] == box_c + a.nc) a.head.concat = n.name;
            }
        }
        if (dfl) claimed_convs_.insert(dfl->name);
        find_post(a, nb);
    }

    // After the decode: an end-to-end top-k ([N, K, 6] output), or the concat with mask
    // coefficients / keypoints of segment and pose heads.
    void find_post(YoloArch& a, size_t branches) {
        std::set<int> after = forward_from({a.head.output});
        bool is_output = false;
        for (const ValueInfo& o : g_.outputs) is_output = is_output || o.name == a.head.output;
        bool topk = false;
        for (int i : after) topk = topk || ix_.node(i).op_type == "TopK";
        for (int i : after) a.head.post.push_back(ix_.node(i).name);
        if (branches == 3) {
            bool four_d_output = false;
            for (const ValueInfo& o : g_.outputs) {
                const Shape* s = shape_of(o.name);
                four_d_output = four_d_output || (s && s->size() == 4);
            }
            a.task = four_d_output ? Task::Segment : Task::Pose;
        }
        if (topk && !is_output) {
            for (const ValueInfo& o : g_.outputs) {
                const Shape* s = shape_of(o.name);
                if (s && s->size() == 3 && (*s)[2] == 6) {
                    a.head.end2end = true;
                    a.head.max_det = (*s)[1];
                }
            }
        }
    }

    // Runs the decode subgraph on random level outputs and compares it with the fused
    // Detect formula (engine/cuda/element_ops.h detect_at): per anchor at the grid cell
    // centre, DFL expectation over reg_max bins (the raw value when reg_max is 1),
    // dist2bbox to (cx, cy, w, h) or to corners (*xyxy), times the level's stride, and
    // sigmoid class scores. Returns "" when equal, else why not.
    template <typename Levels, typename Assign>
    std::string check_decode(const Levels& levels, const Assign& t, int64_t nc, const std::vector<std::string>& ends,
                             const std::vector<int>& dec, const std::string& out, int64_t reg_max, bool* xyxy) const {
        // The subgraph: the decode nodes, reading the branch ends and initializers only.
        Model sub;
        sub.opsets = m_.opsets;
        std::set<std::string> produced(ends.begin(), ends.end());
        for (int i : dec) {
            const Node& n = ix_.node(i);
            for (const auto& v : n.inputs) {
                if (v.empty() || produced.count(v)) continue;
                const Tensor* c = g_.find_initializer(v);
                if (!c) return "the decode reads " + v + ", which is neither a branch output nor a constant";
                sub.graph.initializers[v] = *c;
            }
            for (const auto& o : n.outputs) produced.insert(o);
            sub.graph.nodes.push_back(n);
        }
        for (const auto& e : ends) {
            ValueInfo vi;
            vi.name = e;
            for (int64_t d : *shape_of(e)) vi.shape.push_back(Dim{d, ""});
            sub.graph.inputs.push_back(vi);
        }
        ValueInfo ov;
        ov.name = out;
        sub.graph.outputs.push_back(ov);
        // Every intermediate of the decode must stay inside it (or the fused op would drop it).
        for (int i : dec)
            for (const auto& o : ix_.node(i).outputs) {
                if (o.empty() || o == out) continue;
                for (int c : ix_.raw_consumers(o))
                    if (!std::binary_search(dec.begin(), dec.end(), c))
                        return "decode value " + o + " is also read by " + ix_.node(c).label();
                for (const ValueInfo& go : g_.outputs)
                    if (go.name == o) return "decode value " + o + " is a graph output";
            }
        const int64_t batch = ishape_[0];
        uint32_t seed = 12345;
        auto rnd = [&](float span) {
            seed = seed * 1664525u + 1013904223u;
            return (float((seed >> 8) & 0xffff) / 65535.f * 2.f - 1.f) * span;
        };
        TensorMap feed;
        std::vector<Tensor> box, cls;
        for (const auto& L : levels) {
            Tensor b(DType::Float32, *shape_of(L.branches[t.box].back().output));
            Tensor c(DType::Float32, *shape_of(L.branches[t.cls].back().output));
            for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = rnd(reg_max > 1 ? 4.f : 3.f);
            for (int64_t i = 0; i < c.numel(); ++i) c.data<float>()[i] = rnd(6.f);
            feed[L.branches[t.box].back().output] = b;
            feed[L.branches[t.cls].back().output] = c;
            box.push_back(b);
            cls.push_back(c);
        }
        Tensor got;
        try {
            ReferenceExecutor ex(sub);
            got = ex.run(feed).at(out);
        } catch (const Error& e) {
            return std::string("the decode does not run on its own: ") + e.what();
        }
        int64_t anchors = 0;
        for (const auto& L : levels) anchors += L.h * L.w;
        double worst = 0, worst_xyxy = 0;
        for (int64_t n = 0; n < batch; ++n) {
            int64_t a0 = 0;
            for (size_t l = 0; l < levels.size(); ++l) {
                const int64_t H = levels[l].h, W = levels[l].w, HW = H * W;
                const double stride = double(ishape_[2]) / double(H);
                const float* pb = box[l].template data<float>() + n * 4 * reg_max * HW;
                const float* pc = cls[l].template data<float>() + n * nc * HW;
                for (int64_t p = 0; p < HW; ++p) {
                    double d[4];
                    for (int k = 0; k < 4; ++k) {
                        if (reg_max == 1) {
                            d[k] = pb[k * HW + p];
                            continue;
                        }
                        double m = -1e30, s = 0, e = 0;
                        for (int64_t j = 0; j < reg_max; ++j) m = std::max(m, double(pb[(k * reg_max + j) * HW + p]));
                        for (int64_t j = 0; j < reg_max; ++j) {
                            double x = std::exp(double(pb[(k * reg_max + j) * HW + p]) - m);
                            s += x;
                            e += x * double(j);
                        }
                        d[k] = e / s;
                    }
                    const double ax = double(p % W) + 0.5, ay = double(p / W) + 0.5;
                    const double x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
                    const double want[4] = {(x1 + x2) / 2 * stride, (y1 + y2) / 2 * stride, (x2 - x1) * stride,
                                            (y2 - y1) * stride};
                    const double want_xyxy[4] = {x1 * stride, y1 * stride, x2 * stride, y2 * stride};
                    const float* g = got.data<float>() + n * (4 + nc) * anchors + a0 + p;
                    for (int k = 0; k < 4; ++k) {
                        worst = std::max(worst, std::fabs(double(g[k * anchors]) - want[k]));
                        worst_xyxy = std::max(worst_xyxy, std::fabs(double(g[k * anchors]) - want_xyxy[k]));
                    }
                    for (int64_t c = 0; c < nc; ++c) {
                        double sg = 1.0 / (1.0 + std::exp(-double(pc[c * HW + p])));
                        const double d = std::fabs(double(g[(4 + c) * anchors]) - sg) * 100.0;
                        worst = std::max(worst, d);
                        worst_xyxy = std::max(worst_xyxy, d);
                    }
                }
                a0 += HW;
            }
        }
        // The end-to-end heads of YOLO26 / YOLOv10 decode to corners (x1, y1, x2, y2).
        *xyxy = worst_xyxy < worst;
        const double best = std::min(worst, worst_xyxy);
        if (!(best <= 1e-2))
            return "the decode computes something else than DFL + dist2bbox + stride + sigmoid (max difference " +
                   std::to_string(best) + ")";
        return "";
    }

    // ---- blocks ----------------------------------------------------------------------------

    void find_sppf(YoloArch& a) {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& c = g_.nodes[i];
            if (c.op_type != "Concat" || c.inputs.size() != 4) continue;
            const ConvUnit* cv1 = unit_producing(c.inputs[0]);
            if (!cv1 || claimed_convs_.count(cv1->conv)) continue;
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
            if (const Node* add = add_of(cv1->input, cv2->output)) b.add = add->name;
            claim(b.cv1);
            claim(b.cv2);
            claimed_nodes_.insert(b.concat);
            a.sppf.push_back(b);
        }
    }

    // One inner module of a CSP block, starting at value x: a Bottleneck, a C3k or a PSA
    // block. Fills `blk` and returns the module's output value ("" when none matches).
    std::string parse_module(const std::string& x, C2fBlock& blk, int depth) {
        // PSA block: x + proj(attention(qkv(x))), then + ffn2(ffn1(.)).
        for (const ConvUnit* qkv : units_reading(x)) {
            if (qkv->act()) continue;
            for (int c : ix_.consumers_of_type(x, "Add")) {
                const Node& add = ix_.node(c);
                std::string other = ix_.up(add.inputs[0]) == x ? add.inputs[1] : add.inputs[0];
                const ConvUnit* proj = unit_producing(other);
                if (!proj || proj->act()) continue;
                // The attention between qkv and proj: a MatMul and a Softmax, and a depthwise pe conv.
                std::set<int> from_qkv = forward_from({qkv->output});
                std::set<int> to_proj = backward_from(proj->input);
                bool matmul = false, softmax = false;
                const ConvUnit* pe = nullptr;
                for (int i : from_qkv) {
                    if (!to_proj.count(i)) continue;
                    const Node& n = ix_.node(i);
                    matmul = matmul || n.op_type == "MatMul";
                    softmax = softmax || n.op_type == "Softmax";
                    if (n.op_type == "Conv" && by_conv_.count(n.name)) pe = &by_conv_.at(n.name);
                }
                if (!matmul || !softmax) continue;
                const std::string x1 = add.outputs[0];
                const ConvUnit* f1 = single_unit_reading(x1);
                if (!f1 || !f1->act()) continue;
                const ConvUnit* f2 = only_unit_reading(f1->output);
                if (!f2 || f2->act()) continue;
                const Node* add2 = add_of(x1, f2->output);
                if (!add2) continue;
                PsaBlock p;
                p.qkv = *qkv;
                if (pe) p.pe = *pe;
                p.proj = *proj;
                p.ffn1 = *f1;
                p.ffn2 = *f2;
                p.add_attn = add.name;
                p.add_ffn = add2->name;
                for (const ConvUnit* u : {qkv, proj, f1, f2}) claim(*u);
                if (pe) claim(*pe);
                blk.psa.push_back(p);
                if (depth == 0) blk.inner.push_back("PSABlock");
                return add2->outputs[0];
            }
        }
        auto readers = units_reading(x);
        // C3k: two 1x1 convs read x; Bottlenecks after the first; Concat(., second) -> cv3.
        if (readers.size() == 2 && readers[0]->act() && readers[1]->act() && depth == 0) {
            for (int order = 0; order < 2; ++order) {
                const ConvUnit* c1 = readers[size_t(order)];
                const ConvUnit* c2 = readers[size_t(1 - order)];
                std::string cur = c1->output;
                C2fBlock tmp;
                for (int guard = 0; guard < 16; ++guard) {
                    std::string nxt = parse_bottleneck(cur, tmp);
                    if (nxt.empty()) break;
                    cur = nxt;
                }
                const Node* cat = nullptr;
                for (int c : ix_.consumers_of_type(cur, "Concat"))
                    if (ix_.up_all(ix_.node(c).inputs) == std::vector<std::string>{cur, c2->output}) cat = &ix_.node(c);
                if (!cat || tmp.bottlenecks.empty()) continue;
                const ConvUnit* c3 = only_unit_reading(cat->outputs[0]);
                if (!c3 || !c3->act()) continue;
                for (const auto& bn : tmp.bottlenecks) blk.bottlenecks.push_back(bn);
                for (const ConvUnit* u : {c1, c2, c3}) {
                    claim(*u);
                    blk.inner_convs.push_back(*u);
                }
                claimed_nodes_.insert(cat->name);
                blk.inner.push_back("C3k");
                return c3->output;
            }
        }
        std::string r = parse_bottleneck(x, blk);
        if (!r.empty() && depth == 0) blk.inner.push_back("Bottleneck");
        return r;
    }

    // Bottleneck: cv1 (activated) reads x, cv2 (activated) reads only cv1; optional + x.
    std::string parse_bottleneck(const std::string& x, C2fBlock& blk) {
        const ConvUnit* u1 = single_unit_reading(x);
        if (!u1 || !u1->act() || claimed_convs_.count(u1->conv)) return "";
        const ConvUnit* u2 = only_unit_reading(u1->output);
        if (!u2 || !u2->act()) return "";
        Bottleneck bn{*u1, *u2, ""};
        std::string next = u2->output;
        if (const Node* add = add_of(x, u2->output)) {
            bn.add = add->name;
            next = add->outputs[0];
        }
        claim(*u1);
        claim(*u2);
        blk.bottlenecks.push_back(bn);
        return next;
    }

    std::vector<int64_t> split_sizes(const Node& s) const {
        if (s.inputs.size() > 1 && !s.inputs[1].empty()) {
            const Tensor* t = ix_.constant(s.inputs[1]);
            if (!t) return {};
            return t->to_int64s();
        }
        return s.attr_ints("split", {});
    }

    // C2f / C3k2 / C2PSA: cv1 -> Split(2, channels) -> inner modules on the second half ->
    // Concat(halves, module outputs...) -> cv2.
    void find_split_blocks(YoloArch& a) {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& s = g_.nodes[i];
            if (s.op_type != "Split" || s.outputs.size() != 2) continue;
            const Shape* xs = shape_of(s.inputs[0]);
            int64_t axis = s.attr_i("axis", 0);
            if (!xs || xs->size() != 4 || (axis != 1 && axis != -3)) continue;
            const ConvUnit* cv1 = unit_producing(s.inputs[0]);
            if (!cv1 || !cv1->act() || claimed_convs_.count(cv1->conv)) continue;
            auto sizes = split_sizes(s);
            if (sizes.empty()) sizes = {cv1->c_out / 2, cv1->c_out - cv1->c_out / 2};
            if (sizes.size() != 2) continue;
            // The Concat reading the first half: its inputs are the halves and the module outputs.
            const Node* cat = nullptr;
            for (int c : ix_.consumers_of_type(s.outputs[0], "Concat")) cat = &ix_.node(c);
            if (!cat || cat->inputs.size() < 2 || ix_.up(cat->inputs[0]) != s.outputs[0]) continue;
            const ConvUnit* cv2 = single_unit_reading(cat->outputs[0]);
            if (!cv2 || !cv2->act()) continue;
            std::vector<std::string> ins = ix_.up_all(cat->inputs);
            C2fBlock b;
            b.cv1 = *cv1;
            b.split = s.name;
            b.split_sizes = sizes;
            b.c = sizes[1];
            // Targets: each module output the Concat lists (C2f, C3k2), or just the last (C2PSA).
            const bool all_halves = ins.size() >= 3 && ins[1] == s.outputs[1];
            std::vector<std::string> targets(ins.begin() + (all_halves ? 2 : 1), ins.end());
            std::string cur = s.outputs[1];
            bool ok = !targets.empty();
            for (const std::string& target : targets) {
                for (int guard = 0; ok && cur != target && guard < 16; ++guard) {
                    std::string nxt = parse_module(cur, b, 0);
                    if (nxt.empty()) ok = false;
                    else cur = nxt;
                }
                ok = ok && cur == target;
                if (!ok) break;
            }
            if (!ok) continue;
            b.concat = cat->name;
            b.cv2 = *cv2;
            b.c_in = cv1->c_in;
            b.c_out = cv2->c_out;
            b.n = all_halves ? int(targets.size()) : int(b.inner.size());
            const bool psa_only = !b.psa.empty() && b.bottlenecks.empty();
            b.kind = !all_halves && psa_only ? BlockKind::C2PSA : BlockKind::C2f;
            claim(b.cv1);
            claim(b.cv2);
            claimed_nodes_.insert(b.concat);
            a.c2f.push_back(b);
        }
    }

    // C3 (YOLOv5u): cv1 and cv2 read x; Bottlenecks after cv1; Concat(m, cv2) -> cv3.
    void find_c3_blocks(YoloArch& a) {
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& cat = g_.nodes[i];
            if (cat.op_type != "Concat" || cat.inputs.size() != 2 || claimed_nodes_.count(cat.name)) continue;
            const ConvUnit* cv2 = unit_producing(cat.inputs[1]);
            if (!cv2 || !cv2->act() || claimed_convs_.count(cv2->conv)) continue;
            for (const ConvUnit* cv1 : units_reading(cv2->input)) {
                if (cv1 == cv2 || !cv1->act() || claimed_convs_.count(cv1->conv)) continue;
                C2fBlock b;
                b.kind = BlockKind::C3;
                std::string cur = cv1->output;
                for (int guard = 0; guard < 16; ++guard) {
                    std::string nxt = parse_bottleneck(cur, b);
                    if (nxt.empty()) break;
                    b.inner.push_back("Bottleneck");
                    cur = nxt;
                }
                if (b.bottlenecks.empty() || ix_.up(cat.inputs[0]) != cur) {
                    for (const auto& bn : b.bottlenecks) {  // not a C3: give the convs back
                        claimed_convs_.erase(bn.cv1.conv);
                        claimed_convs_.erase(bn.cv2.conv);
                    }
                    continue;
                }
                const ConvUnit* cv3 = only_unit_reading(cat.outputs[0]);
                if (!cv3 || !cv3->act()) continue;
                b.cv1 = *cv1;
                b.cv2 = *cv2;
                b.cv3 = *cv3;
                b.concat = cat.name;
                b.c_in = cv1->c_in;
                b.c = cv1->c_out;
                b.c_out = cv3->c_out;
                b.n = int(b.bottlenecks.size());
                for (const ConvUnit* u : {cv1, cv2, cv3}) claim(*u);
                claimed_nodes_.insert(cat.name);
                a.c2f.push_back(b);
                break;
            }
        }
    }

    // Layer indices follow graph order of each module's first node, as in Ultralytics'
    // export (modules are traced in forward order).
    void find_layers_and_neck(YoloArch& a) {
        for (const auto& l : a.head.levels)
            if (!l.concat.empty()) claimed_nodes_.insert(l.concat);
        for (const auto& d : a.head.decode) claimed_nodes_.insert(d);
        for (const auto& d : a.head.post) claimed_nodes_.insert(d);
        std::set<std::string> head_convs;
        for (const auto& L : a.head.levels)
            for (const auto* br : {&L.box, &L.cls, &L.extra})
                for (const auto& u : *br) head_convs.insert(u.conv);
        struct Item {
            int pos;
            int kind;  // 0 conv, 1 block, 2 sppf, 3 neck
            size_t idx;
        };
        std::vector<Item> items;
        // The trunk: what the head levels read. Convs and concats elsewhere (a segment head's
        // mask prototypes, a pose head's keypoint decode) are parts of the head, not layers.
        std::set<int> trunk;
        for (const auto& L : a.head.levels) {
            std::set<int> b = backward_from(L.input);
            trunk.insert(b.begin(), b.end());
        }
        for (size_t i = 0; i < g_.nodes.size(); ++i) {
            const Node& n = g_.nodes[i];
            if (!trunk.count(int(i))) continue;
            if (n.op_type == "Conv" && !claimed_convs_.count(n.name) && by_conv_.count(n.name) && !head_convs.count(n.name)) {
                const ConvUnit& u = by_conv_.at(n.name);
                if (!u.act()) continue;  // plain convs outside blocks: proto/extra internals
                a.convs.push_back({-1, u});
                items.push_back({int(i), 0, a.convs.size() - 1});
            } else if ((n.op_type == "Resize" || n.op_type == "Upsample" || n.op_type == "Concat") &&
                       !claimed_nodes_.count(n.name)) {
                const Shape* s = shape_of(n.outputs[0]);
                if (!s || s->size() != 4) continue;
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

    void find_family_and_scale(YoloArch& a) {
        bool c2psa = false, c3 = false, c2f = false;
        for (const auto& b : a.c2f) {
            c2psa = c2psa || b.kind == BlockKind::C2PSA;
            c3 = c3 || b.kind == BlockKind::C3;
            c2f = c2f || b.kind == BlockKind::C2f;
        }
        if (c2psa) a.family = a.reg_max == 1 ? Family::YOLO26 : Family::YOLO11;
        else if (c3 && !c2f) a.family = Family::YOLOv5u;
        else if (c2f) a.family = Family::YOLOv8;
        // YOLO11 and YOLO26 call their split blocks C3k2 (same skeleton as C2f).
        if (a.family == Family::YOLO11 || a.family == Family::YOLO26)
            for (auto& b : a.c2f)
                if (b.kind == BlockKind::C2f) b.kind = BlockKind::C3k2;
        a.scale = "custom";
        if (a.family == Family::YOLOv8 && a.c2f.size() == 8) {
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
            return;
        }
        // Other families: the stem's width and the first block's depth (Ultralytics' yaml
        // scales: width x 64 for the stem; the first block repeats base x depth).
        if (a.convs.empty() || a.c2f.empty()) return;
        const int64_t stem = a.convs[0].unit.c_out;
        const int n = a.c2f[0].n;
        struct Scale {
            const char* name;
            int64_t stem;
            int n;
        };
        std::vector<Scale> table;
        if (a.family == Family::YOLOv5u) table = {{"n", 16, 1}, {"s", 32, 1}, {"m", 48, 2}, {"l", 64, 3}, {"x", 80, 4}};
        if (a.family == Family::YOLO11 || a.family == Family::YOLO26)
            table = {{"n", 16, 1}, {"s", 32, 1}, {"m", 64, 1}, {"l", 64, 2}, {"x", 96, 2}};
        for (const Scale& s : table)
            if (s.stem == stem && s.n == n) a.scale = s.name;
    }

    const Model& m_;
    const Graph& g_;
    GraphIndex ix_;
    Shape ishape_;
    ShapeInfo info_;
    std::map<std::string, ConvUnit> by_output_;
    std::map<std::string, ConvUnit> by_conv_;
    std::set<std::string> claimed_convs_;
    std::set<std::string> claimed_nodes_;
};

}  // namespace

YoloArch recognize_yolo(const Model& model) {
    try {
        Shape s;
        Model folded = folded_for_recognition(model, &s);
        return Recognizer(folded, s).run();
    } catch (const Error& e) {
        YoloArch a;
        a.recognised = false;
        a.reason = e.what();
        return a;
    }
}

const char* block_kind_name(BlockKind k) {
    switch (k) {
        case BlockKind::C2f: return "C2f";
        case BlockKind::C3k2: return "C3k2";
        case BlockKind::C2PSA: return "C2PSA";
        case BlockKind::C3: return "C3";
    }
    return "?";
}

const char* task_name(Task t) {
    switch (t) {
        case Task::Detect: return "detect";
        case Task::Segment: return "segment";
        case Task::Pose: return "pose";
    }
    return "?";
}

const char* family_name(Family f) {
    switch (f) {
        case Family::YOLOv5u: return "YOLOv5u";
        case Family::YOLOv8: return "YOLOv8";
        case Family::YOLO11: return "YOLO11";
        case Family::YOLO26: return "YOLO26";
        case Family::Unknown: break;
    }
    return "YOLO";
}

std::string YoloArch::name() const {
    std::string f = family_name(family);
    if (scale == "custom" || scale.empty()) return f + " (custom)";
    if (family == Family::YOLOv5u) return "YOLOv5" + scale + "u";
    return f + scale;
}

const char* conv_role_name(ConvRole r) {
    switch (r) {
        case ConvRole::Layer: return "conv";
        case ConvRole::C2fCv1: return "block.cv1";
        case ConvRole::C2fCv2: return "block.cv2";
        case ConvRole::BottleneckCv1: return "bottleneck.cv1";
        case ConvRole::BottleneckCv2: return "bottleneck.cv2";
        case ConvRole::BlockInner: return "block.inner";
        case ConvRole::SppfCv1: return "sppf.cv1";
        case ConvRole::SppfCv2: return "sppf.cv2";
        case ConvRole::DetectBox: return "detect.box";
        case ConvRole::DetectCls: return "detect.cls";
        case ConvRole::DetectExtra: return "detect.extra";
        case ConvRole::Dfl: return "detect.dfl";
        case ConvRole::Unknown: break;
    }
    return "unknown";
}

ConvPlace locate_conv(const YoloArch& a, const std::string& conv) {
    for (const auto& l : a.convs)
        if (l.unit.conv == conv) return {ConvRole::Layer, l.index, -1, -1};
    for (const auto& b : a.c2f) {
        if (b.cv1.conv == conv) return {ConvRole::C2fCv1, b.index, -1, -1};
        if (b.kind == BlockKind::C3 && b.cv2.conv == conv) return {ConvRole::C2fCv1, b.index, -1, -1};
        if ((b.kind == BlockKind::C3 ? b.cv3.conv : b.cv2.conv) == conv) return {ConvRole::C2fCv2, b.index, -1, -1};
        for (size_t i = 0; i < b.bottlenecks.size(); ++i) {
            if (b.bottlenecks[i].cv1.conv == conv) return {ConvRole::BottleneckCv1, b.index, int(i), -1};
            if (b.bottlenecks[i].cv2.conv == conv) return {ConvRole::BottleneckCv2, b.index, int(i), -1};
        }
        for (const auto& u : b.inner_convs)
            if (u.conv == conv) return {ConvRole::BlockInner, b.index, -1, -1};
        for (const auto& p : b.psa)
            for (const ConvUnit* u : {&p.qkv, &p.pe, &p.proj, &p.ffn1, &p.ffn2})
                if (u->conv == conv) return {ConvRole::BlockInner, b.index, -1, -1};
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
        for (size_t p = 0; p < L.extra.size(); ++p)
            if (L.extra[p].conv == conv) return {ConvRole::DetectExtra, a.head.index, int(l), int(p)};
    }
    if (a.head.dfl_conv == conv) return {ConvRole::Dfl, a.head.index, -1, -1};
    return {};
}

}  // namespace yoloc
