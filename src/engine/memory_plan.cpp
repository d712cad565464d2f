#include "engine/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <numeric>

#include "core/error.h"

namespace yoloc {
namespace engine {

namespace {
int64_t align_up(int64_t x) { return (x + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }
bool overlap(int32_t a0, int32_t a1, int32_t b0, int32_t b1) { return a0 <= b1 && b0 <= a1; }
}  // namespace

OpDag op_dag(const Plan& p, const MemoryPlan* mp) {
    // What an op reads and writes: a channel range of a buffer (the whole buffer when
    // c == 0 or not an NHWC activation).
    struct Access {
        int32_t buf;
        int64_t c0, c1;
    };
    const size_t n = p.ops.size();
    auto acc = [&](const View& v) {
        const auto& b = p.buffers[size_t(v.buf)];
        if (v.c == 0 || b.kind != BufferKind::Activation) return Access{v.buf, 0, INT64_MAX};
        return Access{v.buf, v.c_off, v.c_off + v.c};
    };
    std::vector<std::vector<Access>> rd(n), wr(n);
    for (size_t i = 0; i < n; ++i) {
        for (const auto& v : p.ops[i].in) rd[i].push_back(acc(v));
        wr[i].push_back(acc(p.ops[i].out));
        for (const auto& v : p.ops[i].more_out) wr[i].push_back(acc(v));
    }
    auto clash = [&](const Access& a, const Access& b) {
        if (a.buf == b.buf) return a.c0 < b.c1 && b.c0 < a.c1;
        if (!mp) return false;
        const int64_t a0 = mp->offsets[size_t(a.buf)], a1 = a0 + mp->sizes[size_t(a.buf)];
        const int64_t b0 = mp->offsets[size_t(b.buf)], b1 = b0 + mp->sizes[size_t(b.buf)];
        return a0 < b1 && b0 < a1;
    };
    auto any = [&](const std::vector<Access>& x, const std::vector<Access>& y) {
        for (const auto& a : x)
            for (const auto& b : y)
                if (clash(a, b)) return true;
        return false;
    };
    const size_t words = (n + 63) / 64;
    OpDag d;
    d.deps.assign(n, {});
    d.anc.assign(n, std::vector<uint64_t>(words, 0));
    for (size_t i = 0; i < n; ++i) {
        std::vector<int> direct;
        for (size_t j = 0; j < i; ++j)
            if (any(wr[j], rd[i]) || any(wr[j], wr[i]) || any(rd[j], wr[i])) direct.push_back(int(j));
        for (int dj : direct) {
            d.anc[i][size_t(dj) / 64] |= uint64_t(1) << (size_t(dj) % 64);
            for (size_t w = 0; w < words; ++w) d.anc[i][w] |= d.anc[size_t(dj)][w];
        }
        // Keep only the deps no other dep already implies.
        for (int dj : direct) {
            bool implied = false;
            for (int e : direct)
                if (e != dj && d.is_anc(size_t(e), dj)) implied = true;
            if (!implied) d.deps[i].push_back(dj);
        }
    }
    return d;
}

namespace {

// Live op ranges in op order; sizes aligned. The input is written by the host before
// op 0 (-1); outputs are read after the last op (nops).
MemoryPlan live_ranges(const Plan& plan) {
    const size_t nb = plan.buffers.size();
    MemoryPlan mp;
    mp.offsets.assign(nb, 0);
    mp.sizes.assign(nb, 0);
    const int32_t nops = int32_t(plan.ops.size());
    mp.first.assign(nb, nops);
    mp.last.assign(nb, -1);
    auto touch = [&](int32_t b, int32_t i) {
        mp.first[size_t(b)] = std::min(mp.first[size_t(b)], i);
        mp.last[size_t(b)] = std::max(mp.last[size_t(b)], i);
    };
    for (int32_t i = 0; i < nops; ++i) {
        const PlanOp& op = plan.ops[size_t(i)];
        for (const auto& v : op.in) touch(v.buf, i);
        touch(op.out.buf, i);
        for (const auto& v : op.more_out) touch(v.buf, i);
    }
    touch(plan.input_buf, -1);
    for (int32_t o : plan.output_bufs) touch(o, nops);
    for (size_t b = 0; b < nb; ++b) {
        mp.sizes[b] = align_up(plan.buffers[b].bytes());
        mp.unshared_bytes += mp.sizes[b];
        if (mp.last[b] < mp.first[b]) mp.first[b] = mp.last[b] = -1;  // unused: lives nowhere
    }
    return mp;
}

std::vector<char> conflicts_as(const Plan& plan, const MemoryPlan& live, Plan::MemoryMode mode) {
    // live: first/last from live_ranges (used by Sequential).
    const size_t nb = plan.buffers.size();
    std::vector<char> c(nb * nb, 0);
    if (mode != Plan::MemoryMode::Concurrent) {
        // Sequential; and Bounded, whose buffers may share wherever op order allows (the
        // runtime's DAG then orders the ops that share, op_dag with the memory plan).
        for (size_t a = 0; a < nb; ++a)
            for (size_t b = 0; b < nb; ++b)
                c[a * nb + b] = overlap(live.first[a], live.last[a], live.first[b], live.last[b]);
        return c;
    }
    // Concurrent: the ops that use each buffer (-1: the host's input copy, nops: the
    // host's output copy), and "every use of a precedes every use of b" in the DAG.
    const int32_t nops = int32_t(plan.ops.size());
    std::vector<std::vector<int32_t>> uses(nb);
    for (int32_t i = 0; i < nops; ++i) {
        const PlanOp& op = plan.ops[size_t(i)];
        for (const auto& v : op.in) uses[size_t(v.buf)].push_back(i);
        uses[size_t(op.out.buf)].push_back(i);
        for (const auto& v : op.more_out) uses[size_t(v.buf)].push_back(i);
    }
    uses[size_t(plan.input_buf)].push_back(-1);
    for (int32_t o : plan.output_bufs) uses[size_t(o)].push_back(nops);
    const OpDag dag = op_dag(plan, nullptr);
    auto precedes = [&](int32_t x, int32_t y) {  // op x finishes before op y starts
        if (x == -1) return y != -1;
        if (y == nops) return x != nops;
        if (x == nops || y == -1) return false;
        return dag.is_anc(size_t(y), x);
    };
    auto before = [&](size_t a, size_t b) {
        for (int32_t x : uses[a])
            for (int32_t y : uses[b])
                if (!precedes(x, y)) return false;
        return true;
    };
    for (size_t a = 0; a < nb; ++a)
        for (size_t b = a; b < nb; ++b) {
            if (uses[a].empty() || uses[b].empty()) continue;  // unused: lives nowhere
            const char v = a == b || !(before(a, b) || before(b, a));
            c[a * nb + b] = c[b * nb + a] = v;
        }
    return c;
}

}  // namespace

std::vector<char> buffer_conflicts(const Plan& plan, const MemoryPlan& live) {
    return conflicts_as(plan, live, plan.memory_mode);
}

double op_cost_estimate(const Plan& p, size_t i) {
    const PlanOp& op = p.ops[i];
    const auto& ob = p.buffers[size_t(op.out.buf)].shape;
    double out = 1;
    for (int64_t d : ob) out *= double(d);
    if (op.kind == OpKind::Conv && ob.size() == 4 && !op.in.empty()) {
        // Output pixels x output channels x K at ~30 G multiply-adds per ms (the rate of
        // small, latency-bound layers at batch 1), plus ~2.5 us a kernel.
        const double pix = double(ob[0]) * double(ob[1]) * double(ob[2]);
        const double k = double(op.kh) * double(op.kw) * double(op.in[0].c) / double(std::max(1, op.group));
        return 2.5 + pix * double(op.out.c) * k / 3e7;
    }
    return 2.5 + out / 2e6;  // element ops: a few bytes per element at a fraction of bandwidth
}

std::vector<char> critical_chain(const Plan& p, const OpDag& dag) {
    const size_t n = p.ops.size();
    std::vector<char> chain(n, 0);
    if (n == 0) return chain;
    std::vector<std::vector<int>> succ(n);
    for (size_t i = 0; i < n; ++i)
        for (int d : dag.deps[i]) succ[size_t(d)].push_back(int(i));
    // Costliest remaining path from each op (op order is topological).
    std::vector<double> bottom(n, 0.0);
    for (size_t k = n; k-- > 0;) {
        double best = 0.0;
        for (int s : succ[k]) best = std::max(best, bottom[size_t(s)]);
        bottom[k] = op_cost_estimate(p, k) + best;
    }
    size_t cur = 0;  // op 0 has no predecessors; another root wins only when costlier
    for (size_t i = 1; i < n; ++i)
        if (dag.deps[i].empty() && bottom[i] > bottom[cur]) cur = i;
    while (true) {
        chain[cur] = 1;
        int next = -1;
        for (int s : succ[cur])
            if (next < 0 || bottom[size_t(s)] > bottom[size_t(next)]) next = s;
        if (next < 0) break;
        cur = size_t(next);
    }
    return chain;
}

namespace {

// Greedy by size (largest first), each buffer at the lowest offset where it overlaps no
// placed buffer it must be kept apart from (`apart`, nb x nb): simple and close to
// optimal for chain-like CNN graphs. With `fallback`: a buffer that would end past
// `cap` there goes to the lowest offset that only `fallback` forbids instead.
void place_buffers(MemoryPlan& mp, const std::vector<char>& apart, const std::vector<char>* fallback = nullptr,
                   int64_t cap = 0) {
    const size_t nb = mp.sizes.size();
    std::vector<size_t> order(nb);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mp.sizes[a] > mp.sizes[b]; });
    std::vector<size_t> done;
    auto lowest = [&](size_t b, const std::vector<char>& conflict) {
        std::vector<std::pair<int64_t, int64_t>> busy;
        for (size_t o : done)
            if (conflict[b * nb + o]) busy.push_back({mp.offsets[o], mp.offsets[o] + mp.sizes[o]});
        std::sort(busy.begin(), busy.end());
        int64_t off = 0;
        for (const auto& r : busy) {
            if (r.first >= off + mp.sizes[b]) break;
            off = std::max(off, r.second);
        }
        return off;
    };
    mp.arena_bytes = 0;
    for (size_t b : order) {
        int64_t off = lowest(b, apart);
        if (fallback && off + mp.sizes[b] > cap) off = lowest(b, *fallback);
        mp.offsets[b] = off;
        mp.arena_bytes = std::max(mp.arena_bytes, off + mp.sizes[b]);
        done.push_back(b);
    }
}

}  // namespace

int64_t bounded_arena_cap(int64_t weight_bytes, int64_t sequential_arena_bytes) {
    const int64_t w = (weight_bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
    const int64_t pages = (w + sequential_arena_bytes + kDevicePageBytes - 1) / kDevicePageBytes;
    return pages * kDevicePageBytes - w;
}

MemoryPlan plan_memory_bounded(const Plan& plan, int64_t cap) {
    MemoryPlan seq = live_ranges(plan), conc = seq;
    const std::vector<char> must_not_share = conflicts_as(plan, seq, Plan::MemoryMode::Sequential);
    const std::vector<char> independent = conflicts_as(plan, seq, Plan::MemoryMode::Concurrent);
    place_buffers(seq, must_not_share);
    if (cap < 0) cap = bounded_arena_cap(plan.device_weight_bytes(), seq.arena_bytes);
    place_buffers(conc, independent, &must_not_share, cap);
    // Greedy placements guarantee nothing: never more than the plain Concurrent arena.
    MemoryPlan plain = live_ranges(plan);
    place_buffers(plain, independent);
    return plain.arena_bytes < conc.arena_bytes ? plain : conc;
}

MemoryPlan plan_memory(const Plan& plan, int64_t budget_bytes) {
    MemoryPlan mp;
    if (plan.memory_mode == Plan::MemoryMode::Bounded) {
        mp = plan_memory_bounded(plan, -1);
    } else {
        mp = live_ranges(plan);
        place_buffers(mp, buffer_conflicts(plan, mp));
    }
    mp.weight_bytes = plan.device_weight_bytes();
    mp.workspace_bytes = 0;
    if (budget_bytes > 0 && mp.total_bytes() > budget_bytes)
        fail("the engine (batch ", plan.batch, ", ", precision_name(plan.precision), ", input ",
             shape_str(plan.input_shape), ") needs ", format_bytes(mp.total_bytes()), " of device memory (weights ",
             format_bytes(mp.weight_bytes), ", activations ", format_bytes(mp.arena_bytes), ", workspace ",
             format_bytes(mp.workspace_bytes), "), more than the budget of ", format_bytes(budget_bytes),
             ": use a smaller batch or image size, fp16, or a larger --memory-budget");
    return mp;
}

MemoryPlan plan_memory_within(Plan& plan, int64_t budget_bytes, Plan::MemoryMode preferred) {
    plan.memory_mode = preferred;
    MemoryPlan mp = plan_memory(plan, 0);
    if (budget_bytes <= 0 || mp.total_bytes() <= budget_bytes) return mp;
    // Overlapping branches costs arena bytes; a tight budget gets the smallest arena.
    plan.memory_mode = Plan::MemoryMode::Sequential;
    return plan_memory(plan, budget_bytes);
}

void verify_memory_plan(const Plan& plan, const MemoryPlan& mp) {
    const size_t nb = plan.buffers.size();
    YOLOC_CHECK(mp.offsets.size() == nb && mp.sizes.size() == nb && mp.first.size() == nb && mp.last.size() == nb,
                "memory plan does not match the plan");
    for (size_t a = 0; a < nb; ++a)
        YOLOC_CHECK(mp.offsets[a] % kArenaAlignment == 0 && mp.offsets[a] >= 0 &&
                        mp.offsets[a] + mp.sizes[a] <= mp.arena_bytes && mp.sizes[a] >= plan.buffers[a].bytes(),
                    "buffer ", plan.buffers[a].name, " is outside the arena");
    const std::vector<char> conflict = buffer_conflicts(plan, live_ranges(plan));
    for (size_t a = 0; a < nb; ++a)
        for (size_t b = a + 1; b < nb; ++b) {
            if (!conflict[a * nb + b]) continue;
            bool disjoint = mp.offsets[a] + mp.sizes[a] <= mp.offsets[b] || mp.offsets[b] + mp.sizes[b] <= mp.offsets[a];
            YOLOC_CHECK(disjoint, "buffers ", plan.buffers[a].name, " and ", plan.buffers[b].name,
                        " must not share bytes but overlap");
        }
}

int64_t parse_bytes(const std::string& s0) {
    std::string s;
    for (char c : s0)
        if (!std::isspace(static_cast<unsigned char>(c))) s += c;
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    YOLOC_CHECK(i > 0, "cannot read a size from '", s0, "' (e.g. 2GiB, 512MiB, 1000000)");
    double v = 0;
    try {
        v = std::stod(s.substr(0, i));
    } catch (...) {
        fail("cannot read a size from '", s0, "'");
    }
    std::string u = s.substr(i);
    for (auto& c : u) c = char(std::tolower(static_cast<unsigned char>(c)));
    double m = 1;
    if (u.empty() || u == "b") m = 1;
    else if (u == "k" || u == "kb") m = 1e3;
    else if (u == "m" || u == "mb") m = 1e6;
    else if (u == "g" || u == "gb") m = 1e9;
    else if (u == "kib") m = 1024.0;
    else if (u == "mib") m = 1024.0 * 1024;
    else if (u == "gib") m = 1024.0 * 1024 * 1024;
    else fail("unknown size unit '", s.substr(i), "' in '", s0, "' (use B, KB, MB, GB, KiB, MiB, GiB)");
    double r = v * m;
    YOLOC_CHECK(r >= 0 && r < 9.0e18, "size '", s0, "' is out of range");
    return int64_t(r);
}

std::string format_bytes(int64_t b) {
    char buf[64];
    if (b >= (int64_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(int64_t(1) << 30));
    else if (b >= (int64_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(1 << 20));
    else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
    else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
    return buf;
}

}  // namespace engine
}  // namespace yoloc
