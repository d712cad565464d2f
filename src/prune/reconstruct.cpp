// Least-squares reconstruction of the convs that read pruned channels (He et al. 2017):
// for each such conv, sampled output positions of calibration images give rows
//   x = its input patch on the kept channels (+1 for the bias),
//   y = the unpruned conv's output there (pre-activation),
// and the new weights solve min ||X B - Y||^2 + lambda ||B_w||^2 via the normal equations
// (Cholesky). With only the bias column free this reduces to folding the removed
// channels' mean contribution into the bias; the full solve also re-mixes the kept ones.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "prune/prune.h"
#include "prune/prune_internal.h"

namespace yoloc {

namespace prune_detail {

void run_taps(const Model& model, const std::vector<std::string>& taps, const CalibSource& calib, int threads,
              const std::function<void(int, const TensorMap&)>& fn) {
    Model m = model;
    std::set<std::string> have;
    for (const auto& o : m.graph.outputs) have.insert(o.name);
    for (const auto& t : taps) {
        if (!have.insert(t).second) continue;
        ValueInfo vi;
        vi.name = t;
        vi.has_shape = false;
        m.graph.outputs.push_back(vi);
    }
    ExecutorOptions eo;
    eo.threads = threads;
    auto ex = make_executor(m, "fast", eo);
    std::string input;
    for (const auto& in : m.graph.inputs)
        if (!m.graph.is_initializer(in.name)) input = in.name;
    for (int i = 0; i < calib.count; ++i) {
        TensorMap in{{input, calib.load(i)}};
        fn(i, ex->run(in));
    }
}

}  // namespace prune_detail

namespace {

const Node* find_node(const Graph& g, const std::string& name) {
    for (const auto& n : g.nodes)
        if (n.name == name) return &n;
    return nullptr;
}

struct Consumer {
    std::string conv;
    Tensor w, b;                // original weight [O, C, kh, kw] and bias [O] (zeros when absent)
    std::vector<int64_t> kout;  // kept output channels (original indices)
    int64_t col0 = 0;           // first column in the system's H
};

struct System {
    std::string x;  // input value of the convs
    int64_t kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0, pb = 0, pr = 0, dh = 1, dw = 1;
    std::vector<int64_t> kin;  // kept input channels (original indices)
    int64_t C = 0;             // original input channels
    std::vector<Consumer> cons;
    int64_t F = 0, O = 0;
    bool late = false;  // refitted from the second pass on (reads a refitted conv's output)
    std::vector<double> G, H, yy;
    double drop_err = 0;  // sum of squared errors of the pruned conv without refit
    int64_t n = 0;
};

std::string geometry_key(const Node& n) {
    std::string k = n.inputs[0];
    for (const char* a : {"strides", "pads", "dilations"})
        for (int64_t v : n.attr_ints(a, {})) k += cat("|", a, v);
    return k;
}

// G[i][j] += sum_s X[s][i] X[s][j] for j >= i, rows split over threads.
void accumulate_gram(std::vector<double>& G, const std::vector<double>& X, int64_t P, int64_t F, int threads) {
    auto rows = [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            double* row = &G[size_t(i * F)];
            for (int64_t s = 0; s < P; ++s) {
                const double* x = &X[size_t(s * F)];
                double xi = x[i];
                if (xi == 0) continue;
                for (int64_t j = i; j < F; ++j) row[j] += xi * x[j];
            }
        }
    };
    int T = std::max(1, threads);
    if (T == 1 || F < 256) {
        rows(0, F);
        return;
    }
    // Row i costs F - i: cut the triangle into equal areas.
    std::vector<int64_t> cut{0};
    double total = double(F) * double(F + 1) / 2, acc = 0;
    for (int64_t i = 0; i < F && int(cut.size()) < T; ++i) {
        acc += double(F - i);
        if (acc >= total * double(cut.size()) / T) cut.push_back(i + 1);
    }
    cut.push_back(F);
    std::vector<std::thread> th;
    for (size_t k = 0; k + 1 < cut.size(); ++k) th.emplace_back(rows, cut[k], cut[k + 1]);
    for (auto& t : th) t.join();
}

// Solves (G + lambda D) B = H for B (F x O), G symmetric with its upper triangle filled.
// D = identity on the weight features, 0 on the bias feature (last). Cholesky; the ridge
// grows when the matrix is not positive definite in floating point.
std::vector<double> solve_ridge(const std::vector<double>& G, const std::vector<double>& H, int64_t F, int64_t O,
                                double ridge) {
    double mean_diag = 0;
    for (int64_t i = 0; i + 1 < F; ++i) mean_diag += G[size_t(i * F + i)];
    mean_diag = F > 1 ? mean_diag / double(F - 1) : 1;
    if (mean_diag <= 0) mean_diag = 1;
    for (int attempt = 0; attempt < 8; ++attempt, ridge *= 10) {
        double lambda = ridge * mean_diag;
        std::vector<double> L(size_t(F * F), 0.0);
        for (int64_t i = 0; i < F; ++i)
            for (int64_t j = 0; j <= i; ++j) L[size_t(i * F + j)] = G[size_t(j * F + i)];  // lower from upper
        for (int64_t i = 0; i + 1 < F; ++i) L[size_t(i * F + i)] += lambda;
        L[size_t(F * F - 1)] += 1e-9 * mean_diag;
        bool ok = true;
        for (int64_t j = 0; j < F && ok; ++j) {
            double* Lj = &L[size_t(j * F)];
            double d = Lj[j];
            for (int64_t k = 0; k < j; ++k) d -= Lj[k] * Lj[k];
            if (!(d > 0)) {
                ok = false;
                break;
            }
            d = std::sqrt(d);
            Lj[j] = d;
            for (int64_t i = j + 1; i < F; ++i) {
                double* Li = &L[size_t(i * F)];
                double s = Li[j];
                for (int64_t k = 0; k < j; ++k) s -= Li[k] * Lj[k];
                Li[j] = s / d;
            }
        }
        if (!ok) continue;
        std::vector<double> B(size_t(F * O));
        std::vector<double> z(static_cast<size_t>(F));
        for (int64_t o = 0; o < O; ++o) {
            for (int64_t i = 0; i < F; ++i) {  // L z = h
                double s = H[size_t(i * O + o)];
                const double* Li = &L[size_t(i * F)];
                for (int64_t k = 0; k < i; ++k) s -= Li[k] * z[size_t(k)];
                z[size_t(i)] = s / Li[i];
            }
            for (int64_t i = F - 1; i >= 0; --i) {  // L^T b = z
                double s = z[size_t(i)];
                for (int64_t k = i + 1; k < F; ++k) s -= L[size_t(k * F + i)] * B[size_t(k * O + o)];
                B[size_t(i * O + o)] = s / L[size_t(i * F + i)];
            }
        }
        return B;
    }
    fail("reconstruction: the least-squares system stays singular (too few calibration samples?)");
}

}  // namespace

