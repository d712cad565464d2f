// libFuzzer target: the TensorRT calibration cache reader (the text `yoloc
// quantize` writes beside its Q/DQ model, and TensorRT writes for implicit INT8).
// Bad text must be a yoloc::Error; an accepted cache must write and read back to
// the same scales.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "quant/calib_cache_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        yoloc::CalibrationCache c = yoloc::parse_calibration_cache(text, "fuzz.cache");
        std::string again = yoloc::format_calibration_cache(c);
        yoloc::CalibrationCache r = yoloc::parse_calibration_cache(again, "fuzz-rt.cache");
        if (r.scales != c.scales || r.header != c.header) __builtin_trap();
    } catch (const yoloc::Error&) {
    }
    return 0;
}
