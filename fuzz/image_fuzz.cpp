// libFuzzer target: image decoding (JPEG through libjpeg-turbo with EXIF
// orientation, PNG through libpng), as `detect`, `eval` and `quantize --calib` read
// every image. Bad bytes must give a yoloc::Error naming the file; an accepted image
// must have consistent dimensions within kMaxImagePixels.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "yolo/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        yoloc::Image img = yoloc::decode_image(bytes, "fuzz.img");
        if (img.width <= 0 || img.height <= 0 ||
            int64_t(img.width) * int64_t(img.height) > yoloc::kMaxImagePixels ||
            img.pixels.size() != size_t(img.width) * size_t(img.height) * 3)
            __builtin_trap();
        // Touch the last pixel so that a short buffer shows up under ASan.
        volatile uint8_t last = img.pixels.back();
        (void)last;
    } catch (const yoloc::Error&) {
    }
    return 0;
}
