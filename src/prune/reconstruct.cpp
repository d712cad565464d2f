// Least-squares reconstruction of the convs that read pruned channels (He et al. 2017):
// for each such conv, sampled output positions of calibration images give rows
//   x = its input patch on the kept channels (+1 for the bias),
//   y = the unpruned conv's output there (pre-activation),
// and the new weights solve min ||X B - Y||^2 + lambda ||B_w - B0_w||^2 via the normal
// equations (Cholesky), B0 the unpruned conv's weights on the kept channels (or 0). With
// only the bias column free this reduces to folding the removed channels' mean
// contribution into the bias; the full solve also re-mixes the kept ones. lambda is
// chosen per output channel by cross-validation over folds of the calibration images:
// the free fit has ~1000 unknowns per channel and overfits 64 images.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/limits.h"
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
    // Normal equations per fold of the calibration images (image i in fold i % folds):
    // G = X^T X (upper triangle), H = X^T Y, yy = per-column Y^T Y.
    std::vector<std::vector<double>> G, H, yy;
    std::vector<double> B0;  // prior (F x O): unpruned weights on the kept channels, original bias
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

// Cholesky factor L (lower, row-major) of G + lambda D, G symmetric with its upper
// triangle filled, D = identity on the weight features and 0 on the bias feature (last).
// False when it is not positive definite in floating point.
bool cholesky_ridged(const std::vector<double>& G, int64_t F, double lambda, double mean_diag, std::vector<double>& L) {
    L.assign(size_t(F * F), 0.0);
    for (int64_t i = 0; i < F; ++i)
        for (int64_t j = 0; j <= i; ++j) L[size_t(i * F + j)] = G[size_t(j * F + i)];  // lower from upper
    for (int64_t i = 0; i + 1 < F; ++i) L[size_t(i * F + i)] += lambda;
    L[size_t(F * F - 1)] += 1e-9 * mean_diag;
    for (int64_t j = 0; j < F; ++j) {
        double* Lj = &L[size_t(j * F)];
        double d = Lj[j];
        for (int64_t k = 0; k < j; ++k) d -= Lj[k] * Lj[k];
        if (!(d > 0)) return false;
        d = std::sqrt(d);
        Lj[j] = d;
        for (int64_t i = j + 1; i < F; ++i) {
            double* Li = &L[size_t(i * F)];
            double s = Li[j];
            for (int64_t k = 0; k < j; ++k) s -= Li[k] * Lj[k];
            Li[j] = s / d;
        }
    }
    return true;
}

