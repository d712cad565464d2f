// 8-bit colour images as the detector's pre-processing sees them: decoded like
// OpenCV's cv2.imread(path, IMREAD_COLOR) so that letterboxed tensors match
// Ultralytics' references bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace yoloc {

struct Image {
    int width = 0;
    int height = 0;
    // HWC, 3 channels, BGR order (like OpenCV), rows packed (stride = 3 * width).
    std::vector<uint8_t> pixels;

    Image() = default;
    Image(int w, int h, uint8_t fill = 0) : width(w), height(h), pixels(size_t(w) * size_t(h) * 3, fill) {}
    uint8_t* row(int y) { return pixels.data() + size_t(y) * size_t(width) * 3; }
    const uint8_t* row(int y) const { return pixels.data() + size_t(y) * size_t(width) * 3; }
    bool empty() const { return width <= 0 || height <= 0; }
};

// Largest image accepted (width * height), checked before any pixel buffer is allocated.
constexpr int64_t kMaxImagePixels = int64_t(1) << 28;

// Decodes JPEG (libjpeg-turbo: islow IDCT, fancy upsampling, EXIF orientation
// applied as cv2.imread does) or PNG (8/16-bit, palette, gray, alpha -> 3-channel BGR).
// The format is detected from the magic bytes, not the extension.
// Throws yoloc::Error naming the file: missing, not an image, corrupt or truncated.
Image load_image(const std::string& path);
// Same, from bytes in memory; `name` is used in error messages.
Image decode_image(const std::string& bytes, const std::string& name);

// Writes atomically (temporary file, then rename).
void save_jpeg(const std::string& path, const Image& img, int quality = 90);
void save_png(const std::string& path, const Image& img);

}  // namespace yoloc
