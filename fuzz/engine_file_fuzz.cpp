// libFuzzer target: the engine file loader (what `yoloc bench ENGINE` and the GPU
// runtime read before any byte reaches the GPU) must reject any byte string with a
// yoloc::Error, never crash, hang or allocate past the input's size. An accepted
// file must plan its memory, serialize and parse again to the same bytes.
//
// Random mutations almost never keep the FNV-1a checksum right, so each input is
// tried twice: as it is (header, size and checksum checks) and with its payload size
// and checksum repaired (everything behind the checksum: metadata, plan, weights).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "engine/engine_file.h"
#include "engine/memory_plan.h"

namespace {

void try_parse(const std::string& bytes) {
    using namespace yoloc::engine;
    try {
        EngineFile e = parse_engine(bytes, "fuzz.engine");
        MemoryPlan mp = plan_memory(e.plan, 0);
        verify_memory_plan(e.plan, mp);
        std::string again = serialize_engine(e);
        EngineFile r = parse_engine(again, "fuzz-rt.engine");
        if (serialize_engine(r) != again) __builtin_trap();
    } catch (const yoloc::Error&) {
    }
}

void put_u64(std::string& s, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) s[at + size_t(i)] = char((v >> (8 * i)) & 0xff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    try_parse(bytes);
    // Header: magic (8) + version (4) + payload size (8); trailer: checksum (8).
    if (size >= 28) {
        std::string fixed = bytes;
        size_t n = size - 28;
        put_u64(fixed, 12, n);
        put_u64(fixed, 20 + n, yoloc::engine::fnv1a64(fixed.data() + 20, n));
        try_parse(fixed);
    }
    return 0;
}
