#include "yolo/image.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "core/error.h"
#include "core/file.h"

namespace yoloc {

namespace {

std::string read_whole_file(const std::string& path) {
    require_regular_file(path, "an image (JPEG or PNG)");
    std::ifstream f(path, std::ios::binary);
    if (!f) fail(path, ": cannot open image (no permission?)");
    f.seekg(0, std::ios::end);
    std::streamoff n = f.tellg();
    if (n < 0) fail(path, ": cannot read image file");
    // Bounds memory before reading: no supported image of at most kMaxImagePixels is this big.
    if (uint64_t(n) > (uint64_t(1) << 31)) fail(path, ": file is too large to be an image (", n, " bytes)");
    f.seekg(0, std::ios::beg);
    std::string data(size_t(n), '\0');
    if (n > 0 && !f.read(&data[0], n)) fail(path, ": read error");
    return data;
}

// ---------------------------------------------------------------- EXIF

// Reads the EXIF Orientation tag (1..8) from an APP1 payload; 1 when absent or unreadable.
int exif_orientation(const uint8_t* p, size_t n) {
    if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
    const uint8_t* t = p + 6;
    size_t tn = n - 6;
    bool le;
    if (t[0] == 'I' && t[1] == 'I') le = true;
    else if (t[0] == 'M' && t[1] == 'M') le = false;
    else return 1;
    auto u16 = [&](size_t off) -> uint32_t {
        return le ? uint32_t(t[off] | (t[off + 1] << 8)) : uint32_t((t[off] << 8) | t[off + 1]);
    };
    auto u32 = [&](size_t off) -> uint32_t {
        return le ? (uint32_t(t[off]) | (uint32_t(t[off + 1]) << 8) | (uint32_t(t[off + 2]) << 16) |
                     (uint32_t(t[off + 3]) << 24))
                  : ((uint32_t(t[off]) << 24) | (uint32_t(t[off + 1]) << 16) | (uint32_t(t[off + 2]) << 8) |
                     uint32_t(t[off + 3]));
    };
    if (u16(2) != 42) return 1;
    size_t ifd = u32(4);
    if (ifd + 2 > tn) return 1;
    uint32_t count = u16(ifd);
    for (uint32_t i = 0; i < count; ++i) {
        size_t e = ifd + 2 + size_t(i) * 12;
        if (e + 12 > tn) return 1;
        if (u16(e) == 0x0112) {
            uint32_t v = u16(e + 8);  // SHORT, stored left-justified in the value field
            return (v >= 1 && v <= 8) ? int(v) : 1;
        }
    }
    return 1;
}

// Applies an EXIF orientation the way OpenCV's imread does (flip/transpose).
Image apply_orientation(const Image& src, int orientation) {
    if (orientation <= 1 || orientation > 8) return src;
    const bool transpose = orientation >= 5;
    // After the optional transpose: flip horizontally and/or vertically.
    bool flip_h = false, flip_v = false;
    switch (orientation) {
        case 2: flip_h = true; break;
        case 3: flip_h = flip_v = true; break;
        case 4: flip_v = true; break;
        case 5: break;
        case 6: flip_h = true; break;
        case 7: flip_h = flip_v = true; break;
        case 8: flip_v = true; break;
    }
    const int w = transpose ? src.height : src.width;
    const int h = transpose ? src.width : src.height;
    Image out(w, h);
    for (int y = 0; y < h; ++y) {
        uint8_t* d = out.row(y);
        for (int x = 0; x < w; ++x) {
            int tx = flip_h ? w - 1 - x : x;  // coordinates in the transposed image
            int ty = flip_v ? h - 1 - y : y;
            int sx = transpose ? ty : tx;
            int sy = transpose ? tx : ty;
            const uint8_t* s = src.row(sy) + size_t(sx) * 3;
            d[3 * x] = s[0];
            d[3 * x + 1] = s[1];
            d[3 * x + 2] = s[2];
        }
    }
    return out;
}

// ---------------------------------------------------------------- JPEG

struct JpegErrorManager {
    jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

// libjpeg's default error_exit calls exit(); jump back to the decoder instead.
void jpeg_error_exit_jump(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

// Warnings go nowhere (library code never prints), except that a premature end of
// data means a truncated file: libjpeg would silently pad it with gray, so fail.
// That is the end of the file (JWRN_JPEG_EOF) or a marker such as EOI inside the
// scan data (JWRN_HIT_MARKER); fuzzer finding: a 162-byte JPEG claiming 64519x2048
// pixels was accepted as a gray image after seconds of decoding.
void jpeg_emit_message_strict(j_common_ptr cinfo, int msg_level) {
    if (msg_level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER)
            jpeg_error_exit_jump(cinfo);
        cinfo->err->num_warnings++;
    }
}

// Decodes into `out`; returns an empty string on success, else the libjpeg message.
// Everything changed after setjmp lives in the caller (`out`, `orientation`,
// `cmyk_row`), so nothing here is left indeterminate by a longjmp.
std::string decode_jpeg_into(const std::string& bytes, Image& out, int& orientation,
                             std::vector<uint8_t>& cmyk_row) {
    jpeg_decompress_struct cinfo;
    JpegErrorManager jerr;
    std::memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_jump;
    jerr.pub.emit_message = jpeg_emit_message_strict;
    jerr.message[0] = 0;

    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return std::string(jerr.message[0] ? jerr.message : "unknown libjpeg error");
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), (unsigned long)bytes.size());
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);

    orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) {
            int o = exif_orientation(m->data, m->data_length);
            if (o != 1) { orientation = o; break; }
        }
    }

    // cv2.imread(IMREAD_COLOR): CMYK/YCCK is read as CMYK and converted by hand;
    // everything else asks libjpeg-turbo for BGR directly (gray is replicated).
    const bool cmyk = cinfo.num_components == 4;
    if (cmyk) {
        cinfo.out_color_space = JCS_CMYK;
    } else {
        cinfo.out_color_space = JCS_EXT_BGR;
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;

    if (int64_t(cinfo.image_width) * int64_t(cinfo.image_height) > kMaxImagePixels ||
        cinfo.image_width == 0 || cinfo.image_height == 0) {
        const unsigned long w = cinfo.image_width, h = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return std::string("\x01") + std::to_string(w) + "x" + std::to_string(h);
    }
    jpeg_start_decompress(&cinfo);
    out.width = int(cinfo.output_width);
    out.height = int(cinfo.output_height);
    // Rows are added as they are decoded (the capacity is reserved, not touched), so a
    // small corrupt file that claims a huge image fails before its pixels are written.
    const size_t stride = size_t(out.width) * 3;
    out.pixels.clear();
    out.pixels.reserve(stride * size_t(out.height));
    if (cmyk) cmyk_row.resize(size_t(out.width) * 4);

    while (cinfo.output_scanline < cinfo.output_height) {
        const int y = int(cinfo.output_scanline);
        out.pixels.resize(stride * size_t(y + 1));
        if (cmyk) {
            JSAMPROW rowp = cmyk_row.data();
            jpeg_read_scanlines(&cinfo, &rowp, 1);
            uint8_t* d = out.row(y);
            // OpenCV's icvCvt_CMYK2BGR (Adobe stores inverted CMYK).
            for (int x = 0; x < out.width; ++x) {
                const uint8_t* s = &cmyk_row[size_t(x) * 4];
                int k = s[3];
                int c = k - (((255 - s[0]) * k) >> 8);
                int mm = k - (((255 - s[1]) * k) >> 8);
                int yy = k - (((255 - s[2]) * k) >> 8);
                d[3 * x] = uint8_t(yy);
                d[3 * x + 1] = uint8_t(mm);
                d[3 * x + 2] = uint8_t(c);
            }
        } else {
            JSAMPROW rowp = out.row(y);
            jpeg_read_scanlines(&cinfo, &rowp, 1);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return std::string();
}

Image decode_jpeg(const std::string& bytes, const std::string& name) {
    Image img;
    int orientation = 1;
    std::vector<uint8_t> cmyk_row;
    std::string err = decode_jpeg_into(bytes, img, orientation, cmyk_row);
    if (!err.empty()) {
        if (err[0] == '\x01') fail(name, ": JPEG has invalid or too large size ", err.substr(1),
                                   " (at most ", kMaxImagePixels, " pixels)");
        fail(name, ": corrupt or truncated JPEG: ", err);
    }
    return apply_orientation(img, orientation);
}

// ---------------------------------------------------------------- PNG

struct PngReadState {
    const std::string* bytes;
    size_t pos;
};

void png_read_from_memory(png_structp png, png_bytep out, png_size_t n) {
    auto* st = static_cast<PngReadState*>(png_get_io_ptr(png));
    if (st->pos + n > st->bytes->size()) png_error(png, "unexpected end of file (truncated PNG)");
    std::memcpy(out, st->bytes->data() + st->pos, n);
    st->pos += n;
}

struct PngErrorState {
    char message[256];
};

void png_error_jump(png_structp png, png_const_charp msg) {
    auto* es = static_cast<PngErrorState*>(png_get_error_ptr(png));
    std::snprintf(es->message, sizeof(es->message), "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

void png_warning_silent(png_structp, png_const_charp) {}

// Like decode_jpeg_into: state changed after setjmp (`out`, `rows`) lives in the caller.
std::string decode_png_into(const std::string& bytes, Image& out, std::vector<png_bytep>& rows) {
    PngErrorState es;
    es.message[0] = 0;
    PngReadState rs{&bytes, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &es, png_error_jump, png_warning_silent);
    if (!png) return "cannot create PNG reader";
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        return "cannot create PNG reader";
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        return std::string(es.message[0] ? es.message : "libpng error");
    }
    png_set_read_fn(png, &rs, png_read_from_memory);
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, nullptr, nullptr, nullptr);
    if (w == 0 || h == 0 || int64_t(w) * int64_t(h) > kMaxImagePixels) {
        png_destroy_read_struct(&png, &info, nullptr);
        return "\x01" + std::to_string(w) + "x" + std::to_string(h);
    }
    // The transformations cv2.imread(IMREAD_COLOR) asks libpng for.
    if (bit_depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) || color_type == PNG_COLOR_TYPE_PALETTE) png_set_bgr(png);
    else png_set_gray_to_rgb(png);
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != size_t(w) * 3) {
        png_destroy_read_struct(&png, &info, nullptr);
        return "unsupported PNG layout";
    }
    out.width = int(w);
    out.height = int(h);
    const size_t stride = size_t(w) * 3;
    if (passes == 1) {
        // Row by row, each added as it is decoded (capacity reserved, not touched): a
        // small truncated file that claims a huge image fails before its pixels are written.
        out.pixels.clear();
        out.pixels.reserve(stride * size_t(h));
        for (png_uint_32 y = 0; y < h; ++y) {
            out.pixels.resize(stride * size_t(y + 1));
            png_read_row(png, out.row(int(y)), nullptr);
        }
    } else {
        // Interlaced (Adam7): every pass revisits every row, so the whole image is needed.
        out.pixels.assign(stride * size_t(h), 0);
        rows.resize(h);
        for (png_uint_32 y = 0; y < h; ++y) rows[y] = out.row(int(y));
        png_read_image(png, rows.data());
    }
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return std::string();
}

