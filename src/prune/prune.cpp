// Importance, plans, channel removal and the prune pipeline.
#include "prune/prune.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "ir/cost.h"
#include "ir/shape_inference.h"
#include "prune/prune_internal.h"
#include "quant/calibrate.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"

namespace yoloc {

using prune_detail::concrete_input_shapes;

PruneScope parse_scope(const std::string& s) {
    // "c2f" is YOLOv8's name for the same channels (its bottlenecks live in C2f blocks).
    if (s == "bottleneck" || s == "c2f") return PruneScope::Bottleneck;
    if (s == "backbone") return PruneScope::Backbone;
    if (s == "neck") return PruneScope::Neck;
    if (s == "all") return PruneScope::All;
    fail("unknown scope '", s, "' (expected bottleneck (or c2f), backbone, neck or all)");
}

Criterion parse_criterion(const std::string& s) {
    if (s == "l1") return Criterion::L1;
    if (s == "l2") return Criterion::L2;
    if (s == "activation") return Criterion::Activation;
    if (s == "recon-error") return Criterion::ReconError;
    fail("unknown criterion '", s, "' (expected l1, l2, activation or recon-error)");
}

const char* scope_name(PruneScope s) {
    switch (s) {
        case PruneScope::Bottleneck: return "bottleneck";
        case PruneScope::Backbone: return "backbone";
        case PruneScope::Neck: return "neck";
        default: return "all";
    }
}

void check_scope(const ChannelAnalysis& an, PruneScope scope) {
    if (scope == PruneScope::All) return;
    YOLOC_CHECK(an.recognised, "--scope ", scope_name(scope),
                " needs a graph recognised as a YOLO detector (YOLOv5u, YOLOv8, YOLO11, YOLO26); this one is not, so "
                "it has no block with Bottlenecks to thin (use --scope all for other graphs)");
    if (scope == PruneScope::Bottleneck)
        YOLOC_CHECK(an.num_bottleneck_blocks > 0,
                    "--scope bottleneck: the graph has no block with Bottlenecks (C2f, C3, C3k2); use --scope all");
}

const char* criterion_name(Criterion c) {
    switch (c) {
        case Criterion::L1: return "l1";
        case Criterion::L2: return "l2";
        case Criterion::ReconError: return "recon-error";
        default: return "activation";
    }
}

bool group_in_scope(const ChannelGroup& g, PruneScope s) {
    switch (s) {
        case PruneScope::Bottleneck: return g.in_bottleneck;
        case PruneScope::Backbone: return g.in_backbone;
        case PruneScope::Neck: return g.in_neck;
        default: return true;
    }
}

namespace {

const Node* find_node(const Graph& g, const std::string& name) {
    for (const auto& n : g.nodes)
        if (n.name == name) return &n;
    return nullptr;
}

}  // namespace


namespace {

// Inverse of a small dense n x n matrix by Gauss-Jordan with partial pivoting.
std::vector<double> solve_inverse(std::vector<double> A, int64_t n) {
    std::vector<double> I(size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) I[size_t(i * n + i)] = 1.0;
    for (int64_t c = 0; c < n; ++c) {
        int64_t piv = c;
        for (int64_t r = c + 1; r < n; ++r)
            if (std::fabs(A[size_t(r * n + c)]) > std::fabs(A[size_t(piv * n + c)])) piv = r;
        if (piv != c)
            for (int64_t k = 0; k < n; ++k) {
                std::swap(A[size_t(c * n + k)], A[size_t(piv * n + k)]);
                std::swap(I[size_t(c * n + k)], I[size_t(piv * n + k)]);
            }
        double d = A[size_t(c * n + c)];
        if (std::fabs(d) < 1e-300) d = 1e-300;
        for (int64_t k = 0; k < n; ++k) {
            A[size_t(c * n + k)] /= d;
            I[size_t(c * n + k)] /= d;
        }
        for (int64_t r = 0; r < n; ++r) {
            if (r == c) continue;
            double f = A[size_t(r * n + c)];
            if (f == 0) continue;
            for (int64_t k = 0; k < n; ++k) {
                A[size_t(r * n + k)] -= f * A[size_t(c * n + k)];
                I[size_t(r * n + k)] -= f * I[size_t(c * n + k)];
            }
        }
    }
    return I;
}

}  // namespace

namespace {

// Greedy backward elimination by least-squares reconstruction error (the selection step
// of He et al. 2017, greedy instead of LASSO). For each consumer conv u of the groups in
// scope: G_u = X^T X over its full input patches (+1 bias feature) on calibration images,
// Ginv = (G_u + ridge)^-1 and B = the exact solution (the conv's own weights). Removing
// input channel block S with refit raises the residual by sum_o B_S^T (Ginv_SS)^-1 B_S;
// the cheapest channel of the group (summed over its uses) goes first, Ginv and B are
// downdated, and so on. A channel's score is the step at which it was removed, so the
// top-k by score is exactly the greedy choice for any k.
Importance recon_error_scores(const Model& model, const ChannelAnalysis& an, const CalibSource& calib, int threads,
                              PruneScope scope) {
    const Graph& g = model.graph;
    struct Cons {
        const Node* conv = nullptr;
        const Tensor* w = nullptr;
        int64_t C = 0, K = 0, O = 0, F = 0;
        std::vector<double> G, Ginv, B;  // F x F, F x F, F x O
    };
    std::map<std::string, Cons> cons;
    std::vector<std::string> taps;
    for (const auto& grp : an.groups) {
        if (!grp.prunable || !group_in_scope(grp, scope)) continue;
        for (const auto& u : grp.uses) {
            if (cons.count(u.conv)) continue;
            Cons c;
            c.conv = find_node(g, u.conv);
            YOLOC_CHECK(c.conv, "conv ", u.conv, " not found");
            c.w = g.find_initializer(c.conv->inputs[1]);
            c.C = c.w->dim(1);
            c.K = c.w->dim(2) * c.w->dim(3);
            c.O = c.w->dim(0);
            c.F = c.C * c.K + 1;
            YOLOC_CHECK(c.F <= 4097, "criterion recon-error: conv ", u.conv, " has ", c.F,
                        " input features, too many for the greedy solve (use --criterion activation)");
            c.G.assign(size_t(c.F * c.F), 0.0);
            cons[u.conv] = c;
            if (std::find(taps.begin(), taps.end(), c.conv->inputs[0]) == taps.end()) taps.push_back(c.conv->inputs[0]);
        }
    }
    prune_detail::run_taps(model, taps, calib, threads, [&](int img, const TensorMap& out) {
        uint64_t seed = uint64_t(img) * 104729u + 3u;
        for (auto& kv : cons) {
            Cons& c = kv.second;
            const Tensor& X = out.at(c.conv->inputs[0]);
            int64_t H = X.dim(2), W = X.dim(3), kw = c.w->dim(3), kh = c.w->dim(2);
            auto st = c.conv->attr_ints("strides", {1, 1});
            auto pd = c.conv->attr_ints("pads", {0, 0, 0, 0});
            auto dl = c.conv->attr_ints("dilations", {1, 1});
            int64_t Ho = (H + pd[0] + pd[2] - dl[0] * (kh - 1) - 1) / st[0] + 1;
            int64_t Wo = (W + pd[1] + pd[3] - dl[1] * (kw - 1) - 1) / st[1] + 1;
            std::mt19937_64 rng(seed++);
            std::uniform_int_distribution<int64_t> pos(0, Ho * Wo - 1);
            const float* x = X.data<float>();
            const int P = 96;
            std::vector<double> rows(size_t(P * c.F));
            for (int p = 0; p < P; ++p) {
                int64_t q = pos(rng), oy = q / Wo, ox = q % Wo;
                double* r = &rows[size_t(p * c.F)];
                for (int64_t ci = 0; ci < c.C; ++ci)
                    for (int64_t k = 0; k < c.K; ++k) {
                        int64_t iy = oy * st[0] - pd[0] + (k / kw) * dl[0], ix = ox * st[1] - pd[1] + (k % kw) * dl[1];
                        r[ci * c.K + k] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[(ci * H + iy) * W + ix] : 0.0;
                    }
                r[c.F - 1] = 1.0;
            }
            for (int64_t i = 0; i < c.F; ++i) {
                double* gr = &c.G[size_t(i * c.F)];
                for (int p = 0; p < P; ++p) {
                    const double* r = &rows[size_t(p * c.F)];
                    double ri = r[i];
                    if (ri == 0) continue;
                    for (int64_t j = i; j < c.F; ++j) gr[j] += ri * r[j];
                }
            }
        }
    });
    // Ginv by Gauss-Jordan on the (ridged) symmetric G; B = [W; b] as F x O.
    for (auto& kv : cons) {
        Cons& c = kv.second;
        int64_t F = c.F;
        std::vector<double> A(size_t(F * F));
        double md = 0;
        for (int64_t i = 0; i + 1 < F; ++i) md += c.G[size_t(i * F + i)];
        md = md > 0 ? md / double(F - 1) : 1.0;
        for (int64_t i = 0; i < F; ++i)
            for (int64_t j = i; j < F; ++j) A[size_t(i * F + j)] = A[size_t(j * F + i)] = c.G[size_t(i * F + j)];
        for (int64_t i = 0; i < F; ++i) A[size_t(i * F + i)] += (i + 1 < F ? 1e-3 : 1e-9) * md;
        c.Ginv = solve_inverse(A, F);
        c.B.assign(size_t(F * c.O), 0.0);
        const float* w = c.w->data<float>();
        for (int64_t o = 0; o < c.O; ++o)
            for (int64_t f = 0; f + 1 < F; ++f) c.B[size_t(f * c.O + o)] = w[o * (F - 1) + f];
        std::vector<double>().swap(c.G);
    }
    Importance imp;
    for (const auto& grp : an.groups) {
        if (!grp.prunable || !group_in_scope(grp, scope)) continue;
        std::vector<double> score(size_t(grp.size), 0.0);
        std::vector<char> gone(size_t(grp.size), 0);
        for (int64_t step = 0; step < grp.size; ++step) {
            int64_t best = -1;
            double best_cost = 0;
            for (int64_t j = 0; j < grp.size; ++j) {
                if (gone[size_t(j)]) continue;
                double cost = 0;
                for (const auto& u : grp.uses) {
                    if (j < u.group_begin || j >= u.group_begin + u.size) continue;
                    Cons& c = cons[u.conv];
                    int64_t s0 = (u.in_begin + j - u.group_begin) * c.K;
                    std::vector<double> Ms(size_t(c.K * c.K));
                    for (int64_t a = 0; a < c.K; ++a)
                        for (int64_t b = 0; b < c.K; ++b) Ms[size_t(a * c.K + b)] = c.Ginv[size_t((s0 + a) * c.F + s0 + b)];
                    std::vector<double> Mi = solve_inverse(Ms, c.K);
                    for (int64_t o = 0; o < c.O; ++o)
                        for (int64_t a = 0; a < c.K; ++a) {
                            double ba = c.B[size_t((s0 + a) * c.O + o)];
                            for (int64_t b = 0; b < c.K; ++b)
                                cost += ba * Mi[size_t(a * c.K + b)] * c.B[size_t((s0 + b) * c.O + o)];
                        }
                }
                if (best < 0 || cost < best_cost) {
                    best = j;
                    best_cost = cost;
                }
            }
            gone[size_t(best)] = 1;
            score[size_t(best)] = double(step);
            // Downdate every consumer reading the removed channel.
            for (const auto& u : grp.uses) {
                if (best < u.group_begin || best >= u.group_begin + u.size) continue;
                Cons& c = cons[u.conv];
                int64_t F = c.F, K = c.K, s0 = (u.in_begin + best - u.group_begin) * K;
                std::vector<double> Ms(size_t(K * K));
                for (int64_t a = 0; a < K; ++a)
                    for (int64_t b = 0; b < K; ++b) Ms[size_t(a * K + b)] = c.Ginv[size_t((s0 + a) * F + s0 + b)];
                std::vector<double> Mi = solve_inverse(Ms, K);
                // T = Ginv[:, S] * Mi  (F x K)
                std::vector<double> T(size_t(F * K), 0.0);
                for (int64_t i = 0; i < F; ++i)
                    for (int64_t a = 0; a < K; ++a) {
                        double gi = c.Ginv[size_t(i * F + s0 + a)];
                        for (int64_t b = 0; b < K; ++b) T[size_t(i * K + b)] += gi * Mi[size_t(a * K + b)];
                    }
                std::vector<double> GS(size_t(K * F)), BS(size_t(K * c.O));
                for (int64_t a = 0; a < K; ++a) {
                    std::copy(&c.Ginv[size_t((s0 + a) * F)], &c.Ginv[size_t((s0 + a) * F)] + F, &GS[size_t(a * F)]);
                    std::copy(&c.B[size_t((s0 + a) * c.O)], &c.B[size_t((s0 + a) * c.O)] + c.O, &BS[size_t(a * c.O)]);
                }
                for (int64_t i = 0; i < F; ++i)
                    for (int64_t a = 0; a < K; ++a) {
                        double t = T[size_t(i * K + a)];
                        if (t == 0) continue;
                        double* gr = &c.Ginv[size_t(i * F)];
                        const double* gs = &GS[size_t(a * F)];
                        for (int64_t j = 0; j < F; ++j) gr[j] -= t * gs[j];
                        double* br = &c.B[size_t(i * c.O)];
                        const double* bs = &BS[size_t(a * c.O)];
                        for (int64_t o = 0; o < c.O; ++o) br[o] -= t * bs[o];
                    }
                // The removed block is now exactly zero in B; keep its Ginv block invertible
                // (it is never chosen again, but the group's other uses may share the conv).
                for (int64_t a = 0; a < K; ++a) c.Ginv[size_t((s0 + a) * F + s0 + a)] = 1.0;
            }
        }
        imp[grp.id] = score;
    }
    return imp;
}

}  // namespace

Importance channel_importance(const Model& model, const ChannelAnalysis& an, Criterion c, const CalibSource* calib,
                              int threads, PruneScope scope) {
    const Graph& g = model.graph;
    Importance imp;
    if (c == Criterion::ReconError) {
        YOLOC_CHECK(calib && calib->count > 0, "criterion 'recon-error' needs calibration images (--calib DIR)");
        return recon_error_scores(model, an, *calib, threads, scope);
    }
    if (c == Criterion::Activation) {
        YOLOC_CHECK(calib && calib->count > 0, "criterion 'activation' needs calibration images (--calib DIR)");
        // Each channel's share of its consumers' outputs: the mean squared contribution
        // sum_o (W[o, i] * x_i)^2 at sampled output positions, i.e. the output error its
        // removal alone would cause before reconstruction. Mean |activation| ignores how
        // strongly the consumer reads a channel (it left a larger refit error on yolov8n).
        struct UseAcc {
            const Node* conv = nullptr;
            const Tensor* w = nullptr;
            std::vector<double> energy;  // per input channel
        };
        std::map<std::string, UseAcc> accs;
        std::vector<std::string> taps;
        for (const auto& grp : an.groups) {
            if (!grp.prunable || !group_in_scope(grp, scope)) continue;
            for (const auto& u : grp.uses) {
                if (accs.count(u.conv)) continue;
                UseAcc a;
                a.conv = find_node(g, u.conv);
                YOLOC_CHECK(a.conv, "conv ", u.conv, " not found");
                a.w = g.find_initializer(a.conv->inputs[1]);
                a.energy.assign(size_t(a.w->dim(1)), 0.0);
                accs[u.conv] = a;
                if (std::find(taps.begin(), taps.end(), a.conv->inputs[0]) == taps.end())
                    taps.push_back(a.conv->inputs[0]);
            }
        }
        prune_detail::run_taps(model, taps, *calib, threads, [&](int img, const TensorMap& out) {
            uint64_t seed = uint64_t(img) * 7919u + 17u;
            for (auto& kv : accs) {
                UseAcc& a = kv.second;
                const Tensor& X = out.at(a.conv->inputs[0]);
                int64_t C = X.dim(1), H = X.dim(2), W = X.dim(3);
                int64_t O = a.w->dim(0), kh = a.w->dim(2), kw = a.w->dim(3), K = kh * kw;
                auto st = a.conv->attr_ints("strides", {1, 1});
                auto pd = a.conv->attr_ints("pads", {0, 0, 0, 0});
                auto dl = a.conv->attr_ints("dilations", {1, 1});
                int64_t Ho = (H + pd[0] + pd[2] - dl[0] * (kh - 1) - 1) / st[0] + 1;
                int64_t Wo = (W + pd[1] + pd[3] - dl[1] * (kw - 1) - 1) / st[1] + 1;
                std::mt19937_64 rng(seed++);
                std::uniform_int_distribution<int64_t> pos(0, Ho * Wo - 1);
                const float* x = X.data<float>();
                const float* w = a.w->data<float>();
                std::vector<float> patch(static_cast<size_t>(K));
                for (int s = 0; s < 64; ++s) {
                    int64_t q = pos(rng), oy = q / Wo, ox = q % Wo;
                    for (int64_t ci = 0; ci < C; ++ci) {
                        for (int64_t k = 0; k < K; ++k) {
                            int64_t iy = oy * st[0] - pd[0] + (k / kw) * dl[0], ix = ox * st[1] - pd[1] + (k % kw) * dl[1];
                            patch[size_t(k)] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[(ci * H + iy) * W + ix] : 0.f;
                        }
                        double e = 0;
                        for (int64_t o = 0; o < O; ++o) {
                            const float* wr = w + (o * C + ci) * K;
                            double y = 0;
                            for (int64_t k = 0; k < K; ++k) y += double(wr[k]) * patch[size_t(k)];
                            e += y * y;
                        }
                        a.energy[size_t(ci)] += e;
                    }
                }
            }
        });
        for (const auto& grp : an.groups) {
            if (!grp.prunable || !group_in_scope(grp, scope)) continue;
            std::vector<double> sc(size_t(grp.size), 0.0);
            for (const auto& u : grp.uses)
                for (int64_t t = 0; t < u.size; ++t) sc[size_t(u.group_begin + t)] += accs[u.conv].energy[size_t(u.in_begin + t)];
            imp[grp.id] = sc;
        }
        return imp;
    }
    for (const auto& grp : an.groups) {
        if (!grp.prunable) continue;
        std::vector<double> sc(size_t(grp.size), 0.0);
        for (const auto& p : grp.producers) {
            const Node* n = find_node(g, p.conv);
            YOLOC_CHECK(n, "conv ", p.conv, " not found");
            const Tensor* w = g.find_initializer(n->inputs[1]);
            YOLOC_CHECK(w && w->dtype() == DType::Float32, "conv ", p.conv, " has no float weights");
            int64_t per = w->numel() / w->dim(0);
            const float* d = w->data<float>();
            for (int64_t j = 0; j < grp.size; ++j) {
                const float* r = d + (p.begin + j) * per;
                double acc = 0;
                for (int64_t k = 0; k < per; ++k) acc += c == Criterion::L1 ? std::fabs(r[k]) : double(r[k]) * r[k];
                sc[size_t(j)] += c == Criterion::L1 ? acc : std::sqrt(acc);
            }
        }
        imp[grp.id] = sc;
    }
    return imp;
}

int64_t kept_channels(int64_t size, double ratio, int64_t round_to) {
    if (round_to < 1) round_to = 1;
    if (size <= round_to) return size;
    double raw = double(size) * (1.0 - ratio);
    int64_t k = int64_t(std::llround(raw / double(round_to))) * round_to;
    return std::min(size, std::max(round_to, k));
}

KeepPlan plan_ratio(const ChannelAnalysis& an, const Importance& imp, PruneScope scope, double ratio,
                    int64_t round_to) {
    KeepPlan plan;
    for (const auto& grp : an.groups) {
        if (!grp.prunable || !group_in_scope(grp, scope)) continue;
        int64_t k = kept_channels(grp.size, ratio, round_to);
        if (k >= grp.size) continue;
        auto it = imp.find(grp.id);
        YOLOC_CHECK(it != imp.end() && int64_t(it->second.size()) == grp.size, "no importance for group ", grp.id);
        std::vector<int64_t> idx(size_t(grp.size));
        std::iota(idx.begin(), idx.end(), 0);
        const auto& s = it->second;
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return s[size_t(a)] > s[size_t(b)]; });
        idx.resize(size_t(k));
        std::sort(idx.begin(), idx.end());
        plan[grp.id] = idx;
    }
    return plan;
}

