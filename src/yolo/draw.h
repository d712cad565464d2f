// Annotated images for `yoloc detect`: boxes in a per-class colour and a filled
// label "name 0.87" drawn with a small built-in 5x7 bitmap font (no font files needed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yolo/image.h"
#include "yolo/postprocess.h"

namespace yoloc {

struct Color {
    uint8_t b = 0, g = 0, r = 0;  // BGR, like Image
};

// Ultralytics' 20-colour palette, cycled by class id.
Color class_color(int class_id);

// Rectangle outline with its inner edge on (x1,y1)-(x2,y2) growing inwards; clipped to the image.
void draw_rect(Image& img, int x1, int y1, int x2, int y2, Color c, int thickness);
// Filled rectangle [x1,x2) x [y1,y2), clipped to the image.
void fill_rect(Image& img, int x1, int y1, int x2, int y2, Color c);
// Text with its top-left corner at (x, y); each font pixel becomes scale x scale pixels.
// Characters without a glyph are drawn as '?'.
void draw_text(Image& img, int x, int y, const std::string& text, Color c, int scale);
int text_width(const std::string& text, int scale);

struct DrawOptions {
    int thickness = 2;
    int font_scale = 0;  // 0: chosen from the image size
};

// Draws each detection's box and a filled label "name 0.87" above it (inside when at the top edge).
void draw_detections(Image& img, const std::vector<Detection>& dets, const std::vector<std::string>& names,
                     const DrawOptions& opt = DrawOptions());

}  // namespace yoloc
