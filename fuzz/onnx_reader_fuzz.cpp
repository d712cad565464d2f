// libFuzzer target: the ONNX reader must reject any byte string with a
// yoloc::Error (never crash, hang or allocate past the input's size) and, when it
// accepts one, the result must serialize and parse again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ir/shape_inference.h"
#include "onnx/onnx_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    yoloc::OnnxReadOptions opts;
    opts.external_data_dir = "/nonexistent-fuzz-dir";  // never read real files
    try {
        yoloc::Model m = yoloc::parse_onnx(bytes, "fuzz.onnx", opts);
        std::string again = yoloc::serialize_onnx(m);
        yoloc::parse_onnx(again, "fuzz-rt.onnx", opts);
    } catch (const yoloc::Error&) {
    }
    return 0;
}
