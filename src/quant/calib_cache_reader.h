// Reader of TensorRT calibration caches: the text `yoloc quantize` writes beside its
// Q/DQ model (quant/quantize.h, calibration_cache) and TensorRT writes for implicit
// INT8 builds:
//
//   TRT-<version>-<Method>          e.g. TRT-8601-EntropyCalibration2
//   <tensor name>: <8 hex digits>   float32 bits of the scale (amax / 127), one per tensor
//
// The file is untrusted input: every malformed line is a yoloc::Error naming the
// file and the line; nothing is allocated past the text's own size.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace yoloc {

struct CalibrationCache {
    std::string header;                   // the first line, e.g. "TRT-8601-EntropyCalibration2"
    int trt_version = 0;                  // 8601
    std::string method;                   // "EntropyCalibration2", "MinMaxCalibration", ...
    std::map<std::string, float> scales;  // tensor name -> scale (finite, > 0)
};

// Largest cache file read (a YOLOv8x cache is ~30 KB).
constexpr int64_t kMaxCalibrationCacheBytes = int64_t(64) << 20;

// Parses cache text; `name` is used in messages. Throws yoloc::Error on a missing or
// unknown header, a line that is not "name: hex8", a scale that is not a finite
// positive float32, or a tensor listed twice.
CalibrationCache parse_calibration_cache(const std::string& text, const std::string& name);
// Reads and parses a file (refused before reading when over kMaxCalibrationCacheBytes).
CalibrationCache read_calibration_cache(const std::string& path);
// The text of a cache (header, then one line per tensor in name order).
std::string format_calibration_cache(const CalibrationCache& c);

}  // namespace yoloc
