// Ultralytics' letterbox pre-processing (LetterBox(auto=False), square canvas),
// reproducing cv2.resize(INTER_LINEAR) on 8-bit images bit for bit, so the input
// tensor is identical to the one the published references were computed from.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "yolo/image.h"

namespace yoloc {

struct LetterboxInfo {
    double r = 1.0;        // scale from original to letterboxed pixels
    int new_w = 0, new_h = 0;  // size of the resized image inside the canvas
    int left = 0, top = 0;     // padding before the resized image
    int src_w = 0, src_h = 0;  // original image size
};

// The geometry only: r, resized size and padding for an image of src_w x src_h.
LetterboxInfo letterbox_geometry(int src_w, int src_h, int size);

// cv::hal::resize's fixed-point coefficient tables for INTER_LINEAR (11-bit
// weights): per destination column/row the first source index and the weights of
// it and the next one. Horizontally the tap and fraction are clamped at the
// borders; vertically only the row indices are (at use). The GPU letterbox
// (engine/cuda/prepost) uses these very tables, so both agree bit for bit.
struct AxisTaps {
    std::vector<int> src;
    std::vector<int16_t> w0;
    std::vector<int16_t> w1;
};
struct ResizeTaps {
    enum Mode { Copy = 0, HalfArea = 1, Linear = 2 } mode = Copy;  // HalfArea: exact 2x down, OpenCV's area path
    AxisTaps x, y;  // Linear only
};
ResizeTaps resize_taps(int src_w, int src_h, int dst_w, int dst_h);

// OpenCV 4.x cv::resize(src, dst, Size(dst_w, dst_h), 0, 0, INTER_LINEAR) for
// 8-bit 3-channel images, bit-exact (fixed-point path, 11-bit coefficients).
Image resize_linear(const Image& src, int dst_w, int dst_h);

// Resizes and pads `img` into a size x size canvas (pad 114) and writes it as
// CHW float32 RGB in [0,1] to dst_chw (3*size*size floats).
LetterboxInfo letterbox_into(const Image& img, int size, float* dst_chw);

// The same as a [1,3,size,size] Float32 tensor.
Tensor preprocess(const Image& img, int size, LetterboxInfo* info = nullptr);

}  // namespace yoloc
