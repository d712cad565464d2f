#include "yolo/draw.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace yoloc {

namespace {

constexpr int kGlyphW = 5, kGlyphH = 7;
// One column and one row of spacing between characters and lines.
constexpr int kCellW = kGlyphW + 1, kCellH = kGlyphH + 1;

// 5x7 glyphs, one row per group, '#' = ink. Rows top to bottom.
struct GlyphSource {
    char ch;
    const char* rows;  // 7 groups of 5 characters separated by spaces
};

const GlyphSource kGlyphs[] = {
    {' ', "..... ..... ..... ..... ..... ..... ....."},
    {'0', ".###. #...# #..## #.#.# ##..# #...# .###."},
    {'1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'2', ".###. #...# ....# ...#. ..#.. .#... #####"},
    {'3', "##### ...#. ..#.. ...#. ....# #...# .###."},
    {'4', "...#. ..##. .#.#. #..#. ##### ...#. ...#."},
    {'5', "##### #.... ####. ....# ....# #...# .###."},
    {'6', "..##. .#... #.... ####. #...# #...# .###."},
    {'7', "##### ....# ...#. ..#.. .#... .#... .#..."},
    {'8', ".###. #...# #...# .###. #...# #...# .###."},
    {'9', ".###. #...# #...# .#### ....# ...#. .##.."},
    {'A', ".###. #...# #...# ##### #...# #...# #...#"},
    {'B', "####. #...# #...# ####. #...# #...# ####."},
    {'C', ".###. #...# #.... #.... #.... #...# .###."},
    {'D', "###.. #..#. #...# #...# #...# #..#. ###.."},
    {'E', "##### #.... #.... ####. #.... #.... #####"},
    {'F', "##### #.... #.... ####. #.... #.... #...."},
    {'G', ".###. #...# #.... #.### #...# #...# .####"},
    {'H', "#...# #...# #...# ##### #...# #...# #...#"},
    {'I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'J', "..### ...#. ...#. ...#. ...#. #..#. .##.."},
    {'K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#"},
    {'L', "#.... #.... #.... #.... #.... #.... #####"},
    {'M', "#...# ##.## #.#.# #.#.# #...# #...# #...#"},
    {'N', "#...# #...# ##..# #.#.# #..## #...# #...#"},
    {'O', ".###. #...# #...# #...# #...# #...# .###."},
    {'P', "####. #...# #...# ####. #.... #.... #...."},
    {'Q', ".###. #...# #...# #...# #.#.# #..#. .##.#"},
    {'R', "####. #...# #...# ####. #.#.. #..#. #...#"},
    {'S', ".#### #.... #.... .###. ....# ....# ####."},
    {'T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
    {'U', "#...# #...# #...# #...# #...# #...# .###."},
    {'V', "#...# #...# #...# #...# #...# .#.#. ..#.."},
    {'W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."},
    {'X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#"},
    {'Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."},
    {'Z', "##### ....# ...#. ..#.. .#... #.... #####"},
    {'a', "..... ..... .###. ....# .#### #...# .####"},
    {'b', "#.... #.... #.##. ##..# #...# #...# ####."},
    {'c', "..... ..... .###. #.... #.... #...# .###."},
    {'d', "....# ....# .##.# #..## #...# #...# .####"},
    {'e', "..... ..... .###. #...# ##### #.... .###."},
    {'f', "..##. .#..# .#... ###.. .#... .#... .#..."},
    {'g', "..... .#### #...# #...# .#### ....# .###."},
    {'h', "#.... #.... #.##. ##..# #...# #...# #...#"},
    {'i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."},
    {'j', "...#. ..... ..##. ...#. ...#. #..#. .##.."},
    {'k', "#.... #.... #..#. #.#.. ##... #.#.. #..#."},
    {'l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'m', "..... ..... ##.#. #.#.# #.#.# #...# #...#"},
    {'n', "..... ..... #.##. ##..# #...# #...# #...#"},
    {'o', "..... ..... .###. #...# #...# #...# .###."},
    {'p', "..... ..... ####. #...# ####. #.... #...."},
    {'q', "..... ..... .##.# #..## .#### ....# ....#"},
    {'r', "..... ..... #.##. ##..# #.... #.... #...."},
    {'s', "..... ..... .###. #.... .###. ....# ####."},
    {'t', ".#... .#... ###.. .#... .#... .#..# ..##."},
    {'u', "..... ..... #...# #...# #...# #..## .##.#"},
    {'v', "..... ..... #...# #...# #...# .#.#. ..#.."},
    {'w', "..... ..... #...# #...# #.#.# #.#.# .#.#."},
    {'x', "..... ..... #...# .#.#. ..#.. .#.#. #...#"},
    {'y', "..... ..... #...# #...# .#### ....# .###."},
    {'z', "..... ..... ##### ...#. ..#.. .#... #####"},
    {'.', "..... ..... ..... ..... ..... .##.. .##.."},
    {',', "..... ..... ..... ..... .##.. ..#.. .#..."},
    {'-', "..... ..... ..... ##### ..... ..... ....."},
    {'_', "..... ..... ..... ..... ..... ..... #####"},
    {':', "..... .##.. .##.. ..... .##.. .##.. ....."},
    {'%', "##... ##..# ...#. ..#.. .#... #..## ...##"},
    {'(', "...#. ..#.. .#... .#... .#... ..#.. ...#."},
    {')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."},
    {'/', "..... ....# ...#. ..#.. .#... #.... ....."},
    {'\'', "..#.. ..#.. .#... ..... ..... ..... ....."},
    {'+', "..... ..#.. ..#.. ##### ..#.. ..#.. ....."},
    {'=', "..... ..... ##### ..... ##### ..... ....."},
    {'!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."},
    {'?', ".###. #...# ....# ...#. ..#.. ..... ..#.."},
};

// Row bitmasks (bit 4 = leftmost column) for ASCII 0..127, built once from kGlyphs.
struct Font {
    std::array<std::array<uint8_t, kGlyphH>, 128> rows{};
    std::array<bool, 128> present{};
    Font() {
        for (const GlyphSource& g : kGlyphs) {
            auto& r = rows[size_t(uint8_t(g.ch))];
            for (int y = 0; y < kGlyphH; ++y) {
                uint8_t bits = 0;
                for (int x = 0; x < kGlyphW; ++x)
                    if (g.rows[y * (kGlyphW + 1) + x] == '#') bits |= uint8_t(1 << (kGlyphW - 1 - x));
                r[size_t(y)] = bits;
            }
            present[size_t(uint8_t(g.ch))] = true;
        }
    }
    const std::array<uint8_t, kGlyphH>& glyph(char ch) const {
        const uint8_t u = uint8_t(ch);
        return (u < 128 && present[u]) ? rows[u] : rows[size_t('?')];
    }
};

const Font& font() {
    static const Font f;
    return f;
}

inline void put(Image& img, int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    uint8_t* p = img.row(y) + size_t(x) * 3;
    p[0] = c.b;
    p[1] = c.g;
    p[2] = c.r;
}

}  // namespace

Color class_color(int class_id) {
    // Ultralytics' default palette (RGB hex).
    static const uint32_t palette[20] = {0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
                                         0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
                                         0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};
    const uint32_t rgb = palette[size_t(((class_id % 20) + 20) % 20)];
    Color c;
    c.r = uint8_t(rgb >> 16);
    c.g = uint8_t(rgb >> 8);
    c.b = uint8_t(rgb);
    return c;
}

void fill_rect(Image& img, int x1, int y1, int x2, int y2, Color c) {
    x1 = std::max(x1, 0);
    y1 = std::max(y1, 0);
    x2 = std::min(x2, img.width);
    y2 = std::min(y2, img.height);
    for (int y = y1; y < y2; ++y) {
        uint8_t* p = img.row(y) + size_t(x1) * 3;
        for (int x = x1; x < x2; ++x, p += 3) {
            p[0] = c.b;
            p[1] = c.g;
            p[2] = c.r;
        }
    }
}

void draw_rect(Image& img, int x1, int y1, int x2, int y2, Color c, int thickness) {
    if (x2 < x1) std::swap(x1, x2);
    if (y2 < y1) std::swap(y1, y2);
    const int t = std::max(1, thickness);
    fill_rect(img, x1, y1, x2 + 1, y1 + t, c);          // top
    fill_rect(img, x1, y2 - t + 1, x2 + 1, y2 + 1, c);  // bottom
    fill_rect(img, x1, y1, x1 + t, y2 + 1, c);          // left
    fill_rect(img, x2 - t + 1, y1, x2 + 1, y2 + 1, c);  // right
}

int text_width(const std::string& text, int scale) { return int(text.size()) * kCellW * std::max(1, scale); }

void draw_text(Image& img, int x, int y, const std::string& text, Color c, int scale) {
    scale = std::max(1, scale);
    const Font& f = font();
    for (size_t i = 0; i < text.size(); ++i) {
        const auto& g = f.glyph(text[i]);
        const int ox = x + int(i) * kCellW * scale;
        for (int gy = 0; gy < kGlyphH; ++gy)
            for (int gx = 0; gx < kGlyphW; ++gx) {
                if (!(g[size_t(gy)] & (1 << (kGlyphW - 1 - gx)))) continue;
                for (int sy = 0; sy < scale; ++sy)
                    for (int sx = 0; sx < scale; ++sx) put(img, ox + gx * scale + sx, y + gy * scale + sy, c);
            }
    }
}

void draw_detections(Image& img, const std::vector<Detection>& dets, const std::vector<std::string>& names,
                     const DrawOptions& opt) {
    if (img.empty()) return;
    // Font pixels of about 1/320 of the shorter side keep labels readable at any image size.
    const int scale = opt.font_scale > 0 ? opt.font_scale
                                         : std::max(1, int(std::lround(std::min(img.width, img.height) / 320.0)));
    const int pad = scale;
    // Lowest score first, so the labels of confident detections end up on top.
    for (auto it = dets.rbegin(); it != dets.rend(); ++it) {
        const Detection& d = *it;
        const Color col = class_color(d.class_id);
        const int x1 = int(std::lround(d.x1)), y1 = int(std::lround(d.y1));
        const int x2 = int(std::lround(d.x2)), y2 = int(std::lround(d.y2));
        draw_rect(img, x1, y1, x2, y2, col, opt.thickness);

        const std::string name = (d.class_id >= 0 && size_t(d.class_id) < names.size())
                                     ? names[size_t(d.class_id)]
                                     : "class" + std::to_string(d.class_id);
        char conf[16];
        std::snprintf(conf, sizeof(conf), "%.2f", double(d.conf));
        const std::string label = name + " " + conf;
        const int lw = text_width(label, scale) + 2 * pad - scale;  // no spacing after the last glyph
        const int lh = kGlyphH * scale + 2 * pad;
        // Above the box when there is room, otherwise just inside its top edge.
        int ly = y1 - lh;
        if (ly < 0) ly = y1;
        int lx = std::min(x1, img.width - lw);
        lx = std::max(lx, 0);
        fill_rect(img, lx, ly, lx + lw, ly + lh, col);
        // Black text on light colours, white on dark ones (perceived luminance).
        const int lum = (299 * col.r + 587 * col.g + 114 * col.b) / 1000;
        const Color text_col = lum > 150 ? Color{0, 0, 0} : Color{255, 255, 255};
        draw_text(img, lx + pad, ly + pad, label, text_col, scale);
    }
}

}  // namespace yoloc
