// Channel dependency groups by propagating channel provenance through the graph.
#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "core/error.h"
#include "ir/op_table.h"
#include "ir/shape_inference.h"
#include "prune/prune.h"
#include "prune/prune_internal.h"
#include "yolo/recognize.h"

namespace yoloc {

namespace prune_detail {

std::map<std::string, Shape> concrete_input_shapes(const Model& m) {
    std::map<std::string, Shape> shapes;
    for (const auto& in : m.graph.inputs) {
        if (m.graph.is_initializer(in.name)) continue;
        Shape s;
        for (size_t k = 0; k < in.shape.size(); ++k) {
            // Symbolic dims: batch 1, 3 channels, 640 pixels (what every YOLOv8 export accepts).
            s.push_back(in.shape[k].known() ? in.shape[k].value : (k == 0 ? 1 : k == 1 ? 3 : 640));
        }
        shapes[in.name] = s;
    }
    return shapes;
}

}  // namespace prune_detail

namespace {

struct UnionFind {
    std::vector<int> p;
    int add() {
        p.push_back(int(p.size()));
        return p.back();
    }
    int find(int x) {
        while (p[size_t(x)] != x) x = p[size_t(x)] = p[size_t(p[size_t(x)])];
        return x;
    }
    void unite(int a, int b) {
        a = find(a);
        b = find(b);
        if (a != b) p[size_t(std::max(a, b))] = std::min(a, b);
    }
};

// Channel axis 1 of a 4-D value (axis attributes may be negative).
bool axis_is_channel(const Node& n, int64_t dflt, size_t rank) {
    int64_t a = n.attr_i("axis", dflt);
    if (a < 0) a += int64_t(rank);
    return a == 1;
}

std::string role_label(const YoloArch& arch, const std::string& conv) {
    ConvPlace p = locate_conv(arch, conv);
    std::string L = p.layer >= 0 ? cat("L", p.layer, " ") : std::string();
    std::string block = "C2f";
    for (const auto& b : arch.c2f)
        if (b.index == p.layer) block = block_kind_name(b.kind);
    switch (p.role) {
        case ConvRole::Layer: return L + "Conv";
        case ConvRole::C2fCv1: return L + block + " cv1";
        case ConvRole::C2fCv2: return L + block + " cv2";
        case ConvRole::BottleneckCv1: return cat(L, block, " m.", p.sub, ".cv1");
        case ConvRole::BottleneckCv2: return cat(L, block, " m.", p.sub, ".cv2");
        case ConvRole::BlockInner: return cat(L, block, " inner");
        case ConvRole::SppfCv1: return L + "SPPF cv1";
        case ConvRole::SppfCv2: return L + "SPPF cv2";
        case ConvRole::DetectBox: return cat(L, "Detect box", p.sub, ".", p.position);
        case ConvRole::DetectCls: return cat(L, "Detect cls", p.sub, ".", p.position);
        case ConvRole::DetectExtra: return cat(L, "Detect extra", p.sub, ".", p.position);
        case ConvRole::Dfl: return "DFL";
        case ConvRole::Unknown: break;
    }
    return conv;
}

}  // namespace

ChannelAnalysis analyze_channels(const Model& model) {
    using prune_detail::concrete_input_shapes;
    const Graph& g = model.graph;
    ShapeInfo info = infer_shapes(model, concrete_input_shapes(model));
    auto channels_of = [&](const std::string& v) -> int64_t {
        auto it = info.values.find(v);
        if (it == info.values.end() || it->second.shape.size() < 2) return -1;
        return it->second.shape[1];
    };

    // Atoms: one per output channel of every conv with constant 4-D weights and group 1.
    struct ConvAtoms {
        int node = -1;
        int64_t base = 0, c_out = 0;
    };
    std::map<std::string, ConvAtoms> conv_atoms;  // by conv node name
    std::vector<std::string> atom_conv;           // atom -> conv name
    std::vector<int64_t> atom_ch;                 // atom -> channel
    std::vector<char> pinned;
    std::vector<std::string> pin_reason;
    std::vector<char> cut_before;  // a Split boundary falls just before this atom
    std::vector<std::vector<std::pair<std::string, int64_t>>> atom_uses;  // (consumer conv, input channel)
    std::vector<std::pair<int, int>> ties;                                 // element-wise pairs

    auto pin = [&](int a, const std::string& why) {
        if (a < 0 || pinned[size_t(a)]) return;
        pinned[size_t(a)] = 1;
        pin_reason[size_t(a)] = why;
    };

    using Map = std::vector<int>;  // value channel -> atom (-1: no atom, e.g. the image)
    std::map<std::string, Map> maps;
    auto map_of = [&](const std::string& v) -> const Map* {
        auto it = maps.find(v);
        return it == maps.end() ? nullptr : &it->second;
    };
    auto pin_all = [&](const std::string& v, const std::string& why) {
        if (const Map* m = map_of(v))
            for (int a : *m) pin(a, why);
    };

    std::vector<ChannelAnalysis::SplitInfo> split_atoms_info;
    std::vector<std::vector<Map>> split_maps;

    for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
        const Node& n = g.nodes[ni];
        // How channels flow through the op comes from its record in the op table.
        const OpSchema* schema = find_op(n.op_type, n.domain);
        const ChannelFlow flow = schema ? schema->channels : ChannelFlow::Pin;
        const Map* m0 = n.inputs.empty() || n.inputs[0].empty() ? nullptr : map_of(n.inputs[0]);

        if (flow == ChannelFlow::Conv && n.op_type == "Conv") {
            int64_t group = n.attr_i("group", 1);
            const Tensor* w = n.inputs.size() > 1 ? g.find_initializer(n.inputs[1]) : nullptr;
            bool bias_ok = n.inputs.size() < 3 || n.inputs[2].empty() || g.is_initializer(n.inputs[2]);
            bool plain = w && w->rank() == 4 && w->dtype() == DType::Float32 && group == 1 && bias_ok;
            if (m0) {
                if (plain) {
                    for (size_t i = 0; i < m0->size(); ++i)
                        if ((*m0)[i] >= 0) atom_uses[size_t((*m0)[i])].push_back({n.name, int64_t(i)});
                } else {
                    pin_all(n.inputs[0], cat("read by ", n.label(), " (grouped or non-constant weights)"));
                }
            }
            if (plain && !n.outputs.empty()) {
                ConvAtoms ca;
                ca.node = int(ni);
                ca.base = int64_t(atom_conv.size());
                ca.c_out = w->dim(0);
                conv_atoms[n.name] = ca;
                Map out(size_t(ca.c_out));
                for (int64_t c = 0; c < ca.c_out; ++c) {
                    out[size_t(c)] = int(atom_conv.size());
                    atom_conv.push_back(n.name);
                    atom_ch.push_back(c);
                    pinned.push_back(0);
                    pin_reason.emplace_back();
                    cut_before.push_back(0);
                    atom_uses.emplace_back();
                }
                maps[n.outputs[0]] = out;
            }
            continue;
        }
        if (flow == ChannelFlow::PassThrough && m0 && !n.outputs.empty()) {
            // Channel-preserving unless the op changes the channel count (a Resize whose
            // scales touch the channel axis).
            int64_t c_in = channels_of(n.inputs[0]), c_out = channels_of(n.outputs[0]);
            if (c_in == c_out && c_in == int64_t(m0->size())) {
                maps[n.outputs[0]] = *m0;
                continue;
            }
        }
        if (flow == ChannelFlow::Elementwise && n.inputs.size() == 2) {
            const Map* a = map_of(n.inputs[0]);
            const Map* b = map_of(n.inputs[1]);
            auto scalar_const = [&](const std::string& v) {
                const Tensor* t = g.find_initializer(v);
                return t && t->numel() == 1;
            };
            if (a && b && a->size() == b->size()) {
                for (size_t i = 0; i < a->size(); ++i) {
                    if ((*a)[i] >= 0 && (*b)[i] >= 0)
                        ties.push_back({(*a)[i], (*b)[i]});
                    else {  // one side has no atom there: the other cannot lose that channel
                        pin((*a)[i], cat("element-wise with a fixed channel at ", n.label()));
                        pin((*b)[i], cat("element-wise with a fixed channel at ", n.label()));
                    }
                }
                maps[n.outputs[0]] = *a;
                continue;
            }
            if (a && !b && scalar_const(n.inputs[1])) {
                maps[n.outputs[0]] = *a;
                continue;
            }
            if (b && !a && scalar_const(n.inputs[0])) {
                maps[n.outputs[0]] = *b;
                continue;
            }
        }
        if (flow == ChannelFlow::Split && m0 && axis_is_channel(n, 0, info.at(n.inputs[0]).shape.size())) {
            ChannelAnalysis::SplitInfo si;
            si.node = n.name;
            std::vector<Map> outs;
            int64_t off = 0;
            bool ok = true;
            for (const auto& o : n.outputs) {
                int64_t c = channels_of(o);
                if (o.empty() || c < 0 || off + c > int64_t(m0->size())) {
                    ok = false;
                    break;
                }
                Map part(m0->begin() + off, m0->begin() + off + c);
                // The boundary cuts the producer's channels into separately prunable segments.
                if (off > 0 && part[0] >= 0) cut_before[size_t(part[0])] = 1;
                if (off + c < int64_t(m0->size()) && (*m0)[size_t(off + c)] >= 0)
                    cut_before[size_t((*m0)[size_t(off + c)])] = 1;
                outs.push_back(part);
                off += c;
            }
            if (ok) {
                for (size_t k = 0; k < outs.size(); ++k) maps[n.outputs[k]] = outs[k];
                split_atoms_info.push_back(si);
                split_maps.push_back(outs);
                continue;
            }
        }
        if (flow == ChannelFlow::Concat && !n.outputs.empty() && info.values.count(n.outputs[0]) &&
            axis_is_channel(n, 0, info.at(n.outputs[0]).shape.size())) {
            bool any = false;
            for (const auto& in : n.inputs) any = any || map_of(in);
            if (any) {
                Map out;
                bool ok = true;
                for (const auto& in : n.inputs) {
                    if (const Map* m = map_of(in)) {
                        out.insert(out.end(), m->begin(), m->end());
                    } else {
                        int64_t c = channels_of(in);
                        if (c < 0) ok = false;
                        out.insert(out.end(), size_t(std::max<int64_t>(c, 0)), -1);
                    }
                }
                if (ok) {
                    maps[n.outputs[0]] = out;
                    continue;
                }
            }
        }
        // Anything else reads channels in a way we do not rewrite: what reaches it stays.
        for (const auto& in : n.inputs)
            if (!in.empty()) pin_all(in, cat("reaches ", n.label()));
    }
    for (const auto& o : g.outputs) pin_all(o.name, cat("reaches graph output ", o.name));