namespace prune_detail {

ConvMasks conv_masks(const Graph& g, const ChannelAnalysis& an, const KeepPlan& plan) {
    ConvMasks m;
    auto dims = [&](const std::string& conv) {
        const Node* n = find_node(g, conv);
        YOLOC_CHECK(n, "conv ", conv, " not found");
        const Tensor* w = g.find_initializer(n->inputs[1]);
        YOLOC_CHECK(w && w->rank() == 4, "conv ", conv, " has no 4-D weight");
        if (!m.out.count(conv)) m.out[conv].assign(size_t(w->dim(0)), 1);
        if (!m.in.count(conv)) m.in[conv].assign(size_t(w->dim(1)), 1);
    };
    for (const auto& kv : plan) {
        YOLOC_CHECK(kv.first >= 0 && kv.first < int(an.groups.size()), "plan names unknown group ", kv.first);
        const ChannelGroup& grp = an.groups[size_t(kv.first)];
        YOLOC_CHECK(grp.prunable, "plan prunes group ", grp.id, " (", grp.label, "), which is not prunable");
        std::vector<char> keep(size_t(grp.size), 0);
        for (int64_t j : kv.second) {
            YOLOC_CHECK(j >= 0 && j < grp.size, "plan keeps channel ", j, " of group ", grp.id, " of size ", grp.size);
            keep[size_t(j)] = 1;
        }
        for (const auto& p : grp.producers) {
            dims(p.conv);
            for (int64_t j = 0; j < grp.size; ++j) m.out[p.conv][size_t(p.begin + j)] = keep[size_t(j)];
        }
        for (const auto& u : grp.uses) {
            dims(u.conv);
            for (int64_t t = 0; t < u.size; ++t) m.in[u.conv][size_t(u.in_begin + t)] = keep[size_t(u.group_begin + t)];
        }
    }
    return m;
}

}  // namespace prune_detail

