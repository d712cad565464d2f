#include "engine/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>

#include "core/error.h"

namespace yoloc {
namespace engine {

namespace {
int64_t align_up(int64_t x) { return (x + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }
bool overlap(int32_t a0, int32_t a1, int32_t b0, int32_t b1) { return a0 <= b1 && b0 <= a1; }
}  // namespace

MemoryPlan plan_memory(const Plan& plan, int64_t budget_bytes) {
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
    // The input is written by the host before op 0; outputs are read after the last op.
    touch(plan.input_buf, -1);
    for (int32_t o : plan.output_bufs) touch(o, nops);
    for (size_t b = 0; b < nb; ++b) {
        mp.sizes[b] = align_up(plan.buffers[b].bytes());
        mp.unshared_bytes += mp.sizes[b];
        if (mp.last[b] < mp.first[b]) mp.first[b] = mp.last[b] = -1;  // unused: lives nowhere
    }

    // Greedy by size (largest first), each at the lowest offset that does not collide
    // with an already placed buffer live at the same time: simple and close to optimal
    // for chain-like CNN graphs.
    std::vector<size_t> order(nb);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mp.sizes[a] > mp.sizes[b]; });
    std::vector<size_t> done;
    for (size_t b : order) {
        std::vector<std::pair<int64_t, int64_t>> busy;
        for (size_t o : done)
            if (overlap(mp.first[b], mp.last[b], mp.first[o], mp.last[o]))
                busy.push_back({mp.offsets[o], mp.offsets[o] + mp.sizes[o]});
        std::sort(busy.begin(), busy.end());
        int64_t off = 0;
        for (const auto& r : busy) {
            if (r.first >= off + mp.sizes[b]) break;
            off = std::max(off, r.second);
        }
        mp.offsets[b] = off;
        mp.arena_bytes = std::max(mp.arena_bytes, off + mp.sizes[b]);
        done.push_back(b);
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

void verify_memory_plan(const Plan& plan, const MemoryPlan& mp) {
    const size_t nb = plan.buffers.size();
    YOLOC_CHECK(mp.offsets.size() == nb && mp.sizes.size() == nb, "memory plan does not match the plan");
    for (size_t a = 0; a < nb; ++a) {
        YOLOC_CHECK(mp.offsets[a] % kArenaAlignment == 0 && mp.offsets[a] + mp.sizes[a] <= mp.arena_bytes &&
                        mp.sizes[a] >= plan.buffers[a].bytes(), "buffer ", plan.buffers[a].name, " is outside the arena");
        for (size_t b = a + 1; b < nb; ++b) {
            if (mp.first[a] < -1 || mp.first[b] < -1) continue;
            if (mp.last[a] < mp.first[a] || mp.last[b] < mp.first[b]) continue;
            if (!overlap(mp.first[a], mp.last[a], mp.first[b], mp.last[b])) continue;
            bool disjoint = mp.offsets[a] + mp.sizes[a] <= mp.offsets[b] || mp.offsets[b] + mp.sizes[b] <= mp.offsets[a];
            YOLOC_CHECK(disjoint, "buffers ", plan.buffers[a].name, " and ", plan.buffers[b].name,
                        " are live together and overlap");
        }
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
