// Writes the generated part of the seed corpora (fuzz/corpus/<target>/) from yoloc's
// own writers, so that the seeds are real files in the current formats:
//   make_fuzz_seeds OUT_DIR
// engine/: tiny engines (tests/gpu/models.h) written by serialize_engine;
// image/: small JPEGs and PNGs in the variants the decoder handles (baseline,
// progressive, gray, CMYK, EXIF-rotated JPEG; RGB, palette, 16-bit, gray+alpha,
// interlaced PNG). The dataset/ seeds are hand-written text files plus coco128's
// data.yaml and labels; calib_cache/ holds caches written by `yoloc quantize`.
#include <cstddef>
#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/file.h"
#include "engine/engine_file.h"
#include "gpu/models.h"
#include "yolo/image.h"

using namespace yoloc;

namespace {

void put(const std::string& path, const std::string& bytes) {
    write_file_atomic(path, bytes);
    std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

std::string engine_seed(int64_t batch, engine::Precision prec) {
    engine::EngineFile e;
    engine::PlanOptions o;
    o.precision = prec;
    e.plan = engine::build_plan(yoloc_test::tiny_engine_model(batch), o);
    e.info.yoloc_version = engine::yoloc_version();
    e.info.device.gpu_name = "NVIDIA H100 80GB HBM3";
    e.info.device.cc_major = 9;
    e.info.device.cuda_runtime = 13000;
    e.info.source_model = "tiny";
    e.info.created = "2026-11-26T00:00:00Z";
    return engine::serialize_engine(e);
}

// A JPEG through libjpeg directly: components 1 (gray), 3 (YCbCr) or 4 (CMYK).
std::string jpeg(int w, int h, int comps, bool progressive, int exif_orientation) {
    jpeg_compress_struct c;
    jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* mem = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = JDIMENSION(w);
    c.image_height = JDIMENSION(h);
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 75, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (exif_orientation) {
        // "Exif\0\0" + little-endian TIFF header + one IFD entry: Orientation (0x0112), SHORT, 1.
        const unsigned char app1[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0,
                                      1, 0, 0, 0, (unsigned char)exif_orientation, 0, 0, 0, 0, 0, 0, 0};
        jpeg_write_marker(&c, JPEG_APP0 + 1, app1, sizeof app1);
    }
    std::vector<unsigned char> row(size_t(w) * size_t(comps));
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < comps; ++k) row[size_t(x * comps + k)] = (unsigned char)((x * 37 + int(c.next_scanline) * 11 + k * 80) & 255);
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::string out(reinterpret_cast<char*>(mem), size);
    std::free(mem);
    return out;
}

void png_to_string(png_structp png, png_bytep data, png_size_t n) {
    static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void png_no_flush(png_structp) {}

std::string png(int w, int h, int color_type, int depth, bool interlaced) {
    std::string out;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(p);
    png_set_write_fn(p, &out, png_to_string, png_no_flush);
    png_set_IHDR(p, info, png_uint_32(w), png_uint_32(h), depth, color_type,
                 interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(p, info, pal, 4);
    }
    png_write_info(p, info);
    int channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGBA ? 4
                 : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rowbytes = (size_t(w) * size_t(channels) * size_t(depth) + 7) / 8;
    std::vector<std::vector<png_byte>> rows(static_cast<size_t>(h), std::vector<png_byte>(rowbytes, 0));
    std::vector<png_bytep> ptrs;
    for (int y = 0; y < h; ++y) {
        for (size_t i = 0; i < rowbytes; ++i) rows[size_t(y)][i] = png_byte((i * 29 + size_t(y) * 7) & (depth < 8 ? 0x55 : 0xff));
        ptrs.push_back(rows[size_t(y)].data());
    }
    png_write_image(p, ptrs.data());
    png_write_end(p, nullptr);
    png_destroy_write_struct(&p, &info);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR\n");
        return 2;
    }
    std::string out = argv[1];
    for (const char* d : {"engine", "image"}) make_dirs(path_join(out, d));

    put(out + "/engine/tiny_fp16_b1.engine", engine_seed(1, engine::Precision::FP16));
    put(out + "/engine/tiny_fp32_b2.engine", engine_seed(2, engine::Precision::FP32));

    put(out + "/image/baseline.jpg", jpeg(9, 7, 3, false, 0));
    put(out + "/image/progressive.jpg", jpeg(9, 7, 3, true, 0));
    put(out + "/image/gray.jpg", jpeg(8, 8, 1, false, 0));
    put(out + "/image/cmyk.jpg", jpeg(8, 8, 4, false, 0));
    put(out + "/image/exif6.jpg", jpeg(6, 4, 3, false, 6));
    put(out + "/image/rgb.png", png(9, 7, PNG_COLOR_TYPE_RGB, 8, false));
    put(out + "/image/palette.png", png(8, 8, PNG_COLOR_TYPE_PALETTE, 2, false));
    put(out + "/image/gray16.png", png(8, 8, PNG_COLOR_TYPE_GRAY, 16, false));
    put(out + "/image/gray_alpha.png", png(8, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false));
    put(out + "/image/rgba_interlaced.png", png(9, 7, PNG_COLOR_TYPE_RGBA, 8, true));
    return 0;
}