Model apply_pruning(const Model& model, const ChannelAnalysis& an, const KeepPlan& plan) {
    Model out = model;
    Graph& g = out.graph;
    prune_detail::ConvMasks masks = prune_detail::conv_masks(model.graph, an, plan);

    std::map<std::string, int> readers;  // initializer -> number of node inputs reading it
    for (const auto& n : g.nodes)
        for (const auto& in : n.inputs)
            if (!in.empty()) ++readers[in];

    // A rewritten tensor replaces the initializer when only this node reads it, else gets a new name.
    auto put = [&](Node& n, size_t input, Tensor t) {
        const std::string& name = n.inputs[input];
        if (readers[name] == 1) {
            g.initializers[name] = std::move(t);
        } else {
            std::string nn = g.unique_name(name + "_pruned");
            g.initializers[nn] = std::move(t);
            --readers[name];
            n.inputs[input] = nn;
            readers[nn] = 1;
        }
    };

    for (auto& n : g.nodes) {
        if (n.op_type != "Conv") continue;
        auto io = masks.out.find(n.name);
        auto ii = masks.in.find(n.name);
        if (io == masks.out.end() && ii == masks.in.end()) continue;
        const Tensor& w = *g.find_initializer(n.inputs[1]);
        int64_t O = w.dim(0), I = w.dim(1), K = w.dim(2) * w.dim(3);
        std::vector<char> om = io != masks.out.end() ? io->second : std::vector<char>(size_t(O), 1);
        std::vector<char> im = ii != masks.in.end() ? ii->second : std::vector<char>(size_t(I), 1);
        int64_t O2 = std::count(om.begin(), om.end(), 1), I2 = std::count(im.begin(), im.end(), 1);
        if (O2 == O && I2 == I) continue;
        YOLOC_CHECK(O2 > 0 && I2 > 0, "pruning would leave ", n.label(), " without channels");
        Tensor nw(DType::Float32, {O2, I2, w.dim(2), w.dim(3)});
        const float* src = w.data<float>();
        float* dst = nw.data<float>();
        for (int64_t o = 0; o < O; ++o) {
            if (!om[size_t(o)]) continue;
            for (int64_t i = 0; i < I; ++i) {
                if (!im[size_t(i)]) continue;
                std::copy(src + (o * I + i) * K, src + (o * I + i + 1) * K, dst);
                dst += K;
            }
        }
        put(n, 1, nw);
        if (n.inputs.size() > 2 && !n.inputs[2].empty() && O2 != O) {
            const Tensor& b = *g.find_initializer(n.inputs[2]);
            Tensor nb(DType::Float32, {O2});
            float* bd = nb.data<float>();
            for (int64_t o = 0; o < O; ++o)
                if (om[size_t(o)]) *bd++ = b.data<float>()[o];
            put(n, 2, nb);
        }
    }

    // Split sizes follow the kept channels of each slice.
    for (const auto& si : an.splits) {
        std::vector<int64_t> sizes;
        bool changed = false;
        for (const auto& o : si.outputs) {
            int64_t c = 0;
            for (const auto& ch : o) {
                bool keep = true;
                if (ch.first >= 0) {
                    auto it = plan.find(ch.first);
                    if (it != plan.end()) keep = std::binary_search(it->second.begin(), it->second.end(), ch.second);
                }
                c += keep ? 1 : 0;
            }
            changed = changed || c != int64_t(o.size());
            sizes.push_back(c);
        }
        if (!changed) continue;
        Node* n = nullptr;
        for (auto& x : g.nodes)
            if (x.name == si.node) n = &x;
        YOLOC_CHECK(n, "Split ", si.node, " not found");
        if (n->inputs.size() > 1 && !n->inputs[1].empty()) {
            // Exports share one sizes initializer between Splits of equal width; give this one its own.
            std::string nn = g.unique_name(n->inputs[1] + "_pruned");
            g.initializers[nn] = Tensor::from_int64s({int64_t(sizes.size())}, sizes);
            n->inputs[1] = nn;
        } else if (out.opset() >= 13 && !n->has("split")) {
            std::string nn = g.unique_name(n->name + "_sizes");
            g.initializers[nn] = Tensor::from_int64s({int64_t(sizes.size())}, sizes);
            if (n->inputs.size() < 2) n->inputs.resize(2);
            n->inputs[1] = nn;
            n->attrs.erase("num_outputs");
        } else {
            n->attrs["split"] = Attribute::of_ints(sizes);
        }
    }
    g.value_info.clear();
    remove_dead(g);
    validate_and_sort(g);
    return out;
}