    YOLOC_CHECK(!atom_conv.empty(), "no conv with constant weights to prune");

    // The recogniser labels convs; its Detect-head outputs and DFL are never pruned even if
    // the graph analysis above were to allow it (they define the output layout).
    YoloArch arch = recognize_yolo(model);
    ChannelAnalysis an;
    an.recognised = arch.recognised;
    an.num_c2f = int(arch.c2f.size());
    if (arch.recognised) {
        std::vector<std::string> fixed{arch.head.dfl_conv};
        for (const auto& L : arch.head.levels)
            for (const auto* br : {&L.box, &L.cls, &L.extra})
                if (!br->empty()) fixed.push_back(br->back().conv);
        for (const auto& c : fixed) {
            auto it = conv_atoms.find(c);
            if (it == conv_atoms.end()) continue;
            for (int64_t k = 0; k < it->second.c_out; ++k) pin(int(it->second.base + k), "Detect head output conv");
        }
    }

    // Segments: each conv's channels between Split cuts.
    UnionFind uf;
    struct Seg {
        std::string conv;
        int64_t begin, size;
    };
    std::vector<Seg> segs;
    std::vector<int> atom_seg(atom_conv.size(), -1);
    for (const auto& kv : conv_atoms) {
        const ConvAtoms& ca = kv.second;
        int64_t start = 0;
        for (int64_t c = 1; c <= ca.c_out; ++c) {
            if (c == ca.c_out || cut_before[size_t(ca.base + c)]) {
                int id = uf.add();
                segs.push_back({kv.first, start, c - start});
                for (int64_t k = start; k < c; ++k) atom_seg[size_t(ca.base + k)] = id;
                start = c;
            }
        }
    }
    std::vector<char> seg_pinned(segs.size(), 0);
    std::vector<std::string> seg_reason(segs.size());
    auto pin_seg = [&](int s, const std::string& why) {
        if (!seg_pinned[size_t(s)]) {
            seg_pinned[size_t(s)] = 1;
            seg_reason[size_t(s)] = why;
        }
    };
    for (size_t a = 0; a < atom_conv.size(); ++a)
        if (pinned[a]) pin_seg(atom_seg[a], pin_reason[a]);
    auto offset_in_seg = [&](int a) { return atom_ch[size_t(a)] - segs[size_t(atom_seg[size_t(a)])].begin; };
    for (const auto& t : ties) {
        int sa = atom_seg[size_t(t.first)], sb = atom_seg[size_t(t.second)];
        if (sa == sb && t.first == t.second) continue;
        if (segs[size_t(sa)].size == segs[size_t(sb)].size && offset_in_seg(t.first) == offset_in_seg(t.second)) {
            uf.unite(sa, sb);
        } else {  // element-wise between misaligned slices: keep both whole
            pin_seg(sa, "element-wise op between misaligned channel slices");
            pin_seg(sb, "element-wise op between misaligned channel slices");
        }
    }

