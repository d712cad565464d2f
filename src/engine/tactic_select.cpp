#include "engine/tactic_select.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace yoloc {
namespace engine {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Set membership by tactic id (ids are small: conv_mma.h's tactic ranges).
struct Mask {
    std::vector<char> on;
    explicit Mask(const std::vector<int>& set) {
        for (int t : set) {
            if (t < 0) continue;
            if (size_t(t) >= on.size()) on.resize(size_t(t) + 1, 0);
            on[size_t(t)] = 1;
        }
    }
    bool has(int t) const { return t >= 0 && size_t(t) < on.size() && on[size_t(t)]; }
};

// The layer's fastest candidate in the set: (tactic, us), or (-1, inf). A fixed layer
// (no candidates) costs 0 when its tactic is in the set.
std::pair<int, double> best_in(const LayerTactics& l, const Mask& m) {
    if (l.tried.empty()) return m.has(l.current) ? std::make_pair(l.current, 0.0) : std::make_pair(-1, kInf);
    std::pair<int, double> b(-1, kInf);
    for (const auto& t : l.tried)
        if (t.second < b.second && m.has(t.first)) b = t;
    return b;
}

double cost_of(const std::vector<LayerTactics>& layers, const Mask& m) {
    double sum = 0;
    for (const auto& l : layers) sum += best_in(l, m).second;
    return sum;
}

std::vector<int> without(std::vector<int> s, int t) {
    s.erase(std::find(s.begin(), s.end(), t));
    return s;
}

bool in(const std::vector<int>& s, int t) { return std::find(s.begin(), s.end(), t) != s.end(); }

}  // namespace

double kernel_set_cost(const std::vector<LayerTactics>& layers, const std::vector<int>& set) {
    return cost_of(layers, Mask(set));
}

std::vector<int> cap_kernels(const std::vector<LayerTactics>& layers, int cap) {
    std::vector<int> picks;
    for (const auto& l : layers) picks.push_back(l.current);
    std::vector<int> set;
    for (int t : picks)
        if (!in(set, t)) set.push_back(t);
    if (cap <= 0 || int(set.size()) <= cap) return picks;

    // Kernels a fixed layer needs stay; the candidates that may enter the set.
    std::set<int> fixed, universe;
    for (const auto& l : layers) {
        if (l.tried.empty()) fixed.insert(l.current);
        for (const auto& t : l.tried)
            if (std::isfinite(t.second)) universe.insert(t.first);
    }
    auto cost = [&](const std::vector<int>& s) { return cost_of(layers, Mask(s)); };
    // From a starting set: greedy dropping of the kernel whose layers lose the least by
    // moving to the rest of the set, until `cap` remain; then the best single swap (a
    // kernel of the set for one outside it) while it lowers the total. Each swap strictly
    // lowers a finite sum over a finite family of sets, so it ends; the step bound only
    // guards against ties in floating point.
    auto improve = [&](std::vector<int> s) {
        for (int t : fixed)
            if (!in(s, t)) s.push_back(t);
        while (int(s.size()) > cap) {
            int drop = -1;
            double drop_cost = kInf;
            for (int t : s) {
                if (fixed.count(t)) continue;
                const double c = cost(without(s, t));
                if (c < drop_cost) {
                    drop = t;
                    drop_cost = c;
                }
            }
            if (drop < 0) break;  // only fixed kernels left, or every drop strands a layer
            s = without(s, drop);
        }
        double now = cost(s);
        for (int step = 0; step < 1000 && std::isfinite(now); ++step) {
            double best = now;
            int out = -1, enter = -1;
            for (int t : s) {
                if (fixed.count(t)) continue;
                std::vector<int> cand = without(s, t);
                cand.push_back(-1);
                for (int u : universe) {
                    if (in(s, u)) continue;
                    cand.back() = u;
                    const double c = cost(cand);
                    if (c < best - 1e-9) {
                        best = c;
                        out = t;
                        enter = u;
                    }
                }
            }
            if (out < 0) break;
            s = without(s, out);
            s.push_back(enter);
            now = best;
        }
        return std::make_pair(now, s);
    };
    // Two starts, the better end: the layers' current picks, and every candidate kernel
    // (single swaps stall where the best set differs in two kernels: the test's instance
    // is one for the first start).
    const auto from_picks = improve(set);
    const auto from_all = improve(std::vector<int>(universe.begin(), universe.end()));
    const Mask chosen(from_all.first < from_picks.first ? from_all.second : from_picks.second);
    for (size_t j = 0; j < layers.size(); ++j) {
        const auto b = best_in(layers[j], chosen);
        if (b.first >= 0) picks[j] = b.first;
    }
    return picks;
}

}  // namespace engine
}  // namespace yoloc