CalibSource calib_from_dir(const std::string& dir, int count, int imgsz) {
    // The same folder-or-list rules as `yoloc quantize --calib` (one lister for both), but
    // at most `count` images: the first ones by path.
    YOLOC_CHECK(count > 0, "--calib-count must be positive");
    YOLOC_CHECK(is_directory(dir) || file_exists(dir), "calibration folder ", dir, " does not exist");
    std::vector<std::string> files = calibration_images(dir, 0);
    std::sort(files.begin(), files.end());
    if (int(files.size()) > count) files.resize(size_t(count));
    CalibSource s;
    s.count = int(files.size());
    s.load = [files, imgsz](int i) { return preprocess(load_image(files.at(size_t(i))), imgsz); };
    return s;
}

Model prune_model(const Model& model, const PruneOptions& opt, PruneReport* report) {
    int targets = (opt.ratio != 0) + (opt.target_params != 0) + (opt.target_flops != 0);
    YOLOC_CHECK(targets == 1, "give exactly one of --ratio, --target-params, --target-flops");
    if (opt.ratio != 0)
        YOLOC_CHECK(opt.ratio > 0 && opt.ratio < 1, "--ratio ", opt.ratio, " is outside (0, 1)");
    YOLOC_CHECK(opt.target_params >= 0 && opt.target_flops >= 0, "targets must be positive");
    YOLOC_CHECK(opt.round_to >= 1, "--round-to must be at least 1");
    YOLOC_CHECK(!opt.reconstruct || !opt.calib_dir.empty(), "--reconstruct needs calibration images (--calib DIR)");
    YOLOC_CHECK((opt.criterion != Criterion::Activation && opt.criterion != Criterion::ReconError) ||
                    !opt.calib_dir.empty(),
                "--criterion ", criterion_name(opt.criterion), " needs calibration images (--calib DIR)");

    ChannelAnalysis an = analyze_channels(model);
    check_scope(an, opt.scope);
    int in_scope = 0;
    for (const auto& grp : an.groups) in_scope += grp.prunable && group_in_scope(grp, opt.scope);
    YOLOC_CHECK(in_scope > 0, "no prunable channel group in scope ", scope_name(opt.scope));

    ShapeInfo shapes0 = infer_shapes(model, concrete_input_shapes(model));
    ModelCost cost0 = count_cost(model, shapes0);

    CalibSource calib;
    int imgsz = 640;
    for (const auto& in : model.graph.inputs)
        if (!model.graph.is_initializer(in.name) && in.shape.size() == 4 && in.shape[2].known())
            imgsz = int(in.shape[2].value);
    if (!opt.calib_dir.empty()) calib = calib_from_dir(opt.calib_dir, opt.calib_count, imgsz);

    if (opt.stage) opt.stage("importance");
    Importance imp = channel_importance(model, an, opt.criterion, opt.calib_dir.empty() ? nullptr : &calib, opt.threads,
                                        opt.scope);

    double ratio = opt.ratio;
    if (opt.target_params > 0 || opt.target_flops > 0) {
        bool by_params = opt.target_params > 0;
        auto measure = [&](double r) {
            Model m = apply_pruning(model, an, plan_ratio(an, imp, opt.scope, r, opt.round_to));
            ModelCost c = count_cost(m, infer_shapes(m, concrete_input_shapes(m)));
            return by_params ? double(c.params) : c.flops;
        };
        double target = by_params ? double(opt.target_params) : opt.target_flops;
        double now = by_params ? double(cost0.params) : cost0.flops;
        YOLOC_CHECK(target < now, "target ", target, " is not below the model's ", now,
                    by_params ? " parameters" : " FLOPs");
        double least = measure(0.999999);
        YOLOC_CHECK(least <= target, "target ", target, " is below what scope ", scope_name(opt.scope),
                    " allows: at most ", least, by_params ? " parameters" : " FLOPs", " remain with every group at ",
                    opt.round_to, " channels");
        double lo = 0, hi = 0.999999;  // measure(hi) <= target
        for (int it = 0; it < 30; ++it) {
            double mid = 0.5 * (lo + hi);
            if (measure(mid) <= target)
                hi = mid;
            else
                lo = mid;
        }
        ratio = hi;
    }

    KeepPlan plan = plan_ratio(an, imp, opt.scope, ratio, opt.round_to);
    YOLOC_CHECK(!plan.empty(), "ratio ", ratio, " removes no channel in scope ", scope_name(opt.scope),
                " after rounding to multiples of ", opt.round_to);
    Model out = apply_pruning(model, an, plan);

    PruneReport rep;
    if (opt.reconstruct) {
        if (opt.stage) opt.stage("reconstruct");
        ReconstructOptions ro = opt.recon;
        if (ro.threads == 0) ro.threads = opt.threads;
        rep.recon = reconstruct(model, out, an, plan, calib, ro);
        rep.reconstructed = true;
        if (ro.correct) {
            if (opt.stage) opt.stage("correct");
            rep.correction = correct_downstream(model, out, an, plan, calib, ro);
        }
    }
    ModelCost cost1 = count_cost(out, infer_shapes(out, concrete_input_shapes(out)));
    rep.ratio = ratio;
    rep.params_before = cost0.params;
    rep.params_after = cost1.params;
    rep.flops_before = cost0.flops;
    rep.flops_after = cost1.flops;
    auto masks = prune_detail::conv_masks(model.graph, an, plan);
    std::set<std::string> changed;
    for (const auto& kv : masks.out)
        if (std::count(kv.second.begin(), kv.second.end(), 0)) changed.insert(kv.first);
    for (const auto& kv : masks.in)
        if (std::count(kv.second.begin(), kv.second.end(), 0)) changed.insert(kv.first);
    rep.convs_changed = int(changed.size());
    for (const auto& grp : an.groups) {
        GroupReport gr;
        gr.id = grp.id;
        gr.label = grp.label;
        gr.before = grp.size;
        auto it = plan.find(grp.id);
        gr.after = it == plan.end() ? grp.size : int64_t(it->second.size());
        gr.prunable = grp.prunable;
        gr.in_scope = group_in_scope(grp, opt.scope);
        gr.pinned_reason = grp.pinned_reason;
        rep.groups.push_back(gr);
    }
    if (report) *report = rep;
    return out;
}

}  // namespace yoloc