    // Groups = classes of segments.
    std::map<int, int> root_to_group;
    for (size_t s = 0; s < segs.size(); ++s) {
        int r = uf.find(int(s));
        auto it = root_to_group.find(r);
        if (it == root_to_group.end()) {
            it = root_to_group.emplace(r, int(an.groups.size())).first;
            ChannelGroup grp;
            grp.id = int(an.groups.size());
            grp.size = segs[s].size;
            an.groups.push_back(grp);
        }
        ChannelGroup& grp = an.groups[size_t(it->second)];
        grp.producers.push_back({segs[s].conv, segs[s].begin, segs[s].size});
        if (seg_pinned[s] && grp.prunable) {
            grp.prunable = false;
            grp.pinned_reason = seg_reason[s];
        }
    }
    std::vector<int> seg_group(segs.size());
    for (size_t s = 0; s < segs.size(); ++s) seg_group[s] = root_to_group[uf.find(int(s))];
    {
        // Number groups in graph order of their first producer (then channel offset), so
        // reports read from the stem to the head.
        auto first = [&](const ChannelGroup& grp) {
            std::pair<int, int64_t> best{1 << 30, 0};
            for (const auto& p : grp.producers) best = std::min(best, {conv_atoms[p.conv].node, p.begin});
            return best;
        };
        std::vector<int> order(an.groups.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return first(an.groups[size_t(a)]) < first(an.groups[size_t(b)]); });
        std::vector<int> remap(order.size());
        std::vector<ChannelGroup> sorted;
        for (size_t k = 0; k < order.size(); ++k) {
            remap[size_t(order[k])] = int(k);
            sorted.push_back(an.groups[size_t(order[k])]);
            sorted.back().id = int(k);
        }
        an.groups = sorted;
        for (auto& sg : seg_group) sg = remap[size_t(sg)];
    }

    // Uses, merged into contiguous ranges, and Split maps in group terms.
    for (size_t s = 0; s < segs.size(); ++s) {
        ChannelGroup& grp = an.groups[size_t(seg_group[s])];
        const ConvAtoms& ca = conv_atoms[segs[s].conv];
        for (int64_t k = 0; k < segs[s].size; ++k) {
            int a = int(ca.base + segs[s].begin + k);
            for (const auto& u : atom_uses[size_t(a)]) {
                bool merged = false;
                for (auto& e : grp.uses)
                    if (e.conv == u.first && e.in_begin + e.size == u.second && e.group_begin + e.size == k) {
                        ++e.size;
                        merged = true;
                        break;
                    }
                if (!merged) grp.uses.push_back({u.first, u.second, 1, k});
            }
        }
    }
    // A use may be reached through two tied producers (e.g. the residual Add's operands):
    // the same (conv, input channel) then appears twice; keep one.
    for (auto& grp : an.groups) {
        std::sort(grp.uses.begin(), grp.uses.end(), [](const ChannelUse& a, const ChannelUse& b) {
            return std::tie(a.conv, a.in_begin, a.group_begin, a.size) < std::tie(b.conv, b.in_begin, b.group_begin, b.size);
        });
        grp.uses.erase(std::unique(grp.uses.begin(), grp.uses.end(),
                                   [](const ChannelUse& a, const ChannelUse& b) {
                                       return a.conv == b.conv && a.in_begin == b.in_begin && a.size == b.size &&
                                              a.group_begin == b.group_begin;
                                   }),
                       grp.uses.end());
    }
    for (size_t k = 0; k < split_atoms_info.size(); ++k) {
        auto si = split_atoms_info[k];
        for (const Map& m : split_maps[k]) {
            std::vector<std::pair<int, int64_t>> o;
            for (int a : m)
                o.push_back(a < 0 ? std::make_pair(-1, int64_t(-1))
                                  : std::make_pair(seg_group[size_t(atom_seg[size_t(a)])], offset_in_seg(a)));
            si.outputs.push_back(o);
        }
        an.splits.push_back(si);
    }

    // Labels and scopes from the recogniser.
    int sppf_layer = arch.recognised && !arch.sppf.empty() ? arch.sppf[0].index : -1;
    for (auto& grp : an.groups) {
        std::sort(grp.producers.begin(), grp.producers.end(), [&](const ChannelSegment& a, const ChannelSegment& b) {
            return conv_atoms[a.conv].node < conv_atoms[b.conv].node;
        });
        bool c2f = arch.recognised, bb = arch.recognised, neck = arch.recognised;
        std::string label;
        for (const auto& p : grp.producers) {
            const ConvAtoms& ca = conv_atoms[p.conv];
            std::string part = arch.recognised ? role_label(arch, p.conv) : p.conv;
            if (p.size != ca.c_out) part += cat("[", p.begin, ":", p.begin + p.size, "]");
            label += (label.empty() ? "" : " + ") + part;
            ConvPlace pl = arch.recognised ? locate_conv(arch, p.conv) : ConvPlace{};
            if (grp.layer < 0) grp.layer = pl.layer;
            c2f = c2f && pl.role == ConvRole::BottleneckCv1;
            bool is_head = pl.role == ConvRole::DetectBox || pl.role == ConvRole::DetectCls ||
                           pl.role == ConvRole::DetectExtra || pl.role == ConvRole::Dfl;
            bb = bb && pl.layer >= 0 && pl.layer <= sppf_layer && !is_head;
            neck = neck && pl.layer > sppf_layer && !is_head;
        }
        grp.label = label;
        grp.in_c2f = c2f;
        grp.in_backbone = bb;
        grp.in_neck = neck;
        if (grp.prunable && grp.uses.empty()) {
            // Nobody reads these channels as conv input; removing them changes nothing downstream
            // we could rewrite, so leave them (they are dead or reach a pinned op).
            grp.prunable = false;
            grp.pinned_reason = "no conv reads it";
        }
    }
    return an;
}

}  // namespace yoloc