// B (F x O) = (L L^T)^-1 R.
std::vector<double> cholesky_solve(const std::vector<double>& L, int64_t F, const std::vector<double>& R, int64_t O) {
    std::vector<double> B(size_t(F * O));
    std::vector<double> z(static_cast<size_t>(F));
    for (int64_t o = 0; o < O; ++o) {
        for (int64_t i = 0; i < F; ++i) {  // L z = r
            double s = R[size_t(i * O + o)];
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

double mean_weight_diag(const std::vector<double>& G, int64_t F) {
    double m = 0;
    for (int64_t i = 0; i + 1 < F; ++i) m += G[size_t(i * F + i)];
    m = F > 1 ? m / double(F - 1) : 1;
    return m > 0 ? m : 1;
}

// Solves (G + lambda D) B = H + lambda D B0 for B (F x O), lambda = rel * mean diagonal;
// B0 null: shrink toward zero. The ridge grows when the matrix is not positive definite.
std::vector<double> solve_ridge(const std::vector<double>& G, const std::vector<double>& H, int64_t F, int64_t O,
                                double rel, const std::vector<double>* B0) {
    const double md = mean_weight_diag(G, F);
    std::vector<double> L;
    for (int attempt = 0; attempt < 8; ++attempt, rel *= 10) {
        const double lambda = rel * md;
        if (!cholesky_ridged(G, F, lambda, md, L)) continue;
        if (!B0) return cholesky_solve(L, F, H, O);
        std::vector<double> R = H;
        for (int64_t i = 0; i + 1 < F; ++i)
            for (int64_t o = 0; o < O; ++o) R[size_t(i * O + o)] += lambda * (*B0)[size_t(i * O + o)];
        return cholesky_solve(L, F, R, O);
    }
    fail("reconstruction: the least-squares system stays singular (too few calibration samples?)");
}

// Per column o: yy[o] - 2 b.h + b.G.b, the squared error of X b against Y from the normal
// equations (G symmetric, upper stored).
void add_column_errors(const std::vector<double>& G, const std::vector<double>& H, const std::vector<double>& yy,
                       const std::vector<double>& B, int64_t F, int64_t O, std::vector<double>& err) {
    for (int64_t o = 0; o < O; ++o) {
        double bh = 0, bgb = 0;
        for (int64_t i = 0; i < F; ++i) {
            const double bi = B[size_t(i * O + o)];
            bh += bi * H[size_t(i * O + o)];
            double row = G[size_t(i * F + i)] * bi;
            for (int64_t j = i + 1; j < F; ++j) row += 2 * G[size_t(i * F + j)] * B[size_t(j * O + o)];
            bgb += bi * row;
        }
        err[size_t(o)] += std::max(0.0, yy[size_t(o)] - 2 * bh + bgb);
    }
}

std::vector<double> sum_folds(const std::vector<std::vector<double>>& v) {
    std::vector<double> s(v.front().size(), 0.0);
    for (const auto& f : v)
        for (size_t i = 0; i < s.size(); ++i) s[i] += f[i];
    return s;
}

// The refit of one system. Fixed ridge when there is one fold; else, per output channel,
// the ridge of the grid with the lowest held-out error over the folds (each fold fitted on
// the others), then one solve on all images per ridge chosen. Adds the held-out errors of
// the chosen ridges and of the fixed option (same prior) to cv / cv_fixed.
std::vector<double> solve_system(const System& s, const ReconstructOptions& opt, int threads, double& cv,
                                 double& cv_fixed) {
    const int64_t F = s.F, O = s.O;
    const std::vector<double>* prior = opt.ridge_to_original ? &s.B0 : nullptr;
    const std::vector<double> G = sum_folds(s.G), H = sum_folds(s.H);
    const size_t folds = s.G.size();
    if (folds < 2) return solve_ridge(G, H, F, O, opt.ridge, prior);
    std::vector<double> grid = {1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0};
    grid.push_back(opt.ridge);
    // err[g][o]: held-out squared error of column o with ridge grid[g], summed over folds.
    std::vector<std::vector<double>> err(grid.size(), std::vector<double>(size_t(O), 0.0));
    auto run_fold = [&](size_t k, std::vector<std::vector<double>>& e) {
        std::vector<double> Gt = G, Ht = H;
        for (size_t i = 0; i < Gt.size(); ++i) Gt[i] -= s.G[k][i];
        for (size_t i = 0; i < Ht.size(); ++i) Ht[i] -= s.H[k][i];
        for (size_t g = 0; g < grid.size(); ++g) {
            const std::vector<double> B = solve_ridge(Gt, Ht, F, O, grid[g], prior);
            add_column_errors(s.G[k], s.H[k], s.yy[k], B, F, O, e[g]);
        }
    };
    const size_t T = std::max<size_t>(1, std::min<size_t>(folds, size_t(std::max(1, threads))));
    std::vector<std::vector<std::vector<double>>> part(folds, err);
    for (size_t k0 = 0; k0 < folds; k0 += T) {
        std::vector<std::thread> th;
        for (size_t k = k0; k < std::min(folds, k0 + T); ++k) th.emplace_back(run_fold, k, std::ref(part[k]));
        for (auto& t : th) t.join();
    }
    for (const auto& p : part)
        for (size_t g = 0; g < grid.size(); ++g)
            for (int64_t o = 0; o < O; ++o) err[g][size_t(o)] += p[g][size_t(o)];
    std::vector<size_t> pick(size_t(O), 0);
    for (int64_t o = 0; o < O; ++o) {
        for (size_t g = 1; g + 1 < grid.size(); ++g)  // the last entry is the fixed option
            if (err[g][size_t(o)] < err[pick[size_t(o)]][size_t(o)]) pick[size_t(o)] = g;
        cv += err[pick[size_t(o)]][size_t(o)];
        cv_fixed += err.back()[size_t(o)];
    }
    std::vector<double> B(size_t(F * O), 0.0);
    for (size_t g = 0; g + 1 < grid.size(); ++g) {
        if (std::find(pick.begin(), pick.end(), g) == pick.end()) continue;
        const std::vector<double> Bg = solve_ridge(G, H, F, O, grid[g], prior);
        for (int64_t o = 0; o < O; ++o)
            if (pick[size_t(o)] == g)
                for (int64_t i = 0; i < F; ++i) B[size_t(i * O + o)] = Bg[size_t(i * O + o)];
    }
    return B;
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
    const int depth = opt.iterations > 1 ? opt.refit_depth : 0;
    std::set<std::string> frontier = refit;
    for (int d = 0; d < depth; ++d) {  // each round: the readers of the previous round's outputs
        std::set<std::string> next;
        for (const auto& grp : an.groups) {
            bool from_frontier = false;
            for (const auto& p : grp.producers) from_frontier = from_frontier || frontier.count(p.conv);
            if (!from_frontier) continue;
            for (const auto& u : grp.uses) {
                if (refit.count(u.conv) || late.count(u.conv)) continue;
                const Node* n = find_node(g0, u.conv);
                YOLOC_CHECK(n, "conv ", u.conv, " not found");
                late.insert(u.conv);
                next.insert(u.conv);
                todo.push_back({u.conv, std::vector<char>(size_t(g0.find_initializer(n->inputs[1])->dim(1)), 1)});
            }
        }
        frontier = next;
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
    // The prior: each consumer's unpruned weights on the kept input channels (feature
    // order kept channel, tap) and its bias.
    for (auto& s : systems) {
        const int64_t K = s.kh * s.kw;
        s.B0.assign(size_t(s.F * s.O), 0.0);
        for (const auto& c : s.cons)
            for (size_t oi = 0; oi < c.kout.size(); ++oi) {
                const int64_t o = c.kout[oi], col = c.col0 + int64_t(oi);
                const float* wr = c.w.data<float>() + o * s.C * K;
                for (size_t qi = 0; qi < s.kin.size(); ++qi)
                    for (int64_t k = 0; k < K; ++k)
                        s.B0[size_t((int64_t(qi) * K + k) * s.O + col)] = wr[s.kin[qi] * K + k];
                s.B0[size_t((s.F - 1) * s.O + col)] = c.b.data<float>()[o];
            }
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
    int threads = opt.threads > 0 ? opt.threads : yoloc::limits::usable_cores();

    // Steps: pass 1 fits every system but the late ones at once, on the unpruned model's
    // inputs. Each later pass refits on the pruned model's own inputs: every system at
    // once (Jacobi), or with opt.sequential one system at a time in graph order, each on
    // the model that already carries the refits before it (Gauss-Seidel: He et al.'s
    // layer-by-layer scheme; with a refit depth the all-at-once pass fits a conv on inputs
    // its refitted predecessor no longer produces).
    std::map<std::string, size_t> node_pos;
    for (size_t i = 0; i < g0.nodes.size(); ++i) node_pos[g0.nodes[i].name] = i;
    std::vector<size_t> by_pos(systems.size());
    std::vector<size_t> sys_pos(systems.size(), SIZE_MAX);
    for (size_t si = 0; si < systems.size(); ++si) {
        by_pos[si] = si;
        for (const auto& c : systems[si].cons) sys_pos[si] = std::min(sys_pos[si], node_pos.at(c.conv));
    }
    std::stable_sort(by_pos.begin(), by_pos.end(), [&](size_t a, size_t b) { return sys_pos[a] < sys_pos[b]; });
    struct Step {
        int iter;
        std::vector<char> active;
    };
    std::vector<Step> steps;
    const int iterations = std::max(1, opt.iterations);
    for (int iter = 0; iter < iterations; ++iter) {
        if (iter == 0 || !opt.sequential) {
            Step st{iter, std::vector<char>(systems.size(), 0)};
            for (size_t si = 0; si < systems.size(); ++si) st.active[si] = !(systems[si].late && iter == 0);
            steps.push_back(st);
        } else {
            for (size_t si : by_pos) {
                Step st{iter, std::vector<char>(systems.size(), 0)};
                st.active[si] = 1;
                steps.push_back(st);
            }
        }
    }
    // The targets (the unpruned convs' outputs at the sampled positions) depend only on the
    // system and the image: kept from the pass that computed them, so that the later passes
    // run the unpruned model only for systems seen for the first time (the sequential pass
    // has one step per system, and ran both models for every image of every step).
    std::vector<std::vector<std::vector<double>>> ycache(systems.size());
    if (iterations > 1 && opt.cache_targets)
        for (auto& v : ycache) v.resize(size_t(calib.count));
    int done = 0, total = int(steps.size()) * calib.count;
    double err_before = 0, err_after = 0, cv = 0, cv_fixed = 0;
    int64_t cnt = 0;
    for (size_t step = 0; step < steps.size(); ++step) {
        const int iter = steps[step].iter;
        const std::vector<char>& active = steps[step].active;
        if (step == 0 || steps[step - 1].iter != iter) {  // the report covers the last pass
            err_before = err_after = cv = cv_fixed = 0;
            cnt = 0;
        }
        std::unique_ptr<Executor> ex1;
        if (iter > 0) ex1 = make_executor(with_taps(pruned), "fast", eo);
        const int folds = std::max(1, std::min(opt.ridge_folds, calib.count));
        for (size_t si = 0; si < systems.size(); ++si) {
            if (!active[si]) continue;
            System& s = systems[si];
            s.G.assign(size_t(folds), std::vector<double>(size_t(s.F * s.F), 0.0));
            s.H.assign(size_t(folds), std::vector<double>(size_t(s.F * s.O), 0.0));
            s.yy.assign(size_t(folds), std::vector<double>(size_t(s.O), 0.0));
            s.drop_err = 0;
            s.n = 0;
        }
        for (int img = 0; img < calib.count; ++img) {
            TensorMap in{{input, calib.load(img)}};
            auto cached = [&](size_t si) { return !ycache[si].empty() && !ycache[si][size_t(img)].empty(); };
            bool need0 = !ex1;  // pass 1 takes its features from the unpruned model too
            for (size_t si = 0; si < systems.size(); ++si) need0 = need0 || (active[si] && !cached(si));
            TensorMap out0, out1;
            if (need0) out0 = ex0->run(in);
            if (ex1) out1 = ex1->run(in);
            for (size_t si = 0; si < systems.size(); ++si) {
                System& s = systems[si];
                if (!active[si]) continue;
                const bool use_cache = ex1 && cached(si);
                const Tensor* X0 = use_cache ? nullptr : &out0.at(s.x);
                const Tensor* X1 = ex1 ? &out1.at(s.x) : nullptr;
                YOLOC_CHECK(!X0 || (X0->rank() == 4 && X0->dim(1) == s.C), "reconstruction: unexpected shape of ", s.x);
                YOLOC_CHECK(!X1 || (X1->rank() == 4 && X1->dim(1) == int64_t(s.kin.size())),
                            "reconstruction: unexpected shape of ", s.x, " in the pruned model");
                int64_t H = (X0 ? X0 : X1)->dim(2), W = (X0 ? X0 : X1)->dim(3);
                int64_t Ho = (H + s.pt + s.pb - s.dh * (s.kh - 1) - 1) / s.sh + 1;
                int64_t Wo = (W + s.pl + s.pr - s.dw * (s.kw - 1) - 1) / s.sw + 1;
                int64_t P = std::min<int64_t>(opt.samples_per_image, Ho * Wo);
                std::mt19937_64 rng(uint64_t(img) * 1000003u + si * 7919u + 12345u);
                std::uniform_int_distribution<int64_t> pos(0, Ho * Wo - 1);
                int64_t K = s.kh * s.kw, Cin = s.C;
                std::vector<double> feats(size_t(P * s.F)), full(size_t(Cin * K)), Y(size_t(P * s.O));
                const float* x0 = X0 ? X0->data<float>() : nullptr;
                const float* x1 = X1 ? X1->data<float>() : nullptr;
                const std::vector<double>* yc = use_cache ? &ycache[si][size_t(img)] : nullptr;
                int64_t kin_n = int64_t(s.kin.size());
                for (int64_t p = 0; p < P; ++p) {
                    int64_t q = pos(rng), oy = q / Wo, ox = q % Wo;
                    if (x0)
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
                            if (yc)
                                y = (*yc)[size_t(p * s.O + c.col0 + int64_t(oi))];
                            else
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
                if (!yc && !ycache[si].empty()) ycache[si][size_t(img)] = Y;
                const size_t fold = size_t(img % folds);
                accumulate_gram(s.G[fold], feats, P, s.F, threads);
                for (int64_t p = 0; p < P; ++p) {
                    const double* f = &feats[size_t(p * s.F)];
                    const double* y = &Y[size_t(p * s.O)];
                    for (int64_t i = 0; i < s.F; ++i) {
                        double fi = f[i];
                        if (fi == 0) continue;
                        double* h = &s.H[fold][size_t(i * s.O)];
                        for (int64_t o = 0; o < s.O; ++o) h[o] += fi * y[o];
                    }
                    for (int64_t o = 0; o < s.O; ++o) s.yy[fold][size_t(o)] += y[o] * y[o];
                }
                s.n += P;
            }
            if (opt.progress) opt.progress(++done, total);
        }

        // Solve and write the refitted weights into the pruned model.
        for (size_t si = 0; si < systems.size(); ++si) {
            if (!active[si]) continue;
            System& s = systems[si];
            std::vector<double> B = solve_system(s, opt, threads, cv, cv_fixed);
            // Residual on all calibration samples.
            std::vector<double> e(size_t(s.O), 0.0);
            add_column_errors(sum_folds(s.G), sum_folds(s.H), sum_folds(s.yy), B, s.F, s.O, e);
            for (double v : e) err_after += v;
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
        rep.samples = systems[size_t(std::find(active.begin(), active.end(), 1) - active.begin())].n;
        rep.consumers = consumers;
        rep.mse_before = cnt ? err_before / double(cnt) : 0;
        rep.mse_after = cnt ? err_after / double(cnt) : 0;
        rep.cv_mse = cnt ? cv / double(cnt) : 0;
        rep.cv_mse_fixed = cnt ? cv_fixed / double(cnt) : 0;
    }
    return rep;
}

}  // namespace yoloc

namespace yoloc {

namespace {

// Gives node `n` its own copy of input k when another node reads the same initializer.
void own_input(Graph& g, Node& n, size_t k) {
    if (k >= n.inputs.size() || n.inputs[k].empty()) return;
    int readers = 0;
    for (const auto& x : g.nodes)
        for (const auto& in : x.inputs) readers += in == n.inputs[k];
    if (readers > 1) {
        std::string nn = g.unique_name(n.inputs[k] + "_corr");
        g.initializers[nn] = g.initializers.at(n.inputs[k]);
        n.inputs[k] = nn;
    }
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double silu_d(double v) {
    double sg = 1.0 / (1.0 + std::exp(-v));
    return sg * (1.0 + v * (1.0 - sg));
}

// (s, t) minimising sum (silu(s x + t) - silu(y))^2 by damped Gauss-Newton from the identity;
// keeps the identity when no step lowers the loss. With !scale only t moves.
void fit_silu_affine(const std::vector<float>& x, const std::vector<float>& y, bool scale, double& s_out,
                     double& t_out) {
    size_t n = x.size();
    std::vector<double> ty(n);
    for (size_t i = 0; i < n; ++i) ty[i] = silu(y[i]);
    auto loss = [&](double s, double t) {
        double l = 0;
        for (size_t i = 0; i < n; ++i) {
            double r = silu(s * x[i] + t) - ty[i];
            l += r * r;
        }
        return l;
    };
    double s = 1, t = 0, cur = loss(s, t), mu = 1e-3;
    for (int it = 0; it < 20; ++it) {
        double a11 = 0, a12 = 0, a22 = 0, g1 = 0, g2 = 0;
        for (size_t i = 0; i < n; ++i) {
            double z = s * x[i] + t, d = silu_d(z), r = silu(z) - ty[i];
            double j1 = d * x[i], j2 = d;
            a11 += j1 * j1, a12 += j1 * j2, a22 += j2 * j2, g1 += j1 * r, g2 += j2 * r;
        }
        bool stepped = false;
        for (int tries = 0; tries < 8 && !stepped; ++tries, mu *= 10) {
            double ds = 0, dt;
            if (scale) {
                double b11 = a11 * (1 + mu) + 1e-12, b22 = a22 * (1 + mu) + 1e-12, det = b11 * b22 - a12 * a12;
                if (!(det > 0)) continue;
                ds = -(b22 * g1 - a12 * g2) / det;
                dt = -(b11 * g2 - a12 * g1) / det;
            } else {
                dt = -g2 / (a22 * (1 + mu) + 1e-12);
            }
            double ns = std::min(2.0, std::max(0.5, s + ds)), nt = t + dt, nl = loss(ns, nt);
            if (nl < cur) {
                s = ns, t = nt, cur = nl, stepped = true;
                mu = std::max(1e-6, mu / 100);
            }
        }
        if (!stepped) break;
    }
    s_out = s;
    t_out = t;
}

}  // namespace

AffineCorrectionReport correct_downstream(const Model& original, Model& pruned, const ChannelAnalysis& an,
                                          const KeepPlan& plan, const CalibSource& calib,
                                          const ReconstructOptions& opt) {
    AffineCorrectionReport rep;
    if (!opt.correct || calib.count <= 0) return rep;
    const Graph& g0 = original.graph;
    auto masks = prune_detail::conv_masks(g0, an, plan);

    // Convs downstream of a changed conv (their input differs from the unpruned model's).
    std::set<std::string> changed;
    for (const auto& kv : masks.out)
        if (std::count(kv.second.begin(), kv.second.end(), 0)) changed.insert(kv.first);
    for (const auto& kv : masks.in)
        if (std::count(kv.second.begin(), kv.second.end(), 0)) changed.insert(kv.first);
    std::set<std::string> dirty;  // values that differ
    std::vector<std::string> convs;
    for (const auto& n : pruned.graph.nodes) {
        bool in_dirty = false;
        for (const auto& in : n.inputs) in_dirty = in_dirty || dirty.count(in);
        bool is_conv = n.op_type == "Conv" && n.inputs.size() > 1 && pruned.graph.is_initializer(n.inputs[1]);
        if (in_dirty || (is_conv && changed.count(n.name)))
            for (const auto& o : n.outputs) dirty.insert(o);
        if (is_conv && in_dirty && !n.outputs.empty()) {
            const Node* n0 = find_node(g0, n.name);
            if (!n0 || n0->outputs.empty() || n0->outputs[0] != n.outputs[0]) continue;
            if (!opt.correct_head_outputs) {
                // The Detect head's box/class convs and the DFL feed non-channel-wise ops: pinned groups.
                bool pinned = false;
                for (const auto& grp : an.groups)
                    for (const auto& p : grp.producers)
                        if (p.conv == n.name && !grp.prunable) pinned = true;
                if (pinned) continue;
            }
            convs.push_back(n.name);
        }
    }
    rep.convs = int(convs.size());
    if (convs.empty()) return rep;

    // Level of each corrected conv: how many corrected convs lie on the longest path before it.
    // Convs of one level do not feed each other, so one level is fitted per pass over the
    // images, on the pruned model that already carries the corrections of every earlier level.
    std::map<std::string, int> value_level;
    std::map<std::string, int> conv_level;
    std::set<std::string> to_fix(convs.begin(), convs.end());
    int levels = 0;
    for (const auto& n : pruned.graph.nodes) {
        int l = 0;
        for (const auto& in : n.inputs) {
            auto it = value_level.find(in);
            if (it != value_level.end()) l = std::max(l, it->second);
        }
        int out_l = l;
        if (to_fix.count(n.name)) {
            conv_level[n.name] = l;
            levels = std::max(levels, l + 1);
            out_l = l + 1;
        }
        for (const auto& o : n.outputs) value_level[o] = out_l;
    }

    struct Acc {
        std::string conv, value;
        std::vector<int64_t> kout;  // original output channel of each pruned channel
        std::vector<double> n, sx, sy, sxx, sxy, syy;
        bool silu = false;                  // output read only through SiLU (Sigmoid + Mul)
        std::vector<std::vector<float>> px, py;  // sampled (pruned, unpruned) pairs per channel
    };
    // Whether a value is read only as x * sigmoid(x).
    auto only_silu = [&](const std::string& v) {
        int sig = 0, mul = 0, other = 0;
        for (const auto& n : pruned.graph.nodes)
            for (const auto& in : n.inputs)
                if (in == v) {
                    if (n.op_type == "Sigmoid") ++sig;
                    else if (n.op_type == "Mul") ++mul;
                    else ++other;
                }
        for (const auto& o : pruned.graph.outputs) other += o.name == v;
        return sig == 1 && mul == 1 && other == 0;
    };
    std::string input;
    for (const auto& in : g0.inputs)
        if (!g0.is_initializer(in.name)) input = in.name;
    // The model cut down to computing `values` (the taps only).
    auto truncated = [&](const Model& m, const std::vector<std::string>& values) {
        Model t = m;
        t.graph.outputs.clear();
        for (const auto& v : values) {
            ValueInfo vi;
            vi.name = v;
            vi.has_shape = false;
            t.graph.outputs.push_back(vi);
        }
        remove_dead(t.graph);
        return t;
    };
    ExecutorOptions eo;
    eo.threads = opt.threads;
    int images = std::min(calib.count, opt.correct_images > 0 ? opt.correct_images : calib.count);
    int done = 0, total = levels * images;
    double err_first = 0, var_first = 0, err_last = 0, var_last = 0;
    for (int level = 0; level < levels; ++level) {
        std::vector<Acc> accs;
        std::vector<std::string> taps;
        for (const auto& c : convs) {
            if (conv_level[c] != level) continue;
            const Node* n0 = find_node(g0, c);
            Acc a;
            a.conv = c;
            a.value = n0->outputs[0];
            int64_t O = g0.find_initializer(n0->inputs[1])->dim(0);
            auto it = masks.out.find(c);
            for (int64_t o = 0; o < O; ++o)
                if (it == masks.out.end() || it->second[size_t(o)]) a.kout.push_back(o);
            for (auto* v : {&a.n, &a.sx, &a.sy, &a.sxx, &a.sxy, &a.syy}) v->assign(a.kout.size(), 0.0);
            a.silu = opt.correct_post_activation && only_silu(a.value);
            a.px.resize(a.kout.size());
            a.py.resize(a.kout.size());
            accs.push_back(a);
            taps.push_back(a.value);
        }
        if (accs.empty()) continue;
        auto ex0 = make_executor(truncated(original, taps), "fast", eo);
        auto ex1 = make_executor(truncated(pruned, taps), "fast", eo);
        for (int img = 0; img < images; ++img) {
            TensorMap in{{input, calib.load(img)}};
            TensorMap o0 = ex0->run(in);
            TensorMap o1 = ex1->run(in);
            for (auto& a : accs) {
                const Tensor& Y = o0.at(a.value);
                const Tensor& X = o1.at(a.value);
                YOLOC_CHECK(X.rank() == 4 && Y.rank() == 4 && X.dim(1) == int64_t(a.kout.size()) &&
                                X.dim(2) == Y.dim(2) && X.dim(3) == Y.dim(3),
                            "affine correction: unexpected shape of ", a.value);
                int64_t HW = X.dim(2) * X.dim(3);
                if (a.silu) {
                    std::mt19937_64 rng(uint64_t(img) * 2654435761u + uint64_t(level) * 97u + 5u);
                    std::uniform_int_distribution<int64_t> pos(0, HW - 1);
                    int64_t P = std::min<int64_t>(HW, opt.correct_samples);
                    for (int64_t q = 0; q < P; ++q) {
                        int64_t p = P == HW ? q : pos(rng);
                        for (size_t j = 0; j < a.kout.size(); ++j) {
                            a.px[j].push_back(X.data<float>()[int64_t(j) * HW + p]);
                            a.py[j].push_back(Y.data<float>()[a.kout[j] * HW + p]);
                        }
                    }
                }
                for (size_t j = 0; j < a.kout.size(); ++j) {
                    const float* x = X.data<float>() + int64_t(j) * HW;
                    const float* y = Y.data<float>() + a.kout[j] * HW;
                    double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
                    for (int64_t p = 0; p < HW; ++p) {
                        double xv = x[p], yv = y[p];
                        sx += xv;
                        sy += yv;
                        sxx += xv * xv;
                        sxy += xv * yv;
                        syy += yv * yv;
                    }
                    a.n[j] += double(HW);
                    a.sx[j] += sx;
                    a.sy[j] += sy;
                    a.sxx[j] += sxx;
                    a.sxy[j] += sxy;
                    a.syy[j] += syy;
                }
            }
            if (opt.progress) opt.progress(++done, total);
        }
        double err_b = 0, err_a = 0, var = 0;
        for (auto& a : accs) {
            Node* n = nullptr;
            for (auto& x : pruned.graph.nodes)
                if (x.name == a.conv) n = &x;
            YOLOC_CHECK(n, "affine correction: conv ", a.conv, " missing from the pruned model");
            own_input(pruned.graph, *n, 1);
            own_input(pruned.graph, *n, 2);
            Tensor& w = pruned.graph.initializers.at(n->inputs[1]);
            int64_t O = w.dim(0), per = w.numel() / O;
            YOLOC_CHECK(O == int64_t(a.kout.size()), "affine correction: ", a.conv, " has ", O, " output channels");
            Tensor nw = w;
            Tensor nb(DType::Float32, {O});
            bool has_b = n->inputs.size() > 2 && !n->inputs[2].empty();
            for (int64_t j = 0; j < O; ++j) {
                double N = a.n[size_t(j)];
                double mx = a.sx[size_t(j)] / N, my = a.sy[size_t(j)] / N;
                double exx = a.sxx[size_t(j)] / N, exy = a.sxy[size_t(j)] / N, eyy = a.syy[size_t(j)] / N;
                double vx = std::max(0.0, exx - mx * mx), vy = std::max(0.0, eyy - my * my);
                double cxy = exy - mx * my;
                double s = 1.0;
                if (opt.correct_scale && vx > 1e-12) s = opt.correct_moments ? std::sqrt(vy / vx) : cxy / vx;
                s = std::min(2.0, std::max(0.5, s));
                double t = my - s * mx;
                if (a.silu) fit_silu_affine(a.px[size_t(j)], a.py[size_t(j)], opt.correct_scale, s, t);
                // E[(y - (s x + t))^2] = eyy - 2 s exy - 2 t my + s^2 exx + 2 s t mx + t^2
                err_b += std::max(0.0, eyy - 2 * exy + exx);
                err_a += std::max(0.0, eyy - 2 * s * exy - 2 * t * my + s * s * exx + 2 * s * t * mx + t * t);
                var += vy;
                float* wr = nw.data<float>() + j * per;
                for (int64_t k = 0; k < per; ++k) wr[k] = float(s * wr[k]);
                double b0 = has_b ? pruned.graph.initializers.at(n->inputs[2]).data<float>()[j] : 0.0;
                nb.data<float>()[j] = float(s * b0 + t);
            }
            w = nw;
            if (has_b) {
                pruned.graph.initializers.at(n->inputs[2]) = nb;
            } else {
                std::string bn = pruned.graph.unique_name(a.conv + "_bias");
                pruned.graph.initializers[bn] = nb;
                n->inputs.resize(3);
                n->inputs[2] = bn;
            }
        }
        err_first += err_b;
        err_last += err_a;
        var_first += var;
        var_last += var;
    }
    rep.levels = levels;
    rep.rel_mse_before = var_first > 0 ? err_first / var_first : 0;
    rep.rel_mse_after = var_last > 0 ? err_last / var_last : 0;
    return rep;
}

}  // namespace yoloc
