// Activation memory of a plan: buffers placed by liveness into one arena, so that
// buffers whose lifetimes do not overlap share bytes (what keeps a YOLOv8n engine
// small enough for a 2 GB Jetson).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan.h"

namespace yoloc {
namespace engine {

constexpr int64_t kArenaAlignment = 256;  // cudaMalloc alignment; keeps vector loads aligned
// cudaMalloc hands out large blocks in 2 MiB pages (cudaMemGetInfo moves in these steps):
// arena bytes that do not add a page to the engine's one block of weights + arena cost
// no device memory.
constexpr int64_t kDevicePageBytes = int64_t(2) << 20;

struct MemoryPlan {
    std::vector<int64_t> offsets;          // per plan buffer, bytes into the arena
    std::vector<int64_t> sizes;            // per plan buffer, aligned bytes
    std::vector<int32_t> first, last;      // live op range per buffer in op order (inclusive)
    int64_t arena_bytes = 0;
    int64_t unshared_bytes = 0;            // what one allocation per buffer would take
    int64_t weight_bytes = 0;
    int64_t workspace_bytes = 0;           // own kernels need none today
    int64_t total_bytes() const { return arena_bytes + weight_bytes + workspace_bytes; }
};

// The order the ops must keep: op j follows op i when j reads what i writes, or
// writes what i reads or writes (same buffer, overlapping channels); given a memory
// plan, also when their buffers share arena bytes. Ops on no path between each other
// may run at the same time (the runtime puts them on separate streams).
struct OpDag {
    std::vector<std::vector<int>> deps;      // per op: direct predecessors, transitively reduced
    std::vector<std::vector<uint64_t>> anc;  // per op: bitset of every predecessor
    bool is_anc(size_t op, int j) const {
        return j >= 0 && ((anc[op][size_t(j) / 64] >> (size_t(j) % 64)) & 1u);
    }
};
OpDag op_dag(const Plan& plan, const MemoryPlan* mp = nullptr);

// A rough cost of one op in microseconds on a desktop GPU at batch 1 (a fixed launch
// cost plus multiply-adds or elements at a nominal rate). Only compared between ops
// of one plan: it decides which chain is critical, not any reported figure.
double op_cost_estimate(const Plan& plan, size_t op);

// The critical chain of the op DAG under op_cost_estimate: a path from a first op to
// a last one whose summed cost is the largest, found by following from the start the
// successor with the costliest remaining path. chain[i] = 1 for its ops. The runtime
// runs this chain on a high-priority stream and everything beside it on low-priority
// ones, so that the Detect heads of a finished level do not delay the neck.
std::vector<char> critical_chain(const Plan& plan, const OpDag& dag);

// Whether two buffers may share arena bytes under the plan's memory mode: never when
// both are used by one op; Sequential and Bounded: when their live ranges in op order
// do not overlap; Concurrent: when every use of one precedes every use of the other in
// the op DAG of the data alone (so sharing adds no order between independent branches).
// Returns the nb x nb matrix (row-major) of "must not share".
std::vector<char> buffer_conflicts(const Plan& plan, const MemoryPlan& live);

// Plans the arena. budget_bytes > 0: throws yoloc::Error when the total device
// bytes would exceed it, naming each part.
MemoryPlan plan_memory(const Plan& plan, int64_t budget_bytes = 0);

// The Bounded arena's limit: the bytes left for activations in the 2 MiB pages that the
// weights (256-byte aligned) plus the Sequential arena occupy anyway.
int64_t bounded_arena_cap(int64_t weight_bytes, int64_t sequential_arena_bytes);

// The Bounded placement (plan_memory's for MemoryMode::Bounded, with cap < 0: the
// bounded_arena_cap of the plan): buffers largest first, each kept apart from every
// buffer of an independent branch (the Concurrent rule) when it then ends within `cap`,
// else placed by the Sequential rule, sharing bytes in op order. Never larger than the
// Concurrent arena. Only first/last/sizes/offsets/arena_bytes are filled.
MemoryPlan plan_memory_bounded(const Plan& plan, int64_t cap);

// Plans the arena for a plan being built: `preferred` (Bounded unless asked otherwise)
// when it fits the budget, else Sequential (sets plan.memory_mode to the mode used);
// throws when neither fits.
MemoryPlan plan_memory_within(Plan& plan, int64_t budget_bytes,
                              Plan::MemoryMode preferred = Plan::MemoryMode::Bounded);

// Checks that no two buffers that must not share bytes (buffer_conflicts) do; throws.
void verify_memory_plan(const Plan& plan, const MemoryPlan& mp);

// "2GiB", "512MiB", "128MB", "1000000" -> bytes. Throws on anything else.
int64_t parse_bytes(const std::string& s);
std::string format_bytes(int64_t b);

}  // namespace engine
}  // namespace yoloc