ReconstructReport reconstruct(const Model& original, Model& pruned, const ChannelAnalysis& an, const KeepPlan& plan,
                              const CalibSource& calib, const ReconstructOptions& opt) {
    YOLOC_CHECK(calib.count > 0, "reconstruction needs calibration images");
    const Graph& g0 = original.graph;
    auto masks = prune_detail::conv_masks(g0, an, plan);

    // Systems: convs that lost input channels, grouped by (input value, geometry).
    std::map<std::string, size_t> sys_of;
    std::vector<System> systems;
    int consumers = 0;
    // Convs that lost input channels are refitted from the first pass on. From the second
    // pass on, the convs reading a refitted conv's output (C2f's cv2, the next bottleneck)
    // are refitted too, on the pruned model's inputs, so the error left after the first
    // refit is corrected one layer later instead of flowing on (He et al.'s sequential
    // reconstruction, one layer deeper).
    std::vector<std::pair<std::string, std::vector<char>>> todo;
    std::set<std::string> refit;
    for (const auto& kv : masks.in)
        if (std::count(kv.second.begin(), kv.second.end(), 0) > 0) {
            todo.push_back(kv);
            refit.insert(kv.first);
        }
    std::set<std::string> late;
    if (opt.iterations > 1 && opt.refit_next) {
        for (const auto& grp : an.groups) {
            bool from_refit = false;
            for (const auto& p : grp.producers) from_refit = from_refit || refit.count(p.conv);
            if (!from_refit) continue;
            for (const auto& u : grp.uses) {
                if (refit.count(u.conv) || late.count(u.conv)) continue;
                const Node* n = find_node(g0, u.conv);
                YOLOC_CHECK(n, "conv ", u.conv, " not found");
                late.insert(u.conv);
                todo.push_back({u.conv, std::vector<char>(size_t(g0.find_initializer(n->inputs[1])->dim(1)), 1)});
            }
        }
    }
    for (const auto& kv : todo) {
        const auto& im = kv.second;
        const Node* n = find_node(g0, kv.first);
        YOLOC_CHECK(n, "conv ", kv.first, " not found");
        const Tensor& w = *g0.find_initializer(n->inputs[1]);
        std::vector<int64_t> kin;
        for (size_t i = 0; i < im.size(); ++i)
            if (im[i]) kin.push_back(int64_t(i));
        std::string key = geometry_key(*n) + cat("|", w.dim(2), "x", w.dim(3), "|", kin.size(), late.count(n->name) ? "|late" : "");
        auto it = sys_of.find(key);
        if (it == sys_of.end()) {
            System s;
            s.x = n->inputs[0];
            s.kh = w.dim(2);
            s.kw = w.dim(3);
            auto st = n->attr_ints("strides", {1, 1});
            auto pd = n->attr_ints("pads", {0, 0, 0, 0});
            auto dl = n->attr_ints("dilations", {1, 1});
            s.sh = st[0];
            s.sw = st[1];
            s.pt = pd[0];
            s.pl = pd[1];
            s.dh = dl[0];
            s.dw = dl[1];
            s.kin = kin;
            s.C = w.dim(1);
            s.F = int64_t(kin.size()) * s.kh * s.kw + 1;
            s.late = late.count(n->name) != 0;
            s.pb = pd[2];
            s.pr = pd[3];
            systems.push_back(s);
            it = sys_of.emplace(key, systems.size() - 1).first;
        }
        System& s = systems[it->second];
        Consumer c;
        c.conv = n->name;
        c.w = w;
        if (n->inputs.size() > 2 && !n->inputs[2].empty()) {
            c.b = *g0.find_initializer(n->inputs[2]);
        } else {
            c.b = Tensor(DType::Float32, {w.dim(0)});
            std::fill(c.b.data<float>(), c.b.data<float>() + w.dim(0), 0.f);
        }
        auto om = masks.out.count(n->name) ? masks.out[n->name] : std::vector<char>(size_t(w.dim(0)), 1);
        for (size_t o = 0; o < om.size(); ++o)
            if (om[o]) c.kout.push_back(int64_t(o));
        c.col0 = s.O;
        s.O += int64_t(c.kout.size());
        s.cons.push_back(c);
        ++consumers;
    }
    ReconstructReport rep;
    rep.consumers = consumers;
    rep.systems = int(systems.size());
    if (systems.empty()) return rep;

    std::vector<std::string> taps;
    for (const auto& s : systems)
        if (std::find(taps.begin(), taps.end(), s.x) == taps.end()) taps.push_back(s.x);
    std::string input;
    for (const auto& in : g0.inputs)
        if (!g0.is_initializer(in.name)) input = in.name;
    auto with_taps = [&](const Model& m) {
        Model t = m;
        for (const auto& v : taps) {
            ValueInfo vi;
            vi.name = v;
            vi.has_shape = false;
            t.graph.outputs.push_back(vi);
        }
        return t;
    };
    ExecutorOptions eo;
    eo.threads = opt.threads;
    auto ex0 = make_executor(with_taps(original), "fast", eo);
    int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));

    int iterations = std::max(1, opt.iterations);
    int done = 0, total = iterations * calib.count;
    for (int iter = 0; iter < iterations; ++iter) {
        std::unique_ptr<Executor> ex1;
        if (iter > 0) ex1 = make_executor(with_taps(pruned), "fast", eo);
        for (auto& s : systems) {
            s.G.assign(size_t(s.F * s.F), 0.0);
            s.H.assign(size_t(s.F * s.O), 0.0);
            s.yy.assign(size_t(s.O), 0.0);
            s.drop_err = 0;
            s.n = 0;
        }
        for (int img = 0; img < calib.count; ++img) {
            TensorMap in{{input, calib.load(img)}};
            TensorMap out0 = ex0->run(in);
            TensorMap out1;
            if (ex1) out1 = ex1->run(in);
            for (size_t si = 0; si < systems.size(); ++si) {
                System& s = systems[si];
                if (s.late && iter == 0) continue;
                const Tensor& X0 = out0.at(s.x);
                const Tensor* X1 = ex1 ? &out1.at(s.x) : nullptr;
                YOLOC_CHECK(X0.rank() == 4 && X0.dim(1) == s.C, "reconstruction: unexpected shape of ", s.x);
                int64_t H = X0.dim(2), W = X0.dim(3);
                int64_t Ho = (H + s.pt + s.pb - s.dh * (s.kh - 1) - 1) / s.sh + 1;
                int64_t Wo = (W + s.pl + s.pr - s.dw * (s.kw - 1) - 1) / s.sw + 1;
                int64_t P = std::min<int64_t>(opt.samples_per_image, Ho * Wo);
                std::mt19937_64 rng(uint64_t(img) * 1000003u + si * 7919u + 12345u);
                std::uniform_int_distribution<int64_t> pos(0, Ho * Wo - 1);
                int64_t K = s.kh * s.kw, Cin = s.C;
                std::vector<double> feats(size_t(P * s.F)), full(size_t(Cin * K)), Y(size_t(P * s.O));
                const float* x0 = X0.data<float>();
                const float* x1 = X1 ? X1->data<float>() : nullptr;
                int64_t kin_n = int64_t(s.kin.size());
                for (int64_t p = 0; p < P; ++p) {
                    int64_t q = pos(rng), oy = q / Wo, ox = q % Wo;
                    for (int64_t c = 0; c < Cin; ++c)
                        for (int64_t ky = 0; ky < s.kh; ++ky)
                            for (int64_t kx = 0; kx < s.kw; ++kx) {
                                int64_t iy = oy * s.sh - s.pt + ky * s.dh, ix = ox * s.sw - s.pl + kx * s.dw;
                                bool in_b = iy >= 0 && iy < H && ix >= 0 && ix < W;
                                full[size_t((c * s.kh + ky) * s.kw + kx)] = in_b ? x0[(c * H + iy) * W + ix] : 0.0;
                            }
                    double* f = &feats[size_t(p * s.F)];
                    for (int64_t qi = 0; qi < kin_n; ++qi)
                        for (int64_t k = 0; k < K; ++k) {
                            double v;
                            if (x1) {
                                int64_t ky = k / s.kw, kx = k % s.kw;
                                int64_t iy = oy * s.sh - s.pt + ky * s.dh, ix = ox * s.sw - s.pl + kx * s.dw;
                                bool in_b = iy >= 0 && iy < H && ix >= 0 && ix < W;
                                v = in_b ? x1[(qi * H + iy) * W + ix] : 0.0;
                            } else {
                                v = full[size_t(s.kin[size_t(qi)] * K + k)];
                            }
                            f[qi * K + k] = v;
                        }
                    f[s.F - 1] = 1.0;
                    for (const auto& c : s.cons) {
                        const float* w = c.w.data<float>();
                        for (size_t oi = 0; oi < c.kout.size(); ++oi) {
                            int64_t o = c.kout[oi];
                            const float* wr = w + o * Cin * K;
                            double y = c.b.data<float>()[o], yd = y;
                            for (int64_t t = 0; t < Cin * K; ++t) y += double(wr[t]) * full[size_t(t)];
                            for (int64_t qi = 0; qi < kin_n; ++qi) {
                                const float* wk = wr + s.kin[size_t(qi)] * K;
                                for (int64_t k = 0; k < K; ++k) yd += double(wk[k]) * f[qi * K + k];
                            }
                            Y[size_t(p * s.O + c.col0 + int64_t(oi))] = y;
                            s.drop_err += (y - yd) * (y - yd);
                        }
                    }
                }
                accumulate_gram(s.G, feats, P, s.F, threads);
                for (int64_t p = 0; p < P; ++p) {
                    const double* f = &feats[size_t(p * s.F)];
                    const double* y = &Y[size_t(p * s.O)];
                    for (int64_t i = 0; i < s.F; ++i) {
                        double fi = f[i];
                        if (fi == 0) continue;
                        double* h = &s.H[size_t(i * s.O)];
                        for (int64_t o = 0; o < s.O; ++o) h[o] += fi * y[o];
                    }
                    for (int64_t o = 0; o < s.O; ++o) s.yy[size_t(o)] += y[o] * y[o];
                }
                s.n += P;
            }
            if (opt.progress) opt.progress(++done, total);
        }

        // Solve and write the refitted weights into the pruned model.
        double err_before = 0, err_after = 0;
        int64_t cnt = 0;
        for (auto& s : systems) {
            if (s.late && iter == 0) continue;
            std::vector<double> B = solve_ridge(s.G, s.H, s.F, s.O, opt.ridge);
            // Residual from the normal equations: sum_o yy - 2 b.h + b.G.b (G symmetric, upper stored).
            for (int64_t o = 0; o < s.O; ++o) {
                double bh = 0, bgb = 0;
                for (int64_t i = 0; i < s.F; ++i) {
                    double bi = B[size_t(i * s.O + o)];
                    bh += bi * s.H[size_t(i * s.O + o)];
                    double row = s.G[size_t(i * s.F + i)] * bi;
                    for (int64_t j = i + 1; j < s.F; ++j) row += 2 * s.G[size_t(i * s.F + j)] * B[size_t(j * s.O + o)];
                    bgb += bi * row;
                }
                err_after += std::max(0.0, s.yy[size_t(o)] - 2 * bh + bgb);
            }
            err_before += s.drop_err;
            cnt += s.n * s.O;
            int64_t kin_n = int64_t(s.kin.size()), K = s.kh * s.kw;
            for (const auto& c : s.cons) {
                Node* n = nullptr;
                for (auto& x : pruned.graph.nodes)
                    if (x.name == c.conv) n = &x;
                YOLOC_CHECK(n, "reconstruction: conv ", c.conv, " missing from the pruned model");
                // A conv that kept its channels may still share its weight or bias with
                // another node: give it its own before rewriting.
                for (size_t k = 1; k < n->inputs.size() && k < 3; ++k) {
                    if (n->inputs[k].empty()) continue;
                    int readers = 0;
                    for (const auto& x : pruned.graph.nodes)
                        for (const auto& in : x.inputs) readers += in == n->inputs[k];
                    if (readers > 1) {
                        std::string nn = pruned.graph.unique_name(n->inputs[k] + "_refit");
                        pruned.graph.initializers[nn] = pruned.graph.initializers.at(n->inputs[k]);
                        n->inputs[k] = nn;
                    }
                }
                Tensor& w = pruned.graph.initializers.at(n->inputs[1]);
                int64_t O2 = int64_t(c.kout.size());
                YOLOC_CHECK(w.rank() == 4 && w.dim(0) == O2 && w.dim(1) == kin_n,
                            "reconstruction: pruned weight of ", c.conv, " has an unexpected shape");
                Tensor nw(DType::Float32, w.shape());
                Tensor nb(DType::Float32, {O2});
                for (int64_t oi = 0; oi < O2; ++oi) {
                    int64_t col = c.col0 + oi;
                    for (int64_t t = 0; t < kin_n * K; ++t)
                        nw.data<float>()[oi * kin_n * K + t] = float(B[size_t(t * s.O + col)]);
                    nb.data<float>()[oi] = float(B[size_t((s.F - 1) * s.O + col)]);
                }
                w = nw;
                if (n->inputs.size() > 2 && !n->inputs[2].empty()) {
                    pruned.graph.initializers.at(n->inputs[2]) = nb;
                } else {
                    std::string bn = pruned.graph.unique_name(c.conv + "_bias");
                    pruned.graph.initializers[bn] = nb;
                    n->inputs.resize(3);
                    n->inputs[2] = bn;
                }
            }
        }
        rep.samples = systems.front().n;
        rep.consumers = consumers;
        rep.mse_before = cnt ? err_before / double(cnt) : 0;
        rep.mse_after = cnt ? err_after / double(cnt) : 0;
    }
    return rep;
}

}  // namespace yoloc
