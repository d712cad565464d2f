// The engine file: a built plan plus everything needed to decide, before any byte
// reaches the GPU, whether it may run here. Engines are device- and
// version-specific (like TensorRT's); loading one built elsewhere fails with a
// message that says to rebuild on this device instead of misbehaving.
//
// Layout (little-endian):
//   "YOLOCENG"            8 bytes magic
//   u32 format version    kEngineFormatVersion
//   u64 payload bytes
//   payload               metadata, plan, weights (see engine_file.cpp)
//   u64 FNV-1a 64 of the payload
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan.h"

namespace yoloc {
namespace engine {

// 2: per-conv tactic (PlanOp::tactic) after each op's extra outputs.
// 3: INT8 precision, FakeQuant ops, per-op in_scale / res_scale / weight-scale range,
//    INT8 stats.
// 4: Plan::memory_mode after the stats (arena shared by op order or by the op DAG); the
//    stem conv may read the Input buffer (NCHW float32) directly.
// 5: PlanStats::convs_fused_siblings.
// 6: int8 activation buffers (elem_bytes 1), per-op output scales (ys_off / ys_count),
//    PlanStats::int8_buffers.
// 7: memory mode 2 (Bounded arena, the default); the device weight block's layout and
//    size come from engine::device_weight_layout (256-byte aligned arrays).
// 8: the generic tier: Tensor buffers (and their int32 flag), Generic ops (kind, sub-op,
//    integer and float parameters), the Detect op's box format.
constexpr uint32_t kEngineFormatVersion = 8;

// What identifies the device and software an engine was built for.
struct DeviceIdentity {
    std::string gpu_name;
    int32_t cc_major = 0, cc_minor = 0;  // compute capability
    int32_t cuda_runtime = 0;            // cudaRuntimeGetVersion, e.g. 13000
    int32_t cudnn = 0;                   // cudnnGetVersion, 0 when not used
};

struct EngineInfo {
    uint32_t format_version = kEngineFormatVersion;
    std::string yoloc_version;  // of the yoloc that built it
    DeviceIdentity device;
    std::string source_model;   // path or name, informational
    std::string created;        // ISO date, informational
};

struct EngineFile {
    EngineInfo info;
    Plan plan;
};

// The yoloc version compiled into this library.
std::string yoloc_version();

std::string serialize_engine(const EngineFile& e);
// Parses and validates bytes read from `path` (used in messages). Throws
// yoloc::Error on a bad magic, another format or yoloc version (rebuild), a
// truncated file, a checksum mismatch, or an inconsistent plan.
EngineFile parse_engine(const std::string& bytes, const std::string& path);

void write_engine(const std::string& path, const EngineFile& e);  // atomic
EngineFile read_engine(const std::string& path);

// Throws yoloc::Error saying to rebuild when the engine was built for another
// compute capability or CUDA major version than `here`.
void check_engine_device(const EngineInfo& info, const DeviceIdentity& here, const std::string& path);

uint64_t fnv1a64(const void* data, size_t n);

}  // namespace engine
}  // namespace yoloc