Image decode_png(const std::string& bytes, const std::string& name) {
    Image img;
    std::vector<png_bytep> rows;
    std::string err = decode_png_into(bytes, img, rows);
    if (!err.empty()) {
        if (err[0] == '\x01') fail(name, ": PNG has invalid or too large size ", err.substr(1),
                                   " (at most ", kMaxImagePixels, " pixels)");
        fail(name, ": corrupt or truncated PNG: ", err);
    }
    return img;
}

void png_write_to_string(png_structp png, png_bytep data, png_size_t n) {
    auto* s = static_cast<std::string*>(png_get_io_ptr(png));
    s->append(reinterpret_cast<const char*>(data), n);
}

void png_flush_nothing(png_structp) {}

void check_image(const Image& img, const std::string& path) {
    YOLOC_CHECK(img.width > 0 && img.height > 0 &&
                    img.pixels.size() == size_t(img.width) * size_t(img.height) * 3,
                path, ": cannot save an image of size ", img.width, "x", img.height, " with ",
                img.pixels.size(), " bytes of pixels");
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name) {
    const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
    if (bytes.empty()) fail(name, ": not an image (empty file)");
    if (bytes.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(bytes, name);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (bytes.size() >= 8 && std::memcmp(b, png_sig, 8) == 0) return decode_png(bytes, name);
    fail(name, ": not an image (neither JPEG nor PNG signature)");
}

Image load_image(const std::string& path) {
    return decode_image(read_whole_file(path), path);
}

void save_jpeg(const std::string& path, const Image& img, int quality) {
    check_image(img, path);
    YOLOC_CHECK(quality >= 1 && quality <= 100, path, ": JPEG quality must be 1..100, got ", quality);
    jpeg_compress_struct cinfo;
    JpegErrorManager jerr;
    std::memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_jump;
    jerr.pub.emit_message = jpeg_emit_message_strict;
    jerr.message[0] = 0;
    unsigned char* mem = nullptr;
    unsigned long mem_size = 0;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_compress(&cinfo);
        std::free(mem);
        fail(path, ": JPEG encoding failed: ", jerr.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &mem, &mem_size);
    cinfo.image_width = JDIMENSION(img.width);
    cinfo.image_height = JDIMENSION(img.height);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_EXT_BGR;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rowp = const_cast<uint8_t*>(img.row(int(cinfo.next_scanline)));
        jpeg_write_scanlines(&cinfo, &rowp, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    std::string data(reinterpret_cast<const char*>(mem), mem_size);
    std::free(mem);
    write_file_atomic(path, data);
}

void save_png(const std::string& path, const Image& img) {
    check_image(img, path);
    PngErrorState es;
    es.message[0] = 0;
    std::string data;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &es, png_error_jump, png_warning_silent);
    if (!png) fail(path, ": cannot create PNG writer");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, nullptr);
        fail(path, ": cannot create PNG writer");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fail(path, ": PNG encoding failed: ", es.message);
    }
    png_set_write_fn(png, &data, png_write_to_string, png_flush_nothing);
    png_set_IHDR(png, info, png_uint_32(img.width), png_uint_32(img.height), 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_set_bgr(png);
    for (int y = 0; y < img.height; ++y) png_write_row(png, const_cast<uint8_t*>(img.row(y)));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    write_file_atomic(path, data);
}

}  // namespace yoloc
