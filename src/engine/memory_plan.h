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

struct MemoryPlan {
    std::vector<int64_t> offsets;          // per plan buffer, bytes into the arena
    std::vector<int64_t> sizes;            // per plan buffer, aligned bytes
    std::vector<int32_t> first, last;      // live op range per buffer (inclusive)
    int64_t arena_bytes = 0;
    int64_t unshared_bytes = 0;            // what one allocation per buffer would take
    int64_t weight_bytes = 0;
    int64_t workspace_bytes = 0;           // own kernels need none today
    int64_t total_bytes() const { return arena_bytes + weight_bytes + workspace_bytes; }
};

// Plans the arena. budget_bytes > 0: throws yoloc::Error when the total device
// bytes would exceed it, naming each part.
MemoryPlan plan_memory(const Plan& plan, int64_t budget_bytes = 0);

// Checks that no two buffers that are live at the same op share bytes; throws.
void verify_memory_plan(const Plan& plan, const MemoryPlan& mp);

// "2GiB", "512MiB", "128MB", "1000000" -> bytes. Throws on anything else.
int64_t parse_bytes(const std::string& s);
std::string format_bytes(int64_t b);

}  // namespace engine
}  // namespace yoloc
